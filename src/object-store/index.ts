/**
 * The node's object store: sealed, immutable byte blobs keyed by ObjectID. This is the seed's
 * ObjectStore API (put/get/delete/contains/size). The node owns it and is its only writer; workers
 * reach it through the node's channel, so it needs no locks. The shared-memory arena (large objects
 * in a SharedArrayBuffer read by workers without copies, spilling) replaces this class's insides
 * behind the same interface.
 */
import { ObjectStoreFullError } from '../errors/index.js';
import { ObjectID } from '../ids/index.js';
import { ObjectRef, type OwnerAddress } from '../object-ref/index.js';

export interface ObjectStoreStats {
  readonly objects: number;
  readonly usedBytes: number;
  readonly capacityBytes: number;
}

type RefOrId = ObjectRef | ObjectID | string;
const keyOf = (target: RefOrId): string =>
  typeof target === 'string' ? target : target instanceof ObjectRef ? target.id.toHex() : target.toHex();

export class ObjectStore {
  private readonly objects = new Map<string, Uint8Array>();
  private usedBytes = 0;

  /**
   * @param capacityBytes most bytes the store holds; a put beyond it throws ObjectStoreFullError.
   * @param owner the address put() records as the owner of refs it creates.
   */
  constructor(
    readonly capacityBytes: number,
    private readonly owner: OwnerAddress = { nodeId: '', workerId: '' },
  ) {}

  /** Stores a copy of the bytes under a new ObjectID and returns its ref. */
  put(data: Uint8Array): ObjectRef<Uint8Array> {
    const id = ObjectID.fromRandom();
    this.putWithId(id.toHex(), Uint8Array.prototype.slice.call(data));
    return new ObjectRef<Uint8Array>(id, this.owner);
  }

  /**
   * Stores bytes under a known ObjectID (a task's return, a put from a worker), without copying:
   * the runtime hands over buffers it owns. An existing ID is replaced only by a retry.
   * `evenIfFull`: store it beyond capacity (a small error record that must not be lost).
   */
  putWithId(id: string, data: Uint8Array, { evenIfFull = false } = {}): void {
    const previous = this.objects.get(id);
    const added = data.byteLength - (previous?.byteLength ?? 0);
    if (!evenIfFull && this.usedBytes + added > this.capacityBytes) {
      throw new ObjectStoreFullError(
        `object store is full: an object of ${data.byteLength} bytes does not fit ` +
          `(${this.usedBytes} of ${this.capacityBytes} bytes in use, ${this.capacityBytes - this.usedBytes} free). ` +
          'Raise objectStoreMemory in init().',
      );
    }
    this.objects.set(id, data);
    this.usedBytes += added;
  }

  /** The object's bytes, or undefined if the store does not hold it. */
  get(target: RefOrId): Uint8Array | undefined {
    return this.objects.get(keyOf(target));
  }

  delete(target: RefOrId): boolean {
    const id = keyOf(target);
    const data = this.objects.get(id);
    if (data === undefined) return false;
    this.objects.delete(id);
    this.usedBytes -= data.byteLength;
    return true;
  }

  contains(target: RefOrId): boolean {
    return this.objects.has(keyOf(target));
  }

  /** Number of objects held. */
  size(): number {
    return this.objects.size;
  }

  stats(): ObjectStoreStats {
    return { objects: this.objects.size, usedBytes: this.usedBytes, capacityBytes: this.capacityBytes };
  }

  clear(): void {
    this.objects.clear();
    this.usedBytes = 0;
  }
}
