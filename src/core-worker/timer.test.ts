import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { MAX_TIMER_MS, startTimeout } from './timer.js';

beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'] }));
afterEach(() => mock.timers.reset());

test('a delay within setTimeout\'s range fires once, on time', () => {
  let fired = 0;
  startTimeout(() => fired++, 100);
  mock.timers.tick(99);
  assert.equal(fired, 0);
  mock.timers.tick(1);
  assert.equal(fired, 1);
  mock.timers.tick(1000);
  assert.equal(fired, 1);
});

test('a delay beyond 2**31 - 1 ms waits the whole time instead of firing at once', () => {
  let fired = 0;
  const ms = 2 ** 31 + 5;
  startTimeout(() => fired++, ms);
  mock.timers.tick(2);
  assert.equal(fired, 0, 'setTimeout would have fired after 1 ms here');
  mock.timers.tick(MAX_TIMER_MS - 2);
  assert.equal(fired, 0);
  mock.timers.tick(ms - MAX_TIMER_MS - 1);
  assert.equal(fired, 0);
  mock.timers.tick(1);
  assert.equal(fired, 1);
});

test('1e12 ms (31 years) is waited out in steps and does not fire early', () => {
  let fired = 0;
  startTimeout(() => fired++, 1e12);
  for (let i = 0; i < 465; i++) mock.timers.tick(MAX_TIMER_MS);
  assert.equal(fired, 0);
  mock.timers.tick(1e12 - 465 * MAX_TIMER_MS);
  assert.equal(fired, 1);
});

test('Infinity never fires, and the cancel function stops a pending timeout', () => {
  let fired = 0;
  startTimeout(() => fired++, Infinity);
  const cancel = startTimeout(() => fired++, 2 ** 40);
  mock.timers.tick(MAX_TIMER_MS);
  cancel();
  for (let i = 0; i < 600; i++) mock.timers.tick(MAX_TIMER_MS);
  assert.equal(fired, 0);
});

test('0 fires on the next turn', () => {
  let fired = 0;
  startTimeout(() => fired++, 0);
  assert.equal(fired, 0);
  mock.timers.tick(0);
  assert.equal(fired, 1);
});
