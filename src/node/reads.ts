/**
 * Objects as this node's readers get them: get and wait (fetch), with what must come from other
 * nodes first (values of borrowed objects, copies of objects held elsewhere), the waits of tasks
 * and actors for their arguments, and the refs a thread takes, borrowed from owners elsewhere.
 */
import type { ObjectIdHex } from '../ids/index.js';
import type { ObjectEntry } from '../ownership/index.js';
import type { ObjectPayload } from '../protocol/index.js';
import type { ClusterLink } from './cluster-link.js';
import type { NodeContext } from './context.js';
import type { TaskRecord, Worker } from './task-manager.js';

export class ObjectReads {
  constructor(private readonly context: NodeContext) {}

  /** `owners`: each ref's owner node, when some are owned on another node (this node borrows those). */
  addRefs(thread: string, ids: readonly string[], owners?: readonly string[]): void {
    if (owners !== undefined) {
      const borrowed = new Map<string, string[]>();
      for (let i = 0; i < ids.length; i++) {
        const owner = owners[i] as string;
        const id = ids[i] as string;
        if (owner === this.context.nodeId || this.context.objects.get(id) !== undefined) continue;
        this.context.objects.addForeign(id, owner);
        let list = borrowed.get(owner);
        if (list === undefined) borrowed.set(owner, (list = []));
        list.push(id);
      }
      // The owners keep these alive while this node holds them (Ray's borrowers).
      for (const [owner, list] of borrowed) this.context.cluster?.borrow(owner, list);
    }
    this.context.objects.addHandles(thread, ids);
  }

  /**
   * Calls `onObject` for each ID once its object exists (at once for those that do), as seen by
   * `reader` (the driver, or a worker: parts come as slab blocks it has been sent, or as copies for a
   * process). Returns a function that withdraws the callbacks still waiting. `fetchLocal` (a wait):
   * an object ready on another node is reported once its copy is here, as a get's would be.
   */
  fetch(
    ids: readonly ObjectIdHex[],
    withData: boolean,
    onObject: (object: ObjectPayload) => void,
    reader: Worker | undefined = undefined,
    fetchLocal = false,
  ): () => void {
    const cluster = this.context.cluster;
    if (cluster === undefined) return this.context.objects.fetch(ids, (id, entry) => onObject(this.context.delivery.payload(id, entry, withData, reader)), withData);
    // Objects owned elsewhere with no value here yet: their owners are asked (they then arrive as
    // any pending object does). Objects ready on another node: a copy is pulled before delivery.
    const borrowed = this.copiesNeeded(ids, false);
    if (borrowed !== undefined) cluster.localize(borrowed, () => {});
    let withdrawn = false;
    let again: (() => void)[] | undefined;
    const localize = withData || fetchLocal;
    const deliver = (id: ObjectIdHex, entry: ObjectEntry<TaskRecord> | undefined): void => {
      if (localize && entry?.state === 'ready' && entry.location !== undefined && !this.context.store.contains(id)) {
        cluster.localize([id], () => {
          if (withdrawn) return;
          const now = this.context.objects.get(id);
          // Its copy was lost and it is being rebuilt by lineage: delivered once it exists again.
          if (now?.state === 'pending') (again ??= []).push(this.context.objects.fetch([id], deliver, withData));
          else onObject(this.context.delivery.payload(id, now, withData, reader));
        });
      } else onObject(this.context.delivery.payload(id, entry, withData, reader));
    };
    const withdraw = this.context.objects.fetch(ids, deliver, withData);
    return () => {
      withdrawn = true;
      withdraw();
      for (const more of again ?? []) more();
    };
  }

  /**
   * Which of `ids` must be brought here before they can be read: objects owned on another node
   * that have no value here yet and, when their value is wanted, objects whose primary copy is on
   * another node. Undefined when none (the common case, without allocating).
   */
  copiesNeeded(ids: readonly string[], withData: boolean): string[] | undefined {
    if (this.context.cluster === undefined) return undefined;
    let needed: string[] | undefined;
    for (const id of ids) {
      const entry = this.context.objects.get(id);
      if (entry === undefined) continue;
      const borrowed = entry.foreignOwner !== undefined && entry.state === 'pending';
      const remote = withData && entry.location !== undefined && entry.state === 'ready' && !this.context.store.contains(id);
      if (borrowed || remote) (needed ??= []).push(id);
    }
    return needed;
  }

  /** Calls `then` once every object in `ids` that is held elsewhere has a copy here. */
  withCopies(ids: readonly string[], then: () => void): void {
    const elsewhere = this.copiesNeeded(ids, true);
    if (elsewhere === undefined) then();
    else (this.context.cluster as ClusterLink).localize(elsewhere, then);
  }

  /** objects.waitForObjects, after asking the owners of borrowed objects among `ids` for their values. */
  waitForObjects(what: string, ids: readonly string[], ready: () => void, failed: (error: Uint8Array) => void): void {
    const borrowed = this.copiesNeeded(ids, false);
    if (borrowed !== undefined) (this.context.cluster as ClusterLink).localize(borrowed, () => {});
    this.context.objects.waitForObjects(what, ids, ready, failed);
  }
}
