/**
 * Actors on other nodes, as this node sees them: placing the ones it creates, calls to them (in
 * submission order, waiting while the actor's node is looked up or the actor restarts elsewhere,
 * sent again after an instance was lost within maxTaskRetries), names, kill, and restarts.
 *
 * Who restarts an actor whose node died: the GCS decides (it moves the row to RESTARTING while
 * restarts remain, else DEAD: one place counts them), and a restarter places the new instance.
 * The restarter of an actor that ends with its owner is the owner's node, which holds its
 * creation spec and its constructor arguments (and already placed it once); a detached actor's
 * owner may be gone, so its creation is kept in the GCS (KV namespace 'actor') and the head's node
 * restarts it, as Ray's GCS does. Callers anywhere learn of the move on the `actors` channel.
 */
import { ActorDiedError, ConnectionError, GcsUnavailableError, MinirayError } from '../errors/index.js';
import type { ActorEntry, ActorIdHex, GcsClient, NodeIdHex } from '../gcs/index.js';
import type { RemoteWork } from '../node/index.js';
import { groupsIn } from '../placement-group/resources.js';
import type { ActorCallSpec, ActorInfo, ActorLookupCallback, ActorSpec, RemoteValue } from '../protocol/index.js';
import { encodeError, type FunctionDescriptor } from '../serialization/index.js';
import { type AgentContext } from './context.js';
import { functionCodec } from './functions.js';
import { parse } from './messages.js';
import { warnWaiting, type Placement } from './placement.js';
import type { RemoteTasks } from './remote-tasks.js';

/** Calls to an actor whose node was lost ask the GCS this often for its next instance (besides the `actors` channel). */
const RELOCATE_POLL_MS = 1000;

/** The GCS KV namespace of detached actors' creation records (what the head's node restarts them from). */
const CREATIONS = 'actor';

export class RemoteActors {
  constructor(
    private readonly context: AgentContext,
    private readonly placement: Placement,
    private readonly tasks: RemoteTasks,
  ) {}

  /** Where each actor of another node is (or a promise of it, while the GCS is asked). */
  private readonly actorNodes = new Map<string, string | Promise<string | undefined>>();
  /** Calls to each remote actor waiting for its node to be known, in order. */
  private readonly actorCallQueues = new Map<string, ActorCall[]>();

  actorTaskRetries(actorId: string): number | undefined {
    return this.actorRetries.get(actorId);
  }

  callRemoteActor(work: RemoteWork<ActorCallSpec>): void {
    this.dispatchCall({ work, seq: this.nextCallSeq++, tries: 0, mayHaveRun: false });
  }

  private nextCallSeq = 1;

  private dispatchCall(call: ActorCall): void {
    const actorId = call.work.spec.actorId as ActorIdHex;
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
    if (nodeId === this.context.self) {
      // The actor was restarted on this node: its calls from here are local now.
      this.context.node.callActorHere(spec);
      return;
    }
    const link = this.context.views.has(nodeId) ? this.context.links.link(nodeId) : undefined;
    if (link === undefined) {
      this.requeue(call, nodeId); // its node is gone, and nothing was sent: it waits for the next instance
      return;
    }
    // Whether the call left this node decides whether it may have run: a connection that failed
    // or closed before it was sent costs no retry.
    link.peer.then(
      (peer) => {
        if (peer.isClosed) return this.requeue(call, nodeId);
        this.tasks.send(
          {
            spec,
            // Each time it is sent again (its instance was lost), a new attempt.
            attempt: call.work.attempt + call.tries,
            traced: call.work.traced,
            function: undefined,
            done: (values, from) => call.work.done(values, from),
            lost: (error) => {
              // A call refused for another reason than a lost connection (to a node that lives) fails as before.
              if (!(error.cause instanceof ConnectionError) && this.context.views.has(nodeId)) return call.work.lost(error);
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
    const actorId = call.work.spec.actorId as ActorIdHex;
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
  private relocate(actorId: ActorIdHex, lostNode: string): void {
    if (this.relocating.has(actorId)) return;
    let resolve: (nodeId: string | undefined) => void = () => {};
    const moved = new Promise<string | undefined>((done) => (resolve = done));
    const relocation: Relocation = { from: lostNode, sinceMs: performance.now(), resolve, timer: undefined };
    this.relocating.set(actorId, relocation);
    this.actorNodes.set(actorId, moved);
    if (!this.actorCallQueues.has(actorId)) this.actorCallQueues.set(actorId, []);
    const poll = (): void => {
      if (this.relocating.get(actorId) !== relocation || this.context.stopped) return;
      this.context.gcs.getActor(actorId).then(
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
  actorSeen(entry: ActorEntry): void {
    const actorId = entry.actorId;
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
      if (elsewhere || (this.context.views.has(entry.nodeId) && performance.now() - relocation.sinceMs >= RELOCATE_POLL_MS)) this.finishRelocation(actorId, entry.nodeId);
    }
  }

  /**
   * An actor is DEAD in the GCS, which has the last word: what this node kept to restart it goes,
   * and an instance of it here (a restart that came up after its owner died, say) ends.
   */
  private forgetActor(entry: ActorEntry, followed: boolean): void {
    const actorId = entry.actorId;
    // The reason is kept only for calls waiting here (releaseCalls reads it, then drops it).
    if (followed && (this.actorCallQueues.has(actorId) || this.relocating.has(actorId))) this.deadActors.set(actorId, entry.reason ?? 'it is dead');
    this.actorRetries.delete(actorId);
    this.restartsMade.delete(actorId);
    if (this.ownedActors.delete(actorId)) this.context.node.releaseForRestart(actorId);
    if (entry.detached && this.context.options.restartsDetached === true) void this.context.gcs.kvDel(CREATIONS, actorId).catch(() => {});
    this.context.node.actorDeadInCluster(actorId, entry.reason ?? 'the cluster reports it dead');
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
    if (this.context.options.restartsDetached !== true) return;
    this.restartsMade.set(actorId, entry.numRestarts);
    void this.context.gcs.kvGet(CREATIONS, actorId).then(
      (stored) => {
        const creation = stored === null ? undefined : decodeCreation(stored);
        if (creation === undefined) {
          void this.context.gcs.updateActor(entry.actorId, 'DEAD', { reason: 'its node died, and its creation record was not found in the GCS to restart it' }).catch(() => {});
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
    const target = this.placement.place(spec, this.context.node.canRun(spec), true);
    if (target instanceof Error) {
      void this.context.gcs.updateActor(spec.actorId, 'DEAD', { reason: `it could not be restarted: ${target.message}` }).catch(() => {});
      return;
    }
    const start = (nodeId: string): void => {
      // Where the restart went: if that node dies too before the instance is up, the GCS sees it.
      void this.context.gcs.updateActor(spec.actorId, 'RESTARTING', { nodeId: nodeId as NodeIdHex }).catch(() => {});
      const values = args ?? spec.dependencies.map((id) => this.context.node.remoteObjects.valueFor(id, this.context.inlineLimit));
      if (nodeId === this.context.self) {
        this.context.node.createActorForPeer(creation.functions, spec, values);
        return;
      }
      const view = this.context.views.get(nodeId);
      if (view !== undefined) view.actorCpus += spec.numCpus;
      this.context.links.tell(this.context.links.link(nodeId), 'createActor', { functions: creation.functions, spec, args: values });
    };
    if (target === undefined) {
      warnWaiting(`actor ${spec.className}`, spec, this.placement.nodeTotals());
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
        void this.context.gcs.kvPut(CREATIONS, spec.actorId, record, true).catch(() => {});
      };
      if (remaining === 0) return save();
      ids.forEach((id, i) =>
        this.context.node.remoteObjects.whenExists(id, this.context.inlineLimit, (value) => {
          values[i] = value;
          if (--remaining === 0) save();
        }),
      );
      return;
    }
    if (spec.maxRestarts === 0) return;
    this.ownedActors.set(spec.actorId, { functions, spec });
    this.context.node.holdForRestart(spec.actorId, [...spec.dependencies, ...(spec.nestedRefs ?? [])]);
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
   * GCS restarts or ends those actors).
   */
  actorsLost(nodeId: string): void {
    for (const [actorId, where] of this.actorNodes) if (where === nodeId) this.actorNodes.delete(actorId);
  }

  private actorNode(actorId: ActorIdHex): Promise<string | undefined> {
    const known = this.actorNodes.get(actorId);
    if (typeof known === 'string') return Promise.resolve(known);
    if (known !== undefined) return known;
    const asked = this.context.gcs.getActor(actorId).then(
      (entry) => {
        if (this.actorNodes.get(actorId) !== asked) return this.actorNode(actorId); // moved meanwhile
        if (entry !== null) this.actorRetries.set(actorId, entry.maxTaskRetries);
        if (entry === null || entry.state === 'DEAD') {
          if (entry !== null) this.deadActors.set(actorId, entry.reason ?? 'it is dead');
          this.actorNodes.delete(actorId);
          return undefined;
        }
        if (entry.state === 'RESTARTING' || !this.context.views.has(entry.nodeId)) {
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
    if (canRunHere && this.context.otherNodes === 0 && typeof spec.strategy !== 'object') return false;
    // In a placement group, alone: its bundle can only be here, and the actor waits here for it (helper pg).
    if (this.context.otherNodes === 0 && !this.context.canGrow && groupsIn(spec.resources).length > 0) {
      const removed = groupsIn(spec.resources).find((group) => this.context.node.removedGroups.has(group));
      return removed === undefined ? false : this.context.node.groupRemovedError(removed);
    }
    const target = this.placement.place(spec, canRunHere, true);
    if (target === this.context.self) return false;
    if (target instanceof Error) return target;
    for (const fn of functions) this.context.functions.publish(fn);
    if (target === undefined) {
      // No node can host it now: it waits for one (its calls wait with it).
      if (groupsIn(spec.resources).length === 0) warnWaiting(`actor ${spec.className}`, spec, this.placement.nodeTotals());
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

  unparkActors(): void {
    for (const parked of this.parkedActors.splice(0)) {
      // In a placement group, its bundle may now be here (helper pg).
      const inGroup = parked.restart === undefined && groupsIn(parked.spec.resources).length > 0;
      const target = this.placement.place(parked.spec, (parked.restart !== undefined || inGroup) && this.context.node.canRun(parked.spec), true);
      if (target === undefined) this.parkedActors.push(parked);
      else if (inGroup && target === this.context.self) {
        this.actorNodes.set(parked.spec.actorId, this.context.self);
        this.context.node.createActorHere(parked.spec);
        parked.placed(this.context.self);
      }
      else if (parked.restart !== undefined) {
        if (target instanceof Error) void this.context.gcs.updateActor(parked.spec.actorId, 'DEAD', { reason: `it could not be restarted: ${target.message}` }).catch(() => {});
        else parked.restart(target);
      } else if (target instanceof Error || target === this.context.self) parked.placed(undefined);
      else parked.placed(this.placeActor(parked.functions, parked.spec, target));
    }
  }

  /** Sends an actor's creation to `target` (a named one once its name is its own, cluster-wide). */
  private placeActor(functions: readonly FunctionDescriptor[], spec: ActorSpec, target: string): string {
    this.actorNodes.set(spec.actorId, target);
    this.actorRetries.set(spec.actorId, spec.maxTaskRetries);
    // Else every actor of a burst goes to the node that looked freest, and waits there for its CPUs.
    const targetView = this.context.views.get(target);
    if (targetView !== undefined) targetView.actorCpus += spec.numCpus;
    const create = (): void => {
      const link = this.context.links.link(target);
      const args = spec.dependencies.map((id) => this.context.node.remoteObjects.valueFor(id, this.context.inlineLimit));
      this.context.links.tell(link, 'createActor', { functions, spec, args });
      this.keepCreation(functions, spec);
    };
    const entry = actorEntry(spec, target);
    if (spec.name === undefined) {
      // The row first: the instance reports ALIVE to it.
      void this.context.gcs.registerActor(entry).catch(() => {});
      create();
      return target;
    }
    // Calls wait for the name to be granted.
    const registered = this.context.gcs.registerActor(entry).then(
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
    void this.context.gcs
      .registerActor(actorEntry(spec, this.context.self))
      .then((answer) => {
        if (!answer.ok) onNameTaken();
        else this.keepCreation(functions, spec);
      }, () => {});
  }

  claimActorName(spec: ActorSpec, callback: (holder: { actorId: ActorIdHex; ownerNodeId: string; detached: boolean } | null) => void): void {
    this.context.gcs.registerActor(actorEntry(spec, this.context.self)).then(
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

  actorDied(actorId: ActorIdHex, reason: string): void {
    void this.context.gcs.updateActor(actorId, 'DEAD', { reason }).catch(() => {});
  }

  actorAlive(actorId: ActorIdHex, numRestarts: number): void {
    void this.context.gcs.updateActor(actorId, 'ALIVE', { nodeId: this.context.self, numRestarts }).catch(() => {});
  }

  /** Fails a call still waiting for its actor's node to be known (it will never be sent); false if none waits. */
  failQueuedCall(returnId: string, error: Uint8Array): boolean {
    for (const queue of this.actorCallQueues.values()) {
      const at = queue.findIndex((call) => call.work.spec.returnIds[0] === returnId);
      if (at < 0) continue;
      const [call] = queue.splice(at, 1);
      call?.work.done(call.work.spec.returnIds.map((id) => ({ id, state: 'failed' as const, data: error })));
      return true;
    }
    return false;
  }

  killRemoteActor(actorId: ActorIdHex, noRestart: boolean, outOfScope = false, ownerDied?: string): void {
    if (noRestart && this.relocating.has(actorId)) {
      // Between instances (its node died): the GCS ends it, and a new instance coming up ends on seeing that.
      const reason =
        ownerDied !== undefined ? `actor ${actorId} is dead: ${ownerDied}` : outOfScope ? `actor ${actorId} ended: every handle to it went out of scope (it is not detached)` : `actor ${actorId} was killed with kill()`;
      void this.context.gcs.updateActor(actorId, 'DEAD', { reason }).catch(() => {});
      return;
    }
    void this.actorNode(actorId).then((nodeId) => {
      if (nodeId === undefined) {
        if (!this.actorCallQueues.has(actorId)) this.deadActors.delete(actorId); // no call waits for why
        return;
      }
      if (nodeId === this.context.self) this.context.node.killActor(actorId, noRestart, outOfScope, ownerDied); // restarted here meanwhile
      else {
        const body = outOfScope ? (ownerDied !== undefined ? { actorId, noRestart, outOfScope: true as const, ownerDied } : { actorId, noRestart, outOfScope: true as const }) : { actorId, noRestart };
        this.context.links.tell(this.context.links.link(nodeId), 'killActor', body);
      }
    });
  }

  lookupActor(name: string, namespace: string, callback: ActorLookupCallback): void {
    this.context.gcs.getNamedActor(name, namespace).then(
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
      // Not "no such actor": the GCS could not say (Ray's get_actor fails on a GCS timeout too).
      (error: unknown) => callback(null, error instanceof MinirayError ? error : new GcsUnavailableError(`looking up actor '${name}' in namespace '${namespace}' failed: ${String(error)}`, { cause: error })),
    );
  }

  /** A placement group was removed: the actors that wait for one of its bundles are DEAD, saying why. */
  failParkedIn(placementGroupId: string, error: Error): void {
    for (const parked of this.parkedActors.splice(0)) {
      if (!groupsIn(parked.spec.resources).includes(placementGroupId)) {
        this.parkedActors.push(parked);
        continue;
      }
      this.refusedActors.set(parked.spec.actorId, error.message);
      void this.context.gcs.updateActor(parked.spec.actorId, 'DEAD', { reason: error.message }).catch(() => {});
      parked.placed(undefined);
    }
  }
}

/** An actor's row in the GCS's actor table, placed on `nodeId`. */
function actorEntry(spec: ActorSpec, nodeId: string): Parameters<GcsClient['registerActor']>[0] {
  return {
    actorId: spec.actorId,
    ...(spec.name === undefined ? {} : { name: spec.name }),
    namespace: spec.namespace,
    className: spec.className,
    methodNames: spec.methodNames,
    nodeId: nodeId as NodeIdHex,
    ownerNodeId: spec.owner.nodeId,
    detached: spec.detached === true,
    maxRestarts: spec.maxRestarts,
    maxTaskRetries: spec.maxTaskRetries,
    ...(spec.methodOptions === undefined ? {} : { methodOptions: spec.methodOptions }),
    ...(spec.generatorMethods === undefined ? {} : { generatorMethods: spec.generatorMethods }),
  };
}

/** A call to an actor on another node, until it is answered or failed. */
interface ActorCall {
  readonly work: RemoteWork<ActorCallSpec>;
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
