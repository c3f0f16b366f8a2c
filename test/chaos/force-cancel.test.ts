// Chaos: random force-cancels of running tasks among a stream of tasks. Seeded victims, spread
// through the stream, say that they started and then never end; the driver force-cancels each one
// as soon as it hears it run (so its worker is terminated mid-task, with other tasks queued behind
// it). Nothing else may be cancelled, every other task's result must be right, and the pool must
// carry on afterwards.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BroadcastChannel } from 'node:worker_threads';
import { after, before, test } from 'node:test';
import { TaskCancelledError, cancel, get, init, remote, shutdown, type ObjectRef } from 'miniray';
import { report, scaled } from './figures.js';

const TASKS = scaled(2_000);
const VICTIM_RATE = 0.01;
const LIMIT_MS = 150_000;

/**
 * A victim (channelName given) says `started:<index>` and then waits forever, as a task that only
 * terminating its thread stops; any other returns `index * 7` at once. The others are synchronous,
 * so that a worker runs a batch of them back to back and reaches a victim queued behind them
 * before it reads any message (a cancel of that victim, say).
 */
const work = remote((index: number, channelName: string | null): number | Promise<number> => {
  if (channelName === null) return index * 7;
  new BroadcastChannel(channelName).postMessage(`started:${index}`);
  return new Promise<number>(() => {
    setInterval(() => {}, 50);
  });
});

function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

before(() => init({ numWorkers: 2, numCpus: 2 }));
after(() => shutdown());

test(`force-cancels among ${TASKS} tasks (~${VICTIM_RATE * 100}% victims)`, { timeout: LIMIT_MS + 30_000 }, async () => {
  const seed = Number(process.env.MINIRAY_CHAOS_SEED ?? 20_261_202);
  const random = seeded(seed);
  const channelName = `chaos-cancel-${randomUUID()}`;
  const channel = new BroadcastChannel(channelName);
  const startedAt = performance.now();
  const refs: ObjectRef<number>[] = [];
  const victims = new Set<number>();
  const cancelledAt = new Set<number>();
  channel.onmessage = (event) => {
    const index = Number(String((event as MessageEvent).data).slice('started:'.length));
    if (cancelledAt.has(index)) return;
    cancelledAt.add(index);
    cancel(refs[index] as ObjectRef<number>, { force: true });
  };
  try {
    // Submitted in bursts, so that victims start while other tasks are queued and pipelined. Half
    // the victims are cancelled when heard running; the other half just after the node has sent
    // them to a worker (a microtask queued after the node's dispatch), so that the cancel travels
    // right behind the task, which the worker may start before it reads the cancel.
    for (let i = 0; i < TASKS; i++) {
      const victim = random() < VICTIM_RATE;
      if (victim) victims.add(i);
      const ref = work.remote(i, victim ? channelName : null);
      refs.push(ref);
      if (victim && random() < 0.5) {
        queueMicrotask(() => {
          cancelledAt.add(i);
          cancel(ref, { force: true });
        });
      }
      if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
    const settled = await Promise.allSettled(refs.map((ref) => get(ref, { timeoutMs: LIMIT_MS })));
    let wrong = 0;
    let lost = 0;
    let hung = 0;
    let bystandersCancelled = 0;
    let victimsCancelled = 0;
    settled.forEach((outcome, i) => {
      if (victims.has(i)) {
        if (outcome.status === 'rejected' && outcome.reason instanceof TaskCancelledError) victimsCancelled++;
        else if (outcome.status === 'rejected' && (outcome.reason as Error).name === 'GetTimeoutError') hung++;
        else wrong++;
      } else if (outcome.status === 'fulfilled') {
        if (outcome.value !== i * 7) wrong++;
      } else if (outcome.reason instanceof TaskCancelledError) bystandersCancelled++;
      else if ((outcome.reason as Error).name === 'GetTimeoutError') hung++;
      else lost++;
    });
    // The pool carries on: a fresh batch on the replaced workers.
    const after = await get(
      Array.from({ length: 200 }, (_, i) => work.remote(i, null)),
      { timeoutMs: 60_000 },
    );
    const afterRight = after.every((value, i) => value === i * 7);
    report('force-cancel', {
      seed,
      tasks: TASKS,
      victims: victims.size,
      cancels: cancelledAt.size,
      victimsCancelled,
      bystandersCancelled,
      lost,
      wrong,
      hung,
      poolCarriesOn: afterRight,
      seconds: ((performance.now() - startedAt) / 1000).toFixed(1),
    });
    assert.equal(victimsCancelled, victims.size, 'every victim was cancelled');
    assert.equal(bystandersCancelled, 0, 'a task that was not cancelled failed as cancelled');
    assert.equal(lost, 0);
    assert.equal(wrong, 0);
    assert.equal(hung, 0);
    assert.ok(afterRight, 'the pool gave wrong results after the cancels');
  } finally {
    channel.close();
  }
});
