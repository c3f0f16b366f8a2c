/**
 * The node's object store: sealed, immutable objects keyed by ObjectID. An object is its encoded
 * bytes ("inline") plus, for large binary data, blocks in the shared-memory arena that every
 * worker of the node reads without a copy. This is also the seed's ObjectStore API
 * (put/get/delete/contains/size), for raw bytes.
 *
 * Memory: when the arena is full, the least recently used objects that nobody is reading (no
 * lease) are spilled to files and restored on their next read. A lease is held while some
 * thread may have views of an object's blocks; freeing waits for the last lease, so a view never
 * sees its memory reused. The node is the only writer, so none of this needs locks.
 */
import { largerThanStoreError, ObjectLostError, ObjectStoreFullError } from '../errors/index.js';
import { ObjectID } from '../ids/index.js';
import { ObjectRef, type OwnerAddress } from '../object-ref/index.js';
import { Arena, type ArenaStats, type Block } from './arena.js';
import { SpillDirectory } from './spill.js';

export type { Block, ArenaStats } from './arena.js';

export interface ObjectStoreStats {
  readonly objects: number;
  /** Bytes of inline data and arena blocks held in memory. */
  readonly usedBytes: number;
  readonly capacityBytes: number;
  readonly arena: ArenaStats;
  readonly spilledObjects: number;
  readonly spilledBytes: number;
}

/** A hold on an object's blocks while some thread may have views of them. */
export interface Lease {
  readonly blocks: readonly Block[];
  release(): void;
}

export interface ObjectStoreOptions {
  /** The address put() records as the owner of refs it creates. */
  readonly owner?: OwnerAddress;
  /** Size of a pooled arena slab. Default: an eighth of the capacity, between 1 MB and 64 MB. */
  readonly slabBytes?: number;
  /** Where spilled objects go. Default: a fresh folder in the system's temp directory. */
  readonly spillDirectory?: string;
  /** A dedicated slab went away: readers that were sent it should forget it. */
  readonly onSlabReleased?: (index: number) => void;
  /**
   * All memory is held by views that have not been garbage-collected yet: a good time for every
   * thread to collect. (The store meanwhile goes over capacity rather than fail.)
   */
  readonly onPressure?: () => void;
}

interface Stored {
  readonly data: Uint8Array;
  /** Arena blocks of its out-of-band parts (empty while spilled; never written to in place). */
  blocks: readonly Block[];
  /** Lengths of its parts (kept while spilled, to restore them). */
  readonly partLengths: readonly number[];
  /** Spill file, while spilled. */
  spillFile: string | undefined;
  /** Threads that may hold views of its blocks. */
  leases: number;
  /** Deleted while leased: its blocks go when the last lease does. */
  deleted: boolean;
}

type RefOrId = ObjectRef | ObjectID | string;
const keyOf = (target: RefOrId): string =>
  typeof target === 'string' ? target : target instanceof ObjectRef ? target.id.toHex() : target.toHex();

export class ObjectStore {
  /** In least-recently-used order (a read moves an object to the end). */
  private readonly objects = new Map<string, Stored>();
  private readonly leftovers = new Set<Stored>();
  private inlineBytes = 0;
  private spilledBytes = 0;
  private spilledCount = 0;
  private readonly arena: Arena;
  private readonly spill: SpillDirectory;
  private readonly owner: OwnerAddress;
  private readonly onSlabReleased: (index: number) => void;
  private readonly onPressure: () => void;

  /** @param capacityBytes most bytes held in memory; beyond it objects spill, then puts fail. */
  constructor(
    readonly capacityBytes: number,
    options: ObjectStoreOptions = {},
  ) {
    this.owner = options.owner ?? { nodeId: '', workerId: '' };
    this.onSlabReleased = options.onSlabReleased ?? (() => {});
    this.onPressure = options.onPressure ?? (() => {});
    const slabBytes = options.slabBytes ?? Math.min(64 << 20, Math.max(1 << 20, Math.floor(capacityBytes / 8)));
    this.arena = new Arena(capacityBytes, Math.min(slabBytes, capacityBytes), (index) => this.onSlabReleased(index));
    this.spill = new SpillDirectory(options.spillDirectory);
  }

  // ---- the seed's API: raw bytes -----------------------------------------------------------------

  /** Stores a copy of the bytes under a new ObjectID and returns its ref. */
  put(data: Uint8Array): ObjectRef<Uint8Array> {
    const id = ObjectID.fromRandom();
    this.putWithId(id.toHex(), Uint8Array.prototype.slice.call(data));
    return new ObjectRef<Uint8Array>(id, this.owner);
  }

  /** The object's encoded bytes, or undefined if the store does not hold it. */
  get(target: RefOrId): Uint8Array | undefined {
    return this.objects.get(keyOf(target))?.data;
  }

  delete(target: RefOrId): boolean {
    const id = keyOf(target);
    const stored = this.objects.get(id);
    if (stored === undefined) return false;
    this.objects.delete(id);
    this.inlineBytes -= stored.data.byteLength;
    if (stored.spillFile !== undefined) {
      this.spill.remove(stored.spillFile);
      this.spilledCount--;
      this.spilledBytes -= total(stored.partLengths);
    }
    if (stored.leases > 0) {
      stored.deleted = true;
      this.leftovers.add(stored);
    } else {
      this.releaseBlocks(stored);
    }
    return true;
  }

  contains(target: RefOrId): boolean {
    return this.objects.has(keyOf(target));
  }

  /** Number of objects held. */
  size(): number {
    return this.objects.size;
  }

  // ---- the runtime's API -------------------------------------------------------------------------

  /**
   * Stores an object under a known ObjectID, without copying its bytes: the runtime hands over
   * buffers it owns, and `blocks` it allocated with allocate()/adopt(). `evenIfFull`: store it
   * beyond capacity (a small error record that must not be lost).
   */
  putWithId(id: string, data: Uint8Array, options?: { evenIfFull?: boolean; blocks?: Block[] }): void {
    const blocks = options?.blocks ?? NO_BLOCKS;
    // An object stored again under its ID replaces the earlier bytes, which make room.
    const previous = this.objects.get(id);
    const inlineAfter = this.inlineBytes - (previous?.data.byteLength ?? 0) + data.byteLength;
    if (options?.evenIfFull !== true && inlineAfter + this.arena.reserved > this.capacityBytes) {
      this.makeInlineRoom(inlineAfter, data.byteLength, blocks);
    }
    if (previous !== undefined) this.delete(id);
    this.objects.set(id, {
      data,
      blocks,
      partLengths: blocks.length === 0 ? NO_LENGTHS : blocks.map((b) => b.length),
      spillFile: undefined,
      leases: 0,
      deleted: false,
    });
    this.inlineBytes += data.byteLength;
  }

  /**
   * Makes room for inline bytes, which share the capacity with the arena: empty arena slabs go
   * first, then objects spill. Memory held by views not yet collected does not fail an object
   * whose own bytes fit (the store goes over for a while); only one that can never fit fails.
   */
  private makeInlineRoom(inlineAfter: number, length: number, blocks: readonly Block[]): void {
    const fits = () => {
      if (inlineAfter + this.arena.reserved > this.capacityBytes) this.arena.shrinkTo(this.capacityBytes - inlineAfter);
      return inlineAfter + this.arena.reserved <= this.capacityBytes;
    };
    if (fits()) return;
    try {
      this.spillUntil(fits);
      if (!fits() && inlineAfter > this.capacityBytes) throw this.fullError(length);
      if (!fits()) this.onPressure();
    } catch (error) {
      for (const block of blocks) this.freeBlock(block);
      throw error;
    }
  }

  /** Room for `length` bytes in the arena, spilling objects nobody reads if needed. */
  allocate(length: number): Block {
    const block = this.withRoom(
      length,
      () => this.arena.allocate(length),
      () => this.arena.allocateBeyondCapacity(length),
    );
    // Three quarters full: ask every thread to collect garbage now, so that objects whose refs
    // were dropped are freed before anything has to spill.
    if (this.arena.stats().usedBytes > 0.75 * this.capacityBytes) this.onPressure();
    return block;
  }

  /** Takes over a worker's SharedArrayBuffer as an arena block, spilling if needed. */
  adopt(buffer: SharedArrayBuffer): Block {
    return this.withRoom(
      buffer.byteLength,
      () => this.arena.adopt(buffer),
      () => this.arena.adopt(buffer, true) as Block,
    );
  }

  /** A view of an arena block (for writing into a fresh block, or reading). */
  view(block: Block): Uint8Array {
    return this.arena.view(block);
  }

  /** The memory of an arena slab, to share with a worker. */
  slab(index: number): SharedArrayBuffer | undefined {
    return this.arena.slabBuffer(index);
  }

  /** Returns a block (of an object that was never stored, or freed). */
  freeBlock(block: Block): void {
    this.arena.free(block);
  }

  /**
   * An object's arena blocks, restored from disk first if it was spilled, with a lease on them:
   * they stay where they are (no spilling, no reuse) until the lease is released. Undefined for
   * an object with no blocks (nothing to protect) or no such object.
   */
  lease(id: string): Lease | undefined {
    const stored = this.objects.get(id);
    if (stored === undefined || stored.partLengths.length === 0) return undefined; // inline only: nothing to protect
    this.objects.delete(id); // most recently used: to the end
    this.objects.set(id, stored);
    if (stored.spillFile !== undefined) this.restore(stored);
    stored.leases++;
    let released = false;
    return {
      blocks: stored.blocks,
      release: () => {
        if (released) return;
        released = true;
        stored.leases--;
        if (stored.leases === 0 && stored.deleted) {
          this.leftovers.delete(stored);
          this.releaseBlocks(stored);
        }
      },
    };
  }

  /** Whether an object has out-of-band parts (in the arena or spilled): only those need leases. */
  hasParts(id: string): boolean {
    return (this.objects.get(id)?.partLengths.length ?? 0) > 0;
  }

  /** Size of an object: inline bytes plus its parts. */
  sizeOf(id: string): number {
    const stored = this.objects.get(id);
    return stored === undefined ? 0 : stored.data.byteLength + total(stored.partLengths);
  }

  /** How many leases (threads that may hold views of its memory) an object has. */
  leasesOf(id: string): number {
    return this.objects.get(id)?.leases ?? 0;
  }

  /** Where an object is: in memory, or spilled to disk. */
  locationOf(id: string): 'memory' | 'disk' | undefined {
    const stored = this.objects.get(id);
    if (stored === undefined) return undefined;
    return stored.spillFile === undefined ? 'memory' : 'disk';
  }

  stats(): ObjectStoreStats {
    const arena = this.arena.stats();
    return {
      objects: this.objects.size,
      usedBytes: this.inlineBytes + arena.usedBytes,
      capacityBytes: this.capacityBytes,
      arena,
      spilledObjects: this.spilledCount,
      spilledBytes: this.spilledBytes,
    };
  }

  /** Starts warming arena memory ahead of the first large object. */
  warmUp(): void {
    this.arena.warmAhead();
  }

  clear(): void {
    this.objects.clear();
    this.leftovers.clear();
    this.inlineBytes = 0;
    this.spilledBytes = 0;
    this.spilledCount = 0;
    this.arena.close();
    this.spill.clear();
  }

  // ---- internals ---------------------------------------------------------------------------------

  /**
   * Takes room for `length` bytes: from free memory, else by spilling objects nobody reads, else
   * (everything in memory is being read through views not yet garbage-collected) past the
   * capacity, for as long as those views live. Only an object larger than the whole store, or a
   * spill the disk refuses, fails.
   */
  private withRoom(length: number, take: () => Block | undefined, takeBeyondCapacity: () => Block): Block {
    if (!this.arena.fits(length)) throw largerThanStoreError(length, this.capacityBytes);
    let block = take();
    if (block !== undefined) return block;
    this.spillUntil(() => (block = take()) !== undefined);
    if (block !== undefined) return block;
    this.onPressure();
    return takeBeyondCapacity();
  }

  /** Spills least recently used, unleased objects until `done()` or nothing is left to spill. */
  private spillUntil(done: () => boolean): void {
    for (const [id, stored] of this.objects) {
      if (stored.leases > 0 || stored.blocks.length === 0 || stored.spillFile !== undefined) continue;
      const parts = stored.blocks.map((block) => this.arena.view(block));
      try {
        stored.spillFile = this.spill.write(id, parts);
      } catch (error) {
        throw new ObjectStoreFullError(
          `object store is full and spilling to ${this.spill.path} failed (${(error as Error).message}). ` +
            'Free disk space, or raise objectStoreMemory in init().',
        );
      }
      this.spilledCount++;
      this.spilledBytes += total(stored.partLengths);
      this.releaseBlocks(stored);
      if (done()) return;
    }
  }

  private restore(stored: Stored): void {
    const file = stored.spillFile as string;
    const blocks: Block[] = [];
    try {
      for (const length of stored.partLengths) blocks.push(this.allocate(length));
    } catch (error) {
      for (const block of blocks) this.freeBlock(block);
      throw error;
    }
    try {
      this.spill.read(file, blocks.map((block) => this.arena.view(block)));
    } catch (error) {
      for (const block of blocks) this.freeBlock(block);
      throw new ObjectLostError(`a spilled object could not be read back from ${file}: ${(error as Error).message}`);
    }
    this.spill.remove(file);
    stored.blocks = blocks;
    stored.spillFile = undefined;
    this.spilledCount--;
    this.spilledBytes -= total(stored.partLengths);
  }

  private releaseBlocks(stored: Stored): void {
    for (const block of stored.blocks) this.freeBlock(block);
    stored.blocks = [];
  }

  private fullError(length: number): ObjectStoreFullError {
    const { usedBytes } = this.stats();
    return new ObjectStoreFullError(
      `object store is full: an object of ${length} bytes does not fit ` +
        `(${usedBytes} of ${this.capacityBytes} bytes in use, ${Math.max(0, this.capacityBytes - usedBytes)} free), ` +
        'and nothing left can be spilled to disk. Raise objectStoreMemory in init().',
    );
  }
}

const total = (lengths: readonly number[]): number => lengths.reduce((a, b) => a + b, 0);
const NO_BLOCKS: Block[] = [];
const NO_LENGTHS: readonly number[] = Object.freeze([]);
