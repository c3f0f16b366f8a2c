// Regressions found in review of the shared-memory store: each test is a scenario that once lost
// data or memory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { get, init, memory, put, remote, shutdown, wait, type ObjectRef } from 'miniray';
import { Gate, waitForGate } from '../fixtures/coordination.js';
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

class Summer {
  sum(values: Float64Array): number {
    let total = 0;
    for (const v of values) total += v;
    return total;
  }
}

test("a 'process' actor receives a large Float64Array argument (copied bytes are realigned)", async () => {
  const summer = remote(Summer, { isolation: 'process' }).remote();
  const values = new Float64Array(20_000).fill(0.5);
  assert.equal(await get(summer.sum.remote(values)), 10_000);
  assert.equal(await get(summer.sum.remote(put(values))), 10_000);
});

test('a promise rejected with nothing awaiting it does not take the worker or the task down', async () => {
  const careless = remote(async () => {
    void Promise.reject(new Error('nobody listens'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    return 'still here';
  });
  assert.equal(await get(careless.options({ maxRetries: 0 }).remote()), 'still here');
});

test('wait with timeoutMs 0 is a poll: it returns with what is ready now', async () => {
  const ready = put(1);
  const slow = remote(async () => new Promise((resolve) => setTimeout(resolve, 200)));
  const pending = slow.remote();
  const { ready: done, pending: notYet } = await wait([ready, pending], { numReturns: 2, timeoutMs: 0 });
  assert.deepEqual(done, [ready]);
  assert.deepEqual(notYet, [pending]);
  await get(pending);
});

test('in a task too, get and wait with timeoutMs 0 are polls: what exists is given every time, what does not never is', async () => {
  // A worker asks its node across a channel: a 0 ms timer once raced the node's answer, and an
  // object that existed sometimes timed out. Now the node answers what exists, then ends the poll.
  const gate = new Gate();
  const held = waitForGate.remote(gate.name, 'late');
  await gate.whenWaiting(1);
  const poll = remote(async (refs: { ready: ObjectRef<number>; held: ObjectRef<string> }, rounds: number) => {
    const { get, put, wait } = await import('miniray');
    const seen: string[] = [];
    for (let i = 0; i < rounds; i++) {
      const fresh = put(i);
      for (const ref of [refs.ready, fresh]) {
        seen.push(`get ${await get(ref, { timeoutMs: 0 }).catch((error: Error) => error.name)}`);
        seen.push(`ready ${(await wait([ref], { timeoutMs: 0 })).ready.length}`);
      }
      seen.push(`held ${await get(refs.held, { timeoutMs: 0 }).catch((error: Error) => error.name)}`);
      const both = await wait([refs.ready, refs.held], { numReturns: 2, timeoutMs: 0 });
      seen.push(`both ${both.ready.length}/${both.pending.length}`);
    }
    return seen;
  });
  const rounds = 20;
  const seen = await get(poll.remote({ ready: put(42), held }, rounds));
  const expected = Array.from({ length: rounds }, (_, i) => ['get 42', 'ready 1', `get ${i}`, 'ready 1', 'held GetTimeoutError', 'both 1/1']).flat();
  assert.deepEqual(seen, expected);
  gate.open();
  assert.equal(await get(held), 'late');
  gate.close();
});
