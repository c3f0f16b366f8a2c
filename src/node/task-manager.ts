/**
 * The task manager: the record of each task of this node (owned here, or run here for an owner on
 * another node) and the decisions that Ray leaves to a task's owner: submission and waiting for
 * its arguments, retries (maxRetries; a task lost with the node it ran on), failure, keeping a
 * finished task's spec in lineage, and running it again when every copy of a result is lost with
 * a node; and the actor calls this node owns, kept in lineage like tasks when their actor may run
 * them again. Where a task runs is not its business: it hands a task whose arguments exist to
 * LocalDispatch (here, or the cluster through remoteWork).
 *
 * It runs on the node's thread on behalf of every thread there, as Ray's owners run it on threads
 * of their own beside the task's code: a worker's thread running a task that never yields could
 * not retry its children (see docs/architecture.md, "Ownership"). It reaches the node only
 * through TaskHost, so that its state machines are tested with fakes (task-manager.test.ts).
 */
import type { ActorManager } from '../actors/manager.js';
import type { ActorIdHex, ObjectIdHex } from '../ids/index.js';
import { setting } from '../config/index.js';
import { MinirayError, ObjectLostError, ObjectReconstructionFailedError, OwnerDiedError, TaskCancelledError } from '../errors/index.js';
import type { ObjectStore } from '../object-store/index.js';
import { Lineage, specBytes, type ObjectDirectory, type ObjectEntry } from '../ownership/index.js';
import { groupsIn } from '../placement-group/resources.js';
import { keptBySender, type RemoteValue, type TaskSpec } from '../protocol/index.js';
import { encodeError, type FunctionDescriptor } from '../serialization/index.js';
import type { TaskEventBuffer } from '../state/events.js';
import type { PooledWorker } from '../worker-pool/index.js';
import type { ActorRouting } from './actor-routing.js';
import type { Cancellation } from './cancellation.js';
import type { ClusterLink, RemoteWork } from './cluster-link.js';
import type { LocalDispatch } from './dispatch.js';
import type { GeneratorStreams } from './generators.js';
import type { ObjectReads } from './reads.js';
import type { RemoteObjects } from './remote-objects.js';
import type { GpuHold, NodeResources } from './resources.js';

export type TaskState = 'waiting' | 'queued' | 'running' | 'finished';

/**
 * The function a task record runs. Only function tasks are queued on this node's workers
 * (submitOne sends an actor call to actorRouting; its record is kept for lineage only), so the
 * dispatcher, the scheduler's run-time averages and environment workers read it.
 */
export function functionIdOf(spec: TaskSpec): string {
  if (spec.functionId !== undefined) return spec.functionId;
  throw new MinirayError(`internal error: actor call ${spec.name} (task ${spec.taskId}) was queued as a function task; actor calls go to their actor`);
}

export interface TaskRecord {
  readonly spec: TaskSpec;
  readonly numCpus: number;
  /** 'running' on another node (the cluster link reports its end). */
  remote: boolean;
  /** Sent by another node to run here: it never goes elsewhere again. */
  readonly fromPeer: boolean;
  /** Holds its GPUs and custom resources from this node's (see reserveResources). */
  reserved: boolean;
  state: TaskState;
  /** Retries used so far (here). */
  retries: number;
  /** Its attempt when it came here: the owner's retries for a task from a peer, else 0 (events record firstAttempt + retries). */
  readonly firstAttempt: number;
  cancelled: boolean;
  worker: PooledWorker<TaskRecord> | undefined;
  seq: number;
  /** The GPUs it holds, by ID, while it holds its resources (helper pg: GPU IDs). */
  gpus: GpuHold | undefined;
  /**
   * Whether its events are recorded (src/state/events.ts): false when recording is off or the task
   * was sampled out (here, or by its owner), and then no taskEvents method is called for it.
   */
  readonly traced: boolean;
}

export type Worker = PooledWorker<TaskRecord>;

/**
 * What the task manager needs of its node: the object directory and store, the task events, the
 * cluster link, and a few steps of the node's parts (NodeContext is one). Narrow on purpose: tests
 * give it fakes.
 */
export interface TaskHost {
  readonly nodeId: string;
  readonly objects: ObjectDirectory<TaskRecord>;
  readonly store: Pick<ObjectStore, 'contains'>;
  readonly taskEvents: TaskEventBuffer;
  readonly remoteObjects: Pick<RemoteObjects<TaskRecord>, 'storeValues'>;
  readonly functions: ReadonlyMap<string, FunctionDescriptor>;
  readonly cluster: ClusterLink | undefined;
  /** Set when workers keep failing to start: tasks fail with it instead of waiting forever. */
  readonly startupError: Error | undefined;
  readonly actors: Pick<ActorManager, 'taskRetriesOf'>;
  readonly dispatcher: Pick<LocalDispatch, 'enqueue' | 'queueHere' | 'canRun' | 'infeasibleError'>;
  readonly resources: Pick<NodeResources, 'releaseResources'>;
  readonly cancellation: Pick<Cancellation, 'cancelledByParent'>;
  readonly actorRouting: Pick<ActorRouting, 'callActor'>;
  readonly reads: Pick<ObjectReads, 'waitForObjects'>;
  streams(): Pick<GeneratorStreams<TaskRecord>, 'open'>;
}

export class TaskManager {
  constructor(private readonly context: TaskHost) {}

  /** Specs of this node's finished tasks whose results are referenced: to re-run them if those are lost. */
  readonly lineage = new Lineage<TaskRecord>(setting('maxLineageBytes'));

  /**
   * Actor calls this node owns that have not reported, by first return ID (only in a cluster):
   * those of an actor with maxTaskRetries are kept in lineage once they finish (see actorCallDone).
   */
  readonly actorCallsPending = new Map<string, TaskRecord>();

  // ---- tasks ---------------------------------------------------------------------------------

  /**
   * `attempt`: the owner's attempt, for a task or actor call a peer sent (see TaskRecord.firstAttempt);
   * `tracedByOwner`: whether that owner records its events (it may have sampled it out).
   */
  submitOne(spec: TaskSpec, fromPeer = false, attempt = 0, tracedByOwner = true): void {
    // A task with nothing to wait for is queued at once (see below): one event says both.
    const traced = fromPeer ? tracedByOwner && this.context.taskEvents.enabled : this.context.taskEvents.submitted(spec, spec.actorId === undefined && spec.dependencies.length === 0);
    const owner = spec.owner.workerId;
    if (spec.actorId !== undefined) {
      for (const id of spec.returnIds) this.context.objects.addPending(id, owner, undefined);
      if (spec.returns?.kind === 'streaming' && !fromPeer) this.context.streams().open(spec); // generators
      this.holdArguments(spec);
      if (!fromPeer && this.context.cluster?.canGrow === true) this.actorCallsPending.set(spec.returnIds[0] as string, this.actorCallRecord(spec));
      this.context.actorRouting.callActor(spec, fromPeer, attempt);
      return;
    }
    const record: TaskRecord = {
      spec,
      numCpus: spec.numCpus,
      remote: false,
      fromPeer,
      reserved: false,
      state: 'waiting',
      retries: 0,
      firstAttempt: attempt,
      cancelled: false,
      worker: undefined,
      seq: 0,
      gpus: undefined,
      traced,
    };
    for (const id of spec.returnIds) this.context.objects.addPending(id, owner, record);
    if (spec.returns?.kind === 'streaming' && !fromPeer) this.context.streams().open(spec); // generators
    this.holdArguments(spec);
    // Where the cluster may run it elsewhere, it decides once the arguments exist.
    if (!this.context.dispatcher.canRun(record.spec) && (this.context.cluster === undefined || fromPeer)) {
      this.failTask(record, encodeError(this.context.dispatcher.infeasibleError(`task ${spec.name}`, spec)));
      return;
    }
    if (this.context.startupError !== undefined) {
      this.failTask(record, encodeError(this.context.startupError));
      return;
    }
    if (spec.parentTaskId !== undefined && this.context.cancellation.cancelledByParent(spec)) {
      record.cancelled = true;
      this.failTask(record, encodeError(new TaskCancelledError(`task ${spec.name} was cancelled: the task that submitted it was cancelled (recursive)`)));
      return;
    }
    if (spec.dependencies.length === 0) {
      this.context.dispatcher.enqueue(record); // nothing to wait for (the common case): no waiter closures
      return;
    }
    this.waitForArguments(record);
  }

  /** Enqueues a waiting task once its ref arguments exist (or fails it with the first that failed). */
  waitForArguments(record: TaskRecord): void {
    this.context.reads.waitForObjects(
      `task ${record.spec.name}`,
      record.spec.dependencies,
      () => {
        if (record.state === 'waiting') this.context.dispatcher.enqueue(record);
      },
      (error) => {
        if (record.state === 'waiting') this.failTask(record, error);
      },
    );
  }

  /** The cluster link's handle on a task (or actor call, without a record) this node owns. */
  remoteWork<S extends TaskSpec>(spec: S, record: TaskRecord | undefined): RemoteWork<S> {
    return {
      // A task in a placement group the cluster parked may find its bundle here later (helper pg).
      ...(record !== undefined && spec.resources !== undefined && groupsIn(spec.resources).length > 0
        ? {
            runHere: () => {
              if (record.cancelled || record.state === 'finished') return;
              record.remote = false;
              this.context.dispatcher.queueHere(record);
            },
          }
        : {}),
      spec,
      attempt: record?.retries ?? 0,
      traced: record === undefined ? !this.context.taskEvents.skips(spec.taskId) : record.traced,
      function: spec.actorId === undefined ? this.context.functions.get(spec.functionId) : undefined,
      done: (values, from) => {
        if (spec.actorId !== undefined) this.actorCallDone(spec.returnIds[0] as string, values.some((value) => value.state === 'ready' || value.state === 'located'));
        this.letGoUnread(spec, values, from);
        if (record !== undefined) {
          if (record.cancelled || record.state === 'finished') return;
          record.state = 'finished';
          record.remote = false;
          if (values.some((value) => value.state === 'ready' || value.state === 'located')) this.keepLineage(record);
        }
        this.context.remoteObjects.storeValues(values, from ?? spec.owner.nodeId);
      },
      lost: (error) => {
        // An actor call (no record) is looked up by ID (see TaskEventBuffer.skip).
        if ((record === undefined ? this.context.taskEvents.enabled : record.traced && record.state !== 'finished' && !record.cancelled)) this.context.taskEvents.failed(spec, record?.retries ?? 0, encodeError(error));
        if (record === undefined) {
          if (spec.actorId !== undefined) this.actorCallDone(spec.returnIds[0] as string, false);
          for (const id of spec.returnIds) this.context.objects.setObject(id, encodeError(error), true);
          return;
        }
        if (record.cancelled || record.state === 'finished') return;
        record.remote = false;
        if (this.retriesLeft(record)) {
          record.retries++;
          record.state = 'waiting';
          this.context.dispatcher.enqueue(record);
        } else this.failTask(record, encodeError(error), false);
      },
    };
  }

  /**
   * Results kept where they were made that no entry here takes (their owner died or their task
   * was cancelled meanwhile, so they failed or went; or another value came first): the node that
   * keeps them lets them go now, not when its connection to this node ends.
   */
  private letGoUnread(spec: TaskSpec, values: readonly RemoteValue[], from: string | undefined): void {
    for (const value of values) {
      if (!keptBySender(value)) continue;
      const keeper = value.state === 'located' ? value.location : from;
      if (keeper === undefined || keeper === this.context.nodeId) continue;
      const entry = this.context.objects.get(value.id);
      if (entry?.state === 'pending' || entry?.location === keeper) continue;
      this.context.cluster?.letGo(keeper, spec.owner.workerId, [value.id]);
    }
  }

  // ---- lineage reconstruction ----------------------------------------------------------------

  /**
   * Keeps a finished task's spec while its results are referenced (before they are stored: see
   * Lineage.keep). Only in a cluster: in the embedded default every copy is in this process, so
   * none can be lost while it runs, and the tasks' path pays nothing for lineage.
   */
  keepLineage(record: TaskRecord): void {
    if (this.context.cluster?.canGrow === true) this.lineage.keep(record, record.spec, specBytes(record.spec));
  }

  /**
   * Node `nodeId` died: objects this node owns whose only copy was there are rebuilt by lineage
   * (or fail saying why not); borrowed objects it owned fail with OwnerDiedError, copies here and
   * all; borrowed ones
   * that were to be pulled from it are asked of their owners again.
   */
  nodeDied(nodeId: string): void {
    if (nodeId === this.context.nodeId) return;
    const lost: string[] = [];
    for (const [id, entry] of this.context.objects.all()) {
      if (entry.foreignOwner === nodeId) {
        // Copies here fail too: an object lives only as long as its owner (as a dead worker's do, see ownerDied).
        this.context.objects.ownerDiedElsewhere(id, encodeError(ownerDiedError(id, nodeId)));
      } else if (entry.foreignOwner !== undefined) {
        if (entry.location === nodeId && entry.state === 'pending') delete entry.location; // its owner names another copy
      } else {
        entry.copies?.delete(nodeId);
        if (this.isLost(id, entry) && !this.moveToCopy(entry)) lost.push(id);
      }
    }
    for (const id of lost) this.rebuild(id, nodeId);
  }

  /** An object whose primary copy was lost is read from another node's copy from now on, if one is known. */
  private moveToCopy(entry: ObjectEntry<TaskRecord>): boolean {
    for (const copy of entry.copies ?? []) {
      entry.copies?.delete(copy);
      if (this.context.cluster?.isDead(copy) === true) continue;
      entry.location = copy;
      return true;
    }
    return false;
  }

  /** A copy of an object this node owns could not be read from `nodeId` (a pull failed). */
  holderLost(id: string, nodeId: string): void {
    const entry = this.context.objects.get(id);
    if (entry === undefined || entry.foreignOwner !== undefined || entry.state !== 'ready' || entry.location !== nodeId || this.context.store.contains(id)) return;
    entry.copies?.delete(nodeId);
    if (!this.moveToCopy(entry)) this.rebuild(id, nodeId);
  }

  /** Whether an object this node owns has no copy left: ready, its only copy on a node that died. */
  private isLost(id: string, entry: ObjectEntry<TaskRecord>): boolean {
    return entry.state === 'ready' && entry.location !== undefined && this.context.cluster?.isDead(entry.location) === true && !this.context.store.contains(id);
  }

  /**
   * Makes a lost object again by re-running the task that made it, after those that made its lost
   * arguments (each re-run counts against that task's retries), or fails it saying why it cannot
   * be: put() objects, and actor results unless the actor's maxTaskRetries allows, are not rebuilt (as in Ray).
   */
  private rebuild(id: string, lostAt: string): void {
    const where = `every copy of ObjectRef(${id}) was on node ${lostAt.slice(0, 8)}, which died or could not be reached`;
    const plan = this.lineage.plan(id, (arg) => {
      const entry = this.context.objects.get(arg);
      // Freed: its value went with its refs, so a task that reads it needs it made again.
      return entry === undefined || (entry.foreignOwner === undefined && this.isLost(arg, entry));
    });
    if ('reason' in plan) {
      const message = `${where}. ${plan.reason}. `;
      const error =
        plan.kind === 'not-rebuilt'
          ? new ObjectLostError(
              `${message}Objects from put() are not rebuilt, nor are the results of an actor created with maxTaskRetries 0 (the default): ` +
                'keep such objects in the process that needs them, make them with a task (a task\'s result is rebuilt by running it again while maxRetries allows), ' +
                'or create the actor with maxTaskRetries > 0 (or -1) and maxRestarts, so that its lost results are rebuilt by calling the method again.',
            )
          : new ObjectReconstructionFailedError(message);
      this.failLost([id], encodeError(error));
      return;
    }
    // All or nothing: a rebuild that cannot finish is not started.
    const spent = plan.tasks.find((record) => record.state === 'finished' && !this.retriesLeft(record));
    if (spent !== undefined) {
      const tries = spent.retries + 1;
      const which = (spent.spec.returnIds as readonly string[]).includes(id) ? 'which made it' : `which made one of its lost arguments`;
      const actor = spent.spec.actorId !== undefined;
      const error = new ObjectReconstructionFailedError(
        `${where}, and ${actor ? 'actor method' : 'task'} ${spent.spec.name}, ${which}, cannot run again to rebuild it: it has run ${tries} time${tries > 1 ? 's' : ''} ` +
          (actor
            ? `(maxTaskRetries: ${spent.spec.maxRetries}). Raise maxTaskRetries in the actor's options (-1: no limit) to let lineage rebuild its results.`
            : `(maxRetries: ${spent.spec.maxRetries}). Raise maxRetries in its options (-1: no limit) to let lineage rebuild its results.`),
      );
      this.failLost([id, ...spent.spec.returnIds], encodeError(error));
      return;
    }
    for (const record of plan.tasks) this.rerun(record);
  }

  private actorCallRecord(spec: TaskSpec): TaskRecord {
    return { spec, numCpus: 0, remote: false, fromPeer: false, reserved: false, state: 'running', retries: 0, firstAttempt: 0, cancelled: false, worker: undefined, seq: 0, gpus: undefined, traced: this.context.taskEvents.enabled && !this.context.taskEvents.skips(spec.taskId) };
  }

  /**
   * An actor call this node owns reported (`ok`: with results). As in Ray, its spec is kept in
   * lineage like a task's when its actor was created with maxTaskRetries (its calls may run
   * again), so that a lost result is made again by calling the method again (see rerun); with
   * maxTaskRetries 0 its results are not rebuilt.
   */
  actorCallDone(firstId: string, ok: boolean): void {
    const record = this.actorCallsPending.get(firstId);
    if (record === undefined) return;
    this.actorCallsPending.delete(firstId);
    record.state = 'finished';
    if (!ok || record.retries > 0) return; // a rebuild's record is kept already
    const actorId = record.spec.actorId as ActorIdHex;
    const maxTaskRetries = this.context.actors.taskRetriesOf(actorId) ?? this.context.cluster?.actorTaskRetries(actorId) ?? 0;
    if (maxTaskRetries === 0) return;
    // Its rebuilds count against maxTaskRetries (rerun and retriesLeft read maxRetries).
    this.keepLineage({ ...record, spec: { ...record.spec, maxRetries: maxTaskRetries } });
  }

  /** Runs a finished task again, its results pending once more (see rebuild). */
  private rerun(record: TaskRecord): void {
    if (record.state !== 'finished' || record.cancelled) return; // already being made again
    const { spec } = record;
    this.reopenForRerun(record);
    if (spec.actorId !== undefined) {
      // An actor call: its method is called again through the normal actor-call path (the actor
      // may have been restarted elsewhere).
      record.state = 'running';
      this.actorCallsPending.set(spec.returnIds[0] as string, record);
      this.context.actorRouting.callActor(spec, false);
      return;
    }
    record.state = 'waiting';
    record.remote = false;
    if (spec.dependencies.length === 0) this.context.dispatcher.enqueue(record);
    else this.waitForArguments(record);
  }

  /** A task or actor call about to run again: its results pending once more (entries made again where freed), its arguments held, a retry counted. */
  private reopenForRerun(record: TaskRecord): void {
    const { spec } = record;
    for (const id of spec.returnIds) {
      if (this.context.objects.get(id) === undefined) {
        this.context.objects.addRebuilt(id, spec.owner.workerId, record);
        this.lineage.revived(id);
      }
    }
    record.retries++;
    for (const id of spec.returnIds) this.context.objects.reopen(id, record);
    this.holdArguments(spec);
  }

  /** The call's ref arguments (and refs nested in its arguments) live until it finishes. */
  private holdArguments(spec: TaskSpec): void {
    let argumentRefs = spec.nestedRefs === undefined ? spec.dependencies : [...spec.dependencies, ...spec.nestedRefs];
    // Actor lifetimes: a pending call keeps its actor alive (get(A.remote().f.remote()) works).
    if (spec.actorId !== undefined && this.context.objects.get(spec.actorId) !== undefined) argumentRefs = [...argumentRefs, spec.actorId];
    this.context.objects.hold(spec.returnIds[0] as ObjectIdHex, argumentRefs, `argument of ${spec.actorId === undefined ? 'task ' : ''}${spec.name}`);
  }

  /** Fails objects that had no copy left (those made again since are left alone). */
  private failLost(ids: readonly string[], error: Uint8Array): void {
    for (const id of ids) {
      const entry = this.context.objects.get(id);
      if (entry !== undefined && entry.state !== 'failed' && !this.context.store.contains(id)) this.context.objects.setObject(id, error, true);
    }
  }

  /** Stores `error` (an encoded ErrorRecord) as every return value of the task. */
  failTask(record: TaskRecord, error: Uint8Array, recordEvent = true): void {
    if (recordEvent && record.traced) this.context.taskEvents.failed(record.spec, record.firstAttempt + record.retries, error);
    record.state = 'finished';
    this.context.resources.releaseResources(record);
    for (const id of record.spec.returnIds) this.context.objects.setObject(id, error, true);
  }

  retriesLeft(record: TaskRecord): boolean {
    return record.spec.maxRetries < 0 || record.retries < record.spec.maxRetries;
  }
}

/** What a borrowed object fails with when its owner's node dies. */
export function ownerDiedError(id: string, ownerNode: string, detail = 'died'): OwnerDiedError {
  return new OwnerDiedError(
    `ObjectRef(${id}) is owned by node ${ownerNode.slice(0, 8)} (where the task or put() that created it ran), which ${detail}. ` +
      'Only an owner can rebuild an object, so it is lost for good, even from put(). To outlive that node, return the value itself ' +
      'from the task (then the caller owns the result, and can rebuild it by lineage) rather than a ref made there.',
  );
}
