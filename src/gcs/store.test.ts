/**
 * The StoreClient contract, run against both stores: what the GCS may rely on holds the same in
 * memory and in a real redis-server (started here on a free port), plus what only Redis has:
 * tables that outlive the client, prefixes that keep clusters apart, and typed errors that name
 * the address.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { GcsStoreError } from '../errors/index.js';
import { startRedis, type TestRedis } from '../../test/cluster/redis.js';
import { RedisStoreClient } from './redis-store.js';
import { InMemoryStoreClient, type StoreClient, type StoreValue } from './store.js';

let redis: TestRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

const redisStore = (namespace = `test-${randomBytes(4).toString('hex')}`): Promise<RedisStoreClient> =>
  RedisStoreClient.connect({ host: '127.0.0.1', port: redis.port, namespace });

const stores: [string, () => Promise<StoreClient>][] = [
  ['InMemoryStoreClient', async () => new InMemoryStoreClient()],
  ['RedisStoreClient', () => redisStore()],
];

const row: StoreValue = {
  nodeId: 'ab'.repeat(16),
  alive: true,
  resources: { CPU: 2, 'x/y': 0.5 },
  methodNames: ['a', 'b'],
  bytes: new Uint8Array([0, 1, 255]),
  nested: [{ deep: [null, false, -1.5, 'é'] }],
  empty: {},
};

for (const [name, make] of stores) {
  describe(`StoreClient contract: ${name}`, () => {
    let store: StoreClient;
    before(async () => {
      store = await make();
    });
    after(async () => {
      await store.close();
    });

    test('put then get gives the same value back, every StoreValue kind', async () => {
      await store.put('nodes', 'n1', row);
      assert.deepEqual(await store.get('nodes', 'n1'), row);
      for (const [key, value] of [['null', null], ['t', true], ['n', 42], ['s', ''], ['b', new Uint8Array(0)], ['a', []]] as const) {
        await store.put('kinds', key, value);
        assert.deepEqual(await store.get('kinds', key), value, key);
      }
    });

    test('a missing key or table is undefined; getAll of a missing table is empty', async () => {
      assert.equal(await store.get('nodes', 'nobody'), undefined);
      assert.equal(await store.get('no-such-table', 'x'), undefined);
      assert.equal((await store.getAll('no-such-table')).size, 0);
    });

    test('put replaces; values are copies (changing one after put or get changes nothing)', async () => {
      const value = { n: 1, list: [1] };
      await store.put('copies', 'k', value);
      value.n = 2;
      value.list.push(2);
      const got = (await store.get('copies', 'k')) as { n: number; list: number[] };
      assert.deepEqual(got, { n: 1, list: [1] });
      got.list.push(3);
      assert.deepEqual(await store.get('copies', 'k'), { n: 1, list: [1] });
      await store.put('copies', 'k', 'replaced');
      assert.equal(await store.get('copies', 'k'), 'replaced');
    });

    test('getAll lists every entry of one table only; delete says whether there was one', async () => {
      await store.put('t1', 'a', 1);
      await store.put('t1', 'b', { x: 2 });
      await store.put('t2', 'a', 'other table');
      assert.deepEqual(new Map(await store.getAll('t1')), new Map<string, StoreValue>([['a', 1], ['b', { x: 2 }]]));
      assert.equal(await store.delete('t1', 'a'), true);
      assert.equal(await store.delete('t1', 'a'), false);
      assert.equal(await store.delete('no-such-table', 'a'), false);
      assert.deepEqual([...(await store.getAll('t1')).keys()], ['b']);
      assert.equal(await store.get('t2', 'a'), 'other table');
    });

    test('keys and table names with odd characters stay apart', async () => {
      const keys = ['', ':', 'a:b', '["ns","name"]', 'ü', ' '];
      for (const [i, key] of keys.entries()) await store.put('kv/fun:x', key, i);
      assert.equal((await store.getAll('kv/fun:x')).size, keys.length);
      for (const [i, key] of keys.entries()) assert.equal(await store.get('kv/fun:x', key), i);
      assert.equal((await store.getAll('kv/fun')).size, 0);
    });

    test('nextJobId counts 1, 2, 3, ... and never repeats, even when asked at once', async () => {
      const first = await store.nextJobId();
      const many = await Promise.all(Array.from({ length: 50 }, () => store.nextJobId()));
      assert.equal(first, 1);
      assert.deepEqual([...many].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 2));
    });
  });
}

describe('RedisStoreClient only', () => {
  test('a new client on the same Redis and namespace finds the tables and the job counter', async () => {
    const namespace = `again-${randomBytes(4).toString('hex')}`;
    const first = await redisStore(namespace);
    await first.put('actors', 'a1', { state: 'ALIVE' });
    assert.equal(await first.nextJobId(), 1);
    await first.close();
    const second = await redisStore(namespace);
    try {
      assert.deepEqual(await second.get('actors', 'a1'), { state: 'ALIVE' });
      assert.equal(await second.nextJobId(), 2);
    } finally {
      await second.close();
    }
  });

  test('two namespaces on one Redis do not see each other', async () => {
    const [a, b] = await Promise.all([redisStore(), redisStore()]);
    try {
      await a.put('nodes', 'n', 'a');
      assert.equal(await b.get('nodes', 'n'), undefined);
      assert.equal(await a.nextJobId(), 1);
      assert.equal(await b.nextJobId(), 1);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  test('no Redis at the address: GcsStoreError at connect, naming the address and the flag', async () => {
    const { freePort } = await import('../../test/cluster/redis.js');
    const port = await freePort();
    await assert.rejects(RedisStoreClient.connect({ host: '127.0.0.1', port, connectTimeoutMs: 2_000 }), (error: unknown) => {
      assert.ok(error instanceof GcsStoreError, String(error));
      assert.match(error.message, new RegExp(`Redis at 127\\.0\\.0\\.1:${port}`));
      assert.match(error.message, /--redis-address/);
      return true;
    });
  });

  test('a wrong password: GcsStoreError naming --redis-password, and the password is not in it', async () => {
    const locked = await startRedis(['--requirepass', 'right-secret']);
    try {
      await assert.rejects(RedisStoreClient.connect({ host: '127.0.0.1', port: locked.port, password: 'wrong-secret' }), (error: unknown) => {
        assert.ok(error instanceof GcsStoreError, String(error));
        assert.match(error.message, /--redis-password/);
        assert.doesNotMatch(error.message, /secret/);
        return true;
      });
      const store = await RedisStoreClient.connect({ host: '127.0.0.1', port: locked.port, password: 'right-secret' });
      await store.put('t', 'k', 1);
      assert.equal(await store.get('t', 'k'), 1);
      await store.close();
    } finally {
      await locked.stop();
    }
  });

  test('Redis gone after connect: each operation fails with a GcsStoreError naming the address and table', async () => {
    const doomed = await startRedis();
    const store = await RedisStoreClient.connect({ host: '127.0.0.1', port: doomed.port, connectTimeoutMs: 500 });
    try {
      await store.put('t', 'k', 1);
      await doomed.stop();
      await assert.rejects(store.get('nodes', 'k'), (error: unknown) => {
        assert.ok(error instanceof GcsStoreError, String(error));
        assert.match(error.message, new RegExp(`Redis at 127\\.0\\.0\\.1:${doomed.port}.*get of table 'nodes'`));
        return true;
      });
    } finally {
      await store.close();
    }
  });

  test('a value under the prefix that is not a row: GcsStoreError that suggests another namespace', async () => {
    const namespace = `foreign-${randomBytes(4).toString('hex')}`;
    const store = await redisStore(namespace);
    try {
      // Another program's bytes in the same hash (a msgpack string cut short).
      await (store as unknown as { redis: { hset(k: string, f: string, v: Buffer): Promise<number> } }).redis.hset(`${namespace}:t:nodes`, 'x', Buffer.from([0xd9, 0xff, 0x41]));
      await assert.rejects(store.get('nodes', 'x'), /--redis-namespace/);
    } finally {
      await store.close();
    }
  });
});
