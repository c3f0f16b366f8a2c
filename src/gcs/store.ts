/**
 * Where the GCS keeps its tables. Small and async on purpose: InMemoryStoreClient (the default: a
 * restarted head is a new cluster) and RedisStoreClient (redis-store.ts: a hash per table, a
 * counter for job ids, so that a head restarted on the same Redis finds its tables again).
 */

/** What a table holds: plain values msgpack encodes as they are. */
export type StoreValue =
  | null
  | undefined
  | boolean
  | number
  | string
  | Uint8Array
  | readonly StoreValue[]
  | { readonly [key: string]: StoreValue };

export interface StoreClient {
  /** Sets `key` in `table`, replacing what was there. */
  put(table: string, key: string, value: StoreValue): Promise<void>;
  get(table: string, key: string): Promise<StoreValue | undefined>;
  /** Every entry of `table`, in no particular order. */
  getAll(table: string): Promise<ReadonlyMap<string, StoreValue>>;
  /** True when there was such a key. */
  delete(table: string, key: string): Promise<boolean>;
  /** 1, 2, 3, ...: never the same twice for one store. */
  nextJobId(): Promise<number>;
  /** Lets go of connections (the tables stay where they are kept). */
  close(): Promise<void>;
}

/**
 * The tables in this process's memory. Values are copied in and out, as a store that encodes
 * them would: a caller that changes an object after put (or one it got) does not change the table.
 */
export class InMemoryStoreClient implements StoreClient {
  private readonly tables = new Map<string, Map<string, StoreValue>>();
  private lastJobId = 0;

  async put(table: string, key: string, value: StoreValue): Promise<void> {
    let entries = this.tables.get(table);
    if (entries === undefined) this.tables.set(table, (entries = new Map()));
    entries.set(key, structuredClone(value));
  }

  async get(table: string, key: string): Promise<StoreValue | undefined> {
    const value = this.tables.get(table)?.get(key);
    return value === undefined ? undefined : structuredClone(value);
  }

  async getAll(table: string): Promise<ReadonlyMap<string, StoreValue>> {
    const entries = this.tables.get(table);
    return entries === undefined ? new Map() : structuredClone(entries);
  }

  async delete(table: string, key: string): Promise<boolean> {
    return this.tables.get(table)?.delete(key) ?? false;
  }

  async nextJobId(): Promise<number> {
    return ++this.lastJobId;
  }

  async close(): Promise<void> {}
}
