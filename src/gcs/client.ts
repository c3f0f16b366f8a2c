/**
 * The typed client of the GCS, over one connection to it. Every answer is checked before it is
 * returned, and every publish before a listener sees it: they are bytes from the network.
 */
import { envName, setting } from '../config/index.js';
import { ProtocolError, RequestTimeoutError } from '../errors/index.js';
import { PUBLISH, parseAnswer, parsePublish, type Answer, type Body, type GcsMethod, type TaskEventBatch } from './messages.js';
import type { GcsPeer, GcsRequestOptions, GcsRoutes } from './rpc.js';
import type { ActorState, ActorIdHex, Channel, ChannelMessage, NodeIdHex, Publish, ResourceMap } from './types.js';

type Listener<C extends Channel> = (message: ChannelMessage[C]) => void;

/**
 * The listeners of what the GCS publishes. It is registered on the Router the connection is made
 * with (before the connection exists, since publishes arrive on that Router), then given to the
 * GcsClient, whose onPublish adds to it.
 */
export class GcsPublishes {
  private readonly listeners = new Map<Channel, Set<(message: ChannelMessage[Channel]) => void>>();

  constructor(private readonly onListenerError: (error: unknown) => void = reportListenerError) {}

  /** Adds the handler of the GCS's `publish` notifies to `routes`. */
  register(routes: GcsRoutes): this {
    routes.on(PUBLISH, parsePublish, (publish) => this.deliver(publish));
    return this;
  }

  /** Calls `listener` with each message on `channel`; the function returned removes it. */
  on<C extends Channel>(channel: C, listener: Listener<C>): () => void {
    let set = this.listeners.get(channel);
    if (set === undefined) this.listeners.set(channel, (set = new Set()));
    const entry = listener as (message: ChannelMessage[Channel]) => void;
    set.add(entry);
    return () => set.delete(entry);
  }

  deliver(publish: Publish): void {
    const set = this.listeners.get(publish.channel);
    if (set === undefined) return;
    for (const listener of [...set]) {
      // One listener's failure must not keep the message from the others.
      try {
        listener(publish.message);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}

function reportListenerError(error: unknown): void {
  console.error('miniray: a listener of GCS publishes threw:', error);
}

export class GcsClient {
  /**
   * How long a call waits unless it says otherwise: a GCS that hangs with its connection open
   * would otherwise hold every caller forever (read once, so that a bad value fails at start).
   */
  private readonly requestTimeoutMs = setting('gcsRequestTimeoutMs');

  constructor(
    readonly peer: GcsPeer,
    private readonly publishes: GcsPublishes = new GcsPublishes(),
  ) {}

  /**
   * Calls `method` and checks the answer: a malformed one rejects with a ProtocolError naming the
   * field; no answer within the options' timeoutMs (else gcsRequestTimeoutMs) rejects with
   * RequestTimeoutError.
   */
  async call<M extends GcsMethod>(method: M, body: Body<M>, options?: GcsRequestOptions): Promise<Answer<M>> {
    if (options?.timeoutMs !== undefined) return this.checked(method, await this.peer.request(method, body, options));
    try {
      return this.checked(method, await this.peer.request(method, body, { ...options, timeoutMs: this.requestTimeoutMs }));
    } catch (error) {
      if (!(error instanceof RequestTimeoutError)) throw error;
      throw new RequestTimeoutError(
        `${error.message}: the GCS is connected but does not answer (a head that hangs or is overloaded). ` +
          `Check the head (miniray status), or allow it longer with ${envName('gcsRequestTimeoutMs')}`,
      );
    }
  }

  private checked<M extends GcsMethod>(method: M, body: unknown): Answer<M> {
    const answer = parseAnswer(method)(body);
    if (answer instanceof ProtocolError) throw answer;
    return answer;
  }

  /**
   * Listens to `channel`. Messages arrive only after `subscribe([channel])`, and only if the
   * GcsPublishes given to this client was registered on the connection's Router.
   */
  onPublish<C extends Channel>(channel: C, listener: Listener<C>): () => void {
    return this.publishes.on(channel, listener);
  }

  // ---- nodes ----------------------------------------------------------------------------------

  registerNode(body: Body<'registerNode'>): Promise<Answer<'registerNode'>> {
    return this.call('registerNode', body);
  }

  /** Sent when the node's available resources change; one-way, ordered with requests. */
  reportResources(nodeId: NodeIdHex, available: ResourceMap, resources?: ResourceMap): void {
    this.peer.notify('reportResources', resources === undefined ? { nodeId, available } : { nodeId, available, resources });
  }

  unregisterNode(nodeId: NodeIdHex): Promise<Answer<'unregisterNode'>> {
    return this.call('unregisterNode', { nodeId });
  }

  getNodes(): Promise<Answer<'getNodes'>> {
    return this.call('getNodes', {});
  }

  // ---- actors ---------------------------------------------------------------------------------

  registerActor(body: Body<'registerActor'>): Promise<Answer<'registerActor'>> {
    return this.call('registerActor', body);
  }

  updateActor(actorId: ActorIdHex, state: ActorState, more: { nodeId?: NodeIdHex; reason?: string; numRestarts?: number } = {}): Promise<Answer<'updateActor'>> {
    return this.call('updateActor', { actorId, state, ...more });
  }

  getActor(actorId: ActorIdHex): Promise<Answer<'getActor'>> {
    return this.call('getActor', { actorId });
  }

  getNamedActor(name: string, namespace: string): Promise<Answer<'getNamedActor'>> {
    return this.call('getNamedActor', { name, namespace });
  }

  listActors(namespace?: string): Promise<Answer<'listActors'>> {
    return this.call('listActors', namespace === undefined ? {} : { namespace });
  }

  // ---- jobs -----------------------------------------------------------------------------------

  async addJob(driverNodeId: NodeIdHex, submissionId?: string): Promise<number> {
    return (await this.call('addJob', submissionId === undefined || submissionId === '' ? { driverNodeId } : { driverNodeId, submissionId })).jobId;
  }

  async finishJob(jobId: number): Promise<boolean> {
    return (await this.call('finishJob', { jobId })).found;
  }

  listJobs(): Promise<Answer<'listJobs'>> {
    return this.call('listJobs', {});
  }

  // ---- kv -------------------------------------------------------------------------------------

  /** True if the key was new; with overwrite false, an existing value is kept. */
  async kvPut(namespace: string, key: string, value: Uint8Array, overwrite = true): Promise<boolean> {
    return (await this.call('kvPut', { namespace, key, value, overwrite })).added;
  }

  kvGet(namespace: string, key: string): Promise<Uint8Array | null> {
    return this.call('kvGet', { namespace, key });
  }

  async kvDel(namespace: string, key: string): Promise<boolean> {
    return (await this.call('kvDel', { namespace, key })).deleted;
  }

  kvKeys(namespace: string, prefix = ''): Promise<readonly string[]> {
    return this.call('kvKeys', { namespace, prefix });
  }

  // ---- pubsub and resources -------------------------------------------------------------------

  async subscribe(channels: readonly Channel[]): Promise<void> {
    await this.call('subscribe', { channels });
  }

  /** Totals over the alive nodes (and drivers that offer resources). */
  clusterResources(): Promise<ResourceMap> {
    return this.call('getClusterResources', {});
  }

  // ---- state API (helper state) ---------------------------------------------------------------

  /**
   * Asks every alive node (or `nodeIds`) for `what`, through the GCS; `timeoutMs` is each node's
   * (the request itself is given a little more, so that the GCS's partial answer comes first).
   */
  askNodes(body: Body<'askNodes'>): Promise<Answer<'askNodes'>> {
    const timeoutMs = (body.timeoutMs ?? 10_000) + 5_000;
    return this.call('askNodes', body, { timeoutMs });
  }

  clusterInfo(options?: GcsRequestOptions): Promise<Answer<'getClusterInfo'>> {
    return this.call('getClusterInfo', {}, options);
  }

  /** What of clusterResources() is free now, as the nodes last reported it. */
  availableResources(): Promise<ResourceMap> {
    return this.call('getAvailableResources', {});
  }

  // ---- task events (helper events) ------------------------------------------------------------

  /** A node's batch of task events; one-way (a batch lost with a connection is not sent again). */
  addTaskEvents(batch: TaskEventBatch): void {
    this.peer.notify('addTaskEvents', batch);
  }

  /** Task attempts matching every filter (at most `limit`, default 100), with what matched in all and what was dropped. */
  listTaskEvents(body: Body<'listTaskEvents'> = {}, options?: GcsRequestOptions): Promise<Answer<'listTaskEvents'>> {
    return this.call('listTaskEvents', body, options);
  }

  /** Every attempt of one task the GCS keeps, with detail. */
  getTaskEvents(taskId: string, options?: GcsRequestOptions): Promise<Answer<'getTaskEvents'>> {
    return this.call('getTaskEvents', { taskId }, options);
  }

  taskMetrics(options?: GcsRequestOptions): Promise<Answer<'taskMetrics'>> {
    return this.call('taskMetrics', {}, options);
  }

  /** The latest get/put/wait calls (up to 10,000), oldest first. */
  listCoreEvents(options?: GcsRequestOptions): Promise<Answer<'listCoreEvents'>> {
    return this.call('listCoreEvents', {}, options);
  }
}
