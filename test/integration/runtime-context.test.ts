// getRuntimeContext(), after python/ray/tests/test_runtime_context.py: the IDs of the job, task,
// actor, node and worker, the current actor's handle, wasCurrentActorReconstructed, runtimeEnv,
// and auto-init before init().
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ActorDiedError, MinirayError, get, getRuntimeContext, isInitialized, kill, remote, shutdown } from 'miniray';

const taskContext = remote(async () => {
  const { getRuntimeContext } = await import('miniray');
  const ctx = getRuntimeContext();
  let actorError = '';
  try {
    void ctx.currentActor;
  } catch (error) {
    actorError = (error as Error).message;
  }
  return { jobId: ctx.jobId, taskId: ctx.taskId, actorId: ctx.actorId, nodeId: ctx.nodeId, workerId: ctx.workerId, namespace: ctx.namespace, isDriver: ctx.isDriver, actorError, aborted: ctx.signal.aborted };
});

class Reporter {
  async ids(): Promise<{ actorId: string | undefined; taskId: string | undefined; handleId: string; reconstructed: boolean }> {
    const { getRuntimeContext } = await import('miniray');
    const ctx = getRuntimeContext();
    return { actorId: ctx.actorId, taskId: ctx.taskId, handleId: ctx.currentActor.actorId.toHex(), reconstructed: ctx.wasCurrentActorReconstructed };
  }
  /** Calls itself through its own handle (the way Ray's tests use current_actor). */
  async callSelf(): Promise<string> {
    const { getRuntimeContext, get } = await import('miniray');
    const self = getRuntimeContext<Reporter>().currentActor;
    return get(self.ping.remote());
  }
  ping(): string {
    return 'pong';
  }
  die(): never {
    process.exit(1);
  }
}

/** Two async calls that overlap on one worker: `first` waits until `second` has run. */
class Overlap {
  private release: (() => void) | undefined;
  private readonly released = new Promise<void>((resolve) => (this.release = resolve));
  private hasRead: (() => void) | undefined;
  private readonly read = new Promise<void>((resolve) => (this.hasRead = resolve));
  async first(): Promise<{ before: string | undefined; kept: string | undefined; after: string | undefined }> {
    const { getRuntimeContext } = await import('miniray');
    const ctx = getRuntimeContext();
    const before = ctx.taskId;
    this.hasRead?.();
    await this.released;
    return { before, kept: ctx.taskId, after: getRuntimeContext().taskId };
  }
  /** Resolves once `first` has made its context. */
  async firstHasRead(): Promise<void> {
    await this.read;
  }
  async second(): Promise<string | undefined> {
    const { getRuntimeContext } = await import('miniray');
    const id = getRuntimeContext().taskId;
    this.release?.();
    return id;
  }
}

describe('getRuntimeContext', () => {
  after(() => shutdown());

  test('test_auto_init: getRuntimeContext() before init() starts miniray with the defaults', () => {
    assert.equal(isInitialized(), false);
    const ctx = getRuntimeContext();
    assert.equal(isInitialized(), true);
    assert.equal(ctx.isDriver, true);
    assert.match(ctx.nodeId, /^[0-9a-f]{32}$/);
    assert.equal(ctx.taskId, undefined);
    assert.equal(ctx.actorId, undefined);
    assert.equal(ctx.signal.aborted, false);
    assert.deepEqual(ctx.runtimeEnv, {});
    assert.throws(() => ctx.currentActor, MinirayError);
  });

  test('test_get_context_dict: a task sees its job, task, node and worker IDs', async () => {
    const driver = getRuntimeContext();
    const ref = taskContext.remote();
    const seen = await get(ref);
    // The job's ID comes from the GCS (Ray's 4-byte hex); the driver and its tasks agree on it.
    await waitFor(() => getRuntimeContext().jobId !== '');
    assert.match(getRuntimeContext().jobId, /^[0-9a-f]{8}$/);
    assert.equal(seen.jobId === '' || seen.jobId === getRuntimeContext().jobId, true);
    const again = await get(taskContext.remote());
    assert.equal(again.jobId, getRuntimeContext().jobId);
    assert.match(seen.taskId ?? '', /^[0-9a-f]{32}$/);
    assert.notEqual(seen.taskId, again.taskId);
    assert.equal(seen.actorId, undefined);
    assert.equal(seen.nodeId, driver.nodeId);
    assert.notEqual(seen.workerId, driver.workerId);
    // No init({ namespace }): an anonymous namespace of the job's own, as Ray's (a UUID), the same in its tasks.
    assert.match(driver.namespace, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(seen.namespace, driver.namespace);
    assert.equal(seen.isDriver, false);
    assert.match(seen.actorError, /only available in an actor/);
    assert.equal(seen.aborted, false);
  });

  test('test_current_actor: an actor gets its own ID and a handle to itself', async () => {
    const actor = remote(Reporter).remote();
    const ids = await get(actor.ids.remote());
    assert.equal(ids.actorId, actor.actorId.toHex());
    assert.equal(ids.handleId, actor.actorId.toHex());
    assert.match(ids.taskId ?? '', /^[0-9a-f]{32}$/);
    assert.equal(ids.reconstructed, false);
    assert.equal(await get(actor.callSelf.remote()), 'pong');
    kill(actor);
  });

  test('documented limit: a context read after an await names the call that ran last when calls overlap; one made before keeps naming its own', async () => {
    const actor = remote(Overlap).options({ maxConcurrency: 3 }).remote();
    const first = actor.first.remote();
    await get(actor.firstHasRead.remote());
    const secondId = await get(actor.second.remote());
    const seen = await get(first);
    assert.notEqual(seen.before, secondId);
    assert.equal(seen.kept, seen.before, 'the context made before the await still names its call');
    assert.equal(seen.after, secondId, 'getRuntimeContext() after the await names the other call (see docs/runtime-env.md)');
    kill(actor);
  });

  test('test_was_current_actor_reconstructed: true after a restart', async () => {
    const actor = remote(Reporter).options({ maxRestarts: 1 }).remote();
    assert.equal((await get(actor.ids.remote())).reconstructed, false);
    await assert.rejects(get(actor.die.remote()), ActorDiedError);
    assert.equal((await get(actor.ids.remote())).reconstructed, true);
    kill(actor);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setImmediate(resolve));
  }
}
