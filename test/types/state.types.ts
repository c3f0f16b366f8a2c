// Type-level tests of the state API. Checked by `npm run typecheck` (tsc), never run: each
// expectType line fails to compile when the type differs, and each `@ts-expect-error` line fails
// to compile when the call it marks is accepted.
import {
  state,
  type ActorStateEntry,
  type JobStateEntry,
  type ListResult,
  type NodeStateEntry,
  type ObjectStateEntry,
  type StateListOptions,
  type TaskEntry,
  type TaskSummary,
  type WorkerStateEntry,
} from 'miniray';

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<Expected>() {
  return <Actual>(_value: Actual, ..._exact: Equals<Expected, Actual> extends true ? [] : ['types differ', Expected, Actual]): void => {};
}

async function types(): Promise<void> {
  // ---- what each list resolves to: an array of its records, as Ray's list_* -----------------------
  expectType<TaskEntry[]>()(await state.listTasks());
  expectType<ActorStateEntry[]>()(await state.listActors());
  expectType<ObjectStateEntry[]>()(await state.listObjects());
  expectType<NodeStateEntry[]>()(await state.listNodes());
  expectType<JobStateEntry[]>()(await state.listJobs());
  expectType<WorkerStateEntry[]>()(await state.listWorkers());
  expectType<TaskEntry[]>()(await state.getTask('0'.repeat(32)));
  expectType<ActorStateEntry | undefined>()(await state.getActor('0'.repeat(32)));
  expectType<TaskSummary>()(await state.summarizeTasks());
  expectType<ListResult<ActorStateEntry>>()(await state.list('actors'));
  expectType<ListResult<TaskEntry>>()(await state.list('tasks', { limit: 5 }));

  // ---- filters: [key, op, value] over the kind's filterable fields ----------------------------------
  await state.listActors({ filters: [['state', '=', 'ALIVE'], ['numRestarts', '!=', 0], ['detached', '=', true]] });
  await state.listTasks({ filters: [['name', '=', 'f'], ['state', '=', 'FAILED']], limit: 10, detail: true, timeoutMs: 5_000 });
  await state.listObjects({ filters: [['nodeId', '=', 'abc']] });
  await state.listNodes({ filters: [['isHead', '=', true]] });
  await state.listJobs({ filters: [['submissionId', '=', 'raysubmit_1']] });
  await state.listWorkers({ filters: [['workerType', '=', 'actor']] });
  await state.list('nodes', { filters: [['state', '=', 'DEAD']] });
  // @ts-expect-error: a typo in a key does not compile
  await state.listActors({ filters: [['stat', '=', 'ALIVE']] });
  // @ts-expect-error: a key of another kind (tasks have no className)
  await state.listTasks({ filters: [['className', '=', 'C']] });
  // @ts-expect-error: detail-only fields are shown, not filtered on
  await state.listTasks({ filters: [['events', '=', 'x']] });
  // @ts-expect-error: lists are not filtered on (an object's referencedBy)
  await state.listObjects({ filters: [['referencedBy', '=', 'driver']] });
  // @ts-expect-error: only = and != (Ray's predicates)
  await state.listActors({ filters: [['state', '==', 'ALIVE']] });
  // @ts-expect-error: a value is a string, a number or a boolean
  await state.listActors({ filters: [['state', '=', null]] });
  // @ts-expect-error: a filter is a tuple of three
  await state.listActors({ filters: [['state', '=']] });
  // @ts-expect-error: keys of state.list's kind
  await state.list('workers', { filters: [['className', '=', 'C']] });
  // @ts-expect-error: no such option
  await state.listActors({ limt: 5 });

  // The options type names the filterable keys.
  const options: StateListOptions<'actors'> = { filters: [['className', '=', 'Counter']] };
  await state.listActors(options);
}
void types;
