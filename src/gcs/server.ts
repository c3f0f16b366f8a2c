/**
 * The head's Global Control Service: the node table, the actor table with names per namespace, the
 * job table, a KV store (function definitions live in namespace 'fun'), the cluster resource view
 * and pubsub to the peers that subscribe. Transport-agnostic: `register(routes)` adds its methods
 * to a net Router (over TCP, or localPair in the embedded default). Its state is in the
 * StoreClient; what it keeps itself is only which connection stands for which node, job and
 * subscriber, since a connection is not something a store can hold.
 */
import { Serial, nameKey } from './serial.js';
import { randomBytes } from 'node:crypto';
import { setting } from '../config/index.js';
import { ConnectionError, RequestCancelledError, RequestTimeoutError } from '../errors/index.js';
import {
  HEALTH_CHECK,
  NODE_DEAD,
  NODE_STATE,
  PUBLISH,
  parseBody,
  parseNotify,
  type Answer,
  type Body,
  type GcsMethod,
  type NodeDead,
  type ReportResources,
} from './messages.js';
import type { GcsPeer, GcsRoutes } from './rpc.js';
import type { StoreClient, StoreValue } from './store.js';
import { TaskEventTable } from './task-events.js';
import { PlacementGroupTable } from './placement-groups.js';
import type { ActorEntry, Channel, ChannelMessage, JobEntry, NodeIdHex, NodeInfo, ResourceMap, ResourceView } from './types.js';

export interface GcsServerOptions {
  /** The resource view is published at most once per this many milliseconds (Ray batches it too). */
  readonly resourceBatchMs?: number;
  /** Where failures of work no caller waits for go (a store that fails while a peer closes). */
  readonly onError?: (error: unknown) => void;
  /** How alive nodes are checked (default: the healthCheck* settings of src/config). */
  readonly healthCheck?: Partial<HealthCheckOptions>;
  /**
   * GcsServer.start: the node in the GCS's own process (the head's). It is kept in the store, so
   * that a GCS restarted on the same store knows the head node from before is dead (it was in the
   * same process) without waiting for it.
   */
  readonly headNodeId?: string;
  /**
   * GcsServer.start: how long the nodes a restarted GCS finds alive in its store have to
   * re-register before they are marked dead (default 60000, gcsReconnectTimeoutMs).
   */
  readonly reconnectGraceMs?: number;
}

export interface HealthCheckOptions {
  /** A check is sent this long after the previous one was sent (or at once, if it took longer). */
  readonly periodMs: number;
  /** A check not answered within this is missed. */
  readonly timeoutMs: number;
  /** This many missed checks in a row: the node is dead. */
  readonly failureThreshold: number;
}

const DEFAULT_RESOURCE_BATCH_MS = 100;
const DEFAULT_RECONNECT_GRACE_MS = 60_000;
const DEFAULT_ASK_NODES_TIMEOUT_MS = 10_000;

/** The store's row of what is the cluster's own rather than a table's: its ID, its head node. */
type ClusterMeta = { readonly clusterId: string; readonly headNodeId?: string; readonly startedAtMs: number };

/** One table of the store, typed: the one place a stored value is taken to be what was put. */
class Table<V extends StoreValue> {
  constructor(
    private readonly store: StoreClient,
    readonly name: string,
  ) {}

  async get(key: string): Promise<V | undefined> {
    return (await this.store.get(this.name, key)) as V | undefined;
  }

  put(key: string, value: V): Promise<void> {
    return this.store.put(this.name, key, value);
  }

  delete(key: string): Promise<boolean> {
    return this.store.delete(this.name, key);
  }

  async all(): Promise<V[]> {
    return [...(await this.store.getAll(this.name)).values()] as V[];
  }
}

const kvTable = (namespace: string): string => `kv/${namespace}`;

/** Whether a node's resources count in the cluster's totals: a driver counts only if it offers some. */
function counts(node: NodeInfo): boolean {
  return node.alive && (!node.isDriver || Object.values(node.resources).some((amount) => amount > 0));
}

function sum(maps: readonly ResourceMap[]): ResourceMap {
  // A Map, not an object: a resource named "__proto__" must be summed, not set a prototype.
  const totals = new Map<string, number>();
  for (const map of maps) for (const [name, amount] of Object.entries(map)) totals.set(name, (totals.get(name) ?? 0) + amount);
  return Object.fromEntries(totals);
}

export class GcsServer {
  private readonly nodes: Table<NodeInfo>;
  private readonly actors: Table<ActorEntry>;
  private readonly names: Table<string>;
  private readonly jobs: Table<JobEntry>;
  private readonly nodeSteps = new Serial();
  private readonly actorSteps = new Serial();
  private readonly jobSteps = new Serial();
  private readonly kvSteps = new Serial();

  /** The connection each alive node registered over: when it closes, the node is dead. */
  private readonly nodePeers = new Map<NodeIdHex, GcsPeer>();
  /** The connection of each running job's driver: when it closes, the job is finished. */
  private readonly jobPeers = new Map<number, GcsPeer>();
  private readonly subscribers = new Map<Channel, Set<GcsPeer>>([
    ['nodes', new Set()],
    ['actors', new Set()],
    ['resources', new Set()],
  ]);
  private readonly watched = new WeakSet<GcsPeer>();

  /**
   * Nodes a restarted GCS found alive in its store, not re-registered yet: alive until the grace
   * period ends (work on them goes on meanwhile), then dead. Their drivers' running jobs, by job ID.
   */
  private readonly awaitingNodes = new Set<NodeIdHex>();
  private readonly awaitingJobs = new Map<number, NodeIdHex>();
  private graceTimer: NodeJS.Timeout | undefined;

  private readonly resourceBatchMs: number;
  private readonly onError: (error: unknown) => void;
  private readonly health: HealthCheckOptions;
  /** The node in this process (state API: listNodes marks it isHead). */
  private readonly headNodeId: NodeIdHex | undefined;
  /** The timer of each checked node's next check (or of the one it waits for an answer to). */
  private readonly healthTimers = new Map<NodeIdHex, NodeJS.Timeout>();
  private resourceTimer: NodeJS.Timeout | undefined;
  private lastResourcePublishMs = -Infinity;
  private closed = false;
  /** Task events (helper events): in memory only, not in the store (a restarted GCS starts empty, as Ray's). */
  readonly taskEvents = new TaskEventTable({ maxTasks: setting('maxTaskEventsInGcs') });
  /** Placement groups (helper pg). */
  private readonly placementGroups: PlacementGroupTable;

  constructor(
    private readonly store: StoreClient,
    readonly clusterId: string,
    options: GcsServerOptions = {},
  ) {
    this.nodes = new Table(store, 'nodes');
    this.actors = new Table(store, 'actors');
    this.names = new Table(store, 'actorNames');
    this.jobs = new Table(store, 'jobs');
    this.placementGroups = new PlacementGroupTable(store, {
      nodes: () => this.nodeSteps.run(() => this.nodes.all()),
      peerOf: (nodeId) => this.nodePeers.get(nodeId),
      peers: () => this.nodePeers.values(),
      onError: (error) => this.onError(error),
    });
    this.resourceBatchMs = options.resourceBatchMs ?? DEFAULT_RESOURCE_BATCH_MS;
    this.headNodeId = options.headNodeId as NodeIdHex | undefined;
    this.health = {
      periodMs: options.healthCheck?.periodMs ?? setting('healthCheckPeriodMs'),
      timeoutMs: options.healthCheck?.timeoutMs ?? setting('healthCheckTimeoutMs'),
      failureThreshold: options.healthCheck?.failureThreshold ?? setting('healthCheckFailureThreshold'),
    };
    this.onError =
      options.onError ??
      ((error) =>
        console.warn(
          `miniray: the GCS could not finish a step no request waits for (a resource report, a closed connection, the resource view): ${error instanceof Error ? error.message : String(error)}; check the GCS's store`,
        ));
  }

  /**
   * A GCS on `store`, with what the store holds from before: the same cluster ID, jobs, KV (the
   * function table), actors and names as they were. Nodes that were alive are alive until
   * `reconnectGraceMs` passes, and then dead unless they re-registered; the head node from
   * before (in the process of the GCS from before) is dead at once. On an empty store (and always
   * with the in-memory store of a new process), a new cluster.
   */
  static async start(store: StoreClient, options: GcsServerOptions = {}): Promise<GcsServer> {
    const meta = new Table<ClusterMeta>(store, 'meta');
    const before = await meta.get('cluster');
    const server = new GcsServer(store, before?.clusterId ?? randomBytes(16).toString('hex'), options);
    await server.recover(before?.headNodeId as NodeIdHex | undefined, options.reconnectGraceMs ?? DEFAULT_RECONNECT_GRACE_MS);
    await meta.put('cluster', {
      clusterId: server.clusterId,
      ...(options.headNodeId === undefined ? {} : { headNodeId: options.headNodeId }),
      startedAtMs: Date.now(),
    });
    return server;
  }

  /** Nodes found alive wait for their re-registration; jobs of drivers that cannot come back end. */
  private async recover(previousHead: NodeIdHex | undefined, graceMs: number): Promise<void> {
    for (const node of await this.nodes.all()) {
      if (!node.alive) continue;
      if (node.nodeId === previousHead) await this.markDead(node.nodeId, 'it was the head node of the GCS before this one (same process), which stopped');
      else this.awaitingNodes.add(node.nodeId);
    }
    for (const job of await this.jobs.all()) {
      if (job.endTimeMs !== undefined) continue;
      if (this.awaitingNodes.has(job.driverNodeId)) this.awaitingJobs.set(job.jobId, job.driverNodeId);
      else await this.finishJob(job.jobId);
    }
    // Groups not placed yet wait again (helper pg): placed as the nodes re-register and report.
    await this.placementGroups.recover();
    if (this.awaitingNodes.size === 0) return;
    this.graceTimer = setTimeout(() => this.graceOver(), graceMs);
    this.graceTimer.unref();
  }

  /** The nodes from before the restart that did not re-register in time are dead, their jobs finished. */
  private graceOver(): void {
    this.graceTimer = undefined;
    for (const nodeId of [...this.awaitingNodes]) {
      this.nodeSteps
        .run(async () => {
          // A registration that ran before this step keeps it alive.
          if (!this.awaitingNodes.has(nodeId)) return;
          await this.markDead(nodeId, 'it did not register again in time after the GCS restarted');
          for (const [jobId, driver] of this.awaitingJobs) {
            if (driver !== nodeId) continue;
            this.awaitingJobs.delete(jobId);
            await this.jobSteps.run(() => this.finishJob(jobId));
          }
        })
        .catch(this.onError);
    }
  }

  /** Adds every GCS method to `routes` (a net Router). */
  register(routes: GcsRoutes): void {
    this.route(routes, 'registerNode', (body, peer) => this.registerNode(body, peer));
    this.route(routes, 'unregisterNode', (body) => this.nodeSteps.run(async () => ({ found: await this.markDead(body.nodeId, 'it unregistered') })));
    // Node reads queue behind node writes: a reportResources (one-way) sent before a read is seen by it.
    this.route(routes, 'getNodes', () => this.nodeSteps.run(() => this.nodes.all()));
    this.route(routes, 'registerActor', (body) => this.registerActor(body));
    this.route(routes, 'updateActor', (body) => this.updateActor(body));
    // Actor reads wait behind actor writes sent before them (a kill's DEAD, then a lookup).
    this.route(routes, 'getActor', (body) => this.actorSteps.run(async () => (await this.actors.get(body.actorId)) ?? null));
    this.route(routes, 'getNamedActor', (body) => this.getNamedActor(body));
    this.route(routes, 'listActors', async (body) => {
      const all = await this.actors.all();
      return body.namespace === undefined ? all : all.filter((actor) => actor.namespace === body.namespace);
    });
    this.route(routes, 'addJob', (body, peer) => this.addJob(body, peer));
    this.route(routes, 'finishJob', (body) => this.jobSteps.run(async () => ({ found: await this.finishJob(body.jobId) })));
    this.route(routes, 'listJobs', async () => (await this.jobs.all()).sort((a, b) => a.jobId - b.jobId));
    this.route(routes, 'kvPut', (body) => this.kvPut(body));
    this.route(routes, 'kvGet', async (body) => {
      const value = await this.store.get(kvTable(body.namespace), body.key);
      return value instanceof Uint8Array ? value : null;
    });
    this.route(routes, 'kvDel', async (body) => ({ deleted: await this.store.delete(kvTable(body.namespace), body.key) }));
    this.route(routes, 'kvKeys', async (body) => {
      const keys = [...(await this.store.getAll(kvTable(body.namespace))).keys()];
      return keys.filter((key) => key.startsWith(body.prefix)).sort();
    });
    this.route(routes, 'subscribe', async (body, peer) => {
      if (peer.isClosed) return null;
      this.watch(peer);
      for (const channel of body.channels) this.subscribers.get(channel)?.add(peer);
      // A new subscriber to the view gets it soon, not only at the next change.
      if (body.channels.includes('resources')) this.resourcesChanged();
      return null;
    });
    this.route(routes, 'getClusterResources', () => this.nodeSteps.run(async () => sum((await this.nodes.all()).filter(counts).map((node) => node.resources))));
    this.route(routes, 'getAvailableResources', () =>
      this.nodeSteps.run(async () => sum((await this.nodes.all()).filter(counts).map((node) => node.available))),
    );
    // state API (helper state)
    this.route(routes, 'askNodes', (body) => this.askNodes(body));
    this.route(routes, 'getClusterInfo', () => ({ clusterId: this.clusterId, ...(this.headNodeId === undefined ? {} : { headNodeId: this.headNodeId }) }));
    routes.on('reportResources', parseNotify('reportResources'), (body, peer) => {
      this.nodeSteps.run(() => this.reportResources(body, peer)).catch(this.onError);
    });
    // ---- task events (helper events) ----
    routes.on('addTaskEvents', parseNotify('addTaskEvents'), (body) => this.taskEvents.add(body));
    this.route(routes, 'listTaskEvents', (body) => this.taskEvents.list(body));
    this.route(routes, 'getTaskEvents', (body) => this.taskEvents.get(body.taskId));
    this.route(routes, 'taskMetrics', () => this.taskEvents.metrics());
    this.route(routes, 'listCoreEvents', () => this.taskEvents.coreEvents());
    // ---- placement groups (helper pg) ----
    this.route(routes, 'createPlacementGroup', (body) => this.placementGroups.create(body));
    this.route(routes, 'removePlacementGroup', (body) => this.placementGroups.remove(body.placementGroupId));
    this.route(routes, 'getPlacementGroup', (body) => this.placementGroups.find(body.placementGroupId));
    this.route(routes, 'getNamedPlacementGroup', (body) => this.placementGroups.findNamed(body.name, body.namespace));
    this.route(routes, 'listPlacementGroups', () => this.placementGroups.all());
    routes.handle('waitPlacementGroup', parseBody('waitPlacementGroup'), (body, _peer, signal) => this.placementGroups.wait(body.placementGroupId, body.timeoutMs, signal));
  }

  /**
   * What the GCS does when a connection closes: the nodes registered over it are dead, the jobs
   * whose driver it was are finished, and it is no longer a subscriber. Called by the peer's
   * onClose for every peer that registered, added a job or subscribed; calling it again is harmless.
   */
  peerClosed(peer: GcsPeer): void {
    // Connections closed by this GCS's own end (the head stopping) are not nodes dying: a head
    // restarted on the same store finds them alive, and they come back to it.
    if (this.closed) return;
    for (const set of this.subscribers.values()) set.delete(peer);
    for (const [nodeId, holder] of this.nodePeers) {
      if (holder !== peer) continue;
      this.nodePeers.delete(nodeId);
      this.stopHealthChecks(nodeId);
      this.nodeSteps
        .run(async () => {
          // A registration queued before this step, over another connection, is the node's now.
          if (!this.nodePeers.has(nodeId)) await this.markDead(nodeId, 'its connection to the GCS closed');
        })
        .catch(this.onError);
    }
    for (const [jobId, holder] of this.jobPeers) {
      if (holder !== peer) continue;
      this.jobPeers.delete(jobId);
      this.jobSteps.run(() => this.finishJob(jobId)).catch(this.onError);
    }
  }

  /** Stops publishing (the pending resource view is dropped); the tables stay in the store. */
  close(): void {
    this.closed = true;
    for (const timer of this.healthTimers.values()) clearTimeout(timer);
    this.healthTimers.clear();
    clearTimeout(this.graceTimer);
    clearTimeout(this.resourceTimer);
    this.resourceTimer = undefined;
    for (const set of this.subscribers.values()) set.clear();
  }

  private route<M extends GcsMethod>(
    routes: GcsRoutes,
    method: M,
    handler: (body: Body<M>, peer: GcsPeer) => Answer<M> | Promise<Answer<M>>,
  ): void {
    routes.handle(method, parseBody(method), (body, peer) => handler(body, peer));
  }

  private watch(peer: GcsPeer): void {
    if (this.watched.has(peer)) return;
    this.watched.add(peer);
    peer.onClose(() => this.peerClosed(peer));
  }

  // ---- nodes ----------------------------------------------------------------------------------

  private registerNode(body: Body<'registerNode'>, peer: GcsPeer): Promise<Answer<'registerNode'>> {
    return this.nodeSteps.run(async () => {
      // Death is final: a node the table has as dead (back from a partition, or reconnecting after
      // its connection was closed) is told so instead of coming back as a zombie of itself.
      const known = await this.nodes.get(body.nodeId);
      // (Its connection is left to it: it is not the node's, so nothing it sends is taken as the node's.)
      if (known !== undefined && !known.alive) return this.deadAnswer(known);
      // Fields are copied one by one: what else the body carried is not stored.
      const node: NodeInfo = {
        nodeId: body.nodeId,
        alive: true,
        address: body.address,
        resources: { ...body.resources },
        available: { ...body.resources },
        isDriver: body.isDriver,
      };
      await this.nodes.put(node.nodeId, node);
      if (peer.isClosed) {
        await this.markDead(node.nodeId, 'its connection to the GCS closed');
      } else {
        this.nodePeers.set(node.nodeId, peer);
        this.watch(peer);
        // Drivers are not checked: their main thread runs user code, which may hold it for long.
        // A driver's death is its connection closing (see startHealthChecks).
        if (!node.isDriver) this.startHealthChecks(node.nodeId, peer);
        if (this.awaitingNodes.delete(node.nodeId)) this.reclaimJobs(node.nodeId, peer);
        this.publish('nodes', { event: 'added', node });
        this.resourcesChanged();
      }
      return { clusterId: this.clusterId, nodes: await this.nodes.all() };
    });
  }

  /** A driver from before a restart is back: its running jobs end when this connection closes. */
  private reclaimJobs(nodeId: NodeIdHex, peer: GcsPeer): void {
    for (const [jobId, driver] of this.awaitingJobs) {
      if (driver !== nodeId) continue;
      this.awaitingJobs.delete(jobId);
      this.jobPeers.set(jobId, peer);
    }
  }

  private async reportResources(body: ReportResources, peer: GcsPeer): Promise<void> {
    // Only the connection a node registered over speaks for it: a report that arrives over a
    // stale connection (the node re-registered) or for a dead node is dropped.
    if (this.nodePeers.get(body.nodeId) !== peer) return;
    const node = await this.nodes.get(body.nodeId);
    if (node === undefined || !node.alive) return;
    // A node's totals change as placement groups' bundles come and go (helper pg).
    await this.nodes.put(node.nodeId, { ...node, available: { ...body.available }, ...(body.resources === undefined ? {} : { resources: { ...body.resources } }) });
    this.resourcesChanged();
  }

  /** Marks a node dead and tells the subscribers; false if there is no such node. */
  private async markDead(nodeId: NodeIdHex, reason: string): Promise<boolean> {
    const node = await this.nodes.get(nodeId);
    if (node === undefined) return false;
    this.nodePeers.delete(nodeId);
    this.stopHealthChecks(nodeId);
    this.awaitingNodes.delete(nodeId);
    if (!node.alive) return true;
    const dead: NodeInfo = { ...node, alive: false, deathReason: reason };
    await this.nodes.put(nodeId, dead);
    this.publish('nodes', { event: 'dead', node: dead });
    this.resourcesChanged();
    // Not awaited: the actor steps wait behind actor writes, and node steps must not wait on them.
    this.actorSteps.run(() => this.actorsOfDeadNode(nodeId)).catch(this.onError);
    this.placementGroups.nodeDied(nodeId);
    return true;
  }

  private deadAnswer(node: NodeInfo): NodeDead {
    return { dead: true, nodeId: node.nodeId, reason: node.deathReason ?? 'it was declared dead' };
  }

  /**
   * Checks a node over the connection it registered on until it is dead or that connection no
   * longer speaks for it: a check every periodMs (one at a time), answered within timeoutMs, and
   * failureThreshold missed in a row make it dead. Only a check that timed out counts as missed:
   * any answer, even an error, comes from a live main thread; a closed connection is handled by
   * peerClosed. A check whose timer fired much later than due (this process's event loop was held
   * up, so the answer may be waiting unread) proves nothing and does not count.
   *
   * Drivers are not checked (their main thread runs user code). A driver's death is its
   * connection closing: at once when its process ends (even SIGKILL), and for a driver host that
   * is cut off, when TCP gives up on the connection (keepalive on the GCS's sockets, see net's tcp.ts).
   */
  private startHealthChecks(nodeId: NodeIdHex, peer: GcsPeer): void {
    this.stopHealthChecks(nodeId);
    const { periodMs, timeoutMs, failureThreshold } = this.health;
    let missed = 0;
    const current = (): boolean => !this.closed && !peer.isClosed && this.nodePeers.get(nodeId) === peer;
    const check = (): void => {
      if (!current()) return;
      const sentAt = performance.now();
      const abort = new AbortController();
      let settled = false;
      const next = (): void => {
        if (!current()) return;
        const timer = setTimeout(check, Math.max(0, periodMs - (performance.now() - sentAt)));
        timer.unref();
        this.healthTimers.set(nodeId, timer);
      };
      const answered = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timeout);
        missed = 0;
        next();
      };
      const timeout = setTimeout(() => {
        if (settled) return;
        settled = true;
        abort.abort();
        const late = performance.now() - sentAt > 2 * timeoutMs + 100;
        if (!late) missed++;
        if (missed < failureThreshold) return next();
        const reason = `it missed ${missed} health checks in a row (each given ${timeoutMs} ms, every ${periodMs} ms)`;
        this.nodeSteps.run(() => this.declareDead(nodeId, peer, reason)).catch(this.onError);
      }, timeoutMs);
      timeout.unref();
      this.healthTimers.set(nodeId, timeout);
      // Any answer shows a live main thread; a rejection because the connection closed is peerClosed's.
      peer.request(HEALTH_CHECK, {}, { signal: abort.signal }).then(answered, () => {
        if (!abort.signal.aborted) answered();
      });
    };
    check();
  }

  private stopHealthChecks(nodeId: NodeIdHex): void {
    clearTimeout(this.healthTimers.get(nodeId));
    this.healthTimers.delete(nodeId);
  }

  /** A node that stopped answering: dead, published, told (if it can still hear) and cut off. */
  private async declareDead(nodeId: NodeIdHex, peer: GcsPeer, reason: string): Promise<void> {
    // Re-registered over another connection meanwhile: that one speaks for it now.
    if (this.nodePeers.get(nodeId) !== peer) return;
    await this.markDead(nodeId, reason);
    const node = await this.nodes.get(nodeId);
    if (node !== undefined) {
      try {
        peer.notify(NODE_DEAD, this.deadAnswer(node));
      } catch {
        // It cannot take a message: closing is all that is left.
      }
    }
    peer.close(`the GCS declared node ${nodeId} dead: ${reason}`);
  }

  // ---- actors ---------------------------------------------------------------------------------

  private registerActor(body: Body<'registerActor'>): Promise<Answer<'registerActor'>> {
    return this.actorSteps.run(async () => {
      // A registration sent again (a retried request) finds its entry: the first one stands.
      if ((await this.actors.get(body.actorId)) !== undefined) return { ok: true };
      if (body.name !== undefined) {
        const key = nameKey(body.namespace, body.name);
        const holder = await this.names.get(key);
        if (holder !== undefined) {
          const other = await this.actors.get(holder);
          if (other !== undefined && other.state !== 'DEAD') return { ok: false, reason: 'name-taken', holder: other };
        }
        await this.names.put(key, body.actorId);
      }
      const actor: ActorEntry = {
        actorId: body.actorId,
        ...(body.name !== undefined ? { name: body.name } : {}),
        namespace: body.namespace,
        className: body.className,
        methodNames: [...body.methodNames],
        nodeId: body.nodeId,
        ownerNodeId: body.ownerNodeId,
        state: 'PENDING_CREATION',
        detached: body.detached ?? false,
        maxRestarts: body.maxRestarts ?? 0,
        numRestarts: 0,
        maxTaskRetries: body.maxTaskRetries ?? 0,
        ...(body.methodOptions === undefined ? {} : { methodOptions: body.methodOptions }),
        ...(body.generatorMethods === undefined ? {} : { generatorMethods: body.generatorMethods }),
      };
      await this.actors.put(actor.actorId, actor);
      this.publish('actors', { actor });
      return { ok: true };
    });
  }

  private updateActor(body: Body<'updateActor'>): Promise<Answer<'updateActor'>> {
    return this.actorSteps.run(async () => {
      const actor = await this.actors.get(body.actorId);
      if (actor === undefined) return null;
      // DEAD is final (as in Ray): a late ALIVE from a node that did not hear of the kill changes nothing.
      if (actor.state === 'DEAD') return actor;
      if (body.state === 'ALIVE') {
        // From the instance's node: one the GCS declared dead speaks for an instance that is gone.
        const host = body.nodeId === undefined ? undefined : await this.nodes.get(body.nodeId);
        if (host === undefined || !host.alive) return actor;
      }
      // Only the GCS moves a row to RESTARTING; a restarter only says where it sent the restart.
      if (body.state === 'RESTARTING' && actor.state !== 'RESTARTING') return actor;
      return this.putActor({
        ...actor,
        state: body.state,
        nodeId: body.nodeId ?? actor.nodeId,
        numRestarts: Math.max(actor.numRestarts, body.numRestarts ?? 0),
        ...(body.reason !== undefined ? { reason: body.reason } : {}),
      });
    });
  }

  /** Stores an actor's row (freeing its name once DEAD) and publishes it. */
  private async putActor(updated: ActorEntry): Promise<ActorEntry> {
    await this.actors.put(updated.actorId, updated);
    if (updated.state === 'DEAD' && updated.name !== undefined) {
      const key = nameKey(updated.namespace, updated.name);
      if ((await this.names.get(key)) === updated.actorId) await this.names.delete(key);
    }
    this.publish('actors', { actor: updated });
    return updated;
  }

  /**
   * A node died (Ray's GcsActorManager::OnNodeDead): the actors it hosted restart while their
   * restarts last (their restarter, the owner's node or for detached ones the head's, places them
   * again when it sees RESTARTING), else are DEAD; and the non-detached actors whose owner was
   * there end with it, wherever they run.
   */
  private async actorsOfDeadNode(nodeId: NodeIdHex): Promise<void> {
    const deadNodes = new Set((await this.nodes.all()).filter((node) => !node.alive).map((node) => node.nodeId));
    for (const actor of await this.actors.all()) {
      if (actor.state === 'DEAD') continue;
      const short = nodeId.slice(0, 8);
      if (!actor.detached && deadNodes.has(actor.ownerNodeId) && (actor.ownerNodeId === nodeId || actor.nodeId === nodeId)) {
        await this.putActor({ ...actor, state: 'DEAD', reason: `its owner's node ${actor.ownerNodeId.slice(0, 8)} died (an actor that is not detached ends with its owner)` });
      } else if (actor.nodeId !== nodeId) {
        continue;
      } else if (actor.maxRestarts < 0 || actor.numRestarts < actor.maxRestarts) {
        await this.putActor({ ...actor, state: 'RESTARTING', numRestarts: actor.numRestarts + 1 });
      } else {
        const restarts = actor.numRestarts > 0 ? ` after ${actor.numRestarts} restart(s)` : '';
        await this.putActor({ ...actor, state: 'DEAD', reason: `its node ${short} died${restarts}, and it has no restarts left (maxRestarts: ${actor.maxRestarts})` });
      }
    }
  }

  private getNamedActor(body: Body<'getNamedActor'>): Promise<Answer<'getNamedActor'>> {
    return this.actorSteps.run(() => this.findNamedActor(body));
  }

  private async findNamedActor(body: Body<'getNamedActor'>): Promise<Answer<'getNamedActor'>> {
    const holder = await this.names.get(nameKey(body.namespace, body.name));
    if (holder === undefined) return null;
    const actor = await this.actors.get(holder);
    return actor === undefined || actor.state === 'DEAD' ? null : actor;
  }

  // ---- jobs -----------------------------------------------------------------------------------

  private async addJob(body: Body<'addJob'>, peer: GcsPeer): Promise<Answer<'addJob'>> {
    const jobId = await this.store.nextJobId();
    const job: JobEntry = { jobId, driverNodeId: body.driverNodeId, startTimeMs: Date.now(), ...(body.submissionId === undefined ? {} : { submissionId: body.submissionId }) };
    await this.jobSteps.run(() => this.jobs.put(String(jobId), job));
    if (peer.isClosed) {
      await this.jobSteps.run(() => this.finishJob(jobId));
    } else {
      this.jobPeers.set(jobId, peer);
      this.watch(peer);
    }
    return { jobId };
  }

  /** False if there is no such job; finishing a finished job keeps its first end time. */
  private async finishJob(jobId: number): Promise<boolean> {
    this.jobPeers.delete(jobId);
    const job = await this.jobs.get(String(jobId));
    if (job === undefined) return false;
    if (job.endTimeMs === undefined) await this.jobs.put(String(jobId), { ...job, endTimeMs: Date.now() });
    return true;
  }

  // ---- state API (helper state) ---------------------------------------------------------------

  /**
   * The fan-out of the state API: `nodeState { what, body }` to each alive registered node (or
   * those of `nodeIds`) over the connection it registered on, as the health check goes, each given
   * `timeoutMs`. A node that does not answer in time, answers with an error or whose connection
   * closes is in `partial`, as is a node asked for by ID that is not alive, and a node a restarted
   * GCS still waits for: the asker gets what the others said, never a hang. A node that answered
   * with an error is also in `errors` with what it said, so that the asker does not report it as
   * one that did not answer in time.
   */
  private async askNodes(body: Body<'askNodes'>): Promise<Answer<'askNodes'>> {
    const timeoutMs = body.timeoutMs ?? DEFAULT_ASK_NODES_TIMEOUT_MS;
    const wanted = body.nodeIds === undefined ? undefined : new Set(body.nodeIds);
    const partial: NodeIdHex[] = [];
    const errors: { nodeId: NodeIdHex; message: string }[] = [];
    const asked: Promise<{ nodeId: NodeIdHex; answer: unknown } | undefined>[] = [];
    for (const [nodeId, peer] of this.nodePeers) {
      if (wanted !== undefined && !wanted.has(nodeId)) continue;
      const query = body.body === undefined ? { what: body.what } : { what: body.what, body: body.body };
      asked.push(
        peer.request(NODE_STATE, query, { timeoutMs }).then(
          (answer) => ({ nodeId, answer }),
          (error: unknown) => {
            partial.push(nodeId);
            const answered = !(error instanceof RequestTimeoutError || error instanceof ConnectionError || error instanceof RequestCancelledError);
            if (answered) errors.push({ nodeId, message: error instanceof Error ? error.message : String(error) });
            return undefined;
          },
        ),
      );
    }
    for (const nodeId of wanted ?? this.awaitingNodes) if (!this.nodePeers.has(nodeId)) partial.push(nodeId);
    const answers = (await Promise.all(asked)).filter((answer) => answer !== undefined);
    return { answers, partial, ...(errors.length === 0 ? {} : { errors }) };
  }

  // ---- kv -------------------------------------------------------------------------------------

  private kvPut(body: Body<'kvPut'>): Promise<Answer<'kvPut'>> {
    const table = kvTable(body.namespace);
    return this.kvSteps.run(async () => {
      const exists = (await this.store.get(table, body.key)) !== undefined;
      if (exists && !body.overwrite) return { added: false };
      await this.store.put(table, body.key, body.value);
      return { added: !exists };
    });
  }

  // ---- pubsub ---------------------------------------------------------------------------------

  private publish<C extends Channel>(channel: C, message: ChannelMessage[C]): void {
    if (this.closed) return;
    const peers = this.subscribers.get(channel);
    if (peers === undefined) return;
    for (const peer of peers) {
      if (peer.isClosed) {
        peers.delete(peer);
        continue;
      }
      try {
        peer.notify(PUBLISH, { channel, message });
      } catch {
        // A connection that cannot take a message is closing: the next publishes skip it.
        peers.delete(peer);
      }
    }
  }

  /**
   * Schedules the resource view: at most one per resourceBatchMs, so a burst of reports from many
   * nodes costs each subscriber one message. The timer does not keep the process alive.
   */
  private resourcesChanged(): void {
    this.placementGroups.resourcesChanged();
    if (this.closed || this.resourceTimer !== undefined || this.subscribers.get('resources')?.size === 0) return;
    const delayMs = Math.max(0, this.lastResourcePublishMs + this.resourceBatchMs - performance.now());
    this.resourceTimer = setTimeout(() => {
      this.resourceTimer = undefined;
      this.lastResourcePublishMs = performance.now();
      this.publishResourceView().catch(this.onError);
    }, delayMs);
    this.resourceTimer.unref();
  }

  private async publishResourceView(): Promise<void> {
    const nodes = await this.nodes.all();
    const view: ResourceView = {
      nodes: nodes.filter((node) => node.alive).map((node) => ({ nodeId: node.nodeId, resources: node.resources, available: node.available })),
    };
    this.publish('resources', view);
  }
}
