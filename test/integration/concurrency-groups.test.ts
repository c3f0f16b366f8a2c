// Concurrency groups and per-method options from the installed package, after Ray's
// python/ray/tests/test_concurrency_group.py: each group runs up to its limit of calls at once,
// apart from the others; a method's group and numReturns come from the class's static
// methodOptions or from one call's .options().
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidOptionError, get, init, remote, shutdown } from 'miniray';

const T = { timeout: 60_000 };

class Groups {
  static readonly methodOptions = {
    fetch: { concurrencyGroup: 'io' },
    crunch: { concurrencyGroup: 'compute' },
    split: { numReturns: 2 },
  } as const;
  private running: Record<string, number> = {};
  private peak: Record<string, number> = {};
  private async track(group: string, ms: number): Promise<number> {
    this.running[group] = (this.running[group] ?? 0) + 1;
    this.peak[group] = Math.max(this.peak[group] ?? 0, this.running[group] ?? 0);
    await new Promise((resolve) => setTimeout(resolve, ms));
    this.running[group] = (this.running[group] ?? 1) - 1;
    return this.peak[group] ?? 0;
  }
  async fetch(ms: number): Promise<number> {
    return this.track('io', ms);
  }
  async crunch(ms: number): Promise<number> {
    return this.track('compute', ms);
  }
  async other(ms: number): Promise<number> {
    return this.track('default', ms);
  }
  split(x: number): [number, string] {
    return [x * 2, `x=${x}`];
  }
  peaks(): Record<string, number> {
    return this.peak;
  }
}

before(() => init({ numCpus: 2 }));
after(() => shutdown());

describe('test_concurrency_group', () => {
  test('test_basic: each group runs up to its limit at once (io: 2, compute: 1), apart from the default group', T, async () => {
    const actor = remote(Groups).options({ concurrencyGroups: { io: 2, compute: 1 }, maxConcurrency: 3 }).remote();
    const refs = [
      ...Array.from({ length: 6 }, () => actor.fetch.remote(50)),
      ...Array.from({ length: 4 }, () => actor.crunch.remote(50)),
      ...Array.from({ length: 6 }, () => actor.other.remote(50)),
    ];
    await get(refs);
    const peaks = await get(actor.peaks.remote());
    assert.deepEqual(peaks, { io: 2, compute: 1, default: 3 });
  });

  test('test_specify_group_at_call: .options({ concurrencyGroup }) puts one call in a group', T, async () => {
    const actor = remote(Groups).options({ concurrencyGroups: { io: 2, compute: 1 } }).remote();
    // `other` runs in 'compute' (limit 1) for these calls: never two at once.
    await get(Array.from({ length: 4 }, () => actor.other.options({ concurrencyGroup: 'compute' }).remote(30)));
    const peaks = await get(actor.peaks.remote());
    assert.equal(peaks['default'], 1);
  });

  test('a group the actor does not have is refused, naming the groups it has', () => {
    assert.throws(
      () => remote(Groups).options({ concurrencyGroups: { io: 2 } }).remote(),
      (error: unknown) => error instanceof InvalidOptionError && /'compute'/.test(error.message) && /'io'/.test(error.message),
    );
    assert.throws(() => remote(Groups).options({ concurrencyGroups: { io: 0, compute: 1 } }), InvalidOptionError);
  });
});

describe('per-method options', () => {
  test('static methodOptions numReturns: 2 gives two refs (typed as such)', T, async () => {
    const actor = remote(Groups).options({ concurrencyGroups: { io: 2, compute: 1 } }).remote();
    const [double, label] = actor.split.remote(21);
    assert.equal(await get(double), 42);
    assert.equal(await get(label), 'x=21');
  });

  test('.options({ numReturns }) on one call', T, async () => {
    class Pair {
      pair(): [number, number] {
        return [1, 2];
      }
    }
    const actor = remote(Pair).remote();
    const [a, b] = actor.pair.options({ numReturns: 2 }).remote();
    assert.deepEqual(await get([a, b]), [1, 2]);
    // numReturns 0, as a task's: the call runs for its effects and gives nothing to wait on.
    assert.equal(actor.pair.options({ numReturns: 0 }).remote(), undefined);
    assert.throws(() => actor.pair.options({ numReturns: -1 }), InvalidOptionError);
  });
});
