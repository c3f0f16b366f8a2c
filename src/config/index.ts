/**
 * Every tunable of the runtime in one table, with its default and what it does; each can be
 * overridden by an environment variable (MINIRAY_<NAME in upper snake case>), as Ray's
 * ray_config_def.h. Also: table-driven validation of user options, with errors that name the field.
 */
import { availableParallelism, totalmem } from 'node:os';
import { InvalidOptionError, describeValue } from '../errors/index.js';

interface Setting {
  readonly default: number;
  readonly doc: string;
  /**
   * 'cluster': the head's value holds for the whole cluster (sent in its GCS hello, as Ray sends
   * its system config from the head): a node or driver that joins uses it, whatever its own
   * environment says. 'process': each process reads its own (what depends on its machine, such as
   * memory, or on its program, such as a task option's default, or what only the head and the CLI
   * read, such as the Jobs API's limits).
   */
  readonly scope: 'cluster' | 'process';
  /** Smallest allowed value; all settings are integers. */
  readonly min: number;
  /** Largest allowed value, if any (1 for on/off settings). */
  readonly max?: number;
}

const SETTINGS = {
  maxTasksInFlightPerWorker: {
    scope: 'cluster',
    default: 64,
    min: 1,
    doc: 'Most tasks the node queues at one worker ahead of time when many are ready (pipelining); 1 disables it.',
  },
  pipelineMaxTaskUs: {
    scope: 'cluster',
    default: 1000,
    min: 0,
    doc: 'Tasks of a function whose recent runs took at most this many microseconds may be queued behind one another at a worker; longer ones go one per worker, so they spread over all workers.',
  },
  maxExtraWorkers: {
    scope: 'process',
    default: 0,
    min: 0,
    doc: "Task worker threads a node may start beyond numWorkers, so that a task whose parent waits in get() runs in a thread of its own rather than share the parent's, at the cost of a thread start the first time (ended after 1 s idle); 0: such a task may run in its waiting parent's thread when no other is free.",
  },
  workerStartupFailureLimit: {
    scope: 'cluster',
    default: 3,
    min: 1,
    doc: 'Consecutive worker start-up failures after which queued tasks fail instead of waiting for a worker.',
  },
  defaultMaxRetries: {
    scope: 'process',
    default: 3,
    min: -1,
    doc: 'Retries of a task whose worker crashed, unless the task sets maxRetries (as Ray).',
  },
  defaultObjectStorePercent: {
    scope: 'process',
    default: 30,
    min: 1,
    doc: 'Percent of system memory the object store may use when init() does not set objectStoreMemory.',
  },
  healthCheckPeriodMs: {
    scope: 'cluster',
    default: 1000,
    min: 1,
    doc: "How often the GCS checks each alive node (not drivers) over the connection it registered on; the node answers from its main thread, which runs no user code, so a node busy with tasks still answers.",
  },
  healthCheckTimeoutMs: {
    scope: 'cluster',
    default: 1000,
    min: 1,
    doc: 'How long the GCS waits for a node to answer one health check before counting it missed.',
  },
  healthCheckFailureThreshold: {
    scope: 'cluster',
    default: 5,
    min: 1,
    doc: 'Consecutive missed health checks after which the GCS declares the node dead (with the defaults, a silent node is declared dead within about 5-7 s), publishes it and closes its connection.',
  },
  logUnhandledErrors: {
    scope: 'process',
    default: 1,
    min: 0,
    max: 1,
    doc: "1: when the last ref to a failed task's result goes without get() having read it, its error is logged to stderr once (as Ray's \"Unhandled error\"); 0: not logged.",
  },
  maxInlineObjectBytes: {
    scope: 'cluster',
    default: 100 * 1024,
    min: 0,
    doc: "Values of at most this many bytes travel between nodes inside the message that carries them: a task's result to its owner, an argument to the node that runs the task, a generator's item (as Ray's max_direct_call_object_size, 100 KiB). Larger ones stay in the store of the node that made them, and a node that reads one pulls it from there in chunks. Also where the scheduler starts to prefer the node that holds a task's arguments.",
  },
  maxLineageBytes: {
    scope: 'cluster',
    default: 1024 * 1024 * 1024,
    min: 0,
    doc: "Bytes of finished tasks' specs a node keeps so that it can re-run them when every copy of a result they made is lost (lineage reconstruction; as Ray's max_lineage_bytes). Past it the oldest are dropped, and their results can no longer be rebuilt; 0 keeps none.",
  },
  // ---- logs (issue 12) ----
  maxLogBytesPerNode: {
    scope: 'cluster',
    default: 16 * 1024 * 1024,
    min: 0,
    doc: "Bytes of recent task and actor output lines a node keeps for `miniray logs`, the dashboard and the state API (its text plus about 64 bytes a line); past it the oldest lines go. 0 keeps none (output is still written to stdout and forwarded to the driver).",
  },
  gcsReconnectTimeoutMs: {
    scope: 'cluster',
    default: 60_000,
    min: 0,
    doc: "How long a node or driver whose connection to the GCS closed keeps trying to reach it again (with backoff) before it gives up: a node exits, a driver's GCS calls fail with GcsUnavailableError (Ray's raylets wait 60 s too). Also how long `miniray start --address` waits for a head that is not up yet, and how long a GCS restarted on Redis waits for the nodes it knew to re-register before it marks them dead.",
  },
  gcsRequestTimeoutMs: {
    scope: 'cluster',
    default: 60_000,
    min: 1,
    doc: "How long a call to the GCS waits for its answer while the connection stays open (a head that hangs rather than closes), before it fails with RequestTimeoutError (as Ray's gcs_server_request_timeout_seconds, 60 s). Calls that wait on purpose (PlacementGroup.wait, the state API's fan-out) have their own limits. A connection that closes is handled by gcsReconnectTimeoutMs instead.",
  },
  // ---- task events (issue 12, helper events) ----
  taskEventsEnabled: {
    scope: 'cluster',
    default: 1,
    min: 0,
    max: 1,
    doc: "1: each node records the state changes of tasks, actor creations and actor calls, and get/put/wait calls, and sends them to the GCS in batches, for the state API, the dashboard and the timeline; 0: nothing is recorded (the task list is empty).",
  },
  taskEventsFlushMs: {
    scope: 'cluster',
    default: 500,
    min: 1,
    doc: 'How often a node sends the task events it recorded to the GCS, in one batch.',
  },
  maxTaskEventsBuffered: {
    scope: 'cluster',
    default: 100_000,
    min: 0,
    doc: 'Most task events (and get/put/wait events) a node holds between two sends to the GCS; past it, new events are dropped and counted (the state API reports the count as `dropped`).',
  },
  taskEventsMaxTasksPerSecond: {
    scope: 'cluster',
    default: 2000,
    min: 1,
    doc: 'Tasks and actor calls a second a node records in full at most: when more were submitted in the last taskEventsFlushMs, only an even sample of the next ones is recorded, and the others are counted as dropped (the state API says so). Recording costs a few microseconds a task on the node\'s thread, the driver\'s in the embedded default.',
  },
  maxTaskEventsInGcs: {
    scope: 'cluster',
    default: 100_000,
    min: 1,
    doc: 'Most task attempts the GCS keeps for the state API; past it, finished ones are evicted oldest first (then the oldest of any state), and counted as dropped.',
  },
  // ---- jobs (src/jobs) ----
  jobStopGraceMs: {
    scope: 'process',
    default: 3000,
    min: 0,
    doc: "How long the head waits after SIGTERM to a stopped job's process group (`miniray job stop`, or the head stopping) before it sends SIGKILL (Ray waits 3 s too).",
  },
  jobMaxPackageBytes: {
    scope: 'process',
    default: 100 * 1024 * 1024,
    min: 1,
    doc: 'Largest working-directory package (`miniray job submit --working-dir`, a tar.gz) the head accepts, and the CLI sends; unpacked it may be up to 10 times this.',
  },
} satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;

/** The environment variable that overrides a setting (gcsRequestTimeoutMs: MINIRAY_GCS_REQUEST_TIMEOUT_MS). */
export const envName = (name: string): string => `MINIRAY_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

/**
 * The head's values of the cluster-wide settings, once this process joined its cluster
 * (adoptClusterSettings): they win over this process's environment.
 */
const fromHead = new Map<SettingName, number>();

/** A setting's value: the head's for a cluster-wide one in a process that joined, else the environment override if set, else the default. */
export function setting(name: SettingName): number {
  const adopted = fromHead.size === 0 ? undefined : fromHead.get(name);
  if (adopted !== undefined) return adopted;
  return fromEnvironment(name, process.env);
}

function fromEnvironment(name: SettingName, env: NodeJS.ProcessEnv): number {
  const raw = env[envName(name)]?.trim();
  const entry: Setting = SETTINGS[name];
  const { default: fallback, min, max = Infinity } = entry;
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(
      `environment variable ${envName(name)} must be an integer >= ${min}${max < Infinity ? ` and <= ${max}` : ''}, got ${JSON.stringify(raw)}`,
      name,
    );
  }
  return value;
}

/**
 * The documented settings table (for docs and `miniray` tooling), with each setting's `scope`
 * and the `value` in effect in this process (a bad environment override throws, as setting() does).
 */
export function describeSettings(): Array<{ name: string; env: string; default: number; scope: 'cluster' | 'process'; value: number; doc: string }> {
  return (Object.entries(SETTINGS) as [SettingName, Setting][]).map(([name, s]) => ({ name, env: envName(name), default: s.default, scope: s.scope, value: setting(name), doc: s.doc }));
}

// ---- cluster-wide settings, from the head ----------------------------------------------------------

const settingNames = Object.keys(SETTINGS) as SettingName[];

/** This process's values of the cluster-wide settings: what a head sends in its GCS hello. */
export function clusterSettings(): Record<string, number> {
  const values: Record<string, number> = {};
  for (const name of settingNames) if (SETTINGS[name].scope === 'cluster') values[name] = setting(name);
  return values;
}

/** A cluster-wide setting this process's environment sets to another value than the head's. */
export interface SettingConflict {
  readonly name: SettingName;
  readonly env: string;
  /** The environment's value, as written. */
  readonly local: string;
  readonly head: number;
}

/**
 * The head's cluster-wide settings merged over this process's environment `env` (no state:
 * adoptClusterSettings applies it). `adopt`: every cluster-wide setting the head sent with a value
 * in range. A setting the head did not send (an older head) keeps this process's value, and one
 * that is not cluster-wide here, unknown here, or out of range is ignored: this process's table
 * decides what it takes. `conflicts`: the adopted settings whose MINIRAY_* variable is set here to
 * something else (invalid values included: they are not used either).
 */
export function mergeClusterSettings(head: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv = process.env): { adopt: Map<SettingName, number>; conflicts: SettingConflict[] } {
  const adopt = new Map<SettingName, number>();
  const conflicts: SettingConflict[] = [];
  for (const name of settingNames) {
    const entry: Setting = SETTINGS[name];
    const value = head[name];
    if (entry.scope !== 'cluster' || !Object.hasOwn(head, name)) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < entry.min || value > (entry.max ?? Infinity)) continue;
    adopt.set(name, value);
    const raw = env[envName(name)]?.trim();
    if (raw !== undefined && raw !== '' && Number(raw) !== value) conflicts.push({ name, env: envName(name), local: raw, head: value });
  }
  return { adopt, conflicts };
}

/**
 * A node or driver joined a cluster whose head sent `head` (its GCS hello): the cluster-wide
 * settings are the head's from now on, in this process (every setting() read; the Node reads
 * its settings when it is built, after this). Each one this process's environment sets otherwise
 * is said once, with both values: the head wins, so that a cluster does not run with nodes
 * that disagree on timeouts or limits without anyone knowing.
 */
export function adoptClusterSettings(head: Readonly<Record<string, unknown>>, warn: (line: string) => void = (line) => console.warn(line)): void {
  const { adopt, conflicts } = mergeClusterSettings(head);
  for (const { name, env, local, head: value } of conflicts) {
    warn(`miniray: warning: ${env}=${local} is not used here: ${name} is a cluster-wide setting, and the head's value, ${value}, holds for the whole cluster (set it on the head, or unset it here)`);
  }
  fromHead.clear();
  for (const [name, value] of adopt) fromHead.set(name, value);
}

/** This process left its cluster (shutdown()): its own environment's values hold again. */
export function forgetClusterSettings(): void {
  fromHead.clear();
}

export const defaultNumCpus = (): number => availableParallelism();
export const defaultObjectStoreMemory = (): number =>
  Math.floor((memoryLimit() * setting('defaultObjectStorePercent')) / 100);

/**
 * The memory this process may use: the machine's, or its cgroup's limit when lower. In a container
 * (a Kubernetes pod with a memory limit) totalmem() is the host's, and a store sized from it would
 * get the pod OOM-killed long before it started to spill. libuv reports 0, or 2^64 on some
 * kernels, when there is no limit.
 */
export function memoryLimit(total = totalmem(), constrained = process.constrainedMemory?.() ?? 0): number {
  return constrained > 0 && constrained < total ? constrained : total;
}

// ---- user options -------------------------------------------------------------------------------

export type OptionRule =
  | {
      readonly type: 'integer';
      readonly min?: number;
      /** Largest allowed value; a bound where a larger one would exhaust memory (e.g. numReturns). */
      readonly max?: number;
      readonly allowMinusOne?: boolean;
      readonly doc: string;
    }
  | {
      readonly type: 'number';
      readonly min?: number;
      /** Infinity is allowed, meaning "no limit" (timeouts). */
      readonly allowInfinity?: boolean;
      readonly doc: string;
    }
  | { readonly type: 'boolean'; readonly doc: string }
  | { readonly type: 'string'; readonly oneOf?: readonly string[]; readonly nonEmpty?: boolean; readonly doc: string }
  /** Anything else: `problem` says what is wrong with a value (undefined when it is right). */
  | CustomRule<unknown>;

export interface CustomRule<T> {
  readonly type: 'custom';
  readonly problem: (value: unknown) => string | undefined;
  readonly doc: string;
  /** Phantom: the type of an accepted value. */
  readonly value?: T;
}

export type OptionRules = Readonly<Record<string, OptionRule>>;

/** The type of the value a rule accepts. */
export type OptionValue<R extends OptionRule> = R extends CustomRule<infer T>
  ? T
  : R extends { type: 'boolean' }
  ? boolean
  : R extends { type: 'string'; oneOf: readonly (infer S)[] }
    ? S
    : R extends { type: 'string' }
      ? string
      : number;

/** The options that passed validation: only known names, each read once and checked. */
export type ValidOptions<Rules extends OptionRules> = { -readonly [K in keyof Rules]?: OptionValue<Rules[K]> };

/**
 * Checks `options` against `rules` and returns the checked values; throws InvalidOptionError
 * naming the field, the rule and the value received. `where` names the call, e.g. "init()".
 *
 * Each known option is read once, as `options[key]` (so inherited and getter-made values count, as
 * they would for any reader), and only that checked value is returned: callers must use the result,
 * never `options` again, so that what runs is what was checked. Unknown names are looked for among
 * the enumerable keys, own and inherited.
 */
export function validateOptions<Rules extends OptionRules>(where: string, rules: Rules, options: unknown): ValidOptions<Rules> {
  const valid: Record<string, unknown> = {};
  if (options === undefined) return valid as ValidOptions<Rules>;
  const unreadable = (error: unknown, key: string): InvalidOptionError =>
    new InvalidOptionError(
      `${where}: ${key === '' ? 'the options object' : `option '${key}'`} could not be read (${errorText(error)}); pass a plain object`,
      key,
      { cause: error },
    );
  const names: string[] = [];
  try {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new InvalidOptionError(`${where}: options must be an object, got ${describe(options)}`, '');
    }
    for (const key in options) names.push(key);
  } catch (error) {
    throw error instanceof InvalidOptionError ? error : unreadable(error, '');
  }
  for (const key of names) {
    if (Object.hasOwn(rules, key)) continue;
    const suggestion = closest(key, Object.keys(rules));
    throw new InvalidOptionError(
      `${where}: unknown option '${key}'.${suggestion ? ` Did you mean '${suggestion}'?` : ''} ` +
        `Known options: ${Object.keys(rules).join(', ')}.`,
      key,
    );
  }
  for (const [key, rule] of Object.entries(rules)) {
    let value: unknown;
    try {
      value = (options as Record<string, unknown>)[key];
    } catch (error) {
      throw unreadable(error, key);
    }
    if (value === undefined) continue;
    const problem = check(rule, value);
    if (problem) {
      throw new InvalidOptionError(`${where}: option '${key}' must be ${problem}, got ${describe(value)}. (${rule.doc})`, key);
    }
    valid[key] = value;
  }
  return valid as ValidOptions<Rules>;
}

function check(rule: OptionRule, value: unknown): string | undefined {
  switch (rule.type) {
    case 'custom':
      return rule.problem(value);
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'true or false';
    case 'string':
      if (rule.oneOf !== undefined) {
        return typeof value === 'string' && rule.oneOf.includes(value)
          ? undefined
          : `one of ${rule.oneOf.map((v) => `'${v}'`).join(', ')}`;
      }
      if (rule.nonEmpty === true) return typeof value === 'string' && value !== '' ? undefined : 'a non-empty string';
      return typeof value === 'string' ? undefined : 'a string';
    case 'number': {
      const min = rule.min ?? -Infinity;
      const ok = typeof value === 'number' && (Number.isFinite(value) || (rule.allowInfinity === true && value === Infinity)) && value >= min;
      return ok ? undefined : `a number >= ${min}${rule.allowInfinity ? ' (or Infinity)' : ''}`;
    }
    case 'integer': {
      const min = rule.min ?? -Infinity;
      const max = rule.max ?? Infinity;
      const ok =
        typeof value === 'number' &&
        Number.isInteger(value) &&
        ((value >= min && value <= max) || (rule.allowMinusOne === true && value === -1));
      const range = max === Infinity ? `>= ${min}` : `>= ${min} and <= ${max}`;
      return ok ? undefined : `an integer ${range}${rule.allowMinusOne ? ' (or -1 for unlimited)' : ''}`;
    }
  }
}

function errorText(error: unknown): string {
  try {
    return error instanceof Error ? `${error.name}: ${error.message}` : describeValue(error);
  } catch {
    return 'an error';
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'symbol') return describeValue(value);
  if (value === null || typeof value !== 'object') return String(value);
  try {
    if (Array.isArray(value)) return 'an array';
  } catch {
    // a revoked proxy
  }
  return describeValue(value);
}

/** The known name closest to `name` by edit distance, if it is close enough to be a typo. */
export function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = candidate;
    }
  }
  if (bestDistance <= Math.max(2, Math.floor(name.length / 3))) return best;
  // A shortened or lengthened name (maxRetry for maxRetries) is a typo too.
  const lower = name.toLowerCase();
  return lower.length >= 4 ? known.find((k) => k.toLowerCase().startsWith(lower) || lower.startsWith(k.toLowerCase())) : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
