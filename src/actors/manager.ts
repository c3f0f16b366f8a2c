/**
 * The node's actor table (Ray's GCS actor manager and the raylet's actor part, in one place for a
 * single node): creating actors on their workers, delivering method calls in order, named lookup,
 * kill, and restarts after a worker dies.
 *
 * Actor life: pending (waiting for constructor args, CPUs or its worker) -> alive -> restarting
 * (worker died, restarts left) -> alive ... -> dead (killed, out of restarts, or constructor threw).
 * Calls are kept in submission order; a call is sent once it and every call before it have their
 * ref arguments, and the actor's worker runs them in that order (up to maxConcurrency at once).
 *
 * When an instance is lost, only the calls that had started on it may have caused it, so only they
 * fail or use a retry (maxTaskRetries); the calls sent to it that had not started go to the next
 * instance, in order, at no cost. The worker records the seq of each call it starts in a progress
 * cell the node reads after the worker is gone (calls start in seq order): the worker's own cell
 * for 'thread' and 'process' actors (one actor per worker; a process's is a file), a cell per actor
 * in shared progress blocks for 'shared' ones. A 'shared' actor killed to restart is not a dead
 * worker: the worker drops its queued calls and acknowledges, and the rest had started.
 *
 * In a cluster this table is one node's; the GCS's actor table is the cluster's. An instance that
 * comes up reports ALIVE there with the restarts so far (a restart after its node died starts from
 * the spec's numRestarts), so that worker deaths here and node deaths count against one
 * maxRestarts. A node's death is handled by the GCS and the actor's restarter (src/cluster/agent.ts).
 */
import {
  ActorDiedError,
  InvalidOptionError,
  actorNameTakenError,
  toErrorRecord,
  type ErrorRecord,
} from '../errors/index.js';
import type { ActorInfo, ActorSpec, ExecuteActorCall, ExecuteActorCreation, ExecuteTask, ResourceMap, RuntimeEnvSpec, ActorCallSpec, TaskResult, TaskSpec } from '../protocol/index.js';
import type { ActorIdHex } from '../ids/index.js';
import { decodeErrorRecord, encodeError, encodeErrorRecord, type FunctionDescriptor } from '../serialization/index.js';
import type { PooledWorker } from '../worker-pool/index.js';
import { PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER, type TaskEventBuffer } from '../state/events.js';

/** What the actor manager needs from its node. */
export interface ActorServices {
  functionDescriptor(id: string): FunctionDescriptor | undefined;
  /** A new worker for one actor ('thread', 'process') or for many ('shared'). */
  spawnHost(isolation: 'thread' | 'process', runtimeEnv?: RuntimeEnvSpec): Host;
  /** Whether an actor with this runtime environment needs a worker of its own (env: not the node's default environment). */
  needsOwnHost?(runtimeEnv: RuntimeEnvSpec | undefined): boolean;
  /** Ends an actor's own host worker (`actorClass`: the actor it runs, to name that worker). */
  killHost(host: Host, actorClass: string): void;
  setBusy(host: Host, busy: boolean): void;
  /** Calls `ready` when all `ids` exist, or `failed` with an encoded error (a failed or unknown input). */
  waitForObjects(what: string, ids: readonly string[], ready: () => void, failed: (error: Uint8Array) => void): void;
  /** The values of ref arguments as `host` will read them (with their parts and a lease). */
  argumentsFor(ids: readonly string[], host: Host): Pick<ExecuteTask, 'refArgValues' | 'refArgParts' | 'lease'>;
  /** Stores a call's return values (with any parts `host` attached to the frame). */
  storeResults(host: Host, ids: readonly string[], result: Extract<TaskResult, { outcome: 'ok' }>, attached: readonly SharedArrayBuffer[]): void;
  failObjects(ids: readonly string[], error: Uint8Array): void;
  /** Keeps objects alive under a key (the actor's ID) until releaseHolds(key). */
  hold(key: ActorIdHex, ids: readonly string[], reason: string): void;
  releaseHolds(key: ActorIdHex): void;
  /** Takes the actor's CPUs, GPUs and custom resources from the node's, all or none. */
  tryReserveCpus(amount: number, resources: ResourceMap | undefined, actorId?: string): boolean;
  /** The GPU IDs the actor holds (helper pg), for its creation to carry. */
  gpuIdsOf?(actorId: string): readonly number[] | undefined;
  /** An actor died for good (the cluster's table learns it, so its name is free again). */
  onDead(actorId: ActorIdHex, reason: string): void;
  /** An instance of an actor is up (its constructor returned), after `numRestarts` restarts in all. */
  onAlive(actorId: ActorIdHex, numRestarts: number): void;
  releaseCpus(amount: number, resources: ResourceMap | undefined, actorId?: string): void;
  /** Worker threads for 'shared' actors. */
  readonly sharedHostCount: number;
  /** CPUs of the node: an actor needing more can never start. */
  readonly totalCpus: number;
  /** Where creations' and calls' state changes are recorded (absent: nowhere). */
  readonly taskEvents?: TaskEventBuffer;
  /** This node's ID: output of an actor, or of a call, owned elsewhere is sent to its owner's node. */
  readonly nodeId: string;
}

type Host = PooledWorker<unknown>;
/** An ExecuteTask being built: its optional fields are set after, rather than spread in. */
type Building<T> = { -readonly [K in keyof T]: T[K] };

interface Call {
  readonly spec: ActorCallSpec;
  /** Retries here (actor restarts); its events' attempt is firstAttempt + retries. */
  retries: number;
  /** The owner's attempt, for a call another node sent; else 0. */
  readonly firstAttempt: number;
  /** True once its ref arguments exist. */
  ready: boolean;
  failed: boolean;
  /** Sent, then dropped by the worker before it started (a 'shared' actor killed to restart). */
  dropped: boolean;
  /** cancel() was called on it (env): it has failed with TaskCancelledError; a 'cancelled' report is expected. */
  cancelled?: boolean;
}

/** A 'shared' actor's progress cell: cell `index` of its worker's progress block `block`. */
interface CellRef {
  readonly block: number;
  readonly index: number;
  readonly view: Int32Array;
}

const CELLS_PER_BLOCK = 1024;

/** The progress cells of one 'shared' worker's actors, in blocks of shared memory. */
class ProgressBlocks {
  private readonly blocks: Int32Array[] = [];
  private readonly free: CellRef[] = [];
  /** Blocks the worker has been given (each travels once, attached to a frame). */
  readonly sent = new Set<number>();
  private next = 0;

  take(): CellRef {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    const block = Math.floor(this.next / CELLS_PER_BLOCK);
    const index = this.next++ % CELLS_PER_BLOCK;
    const view = (this.blocks[block] ??= new Int32Array(new SharedArrayBuffer(4 * CELLS_PER_BLOCK)));
    return { block, index, view };
  }

  /**
   * Reuse needs no reset: seqs grow on a worker, so what an earlier actor wrote there is below the
   * seq of any call of the next one.
   */
  give(cell: CellRef): void {
    this.free.push(cell);
  }
}

interface ActorRecord {
  readonly spec: ActorSpec;
  state: 'pending' | 'alive' | 'restarting' | 'dead';
  host: Host | undefined;
  restarts: number;
  /** Encoded ErrorRecord every call gets once the actor is dead. */
  deathCause: Uint8Array | undefined;
  /** Calls not yet sent to the worker, in submission order. */
  calls: Call[];
  /** Calls sent and not finished, by seq. */
  readonly inFlight: Map<number, Call>;
  cpusHeld: number;
  /** It holds its CPUs and resources from the node's (taken when placed, given back when it dies). */
  reserved: boolean;
  argumentsReady: boolean;
  noRestart: boolean;
  /**
   * Set by kill({ noRestart: false }), or by a malformed message from its worker (onHostBad), until
   * the instance is gone (its worker exited, or a 'shared' worker acknowledged the destroy): why it
   * is going. Nothing more is sent to it meanwhile.
   */
  losing: string | undefined;
  /** Its progress cell, on a 'shared' worker. */
  cell: CellRef | undefined;
}

/** What a seq sent to a host stands for: an actor's creation, a call, or the destroy of a 'shared' actor. */
type HostWork =
  | { readonly kind: 'create'; readonly actor: ActorRecord }
  | { readonly kind: 'call'; readonly actor: ActorRecord; readonly call: Call }
  | { readonly kind: 'destroy'; readonly actor: ActorRecord };


export class ActorManager {
  private readonly actors = new Map<ActorIdHex, ActorRecord>();
  private readonly names = new Map<string, ActorIdHex>();
  /** getIfExists: IDs of handles that reach another actor (by the actor's ID). */
  private readonly aliases = new Map<ActorIdHex, ActorIdHex>();
  private readonly hostWork = new Map<Host, Map<number, HostWork>>();
  private readonly sharedHosts: Host[] = [];
  private readonly progressBlocks = new Map<Host, ProgressBlocks>();
  /** Actors waiting for CPUs, in creation order. */
  private readonly waitingForCpus: ActorRecord[] = [];

  constructor(private readonly services: ActorServices) {}

  /** The error of creating `spec` when a live actor of this node has its name, else undefined. */
  nameTaken(spec: Pick<ActorSpec, 'name' | 'namespace'>): InvalidOptionError | undefined {
    if (spec.name === undefined) return undefined;
    const holder = this.names.get(nameKey(spec.namespace, spec.name));
    if (holder === undefined || this.actors.get(holder)?.state === 'dead') return undefined;
    return actorNameTakenError(spec.name, spec.namespace);
  }

  /**
   * Registers and starts creating an actor. A name already taken throws at once, or, when the
   * caller cannot be answered at once (a worker process, or a thread that stopped waiting for the
   * answer), makes the actor dead with that error.
   */
  create(spec: ActorSpec, { throwIfNameTaken = true, failWith }: { throwIfNameTaken?: boolean; failWith?: Error } = {}): void {
    const nameTaken = this.nameTaken(spec);
    if (nameTaken !== undefined && throwIfNameTaken) throw nameTaken;
    if (spec.name !== undefined && nameTaken === undefined) this.names.set(nameKey(spec.namespace, spec.name), spec.actorId);
    const actor: ActorRecord = {
      spec,
      state: 'pending',
      host: undefined,
      // A restart on this node of an instance lost elsewhere counts on from the restarts it had.
      restarts: spec.numRestarts ?? 0,
      deathCause: undefined,
      calls: [],
      inFlight: new Map(),
      cpusHeld: 0,
      reserved: false,
      argumentsReady: false,
      noRestart: false,
      losing: undefined,
      cell: undefined,
    };
    this.actors.set(spec.actorId, actor);
    this.services.taskEvents?.creation(spec, actor.restarts, PENDING_ARGS_AVAIL);
    // Its constructor arguments live as long as it does (a restart runs the constructor again).
    this.services.hold(spec.actorId, [...spec.dependencies, ...(spec.nestedRefs ?? [])], `argument of actor ${spec.className}`);
    if (nameTaken !== undefined || failWith !== undefined) {
      actor.noRestart = true;
      this.die(actor, encodeError(nameTaken ?? (failWith as Error)));
      return;
    }
    if (spec.numCpus > this.services.totalCpus) {
      const error = new InvalidOptionError(
        `actor ${spec.className} needs ${spec.numCpus} CPUs but this node has ${this.services.totalCpus}; ` +
          'lower numCpus in its options, or start miniray with more (init({ numCpus }))',
        'numCpus',
      );
      this.die(actor, encodeError(error));
      return;
    }
    this.services.waitForObjects(
      `the constructor of ${spec.className}`,
      spec.dependencies,
      () => {
        actor.argumentsReady = true;
        this.services.taskEvents?.creation(spec, actor.restarts, PENDING_NODE_ASSIGNMENT);
        this.place(actor);
      },
      (error) => this.die(actor, this.deathError(actor, 'its constructor arguments failed', error)),
    );
  }

  /** Accepts a method call (its return objects are already registered as pending). */
  submitCall(spec: ActorCallSpec, attempt = 0): void {
    if (this.aliases.size > 0 && this.aliases.has(spec.actorId)) spec = { ...spec, actorId: this.resolve(spec.actorId) };
    const actor = this.actors.get(spec.actorId);
    if (actor === undefined) {
      const error = new ActorDiedError(`actor ${spec.actorId} is not known to this miniray instance (killed before, or from a session that was shut down)`, { actorId: spec.actorId });
      this.services.failObjects(spec.returnIds, encodeError(error));
      this.services.taskEvents?.failed(spec, attempt, encodeError(error));
      return;
    }
    if (actor.state === 'dead') {
      this.services.failObjects(spec.returnIds, actor.deathCause as Uint8Array);
      this.services.taskEvents?.failed(spec, attempt, actor.deathCause as Uint8Array);
      return;
    }
    const call: Call = { spec, retries: 0, firstAttempt: attempt, ready: false, failed: false, dropped: false };
    actor.calls.push(call);
    this.services.waitForObjects(
      `${actor.spec.className}.${spec.method}`,
      spec.dependencies,
      () => {
        call.ready = true;
        this.flush(actor);
      },
      (error) => {
        // A call whose input failed fails with the same error; later calls carry on.
        call.failed = true;
        this.services.failObjects(spec.returnIds, error);
        this.services.taskEvents?.failed(spec, call.firstAttempt + call.retries, error);
        this.flush(actor);
      },
    );
  }

  /**
   * The node of their owner left the cluster (a driver that shut down or died): its actors end
   * with it, as Ray's non-detached actors end with their job, and what they hold is freed.
   * Detached actors live on (until killed).
   */
  killOwnedBy(ownerNode: string, reason: string): void {
    for (const actor of this.actors.values()) {
      if (actor.spec.owner.nodeId !== ownerNode || actor.state === 'dead' || actor.spec.detached === true) continue;
      actor.noRestart = true;
      this.die(actor, encodeError(new ActorDiedError(`actor ${actor.spec.className} (${actor.spec.actorId}) ended: ${reason}`, { actorId: actor.spec.actorId })));
    }
  }

  /**
   * Actor lifetimes: no handle to it is left anywhere and no call of it is pending (calls hold its
   * handles), or (`ownerDied`: the reason its callers see) the worker that owns its handles ended.
   * A non-detached actor ends for good, freeing its worker, resources and name.
   */
  outOfScope(actorId: ActorIdHex, ownerDied?: string): void {
    const actor = this.actors.get(actorId);
    if (actor === undefined || actor.state === 'dead' || actor.spec.detached === true) return;
    actor.noRestart = true;
    const error = new ActorDiedError(
      ownerDied !== undefined
        ? `actor ${actor.spec.className} (${actorId}) is dead: ${ownerDied}`
        : `actor ${actor.spec.className} (${actorId}) ended: every handle to it went out of scope (it is not detached). ` +
            "Keep a handle while you use it, or create it with lifetime: 'detached' to keep it until kill()",
      { actorId },
    );
    this.die(actor, encodeError(error));
  }

  /** The actors `which` picks end for good (their placement group was removed: helper pg). */
  endWhere(which: (spec: ActorSpec) => boolean, reason: string): void {
    for (const actor of [...this.actors.values()]) if (actor.state !== 'dead' && which(actor.spec)) this.endIfAlive(actor.spec.actorId, reason);
  }

  /** The cluster's table has the actor DEAD (killed while it restarted, its owner died): it ends here too. */
  endIfAlive(actorId: ActorIdHex, reason: string): void {
    const actor = this.actors.get(actorId);
    if (actor === undefined || actor.state === 'dead') return;
    actor.noRestart = true;
    this.die(actor, encodeError(new ActorDiedError(`actor ${actor.spec.className} (${actorId}) is dead: ${reason}`, { actorId })));
  }

  /**
   * The cluster found the actor's name taken by an actor on another node (registered first): it
   * dies with the error the caller would have had, had it been known at once.
   */
  failNameTaken(actorId: ActorIdHex): void {
    const actor = this.actors.get(actorId);
    if (actor === undefined || actor.state === 'dead') return;
    const { name, namespace } = actor.spec;
    if (name !== undefined && this.names.get(nameKey(namespace, name)) === actorId) this.names.delete(nameKey(namespace, name));
    actor.noRestart = true;
    const error = new InvalidOptionError(
      `an actor named '${name}' already exists in namespace '${namespace}' on another node; ` +
        'use getActor() to reach it, kill() it first, or choose another name',
      'name',
    );
    this.die(actor, encodeError(error));
  }

  /** Whether `host` was sent the work of this seq (a creation or a call) and has not reported it. */
  awaits(host: Host, seq: number): boolean {
    return this.hostWork.get(host)?.has(seq) ?? false;
  }

  // generators
  /** The spec of the call `host` runs as `seq`, while it has not reported (for its generator items). */
  callSpec(host: Host, seq: number): TaskSpec | undefined {
    const work = this.hostWork.get(host)?.get(seq);
    return work?.kind === 'call' ? work.call.spec : undefined;
  }

  /** Whether an actor with this ID is known here (a new actor must not take its ID). */
  has(actorId: ActorIdHex): boolean {
    return this.actors.has(actorId) || this.aliases.has(actorId);
  }

  /** getIfExists: handles made for `aliasId` reach the actor `actorId` (a worker's, made before the node answered). */
  alias(aliasId: ActorIdHex, actorId: ActorIdHex): void {
    this.aliases.set(aliasId, actorId);
  }

  /** The handles of an alias are gone; true if it was one. */
  unalias(aliasId: ActorIdHex): boolean {
    return this.aliases.delete(aliasId);
  }

  /** The actor an ID names here: itself, or the actor an alias stands for. */
  private resolve(actorId: ActorIdHex): ActorIdHex {
    return this.aliases.get(actorId) ?? actorId;
  }

  /** The maxTaskRetries of an actor known here. */
  taskRetriesOf(actorId: ActorIdHex): number | undefined {
    return this.actors.get(actorId)?.spec.maxTaskRetries;
  }

  lookup(name: string, namespace: string): ActorInfo | null {
    const id = this.names.get(nameKey(namespace, name));
    const actor = id === undefined ? undefined : this.actors.get(id);
    if (actor === undefined || actor.state === 'dead') return null;
    const { spec } = actor;
    const info: { -readonly [K in keyof ActorInfo]: ActorInfo[K] } = { actorId: spec.actorId, className: spec.className, methodNames: spec.methodNames };
    // Actor lifetimes: a non-detached actor's handles are counted at its owner.
    if (spec.detached !== true) info.owner = spec.owner;
    if (spec.methodOptions !== undefined) info.methodOptions = spec.methodOptions;
    if (spec.generatorMethods !== undefined) info.generatorMethods = spec.generatorMethods; // generators
    return info;
  }

  /** Kills an actor: for good with `noRestart`, else as if its worker had died (it restarts if it may). */
  kill(actorId: ActorIdHex, noRestart: boolean): void {
    actorId = this.resolve(actorId);
    const actor = this.actors.get(actorId);
    if (actor === undefined || actor.state === 'dead') return;
    const host = actor.host;
    if (noRestart) {
      actor.noRestart = true;
      this.die(actor, encodeError(new ActorDiedError(`actor ${actor.spec.className} (${actorId}) was killed with kill()`, { actorId })));
      return;
    }
    // Not placed yet (nothing to restart), or already going.
    if (host === undefined || actor.losing !== undefined) return;
    // Calls made from now on wait for the restarted actor. Those sent to this instance are
    // accounted for when it is gone, when it is known which of them had started.
    actor.losing = 'it was killed with kill({ noRestart: false })';
    actor.state = 'restarting';
    if (this.sharedHosts.includes(host)) { // env: a 'shared' actor with an environment of its own has its own host
      const seq = host.nextSeq++;
      this.workOf(host).set(seq, { kind: 'destroy', actor });
      this.services.setBusy(host, true);
      host.channel.send({ type: 'destroyActor', actorId, seq });
    } else {
      this.services.killHost(host, actor.spec.className);
    }
  }

  /**
   * Whether `host` may report `seq` as cancelled unasked: the destroy of a 'shared' actor killed to
   * restart, and the calls of that actor it was sent (it drops those that had not started). For
   * the node's check of what workers report.
   */
  expectsCancelled(host: Host, seq: number): boolean {
    const item = this.hostWork.get(host)?.get(seq);
    return item !== undefined && item.kind !== 'create' && (item.actor.losing !== undefined || (item.kind === 'call' && item.call.cancelled === true));
  }

  // ---- cancel of actor calls (env) ----

  /**
   * cancel() of a call of an actor here, by one of its return IDs: a call not yet sent is removed
   * (its objects fail with `error`, a TaskCancelledError); a call sent to the worker fails the same
   * way and the worker is told, so that it drops it if it has not started and aborts its
   * getRuntimeContext().signal if it runs. Returns its spec, or undefined if no such call is pending here.
   */
  cancelCall(returnId: string, error: Uint8Array): TaskSpec | undefined {
    for (const actor of this.actors.values()) {
      for (const call of actor.calls) {
        if (call.failed || !(call.spec.returnIds as readonly string[]).includes(returnId)) continue;
        this.markCancelled(call, error);
        this.flush(actor); // the calls behind it need not wait for it any more
        return call.spec;
      }
      for (const [seq, call] of actor.inFlight) {
        if (call.failed || !(call.spec.returnIds as readonly string[]).includes(returnId)) continue;
        this.markCancelled(call, error);
        if (actor.host?.alive === true && actor.losing === undefined) actor.host.channel.send({ type: 'cancel', seqs: [seq] });
        return call.spec;
      }
    }
    return undefined;
  }

  /** The pending calls submitted by these tasks (recursive cancel): their first return IDs. */
  callsOf(parents: ReadonlySet<string>): string[] {
    const found: string[] = [];
    for (const actor of this.actors.values()) {
      for (const call of [...actor.calls, ...actor.inFlight.values()]) {
        const parent = call.spec.parentTaskId;
        if (!call.failed && parent !== undefined && parents.has(parent)) found.push(call.spec.returnIds[0] as string);
      }
    }
    return found;
  }

  private markCancelled(call: Call, error: Uint8Array): void {
    call.failed = true;
    call.cancelled = true;
    this.services.failObjects(call.spec.returnIds, error);
    this.services.taskEvents?.failed(call.spec, call.firstAttempt + call.retries, error);
  }

  /** Figures for state tools. */
  stats(): { actors: number; alive: number } {
    let alive = 0;
    for (const actor of this.actors.values()) if (actor.state === 'alive') alive++;
    return { actors: this.actors.size, alive };
  }

  // ---- events from the node --------------------------------------------------------------------

  /** A host worker reported ready: create the actors placed on it. */
  onHostReady(host: Host): void {
    for (const actorId of host.actors) {
      const actor = this.actors.get(actorId);
      if (actor === undefined || actor.host !== host || actor.losing !== undefined) continue;
      if (actor.state !== 'alive' && actor.state !== 'dead') this.sendCreation(actor);
    }
  }

  onResults(host: Host, results: readonly TaskResult[], attached: readonly SharedArrayBuffer[]): void {
    const work = this.hostWork.get(host);
    for (const result of results) {
      const item = work?.get(result.seq);
      if (item === undefined) continue;
      work?.delete(result.seq);
      const { actor } = item;
      if (item.kind === 'create') this.onCreated(actor, result, host);
      else if (item.kind === 'destroy') this.onDestroyed(actor, host);
      else if (result.outcome === 'cancelled') {
        // Dropped by cancel() (env): it is done. Dropped by a destroy before it started: it stays in
        // flight until the destroy is acknowledged.
        if (item.call.cancelled === true) actor.inFlight.delete(result.seq);
        else item.call.dropped = true;
      } else {
        const { call } = item;
        actor.inFlight.delete(result.seq);
        if (call.failed || actor.state === 'dead') continue;
        this.services.taskEvents?.result(call.spec, call.firstAttempt + call.retries, host.id, result);
        if (result.outcome === 'ok') this.services.storeResults(host, call.spec.returnIds, result, attached);
        else if (result.exitActor === true) this.exited(actor, call);
        else this.services.failObjects(call.spec.returnIds, result.error);
      }
    }
    this.updateBusy(host);
  }

  /**
   * exitActor() (actors part): a method ended its actor on purpose. It is dead for good (no
   * restart), its worker and resources are freed, and this call and every pending one fail with
   * an ActorDiedError that says so.
   */
  private exited(actor: ActorRecord, call: Call): void {
    const { spec } = actor;
    const error = encodeError(
      new ActorDiedError(
        `actor ${spec.className} (${spec.actorId}) exited intentionally: ${call.spec.method}() called exitActor(). It is not restarted`,
        { actorId: spec.actorId, exitedIntentionally: true },
      ),
    );
    this.services.failObjects(call.spec.returnIds, error);
    this.services.taskEvents?.failed(call.spec, call.firstAttempt + call.retries, error);
    actor.noRestart = true;
    this.die(actor, error);
  }

  /**
   * A host sent a malformed message and is being terminated: from now on nothing is sent to its
   * actors and no actor is placed on it, as after kill({ noRestart: false }). Which of its calls
   * had started is known only when it is gone (a 'process' host's progress reaches the node at its
   * exit, and a thread may start calls until it stops), so the accounting waits for onHostExit.
   */
  onHostBad(host: Host): void {
    const index = this.sharedHosts.indexOf(host);
    if (index >= 0) this.sharedHosts.splice(index, 1);
    const died = diedReason(host);
    for (const actorId of host.actors) {
      const actor = this.actors.get(actorId);
      if (actor === undefined || actor.host !== host || actor.state === 'dead') continue;
      actor.losing ??= died;
      actor.state = 'restarting';
    }
  }

  /** The classes of the actors a host worker runs (to name the worker in errors). */
  classesOn(host: Host): string[] {
    const names: string[] = [];
    for (const actorId of host.actors) {
      const name = this.actors.get(actorId)?.spec.className;
      if (name !== undefined && !names.includes(name)) names.push(name);
    }
    return names;
  }

  /** A host worker is gone: each of its actors restarts if it may, else dies. */
  onHostExit(host: Host): void {
    const index = this.sharedHosts.indexOf(host);
    if (index >= 0) this.sharedHosts.splice(index, 1);
    this.hostWork.delete(host);
    this.progressBlocks.delete(host);
    const died = diedReason(host);
    for (const actorId of host.actors) {
      const actor = this.actors.get(actorId);
      if (actor === undefined || actor.host !== host) continue;
      // Final: the worker is gone, so nothing starts after this read.
      const lastStarted = actor.cell === undefined ? Atomics.load(host.progress, 0) : Atomics.load(actor.cell.view, actor.cell.index);
      actor.host = undefined;
      actor.cell = undefined;
      if (actor.state === 'dead') continue;
      const reason = actor.noRestart ? 'it was killed' : (actor.losing ?? died);
      actor.losing = undefined;
      this.onActorLost(actor, reason, lastStarted);
    }
    host.actors.clear();
  }

  /** CPUs were released: actors waiting for them may start. */
  onCpusReleased(): void {
    while (this.waitingForCpus.length > 0) {
      const actor = this.waitingForCpus[0] as ActorRecord;
      if (actor.state === 'dead') {
        this.waitingForCpus.shift();
        continue;
      }
      if (!this.services.tryReserveCpus(actor.spec.numCpus, actor.spec.resources, actor.spec.actorId)) return;
      this.waitingForCpus.shift();
      actor.cpusHeld = actor.spec.numCpus;
      actor.reserved = true;
      this.place(actor);
    }
  }

  // ---- internals -------------------------------------------------------------------------------

  /** Puts the actor on a worker (a new one, or a shared one) and creates it there when it is ready. */
  private place(actor: ActorRecord): void {
    if (actor.state === 'dead' || !actor.argumentsReady) return;
    if (!actor.reserved) {
      if (!this.services.tryReserveCpus(actor.spec.numCpus, actor.spec.resources, actor.spec.actorId)) {
        if (!this.waitingForCpus.includes(actor)) this.waitingForCpus.push(actor);
        return;
      }
      actor.cpusHeld = actor.spec.numCpus;
      actor.reserved = true;
    }
    // env: an actor in an environment of its own gets a worker of its own (shared ones are in the node's).
    const env = actor.spec.runtimeEnv;
    const shared = actor.spec.isolation === 'shared' && this.services.needsOwnHost?.(env) !== true;
    const host = shared ? this.sharedHost() : this.services.spawnHost(actor.spec.isolation === 'process' ? 'process' : 'thread', env);
    actor.host = host;
    if (shared) actor.cell = this.blocksOf(host).take();
    host.actors.add(actor.spec.actorId);
    this.services.setBusy(host, true);
    if (host.accepting) this.sendCreation(actor);
  }

  private sharedHost(): Host {
    const live = this.sharedHosts.filter((h) => h.alive);
    if (live.length < Math.max(1, this.services.sharedHostCount)) {
      const host = this.services.spawnHost('thread');
      this.sharedHosts.push(host);
      return host;
    }
    return live.reduce((a, b) => (b.actors.size < a.actors.size ? b : a));
  }

  private sendCreation(actor: ActorRecord): void {
    const host = actor.host as Host;
    const { spec } = actor;
    let args: ReturnType<ActorServices['argumentsFor']>;
    try {
      args = this.services.argumentsFor(spec.dependencies, host);
    } catch (error) {
      this.die(actor, encodeError(error as Error)); // a constructor argument cannot be read back
      return;
    }
    const seq = host.nextSeq++;
    this.services.taskEvents?.creation(spec, actor.restarts, SUBMITTED_TO_WORKER, host.id);
    this.workOf(host).set(seq, { kind: 'create', actor });
    // A creation has no task ID of its own: the worker reports it (and logs it) under the actor's.
    const task: Building<ExecuteActorCreation> = {
      seq,
      taskId: spec.actorId,
      functionId: spec.classId,
      name: spec.className,
      args: spec.args,
      refArgPositions: spec.refArgPositions,
      ...args,
      numReturns: 0,
      actorId: spec.actorId,
      maxConcurrency: spec.maxConcurrency,
    };
    if (actor.cell !== undefined) task.progressCell = this.cellFor(host, actor.cell);
    if (spec.concurrencyGroups !== undefined) task.concurrencyGroups = spec.concurrencyGroups; // concurrency groups (actors part)
    if (spec.owner.nodeId !== this.services.nodeId) task.ownerNode = spec.owner.nodeId;
    if (actor.restarts > 0) task.numRestarts = actor.restarts; // env: wasCurrentActorReconstructed
    // What it holds, for getRuntimeContext() in its methods (helper pg).
    task.resources = spec.resources === undefined ? { CPU: spec.numCpus } : { CPU: spec.numCpus, ...spec.resources };
    const gpuIds = this.services.gpuIdsOf?.(spec.actorId);
    if (gpuIds !== undefined) task.gpuIds = gpuIds;
    if (spec.captureChildTasks === true) task.captureChildTasks = true;
    if (spec.job !== undefined) task.job = spec.job; // its runtime context's job (a cluster's)
    this.services.setBusy(host, true);
    host.channel.send({ type: 'execute', functions: this.definitionsFor(host, spec.classId), tasks: [task] });
  }

  /** The cell as the worker finds it, with its block attached to the frame if the worker lacks it. */
  private cellFor(host: Host, cell: CellRef): NonNullable<ExecuteActorCreation['progressCell']> {
    const blocks = this.blocksOf(host);
    if (blocks.sent.has(cell.block)) return { block: cell.block, index: cell.index };
    blocks.sent.add(cell.block);
    return { block: cell.block, index: cell.index, attached: host.channel.attach(cell.view.buffer as SharedArrayBuffer) };
  }

  private blocksOf(host: Host): ProgressBlocks {
    let blocks = this.progressBlocks.get(host);
    if (blocks === undefined) {
      blocks = new ProgressBlocks();
      this.progressBlocks.set(host, blocks);
    }
    return blocks;
  }

  /** A 'shared' worker dropped a killed actor's queued calls: the ones it did not drop had started. */
  private onDestroyed(actor: ActorRecord, host: Host): void {
    if (actor.host !== host || actor.losing === undefined || actor.state === 'dead') return;
    const reason = actor.losing;
    actor.losing = undefined;
    this.detach(actor, host);
    this.updateBusy(host);
    this.onActorLost(actor, reason, Number.POSITIVE_INFINITY);
  }

  private onCreated(actor: ActorRecord, result: TaskResult, host: Host): void {
    // An instance being killed is not brought into use; the restart creates the next one.
    if (actor.state === 'dead' || actor.losing !== undefined) return;
    this.services.taskEvents?.creationResult(actor.spec, actor.restarts, host.id, result);
    if (result.outcome === 'ok') {
      actor.state = 'alive';
      this.services.onAlive(actor.spec.actorId, actor.restarts);
      this.flush(actor);
    } else if (result.outcome === 'error') {
      // The constructor threw: restarting would throw again, so the actor is dead (as in Ray).
      this.die(actor, this.deathError(actor, 'its constructor threw', result.error));
    }
  }

  /** Sends every call that is ready and has no unready call before it. */
  private flush(actor: ActorRecord): void {
    if (actor.state !== 'alive' || actor.host === undefined) {
      // Drop calls that already failed at the head, so they do not hold the queue.
      while (actor.calls[0]?.failed) actor.calls.shift();
      return;
    }
    const host = actor.host;
    const tasks: ExecuteTask[] = [];
    let sent = 0;
    for (const call of actor.calls) {
      if (call.failed) {
        sent++;
        continue;
      }
      if (!call.ready) break;
      sent++;
      const { spec } = call;
      let args: ReturnType<ActorServices['argumentsFor']>;
      try {
        args = this.services.argumentsFor(spec.dependencies, host);
      } catch (error) {
        call.failed = true; // an argument cannot be read back: this call fails with it
        this.services.failObjects(spec.returnIds, encodeError(error as Error));
        this.services.taskEvents?.failed(spec, call.firstAttempt + call.retries, encodeError(error as Error));
        continue;
      }
      const seq = host.nextSeq++;
      this.services.taskEvents?.state(spec, call.firstAttempt + call.retries, SUBMITTED_TO_WORKER, host.id);
      actor.inFlight.set(seq, call);
      this.workOf(host).set(seq, { kind: 'call', actor, call });
      const task: Building<ExecuteActorCall> = {
        seq,
        taskId: spec.taskId,
        name: spec.name,
        args: spec.args,
        refArgPositions: spec.refArgPositions,
        ...args,
        numReturns: spec.returnIds.length,
        actorId: actor.spec.actorId,
        method: spec.method,
      };
      // Set, not spread: no throwaway object per call.
      if (spec.owner.nodeId !== this.services.nodeId) task.ownerNode = spec.owner.nodeId;
      if (spec.concurrencyGroup !== undefined) task.concurrencyGroup = spec.concurrencyGroup; // concurrency groups (actors part)
      if (spec.returns !== undefined) task.returns = spec.returns; // generators
      // Its actor's job, not the caller's (a detached actor serves many jobs), as Ray's.
      if (actor.spec.job !== undefined) task.job = actor.spec.job;
      tasks.push(task);
    }
    if (sent > 0) actor.calls.splice(0, sent);
    if (tasks.length > 0) {
      this.services.setBusy(host, true);
      host.channel.send({ type: 'execute', functions: [], tasks });
    }
  }

  /**
   * The actor's instance is gone (its worker died, or it was killed to restart): restart it or let
   * it die. The calls sent to it that had started (seq up to `lastStarted`, not dropped) may have
   * caused it: each is retried if maxTaskRetries allows, else failed. The rest never ran: they go
   * to the next instance without using a retry. All keep their order, ahead of calls not yet sent.
   */
  private onActorLost(actor: ActorRecord, reason: string, lastStarted: number): void {
    const { spec } = actor;
    // Map order is seq order, which is submission order: the requeued calls keep it.
    const retry: Call[] = [];
    for (const [seq, call] of actor.inFlight) {
      if (call.failed) continue;
      if (call.dropped || seq > lastStarted) {
        call.dropped = false;
        retry.push(call);
      } else if (spec.maxTaskRetries < 0 || call.retries < spec.maxTaskRetries) {
        if (this.services.taskEvents?.enabled === true) this.services.taskEvents.failed(call.spec, call.firstAttempt + call.retries, encodeError(new ActorDiedError(`actor ${spec.className} (${spec.actorId}) died while running ${call.spec.method}: ${reason}; the call is retried`, { actorId: spec.actorId })));
        call.retries++;
        retry.push(call);
      } else {
        const error = new ActorDiedError(
          `actor ${spec.className} (${spec.actorId}) died while running ${call.spec.method}: ${reason}. ` +
            `The call was tried ${call.retries + 1} time(s) (maxTaskRetries: ${spec.maxTaskRetries}).`,
          { actorId: spec.actorId },
        );
        this.services.failObjects(call.spec.returnIds, encodeError(error));
        this.services.taskEvents?.failed(call.spec, call.firstAttempt + call.retries, encodeError(error));
      }
    }
    actor.inFlight.clear();
    actor.calls = [...retry, ...actor.calls];
    const mayRestart = !actor.noRestart && (spec.maxRestarts < 0 || actor.restarts < spec.maxRestarts);
    if (!mayRestart) {
      const restarts = actor.restarts > 0 ? ` after ${actor.restarts} restart(s)` : '';
      this.die(
        actor,
        encodeError(new ActorDiedError(`actor ${spec.className} (${spec.actorId}) is dead${restarts}: ${reason} (maxRestarts: ${spec.maxRestarts})`, { actorId: spec.actorId })),
      );
      return;
    }
    actor.restarts++;
    actor.state = 'restarting';
    this.services.taskEvents?.creation(spec, actor.restarts, PENDING_NODE_ASSIGNMENT);
    this.place(actor);
  }

  private die(actor: ActorRecord, cause: Uint8Array): void {
    if (actor.state === 'dead') return;
    // An instance not up yet: its creation attempt failed.
    if (actor.state !== 'alive') this.services.taskEvents?.creationFailed(actor.spec, actor.restarts, cause);
    actor.state = 'dead';
    actor.deathCause = cause;
    this.services.onDead(actor.spec.actorId, decodeErrorRecord(cause).message);
    actor.losing = undefined;
    for (const call of actor.inFlight.values()) if (!call.failed) this.services.failObjects(call.spec.returnIds, cause);
    for (const call of actor.calls) if (!call.failed) this.services.failObjects(call.spec.returnIds, cause);
    for (const call of [...actor.inFlight.values(), ...actor.calls]) if (!call.failed) this.services.taskEvents?.failed(call.spec, call.firstAttempt + call.retries, cause);
    actor.inFlight.clear();
    actor.calls = [];
    if (actor.reserved) {
      this.services.releaseCpus(actor.cpusHeld, actor.spec.resources, actor.spec.actorId);
      actor.cpusHeld = 0;
      actor.reserved = false;
    }
    const host = actor.host;
    if (host !== undefined) {
      this.detach(actor, host);
      if (this.sharedHosts.includes(host)) { // env: see kill()
        host.channel.send({ type: 'destroyActor', actorId: actor.spec.actorId });
        this.updateBusy(host);
      } else {
        this.services.killHost(host, actor.spec.className);
      }
    }
    this.services.releaseHolds(actor.spec.actorId);
    if (actor.spec.name !== undefined) {
      const key = nameKey(actor.spec.namespace, actor.spec.name);
      if (this.names.get(key) === actor.spec.actorId) this.names.delete(key);
    }
  }

  private detach(actor: ActorRecord, host: Host): void {
    host.actors.delete(actor.spec.actorId);
    actor.host = undefined;
    if (actor.cell !== undefined) {
      this.progressBlocks.get(host)?.give(actor.cell);
      actor.cell = undefined;
    }
    const work = this.hostWork.get(host);
    if (work) for (const [seq, item] of work) if (item.actor === actor) work.delete(seq);
  }

  /** An ActorDiedError whose cause is the encoded error that killed the actor. */
  private deathError(actor: ActorRecord, why: string, error: Uint8Array): Uint8Array {
    const cause: ErrorRecord = decodeErrorRecord(error);
    const record = toErrorRecord(
      new ActorDiedError(`actor ${actor.spec.className} (${actor.spec.actorId}) is dead: ${why}: ${cause.message}`, { actorId: actor.spec.actorId }),
    );
    record.cause = cause;
    return encodeErrorRecord(record);
  }

  private definitionsFor(host: Host, classId: string): FunctionDescriptor[] {
    if (host.knownFunctions.has(classId)) return [];
    host.knownFunctions.add(classId);
    const descriptor = this.services.functionDescriptor(classId);
    return descriptor ? [descriptor] : [];
  }

  private workOf(host: Host): Map<number, HostWork> {
    let work = this.hostWork.get(host);
    if (work === undefined) {
      work = new Map();
      this.hostWork.set(host, work);
    }
    return work;
  }

  /**
   * A host keeps the process alive while it has work or actors being created. (One being ended
   * stays so until its exit, which restarts its actors: the pool sees to it, see its setBusy.)
   */
  private updateBusy(host: Host): void {
    const work = this.hostWork.get(host);
    this.services.setBusy(host, work !== undefined && work.size > 0);
  }
}

const nameKey = (namespace: string, name: string) => `${namespace}\0${name}`;

const diedReason = (host: Host) => (host.exitError ? `its worker died: ${host.exitError.message}` : 'its worker exited');
