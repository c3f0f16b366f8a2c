/**
 * What a CoreWorker needs from its node. The driver's CoreWorker calls its node directly (same
 * thread); a worker's goes through the channel (ChannelNodeClient). A CoreWorker on a machine
 * without a node of its own (a remote driver) will use a TCP implementation of the same interface.
 */
import type { NodeToWorker, NewObject, ObjectPayload, TaskSpec, WorkerToNode } from '../protocol/index.js';
import type { FunctionDescriptor } from '../serialization/index.js';
import type { Channel } from '../transport/index.js';

export interface NodeClient {
  readonly nodeId: string;
  /** Hands tasks to the node. `functions`: definitions the node has not been given yet. */
  submit(functions: readonly FunctionDescriptor[], tasks: readonly TaskSpec[]): void;
  put(objects: readonly NewObject[]): void;
  /**
   * Asks for objects; `onObject` is called once per ID as each becomes available (at once for
   * objects that exist). `withData: false` announces readiness only (for wait()). The returned
   * function withdraws the request (for a get/wait that settles before every object came).
   */
  fetch(ids: readonly string[], withData: boolean, onObject: (object: ObjectPayload) => void): () => void;
  cancel(objectId: string, force: boolean): void;
  /** The calling task waits in get(): the node may use its CPU meanwhile. No-op for a driver. */
  blocked(): void;
  unblocked(): void;
}

/** A worker's NodeClient: messages over the worker's channel, replies matched by request id. */
export class ChannelNodeClient implements NodeClient {
  private nextRequestId = 1;
  private readonly requests = new Map<number, { remaining: number; onObject: (object: ObjectPayload) => void }>();

  constructor(
    readonly nodeId: string,
    private readonly channel: Channel<WorkerToNode, NodeToWorker>,
  ) {}

  submit(functions: readonly FunctionDescriptor[], tasks: readonly TaskSpec[]): void {
    this.channel.send({ type: 'submit', functions, tasks });
  }

  put(objects: readonly NewObject[]): void {
    this.channel.send({ type: 'put', objects });
  }

  fetch(ids: readonly string[], withData: boolean, onObject: (object: ObjectPayload) => void): () => void {
    const requestId = this.nextRequestId++;
    this.requests.set(requestId, { remaining: ids.length, onObject });
    this.channel.send({ type: 'get', requestId, ids, withData });
    return () => {
      if (this.requests.delete(requestId)) this.channel.send({ type: 'cancelGet', requestId });
    };
  }

  /** Called by the worker runtime for each `objects` reply. */
  deliver(requestId: number, objects: readonly ObjectPayload[]): void {
    const request = this.requests.get(requestId);
    if (request === undefined) return;
    request.remaining -= objects.length;
    if (request.remaining <= 0) this.requests.delete(requestId);
    for (const object of objects) request.onObject(object);
  }

  cancel(objectId: string, force: boolean): void {
    this.channel.send({ type: 'cancel', objectId, force });
  }

  blocked(): void {
    this.channel.send({ type: 'blocked' });
  }

  unblocked(): void {
    this.channel.send({ type: 'unblocked' });
  }
}
