// Where the merge of generators (main) and actor lifetimes, concurrency groups and per-method
// options (h-actors) meet: a generator method streams in its concurrency group, through a handle
// that travelled to a task (owner, methodOptions and generatorMethods in one shape), and through a
// getIfExists handle built from the node's actor table.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { get, init, remote, shutdown, type ActorHandle, type ObjectRefGenerator } from 'miniray';

const T = { timeout: 60_000 };

async function collect<X>(gen: ObjectRefGenerator<X>): Promise<X[]> {
  const values: X[] = [];
  for await (const ref of gen) values.push(await get(ref));
  return values;
}

class Mixed {
  static readonly methodOptions = {
    items: { concurrencyGroup: 'io' },
    release: { concurrencyGroup: 'ctl' },
  } as const;
  private open: (() => void) | undefined;
  private readonly opened = new Promise<void>((resolve) => {
    this.open = resolve;
  });
  async hold(): Promise<string> {
    await this.opened;
    return 'released';
  }
  release(): void {
    this.open?.();
  }
  *items(n: number): Generator<number> {
    for (let i = 0; i < n; i++) yield i * i;
  }
  pair(x: number): [number, number] {
    return [x, -x];
  }
}

const MixedActor = remote(Mixed).options({ maxConcurrency: 1, concurrencyGroups: { io: 1, ctl: 1 } });

before(() => init({ numCpus: 2 }));
after(() => shutdown());

describe('actor generator methods with lifetimes and concurrency groups', () => {
  test('a generator method streams in its own group while the default group is busy; numReturns still splits', T, async () => {
    const actor = MixedActor.remote();
    const held = actor.hold.remote(); // takes the default group's one slot until release()
    assert.deepEqual(await collect(actor.items.remote(3)), [0, 1, 4]);
    actor.release.remote();
    assert.equal(await get(held), 'released');
    const [plus, minus] = actor.pair.options({ numReturns: 2 }).remote(3);
    assert.deepEqual(await get([plus, minus]), [3, -3]);
  });

  test('a counted handle passed to a task keeps its generator methods: the task streams from it', T, async () => {
    const actor = MixedActor.remote();
    const useHandle = remote(async (handle: ActorHandle<Mixed>) => {
      const miniray = await import('miniray');
      const values: number[] = [];
      for await (const ref of handle.items.remote(4)) values.push(await miniray.get(ref));
      return values;
    });
    assert.deepEqual(await get(useHandle.remote(actor)), [0, 1, 4, 9]);
    assert.deepEqual(await collect(actor.items.remote(2)), [0, 1]);
  });

  test('a getIfExists handle (from the node\'s actor table) streams from a generator method', T, async () => {
    const name = `gen-if-exists-${process.pid}`;
    const first = MixedActor.options({ name, getIfExists: true }).remote();
    const second = MixedActor.options({ name, getIfExists: true }).remote();
    assert.equal(second.actorId.toHex(), first.actorId.toHex());
    assert.deepEqual(await collect(second.items.remote(3)), [0, 1, 4]);
  });
});
