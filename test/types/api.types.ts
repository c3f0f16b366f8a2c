// Type-level tests of the public API. Checked by `npm run typecheck` (tsc), never run: each
// expectType line fails to compile when the type differs, and each `@ts-expect-error` line fails
// to compile when the call it marks is accepted.
import {
  type InitResult,
  type MultiReturnRemoteFunction,
  type NodeInfo,
  type SchedulingStrategy,
  availableResources,
  clusterResources,
  nodes,
  type ObjectRef,
  type RemoteFunction,
  type RuntimeContext,
  TaskError,
  cancel,
  get,
  getRuntimeContext,
  init,
  put,
  remote,
  wait,
} from 'miniray';

/** True when A and B are the same type (not merely assignable either way). */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** `expectType<T>()(value)` compiles only when `value` has exactly type T. */
function expectType<Expected>() {
  return <Actual>(_value: Actual, ..._exact: Equals<Expected, Actual> extends true ? [] : ['types differ', Expected, Actual]): void => {};
}

// The helper itself tells types apart.
expectType<number>()(1 as number);
// @ts-expect-error: number is not string
expectType<string>()(1 as number);
// @ts-expect-error: any is not number
expectType<number>()(1 as any);
// @ts-expect-error: a subtype is not the same type
expectType<string>()('a' as const);
// ObjectRef keeps its value type in the built declarations (a private phantom field would lose it
// there, and every ObjectRef<X> would then be assignable to every ObjectRef<Y>).
// @ts-expect-error: ObjectRef<number> is not ObjectRef<string>
expectType<ObjectRef<string>>()(put(1));

async function types(): Promise<void> {
  // ---- remote and .remote() ----------------------------------------------------------------------

  const add = remote((a: number, b: number) => a + b);
  expectType<RemoteFunction<[a: number, b: number], number>>()(add);

  const ref: ObjectRef<number> = put(2);
  expectType<ObjectRef<number>>()(put(2));
  // The seed's acceptance, with a ref as an argument.
  expectType<ObjectRef<number>>()(remote((a: number, b: number) => a + b).remote(1, ref));
  expectType<ObjectRef<number>>()(add.remote(1, 2));
  expectType<ObjectRef<number>>()(add.remote(ref, ref));
  expectType<ObjectRef<number>>()(add.remote(add.remote(1, 2), 3));
  // The same through get(), which infers the value type from the ref's type argument.
  expectType<number>()(await get(remote((a: number, b: number) => a + b).remote(1, ref)));
  expectType<string>()(await get(remote((a: number) => String(a)).remote(ref)));

  // @ts-expect-error: wrong argument type
  add.remote('1', 2);
  // @ts-expect-error: wrong argument type in second place
  add.remote(1, true);
  // @ts-expect-error: a ref to a value of the wrong type
  add.remote(1, put('two'));
  // @ts-expect-error: a ref to a ref is not a ref to a number
  add.remote(1, put(put(2)));
  // @ts-expect-error: too many arguments
  add.remote(1, 2, 3);
  // @ts-expect-error: too few arguments
  add.remote(1);

  const noArgs = remote(() => 'hello');
  expectType<ObjectRef<string>>()(noArgs.remote());
  // @ts-expect-error: takes no arguments
  noArgs.remote(1);

  const optional = remote((name: string, greeting?: string) => `${greeting ?? 'hi'} ${name}`);
  expectType<ObjectRef<string>>()(optional.remote('ada'));
  expectType<ObjectRef<string>>()(optional.remote(put('ada'), 'hello'));

  const rest = remote((...values: number[]) => values.length);
  expectType<ObjectRef<number>>()(rest.remote(1, 2, put(3)));
  // @ts-expect-error: rest elements are numbers
  rest.remote(1, 'two');

  // A ref nested in an argument value is not resolved, so the parameter type says ObjectRef.
  const nested = remote((box: { inner: ObjectRef<number> }) => box.inner);
  expectType<ObjectRef<ObjectRef<number>>>()(nested.remote({ inner: ref }));
  // @ts-expect-error: a plain number where the parameter wants a ref inside an object
  nested.remote({ inner: 1 });

  // Async functions: the promise is unwrapped.
  const fetchName = remote(async (id: number) => `user-${id}`);
  expectType<ObjectRef<string>>()(fetchName.remote(1));
  expectType<string>()(await get(fetchName.remote(1)));
  const nestedPromise = remote(async () => Promise.resolve(42));
  expectType<ObjectRef<number>>()(nestedPromise.remote());

  // Object, union and void results.
  const makePoint = remote((x: number, y: number) => ({ x, y }));
  expectType<ObjectRef<{ x: number; y: number }>>()(makePoint.remote(1, 2));
  const maybe = remote((flag: boolean) => (flag ? 'yes' : null));
  expectType<ObjectRef<'yes' | null>>()(maybe.remote(true));
  const log = remote((message: string) => console.log(message));
  expectType<ObjectRef<void>>()(log.remote('x'));

  // ---- options and numReturns ------------------------------------------------------------------

  expectType<RemoteFunction<[a: number, b: number], number>>()(add.options({ maxRetries: 1, retryExceptions: true }));
  expectType<RemoteFunction<[a: number, b: number], number>>()(add.options({ numReturns: 1 }));

  const split = remote((text: string): [string, number] => [text, text.length]).options({ numReturns: 2 });
  expectType<MultiReturnRemoteFunction<[text: string], [string, number]>>()(split);
  expectType<[ObjectRef<string>, ObjectRef<number>]>()(split.remote('abc'));
  expectType<[string, number]>()(await get(split.remote('abc')));
  const [word, length] = split.remote('abc');
  expectType<ObjectRef<string>>()(word);
  expectType<ObjectRef<number>>()(length);

  const asyncSplit = remote(async (n: number): Promise<[number, boolean]> => [n, n > 0]).options({ numReturns: 2 });
  expectType<[ObjectRef<number>, ObjectRef<boolean>]>()(asyncSplit.remote(1));

  const many = remote((n: number) => Array.from({ length: n }, (_, i) => i)).options({ numReturns: 3 });
  expectType<ObjectRef<number>[]>()(many.remote(3));

  // Back to a single return.
  expectType<ObjectRef<[string, number]>>()(split.options({ numReturns: 1 }).remote('abc'));

  // @ts-expect-error: unknown task option
  add.options({ numReturn: 2 });
  // @ts-expect-error: wrong option type
  add.options({ maxRetries: '3' });
  // @ts-expect-error: unknown option at remote()
  remote((x: number) => x, { retries: 1 });
  // @ts-expect-error: remote() takes a function
  remote(42);

  // ---- get, put, wait, cancel ------------------------------------------------------------------

  expectType<number>()(await get(ref));
  expectType<number>()(await get(add.remote(1, 2), { timeoutMs: 100 }));
  expectType<string>()(await get(fetchName.remote(1)));

  // A tuple of refs gives a tuple of values.
  const pair = await get([ref, put('text')]);
  expectType<[number, string]>()(pair);
  expectType<[number, string, boolean]>()(await get([add.remote(1, 2), fetchName.remote(1), put(true)]));
  expectType<[string, number]>()(await get(split.remote('abc')));
  // An array of refs gives an array of values.
  const refs: ObjectRef<number>[] = [ref, add.remote(1, 2)];
  expectType<number[]>()(await get(refs));
  expectType<number[]>()(await get(many.remote(3)));

  // @ts-expect-error: not a ref
  void get(42);
  // @ts-expect-error: an array holding a non-ref
  void get([ref, 42]);
  // @ts-expect-error: unknown get option
  void get(ref, { timeout: 1 });

  expectType<ObjectRef<Map<string, number[]>>>()(put(new Map([['a', [1]]])));

  const waited = await wait([ref, add.remote(1, 2)], { numReturns: 1, timeoutMs: 10 });
  expectType<{ ready: ObjectRef<number>[]; pending: ObjectRef<number>[] }>()(waited);
  // @ts-expect-error: unknown wait option
  void wait([ref], { count: 1 });

  expectType<void>()(cancel(ref, { force: true }));
  // @ts-expect-error: unknown cancel option
  cancel(ref, { hard: true });

  // ---- init, context, errors -------------------------------------------------------------------

  expectType<Promise<InitResult>>()(init({ numWorkers: 2, numCpus: 2, objectStoreMemory: 1 << 20, workerHeapLimitMb: 64 }));
  // @ts-expect-error: unknown init option
  void init({ numWorker: 2 });
  // @ts-expect-error: wrong init option type
  void init({ numWorkers: '2' });

  expectType<RuntimeContext>()(getRuntimeContext());
  expectType<string>()(getRuntimeContext().workerId);
  expectType<boolean>()(getRuntimeContext().isDriver);

  try {
    await get(ref);
  } catch (error) {
    if (error instanceof TaskError) {
      expectType<string>()(error.functionName);
      expectType<string | undefined>()(error.remoteStack);
    }
  }
}

void types;

// wait() takes refs of different value types and keeps each ref's type.
{
  const mixed = [put(1), put('a')];
  const waited = wait(mixed);
  expectType<Promise<{ ready: (ObjectRef<number> | ObjectRef<string>)[]; pending: (ObjectRef<number> | ObjectRef<string>)[] }>>()(waited);
}

// ---- the cluster ------------------------------------------------------------------------------
expectType<Promise<NodeInfo[]>>()(nodes());
expectType<Promise<Record<string, number>>>()(clusterResources());
expectType<Promise<Record<string, number>>>()(availableResources());
declare const node: NodeInfo;
expectType<string>()(node.nodeId);
expectType<boolean>()(node.alive);
expectType<Readonly<Record<string, number>>>()(node.resources);
void init({ address: '127.0.0.1:6380', numGpus: 1, resources: { disk: 2 } });
void init({ address: 'auto' });
remote(() => 1, { numGpus: 1, resources: { disk: 1 }, schedulingStrategy: 'SPREAD' });
remote(() => 1, { schedulingStrategy: { nodeId: node.nodeId, soft: true } });
remote(() => 1, { schedulingStrategy: { nodeId: node.nodeId } });
const spread: SchedulingStrategy = 'SPREAD';
remote(() => 1, { schedulingStrategy: spread });
// @ts-expect-error: not a strategy
remote(() => 1, { schedulingStrategy: 'NEAREST' });
// @ts-expect-error: amounts are numbers
remote(() => 1, { resources: { disk: 'one' } });
// @ts-expect-error: an affinity names a node
remote(() => 1, { schedulingStrategy: { soft: true } });
class Worker_ {
  run(): number {
    return 1;
  }
}
remote(Worker_, { numCpus: 1, numGpus: 1, resources: { disk: 1 }, schedulingStrategy: { nodeId: node.nodeId, soft: false } });
