/**
 * A node's objects as other nodes see them: the values it sends (inline when small, else where
 * they are) and takes in (arguments and results from other nodes), the bytes it lends to pulls,
 * the copies it makes of objects held elsewhere, and what it keeps for owners and borrowers on
 * other nodes. The cluster link (src/cluster) calls these; the node's own tasks never need them.
 */
import { ObjectLostError, OwnerDiedError } from '../errors/index.js';
import type { Block, ObjectStore } from '../object-store/index.js';
import type { ObjectDirectory, ObjectEntry } from '../ownership/index.js';
import type { RemoteValue } from '../protocol/index.js';
import { encodeError } from '../serialization/index.js';
import type { ObjectDelivery } from './delivery.js';

/** What the node does when copies are lost (it owns the lineage and re-runs tasks). */
export interface LossHandler {
  /** Node `nodeId` died: every object whose only copy was there is rebuilt or failed; borrowed objects it owned fail. */
  nodeDied(nodeId: string): void;
  /** The copy of an object this node owns, held by `nodeId`, could not be read: rebuilt or failed. */
  holderLost(id: string, nodeId: string): void;
}

export class RemoteObjects<P> {
  constructor(
    private readonly nodeId: string,
    private readonly store: ObjectStore,
    private readonly objects: ObjectDirectory<P>,
    private readonly delivery: ObjectDelivery<P>,
    private readonly losses: LossHandler,
  ) {}

  /** The cluster reports node `nodeId` dead (see LossHandler.nodeDied). */
  nodeDied(nodeId: string): void {
    this.losses.nodeDied(nodeId);
  }

  /** A pull from `nodeId` of an object this node owns failed (see LossHandler.holderLost). */
  holderLost(id: string, nodeId: string): void {
    this.losses.holderLost(id, nodeId);
  }

  /**
   * Takes in values another node sent: inline ones are stored (their parts copied into the
   * arena); located ones are recorded where they are, to be pulled when read. `asCopies`: they
   * are copies of objects owned elsewhere (arguments), not results this node owns.
   */
  storeValues(values: readonly RemoteValue[], from: string, asCopies = false): void {
    for (const value of values) {
      const entry = this.objects.get(value.id);
      if (entry === undefined || entry.state !== 'pending') continue;
      switch (value.state) {
        case 'ready': {
          let blocks: Block[];
          try {
            blocks = this.delivery.blocksFrom(value.parts?.map((bytes) => ({ bytes })), []);
          } catch (error) {
            this.objects.setObject(value.id, encodeError(error as Error), true);
            break;
          }
          // A value with refs inside stays at its sender too, so that those refs live.
          if (value.nested !== undefined && !asCopies) entry.location = from;
          this.objects.setObject(value.id, value.data, false, { blocks, nested: value.nested });
          break;
        }
        case 'located':
          if (asCopies) entry.location = value.location; // where to pull it from when read
          else this.objects.setRemote(value.id, value.location, value.size, value.nested);
          break;
        case 'failed':
          this.objects.setObject(value.id, value.data, true);
          break;
        case 'lost':
          this.objects.setObject(value.id, encodeError(new ObjectLostError(`ObjectRef(${value.id}) was lost on node ${from.slice(0, 8)}`)), true);
          break;
      }
    }
  }

  /**
   * An object's value as another node is told it: inline when ready here and at most
   * `inlineLimit` bytes (or when the caller pulls it), else where it is.
   */
  valueFor(id: string, inlineLimit: number): RemoteValue {
    const entry = this.objects.get(id);
    if (entry === undefined) return { id, state: 'lost' };
    if (entry.state === 'failed') return { id, state: 'failed', data: this.store.get(id) as Uint8Array };
    if (entry.state === 'pending') return { id, state: 'lost' }; // callers ask only once it exists
    const nested = entry.nested === undefined ? {} : { nested: entry.nested };
    if (!this.store.contains(id)) return { id, state: 'located', location: entry.location ?? this.nodeId, size: entry.remoteSize ?? 0, ...nested };
    const data = this.store.get(id) as Uint8Array;
    const size = this.store.sizeOf(id);
    if (size > inlineLimit) return { id, state: 'located', location: this.nodeId, size, ...nested };
    if (!this.store.hasParts(id)) return { id, state: 'ready', data, ...nested };
    const read = this.readForPull(id);
    if (read === undefined) return { id, state: 'lost' };
    const parts = read.parts.map((part) => part.slice());
    read.release();
    return { id, state: 'ready', data: data.slice(), parts, ...nested };
  }

  /**
   * An object's bytes for another node to pull: its inline data and views of its parts, which
   * stay as they are (leased: not spilled, not reused) until `release`. Undefined when it is not here.
   */
  readForPull(id: string): { data: Uint8Array; parts: Uint8Array[]; release(): void } | undefined {
    const entry = this.objects.get(id);
    if (entry === undefined || entry.state !== 'ready' || !this.store.contains(id)) return undefined;
    const data = this.store.get(id) as Uint8Array;
    let leased: ReturnType<ObjectDirectory<P>['lease']>;
    try {
      leased = this.objects.lease('', [id]);
    } catch {
      return undefined; // spilled, and the disk cannot give it back
    }
    const lease = leased.lease;
    const parts = (leased.blocks[0] ?? []).map((block) => this.store.view(block));
    return { data, parts, release: () => lease !== undefined && this.objects.releaseLease(lease) };
  }

  /** Stores a pulled copy of an object held elsewhere (its parts already written into the arena). */
  storePulled(id: string, data: Uint8Array, blocks: Block[]): void {
    const entry = this.objects.get(id);
    if (entry === undefined || this.store.contains(id)) {
      for (const block of blocks) this.store.freeBlock(block);
      return;
    }
    if (entry.state === 'pending') this.objects.setObject(id, data, false, { blocks });
    else this.store.putWithId(id, data, { blocks }); // ready elsewhere: now here too
  }

  /** Fails an object that was to come from elsewhere (its copy could not be made). */
  failCopy(id: string, error: Error): void {
    const entry = this.objects.get(id);
    // Pending (borrowed), or ready on another node with no copy here: either way its readers get the error.
    if (entry !== undefined && (entry.state === 'pending' || !this.store.contains(id))) this.objects.setObject(id, encodeError(error), true);
  }

  /** Arena blocks for a pulled object's parts (throws ObjectStoreFullError, having taken nothing). */
  allocateBlocks(sizes: readonly number[]): Block[] {
    const blocks: Block[] = [];
    try {
      for (const size of sizes) blocks.push(this.store.allocate(size));
    } catch (error) {
      for (const block of blocks) this.store.freeBlock(block);
      throw error;
    }
    return blocks;
  }

  /**
   * A worker on `ownerNode` that owned objects borrowed here ended (that node says so): they fail
   * here as there, copies and all. Only that node's objects: it cannot fail another's.
   */
  ownerDiedAt(ownerNode: string, failed: readonly { readonly id: string; readonly message: string }[]): void {
    for (const { id, message } of failed) {
      if (this.objects.get(id)?.foreignOwner === ownerNode) this.objects.ownerDiedElsewhere(id, encodeError(new OwnerDiedError(message)));
    }
  }

  /** An owner on another node freed objects this node kept for it. */
  dropForOwner(ownerWorker: string, ids: readonly string[]): void {
    this.objects.removeHandles(ownerWorker, ids);
  }

  /** Another node left: it borrows nothing any more. */
  dropBorrower(peerNode: string): void {
    this.objects.dropThread(`node:${peerNode}`);
  }

  /** Another node has (or no longer has) copies of objects this node owns. */
  copiesAt(peerNode: string, ids: readonly string[], has: boolean): void {
    for (const id of ids) {
      const entry = this.objects.get(id);
      if (entry === undefined || entry.foreignOwner !== undefined) continue;
      if (has) (entry.copies ??= new Set()).add(peerNode);
      else entry.copies?.delete(peerNode);
    }
  }

  /** Another node borrows (or stops borrowing) objects this node owns. */
  borrowedBy(peerNode: string, ids: readonly string[], borrowing: boolean): void {
    if (borrowing) this.objects.addHandles(`node:${peerNode}`, ids);
    else this.objects.removeHandles(`node:${peerNode}`, ids);
  }

  /** Waits for an object this node owns (or holds) to exist, then calls back with its value for a peer. */
  whenExists(id: string, inlineLimit: number, callback: (value: RemoteValue) => void): () => void {
    return this.objects.fetch([id], () => callback(this.valueFor(id, inlineLimit)), true);
  }

  /** What the directory knows of an object: for the link's use. */
  entryOf(id: string): ObjectEntry<P> | undefined {
    return this.objects.get(id);
  }

  /** Bytes of each object among `ids` by the node that holds it (here, or its primary copy's node). */
  bytesByNode(ids: readonly string[]): Map<string, number> {
    const bytes = new Map<string, number>();
    for (const id of ids) {
      const entry = this.objects.get(id);
      if (entry === undefined) continue;
      const [where, size] = this.store.contains(id) ? [this.nodeId, this.store.sizeOf(id)] : [entry.location, entry.remoteSize ?? 0];
      if (where !== undefined) bytes.set(where, (bytes.get(where) ?? 0) + size);
    }
    return bytes;
  }
}
