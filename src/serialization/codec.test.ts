import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { MessageChannel } from 'node:worker_threads';
import { MAX_DEPTH, decodeErrorRecord, decodeValue, encodeErrorRecord, encodeValue } from './index.js';
import { SerializationError, toErrorRecord, type ErrorRecord } from '../errors/index.js';
import { ObjectID } from '../ids/index.js';
import { ObjectRef } from '../object-ref/index.js';

const roundTrip = <T>(value: T): T => decodeValue(encodeValue(value, 'test value').data) as T;

const newRef = (workerId = 'w1') => new ObjectRef(ObjectID.fromRandom(), { nodeId: 'node-a', workerId });

/** Asserts that encoding throws a SerializationError whose message matches every pattern. */
function assertRejected(value: unknown, what: string, ...patterns: RegExp[]): void {
  assert.throws(
    () => encodeValue(value, what),
    (error: unknown) => {
      assert.ok(error instanceof SerializationError, `expected SerializationError, got ${String(error)}`);
      for (const pattern of patterns) assert.match(error.message, pattern);
      return true;
    },
  );
}

test('encodeValue returns bytes and no refs for plain data', () => {
  const encoded = encodeValue({ a: 1, b: 'two', c: [true, null] }, 'v');
  assert.ok(encoded.data instanceof Uint8Array);
  assert.ok(encoded.data.byteLength > 0);
  assert.deepEqual(encoded.refs, []);
});

test('primitives round-trip', () => {
  for (const value of [0, 1, -1, 1.5, 2 ** 53 - 1, -(2 ** 31), 1e300, Infinity, -Infinity, '', 'héllo ✓', true, false, null]) {
    assert.equal(roundTrip(value), value);
  }
  assert.equal(roundTrip('x'.repeat(100_000)).length, 100_000);
});

test('undefined and NaN are kept, at the top level and inside objects and arrays', () => {
  assert.equal(roundTrip(undefined), undefined);
  assert.ok(Number.isNaN(roundTrip(NaN)));
  const decoded = roundTrip({ u: undefined, n: NaN, list: [undefined, 1] });
  assert.ok(Object.hasOwn(decoded, 'u'));
  assert.equal(decoded.u, undefined);
  assert.ok(Number.isNaN(decoded.n));
  assert.deepEqual(decoded.list, [undefined, 1]);
});

test('-0 comes back as a zero (msgpackr does not keep the sign of zero)', () => {
  assert.equal(roundTrip(-0), 0);
  assert.equal(roundTrip({ z: -0 }).z, 0);
});

test('Map (with object keys), Set, Date and RegExp round-trip', () => {
  const key = { k: 1 };
  const value = {
    map: new Map<unknown, unknown>([
      ['a', 1],
      [2, 'b'],
      [key, new Set([1, 'x'])],
    ]),
    set: new Set([1, 2, 3]),
    date: new Date('2024-02-29T12:34:56.789Z'),
    regexp: /a.b+/gi,
  };
  const decoded = roundTrip(value);
  assert.ok(decoded.map instanceof Map);
  assert.ok(decoded.set instanceof Set);
  assert.ok(decoded.date instanceof Date);
  assert.ok(decoded.regexp instanceof RegExp);
  assert.deepEqual(decoded, value);
  assert.equal(decoded.date.getTime(), value.date.getTime());
  assert.equal(decoded.regexp.source, 'a.b+');
  assert.equal(decoded.regexp.flags, 'gi');
  assert.deepEqual([...decoded.map.keys()][2], { k: 1 });
});

test('BigInt round-trips, small and huge, positive and negative', () => {
  for (const value of [0n, 5n, -5n, 2n ** 63n - 1n, 2n ** 64n, -(2n ** 64n), 2n ** 200n + 12345n, -(3n ** 300n)]) {
    const decoded = roundTrip(value);
    assert.equal(typeof decoded, 'bigint', String(value));
    assert.equal(decoded, value);
  }
  assert.deepEqual(roundTrip({ n: 10n ** 40n }), { n: 10n ** 40n });
});

test('typed arrays keep their class and contents', () => {
  const arrays = [
    new Uint8Array([0, 1, 255]),
    new Int8Array([-128, 127]),
    new Uint8ClampedArray([0, 255]),
    new Int16Array([-32768, 32767]),
    new Uint16Array([65535]),
    new Int32Array([-1, 2 ** 31 - 1]),
    new Uint32Array([2 ** 32 - 1]),
    new Float32Array([1.5, -0.25]),
    new Float64Array([Math.PI, -Infinity]),
    new BigInt64Array([-1n, 2n ** 63n - 1n]),
    new BigUint64Array([2n ** 64n - 1n]),
  ];
  for (const array of arrays) {
    const decoded = roundTrip(array);
    assert.equal(Object.getPrototypeOf(decoded), Object.getPrototypeOf(array), array.constructor.name);
    assert.deepEqual([...decoded], [...array]);
  }
});

test('a typed array view of part of a buffer carries only its own elements', () => {
  const buffer = new ArrayBuffer(16);
  new Uint8Array(buffer).set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
  const view = new Uint8Array(buffer, 4, 3);
  assert.deepEqual([...roundTrip(view)], [5, 6, 7]);
  const floats = new Float64Array(new ArrayBuffer(32), 8, 2);
  floats.set([1.25, 2.5]);
  assert.deepEqual([...roundTrip(floats)], [1.25, 2.5]);
});

test('ArrayBuffer round-trips', () => {
  const buffer = new Uint8Array([1, 2, 3, 250]).buffer;
  const decoded = roundTrip(buffer);
  assert.ok(decoded instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(decoded)], [1, 2, 3, 250]);
});

test('Buffer comes back with the same bytes (as a Uint8Array)', () => {
  const decoded = roundTrip(Buffer.from('hello, world'));
  assert.ok(decoded instanceof Uint8Array);
  assert.equal(Buffer.from(decoded).toString(), 'hello, world');
});

test('nested objects and arrays round-trip', () => {
  const value = {
    user: { name: 'ada', tags: ['a', 'b'], address: { city: 'London', zip: null } },
    matrix: [
      [1, 2],
      [3, 4],
    ],
    empty: {},
    emptyList: [],
    deep: { a: { b: { c: { d: { e: [{ f: 1 }] } } } } },
  };
  assert.deepEqual(roundTrip(value), value);
});

test('shared references stay shared', () => {
  const shared = { x: 1 };
  const decoded = roundTrip({ a: shared, b: shared, list: [shared] });
  assert.deepEqual(decoded.a, { x: 1 });
  assert.equal(decoded.a, decoded.b);
  assert.equal(decoded.a, decoded.list[0]);
});

test('cycles round-trip', () => {
  const node: { name: string; self?: unknown; children: unknown[] } = { name: 'root', children: [] };
  node.self = node;
  node.children.push({ parent: node });
  const decoded = roundTrip(node);
  assert.equal(decoded.name, 'root');
  assert.equal(decoded.self, decoded);
  assert.equal((decoded.children[0] as { parent: unknown }).parent, decoded);
  const list: unknown[] = [1];
  list.push(list);
  const decodedList = roundTrip(list);
  assert.equal(decodedList[1], decodedList);
});

test('an ObjectRef stays an ObjectRef and is reported in refs', () => {
  const ref = newRef();
  const encoded = encodeValue(ref, 'put() value');
  assert.equal(encoded.refs.length, 1);
  assert.equal(encoded.refs[0], ref);
  const decoded = decodeValue(encoded.data);
  assert.ok(decoded instanceof ObjectRef);
  assert.ok(decoded.id instanceof ObjectID);
  assert.ok(decoded.id.equals(ref.id));
  assert.equal(decoded.hex, ref.hex);
  assert.deepEqual(decoded.owner, { nodeId: 'node-a', workerId: 'w1' });
});

test('ObjectRefs nested in objects, arrays, Maps and Sets stay ObjectRefs and are all reported', () => {
  const r1 = newRef('w1');
  const r2 = newRef('w2');
  const r3 = newRef('w3');
  const r4 = newRef('w4');
  const value = { a: { deep: [r1] }, m: new Map<string, unknown>([['k', r2]]), s: new Set([r3]), list: [1, { r: r4 }] };
  const encoded = encodeValue(value, 'argument 1 of f');
  assert.deepEqual(new Set(encoded.refs.map((r) => r.hex)), new Set([r1.hex, r2.hex, r3.hex, r4.hex]));
  for (const ref of encoded.refs) assert.ok(ref instanceof ObjectRef);
  const decoded = decodeValue(encoded.data) as typeof value;
  const got1 = decoded.a.deep[0];
  const got2 = decoded.m.get('k');
  const got3 = [...decoded.s][0];
  const got4 = (decoded.list[1] as { r: unknown }).r;
  for (const [got, want] of [
    [got1, r1],
    [got2, r2],
    [got3, r3],
    [got4, r4],
  ] as const) {
    assert.ok(got instanceof ObjectRef);
    assert.equal(got.hex, want.hex);
    assert.deepEqual(got.owner, want.owner);
  }
});

test('refs are reported per encode call, not accumulated across calls', () => {
  const r1 = newRef();
  assert.equal(encodeValue([r1], 'a').refs.length, 1);
  assert.deepEqual(encodeValue([1, 2], 'b').refs, []);
  const r2 = newRef();
  assert.deepEqual(encodeValue({ r2 }, 'c').refs.map((r) => r.hex), [r2.hex]);
});

// A function that uses a variable of its scope cannot travel (a self-contained one travels as source).
const captured = 42;

test('a failed encode does not leak its refs into the next one', () => {
  assert.throws(() => encodeValue([newRef(), () => captured], 'x'), SerializationError);
  assert.deepEqual(encodeValue({ plain: true }, 'y').refs, []);
});

test('a function that uses variables of its scope is rejected with the path to it, its name and the variables', () => {
  assertRejected({ a: { b: function handler() { return captured; } } }, 'argument 1 of f', /^argument 1 of f at \.a\.b is a function \(handler\)/, /'captured'/);
  assertRejected([1, [2, () => captured + 1]], 'the return value of g', /^the return value of g at \[1\]\[1\] is a function/);
  assertRejected(() => captured, 'put() value', /^put\(\) value is a function/, /self-contained/, /remote\(\)/);
});

test('a symbol is rejected with the path to it', () => {
  assertRejected({ list: [1, Symbol('tag')] }, 'argument 2 of f', /^argument 2 of f at \.list\[1\] is a symbol \(Symbol\(tag\)\)/);
  assertRejected(Symbol('top'), 'put() value', /^put\(\) value is a symbol/);
});

test('a Promise is rejected with the path and advice to await it', () => {
  assertRejected({ pending: Promise.resolve(1) }, 'argument 1 of f', /^argument 1 of f at \.pending is a Promise/, /await/);
});

test('weak collections are rejected with the path to them', () => {
  assertRejected(new Map([['cache', new WeakMap()]]), 'argument 1 of f', /^argument 1 of f at \.get\("cache"\) is a WeakMap/, /use a Map/);
  assertRejected({ seen: new WeakSet() }, 'v', /at \.seen is a WeakSet/);
  assertRejected({ ref: new WeakRef({}) }, 'v', /at \.ref is a WeakRef/);
});

test('a net.Socket is rejected, named by its class, with the path to it', () => {
  const socket = new net.Socket();
  try {
    assertRejected({ conn: { socket } }, 'argument 1 of f', /^argument 1 of f at \.conn\.socket is a Socket/, /inside the task/);
  } finally {
    socket.destroy();
  }
});

test('other event emitters and MessagePorts are rejected', () => {
  assertRejected({ stream: new PassThrough() }, 'v', /at \.stream is a PassThrough/);
  assertRejected([new EventEmitter()], 'v', /at \[0\] is a EventEmitter|at \[0\] is an EventEmitter/);
  const { port1, port2 } = new MessageChannel();
  try {
    assertRejected({ port: port1 }, 'v', /at \.port is a MessagePort/);
  } finally {
    port1.close();
    port2.close();
  }
});

test('something unserializable inside a Set is located by its position', () => {
  assertRejected({ s: new Set([1, 2, () => captured]) }, 'v', /^v at \.s<item 2> is a function/);
});

test('something unserializable behind a shared reference or a cycle is still found', () => {
  const inner: Record<string, unknown> = { fn: () => captured };
  inner.self = inner;
  assertRejected({ a: inner, b: inner }, 'v', /^v at \.a\.fn is a function/);
});

test('error records round-trip through encodeErrorRecord/decodeErrorRecord', () => {
  const record: ErrorRecord = {
    name: 'TaskError',
    minirayClass: 'TaskError',
    message: 'task f failed: boom',
    stack: 'TaskError: task f failed: boom\n    at f (file:///a.js:1:1)',
    cause: { name: 'TypeError', message: 'boom', props: { code: 'E_BOOM', n: 3, ok: false, none: null } },
    props: { functionName: 'f', taskId: '0123456789abcdef0123456789abcdef' },
  };
  assert.deepEqual(decodeErrorRecord(encodeErrorRecord(record)), record);
});

test('a record made by toErrorRecord with a small bigint property round-trips', () => {
  const record = toErrorRecord(Object.assign(new Error('x'), { id: 42n }));
  assert.deepEqual(decodeErrorRecord(encodeErrorRecord(record)).props, { id: 42n });
});

// ErrorRecord documents props as primitives including bigint, "carried across a thread or network
// boundary". A bigint outside 64 bits makes encodeErrorRecord throw a RangeError instead.
test('any record toErrorRecord makes can be encoded, including bigint properties beyond 64 bits', () => {
  const record = toErrorRecord(Object.assign(new Error('x'), { id: 2n ** 64n }));
  const decoded = decodeErrorRecord(encodeErrorRecord(record));
  assert.equal(decoded.message, 'x');
  assert.equal(decoded.props?.id, 2n ** 64n);
});

// ---- values that msgpackr would write as {} (issue 8, item 7) ------------------------------------

test('built-in objects whose state msgpackr cannot see are rejected, named by class, with their path', () => {
  const map = new Map([[1, 'a']]);
  function* generator() {
    yield 1;
  }
  async function* asyncGenerator() {
    yield 1;
  }
  const cases: Array<[unknown, RegExp]> = [
    [generator(), /is a Generator: a generator cannot travel/],
    [asyncGenerator(), /is an AsyncGenerator: an async generator cannot travel/],
    [map.entries(), /is a Map Iterator: an iterator cannot travel/],
    [new Set([1]).values(), /is a Set Iterator/],
    [[1][Symbol.iterator](), /is an Array Iterator/],
    ['ab'.matchAll(/a/g), /is a RegExp String Iterator/],
    [new Response('body'), /is a Response: .*\.json\(\)/],
    [new Headers({ a: 'b' }), /is a Headers: .*Object\.fromEntries/],
    [new Blob(['x']), /is a Blob: .*arrayBuffer/],
    [new AbortController(), /is an AbortController/],
    [new AbortController().signal, /is an AbortSignal/],
    [new TextEncoder(), /is a TextEncoder/],
    [new TextDecoder(), /is a TextDecoder/],
    [new URL('http://example.com/x'), /is a URL: .*url\.href/],
    [new URLSearchParams('a=1'), /is a URLSearchParams/],
    [new ReadableStream(), /is a ReadableStream/],
    [new EventTarget(), /is an EventTarget/],
    [new Intl.NumberFormat(), /is a NumberFormat/],
    [new WeakMap(), /is a WeakMap/],
    [Promise.resolve(1), /is a Promise/],
    [new Number(1), /is a Number: .*primitive/],
    [new String('s'), /is a String: .*primitive/],
    [Object(1n), /is a BigInt/],
  ];
  for (const [value, pattern] of cases) {
    assertRejected({ body: [0, value] }, 'argument 2 of f', /^argument 2 of f at \.body\[1\] is /, pattern);
    assertRejected(value, 'the value given to put()', /^the value given to put\(\) is /, pattern);
  }
});

test('a class extending a built-in that cannot travel is rejected under its own name', () => {
  class Emitter extends EventTarget {}
  class MyResponse extends Response {}
  assertRejected({ e: new Emitter() }, 'v', /^v at \.e is an Emitter: an EventTarget/);
  assertRejected([new MyResponse('x')], 'v', /^v at \[0\] is a MyResponse: a Response is a built-in object/);
});

test('a class instance with no own fields is rejected: its state is private (it would arrive as {})', () => {
  class Counter {
    #count = 0;
    increment(): number {
      return ++this.#count;
    }
  }
  assertRejected({ counter: new Counter() }, 'v', /^v at \.counter is an instance of Counter: it has no own fields/, /#private/);
});

test('class instances with own fields still arrive as plain objects with those fields; toJSON is honoured', () => {
  class Point {
    constructor(
      readonly x: number,
      readonly y: number,
    ) {}
    norm(): number {
      return Math.hypot(this.x, this.y);
    }
  }
  class Money {
    #cents = 1234;
    toJSON(): string {
      return `${this.#cents / 100} EUR`;
    }
  }
  assert.deepEqual(roundTrip([new Point(1, 2)]), [{ x: 1, y: 2 }]);
  assert.equal(roundTrip({ price: new Money() }).price, '12.34 EUR');
});

test('subclasses of carried built-ins arrive as their base class, with their contents', () => {
  class Registry extends Map<string, number> {}
  class Bytes extends Uint8Array {}
  class Tags extends Set<string> {}
  class List extends Array<number> {}
  const back = roundTrip({ registry: new Registry([['a', 1]]), bytes: Bytes.from([1, 2]), tags: new Tags(['t']), list: List.from([1, 2]) });
  assert.ok(back.registry instanceof Map);
  assert.deepEqual([...back.registry], [['a', 1]]);
  assert.ok(back.bytes instanceof Uint8Array);
  assert.deepEqual([...back.bytes], [1, 2]);
  assert.deepEqual([...back.tags], ['t']);
  assert.deepEqual([...back.list], [1, 2]);
});

test('null-prototype objects, DOMExceptions and typed arrays still travel', () => {
  const bare = Object.assign(Object.create(null) as Record<string, number>, { a: 1 });
  assert.deepEqual({ ...(roundTrip(bare) as object) }, { a: 1 });
  const back = roundTrip(new DOMException('stopped', 'AbortError'));
  assert.ok(back instanceof Error);
  assert.equal(back.message, 'stopped');
});

test('a getter that throws while encoding gives a SerializationError, never the raw error', () => {
  const hostile = {
    get boom(): never {
      throw new TypeError('no');
    },
  };
  assert.throws(() => encodeValue({ x: hostile }, 'v'), SerializationError);
  const proxy = new Proxy({}, { getPrototypeOf: () => { throw new Error('trap'); }, ownKeys: () => { throw new Error('trap'); } });
  assert.throws(() => encodeValue([proxy], 'v'), SerializationError);
});

// ---- functions as values (issue 8, item 8) ------------------------------------------------------

test('a self-contained function travels as its source and works where it arrives', () => {
  const back = roundTrip({ square: (x: number) => x * x, add: function add(a: number, b: number) { return a + b; } });
  assert.equal(back.square(7), 49);
  assert.equal(back.add(2, 3), 5);
  assert.equal(back.add.name, 'add');
  const method = roundTrip({ twice(x: number) { return 2 * x; } }.twice);
  assert.equal(method(4), 8);
  class Vec {
    constructor(readonly x: number) {}
    double(): Vec {
      return new Vec(this.x * 2);
    }
  }
  const VecBack = roundTrip(Vec);
  assert.equal(new VecBack(3).double().x, 6);
});

test('each decode of a function gives a function object of its own', () => {
  const { data } = encodeValue((x: number) => x + 1, 'v');
  const a = decodeValue(data) as (x: number) => number;
  const b = decodeValue(data) as (x: number) => number;
  assert.notEqual(a, b);
  assert.equal(a(1) + b(1), 4);
});

test('built-in and bound functions are rejected: they have no source', () => {
  assertRejected({ f: Math.max }, 'v', /^v at \.f is a function \(max\): a built-in or bound function/);
  assertRejected([((x: number) => x).bind(null)], 'v', /^v at \[0\] is a function \(bound /);
});

// ---- depth (issue 8, item 13) -------------------------------------------------------------------

function nested(levels: number, wrap: (inner: unknown) => unknown = (inner) => [inner]): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = wrap(value);
  return value;
}

test(`values nested up to MAX_DEPTH (${MAX_DEPTH}) levels round-trip`, () => {
  let back = roundTrip(nested(MAX_DEPTH));
  for (let i = 0; i < MAX_DEPTH; i++) back = (back as unknown[])[0];
  assert.equal(back, 1);
  assert.doesNotThrow(() => roundTrip(nested(MAX_DEPTH, (inner) => ({ next: inner }))));
});

test('values nested deeper than MAX_DEPTH fail with SerializationError, whatever the container', () => {
  for (const levels of [MAX_DEPTH + 1, 3000, 5000, 100_000]) {
    assertRejected(nested(levels), 'the value given to put()', new RegExp(`^the value given to put\\(\\) is nested more than ${MAX_DEPTH} levels deep \\(at \\[0\\]`));
  }
  assertRejected(nested(MAX_DEPTH + 1, (inner) => ({ next: inner })), 'v', /nested more than 1000 levels deep \(at \.next\.next/);
  assertRejected(nested(5000, (inner) => new Map([['k', inner]])), 'v', /nested more than 1000 levels/);
  assertRejected(nested(5000, (inner) => new Set([inner])), 'v', /nested more than 1000 levels/);
  assertRejected(nested(5000, (inner) => new Error('e', { cause: inner })), 'v', /nested more than 1000 levels/);
  assertRejected({ ok: [1, 2], deep: nested(4000, (inner) => [0, { a: inner }]) }, 'argument 1 of f', /^argument 1 of f is nested more than 1000 levels deep \(at \.deep\[1\]\.a/);
});

test('wide values, shared references and cycles are not mistaken for deep ones', () => {
  const shared = nested(10);
  const wide = Array.from({ length: 5000 }, () => shared);
  assert.doesNotThrow(() => encodeValue(wide, 'v'));
  // 2**40 paths through 40 levels of shared pairs: counted once each.
  let dag: unknown = 1;
  for (let i = 0; i < 40; i++) dag = [dag, dag, 'padding to make the encoding long enough to be checked'.repeat(2)];
  assert.doesNotThrow(() => encodeValue(dag, 'v'));
  const ring: Record<string, unknown>[] = Array.from({ length: 3000 }, () => ({}));
  ring.forEach((node, i) => (node.next = ring[(i + 1) % ring.length]));
  assertRejected(ring[0], 'v', /nested more than 1000 levels/); // a 3000-long linked list, as encoded
  const loop: Record<string, unknown> = { name: 'loop'.repeat(400) };
  loop.self = loop;
  assert.doesNotThrow(() => encodeValue(loop, 'v'));
});

test('forged bytes nested past any stack decode to a SerializationError, not a RangeError', () => {
  const forged = new Uint8Array(200_001).fill(0x91); // fixarray of 1, 200,000 times
  forged[200_000] = 0x01;
  assert.throws(() => decodeValue(forged), (error: unknown) => error instanceof SerializationError && /nested too deeply/.test(error.message));
  assert.deepEqual(roundTrip({ after: 'still works' }), { after: 'still works' });
});
