/**
 * The driver's NodeClient: the driver's CoreWorker and its node share a thread, so every call is a
 * direct call. (A worker's CoreWorker reaches its node over a channel: core-worker/node-client.ts.)
 */
import type { NodeClient } from '../core-worker/index.js';
import type { ActorIdHex, ObjectIdHex } from '../ids/index.js';
import type { ActorInfo, ActorLookupCallback, ActorSpec, ClusterAnswer, ClusterQuery, GeneratorAnswer, NewObject, ObjectPayload, Part, TaskSpec } from '../protocol/index.js';
import type { FunctionDescriptor } from '../serialization/index.js';
import type { Node } from './index.js';

const NO_WITHDRAW = (): void => {};

/** The driver's get or wait, recorded as a core event from its call until its last object came or it was withdrawn. */
function recordedFetch(node: Node, ids: readonly ObjectIdHex[], withData: boolean, onObject: (object: ObjectPayload) => void, fetchLocal: boolean | undefined): () => void {
  const startMs = Date.now();
  let remaining = ids.length;
  let open = true;
  const end = (): void => {
    if (!open) return;
    open = false;
    node.taskEvents.core(withData ? 'get' : 'wait', node.driverId, startMs, ids.length);
  };
  const withdraw = node.fetch(ids, withData, (object) => {
    if (--remaining === 0) end();
    onObject(object);
  }, undefined, fetchLocal);
  return () => {
    withdraw();
    end();
  };
}

export class LocalNodeClient implements NodeClient {
  constructor(private readonly node: Node) {}

  get nodeId(): string {
    return this.node.nodeId;
  }

  submit(functions: readonly FunctionDescriptor[], tasks: readonly TaskSpec[]): void {
    this.node.submit(functions, tasks);
  }

  put(objects: readonly NewObject[]): void {
    this.node.put(this.node.driverId, objects);
  }

  fetch(ids: readonly ObjectIdHex[], withData: boolean, onObject: (object: ObjectPayload) => void, fetchLocal?: boolean, polled?: () => void): () => void {
    const withdraw = this.node.taskEvents.coreTraced() ? recordedFetch(this.node, ids, withData, onObject, fetchLocal) : this.node.fetch(ids, withData, onObject, undefined, fetchLocal);
    if (polled === undefined) return withdraw;
    // A poll: the node in this thread has answered what exists now, before fetch returned.
    withdraw();
    polled();
    return NO_WITHDRAW;
  }

  cancel(objectId: string, force: boolean, recursive: boolean): void {
    this.node.cancel(objectId, force, recursive);
  }

  blocked(): void {}

  unblocked(): void {}

  createActor(functions: readonly FunctionDescriptor[], spec: ActorSpec): ActorInfo | undefined {
    return this.node.createActor(functions, spec);
  }

  lookupActor(name: string, namespace: string, callback: ActorLookupCallback): void {
    this.node.lookupActor(name, namespace, callback);
  }

  clusterInfo(query: ClusterQuery, callback: (answer: ClusterAnswer) => void): void {
    this.node.clusterInfo(query, callback);
  }

  killActor(actorId: ActorIdHex, noRestart: boolean): void {
    this.node.killActor(actorId, noRestart);
  }

  addRefs(ids: readonly string[], owners?: readonly string[]): void {
    this.node.addRefs(this.node.driverId, ids, owners);
  }

  removeRefs(ids: readonly string[]): void {
    this.node.removeRefs(this.node.driverId, ids);
  }

  releaseLeases(leases: readonly number[]): void {
    this.node.releaseLeases(leases);
  }

  /** The driver writes large parts straight into the arena: the one copy they ever get. */
  storeParts(parts: readonly Uint8Array[]): Part[] {
    return this.node.storeParts(parts);
  }

  // generators
  generatorNext(generatorId: string, index: number, callback: (answer: GeneratorAnswer) => void, peek = false): void {
    this.node.generatorNext(this.node.driverId, generatorId, index, callback, peek);
  }

  generatorDropped(generatorId: string): void {
    this.node.generatorDropped(this.node.driverId, generatorId);
  }

  partView(part: Part): Uint8Array {
    if ('bytes' in part) return part.bytes;
    if ('slab' in part) return this.node.blockView(part);
    throw new Error('attached parts never reach the driver');
  }
}
