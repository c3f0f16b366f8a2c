/**
 * The GCS's tables in Redis (`miniray start --head --redis-address HOST:PORT`), so that a head
 * restarted on the same Redis finds them again (Ray's RedisStoreClient). Layout, under a prefix
 * so that clusters can share one Redis (each with its own --redis-namespace):
 *
 *   <prefix>:t:<table>   a hash: field = key, value = the msgpack of the StoreValue
 *   <prefix>:jobs        the counter nextJobId() increments (INCR, so it never repeats)
 *
 * Every failure is a GcsStoreError naming the Redis address (never the password) and the
 * operation; a Redis that does not answer fails requests after a few retries instead of holding
 * them forever.
 */
import { Redis } from 'ioredis';
import { Packr } from 'msgpackr';
import { GcsStoreError } from '../errors/index.js';
import type { StoreClient, StoreValue } from './store.js';

export interface RedisStoreOptions {
  readonly host: string;
  readonly port: number;
  readonly password?: string;
  /** Keys start with `<namespace>:`; default 'miniray'. */
  readonly namespace?: string;
  /** How long connecting (and each reconnect attempt) may take; default 5000. */
  readonly connectTimeoutMs?: number;
}

const codec = new Packr({ useRecords: false, moreTypes: false });

/** msgpackr gives Buffers for binary: turned into plain Uint8Arrays, as the in-memory store keeps them. */
function plain(value: unknown): StoreValue {
  if (value instanceof Uint8Array) return Buffer.isBuffer(value) ? new Uint8Array(value) : value;
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, StoreValue> = {};
    for (const [key, field] of Object.entries(value)) out[key] = plain(field);
    return out;
  }
  return value as StoreValue;
}

export class RedisStoreClient implements StoreClient {
  /** host:port, for messages: the password is never part of it. */
  readonly address: string;
  private readonly prefix: string;
  private readonly redis: Redis;
  private closing = false;
  private lastError: string | undefined;

  private constructor(options: RedisStoreOptions) {
    this.address = `${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
    this.prefix = options.namespace ?? 'miniray';
    this.redis = new Redis({
      host: options.host,
      port: options.port,
      ...(options.password === undefined || options.password === '' ? {} : { password: options.password }),
      lazyConnect: true,
      connectTimeout: options.connectTimeoutMs ?? 5_000,
      // A command waits through a short Redis blip (a few reconnects), then fails: the GCS's
      // caller gets a GcsStoreError rather than an answer that never comes.
      maxRetriesPerRequest: 3,
      retryStrategy: (attempt) => (this.closing ? null : Math.min(100 * 2 ** attempt, 2_000)),
    });
    // ioredis reports connection trouble as 'error' events too; the failed commands say it to
    // their callers, so the events only must not be unhandled. The last one says why a connect
    // failed (a refused password shows only there).
    this.redis.on('error', (error: Error) => (this.lastError = error.message));
  }

  /**
   * Connects and checks the password: a Redis that is not there or refuses it fails here, at the
   * head's start, with a message that says which flag to fix.
   */
  static async connect(options: RedisStoreOptions): Promise<RedisStoreClient> {
    const store = new RedisStoreClient(options);
    try {
      await store.redis.connect();
      await store.redis.ping();
    } catch (error) {
      await store.close();
      const message = error instanceof Error ? error.message : String(error);
      const why = store.lastError !== undefined && store.lastError !== message ? `${store.lastError} (${message})` : message;
      const hint = /NOAUTH|WRONGPASS|AUTH/i.test(why)
        ? 'check --redis-password (or MINIRAY_REDIS_PASSWORD)'
        : 'check --redis-address (or MINIRAY_REDIS_ADDRESS) and that redis-server runs there';
      throw new GcsStoreError(`cannot use Redis at ${store.address}: ${why}; ${hint}`, { cause: error });
    }
    return store;
  }

  async put(table: string, key: string, value: StoreValue): Promise<void> {
    await this.run('put', table, () => this.redis.hset(this.key(table), key, codec.pack(value)));
  }

  async get(table: string, key: string): Promise<StoreValue | undefined> {
    const bytes = await this.run('get', table, () => this.redis.hgetBuffer(this.key(table), key));
    return bytes === null ? undefined : this.decode(bytes, table, key);
  }

  async getAll(table: string): Promise<ReadonlyMap<string, StoreValue>> {
    const all = await this.run('getAll', table, () => this.redis.hgetallBuffer(this.key(table)));
    const entries = new Map<string, StoreValue>();
    for (const [key, bytes] of Object.entries(all)) entries.set(key, this.decode(bytes, table, key));
    return entries;
  }

  async delete(table: string, key: string): Promise<boolean> {
    return (await this.run('delete', table, () => this.redis.hdel(this.key(table), key))) > 0;
  }

  async nextJobId(): Promise<number> {
    return this.run('nextJobId', 'jobs', () => this.redis.incr(`${this.prefix}:jobs`));
  }

  async close(): Promise<void> {
    this.closing = true;
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect(); // not connected: nothing to say goodbye to
    }
  }

  private key(table: string): string {
    return `${this.prefix}:t:${table}`;
  }

  private async run<T>(operation: string, table: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new GcsStoreError(
        `the GCS's store, Redis at ${this.address}, failed ${operation} of table '${table}': ${why}; check that redis-server runs there and answers`,
        { cause: error },
      );
    }
  }

  private decode(bytes: Buffer, table: string, key: string): StoreValue {
    try {
      return plain(codec.unpack(bytes));
    } catch (error) {
      throw new GcsStoreError(
        `Redis at ${this.address} holds a value under '${this.key(table)}' field '${key}' that is not a miniray table row: ` +
          `is another program using namespace '${this.prefix}'? Give this cluster its own --redis-namespace`,
        { cause: error },
      );
    }
  }
}
