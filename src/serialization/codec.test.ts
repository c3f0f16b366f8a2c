import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { PassThrough } from 'node:stream';
import { MessageChannel } from 'node:worker_threads';
import { decodeErrorRecord, decodeValue, encodeErrorRecord, encodeValue } from './index.js';
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

test('a failed encode does not leak its refs into the next one', () => {
  assert.throws(() => encodeValue([newRef(), () => 1], 'x'), SerializationError);
  assert.deepEqual(encodeValue({ plain: true }, 'y').refs, []);
});

test('a function is rejected with the path to it and its name', () => {
  assertRejected({ a: { b: function handler() {} } }, 'argument 1 of f', /^argument 1 of f at \.a\.b is a function \(handler\)/);
  assertRejected([1, [2, () => 3]], 'the return value of g', /^the return value of g at \[1\]\[1\] is a function/);
  assertRejected(() => 1, 'put() value', /^put\(\) value is a function/, /remote\(\)/);
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
  assertRejected({ s: new Set([1, 2, () => 0]) }, 'v', /^v at \.s<item 2> is a function/);
});

test('something unserializable behind a shared reference or a cycle is still found', () => {
  const inner: Record<string, unknown> = { fn: () => 1 };
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
