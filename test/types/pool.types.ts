// Type-level tests for multiprocessing.Pool and the small task options: checked by
// `tsc -p tsconfig.json --noEmit`, never run. Every `@ts-expect-error` line must be an error, and
// every expectType must name the exact type.
import { AsyncResult, IMapIterator, Pool, remote, util, wait, type ObjectRef, type TaskOptions } from 'miniray';

type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;

/** expectType<Expected>()(value) compiles only when the value's type is exactly Expected. */
function expectType<Expected>() {
  return <Actual>(_value: Actual, ..._exact: Equal<Actual, Expected> extends true ? [] : [never]): void => {};
}

declare const pool: Pool;
const square = (x: number) => x * x;
const asyncLength = async (s: string) => s.length;
const add = (a: number, b: string) => `${a}${b}`;

// ---- map and friends: results typed from the function, items checked against its parameter ------

expectType<Promise<number[]>>()(pool.map(square, [1, 2, 3]));
expectType<Promise<number[]>>()(pool.map(asyncLength, new Set(['a', 'bb'])));
expectType<Promise<number[]>>()(pool.map(square, [1, 2], { chunksize: 4 }));
// @ts-expect-error: items must be what the function takes
void pool.map(square, ['a']);
// @ts-expect-error: chunksize is a number
void pool.map(square, [1], { chunksize: '4' });

expectType<AsyncResult<number[]>>()(pool.mapAsync(square, [1]));
expectType<AsyncResult<number[]>>()(pool.mapAsync(square, [1], { callback: (values: number[]) => void values, errorCallback: (error: Error) => void error }));
// @ts-expect-error: the callback gets the results' type
void pool.mapAsync(square, [1], { callback: (values: string[]) => void values });

expectType<Promise<string[]>>()(pool.starmap(add, [[1, 'a'], [2, 'b']]));
// @ts-expect-error: each item is the argument list
void pool.starmap(add, [['a', 1]]);
expectType<AsyncResult<string[]>>()(pool.starmapAsync(add, [[1, 'a']]));

expectType<Promise<string>>()(pool.apply(add, [1, 'a']));
expectType<Promise<number>>()(pool.apply(() => 5));
// @ts-expect-error: arguments are checked
void pool.apply(add, [1, 2]);
expectType<AsyncResult<number>>()(pool.applyAsync(asyncLength, ['abc']));
declare const applied: AsyncResult<number>;
expectType<Promise<number>>()(applied.get(100));
expectType<boolean>()(applied.ready());
expectType<boolean>()(applied.successful());
expectType<Promise<void>>()(applied.wait());

// imap yields each result, or the Error of a call that failed (as Ray's).
expectType<IMapIterator<number>>()(pool.imap(square, [1, 2]));
expectType<IMapIterator<number>>()(pool.imapUnordered(asyncLength, ['a']));
async function iterate(): Promise<void> {
  for await (const value of pool.imap(square, [1, 2])) expectType<number | Error>()(value);
  const step = await pool.imap(square, [1]).next({ timeoutMs: 10 });
  if (step.done !== true) expectType<number | Error>()(step.value);
}
void iterate;

// A remote function made at a module's top level works as the function, typed the same.
const remoteSquare = remote((x: number) => x * x);
expectType<Promise<number[]>>()(pool.map(remoteSquare, [1]));
// @ts-expect-error: its parameter is checked too
void pool.map(remoteSquare, ['x']);

// ---- constructor options ------------------------------------------------------------------------

new Pool({ processes: 2, initializer: (prefix: string) => void prefix, initArgs: ['p'], actorOptions: { numCpus: 1 } });
// @ts-expect-error: processes is a number
new Pool({ processes: '2' });
// @ts-expect-error: actorOptions are ActorOptions
new Pool({ actorOptions: { numCpu: 1 } });
expectType<typeof Pool>()(util.multiprocessing.Pool);

// ---- retryExceptions and wait(fetchLocal) ---------------------------------------------------------

class QuotaError extends Error {}
const retried: TaskOptions = { retryExceptions: [QuotaError, TypeError, 'RateLimited'] };
void retried;
const alsoTrue: TaskOptions = { retryExceptions: true };
void alsoTrue;
// @ts-expect-error: a class that is not an Error
const notError: TaskOptions = { retryExceptions: [Map] };
void notError;
declare const refs: ObjectRef<number>[];
void wait(refs, { fetchLocal: false });
// @ts-expect-error: fetchLocal is a boolean
void wait(refs, { fetchLocal: 1 });
