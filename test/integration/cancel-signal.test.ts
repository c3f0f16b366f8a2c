// cancel() without force stops a cooperating task through getRuntimeContext().signal; recursive
// cancel reaches a task's children; actor calls are cancelled too (queued: removed; running:
// their signal aborted). After python/ray/tests/test_cancel.py.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ObjectRef, TaskCancelledError, cancel, get, init, remote, shutdown } from 'miniray';
import { Gate, listenFor } from '../fixtures/coordination.js';

/** Says 'started', waits for its signal to abort, says 'aborted:<reason's name>', and returns. */
const untilAborted = remote(async (channelName: string) => {
  const { getRuntimeContext } = await import('miniray');
  const { signal } = getRuntimeContext();
  const channel = new BroadcastChannel(channelName);
  channel.postMessage('started');
  await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
  channel.postMessage(`aborted:${(signal.reason as Error).name}`);
  channel.close();
  return 'stopped';
});

/** Submits untilAborted as a child and waits for it (its own signal is never read). */
const parentOf = remote(async (channelName: string) => {
  const { get, remote } = await import('miniray');
  const child = remote(async (name: string) => {
    const { getRuntimeContext } = await import('miniray');
    const { signal } = getRuntimeContext();
    const channel = new BroadcastChannel(name);
    channel.postMessage('child-started');
    await new Promise((resolve) => {
      signal.addEventListener('abort', resolve, { once: true });
      channel.onmessage = (event) => {
        if ((event as MessageEvent).data === 'finish') resolve(undefined);
      };
    });
    channel.postMessage(signal.aborted ? 'child-aborted' : 'child-finished');
    channel.close();
    return 'child done';
  });
  return get(child.remote(channelName));
});

class Worker {
  /** Waits behind a gate (blocking the actor's only slot). */
  async hold(gateName: string): Promise<string> {
    const channel = new BroadcastChannel(gateName);
    await new Promise<void>((resolve) => {
      channel.onmessage = (event) => {
        if ((event as MessageEvent).data === 'open') resolve();
      };
      channel.postMessage('waiting');
    });
    channel.close();
    return 'held';
  }
  ping(): string {
    return 'pong';
  }
  async untilAborted(channelName: string): Promise<string> {
    const { getRuntimeContext } = await import('miniray');
    const { signal } = getRuntimeContext();
    const channel = new BroadcastChannel(channelName);
    channel.postMessage('started');
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    channel.postMessage(`aborted:${(signal.reason as Error).name}`);
    channel.close();
    return 'stopped';
  }
}

async function rejectsCancelled(ref: ObjectRef<unknown>): Promise<void> {
  await assert.rejects(get(ref, { timeoutMs: 30_000 }), TaskCancelledError);
}

describe('cancel with the runtime context signal', () => {
  before(() => init({ numCpus: 2 }));
  after(() => shutdown());

  test('test_cancel_async_task: cancel() without force aborts the signal of a running async task', async () => {
    const name = `cancel-${randomUUID()}`;
    const started = listenFor(name, 'started');
    const aborted = listenFor(name, 'aborted:TaskCancelledError');
    const ref = untilAborted.remote(name);
    await started.heard;
    cancel(ref);
    await rejectsCancelled(ref);
    await aborted.heard; // the task saw it and stopped
    started.close();
    aborted.close();
  });

  test('test_recursive_cancel: cancelling a task cancels its children (recursive: true, the default)', async () => {
    const name = `recursive-${randomUUID()}`;
    const childStarted = listenFor(name, 'child-started');
    const childAborted = listenFor(name, 'child-aborted');
    const ref = parentOf.remote(name);
    await childStarted.heard;
    cancel(ref);
    await rejectsCancelled(ref);
    await childAborted.heard;
    childStarted.close();
    childAborted.close();
  });

  test('test_recursive_cancel: with recursive: false the children run on', async () => {
    const name = `not-recursive-${randomUUID()}`;
    const childStarted = listenFor(name, 'child-started');
    const childFinished = listenFor(name, 'child-finished');
    const ref = parentOf.remote(name);
    await childStarted.heard;
    cancel(ref, { recursive: false });
    await rejectsCancelled(ref);
    const channel = new BroadcastChannel(name);
    channel.postMessage('finish');
    await childFinished.heard;
    channel.close();
    childStarted.close();
    childFinished.close();
  });

  test('test_cancel_actor_task: a queued actor call is removed; the actor goes on', async () => {
    const actor = remote(Worker).options({ maxConcurrency: 1 }).remote();
    const gate = new Gate();
    const holding = actor.hold.remote(gate.name);
    await gate.whenWaiting(1, 30_000);
    const queued = actor.ping.remote();
    cancel(queued);
    await rejectsCancelled(queued);
    gate.open();
    assert.equal(await get(holding), 'held');
    assert.equal(await get(actor.ping.remote()), 'pong');
    gate.close();
  });

  test('test_cancel_async_actor_task: a running async actor call has its signal aborted', async () => {
    const actor = remote(Worker).remote();
    const name = `actor-${randomUUID()}`;
    const started = listenFor(name, 'started');
    const aborted = listenFor(name, 'aborted:TaskCancelledError');
    const ref = actor.untilAborted.remote(name);
    await started.heard;
    cancel(ref);
    await rejectsCancelled(ref);
    await aborted.heard;
    assert.equal(await get(actor.ping.remote()), 'pong');
    started.close();
    aborted.close();
  });
});
