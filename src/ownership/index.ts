/**
 * The object directory of a node: every object's state (pending, ready, failed), who waits for
 * it, and who keeps it alive. These are the tables Ray's owners keep, for every owner thread of
 * this node (each entry names its owner): kept on the node's thread, which runs no user code, so
 * that they are served while an owner's task runs code that never yields (docs/architecture.md,
 * "Ownership"). An object is freed when nothing refers to it any more:
 *
 *  - handles: threads (the driver, workers) holding at least one ObjectRef to it. Each thread
 *    counts its own refs and reports only its first and its last (see core-worker/references.ts);
 *  - holds: pending tasks and actor calls it is an argument of (including refs nested in their
 *    arguments), actors it is a constructor argument of, and objects it is nested in;
 *  - a pending object is never freed: its task may still need to store it (it goes once stored,
 *    if nothing refers to it by then).
 *
 * Leases (see object-store) keep freed objects' memory from reuse while views of it exist.
 */
import type { ActorIdHex, ObjectIdHex } from '../ids/index.js';
import { setting } from '../config/index.js';
import { ObjectLostError, ObjectStoreFullError, TaskCancelledError, fromErrorRecord } from '../errors/index.js';
import type { Block, Lease, ObjectStore } from '../object-store/index.js';
import { decodeErrorRecord, encodeError } from '../serialization/index.js';

export interface ObjectEntry<P> {
  state: 'pending' | 'ready' | 'failed';
  /** Called once when the object leaves 'pending'. */
  waiters: Array<() => void> | null;
  /** The task that will create the object, while it is pending. */
  producer: P | undefined;
  /** Worker ID of its owner (the creator). */
  readonly owner: string;
  /** Whether its owner's thread holds refs to it (kept apart: most objects have no other holder). */
  ownerHolds: boolean;
  /** Other threads holding refs to it. */
  handles: Set<string> | undefined;
  /** Why it is held, with counts (e.g. "argument of task add": 2). */
  holds: Map<string, number> | undefined;
  /** Refs nested in its value, held while it lives. */
  nested: readonly string[] | undefined;
  /** A failed object's error has reached someone (a get, or a task it was an argument of). */
  errorSeen: boolean;
  /**
   * Node ID of the node that holds its primary copy, when that is another node (a large result
   * of a task that ran there): the object is ready, but its bytes are here only once pulled.
   */
  location?: string;
  /** Its size in bytes while its primary copy is on another node (for placing its readers there). */
  remoteSize?: number;
  /**
   * Other nodes that told this owner they hold a copy (pulled to read it): where its readers pull
   * from when the node of its primary copy dies, before lineage is needed.
   */
  copies?: Set<string>;
  /**
   * Node ID of its owner, for an object owned on another node that this node borrows (a ref a
   * thread here holds or a task here was given): pending until its value is fetched from there.
   */
  foreignOwner?: string;
  /**
   * Actor lifetimes: this entry stands for a non-detached actor's handles (its ID is the actor's),
   * so handles are counted as refs are, borrowers included; freeing it ends the actor.
   */
  actorHandle?: true;
  /**
   * Its owner ended (its thread here: see ownerDied; or, for a borrowed object, its worker or node
   * elsewhere: see ownerDiedElsewhere): it stays failed, whatever still reports its value, until
   * nothing refers to it any more.
   */
  ownerDied?: true;
}

export interface ObjectInfo {
  readonly id: string;
  readonly state: 'pending' | 'ready' | 'failed';
  readonly sizeBytes: number;
  /** 'remote': its primary copy is on another node and no copy has been pulled here. */
  readonly location: 'memory' | 'disk' | 'none' | 'remote';
  readonly owner: string;
  /** Threads with refs to it, and what else holds it. */
  readonly referencedBy: readonly string[];
  /** Threads that may still hold views of its shared memory (it is not spilled or reused meanwhile). */
  readonly viewLeases: number;
}

const NOTHING_TO_WITHDRAW = (): void => {};

/**
 * What holds are taken under, to be released together: a pending task's or actor call's first
 * return ID (its arguments), an actor's ID (its constructor's arguments, or the actor a getIfExists
 * alias stands for), or `restart:` and an actor's ID (arguments kept while its owner may restart it
 * on another node). Return IDs and actor IDs share the table: both are random 128-bit IDs, so they
 * never collide, and the prefix keeps the third kind apart from the second.
 */
export type HoldKey = ObjectIdHex | ActorIdHex | `restart:${string}`;

export class ObjectDirectory<P> {
  private readonly entries = new Map<string, ObjectEntry<P>>();
  /** Holds taken under a key (see HoldKey), to release together. */
  private readonly holdsByKey = new Map<HoldKey, { ids: readonly string[]; reason: string }>();
  private readonly leases = new Map<number, { holder: string; leases: Lease[] }>();
  private nextLease = 1;

  /** Set while everything is forgotten at shutdown: no error is unhandled then. */
  private clearing = false;

  /**
   * @param onUnhandledError called when a failed object is freed without its error having been
   *   read (default: log it to stderr, unless the logUnhandledErrors setting is 0). The default
   *   reads the setting here, once: a bad value fails the construction (init()), not each free.
   */
  constructor(
    private readonly store: ObjectStore,
    private readonly onUnhandledError: (id: string, error: Error) => void = unhandledErrorReporter(),
    /** Called when an object is freed here (the cluster tells its remote holders and owner). */
    private readonly onFreed: (id: string, entry: ObjectEntry<P>) => void = () => {},
  ) {}

  get(id: string): ObjectEntry<P> | undefined {
    return this.entries.get(id);
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Registers an object a task will create. Its owner counts as holding a ref from the start (it
   * is about to make one), so the object cannot be freed before that ref exists.
   */
  addPending(id: string, owner: string, producer: P | undefined): void {
    this.entries.set(id, {
      state: 'pending',
      waiters: null,
      producer,
      owner,
      ownerHolds: owner !== '',
      handles: undefined,
      holds: undefined,
      nested: undefined,
      errorSeen: false,
    });
  }

  /**
   * Actor lifetimes: an entry for the handles of the actor `actorId`, owned by its creator, whose
   * first handle is counted from the start. Never has a value; freed when no handle is left.
   */
  addActorHandle(actorId: string, owner: string): void {
    if (this.entries.has(actorId)) return;
    this.entries.set(actorId, {
      state: 'ready',
      waiters: null,
      producer: undefined,
      owner,
      ownerHolds: owner !== '',
      handles: undefined,
      holds: undefined,
      nested: undefined,
      errorSeen: true,
      actorHandle: true,
    });
  }

  /**
   * Registers an object owned on another node that something here refers to (see foreignOwner):
   * pending until its value comes, and freed like any other once nothing here refers to it.
   */
  addForeign(id: string, ownerNode: string): ObjectEntry<P> {
    let entry = this.entries.get(id);
    if (entry === undefined) {
      this.addPending(id, '', undefined);
      entry = this.entries.get(id) as ObjectEntry<P>;
      entry.foreignOwner = ownerNode;
    }
    return entry;
  }

  /**
   * An object made again by lineage after it was freed (an argument of a task being rebuilt):
   * nothing but that task's hold keeps it, so it goes again once that task is done with it.
   */
  addRebuilt(id: string, owner: string, producer: P): void {
    this.addPending(id, owner, producer);
    (this.entries.get(id) as ObjectEntry<P>).ownerHolds = false;
  }

  /**
   * A ready object whose copies were all lost is made again by `producer`: pending once more, with
   * its old value, location and nested refs let go (the new value brings its own). Its refs and
   * holds stay as they are.
   */
  reopen(id: string, producer: P): void {
    const entry = this.entries.get(id);
    if (entry === undefined || entry.state !== 'ready') return;
    entry.state = 'pending';
    entry.producer = producer;
    delete entry.location;
    delete entry.remoteSize;
    this.store.delete(id);
    const nested = entry.nested;
    entry.nested = undefined;
    for (const inner of nested ?? []) this.removeHold(inner, `inside ${id}`);
  }

  /** Every object the directory knows (for scans on rare events, such as a node's death). */
  all(): IterableIterator<[string, ObjectEntry<P>]> {
    return this.entries.entries();
  }

  /** Whether the thread `owner` owns an object still here (a scan: for rare checks, such as whether an idle worker may end). */
  ownsAny(owner: string): boolean {
    for (const entry of this.entries.values()) if (entry.owner === owner && entry.foreignOwner === undefined) return true;
    return false;
  }

  /** The object is ready on another node (`location`), which keeps it until this owner frees it. */
  setRemote(id: string, location: string, size: number, nested: readonly string[] | undefined): void {
    const entry = this.entries.get(id);
    if (entry === undefined || entry.state !== 'pending') return;
    entry.state = 'ready';
    entry.producer = undefined;
    entry.location = location;
    entry.remoteSize = size;
    if (nested !== undefined && nested.length > 0) {
      entry.nested = nested;
      for (const inner of nested) this.addHold(inner, `inside ${id}`);
    }
    // The directory's entries are keyed by plain text; one that gets a value is an object's.
    this.releaseHolds(id as ObjectIdHex);
    const waiters = entry.waiters;
    entry.waiters = null;
    if (waiters !== null) for (const wake of waiters) wake();
    this.maybeFree(id);
  }

  /**
   * Stores an object's bytes (or, with `failed`, its encoded error) and wakes its waiters. When
   * the store is full the object gets the ObjectStoreFullError as its error, or, with
   * `throwIfFull`, the error is thrown and nothing changes. `blocks` are its out-of-band parts,
   * already in the arena; `nested` the refs inside it.
   */
  setObject(
    id: string,
    data: Uint8Array,
    failed: boolean,
    options: { owner?: string; throwIfFull?: boolean; blocks?: Block[]; nested?: readonly string[] } = {},
  ): void {
    let entry = this.entries.get(id);
    if (entry?.ownerDied === true) {
      // The result of a task whose owner is gone: nobody can own it, so it is dropped.
      for (const block of options.blocks ?? []) this.store.freeBlock(block);
      return;
    }
    try {
      this.store.putWithId(id, data, { evenIfFull: failed, blocks: options.blocks ?? [] });
    } catch (error) {
      if (!(error instanceof ObjectStoreFullError) || options.throwIfFull) throw error;
      // The object's error must be recorded even in a full store, or its readers would wait forever.
      this.store.putWithId(id, encodeError(error), { evenIfFull: true });
      failed = true;
    }
    if (entry === undefined) {
      this.addPending(id, options.owner ?? '', undefined);
      entry = this.entries.get(id) as ObjectEntry<P>;
    }
    entry.state = failed ? 'failed' : 'ready';
    entry.producer = undefined;
    if (!failed && options.nested !== undefined && options.nested.length > 0) {
      entry.nested = options.nested;
      for (const nested of options.nested) this.addHold(nested, `inside ${id}`);
    }
    this.releaseHolds(id as ObjectIdHex); // a finished task's arguments (held under its first return ID)
    const waiters = entry.waiters;
    entry.waiters = null;
    if (waiters !== null) for (const wake of waiters) wake();
    this.maybeFree(id);
  }

  /**
   * Calls `onObject(id, entry)` for each ID once its object exists (at once for those that do;
   * entry undefined for an unknown ID). Returns a function that withdraws the callbacks still
   * waiting (for a get/wait that timed out or settled). `reads`: the caller is given the values
   * (a get, not a wait), so a failed object's error counts as handled. Each ID is given back as
   * it came (`I`: the branded IDs of a worker's request stay branded, for its answers).
   */
  fetch<I extends string>(ids: readonly I[], onObject: (id: I, entry: ObjectEntry<P> | undefined) => void, reads = false): () => void {
    let waiting: Array<[ObjectEntry<P>, () => void]> | undefined;
    const deliver = (id: I, entry: ObjectEntry<P> | undefined) => {
      if (reads && entry !== undefined) entry.errorSeen = true;
      onObject(id, entry);
    };
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (entry === undefined || entry.state !== 'pending') deliver(id, entry);
      else {
        const wake = () => deliver(id, entry);
        (entry.waiters ??= []).push(wake);
        (waiting ??= []).push([entry, wake]);
      }
    }
    if (waiting === undefined) return NOTHING_TO_WITHDRAW;
    return () => {
      for (const [entry, wake] of waiting as Array<[ObjectEntry<P>, () => void]>) {
        const index = entry.waiters?.indexOf(wake) ?? -1;
        if (index >= 0) entry.waiters?.splice(index, 1);
      }
    };
  }

  /**
   * Calls `ready` once every object in `ids` exists, or `failed` with an encoded error: the error
   * of the first input that failed (a consumer of a failed object fails with the same error), or
   * ObjectLostError for an ID this node does not know. `what` names the consumer in that message.
   */
  waitForObjects(what: string, ids: readonly string[], ready: () => void, failed: (error: Uint8Array) => void): void {
    let pending = 0;
    let settled = false;
    const onDone = (id: string) => {
      if (settled) return;
      const entry = this.entries.get(id);
      if (entry?.state === 'failed') {
        settled = true;
        entry.errorSeen = true; // the consumer fails with it: reported through the consumer's result
        failed(this.store.get(id) as Uint8Array);
      } else if (--pending === 0) {
        settled = true;
        ready();
      }
    };
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (entry === undefined) {
        settled = true;
        const error = new ObjectLostError(
          `${what} was given ObjectRef(${id}) as an argument, which is not known to this miniray ` +
            'instance (never created here, freed, or from a session that was shut down)',
        );
        failed(encodeError(error));
        return;
      }
      if (entry.state === 'failed') {
        settled = true;
        entry.errorSeen = true;
        failed(this.store.get(id) as Uint8Array);
        return;
      }
      if (entry.state === 'pending') {
        pending++;
        (entry.waiters ??= []).push(() => onDone(id));
      }
    }
    if (pending === 0) {
      settled = true;
      ready();
    }
  }

  // ---- references ------------------------------------------------------------------------------

  /** `thread` now holds refs to these objects. */
  addHandles(thread: string, ids: readonly string[]): void {
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (entry === undefined) continue;
      if (thread === entry.owner) entry.ownerHolds = true;
      else (entry.handles ??= new Set()).add(thread);
    }
  }

  /** `thread` holds no more refs to these objects. */
  removeHandles(thread: string, ids: readonly string[]): void {
    for (const id of ids) {
      const entry = this.entries.get(id);
      if (entry === undefined) continue;
      if (this.dropHandle(entry, thread)) this.maybeFree(id);
    }
  }

  /** A thread is gone: its refs and leases with it. */
  dropThread(thread: string): void {
    for (const [id, entry] of this.entries) {
      if (this.dropHandle(entry, thread)) this.maybeFree(id);
    }
    for (const [leaseId, lease] of this.leases) if (lease.holder === thread) this.releaseLease(leaseId);
  }

  /** Keeps `ids` alive under `key` (released together by releaseHolds(key)). */
  hold(key: HoldKey, ids: readonly string[], reason: string): void {
    if (ids.length === 0) return;
    this.holdsByKey.set(key, { ids, reason });
    for (const id of ids) this.addHold(id, reason);
  }

  releaseHolds(key: HoldKey): void {
    const held = this.holdsByKey.get(key);
    if (held === undefined) return;
    this.holdsByKey.delete(key);
    for (const id of held.ids) this.removeHold(id, held.reason);
  }

  /**
   * The thread `owner` ended (its worker crashed or was terminated, its actor ended). As in Ray,
   * where an object lives only as long as its owner, each object it owned that something still
   * refers to (call this after dropThread, which frees the rest) fails with `error(id)`, an
   * OwnerDiedError: its value and the refs nested in it are let go, its waiters are told, and
   * whatever its task still reports is dropped. An object that had failed already keeps its own
   * error, which says more. Returns what the node must stop: the tasks it had submitted that have
   * not finished (the producers of its pending objects), and the actors whose handles it owned.
   */
  ownerDied(
    owner: string,
    error: (id: string) => Uint8Array,
    /** Called for each ready object whose value goes, before its location is forgotten (its copies on other nodes go too). */
    valueGone: (id: string, entry: ObjectEntry<P>) => void = () => {},
  ): { producers: P[]; actors: string[] } {
    const producers = new Set<P>();
    const actors: string[] = [];
    const gone: string[] = [];
    for (const [id, entry] of this.entries) {
      if (entry.owner !== owner || entry.foreignOwner !== undefined || entry.ownerDied === true) continue;
      if (entry.actorHandle === true) {
        actors.push(id);
        continue;
      }
      gone.push(id);
      if (entry.producer !== undefined) producers.add(entry.producer);
      if (entry.state === 'ready') valueGone(id, entry);
      this.failForDeadOwner(id, entry, error);
    }
    // Then what they held goes (which may free others of them: all are marked first).
    for (const id of gone) this.settleForDeadOwner(id);
    return { producers: [...producers], actors };
  }

  /**
   * An object borrowed here whose owner on another node ended (a worker there, as that node says,
   * or that node itself): it fails as it did there, even when this node holds a copy (see ownerDied).
   */
  ownerDiedElsewhere(id: string, error: Uint8Array): void {
    const entry = this.entries.get(id);
    if (entry === undefined || entry.foreignOwner === undefined || entry.ownerDied === true) return;
    this.failForDeadOwner(id, entry, () => error);
    this.settleForDeadOwner(id);
  }

  /** Marks an object whose owner ended, and gives it its error in place of its value (see ownerDied). */
  private failForDeadOwner(id: string, entry: ObjectEntry<P>, error: (id: string) => Uint8Array): void {
    entry.ownerDied = true;
    if (entry.state === 'failed') return; // its own error says more
    delete entry.location;
    delete entry.remoteSize;
    this.store.delete(id);
    this.store.putWithId(id, error(id), { evenIfFull: true });
    entry.state = 'failed';
    entry.producer = undefined;
    entry.errorSeen = true; // not a task's error: nobody is to be told it went unread
  }

  /** Lets go of what an object whose owner ended held, and wakes its waiters. */
  private settleForDeadOwner(id: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    const nested = entry.nested;
    entry.nested = undefined;
    for (const inner of nested ?? []) this.removeHold(inner, `inside ${id}`);
    this.releaseHolds(id as ObjectIdHex); // a pending task's arguments (held under its first return ID)
    const waiters = entry.waiters;
    entry.waiters = null;
    if (waiters !== null) for (const wake of waiters) wake();
    this.maybeFree(id);
  }

  /** The threads that own objects something still refers to (workers to keep, then: see ownerDied). */
  owners(): Set<string> {
    const owners = new Set<string>();
    for (const entry of this.entries.values()) if (entry.foreignOwner === undefined && entry.ownerDied !== true) owners.add(entry.owner);
    return owners;
  }

  // ---- leases --------------------------------------------------------------------------------

  /**
   * Blocks of each object (restored from disk if spilled) under one lease for `holder`, or no
   * lease when none has blocks. Throws ObjectStoreFullError if a spilled object cannot come back.
   */
  lease(holder: string, ids: readonly string[]): { lease: number | undefined; blocks: (readonly Block[] | undefined)[] } {
    const leases: Lease[] = [];
    let blocks: (readonly Block[] | undefined)[];
    try {
      blocks = ids.map((id) => {
        const lease = this.store.lease(id);
        if (lease === undefined) return undefined;
        leases.push(lease);
        return lease.blocks;
      });
    } catch (error) {
      for (const lease of leases) lease.release(); // all or nothing
      throw error;
    }
    if (leases.length === 0) return { lease: undefined, blocks };
    const leaseId = this.nextLease++;
    this.leases.set(leaseId, { holder, leases });
    return { lease: leaseId, blocks };
  }

  /**
   * Who may give a lease back: the thread it was handed to while it is out; null once it is back
   * (or after clear()); undefined for a number never handed out.
   */
  leaseHolder(leaseId: number): string | null | undefined {
    const lease = this.leases.get(leaseId);
    if (lease !== undefined) return lease.holder;
    return Number.isInteger(leaseId) && leaseId >= 1 && leaseId < this.nextLease ? null : undefined;
  }

  releaseLease(leaseId: number): void {
    const lease = this.leases.get(leaseId);
    if (lease === undefined) return;
    this.leases.delete(leaseId);
    for (const held of lease.leases) held.release();
  }

  // ---- state ---------------------------------------------------------------------------------

  /** Every object the directory knows, with what keeps it alive. */
  list(threadName: (thread: string) => string): ObjectInfo[] {
    const infos: ObjectInfo[] = [];
    for (const [id, entry] of this.entries) {
      if (entry.actorHandle === true) continue; // an actor's handles, not an object
      const referencedBy = [...(entry.ownerHolds ? [entry.owner] : []), ...(entry.handles ?? [])].map(threadName);
      for (const [reason, count] of entry.holds ?? []) referencedBy.push(count > 1 ? `${reason} (x${count})` : reason);
      if (entry.state === 'pending') referencedBy.push('its task is pending');
      infos.push({
        id,
        state: entry.state,
        sizeBytes: this.store.sizeOf(id),
        location: this.store.locationOf(id) ?? (entry.location !== undefined ? 'remote' : 'none'),
        owner: threadName(entry.owner),
        referencedBy,
        viewLeases: this.store.leasesOf(id),
      });
    }
    return infos;
  }

  /** Fails every pending object with `error` (at shutdown) and forgets everything. */
  clear(error: Error): void {
    this.clearing = true;
    const lost = encodeError(error);
    for (const [id, entry] of this.entries) if (entry.state === 'pending') this.setObject(id, lost, true);
    this.entries.clear();
    this.clearing = false;
    this.holdsByKey.clear();
    this.leases.clear();
  }

  /** Removes `thread`'s handle; true if it had one. */
  private dropHandle(entry: ObjectEntry<P>, thread: string): boolean {
    if (thread === entry.owner) {
      const had = entry.ownerHolds;
      entry.ownerHolds = false;
      return had;
    }
    return entry.handles?.delete(thread) ?? false;
  }

  private addHold(id: string, reason: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined) return;
    entry.holds ??= new Map();
    entry.holds.set(reason, (entry.holds.get(reason) ?? 0) + 1);
  }

  private removeHold(id: string, reason: string): void {
    const entry = this.entries.get(id);
    if (entry?.holds === undefined) return;
    const count = (entry.holds.get(reason) ?? 0) - 1;
    if (count > 0) entry.holds.set(reason, count);
    else entry.holds.delete(reason);
    if (entry.holds.size === 0) entry.holds = undefined;
    this.maybeFree(id);
  }

  /** Frees the object if nothing refers to it; then what it referred to may go too. */
  private maybeFree(id: string): void {
    const entry = this.entries.get(id);
    if (entry === undefined || entry.ownerHolds || (entry.handles?.size ?? 0) > 0 || entry.holds !== undefined) return;
    // A pending object's task may still store it; a borrowed one only waits for a copy (nothing
    // here waits for it once nothing refers to it).
    if (entry.state === 'pending' && (entry.foreignOwner === undefined || (entry.waiters?.length ?? 0) > 0)) return;
    this.entries.delete(id);
    if (!this.clearing) this.onFreed(id, entry);
    if (entry.state === 'failed' && !entry.errorSeen && !this.clearing) this.reportUnhandled(id);
    this.store.delete(id);
    for (const nested of entry.nested ?? []) this.removeHold(nested, `inside ${id}`);
  }

  /** A failed object goes and nobody read its error: say so once, as Ray's "Unhandled error". */
  private reportUnhandled(id: string): void {
    const data = this.store.get(id);
    if (data === undefined) return;
    let error: Error;
    try {
      error = fromErrorRecord(decodeErrorRecord(data));
    } catch {
      return; // an error record that cannot be read has nothing to tell
    }
    // A cancelled task's refs are dropped on purpose, as Ray does not report them either.
    if (error instanceof TaskCancelledError) return;
    this.onUnhandledError(id, error);
  }
}

/**
 * The report of unhandled errors the logUnhandledErrors setting asks for, read now: frees happen
 * while the node handles workers' messages, where an InvalidOptionError would be no one's to catch.
 */
export function unhandledErrorReporter(): (id: string, error: Error) => void {
  return setting('logUnhandledErrors') === 0 ? () => {} : logUnhandledError;
}

/** One message on stderr, with where the error was thrown. */
export function logUnhandledError(id: string, error: Error): void {
  const cause = error.cause instanceof Error && error.cause.stack !== undefined ? `\n  thrown at: ${error.cause.stack.replace(/\n/g, '\n  ')}` : '';
  process.stderr.write(
    `miniray: Unhandled error (suppress with MINIRAY_LOG_UNHANDLED_ERRORS=0): ObjectRef(${id}) was freed without get() reading its error: ` +
      `${error.name}: ${error.message}${cause}\n`,
  );
}

export type { ObjectLostError };
export { Lineage, specBytes, type LineageInfo, type RebuildPlan } from './lineage.js';
