/**
 * What a reader is sent of an object, and how objects from workers are taken in: inline bytes
 * always; large binary parts as arena blocks (sending each worker thread a slab the first time it
 * needs it), or as copies for a worker process; leases on blocks handed out; parts a worker
 * attached, adopted into the arena. Also the node's side of memory pressure: telling workers to
 * forget released slabs and to collect garbage.
 *
 * Parts from a worker are untrusted: checkParts() says what is wrong with them before anything is
 * stored, and storeResult() reports a result that does not match its task.
 */
import type { ObjectIdHex } from '../ids/index.js';
import { collectGarbage } from '../core-worker/index.js';
import { ProtocolError, WorkerCrashedError } from '../errors/index.js';
import type { Block, ObjectStore } from '../object-store/index.js';
import type { ObjectDirectory, ObjectEntry } from '../ownership/index.js';
import type { ExecuteTask, ObjectPayload, Part, TaskResult } from '../protocol/index.js';
import { encodeError } from '../serialization/index.js';
import type { PooledWorker } from '../worker-pool/index.js';

type Worker = PooledWorker<unknown>;

const EMPTY = new Uint8Array(0);
const NO_BLOCKS: Block[] = []; // shared, never written to
const NO_ARGUMENTS = Object.freeze({ refArgValues: Object.freeze([]) as readonly Uint8Array[] });

export class ObjectDelivery<P> {
  constructor(
    private readonly store: ObjectStore,
    private readonly objects: ObjectDirectory<P>,
    /** The driver's worker ID (the holder of the driver's leases). */
    private readonly driverId: () => string,
    /** The node's live workers and actor hosts. */
    private readonly workers: () => Worker[],
    /** A worker sent something that does not fit what it was asked (it is then handled as crashed). */
    private readonly onBadMessage: (worker: Worker, problem: string) => void,
  ) {}

  /** The attachments of the frame being read, and which of them parts have claimed so far. */
  private claimedFrom: readonly SharedArrayBuffer[] | undefined;
  private readonly claimed = new Set<number>();

  /**
   * What is wrong with the parts of a value from a worker, or undefined. A worker sends new parts
   * as attachments of its frame (each adopted once, so each may be named once) or as bytes; arena
   * blocks are placed by the node alone, so a worker cannot name one.
   */
  checkParts(parts: readonly Part[] | undefined, attached: readonly SharedArrayBuffer[], where: string): string | undefined {
    if (parts === undefined) return undefined;
    if (this.claimedFrom !== attached) {
      this.claimedFrom = attached;
      this.claimed.clear();
    }
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as Part;
      if ('attached' in part) {
        const index = part.attached;
        if (index >= attached.length) {
          return `${where} part ${i} is attachment ${index}, but its frame has ${attached.length} attachment${attached.length === 1 ? '' : 's'}`;
        }
        if (this.claimed.has(index)) return `${where} part ${i} is attachment ${index}, which another part of the same frame already is`;
        this.claimed.add(index);
      } else if (!('bytes' in part)) {
        const slab = this.store.slab(part.slab);
        const inArena = slab !== undefined && part.offset + part.length <= slab.byteLength;
        return (
          `${where} part ${i} names arena block { slab: ${part.slab}, offset: ${part.offset}, length: ${part.length} }` +
          `${inArena ? '' : ', which is outside the arena'}; a worker sends its parts attached to its frame or as bytes, ` +
          'never as arena blocks'
        );
      }
    }
    return undefined;
  }

  /**
   * The values of a task's ref arguments for `worker`, with their parts and one lease on them
   * (released by the worker once no view of them is left).
   */
  argumentsFor(ids: readonly string[], worker: Worker): Pick<ExecuteTask, 'refArgValues' | 'refArgParts' | 'lease'> {
    if (ids.length === 0) return NO_ARGUMENTS;
    const refArgValues = ids.map((id) => this.store.get(id) as Uint8Array);
    if (!ids.some((id) => this.store.hasParts(id))) return { refArgValues };
    const { lease, blocks } = this.objects.lease(worker.id, ids);
    if (lease === undefined) return { refArgValues };
    const refArgParts = blocks.map((b) => this.partsFor(b ?? [], worker));
    if (worker.isolation === 'process') {
      this.objects.releaseLease(lease); // it got copies
      return { refArgValues, refArgParts };
    }
    return { refArgValues, refArgParts, lease };
  }

  /**
   * How `reader` finds blocks: the driver and worker threads by slab (sending a worker each slab
   * it has not got yet), a worker process as copies of the bytes.
   */
  private partsFor(blocks: readonly Block[], reader: Worker | undefined): Part[] {
    if (reader === undefined) return blocks as Block[];
    if (reader.isolation === 'process') return blocks.map((block) => ({ bytes: this.store.view(block).slice() }));
    let slabs: { index: number; attached: number }[] | undefined;
    for (const block of blocks) {
      const buffer = this.store.slab(block.slab) as SharedArrayBuffer;
      if (reader.knownSlabs.get(block.slab) === buffer) continue;
      reader.knownSlabs.set(block.slab, buffer);
      (slabs ??= []).push({ index: block.slab, attached: reader.channel.attach(buffer) });
    }
    if (slabs !== undefined) reader.channel.send({ type: 'slabs', slabs });
    return blocks as Block[];
  }

  payload(id: ObjectIdHex, entry: ObjectEntry<P> | undefined, withData: boolean, reader: Worker | undefined): ObjectPayload {
    if (entry === undefined) return { id, state: 'lost' };
    if (entry.state === 'failed') return { id, state: 'failed', data: this.store.get(id) as Uint8Array };
    if (!withData) return { id, state: 'ready', data: EMPTY };
    const data = this.store.get(id) as Uint8Array;
    if (!this.store.hasParts(id)) return { id, state: 'ready', data };
    let leased: ReturnType<ObjectDirectory<P>['lease']>;
    try {
      leased = this.objects.lease(reader?.id ?? this.driverId(), [id]);
    } catch (error) {
      return { id, state: 'failed', data: encodeError(error as Error) }; // a spilled object that cannot come back
    }
    if (leased.lease === undefined) return { id, state: 'ready', data };
    const parts = this.partsFor(leased.blocks[0] ?? [], reader);
    if (reader?.isolation === 'process') {
      this.objects.releaseLease(leased.lease);
      return { id, state: 'ready', data, parts };
    }
    return { id, state: 'ready', data, parts, lease: leased.lease };
  }

  /**
   * Stores a task's (or actor call's) return values from `worker`: parts it attached are adopted
   * into the arena, copies are written into it. A value that does not fit becomes its error.
   */
  storeResult(
    worker: Worker,
    ids: readonly string[],
    result: Extract<TaskResult, { outcome: 'ok' }>,
    attached: readonly SharedArrayBuffer[],
  ): void {
    if (result.values.length !== ids.length) {
      // Its objects fail rather than wait forever; the worker is handled as crashed.
      const problem = `its result for seq ${result.seq} has ${result.values.length} value(s) for a task with ${ids.length} return(s)`;
      const error = encodeError(new WorkerCrashedError(`the worker that ran this task sent a malformed result: ${problem}`));
      for (const id of ids) this.objects.setObject(id, error, true);
      this.onBadMessage(worker, problem);
      return;
    }
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as string;
      let blocks: Block[];
      try {
        blocks = this.blocksFrom(result.parts?.[i], attached);
      } catch (error) {
        this.objects.setObject(id, encodeError(error as Error), true);
        continue;
      }
      this.objects.setObject(id, result.values[i] as Uint8Array, false, { blocks, nested: result.nested?.[i], owner: worker.id });
    }
  }

  /**
   * Arena blocks for a value's parts (checked with checkParts): attached ones adopted, copied ones
   * written in. Throws ObjectStoreFullError (having taken nothing) when they do not fit.
   */
  blocksFrom(parts: readonly Part[] | undefined, attached: readonly SharedArrayBuffer[]): Block[] {
    if (parts === undefined || parts.length === 0) return NO_BLOCKS;
    const blocks: Block[] = [];
    try {
      for (const part of parts) {
        if ('attached' in part) blocks.push(this.store.adopt(attached[part.attached] as SharedArrayBuffer));
        else if ('bytes' in part) {
          const block = this.store.allocate(part.bytes.byteLength);
          blocks.push(block);
          this.store.view(block).set(part.bytes);
        } else throw new ProtocolError('a worker named an arena block as a part of its value', 'parts');
      }
    } catch (error) {
      for (const block of blocks) this.store.freeBlock(block);
      throw error;
    }
    return blocks;
  }

  /** A freed dedicated slab: workers drop it, so its memory can go. */
  forgetSlab(index: number): void {
    for (const worker of this.workers()) {
      if (worker.knownSlabs.delete(index)) worker.channel.send({ type: 'dropSlabs', indices: [index] });
    }
  }

  private lastCollect = 0;
  /** Every thread collects garbage (at most every 100 ms), so leases held by dead views come back. */
  collectEverywhere(): void {
    const now = Date.now();
    if (now - this.lastCollect < 100) return;
    this.lastCollect = now;
    for (const worker of this.workers()) worker.channel.send({ type: 'collect' });
    setImmediate(collectGarbage).unref();
  }
}
