// isErrorOf: the worker's check of a thrown value against retryExceptions' class names.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isErrorOf } from './executor.js';

class QuotaError extends Error {}
class DailyQuotaError extends QuotaError {}

test('an error matches its class, its ancestors and its name; not its subclasses or other classes', () => {
  assert.equal(isErrorOf(new QuotaError('x'), ['QuotaError']), true);
  assert.equal(isErrorOf(new DailyQuotaError('x'), ['QuotaError']), true, 'a subclass is an instance of its parent');
  assert.equal(isErrorOf(new DailyQuotaError('x'), ['Error']), true);
  assert.equal(isErrorOf(new QuotaError('x'), ['DailyQuotaError']), false);
  assert.equal(isErrorOf(new TypeError('x'), ['RangeError', 'QuotaError']), false);
  assert.equal(isErrorOf(Object.assign(new Error('x'), { name: 'RateLimited' }), ['RateLimited']), true, 'by its name');
});

test('values that are not errors, and hostile proxies, match nothing without throwing', () => {
  assert.equal(isErrorOf('QuotaError', ['QuotaError']), false);
  assert.equal(isErrorOf(null, ['Error']), false);
  assert.equal(isErrorOf(undefined, ['Error']), false);
  assert.equal(isErrorOf({ name: 'QuotaError' }, ['QuotaError']), true, 'a thrown object named as the class');
  const hostile = new Proxy({}, { get: () => { throw new Error('trap'); }, getPrototypeOf: () => { throw new Error('trap'); } });
  assert.equal(isErrorOf(hostile, ['Error']), false);
});
