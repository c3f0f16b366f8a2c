/**
 * A node's agent in its cluster (the part of Ray's raylet that talks to other raylets and to the
 * GCS): it registers the node with the GCS and keeps the cluster's view (nodes and their free
 * resources, by pubsub), and it is the one door through which the node reaches the cluster
 * (ClusterLink) and other nodes reach the node (register). What it does, it does through its
 * parts, each a module of this folder:
 *
 *   placement.ts        where a task or an actor runs (Ray's hybrid policy, SPREAD, node affinity)
 *   remote-tasks.ts     tasks sent to other nodes: sending, results, spillback, waiting for a node
 *   remote-actors.ts    actors on other nodes: creation, calls in order, names, kill, restarts
 *   object-transfer.ts  objects across nodes: chunked pulls both ways, borrowers, copies, freeing
 *   work-for-peers.ts   work other nodes sent here, and its items and output going back to them
 *   links.ts            the connections to other nodes (one per pair), functions.ts the GCS's
 *                       function table, gcs-queries.ts the GCS reads of this node's CoreWorkers
 *   context.ts          what the parts share (the node, the views, the links), kept by this agent
 */
import type { ActorIdHex } from '../ids/index.js';
import { MinirayError, NodeDiedError } from '../errors/index.js';
import { CANCEL_BUNDLES, COMMIT_BUNDLES, PLACEMENT_GROUP_REMOVED, PREPARE_BUNDLES, parseBundleIndices, parsePlacementGroupRef, parsePrepareBundles } from '../gcs/index.js';
import { HEALTH_CHECK, NODE_DEAD, NODE_STATE, parseNodeDead, parseNodeStateQuery, type GcsClient, type NodeInfo, type NodeIdHex } from '../gcs/index.js';
import type { Peer, Router } from '../net/index.js';
import { PACKAGES, type ClusterLink, type ForwardedLogLine, type Node, type RemoteWork } from '../node/index.js';
import type { ObjectEntry } from '../ownership/index.js';
import type { ActorCallSpec, ActorInfo, ActorSpec, ClusterAnswer, ClusterQuery, RemoteValue, TaskSpec } from '../protocol/index.js';
import { answerNodeState } from '../state/node-state.js';
import type { FunctionDescriptor } from '../serialization/index.js';
import { generatorItemId } from '../object-ref/generator.js';
import { AgentContext, type AgentOptions } from './context.js';
import { answerClusterQuery } from './gcs-queries.js';
import { parse } from './messages.js';
import { ObjectTransfer } from './object-transfer.js';
import { Placement } from './placement.js';
import { RemoteActors } from './remote-actors.js';
import { RemoteTasks } from './remote-tasks.js';
import { WorkForPeers, writeForwardedLogs } from './work-for-peers.js';

export { type AgentOptions } from './context.js';
export { CHUNK_BYTES } from './object-transfer.js';

/** Free resources are reported to the GCS at most this often. */
const REPORT_INTERVAL_MS = 100;
/** How long after a node's connection was lost the GCS is asked whether it lives (see nodeUnreachable). */
const UNREACHABLE_RECHECK_MS = 2000;

export class ClusterAgent implements ClusterLink {
  readonly canGrow: boolean;
  private readonly node: Node;
  private readonly self: NodeIdHex;
  private readonly context: AgentContext;
  private readonly placement: Placement;
  private readonly tasks: RemoteTasks;
  private readonly actors: RemoteActors;
  private readonly objects: ObjectTransfer;
  private readonly work: WorkForPeers;
  private reportTimer: NodeJS.Timeout | undefined;
  private lastReported = '';
  private onDeclaredDead!: (reason: string) => void;
  /**
   * Resolves, with the GCS's reason, if the GCS declares this node dead (it missed health checks
   * while cut off, or was unregistered): the node must not go on as itself (a `miniray start`
   * node exits; a driver's remote work fails with NodeDiedError).
   */
  readonly declaredDead = new Promise<string>((resolve) => (this.onDeclaredDead = resolve));

  constructor(options: AgentOptions) {
    this.node = options.node;
    this.self = options.node.nodeId;
    this.canGrow = options.canGrow;
    this.context = new AgentContext(options, (nodeId, wasOpen) => {
      this.nodeUnreachable(nodeId);
      if (wasOpen) this.peerGone(nodeId);
    });
    this.placement = new Placement(this.context);
    this.tasks = new RemoteTasks(this.context, this.placement);
    this.actors = new RemoteActors(this.context, this.placement, this.tasks);
    this.objects = new ObjectTransfer(this.context);
    this.work = new WorkForPeers(this.context, this.objects);
  }

  /**
   * A connection another node opened to this one (or this node's own to the head) serves as the
   * link to that node too: one connection per pair of nodes, used both ways.
   */
  adopt(peer: Peer): void {
    this.context.links.adopt(peer);
  }

  private get gcs(): GcsClient {
    return this.context.gcs;
  }

  /**
   * Registers the node with the GCS (at `address`, where other nodes reach it), learns the
   * cluster, and starts reporting this node's free resources.
   */
  async join(gcs: GcsClient, address: string, isDriver: boolean): Promise<void> {
    this.context.gcsClient = gcs;
    const resources = { CPU: this.node.options.numCpus, ...this.node.options.resources };
    this.gcs.onPublish('nodes', ({ event, node }) => {
      if (event === 'added') this.addNode(node);
      else if (node.nodeId === this.self) this.diedHere(node.deathReason ?? 'the GCS published this node as dead');
      else this.removeNode(node.nodeId);
    });
    this.gcs.onPublish('resources', ({ nodes }) => {
      for (const { nodeId, available, resources } of nodes) {
        const view = this.context.views.get(nodeId);
        if (view === undefined) continue;
        if (view.actorCpus > 0 && available['CPU'] !== view.available['CPU']) view.actorCpus = 0;
        view.available = available;
        // Totals change as placement groups' bundles come and go (helper pg).
        view.info = { ...view.info, resources };
      }
      this.tasks.unpark();
      this.actors.unparkActors();
    });
    this.gcs.onPublish('actors', ({ actor }) => this.actors.actorSeen(actor));
    this.registration = { nodeId: this.self, address, resources, isDriver };
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
      const known = this.context.views.has(info.nodeId) || this.unreachable.delete(info.nodeId);
      // Nodes known already keep their views (what was sent there is counted in them); one the
      // GCS has found dead while this node was away from it (the head node before a restart) goes.
      if (info.alive && !this.context.views.has(info.nodeId)) this.addNode(info);
      else if (!info.alive && info.nodeId !== this.self && known) this.removeNode(info.nodeId);
    }
    await via.subscribe(['nodes', 'resources', 'actors']);
    // Rows that changed while this node was not subscribed are read once: a GCS restarted on Redis
    // marks the head node from before dead (its actors RESTARTING) before anyone subscribes, and
    // a DEAD published while this node's link reconnected is gone. Their restarts and callers must
    // not wait for a message nobody will send again.
    for (const actor of await via.listActors()) if (actor.state !== 'ALIVE') this.actors.actorSeen(actor);
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
    const view = this.context.views.get(nodeId);
    if (nodeId === this.self || view === undefined || this.context.stopped) return;
    this.context.views.delete(nodeId);
    this.unreachable.set(nodeId, view.info);
    setTimeout(() => {
      if (!this.unreachable.has(nodeId) || this.context.stopped) return;
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
    this.context.stopped = true;
    if (this.reportTimer !== undefined) clearInterval(this.reportTimer);
    this.context.links.closeAll('node shut down');
    this.objects.stop();
  }

  isDead(nodeId: string): boolean {
    return this.context.deadNodes.has(nodeId);
  }

  /** The other nodes this node knows to be alive. */
  get otherNodes(): number {
    return this.context.otherNodes;
  }

  // Read for every task the node submits: straight to the context, no getter in between.
  get alone(): boolean {
    return this.context.otherNodes === 0;
  }

  private addNode(info: NodeInfo): void {
    if (!info.alive) return;
    this.unreachable.delete(info.nodeId);
    this.context.views.set(info.nodeId, { info, available: info.available, sentCpus: 0, actorCpus: 0 });
    this.tasks.unpark();
    this.actors.unparkActors();
  }

  private removeNode(nodeId: string): void {
    // First: what reacts below (lineage reruns, actor restarts) must not pick the dead node, nor
    // read copies there (Node asks isDead).
    this.context.deadNodes.add(nodeId);
    this.context.views.delete(nodeId);
    this.unreachable.delete(nodeId);
    this.node.ownerLeft(nodeId);
    this.node.remoteObjects.nodeDied(nodeId);
    this.actors.actorsLost(nodeId);
    this.work.ownerDied(nodeId);
    this.context.links.drop(nodeId, 'the GCS reports the node dead');
    // Last: the work it fails over is placed again, on the nodes left.
    this.tasks.nodeDied(nodeId);
  }

  /**
   * The GCS declared this node dead: it is no longer a member. Work this node sent elsewhere fails
   * with NodeDiedError (those nodes have dropped it), and new work is not sent; the process is
   * told through declaredDead (a `miniray start` node exits). Also for whoever hears it from the
   * GCS another way (registerNode answered NodeDead, e.g. on reconnecting to a restarted GCS).
   */
  diedHere(reason: string): void {
    // Stopping already (a node that unregisters as it stops hears of its own death): nothing to say.
    if (this.context.deathReason !== undefined || this.context.stopped) return;
    this.context.deathReason = reason;
    this.tasks.failInFlight();
    this.onDeclaredDead(reason);
  }

  private report(via: GcsClient = this.gcs): void {
    const available = this.node.available();
    const totals = this.node.totals();
    const totalsKey = JSON.stringify(totals);
    const key = JSON.stringify(available) + totalsKey;
    if (key === this.lastReported || this.context.stopped) return;
    this.lastReported = key;
    // Totals only when they changed (placement groups' bundles: helper pg).
    const changed = totalsKey !== this.lastTotals;
    this.lastTotals = totalsKey;
    via.reportResources(this.self, available, changed ? totals : undefined);
  }

  private lastTotals = '';

  /**
   * A node's connection closed: what this node kept for its owners goes, its borrows end, its
   * pulls' leases come back. (Tasks sent there fail through their requests.)
   */
  private peerGone(nodeId: string): void {
    this.work.peerGone(nodeId);
    this.objects.peerGone(nodeId);
  }

  // ---- what the node asks of the cluster (ClusterLink), done by the parts ----

  takeTask(work: RemoteWork, canRunHere: boolean): boolean {
    return this.tasks.takeTask(work, canRunHere);
  }

  cancelRemote(spec: TaskSpec, force: boolean, recursive = false): void {
    this.tasks.cancelRemote(spec, force, recursive);
  }

  // env (runtime-env helper): cancel of a call to an actor on another node, and working-dir packages.
  cancelRemoteCall(returnId: string, recursive: boolean, error: Uint8Array, tries = 0): void {
    // Sent: its node cancels it. Not sent yet (its actor's node is being looked up): it never will be.
    if (this.tasks.cancelSent(returnId, false, recursive) || this.actors.failQueuedCall(returnId, error)) return;
    // Neither: on its way out (its connection is being made, or relocating); asked again shortly, for a few seconds.
    if (tries < 40 && !this.context.stopped) setTimeout(() => this.cancelRemoteCall(returnId, recursive, error, tries + 1), Math.min(5 * 2 ** tries, 200)).unref();
  }

  fetchPackage(key: string): Promise<Uint8Array | null> {
    return this.gcs.kvGet(PACKAGES, key);
  }

  actorTaskRetries(actorId: string): number | undefined {
    return this.actors.actorTaskRetries(actorId);
  }

  callRemoteActor(work: RemoteWork<ActorCallSpec>): void {
    this.actors.callRemoteActor(work);
  }

  takeActor(functions: readonly FunctionDescriptor[], spec: ActorSpec, canRunHere: boolean): boolean | Error {
    return this.actors.takeActor(functions, spec, canRunHere);
  }

  registerActor(spec: ActorSpec, functions: readonly FunctionDescriptor[], onNameTaken: () => void): void {
    this.actors.registerActor(spec, functions, onNameTaken);
  }

  claimActorName(spec: ActorSpec, callback: (holder: { actorId: ActorIdHex; ownerNodeId: string; detached: boolean } | null) => void): void {
    this.actors.claimActorName(spec, callback);
  }

  actorDied(actorId: ActorIdHex, reason: string): void {
    this.actors.actorDied(actorId, reason);
  }

  actorAlive(actorId: ActorIdHex, numRestarts: number): void {
    this.actors.actorAlive(actorId, numRestarts);
  }

  killRemoteActor(actorId: ActorIdHex, noRestart: boolean, outOfScope = false, ownerDied?: string): void {
    this.actors.killRemoteActor(actorId, noRestart, outOfScope, ownerDied);
  }

  lookupActor(name: string, namespace: string, callback: (info: ActorInfo | null) => void): void {
    this.actors.lookupActor(name, namespace, callback);
  }

  info(query: ClusterQuery, callback: (answer: ClusterAnswer) => void): void {
    answerClusterQuery(this.gcs, query, callback);
  }

  localize(ids: readonly string[], done: () => void): void {
    this.objects.localize(ids, done);
  }

  freed(id: string, entry: ObjectEntry<unknown>): void {
    this.objects.freed(id, entry);
  }

  letGo(location: string, owner: string, ids: readonly string[]): void {
    this.objects.letGo(location, owner, ids);
  }

  ownerDied(failed: ReadonlyMap<string, readonly { readonly id: string; readonly message: string }[]>): void {
    for (const [nodeId, objects] of failed) this.context.links.tell(this.context.links.link(nodeId), 'ownerDied', { failed: objects });
  }

  borrow(ownerNode: string, ids: readonly string[]): void {
    this.objects.borrow(ownerNode, ids);
  }

  generatorItem(spec: TaskSpec, index: number, value: RemoteValue, ack: (consumed: number) => void): void {
    this.work.generatorItem(spec, index, value, ack);
  }

  forwardLogs(ownerNode: string, lines: readonly ForwardedLogLine[]): void {
    this.work.forwardLogs(ownerNode, lines);
  }

  // ---- what other nodes ask of this one ----

  /**
   * A group ended (removed, or its creation refused by this node: helper pg): the node ends its
   * work here, and the work parked for it fails with its error.
   */
  placementGroupEnded(placementGroupId: string): void {
    this.node.placementGroupRemoved(placementGroupId);
    this.report();
    const error = this.node.groupRemovedError(placementGroupId);
    this.tasks.failParkedIn(placementGroupId, error);
    this.actors.failParkedIn(placementGroupId, error);
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
        this.tasks.unpark();
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
      .handle('executeTask', parse.executeTask, (body, peer) => this.work.executeTask(body, peer))
      .on('createActor', parse.createActor, (body) => this.work.createActor(body))
      .on('killActor', parse.killActor, ({ actorId, noRestart, outOfScope, ownerDied }) => node.killActor(actorId, noRestart, outOfScope === true, ownerDied))
      .on('cancelTask', parse.cancelTask, ({ returnId, force, recursive }) => node.cancel(returnId, force, recursive === true))
      .handle('getObject', parse.objectId, ({ id, lostAt }, _peer, signal) => {
        // The asker could not read the copy it was told of: made again first (or failed, saying why).
        if (lostAt !== undefined) node.remoteObjects.holderLost(id, lostAt);
        return new Promise<RemoteValue>((resolve) => {
          const withdraw = node.remoteObjects.whenExists(id, this.context.inlineLimit, resolve);
          signal.addEventListener('abort', withdraw, { once: true });
        });
      })
      .handle('pullObject', parse.objectId, ({ id }, peer) => this.objects.startPull(id, peer))
      .handle('readChunk', parse.readChunk, (body, peer) => this.objects.readChunk(body, peer))
      .on('endPull', parse.pullId, ({ pullId }, peer) => this.objects.endPull(pullId, peer))
      .on('freeObjects', parse.freeObjects, (body, peer) => this.objects.freeObjects(body, peer))
      .on('ownerDied', parse.ownerDied, ({ failed }, peer) => node.remoteObjects.ownerDiedAt(peer.hello.nodeId, failed))
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
      .on('generatorAck', parse.generatorAck, ({ generatorId, consumed }) => this.work.generatorAck(generatorId, consumed));
  }
}
