/**
 * Tasks in runtime environments other than the node's (env): their queue, the workers of each
 * environment (started on demand, one task at a time each), and runtimeEnv.workingDir packages
 * in a cluster, unpacked here once before workers or actors start in them (see working-dir.ts).
 */
import { WorkerCrashedError } from '../errors/index.js';
import { runtimeEnvKey, type ActorSpec, type RuntimeEnvSpec, type TaskSpec } from '../protocol/index.js';
import { encodeError, type FunctionDescriptor } from '../serialization/index.js';
import type { NodeContext } from './context.js';
import type { AwaitingActor } from './actor-routing.js';
import { functionIdOf, type TaskRecord, type Worker } from './task-manager.js';
import { isPackageUri, WorkingDirCache, workingDirCacheRoot } from './working-dir.js';

export class RuntimeEnvs {
  constructor(private readonly context: NodeContext) {}

  /** Tasks of other runtime environments than the node's, ready to run, in FIFO order (see dispatchEnv). */
  readonly envQueue: TaskRecord[] = [];

  /** Whether work in this environment needs workers of its own, not the node's default ones. */
  needsOwnWorkers(env: RuntimeEnvSpec | undefined): boolean {
    return runtimeEnvKey(env) !== this.context.pool.defaultEnvKey;
  }

  /** A task whose resources are held goes to the scheduler, or, in another environment, to the env queue. */
  toWorkerQueue(record: TaskRecord): void {
    // One read and one comparison for a task without an environment on a node without one.
    if ((record.spec.runtimeEnv !== undefined || this.context.pool.defaultEnvKey !== '') && this.needsOwnWorkers(record.spec.runtimeEnv)) {
      this.envQueue.push(record);
      this.context.dispatcher.keepAliveWhileQueued();
    } else this.context.scheduler.enqueue(record);
  }

  /**
   * Hands env tasks to idle workers of their environment, one task per worker at a time (no
   * pipelining: such tasks are few), taking their CPUs from the scheduler's pool as actors do.
   * Starts workers for an environment while it has more tasks than starting workers, up to
   * numWorkers per environment; idle workers of other environments make room past twice that.
   */
  dispatchEnv(): void {
    const needed = new Map<string, number>();
    for (let i = 0; i < this.envQueue.length; ) {
      const record = this.envQueue[i] as TaskRecord;
      const env = record.spec.runtimeEnv;
      const key = runtimeEnvKey(env);
      const list = this.context.pool.envWorkers.get(key) ?? [];
      const idle = list.find((w) => w.accepting && w.load === 0 && w.inFlight.size === 0);
      if (idle === undefined) {
        const want = (needed.get(key) ?? 0) + 1;
        needed.set(key, want);
        const starting = list.filter((w) => w.alive && !w.accepting && w.terminatedFor === undefined).length;
        if (!this.workingDirReady(env)) {
          // Its package is fetched first (then dispatched again), or cannot be: the task fails saying why.
          const failed = this.workingDirs?.failure(env?.workingDir as string);
          if (failed === undefined) i++;
          else {
            this.envQueue.splice(i, 1);
            this.context.tasks.failTask(record, encodeError(failed));
          }
          continue;
        }
        if (starting < want && list.length < this.context.options.numWorkers) {
          this.makeRoomForEnvWorker(key);
          this.context.pool.spawnEnvWorker(env ?? {});
        }
        i++;
        continue;
      }
      if (!this.context.scheduler.tryReserve(record.numCpus)) return; // FIFO: it waits for CPUs
      // As the scheduler holds a worker's CPUs: given back by onTaskDone / onWorkerLost.
      idle.load = 1;
      idle.reservedCpuUnits = Math.round(record.numCpus * 10_000);
      this.envQueue.splice(i, 1);
      this.sendEnvTask(idle, record);
    }
    this.context.dispatcher.keepAliveWhileQueued();
  }

  // ---- runtimeEnv.workingDir packages in a cluster (see working-dir.ts) ----

  /** This node's unpacked working-dir packages: made on first use (only a cluster's specs name packages). */
  workingDirs: WorkingDirCache | undefined;

  /** Actors created once their working-dir package is unpacked here, with the calls and kills that came meanwhile (by actor ID). */
  awaitingWorkingDir: Map<string, AwaitingActor[]> | undefined;

  private workingDirCache(): WorkingDirCache {
    return (this.workingDirs ??= new WorkingDirCache(workingDirCacheRoot(this.context.nodeId), (key) => this.context.cluster?.fetchPackage(key) ?? Promise.resolve(null)));
  }

  /** Whether workers of `env` can start here now; if its package is not unpacked yet, that starts, and the env queue is dispatched again after. */
  workingDirReady(env: RuntimeEnvSpec | undefined): boolean {
    const dir = env?.workingDir;
    if (dir === undefined || !isPackageUri(dir)) return true;
    const cache = this.workingDirCache();
    if (cache.isReady(dir)) return true;
    if (!cache.isPreparing(dir) && cache.failure(dir) === undefined) {
      void cache.prepare(dir).then(
        () => this.context.dispatcher.scheduleDispatch(),
        () => this.context.dispatcher.scheduleDispatch(),
      );
    }
    return false;
  }

  /**
   * Creates an actor once its working-dir package is unpacked here (at once when it needs none,
   * or has it), or dead, with why, when it cannot be. Calls and kills that come meanwhile wait, and go on in order after.
   */
  whenWorkingDirReady(spec: ActorSpec, create: (error: Error | undefined) => void): void {
    if (this.workingDirReady(spec.runtimeEnv)) return create(undefined);
    const waiting = (this.awaitingWorkingDir ??= new Map());
    if (waiting.has(spec.actorId)) return;
    waiting.set(spec.actorId, []);
    const done = (error: Error | undefined): void => {
      const waited = waiting.get(spec.actorId) ?? [];
      waiting.delete(spec.actorId);
      if (waiting.size === 0) this.awaitingWorkingDir = undefined;
      create(error);
      this.context.actorRouting.replay(spec.actorId, waited);
    };
    void this.workingDirCache().prepare(spec.runtimeEnv?.workingDir as string).then(
      () => done(undefined),
      (error: Error) => done(error),
    );
  }

  /**
   * Too many env workers: an idle one of another environment goes, unless each owns objects that
   * are still referenced (they would die with it), as Ray's pool keeps such workers; then there is
   * one worker more.
   */
  private makeRoomForEnvWorker(key: string): void {
    let total = 0;
    for (const list of this.context.pool.envWorkers.values()) total += list.length;
    if (total < Math.max(4, 2 * this.context.options.numWorkers)) return;
    const owners = this.context.objects.owners();
    for (const [other, list] of this.context.pool.envWorkers) {
      if (other === key) continue;
      const idle = list.find((w) => w.accepting && w.inFlight.size === 0 && !owners.has(w.id));
      if (idle === undefined) continue;
      idle.accepting = false;
      this.context.pool.kill(idle, 'shutdown');
      return;
    }
  }

  private sendEnvTask(worker: Worker, record: TaskRecord): void {
    const { spec } = record;
    const args = this.context.dispatcher.startOn(worker, record);
    if (args === undefined) return;
    const seq = record.seq;
    const functions: FunctionDescriptor[] = [];
    const functionId = functionIdOf(spec);
    if (!worker.knownFunctions.has(functionId)) {
      worker.knownFunctions.add(functionId);
      const fn = this.context.functions.get(functionId);
      if (fn !== undefined) functions.push(fn);
    }
    this.context.pool.setBusy(worker, true);
    this.context.dispatcher.sendExecute(worker, functions, [this.context.dispatcher.executeTaskOf(record, seq, args)]);
  }

  /**
   * An env worker is gone: its tasks go back to the front of the env queue, or, if it died while
   * starting (a workingDir it cannot start in, say), its environment's tasks fail saying why.
   */
  onEnvWorkerExit(worker: Worker, requeue: readonly TaskRecord[]): void {
    const key = worker.envKey ?? '';
    if (!worker.accepting && worker.terminatedFor === undefined && worker.nextSeq === 1) {
      const error = encodeError(
        new WorkerCrashedError(
          `a worker for runtimeEnv ${key} could not start: ${worker.exitError?.message ?? 'no error given'}. ` +
            'Check its workingDir (it must exist where the task runs) and its envVars (NODE_OPTIONS, say, apply to it)',
        ),
      );
      const others: TaskRecord[] = [];
      for (const record of this.envQueue) {
        if (runtimeEnvKey(record.spec.runtimeEnv) === key) this.context.tasks.failTask(record, error);
        else others.push(record);
      }
      this.envQueue.length = 0;
      this.envQueue.push(...others);
      for (const record of requeue) this.context.tasks.failTask(record, error);
    } else {
      this.envQueue.unshift(...requeue);
    }
    this.context.dispatcher.scheduleDispatch();
  }
}
