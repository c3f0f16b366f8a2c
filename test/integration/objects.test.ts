// put, get and wait, and the values that travel between threads.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GetTimeoutError, ObjectRef, get, init, put, remote, shutdown, wait } from 'miniray';
import { Gate, waitForGate } from '../fixtures/coordination.js';

const identity = remote((value: unknown) => value);

function sampleValue() {
  const nested = {
    map: new Map<unknown, unknown>([
      ['a', 1],
      [2, { deep: [1, 2, 3] }],
    ]),
    set: new Set(['x', 'y', 3]),
    date: new Date('2024-02-29T12:34:56.789Z'),
    big: 2n ** 62n,
    negativeBig: -(2n ** 63n),
    bytes: new Uint8Array([0, 1, 254, 255]),
    floats: new Float64Array([Math.PI, -0.5, Infinity]),
    ints: new Int32Array([-1, 2 ** 31 - 1]),
    bigInts: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]),
    buffer: new Uint16Array([1, 2, 3]).buffer,
    regexp: /mini(ray)?/gi,
    special: [NaN, -Infinity, null, undefined, true, ''],
    unicode: 'naïve ☃ 𝄞',
    withUndefined: { present: 1, absent: undefined },
    emptyThings: [{}, [], new Map(), new Set()],
    deep: { a: { b: { c: { d: ['e'] } } } },
  };
  return nested;
}

describe('objects', () => {
  before(() => init({ numWorkers: 2 }));
  after(() => shutdown());

  test('put returns a ref at once; get gives the value back', async () => {
    const ref = put({ answer: 42, list: [1, 2, 3] });
    assert.ok(ref instanceof ObjectRef);
    assert.deepEqual(await get(ref), { answer: 42, list: [1, 2, 3] });
    // The same ref can be read again, and read as many times as it appears in a list.
    assert.deepEqual(await get([ref, ref]), [
      { answer: 42, list: [1, 2, 3] },
      { answer: 42, list: [1, 2, 3] },
    ]);
  });

  test('get of an array of refs gives the values in order; an empty array gives []', async () => {
    const refs = [put('a'), put(2), put([3]), identity.remote('four')];
    assert.deepEqual(await get(refs), ['a', 2, [3], 'four']);
    assert.deepEqual(await get([]), []);
  });

  test('get returns a fresh copy: changing it does not change the stored object', async () => {
    const ref = put({ n: 1 });
    const first = await get(ref);
    first.n = 2;
    assert.deepEqual(await get(ref), { n: 1 });
  });

  test('Map, Set, Date, BigInt, typed arrays, RegExp and nested objects round-trip through put/get', async () => {
    assert.deepStrictEqual(await get(put(sampleValue())), sampleValue());
  });

  test('the same values round-trip through a task (argument and return value)', async () => {
    assert.deepStrictEqual(await get(identity.remote(sampleValue())), sampleValue());
  });

  test('BigInts of any size round-trip, beyond 64 bits too', async () => {
    const values = [0n, -1n, 2n ** 64n - 1n, 2n ** 64n, -(2n ** 64n), 2n ** 100n, -(3n ** 200n)];
    assert.deepStrictEqual(await get(put(values)), values);
    assert.deepStrictEqual(await get(identity.remote(values)), values);
    assert.deepStrictEqual(await get(identity.remote({ nested: new Map([['big', 10n ** 40n]]) })), { nested: new Map([['big', 10n ** 40n]]) });
  });

  test('cycles and shared references are kept', async () => {
    type Node = { name: string; self?: Node; peer?: Node; list: Node[] };
    const a: Node = { name: 'a', list: [] };
    const b: Node = { name: 'b', peer: a, list: [a] };
    a.self = a;
    a.peer = b;
    a.list.push(a, b);
    const check = (value: Node) => {
      assert.equal(value.name, 'a');
      assert.equal(value.self, value);
      assert.equal(value.peer?.peer, value);
      assert.equal(value.list[0], value);
      assert.equal(value.list[1], value.peer);
    };
    check((await get(put(a))) as Node);
    check((await get(identity.remote(a))) as Node);
    const shared = { x: 1 };
    const both = (await get(identity.remote({ left: shared, right: shared }))) as { left: object; right: object };
    assert.equal(both.left, both.right);
  });

  test('primitives and edge values keep their type', async () => {
    for (const value of [0, 1.5, -7, Number.MAX_SAFE_INTEGER, 'text', '', true, false, null, 0n, 123n]) {
      assert.ok(Object.is(await get(identity.remote(value)), value), `${String(value)} changed in a task`);
      assert.ok(Object.is(await get(put(value)), value), `${String(value)} changed in put/get`);
    }
    assert.equal(await get(identity.remote(undefined)), undefined);
  });

  test('a large value travels intact', async () => {
    const big = new Float64Array(1_000_000).map((_, i) => i * 0.5);
    const back = (await get(identity.remote(big))) as Float64Array;
    assert.ok(back instanceof Float64Array);
    assert.equal(back.length, big.length);
    assert.equal(back[999_999], 499_999.5);
  });
});

describe('wait', () => {
  const gates: Gate[] = [];
  const newGate = () => {
    const gate = new Gate();
    gates.push(gate);
    return gate;
  };
  before(() => init({ numWorkers: 2 }));
  after(async () => {
    for (const gate of gates) gate.open();
    await shutdown();
    for (const gate of gates) gate.close();
  });

  test('returns { ready, pending } once numReturns refs are ready, each list in input order', async () => {
    const gate = newGate();
    const blocked = waitForGate.remote(gate.name, 'late');
    const a = put('a');
    const b = identity.remote('b');
    const refs = [blocked, a, b];
    const { ready, pending } = await wait(refs, { numReturns: 2 });
    assert.deepEqual(ready, [a, b]);
    assert.deepEqual(pending, [blocked]);

    gate.open();
    const all = await wait(refs, { numReturns: 3 });
    assert.deepEqual(all.ready, refs);
    assert.deepEqual(all.pending, []);
    assert.equal(await get(blocked), 'late');
  });

  test('numReturns defaults to 1', async () => {
    const gate = newGate();
    const blocked = waitForGate.remote(gate.name, 'x');
    const done = put('done');
    const { ready, pending } = await wait([blocked, done]);
    assert.deepEqual(ready, [done]);
    assert.deepEqual(pending, [blocked]);
    gate.open();
  });

  test('timeoutMs: returns what is ready when the time is up', async () => {
    const gate = newGate();
    const blocked = waitForGate.remote(gate.name, 'x');
    await gate.whenWaiting();
    const done = put('done');
    const { ready, pending } = await wait([done, blocked], { numReturns: 2, timeoutMs: 50 });
    assert.deepEqual(ready, [done]);
    assert.deepEqual(pending, [blocked]);
    const none = await wait([blocked], { timeoutMs: 10 });
    assert.deepEqual(none, { ready: [], pending: [blocked] });
    gate.open();
    assert.equal(await get(blocked), 'x');
  });

  test('a failed task counts as ready (its error comes at get)', async () => {
    const fail = remote((): number => {
      throw new Error('nope');
    });
    const ref = fail.remote();
    const { ready } = await wait([ref]);
    assert.deepEqual(ready, [ref]);
    await assert.rejects(get(ref), /nope/);
  });

  test('get with timeoutMs rejects with GetTimeoutError; the object can still be got later', async () => {
    const gate = newGate();
    const blocked = waitForGate.remote(gate.name, 'eventually');
    await assert.rejects(get(blocked, { timeoutMs: 30 }), (error: Error) => {
      assert.ok(error instanceof GetTimeoutError);
      assert.match(error.message, /timed out after 30 ms/);
      return true;
    });
    await assert.rejects(get([put(1), blocked], { timeoutMs: 30 }), GetTimeoutError);
    gate.open();
    assert.equal(await get(blocked, { timeoutMs: 20_000 }), 'eventually');
  });
});
