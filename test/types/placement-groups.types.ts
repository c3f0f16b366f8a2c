// Type-level tests of placement groups and resources (helper pg). Checked by `npm run typecheck`
// (tsc), never run: each expectType line fails to compile when the type differs, and each
// `@ts-expect-error` line fails to compile when the call it marks is accepted.
import {
  PlacementGroup,
  getPlacementGroup,
  getRuntimeContext,
  placementGroup,
  placementGroupTable,
  remote,
  removePlacementGroup,
  state,
  type ObjectRef,
  type PlacementGroupLifetime,
  type PlacementGroupState,
  type PlacementGroupTableEntry,
  type PlacementStrategy,
} from 'miniray';

type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
function expectType<Expected>() {
  return <Actual>(_value: Actual, ..._exact: Equal<Actual, Expected> extends true ? [] : [never]): void => {};
}

export async function placementGroupTypes(): Promise<void> {
  const pg = placementGroup([{ CPU: 1 }, { CPU: 1, GPU: 1 }], { strategy: 'STRICT_SPREAD', name: 'g' });
  expectType<PlacementGroup>()(pg);
  expectType<ObjectRef<true>>()(pg.ready());
  expectType<Promise<boolean>>()(pg.wait(1000));
  expectType<Promise<void>>()(removePlacementGroup(pg));
  expectType<Promise<PlacementGroupTableEntry>>()(placementGroupTable(pg));
  expectType<Promise<Record<string, PlacementGroupTableEntry>>>()(placementGroupTable());
  expectType<Promise<PlacementGroup>>()(getPlacementGroup('g'));
  expectType<Promise<PlacementGroupTableEntry[]>>()(state.listPlacementGroups());
  expectType<PlacementStrategy>()((await placementGroupTable(pg)).strategy);
  expectType<PlacementGroupState>()((await placementGroupTable(pg)).state);
  expectType<Record<string, number>>()(getRuntimeContext().getAssignedResources());
  expectType<number[]>()(getRuntimeContext().getGpuIds());

  const fn = remote((x: number) => x + 1);
  fn.options({ schedulingStrategy: { placementGroup: pg } });
  fn.options({ schedulingStrategy: { placementGroup: pg, bundleIndex: 1, captureChildTasks: true } });
  placementGroup([{ CPU: 1 }], { name: 'kept', lifetime: 'detached' });
  placementGroup([{ CPU: 1 }], { lifetime: 'non_detached' });
  const lifetime: PlacementGroupLifetime = 'detached';
  void lifetime;
  // @ts-expect-error a lifetime that is not Ray's
  placementGroup([{ CPU: 1 }], { lifetime: 'forever' });
  // @ts-expect-error a strategy that is not Ray's
  placementGroup([{ CPU: 1 }], { strategy: 'NEAR' });
  // @ts-expect-error bundles are maps of amounts
  placementGroup([{ CPU: '1' }]);
  // @ts-expect-error bundleIndex is a number
  fn.options({ schedulingStrategy: { placementGroup: pg, bundleIndex: '0' } });
  // @ts-expect-error the strategy takes the group, not its ID
  fn.options({ schedulingStrategy: { placementGroup: pg.id } });
}
