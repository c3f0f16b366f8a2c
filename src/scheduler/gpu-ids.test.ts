import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GpuIdPool } from './gpu-ids.js';

test('whole GPUs go to one holder each; fractions share the fullest GPU first', () => {
  const pool = new GpuIdPool([0, 1, 2]);
  assert.deepEqual(pool.take(2), [0, 1]);
  assert.equal(pool.take(2), undefined);
  assert.deepEqual(pool.take(0.5), [2]);
  assert.deepEqual(pool.take(0.5), [2]);
  assert.equal(pool.take(0.5), undefined);
  pool.give([0, 1], 2);
  assert.deepEqual(pool.take(0.25), [0]);
  assert.deepEqual(pool.take(0.25), [0], 'the fuller GPU is used before an empty one');
  assert.deepEqual(pool.take(1), [1]);
  pool.give([2], 0.5);
  assert.deepEqual(pool.take(0.5), [0], 'of two GPUs with half free, the first');
  assert.deepEqual(pool.take(0.5), [2]);
  assert.deepEqual(pool.take(0), []);
});
