/**
 * Objects across nodes: copies made here of objects held elsewhere (asking the owner where, then
 * pulling the bytes in chunks, a few in flight, straight into this node's arena), the other side
 * of those pulls (objects leased while another node reads them), and the counts that cross nodes
 * (what this node keeps for owners elsewhere, the refs it borrows and the copies it holds of
 * theirs, the copies it asks holders elsewhere to free).
 */
import { ConnectionError, ObjectLostError, ObjectStoreFullError } from '../errors/index.js';
import { RawBytes, type Peer } from '../net/index.js';
import type { Block } from '../object-store/index.js';
import { ownerDiedError } from '../node/index.js';
import type { ObjectEntry } from '../ownership/index.js';
import type { AgentContext } from './context.js';
import { answers, type FreeObjects, type ReadChunk } from './messages.js';

/** Objects move between nodes in chunks of this size (as Ray's), with a few in flight per pull. */
export const CHUNK_BYTES = 5 * 1024 * 1024;
const CHUNKS_IN_FLIGHT = 4;
/** Copies of a borrowed object tried (each named by its owner) before it fails as lost. */
const COPY_ATTEMPTS = 3;

export class ObjectTransfer {
  constructor(private readonly context: AgentContext) {}

  /** Copies being made here, by object: who waits for each. */
  private readonly copying = new Map<string, (() => void)[]>();
  /** Objects leased for other nodes' pulls. */
  private readonly pulls = new Map<number, { read: { parts: Uint8Array[]; release(): void }; peer: Peer }>();
  private nextPull = 1;
  /** Objects this node keeps for owners on other nodes, by owner node and owner worker. */
  private readonly keptFor = new Map<string, Map<string, Set<string>>>();

  localize(ids: readonly string[], done: () => void): void {
    let remaining = ids.length;
    const one = (): void => {
      if (--remaining === 0) done();
    };
    for (const id of ids) {
      const waiting = this.copying.get(id);
      if (waiting !== undefined) {
        waiting.push(one);
        continue;
      }
      this.copying.set(id, [one]);
      void this.copy(id).then(() => {
        const callbacks = this.copying.get(id) ?? [];
        this.copying.delete(id);
        for (const callback of callbacks) callback();
      });
    }
  }

  /**
   * Makes a copy here of an object held elsewhere (asking its owner where, if need be). A copy
   * that cannot be read (its holder died or cannot be reached) is lost: an object this node owns
   * is then rebuilt by lineage (or failed, saying why); a borrowed one is asked of its owner again,
   * which rebuilds it or names another copy, up to COPY_ATTEMPTS times.
   */
  private async copy(id: string): Promise<void> {
    const entry = this.context.node.remoteObjects.entryOf(id);
    if (entry === undefined) return;
    try {
      const ownerNode = entry.foreignOwner;
      if (ownerNode === undefined) {
        const holder = entry.location;
        if (entry.state !== 'ready' || holder === undefined) return;
        try {
          return await this.pull(id, holder);
        } catch (error) {
          if (error instanceof ObjectStoreFullError) throw error;
          this.context.node.remoteObjects.holderLost(id, holder);
          return; // rebuilding (its readers wait for it again) or failed
        }
      }
      let lostAt: string | undefined;
      for (let attempt = 0; attempt < COPY_ATTEMPTS; attempt++) {
        const holder = entry.location;
        if (holder !== undefined) {
          try {
            return await this.pull(id, holder);
          } catch (error) {
            if (error instanceof ObjectStoreFullError) throw error;
            lostAt = holder;
            delete entry.location;
          }
        }
        const owner = this.context.links.link(ownerNode);
        if (owner === undefined) throw ownerDiedError(id, ownerNode, 'is not alive');
        let answer: unknown;
        try {
          answer = await (await owner.peer).request('getObject', lostAt === undefined ? { id } : { id, lostAt });
        } catch (error) {
          if (error instanceof ConnectionError || !this.context.views.has(ownerNode)) throw ownerDiedError(id, ownerNode, `could not be reached (${(error as Error).message})`);
          throw error;
        }
        const value = answers.value(answer);
        if (value.state !== 'located' || value.location === this.context.self) {
          this.context.node.remoteObjects.storeValues([value], ownerNode, true);
          return;
        }
        entry.location = value.location;
      }
      throw new ObjectLostError(`ObjectRef(${id}) could not be read from any of the ${COPY_ATTEMPTS} copies its owner, node ${ownerNode.slice(0, 8)}, named (lost at node ${lostAt?.slice(0, 8)})`);
    } catch (error) {
      this.context.node.remoteObjects.failCopy(id, error instanceof ObjectStoreFullError || error instanceof ObjectLostError ? error : new ObjectLostError(`ObjectRef(${id}) could not be fetched from another node: ${(error as Error).message}`, { cause: error }));
    }
  }

  /** Pulls an object's bytes from `nodeId` in chunks, straight into this node's arena. */
  private async pull(id: string, nodeId: string): Promise<void> {
    const link = this.context.links.link(nodeId);
    if (link === undefined) throw new ObjectLostError(`ObjectRef(${id}) was on node ${nodeId.slice(0, 8)}, which is not alive`);
    const peer = await link.peer;
    const started = answers.pull(await peer.request('pullObject', { id }));
    if (!('pullId' in started)) {
      // Not there (a copy its holder has let go of since): another copy, or lineage, is tried.
      if (started.state === 'lost') throw new ObjectLostError(`ObjectRef(${id}) is no longer on node ${nodeId.slice(0, 8)}`);
      this.context.node.remoteObjects.storeValues([started], nodeId, true);
      return;
    }
    const { pullId, data, sizes } = started;
    try {
      const blocks = this.context.node.remoteObjects.allocateBlocks(sizes);
      try {
        const chunks: { part: number; offset: number; length: number }[] = [];
        sizes.forEach((size, part) => {
          for (let offset = 0; offset < size; offset += CHUNK_BYTES) chunks.push({ part, offset, length: Math.min(CHUNK_BYTES, size - offset) });
        });
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < chunks.length) {
            const chunk = chunks[next++] as (typeof chunks)[number];
            const bytes = answers.chunk(await peer.request('readChunk', { pullId, ...chunk }), chunk.length);
            // Straight from the socket's buffers into the arena: the one copy this node makes.
            const target = this.context.node.store.view(blocks[chunk.part] as Block);
            if (bytes instanceof RawBytes) bytes.copyTo(target, chunk.offset);
            else target.set(bytes, chunk.offset);
          }
        };
        await Promise.all(Array.from({ length: Math.min(CHUNKS_IN_FLIGHT, chunks.length) }, worker));
      } catch (error) {
        for (const block of blocks) this.context.node.store.freeBlock(block);
        throw error;
      }
      this.context.node.remoteObjects.storePulled(id, data, blocks);
      // Its owner may send other readers here if the node it came from dies.
      const owner = this.context.node.remoteObjects.entryOf(id)?.foreignOwner;
      if (owner !== undefined && this.context.node.store.contains(id)) {
        this.copiesHeld.add(id);
        this.context.links.tell(this.context.links.get(owner), 'addCopies', { ids: [id] });
      }
    } finally {
      peer.notify('endPull', { pullId });
    }
  }

  freed(id: string, entry: ObjectEntry<unknown>): void {
    if (entry.foreignOwner !== undefined) {
      // A borrower (or a copy) here is gone: tell the owner only of refs this node announced.
      if (this.borrowing.delete(id)) this.context.links.tell(this.context.links.get(entry.foreignOwner), 'unborrow', { ids: [id] });
      if (this.copiesHeld.delete(id)) this.context.links.tell(this.context.links.get(entry.foreignOwner), 'dropCopies', { ids: [id] });
      return;
    }
    if (entry.location !== undefined && entry.location !== this.context.self) this.letGo(entry.location, entry.owner, [id]);
  }

  /** Node `location` may drop what it keeps of these objects for `owner`, a worker here (see ClusterLink.letGo). */
  letGo(location: string, owner: string, ids: readonly string[]): void {
    this.context.links.tell(this.context.links.link(location), 'freeObjects', { owner, ids });
  }

  /** Objects owned elsewhere that this node has told their owner it borrows. */
  private readonly borrowing = new Set<string>();
  /** Copies of objects owned elsewhere that this node has told their owner it holds. */
  private readonly copiesHeld = new Set<string>();

  borrow(ownerNode: string, ids: readonly string[]): void {
    for (const id of ids) this.borrowing.add(id);
    this.context.links.tell(this.context.links.link(ownerNode), 'borrow', { ids });
  }

  keep(peerNode: string, ownerWorker: string, id: string): void {
    let byOwner = this.keptFor.get(peerNode);
    if (byOwner === undefined) this.keptFor.set(peerNode, (byOwner = new Map()));
    let ids = byOwner.get(ownerWorker);
    if (ids === undefined) byOwner.set(ownerWorker, (ids = new Set()));
    ids.add(id);
  }

  // ---- the holder's side of other nodes' pulls ----

  /** Leases an object's bytes for `peer` to read in chunks (or answers its value, if it has no bytes here). */
  startPull(id: string, peer: Peer) {
    const read = this.context.node.remoteObjects.readForPull(id);
    if (read === undefined) return this.context.node.remoteObjects.valueFor(id, Infinity);
    const pullId = this.nextPull++;
    this.pulls.set(pullId, { read, peer });
    return { pullId, data: read.data, sizes: read.parts.map((part) => part.byteLength) };
  }

  readChunk({ pullId, part, offset, length }: ReadChunk, peer: Peer): Uint8Array {
    const pull = this.pulls.get(pullId);
    const bytes = pull?.read.parts[part];
    if (pull === undefined || pull.peer !== peer || bytes === undefined || offset + length > bytes.byteLength) {
      throw new ObjectLostError(`no such chunk: pull ${pullId}, part ${part}, bytes ${offset}..${offset + length}`);
    }
    return bytes.subarray(offset, offset + length);
  }

  endPull(pullId: number, peer: Peer): void {
    const pull = this.pulls.get(pullId);
    if (pull === undefined || pull.peer !== peer) return;
    this.pulls.delete(pullId);
    pull.read.release();
  }

  /** The owner on `peer` freed objects: what this node kept of them for it goes. */
  freeObjects({ owner, ids }: FreeObjects, peer: Peer): void {
    const kept = this.keptFor.get(peer.hello.nodeId)?.get(owner);
    const mine = ids.filter((id) => kept?.delete(id));
    this.context.node.remoteObjects.dropForOwner(owner, mine);
  }

  /**
   * A node's connection closed: what this node kept for its owners goes, its borrows end, its
   * pulls' leases come back.
   */
  peerGone(nodeId: string): void {
    const kept = this.keptFor.get(nodeId);
    this.keptFor.delete(nodeId);
    for (const [owner, ids] of kept ?? []) this.context.node.remoteObjects.dropForOwner(owner, [...ids]);
    this.context.node.remoteObjects.dropBorrower(nodeId);
    for (const [pullId, pull] of this.pulls) {
      if (pull.peer.hello.nodeId !== nodeId) continue;
      this.pulls.delete(pullId);
      pull.read.release();
    }
  }

  /** This node stops: every pull's lease comes back. */
  stop(): void {
    for (const { read } of this.pulls.values()) read.release();
    this.pulls.clear();
  }
}
