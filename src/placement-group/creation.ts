/**
 * The checks at a placement group's edges (helper pg). What a task or actor asks of a bundle must
 * fit in it, checked at submission as Ray does. And what the creator's node says about a group
 * it asks the GCS to create:
 * a group that can never be placed in the embedded default (no node can ever join, so waiting
 * would be a hang) and a name that is taken fail its creation, and with it ready() and the work
 * submitted to the group (as Ray's placement_group() raises at once for a taken name). In a
 * cluster, a group no node can hold waits, with one warning (the GCS's), as infeasible tasks do.
 */
import { InvalidOptionError } from '../errors/index.js';
import { describeAmounts, describeInfeasible, neverFits } from './placement.js';
import { BUNDLE_RESOURCE, BUNDLE_UNITS, PLACEMENT_STRATEGIES, type PlacementStrategy } from './resources.js';

type Amounts = Readonly<Record<string, number>>;

/**
 * The error of a demand (CPUs as 'CPU') that bundle `bundleIndex` of a group (-1: every bundle)
 * could never hold (Ray's "cannot fit into any bundles for the placement group"); undefined when
 * it fits. The option named is the one asked for too much of.
 */
export function bundleFitError(what: string, demand: Amounts, bundles: readonly Amounts[], bundleIndex: number): InvalidOptionError | undefined {
  const over = (bundle: Amounts): string | undefined =>
    Object.keys(demand).find((name) => {
      const amount = demand[name] as number;
      if (amount <= 0) return false;
      // Every bundle has its 'bundle' units (ready() asks a sliver of them).
      const has = name === BUNDLE_RESOURCE ? BUNDLE_UNITS : (bundle[name] ?? 0);
      return has + 1e-9 < amount;
    });
  const candidates = bundleIndex >= 0 ? [bundles[bundleIndex] ?? {}] : bundles;
  const misfits = candidates.map(over);
  if (misfits.some((name) => name === undefined)) return undefined;
  const first = misfits[0] as string;
  const option = first === 'CPU' ? 'numCpus' : first === 'GPU' ? 'numGpus' : 'resources';
  const asked = describeAmounts(demand);
  const where =
    bundleIndex >= 0
      ? `more than bundle ${bundleIndex} of its placement group holds (${describeAmounts(bundles[bundleIndex] ?? {})})`
      : `which no bundle of its placement group can hold (${bundles.map((bundle, i) => `bundle ${i}: ${describeAmounts(bundle)}`).join('; ')})`;
  return new InvalidOptionError(`${what} asks for ${asked}, ${where}; ask for less (numCpus, numGpus, resources), or make the group with bundles that hold it`, option);
}

/** The fields of a createPlacementGroup body the node reads (the GCS validates the whole). */
export interface GroupRequest {
  readonly placementGroupId: string;
  readonly name: string | undefined;
  readonly namespace: string;
  readonly strategy: PlacementStrategy;
  readonly bundles: readonly Readonly<Record<string, number>>[];
}

/** The request's fields, or undefined when it is not well formed (then the GCS refuses it, saying why). */
export function groupRequest(body: unknown): GroupRequest | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { placementGroupId, name, namespace, strategy, bundles } = body as Record<string, unknown>;
  if (typeof placementGroupId !== 'string' || typeof namespace !== 'string' || (name !== undefined && typeof name !== 'string')) return undefined;
  if (!(PLACEMENT_STRATEGIES as readonly unknown[]).includes(strategy) || !Array.isArray(bundles)) return undefined;
  const valid = bundles.every((bundle: unknown) => typeof bundle === 'object' && bundle !== null && Object.values(bundle).every((amount) => typeof amount === 'number'));
  if (!valid) return undefined;
  return { placementGroupId, name, namespace, strategy: strategy as PlacementStrategy, bundles: bundles as GroupRequest['bundles'] };
}

/** A name held by a living group (Ray: "Failed to create placement group ... because name ... already exists"). */
export function nameTakenError(name: string, namespace: string): InvalidOptionError {
  return new InvalidOptionError(
    `placementGroup(): a placement group named '${name}' exists already in namespace '${namespace}'; remove it first (removePlacementGroup) or choose another name`,
    'name',
  );
}

/**
 * The error of a group that the one node of the embedded default could never hold, naming the
 * bundle (or what the strategy asks) and the node's totals; undefined if it can hold it.
 */
export function embeddedInfeasibleError(request: GroupRequest, totals: Readonly<Record<string, number>>): InvalidOptionError | undefined {
  const why = neverFits(request.bundles, request.strategy, [{ nodeId: 'this', free: totals }]);
  if (why === undefined) return undefined;
  const label = request.name === undefined ? '' : ` '${request.name}'`;
  const fix =
    why.kind === 'spread'
      ? "use strategy 'SPREAD' (which may put bundles on one node), or start a cluster with a node per bundle (miniray start)"
      : 'ask for less in its bundles, or start miniray with more (init({ numCpus, numGpus, resources }))';
  return new InvalidOptionError(
    `placementGroup()${label}: ${describeInfeasible(why, request.strategy)}, but this node has ${describeAmounts(totals)} in all, ` +
      `and in the embedded default it is the only node (none can join), so the group could never be placed; ${fix}`,
    why.kind === 'spread' ? 'strategy' : 'bundles',
  );
}
