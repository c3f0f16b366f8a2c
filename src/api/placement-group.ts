/**
 * Placement groups (Ray's ray.util.placement_group): bundles of resources reserved together, all
 * or none, across the cluster's nodes, for tasks and actors to run in. The GCS keeps the table and
 * places the bundles (src/gcs/placement-groups.ts); each node holds its bundles as resources of
 * their own (src/placement-group/resources.ts). Every call asks the GCS through this thread's
 * node, so it works in the driver and in a task alike.
 */
import { InvalidArgumentError, InvalidOptionError, MinirayError, fromErrorRecord } from '../errors/index.js';
import { ensureRuntime } from '../core-worker/current.js';
import { validateOptions, type OptionRules } from '../config/index.js';
import { randomBytes } from 'node:crypto';
import type { ObjectRef } from '../object-ref/index.js';
import type { PlacementGroupGcsMethod } from '../protocol/index.js';
import { decodeErrorRecord } from '../serialization/index.js';
import { parseAnswer, MAX_PLACEMENT_GROUP_WAIT_MS, type Answer, type Body, type PlacementGroupEntry } from '../gcs/index.js';
import { BUNDLE_RESOURCE, PLACEMENT_STRATEGIES, type PlacementGroupState, type PlacementStrategy } from '../placement-group/resources.js';
import { remote } from './index.js';
import { nameTakenError } from '../placement-group/creation.js';
import { PlacementGroup, placementGroupCalls } from '../placement-group/handle.js';

export { PlacementGroup };

export type { PlacementStrategy, PlacementGroupState };

export interface PlacementGroupOptions {
  /** How the bundles spread over nodes. Default: 'PACK'. */
  strategy?: PlacementStrategy;
  /** A name, unique in its namespace while the group lives, for getPlacementGroup(). */
  name?: string;
  /** The namespace of the name. Default: 'default'. */
  namespace?: string;
  /**
   * 'detached': the group outlives the driver or task that made it, until removePlacementGroup()
   * (another driver finds it by name). Default 'non_detached': it ends with its creator, as Ray's
   * lifetime=None.
   */
  lifetime?: PlacementGroupLifetime;
}

export type PlacementGroupLifetime = 'detached' | 'non_detached';
const LIFETIMES = ['detached', 'non_detached'] as const satisfies readonly PlacementGroupLifetime[];

/** A row of placementGroupTable(), as Ray's placement_group_table(). */
export interface PlacementGroupTableEntry {
  readonly placementGroupId: string;
  readonly name: string;
  readonly namespace: string;
  readonly strategy: PlacementStrategy;
  readonly state: PlacementGroupState;
  /** What each bundle reserves, by index (CPUs as 'CPU'). */
  readonly bundles: Readonly<Record<number, Readonly<Record<string, number>>>>;
  /** The node of each placed bundle, by index. */
  readonly bundlesToNodeId: Readonly<Record<number, string>>;
}

type Bundle = Readonly<Record<string, number>>;

async function ask<M extends PlacementGroupGcsMethod>(method: M, body: Body<M>, timeoutMs?: number): Promise<Answer<M>> {
  const answer = await ensureRuntime().coreWorker.clusterInfo({ gcs: method, body, ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  if ('error' in answer) throw fromErrorRecord(decodeErrorRecord(answer.error));
  if (!('gcs' in answer)) throw new MinirayError(`the node answered '${method}' with something else`);
  const parsed = parseAnswer(method)(answer.gcs);
  if (parsed instanceof Error) throw parsed;
  return parsed;
}

/** ready()'s task: it runs once a bundle of the group is committed (it asks a sliver of `bundle_group_<id>`). */
let readyCheck: { options(options: object): { remote(): ObjectRef<true> } } | undefined;

// What the handle's ready() and wait() do (src/placement-group/handle.ts): this module lends it.
placementGroupCalls.ready = (group) => {
  readyCheck ??= remote(() => true as const, { numCpus: 0, name: 'bundle_reservation_check' }) as unknown as typeof readyCheck;
  return (readyCheck as NonNullable<typeof readyCheck>).options({ numCpus: 0, resources: { [BUNDLE_RESOURCE]: 0.001 }, schedulingStrategy: { placementGroup: group } }).remote();
};

placementGroupCalls.wait = async (group, timeoutMs) => {
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) throw new InvalidArgumentError(`PlacementGroup.wait() takes milliseconds >= 0; got ${String(timeoutMs)}`, 'timeoutMs');
  await group.created;
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const left = Math.max(0, Math.min(MAX_PLACEMENT_GROUP_WAIT_MS, Math.ceil(deadline - performance.now())));
    const entry = await ask('waitPlacementGroup', { placementGroupId: group.id, timeoutMs: left }, left + 10_000);
    if (entry === null || entry.state === 'REMOVED') return false;
    if (entry.state === 'CREATED') return true;
    if (performance.now() >= deadline) return false;
  }
};

function checkBundles(bundles: unknown): Bundle[] {
  if (!Array.isArray(bundles) || bundles.length === 0) throw new InvalidOptionError('placementGroup(): bundles must be a non-empty array of resource maps, e.g. [{ CPU: 1 }, { CPU: 1, GPU: 1 }]', 'bundles');
  return bundles.map((bundle: unknown, i) => {
    if (typeof bundle !== 'object' || bundle === null || Array.isArray(bundle)) throw new InvalidOptionError(`placementGroup(): bundle ${i} must be a map of resource amounts, e.g. { CPU: 1 }`, 'bundles');
    const entries = Object.entries(bundle as Record<string, unknown>);
    for (const [name, amount] of entries) {
      if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) throw new InvalidOptionError(`placementGroup(): bundle ${i} has ${name}: ${String(amount)}; amounts are numbers >= 0`, 'bundles');
    }
    // Ray refuses bundles that reserve nothing: a task placed in one could never hold anything of it.
    if (!entries.some(([, amount]) => (amount as number) > 0)) throw new InvalidOptionError(`placementGroup(): bundle ${i} reserves nothing; give it at least one resource > 0, e.g. { CPU: 1 }`, 'bundles');
    return { ...(bundle as Record<string, number>) };
  });
}

const PLACEMENT_GROUP_RULES = {
  strategy: { type: 'string', oneOf: PLACEMENT_STRATEGIES, doc: 'how the bundles are spread over nodes' },
  name: { type: 'string', nonEmpty: true, doc: 'a name getPlacementGroup() finds it by' },
  namespace: { type: 'string', nonEmpty: true, doc: "the name's namespace (default 'default')" },
  lifetime: { type: 'string', oneOf: LIFETIMES, doc: "'detached' to outlive its creator (until removePlacementGroup()), or 'non_detached' to end with it" },
} as const satisfies OptionRules;

/**
 * Reserves `bundles` together (Ray's placement_group()). Returns at once; the group is placed as
 * soon as the cluster has room for all its bundles (see ready() and wait()), and stays pending
 * until then, however long (a node may join, or resources free up).
 */
export function placementGroup(bundles: readonly Readonly<Record<string, number>>[], options: PlacementGroupOptions = {}): PlacementGroup {
  const checked = checkBundles(bundles);
  // Unknown names (a misspelled strategy key) are refused with a did-you-mean, as every option of miniray's.
  const valid = validateOptions('placementGroup()', PLACEMENT_GROUP_RULES, options);
  const strategy = valid.strategy ?? 'PACK';
  const name = valid.name;
  const id = randomBytes(16).toString('hex');
  const namespace = valid.namespace ?? 'default';
  const runtime = ensureRuntime();
  const created = ask('createPlacementGroup', {
    placementGroupId: id,
    ...(name === undefined ? {} : { name }),
    namespace,
    strategy,
    bundles: checked,
    // A detached group ends with no one: the GCS keeps no creator for it.
    ...(valid.lifetime === 'detached' ? { detached: true as const } : { creatorNodeId: runtime.coreWorker.address.nodeId }),
  }).then((answer) => {
    // The node turns a refusal into its error (so that ready() fails with it too); this is in case it did not.
    if (!answer.ok) throw nameTakenError(name ?? '', namespace);
  });
  return new PlacementGroup(id, checked, strategy, created);
}

/**
 * Removes the group (Ray's remove_placement_group()): its bundles are freed, its actors die and
 * its tasks fail with PlacementGroupRemovedError (running ones are stopped).
 */
export async function removePlacementGroup(group: PlacementGroup): Promise<void> {
  if (!(group instanceof PlacementGroup)) throw new InvalidArgumentError('removePlacementGroup() takes a PlacementGroup from placementGroup() or getPlacementGroup()', 'group');
  await group.wait(0).catch(() => false);
  await ask('removePlacementGroup', { placementGroupId: group.id });
}

function tableEntry(entry: PlacementGroupEntry): PlacementGroupTableEntry {
  return {
    placementGroupId: entry.placementGroupId,
    name: entry.name ?? '',
    namespace: entry.namespace,
    strategy: entry.strategy,
    state: entry.state,
    bundles: Object.fromEntries(entry.bundles.map((bundle, i) => [i, { ...bundle }])),
    bundlesToNodeId: Object.fromEntries(entry.bundleNodes.flatMap((node, i) => (node === '' ? [] : [[i, node]]))),
  };
}

/** One group's row, or every group's by ID (Ray's placement_group_table()). */
export function placementGroupTable(group: PlacementGroup): Promise<PlacementGroupTableEntry>;
export function placementGroupTable(): Promise<Record<string, PlacementGroupTableEntry>>;
export async function placementGroupTable(group?: PlacementGroup): Promise<PlacementGroupTableEntry | Record<string, PlacementGroupTableEntry>> {
  if (group !== undefined) {
    await group.wait(0).catch(() => false);
    const entry = await ask('getPlacementGroup', { placementGroupId: group.id });
    if (entry === null) throw new InvalidArgumentError(`placementGroupTable(): the cluster has no placement group ${group.id}`, 'group');
    return tableEntry(entry);
  }
  const all = await ask('listPlacementGroups', {});
  return Object.fromEntries(all.map((entry) => [entry.placementGroupId, tableEntry(entry)]));
}

/** The group named `name` (Ray's get_placement_group()); throws when no living group has it. */
export async function getPlacementGroup(name: string, options: { namespace?: string } = {}): Promise<PlacementGroup> {
  if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('getPlacementGroup() takes the non-empty name given to placementGroup()', 'name');
  const namespace = options.namespace ?? 'default';
  const entry = await ask('getNamedPlacementGroup', { name, namespace });
  if (entry === null) throw new InvalidArgumentError(`getPlacementGroup(): no placement group is named '${name}' in namespace '${namespace}' (pass { namespace } if it was made in another)`, 'name');
  return new PlacementGroup(entry.placementGroupId, entry.bundles, entry.strategy);
}

/** Every group the GCS has (state.listPlacementGroups()). */
export async function listPlacementGroupEntries(): Promise<PlacementGroupTableEntry[]> {
  return (await ask('listPlacementGroups', {})).map(tableEntry);
}
