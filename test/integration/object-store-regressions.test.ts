// Regressions found in review of the shared-memory store: each test is a scenario that once lost
// data or memory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { get, init, memory, put, shutdown } from 'miniray';
import { collectUntil } from '../fixtures/gc.js';
import { putThenReturnLarge } from '../fixtures/object-store-tasks.js';

before(async () => {
  await init({ numWorkers: 2, objectStoreMemory: 32 * 1024 * 1024 });
});
after(async () => {
  await shutdown();
});

test('a task that puts and then returns a large array in one run: the array arrives intact', async () => {
  for (let i = 1; i <= 5; i++) {
    const result = await get(putThenReturnLarge.remote(i));
    assert.ok(result instanceof Float64Array);
    assert.equal(result.length, 20_000);
    assert.equal(result[0], i);
    assert.equal(result[19_999], i);
  }
});

test('a subarray of a large value keeps its memory from reuse after the value itself is dropped', async () => {
  let ref: ReturnType<typeof put<Uint8Array>> | undefined = put(new Uint8Array(4 * 1024 * 1024).fill(1));
  const id = ref.hex;
  let view: Uint8Array | undefined = await get(ref);
  const slice = view.subarray(0, 4);
  ref = undefined;
  view = undefined;
  await collectUntil(() => memory().objects.every((o) => o.id !== id), 'the dropped object being freed');
  // Fill the store with other data: the freed object's memory must not be handed out while the
  // subarray lives.
  const others = [];
  for (let i = 0; i < 12; i++) others.push(put(new Uint8Array(4 * 1024 * 1024).fill(7)));
  assert.deepEqual([...slice], [1, 1, 1, 1]);
  assert.equal(others.length, 12);
});
