/** The public option types and their validation rules (one table per call). */
import { closest, defaultNumCpus, defaultObjectStoreMemory, setting, validateOptions, type CustomRule, type OptionRule } from '../config/index.js';
import { InvalidOptionError } from '../errors/index.js';
import { isIdHex } from '../ids/index.js';
import type { ResourceMap, RuntimeEnvSpec, SchedulingStrategy as SpecStrategy } from '../protocol/index.js';
import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { returnModeOf, type ResolvedActorOptions, type ResolvedTaskOptions } from '../core-worker/index.js';
import type { NodeOptions } from '../node/index.js';

export interface InitOptions {
  /**
   * Join a running cluster: 'HOST:PORT' of its head (printed by `miniray start --head`), or 'auto'
   * for the latest cluster started on this machine. Default: MINIRAY_ADDRESS if set, else miniray
   * runs in this process alone. A joined driver offers no CPUs unless numCpus says so.
   */
  address?: string;
  /** GPUs this node offers (tasks ask with numGpus). Default: 0. */
  numGpus?: number;
  /** Custom resources this node offers, e.g. { disk: 2 } (tasks ask with resources). */
  resources?: Record<string, number>;
  /** Worker threads to start, at most 1024 (MAX_WORKERS). Default: numCpus (at most 1024). */
  numWorkers?: number;
  /** CPUs this node offers to tasks. Default: the machine's available parallelism. */
  numCpus?: number;
  /** Bytes the object store may hold. Default: 30% of system memory. */
  objectStoreMemory?: number;
  /** Heap limit of each worker thread in MB; a task that exceeds it fails with OutOfMemoryError. Default: Node's. */
  workerHeapLimitMb?: number;
  /** Where objects spill to disk when the object store is full. Default: a new folder in the system's temp directory. */
  spillDirectory?: string;
  /** When miniray is already running, return instead of throwing. Default: false. */
  ignoreReinitError?: boolean;
  /**
   * Serve the dashboard from this process (init() resolves to its URL, with the token). Default:
   * false (a cluster's head serves one; `miniray start --head`).
   */
  includeDashboard?: boolean;
  /** The dashboard's port, with includeDashboard. Default: 8265; 0: any free port. */
  dashboardPort?: number;
  /** The address the dashboard listens on, with includeDashboard. Default: 127.0.0.1 (this machine only). */
  dashboardHost?: string;
  /** The job's runtime environment: every task and actor of this driver inherits it (see RuntimeEnv). */
  runtimeEnv?: RuntimeEnv;
  /**
   * The job's namespace, as Ray's `ray.init(namespace=...)`: the names of its actors live in it,
   * and getActor() looks there unless told another. Default: an anonymous namespace of this job's
   * own (a random UUID, as Ray's), so that drivers see each other's named actors only when they
   * name the same namespace.
   */
  namespace?: string;
}

// ---- runtime environments (env) ----

/**
 * Where a task or actor runs, as Ray's runtime_env: environment variables its code sees in
 * `process.env`, and a working directory (its `process.cwd()`, so relative paths resolve there).
 * Given at init() (the job's), per task and per actor; a task or actor inherits its parent's
 * (the job's, for the driver's), with envVars merged (its own winning) and workingDir replaced.
 * Workers are kept apart by environment: one never runs tasks of another.
 */
export interface RuntimeEnv {
  /** Variables set in `process.env` of the workers that run it (strings, as Ray's env_vars). */
  envVars?: Record<string, string>;
  /**
   * A directory of the driver's machine; relative paths are resolved against the current directory
   * of the process that submits it. Tasks and actors with one run in worker processes started in
   * it (a worker thread cannot change its directory). In a cluster the driver uploads it (packed,
   * once per directory) and each node runs them in its own unpacked copy, as Ray does.
   */
  workingDir?: string;
  /**
   * What the uploaded workingDir leaves out, as Ray's `excludes` (gitignore-style: `'*.log'`,
   * `'data/'`, `'/build'`, `'**\/tmp'`). Only a cluster uploads; the embedded default uses the
   * directory in place.
   */
  excludes?: readonly string[];
}

const RUNTIME_ENV_FIELDS = ['envVars', 'workingDir', 'excludes'] as const;

const RUNTIME_ENV_RULE: CustomRule<RuntimeEnv> = {
  type: 'custom',
  doc: "a runtime environment: { envVars: { NAME: 'value' }, workingDir: 'path', excludes: ['pattern'] }",
  problem: (value) => {
    const expected = "an object { envVars?: { NAME: 'value' }, workingDir?: string, excludes?: string[] }";
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return expected;
    for (const key of Object.keys(value)) {
      if (!(RUNTIME_ENV_FIELDS as readonly string[]).includes(key)) {
        // A misspelled field (env_vars) is told the right one; Ray's package fields (pip, conda) what to do instead.
        const near = closest(key, RUNTIME_ENV_FIELDS);
        if (near !== undefined) return `${expected} ('${key}' is not a field: did you mean '${near}'?)`;
        return `${expected} (miniray supports envVars, workingDir and excludes; '${key}' is not supported: ` +
          'install packages in the project instead of per task)';
      }
    }
    const { envVars, workingDir, excludes } = value as { envVars?: unknown; workingDir?: unknown; excludes?: unknown };
    if (excludes !== undefined && (!Array.isArray(excludes) || excludes.some((pattern) => typeof pattern !== 'string' || pattern === ''))) {
      return `${expected} with excludes an array of non-empty patterns (as Ray's: ['*.log', 'data/'])`;
    }
    if (envVars !== undefined) {
      if (typeof envVars !== 'object' || envVars === null || Array.isArray(envVars)) return `${expected} with envVars an object of strings`;
      for (const [name, text] of Object.entries(envVars)) {
        if (name === '' || name.includes('=') || name.includes('\0')) return `${expected} with envVars names that are non-empty and have no '=' (got '${name}')`;
        if (typeof text !== 'string') return `${expected} with envVars values that are strings (envVars.${name} is ${text === null ? 'null' : typeof text}; write String(value))`;
      }
    }
    if (workingDir !== undefined && (typeof workingDir !== 'string' || workingDir === '')) return `${expected} with workingDir a non-empty path`;
    return undefined;
  },
};

/**
 * A checked runtime environment as a spec carries it: workingDir made absolute and checked to be
 * a directory here (InvalidOptionError naming it otherwise); undefined when it sets nothing.
 */
export function specRuntimeEnv(where: string, env: RuntimeEnv | undefined): RuntimeEnvSpec | undefined {
  if (env === undefined) return undefined;
  const spec: { envVars?: Record<string, string>; workingDir?: string; excludes?: readonly string[] } = {};
  if (env.envVars !== undefined && Object.keys(env.envVars).length > 0) spec.envVars = { ...env.envVars };
  if (env.workingDir !== undefined) {
    const dir = resolvePath(env.workingDir);
    let isDirectory = false;
    try {
      isDirectory = statSync(dir).isDirectory();
    } catch {
      // reported below
    }
    if (!isDirectory) {
      throw new InvalidOptionError(
        `${where}: runtimeEnv.workingDir '${env.workingDir}' is not a directory (resolved to ${dir}); give a directory that exists`,
        'runtimeEnv.workingDir',
      );
    }
    spec.workingDir = dir;
  }
  if (env.excludes !== undefined && env.excludes.length > 0) spec.excludes = [...env.excludes];
  return spec.envVars === undefined && spec.workingDir === undefined && spec.excludes === undefined ? undefined : spec;
}

/**
 * Most worker threads init() starts. Workers start eagerly (Ray starts them on demand), so a
 * mistaken numWorkers (or numCpus, from which the default comes) of a million would exhaust the
 * machine before failing; beyond this bound it is an InvalidOptionError instead.
 */
export const MAX_WORKERS = 1024;

/**
 * Most return values of one task. Ray has no hard cap, but each return is an object the node
 * tracks and a ref the caller holds, and numReturns: 2**31 exhausted the heap at `.remote()`
 * (an uncatchable crash); a task with more results should return one array.
 */
export const MAX_NUM_RETURNS = 10_000;

/** A rule for every field of an options type: a field without one does not compile. */
type RulesFor<Options> = { readonly [K in keyof Options]-?: OptionRule };

/** Custom resources: names other than CPU and GPU (which have options of their own), amounts >= 0. */
const RESOURCES_RULE: CustomRule<Record<string, number>> = {
  type: 'custom',
  doc: 'custom resources by name, e.g. { disk: 2 }',
  problem: (value) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'an object of resource amounts, e.g. { disk: 2 }';
    for (const [name, amount] of Object.entries(value)) {
      if (name === 'CPU' || name === 'GPU') return `an object of custom resources (give '${name}' with num${name === 'CPU' ? 'Cpus' : 'Gpus'} instead)`;
      if (name === '') return 'an object of resource amounts with non-empty names';
      if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) return `an object of amounts >= 0 (resource '${name}' is not)`;
    }
    return undefined;
  },
};

/** Where a task or actor may run. */
export type SchedulingStrategy =
  /** The hybrid policy: on this node while it is not busy, else on the least-loaded nodes. */
  | 'DEFAULT'
  /** Over the cluster's nodes, one after another. */
  | 'SPREAD'
  /** On that node (see nodes()); with soft: true, elsewhere when it cannot run it. Default soft: false. */
  | { nodeId: string; soft?: boolean }
  /** In a placement group's bundle (helper pg). */
  | PlacementGroupSchedulingStrategy;

/**
 * Run in a placement group (Ray's PlacementGroupSchedulingStrategy): in bundle `bundleIndex`
 * (default -1: any bundle of the group), holding what the task asks for out of what that bundle
 * reserved. With `captureChildTasks: true`, the tasks and actors it submits without a strategy of
 * their own go to the same group (any bundle), and theirs too (Ray's
 * placement_group_capture_child_tasks).
 */
export interface PlacementGroupSchedulingStrategy {
  /** A PlacementGroup (its bundleSpecs let a demand too large for its bundle be refused at submission). */
  placementGroup: { readonly id: string; readonly bundleCount: number; readonly bundleSpecs?: readonly Readonly<Record<string, number>>[] };
  bundleIndex?: number;
  captureChildTasks?: boolean;
}

/** The bundle a strategy names, as the CoreWorker places a spec in it (undefined: not in a group). */
export function inGroup(strategy: SchedulingStrategy | undefined): InGroupOptions | undefined {
  if (typeof strategy !== 'object' || !('placementGroup' in strategy)) return undefined;
  const bundles = strategy.placementGroup.bundleSpecs;
  const where = { placementGroupId: strategy.placementGroup.id, bundleIndex: strategy.bundleIndex ?? -1, ...(Array.isArray(bundles) ? { bundles } : {}) };
  return strategy.captureChildTasks === true ? { ...where, captureChildTasks: true } : where;
}

const STRATEGY_RULE: CustomRule<SchedulingStrategy> = {
  type: 'custom',
  doc: "'DEFAULT', 'SPREAD', or { nodeId, soft } to run on one node (node IDs come from nodes())",
  problem: (value) => {
    if (value === 'DEFAULT' || value === 'SPREAD') return undefined;
    const expected = "'DEFAULT', 'SPREAD', { nodeId: string, soft?: boolean } or { placementGroup, bundleIndex?, captureChildTasks? }";
    if (typeof value !== 'object' || value === null) return expected;
    if ('placementGroup' in value) {
      const { placementGroup, bundleIndex, captureChildTasks } = value as { placementGroup?: unknown; bundleIndex?: unknown; captureChildTasks?: unknown };
      const group = placementGroup as { id?: unknown; bundleCount?: unknown } | null;
      if (typeof group !== 'object' || group === null || typeof group.id !== 'string' || !isIdHex(group.id) || typeof group.bundleCount !== 'number') {
        return '{ placementGroup } with a PlacementGroup from placementGroup() or getPlacementGroup()';
      }
      if (bundleIndex !== undefined && (typeof bundleIndex !== 'number' || !Number.isInteger(bundleIndex) || bundleIndex < -1 || bundleIndex >= group.bundleCount)) {
        return `{ placementGroup, bundleIndex } with bundleIndex -1 (any bundle) or an index of one of its ${group.bundleCount} bundle(s) (0 to ${group.bundleCount - 1})`;
      }
      if (captureChildTasks !== undefined && typeof captureChildTasks !== 'boolean') return '{ placementGroup, captureChildTasks } with captureChildTasks true or false';
      return undefined;
    }
    const { nodeId, soft } = value as { nodeId?: unknown; soft?: unknown };
    if (typeof nodeId !== 'string' || !isIdHex(nodeId)) return `${expected} with nodeId a node ID of 32 hex characters`;
    if (soft !== undefined && typeof soft !== 'boolean') return `${expected} with soft true or false`;
    return undefined;
  },
};

/** The strategy as a spec carries it (absent for DEFAULT). */
export function specStrategy(strategy: SchedulingStrategy | undefined): SpecStrategy | undefined {
  if (strategy === undefined || strategy === 'DEFAULT') return undefined;
  if (strategy === 'SPREAD') return strategy;
  // In a placement group, the bundle's resources place it (see inGroup).
  if ('placementGroup' in strategy) return undefined;
  return { nodeId: strategy.nodeId, soft: strategy.soft ?? false };
}

/** GPUs and custom resources in one map, as a spec carries them (absent when none). */
export function resourceMap(numGpus: number | undefined, resources: Record<string, number> | undefined): ResourceMap | undefined {
  const map: Record<string, number> = {};
  if (numGpus !== undefined && numGpus > 0) map['GPU'] = numGpus;
  for (const [name, amount] of Object.entries(resources ?? {})) if (amount > 0) map[name] = amount;
  return Object.keys(map).length === 0 ? undefined : map;
}

const INIT_RULES = {
  address: { type: 'string', nonEmpty: true, doc: "'HOST:PORT' of a cluster's head, or 'auto'" },
  numGpus: { type: 'number', min: 0, doc: 'GPUs this node offers' },
  resources: RESOURCES_RULE,
  numWorkers: { type: 'integer', min: 1, max: MAX_WORKERS, doc: 'worker threads to start' },
  numCpus: { type: 'number', min: 0, doc: 'CPUs this node offers to tasks' },
  objectStoreMemory: { type: 'integer', min: 1, doc: 'bytes the object store may hold' },
  workerHeapLimitMb: { type: 'integer', min: 16, doc: 'heap limit of each worker thread, in MB' },
  spillDirectory: { type: 'string', doc: 'where objects spill when the store is full' },
  ignoreReinitError: { type: 'boolean', doc: 'return quietly when miniray is already running' },
  includeDashboard: { type: 'boolean', doc: 'serve the dashboard from this process' },
  dashboardPort: { type: 'integer', min: 0, max: 65535, doc: "the dashboard's port (0: any free one)" },
  dashboardHost: { type: 'string', nonEmpty: true, doc: 'the address the dashboard listens on' },
  runtimeEnv: RUNTIME_ENV_RULE,
  namespace: { type: 'string', nonEmpty: true, doc: "the job's namespace (default: an anonymous one of its own, as Ray's)" },
} as const satisfies RulesFor<InitOptions>;

/** What init() needs of its options beyond the node's: read once, with the rest. */
export interface ResolvedInitOptions extends NodeOptions {
  readonly ignoreReinitError: boolean;
  /** The cluster to join (HOST:PORT, or 'auto'), if any. */
  readonly address: string | undefined;
  /** Where to serve the dashboard from this process (includeDashboard), if at all. */
  readonly dashboard: { readonly host: string; readonly port: number } | undefined;
  /** The job's namespace: given, or a new anonymous one. */
  readonly namespace: string;
}

export function resolveInitOptions(options: InitOptions | undefined): ResolvedInitOptions {
  const valid = validateOptions('init()', INIT_RULES, options);
  const address = valid.address ?? (process.env['MINIRAY_ADDRESS'] || undefined);
  // A driver that joins a cluster offers nothing unless asked: its tasks go to the nodes.
  const numCpus = valid.numCpus ?? (address === undefined ? defaultNumCpus() : 0);
  const numWorkers = valid.numWorkers ?? Math.min(MAX_WORKERS, Math.max(1, Math.ceil(numCpus)));
  const heap = valid.workerHeapLimitMb;
  if (valid.includeDashboard !== true && (valid.dashboardPort !== undefined || valid.dashboardHost !== undefined)) {
    const field = valid.dashboardPort !== undefined ? 'dashboardPort' : 'dashboardHost';
    throw new InvalidOptionError(`init(): ${field} is for the dashboard: also pass includeDashboard: true (or leave ${field} out)`, field);
  }
  return {
    numCpus,
    numWorkers,
    objectStoreMemory: valid.objectStoreMemory ?? defaultObjectStoreMemory(),
    workerResourceLimits: heap === undefined ? undefined : { maxOldGenerationSizeMb: heap },
    spillDirectory: valid.spillDirectory,
    ignoreReinitError: valid.ignoreReinitError ?? false,
    address,
    resources: { ...resourceMap(valid.numGpus, valid.resources) },
    dashboard: valid.includeDashboard === true ? { host: valid.dashboardHost ?? '127.0.0.1', port: valid.dashboardPort ?? 8265 } : undefined,
    runtimeEnv: specRuntimeEnv('init()', valid.runtimeEnv),
    namespace: valid.namespace ?? randomUUID(),
  };
}

export interface TaskOptions {
  /** CPUs the task holds while it runs. Default: 1. */
  numCpus?: number;
  /** GPUs the task holds while it runs. Default: 0. */
  numGpus?: number;
  /** Custom resources the task holds while it runs, e.g. { disk: 1 }. */
  resources?: Record<string, number>;
  /** Where the task may run. Default: 'DEFAULT'. */
  schedulingStrategy?: SchedulingStrategy;
  /**
   * How many objects the task returns; with n > 1 it must return an array of n values and
   * `.remote()` gives n refs. At most MAX_NUM_RETURNS (10,000). Default: 1.
   * Generators (see docs/generators.md): 'streaming' (the default for a generator function):
   * `.remote()` gives an ObjectRefGenerator, each yielded value its own object as soon as it is
   * yielded; 'dynamic': a ref to an array of refs, one per yielded value, once the generator is
   * done; n: the generator must yield exactly n values, one per ref. 0: no result (`.remote()`
   * gives undefined).
   */
  numReturns?: number | 'streaming' | 'dynamic';
  /**
   * Streaming generators: most yielded values the caller has not read yet before the generator is
   * paused (Ray's _generator_backpressure_num_objects). Default: no limit.
   */
  generatorBackpressureNumObjects?: number;
  /** Retries when the worker running the task dies (and on exceptions with retryExceptions). -1: unlimited. Default: 3. */
  maxRetries?: number;
  /**
   * Also retry when the task throws (within maxRetries): true for any error, or a list of error
   * classes or class names to retry only errors of those classes (an error is one when a class of
   * its prototype chain, or its `name`, has one of the names; classes are matched by name, since
   * they do not exist in the worker as the same objects). Default: false.
   */
  retryExceptions?: boolean | readonly (ErrorClass | string)[];
  /** Name shown in errors. Default: the function's name. */
  name?: string;
  /** Its runtime environment, merged over the one it inherits (see RuntimeEnv). */
  runtimeEnv?: RuntimeEnv;
}

// generators
/** numReturns: a count (0 to MAX_NUM_RETURNS), or how a generator's values come back. */
const NUM_RETURNS_RULE: CustomRule<number | 'streaming' | 'dynamic'> = {
  type: 'custom',
  doc: "how many objects the task returns (0 to 10,000; return one array for more), or 'streaming' / 'dynamic' for a generator",
  problem: (value) => {
    if (value === 'streaming' || value === 'dynamic') return undefined;
    if (typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_NUM_RETURNS) return undefined;
    return `an integer from 0 to ${MAX_NUM_RETURNS}, 'streaming' or 'dynamic'`;
  },
};

/** The generator fields of resolved task options, from numReturns and generatorBackpressureNumObjects. */
export function generatorOptions(
  base: Pick<ResolvedTaskOptions, 'numReturns' | 'returnKind' | 'backpressure' | 'isGenerator'>,
  numReturns: number | 'streaming' | 'dynamic' | undefined,
  backpressure: number | undefined,
): Pick<ResolvedTaskOptions, 'numReturns' | 'returnKind' | 'backpressure' | 'isGenerator' | 'returns'> {
  const isGenerator = base.isGenerator === true;
  const bp = backpressure ?? base.backpressure;
  let count = base.numReturns;
  let returnKind = base.returnKind;
  if (typeof numReturns === 'number') {
    count = numReturns;
    returnKind = undefined;
  } else if (numReturns !== undefined) {
    count = 1;
    returnKind = numReturns;
  }
  const resolved = { numReturns: count, returnKind, backpressure: bp, isGenerator };
  return { ...resolved, returns: returnModeOf(resolved) };
}

/** An error class, for retryExceptions: `class QuotaError extends Error {}`, or TypeError. */
export type ErrorClass = abstract new (...args: never[]) => Error;

// retryExceptions: a boolean, or error classes / class names (kept as names: what the worker matches).
const RETRY_EXCEPTIONS_RULE: CustomRule<boolean | readonly (ErrorClass | string)[]> = {
  type: 'custom',
  doc: 'also retry when the task throws: true, or a list of error classes or class names',
  problem: (value) => {
    if (typeof value === 'boolean') return undefined;
    const expected = 'true or false, or a non-empty array of error classes or class names, e.g. [TypeError, \'QuotaError\']';
    if (!Array.isArray(value) || value.length === 0) return expected;
    for (const [i, item] of value.entries()) {
      if (typeof item === 'string' ? item === '' : !isErrorClass(item)) return `${expected} (item ${i} is not)`;
    }
    return undefined;
  },
};

function isErrorClass(value: unknown): value is ErrorClass {
  try {
    return typeof value === 'function' && value.name !== '' && (value === Error || value.prototype instanceof Error);
  } catch {
    return false;
  }
}

/** retryExceptions as tasks carry it: a boolean, or the class names. */
function retryExceptionsOf(value: boolean | readonly (ErrorClass | string)[]): boolean | readonly string[] {
  if (typeof value === 'boolean') return value;
  return [...new Set(value.map((item) => (typeof item === 'string' ? item : item.name)))];
}

const TASK_RULES = {
  numCpus: { type: 'number', min: 0, doc: 'CPUs the task holds while it runs' },
  numGpus: { type: 'number', min: 0, doc: 'GPUs the task holds while it runs' },
  resources: RESOURCES_RULE,
  schedulingStrategy: STRATEGY_RULE,
  numReturns: NUM_RETURNS_RULE,
  // generators
  generatorBackpressureNumObjects: { type: 'integer', min: 1, doc: 'most yielded values not yet read before a streaming generator is paused' },
  maxRetries: { type: 'integer', min: 0, allowMinusOne: true, doc: 'retries after a worker crash' },
  retryExceptions: RETRY_EXCEPTIONS_RULE,
  name: { type: 'string', nonEmpty: true, doc: 'name shown in errors' },
  runtimeEnv: RUNTIME_ENV_RULE,
} as const satisfies RulesFor<TaskOptions>;

export function defaultTaskOptions(): ResolvedTaskOptions {
  return {
    numCpus: 1,
    resources: undefined,
    strategy: undefined,
    numReturns: 1,
    maxRetries: setting('defaultMaxRetries'),
    retryExceptions: false,
    name: undefined,
  };
}

// generators
/** The defaults of a generator function's task: it streams. */
export function generatorTaskOptions(): ResolvedTaskOptions {
  const base = { ...defaultTaskOptions(), isGenerator: true, returnKind: 'streaming' as const };
  return { ...base, returns: returnModeOf(base) };
}

export function mergeTaskOptions(where: string, base: ResolvedTaskOptions, options: TaskOptions | undefined): ResolvedTaskOptions {
  const valid = validateOptions(where, TASK_RULES, options);
  return {
    numCpus: valid.numCpus ?? base.numCpus,
    resources: valid.numGpus === undefined && valid.resources === undefined ? base.resources : mergedResources(base.resources, valid.numGpus, valid.resources),
    strategy: valid.schedulingStrategy === undefined ? base.strategy : specStrategy(valid.schedulingStrategy),
    ...placementOf(base, valid.schedulingStrategy),
    maxRetries: valid.maxRetries ?? base.maxRetries,
    retryExceptions: valid.retryExceptions === undefined ? base.retryExceptions : retryExceptionsOf(valid.retryExceptions),
    name: valid.name ?? base.name,
    runtimeEnv: valid.runtimeEnv === undefined ? base.runtimeEnv : specRuntimeEnv(where, valid.runtimeEnv),
    ...generatorOptions(base, valid.numReturns, valid.generatorBackpressureNumObjects),
  };
}

/** The placement group the options put it in: a new strategy replaces the base's (helper pg). */
type InGroupOptions = { placementGroupId: string; bundleIndex: number; captureChildTasks?: boolean; bundles?: readonly Readonly<Record<string, number>>[] };
function placementOf(base: { readonly placementGroup?: InGroupOptions }, strategy: SchedulingStrategy | undefined): { placementGroup?: InGroupOptions } {
  const group = strategy === undefined ? base.placementGroup : inGroup(strategy);
  return group === undefined ? {} : { placementGroup: group };
}

/** `base` with numGpus and custom resources set anew where given (as .options() overrides). */
function mergedResources(base: ResourceMap | undefined, numGpus: number | undefined, resources: Record<string, number> | undefined): ResourceMap | undefined {
  const gpus = numGpus ?? base?.['GPU'];
  const custom = resources ?? Object.fromEntries(Object.entries(base ?? {}).filter(([name]) => name !== 'GPU'));
  return resourceMap(gpus, custom);
}

export interface GetOptions {
  /**
   * Reject with GetTimeoutError if the objects are not ready by then. Any size works (beyond
   * Node's 24.8-day timer limit too); Infinity is no limit. Default: wait as long as it takes.
   */
  timeoutMs?: number;
}

export interface WaitOptions {
  /** How many refs must be ready before wait() returns. Default: 1. */
  numReturns?: number;
  /** Return with whatever is ready by then. Any size works; Infinity is no limit. Default: no limit. */
  timeoutMs?: number;
  /**
   * A ref counts as ready only once its value is on this node (pulled here if it is on another),
   * so a get() after wait() does not wait for a transfer; false: as soon as it exists anywhere.
   * The same on one node. Default: true (Ray's fetch_local).
   */
  fetchLocal?: boolean;
}

export interface CancelOptions {
  /** Stop a running task by terminating its worker (which is then replaced). Default: false. */
  force?: boolean;
  /** Cancel the tasks it submitted too, and theirs, as Ray's recursive. Default: true. */
  recursive?: boolean;
}

export const TIMEOUT_RULE = { type: 'number', min: 0, allowInfinity: true, doc: 'milliseconds to wait' } as const satisfies OptionRule;

export const GET_RULES = { timeoutMs: TIMEOUT_RULE } as const satisfies RulesFor<GetOptions>;
export const WAIT_RULES = {
  numReturns: { type: 'integer', min: 0, doc: 'how many refs must be ready' },
  timeoutMs: TIMEOUT_RULE,
  fetchLocal: { type: 'boolean', doc: 'count a ref as ready once its value is on this node' },
} as const satisfies RulesFor<WaitOptions>;
export const CANCEL_RULES = {
  force: { type: 'boolean', doc: 'terminate the worker running the task' },
  recursive: { type: 'boolean', doc: 'cancel the tasks it submitted too' },
} as const satisfies RulesFor<CancelOptions>;

export interface ActorOptions {
  /** Register the actor under this name, so getActor(name) finds it. */
  name?: string;
  /** Namespace of the name. Default: the job's (init({ namespace }); in a task, its job's). */
  namespace?: string;
  /**
   * Restarts (the constructor runs again, with the same arguments: fresh state) after its worker or
   * its node dies, counted together. -1: unlimited. Default: 0.
   */
  maxRestarts?: number;
  /**
   * Retries of a call that may have run on an instance that was lost: one that had started when
   * the worker died, or any unanswered call sent to a node that died. -1: unlimited. Default: 0.
   */
  maxTaskRetries?: number;
  /** Calls that may run at once (async methods overlap). Default: 1000 for a class with async methods, else 1. */
  maxConcurrency?: number;
  /** CPUs the actor holds while it lives. Default: 0. */
  numCpus?: number;
  /** GPUs the actor holds while it lives. Default: 0. */
  numGpus?: number;
  /** Custom resources the actor holds while it lives. */
  resources?: Record<string, number>;
  /** Where the actor may be placed. Default: 'DEFAULT'. */
  schedulingStrategy?: SchedulingStrategy;
  /**
   * 'thread' (default): a worker thread of its own, as Ray gives each actor a process.
   * 'shared': many actors share a few worker threads (thousands fit on one machine).
   * 'process': a child process of its own, for full isolation.
   */
  isolation?: 'thread' | 'shared' | 'process';
  /**
   * 'non_detached' (default): the actor ends when its owner does (the driver or task that created
   * it). 'detached': it outlives its owner and lives until kill(); a named one is found by any
   * driver with getActor(name). As in Ray, a detached actor needs no name (reach it through a handle).
   */
  lifetime?: ActorLifetime;
  // Concurrency groups, per-method options and getIfExists (actors part).
  /**
   * Named groups of calls, each with its own limit of calls at once, e.g. { io: 2, compute: 1 }.
   * A method runs in the group its methodOptions (or a call's .options()) name; others in the
   * default group (of maxConcurrency calls). Default: none.
   */
  concurrencyGroups?: Record<string, number>;
  /**
   * Per-method options, by method name: { numReturns, concurrencyGroup }. The class's static
   * `methodOptions` gives the same and also types the handle (numReturns: 2 gives two refs).
   */
  methodOptions?: Record<string, { numReturns?: number | 'streaming' | 'dynamic'; concurrencyGroup?: string }>;
  /** With name: if a live actor has that name, return a handle to it instead of creating one. Default: false. */
  getIfExists?: boolean;
  /** Its runtime environment, merged over the one it inherits (see RuntimeEnv); its methods' tasks inherit it. */
  runtimeEnv?: RuntimeEnv;
}

export type ActorLifetime = 'detached' | 'non_detached';

const ISOLATIONS = ['thread', 'shared', 'process'] as const;
const LIFETIMES = ['detached', 'non_detached'] as const satisfies readonly ActorLifetime[];

const ACTOR_RULES = {
  name: { type: 'string', nonEmpty: true, doc: 'name for getActor()' },
  namespace: { type: 'string', nonEmpty: true, doc: "namespace of the name; leave it out for the job's (init({ namespace }))" },
  maxRestarts: { type: 'integer', min: 0, allowMinusOne: true, doc: 'restarts after the worker dies' },
  maxTaskRetries: { type: 'integer', min: 0, allowMinusOne: true, doc: 'retries of a call whose actor died' },
  maxConcurrency: { type: 'integer', min: 1, doc: 'calls that may run at once' },
  numCpus: { type: 'number', min: 0, doc: 'CPUs the actor holds while it lives' },
  numGpus: { type: 'number', min: 0, doc: 'GPUs the actor holds while it lives' },
  resources: RESOURCES_RULE,
  schedulingStrategy: STRATEGY_RULE,
  isolation: { type: 'string', oneOf: ISOLATIONS, doc: 'how the actor is hosted' },
  lifetime: { type: 'string', oneOf: LIFETIMES, doc: "'detached' to outlive its owner (until kill()), or 'non_detached' to end with it" },
  concurrencyGroups: {
    value: undefined as Record<string, number> | undefined,
    type: 'custom',
    doc: 'calls at once per named group, e.g. { io: 2, compute: 1 }',
    problem: (value) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'an object of group limits, e.g. { io: 2, compute: 1 }';
      for (const [name, limit] of Object.entries(value)) {
        if (name === '') return 'an object of group limits with non-empty names';
        if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) return `an object of integer limits >= 1 (group '${name}' is not)`;
      }
      return undefined;
    },
  },
  methodOptions: {
    value: undefined as Record<string, { numReturns?: number | 'streaming' | 'dynamic'; concurrencyGroup?: string }> | undefined,
    type: 'custom',
    doc: "per-method options by name, e.g. { fetch: { concurrencyGroup: 'io' }, split: { numReturns: 2 } }",
    problem: (value) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return "an object of method options by method name, e.g. { split: { numReturns: 2 } }";
      for (const [method, options] of Object.entries(value)) {
        if (typeof options !== 'object' || options === null) return `an object of method options (those of '${method}' are not an object)`;
        for (const [key, option] of Object.entries(options as Record<string, unknown>)) {
          if (key === 'numReturns') {
            if (option === 'streaming' || option === 'dynamic') continue; // generators: for a generator method
            if (typeof option !== 'number' || !Number.isInteger(option) || option < 0 || option > MAX_NUM_RETURNS) return `numReturns from 0 to ${MAX_NUM_RETURNS}, or 'streaming' / 'dynamic' for a generator method ('${method}' has ${String(option)})`;
          } else if (key === 'concurrencyGroup') {
            if (typeof option !== 'string' || option === '') return `a non-empty concurrencyGroup name ('${method}' has ${String(option)})`;
          } else return `only numReturns and concurrencyGroup per method ('${method}' has '${key}')`;
        }
      }
      return undefined;
    },
  },
  getIfExists: { type: 'boolean', doc: 'with name: reach the live actor of that name instead of creating one' },
  runtimeEnv: RUNTIME_ENV_RULE,
} as const satisfies RulesFor<ActorOptions>;

export function mergeActorOptions(
  where: string,
  base: ResolvedActorOptions,
  options: ActorOptions | undefined,
): ResolvedActorOptions {
  const valid = validateOptions(where, ACTOR_RULES, options);
  return {
    name: valid.name ?? base.name,
    namespace: valid.namespace ?? base.namespace,
    maxRestarts: valid.maxRestarts ?? base.maxRestarts,
    maxTaskRetries: valid.maxTaskRetries ?? base.maxTaskRetries,
    maxConcurrency: valid.maxConcurrency ?? base.maxConcurrency,
    numCpus: valid.numCpus ?? base.numCpus,
    resources: valid.numGpus === undefined && valid.resources === undefined ? base.resources : mergedResources(base.resources, valid.numGpus, valid.resources),
    strategy: valid.schedulingStrategy === undefined ? base.strategy : specStrategy(valid.schedulingStrategy),
    ...placementOf(base, valid.schedulingStrategy),
    isolation: valid.isolation ?? base.isolation,
    lifetime: valid.lifetime ?? base.lifetime,
    ...actorPartOptions(where, base, valid),
    runtimeEnv: valid.runtimeEnv === undefined ? base.runtimeEnv : specRuntimeEnv(where, valid.runtimeEnv),
  };
}

/** Concurrency groups, per-method options and getIfExists (actors part), checked against each other. */
function actorPartOptions(
  where: string,
  base: ResolvedActorOptions,
  valid: ActorOptions,
): Pick<ResolvedActorOptions, 'concurrencyGroups' | 'methodOptions' | 'getIfExists'> {
  const concurrencyGroups = valid.concurrencyGroups ?? base.concurrencyGroups;
  const methodOptions = valid.methodOptions === undefined ? base.methodOptions : { ...base.methodOptions, ...valid.methodOptions };
  const getIfExists = valid.getIfExists ?? base.getIfExists;
  const part: { -readonly [K in 'concurrencyGroups' | 'methodOptions' | 'getIfExists']?: ResolvedActorOptions[K] } = {};
  if (concurrencyGroups !== undefined) part.concurrencyGroups = concurrencyGroups;
  if (methodOptions !== undefined) part.methodOptions = methodOptions;
  if (getIfExists === true) part.getIfExists = true;
  void where;
  return part;
}

/**
 * Concurrency groups (actors part): every method's group is one of the actor's, checked when the
 * actor is created (remote(Class) may name groups that .options() adds later).
 */
export function checkMethodGroups(where: string, options: ResolvedActorOptions): void {
  const { concurrencyGroups, methodOptions } = options;
  if (methodOptions === undefined) return;
  for (const [method, options] of Object.entries(methodOptions)) {
    const group = options.concurrencyGroup;
    if (group !== undefined && concurrencyGroups?.[group] === undefined) {
      const known = Object.keys(concurrencyGroups ?? {});
      throw new InvalidOptionError(
        `${where}: method '${method}' is in concurrency group '${group}', which the actor does not have ` +
          (known.length === 0 ? '(it has none): add concurrencyGroups: { ' + group + ': n }' : `(it has ${known.map((k) => `'${k}'`).join(', ')})`),
        'concurrencyGroup',
      );
    }
  }
}

export function defaultActorOptions(asyncMethods: boolean): ResolvedActorOptions {
  return {
    name: undefined,
    namespace: undefined,
    maxRestarts: 0,
    maxTaskRetries: 0,
    maxConcurrency: asyncMethods ? 1000 : 1,
    numCpus: 0,
    resources: undefined,
    strategy: undefined,
    isolation: 'thread',
    lifetime: 'non_detached',
  };
}

export interface KillOptions {
  /** Do not restart the actor (default true, as Ray); false kills it as a crash would, so it restarts if it may. */
  noRestart?: boolean;
}

export const KILL_RULES = { noRestart: { type: 'boolean', doc: 'do not restart the actor' } } as const satisfies RulesFor<KillOptions>;

export interface GetActorOptions {
  /** Namespace the name was registered in. Default: the job's (init({ namespace }); in a task, its job's). */
  namespace?: string;
}

export const GET_ACTOR_RULES = { namespace: { type: 'string', nonEmpty: true, doc: "namespace of the name; leave it out for the job's" } } as const satisfies RulesFor<GetActorOptions>;
