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
