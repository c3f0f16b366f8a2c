/**
 * The GCS's placement-group table and scheduler (Ray's GcsPlacementGroupManager and
 * GcsPlacementGroupScheduler): groups wait in creation order; each is placed all at once or not
 * at all, by a two-phase reservation on the nodes chosen (prepareBundles on every one, then
 * commitBundles; a refused prepare returns what the others reserved, and the group waits for the
 * next change in the cluster's resources). A group whose node dies is RESCHEDULING: its lost
 * bundles are placed again, the others stay where they are.
 */
import { Serial, nameKey } from './serial.js';
import { describeAmounts, describeInfeasible, neverFits, placeBundles, type Candidate } from '../placement-group/placement.js';
import { groupOf } from '../placement-group/resources.js';
import type { GcsPeer } from './rpc.js';
import type { StoreClient } from './store.js';
import type { NodeIdHex, NodeInfo, PlacementGroupEntry } from './types.js';
import type { Answer, Body } from './messages.js';
import { CANCEL_BUNDLES, COMMIT_BUNDLES, PLACEMENT_GROUP_REMOVED, PREPARE_BUNDLES } from './messages.js';

/** How long a node is given to answer a prepare or a commit. */
const NODE_TIMEOUT_MS = 10_000;


export interface PlacementGroupHost {
  /** Every node in the table. */
  nodes(): Promise<readonly NodeInfo[]>;
  /** The connection a node registered over (undefined once it is gone). */
  peerOf(nodeId: NodeIdHex): GcsPeer | undefined;
  /** Every registered node's connection (removal is told to all: any may hold work waiting for the group). */
  peers(): Iterable<GcsPeer>;
  onError(error: unknown): void;
}

export class PlacementGroupTable {
  private readonly steps = new Serial();
  /** Groups not placed yet (PENDING, RESCHEDULING), in creation order. */
  private readonly pending: string[] = [];
  private scheduling = false;
  private again = false;
  /** wait() callers, by group: woken when it is CREATED or REMOVED. */
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(
    private readonly store: StoreClient,
    private readonly host: PlacementGroupHost,
  ) {}

  private async get(id: string): Promise<PlacementGroupEntry | undefined> {
    return (await this.store.get('placementGroups', id)) as PlacementGroupEntry | undefined;
  }

  private put(entry: PlacementGroupEntry): Promise<void> {
    return this.store.put('placementGroups', entry.placementGroupId, entry);
  }

  async all(): Promise<PlacementGroupEntry[]> {
    return [...(await this.store.getAll('placementGroups')).values()] as PlacementGroupEntry[];
  }

  find(id: string): Promise<PlacementGroupEntry | null> {
    return this.steps.run(async () => (await this.get(id)) ?? null);
  }

  findNamed(name: string, namespace: string): Promise<PlacementGroupEntry | null> {
    return this.steps.run(async () => {
      const id = (await this.store.get('placementGroupNames', nameKey(namespace, name))) as string | undefined;
      const entry = id === undefined ? undefined : await this.get(id);
      return entry === undefined || entry.state === 'REMOVED' ? null : entry;
    });
  }

  create(body: Body<'createPlacementGroup'>): Promise<Answer<'createPlacementGroup'>> {
    return this.steps.run(async () => {
      if ((await this.get(body.placementGroupId)) !== undefined) return { ok: true };
      if (body.name !== undefined) {
        const key = nameKey(body.namespace, body.name);
        const holder = (await this.store.get('placementGroupNames', key)) as string | undefined;
        const other = holder === undefined ? undefined : await this.get(holder);
        if (other !== undefined && other.state !== 'REMOVED') return { ok: false, reason: 'name-taken' };
        await this.store.put('placementGroupNames', key, body.placementGroupId);
      }
      const entry: PlacementGroupEntry = {
        placementGroupId: body.placementGroupId,
        ...(body.name === undefined ? {} : { name: body.name }),
        namespace: body.namespace,
        strategy: body.strategy,
        bundles: body.bundles.map((bundle) => ({ ...bundle })),
        state: 'PENDING',
        bundleNodes: body.bundles.map(() => ''),
        createdAtMs: Date.now(),
        // A detached group outlives whoever made it: no creator to end with.
        ...(body.creatorNodeId === undefined || body.detached === true ? {} : { creatorNodeId: body.creatorNodeId }),
        ...(body.detached === true ? { detached: true as const } : {}),
      };
      await this.put(entry);
      this.pending.push(entry.placementGroupId);
      this.schedule();
      const warning = await this.neverPlaced(entry);
      return warning === undefined ? { ok: true } : { ok: true, warning };
    });
  }

  /**
   * The warning for a group that the cluster's nodes could never hold, even empty (it waits, as
   * Ray's does: a node that can may join), naming what the cluster has; undefined if they could.
   */
  private async neverPlaced(entry: PlacementGroupEntry): Promise<string | undefined> {
    const nodes = (await this.host.nodes()).filter((node) => this.canHost(node, entry));
    const plain = (amounts: NodeInfo['resources']): Record<string, number> => Object.fromEntries(Object.entries(amounts).filter(([name]) => groupOf(name) === undefined));
    const why = neverFits(entry.bundles, entry.strategy, nodes.map((node) => ({ nodeId: node.nodeId, free: plain(node.resources) })));
    if (why === undefined) return undefined;
    const totals: Record<string, number> = {};
    for (const node of nodes) for (const [name, amount] of Object.entries(plain(node.resources))) totals[name] = (totals[name] ?? 0) + amount;
    const label = entry.name === undefined ? entry.placementGroupId : `'${entry.name}' (${entry.placementGroupId})`;
    return (
      `miniray: placement group ${label} cannot be placed: ${describeInfeasible(why, entry.strategy)}, which the cluster's nodes cannot hold; ` +
      'it stays PENDING until a node that can joins (miniray start --address ... --num-cpus/--num-gpus/--resources). ' +
      `The cluster has ${describeAmounts(totals)} in all, over ${nodes.length} node(s).`
    );
  }

  /** Whether a node may hold bundles of the group: alive, offering something, and for a detached group not a driver (which leaves). */
  private canHost(node: NodeInfo, entry: PlacementGroupEntry): boolean {
    return node.alive && Object.values(node.resources).some((amount) => amount > 0) && !(entry.detached === true && node.isDriver);
  }

  /**
   * A GCS restarted on the store of the one before (Redis): the groups it had not placed yet
   * (PENDING, RESCHEDULING, or cut off in the middle of their two phases) wait again, in creation
   * order, and are placed as the nodes come back and report.
   */
  recover(): Promise<void> {
    return this.steps.run(async () => {
      const waiting = (await this.all()).filter((entry) => entry.state === 'PENDING' || entry.state === 'RESCHEDULING' || entry.state === 'PREPARED');
      waiting.sort((a, b) => a.createdAtMs - b.createdAtMs);
      for (const entry of waiting) if (!this.pending.includes(entry.placementGroupId)) this.pending.push(entry.placementGroupId);
      if (this.pending.length > 0) this.schedule();
    });
  }

  /** REMOVED (final): every node is told, so that its bundles go back and the work in them ends. */
  remove(id: string): Promise<{ found: boolean }> {
    return this.steps.run(async () => {
      const entry = await this.get(id);
      if (entry === undefined) return { found: false };
      if (entry.state === 'REMOVED') return { found: true };
      await this.put({ ...entry, state: 'REMOVED', bundleNodes: entry.bundleNodes.map(() => '') });
      if (entry.name !== undefined) {
        const key = nameKey(entry.namespace, entry.name);
        if ((await this.store.get('placementGroupNames', key)) === id) await this.store.delete('placementGroupNames', key);
      }
      const index = this.pending.indexOf(id);
      if (index >= 0) this.pending.splice(index, 1);
      for (const peer of this.host.peers()) {
        try {
          peer.notify(PLACEMENT_GROUP_REMOVED, { placementGroupId: id });
        } catch {
          // A closing connection: that node is going away with whatever it held.
        }
      }
      this.wake(id);
      this.schedule(); // what it held may let another group be placed
      return { found: true };
    });
  }

  /** The group once CREATED or REMOVED, or as it is when `timeoutMs` passes. */
  async wait(id: string, timeoutMs: number, signal: AbortSignal): Promise<PlacementGroupEntry | null> {
    const settled = (entry: PlacementGroupEntry | null): boolean => entry === null || entry.state === 'CREATED' || entry.state === 'REMOVED';
    const now = await this.find(id);
    if (settled(now) || timeoutMs <= 0) return now;
    await new Promise<void>((resolve) => {
      let set = this.waiters.get(id);
      if (set === undefined) this.waiters.set(id, (set = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        set?.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      timer.unref();
      signal.addEventListener('abort', done);
      set.add(done);
    });
    return this.find(id);
  }

  private wake(id: string): void {
    for (const done of [...(this.waiters.get(id) ?? [])]) done();
    this.waiters.delete(id);
  }

  /** The cluster's resources changed (a report, a node joined): pending groups may fit now. */
  resourcesChanged(): void {
    if (this.pending.length > 0) this.schedule();
  }

  /**
   * A node died: the groups it created end with it (as Ray's end with their job: a driver that
   * left, or a node whose task made them); the groups with bundles there are placed again (those
   * bundles only).
   */
  nodeDied(nodeId: NodeIdHex): void {
    const orphans: string[] = [];
    this.steps
      .run(async () => {
        for (const entry of await this.all()) {
          if (entry.state === 'REMOVED') continue;
          if (entry.creatorNodeId === nodeId) {
            orphans.push(entry.placementGroupId);
            continue;
          }
          if (!entry.bundleNodes.includes(nodeId)) continue;
          await this.put({ ...entry, state: 'RESCHEDULING', bundleNodes: entry.bundleNodes.map((node) => (node === nodeId ? '' : node)) });
          if (!this.pending.includes(entry.placementGroupId)) this.pending.push(entry.placementGroupId);
        }
      })
      .then(async () => {
        for (const id of orphans) await this.remove(id);
        this.schedule();
      })
      .catch(this.host.onError);
  }

  /** Places pending groups in order, one at a time; a call while it runs makes it run once more. */
  private schedule(): void {
    if (this.scheduling) {
      this.again = true;
      return;
    }
    this.scheduling = true;
    const run = async (): Promise<void> => {
      do {
        this.again = false;
        for (const id of [...this.pending]) await this.tryPlace(id);
      } while (this.again);
    };
    run()
      .catch(this.host.onError)
      .finally(() => (this.scheduling = false));
  }

  private async tryPlace(id: string): Promise<void> {
    const entry = await this.find(id);
    if (entry === null || (entry.state !== 'PENDING' && entry.state !== 'RESCHEDULING')) {
      this.dropPending(id);
      return;
    }
    const missing = entry.bundles.map((_, i) => i).filter((i) => entry.bundleNodes[i] === '');
    const kept = new Set(entry.bundleNodes.filter((node) => node !== ''));
    const alive = (await this.host.nodes()).filter((node) => this.canHost(node, entry) && this.host.peerOf(node.nodeId) !== undefined);
    let candidates: Candidate[] = alive.map((node) => ({ nodeId: node.nodeId, free: node.available }));
    if (entry.strategy === 'STRICT_SPREAD') candidates = candidates.filter((c) => !kept.has(c.nodeId));
    if (entry.strategy === 'STRICT_PACK' && kept.size > 0) candidates = candidates.filter((c) => kept.has(c.nodeId));
    const plan = placeBundles(
      missing.map((i) => entry.bundles[i] ?? {}),
      entry.strategy,
      candidates,
    );
    if (plan === undefined) return;
    // Phase 1: each node reserves its bundles, or refuses (what it reported free is gone).
    const byNode = new Map<NodeIdHex, number[]>();
    plan.forEach((nodeId, k) => {
      const list = byNode.get(nodeId as NodeIdHex) ?? [];
      list.push(missing[k] as number);
      byNode.set(nodeId as NodeIdHex, list);
    });
    const prepared: NodeIdHex[] = [];
    let refused = false;
    await Promise.all(
      [...byNode].map(async ([nodeId, indices]) => {
        const peer = this.host.peerOf(nodeId);
        const ok =
          peer !== undefined &&
          (await peer
            .request(PREPARE_BUNDLES, { placementGroupId: id, bundles: indices.map((index) => ({ index, resources: entry.bundles[index] ?? {} })) }, { timeoutMs: NODE_TIMEOUT_MS })
            .then((answer) => (answer as { ok?: unknown } | null)?.ok === true, () => false));
        if (ok) prepared.push(nodeId);
        else refused = true;
      }),
    );
    const current = await this.find(id);
    if (refused || current === null || current.state === 'REMOVED') {
      for (const nodeId of prepared) this.host.peerOf(nodeId)?.notify(CANCEL_BUNDLES, { placementGroupId: id, indices: byNode.get(nodeId) ?? [] });
      return;
    }
    // Placed: CREATED before the commits, so that whatever runs in a bundle finds its group CREATED.
    const bundleNodes = current.bundleNodes.map((node, i) => {
      const k = missing.indexOf(i);
      return k >= 0 ? (plan[k] as string) : node;
    });
    await this.steps.run(() => this.put({ ...current, state: 'CREATED', bundleNodes }));
    this.dropPending(id);
    // Phase 2: the reservations become the group's resources on each node.
    await Promise.all(
      [...byNode].map(([nodeId, indices]) =>
        this.host
          .peerOf(nodeId)
          ?.request(COMMIT_BUNDLES, { placementGroupId: id, indices }, { timeoutMs: NODE_TIMEOUT_MS })
          .catch(() => undefined),
      ),
    );
    this.wake(id);
  }

  private dropPending(id: string): void {
    const index = this.pending.indexOf(id);
    if (index >= 0) this.pending.splice(index, 1);
  }
}
