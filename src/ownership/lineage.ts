/**
 * Lineage: the specs of finished tasks an owner keeps so that it can run them again when every
 * copy of a result is lost (Ray's lineage reconstruction). A task's spec is kept while any of its
 * results is still referenced, or while a kept task had one of its results as an argument (a spec
 * pins its arguments' lineage: to rebuild a result, its lost arguments are rebuilt first, even
 * if their own refs are gone). The specs kept are bounded by bytes (maxLineageBytes): past it, the
 * oldest are dropped, and their results are no longer reconstructable.
 *
 * Only the bookkeeping and the plan are here, over an opaque task `T` (the node's task record);
 * the node re-runs what the plan names (see TaskManager.rebuild, src/node/task-manager.ts).
 */

/** What lineage needs to know of a finished task (a TaskSpec is one: nothing is copied). */
export interface LineageInfo {
  readonly returnIds: readonly string[];
  /** Its ref arguments, whose values it reads (they must exist again before it re-runs). */
  readonly dependencies: readonly string[];
}

interface Kept<T> {
  readonly task: T;
  readonly info: LineageInfo;
  /** Its spec's size, as counted against maxLineageBytes. */
  readonly bytes: number;
  /** How many of its results are still referenced in the directory. */
  live: number;
  /** Those of its results that were freed, for a task with more than one (one: `live` says it). */
  freedIds: Set<string> | undefined;
  /** Kept tasks that have one of its results as an argument. */
  pins: number;
}

/**
 * How a lost object can be made again: the tasks to re-run, in order (arguments first), or why not:
 * 'not-rebuilt' (no spec was ever kept for it: put(), an actor method with maxTaskRetries 0, owned elsewhere),
 * 'evicted' (its spec was dropped under maxLineageBytes), 'argument' (a lost argument cannot be).
 */
export type RebuildPlan<T> =
  | { readonly tasks: readonly T[] }
  | { readonly reason: string; readonly kind: 'not-rebuilt' | 'evicted' | 'argument' };

export class Lineage<T> {
  /**
   * Kept tasks by each of their results, oldest first (Map order: the order in which they are
   * dropped). One map, written once per result: this is on the path of every task.
   */
  private readonly byObject = new Map<string, Kept<T>>();
  private keptTasks = 0;
  /** Results whose lineage was dropped to stay under the bound, while they are referenced. */
  private readonly evicted = new Set<string>();
  private keptBytes = 0;
  private warned = false;

  /**
   * @param onEvicted told when lineage is dropped (the first time: a warning, so that the user
   *   knows that those results are no longer rebuilt if lost).
   */
  constructor(
    private readonly maxBytes: number,
    private readonly onEvicted: (tasks: number, bytes: number, maxBytes: number) => void = warnEvicted,
  ) {}

  get bytes(): number {
    return this.keptBytes;
  }

  /** Tasks whose specs are kept. */
  get size(): number {
    return this.keptTasks;
  }

  /**
   * A task finished with results: its spec is kept while they (or tasks that read them) are
   * referenced. Call before its results are stored, so that a result freed at once is counted out.
   * A task kept already (re-run by a rebuild) stays as it is.
   */
  keep(task: T, info: LineageInfo, bytes: number): void {
    const key = info.returnIds[0];
    if (key === undefined || this.maxBytes === 0 || this.byObject.has(key)) return;
    const kept: Kept<T> = { task, info, bytes, live: info.returnIds.length, freedIds: undefined, pins: 0 };
    this.keptTasks++;
    for (const id of info.returnIds) this.byObject.set(id, kept);
    for (const arg of info.dependencies) {
      const producer = this.byObject.get(arg);
      if (producer !== undefined) producer.pins++;
    }
    this.keptBytes += bytes;
    if (this.keptBytes > this.maxBytes) this.evictOldest();
  }

  /** A result was freed: its task's spec goes once nothing needs it. */
  freed(id: string): void {
    this.evicted.delete(id);
    const kept = this.byObject.get(id);
    if (kept === undefined || !this.isLive(kept, id)) return;
    if (kept.info.returnIds.length > 1) (kept.freedIds ??= new Set()).add(id);
    kept.live--;
    this.dropIfUnneeded(kept);
  }

  /** A result that was freed is referenced again (made again as an argument of a rebuild). */
  revived(id: string): void {
    const kept = this.byObject.get(id);
    if (kept === undefined || this.isLive(kept, id)) return;
    kept.freedIds?.delete(id);
    kept.live++;
  }

  private isLive(kept: Kept<T>, id: string): boolean {
    return kept.info.returnIds.length > 1 ? !(kept.freedIds?.has(id) ?? false) : kept.live > 0;
  }

  /** The task that made `id`, while its spec is kept. */
  producerOf(id: string): T | undefined {
    return this.byObject.get(id)?.task;
  }

  /** Its spec, while kept. */
  infoOf(id: string): LineageInfo | undefined {
    return this.byObject.get(id)?.info;
  }

  /**
   * The tasks to re-run so that `id` exists again: the one that made it, after those that made its
   * arguments for which `isLost(arg)` holds (recursively), each once. Or why it cannot be made.
   */
  plan(id: string, isLost: (id: string) => boolean): RebuildPlan<T> {
    const tasks: T[] = [];
    const planned = new Set<Kept<T>>();
    const visit = (objectId: string, path: string): { reason: string; kind: 'not-rebuilt' | 'evicted' | 'argument' } | undefined => {
      const kept = this.byObject.get(objectId);
      if (kept === undefined) {
        const evicted = this.evicted.has(objectId);
        return {
          kind: evicted ? 'evicted' : objectId === id ? 'not-rebuilt' : 'argument',
          reason: evicted
            ? `${path}: the spec of the task that made it was dropped to keep lineage under maxLineageBytes (${this.maxBytes} bytes; raise MINIRAY_MAX_LINEAGE_BYTES to keep more)`
            : `${path}: no task spec is kept for it (it was made by put() or by a method of an actor with maxTaskRetries 0, which are not rebuilt, or is owned elsewhere)`,
        };
      }
      if (planned.has(kept)) return undefined;
      planned.add(kept);
      for (const arg of kept.info.dependencies) {
        if (!isLost(arg)) continue;
        const why = visit(arg, `its argument ObjectRef(${arg}) is lost too, and cannot be rebuilt`);
        if (why !== undefined) return why;
      }
      tasks.push(kept.task);
      return undefined;
    };
    const why = visit(id, `ObjectRef(${id}) cannot be rebuilt`);
    return why === undefined ? { tasks } : why;
  }

  /** Drops everything (at shutdown). */
  clear(): void {
    this.keptTasks = 0;
    this.byObject.clear();
    this.evicted.clear();
    this.keptBytes = 0;
  }

  private dropIfUnneeded(kept: Kept<T>): void {
    if (kept.live > 0 || kept.pins > 0) return;
    this.drop(kept);
    this.unpinArguments(kept);
  }

  private unpinArguments(kept: Kept<T>): void {
    for (const arg of kept.info.dependencies) {
      const producer = this.byObject.get(arg);
      if (producer === undefined) continue;
      producer.pins--;
      this.dropIfUnneeded(producer);
    }
  }

  private drop(kept: Kept<T>): void {
    const key = kept.info.returnIds[0] as string;
    if (this.byObject.get(key) !== kept) return;
    for (const id of kept.info.returnIds) if (this.byObject.get(id) === kept) this.byObject.delete(id);
    this.keptTasks--;
    this.keptBytes -= kept.bytes;
  }

  private evictOldest(): void {
    let tasks = 0;
    let bytes = 0;
    for (const kept of this.byObject.values()) {
      if (this.keptBytes <= this.maxBytes) break;
      // Referenced results are no longer reconstructable; their readers are told why if they are lost.
      for (const id of kept.info.returnIds) if (this.isLive(kept, id)) this.evicted.add(id);
      this.drop(kept);
      this.unpinArguments(kept);
      tasks++;
      bytes += kept.bytes;
    }
    if (tasks > 0 && !this.warned) {
      this.warned = true;
      this.onEvicted(tasks, bytes, this.maxBytes);
    }
  }
}

/** The bytes a task's spec is counted as: its encoded arguments and IDs, and a fixed share for the rest. */
export function specBytes(spec: {
  readonly args: Uint8Array;
  readonly name: string;
  readonly dependencies: readonly string[];
  readonly returnIds: readonly string[];
  readonly nestedRefs?: readonly string[];
}): number {
  return 200 + spec.args.byteLength + spec.name.length + 40 * (spec.dependencies.length + spec.returnIds.length + (spec.nestedRefs?.length ?? 0));
}

function warnEvicted(tasks: number, bytes: number, maxBytes: number): void {
  console.warn(
    `miniray: lineage over maxLineageBytes (${maxBytes} bytes): the specs of the ${tasks} oldest finished task(s) (${bytes} bytes) were dropped, ` +
      'so their results can no longer be rebuilt if every copy is lost (they would fail with ObjectReconstructionFailedError). ' +
      'Raise MINIRAY_MAX_LINEAGE_BYTES to keep more; this is said once.',
  );
}
