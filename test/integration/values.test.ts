// What values can travel (issue 8, items 7, 8 and 13): what cannot carry faithfully fails with a
// SerializationError that names its class and where it sits; remote functions, actor classes and
// self-contained functions arrive working; deep values fail at a documented depth.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MAX_DEPTH, MinirayError, ObjectRef, ObjectRefGenerator, SerializationError, get, init, put, remote, shutdown } from 'miniray';
import {
  CounterActor,
  applyPlain,
  callNested,
  callWith,
  makeIncrement,
  returnsDeep,
  returnsGenerator,
  returnsResponse,
  useActorClass,
} from '../fixtures/values.js';

function expectError(Class: abstract new (...args: never[]) => Error, ...patterns: RegExp[]) {
  return (error: unknown) => {
    assert.ok(error instanceof Class, `expected ${Class.name}, got ${String(error)}`);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  };
}

const identity = remote((x: unknown) => x);
const double = remote((x: number) => x * 2);

before(() => init({ numWorkers: 2 }));
after(() => shutdown());

describe('values that would arrive as {}', () => {
  test('put() of a Response, Headers, Blob, AbortController, TextEncoder or Map iterator fails, naming the class', () => {
    const values: Array<[unknown, string]> = [
      [new Response('x'), 'Response'],
      [new Headers({ a: 'b' }), 'Headers'],
      [new Blob(['x']), 'Blob'],
      [new AbortController(), 'AbortController'],
      [new TextEncoder(), 'TextEncoder'],
      [new Map([[1, 2]]).entries(), 'Map Iterator'],
      [new WeakMap(), 'WeakMap'],
      [Promise.resolve(1), 'Promise'],
    ];
    for (const [value, name] of values) {
      assert.throws(() => put({ wrapped: [value] }), expectError(SerializationError, new RegExp(`^the value given to put\\(\\) at \\.wrapped\\[0\\] is an? ${name}:`)));
    }
  });

  test('.remote() with a generator object in an argument fails at the call, naming the argument and path', () => {
    function* numbers() {
      yield 1;
    }
    assert.throws(
      () => identity.remote({ body: numbers() }),
      expectError(SerializationError, /^argument 1 of anonymous \(values\.test\.ts:\d+\) at \.body is a Generator: a generator cannot travel/),
    );
  });

  test('a task that returns a generator or a Response fails with the SerializationError', async () => {
    await assert.rejects(get(returnsGenerator.remote()), expectError(MinirayError, /the return value of .* is a Generator/));
    await assert.rejects(get(returnsResponse.remote()), expectError(MinirayError, /the return value of .* is a Response/));
  });

  test('remote() of a generator function makes a streaming remote function (see generators.test.ts)', async () => {
    const gen = remote(function* gen() { yield 1; }).remote();
    assert.ok(gen instanceof ObjectRefGenerator);
    assert.equal(await get((await gen.next()).value as ObjectRef<number>), 1);
  });
});

describe('remote functions, actor classes and functions as values', () => {
  test('a remote function passed as an argument works in the task', async () => {
    assert.equal(await get(callWith.remote(double, 21)), 42);
  });

  test('a remote function nested in a value works in the task, with .options() too', async () => {
    assert.deepEqual(await get(callNested.remote({ tools: new Map([['f', double]]) }, 5)), [10, 12]);
  });

  test('an actor class passed as an argument creates a working actor in the task', async () => {
    assert.equal(await get(useActorClass.remote(CounterActor, 40)), 42);
  });

  test('a self-contained function travels as its source, to a task and back', async () => {
    assert.equal(await get(applyPlain.remote((x: number) => x * 3, 5)), 15);
    const increment = await get(makeIncrement.remote());
    assert.equal(typeof increment, 'function');
    assert.equal(increment(1), 2);
  });

  test('a function that uses variables of its scope fails at .remote(), naming them', () => {
    const factor = 3;
    assert.throws(
      () => applyPlain.remote((x: number) => x * factor, 5),
      expectError(SerializationError, /^argument 1 of applyPlain|argument 1 of anonymous/, /is a function/, /'factor'/, /self-contained/),
    );
  });
});

describe('deep values', () => {
  test(`values nested up to ${MAX_DEPTH} levels travel; deeper ones fail with SerializationError, not RangeError`, async () => {
    let deep: unknown = 0;
    for (let i = 0; i < MAX_DEPTH; i++) deep = [deep];
    assert.deepEqual(await get(put(deep)), deep);
    assert.deepEqual(await get(identity.remote(deep)), deep);
    for (const levels of [MAX_DEPTH + 1, 3000, 5000]) {
      let tooDeep: unknown = 0;
      for (let i = 0; i < levels; i++) tooDeep = [tooDeep];
      assert.throws(() => put(tooDeep), expectError(SerializationError, new RegExp(`nested more than ${MAX_DEPTH} levels deep`)));
      assert.throws(() => identity.remote(tooDeep), expectError(SerializationError, /^argument 1 of .* is nested more than/));
    }
    await assert.rejects(get(returnsDeep.remote(5000)), expectError(MinirayError, /the return value of .* is nested more than/));
  });
});
