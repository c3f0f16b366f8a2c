// The seed's two acceptance snippets, word for word, against the built package.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { ObjectID, ObjectRef, ObjectStore, ObjectStoreFullError, TaskID, get, init, isInitialized, remote, shutdown } from 'miniray';

describe('seed Phase 1: ObjectStore', () => {
  test('store.put(bytes) returns a ref, store.get(ref) gives the same bytes', () => {
    const store = new ObjectStore(1024 * 1024);
    const bytes = new TextEncoder().encode('hello, miniray');
    const ref = store.put(bytes);
    assert.ok(ref instanceof ObjectRef);
    assert.match(ref.id.toHex(), /^[0-9a-f]{32}$/);
    assert.deepEqual(store.get(ref), bytes);
  });

  test('contains, size and delete', () => {
    const store = new ObjectStore(1024 * 1024);
    assert.equal(store.size(), 0);
    const a = store.put(new Uint8Array([1, 2, 3]));
    const b = store.put(new Uint8Array([4, 5]));
    assert.equal(store.size(), 2);
    assert.ok(!a.id.equals(b.id), 'each put gets a new ObjectID');
    assert.equal(store.contains(a), true);
    assert.equal(store.delete(a), true);
    assert.equal(store.contains(a), false);
    assert.equal(store.get(a), undefined);
    assert.equal(store.delete(a), false, 'deleting twice reports that nothing was deleted');
    assert.equal(store.size(), 1);
    assert.deepEqual(store.get(b), new Uint8Array([4, 5]));
  });
});

describe('seed Phase 1: IDs and refs', () => {
  test('ObjectID is 128 random bits shown as 32 lowercase hex characters', () => {
    const id = ObjectID.fromRandom();
    assert.match(id.toHex(), /^[0-9a-f]{32}$/);
    assert.notEqual(ObjectID.fromRandom().toHex(), id.toHex());
    const same = ObjectID.fromHex(id.toHex());
    assert.ok(same.equals(id));
    assert.ok(!ObjectID.fromRandom().equals(id));
    assert.ok(!TaskID.fromHex(id.toHex()).equals(id), 'a TaskID is never equal to an ObjectID');
    assert.throws(() => ObjectID.fromHex('not hex'), TypeError);
  });

  test('an ObjectID can be used as a Map key', () => {
    const id = ObjectID.fromRandom();
    const map = new Map([[id.key, 'value']]);
    assert.equal(map.get(ObjectID.fromHex(id.toHex()).key), 'value');
  });

  test('ObjectRef wraps its ObjectID and owner and prints readably', () => {
    const id = ObjectID.fromRandom();
    const ref = new ObjectRef<number>(id, { nodeId: 'n', workerId: 'w' });
    assert.ok(ref.id.equals(id));
    assert.deepEqual(ref.owner, { nodeId: 'n', workerId: 'w' });
    assert.equal(String(ref), `ObjectRef(${id.toHex()})`);
  });

  test('a put beyond the store capacity throws ObjectStoreFullError', () => {
    const store = new ObjectStore(10);
    store.put(new Uint8Array(6));
    assert.throws(() => store.put(new Uint8Array(6)), ObjectStoreFullError);
    assert.equal(store.size(), 1);
  });
});

describe('seed Phase 2: init, remote add, get', () => {
  after(() => shutdown());

  test('await get(add.remote(1, 2)) === 3 on 2 workers', async () => {
    await init({ numWorkers: 2 });
    assert.equal(isInitialized(), true);
    const add = remote((a: number, b: number) => a + b);
    const result = await get(add.remote(1, 2));
    assert.ok(result === 3);
  });
});
