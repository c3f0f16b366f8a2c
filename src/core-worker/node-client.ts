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
  ActorLookupCallback,
  ActorSpec,
  NodeToWorker,
  NewObject,
  RequestAnswer,
  ObjectPayload,
  Part,
  PollEnd,
  TaskSpec,
  WorkerRequest,
  WorkerToNode,
} from '../protocol/index.js';
import { setting } from '../config/index.js';
import type { ActorIdHex, NodeIdHex, ObjectIdHex, RefIdHex } from '../ids/index.js';
import { actorNameTakenError, largerThanStoreError, type MinirayError, type ProtocolError } from '../errors/index.js';
import { NameAnswer, WORKER_ANSWER_CHECKS, type WorkerAnswers } from '../protocol/index.js';
import { encodeError, type FunctionDescriptor } from '../serialization/index.js';
import { PendingRequest, RequestTable, type Channel } from '../transport/index.js';

/** How long a thread waits for its node to say whether a name is free, before it goes on and is told later. */
const NAME_ANSWER_WAIT_MS = 10_000;

export interface NodeClient {
  readonly nodeId: string;
  /** Hands tasks to the node. `functions`: definitions the node has not been given yet. */
  submit(functions: readonly FunctionDescriptor[], tasks: readonly TaskSpec[]): void;
  put(objects: readonly NewObject[]): void;
  /**
   * Asks for objects; `onObject` is called once per ID as each becomes available (at once for
   * objects that exist). `withData: false` announces readiness only (for wait()). The returned
   * function withdraws the request (for a get/wait that settles before every object came).
   * `fetchLocal` (wait() only): an object counts once a copy of it is on this node, pulled here if
   * needed, not as soon as it exists anywhere (Ray's wait fetch_local). `polled` makes it a poll (a
   * get or wait with timeoutMs 0): the node answers the objects that exist now, then calls it, and
   * answers nothing more (in the driver's thread before fetch returns; in a worker a round trip later).
   */
  fetch(ids: readonly ObjectIdHex[], withData: boolean, onObject: (object: ObjectPayload) => void, fetchLocal?: boolean, polled?: () => void): () => void;
  /** `recursive`: the tasks it submitted too (env). */
  cancel(objectId: ObjectIdHex, force: boolean, recursive: boolean): void;
  /** The calling task waits in get(): the node may use its CPU meanwhile. No-op for a driver. */
  blocked(): void;
  unblocked(): void;
  /**
   * Creates an actor. Throws at once when its node knows the name is taken (a worker's waits for
   * its node to say: see ChannelNodeClient). With spec.getIfExists, the node in this thread
   * returns the live actor of that name, if any (else undefined).
   */
  createActor(functions: readonly FunctionDescriptor[], spec: ActorSpec): ActorInfo | void;
  /**
   * Finds a named actor; `callback` gets null when there is none, or `error` when the node could
   * not be asked (a worker's channel closed).
   */
  lookupActor(name: string, namespace: string, callback: ActorLookupCallback): void;
  killActor(actorId: ActorIdHex, noRestart: boolean): void;
  /** Asks the cluster's head (through the node) for its node table or resource totals. */
  clusterInfo(query: ClusterQuery, callback: (answer: ClusterAnswer) => void): void;
  /** This thread's first ref to each object / its last ref is gone (see references.ts). */
  /** `owners`: the owner node of each ref (given when some are owned on another node). */
  addRefs(ids: readonly RefIdHex[], owners?: readonly NodeIdHex[]): void;
  removeRefs(ids: readonly RefIdHex[]): void;
  /** No view of the memory given under these leases is left in this thread. */
  releaseLeases(leases: readonly number[]): void;
  /**
   * Copies the large binary parts of a value to where the node will read them (the one copy they
   * get) and says where. Throws ObjectStoreFullError, having taken nothing, when they do not fit.
   */
  storeParts(parts: readonly Uint8Array[]): Part[];
  /**
   * Throws ObjectStoreFullError for a part larger than the node's whole store, which it would
   * refuse (a worker's client; the driver's, whose node is at hand, has its store throw instead).
   */
  checkFits?(parts: readonly Uint8Array[]): void;
  /** The bytes of a part the node sent. */
  partView(part: Part): Uint8Array;
  // generators
  /**
   * Calls `callback` once item `index` of the stream `generatorId` (owned by this thread) exists, or
   * the stream has ended. `peek` (wait() on a generator): the item does not count as read.
   */
  generatorNext(generatorId: ObjectIdHex, index: number, callback: (answer: GeneratorAnswer) => void, peek?: boolean): void;
  /** This thread lets go of the stream: its unread items are freed. */
  generatorDropped(generatorId: ObjectIdHex): void;
}

/**
 * How much longer than its node's wait for the GCS (gcsReconnectTimeoutMs) a worker waits for the
 * answer to a lookupActor or clusterInfo: its node answers first when the GCS is away (with a
 * GcsUnavailableError once it gives up), so the worker's own timeout fires only when no answer is
 * coming at all (a GCS that hangs with its connection open, a lost answer).
 */
export const NODE_ANSWER_GRACE_MS = 10_000;

/**
 * A worker's NodeClient: messages over the worker's channel. What is answered (get, lookupActor,
 * clusterInfo, generatorNext) goes through one RequestTable; the rest is one-way. When the channel
 * ends, for whatever reason, every request still waiting fails at once with a ConnectionError.
 *
 * Timeouts, as Ray's: a get or wait has its caller's (kept by the CoreWorker, which withdraws the
 * request), a generator's next() none; lookupActor and clusterInfo, which the node passes to the
 * GCS, have one of their own (Ray's GCS requests time out after gcs_server_request_timeout_seconds,
 * 60 s): the node's wait for the GCS, plus the query's own timeoutMs, plus NODE_ANSWER_GRACE_MS.
 */
export class ChannelNodeClient implements NodeClient {
  private readonly requests: RequestTable<WorkerAnswers>;

  private readonly slabs = new Map<number, SharedArrayBuffer>();

  /** `sharesMemory`: false in a worker process, which gets and sends copies of large parts. */
  constructor(
    readonly nodeId: string,
    private readonly channel: Channel<WorkerToNode, NodeToWorker>,
    private readonly sharesMemory = true,
    /** Told of the node's first protocol error in its answers (an answer to no request, a malformed value). */
    report: (error: ProtocolError) => void = (error) => console.error(`miniray worker: ${error.message}`),
    /** The node's gcsReconnectTimeoutMs (its boot data says; the head's value in a cluster). */
    private readonly gcsReconnectTimeoutMs = setting('gcsReconnectTimeoutMs'),
    /** A thread's answer cell (boot data): where the node says at once whether a name is free. */
    private readonly answers: Int32Array | undefined = undefined,
    /** Its node's object store capacity (boot data): a larger part is refused here, at once. */
    private readonly storeCapacityBytes = Infinity,
  ) {
    this.requests = new RequestTable<WorkerAnswers>({
      sendCancel: (id) => channel.send({ type: 'cancelRequest', id }),
      checks: WORKER_ANSWER_CHECKS,
      report,
      peer: `node ${nodeId.slice(0, 8)}`,
    });
    channel.onClose?.((reason) => this.close(reason));
  }

  /** Called by the worker runtime for each `reply` and `response` message. */
  receive(message: RequestAnswer): void {
    this.requests.receive(message);
  }

  /**
   * The channel to the node closed (it is told by the channel itself; the worker runtime also calls
   * this when the node broke the protocol): what is waiting fails with a ConnectionError.
   */
  close(reason: string): void {
    this.requests.close(reason);
  }

  /** Requests waiting for the node's answer (for tests and diagnostics). */
  get waitingRequests(): number {
    return this.requests.size;
  }

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

  checkFits(parts: readonly Uint8Array[]): void {
    for (const bytes of parts) if (bytes.byteLength > this.storeCapacityBytes) throw largerThanStoreError(bytes.byteLength, this.storeCapacityBytes);
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

  addRefs(ids: readonly RefIdHex[], owners?: readonly NodeIdHex[]): void {
    this.channel.send(owners === undefined ? { type: 'addRefs', ids } : { type: 'addRefs', ids, owners });
  }

  removeRefs(ids: readonly RefIdHex[]): void {
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

  fetch(ids: readonly ObjectIdHex[], withData: boolean, onObject: (object: ObjectPayload) => void, fetchLocal?: boolean, polled?: () => void): () => void {
    if (ids.length === 0) return NO_WITHDRAW; // nothing to answer: a request would never end
    const id = this.requests.open('get', new FetchRequest(ids, onObject, this, polled));
    // wait(fetchLocal): the one field a wait adds; a get (withData) pulls copies anyway and sends nothing new.
    const request: WorkerRequest<'get'> =
      fetchLocal === true && !withData ? { type: 'request', id, method: 'get', ids, withData, fetchLocal } : { type: 'request', id, method: 'get', ids, withData };
    this.channel.send(polled === undefined ? request : { ...request, poll: true });
    return () => this.requests.cancel(id);
  }

  cancel(objectId: ObjectIdHex, force: boolean, recursive: boolean): void {
    this.channel.send({ type: 'cancel', objectId, force, recursive });
  }

  blocked(): void {
    this.channel.send({ type: 'blocked' });
  }

  unblocked(): void {
    this.channel.send({ type: 'unblocked' });
  }

  /**
   * A named actor's creation waits (this thread blocks, for a round trip to its node) for whether
   * its node knows the name is taken, and throws then, as the driver's does; with getIfExists a
   * taken name is no error, and a process, which has no answer cell, is told later (see NameAnswer).
   */
  createActor(functions: readonly FunctionDescriptor[], spec: ActorSpec): undefined {
    const answers = spec.name === undefined || spec.getIfExists === true ? undefined : this.answers;
    if (answers === undefined) {
      this.channel.send({ type: 'createActor', functions, spec });
      return undefined;
    }
    Atomics.store(answers, 0, NameAnswer.pending);
    this.channel.send({ type: 'createActor', functions, spec, answerAtOnce: true });
    this.channel.flush();
    Atomics.wait(answers, 0, NameAnswer.pending, NAME_ANSWER_WAIT_MS);
    // Not answered in time (its node is busy): it is told later, as a process is (the actor is then made dead).
    const answer = Atomics.compareExchange(answers, 0, NameAnswer.pending, NameAnswer.notAwaited);
    if (answer === NameAnswer.taken) throw actorNameTakenError(spec.name as string, spec.namespace);
    return undefined;
  }

  lookupActor(name: string, namespace: string, callback: ActorLookupCallback): void {
    const request = new CallbackRequest(callback, (error: MinirayError) => callback(null, error));
    const id = this.requests.open('lookupActor', request, this.gcsWaitMs(0), this.gcsHint(`getActor('${name}') in namespace '${namespace}'`));
    this.channel.send({ type: 'request', id, method: 'lookupActor', name, namespace });
  }

  clusterInfo(query: ClusterQuery, callback: (answer: ClusterAnswer) => void): void {
    // A failure is an answer too: `error`, as when the head could not be asked.
    const request = new CallbackRequest(callback, (error: MinirayError) => callback({ error: encodeError(error) }));
    const asked = typeof query === 'string' ? `the cluster query '${query}'` : `the GCS read '${query.gcs}'`;
    const id = this.requests.open('clusterInfo', request, this.gcsWaitMs(typeof query === 'string' ? 0 : (query.timeoutMs ?? 0)), this.gcsHint(asked));
    this.channel.send({ type: 'request', id, method: 'clusterInfo', query });
  }

  /** How long a request the node passes to the GCS may take: see NODE_ANSWER_GRACE_MS. */
  private gcsWaitMs(ownTimeoutMs: number): number {
    return this.gcsReconnectTimeoutMs + ownTimeoutMs + NODE_ANSWER_GRACE_MS;
  }

  private gcsHint(asked: string): string {
    return (
      `It was ${asked}, which the node asks of the cluster's GCS; the node waits up to gcsReconnectTimeoutMs ` +
      `(${this.gcsReconnectTimeoutMs} ms) for a GCS that is away, and gave no answer even then: the head may hang or be overloaded. ` +
      'Check it with `miniray status`, then call again; raise MINIRAY_GCS_RECONNECT_TIMEOUT_MS on the head if it is slow to come back'
    );
  }

  killActor(actorId: ActorIdHex, noRestart: boolean): void {
    this.channel.send({ type: 'killActor', actorId, noRestart });
  }

  // generators
  generatorNext(generatorId: ObjectIdHex, index: number, callback: (answer: GeneratorAnswer) => void, peek = false): void {
    // A failure answers 'failed': the reader then reads item `index`, whose get fails the same way.
    const id = this.requests.open('generatorNext', new CallbackRequest(callback, () => callback('failed')));
    this.channel.send(
      peek ? { type: 'request', id, method: 'generatorNext', generatorId, index, peek: true } : { type: 'request', id, method: 'generatorNext', generatorId, index },
    );
  }

  generatorDropped(generatorId: ObjectIdHex): void {
    this.channel.send({ type: 'generatorDropped', generatorId });
  }
}

const NO_WITHDRAW = (): void => {};

/** A get or wait: each object as it comes; a failure fails every one of its IDs. */
class FetchRequest extends PendingRequest<ObjectPayload | PollEnd> {
  constructor(
    private readonly ids: readonly ObjectIdHex[],
    private readonly onObject: (object: ObjectPayload) => void,
    private readonly client: ChannelNodeClient,
    private readonly polled: (() => void) | undefined,
  ) {
    super();
  }

  answer(object: ObjectPayload | PollEnd): void {
    if ('pollEnd' in object) this.polled?.();
    else this.onObject(object);
  }

  fail(error: MinirayError): void {
    // A get rejects at its first failed object; a wait counts each as ready (an ID already given is
    // given again, which both ignore).
    const data = encodeError(error);
    for (const id of this.ids) this.onObject({ id, state: 'failed', data });
  }

  /** The get/wait settled (an error, a timeout) before these arrived: give their leases back. */
  override dropped(object: ObjectPayload | PollEnd): void {
    if ('state' in object && object.state === 'ready' && object.lease !== undefined) this.client.releaseLeases([object.lease]);
  }
}

/** A request answered once, by a callback. */
class CallbackRequest<V> extends PendingRequest<V> {
  constructor(
    private readonly callback: (value: V) => void,
    private readonly onError: (error: MinirayError) => void,
  ) {
    super();
  }

  answer(value: V): void {
    this.callback(value);
  }

  fail(error: MinirayError): void {
    this.onError(error);
  }
}
