// Actor options that the cluster's fault tolerance reads: lifetime, and its error for other values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidOptionError } from '../errors/index.js';
import { defaultActorOptions, mergeActorOptions, resolveInitOptions } from './options.js';

test("lifetime is 'non_detached' by default, 'detached' when asked; other values are refused naming the option and its values", () => {
  const base = defaultActorOptions(false);
  assert.equal(base.lifetime, 'non_detached');
  assert.equal(mergeActorOptions('C.options()', base, { lifetime: 'detached' }).lifetime, 'detached');
  // A detached actor needs no name (as in Ray).
  assert.equal(mergeActorOptions('C.options()', base, { lifetime: 'detached' }).name, undefined);
  assert.throws(
    () => mergeActorOptions('C.options()', base, { lifetime: 'forever' as 'detached' }),
    (error: unknown) => error instanceof InvalidOptionError && error.option === 'lifetime' && /'detached', 'non_detached'/.test(error.message),
  );
});

test("init's dashboard options: off by default, 8265 on 127.0.0.1 when asked, a port or host without includeDashboard refused", () => {
  assert.equal(resolveInitOptions(undefined).dashboard, undefined);
  assert.deepEqual(resolveInitOptions({ includeDashboard: true }).dashboard, { host: '127.0.0.1', port: 8265 });
  assert.deepEqual(resolveInitOptions({ includeDashboard: true, dashboardPort: 0, dashboardHost: '0.0.0.0' }).dashboard, { host: '0.0.0.0', port: 0 });
  assert.equal(resolveInitOptions({ includeDashboard: false }).dashboard, undefined);
  const refused = (options: Parameters<typeof resolveInitOptions>[0], option: string, message: RegExp) =>
    assert.throws(() => resolveInitOptions(options), (error: unknown) => error instanceof InvalidOptionError && error.option === option && message.test(error.message));
  refused({ dashboardPort: 9000 }, 'dashboardPort', /also pass includeDashboard: true/);
  refused({ dashboardHost: '0.0.0.0' }, 'dashboardHost', /also pass includeDashboard: true/);
  refused({ includeDashboard: true, dashboardPort: 70000 }, 'dashboardPort', /65535/);
  refused({ includeDashboard: true, dashboardPort: 1.5 }, 'dashboardPort', /integer/);
  refused({ includeDashboard: 'yes' as unknown as boolean }, 'includeDashboard', /boolean|true or false/);
  refused({ includeDashboard: true, dashboardHost: '' }, 'dashboardHost', /empty/);
});

test('retryExceptions: a boolean, or error classes and names kept as names (deduplicated); anything else refused', async () => {
  const { defaultTaskOptions, mergeTaskOptions } = await import('./options.js');
  const base = defaultTaskOptions();
  assert.equal(base.retryExceptions, false);
  assert.equal(mergeTaskOptions('f.options()', base, { retryExceptions: true }).retryExceptions, true);
  class QuotaError extends Error {}
  assert.deepEqual(mergeTaskOptions('f.options()', base, { retryExceptions: [QuotaError, TypeError, 'QuotaError', 'RateLimited'] }).retryExceptions, ['QuotaError', 'TypeError', 'RateLimited']);
  // Unchanged by options that leave it out.
  const listed = mergeTaskOptions('f.options()', base, { retryExceptions: [TypeError] });
  assert.deepEqual(mergeTaskOptions('f.options()', listed, { maxRetries: 1 }).retryExceptions, ['TypeError']);
  for (const bad of [[], [''], [5], [Map], [() => {}], 'TypeError', 1]) {
    assert.throws(
      () => mergeTaskOptions('f.options()', base, { retryExceptions: bad as never }),
      (error: unknown) => error instanceof InvalidOptionError && error.option === 'retryExceptions' && /error classes or class names/.test(error.message),
      `refused: ${String(bad)}`,
    );
  }
});
