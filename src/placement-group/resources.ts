/**
 * How a placement group's bundles appear as resources, as Ray formats them: a committed bundle
 * `i` of group `pg` adds `<name>_group_<i>_<pg>` and `<name>_group_<pg>` for each resource it
 * reserved (and `bundle_group_<i>_<pg>` / `bundle_group_<pg>`: 1000 each, which ready() asks a
 * sliver of). A task placed in the group asks for those names instead of the plain ones, so the
 * node and the cluster's placement need no other notion of a group: a task runs where its bundle
 * is, with what the bundle holds, and waits while the bundle is not there.
 *
 * Imports nothing: the GCS, the node, the agent and the API all use it.
 */

export const PLACEMENT_STRATEGIES = ['PACK', 'SPREAD', 'STRICT_PACK', 'STRICT_SPREAD'] as const;
export type PlacementStrategy = (typeof PLACEMENT_STRATEGIES)[number];

/** Ray's states (gcs.proto's PlacementGroupTableData.PlacementGroupState). REMOVED is final. */
export const PLACEMENT_GROUP_STATES = ['PENDING', 'PREPARED', 'CREATED', 'REMOVED', 'RESCHEDULING'] as const;
export type PlacementGroupState = (typeof PLACEMENT_GROUP_STATES)[number];

/** What a committed bundle adds under `bundle_group_*` (Ray's 1000 units: ready() takes 0.001 of one). */
export const BUNDLE_UNITS = 1000;
export const BUNDLE_RESOURCE = 'bundle';

const GROUP = /_group_(?:(\d+)_)?([0-9a-f]{32})$/;

/** The resource names a committed bundle adds, with their amounts (CPUs included, as 'CPU'). */
export function bundleResources(placementGroupId: string, index: number, bundle: Readonly<Record<string, number>>): Record<string, number> {
  const added: Record<string, number> = {};
  for (const [name, amount] of Object.entries({ ...bundle, [BUNDLE_RESOURCE]: BUNDLE_UNITS })) {
    if (amount <= 0) continue;
    added[`${name}_group_${index}_${placementGroupId}`] = amount;
    added[`${name}_group_${placementGroupId}`] = amount;
  }
  return added;
}

/**
 * A task's or actor's demand placed in a group: every resource it asks for (CPUs as 'CPU') under
 * the group's names. bundleIndex -1 (any bundle) asks for the group-wide names only.
 */
export function groupDemand(placementGroupId: string, bundleIndex: number, numCpus: number, resources: Readonly<Record<string, number>> | undefined): Record<string, number> {
  const demand: Record<string, number> = {};
  for (const [name, amount] of Object.entries({ CPU: numCpus, ...resources })) {
    if (amount <= 0) continue;
    if (bundleIndex >= 0) demand[`${name}_group_${bundleIndex}_${placementGroupId}`] = amount;
    demand[`${name}_group_${placementGroupId}`] = amount;
  }
  return demand;
}

/** The group a resource name belongs to (undefined for a plain resource). */
export function groupOf(name: string): string | undefined {
  return GROUP.exec(name)?.[2];
}

/** The groups a demand names (empty for a plain one: the common case returns at once). */
export function groupsIn(demand: Readonly<Record<string, number>> | undefined): string[] {
  if (demand === undefined) return [];
  const groups: string[] = [];
  for (const name in demand) {
    const group = groupOf(name);
    if (group !== undefined && !groups.includes(group)) groups.push(group);
  }
  return groups;
}

/** The plain resource a group's name stands for ('CPU' for 'CPU_group_0_<pg>'), and its bundle (-1: group-wide). */
export function plainOf(name: string): { readonly name: string; readonly bundleIndex: number } | undefined {
  const match = GROUP.exec(name);
  if (match === null) return undefined;
  return { name: name.slice(0, match.index), bundleIndex: match[1] === undefined ? -1 : Number(match[1]) };
}
