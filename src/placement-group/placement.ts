/**
 * Where a placement group's bundles go (the GCS's part of Ray's GcsPlacementGroupScheduler): a
 * node for every bundle, or none at all. Pure: the GCS passes what each node has free, and then
 * reserves on the nodes chosen with a prepare and a commit (see src/gcs/placement-groups.ts).
 */
import type { PlacementStrategy } from './resources.js';

type Amounts = Readonly<Record<string, number>>;

export interface Candidate {
  readonly nodeId: string;
  /** What it has free now (or, to judge feasibility, in all). */
  readonly free: Amounts;
}

const EPSILON = 1e-9;

function fits(free: Map<string, number>, bundle: Amounts): boolean {
  for (const [name, amount] of Object.entries(bundle)) if (amount > 0 && (free.get(name) ?? 0) + EPSILON < amount) return false;
  return true;
}

function take(free: Map<string, number>, bundle: Amounts): void {
  for (const [name, amount] of Object.entries(bundle)) free.set(name, (free.get(name) ?? 0) - amount);
}

function sum(bundles: readonly Amounts[]): Amounts {
  const total: Record<string, number> = {};
  for (const bundle of bundles) for (const [name, amount] of Object.entries(bundle)) total[name] = (total[name] ?? 0) + amount;
  return total;
}

/**
 * A node per bundle (by index), or undefined when the nodes cannot hold them all now.
 * PACK: as few nodes as it can (one if one has room); SPREAD: a different node per bundle where it
 * can; STRICT_PACK: one node for all; STRICT_SPREAD: a different node for each, or nothing.
 */
export function placeBundles(bundles: readonly Amounts[], strategy: PlacementStrategy, candidates: readonly Candidate[]): string[] | undefined {
  const free = new Map(candidates.map((c) => [c.nodeId, new Map(Object.entries(c.free))]));
  // Fuller nodes first for packing (fewer fragments); emptier first for spreading.
  const room = (nodeId: string): number => (free.get(nodeId)?.get('CPU') ?? 0);
  const order = candidates.map((c) => c.nodeId);
  if (strategy === 'STRICT_PACK' || strategy === 'PACK') {
    const total = sum(bundles);
    const one = [...order].sort((a, b) => room(a) - room(b)).find((nodeId) => fits(free.get(nodeId) as Map<string, number>, total));
    if (one !== undefined) return bundles.map(() => one);
    if (strategy === 'STRICT_PACK') return undefined;
  }
  const placed: string[] = [];
  const used = new Set<string>();
  for (const bundle of bundles) {
    const nodes = [...order].sort((a, b) => {
      if (strategy === 'PACK') return Number(used.has(b)) - Number(used.has(a)) || room(a) - room(b);
      return Number(used.has(a)) - Number(used.has(b)) || room(b) - room(a);
    });
    const target = nodes.find((nodeId) => (strategy !== 'STRICT_SPREAD' || !used.has(nodeId)) && fits(free.get(nodeId) as Map<string, number>, bundle));
    if (target === undefined) return undefined;
    take(free.get(target) as Map<string, number>, bundle);
    used.add(target);
    placed.push(target);
  }
  return placed;
}

/** Why bundles can never be placed on nodes with these totals (see neverFits). */
export type Infeasible =
  /** Bundle `index` is larger than every node. */
  | { readonly kind: 'bundle'; readonly index: number; readonly bundle: Amounts }
  /** STRICT_SPREAD: more bundles than nodes that can take one each. */
  | { readonly kind: 'spread'; readonly bundles: number }
  /** Each bundle fits a node, but no placement holds them all (STRICT_PACK: on one node). */
  | { readonly kind: 'together'; readonly total: Amounts };

/**
 * Why the bundles could never be placed on `nodes` (each given with its totals), however much
 * frees up; undefined when, once the nodes are empty, they fit. The first reason found: a bundle
 * no node can hold, then what the strategy asks of the nodes together.
 */
export function neverFits(bundles: readonly Amounts[], strategy: PlacementStrategy, nodes: readonly Candidate[]): Infeasible | undefined {
  if (placeBundles(bundles, strategy, nodes) !== undefined) return undefined;
  const totals = nodes.map((node) => new Map(Object.entries(node.free)));
  const index = bundles.findIndex((bundle) => !totals.some((total) => fits(total, bundle)));
  if (index >= 0) return { kind: 'bundle', index, bundle: bundles[index] as Amounts };
  if (strategy === 'STRICT_SPREAD') return { kind: 'spread', bundles: bundles.length };
  return { kind: 'together', total: sum(bundles) };
}

/** "2 CPU, 1 GPU" (amounts above 0), or "nothing". */
export function describeAmounts(amounts: Amounts): string {
  return (
    Object.entries(amounts)
      .filter(([, amount]) => amount > 0)
      .map(([name, amount]) => `${amount} ${name}`)
      .join(', ') || 'nothing'
  );
}

/** What is wrong, in words, for the messages of the embedded default and of the cluster. */
export function describeInfeasible(why: Infeasible, strategy: PlacementStrategy): string {
  switch (why.kind) {
    case 'bundle':
      return `its bundle ${why.index} needs ${describeAmounts(why.bundle)}`;
    case 'spread':
      return `STRICT_SPREAD puts each of its ${why.bundles} bundles on a different node`;
    case 'together':
      return strategy === 'STRICT_PACK' ? `STRICT_PACK puts all its bundles on one node, and together they need ${describeAmounts(why.total)}` : `its bundles together need ${describeAmounts(why.total)}`;
  }
}
