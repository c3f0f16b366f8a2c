// Resources, GPUs, scheduling strategies and the cluster's tables in the embedded default (one
// node, a GCS in this process): the same API a cluster has, with nothing to join.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InvalidOptionError, availableResources, kill, clusterResources, get, getRuntimeContext, init, nodes, remote, shutdown, wait } from 'miniray';
import { rejectsWith } from '../fixtures/assertions.js';
import { Gate, waitForGate } from '../fixtures/coordination.js';

const T = { timeout: 60_000 };

describe('resources in the embedded default', () => {
  before(async () => {
    await init({ numWorkers: 3, numCpus: 3, numGpus: 1, resources: { disk: 2 } });
  });
  after(async () => {
    await shutdown();
  });

  test('nodes(), clusterResources() and availableResources() show this one node, from the driver and from a task', T, async () => {
    const [node] = await nodes();
    assert.equal((await nodes()).length, 1);
    assert.equal(node?.nodeId, getRuntimeContext().nodeId);
    assert.equal(node?.alive, true);
    assert.deepEqual(node?.resources, { CPU: 3, GPU: 1, disk: 2 });
    assert.deepEqual(await clusterResources(), { CPU: 3, GPU: 1, disk: 2 });
    const fromTask = remote(async () => {
      // A task asks the same tables its driver does, through its node.
      const { nodes: list, clusterResources: totals } = await import('miniray');
      return { count: (await list()).length, totals: await totals() };
    });
    assert.deepEqual(await get(fromTask.remote()), { count: 1, totals: { CPU: 3, GPU: 1, disk: 2 } });
    const available = await availableResources();
    assert.ok(available['CPU'] !== undefined && available['CPU'] <= 3, JSON.stringify(available));
  });

  test('a task holds the GPUs it asks for: of two tasks needing the 1 GPU, the second starts when the first ends', T, async () => {
    const gate = new Gate();
    try {
      const onGpu = waitForGate.options({ numGpus: 1, numCpus: 0 });
      const [a, b] = [onGpu.remote(gate.name, 'a'), onGpu.remote(gate.name, 'b')];
      await gate.whenWaiting(1);
      // With CPUs to spare (numCpus: 0), only the GPU keeps the second from starting beside the first.
      await assert.rejects(gate.whenWaiting(2, 500), /only 1 of 2 tasks started/);
      gate.open();
      assert.deepEqual(await get([a, b]), ['a', 'b']);
    } finally {
      gate.close();
    }
  });

  test('an actor holds its GPU while it lives: a task needing it starts once the actor is killed', T, async () => {
    class OnGpu {
      ping(): string {
        return 'pong';
      }
    }
    const actor = remote(OnGpu, { numGpus: 1 }).remote();
    assert.equal(await get(actor.ping.remote()), 'pong');
    const gpuTask = remote(() => 'ran on the GPU', { numGpus: 1, numCpus: 0 });
    const ref = gpuTask.remote();
    const { ready } = await wait([ref], { timeoutMs: 500 });
    assert.equal(ready.length, 0, 'the task started while the actor held the only GPU');
    kill(actor);
    assert.equal(await get(ref), 'ran on the GPU');
  });

  test('a task asking for more of a resource than any node has fails at once in the embedded default, naming it', T, async () => {
    const big = remote(() => 1, { resources: { disk: 3 } });
    await rejectsWith(get(big.remote()), InvalidOptionError, /needs 1 CPU, 3 disk but this node has 3 CPU, 1 GPU, 2 disk/);
    const gpus = remote(() => 1, { numGpus: 2 });
    await rejectsWith(get(gpus.remote()), InvalidOptionError, /2 GPU/);
    const ok = remote(() => 'ran', { resources: { disk: 1 } });
    assert.equal(await get(ok.remote()), 'ran');
  });

  test('schedulingStrategy: this node by ID runs here; another ID fails with the option named; soft falls back', T, async () => {
    const here = getRuntimeContext().nodeId;
    const where = remote(() => 'here');
    assert.equal(await get(where.options({ schedulingStrategy: { nodeId: here } }).remote()), 'here');
    assert.equal(await get(where.options({ schedulingStrategy: 'SPREAD' }).remote()), 'here');
    const elsewhere = 'f'.repeat(32);
    const error = await rejectsWith(get(where.options({ schedulingStrategy: { nodeId: elsewhere } }).remote()), InvalidOptionError, /is not an alive node/);
    assert.equal(error.option, 'schedulingStrategy');
    assert.equal(await get(where.options({ schedulingStrategy: { nodeId: elsewhere, soft: true } }).remote()), 'here');
    const { ready } = await wait([where.remote()], { timeoutMs: 30_000 });
    assert.equal(ready.length, 1);
  });

  test('bad resource and strategy options are refused at once, naming the option and the fix', T, async () => {
    const fn = () => 1;
    assert.throws(() => remote(fn, { resources: { CPU: 1 } }), (e: unknown) => e instanceof InvalidOptionError && /give 'CPU' with numCpus/.test(e.message));
    assert.throws(() => remote(fn, { resources: { disk: -1 } }), (e: unknown) => e instanceof InvalidOptionError && /resource 'disk'/.test(e.message));
    assert.throws(() => remote(fn, { numGpus: -1 }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'numGpus');
    assert.throws(() => remote(fn, { schedulingStrategy: 'NEAR' as 'SPREAD' }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'schedulingStrategy');
    assert.throws(() => remote(fn, { schedulingStrategy: { nodeId: 'abc' } }), (e: unknown) => e instanceof InvalidOptionError && /32 hex/.test(e.message));
    await assert.rejects(init({ address: '' }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'address');
  });
});
