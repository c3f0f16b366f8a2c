/**
 * The public API: init, shutdown, remote, get, put, wait, cancel. Everything here is a thin,
 * typed door onto the current thread's CoreWorker (the driver's, or a worker's inside a task).
 */
import { randomBytes } from 'node:crypto';
import {
  ActorExitError,
  ActorNotFoundError,
  AuthenticationError,
  InvalidArgumentError,
  InvalidOptionError,
  MinirayError,
  ObjectLostError,
  describeValue,
  fromErrorRecord,
} from '../errors/index.js';
import { ActorClassImpl, RemoteFunctionImpl } from './remote-function.js';
import {
  ActorHandleImpl,
  actorIdOf,
  generatorMethodsOf,
  hasAsyncMethods,
  methodNamesOf,
  type ActorHandle,
  type StaticMethodOptions,
} from '../actors/handle.js';
import {
  CoreWorker,
  registerModuleFunction,
} from '../core-worker/index.js';
import { currentRuntime, ensureRuntime, setCurrentRuntime, setRuntimeStarter } from '../core-worker/current.js';
import { WorkerID, hexOf } from '../ids/index.js';
import { LocalNodeClient, PACKAGES, isPackageUri, packWorkingDir, packageKey, type Node } from '../node/index.js';
import { startEmbedded, startMember, tlsFromEnvironment, type ClusterMember } from '../cluster/start.js';
import { resolveAddress, resolveToken } from '../cluster/session.js';
import { ObjectRef, describeNonRef, refHex } from '../object-ref/index.js';
import { ObjectRefGenerator, isObjectRefGenerator } from '../object-ref/generator.js';
import { setting, validateOptions } from '../config/index.js';
import { callerOf, decodeErrorRecord, describeFunction } from '../serialization/index.js';
import type { ClusterAnswer, ClusterQuery, RuntimeEnvSpec } from '../protocol/index.js';
import {
  CANCEL_RULES,
  GET_ACTOR_RULES,
  GET_RULES,
  KILL_RULES,
  WAIT_RULES,
  defaultActorOptions,
  defaultTaskOptions,
  generatorTaskOptions,
  mergeActorOptions,
  mergeTaskOptions,
  resolveInitOptions,
  type ActorOptions,
  type CancelOptions,
  type GetActorOptions,
  type KillOptions,
  type GetOptions,
  type InitOptions,
  type TaskOptions,
  type WaitOptions,
} from './options.js';

export type {
  InitOptions,
  TaskOptions,
  ErrorClass,
  SchedulingStrategy,
  GetOptions,
  WaitOptions,
  CancelOptions,
  ActorOptions,
  ActorLifetime,
  KillOptions,
  GetActorOptions,
} from './options.js';
export type { ActorHandle, ActorMethod, ActorMethodNames, ActorHandleBase } from '../actors/handle.js';
// Per-method options (actors part).
export type { ActorMethodOptions, MultiReturnActorMethod, MethodOptionsOf, MethodReturnRefs, StaticMethodOptions } from '../actors/handle.js';
export type { RuntimeEnv } from './options.js';
export type { RuntimeContext } from './runtime-context.js';
import { jobIdHex, makeRuntimeContext, type RuntimeContext } from './runtime-context.js';

// ---- types ---------------------------------------------------------------------------------------

/** Each argument may be given as a value or as a ref to a value of the same type. */
export type RemoteArgs<A extends readonly unknown[]> = { [K in keyof A]: A[K] | ObjectRef<A[K]> };

/** The refs `.remote()` returns for numReturns > 1: one per element of the returned tuple or array. */
export type ReturnRefs<R> = R extends readonly unknown[] ? { -readonly [K in keyof R]: ObjectRef<R[K]> } : ObjectRef<unknown>[];

/** The values `get()` gives for an array of refs. */
export type ValuesOf<Refs extends readonly ObjectRef<unknown>[]> = {
  -readonly [K in keyof Refs]: Refs[K] extends ObjectRef<infer T> ? T : never;
};

export interface RemoteFunction<A extends unknown[], R> {
  /** Submits the task; returns at once with a ref to its (unwrapped) result. */
  remote(...args: RemoteArgs<A>): ObjectRef<Awaited<R>>;
  /** A copy with other options. For a function typed to return a tuple, numReturns must be its length. */
  options(options: TaskOptions & { numReturns?: 1 }): RemoteFunction<A, R>;
  options(options: TaskOptions & { numReturns: 0 }): NoReturnRemoteFunction<A, R>;
  options(options: TaskOptions & { numReturns: ReturnCount<Awaited<R>> }): MultiReturnRemoteFunction<A, R>;
}

export interface MultiReturnRemoteFunction<A extends unknown[], R> {
  /** Submits the task; returns one ref per returned element. */
  remote(...args: RemoteArgs<A>): ReturnRefs<Awaited<R>>;
  options(options: TaskOptions & { numReturns?: 1 }): RemoteFunction<A, R>;
  options(options: TaskOptions & { numReturns: 0 }): NoReturnRemoteFunction<A, R>;
  options(options: TaskOptions & { numReturns: ReturnCount<Awaited<R>> }): MultiReturnRemoteFunction<A, R>;
}

// ---- generators ----------------------------------------------------------------------------------

/** What a generator function (sync or async) yields. */
export type YieldOf<G> = G extends Generator<infer T, unknown, never> | AsyncGenerator<infer T, unknown, never> ? T : never;

/** A generator function, sync or async, yielding T. */
export type GeneratorFunction<A extends unknown[], T> = (...args: A) => Generator<T, unknown, never> | AsyncGenerator<T, unknown, never>;

/** Any generator object, sync or async. */
export type AnyGenerator = Generator<unknown, unknown, never> | AsyncGenerator<unknown, unknown, never>;

/** A function returning generator G. */
type GeneratorFn<A extends unknown[], G> = (...args: A) => G;

/** The length numReturns must have for a function returning R: a tuple's own length, else any count. */
export type ReturnCount<R> = R extends readonly unknown[] ? R['length'] : number;

/** N refs to values of type T (an array when N is not a literal). */
export type RefTuple<T, N extends number, Acc extends ObjectRef<T>[] = []> = number extends N
  ? ObjectRef<T>[]
  : Acc['length'] extends N
    ? Acc
    : RefTuple<T, N, [...Acc, ObjectRef<T>]>;

/** The options of a generator's remote function, and what each gives. */
interface GeneratorOptions<A extends unknown[], T> {
  options(options: TaskOptions & { numReturns?: 'streaming' }): StreamingRemoteFunction<A, T>;
  options(options: TaskOptions & { numReturns: 'dynamic' }): DynamicRemoteFunction<A, T>;
  options<const N extends number>(options: TaskOptions & { numReturns: N }): StaticGeneratorRemoteFunction<A, T, N>;
}

/** A generator function made remote (numReturns 'streaming', the default). */
export interface StreamingRemoteFunction<A extends unknown[], T> extends GeneratorOptions<A, T> {
  /** Submits the task; returns at once with a generator of refs, each as soon as its value is yielded. */
  remote(...args: RemoteArgs<A>): ObjectRefGenerator<T>;
}

/** A generator function made remote with numReturns 'dynamic'. */
export interface DynamicRemoteFunction<A extends unknown[], T> extends GeneratorOptions<A, T> {
  /** Submits the task; returns a ref to the array of refs to its values, ready when the generator is done. */
  remote(...args: RemoteArgs<A>): ObjectRef<ObjectRef<T>[]>;
}

/** A generator function made remote with numReturns n: it must yield exactly n values (0: no refs). */
export interface StaticGeneratorRemoteFunction<A extends unknown[], T, N extends number> extends GeneratorOptions<A, T> {
  remote(...args: RemoteArgs<A>): N extends 0 ? undefined : N extends 1 ? ObjectRef<T> : RefTuple<T, N>;
}

/** A remote function with numReturns 0: it runs for its effects, and `.remote()` gives nothing to wait on. */
export interface NoReturnRemoteFunction<A extends unknown[], R> {
  remote(...args: RemoteArgs<A>): undefined;
  options(options: TaskOptions & { numReturns?: 1 }): RemoteFunction<A, R>;
  options(options: TaskOptions & { numReturns: 0 }): NoReturnRemoteFunction<A, R>;
  options(options: TaskOptions & { numReturns: ReturnCount<Awaited<R>> }): MultiReturnRemoteFunction<A, R>;
}

/** Any class whose instances can be actors. */
export type ActorClassType = new (...args: never[]) => object;

export interface ActorClass<C extends ActorClassType> {
  /**
   * Creates the actor (it starts on its own worker as soon as it can); returns its handle at once.
   * The class's static `methodOptions` types the handle (a method with numReturns: 2 gives two refs).
   */
  remote(...args: RemoteArgs<ConstructorParameters<C>>): ActorHandle<InstanceType<C>, StaticMethodOptions<C>>;
  /** A copy with other options. */
  options(options: ActorOptions): ActorClass<C>;
}

// ---- lifecycle -----------------------------------------------------------------------------------

/** What init() resolves to: where this driver is, as Ray's init() returns its context. */
export interface InitResult {
  /** HOST:PORT of the cluster's GCS when this driver joined one; undefined in the embedded default (nothing can join it). */
  readonly address: string | undefined;
  /** This process's node (nodes() lists it once it offers resources). */
  readonly nodeId: string;
  /**
   * The dashboard, with `?token=` once (opening it sets the page's cookie): the one this process
   * serves (includeDashboard), else, joined to a cluster, the head's (as the head tells it: from
   * another machine its 127.0.0.1 is not this one's); undefined when there is none.
   */
  readonly dashboardUrl: string | undefined;
}

let initResult: InitResult | undefined;

/**
 * Starts miniray in this process: a node with worker threads. Resolves when the workers are up.
 * Calling `.remote()` or `put()` first starts it with the defaults, as Ray does. Called again
 * (ignoreReinitError, or inside a task), it resolves to what the first call did.
 */
export async function init(options?: InitOptions): Promise<InitResult> {
  const nodeOptions = resolveInitOptions(options);
  const existing = currentRuntime();
  if (existing !== undefined) {
    if (existing.kind === 'worker') return { address: undefined, nodeId: existing.coreWorker.address.nodeId, dashboardUrl: undefined };
    if (nodeOptions.ignoreReinitError) return initResult ?? { address: driverMember?.gcsAddress, nodeId: existing.coreWorker.address.nodeId, dashboardUrl: undefined };
    throw new MinirayError(
      'init() was called while miniray is already running. Call shutdown() first, or pass { ignoreReinitError: true }.',
    );
  }
  const address = resolveAddress(nodeOptions.address);
  const member = address === undefined ? startEmbedded(nodeOptions) : await joinCluster(address, nodeOptions);
  const coreWorker = startDriver(member, nodeOptions.namespace).coreWorker;
  try {
    if (member.gcsAddress !== undefined) {
      // env: in a cluster, workingDirs travel as packages in the GCS; the job's is uploaded before init() returns.
      const packager = workingDirPackager(member);
      coreWorker.packWorkingDir = (env) => packager.pack(env);
      if (coreWorker.runtimeEnv?.workingDir !== undefined) coreWorker.runtimeEnv = packager.pack(coreWorker.runtimeEnv);
      await packager.uploaded();
    }
    await member.node.ready();
    await jobStarted;
    const dashboardUrl = nodeOptions.dashboard !== undefined ? await startDriverDashboard(member, nodeOptions.dashboard) : member.gcsAddress === undefined ? undefined : await headDashboardUrl(member);
    initResult = { address: member.gcsAddress, nodeId: member.node.nodeId, dashboardUrl };
    return initResult;
  } catch (error) {
    await shutdown();
    if (error instanceof MinirayError) throw error;
    throw new MinirayError(`init() could not start workers: ${(error as Error).message}`, { cause: error });
  }
}

let driverDashboard: { close(): Promise<void> } | undefined;

/** The dashboard of the cluster's head, with the token, if it serves one (it says where in GCS KV). */
async function headDashboardUrl(member: ClusterMember): Promise<string | undefined> {
  const { DASHBOARD_URL_KEY } = await import('../dashboard/kv.js');
  const token = resolveToken();
  const url = await member.gcs.kvGet(DASHBOARD_URL_KEY.namespace, DASHBOARD_URL_KEY.key).catch(() => null);
  if (url === null || token === undefined) return undefined;
  return `${new TextDecoder().decode(url)}/?token=${encodeURIComponent(token)}`;
}

/**
 * The dashboard in this driver, over its node's GCS client (the embedded GCS, or the cluster's),
 * behind the cluster token, or a new random one in the embedded default without
 * MINIRAY_AUTH_TOKEN. Loaded only when asked: fastify costs every import of miniray its load time.
 */
async function startDriverDashboard(member: ClusterMember, place: { host: string; port: number }): Promise<string> {
  const { startDashboard, isAddressInUse } = await import('../dashboard/index.js');
  const { observabilitySources } = await import('../state/sources.js');
  const token = resolveToken() ?? randomBytes(32).toString('hex');
  try {
    const dashboard = await startDashboard({ host: place.host, port: place.port, token, ...observabilitySources(member.gcs), keepProcessAlive: false });
    driverDashboard = dashboard;
    return dashboard.urlWithToken;
  } catch (error) {
    if (!isAddressInUse(error)) throw error;
    throw new InvalidOptionError(
      `init(): the dashboard's port ${place.host}:${place.port} is taken: pass another dashboardPort (0: any free one), or stop what listens there`,
      'dashboardPort',
      { cause: error },
    );
  }
}

/** This driver joins the cluster at `address` as a node of its own (with no CPUs unless asked). */
async function joinCluster(address: string, nodeOptions: ReturnType<typeof resolveInitOptions>): Promise<ClusterMember> {
  const token = resolveToken();
  if (token === undefined) {
    throw new AuthenticationError(
      `init({ address: '${address}' }): no cluster token. Set MINIRAY_AUTH_TOKEN to the token of the cluster's head ` +
        '(on the head machine: cat ~/.miniray/auth_token), or run this on the machine where `miniray start --head` ran',
    );
  }
  const tls = tlsFromEnvironment();
  try {
    const member = await startMember({
      mode: 'join',
      isDriver: true,
      nodeOptions,
      token,
      ...(tls === undefined ? {} : { tls }),
      gcsAddress: address,
      host: process.env['MINIRAY_NODE_IP_ADDRESS'] || '127.0.0.1',
    });
    return member;
  } catch (error) {
    if (error instanceof AuthenticationError) throw error;
    throw new MinirayError(
      `init() could not join the cluster at ${address}: ${(error as Error).message}. ` +
        'Check that the head runs there (miniray status --address ' + address + ') and that this machine can reach that port',
      { cause: error },
    );
  }
}

/** Stops the workers and forgets every object. Refs from before are invalid afterwards. */
export async function shutdown(): Promise<void> {
  const runtime = currentRuntime();
  if (runtime?.kind !== 'driver') return;
  setCurrentRuntime(undefined);
  initResult = undefined;
  const dashboard = driverDashboard;
  driverDashboard = undefined;
  await dashboard?.close();
  await runtime.shutdown();
}

export function isInitialized(): boolean {
  return currentRuntime() !== undefined;
}

let driverMember: ClusterMember | undefined;
/** The GCS's answer to this driver's addJob (init() waits for it, so the job's ID is known after it). */
let jobStarted: Promise<void> = Promise.resolve();

/**
 * runtimeEnv.workingDir in a cluster, as Ray's: each directory (with its excludes) packed once,
 * stored in the GCS KV under its sha256 unless it is there already, and named in specs by its
 * package URI; every node that runs work in it (this driver's too) unpacks a copy of its own.
 */
function workingDirPackager(member: ClusterMember): { pack(env: RuntimeEnvSpec): RuntimeEnvSpec; uploaded(): Promise<void> } {
  const packed = new Map<string, string>();
  const uploads: Promise<unknown>[] = [];
  return {
    pack(env) {
      const dir = env.workingDir as string;
      if (isPackageUri(dir)) return env;
      const excludes = env.excludes ?? [];
      const cacheKey = JSON.stringify([dir, excludes]);
      let uri = packed.get(cacheKey);
      if (uri === undefined) {
        const pkg = packWorkingDir(dir, excludes, setting('jobMaxPackageBytes'));
        uri = pkg.uri;
        packed.set(cacheKey, uri);
        const key = packageKey(uri);
        uploads.push(
          member.gcs
            .kvKeys(PACKAGES, key)
            .then((keys) => (keys.includes(key) ? true : member.gcs.kvPut(PACKAGES, key, pkg.bytes, false)))
            .catch((error: unknown) => console.error(`miniray: runtimeEnv.workingDir ${dir} could not be uploaded to the GCS: ${(error as Error).message}`)),
        );
      }
      const { excludes: _applied, ...rest } = env;
      return { ...rest, workingDir: uri };
    },
    uploaded: () => Promise.all(uploads).then(() => undefined),
  };
}

function startDriver(member: ClusterMember, namespace: string): { node: Node; coreWorker: CoreWorker } {
  const { node } = member;
  const workerId = hexOf(WorkerID.fromRandom());
  node.driverId = workerId;
  const coreWorker = new CoreWorker({ nodeId: node.nodeId, workerId }, new LocalNodeClient(node));
  // env: the job's runtime environment, which its tasks and actors inherit.
  coreWorker.runtimeEnv = node.options.runtimeEnv;
  // The job's namespace: this node's workers are told it with the job's ID.
  node.namespace = coreWorker.namespace = namespace;
  driverMember = member;
  // Every driver is a job of its cluster's (the embedded one's too, as in Ray: state.listJobs shows
  // it); one started by the Jobs API (`miniray job submit`) says which submission it is.
  jobStarted = member.gcs
    .addJob(node.nodeId as never, process.env['MINIRAY_JOB_SUBMISSION_ID'] || undefined)
    .then((jobId) => {
      node.jobId = jobIdHex(jobId); // env: getRuntimeContext().jobId, here and in its workers
      // In a cluster the job travels with its tasks: nodes run many jobs' tasks.
      if (member.gcsAddress !== undefined) coreWorker.job = { jobId: node.jobId, namespace };
    })
    .catch(() => {});
  setCurrentRuntime({
    kind: 'driver',
    coreWorker,
    jobId: () => node.jobId,
    shutdown: () => {
      coreWorker.detach();
      driverMember = undefined;
      return member.stop();
    },
  });
  return { node, coreWorker };
}

/**
 * The GCS client of this driver's node, undefined before init() (task events: tests and the state
 * API reach the GCS through it). Not exported from miniray.
 */
export function driverGcs(): ClusterMember['gcs'] | undefined {
  return driverMember?.gcs;
}

/** What memory() reports: every live object and the object store's figures. */
export type MemoryReport = ReturnType<Node['memory']>;

/**
 * Live objects (size, owner, state, where they are, and what keeps each alive) and the object
 * store's figures: memory in use, capacity, arena slabs, spilled objects. Like Ray's `ray memory`.
 * Call it from the driver.
 */
export function memory(): MemoryReport {
  if (driverMember === undefined) {
    throw new MinirayError('memory() reports on the driver\'s node: call it in the driver, after init()');
  }
  return driverMember.node.memory();
}

/** A node of the cluster, as nodes() lists it. */
export interface NodeInfo {
  readonly nodeId: string;
  /** False once the node left or its connection to the head was lost. */
  readonly alive: boolean;
  /** HOST:PORT where other nodes reach it ('this process' in the embedded default). */
  readonly address: string;
  /** What it offers: { CPU: 2, GPU: 1, disk: 2 }. */
  readonly resources: Readonly<Record<string, number>>;
  /** A driver that joined with resources of its own (drivers that offer nothing are not listed). */
  readonly isDriver: boolean;
}

/** Asks the cluster's head, from the driver or from a task alike (through this thread's node). */
async function askCluster(query: ClusterQuery): Promise<Exclude<ClusterAnswer, { error: Uint8Array }>> {
  const answer = await coreWorker().clusterInfo(query);
  if ('error' in answer) throw fromErrorRecord(decodeErrorRecord(answer.error));
  return answer;
}

/** The cluster's nodes, alive and dead, as Ray's ray.nodes(). Drivers that offer nothing are left out. */
export async function nodes(): Promise<NodeInfo[]> {
  const answer = await askCluster('nodes');
  if (!('nodes' in answer)) throw new MinirayError('nodes(): the head answered something else');
  return answer.nodes
    .filter((node) => !node.isDriver || Object.values(node.resources).some((amount) => amount > 0))
    .map(({ nodeId, alive, address, resources, isDriver }) => ({ nodeId, alive, address, resources: { ...resources }, isDriver }));
}

async function resources(query: 'clusterResources' | 'availableResources'): Promise<Record<string, number>> {
  const answer = await askCluster(query);
  if (!('resources' in answer)) throw new MinirayError(`${query}(): the head answered something else`);
  return { ...answer.resources };
}

/** Total resources of the cluster's alive nodes: { CPU: 3, GPU: 0, ... }. */
export function clusterResources(): Promise<Record<string, number>> {
  return resources('clusterResources');
}

/** Resources free now on the cluster's alive nodes (as last reported, every 100 ms at most). */
export function availableResources(): Promise<Record<string, number>> {
  return resources('availableResources');
}

// Anything that needs a runtime before init() (a .remote() call, put(), a Queue) starts the default.
setRuntimeStarter(() => {
  const options = resolveInitOptions(undefined);
  if (options.address !== undefined) {
    throw new MinirayError(
      `MINIRAY_ADDRESS is set (${options.address}): call await init() before anything else, to join that cluster ` +
        '(joining takes a moment, which a .remote() or put() before init() cannot wait for)',
    );
  }
  startDriver(startEmbedded(options), options.namespace);
  return currentRuntime() as NonNullable<ReturnType<typeof currentRuntime>>;
});

/** The running CoreWorker, starting miniray with defaults if needed. */
function coreWorker(): CoreWorker {
  return ensureRuntime().coreWorker;
}

// ---- tasks ---------------------------------------------------------------------------------------

/**
 * Makes a class an actor class: `.remote(...constructorArgs)` creates an instance on a worker and
 * returns a typed handle whose methods are called with `handle.method.remote(...args)`.
 */
export function remote<C extends ActorClassType>(cls: C, options?: ActorOptions): ActorClass<C>;
/**
 * A function that never returns (it always throws): a plain remote function. (Its return type,
 * never, would otherwise pass for a generator's.)
 */
export function remote<A extends unknown[]>(fn: (...args: A) => never, options?: TaskOptions & { numReturns?: 1 }): RemoteFunction<A, never>;
/**
 * Makes a generator function (sync or async) remote: by default (numReturns 'streaming')
 * `.remote()` returns an ObjectRefGenerator, and each yielded value is its own object, available
 * as soon as it is yielded. See docs/generators.md.
 */
export function remote<A extends unknown[], G extends AnyGenerator>(fn: GeneratorFn<A, G>, options?: TaskOptions & { numReturns?: 'streaming' }): StreamingRemoteFunction<A, YieldOf<G>>;
/** A generator whose values come back as one ref to an array of refs, once it is done. */
export function remote<A extends unknown[], G extends AnyGenerator>(fn: GeneratorFn<A, G>, options: TaskOptions & { numReturns: 'dynamic' }): DynamicRemoteFunction<A, YieldOf<G>>;
/** A generator that must yield exactly numReturns values, one ref each. */
export function remote<A extends unknown[], G extends AnyGenerator, const N extends number>(fn: GeneratorFn<A, G>, options: TaskOptions & { numReturns: N }): StaticGeneratorRemoteFunction<A, YieldOf<G>, N>;
/**
 * Makes `fn` a remote function: `.remote(...args)` runs it on a worker and returns an ObjectRef.
 *
 * A self-contained function (it uses only its parameters, its own locals and globals) is shipped
 * as source. A function that uses names from its module (imports, helpers, other remote functions)
 * works when remote() is called at the top level of a module other than the entry script: workers
 * import that module. In the entry script such a function is rejected with CapturedVariableError.
 */
export function remote<A extends unknown[], R>(fn: (...args: A) => R, options?: TaskOptions & { numReturns?: 1 }): RemoteFunction<A, R>;
/** A remote function with no result (numReturns 0): `.remote()` gives undefined. */
export function remote<A extends unknown[], R>(fn: (...args: A) => R, options: TaskOptions & { numReturns: 0 }): NoReturnRemoteFunction<A, R>;
/**
 * A remote function with several return values: `.remote()` gives one ref per returned element.
 * For a function typed to return a tuple, numReturns must be the tuple's length.
 */
export function remote<A extends unknown[], R>(
  fn: (...args: A) => R,
  options: TaskOptions & { numReturns: ReturnCount<Awaited<R>> },
): MultiReturnRemoteFunction<A, R>;
export function remote(target: Function, options?: TaskOptions | ActorOptions): unknown {
  const tag = Object.prototype.toString.call(target);
  // generators: a generator function's task streams by default
  const isGenerator = tag === '[object GeneratorFunction]' || tag === '[object AsyncGeneratorFunction]';
  const isClass = typeof target === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(target));
  const descriptor = describeFunction(target, callerOf(remote), isClass ? 'class' : 'function');
  if (isClass) {
    const { methodNames, asyncMethods } = methodsOf(target);
    const actorOptions = mergeActorOptions('remote()', defaultActorOptions(asyncMethods), withStaticMethodOptions(target, options as ActorOptions | undefined));
    if (descriptor.kind === 'module') registerModuleFunction(descriptor.moduleUrl, descriptor.callsite, target);
    return new ActorClassImpl(descriptor, methodNames, actorOptions, generatorMethodsOf(target));
  }
  const taskOptions = mergeTaskOptions('remote()', isGenerator ? generatorTaskOptions() : defaultTaskOptions(), options as TaskOptions);
  if (descriptor.kind === 'module') registerModuleFunction(descriptor.moduleUrl, descriptor.callsite, target);
  return new RemoteFunctionImpl(descriptor, taskOptions);
}

/**
 * Per-method options (actors part): the class's static `methodOptions`, under the options' own
 * (which win per method). Checked like the option: a method that is not one is refused.
 */
function withStaticMethodOptions(cls: Function, options: ActorOptions | undefined): ActorOptions | undefined {
  const descriptor = Object.getOwnPropertyDescriptor(cls, 'methodOptions');
  const value: unknown = descriptor === undefined ? undefined : 'value' in descriptor ? descriptor.value : undefined;
  if (value === undefined) return options;
  if (typeof value !== 'object' || value === null) {
    throw new InvalidOptionError(`remote(${cls.name}): its static methodOptions must be an object of options by method name, e.g. { split: { numReturns: 2 } }`, 'methodOptions');
  }
  const methods = new Set(methodNamesOf(cls));
  for (const method of Object.keys(value)) {
    if (!methods.has(method)) {
      throw new InvalidOptionError(`remote(${cls.name}): static methodOptions names '${method}', which is not a method of ${cls.name}`, 'methodOptions');
    }
  }
  return { ...options, methodOptions: { ...(value as Record<string, { numReturns?: number | 'streaming' | 'dynamic'; concurrencyGroup?: string }>), ...options?.methodOptions } };
}

/** A class's methods, read once; a prototype chain that throws when read (a proxy) is an InvalidArgumentError. */
function methodsOf(cls: Function): { methodNames: string[]; asyncMethods: boolean } {
  try {
    return { methodNames: methodNamesOf(cls), asyncMethods: hasAsyncMethods(cls) };
  } catch (error) {
    throw new InvalidArgumentError(
      `remote() could not list the methods of class ${cls.name || '(anonymous)'}: reading its prototype threw ` +
        `(${error instanceof Error ? error.message : describeValue(error)}); give it an ordinary prototype chain`,
      'target',
      { cause: error },
    );
  }
}

/** The handle of a named actor. Rejects with ActorNotFoundError when no live actor has that name. */
export async function getActor<T extends object = Record<string, never>, O = {}>(
  name: string,
  options?: GetActorOptions,
): Promise<ActorHandle<T, O>> {
  const valid = validateOptions('getActor()', GET_ACTOR_RULES, options);
  if (typeof name !== 'string' || name === '') {
    throw new InvalidArgumentError(
      `getActor() takes the non-empty name an actor was created with (remote(Class).options({ name })); got ${describeValue(name)}`,
      'name',
    );
  }
  const runtime = currentRuntime();
  const namespace = valid.namespace ?? runtime?.coreWorker.currentNamespace() ?? '';
  const info = runtime === undefined ? null : await runtime.coreWorker.lookupActor(name, namespace);
  if (info === null) {
    throw new ActorNotFoundError(
      `no actor named '${name}' in namespace '${namespace}'` +
        (runtime === undefined ? ' (miniray is not running)' : '; create it with remote(Class).options({ name }).remote(...)'),
    );
  }
  return new ActorHandleImpl(info) as unknown as ActorHandle<T, O>;
}

/**
 * Kills an actor. Its pending and running calls fail with ActorDiedError; with noRestart: false
 * it is restarted as after a crash (if maxRestarts allows).
 */
export function kill(handle: ActorHandle<object> | ActorHandleImpl, options?: KillOptions): void {
  const valid = validateOptions('kill()', KILL_RULES, options);
  const actorId = actorIdOf(handle);
  if (actorId === undefined) {
    throw new InvalidArgumentError(
      `kill() takes an actor handle (what remote(Class).remote() or getActor() gives); got ${describeHandle(handle)}`,
      'handle',
    );
  }
  currentRuntime()?.coreWorker.killActor(actorId, valid.noRestart ?? true);
}

/**
 * Ends the actor whose method calls it, cleanly: as Ray's exit_actor(). The actor is dead for good
 * (never restarted, whatever maxRestarts says); this call and every pending one fail with
 * ActorDiedError (exitedIntentionally: true), and its worker and resources are freed. It throws
 * (to stop the method), so call it last; outside an actor method it just throws.
 */
export function exitActor(): never {
  throw new ActorExitError(
    'exitActor() was called. Inside an actor method it ends the actor; anywhere else it only throws ' +
      '(to end an actor from outside, use kill(handle))',
  );
}

// ---- objects -------------------------------------------------------------------------------------

/** Stores a value in the object store; returns its ref at once. */
export function put<T>(value: T): ObjectRef<T> {
  if (isObjectRef(value)) {
    throw new InvalidArgumentError(
      'put() was given an ObjectRef; it is already in the object store. Pass the ref itself where it is needed.',
      'value',
    );
  }
  return coreWorker().put(value);
}

/** The value of a ref, or of each ref of an array, once computed. Rejects with the task's error if it failed. */
export function get<T>(ref: ObjectRef<T>, options?: GetOptions): Promise<T>;
export function get<const Refs extends readonly ObjectRef<unknown>[]>(refs: Refs, options?: GetOptions): Promise<ValuesOf<Refs>>;
export async function get(target: ObjectRef | readonly ObjectRef[], options?: GetOptions): Promise<unknown> {
  const valid = validateOptions('get()', GET_RULES, options);
  const refs = refList(target);
  if (refs === undefined && refHex(target) === undefined) {
    throw new InvalidArgumentError(`get() takes an ObjectRef or an array of ObjectRefs; got ${describeNonRef(target)}`, 'refs');
  }
  const runtime = currentRuntime();
  if (runtime === undefined) {
    throw new ObjectLostError('get(): miniray is not running, so no object exists; refs from before shutdown() are invalid.');
  }
  const values = await runtime.coreWorker.get(refs ?? [target as ObjectRef], valid.timeoutMs);
  return refs === undefined ? values[0] : values;
}

/**
 * Waits until `numReturns` (default 1) of `refs` are ready, or `timeoutMs` passes. Failed tasks
 * count as ready (their error comes at get). Returns both lists in the order of `refs`.
 * An ObjectRefGenerator may be among them, as in Ray: it is ready when its next item is available
 * (`next()` then gives it without waiting) or it is finished; wait() reads no item.
 */
export async function wait<R extends ObjectRef<unknown> | ObjectRefGenerator<unknown>>(
  refs: readonly R[],
  options?: WaitOptions,
): Promise<{ ready: R[]; pending: R[] }> {
  const valid = validateOptions('wait()', WAIT_RULES, options);
  const list = refList(refs);
  if (list === undefined) {
    throw new InvalidArgumentError(`wait() takes an array of ObjectRefs (or ObjectRefGenerators); got ${describeNonRef(refs)}`, 'refs');
  }
  const numReturns = valid.numReturns ?? Math.min(1, list.length);
  if (numReturns > list.length) {
    throw new InvalidOptionError(`wait(): numReturns (${numReturns}) is more than the number of refs (${list.length})`, 'numReturns');
  }
  const runtime = currentRuntime();
  if (runtime === undefined) throw new ObjectLostError('wait(): miniray is not running, so no object exists.');
  return runtime.coreWorker.wait(list, numReturns, valid.timeoutMs, valid.fetchLocal ?? true) as Promise<{ ready: R[]; pending: R[] }>;
}

/**
 * Cancels the task that creates `ref`: a queued task never runs; a running one is stopped with
 * `force: true` (its worker is terminated and replaced), otherwise it runs on but its result is
 * dropped. `get` of its refs rejects with TaskCancelledError. Does nothing if the task finished.
 */
export function cancel(target: ObjectRef | ObjectRefGenerator, options?: CancelOptions): void {
  const valid = validateOptions('cancel()', CANCEL_RULES, options);
  // generators: cancelling a generator cancels its task (its next item then throws TaskCancelledError)
  const ref = isObjectRefGenerator(target) ? target.completed() : target;
  if (refHex(ref) === undefined) {
    throw new InvalidArgumentError(`cancel() takes an ObjectRef (from .remote()); got ${describeNonRef(ref)}`, 'ref');
  }
  currentRuntime()?.coreWorker.cancel(ref, valid.force ?? false, valid.recursive ?? true);
}

/**
 * Where the calling code runs: job, task, actor, node and worker IDs, the runtime environment, a
 * handle to the current actor, and an AbortSignal that cancel() aborts (see RuntimeContext).
 * Called before init(), it starts miniray with the defaults, as Ray does.
 */
export function getRuntimeContext<A extends object = object>(): RuntimeContext<A> {
  return makeRuntimeContext<A>(ensureRuntime());
}

/**
 * A copy of `value`'s items if it is an array (read once, so that a proxy or getter cannot change
 * them between the check and the use), else undefined. A copy that cannot be made (a hostile proxy)
 * is an InvalidArgumentError.
 */
function refList(value: unknown): ObjectRef[] | undefined {
  try {
    if (!Array.isArray(value)) return undefined;
    return Array.from(value as ArrayLike<ObjectRef>);
  } catch (error) {
    throw new InvalidArgumentError(
      `the array of ObjectRefs could not be read (${error instanceof Error ? error.message : describeValue(error)}); pass a plain array`,
      'refs',
      { cause: error },
    );
  }
}

/** `instanceof ObjectRef`, false where that throws (a proxy whose getPrototypeOf trap throws). */
function isObjectRef(value: unknown): boolean {
  try {
    return value instanceof ObjectRef;
  } catch {
    return false;
  }
}

function describeHandle(value: unknown): string {
  try {
    if (value instanceof ActorHandleImpl) return 'an actor handle that was not made by miniray';
  } catch {
    // a proxy whose getPrototypeOf trap throws
  }
  return describeValue(value);
}
