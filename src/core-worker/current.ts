/**
 * The CoreWorker of the current thread: the driver's (set by init()) or a worker's (set by the
 * worker runtime at start-up). The public API finds it here. Kept on globalThis so that a second
 * copy of the package loaded in the same thread (e.g. by a user module) sees the same runtime.
 */
import { MinirayError } from '../errors/index.js';
import type { CoreWorker } from './index.js';
import type { ActorIdHex, TaskIdHex } from '../ids/index.js';

export type Runtime =
  | { readonly kind: 'driver'; readonly coreWorker: CoreWorker; shutdown(): Promise<void>; readonly jobId?: () => string }
  | { readonly kind: 'worker'; readonly coreWorker: CoreWorker; readonly work?: WorkContext };

/** The task or actor call whose code runs now in a worker, as getRuntimeContext() reads it (env). */
export interface RunningWork {
  readonly seq: number;
  readonly taskId: TaskIdHex | ActorIdHex;
  /** Set for an actor's creation and its calls. */
  readonly actorId?: ActorIdHex | undefined;
}

/** What a worker's executor tells getRuntimeContext() (env). */
export interface WorkContext {
  /** The task or call whose code runs now (the last one started or resumed); undefined between tasks. */
  current(): RunningWork | undefined;
  /** The AbortSignal of a running task or call, made on first use; aborted when it is cancelled. */
  signalOf(seq: number): AbortSignal;
  /** The actor living here: its class, method names and restarts so far. */
  actor(actorId: string): { readonly className: string; readonly methodNames: readonly string[]; readonly numRestarts: number } | undefined;
  /** The job's ID (hex), '' when the node has not told it. */
  jobId(): string;
  /** The job's namespace, '' when the node has not told it. */
  namespace(): string;
}

const KEY = Symbol.for('miniray.runtime');
const holder = globalThis as { [KEY]?: Runtime | undefined };

export function currentRuntime(): Runtime | undefined {
  return holder[KEY];
}

export function setCurrentRuntime(runtime: Runtime | undefined): void {
  holder[KEY] = runtime;
}

let starter: (() => Runtime) | undefined;

/** Called by the public API at load: how to start the embedded default when nothing runs yet. */
export function setRuntimeStarter(start: () => Runtime): void {
  starter = start;
}

/** The current runtime, starting the embedded default if none runs (as Ray auto-initializes). */
export function ensureRuntime(): Runtime {
  const runtime = currentRuntime() ?? starter?.();
  if (runtime === undefined) throw new MinirayError('miniray is not running and cannot start here; call init() first');
  return runtime;
}
