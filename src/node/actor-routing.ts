/**
 * Actors of this node's CoreWorkers: created here or, placed by the cluster, on another node;
 * names claimed from the GCS (getIfExists across the cluster) and the aliases of handles that lost
 * the race; lookup, kill and the end of an actor whose handles are all gone; and each call sent to
 * its actor, here or through the cluster where it lives.
 */
import type { ActorIdHex } from '../ids/index.js';
import type { ActorCallSpec, ActorInfo, ActorLookupCallback, ActorSpec, RemoteValue } from '../protocol/index.js';
import type { FunctionDescriptor } from '../serialization/index.js';
import type { NodeContext } from './context.js';

/**
 * What a handle asks of an actor that is not there yet, kept in the order asked: while its
 * getIfExists name claim is unanswered (the claim decides which actor that is: the claimant, or the
 * holder it loses to), or while its working-dir package is unpacked here (it is created after).
 */
export type AwaitingActor =
  | { readonly kind: 'call'; readonly spec: ActorCallSpec; readonly fromPeer: boolean; readonly attempt: number }
  | { readonly kind: 'kill'; readonly noRestart: boolean; readonly outOfScope: boolean }
  | { readonly kind: 'outOfScope' };

export class ActorRouting {
  constructor(private readonly context: NodeContext) {}

  /**
   * Creates an actor of a CoreWorker of this node, here or (placed by the cluster) on another node.
   * `throwIfNameTaken`: the caller can be told at once that this node knows the name is taken
   * (the driver, and a thread waiting for the answer: see NameAnswer), and then nothing is made;
   * otherwise the actor is created dead.
   */
  createActor(functions: readonly FunctionDescriptor[], spec: ActorSpec, throwIfNameTaken = true): ActorInfo | undefined {
    for (const fn of functions) this.context.functions.set(fn.id, fn);
    // getIfExists: the live actor of that name (this node's table decides, in one turn: no race).
    // The driver is answered at once; a worker's handle, already made, becomes an alias of it.
    const existing = spec.getIfExists === true && spec.name !== undefined ? this.context.actors.lookup(spec.name, spec.namespace) : null;
    if (existing !== null) {
      if (throwIfNameTaken) return existing;
      this.context.objects.addActorHandle(spec.actorId, spec.owner.workerId);
      this.context.objects.hold(spec.actorId, [existing.actorId], `handle of actor ${spec.className} (getIfExists)`);
      this.context.actors.alias(spec.actorId, existing.actorId);
      return undefined;
    }
    // In a cluster the GCS has the last word on names: claim it first, so that no constructor runs
    // for a caller that loses the race (its handle then reaches the winner); calls wait meanwhile.
    if (spec.getIfExists === true && spec.name !== undefined && this.context.cluster !== undefined) {
      this.context.objects.addActorHandle(spec.actorId, spec.owner.workerId);
      // Claimed on this node already (its GCS answer not back): that one is the actor.
      const claimant = this.claimingNames.get(`${spec.namespace}\0${spec.name}`);
      if (claimant !== undefined) {
        if (throwIfNameTaken) return claimant;
        this.remoteAliases.set(spec.actorId, claimant.actorId);
        this.context.objects.hold(spec.actorId, [claimant.actorId], `handle of actor ${spec.className} (getIfExists)`);
        return undefined;
      }
      this.claimingNames.set(`${spec.namespace}\0${spec.name}`, this.actorInfoOf(spec));
      this.claiming.set(spec.actorId, []);
      this.context.cluster.claimActorName(spec, (holder) => this.nameClaimed(functions, { ...spec, getIfExists: false }, holder));
      return undefined;
    }
    if (throwIfNameTaken) {
      const taken = this.context.actors.nameTaken(spec);
      if (taken !== undefined) throw taken; // before anything is registered for it
    }
    // Actor lifetimes: its handles are counted here, at its owner's node, wherever it runs.
    if (spec.detached !== true) this.context.objects.addActorHandle(spec.actorId, spec.owner.workerId);
    const canRunHere = this.context.dispatcher.canRun(spec);
    const taken = this.context.cluster?.takeActor(this.context.definitionsFor(spec.classId), spec, canRunHere) ?? false;
    if (taken === true) return;
    if (taken === false && !this.context.envs.workingDirReady(spec.runtimeEnv)) {
      this.context.envs.whenWorkingDirReady(spec, (error) => this.context.actors.create(spec, { throwIfNameTaken: false, ...(error === undefined ? {} : { failWith: error }) }));
    } else this.context.actors.create(spec, { throwIfNameTaken, ...(taken === false ? {} : { failWith: taken }) });
    // Actors are found from every node (handles travel, names are cluster-wide): the cluster's
    // table has the last word on names.
    this.context.cluster?.registerActor(spec, this.context.definitionsFor(spec.classId), () => this.context.actors.failNameTaken(spec.actorId));
    return undefined;
  }

  // getIfExists across the cluster (actors part).
  /** Actors whose name the GCS is asked for, with the calls and kills that wait for its answer. */
  private readonly claiming = new Map<ActorIdHex, AwaitingActor[]>();

  /** Handles' IDs that stand for a live actor of another node that had the name (by its ID). */
  private readonly remoteAliases = new Map<ActorIdHex, ActorIdHex>();

  /** Names claimed from this node and not answered yet, with the claimant (later callers reach it). */
  private readonly claimingNames = new Map<string, ActorInfo>();

  /**
   * The actor a handle's ID stands for: an alias may stand for a claimant that itself lost its
   * claim, so aliases are followed (a few steps: a chain is at most claimant, then holder).
   */
  private aliasedActor(actorId: ActorIdHex): ActorIdHex {
    for (let holder = this.remoteAliases.get(actorId), steps = 0; holder !== undefined && steps < 4; holder = this.remoteAliases.get(holder), steps++) actorId = holder;
    return actorId;
  }

  /** What a handle of an actor created from this spec needs. */
  private actorInfoOf(spec: ActorSpec): ActorInfo {
    const info: { -readonly [K in keyof ActorInfo]: ActorInfo[K] } = { actorId: spec.actorId, className: spec.className, methodNames: spec.methodNames };
    if (spec.detached !== true) info.owner = spec.owner;
    if (spec.methodOptions !== undefined) info.methodOptions = spec.methodOptions;
    if (spec.generatorMethods !== undefined) info.generatorMethods = spec.generatorMethods; // generators
    return info;
  }

  /** The GCS answered a getIfExists claim: create the actor, or make its ID stand for the holder. */
  private nameClaimed(functions: readonly FunctionDescriptor[], spec: ActorSpec, holder: { actorId: ActorIdHex; ownerNodeId: string; detached: boolean } | null): void {
    const queued = this.claiming.get(spec.actorId) ?? [];
    this.claiming.delete(spec.actorId);
    this.claimingNames.delete(`${spec.namespace}\0${spec.name}`);
    if (holder === null) this.createActor(functions, spec, false);
    else {
      this.remoteAliases.set(spec.actorId, holder.actorId);
      // The alias's handles keep the holder alive: this node borrows its handles from its owner.
      if (!holder.detached) {
        if (holder.ownerNodeId !== this.context.nodeId && this.context.objects.get(holder.actorId) === undefined) {
          this.context.objects.addForeign(holder.actorId, holder.ownerNodeId);
          this.context.cluster?.borrow(holder.ownerNodeId, [holder.actorId]);
        }
        this.context.objects.hold(spec.actorId, [holder.actorId], `handle of actor ${spec.className} (getIfExists)`);
      }
    }
    // Each goes where the claim's outcome says, in the order asked (a kill after a call, as it came).
    this.replay(spec.actorId, queued);
  }

  /** Sends on what waited for the actor `actorId` (see AwaitingActor), in the order it came. */
  replay(actorId: ActorIdHex, queued: readonly AwaitingActor[]): void {
    for (const item of queued) {
      if (item.kind === 'call') this.callActor(item.spec, item.fromPeer, item.attempt);
      else if (item.kind === 'kill') this.killActor(actorId, item.noRestart, item.outOfScope);
      else this.actorOutOfScope(actorId);
    }
  }

  /** An actor of this node's that the cluster held back (its placement group's bundle was not placed) and now finds room for here (helper pg). */
  createActorHere(spec: ActorSpec): void {
    this.context.envs.whenWorkingDirReady(spec, (error) => this.context.actors.create(spec, { throwIfNameTaken: false, ...(error === undefined ? {} : { failWith: error }) }));
    this.context.cluster?.registerActor(spec, this.context.definitionsFor(spec.classId), () => this.context.actors.failNameTaken(spec.actorId));
  }

  lookupActor(name: string, namespace: string, callback: ActorLookupCallback): void {
    const info = this.context.actors.lookup(name, namespace);
    if (info !== null || this.context.cluster === undefined) callback(info);
    else this.context.cluster.lookupActor(name, namespace, callback);
  }

  /**
   * `outOfScope`: its owner on another node found no handle left, or (`ownerDied`, the reason its
   * callers see) the worker that owned it there ended.
   */
  killActor(actorId: ActorIdHex, noRestart: boolean, outOfScope = false, ownerDied?: string): void {
    actorId = this.aliasedActor(actorId);
    // Its name claim is not answered: which actor this handle reaches is not known yet (as Ray's
    // getIfExists handle is the holder's, a kill through it ends the holder if the claim lost).
    const awaiting = this.claiming.get(actorId) ?? this.context.envs.awaitingWorkingDir?.get(actorId);
    if (awaiting !== undefined) return void awaiting.push({ kind: 'kill', noRestart, outOfScope });
    if (outOfScope && this.context.actors.has(actorId)) this.context.actors.outOfScope(actorId, ownerDied);
    else if (this.context.actors.has(actorId) || this.context.cluster === undefined) this.context.actors.kill(actorId, noRestart);
    else this.context.cluster.killRemoteActor(actorId, noRestart, outOfScope, ownerDied);
  }

  /**
   * Actor lifetimes: no handle to a non-detached actor is left anywhere, and no call of it is
   * pending (each call holds its actor's handles, as Ray's calls do): it ends, and what it held is
   * freed. One on another node is ended there through the cluster. `ownerDied`: rather, the
   * thread that owns its handles ended (the reason its callers see), which ends it even while
   * borrowers hold handles, as Ray's actors end with their owner.
   */
  actorOutOfScope(actorId: ActorIdHex, ownerDied?: string): void {
    if (this.context.actors.unalias(actorId) || this.remoteAliases.delete(actorId)) return this.context.objects.releaseHolds(actorId);
    // Its name claim is not answered: ended (or its alias dropped) once it is known which it is.
    const awaiting = this.claiming.get(actorId) ?? this.context.envs.awaitingWorkingDir?.get(actorId);
    if (awaiting !== undefined) return void awaiting.push({ kind: 'outOfScope' });
    if (this.context.actors.has(actorId) || this.context.cluster === undefined) this.context.actors.outOfScope(actorId, ownerDied);
    else this.context.cluster.killRemoteActor(actorId, true, true, ownerDied);
  }

  /** Creates an actor another node placed here, once its constructor arguments are taken in. */
  createActorForPeer(functions: readonly FunctionDescriptor[], spec: ActorSpec, args: readonly RemoteValue[]): void {
    for (const fn of functions) this.context.functions.set(fn.id, fn);
    if (this.context.actors.has(spec.actorId)) return;
    const ownerNode = spec.owner.nodeId;
    for (const arg of args) this.context.objects.addForeign(arg.id, ownerNode);
    this.context.envs.whenWorkingDirReady(spec, (error) => {
      if (!this.context.actors.has(spec.actorId)) this.context.actors.create(spec, { throwIfNameTaken: false, ...(error === undefined ? {} : { failWith: error }) });
    });
    this.context.remoteObjects.storeValues(args, ownerNode, true);
    // (Its owner registered it with the GCS when it placed it here.)
  }

  /** Sends an actor call to its actor: here, or through the cluster where it lives. */
  callActor(spec: ActorCallSpec, fromPeer: boolean, attempt = 0): void {
    const awaiting = this.context.envs.awaitingWorkingDir?.get(spec.actorId);
    if (awaiting !== undefined) return void awaiting.push({ kind: 'call', spec, fromPeer, attempt });
    // getIfExists across the cluster (actors part): a call waits for the claim, or goes to the holder.
    if (!fromPeer && (this.claiming.size > 0 || this.remoteAliases.size > 0)) {
      const actorId = this.aliasedActor(spec.actorId);
      if (actorId !== spec.actorId) spec = { ...spec, actorId };
      const waiting = this.claiming.get(spec.actorId);
      if (waiting !== undefined) return void waiting.push({ kind: 'call', spec, fromPeer, attempt });
    }
    if (this.context.actors.has(spec.actorId) || this.context.cluster === undefined || fromPeer) this.context.actors.submitCall(spec, attempt);
    else this.context.cluster.callRemoteActor(this.context.tasks.remoteWork(spec, undefined));
  }
}
