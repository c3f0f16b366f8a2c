/**
 * Starting, replacing and stopping the node's worker threads. The pool knows threads, their
 * channels and their liveness; what runs on them is the node's business.
 *
 * Exit behaviour: a worker is ref'd only while it starts, has work or is being ended (until its
 * exit, which the node acts on), so a driver that never calls shutdown() still exits when its work
 * is done, and a waiting `await get()` keeps it alive.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { setting } from '../config/index.js';
import { WorkerID, hexOf, type ActorIdHex, type NodeIdHex } from '../ids/index.js';
import type { ProtocolError } from '../errors/index.js';
import { PROCESS_PROGRESS_FD, parseWorkerToNode, runtimeEnvKey, type NodeToWorker, type PreloadModule, type RuntimeEnvSpec, type WorkerBootData, type WorkerToNode } from '../protocol/index.js';
import { PortChannel, processPort, type Channel, type PortLike } from '../transport/index.js';
import type { WorkerSlot } from '../scheduler/index.js';

const WORKER_ENTRY = new URL('../worker-runtime/main.js', import.meta.url);

/** 'task': runs tasks for the scheduler. 'actor': hosts one actor ('thread', 'process') or many ('shared'). */
export type WorkerRole = 'task' | 'actor';

/** The thread or child process behind a worker. */
export interface WorkerHost {
  ref(): void;
  unref(): void;
  /** Stops it now, even in the middle of `for (;;) {}`. */
  terminate(): Promise<unknown>;
  /** A child process's pid (a thread has its node's: undefined here). */
  readonly pid?: number | undefined;
}

export interface PooledWorker<TTask> extends WorkerSlot {
  readonly id: string;
  readonly role: WorkerRole;
  readonly isolation: 'thread' | 'process';
  readonly host: WorkerHost;
  readonly channel: Channel<NodeToWorker, WorkerToNode>;
  /** progress[0]: seq of the last task the worker started (written by the worker). */
  readonly progress: Int32Array;
  /** A thread's answer cell (see NameAnswer in src/protocol), written by the node; a process has none. */
  readonly answers: Int32Array | undefined;
  /** Function IDs this worker has been sent definitions for. */
  readonly knownFunctions: Set<string>;
  /** Tasks sent to the worker and not yet finished, by seq (in seq order). */
  readonly inFlight: Map<number, TTask>;
  nextSeq: number;
  alive: boolean;
  /** Set before a deliberate terminate (force-cancel): why the worker is going away. */
  terminatedFor: 'cancel' | 'shutdown' | 'actor' | 'idle' | undefined;
  /**
   * Set by the pool when it terminates the worker, deliberately (kill, shutdown) or as crashed
   * (endAsCrashed): the worker stays ref'd until its exit, whatever setBusy says (see setBusy).
   */
  ending: boolean;
  /** The error the thread died with, if any (e.g. ERR_WORKER_OUT_OF_MEMORY). */
  exitError: Error | undefined;
  /** Actors living on this worker (role 'actor'). */
  readonly actors: Set<ActorIdHex>;
  /** Arena slabs this worker has been sent, by index. */
  readonly knownSlabs: Map<number, SharedArrayBuffer>;
  /** The key of the runtime environment it runs in (env; see runtimeEnvKey): it runs nothing of another. */
  readonly envKey?: string;
  /** Whether it has been told the job's ID (boot data or an execute message; env). */
  knowsJobId?: boolean;
}

export interface WorkerPoolOptions<TTask> {
  readonly nodeId: NodeIdHex;
  readonly size: number;
  readonly resourceLimits: ResourceLimits | undefined;
  readonly onMessage: (worker: PooledWorker<TTask>, message: WorkerToNode, attached: readonly SharedArrayBuffer[]) => void;
  /** The worker sent something malformed (its channel takes nothing more from it). */
  readonly onBadMessage: (worker: PooledWorker<TTask>, error: ProtocolError) => void;
  /** The thread is gone (crash, exit, terminate). Called once per worker. */
  readonly onExit: (worker: PooledWorker<TTask>) => void;
  /** The node's runtime environment (the job's, in a driver): its default workers run in it (env). */
  readonly runtimeEnv?: RuntimeEnvSpec | undefined;
  /** The job's ID once known ('' before), for boot data (env). */
  readonly jobId?: () => string;
  /** The job's namespace, with its ID (env). */
  readonly namespace?: () => string;
  /** The folder a workingDir names on this node (a package URI's unpacked copy, in a cluster; env). */
  readonly workingDirOf?: (workingDir: string) => string;
  /** The node's object store capacity, for boot data (a worker's put() of a larger value throws). */
  readonly objectStoreBytes?: number;
}

export class WorkerPool<TTask> {
  /** Task workers, for the scheduler. */
  readonly workers: PooledWorker<TTask>[] = [];
  /** Workers hosting actors. */
  readonly actorHosts = new Set<PooledWorker<TTask>>();
  private readonly preload = preloadModules();
  /** Read when the node is built (after a joining node adopted the head's): its workers wait longer than it for the GCS. */
  private readonly gcsReconnectTimeoutMs = setting('gcsReconnectTimeoutMs');
  private readonly readyWaiters = new Set<{ worker: PooledWorker<TTask>; resolve: () => void; reject: (e: Error) => void }>();

  /** The key of the node's own environment: tasks and actors in it use the default workers (env). */
  readonly defaultEnvKey: string;
  /** A workingDir needs worker processes (a thread cannot change its directory): then the default workers are processes. */
  private readonly defaultIsolation: 'thread' | 'process';

  constructor(private readonly options: WorkerPoolOptions<TTask>) {
    this.defaultEnvKey = runtimeEnvKey(options.runtimeEnv);
    this.defaultIsolation = options.runtimeEnv?.workingDir === undefined ? 'thread' : 'process';
  }

  /** Starts the pool's threads (they become `accepting` when they report ready). */
  start(): void {
    for (let i = 0; i < this.options.size; i++) this.workers.push(this.spawn('task', this.defaultIsolation));
  }

  /** Starts a worker for actors (in `runtimeEnv` when given, else in the node's; env). */
  spawnActorHost(isolation: 'thread' | 'process', runtimeEnv?: RuntimeEnvSpec): PooledWorker<TTask> {
    const env = runtimeEnv ?? this.options.runtimeEnv;
    const worker = this.spawn('actor', env?.workingDir === undefined ? isolation : 'process', env);
    this.actorHosts.add(worker);
    return worker;
  }

  // ---- workers of other runtime environments (env) ----

  /**
   * Task workers of runtime environments other than the node's, by environment key: started on
   * demand, each runs the tasks of its environment only (the node dispatches to them one task at
   * a time), and idle ones of other environments make room when there are too many.
   */
  readonly envWorkers = new Map<string, PooledWorker<TTask>[]>();

  /** Starts a task worker for `runtimeEnv`: a thread with its envVars, or a process in its workingDir. */
  spawnEnvWorker(runtimeEnv: RuntimeEnvSpec): PooledWorker<TTask> {
    const worker = this.spawn('task', runtimeEnv.workingDir === undefined ? 'thread' : 'process', runtimeEnv);
    const key = worker.envKey ?? '';
    let list = this.envWorkers.get(key);
    if (list === undefined) this.envWorkers.set(key, (list = []));
    list.push(worker);
    return worker;
  }

  /** Forgets an env worker that is gone; true if `worker` was one. */
  forgetEnvWorker(worker: PooledWorker<TTask>): boolean {
    const key = worker.envKey ?? '';
    const list = this.envWorkers.get(key);
    const index = list?.indexOf(worker) ?? -1;
    if (list === undefined || index < 0) return false;
    list.splice(index, 1);
    if (list.length === 0) this.envWorkers.delete(key);
    return true;
  }

  /** Every worker: default, other environments', and actor hosts. */
  allWorkers(): PooledWorker<TTask>[] {
    const all = [...this.workers, ...this.actorHosts];
    for (const list of this.envWorkers.values()) all.push(...list);
    return all;
  }

  /** Resolves when every current worker is ready; rejects if one dies while starting. */
  whenReady(): Promise<void> {
    return Promise.all(
      this.workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            if (worker.accepting) resolve();
            else if (!worker.alive) reject(worker.exitError ?? new Error('worker exited while starting'));
            else this.readyWaiters.add({ worker, resolve, reject });
          }),
      ),
    ).then(() => undefined);
  }

  /** Task workers beyond the pool's size (started for tasks whose parents wait in get(), see grow). */
  get extraWorkers(): number {
    return Math.max(0, this.workers.length - this.options.size);
  }

  /**
   * Starts one more task worker than the pool's size: a task whose parent waits in get() gets a
   * thread of its own, as Ray starts a worker when its others are blocked, rather than run in
   * the waiting parent's thread, whose fate it would share. Retired when idle (retire).
   */
  grow(): PooledWorker<TTask> {
    const worker = this.spawn('task', this.defaultIsolation);
    this.workers.push(worker);
    return worker;
  }

  /** Ends an idle task worker the pool does not need (beyond its size): it is not replaced. */
  retire(worker: PooledWorker<TTask>): void {
    const index = this.workers.indexOf(worker);
    if (index >= 0) this.workers.splice(index, 1);
    this.kill(worker, 'idle');
  }

  /** Starts a thread in place of a dead one. */
  replace(dead: PooledWorker<TTask>): PooledWorker<TTask> {
    const index = this.workers.indexOf(dead);
    if (index >= 0) this.workers.splice(index, 1);
    const worker = this.spawn('task', this.defaultIsolation);
    this.workers.push(worker);
    return worker;
  }

  /**
   * Keeps the process alive while the worker has work; lets it exit when idle. A worker being
   * ended is never idle: the node acts on its exit (requeues its tasks, restarts its actors, sends
   * their queued calls on), so the process waits for it, whatever results reach the node first.
   * Without this, the results of what finished before the worker stopped would leave it unref'd,
   * and a get() that waits for the exit's work would hang with nothing keeping the loop alive.
   */
  setBusy(worker: PooledWorker<TTask>, busy: boolean): void {
    if (!worker.alive || (!busy && worker.ending)) return;
    if (busy) worker.host.ref();
    else worker.host.unref();
  }

  /** Stops a worker now, even in the middle of `for (;;) {}`: a deliberate end (not a crash). */
  kill(worker: PooledWorker<TTask>, reason: 'cancel' | 'shutdown' | 'actor' | 'idle'): void {
    worker.terminatedFor = reason;
    void this.end(worker);
  }

  /**
   * Stops a worker that is to be handled as crashed (it sent a malformed message): its exit counts
   * as a crash (no terminatedFor: its tasks are retried as after a crash, its actors restarted),
   * and it is awaited as any worker the pool ends.
   */
  endAsCrashed(worker: PooledWorker<TTask>): void {
    void this.end(worker);
  }

  /** Every termination goes here: from now until its exit event the worker keeps the process alive. */
  private end(worker: PooledWorker<TTask>): Promise<unknown> {
    worker.ending = true;
    if (worker.alive) worker.host.ref();
    return worker.host.terminate();
  }

  async shutdown(): Promise<void> {
    const threads = this.allWorkers().map((worker) => {
      worker.terminatedFor = 'shutdown';
      worker.channel.close();
      return this.end(worker);
    });
    this.workers.length = 0;
    this.actorHosts.clear();
    this.envWorkers.clear();
    await Promise.allSettled(threads);
  }

  private spawn(role: WorkerRole, isolation: 'thread' | 'process', runtimeEnv: RuntimeEnvSpec | undefined = this.options.runtimeEnv): PooledWorker<TTask> {
    const id = hexOf(WorkerID.fromRandom());
    const progress = new SharedArrayBuffer(4);
    const answers = isolation === 'thread' ? new SharedArrayBuffer(4) : undefined;
    const jobId = this.options.jobId?.() ?? '';
    const bootData: WorkerBootData = {
      nodeId: this.options.nodeId,
      workerId: id,
      progress,
      ...(answers === undefined ? {} : { answers }),
      preload: this.preload,
      gcsReconnectTimeoutMs: this.gcsReconnectTimeoutMs,
      ...(this.options.objectStoreBytes === undefined ? {} : { objectStoreBytes: this.options.objectStoreBytes }),
      ...(runtimeEnv === undefined ? {} : { runtimeEnv }),
      ...(jobId === '' ? {} : { jobId, namespace: this.options.namespace?.() ?? '' }),
    };
    const { host, port, events, readProgress } = isolation === 'thread' ? this.startThread(bootData, runtimeEnv) : startProcess(bootData, runtimeEnv, runtimeEnv?.workingDir === undefined ? undefined : (this.options.workingDirOf?.(runtimeEnv.workingDir) ?? runtimeEnv.workingDir));
    const worker: PooledWorker<TTask> = {
      id,
      role,
      isolation,
      host,
      channel: new PortChannel<NodeToWorker, WorkerToNode>(port, parseWorkerToNode),
      progress: new Int32Array(progress),
      answers: answers === undefined ? undefined : new Int32Array(answers),
      knownFunctions: new Set(),
      inFlight: new Map(),
      nextSeq: 1,
      alive: true,
      accepting: false,
      load: 0,
      reservedCpuUnits: 0,
      terminatedFor: undefined,
      ending: false,
      exitError: undefined,
      actors: new Set(),
      knownSlabs: new Map(),
      envKey: runtimeEnvKey(runtimeEnv),
      knowsJobId: jobId !== '',
    };
    worker.channel.onMessage((message, attached) => {
      if (message.type === 'ready') {
        worker.accepting = true;
        // A starting worker keeps the process alive (init() awaits it); an idle one does not.
        this.setBusy(worker, worker.inFlight.size > 0);
        for (const waiter of this.readyWaiters) {
          if (waiter.worker === worker) {
            this.readyWaiters.delete(waiter);
            waiter.resolve();
          }
        }
      }
      this.options.onMessage(worker, message, attached);
    });
    worker.channel.onError((error) => this.options.onBadMessage(worker, error));
    events.on('error', (error: Error) => {
      worker.exitError = error;
    });
    events.once('exit', (code: number | null, signal?: string | null) => {
      // A process's progress cell is in a file: bring it into `progress`, where the node reads it.
      if (readProgress !== undefined) Atomics.store(worker.progress, 0, readProgress());
      worker.alive = false;
      worker.accepting = false;
      worker.channel.close();
      if (worker.exitError === undefined && worker.terminatedFor === undefined && (code !== 0 || signal)) {
        worker.exitError = new Error(signal ? `killed by ${signal}` : `exited with code ${code}`);
      }
      this.actorHosts.delete(worker);
      for (const waiter of this.readyWaiters) {
        if (waiter.worker === worker) {
          this.readyWaiters.delete(waiter);
          waiter.reject(worker.exitError ?? new Error('worker exited while starting'));
        }
      }
      this.options.onExit(worker);
    });
    return worker;
  }

  private startThread(bootData: WorkerBootData, runtimeEnv: RuntimeEnvSpec | undefined): { host: WorkerHost; port: Worker; events: Worker; readProgress?: undefined } {
    const thread = new Worker(WORKER_ENTRY, {
      workerData: bootData,
      // env: a thread gets its own copy of process.env, with its environment's variables set in it.
      ...(runtimeEnv?.envVars === undefined ? {} : { env: { ...process.env, ...runtimeEnv.envVars } }),
      resourceLimits: this.options.resourceLimits,
      // Node would pipe these to the process's own; the worker writes its output to the process's
      // descriptors itself instead (worker-runtime/stdio.ts), so none is lost at exit or terminate().
      stdout: false,
      stderr: false,
      // A thread inherits the driver's flags, except under `node --input-type=module -e`, where it
      // would refuse to start (--input-type applies only to -e input). It needs none of them then:
      // --import hooks are replayed from the boot data, and V8 flags are the process's anyway.
      execArgv: driverRunsEval() ? [] : undefined,
    });
    return { host: thread, port: thread, events: thread };
  }
}

/**
 * A worker in a child process ('process' isolation): the same runtime, over the IPC channel. The
 * child inherits the driver's Node flags (so `--import tsx` applies there natively).
 */
function startProcess(bootData: WorkerBootData, runtimeEnv: RuntimeEnvSpec | undefined, cwd: string | undefined): {
  host: WorkerHost;
  port: PortLike;
  events: ChildProcess;
  /** The seq of the last call the process started (once, after it exited). */
  readProgress: () => number;
} {
  // Its progress cell: a 4-byte file, unlinked at once so that nothing is left behind however
  // either process ends; the child writes it through the descriptor it inherits, the node reads it.
  const path = join(tmpdir(), `miniray-progress-${bootData.workerId}`);
  const progressFd = openSync(path, 'w+', 0o600);
  unlinkSync(path);
  const cell = new Int32Array(1);
  writeSync(progressFd, new Uint8Array(cell.buffer), 0, 4, 0);
  const stdio: ('ignore' | 'inherit' | 'ipc' | number)[] = ['ignore', 'inherit', 'inherit', 'ipc'];
  stdio[PROCESS_PROGRESS_FD] = progressFd;
  let child: ChildProcess;
  try {
    child = fork(fileURLToPath(WORKER_ENTRY), [], {
      serialization: 'advanced',
      // env: started in its workingDir, its --import hooks are named by absolute URL (as resolved here).
      execArgv: runtimeEnv?.workingDir === undefined ? workerExecArgv() : absoluteExecArgv(workerExecArgv()),
      env: { ...process.env, ...runtimeEnv?.envVars, MINIRAY_WORKER_BOOT: JSON.stringify({ ...bootData, progress: undefined, preload: [] }) },
      ...(cwd === undefined ? {} : { cwd }),
      stdio,
    });
  } catch (error) {
    closeSync(progressFd);
    throw error;
  }
  const readProgress = () => {
    try {
      readSync(progressFd, new Uint8Array(cell.buffer), 0, 4, 0);
      closeSync(progressFd);
    } catch {
      // Already read and closed: the cell keeps the last value read.
    }
    return cell[0] as number;
  };
  const host: WorkerHost = {
    pid: child.pid,
    ref: () => {
      child.ref();
      (child.channel as { ref?: () => void } | undefined)?.ref?.();
    },
    unref: () => {
      child.unref();
      (child.channel as { unref?: () => void } | undefined)?.unref?.();
    },
    terminate: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else {
          child.once('exit', () => resolve());
          child.ref(); // wait for its exit even when it was idle (unref'd)
          child.kill('SIGKILL');
        }
      }),
  };
  return { host, port: processPort(child as unknown as Parameters<typeof processPort>[0]), events: child, readProgress };
}

/**
 * The driver's Node flags for a worker process, less those about the driver's own entry: under
 * `node --input-type=module -e '...'` the process would otherwise refuse to start (--input-type
 * applies only to -e input) or run the driver's code again.
 */
function driverRunsEval(): boolean {
  return process.execArgv.some((arg) => /^(-e|-p|--eval|--print|--input-type)(=|$)/.test(arg));
}

function workerExecArgv(): string[] {
  const kept: string[] = [];
  const args = process.execArgv;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (['-e', '--eval', '-p', '--print'].includes(arg)) i++; // and its code
    else if (!/^(--input-type|--eval|--print)(=|$)/.test(arg)) kept.push(arg);
  }
  return kept;
}

/**
 * Node flags with their --import, --loader and --experimental-loader modules named by absolute
 * URL, resolved from this process's directory: a worker process started in another directory
 * (a runtime environment's workingDir) would otherwise look for them there (env).
 */
function absoluteExecArgv(args: readonly string[]): string[] {
  const requireFromCwd = createRequire(join(process.cwd(), 'noop.js'));
  const absolute = (specifier: string): string => {
    if (/^(file|data|node):/.test(specifier)) return specifier;
    try {
      return pathToFileURL(requireFromCwd.resolve(specifier)).href;
    } catch {
      return existsSync(resolvePath(specifier)) ? pathToFileURL(resolvePath(specifier)).href : specifier;
    }
  };
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const flag = ['--import', '--loader', '--experimental-loader'].find((name) => arg === name || arg.startsWith(`${name}=`));
    if (flag === undefined) out.push(arg);
    else if (arg === flag && i + 1 < args.length) out.push(flag, absolute(args[++i] as string));
    else out.push(`${flag}=${absolute(arg.slice(flag.length + 1))}`);
  }
  return out;
}

/**
 * The modules the driver was started with via --import (and --loader), so workers load user code
 * the same way: a TypeScript program run with `node --import tsx` or `tsx` gets TypeScript in its
 * workers too. tsx is registered through its API, which (unlike its --import entry) works in a
 * worker thread on Node 20.
 */
function preloadModules(): PreloadModule[] {
  const modules: PreloadModule[] = [];
  const args = process.execArgv;
  const requireFromCwd = createRequire(join(process.cwd(), 'noop.js'));
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    let specifier: string | undefined;
    for (const flag of ['--import', '--loader', '--experimental-loader']) {
      if (arg === flag) specifier = args[++i];
      else if (arg.startsWith(`${flag}=`)) specifier = arg.slice(flag.length + 1);
    }
    if (specifier === undefined) continue;
    let resolved: string | undefined;
    try {
      resolved = specifier.startsWith('file:') ? new URL(specifier).pathname : requireFromCwd.resolve(specifier);
    } catch {
      resolved = existsSync(resolvePath(specifier)) ? resolvePath(specifier) : undefined;
    }
    const tsxRoot = resolved?.lastIndexOf(`${sep}node_modules${sep}tsx${sep}`) ?? -1;
    if (resolved !== undefined && tsxRoot >= 0) {
      const root = resolved.slice(0, tsxRoot + `${sep}node_modules${sep}tsx${sep}`.length);
      modules.push({ kind: 'tsx', apiUrl: pathToFileURL(join(root, 'dist', 'esm', 'api', 'index.mjs')).href });
    } else {
      modules.push({ kind: 'import', specifier: resolved ? pathToFileURL(resolved).href : specifier });
    }
  }
  return modules;
}
