// Ownership across nodes, on real processes: an actor on the other node owns what it puts, the
// tasks it submits and the actors it creates, and they end with it, as in Ray. The driver reads
// them while the actor lives (also while it runs code that never yields: its node serves them),
// kills it, and each then fails at once with the owner's error.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster, resultsOf } from './harness.js';

interface Outcome {
  readonly value?: string;
  readonly error?: string;
  readonly message?: string;
  readonly ms: number;
}

describe('ownership across nodes', { timeout: 300_000 }, () => {
  let cluster: Cluster | undefined;
  before(async () => {
    cluster = await Cluster.start({ numCpus: 1 }, [{ numCpus: 1 }]);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("what an actor on another node owns ends with it: its put()s (small and large), its child task, its actor", async () => {
    const [handed, first, busy, second] = (await (cluster as Cluster).run('ownership.mjs', [], { timeoutMs: 180_000 })) as [
      { handed: Record<string, Outcome> },
      { before: Record<string, Outcome> },
      { busy: Record<string, Outcome> },
      { after: Record<string, Outcome> },
    ];
    assert.deepEqual(
      Object.fromEntries(Object.entries(handed?.handed ?? {}).map(([key, o]) => [key, o.value ?? o.error])),
      { small: 'small', ping: 'pong' },
      `refs returned inside a value live while it travels, though their owner let go of its own: ${JSON.stringify(handed?.handed)}`,
    );
    assert.deepEqual(
      Object.fromEntries(Object.entries(first?.before ?? {}).map(([key, o]) => [key, o.value ?? o.error])),
      { small: 'small', large: 'Float64Array(1048576)', ping: 'pong' },
      `readable while their owner lives: ${JSON.stringify(first?.before)}`,
    );
    assert.deepEqual(
      Object.fromEntries(Object.entries(busy?.busy ?? {}).map(([key, o]) => [key, o.value ?? o.error])),
      { small: 'small', large: 'Float64Array(1048576)', spin: 'still spinning', released: 'released' },
      `readable while their owner runs code that never yields (its node keeps its tables): ${JSON.stringify(busy?.busy)}`,
    );
    const afterKill = second?.after ?? {};
    for (const key of ['small', 'large', 'child'] as const) {
      const o = afterKill[key] as Outcome;
      assert.equal(o.error, 'OwnerDiedError', `${key}: ${JSON.stringify(o)}`);
      assert.match(o.message ?? '', /was owned by worker \w{8} \(the thread of actor Maker\), which ended/, key);
      assert.ok(o.ms < 5_000, `${key} failed at once, not after a wait (${o.ms} ms)`);
    }
    const ping = afterKill['ping'] as Outcome;
    assert.equal(ping.error, 'ActorDiedError', JSON.stringify(ping));
    assert.match(ping.message ?? '', /is dead: its owner, worker \w{8} \(the thread of actor Maker\), ended/);
    assert.ok(ping.ms < 5_000, `the call failed at once (${ping.ms} ms)`);
  });
});
