/**
 * getRuntimeContext() (env): where the calling code runs, as Ray's ray.get_runtime_context(). A
 * context is made per call and names the task or actor call whose code was running when it was
 * made, so that `const ctx = getRuntimeContext()` at the top of a task keeps naming that task
 * after awaits. Its signal is made only when read, so tasks that never read it cost nothing.
 */
import { MinirayError } from '../errors/index.js';
import { assignedGpuIds, assignedResources } from '../core-worker/assigned.js';
import { ActorHandleImpl, type ActorHandle } from '../actors/handle.js';
import type { Runtime, RunningWork, WorkContext } from '../core-worker/current.js';
import type { RuntimeEnvSpec } from '../protocol/index.js';
import type { ActorIdHex } from '../ids/index.js';
import type { RuntimeEnv } from './options.js';

export interface RuntimeContext<A extends object = object> {
  /** The job (driver) this work belongs to, as Ray's hex job ID ('01000000' for job 1); '' while not known yet. */
  readonly jobId: string;
  /** The task or actor call running (an actor's constructor: the actor's ID); undefined in the driver. */
  readonly taskId: string | undefined;
  /** The actor whose constructor or method runs; undefined in a task or the driver. */
  readonly actorId: string | undefined;
  /** The node this code runs on. */
  readonly nodeId: string;
  /** The worker (or driver) this code runs in. */
  readonly workerId: string;
  /** The job's namespace (actors' names live in namespaces): init({ namespace }), else an anonymous one (a UUID), as Ray's. */
  readonly namespace: string;
  /** True in the driver program, false inside a task or an actor. */
  readonly isDriver: boolean;
  /** A handle to the actor whose code runs (to pass to others, or to call itself); throws outside an actor, as Ray does. */
  readonly currentActor: ActorHandle<A>;
  /** True in an actor instance made by a restart (after its worker died, or kill({ noRestart: false })). */
  readonly wasCurrentActorReconstructed: boolean;
  /** The runtime environment this code runs in (inherited and merged); {} when none. */
  readonly runtimeEnv: RuntimeEnv;
  /**
   * Aborted when the task or actor call is cancelled with cancel() (without force), with a
   * TaskCancelledError as its reason: pass it to fetch() or timers, or check `signal.aborted`, to
   * stop early. In the driver it never aborts. Made on first read.
   */
  readonly signal: AbortSignal;
  // ---- resources and placement groups (pg) ----
  /**
   * What the running task or actor holds: { CPU: 1 } by default, its numGpus as GPU, its custom
   * resources; in a placement group, the same names (not the group's). {} in the driver.
   */
  getAssignedResources(): Record<string, number>;
  /** The IDs of the GPUs the running task or actor holds (also in CUDA_VISIBLE_DEVICES there); [] when none. */
  getGpuIds(): number[];
}

/** Ray's JobID hex for job number `n`: 4 bytes, little-endian. */
export function jobIdHex(n: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32LE(n >>> 0);
  return bytes.toString('hex');
}

function publicEnv(env: RuntimeEnvSpec | undefined): RuntimeEnv {
  const copy: RuntimeEnv = {};
  if (env?.envVars !== undefined) copy.envVars = { ...env.envVars };
  if (env?.workingDir !== undefined) copy.workingDir = env.workingDir;
  return copy;
}

let neverAborted: AbortSignal | undefined;

/**
 * The IDs are own fields, so a context returned from a task travels as them; what is made on
 * demand (the actor's handle, the signal, a copy of the environment) is behind getters on the
 * prototype, in ES private fields, which the codec does not see.
 */
class RuntimeContextImpl<A extends object> implements RuntimeContext<A> {
  readonly jobId: string;
  readonly taskId: string | undefined;
  readonly actorId: ActorIdHex | undefined;
  readonly nodeId: string;
  readonly workerId: string;
  readonly namespace: string;
  readonly isDriver: boolean;
  readonly #work: WorkContext | undefined;
  readonly #running: RunningWork | undefined;
  readonly #env: RuntimeEnvSpec | undefined;
  #signal: AbortSignal | undefined;

  constructor(runtime: Runtime) {
    const { nodeId, workerId } = runtime.coreWorker.address;
    const work = runtime.kind === 'worker' ? runtime.work : undefined;
    const running = work?.current();
    this.#work = work;
    this.#running = running;
    this.#env = runtime.coreWorker.runtimeEnv;
    this.jobId = runtime.kind === 'worker' ? (work?.jobId() ?? '') : (runtime.jobId?.() ?? '');
    this.namespace = runtime.kind === 'worker' ? (work?.namespace() ?? runtime.coreWorker.namespace) : runtime.coreWorker.currentNamespace();
    this.taskId = running?.taskId;
    this.actorId = running?.actorId;
    this.nodeId = nodeId;
    this.workerId = workerId;
    this.isDriver = runtime.kind === 'driver';
  }

  #actorInfo(): ReturnType<WorkContext['actor']> {
    return this.actorId === undefined ? undefined : this.#work?.actor(this.actorId);
  }

  get currentActor(): ActorHandle<A> {
    const info = this.#actorInfo();
    if (this.actorId === undefined || info === undefined) {
      throw new MinirayError(
        'getRuntimeContext().currentActor is only available in an actor (its constructor or methods); ' +
          `this code runs in ${this.isDriver ? 'the driver' : 'a task'}`,
      );
    }
    return new ActorHandleImpl({ actorId: this.actorId, className: info.className, methodNames: info.methodNames }) as unknown as ActorHandle<A>;
  }

  get wasCurrentActorReconstructed(): boolean {
    return (this.#actorInfo()?.numRestarts ?? 0) > 0;
  }

  get runtimeEnv(): RuntimeEnv {
    return publicEnv(this.#env);
  }

  // pg: what the running task holds (the driver holds nothing)
  getAssignedResources(): Record<string, number> {
    return this.isDriver ? {} : assignedResources();
  }

  getGpuIds(): number[] {
    return this.isDriver ? [] : assignedGpuIds();
  }

  get signal(): AbortSignal {
    if (this.#signal !== undefined) return this.#signal;
    const work = this.#work;
    const running = this.#running;
    this.#signal = work !== undefined && running !== undefined ? work.signalOf(running.seq) : (neverAborted ??= new AbortController().signal);
    return this.#signal;
  }
}

export function makeRuntimeContext<A extends object>(runtime: Runtime): RuntimeContext<A> {
  return new RuntimeContextImpl<A>(runtime);
}
