// Reference counting in the object store (issue 3): an object lives exactly as long as something
// refers to it: refs in the driver (collected by the garbage collector), tasks it is an argument
// of, objects it is nested in. gc() comes from test/fixtures/gc.ts, so this runs under plain
// `npm test`; waiting for the collector is a loop of gc() and event-loop turns with a deadline.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ObjectRef, get, init, memory, put, remote, shutdown, type ObjectInfo } from 'miniray';
import { Gate } from '../fixtures/coordination.js';
import { collectRounds, collectUntil, gc } from '../fixtures/gc.js';
import { firstByte, holdUntilOpen, readNestedWhenOpen } from '../fixtures/object-store-tasks.js';

const MB = 1024 * 1024;

const entry = (hex: string): ObjectInfo | undefined => memory().objects.find((object) => object.id === hex);
const listed = (hex: string) => entry(hex) !== undefined;
const heldByDriver = (hex: string) => entry(hex)?.referencedBy.includes('driver') ?? false;
const arenaUsed = () => memory().store.arena.usedBytes;
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
const identity = remote((value: unknown) => value);

describe('object store: reference counting', () => {
  before(() => init({ numWorkers: 2, objectStoreMemory: 256 * MB }));
  after(() => shutdown());

  test('objects put and dropped are freed after garbage collection, and store memory goes down', async () => {
    await collectRounds(); // let earlier garbage go first
    const baseline = memory().store.usedBytes;
    const ids = (() => {
      const refs = [put(new Uint8Array(MB)), put(new Float64Array(MB / 8)), put(new Uint8Array(3 * MB)), put({ small: [1, 2, 3] })];
      return refs.map((ref) => ref.hex);
    })();
    for (const id of ids) assert.ok(listed(id), 'memory() does not list a live object');
    assert.ok(memory().store.usedBytes >= baseline + 5 * MB);
    await collectUntil(() => ids.every((id) => !listed(id)), 'the dropped objects leaving memory()');
    await collectUntil(() => memory().store.usedBytes <= baseline, `store usedBytes going back to ${baseline}`);
  });

  test('an object read with get() is freed once both its ref and its value are collected', async () => {
    await collectRounds();
    const baseline = arenaUsed();
    const id = await (async () => {
      const ref = put(new Float64Array(MB / 4).fill(1));
      const value = await get(ref);
      assert.equal(value[0], 1);
      return ref.hex;
    })();
    await collectUntil(() => !listed(id) && arenaUsed() <= baseline, 'the object and its memory being freed');
  });

  test('a view outlives its dropped ref: its memory is neither reused nor changed until the view is collected', async () => {
    await collectRounds();
    const baseline = arenaUsed();
    let id = '';
    let view: Uint8Array | undefined = await (async () => {
      const ref = put(new Uint8Array(2 * MB).fill(5));
      id = ref.hex;
      return get(ref);
    })();
    await collectUntil(() => !listed(id), 'the object leaving memory() once its ref is collected');
    assert.ok(arenaUsed() >= baseline + 2 * MB, 'the memory under a live view was given back');
    // New objects do not land in the memory under the view.
    const others = [put(new Uint8Array(2 * MB).fill(9)), put(new Uint8Array(2 * MB).fill(9)), put(new Uint8Array(MB).fill(9))];
    assert.ok(view.every((byte) => byte === 5), 'the view\'s memory was reused');
    assert.equal(others.length, 3);
    view = undefined;
    others.length = 0;
    await collectUntil(() => arenaUsed() <= baseline, 'the memory going once the view is collected');
  });

  test('an object nested inside another stays alive while the outer lives, and goes after it', async () => {
    await collectRounds();
    const holder: { outer?: ObjectRef<{ inner: ObjectRef<Uint8Array> }> } = {};
    const innerId = (() => {
      const inner = put(new Uint8Array(MB).fill(8));
      holder.outer = put({ inner });
      return inner.hex;
    })();
    put(null); // a later encode (see the report: the encoder keeps the last value it encoded)
    const outerId = (holder.outer as ObjectRef).hex;
    await collectUntil(() => !heldByDriver(innerId), 'the driver\'s ref to the inner object being collected');
    await collectRounds();
    const innerEntry = entry(innerId);
    assert.ok(innerEntry, 'the inner object was freed while the outer one lives');
    assert.deepEqual(innerEntry.referencedBy, [`inside ${outerId}`]);
    // Still readable through the outer object.
    const firstInnerByte = await (async () => {
      const outer = await get(holder.outer as ObjectRef<{ inner: ObjectRef<Uint8Array> }>);
      assert.ok(outer.inner instanceof ObjectRef);
      return (await get(outer.inner))[0];
    })();
    assert.equal(firstInnerByte, 8);
    holder.outer = undefined;
    await collectUntil(() => !listed(outerId) && !listed(innerId), 'the outer and then the inner object being freed');
  });

  test('an object passed as a task argument stays alive until the task finishes, though the driver dropped its ref', async () => {
    const gate = new Gate();
    try {
      const holder: { result?: ObjectRef<number> } = {};
      const id = (() => {
        const ref = put(new Uint8Array(MB).fill(3));
        holder.result = holdUntilOpen.remote(ref, gate.name);
        return ref.hex;
      })();
      await gate.whenWaiting(1);
      put(null); // a later encode (see the report: the encoder keeps the last value it encoded)
      await collectUntil(() => !heldByDriver(id), 'the driver\'s ref being collected');
      await collectRounds();
      const held = entry(id);
      assert.ok(held, 'an argument of a running task was freed');
      assert.ok(held.referencedBy.some((why) => why.startsWith('argument of task')), `referencedBy: ${held.referencedBy.join(', ')}`);
      gate.open();
      assert.equal(await get(holder.result as ObjectRef<number>), 6);
    } finally {
      gate.close();
    }
  });

  test('an argument of a task still waiting for another argument stays alive, and the task reads it intact', async () => {
    const gate = new Gate();
    try {
      const holder: { blocker?: ObjectRef<number>; result?: ObjectRef<number> } = {};
      const id = (() => {
        const ref = put(new Uint8Array(MB).fill(4));
        holder.blocker = holdUntilOpen.remote(new Uint8Array([1, 2]), gate.name);
        holder.result = firstByte.remote(ref, holder.blocker);
        return ref.hex;
      })();
      put(null); // a later encode (see the report)
      await gate.whenWaiting(1);
      await collectUntil(() => !heldByDriver(id), 'the driver\'s ref being collected');
      // Fill the store with other objects meanwhile: the argument must survive intact.
      const others = Array.from({ length: 8 }, () => put(new Uint8Array(MB).fill(0xee)));
      assert.ok(listed(id), 'an argument of a waiting task was freed');
      gate.open();
      assert.equal(await get(holder.result as ObjectRef<number>), 4);
      assert.equal(others.length, 8);
    } finally {
      gate.close();
    }
  });

  test('a ref nested in a task argument stays alive until the task reads it, though the driver dropped it', async () => {
    const gate = new Gate();
    try {
      const holder: { result?: ObjectRef<number> } = {};
      const id = (() => {
        const ref = put(new Uint8Array(MB).fill(6));
        holder.result = readNestedWhenOpen.remote({ ref }, gate.name);
        return ref.hex;
      })();
      await gate.whenWaiting(1);
      put(null); // a later encode (see the report)
      await collectUntil(() => !heldByDriver(id), 'the driver\'s ref being collected');
      await collectRounds();
      assert.ok(listed(id), 'a ref nested in the argument of a running task was freed');
      gate.open();
      assert.equal(await get(holder.result as ObjectRef<number>), 6);
    } finally {
      gate.close();
    }
  });

  test('a ref inside the last value put is not kept alive once that value and the ref are dropped', async () => {
    await collectRounds();
    // Nothing is encoded after the second put (no put, no .remote()) until the check is over.
    const ids = (() => {
      const inner = put(new Uint8Array(MB).fill(1));
      const outer = put({ inner });
      return [inner.hex, outer.hex];
    })();
    await collectUntil(
      () => ids.every((id) => !listed(id)),
      () => `both objects leaving memory() (inner still referenced by: ${entry(ids[0] as string)?.referencedBy.join(', ')})`,
      5_000,
    );
  });

  test('an object passed to a finished task is freed once the driver drops its ref (no thread holds it any more)', async () => {
    await collectRounds();
    const id = await (async () => {
      const ref = put(new Uint8Array(MB).fill(2));
      assert.equal(await get(firstByte.remote(ref)), 2);
      return ref.hex;
    })();
    assert.equal(await get(identity.remote('another task')), 'another task');
    // The worker that ran the task has no ref the user could reach (its argument was the bytes),
    // so no worker may be listed as holding one: else the object lives until that worker's heap
    // happens to be collected.
    const holders = entry(id)?.referencedBy ?? [];
    assert.ok(!holders.some((why) => why.startsWith('worker')), `referencedBy: ${holders.join(', ')}`);
    await collectUntil(() => !listed(id), () => `the object leaving memory() (still referenced by: ${entry(id)?.referencedBy.join(', ')})`, 10_000);
  });
});

describe('object store: 10,000 puts of 1 MB, dropped, into 64 MB', () => {
  const capacity = 64 * MB;
  before(() => init({ numWorkers: 1, objectStoreMemory: capacity }));
  after(() => shutdown());

  test('the loop completes in bounded store memory and everything is freed at the end', async () => {
    let mostUsed = 0;
    let mostSpilled = 0;
    const data = new Uint8Array(MB);
    for (let i = 0; i < 10_000; i++) {
      data[0] = i & 0xff;
      put(data); // the ref is dropped at once
      if (i % 16 === 15) {
        gc(); // helps the collector along: refs are tiny, so V8 alone collects them late
        await turn(); // finalizers run between turns
        const { store } = memory();
        mostUsed = Math.max(mostUsed, store.usedBytes);
        mostSpilled = Math.max(mostSpilled, store.spilledObjects);
      }
    }
    assert.ok(mostUsed <= capacity, `store memory went to ${mostUsed} bytes`);
    await collectUntil(() => memory().store.objects === 0, 'every dropped object being freed');
    const { store } = memory();
    assert.equal(store.usedBytes, 0);
    assert.equal(store.spilledObjects, 0);
    assert.ok(store.arena.reservedBytes <= capacity);
    // The node still takes new objects and runs tasks.
    assert.deepEqual(await get(put({ after: 'the loop' })), { after: 'the loop' });
    assert.equal((await get(put(new Uint8Array(MB).fill(1))))[0], 1);
    assert.equal(await get(identity.remote(5)), 5);
    assert.ok(mostSpilled >= 0);
  });
});

describe('object store: a store that was full and then freed', () => {
  const capacity = 32 * MB;
  before(() => init({ numWorkers: 1, objectStoreMemory: capacity }));
  after(() => shutdown());

  test('once every object is freed, the store takes new objects and task results again', async () => {
    await (async () => {
      // 32 MB of 1 MB objects, kept: the store fills up (objects may spill, or a put may fail).
      const refs: ObjectRef<Uint8Array>[] = [];
      try {
        for (let i = 0; i < 32; i++) refs.push(put(new Uint8Array(MB).fill(i)));
      } catch {
        // a full store: what this test checks is what happens once it is empty again
      }
      assert.ok(refs.length >= 16);
      assert.equal((await get(refs[15] as ObjectRef<Uint8Array>))[0], 15);
    })();
    await collectUntil(() => memory().store.objects === 0 && memory().store.usedBytes === 0, 'every object and its memory being freed');
    assert.deepEqual(await get(put({ small: 1 })), { small: 1 });
    assert.equal(await get(identity.remote(7)), 7);
    assert.equal((await get(put(new Uint8Array(MB).fill(3))))[0], 3);
  });
});
