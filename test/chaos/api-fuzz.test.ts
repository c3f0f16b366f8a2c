// A property-based fuzz of the public API (issue 8): random options for remote/.options()/init/
// actor creation/get/wait/cancel/kill/getActor, hostile values (deep, cyclic, getters that throw,
// proxies, symbols, BigInt, sparse arrays, platform objects), and forged refs and handles. Every
// call must succeed or fail with a MinirayError: never crash the process, never hang (each call is
// raced against a generous limit), never throw an untyped error.
//
// The run is seeded and prints its figures: operations, how many succeeded, errors by class, and
// any untyped errors or hangs with the operation that caused them (its index and a description).
// MINIRAY_FUZZ_SEED and MINIRAY_FUZZ_OPS override the seed and the count; MINIRAY_FUZZ_TRACE=1
// prints each operation with its duration, to find a slow or stuck one.
//
// Values that block the thread synchronously are left out, since no timeout race can bound a
// synchronous call: put() of a sparse array of length 2**32 - 1 did not return within a minute.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import {
  MinirayError,
  ObjectID,
  ObjectRef,
  cancel,
  get,
  getActor,
  init,
  kill,
  put,
  remote,
  shutdown,
  wait,
  type ActorHandle,
} from 'miniray';
import { report, scaled } from './figures.js';

const SEED = Number(process.env.MINIRAY_FUZZ_SEED ?? 20261201);
const OPS = Number(process.env.MINIRAY_FUZZ_OPS ?? scaled(5_000));
/** A call that has not settled by then counts as hung (generous: 2 busy cores). */
const HANG_MS = 15_000;

// ---- what runs in the workers ---------------------------------------------------------------------

const echo = remote(function echo(...args: unknown[]) {
  return args.length;
});
const identity = remote(function identity(value: unknown) {
  return value;
});
const pair = remote(function pair() {
  return [1, 2];
});

/** A hostile result or throw, made in the worker (values from the driver are covered elsewhere). */
const hostileResult = remote(function hostileResult(kind: number) {
  const nest = (depth: number) => {
    let value: unknown = 0;
    for (let i = 0; i < depth; i++) value = [value];
    return value;
  };
  switch (kind) {
    case 0: return new Proxy({}, { ownKeys() { throw new Error('trap in the worker'); } });
    case 1: return Object.defineProperty({}, 'x', { enumerable: true, get() { throw new Error('getter in the worker'); } });
    case 2: return nest(5000);
    case 3: return () => 1;
    case 4: return Symbol('result');
    case 5: return (function* gen() { yield 1; })();
    case 6: return Promise.reject(new Error('rejected'));
    case 7: throw 5;
    case 8: throw null;
    case 9: throw Symbol('thrown');
    case 10: throw Object.defineProperty(new Error('e'), 'code', { enumerable: true, get() { throw new Error('code getter'); } });
    case 11: throw new Proxy(new Error('proxied'), { get() { throw new Error('error trap'); } });
    case 12: { const e = new Error('cyclic cause'); (e as { cause?: unknown }).cause = e; throw e; }
    case 13: return new SharedArrayBuffer(8);
    case 14: return { big: 2n ** 100n, when: new Date(0), re: /x/g, map: new Map([[1, new Set([2])]]) };
    default: return new WeakMap();
  }
});

/** Targets for remote() that are not ordinary functions or classes. */
const REMOTE_TARGETS: ReadonlyArray<readonly [string, () => unknown]> = [
  ['null', () => null],
  ['42', () => 42],
  ['a symbol', () => Symbol('f')],
  ['an object', () => ({ call() {} })],
  ['a bound function', () => function bound(x: number) { return x; }.bind(null)],
  ['a built-in', () => Math.max],
  ['a proxy of a function', () => new Proxy(function proxied() { return 1; }, {})],
  ['an async generator function', () => async function* agen() { yield 1; }],
  ['a generator function', () => function* gen() { yield 1; }],
  ['an async function', () => async function later() { return 1; }],
  ['a function capturing a variable', () => {
    const captured = 1;
    return () => captured;
  }],
  ['a class whose prototype chain throws', () => {
    class Hostile { m() { return 1; } }
    Object.setPrototypeOf(Hostile.prototype, new Proxy({}, { ownKeys() { throw new Error('own'); }, getPrototypeOf() { return null; } }));
    return Hostile;
  }],
  ['a class with a getter', () => class WithGetter { get a() { return 1; } m() { return 2; } }],
  ['a class whose constructor throws', () => class Throws { constructor() { throw new Error('ctor'); } m() { return 1; } }],
];

class Box {
  value: unknown;
  constructor(value: unknown) {
    this.value = value;
  }
  read(): unknown {
    return this.value;
  }
  write(value: unknown): boolean {
    this.value = value;
    return true;
  }
}

// ---- hostile values ------------------------------------------------------------------------------

function nested(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

function* generator(): Generator<number> {
  yield 1;
}

/** Fresh hostile values, made at call time (a proxy or a generator is not reusable across calls). */
const HOSTILE: ReadonlyArray<readonly [string, () => unknown]> = [
  ['cyclic object', () => {
    const a: Record<string, unknown> = { name: 'a' };
    a.self = a;
    return a;
  }],
  ['cyclic array', () => {
    const a: unknown[] = [1];
    a.push(a);
    return a;
  }],
  ['shared subobject', () => {
    const shared = { x: 1 };
    return { a: shared, b: shared };
  }],
  ['nested 10', () => nested(10)],
  ['nested 1000', () => nested(1000)],
  ['nested 5000', () => nested(5000)],
  ['throwing getter', () => Object.defineProperty({}, 'x', { enumerable: true, get: () => { throw new Error('getter'); } })],
  ['throwing toJSON', () => ({ toJSON: () => { throw new Error('toJSON'); } })],
  ['proxy with throwing get', () => new Proxy({ a: 1 }, { get: () => { throw new Error('trap get'); } })],
  ['proxy with throwing ownKeys', () => new Proxy({ a: 1 }, { ownKeys: () => { throw new Error('trap ownKeys'); } })],
  ['proxy with throwing getPrototypeOf', () => new Proxy({}, { getPrototypeOf: () => { throw new Error('trap proto'); } })],
  ['revoked proxy', () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    return proxy;
  }],
  ['proxy of an array', () => new Proxy([1, 2, 3], {})],
  ['symbol', () => Symbol('s')],
  ['symbol-keyed object', () => ({ [Symbol('k')]: 1, plain: 2 })],
  ['bigint', () => 2n ** 200n],
  ['negative bigint', () => -(2n ** 64n)],
  ['sparse array', () => {
    const a: unknown[] = [];
    a[5] = 'x';
    return a;
  }],
  ['sparse array of 100000', () => {
    const a: unknown[] = [];
    a[99_999] = 1;
    return a;
  }],
  ['array with extra props', () => Object.assign([1, 2], { extra: true })],
  ['null-prototype object', () => Object.assign(Object.create(null) as object, { a: 1 })],
  ['__proto__ own key', () => JSON.parse('{"__proto__": {"polluted": true}}') as unknown],
  ['frozen object', () => Object.freeze({ a: [1, 2] })],
  ['class instance', () => new Box(1)],
  ['class with private field', () => new (class Secret { #hidden = 1; shown = 2; peek() { return this.#hidden; } })()],
  ['function', () => () => 1],
  ['Date', () => new Date(0)],
  ['invalid Date', () => new Date(Number.NaN)],
  ['RegExp', () => /a+/gi],
  ['Error', () => Object.assign(new RangeError('r'), { code: 'E' })],
  ['Map with object keys', () => new Map<unknown, unknown>([[{ k: 1 }, 'v'], [1n, null]])],
  ['Set', () => new Set([1, 'a', null])],
  ['boxed primitives', () => [new Number(1), new String('s'), new Boolean(false)]],
  ['NaN and -0', () => [Number.NaN, -0, Infinity, -Infinity]],
  ['typed arrays', () => [new Float64Array([1.5]), new BigInt64Array([1n]), new Uint8ClampedArray(3)]],
  ['large typed array', () => new Uint8Array(200_000).fill(7)],
  ['DataView', () => new DataView(new ArrayBuffer(8))],
  ['ArrayBuffer', () => new ArrayBuffer(16)],
  ['detached ArrayBuffer', () => {
    const buffer = new ArrayBuffer(8);
    structuredClone(buffer, { transfer: [buffer] });
    return buffer;
  }],
  ['SharedArrayBuffer', () => new SharedArrayBuffer(8)],
  ['Promise', () => Promise.resolve(1)],
  ['WeakMap', () => new WeakMap()],
  ['generator object', () => generator()],
  ['Map iterator', () => new Map([[1, 2]]).entries()],
  ['Response', () => new Response('body')],
  ['Headers', () => new Headers({ a: 'b' })],
  ['Blob', () => new Blob(['x'])],
  ['AbortController', () => new AbortController()],
  ['TextEncoder', () => new TextEncoder()],
  ['URL', () => new URL('https://example.com/')],
  ['lone surrogate string', () => '\ud800x'],
  ['long string', () => 'x'.repeat(300_000)],
  ['real ref nested', () => ({ inner: put(1) })],
  ['forged ref nested', () => ({ inner: Object.create(ObjectRef.prototype) as unknown })],
  ['unknown ref nested', () => ({ inner: new ObjectRef(ObjectID.fromRandom(), { nodeId: '', workerId: '' }) })],
  ['real handle nested', () => ({ handle: pools.handles[0] })],
  ['forged handle nested', () => ({ handle: forgedHandle() })],
];

// ---- refs and handles: real, unknown and forged ------------------------------------------------

const pools = {
  refs: [] as ObjectRef[],
  handles: [] as ActorHandle<Box>[],
};

function forgedHandle(): unknown {
  const real = pools.handles[0];
  return real === undefined ? {} : Object.create(Object.getPrototypeOf(real) as object);
}

const FORGED_REFS: ReadonlyArray<readonly [string, () => unknown]> = [
  ['Object.create(ObjectRef.prototype)', () => Object.create(ObjectRef.prototype)],
  ['ref-shaped object', () => ({ id: ObjectID.fromRandom(), owner: { nodeId: '', workerId: '' } })],
  ['ref with a fake id', () => Object.assign(Object.create(ObjectRef.prototype) as object, { id: { toHex: () => 'zz' } })],
  ['proxy of a real ref', () => new Proxy(pools.refs[0] ?? {}, {})],
  ['proxy of a ref with throwing traps', () => new Proxy(pools.refs[0] ?? {}, { get: () => { throw new Error('trap'); } })],
  ['unknown ref', () => new ObjectRef(ObjectID.fromRandom(), { nodeId: 'n', workerId: 'w' })],
  ['new ObjectID(bad hex)', () => new ObjectRef(new ObjectID('not hex'), { nodeId: '', workerId: '' })],
];

// ---- arbitraries ---------------------------------------------------------------------------------

type Thunk = { label: string; make: () => unknown };
const thunk = (label: string, make: () => unknown): Thunk => ({ label, make });

const plainValue = fc.oneof(
  { weight: 3, arbitrary: fc.anything({ maxDepth: 3, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withSparseArray: true, withNullPrototype: true, withBoxedValues: true }) },
  { weight: 1, arbitrary: fc.constantFrom(undefined, null, 0, -0, Number.NaN, Infinity, '', 'x', true) },
).map((value) => thunk(`value ${safeShow(value)}`, () => value));

const hostileValue = fc.constantFrom(...HOSTILE).map(([label, make]) => thunk(label, make));

const value = fc.oneof({ weight: 2, arbitrary: plainValue }, { weight: 3, arbitrary: hostileValue });

const refTarget = fc.oneof(
  { weight: 4, arbitrary: fc.nat().map((i) => thunk('a real ref', () => pools.refs[i % Math.max(1, pools.refs.length)] ?? put(0))) },
  { weight: 2, arbitrary: fc.constantFrom(...FORGED_REFS).map(([label, make]) => thunk(label, make)) },
  { weight: 1, arbitrary: value },
);

const refsTarget = fc.oneof(
  { weight: 3, arbitrary: fc.array(refTarget, { maxLength: 5 }).map((items) => thunk(`[${items.map((t) => t.label).join(', ')}]`, () => items.map((t) => t.make()))) },
  { weight: 1, arbitrary: fc.nat().map((i) => thunk('a real ref twice', () => {
    const ref = pools.refs[i % Math.max(1, pools.refs.length)] ?? put(0);
    return [ref, ref];
  })) },
  { weight: 1, arbitrary: fc.constant(thunk('sparse array of refs', () => {
    const a: unknown[] = [];
    a[3] = pools.refs[0];
    return a;
  })) },
  { weight: 1, arbitrary: refTarget },
);

/** Values an option may get: the meaningful ones, edge numbers, and junk. */
function optionValue(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 12, arbitrary: valid },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        -1, -2, 0, 0.5, 1.5, 2 ** 31, 2 ** 53, 1e12, 1e308, Infinity, -Infinity, Number.NaN, '', 'two', true, null, 1n, [1], {},
      ),
    },
    { weight: 1, arbitrary: fc.anything({ maxDepth: 1 }) },
  );
}

const smallInt = fc.integer({ min: 0, max: 3 });
const timeout = fc.oneof(fc.integer({ min: 0, max: 50 }), fc.constantFrom(Infinity, 2 ** 31, 1e12));
const boolean = fc.boolean();
const name = fc.oneof(fc.constantFrom('', 'a', 'fuzzed'), fc.string({ maxLength: 8 }));

const OPTION_DOMAINS = {
  task: {
    numCpus: fc.constantFrom(0, 0.5, 1, 2, 64),
    numReturns: fc.constantFrom(1, 2, 3),
    maxRetries: fc.constantFrom(-1, 0, 1, 3),
    retryExceptions: boolean,
    name,
  },
  actor: {
    name,
    namespace: name,
    maxRestarts: fc.constantFrom(-1, 0, 1),
    maxTaskRetries: fc.constantFrom(-1, 0, 1),
    maxConcurrency: fc.constantFrom(1, 2, 1000),
    numCpus: fc.constantFrom(0, 0.5, 64),
    // A thread per actor would make thousands of threads; 'process' a child each. Junk strings still come.
    isolation: fc.constantFrom('shared', 'shared', 'thread'),
  },
  init: {
    numWorkers: fc.constantFrom(1, 2, 4),
    numCpus: fc.constantFrom(0, 1, 2.5),
    objectStoreMemory: fc.constantFrom(1, 1 << 20),
    workerHeapLimitMb: fc.constantFrom(16, 64),
    spillDirectory: fc.constantFrom('/tmp', ''),
    ignoreReinitError: boolean,
  },
  get: { timeoutMs: timeout },
  wait: { numReturns: smallInt, timeoutMs: timeout },
  cancel: { force: boolean },
  kill: { noRestart: boolean },
  getActor: { namespace: name },
} satisfies Record<string, Record<string, fc.Arbitrary<unknown>>>;

/** Options as a user might pass them: a record of some known keys, maybe a typo, maybe dressed up. */
function options(domain: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Thunk> {
  const keys = Object.keys(domain);
  const record = fc.record(
    Object.fromEntries(keys.map((key) => [key, optionValue(domain[key] as fc.Arbitrary<unknown>)])),
    { requiredKeys: [] },
  );
  const typo = fc.option(fc.constantFrom(...keys.map((k) => `${k}s`), 'timeout', 'num_returns', '__proto__', 'constructor'), { nil: undefined });
  const dress = fc.constantFrom('plain', 'plain', 'plain', 'inherited', 'getters', 'throwing getter', 'proxy', 'frozen', 'not an object');
  return fc.tuple(record, typo, dress, fc.nat()).map(([fields, extra, how, pick]) => {
    const label = `${how} ${safeShow(fields)}${extra === undefined ? '' : ` +${extra}`}`;
    return thunk(label, () => {
      const own: Record<string, unknown> = { ...fields };
      if (extra !== undefined) own[extra] = 1;
      switch (how) {
        case 'plain':
          return own;
        case 'inherited':
          return Object.create(own) as object;
        case 'getters':
          return Object.defineProperties({}, Object.fromEntries(Object.entries(own).map(([k, v]) => [k, { enumerable: true, get: () => v }])));
        case 'throwing getter':
          return Object.defineProperty(own, keys[0] as string, { enumerable: true, get: () => { throw new Error('option getter'); } });
        case 'proxy':
          return new Proxy(own, {});
        case 'frozen':
          return Object.freeze(own);
        default: {
          const notObjects: unknown[] = [5, 'x', null, [own], () => own, Symbol('o'), 1n, true];
          return notObjects[pick % notObjects.length];
        }
      }
    });
  });
}

const maybeOptions = (domain: Record<string, fc.Arbitrary<unknown>>) =>
  fc.option(options(domain), { nil: undefined, freq: 3 });

type Op = { kind: string; label: string; run: () => unknown | Promise<unknown> };
const op = (kind: string, label: string, run: () => unknown | Promise<unknown>): Op => ({ kind, label, run });

const opArb: fc.Arbitrary<Op> = fc.oneof(
  // remote(fn, options), then maybe .options(), .remote(args) and get of the refs.
  {
    weight: 4,
    arbitrary: fc.tuple(maybeOptions(OPTION_DOMAINS.task), maybeOptions(OPTION_DOMAINS.task), fc.array(value, { maxLength: 3 }), maybeOptions(OPTION_DOMAINS.get)).map(
      ([first, second, args, getOptions]) =>
        op('task', `remote(echo, ${first?.label}).options(${second?.label}).remote(${args.map((a) => a.label).join(', ')})`, async () => {
          let fn = remote(function fuzzed(...xs: unknown[]) {
            return xs.length === 0 ? [1, 2, 3] : xs;
          }, first?.make() as undefined) as unknown as { options(o: unknown): typeof fn; remote(...a: unknown[]): unknown };
          if (second !== undefined) fn = fn.options(second.make());
          const refs = fn.remote(...args.map((a) => a.make()));
          remember(refs);
          return get(refs as ObjectRef, getOptions?.make() as undefined);
        }),
    ),
  },
  // echo / identity with hostile arguments.
  {
    weight: 5,
    arbitrary: fc.tuple(fc.boolean(), value, fc.array(refTarget, { maxLength: 2 })).map(([useIdentity, arg, refs]) =>
      op('args', `${useIdentity ? 'identity' : 'echo'}.remote(${arg.label}, ...refs)`, async () => {
        const ref = useIdentity ? identity.remote(arg.make()) : echo.remote(arg.make(), ...refs.map((r) => r.make()));
        remember(ref);
        return get(ref, { timeoutMs: 10_000 });
      }),
    ),
  },
  { weight: 4, arbitrary: value.map((v) => op('put', `put(${v.label})`, () => remember(put(v.make())))) },
  {
    weight: 4,
    arbitrary: fc.tuple(refsTarget, maybeOptions(OPTION_DOMAINS.get)).map(([target, o]) =>
      op('get', `get(${target.label}, ${o?.label})`, () => get(target.make() as ObjectRef, o?.make() as undefined)),
    ),
  },
  {
    weight: 4,
    arbitrary: fc.tuple(refsTarget, maybeOptions(OPTION_DOMAINS.wait)).map(([target, o]) =>
      op('wait', `wait(${target.label}, ${o?.label})`, () => wait(target.make() as ObjectRef[], o?.make() as undefined)),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(refTarget, maybeOptions(OPTION_DOMAINS.cancel)).map(([target, o]) =>
      op('cancel', `cancel(${target.label}, ${o?.label})`, () => {
        // Cancel fresh work, so that the refs other calls read stay as they are.
        const ref = target.label === 'a real ref' ? echo.remote(1) : target.make();
        cancel(ref as ObjectRef, o?.make() as undefined);
      }),
    ),
  },
  // Actor creation with random options; each created actor is killed after one call.
  {
    weight: 1,
    arbitrary: fc.tuple(maybeOptions(OPTION_DOMAINS.actor), maybeOptions(OPTION_DOMAINS.actor), value, value).map(([first, second, ctorArg, callArg]) =>
      op('actor', `remote(Box, ${first?.label}).options(${second?.label}).remote(${ctorArg.label}).write(${callArg.label})`, async () => {
        let cls = remote(Box, first?.make() as undefined);
        if (second !== undefined) cls = cls.options(second.make() as object);
        const handle = cls.remote(ctorArg.make());
        try {
          await get(handle.write.remote(callArg.make()), { timeoutMs: 10_000 });
          return await get(handle.read.remote(), { timeoutMs: 10_000 });
        } finally {
          kill(handle);
        }
      }),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(fc.nat(), value).map(([i, v]) =>
      op('actor call', `handle.write.remote(${v.label})`, async () => {
        const handle = pools.handles[i % pools.handles.length] as ActorHandle<Box>;
        await get(handle.write.remote(v.make()), { timeoutMs: 10_000 });
        return get(handle.read.remote(), { timeoutMs: 10_000 });
      }),
    ),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(
      fc.oneof(
        fc.constant(thunk('forged handle', forgedHandle)),
        fc.constant(thunk('fresh handle', () => remote(Box, { isolation: 'shared' }).remote(0))),
        value,
      ),
      maybeOptions(OPTION_DOMAINS.kill),
    ).map(([target, o]) => op('kill', `kill(${target.label}, ${o?.label})`, () => kill(target.make() as ActorHandle<Box>, o?.make() as undefined))),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.oneof(name, fc.anything({ maxDepth: 1 })), maybeOptions(OPTION_DOMAINS.getActor)).map(([n, o]) =>
      op('getActor', `getActor(${safeShow(n)}, ${o?.label})`, () => getActor(n as string, o?.make() as undefined)),
    ),
  },
  {
    weight: 1,
    arbitrary: maybeOptions(OPTION_DOMAINS.init).map((o) =>
      // miniray is running: this checks the options, then returns (ignoreReinitError) or refuses.
      op('init', `init(${o?.label})`, () => init(o?.make() as undefined)),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.oneof(fc.string({ maxLength: 40 }), fc.anything({ maxDepth: 1, withBigInt: true })).map((hex) =>
      op('ids', `ObjectID.fromHex(${safeShow(hex)}) / new ObjectRef(...)`, () => {
        try {
          ObjectID.fromHex(hex as string);
        } finally {
          new ObjectRef(hex as ObjectID, hex as { nodeId: string; workerId: string });
        }
      }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 0, max: 15 }).map((kind) =>
      op('hostile result', `hostileResult.remote(${kind})`, () => get(hostileResult.remote(kind), { timeoutMs: 10_000 })),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(...REMOTE_TARGETS), maybeOptions(OPTION_DOMAINS.task)).map(([[label, make], o]) =>
      op('remote target', `remote(${label}, ${o?.label})`, async () => {
        const made = remote(make() as () => unknown, o?.make() as undefined) as unknown as { remote(): unknown };
        const result = made.remote();
        if (result instanceof ObjectRef) return get(result, { timeoutMs: 10_000 });
        const handle = result as ActorHandle<{ m(): number }>;
        try {
          return await get(handle.m.remote(), { timeoutMs: 10_000 });
        } finally {
          kill(handle);
        }
      }),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...FORGED_REFS).map(([label, make]) =>
      op('forged ref as argument', `echo.remote(${label})`, async () => get(echo.remote(make()), { timeoutMs: 10_000 })),
    ),
  },
);

function remember(refs: unknown): unknown {
  for (const ref of Array.isArray(refs) ? refs : [refs]) {
    if (ref instanceof ObjectRef) {
      pools.refs.push(ref);
      if (pools.refs.length > 64) pools.refs.splice(0, 16);
    }
  }
  return refs;
}

function safeShow(value: unknown): string {
  try {
    const text = typeof value === 'bigint' ? `${value}n` : typeof value === 'symbol' ? String(value) : JSON.stringify(value) ?? String(value);
    return text.length > 80 ? `${text.slice(0, 80)}...` : text;
  } catch {
    return `<${typeof value}>`;
  }
}

// ---- the run -------------------------------------------------------------------------------------

const HUNG = Symbol('hung');

async function settle(run: () => unknown): Promise<{ ok: true } | { ok: false; error: unknown } | typeof HUNG> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = run();
    if (typeof (result as { then?: unknown } | null)?.then !== 'function') return { ok: true };
    const hung = new Promise<typeof HUNG>((resolve) => {
      timer = setTimeout(() => resolve(HUNG), HANG_MS);
    });
    const outcome = await Promise.race([(result as Promise<unknown>).then(() => ({ ok: true }) as const), hung]);
    return outcome;
  } catch (error) {
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
}

before(async () => {
  await init({ numWorkers: 2 });
  for (let i = 0; i < 3; i++) pools.handles.push(remote(Box, { isolation: 'shared' }).remote(i));
  for (let i = 0; i < 8; i++) remember(put(i));
  remember(pair.options({ numReturns: 2 }).remote());
});
after(() => shutdown());

test(`fuzzed calls of the public API give a result or a MinirayError (seed ${SEED}, ${OPS} operations)`, { timeout: 300_000 }, async () => {
  const ops = fc.sample(opArb, { seed: SEED, numRuns: OPS });
  const byKind = new Map<string, number>();
  const errorsByClass = new Map<string, number>();
  const untyped: string[] = [];
  const hung: string[] = [];
  let successes = 0;
  const started = Date.now();
  for (const [i, next] of ops.entries()) {
    byKind.set(next.kind, (byKind.get(next.kind) ?? 0) + 1);
    const opStarted = Date.now();
    const outcome = await settle(next.run);
    if (process.env.MINIRAY_FUZZ_TRACE) console.log(`op #${i} ${Date.now() - opStarted} ms [${next.kind}] ${next.label.slice(0, 160)}`);
    if (outcome === HUNG) {
      hung.push(`#${i} ${next.label}`);
    } else if (outcome.ok) {
      successes++;
    } else if (outcome.error instanceof MinirayError) {
      errorsByClass.set(outcome.error.name, (errorsByClass.get(outcome.error.name) ?? 0) + 1);
    } else {
      const error = outcome.error as { name?: unknown; message?: unknown } | undefined;
      untyped.push(`#${i} [${next.kind}] ${next.label} -> ${safeShow(error?.name)}: ${safeShow(error?.message)}`);
    }
  }
  report('api fuzz', {
    seed: SEED,
    operations: ops.length,
    seconds: ((Date.now() - started) / 1000).toFixed(1),
    successes,
    minirayErrors: [...errorsByClass.values()].reduce((a, b) => a + b, 0),
    untyped: untyped.length,
    hung: hung.length,
  });
  report('api fuzz operations', Object.fromEntries(byKind));
  report('api fuzz errors by class', Object.fromEntries(errorsByClass));
  for (const line of untyped.slice(0, 40)) console.log(`  untyped: ${line}`);
  for (const line of hung.slice(0, 10)) console.log(`  hung: ${line}`);
  assert.deepEqual(hung, [], 'no call may hang');
  assert.deepEqual(untyped, [], 'every error must be a MinirayError');
  // The runtime still works after all of it.
  assert.equal(await get(echo.remote(1, 2)), 2);
});
