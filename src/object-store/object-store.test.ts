import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectStore } from './index.js';
import { ObjectStoreFullError } from '../errors/index.js';
import { ObjectID } from '../ids/index.js';
import { ObjectRef } from '../object-ref/index.js';

const bytes = (...values: number[]) => new Uint8Array(values);


/** The store's object count, bytes in use and capacity. */
const figures = (store: ObjectStore) => {
  const { objects, usedBytes, capacityBytes } = store.stats();
  return { objects, usedBytes, capacityBytes };
};

test('put returns a ref and get returns the same bytes by ref, ObjectID or hex', () => {
  const store = new ObjectStore(1024);
  const data = bytes(1, 2, 3, 4);
  const ref = store.put(data);
  assert.ok(ref instanceof ObjectRef);
  assert.match(ref.hex, /^[0-9a-f]{32}$/);
  assert.deepEqual(store.get(ref), bytes(1, 2, 3, 4));
  assert.deepEqual(store.get(ref.id), bytes(1, 2, 3, 4));
  assert.deepEqual(store.get(ref.hex), bytes(1, 2, 3, 4));
  assert.deepEqual(store.get(ObjectID.fromHex(ref.hex)), bytes(1, 2, 3, 4));
});

test('each put gets a new ObjectID', () => {
  const store = new ObjectStore(1024);
  const a = store.put(bytes(1));
  const b = store.put(bytes(1));
  assert.notEqual(a.hex, b.hex);
  assert.equal(store.size(), 2);
});

test('put records the store owner in the refs it creates', () => {
  const owner = { nodeId: 'node-1', workerId: 'driver' };
  const ref = new ObjectStore(100, { owner }).put(bytes(1));
  assert.deepEqual(ref.owner, owner);
  assert.deepEqual(new ObjectStore(100).put(bytes(1)).owner, { nodeId: '', workerId: '' });
});

test('get returns undefined for an object the store does not hold', () => {
  const store = new ObjectStore(1024);
  assert.equal(store.get(ObjectID.fromRandom()), undefined);
  assert.equal(store.get('0'.repeat(32)), undefined);
});

test('empty objects are stored', () => {
  const store = new ObjectStore(0);
  const ref = store.put(new Uint8Array(0));
  assert.ok(store.contains(ref));
  assert.equal(store.get(ref)?.byteLength, 0);
});

test('putWithId stores under a known id', () => {
  const store = new ObjectStore(1024);
  const id = ObjectID.fromRandom().toHex();
  store.putWithId(id, bytes(9, 8));
  assert.deepEqual(store.get(id), bytes(9, 8));
  assert.ok(store.contains(ObjectID.fromHex(id)));
});

test('putWithId on an existing id replaces it and accounts only the difference', () => {
  const store = new ObjectStore(10);
  const id = ObjectID.fromRandom().toHex();
  store.putWithId(id, new Uint8Array(6));
  store.putWithId(id, new Uint8Array(8)); // 8 fits in 10 because the 6 are given back
  assert.equal(store.get(id)?.byteLength, 8);
  assert.deepEqual(figures(store), { objects: 1, usedBytes: 8, capacityBytes: 10 });
  store.putWithId(id, new Uint8Array(2));
  assert.deepEqual(figures(store), { objects: 1, usedBytes: 2, capacityBytes: 10 });
});

test('contains, delete and size', () => {
  const store = new ObjectStore(1024);
  const a = store.put(bytes(1, 2));
  const b = store.put(bytes(3));
  assert.equal(store.size(), 2);
  assert.equal(store.contains(a), true);
  assert.equal(store.contains(a.id), true);
  assert.equal(store.contains(a.hex), true);
  assert.equal(store.delete(a), true);
  assert.equal(store.contains(a), false);
  assert.equal(store.get(a), undefined);
  assert.equal(store.size(), 1);
  assert.equal(store.delete(a), false, 'deleting twice reports false');
  assert.equal(store.delete(b.hex), true);
  assert.equal(store.size(), 0);
  assert.equal(store.delete(ObjectID.fromRandom()), false);
});

test('stats reports objects, used bytes and capacity', () => {
  const store = new ObjectStore(100);
  assert.deepEqual(figures(store), { objects: 0, usedBytes: 0, capacityBytes: 100 });
  const a = store.put(new Uint8Array(30));
  store.put(new Uint8Array(20));
  assert.deepEqual(figures(store), { objects: 2, usedBytes: 50, capacityBytes: 100 });
  store.delete(a);
  assert.deepEqual(figures(store), { objects: 1, usedBytes: 20, capacityBytes: 100 });
  store.clear();
  assert.deepEqual(figures(store), { objects: 0, usedBytes: 0, capacityBytes: 100 });
  assert.equal(store.size(), 0);
});

test('an object that exactly fills the store fits', () => {
  const store = new ObjectStore(16);
  store.put(new Uint8Array(10));
  store.put(new Uint8Array(6));
  assert.equal(store.stats().usedBytes, 16);
});

test('a put beyond capacity throws ObjectStoreFullError saying asked vs free bytes', () => {
  const store = new ObjectStore(100);
  store.put(new Uint8Array(70));
  assert.throws(
    () => store.put(new Uint8Array(31)),
    (error: unknown) => {
      assert.ok(error instanceof ObjectStoreFullError);
      assert.equal(error.name, 'ObjectStoreFullError');
      assert.match(error.message, /an object of 31 bytes does not fit/);
      assert.match(error.message, /70 of 100 bytes in use, 30 free/);
      assert.match(error.message, /objectStoreMemory/);
      return true;
    },
  );
});

test('a failed put leaves the store unchanged', () => {
  const store = new ObjectStore(10);
  const ref = store.put(bytes(1, 2, 3));
  const id = ObjectID.fromRandom().toHex();
  assert.throws(() => store.putWithId(id, new Uint8Array(8)), ObjectStoreFullError);
  assert.equal(store.contains(id), false);
  assert.deepEqual(figures(store), { objects: 1, usedBytes: 3, capacityBytes: 10 });
  assert.deepEqual(store.get(ref), bytes(1, 2, 3));
  // A replacement that does not fit keeps the old object.
  assert.throws(() => store.putWithId(ref.hex, new Uint8Array(11)), ObjectStoreFullError);
  assert.deepEqual(store.get(ref), bytes(1, 2, 3));
});

test('deleting frees room for new objects', () => {
  const store = new ObjectStore(10);
  const a = store.put(new Uint8Array(8));
  assert.throws(() => store.put(new Uint8Array(5)), ObjectStoreFullError);
  store.delete(a);
  store.put(new Uint8Array(5));
  assert.equal(store.stats().usedBytes, 5);
});

test('a zero-capacity store rejects any non-empty object', () => {
  const store = new ObjectStore(0);
  assert.throws(() => store.put(bytes(1)), /an object of 1 bytes does not fit \(0 of 0 bytes in use, 0 free\)/);
});
