import { test } from 'node:test';
import assert from 'node:assert/strict';
import { totalmem } from 'node:os';
import { adoptClusterSettings, clusterSettings, describeSettings, forgetClusterSettings, memoryLimit, mergeClusterSettings, setting, validateOptions, type OptionRules } from './index.js';
import { InvalidOptionError } from '../errors/index.js';

const RULES: OptionRules = {
  numWorkers: { type: 'integer', min: 1, doc: 'worker threads to start' },
  numCpus: { type: 'number', min: 0, doc: 'CPUs this node offers to tasks' },
  maxRetries: { type: 'integer', min: 0, allowMinusOne: true, doc: 'retries after a worker crash' },
  retryExceptions: { type: 'boolean', doc: 'also retry when the task throws' },
  name: { type: 'string', doc: 'name shown in errors' },
};

/** Asserts validateOptions throws an InvalidOptionError for `field` whose message matches the patterns. */
function assertInvalid(options: unknown, field: string, ...patterns: RegExp[]): void {
  assert.throws(
    () => validateOptions('init()', RULES, options),
    (error: unknown) => {
      assert.ok(error instanceof InvalidOptionError, `expected InvalidOptionError, got ${String(error)}`);
      assert.equal(error.option, field);
      assert.match(error.message, /^init\(\): /);
      for (const pattern of patterns) assert.match(error.message, pattern);
      return true;
    },
  );
}

// ---- validateOptions ----------------------------------------------------------------------------

test('validateOptions accepts undefined options, an empty object and valid values', () => {
  validateOptions('init()', RULES, undefined);
  validateOptions('init()', RULES, {});
  validateOptions('init()', RULES, { numWorkers: 4, numCpus: 0.5, maxRetries: 0, retryExceptions: true, name: 'job' });
  validateOptions('init()', RULES, { numCpus: 0, maxRetries: -1, retryExceptions: false, name: '' });
});

test('validateOptions accepts undefined values for known options', () => {
  validateOptions('init()', RULES, { numWorkers: undefined, name: undefined, retryExceptions: undefined });
});

test('validateOptions: an unknown option is named, with the known options listed', () => {
  assertInvalid({ colour: 'red' }, 'colour', /unknown option 'colour'/, /Known options: numWorkers, numCpus, maxRetries, retryExceptions, name\./);
});

test('validateOptions suggests the closest known option for a typo', () => {
  assertInvalid({ numCPUs: 2 }, 'numCPUs', /unknown option 'numCPUs'\. Did you mean 'numCpus'\?/);
  assertInvalid({ numWorker: 2 }, 'numWorker', /Did you mean 'numWorkers'\?/);
  assertInvalid({ maxRetires: 2 }, 'maxRetires', /Did you mean 'maxRetries'\?/);
  assertInvalid({ numcpus: 2 }, 'numcpus', /Did you mean 'numCpus'\?/);
  assertInvalid({ retryException: true }, 'retryException', /Did you mean 'retryExceptions'\?/);
  assertInvalid({ nmae: 'x' }, 'nmae', /Did you mean 'name'\?/);
});

test('validateOptions makes no suggestion for a name unlike any option', () => {
  assert.throws(
    () => validateOptions('init()', RULES, { zzzzzzzzzzzz: 1 }),
    (error: unknown) => error instanceof InvalidOptionError && !/Did you mean/.test(error.message),
  );
});

test('validateOptions rejects a wrong type, naming the field, the rule and the value', () => {
  assertInvalid({ numWorkers: '4' }, 'numWorkers', /option 'numWorkers' must be an integer >= 1, got "4"/, /worker threads to start/);
  assertInvalid({ numCpus: '2' }, 'numCpus', /option 'numCpus' must be a number >= 0, got "2"/);
  assertInvalid({ retryExceptions: 'yes' }, 'retryExceptions', /option 'retryExceptions' must be true or false, got "yes"/);
  assertInvalid({ retryExceptions: 1 }, 'retryExceptions', /must be true or false, got 1/);
  assertInvalid({ name: 42 }, 'name', /option 'name' must be a string, got 42/);
  assertInvalid({ numWorkers: 4n }, 'numWorkers', /got 4n/);
  assertInvalid({ numWorkers: null }, 'numWorkers', /got null/);
  assertInvalid({ numWorkers: [4] }, 'numWorkers', /got an array/);
  assertInvalid({ numWorkers: { n: 4 } }, 'numWorkers', /got an object/);
});

test('validateOptions rejects out-of-range numbers', () => {
  assertInvalid({ numWorkers: 0 }, 'numWorkers', /must be an integer >= 1, got 0/);
  assertInvalid({ numWorkers: 2.5 }, 'numWorkers', /must be an integer >= 1, got 2\.5/);
  assertInvalid({ numWorkers: -1 }, 'numWorkers', /got -1/);
  assertInvalid({ numCpus: -0.5 }, 'numCpus', /must be a number >= 0, got -0\.5/);
  assertInvalid({ numCpus: NaN }, 'numCpus', /got NaN/);
  assertInvalid({ numCpus: Infinity }, 'numCpus', /got Infinity/);
  assertInvalid({ numWorkers: Infinity }, 'numWorkers', /got Infinity/);
});

test('validateOptions allows -1 only where the rule says so', () => {
  validateOptions('init()', RULES, { maxRetries: -1 });
  assertInvalid({ maxRetries: -2 }, 'maxRetries', /must be an integer >= 0 \(or -1 for unlimited\), got -2/);
  assertInvalid({ maxRetries: 1.5 }, 'maxRetries', /got 1\.5/);
});

test('validateOptions rejects options that are not a plain object', () => {
  for (const [options, shown] of [
    [null, 'null'],
    [5, '5'],
    ['numCpus', '"numCpus"'],
    [[1, 2], 'an array'],
    [true, 'true'],
  ] as const) {
    assert.throws(
      () => validateOptions('remote()', RULES, options),
      (error: unknown) => {
        assert.ok(error instanceof InvalidOptionError);
        assert.equal(error.message, `remote(): options must be an object, got ${shown}`);
        return true;
      },
    );
  }
});

test('validateOptions names the call in its message', () => {
  assert.throws(() => validateOptions('f.options()', RULES, { numCpus: -1 }), /^InvalidOptionError: f\.options\(\): option 'numCpus'/);
});

// ---- setting ------------------------------------------------------------------------------------

/** Runs `body` with the environment variable set (or removed), restoring it afterwards. */
function withEnv(name: string, value: string | undefined, body: () => void): void {
  const previous = process.env[name];
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
  try {
    body();
  } finally {
    if (previous === undefined) delete process.env[name];
    else process.env[name] = previous;
  }
}

test('setting() returns the documented default without an override', () => {
  const defaults = new Map(describeSettings().map((s) => [s.name, s.default]));
  withEnv('MINIRAY_MAX_TASKS_IN_FLIGHT_PER_WORKER', undefined, () => {
    assert.equal(setting('maxTasksInFlightPerWorker'), defaults.get('maxTasksInFlightPerWorker'));
  });
  withEnv('MINIRAY_DEFAULT_MAX_RETRIES', undefined, () => {
    assert.equal(setting('defaultMaxRetries'), 3);
  });
});

test('setting() reads the MINIRAY_* environment override', () => {
  withEnv('MINIRAY_MAX_TASKS_IN_FLIGHT_PER_WORKER', '1', () => {
    assert.equal(setting('maxTasksInFlightPerWorker'), 1);
  });
  withEnv('MINIRAY_DEFAULT_MAX_RETRIES', '7', () => {
    assert.equal(setting('defaultMaxRetries'), 7);
  });
  withEnv('MINIRAY_DEFAULT_OBJECT_STORE_PERCENT', '50', () => {
    assert.equal(setting('defaultObjectStorePercent'), 50);
  });
  withEnv('MINIRAY_WORKER_STARTUP_FAILURE_LIMIT', '10', () => {
    assert.equal(setting('workerStartupFailureLimit'), 10);
  });
});

test('setting() reads the environment on every call', () => {
  withEnv('MINIRAY_DEFAULT_MAX_RETRIES', '1', () => assert.equal(setting('defaultMaxRetries'), 1));
  withEnv('MINIRAY_DEFAULT_MAX_RETRIES', '2', () => assert.equal(setting('defaultMaxRetries'), 2));
});

test('setting() treats an empty or blank override as unset', () => {
  withEnv('MINIRAY_DEFAULT_MAX_RETRIES', '  ', () => assert.equal(setting('defaultMaxRetries'), 3));
  withEnv('MINIRAY_DEFAULT_MAX_RETRIES', '', () => assert.equal(setting('defaultMaxRetries'), 3));
});

test('setting() rejects an override that is not an integer in range, naming the variable and value', () => {
  for (const raw of ['abc', 'Infinity', 'NaN', '12abc', '2.5', '-5']) {
    withEnv('MINIRAY_DEFAULT_MAX_RETRIES', raw, () => {
      assert.throws(
        () => setting('defaultMaxRetries'),
        (error: unknown) => {
          assert.ok(error instanceof InvalidOptionError);
          assert.equal(error.option, 'defaultMaxRetries');
          assert.match(error.message, /environment variable MINIRAY_DEFAULT_MAX_RETRIES must be an integer >= -1/);
          assert.ok(error.message.includes(JSON.stringify(raw.trim())), error.message);
          return true;
        },
      );
    });
  }
});

test('describeSettings lists every setting with its environment variable and doc', () => {
  const settings = describeSettings();
  const names = settings.map((s) => s.name).sort();
  assert.deepEqual(names, ['defaultMaxRetries', 'defaultObjectStorePercent', 'gcsReconnectTimeoutMs', 'gcsRequestTimeoutMs', 'healthCheckFailureThreshold', 'healthCheckPeriodMs', 'healthCheckTimeoutMs', 'jobMaxPackageBytes', 'jobStopGraceMs', 'logUnhandledErrors', 'maxExtraWorkers', 'maxInlineObjectBytes', 'maxLineageBytes', 'maxLogBytesPerNode', 'maxTaskEventsBuffered', 'maxTaskEventsInGcs', 'maxTasksInFlightPerWorker', 'pipelineMaxTaskUs', 'taskEventsEnabled', 'taskEventsFlushMs', 'taskEventsMaxTasksPerSecond', 'workerStartupFailureLimit']);
  for (const s of settings) {
    assert.match(s.env, /^MINIRAY_[A-Z_]+$/);
    assert.equal(typeof s.default, 'number');
    assert.ok(s.doc.length > 0);
  }
  assert.equal(settings.find((s) => s.name === 'maxTasksInFlightPerWorker')?.env, 'MINIRAY_MAX_TASKS_IN_FLIGHT_PER_WORKER');
  withEnv('MINIRAY_MAX_TASKS_IN_FLIGHT_PER_WORKER', '5', () => assert.equal(describeSettings().find((s) => s.name === 'maxTasksInFlightPerWorker')?.value, 5));
});

// ---- cluster-wide settings, from the head -------------------------------------------------------

test('settings are cluster-wide (timeouts, health checks, task-event and lineage limits, pipelining) or per process (memory, a task option default, the Jobs API)', () => {
  const scopes = Object.fromEntries(describeSettings().map((s) => [s.name, s.scope]));
  for (const name of ['gcsReconnectTimeoutMs', 'gcsRequestTimeoutMs', 'healthCheckPeriodMs', 'healthCheckTimeoutMs', 'healthCheckFailureThreshold', 'taskEventsEnabled', 'taskEventsFlushMs', 'maxTaskEventsBuffered', 'taskEventsMaxTasksPerSecond', 'maxTaskEventsInGcs', 'maxLineageBytes', 'maxLogBytesPerNode', 'maxTasksInFlightPerWorker', 'pipelineMaxTaskUs', 'workerStartupFailureLimit']) {
    assert.equal(scopes[name], 'cluster', name);
  }
  for (const name of ['defaultObjectStorePercent', 'defaultMaxRetries', 'logUnhandledErrors', 'jobStopGraceMs', 'jobMaxPackageBytes']) assert.equal(scopes[name], 'process', name);
  // What a head sends: every cluster-wide setting, none of the others.
  assert.deepEqual(Object.keys(clusterSettings()).sort(), Object.keys(scopes).filter((name) => scopes[name] === 'cluster').sort());
});

test("mergeClusterSettings: the head's cluster-wide values are adopted; a different value in this environment is a conflict naming both", () => {
  const { adopt, conflicts } = mergeClusterSettings(
    { gcsReconnectTimeoutMs: 2000, taskEventsFlushMs: 100, maxLineageBytes: 5 },
    { MINIRAY_GCS_RECONNECT_TIMEOUT_MS: '90000', MINIRAY_TASK_EVENTS_FLUSH_MS: ' 100 ' },
  );
  assert.deepEqual(Object.fromEntries(adopt), { gcsReconnectTimeoutMs: 2000, taskEventsFlushMs: 100, maxLineageBytes: 5 });
  // The same value written otherwise (' 100 ') agrees; unset (maxLineageBytes) is no conflict.
  assert.deepEqual(conflicts, [{ name: 'gcsReconnectTimeoutMs', env: 'MINIRAY_GCS_RECONNECT_TIMEOUT_MS', local: '90000', head: 2000 }]);
});

test('mergeClusterSettings ignores what is not a cluster-wide setting here, or out of its range, and keeps what the head did not send', () => {
  const { adopt, conflicts } = mergeClusterSettings(
    { defaultObjectStorePercent: 80, someNewerSetting: 1, taskEventsEnabled: 7, healthCheckPeriodMs: 0, maxLogBytesPerNode: 1.5, jobStopGraceMs: 1 },
    { MINIRAY_DEFAULT_OBJECT_STORE_PERCENT: '10', MINIRAY_TASK_EVENTS_ENABLED: '0' },
  );
  assert.deepEqual([...adopt], []);
  assert.deepEqual(conflicts, []);
});

test('mergeClusterSettings: an invalid value in this environment is a conflict too (it is not used)', () => {
  const { conflicts } = mergeClusterSettings({ taskEventsFlushMs: 500 }, { MINIRAY_TASK_EVENTS_FLUSH_MS: 'soon' });
  assert.deepEqual(conflicts.map((c) => [c.name, c.local, c.head]), [['taskEventsFlushMs', 'soon', 500]]);
});

test("adoptClusterSettings: setting() answers the head's value, with one warning per conflict naming the setting and both values, until forgotten", () => {
  withEnv('MINIRAY_GCS_RECONNECT_TIMEOUT_MS', '90000', () =>
    withEnv('MINIRAY_MAX_LINEAGE_BYTES', undefined, () =>
      withEnv('MINIRAY_DEFAULT_MAX_RETRIES', '7', () => {
        const warnings: string[] = [];
        try {
          adoptClusterSettings({ gcsReconnectTimeoutMs: 2000, maxLineageBytes: 5, defaultMaxRetries: 1 }, (line) => warnings.push(line));
          assert.equal(setting('gcsReconnectTimeoutMs'), 2000, 'the head wins');
          assert.equal(setting('maxLineageBytes'), 5);
          assert.equal(setting('defaultMaxRetries'), 7, 'a per-process setting stays this process\'s');
          assert.equal(warnings.length, 1);
          assert.match(warnings[0] as string, /MINIRAY_GCS_RECONNECT_TIMEOUT_MS=90000 is not used here: gcsReconnectTimeoutMs is a cluster-wide setting, and the head's value, 2000, holds/);
          assert.equal(describeSettings().find((s) => s.name === 'gcsReconnectTimeoutMs')?.value, 2000);
        } finally {
          forgetClusterSettings();
        }
        assert.equal(setting('gcsReconnectTimeoutMs'), 90000, 'its own again once it left the cluster');
      }),
    ),
  );
});

// ---- what is read is what is checked ------------------------------------------------------------

test('validateOptions returns only the checked values, and reads inherited options as any reader would', () => {
  assert.deepEqual(validateOptions('init()', RULES, { numWorkers: 2, name: undefined }), { numWorkers: 2 });
  assert.deepEqual(validateOptions('init()', RULES, undefined), {});
  const inherited = Object.create({ numWorkers: 3 }) as object;
  assert.deepEqual(validateOptions('init()', RULES, inherited), { numWorkers: 3 });
  assertInvalid(Object.create({ numWorkers: 'lots' }), 'numWorkers', /"lots"/);
  assertInvalid(Object.create({ numWorker: 1 }), 'numWorker', /unknown option 'numWorker'/);
  // A non-enumerable own option is still read, so still checked.
  assertInvalid(Object.defineProperty({}, 'numCpus', { value: -1, enumerable: false }), 'numCpus', />= 0/);
});

test('validateOptions reads each option once, so a getter cannot pass one value and use another', () => {
  let reads = 0;
  const options = {
    get numWorkers() {
      reads++;
      return reads === 1 ? 2 : 'two';
    },
  };
  const valid = validateOptions('init()', RULES, options);
  assert.equal(reads, 1);
  assert.equal(valid.numWorkers, 2);
});

test('validateOptions turns options that cannot be read into an InvalidOptionError', () => {
  const throwing = {
    get name(): string {
      throw new RangeError('boom');
    },
  };
  assertInvalid(throwing, 'name', /option 'name' could not be read \(RangeError: boom\)/);
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  assertInvalid(revoked.proxy, '', /the options object could not be read/);
  const trap = new Proxy({}, {
    ownKeys() {
      throw new Error('trap');
    },
  });
  assertInvalid(trap, '', /could not be read/);
  assertInvalid({ name: Symbol('s') }, 'name', /got symbol Symbol\(s\)/);
  assertInvalid({ numCpus: 1n }, 'numCpus', /got 1n/);
});

test('validateOptions: max, oneOf and Infinity where the rule allows them', () => {
  const rules = {
    count: { type: 'integer', min: 1, max: 10, doc: 'count' },
    mode: { type: 'string', oneOf: ['a', 'b'], doc: 'mode' },
    timeoutMs: { type: 'number', min: 0, allowInfinity: true, doc: 'ms' },
    share: { type: 'number', min: 0, doc: 'share' },
  } as const satisfies OptionRules;
  const valid = validateOptions('f()', rules, { count: 10, mode: 'b', timeoutMs: Infinity });
  assert.deepEqual(valid, { count: 10, mode: 'b', timeoutMs: Infinity });
  const mode: 'a' | 'b' | undefined = valid.mode;
  assert.equal(mode, 'b');
  assert.throws(() => validateOptions('f()', rules, { count: 11 }), /'count' must be an integer >= 1 and <= 10, got 11/);
  assert.throws(() => validateOptions('f()', rules, { mode: 'c' }), /'mode' must be one of 'a', 'b', got "c"/);
  assert.throws(() => validateOptions('f()', rules, { timeoutMs: -Infinity }), /'timeoutMs' must be a number >= 0 \(or Infinity\)/);
  assert.throws(() => validateOptions('f()', rules, { timeoutMs: Number.NaN }), /'timeoutMs'/);
  assert.throws(() => validateOptions('f()', rules, { share: Infinity }), /'share' must be a number >= 0, got Infinity/);
});

test('an on/off setting accepts 0 and 1 only', () => {
  withEnv('MINIRAY_LOG_UNHANDLED_ERRORS', '0', () => assert.equal(setting('logUnhandledErrors'), 0));
  withEnv('MINIRAY_LOG_UNHANDLED_ERRORS', '2', () =>
    assert.throws(() => setting('logUnhandledErrors'), /MINIRAY_LOG_UNHANDLED_ERRORS must be an integer >= 0 and <= 1, got "2"/),
  );
  assert.equal(setting('logUnhandledErrors'), 1);
});

test('the object store is sized from a container\'s memory limit, not the host\'s memory', () => {
  const gib = 2 ** 30;
  assert.equal(memoryLimit(64 * gib, 4 * gib), 4 * gib, 'a pod limited to 4 GiB on a 64 GiB host');
  assert.equal(memoryLimit(64 * gib, 0), 64 * gib, 'no limit: libuv reports 0');
  assert.equal(memoryLimit(64 * gib, 2 ** 64), 64 * gib, 'no limit: cgroup v2 "max" reported as 2^64');
  assert.ok(memoryLimit() > 0 && memoryLimit() <= totalmem());
});
