/**
 * What a CoreWorker needs from its node. The driver's CoreWorker calls its node directly (same
 * thread); a worker's goes through the channel (ChannelNodeClient). A CoreWorker on a machine
 * without a node of its own (a remote driver) will use a TCP implementation of the same interface.
 */
import type {
  ClusterAnswer,
  ClusterQuery,
  GeneratorAnswer,
  ActorInfo,
  ActorSpec,
  NodeToWorker,
  NewObject,
  ObjectPayload,
  Part,
  TaskSpec,
  WorkerToNode,
} from '../protocol/index.js';
import type { FunctionDescriptor } from '../serialization/index.js';
import type { Channel } from '../transport/index.js';

export interface NodeClient {
  readonly nodeId: string;
  /** True when fetch() reports objects that exist before it returns (the node is in this thread). */
  readonly answersAtOnce: boolean;
  /** Hands tasks to the node. `functions`: definitions the node has not been given yet. */
  submit(functions: readonly FunctionDescriptor[], tasks: readonly TaskSpec[]): void;
  put(objects: readonly NewObject[]): void;
  /**
   * Asks for objects; `onObject` is called once per ID as each becomes available (at once for
   * objects that exist). `withData: false` announces readiness only (for wait()). The returned
   * function withdraws the request (for a get/wait that settles before every object came).
   * `fetchLocal` (wait() only): an object counts once a copy of it is on this node, pulled here if
   * needed, not as soon as it exists anywhere (Ray's wait fetch_local).
   */
  fetch(ids: readonly string[], withData: boolean, onObject: (object: ObjectPayload) => void, fetchLocal?: boolean): () => void;
  /** `recursive`: the tasks it submitted too (env). */
  cancel(objectId: string, force: boolean, recursive: boolean): void;
  /** The calling task waits in get(): the node may use its CPU meanwhile. No-op for a driver. */
  blocked(): void;
  unblocked(): void;
  /**
   * Creates an actor. May throw at once (e.g. a taken name) when the node is in this thread; then,
   * with spec.getIfExists, it returns the live actor of that name, if any (else undefined).
   */
  createActor(functions: readonly FunctionDescriptor[], spec: ActorSpec): ActorInfo | void;
  /** Finds a named actor; `callback` gets null when there is none. */
  lookupActor(name: string, namespace: string, callback: (info: ActorInfo | null) => void): void;
  killActor(actorId: string, noRestart: boolean): void;
  /** Asks the cluster's head (through the node) for its node table or resource totals. */
  clusterInfo(query: ClusterQuery, callback: (answer: ClusterAnswer) => void): void;
  /** This thread's first ref to each object / its last ref is gone (see references.ts). */
  /** `owners`: the owner node of each ref (given when some are owned on another node). */
  addRefs(ids: readonly string[], owners?: readonly string[]): void;
  removeRefs(ids: readonly string[]): void;
  /** No view of the memory given under these leases is left in this thread. */
  releaseLeases(leases: readonly number[]): void;
  /**
   * Copies the large binary parts of a value to where the node will read them (the one copy they
   * get) and says where. Throws ObjectStoreFullError, having taken nothing, when they do not fit.
   */
  storeParts(parts: readonly Uint8Array[]): Part[];
  /** The bytes of a part the node sent. */
  partView(part: Part): Uint8Array;
  // generators
  /**
   * Calls `callback` once item `index` of the stream `generatorId` (owned by this thread) exists, or
   * the stream has ended. `peek` (wait() on a generator): the item does not count as read.
   */
  generatorNext(generatorId: string, index: number, callback: (answer: GeneratorAnswer) => void, peek?: boolean): void;
  /** This thread lets go of the stream: its unread items are freed. */
  generatorDropped(generatorId: string): void;
}

/** A worker's NodeClient: messages over the worker's channel, replies matched by request id. */
export class ChannelNodeClient implements NodeClient {
  private nextRequestId = 1;
  private readonly requests = new Map<number, { remaining: number; onObject: (object: ObjectPayload) => void }>();
  private readonly actorLookups = new Map<number, (info: ActorInfo | null) => void>();

  private readonly slabs = new Map<number, SharedArrayBuffer>();
  readonly answersAtOnce = false;

  /** `sharesMemory`: false in a worker process, which gets and sends copies of large parts. */
  constructor(
    readonly nodeId: string,
    private readonly channel: Channel<WorkerToNode, NodeToWorker>,
    private readonly sharesMemory = true,
  ) {}

  /** Arena slabs the node sent, attached to the frame of the `slabs` message. */
  addSlabs(slabs: readonly { index: number; attached: number }[], attached: readonly SharedArrayBuffer[]): void {
    for (const { index, attached: at } of slabs) {
      const buffer = attached[at];
      if (buffer !== undefined) this.slabs.set(index, buffer);
    }
  }

  dropSlabs(indices: readonly number[]): void {
    for (const index of indices) this.slabs.delete(index);
  }

  partView(part: Part): Uint8Array {
    if ('bytes' in part) return part.bytes;
    if ('slab' in part) {
      const slab = this.slabs.get(part.slab);
      if (slab === undefined) throw new Error(`arena slab ${part.slab} was never sent to this worker`);
      return new Uint8Array(slab, part.offset, part.length);
    }
    throw new Error('a part attached by a worker cannot be read by a worker');
  }

  storeParts(parts: readonly Uint8Array[]): Part[] {
    // A worker thread writes each part into a SharedArrayBuffer of its own, which the node adopts
    // into its arena without a copy; a worker process shares no memory, so it sends the bytes.
    if (!this.sharesMemory) return parts.map((bytes) => ({ bytes: bytes.slice() }));
    return parts.map((bytes) => {
      const shared = new SharedArrayBuffer(bytes.byteLength);
      new Uint8Array(shared).set(bytes);
      return { attached: this.channel.attach(shared) };
    });
  }

  addRefs(ids: readonly string[], owners?: readonly string[]): void {
    this.channel.send(owners === undefined ? { type: 'addRefs', ids } : { type: 'addRefs', ids, owners });
  }

  removeRefs(ids: readonly string[]): void {
    this.channel.send({ type: 'removeRefs', ids });
  }

  releaseLeases(leases: readonly number[]): void {
    this.channel.send({ type: 'releaseLeases', leases });
  }

  submit(functions: readonly FunctionDescriptor[], tasks: readonly TaskSpec[]): void {
    this.channel.send({ type: 'submit', functions, tasks });
  }

  put(objects: readonly NewObject[]): void {
    this.channel.send({ type: 'put', objects });
  }

  fetch(ids: readonly string[], withData: boolean, onObject: (object: ObjectPayload) => void, fetchLocal?: boolean): () => void {
    const requestId = this.nextRequestId++;
    this.requests.set(requestId, { remaining: ids.length, onObject });
    // wait(fetchLocal): the one field a wait adds; a get (withData) pulls copies anyway and sends nothing new.
    this.channel.send(fetchLocal === true && !withData ? { type: 'get', requestId, ids, withData, fetchLocal } : { type: 'get', requestId, ids, withData });
    return () => {
      if (this.requests.delete(requestId)) this.channel.send({ type: 'cancelGet', requestId });
    };
  }

  /** Called by the worker runtime for each `objects` reply. */
  deliver(requestId: number, objects: readonly ObjectPayload[]): void {
    const request = this.requests.get(requestId);
    if (request === undefined) {
      // The get/wait settled (an error, a timeout) before these arrived: give their leases back.
      const leases = objects.flatMap((o) => (o.state === 'ready' && o.lease !== undefined ? [o.lease] : []));
      if (leases.length > 0) this.releaseLeases(leases);
      return;
    }
    request.remaining -= objects.length;
    if (request.remaining <= 0) this.requests.delete(requestId);
    for (const object of objects) request.onObject(object);
  }

  cancel(objectId: string, force: boolean, recursive: boolean): void {
    this.channel.send({ type: 'cancel', objectId, force, recursive });
  }

  blocked(): void {
    this.channel.send({ type: 'blocked' });
  }

  unblocked(): void {
    this.channel.send({ type: 'unblocked' });
  }

  createActor(functions: readonly FunctionDescriptor[], spec: ActorSpec): undefined {
    this.channel.send({ type: 'createActor', functions, spec });
    return undefined;
  }

  lookupActor(name: string, namespace: string, callback: (info: ActorInfo | null) => void): void {
    const requestId = this.nextRequestId++;
    this.actorLookups.set(requestId, callback);
    this.channel.send({ type: 'lookupActor', requestId, name, namespace });
  }

  private readonly clusterQueries = new Map<number, (answer: ClusterAnswer) => void>();

  clusterInfo(query: ClusterQuery, callback: (answer: ClusterAnswer) => void): void {
    const requestId = this.nextRequestId++;
    this.clusterQueries.set(requestId, callback);
    this.channel.send({ type: 'clusterInfo', requestId, query });
  }

  /** Called by the worker runtime for each `clusterInfo` reply. */
  deliverClusterInfo(requestId: number, answer: ClusterAnswer): void {
    const callback = this.clusterQueries.get(requestId);
    this.clusterQueries.delete(requestId);
    callback?.(answer);
  }

  /** Called by the worker runtime for each `actorInfo` reply. */
  deliverActorInfo(requestId: number, info: ActorInfo | null): void {
    const callback = this.actorLookups.get(requestId);
    this.actorLookups.delete(requestId);
    callback?.(info);
  }

  killActor(actorId: string, noRestart: boolean): void {
    this.channel.send({ type: 'killActor', actorId, noRestart });
  }

  // generators
  private readonly streamRequests = new Map<number, (answer: GeneratorAnswer) => void>();

  generatorNext(generatorId: string, index: number, callback: (answer: GeneratorAnswer) => void, peek = false): void {
    const requestId = this.nextRequestId++;
    this.streamRequests.set(requestId, callback);
    this.channel.send(peek ? { type: 'generatorNext', requestId, generatorId, index, peek: true } : { type: 'generatorNext', requestId, generatorId, index });
  }

  /** Called by the worker runtime for each `generatorNext` reply. */
  deliverGeneratorNext(requestId: number, answer: GeneratorAnswer): void {
    const callback = this.streamRequests.get(requestId);
    this.streamRequests.delete(requestId);
    callback?.(answer);
  }

  generatorDropped(generatorId: string): void {
    this.channel.send({ type: 'generatorDropped', generatorId });
  }
}
