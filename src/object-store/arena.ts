/**
 * The node's shared-memory arena: SharedArrayBuffer slabs that every worker thread of the node
 * maps, so a large binary value is written once and read everywhere as a view, never copied.
 *
 * Slabs: pooled slabs of `slabBytes`, created as the store grows and reused after frees (their
 * pages stay warm); and dedicated slabs, one object at a time, for objects larger than a pooled
 * slab and for buffers a worker wrote into a SharedArrayBuffer of its own (the node adopts them
 * rather than copy). A freed dedicated slab is kept for the next object of about its size, warm,
 * until its memory is needed elsewhere. Allocation happens only here, in the node's thread, so it needs no lock; workers get
 * their destination from the node, or write into memory of their own that the node adopts.
 *
 * First-touch page faults make writes into new memory 20-50x slower than into warm memory, so the
 * next pooled slab is created and touched ahead of need, a few megabytes per turn of the event loop.
 */

/** Where a block lives: slab index, byte offset, byte length. */
export interface Block {
  readonly slab: number;
  readonly offset: number;
  readonly length: number;
}

interface FreeRange {
  offset: number;
  length: number;
}

interface Slab {
  readonly buffer: SharedArrayBuffer;
  readonly dedicated: boolean;
  /** Free ranges, sorted by offset (pooled slabs only). */
  free: FreeRange[];
  used: number;
}

const ALIGN = 64; // cache-line aligned, and aligned for every typed array element size
const PAGE = 4096;
const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

export interface ArenaStats {
  readonly capacityBytes: number;
  readonly usedBytes: number;
  /** Bytes of slab memory created so far (pooled and dedicated). */
  readonly reservedBytes: number;
  readonly slabs: number;
}

export class Arena {
  private readonly slabs: Array<Slab | undefined> = [];
  private usedBytes = 0;
  private reservedBytes = 0;
  /** A pooled slab being touched ahead of need, and how far. */
  private warming: { buffer: SharedArrayBuffer; touched: number } | undefined;
  private warmTimer: NodeJS.Immediate | undefined;

  /** @param onRelease told when a slab's memory is let go of (readers should drop it too). */
  constructor(
    readonly capacityBytes: number,
    readonly slabBytes: number,
    private readonly onRelease: (index: number) => void = () => {},
  ) {}

  /** Bytes of slab memory created and not yet released (what counts against the capacity). */
  get reserved(): number {
    return this.reservedBytes;
  }

  /** The slab's memory (to share with a worker), or undefined once a dedicated slab is gone. */
  slabBuffer(index: number): SharedArrayBuffer | undefined {
    return this.slabs[index]?.buffer;
  }

  /** A view of a block. */
  view(block: Block): Uint8Array {
    const slab = this.slabs[block.slab];
    if (slab === undefined) throw new Error(`arena slab ${block.slab} is gone`);
    return new Uint8Array(slab.buffer, block.offset, block.length);
  }

  /** Room for `length` bytes, or undefined when the arena is at capacity (the caller may spill). */
  allocate(length: number): Block | undefined {
    const size = alignUp(Math.max(length, 1));
    if (size > this.slabBytes) return this.allocateDedicated(length);
    for (let index = 0; index < this.slabs.length; index++) {
      const slab = this.slabs[index];
      if (slab === undefined || slab.dedicated) continue;
      const block = this.takeFrom(slab, index, size, length);
      if (block) return block;
    }
    if (!this.makeRoomFor(this.slabBytes)) return undefined;
    const index = this.addSlab(this.takeWarmSlab(), false);
    return this.takeFrom(this.slabs[index] as Slab, index, size, length);
  }

  /**
   * Takes over a SharedArrayBuffer written by a worker, as a dedicated slab; undefined if over
   * capacity, unless `beyondCapacity`.
   */
  adopt(buffer: SharedArrayBuffer, beyondCapacity = false): Block | undefined {
    if (!this.makeRoomFor(buffer.byteLength) && !beyondCapacity) return undefined;
    const index = this.addSlab(buffer, true);
    this.usedBytes += buffer.byteLength;
    (this.slabs[index] as Slab).used = buffer.byteLength;
    return { slab: index, offset: 0, length: buffer.byteLength };
  }

  /** Gives a block back. */
  free(block: Block): void {
    const slab = this.slabs[block.slab];
    if (slab === undefined) return;
    if (slab.dedicated) {
      this.usedBytes -= slab.used;
      slab.used = 0;
      // Kept for reuse, unless the arena is over its capacity (it went past it for a while).
      if (this.reservedBytes > this.capacityBytes) this.release(block.slab);
      return;
    }
    const size = alignUp(Math.max(block.length, 1));
    slab.used -= size;
    this.usedBytes -= size;
    insertFree(slab.free, { offset: block.offset, length: size });
  }

  /** Whether `length` more bytes could ever fit (for a clear error instead of endless spilling). */
  fits(length: number): boolean {
    return alignUp(length) <= this.capacityBytes;
  }

  stats(): ArenaStats {
    return {
      capacityBytes: this.capacityBytes,
      usedBytes: this.usedBytes,
      reservedBytes: this.reservedBytes,
      slabs: this.slabs.filter((s) => s !== undefined).length,
    };
  }

  /** Starts touching the next pooled slab in the background (no-op if at capacity or warm already). */
  warmAhead(): void {
    if (this.warming !== undefined || this.reservedBytes + this.slabBytes > this.capacityBytes) return;
    this.warming = { buffer: new SharedArrayBuffer(this.slabBytes), touched: 0 };
    const step = () => {
      const warming = this.warming;
      if (warming === undefined) return;
      const bytes = new Uint8Array(warming.buffer);
      const end = Math.min(warming.touched + 4 * 1024 * 1024, bytes.length);
      for (let i = warming.touched; i < end; i += PAGE) bytes[i] = 0;
      warming.touched = end;
      this.warmTimer = end < bytes.length ? setImmediate(step) : undefined;
      this.warmTimer?.unref();
    };
    this.warmTimer = setImmediate(step);
    this.warmTimer.unref();
  }

  close(): void {
    if (this.warmTimer) clearImmediate(this.warmTimer);
    this.warming = undefined;
    this.slabs.length = 0;
    this.usedBytes = 0;
    this.reservedBytes = 0;
  }

  private takeWarmSlab(): SharedArrayBuffer {
    const warming = this.warming;
    this.warming = undefined;
    if (this.warmTimer) clearImmediate(this.warmTimer);
    const buffer = warming?.buffer ?? new SharedArrayBuffer(this.slabBytes);
    queueMicrotask(() => this.warmAhead());
    return buffer;
  }

  /**
   * Releases empty pooled slabs until at most `bytes` of slab memory are reserved (or none is
   * empty); for room outside the arena, such as inline objects.
   */
  shrinkTo(bytes: number): void {
    this.makeRoomFor(this.capacityBytes - bytes);
  }

  /** Whether `length` more bytes of slab memory fit, releasing empty slabs if that helps. */
  private makeRoomFor(length: number): boolean {
    for (let index = 0; this.reservedBytes + length > this.capacityBytes && index < this.slabs.length; index++) {
      if (this.slabs[index]?.used === 0) this.release(index);
    }
    return this.reservedBytes + length <= this.capacityBytes;
  }

  /** Lets go of an empty slab's memory (it goes once no view of it is left anywhere). */
  private release(index: number): void {
    const slab = this.slabs[index];
    if (slab === undefined) return;
    this.reservedBytes -= slab.buffer.byteLength;
    this.slabs[index] = undefined;
    this.onRelease(index);
  }

  /**
   * A dedicated block past the capacity: for when all memory is in use by views that have not been
   * collected yet. Going over for a while beats failing; the memory goes with the last view.
   */
  allocateBeyondCapacity(length: number): Block {
    return this.allocateDedicated(length, true) as Block;
  }

  private allocateDedicated(length: number, beyondCapacity = false): Block | undefined {
    // A free dedicated slab of about this size first: its pages are warm.
    let best: number | undefined;
    for (let index = 0; index < this.slabs.length; index++) {
      const slab = this.slabs[index];
      if (slab === undefined || !slab.dedicated || slab.used !== 0) continue;
      const size = slab.buffer.byteLength;
      if (size >= length && size <= 2 * length && (best === undefined || size < (this.slabs[best] as Slab).buffer.byteLength)) best = index;
    }
    if (best !== undefined) {
      (this.slabs[best] as Slab).used = length;
      this.usedBytes += length;
      return { slab: best, offset: 0, length };
    }
    if (!this.makeRoomFor(length) && !beyondCapacity) return undefined;
    const index = this.addSlab(new SharedArrayBuffer(length), true);
    (this.slabs[index] as Slab).used = length;
    this.usedBytes += length;
    return { slab: index, offset: 0, length };
  }

  private addSlab(buffer: SharedArrayBuffer, dedicated: boolean): number {
    const slab: Slab = { buffer, dedicated, free: dedicated ? [] : [{ offset: 0, length: buffer.byteLength }], used: 0 };
    this.reservedBytes += buffer.byteLength;
    let index = this.slabs.indexOf(undefined);
    if (index < 0) index = this.slabs.push(slab) - 1;
    else this.slabs[index] = slab;
    return index;
  }

  private takeFrom(slab: Slab, index: number, size: number, length: number): Block | undefined {
    for (let i = 0; i < slab.free.length; i++) {
      const range = slab.free[i] as FreeRange;
      if (range.length < size) continue;
      const offset = range.offset;
      range.offset += size;
      range.length -= size;
      if (range.length === 0) slab.free.splice(i, 1);
      slab.used += size;
      this.usedBytes += size;
      return { slab: index, offset, length };
    }
    return undefined;
  }
}

/** Inserts a free range in offset order, merging it with its neighbours. */
function insertFree(free: FreeRange[], range: FreeRange): void {
  let i = 0;
  while (i < free.length && (free[i] as FreeRange).offset < range.offset) i++;
  free.splice(i, 0, range);
  const next = free[i + 1];
  if (next && range.offset + range.length === next.offset) {
    range.length += next.length;
    free.splice(i + 1, 1);
  }
  const previous = free[i - 1];
  if (previous && previous.offset + previous.length === range.offset) {
    previous.length += range.length;
    free.splice(i, 1);
  }
}
