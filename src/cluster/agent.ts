/**
 * A node's agent in its cluster (the part of Ray's raylet that talks to other raylets and to the
 * GCS): it registers the node with the GCS and keeps the cluster's view (nodes and their free
 * resources, by pubsub), places tasks and actors on nodes, sends them there and takes their
 * results back, reaches actors on other nodes, pulls objects held elsewhere in chunks, and keeps
 * the reference counts of objects that cross nodes (what an owner keeps for a holder, what a
 * borrower holds of an owner's).
 *
 * Placement, as Ray's hybrid policy: a task runs on its own node while that node is less than
 * half busy; past that, on one of the least-loaded nodes that can run it (chosen at random among
 * the best few, so that many submitters do not all pick the same node). SPREAD goes round the
 * nodes; { nodeId, soft } names one. A node that is sent what it cannot run (its view was stale)
 * refuses it, and the sender places it again elsewhere (spillback).
 */
import { Packr } from 'msgpackr';
import { ActorDiedError, ConnectionError, GcsUnavailableError, InvalidOptionError, MinirayError, NodeDiedError, ObjectLostError, ObjectStoreFullError } from '../errors/index.js';
import { CANCEL_BUNDLES, COMMIT_BUNDLES, PLACEMENT_GROUP_REMOVED, PREPARE_BUNDLES, parseBundleIndices, parsePlacementGroupRef, parsePrepareBundles } from '../gcs/index.js';
import { groupsIn } from '../placement-group/resources.js';
import { HEALTH_CHECK, NODE_DEAD, NODE_STATE, parseNodeDead, parseNodeStateQuery, type ActorEntry, type GcsClient, type NodeInfo, type NodeIdHex, type ActorIdHex } from '../gcs/index.js';
import { RawBytes, type Peer, type Router } from '../net/index.js';
import type { Block } from '../object-store/index.js';
import { demandOf, ownerDiedError, PACKAGES, type ClusterLink, type ForwardedLogLine, type Node, type RemoteWork } from '../node/index.js';
import type { ObjectEntry } from '../ownership/index.js';
import { aFunctionDescriptor } from '../protocol/check.js';
import { PLACEMENT_GROUP_GCS_METHODS, STATE_GCS_METHODS, type ActorInfo, type ActorSpec, type ClusterAnswer, type ClusterQuery, type GcsQuery, type RemoteValue, type ResourceMap, type TaskSpec } from '../protocol/index.js';
import { answerNodeState } from '../state/node-state.js';
import { withoutEnvVars } from '../state/client.js';
import { JOB_SUBMISSIONS } from '../state/types.js';
import { encodeError, type FunctionDescriptor } from '../serialization/index.js';
import { formatLogLine } from '../state/log-lines.js';
import { answers, parse } from './messages.js';
import { generatorItemId } from '../object-ref/generator.js';

/** The GCS KV namespace of function and actor class definitions (Ray's function table). */
const FUNCTIONS = 'fun';
const functionCodec = new Packr({ useRecords: false });

function decodeFunction(bytes: Uint8Array): FunctionDescriptor | undefined {
  try {
    return aFunctionDescriptor(functionCodec.unpack(bytes));
  } catch {
    return undefined; // a malformed entry: as if there were none
  }
}

/** Values up to this size go inline to their owner (Ray: 100 KiB); larger ones stay where they were made. */
export const INLINE_LIMIT = 100 * 1024;
/** Objects move between nodes in chunks of this size (as Ray's), with a few in flight per pull. */
export const CHUNK_BYTES = 5 * 1024 * 1024;
const CHUNKS_IN_FLIGHT = 4;
/** Copies of a borrowed object tried (each named by its owner) before it fails as lost. */
const COPY_ATTEMPTS = 3;
/** Below this share of its CPUs in use, a node runs its own tasks (Ray's scheduler_spread_threshold). */
const SPREAD_THRESHOLD = 0.5;
/** Free resources are reported to the GCS at most this often. */
const REPORT_INTERVAL_MS = 100;
/** Calls to an actor whose node was lost ask the GCS this often for its next instance (besides the `actors` channel). */
const RELOCATE_POLL_MS = 1000;
/** How long after a node's connection was lost the GCS is asked whether it lives (see nodeUnreachable). */
const UNREACHABLE_RECHECK_MS = 2000;
/** The GCS KV namespace of detached actors' creation records (what the head's node restarts them from). */
const CREATIONS = 'actor';

export interface AgentOptions {
  readonly node: Node;
  /** Connects to another node's listener (with the cluster's token and TLS settings). */
  readonly connect: (address: string) => Promise<Peer>;
  /** False in the embedded default: no node can join, so what cannot run here fails at once. */
  readonly canGrow: boolean;
  /** This node restarts detached actors whose node died (the head's: the GCS keeps their creation). */
  readonly restartsDetached?: boolean;
}

interface View {
  info: NodeInfo;
  available: ResourceMap;
  /** CPUs of tasks this node sent there that have not come back (the view lags behind them). */
  sentCpus: number;
  /**
   * CPUs of actors this node placed there that its reports do not show yet. An actor never
   * "comes back" as a task does, so they count until a report shows its CPUs changed.
   */
  actorCpus: number;
}

/** A node's connection, with the function definitions sent over it. */
interface PeerLink {
  readonly peer: Promise<Peer>;
  readonly knownFunctions: Set<string>;
}

export class ClusterAgent implements ClusterLink {
  readonly canGrow: boolean;
  private readonly node: Node;
  private gcsClient: GcsClient | undefined;
  private readonly self: string;
  private readonly views = new Map<string, View>();
  private readonly links = new Map<string, PeerLink>();
  /** Where each actor of another node is (or a promise of it, while the GCS is asked). */
  private readonly actorNodes = new Map<string, string | Promise<string | undefined>>();
  /** Calls to each remote actor waiting for its node to be known, in order. */
  private readonly actorCallQueues = new Map<string, ActorCall[]>();
  /** Tasks no node can run now: they wait for one that can (a node may join). */
  private readonly parked: { work: RemoteWork; canRunHere: boolean }[] = [];
  /** Copies being made here, by object: who waits for each. */
  private readonly copying = new Map<string, (() => void)[]>();
  /** Objects leased for other nodes' pulls. */
  private readonly pulls = new Map<number, { read: { parts: Uint8Array[]; release(): void }; peer: Peer }>();
  private nextPull = 1;
  /** Objects this node keeps for owners on other nodes, by owner node and owner worker. */
  private readonly keptFor = new Map<string, Map<string, Set<string>>>();
  private spreadNext = 0;
  private reportTimer: NodeJS.Timeout | undefined;
  private lastReported = '';
  private stopped = false;
  /** Nodes the GCS reported dead: a new connection of one is no link, and work it sends is refused. */
  private readonly deadNodes = new Set<string>();
  /** Work sent to each node and not back: a death fails it at once, whatever its connection does. */
  private readonly inFlight = new Map<string, Set<(error: NodeDiedError) => void>>();
  /** Set once the GCS said this node is dead: why. */
  private deathReason: string | undefined;
  private onDeclaredDead!: (reason: string) => void;
  /**
   * Resolves, with the GCS's reason, if the GCS declares this node dead (it missed health checks
   * while cut off, or was unregistered): the node must not go on as itself (a `miniray start`
   * node exits; a driver's remote work fails with NodeDiedError).
   */
  readonly declaredDead = new Promise<string>((resolve) => (this.onDeclaredDead = resolve));

  constructor(private readonly options: AgentOptions) {
    this.node = options.node;
    this.self = options.node.nodeId;
    this.canGrow = options.canGrow;
  }

  /**
   * A connection another node opened to this one (or this node's own to the head) serves as the
   * link to that node too: one connection per pair of nodes, used both ways.
   */
  adopt(peer: Peer): void {
    const nodeId = peer.hello.nodeId;
    // A dead node back from a partition is not a link (nothing is sent to it, no work is taken from
    // it: see executeTask). Its connection is not closed here: on the head it may be asking the
    // GCS to register again, and is to be answered that it is dead.
    if (nodeId === this.self || this.links.has(nodeId) || peer.hello.role === 'cli' || this.deadNodes.has(nodeId)) return;
    const link = { peer: Promise.resolve(peer), knownFunctions: new Set<string>() };
    this.links.set(nodeId, link);
    peer.onClose(() => {
      if (this.links.get(nodeId) === link) this.links.delete(nodeId);
      this.nodeUnreachable(nodeId);
      this.peerGone(nodeId);
    });
  }

  private get gcs(): GcsClient {
    if (this.gcsClient === undefined) throw new Error('the cluster agent was used before join()');
    return this.gcsClient;
  }

  /**
   * Registers the node with the GCS (at `address`, where other nodes reach it), learns the
   * cluster, and starts reporting this node's free resources.
   */
  async join(gcs: GcsClient, address: string, isDriver: boolean): Promise<void> {
    this.gcsClient = gcs;
    const resources = { CPU: this.node.options.numCpus, ...this.node.options.resources };
    this.gcs.onPublish('nodes', ({ event, node }) => {
      if (event === 'added') this.addNode(node);
      else if (node.nodeId === this.self) this.diedHere(node.deathReason ?? 'the GCS published this node as dead');
      else this.removeNode(node.nodeId);
    });
    this.gcs.onPublish('resources', ({ nodes }) => {
      for (const { nodeId, available, resources } of nodes) {
        const view = this.views.get(nodeId);
        if (view === undefined) continue;
        if (view.actorCpus > 0 && available['CPU'] !== view.available['CPU']) view.actorCpus = 0;
        view.available = available;
        // Totals change as placement groups' bundles come and go (helper pg).
        view.info = { ...view.info, resources };
      }
      this.unpark();
      this.unparkActors();
    });
    this.gcs.onPublish('actors', ({ actor }) => this.actorSeen(actor));
    this.registration = { nodeId: this.self as NodeIdHex, address, resources, isDriver };
    await this.registerWith(this.gcs);
    this.reportTimer = setInterval(() => this.report(), REPORT_INTERVAL_MS);
    this.reportTimer.unref();
  }

  /** The cluster this node joined: a GCS that answers with another ID after a reconnect is not it. */
  private clusterId: string | undefined;

  /** What join() registered, sent again as it was by rejoin(). */
  private registration: Parameters<GcsClient['registerNode']>[0] | undefined;

  /**
   * The GCS is back after its connection closed (the head was restarted on its Redis): registers
   * this node again under the same ID, over `via` (the new connection, before other requests go
   * on), subscribes again and reports its resources again. A GCS that stayed up marked this node
   * dead when the connection closed, and answers NodeDead: then this node ends (registerWith).
   */
  async rejoin(via: GcsClient): Promise<void> {
    if (this.registration === undefined) throw new Error('the cluster agent rejoined before join()');
    await this.registerWith(via);
    this.lastReported = '';
    this.report(via);
  }

  private async registerWith(via: GcsClient): Promise<void> {
    const registered = await via.registerNode(this.registration as Parameters<GcsClient['registerNode']>[0]);
    if ('dead' in registered) {
      // Declared dead while away (cut off past the health checks): it must not come back as a
      // zombie of itself. Not retried by the GCS link: this node ends.
      this.diedHere(registered.reason);
      throw new NodeDiedError(`the GCS refused node ${this.self}: it declared it dead (${registered.reason}); start a new node instead`);
    }
    if (this.clusterId !== undefined && registered.clusterId !== this.clusterId) {
      // A head restarted without its Redis (or another cluster on that port): nothing this node
      // holds (objects, actors, tasks of the cluster before) means anything there.
      throw new MinirayError(
        `the GCS that answers now is another cluster (ID ${registered.clusterId.slice(0, 8)}, not ${this.clusterId.slice(0, 8)}): ` +
          'its head was restarted without --redis-address, so it kept nothing of this cluster; start this node again to join the new one',
      );
    }
    this.clusterId = registered.clusterId;
    for (const info of registered.nodes) {
      const known = this.views.has(info.nodeId) || this.unreachable.delete(info.nodeId);
      // Nodes known already keep their views (what was sent there is counted in them); one the
      // GCS has found dead while this node was away from it (the head node before a restart) goes.
      if (info.alive && !this.views.has(info.nodeId)) this.addNode(info);
      else if (!info.alive && info.nodeId !== this.self && known) this.removeNode(info.nodeId);
    }
    await via.subscribe(['nodes', 'resources', 'actors']);
    // Rows that changed while this node was not subscribed are read once: a GCS restarted on Redis
    // marks the head node from before dead (its actors RESTARTING) before anyone subscribes, and
    // a DEAD published while this node's link reconnected is gone. Their restarts and callers must
    // not wait for a message nobody will send again.
    for (const actor of await via.listActors()) if (actor.state !== 'ALIVE') this.actorSeen(actor);
  }

  /** Nodes whose connection closed or could not be made, out of the views until the GCS says what became of them. */
  private readonly unreachable = new Map<string, NodeInfo>();

  /**
   * The connection to `nodeId` closed, or could not be made (a process killed a moment ago, which
   * the GCS may not have declared dead yet; or the head, whose node was on the GCS's connection).
   * Nothing is placed there meanwhile: each task sent there again would spend a retry on it. The
   * GCS has the last word: its death event removes it for good, and if, asked a little later, the
   * GCS still lists it alive (a connection lost while the node lives), it is placed on again.
   */
  nodeUnreachable(nodeId: string): void {
    const view = this.views.get(nodeId);
    if (nodeId === this.self || view === undefined || this.stopped) return;
    this.views.delete(nodeId);
    this.unreachable.set(nodeId, view.info);
    setTimeout(() => {
      if (!this.unreachable.has(nodeId) || this.stopped) return;
      this.gcs.getNodes().then(
        (nodes) => {
          const row = nodes.find((n) => n.nodeId === nodeId);
          if (!this.unreachable.delete(nodeId)) return;
          if (row?.alive === true) this.addNode(row);
        },
        () => this.unreachable.delete(nodeId),
      );
    }, UNREACHABLE_RECHECK_MS).unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.reportTimer !== undefined) clearInterval(this.reportTimer);
    for (const link of this.links.values()) void link.peer.then((peer) => peer.close('node shut down'), () => {});
    this.links.clear();
    for (const { read } of this.pulls.values()) read.release();
    this.pulls.clear();
  }

  isDead(nodeId: string): boolean {
    return this.deadNodes.has(nodeId);
  }

  /** The other nodes this node knows to be alive. */
  get otherNodes(): number {
    return this.views.size - (this.views.has(this.self) ? 1 : 0);
  }

  get alone(): boolean {
    return this.otherNodes === 0;
  }

  private addNode(info: NodeInfo): void {
    if (!info.alive) return;
    this.unreachable.delete(info.nodeId);
    this.views.set(info.nodeId, { info, available: info.available, sentCpus: 0, actorCpus: 0 });
    this.unpark();
    this.unparkActors();
  }

  private removeNode(nodeId: string): void {
    // First: what reacts below (lineage reruns, actor restarts) must not pick the dead node, nor
    // read copies there (Node asks isDead).
    this.deadNodes.add(nodeId);
    this.views.delete(nodeId);
    this.unreachable.delete(nodeId);
    this.node.ownerLeft(nodeId);
    this.node.remoteObjects.nodeDied(nodeId);
    this.actorsLost(nodeId);
    const link = this.links.get(nodeId);
    this.links.delete(nodeId);
    void link?.peer.then((peer) => peer.close('the GCS reports the node dead'), () => {});
    // Last: the work it fails over is placed again, on the nodes left.
    this.nodeDied(nodeId);
  }

  /**
   * Another node is dead (the GCS's event): work sent there fails over now, to be retried
   * elsewhere within its maxRetries (the same path as a closed connection), not when, if ever, its
   * connection gives up (a cut-off host's TCP connection can stay open for minutes).
   */
  private nodeDied(nodeId: string): void {
    const sent = this.inFlight.get(nodeId);
    this.inFlight.delete(nodeId);
    for (const lose of sent ?? []) lose(new NodeDiedError(`node ${nodeId.slice(0, 8)} died (the GCS declared it dead) while it ran this task`));
  }

  /**
   * The GCS declared this node dead: it is no longer a member. Work this node sent elsewhere fails
   * with NodeDiedError (those nodes have dropped it), and new work is not sent; the process is
   * told through declaredDead (a `miniray start` node exits). Also for whoever hears it from the
   * GCS another way (registerNode answered NodeDead, e.g. on reconnecting to a restarted GCS).
   */
  diedHere(reason: string): void {
    // Stopping already (a node that unregisters as it stops hears of its own death): nothing to say.
    if (this.deathReason !== undefined || this.stopped) return;
    this.deathReason = reason;
    for (const [nodeId, sent] of this.inFlight) {
      this.inFlight.delete(nodeId);
      for (const lose of sent) lose(this.deadError());
    }
    this.onDeclaredDead(reason);
  }

  private deadError(): NodeDiedError {
    return new NodeDiedError(`this node (${this.self.slice(0, 8)}) was declared dead by the GCS (${this.deathReason}), so it can no longer run work on the cluster; start a new driver or node`);
  }

  private report(via: GcsClient = this.gcs): void {
    const available = this.node.available();
    const totals = this.node.totals();
    const totalsKey = JSON.stringify(totals);
    const key = JSON.stringify(available) + totalsKey;
    if (key === this.lastReported || this.stopped) return;
    this.lastReported = key;
    // Totals only when they changed (placement groups' bundles: helper pg).
    const changed = totalsKey !== this.lastTotals;
    this.lastTotals = totalsKey;
    via.reportResources(this.self as NodeIdHex, available, changed ? totals : undefined);
  }

  private lastTotals = '';

  // ---- placement -------------------------------------------------------------------------------

  takeTask(work: RemoteWork, canRunHere: boolean): boolean {
    if (this.deathReason !== undefined) {
      // No node of the cluster takes work from a dead node (each refusal would cost a retry, for
      // ever with maxRetries -1): it runs here if it can, else fails (not lost(), which retries).
      const pinnedElsewhere = typeof work.spec.strategy === 'object' && !work.spec.strategy.soft && work.spec.strategy.nodeId !== this.self;
      if (canRunHere && !pinnedElsewhere) return false;
      const error = encodeError(this.deadError());
      work.done(work.spec.returnIds.map((id) => ({ id, state: 'failed', data: error })));
      return true;
    }
    // Alone (the embedded default), with no node named: no choice to make.
    if (canRunHere && this.otherNodes === 0 && typeof work.spec.strategy !== 'object') return false;
    const target = this.place(work.spec, canRunHere, false);
    if (target === this.self) return false;
    if (target === undefined) {
      this.park(work, canRunHere);
      return true;
    }
    if (target instanceof Error) {
      work.done(work.spec.returnIds.map((id) => ({ id, state: 'failed', data: encodeError(target) })));
      return true;
    }
    this.send(work, target);
    return true;
  }

  /**
   * The node to run on: this one, another, undefined when none can now (wait), or the error
   * to fail with (hard affinity to a node that cannot run it).
   */
  private place(spec: TaskSpec | ActorSpec, canRunHere: boolean, isActor: boolean): string | undefined | Error {
    const demand = demandOf(spec);
    const strategy = spec.strategy;
    // A detached actor outlives its driver, so it is not placed in one.
    const detached = !('taskId' in spec) && spec.detached === true;
    if (detached && this.views.get(this.self)?.info.isDriver === true) canRunHere = false;
    const feasible = [...this.views.values()].filter(
      (view) => this.fits(view.info.resources, demand) && (view.info.nodeId !== this.self || canRunHere) && !(detached && view.info.isDriver),
    );
    const name = 'taskId' in spec ? `task ${spec.name}` : `actor ${spec.className}`;
    if (typeof strategy === 'object') {
      const view = this.views.get(strategy.nodeId);
      if (view !== undefined && feasible.includes(view)) return strategy.nodeId;
      if (!strategy.soft) {
        const why = view === undefined ? 'is not an alive node of this cluster' : `cannot run it (it has ${describe(view.info.resources)}; it needs ${describe(demand)})`;
        return new InvalidOptionError(
          `${name} has schedulingStrategy { nodeId: '${strategy.nodeId}' }, which ${why}; ` +
            'name a node from nodes() that has the resources, or pass soft: true to let it run elsewhere',
          'schedulingStrategy',
        );
      }
    }
    if (feasible.length === 0) {
      // In a placement group: it waits for its bundle (helper pg), unless the group is gone.
      const groups = groupsIn(spec.resources);
      const removed = groups.find((group) => this.node.removedGroups.has(group));
      if (removed !== undefined) return this.node.groupRemovedError(removed);
      if (this.canGrow || groups.length > 0) return undefined;
      return this.node.infeasibleError(name, spec);
    }
    if (strategy === 'SPREAD') return (feasible[this.spreadNext++ % feasible.length] as View).info.nodeId;
    // A task whose arguments are large goes where most of their bytes are, if it can run there now.
    if (!isActor && spec.dependencies.length > 0) {
      let best: [string, number] | undefined;
      for (const entry of this.node.remoteObjects.bytesByNode(spec.dependencies)) if (best === undefined || entry[1] > best[1]) best = entry;
      if (best !== undefined && best[1] > INLINE_LIMIT) {
        const view = this.views.get(best[0]);
        if (view !== undefined && feasible.includes(view) && (best[0] === this.self ? this.localUse(demand) <= 1 : this.fits(this.free(view), demand))) return best[0];
      }
    }
    // DEFAULT: here while this node is not busy (an actor, where it has the CPUs free).
    if (canRunHere && this.localUse(demand) < SPREAD_THRESHOLD && !(isActor && this.node.options.numCpus === 0)) return this.self;
    const withRoom = feasible.filter((view) => this.fits(this.free(view), demand) && !(isActor && view.info.resources['CPU'] === 0));
    const candidates = withRoom.length > 0 ? withRoom : feasible.filter((view) => !(isActor && view.info.resources['CPU'] === 0));
    if (candidates.length === 0) return (feasible[0] as View).info.nodeId;
    // Nothing free anywhere: a task that can run here waits here.
    if (withRoom.length === 0 && canRunHere && !isActor) return this.self;
    candidates.sort((a, b) => this.use(a) - this.use(b));
    const k = Math.max(1, Math.ceil(candidates.length * 0.2));
    return (candidates[Math.floor(Math.random() * Math.min(k, candidates.length))] as View).info.nodeId;
  }

  private fits(have: ResourceMap, demand: ResourceMap): boolean {
    for (const [name, amount] of Object.entries(demand)) if (amount > 0 && (have[name] ?? 0) + 1e-9 < amount) return false;
    return true;
  }

  /** What a node has free, as this node sees it (its last report, less what was sent there since). */
  private free(view: View): ResourceMap {
    if (view.info.nodeId === this.self) return this.node.available();
    return { ...view.available, CPU: (view.available['CPU'] ?? 0) - view.sentCpus - view.actorCpus };
  }

  private use(view: View): number {
    if (view.info.nodeId === this.self) return this.localUse({});
    const total = view.info.resources['CPU'] ?? 0;
    if (total === 0) return 1;
    return 1 - (this.free(view)['CPU'] ?? 0) / total;
  }

  /** This node's share of CPUs in use, counting its queue, if it took `demand` too. */
  private localUse(demand: ResourceMap): number {
    const total = this.node.options.numCpus;
    if (total === 0) return 1;
    const used = total - (this.node.available()['CPU'] ?? 0) + this.node.queuedTasks + (demand['CPU'] ?? 0);
    return used / total;
  }

  private park(work: RemoteWork, canRunHere: boolean): void {
    this.parked.push({ work, canRunHere });
    // Parked again at each resource report that does not help it: said once.
    if (this.warnedParked.has(work)) return;
    this.warnedParked.add(work);
    if (work.runHere === undefined) warnWaiting(`task ${work.spec.name}`, work.spec, this.nodeTotals());
  }

  /** Every alive node's totals, as the view has them (for the warning of a request no node can meet). */
  private nodeTotals(): ResourceMap[] {
    return [...this.views.values()].filter((view) => !view.info.isDriver || Object.values(view.info.resources).some((amount) => amount > 0)).map((view) => view.info.resources);
  }

  /** Parked tasks already warned of. */
  private readonly warnedParked = new WeakSet<RemoteWork>();

  private unpark(): void {
    if (this.parked.length === 0) return;
    // Parked tasks cannot run here (else they would have), so each goes to a node or parks again.
    for (const { work, canRunHere } of this.parked.splice(0)) {
      // A task in a placement group whose bundle is now here runs here (helper pg).
      if (work.runHere === undefined) this.takeTask(work, canRunHere);
      else if (!this.takeTask(work, this.node.canRun(work.spec))) work.runHere();
    }
  }

  // ---- tasks and actor calls on other nodes ------------------------------------------------------

  private link(nodeId: string): PeerLink | undefined {
    let link = this.links.get(nodeId);
    if (link !== undefined) return link;
    const view = this.views.get(nodeId);
    if (view === undefined) return undefined;
    const peer = this.options.connect(view.info.address);
    // Before the sends' own handlers (attached after these): what they place again does not go here.
    peer.then(
      (connected) =>
        connected.onClose(() => {
          if (this.links.get(nodeId)?.peer === peer) this.links.delete(nodeId);
          this.nodeUnreachable(nodeId);
          this.peerGone(nodeId);
        }),
      () => {
        if (this.links.get(nodeId)?.peer === peer) this.links.delete(nodeId);
        this.nodeUnreachable(nodeId);
      },
    );
    link = { peer, knownFunctions: new Set() };
    this.links.set(nodeId, link);
    return link;
  }

  /**
   * Notifies a node, once its connection is up. A connection that fails, or a body that cannot be
   * sent, is logged: a notification has no caller to reject, and must not end this process.
   */
  private tell(link: PeerLink | undefined, method: string, body: unknown): void {
    link?.peer
      .then((peer) => peer.notify(method, body))
      .catch((error: unknown) => console.error(`miniray: could not tell another node '${method}': ${(error as Error).message}`));
  }

  /** Sends a task or actor call to `nodeId` and hands its return values to `work` when they come. */
  private send(work: RemoteWork, nodeId: string): void {
    const link = this.link(nodeId);
    if (link === undefined) {
      work.lost(new NodeDiedError(`node ${nodeId.slice(0, 8)} is not alive`));
      return;
    }
    const { spec } = work;
    const view = this.views.get(nodeId);
    if (view !== undefined) view.sentCpus += spec.numCpus;
    const functions: FunctionDescriptor[] = [];
    if (work.function !== undefined && !link.knownFunctions.has(work.function.id)) {
      link.knownFunctions.add(work.function.id);
      functions.push(work.function);
      this.publish(work.function);
    }
    const args = spec.dependencies.map((id) => this.node.remoteObjects.valueFor(id, INLINE_LIMIT));
    const returnId = spec.returnIds[0] as string;
    this.sentTo.set(returnId, nodeId);
    // Settled once: by the answer, by the request failing, or by the node's death (whichever is first).
    let settled = false;
    const abort = new AbortController();
    let sent = this.inFlight.get(nodeId);
    if (sent === undefined) this.inFlight.set(nodeId, (sent = new Set()));
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      this.inFlight.get(nodeId)?.delete(lose);
      if (view !== undefined) view.sentCpus -= spec.numCpus;
      this.sentTo.delete(returnId);
      return true;
    };
    const lose = (error: NodeDiedError): void => {
      if (!settle()) return;
      abort.abort(error);
      if (functions.length > 0) link.knownFunctions.delete((work.function as FunctionDescriptor).id);
      work.lost(error);
    };
    sent.add(lose);
    link.peer
      // A task whose events this node sampled out (src/state/events.ts): the node that runs it skips them too.
      .then((peer) => peer.request('executeTask', !work.traced ? { functions, spec, args, attempt: work.attempt, untraced: true } : { functions, spec, args, attempt: work.attempt }, { signal: abort.signal }))
      .then(
        (answer) => {
          if (!settle()) return;
          const result = answers.executed(answer);
          if ('spillback' in result) this.spillback(work, nodeId, result.spillback);
          else work.done(result);
        },
        (error: unknown) => lose(new NodeDiedError(`node ${nodeId.slice(0, 8)} could not run ${spec.name}: ${(error as Error).message}`, { cause: error })),
      );
  }

  /** Where each task sent to another node went (by its first return ID), until it is back. */
  private readonly sentTo = new Map<string, string>();

  /** A node refused a task it cannot run (this node's view of it was stale): it is placed again. */
  private spillback(work: RemoteWork, refusedBy: string, reason: string): void {
    const view = this.views.get(refusedBy);
    if (view !== undefined) view.available = {}; // no room there, as far as this node knows, until it reports again
    if (!this.takeTask(work, false)) work.lost(new NodeDiedError(`spilled back by node ${refusedBy.slice(0, 8)}: ${reason}`));
  }

  // ---- actors on other nodes: calls, placement, restarts -------------------------------------------
  //
  // Who restarts an actor whose node died: the GCS decides (it moves the row to RESTARTING while
  // restarts remain, else DEAD: one place counts them), and a restarter places the new instance.
  // The restarter of an actor that ends with its owner is the owner's node, which holds its
  // creation spec and its constructor arguments (and already placed it once); a detached actor's
  // owner may be gone, so its creation is kept in the GCS (KV namespace 'actor') and the head's node
  // restarts it, as Ray's GCS does. Callers anywhere learn of the move on the `actors` channel.

  actorTaskRetries(actorId: string): number | undefined {
    return this.actorRetries.get(actorId);
  }

  callRemoteActor(work: RemoteWork): void {
    this.dispatchCall({ work, seq: this.nextCallSeq++, tries: 0, mayHaveRun: false });
  }

  private nextCallSeq = 1;

  private dispatchCall(call: ActorCall): void {
    const actorId = call.work.spec.actorId as string;
    const queue = this.actorCallQueues.get(actorId);
    if (queue !== undefined) {
      insertBySeq(queue, call); // behind earlier calls whose actor's node is being looked up
      return;
    }
    const known = this.actorNodes.get(actorId);
    if (typeof known === 'string') {
      this.sendCall(call, known);
      return;
    }
    this.actorCallQueues.set(actorId, [call]);
    void this.actorNode(actorId).then((nodeId) => {
      // A relocation releases the queue itself, once the next instance (or its death) is known.
      if (!this.relocating.has(actorId)) this.releaseCalls(actorId, nodeId);
    });
  }

  /** Sends the calls that waited for the actor's node, in submission order (or fails them: it is dead). */
  private releaseCalls(actorId: string, nodeId: string | undefined): void {
    const calls = this.actorCallQueues.get(actorId) ?? [];
    this.actorCallQueues.delete(actorId);
    for (const call of calls) {
      if (nodeId === undefined) {
        const why = this.refusedActors.get(actorId) ?? this.deadActors.get(actorId) ?? 'it is not known to this cluster (killed before, or from a session that was shut down)';
        failCall(call, new ActorDiedError(`actor ${actorId} cannot be called: ${why}`, { actorId }));
      } else this.resend(call, nodeId);
    }
    // Later calls read why from the GCS again.
    if (nodeId === undefined) this.deadActors.delete(actorId);
  }

  /**
   * Sends a call again after its instance was lost. One that was sent to the lost node may have
   * run there (a dead node cannot say which of its calls had started), so it costs a retry, as a
   * call that had started does when a worker dies (actors/manager.ts); a call that never left
   * this node costs nothing.
   */
  private resend(call: ActorCall, nodeId: string): void {
    if (call.mayHaveRun) {
      const maxTaskRetries = this.actorRetries.get(call.work.spec.actorId as string) ?? 0;
      if (maxTaskRetries >= 0 && call.tries >= maxTaskRetries) {
        const { spec } = call.work;
        failCall(
          call,
          new ActorDiedError(
            `actor ${spec.actorId} died while running or queued to run ${spec.name}: its node ${(call.lostAt ?? '').slice(0, 8)} died. ` +
              `The call was tried ${call.tries + 1} time(s) (maxTaskRetries: ${maxTaskRetries}).`,
            { actorId: spec.actorId as string },
          ),
        );
        return;
      }
      call.tries++;
      call.mayHaveRun = false;
    }
    this.sendCall(call, nodeId);
  }

  private sendCall(call: ActorCall, nodeId: string): void {
    const { spec } = call.work;
    if (nodeId === this.self) {
      // The actor was restarted on this node: its calls from here are local now.
      this.node.callActorHere(spec);
      return;
    }
    const link = this.views.has(nodeId) ? this.link(nodeId) : undefined;
    if (link === undefined) {
      this.requeue(call, nodeId); // its node is gone, and nothing was sent: it waits for the next instance
      return;
    }
    // Whether the call left this node decides whether it may have run: a connection that failed
    // or closed before it was sent costs no retry.
    link.peer.then(
      (peer) => {
        if (peer.isClosed) return this.requeue(call, nodeId);
        this.send(
          {
            spec,
            // Each time it is sent again (its instance was lost), a new attempt.
            attempt: call.work.attempt + call.tries,
            traced: call.work.traced,
            function: undefined,
            done: (values) => call.work.done(values),
            lost: (error) => {
              // A call refused for another reason than a lost connection (to a node that lives) fails as before.
              if (!(error.cause instanceof ConnectionError) && this.views.has(nodeId)) return call.work.lost(error);
              call.mayHaveRun = true;
              call.lostAt = nodeId;
              this.requeue(call, nodeId);
            },
          },
          nodeId,
        );
      },
      () => this.requeue(call, nodeId),
    );
  }

  /** A call whose actor's node (`lostNode`) is gone waits for the next instance, in order. */
  private requeue(call: ActorCall, lostNode: string): void {
    const actorId = call.work.spec.actorId as string;
    const known = this.actorNodes.get(actorId);
    if (!this.relocating.has(actorId) && typeof known === 'string' && known !== lostNode) {
      this.resend(call, known); // this node has heard of the next instance already
      return;
    }
    this.relocate(actorId, lostNode);
    insertBySeq(this.actorCallQueues.get(actorId) as ActorCall[], call);
  }

  /**
   * The actor's instance on `lostNode` is gone (or going): calls to it wait until the GCS shows
   * the next instance ALIVE, or the actor DEAD. The `actors` channel says so; the GCS is also asked
   * every RELOCATE_POLL_MS, so that a missed message or a link that broke while the node lives
   * (the row stays ALIVE there) does not leave the calls waiting.
   */
  private relocate(actorId: string, lostNode: string): void {
    if (this.relocating.has(actorId)) return;
    let resolve: (nodeId: string | undefined) => void = () => {};
    const moved = new Promise<string | undefined>((done) => (resolve = done));
    const relocation: Relocation = { from: lostNode, sinceMs: performance.now(), resolve, timer: undefined };
    this.relocating.set(actorId, relocation);
    this.actorNodes.set(actorId, moved);
    if (!this.actorCallQueues.has(actorId)) this.actorCallQueues.set(actorId, []);
    const poll = (): void => {
      if (this.relocating.get(actorId) !== relocation || this.stopped) return;
      this.gcs.getActor(actorId as ActorIdHex).then(
        (entry) => (entry === null ? this.finishRelocation(actorId, undefined) : this.actorSeen(entry)),
        (error: unknown) => {
          // The GCS is gone for good (its link gave up): nobody can say where the actor went, so
          // its waiting calls fail now rather than poll forever. Other failures: the next poll.
          if (!(error instanceof GcsUnavailableError)) return;
          this.deadActors.set(actorId, `the GCS cannot be reached to learn where it restarted (${error.message})`);
          this.finishRelocation(actorId, undefined);
        },
      );
      relocation.timer = setTimeout(poll, RELOCATE_POLL_MS);
      relocation.timer.unref();
    };
    poll();
  }

  private finishRelocation(actorId: string, nodeId: string | undefined): void {
    const relocation = this.relocating.get(actorId);
    if (relocation === undefined) return;
    clearTimeout(relocation.timer);
    this.relocating.delete(actorId);
    if (nodeId === undefined) this.actorNodes.delete(actorId);
    else this.actorNodes.set(actorId, nodeId);
    relocation.resolve(nodeId);
    this.releaseCalls(actorId, nodeId);
  }

  /** What this node does with a row of the actor table (published, or read): callers and restarts. */
  private actorSeen(entry: ActorEntry): void {
    const actorId = entry.actorId as string;
    const relocation = this.relocating.get(actorId);
    // Only actors this node reaches (or restarts) are followed: rows of others cost nothing kept.
    const known = this.actorNodes.get(actorId);
    if (known !== undefined || relocation !== undefined) this.actorRetries.set(actorId, entry.maxTaskRetries);
    if (entry.state === 'RESTARTING') this.restartIfMine(entry);
    if (entry.state === 'DEAD') this.forgetActor(entry, known !== undefined || relocation !== undefined);
    if (relocation === undefined) {
      if (typeof known !== 'string') return;
      if (entry.state === 'RESTARTING') this.relocate(actorId, known);
      else if (entry.state === 'ALIVE') this.actorNodes.set(actorId, entry.nodeId);
      else if (entry.state === 'DEAD') this.actorNodes.delete(actorId);
      return;
    }
    if (entry.state === 'DEAD') this.finishRelocation(actorId, undefined);
    else if (entry.state === 'ALIVE') {
      // ALIVE where it was lost: the node lives (the link broke), unless it is about to be declared dead.
      const elsewhere = entry.nodeId !== relocation.from;
      if (elsewhere || (this.views.has(entry.nodeId) && performance.now() - relocation.sinceMs >= RELOCATE_POLL_MS)) this.finishRelocation(actorId, entry.nodeId);
    }
  }

  /**
   * An actor is DEAD in the GCS, which has the last word: what this node kept to restart it goes,
   * and an instance of it here (a restart that came up after its owner died, say) ends.
   */
  private forgetActor(entry: ActorEntry, followed: boolean): void {
    const actorId = entry.actorId as string;
    // The reason is kept only for calls waiting here (releaseCalls reads it, then drops it).
    if (followed && (this.actorCallQueues.has(actorId) || this.relocating.has(actorId))) this.deadActors.set(actorId, entry.reason ?? 'it is dead');
    this.actorRetries.delete(actorId);
    this.restartsMade.delete(actorId);
    if (this.ownedActors.delete(actorId)) this.node.releaseForRestart(actorId);
    if (entry.detached && this.options.restartsDetached === true) void this.gcs.kvDel(CREATIONS, actorId).catch(() => {});
    this.node.actorDeadInCluster(actorId, entry.reason ?? 'the cluster reports it dead');
  }

  /** Restarts an actor the GCS moved to RESTARTING, if this node is its restarter (once per restart). */
  private restartIfMine(entry: ActorEntry): void {
    const actorId = entry.actorId as string;
    if ((this.restartsMade.get(actorId) ?? 0) >= entry.numRestarts) return; // done already (or where it was sent)
    if (!entry.detached) {
      const creation = this.ownedActors.get(actorId);
      if (creation === undefined) return;
      this.restartsMade.set(actorId, entry.numRestarts);
      this.relaunch(creation, entry.numRestarts, undefined);
      return;
    }
    if (this.options.restartsDetached !== true) return;
    this.restartsMade.set(actorId, entry.numRestarts);
    void this.gcs.kvGet(CREATIONS, actorId).then(
      (stored) => {
        const creation = stored === null ? undefined : decodeCreation(stored);
        if (creation === undefined) {
          void this.gcs.updateActor(entry.actorId, 'DEAD', { reason: 'its node died, and its creation record was not found in the GCS to restart it' }).catch(() => {});
          return;
        }
        this.relaunch(creation, entry.numRestarts, creation.args);
      },
      () => this.restartsMade.delete(actorId),
    );
  }

  /** Places a new instance of an actor (fresh state: its constructor runs again with the same arguments). */
  private relaunch(creation: Creation, numRestarts: number, args: readonly RemoteValue[] | undefined): void {
    const spec: ActorSpec = { ...creation.spec, numRestarts };
    const target = this.place(spec, this.node.canRun(spec), true);
    if (target instanceof Error) {
      void this.gcs.updateActor(spec.actorId as ActorIdHex, 'DEAD', { reason: `it could not be restarted: ${target.message}` }).catch(() => {});
      return;
    }
    const start = (nodeId: string): void => {
      // Where the restart went: if that node dies too before the instance is up, the GCS sees it.
      void this.gcs.updateActor(spec.actorId as ActorIdHex, 'RESTARTING', { nodeId: nodeId as NodeIdHex }).catch(() => {});
      const values = args ?? spec.dependencies.map((id) => this.node.remoteObjects.valueFor(id, INLINE_LIMIT));
      if (nodeId === this.self) {
        this.node.createActorForPeer(creation.functions, spec, values);
        return;
      }
      const view = this.views.get(nodeId);
      if (view !== undefined) view.actorCpus += spec.numCpus;
      this.tell(this.link(nodeId), 'createActor', { functions: creation.functions, spec, args: values });
    };
    if (target === undefined) {
      warnWaiting(`actor ${spec.className}`, spec, this.nodeTotals());
      this.parkedActors.push({ functions: creation.functions, spec, placed: () => {}, restart: start });
      return;
    }
    start(target);
  }

  /** Keeps what is needed to restart an actor this node created: by itself, or (detached) in the GCS. */
  private keepCreation(functions: readonly FunctionDescriptor[], spec: ActorSpec): void {
    if (spec.detached === true) {
      // Its arguments as they are once they exist (a detached actor may outlive the objects' owner).
      const ids = spec.dependencies;
      const values: RemoteValue[] = new Array<RemoteValue>(ids.length);
      let remaining = ids.length;
      const save = (): void => {
        const record = functionCodec.pack({ functions, spec, args: values });
        void this.gcs.kvPut(CREATIONS, spec.actorId, record, true).catch(() => {});
      };
      if (remaining === 0) return save();
      ids.forEach((id, i) =>
        this.node.remoteObjects.whenExists(id, INLINE_LIMIT, (value) => {
          values[i] = value;
          if (--remaining === 0) save();
        }),
      );
      return;
    }
    if (spec.maxRestarts === 0) return;
    this.ownedActors.set(spec.actorId, { functions, spec });
    this.node.holdForRestart(spec.actorId, [...spec.dependencies, ...(spec.nestedRefs ?? [])]);
  }

  /** Restartable actors this node owns (not detached): what it needs to create them again. */
  private readonly ownedActors = new Map<string, Creation>();
  /** The numRestarts of the last restart this node made of each actor: each RESTARTING is acted on once. */
  private readonly restartsMade = new Map<string, number>();
  /** Actors whose instance was lost, with the calls to them waiting for the next one. */
  private readonly relocating = new Map<string, Relocation>();
  /** maxTaskRetries of the actors this node has seen rows of (callers need it; the spec is the owner's). */
  private readonly actorRetries = new Map<string, number>();
  /** Why each actor this node saw die is dead (its later calls fail with it). */
  private readonly deadActors = new Map<string, string>();

  /**
   * A node died (called from removeNode): calls to actors there wait for their next instance (the
   * GCS restarts or ends those actors), and the tasks it sent here stop, since their owner is gone
   * (running ones have their worker terminated, queued ones are dropped), as Ray's raylet kills
   * the workers leased to a dead owner.
   */
  private actorsLost(nodeId: string): void {
    for (const [actorId, where] of this.actorNodes) if (where === nodeId) this.actorNodes.delete(actorId);
    const owned = this.runningFor.get(nodeId);
    this.runningFor.delete(nodeId);
    for (const returnId of owned ?? []) this.node.cancel(returnId, true);
  }

  /** Tasks other nodes sent here that have not finished, by their owner's node (first return IDs). */
  private readonly runningFor = new Map<string, Set<string>>();

  private actorNode(actorId: string): Promise<string | undefined> {
    const known = this.actorNodes.get(actorId);
    if (typeof known === 'string') return Promise.resolve(known);
    if (known !== undefined) return known;
    const asked = this.gcs.getActor(actorId as ActorIdHex).then(
      (entry) => {
        if (this.actorNodes.get(actorId) !== asked) return this.actorNode(actorId); // moved meanwhile
        if (entry !== null) this.actorRetries.set(actorId, entry.maxTaskRetries);
        if (entry === null || entry.state === 'DEAD') {
          if (entry !== null) this.deadActors.set(actorId, entry.reason ?? 'it is dead');
          this.actorNodes.delete(actorId);
          return undefined;
        }
        if (entry.state === 'RESTARTING' || !this.views.has(entry.nodeId)) {
          this.actorNodes.delete(actorId);
          this.relocate(actorId, entry.nodeId);
          return this.actorNode(actorId);
        }
        this.actorNodes.set(actorId, entry.nodeId);
        return entry.nodeId as string;
      },
      () => undefined,
    );
    this.actorNodes.set(actorId, asked);
    return asked;
  }

  takeActor(functions: readonly FunctionDescriptor[], spec: ActorSpec, canRunHere: boolean): boolean | Error {
    if (canRunHere && this.otherNodes === 0 && typeof spec.strategy !== 'object') return false;
    // In a placement group, alone: its bundle can only be here, and the actor waits here for it (helper pg).
    if (this.otherNodes === 0 && !this.canGrow && groupsIn(spec.resources).length > 0) {
      const removed = groupsIn(spec.resources).find((group) => this.node.removedGroups.has(group));
      return removed === undefined ? false : this.node.groupRemovedError(removed);
    }
    const target = this.place(spec, canRunHere, true);
    if (target === this.self) return false;
    if (target instanceof Error) return target;
    for (const fn of functions) this.publish(fn);
    if (target === undefined) {
      // No node can host it now: it waits for one (its calls wait with it).
      if (groupsIn(spec.resources).length === 0) warnWaiting(`actor ${spec.className}`, spec, this.nodeTotals());
      this.actorNodes.set(spec.actorId, new Promise((placed) => this.parkedActors.push({ functions, spec, placed })));
      return true;
    }
    this.placeActor(functions, spec, target);
    return true;
  }

  /**
   * Actors no node could host when created (or restarted), waiting for one, with what their calls
   * wait on (or, for a restart, how to start it).
   */
  private readonly parkedActors: {
    functions: readonly FunctionDescriptor[];
    spec: ActorSpec;
    placed: (nodeId: string | undefined) => void;
    restart?: (nodeId: string) => void;
  }[] = [];

  private unparkActors(): void {
    for (const parked of this.parkedActors.splice(0)) {
      // In a placement group, its bundle may now be here (helper pg).
      const inGroup = parked.restart === undefined && groupsIn(parked.spec.resources).length > 0;
      const target = this.place(parked.spec, (parked.restart !== undefined || inGroup) && this.node.canRun(parked.spec), true);
      if (target === undefined) this.parkedActors.push(parked);
      else if (inGroup && target === this.self) {
        this.actorNodes.set(parked.spec.actorId, this.self);
        this.node.createActorHere(parked.spec);
        parked.placed(this.self);
      }
      else if (parked.restart !== undefined) {
        if (target instanceof Error) void this.gcs.updateActor(parked.spec.actorId as ActorIdHex, 'DEAD', { reason: `it could not be restarted: ${target.message}` }).catch(() => {});
        else parked.restart(target);
      } else if (target instanceof Error || target === this.self) parked.placed(undefined);
      else parked.placed(this.placeActor(parked.functions, parked.spec, target));
    }
  }

  /** Sends an actor's creation to `target` (a named one once its name is its own, cluster-wide). */
  private placeActor(functions: readonly FunctionDescriptor[], spec: ActorSpec, target: string): string {
    this.actorNodes.set(spec.actorId, target);
    this.actorRetries.set(spec.actorId, spec.maxTaskRetries);
    // Else every actor of a burst goes to the node that looked freest, and waits there for its CPUs.
    const targetView = this.views.get(target);
    if (targetView !== undefined) targetView.actorCpus += spec.numCpus;
    const create = (): void => {
      const link = this.link(target);
      const args = spec.dependencies.map((id) => this.node.remoteObjects.valueFor(id, INLINE_LIMIT));
      this.tell(link, 'createActor', { functions, spec, args });
      this.keepCreation(functions, spec);
    };
    const entry = actorEntry(spec, target);
    if (spec.name === undefined) {
      // The row first: the instance reports ALIVE to it.
      void this.gcs.registerActor(entry).catch(() => {});
      create();
      return target;
    }
    // Calls wait for the name to be granted.
    const registered = this.gcs.registerActor(entry).then(
      (answer) => {
        if (answer.ok) {
          create();
          this.actorNodes.set(spec.actorId, target);
          return target;
        }
        this.actorNodes.delete(spec.actorId);
        this.refusedActors.set(
          spec.actorId,
          `an actor named '${spec.name}' already exists in namespace '${spec.namespace}'; use getActor() to reach it, kill() it first, or choose another name`,
        );
        return undefined;
      },
      () => undefined,
    );
    this.actorNodes.set(spec.actorId, registered);
    return target;
  }

  /** Actors placed elsewhere whose creation was refused, with why (their calls fail with it). */
  private readonly refusedActors = new Map<string, string>();

  registerActor(spec: ActorSpec, functions: readonly FunctionDescriptor[], onNameTaken: () => void): void {
    void this.gcs
      .registerActor(actorEntry(spec, this.self))
      .then((answer) => {
        if (!answer.ok) onNameTaken();
        else this.keepCreation(functions, spec);
      }, () => {});
  }

  claimActorName(spec: ActorSpec, callback: (holder: { actorId: string; ownerNodeId: string; detached: boolean } | null) => void): void {
    this.gcs.registerActor(actorEntry(spec, this.self)).then(
      (answer) => {
        if (answer.ok || answer.holder === undefined) return callback(null);
        const { holder } = answer;
        // Claimed by another caller that may not have placed it yet (its row names the claimant's
        // node until it is ALIVE): calls wait for it to come up, as after a restart.
        if (holder.state === 'ALIVE') this.actorNodes.set(holder.actorId, holder.nodeId);
        else this.relocate(holder.actorId, '');
        this.actorRetries.set(holder.actorId, holder.maxTaskRetries);
        callback(holder);
      },
      () => callback(null),
    );
  }

  actorDied(actorId: string, reason: string): void {
    void this.gcs.updateActor(actorId as ActorIdHex, 'DEAD', { reason }).catch(() => {});
  }

  actorAlive(actorId: string, numRestarts: number): void {
    void this.gcs.updateActor(actorId as ActorIdHex, 'ALIVE', { nodeId: this.self as NodeIdHex, numRestarts }).catch(() => {});
  }

  killRemoteActor(actorId: string, noRestart: boolean, outOfScope = false): void {
    if (noRestart && this.relocating.has(actorId)) {
      // Between instances (its node died): the GCS ends it, and a new instance coming up ends on seeing that.
      const reason = outOfScope ? `actor ${actorId} ended: every handle to it went out of scope (it is not detached)` : `actor ${actorId} was killed with kill()`;
      void this.gcs.updateActor(actorId as ActorIdHex, 'DEAD', { reason }).catch(() => {});
      return;
    }
    void this.actorNode(actorId).then((nodeId) => {
      if (nodeId === undefined) {
        if (!this.actorCallQueues.has(actorId)) this.deadActors.delete(actorId); // no call waits for why
        return;
      }
      if (nodeId === this.self) this.node.killActor(actorId, noRestart, outOfScope); // restarted here meanwhile
      else this.tell(this.link(nodeId), 'killActor', outOfScope ? { actorId, noRestart, outOfScope: true } : { actorId, noRestart });
    });
  }

  lookupActor(name: string, namespace: string, callback: (info: ActorInfo | null) => void): void {
    this.gcs.getNamedActor(name, namespace).then(
      (entry) => {
        if (entry === null || entry.state === 'DEAD') return callback(null);
        this.actorRetries.set(entry.actorId, entry.maxTaskRetries);
        // A restarting one is looked up again at its first call (which waits for the next instance).
        if (entry.state !== 'RESTARTING' && !this.relocating.has(entry.actorId)) this.actorNodes.set(entry.actorId, entry.nodeId);
        const info: { -readonly [K in keyof ActorInfo]: ActorInfo[K] } = { actorId: entry.actorId, className: entry.className, methodNames: entry.methodNames };
        // Actor lifetimes: a non-detached actor's handles are counted at its owner's node (borrowed from here).
        if (!entry.detached) info.owner = { nodeId: entry.ownerNodeId, workerId: '' };
        if (entry.methodOptions !== undefined) info.methodOptions = entry.methodOptions;
        if (entry.generatorMethods !== undefined) info.generatorMethods = entry.generatorMethods; // generators
        callback(info);
      },
      () => callback(null),
    );
  }

  info(query: ClusterQuery, callback: (answer: ClusterAnswer) => void): void {
    const asked =
      typeof query === 'object'
        ? this.stateQuery(query).then((answer): ClusterAnswer => ({ gcs: answer }))
        : query === 'nodes'
        ? this.gcs.getNodes().then((nodes): ClusterAnswer => ({ nodes: nodes.map(({ nodeId, alive, address, resources, isDriver }) => ({ nodeId, alive, address, resources, isDriver })) }))
        : (query === 'clusterResources' ? this.gcs.clusterResources() : this.gcs.availableResources()).then((resources): ClusterAnswer => ({ resources }));
    asked.then(callback, (error: unknown) => callback({ error: encodeError(error instanceof Error ? error : new Error(String(error))) }));
  }

  /**
   * A read of the GCS for the state API of a CoreWorker here (a task's `state.list*`): passed on
   * as it is, and its answer back as it came (the CoreWorker's GcsClient checks it). Of the KV,
   * only the Jobs API's records are read this way.
   */
  private stateQuery(query: GcsQuery): Promise<unknown> {
    // The worker channel's validator allows only these; checked here too, as every door of the node should.
    if (!(STATE_GCS_METHODS as readonly string[]).includes(query.gcs) && !(PLACEMENT_GROUP_GCS_METHODS as readonly string[]).includes(query.gcs)) {
      return Promise.reject(new MinirayError(`the state API does not call the GCS's '${query.gcs}': it only reads (${STATE_GCS_METHODS.join(', ')})`));
    }
    if ((query.gcs === 'kvGet' || query.gcs === 'kvKeys') && (query.body as { namespace?: unknown } | null)?.namespace !== JOB_SUBMISSIONS) {
      return Promise.reject(new MinirayError(`the state API reads only the '${JOB_SUBMISSIONS}' namespace of the GCS's KV`));
    }
    const asked = this.gcs.peer.request(query.gcs, query.body, query.timeoutMs === undefined ? {} : { timeoutMs: query.timeoutMs });
    return query.gcs === 'kvGet' ? asked.then((answer) => (answer instanceof Uint8Array ? withoutEnvVars(answer) : answer)) : asked;
  }

  cancelRemote(spec: TaskSpec, force: boolean, recursive = false): void {
    const returnId = spec.returnIds[0] as string;
    const nodeId = this.sentTo.get(returnId);
    if (nodeId === undefined) return;
    this.tell(this.links.get(nodeId), 'cancelTask', recursive ? { returnId, force, recursive } : { returnId, force });
  }

  // env (runtime-env helper): cancel of a call to an actor on another node, and working-dir packages.
  cancelRemoteCall(returnId: string, recursive: boolean, error: Uint8Array, tries = 0): void {
    const nodeId = this.sentTo.get(returnId);
    if (nodeId !== undefined) return this.tell(this.links.get(nodeId), 'cancelTask', recursive ? { returnId, force: false, recursive } : { returnId, force: false });
    // Not sent yet (its actor's node is being looked up): it never will be.
    for (const queue of this.actorCallQueues.values()) {
      const at = queue.findIndex((call) => call.work.spec.returnIds[0] === returnId);
      if (at < 0) continue;
      const [call] = queue.splice(at, 1);
      call?.work.done(call.work.spec.returnIds.map((id) => ({ id, state: 'failed' as const, data: error })));
      return;
    }
    // Neither: on its way out (its connection is being made, or relocating); asked again shortly, for a few seconds.
    if (tries < 40 && !this.stopped) setTimeout(() => this.cancelRemoteCall(returnId, recursive, error, tries + 1), Math.min(5 * 2 ** tries, 200)).unref();
  }

  fetchPackage(key: string): Promise<Uint8Array | null> {
    return this.gcs.kvGet(PACKAGES, key);
  }

  // ---- objects across nodes ---------------------------------------------------------------------

  localize(ids: readonly string[], done: () => void): void {
    let remaining = ids.length;
    const one = (): void => {
      if (--remaining === 0) done();
    };
    for (const id of ids) {
      const waiting = this.copying.get(id);
      if (waiting !== undefined) {
        waiting.push(one);
        continue;
      }
      this.copying.set(id, [one]);
      void this.copy(id).then(() => {
        const callbacks = this.copying.get(id) ?? [];
        this.copying.delete(id);
        for (const callback of callbacks) callback();
      });
    }
  }

  /**
   * Makes a copy here of an object held elsewhere (asking its owner where, if need be). A copy
   * that cannot be read (its holder died or cannot be reached) is lost: an object this node owns
   * is then rebuilt by lineage (or failed, saying why); a borrowed one is asked of its owner again,
   * which rebuilds it or names another copy, up to COPY_ATTEMPTS times.
   */
  private async copy(id: string): Promise<void> {
    const entry = this.node.remoteObjects.entryOf(id);
    if (entry === undefined) return;
    try {
      const ownerNode = entry.foreignOwner;
      if (ownerNode === undefined) {
        const holder = entry.location;
        if (entry.state !== 'ready' || holder === undefined) return;
        try {
          return await this.pull(id, holder);
        } catch (error) {
          if (error instanceof ObjectStoreFullError) throw error;
          this.node.remoteObjects.holderLost(id, holder);
          return; // rebuilding (its readers wait for it again) or failed
        }
      }
      let lostAt: string | undefined;
      for (let attempt = 0; attempt < COPY_ATTEMPTS; attempt++) {
        const holder = entry.location;
        if (holder !== undefined) {
          try {
            return await this.pull(id, holder);
          } catch (error) {
            if (error instanceof ObjectStoreFullError) throw error;
            lostAt = holder;
            delete entry.location;
          }
        }
        const owner = this.link(ownerNode);
        if (owner === undefined) throw ownerDiedError(id, ownerNode, 'is not alive');
        let answer: unknown;
        try {
          answer = await (await owner.peer).request('getObject', lostAt === undefined ? { id } : { id, lostAt });
        } catch (error) {
          if (error instanceof ConnectionError || !this.views.has(ownerNode)) throw ownerDiedError(id, ownerNode, `could not be reached (${(error as Error).message})`);
          throw error;
        }
        const value = answers.value(answer);
        if (value.state !== 'located' || value.location === this.self) {
          this.node.remoteObjects.storeValues([value], ownerNode, true);
          return;
        }
        entry.location = value.location;
      }
      throw new ObjectLostError(`ObjectRef(${id}) could not be read from any of the ${COPY_ATTEMPTS} copies its owner, node ${ownerNode.slice(0, 8)}, named (lost at node ${lostAt?.slice(0, 8)})`);
    } catch (error) {
      this.node.remoteObjects.failCopy(id, error instanceof ObjectStoreFullError || error instanceof ObjectLostError ? error : new ObjectLostError(`ObjectRef(${id}) could not be fetched from another node: ${(error as Error).message}`, { cause: error }));
    }
  }

  /** Pulls an object's bytes from `nodeId` in chunks, straight into this node's arena. */
  private async pull(id: string, nodeId: string): Promise<void> {
    const link = this.link(nodeId);
    if (link === undefined) throw new ObjectLostError(`ObjectRef(${id}) was on node ${nodeId.slice(0, 8)}, which is not alive`);
    const peer = await link.peer;
    const started = answers.pull(await peer.request('pullObject', { id }));
    if (!('pullId' in started)) {
      // Not there (a copy its holder has let go of since): another copy, or lineage, is tried.
      if (started.state === 'lost') throw new ObjectLostError(`ObjectRef(${id}) is no longer on node ${nodeId.slice(0, 8)}`);
      this.node.remoteObjects.storeValues([started], nodeId, true);
      return;
    }
    const { pullId, data, sizes } = started;
    try {
      const blocks = this.node.remoteObjects.allocateBlocks(sizes);
      try {
        const chunks: { part: number; offset: number; length: number }[] = [];
        sizes.forEach((size, part) => {
          for (let offset = 0; offset < size; offset += CHUNK_BYTES) chunks.push({ part, offset, length: Math.min(CHUNK_BYTES, size - offset) });
        });
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < chunks.length) {
            const chunk = chunks[next++] as (typeof chunks)[number];
            const bytes = answers.chunk(await peer.request('readChunk', { pullId, ...chunk }), chunk.length);
            // Straight from the socket's buffers into the arena: the one copy this node makes.
            const target = this.node.store.view(blocks[chunk.part] as Block);
            if (bytes instanceof RawBytes) bytes.copyTo(target, chunk.offset);
            else target.set(bytes, chunk.offset);
          }
        };
        await Promise.all(Array.from({ length: Math.min(CHUNKS_IN_FLIGHT, chunks.length) }, worker));
      } catch (error) {
        for (const block of blocks) this.node.store.freeBlock(block);
        throw error;
      }
      this.node.remoteObjects.storePulled(id, data, blocks);
      // Its owner may send other readers here if the node it came from dies.
      const owner = this.node.remoteObjects.entryOf(id)?.foreignOwner;
      if (owner !== undefined && this.node.store.contains(id)) {
        this.copiesHeld.add(id);
        this.tell(this.links.get(owner), 'addCopies', { ids: [id] });
      }
    } finally {
      peer.notify('endPull', { pullId });
    }
  }

  freed(id: string, entry: ObjectEntry<unknown>): void {
    if (entry.foreignOwner !== undefined) {
      // A borrower (or a copy) here is gone: tell the owner only of refs this node announced.
      if (this.borrowing.delete(id)) this.tell(this.links.get(entry.foreignOwner), 'unborrow', { ids: [id] });
      if (this.copiesHeld.delete(id)) this.tell(this.links.get(entry.foreignOwner), 'dropCopies', { ids: [id] });
      return;
    }
    if (entry.location !== undefined && entry.location !== this.self) {
      this.tell(this.link(entry.location), 'freeObjects', { owner: entry.owner, ids: [id] });
    }
  }

  /** Objects owned elsewhere that this node has told their owner it borrows. */
  private readonly borrowing = new Set<string>();
  /** Copies of objects owned elsewhere that this node has told their owner it holds. */
  private readonly copiesHeld = new Set<string>();

  borrow(ownerNode: string, ids: readonly string[]): void {
    for (const id of ids) this.borrowing.add(id);
    this.tell(this.link(ownerNode), 'borrow', { ids });
  }

  // ---- what other nodes ask of this one -----------------------------------------------------------

  /**
   * A group ended (removed, or its creation refused by this node: helper pg): the node ends its
   * work here, and the work parked for it fails with its error.
   */
  placementGroupEnded(placementGroupId: string): void {
    const node = this.node;
    node.placementGroupRemoved(placementGroupId);
    this.report();
    const error = node.groupRemovedError(placementGroupId);
    for (const parked of this.parked.splice(0)) {
      if (groupsIn(parked.work.spec.resources).includes(placementGroupId)) parked.work.done(parked.work.spec.returnIds.map((id) => ({ id, state: 'failed', data: encodeError(error) })));
      else this.parked.push(parked);
    }
    for (const parked of this.parkedActors.splice(0)) {
      if (!groupsIn(parked.spec.resources).includes(placementGroupId)) {
        this.parkedActors.push(parked);
        continue;
      }
      this.refusedActors.set(parked.spec.actorId, error.message);
      void this.gcs.updateActor(parked.spec.actorId as ActorIdHex, 'DEAD', { reason: error.message }).catch(() => {});
      parked.placed(undefined);
    }
  }

  /** Adds what other nodes may ask of this one to `router` (each listener's and connection's). */
  register(router: Router): void {
    const node = this.node;
    router
      // Answered here, on the main thread, which runs no user code: a node busy with tasks answers.
      .handle(HEALTH_CHECK, (body) => body, () => null)
      // state API (helper state): the GCS's fan-out (askNodes) asks each node for its own tables.
      .handle(NODE_STATE, parseNodeStateQuery, (query, peer) => {
        if (peer.hello.role !== 'gcs') throw new MinirayError(`'${NODE_STATE}' is the GCS's to ask (askNodes); ask the GCS instead`);
        return answerNodeState(node, query);
      })
      // placement groups (helper pg): the GCS's two phases, its aborts and removals.
      .handle(PREPARE_BUNDLES, parsePrepareBundles, ({ placementGroupId, bundles }, peer) => {
        if (peer.hello.role !== 'gcs') throw new MinirayError(`'${PREPARE_BUNDLES}' is the GCS's to ask`);
        return { ok: node.prepareBundles(placementGroupId, bundles) };
      })
      .handle(COMMIT_BUNDLES, parseBundleIndices, ({ placementGroupId, indices }, peer) => {
        if (peer.hello.role !== 'gcs') throw new MinirayError(`'${COMMIT_BUNDLES}' is the GCS's to ask`);
        node.commitBundles(placementGroupId, indices);
        this.report();
        this.unpark();
        return null;
      })
      .on(CANCEL_BUNDLES, parseBundleIndices, ({ placementGroupId, indices }, peer) => {
        if (peer.hello.role === 'gcs') node.cancelBundles(placementGroupId, indices);
      })
      .on(PLACEMENT_GROUP_REMOVED, parsePlacementGroupRef, ({ placementGroupId }, peer) => {
        if (peer.hello.role === 'gcs') this.placementGroupEnded(placementGroupId);
      })
      .on(NODE_DEAD, parseNodeDead, ({ nodeId, reason }, peer) => {
        if (peer.hello.role === 'gcs' && nodeId === this.self) this.diedHere(reason);
      })
      .handle('executeTask', parse.executeTask, async ({ functions, spec, args, attempt, untraced }, peer) => {
        if (this.deadNodes.has(peer.hello.nodeId)) throw new NodeDiedError(`node ${peer.hello.nodeId} was declared dead by the GCS: this node takes no work from it`);
        if (spec.actorId === undefined && !node.canRun(spec)) return { spillback: `it offers ${describe({ CPU: node.options.numCpus, ...node.options.resources })}` };
        // With the definition at hand the task starts in this same turn, so that the tasks sent
        // right behind it without one (known to be sent already) find it here, not in the GCS,
        // which they would wait for while the head is down.
        const atHand = spec.actorId !== undefined || functions.some((fn) => fn.id === spec.functionId) || node.knowsFunction(spec.functionId);
        const definitions = atHand ? functions : await this.withDefinition(functions, spec.functionId);
        // A task, until it ends: cancelled if its owner's node dies meanwhile (see actorsLost).
        const owner = spec.owner.nodeId;
        if (owner === peer.hello.nodeId) this.logRoutes.set(owner, peer);
        const returnId = spec.returnIds[0] as string;
        let running = this.runningFor.get(owner);
        if (spec.actorId === undefined) {
          if (running === undefined) this.runningFor.set(owner, (running = new Set()));
          running.add(returnId);
        }
        return new Promise<RemoteValue[]>((resolve) =>
          node.runForPeer(definitions, spec, args, INLINE_LIMIT, (values) => {
            running?.delete(returnId);
            this.streamAcks.delete(returnId); // generators
            if (running?.size === 0 && this.runningFor.get(owner) === running) this.runningFor.delete(owner);
            for (const value of values) if (value.state === 'located') this.keep(peer.hello.nodeId, spec.owner.workerId, value.id);
            resolve(values);
          }, attempt ?? 0, untraced === true),
        );
      })
      .on('createActor', parse.createActor, ({ functions, spec, args }) => {
        // At once when the definition is at hand (calls to the actor may follow on this
        // connection, and must find it); only a definition this node was not sent is read first.
        if (functions.some((fn) => fn.id === spec.classId) || node.knowsFunction(spec.classId)) node.createActorForPeer(functions, spec, args);
        else void this.withDefinition(functions, spec.classId).then((definitions) => node.createActorForPeer(definitions, spec, args));
      })
      .on('killActor', parse.killActor, ({ actorId, noRestart, outOfScope }) => node.killActor(actorId, noRestart, outOfScope === true))
      .on('cancelTask', parse.cancelTask, ({ returnId, force, recursive }) => node.cancel(returnId, force, recursive === true))
      .handle('getObject', parse.objectId, ({ id, lostAt }, _peer, signal) => {
        // The asker could not read the copy it was told of: made again first (or failed, saying why).
        if (lostAt !== undefined) node.remoteObjects.holderLost(id, lostAt);
        return new Promise<RemoteValue>((resolve) => {
          const withdraw = node.remoteObjects.whenExists(id, INLINE_LIMIT, resolve);
          signal.addEventListener('abort', withdraw, { once: true });
        });
      })
      .handle('pullObject', parse.objectId, ({ id }, peer) => {
        const read = node.remoteObjects.readForPull(id);
        if (read === undefined) return node.remoteObjects.valueFor(id, Infinity);
        const pullId = this.nextPull++;
        this.pulls.set(pullId, { read, peer });
        return { pullId, data: read.data, sizes: read.parts.map((part) => part.byteLength) };
      })
      .handle('readChunk', parse.readChunk, ({ pullId, part, offset, length }, peer) => {
        const pull = this.pulls.get(pullId);
        const bytes = pull?.read.parts[part];
        if (pull === undefined || pull.peer !== peer || bytes === undefined || offset + length > bytes.byteLength) {
          throw new ObjectLostError(`no such chunk: pull ${pullId}, part ${part}, bytes ${offset}..${offset + length}`);
        }
        return bytes.subarray(offset, offset + length);
      })
      .on('endPull', parse.pullId, ({ pullId }, peer) => {
        const pull = this.pulls.get(pullId);
        if (pull === undefined || pull.peer !== peer) return;
        this.pulls.delete(pullId);
        pull.read.release();
      })
      .on('freeObjects', parse.freeObjects, ({ owner, ids }, peer) => {
        const kept = this.keptFor.get(peer.hello.nodeId)?.get(owner);
        const mine = ids.filter((id) => kept?.delete(id));
        node.remoteObjects.dropForOwner(owner, mine);
      })
      .on('borrow', parse.ids, ({ ids }, peer) => node.remoteObjects.borrowedBy(peer.hello.nodeId, ids, true))
      .on('unborrow', parse.ids, ({ ids }, peer) => node.remoteObjects.borrowedBy(peer.hello.nodeId, ids, false))
      .on('addCopies', parse.ids, ({ ids }, peer) => node.remoteObjects.copiesAt(peer.hello.nodeId, ids, true))
      .on('dropCopies', parse.ids, ({ ids }, peer) => node.remoteObjects.copiesAt(peer.hello.nodeId, ids, false))
      // ---- logs (issue 12) ----
      .on('taskLogs', parse.taskLogs, ({ lines }, peer) => writeForwardedLogs(peer.hello.nodeId, lines))
      // generators
      .on('generatorItem', parse.generatorItem, ({ generatorId, index, value }, peer) => {
        // The item's ID is derived: a value that names another object is not taken.
        if (value.id !== generatorItemId(generatorId, index)) return;
        const from = peer.hello.nodeId;
        node.generatorItemFromPeer(generatorId, index, value, from, (consumed) => {
          void Promise.resolve()
            .then(() => peer.notify('generatorAck', { generatorId, consumed }))
            .catch(() => {});
        });
      })
      .on('generatorAck', parse.generatorAck, ({ generatorId, consumed }) => this.streamAcks.get(generatorId)?.(consumed));
  }

  // generators
  /** Backpressure acks of streaming tasks that run here for another node, by generator ID (while they run). */
  private readonly streamAcks = new Map<string, (consumed: number) => void>();

  generatorItem(spec: TaskSpec, index: number, value: RemoteValue, ack: (consumed: number) => void): void {
    const ownerNode = spec.owner.nodeId;
    const generatorId = spec.returnIds[0] as string;
    if (spec.returns?.kind === 'streaming' && spec.returns.backpressure !== undefined) this.streamAcks.set(generatorId, ack);
    if (value.state === 'located') this.keep(ownerNode, spec.owner.workerId, value.id);
    if (this.deadNodes.has(ownerNode)) return;
    // On the connection the task came over: ahead of its result, which follows on it.
    const route = this.logRoutes.get(ownerNode);
    const peer = route !== undefined ? Promise.resolve(route) : this.link(ownerNode)?.peer;
    peer?.then((connected) => connected.notify('generatorItem', { generatorId, index, value })).catch(() => {});
  }

  // ---- logs (issue 12) ----
  /** The connection each owner's tasks came over: their output goes back on it, ahead of their results. */
  private readonly logRoutes = new Map<string, Peer>();

  forwardLogs(ownerNode: string, lines: readonly ForwardedLogLine[]): void {
    if (this.deadNodes.has(ownerNode)) return;
    const route = this.logRoutes.get(ownerNode);
    const peer = route !== undefined ? Promise.resolve(route) : this.link(ownerNode)?.peer;
    // An owner gone (or unreachable) has nowhere to show them: they are in this node's stdout and ring.
    peer?.then((connected) => connected.notify('taskLogs', { lines })).catch(() => {});
  }

  /**
   * `functions` with the definition of `id` among them: sent along (the first time to this node),
   * known here already, or else read from the GCS's function table (a node this one has not
   * heard from is not sent it). Without it the task fails at its worker, naming the function.
   */
  private async withDefinition(functions: readonly FunctionDescriptor[], id: string): Promise<readonly FunctionDescriptor[]> {
    if (functions.some((fn) => fn.id === id) || this.node.knowsFunction(id)) return functions;
    const stored = await this.gcs.kvGet(FUNCTIONS, id).catch(() => null);
    const fn = stored === null ? undefined : decodeFunction(stored);
    return fn === undefined ? functions : [...functions, fn];
  }

  /** Puts a function's definition in the GCS's function table, once per function and node. */
  private publish(fn: FunctionDescriptor): void {
    if (this.published.has(fn.id)) return;
    this.published.add(fn.id);
    void this.gcs.kvPut(FUNCTIONS, fn.id, functionCodec.pack(fn), false).catch(() => this.published.delete(fn.id));
  }

  private readonly published = new Set<string>();

  private keep(peerNode: string, ownerWorker: string, id: string): void {
    let byOwner = this.keptFor.get(peerNode);
    if (byOwner === undefined) this.keptFor.set(peerNode, (byOwner = new Map()));
    let ids = byOwner.get(ownerWorker);
    if (ids === undefined) byOwner.set(ownerWorker, (ids = new Set()));
    ids.add(id);
  }

  /**
   * A node's connection closed: what this node kept for its owners goes, its borrows end, its
   * pulls' leases come back. (Tasks sent there fail through their requests.)
   */
  private peerGone(nodeId: string): void {
    this.logRoutes.delete(nodeId);
    const kept = this.keptFor.get(nodeId);
    this.keptFor.delete(nodeId);
    for (const [owner, ids] of kept ?? []) this.node.remoteObjects.dropForOwner(owner, [...ids]);
    this.node.remoteObjects.dropBorrower(nodeId);
    for (const [pullId, pull] of this.pulls) {
      if (pull.peer.hello.nodeId !== nodeId) continue;
      this.pulls.delete(pullId);
      pull.read.release();
    }
  }
}

/** An actor's row in the GCS's actor table, placed on `nodeId`. */
function actorEntry(spec: ActorSpec, nodeId: string): Parameters<GcsClient['registerActor']>[0] {
  return {
    actorId: spec.actorId as ActorIdHex,
    ...(spec.name === undefined ? {} : { name: spec.name }),
    namespace: spec.namespace,
    className: spec.className,
    methodNames: spec.methodNames,
    nodeId: nodeId as NodeIdHex,
    ownerNodeId: spec.owner.nodeId as NodeIdHex,
    detached: spec.detached === true,
    maxRestarts: spec.maxRestarts,
    maxTaskRetries: spec.maxTaskRetries,
    ...(spec.methodOptions === undefined ? {} : { methodOptions: spec.methodOptions }),
    ...(spec.generatorMethods === undefined ? {} : { generatorMethods: spec.generatorMethods }),
  };
}

/** A call to an actor on another node, until it is answered or failed. */
interface ActorCall {
  readonly work: RemoteWork;
  /** Submission order on this node: calls sent again keep it. */
  readonly seq: number;
  /** Times it was sent again after its instance was lost. */
  tries: number;
  /** It was sent to a node that died before answering: it may have run there. */
  mayHaveRun: boolean;
  lostAt?: string;
}

interface Relocation {
  /** The node the instance was lost on. */
  readonly from: string;
  readonly sinceMs: number;
  readonly resolve: (nodeId: string | undefined) => void;
  timer: NodeJS.Timeout | undefined;
}

/** What restarting an actor takes: its class, its spec, and (a detached one's, as saved) its arguments. */
interface Creation {
  readonly functions: readonly FunctionDescriptor[];
  readonly spec: ActorSpec;
  readonly args?: readonly RemoteValue[];
}

function decodeCreation(bytes: Uint8Array): Creation | undefined {
  try {
    const parsed = parse.createActor(functionCodec.unpack(bytes));
    return parsed instanceof Error ? undefined : parsed;
  } catch {
    return undefined; // a malformed record: as if there were none
  }
}

function insertBySeq(queue: ActorCall[], call: ActorCall): void {
  let at = queue.length;
  while (at > 0 && (queue[at - 1] as ActorCall).seq > call.seq) at--;
  queue.splice(at, 0, call);
}

function failCall(call: ActorCall, error: Error): void {
  const data = encodeError(error);
  call.work.done(call.work.spec.returnIds.map((id) => ({ id, state: 'failed', data })));
}

/** What a task or actor that no node can run says while it waits for one. */
function warnWaiting(what: string, spec: TaskSpec | ActorSpec, nodes: readonly ResourceMap[]): void {
  // What the cluster has in all, placement groups' names left out: what the request is measured against.
  const totals: Record<string, number> = {};
  for (const node of nodes) for (const [name, amount] of Object.entries(node)) if (groupsIn({ [name]: amount }).length === 0) totals[name] = (totals[name] ?? 0) + amount;
  console.warn(
    `miniray: ${what} needs ${describe(demandOf(spec))}, which no node of the cluster has; ` +
      'it waits until a node that has them joins (miniray start --address ... --num-cpus/--num-gpus/--resources). ' +
      `The cluster has ${describe(totals)} in all, over ${nodes.length} node(s).`,
  );
}

function describe(resources: ResourceMap): string {
  return Object.entries(resources)
    .filter(([, amount]) => amount > 0)
    .map(([name, amount]) => `${amount} ${name}`)
    .join(', ') || 'nothing';
}

/**
 * Lines of this node's tasks that ran on node `nodeId`, written to this process's stdout and
 * stderr with the prefix the executing worker gave them, as if the task had run here.
 */
function writeForwardedLogs(nodeId: string, lines: readonly ForwardedLogLine[]): void {
  let out = '';
  let err = '';
  for (const line of lines) {
    const shown = `${formatLogLine({ ...line, nodeId })}\n`;
    if (line.stream === 'stdout') out += shown;
    else err += shown;
  }
  if (out !== '') process.stdout.write(out);
  if (err !== '') process.stderr.write(err);
}
