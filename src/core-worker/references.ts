/**
 * What a CoreWorker tells its node about the lifetime of things in its thread:
 *
 *  - RefTracker: counts this thread's ObjectRefs per object and reports the first (addRefs) and
 *    the last, when garbage collection has taken it (removeRefs). The node frees an object once no
 *    thread and nothing else refers to it.
 *  - ViewTracker: views into shared memory handed out by decoding (typed arrays over arena blocks)
 *    are tracked per lease; when every view of a lease is collected, the lease is released and the
 *    node may reuse or spill that memory. Until then it stays exactly as it was.
 *
 * Reports are gathered and sent once per turn of the event loop.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isIdHex, type NodeIdHex, type RefIdHex } from '../ids/index.js';
import type { ObjectRef } from '../object-ref/index.js';
import type { NodeClient } from './node-client.js';

export class RefTracker {
  private readonly counts = new Map<string, number>();
  private readonly registry = new FinalizationRegistry<RefIdHex>((id) => this.collected(id));
  private added: RefIdHex[] = [];
  /** Owner node of each added ref, once one of them is owned on another node (else undefined). */
  private addedOwners: NodeIdHex[] | undefined;
  private removed: RefIdHex[] = [];
  private queued = false;

  /** @param nodeId this thread's node: refs owned elsewhere are reported with their owner's node. */
  constructor(
    private readonly node: NodeClient,
    private readonly nodeId: NodeIdHex,
  ) {}

  /** The next ref made is the first of an object this thread just created (its owner). */
  private ownNew: RefIdHex | undefined;

  /**
   * Announces that the next ObjectRef is the first ref to an object this thread created: the node
   * counts the owner as a holder from the start, so there is nothing to report.
   */
  expectOwnNew(id: RefIdHex): void {
    this.ownNew = id;
  }

  /** A new ObjectRef exists in this thread. */
  track(ref: ObjectRef): void {
    // toHex(), not hexOf(): this runs for every ref made (each task's return), so it stays one call.
    const id = ref.id.toHex() as RefIdHex;
    if (this.ownNew === id) {
      this.ownNew = undefined;
      this.counts.set(id, 1);
    } else {
      const count = this.counts.get(id) ?? 0;
      this.counts.set(id, count + 1);
      if (count === 0) {
        // A ref made by hand may name any owner; only a real node ID is another node to borrow from.
        const ownerNode = isIdHex<NodeIdHex>(ref.owner.nodeId) ? ref.owner.nodeId : this.nodeId;
        if (ownerNode !== this.nodeId && this.addedOwners === undefined) this.addedOwners = this.added.map(() => this.nodeId);
        this.addedOwners?.push(ownerNode);
        this.report(this.added, id);
      }
    }
    this.registry.register(ref, id);
  }

  /** Refs of this thread, by object (for tests and state tools). */
  heldCount(id: string): number {
    return this.counts.get(id) ?? 0;
  }

  private collected(id: RefIdHex): void {
    const count = (this.counts.get(id) ?? 1) - 1;
    if (count > 0) {
      this.counts.set(id, count);
      return;
    }
    this.counts.delete(id);
    this.report(this.removed, id);
  }

  private report(list: RefIdHex[], id: RefIdHex): void {
    list.push(id);
    if (this.queued) return;
    this.queued = true;
    queueMicrotask(this.flush);
  }

  /** Sends what changed, additions first (an object both added and removed in one turn ends removed). */
  readonly flush = (): void => {
    this.queued = false;
    if (this.added.length > 0) {
      const added = this.added;
      const owners = this.addedOwners;
      this.added = [];
      this.addedOwners = undefined;
      this.node.addRefs(added, owners);
    }
    if (this.removed.length > 0) {
      const removed = this.removed;
      this.removed = [];
      this.node.removeRefs(removed);
    }
  };
}

export class ViewTracker {
  private readonly views = new Map<number, number>();
  private readonly registry = new FinalizationRegistry<number>((lease) => this.collected(lease));
  private released: number[] = [];
  private queued = false;

  constructor(private readonly node: NodeClient) {}

  /** Whether some view of shared memory may still be alive in this thread. */
  get holdingViews(): boolean {
    return this.views.size > 0;
  }

  /** Call for each view of shared memory made under `lease`. */
  viewMade(lease: number, view: object): void {
    this.views.set(lease, (this.views.get(lease) ?? 0) + 1);
    this.registry.register(view, lease);
  }

  /** Decoding under `lease` is over: if it made no views, the lease can go at once. */
  done(lease: number | undefined): void {
    if (lease !== undefined && !this.views.has(lease)) this.release(lease);
  }

  /** Gives a lease back without decoding (a payload that is not used). */
  release(lease: number): void {
    this.released.push(lease);
    if (this.queued) return;
    this.queued = true;
    queueMicrotask(() => {
      this.queued = false;
      const released = this.released;
      this.released = [];
      this.node.releaseLeases(released);
    });
  }

  private collected(lease: number): void {
    const count = (this.views.get(lease) ?? 1) - 1;
    if (count > 0) this.views.set(lease, count);
    else {
      this.views.delete(lease);
      this.release(lease);
    }
  }
}

let gc: (() => void) | null | undefined;

/**
 * Runs a full garbage collection in this thread, so that FinalizationRegistry callbacks for dead
 * refs and views follow. Used only when the object store is short of memory that dead views may
 * still be holding. Without --expose-gc, V8 is asked for gc() once (documented as safe to call
 * at run time for this flag); if that fails, nothing happens.
 */
export function collectGarbage(): void {
  if (gc === undefined) {
    gc = (globalThis as { gc?: () => void }).gc ?? null;
    if (gc === null) {
      try {
        setFlagsFromString('--expose-gc');
        gc = runInNewContext('gc') as () => void;
      } catch {
        gc = null;
      }
    }
  }
  gc?.();
}
