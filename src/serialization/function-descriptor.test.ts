import { test } from 'node:test';
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { callerOf, compileSource, describeFunction, findFreeVariables, hashId, type CallSite } from './index.js';
import { CapturedVariableError, InvalidOptionError } from '../errors/index.js';

// Under `node --test`, each test file runs in its own process with the file as process.argv[1]:
// this file is the program's entry script.
const THIS_URL = import.meta.url;
const OTHER_MODULE_URL = new URL('./codec.ts', import.meta.url).href;

/** Mimics remote(): describes `fn` with the call site of its caller. */
function remoteLike(fn: Function) {
  return describeFunction(fn, callerOf(remoteLike));
}

const site = (moduleUrl: string | undefined, line = 10, column = 5): CallSite => ({ moduleUrl, line, column, sourceLine: line });

const free = (source: string) => [...findFreeVariables(source)].sort();

// ---- findFreeVariables ----------------------------------------------------------------------------

test('findFreeVariables: globals are allowed', () => {
  assert.deepEqual(free('(a, b) => Math.max(a, b) + JSON.stringify(a).length'), []);
  assert.deepEqual(free('() => { console.log(process.pid, Buffer.from("x"), globalThis, new Map(), setTimeout); }'), []);
  assert.deepEqual(free('() => structuredClone(new URL("file:///"))'), []);
});

test('findFreeVariables: parameters and locals are not free', () => {
  assert.deepEqual(free('function f(a, b = a, ...rest) { const c = a; let d = b; var e = c + d; return rest.concat(e); }'), []);
  assert.deepEqual(free('(x) => { for (let i = 0; i < x; i++) {} for (const k in x) k; for (const v of x) v; }'), []);
});

test('findFreeVariables: inner functions, closures and self-reference are not free', () => {
  assert.deepEqual(free('function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }'), []);
  assert.deepEqual(free('() => { const counter = () => { let n = 0; return () => ++n; }; return counter()(); }'), []);
  assert.deepEqual(free('() => { function helper() { return hoisted; } var hoisted = 1; return helper(); }'), []);
});

test('findFreeVariables: classes declared inside are not free', () => {
  assert.deepEqual(free('() => { class Point { constructor(x) { this.x = x; } static of(x) { return new Point(x); } } return Point.of(1); }'), []);
  assert.deepEqual(free('class Local { m() { return Local; } }'), []);
});

test('findFreeVariables: destructuring and catch parameters are not free', () => {
  assert.deepEqual(free('({ a, b: { c }, d: [e, ...f] = [], ...g }) => a + c + e + f + g'), []);
  assert.deepEqual(free('() => { const [x, { y }] = [1, { y: 2 }]; return x + y; }'), []);
  assert.deepEqual(free('() => { try { JSON.parse("{"); } catch (err) { return err; } }'), []);
  assert.deepEqual(free('() => { try { JSON.parse("{"); } catch ({ message }) { return message; } }'), []);
});

test('findFreeVariables: names from outer scopes are free', () => {
  assert.deepEqual(free('(a) => a + offset'), ['offset']);
  assert.deepEqual(free('() => helper(config.value)'), ['config', 'helper']);
  assert.deepEqual(free('(a = defaultA) => a'), ['defaultA']);
  assert.deepEqual(free('() => new Model()'), ['Model']);
  assert.deepEqual(free('() => typeof maybeDefined'), ['maybeDefined']);
  assert.deepEqual(free('() => { { let scoped = 1; } return scoped; }'), ['scoped']);
  assert.deepEqual(free('() => { try {} catch (err) {} return err; }'), ['err']);
});

test('findFreeVariables: each free name is listed once', () => {
  assert.deepEqual(findFreeVariables('() => outer + outer * outer'), ['outer']);
});

test('findFreeVariables: property names and labels are not variables', () => {
  assert.deepEqual(free('(o) => ({ key: o.prop, nested: { deep: 1 } }).key'), []);
  assert.deepEqual(free('(o) => { outer: for (const k in o) { if (k) continue outer; } }'), []);
  assert.deepEqual(free('(o) => ({ [dynamicKey]: 1 })'), ['dynamicKey']);
});

test('findFreeVariables: `arguments` is defined in a function, free in a top-level arrow', () => {
  assert.deepEqual(free('function f() { return arguments.length; }'), []);
  assert.deepEqual(free('function f() { return () => arguments[0]; }'), []);
  assert.deepEqual(free('() => arguments.length'), ['arguments']);
});

test('findFreeVariables: method shorthand', () => {
  assert.deepEqual(free('compute(a, b) { return a * b; }'), []);
  assert.deepEqual(free('compute(a) { return a * factor; }'), ['factor']);
  assert.deepEqual(free('async fetchAll(urls) { return Promise.all(urls.map((u) => fetch(u))); }'), []);
  assert.deepEqual(free('*items() { yield* source; }'), ['source']);
  assert.deepEqual(free('async *stream() { yield await next(); }'), ['next']);
});

test('findFreeVariables: async and generator functions', () => {
  assert.deepEqual(free('async (x) => { const v = await Promise.resolve(x); return v; }'), []);
  assert.deepEqual(free('async function load(x) { return await fetcher(x); }'), ['fetcher']);
  assert.deepEqual(free('function* gen(n) { for (let i = 0; i < n; i++) yield i; }'), []);
  assert.deepEqual(free('function* gen() { yield* items; }'), ['items']);
  assert.deepEqual(free('async function* g(src) { for await (const x of src) yield x; }'), []);
});

test('findFreeVariables: `this` and `super` are not variables', () => {
  assert.deepEqual(free('function f() { return this.x; }'), []);
  assert.deepEqual(free('m() { return super.m(); }'), []);
});

test('findFreeVariables: the __name helper tsx injects is allowed', () => {
  assert.deepEqual(free('() => { const inner = __name((x) => x + 1, "inner"); return inner(1); }'), []);
});

test('findFreeVariables: works on the source of real (transpiled) functions', () => {
  const selfContained = (n: number) => {
    const double = (x: number) => x * 2;
    return double(n);
  };
  assert.deepEqual(findFreeVariables(selfContained.toString()), []);
  const limit = 3;
  const capturing = (n: number) => Math.min(n, limit);
  assert.deepEqual(findFreeVariables(capturing.toString()), ['limit']);
});

test('findFreeVariables: unparsable source gives an InvalidOptionError naming the function', () => {
  assert.throws(
    () => findFreeVariables('this is not javascript', 'broken'),
    (error: unknown) => {
      assert.ok(error instanceof InvalidOptionError);
      assert.equal(error.option, 'fn');
      assert.match(error.message, /could not parse the source of broken/);
      return true;
    },
  );
});

// ---- describeFunction ---------------------------------------------------------------------------

test('this test file is the entry script (precondition of the entry-script tests)', () => {
  assert.equal(realpathSync(process.argv[1] as string), realpathSync(fileURLToPath(THIS_URL)));
});

test('describeFunction: a self-contained function is shipped as source', () => {
  const fn = (a: number, b: number) => a + b;
  const descriptor = remoteLike(fn);
  assert.equal(descriptor.kind, 'source');
  if (descriptor.kind !== 'source') return;
  assert.equal(descriptor.source, fn.toString());
  assert.equal(descriptor.name, 'fn');
  assert.match(descriptor.id, /^[0-9a-f]{32}$/);
  assert.equal(compileSource(descriptor.source)(2, 3), 5);
});

test('describeFunction: the source id depends only on the source', () => {
  const a = remoteLike(function square(x: number) {
    return x * x;
  });
  const b = describeFunction(
    function square(x: number) {
      return x * x;
    },
    site(OTHER_MODULE_URL, 99, 1),
  );
  const c = remoteLike(function cube(x: number) {
    return x * x * x;
  });
  assert.equal(a.id, b.id);
  assert.notEqual(a.id, c.id);
});

test('describeFunction: an anonymous function is named after its call site', () => {
  // An arrow passed inline has no name; the descriptor names the file and line of the call.
  const descriptor = remoteLike((x: number) => x);
  assert.match(descriptor.name, /^anonymous \(function-descriptor\.test\.ts:\d+\)$/);
  const unnamed = (() => (x: number) => x)();
  assert.equal(unnamed.name, '');
  assert.equal(describeFunction(unnamed, site(THIS_URL, 42)).name, 'anonymous (function-descriptor.test.ts:42)');
  assert.equal(describeFunction(unnamed, site(undefined)).name, 'anonymous');
});

test('describeFunction: an entry-script function that captures variables throws CapturedVariableError listing them', () => {
  const rate = 0.2;
  const base = 10;
  assert.throws(
    () => remoteLike((x: number) => x * rate + base),
    (error: unknown) => {
      assert.ok(error instanceof CapturedVariableError);
      assert.deepEqual([...error.variables].sort(), ['base', 'rate']);
      assert.match(error.message, /'rate'/);
      assert.match(error.message, /'base'/);
      assert.match(error.message, /Pass them as arguments instead/);
      return true;
    },
  );
});

test('describeFunction: one captured variable is named in the singular', () => {
  const rate = 0.2;
  assert.throws(
    () => remoteLike(function applyRate(x: number) {
      return x * rate;
    }),
    (error: unknown) => {
      assert.ok(error instanceof CapturedVariableError);
      assert.deepEqual(error.variables, ['rate']);
      assert.match(error.message, /cannot ship function applyRate: it uses 'rate'/);
      assert.match(error.message, /Pass it as an argument instead/);
      return true;
    },
  );
});

test('describeFunction: capturing without a module (REPL, eval) throws CapturedVariableError', () => {
  const outer = 1;
  assert.throws(() => describeFunction(() => outer, site(undefined)), CapturedVariableError);
});

test('describeFunction: a capturing function from another module is shipped by module and call site', () => {
  const outer = 1;
  const fn = () => outer;
  const first = describeFunction(fn, site(OTHER_MODULE_URL, 7, 3));
  assert.equal(first.kind, 'module');
  if (first.kind !== 'module') return;
  assert.equal(first.moduleUrl, OTHER_MODULE_URL);
  assert.match(first.callsite, /^7:3#\d+$/);
  assert.equal(first.name, 'fn');
  // A second remote() call from the same position gets the next ordinal and a different id.
  const second = describeFunction(fn, site(OTHER_MODULE_URL, 7, 3));
  assert.equal(second.kind, 'module');
  if (second.kind !== 'module') return;
  const ordinal = (key: string) => Number(key.slice(key.indexOf('#') + 1));
  assert.equal(ordinal(second.callsite), ordinal(first.callsite) + 1);
  assert.notEqual(second.id, first.id);
});

test('describeFunction: a bound function is rejected with InvalidOptionError on option fn', () => {
  function scale(this: { k: number }, x: number) {
    return x * this.k;
  }
  assert.throws(
    () => remoteLike(scale.bind({ k: 2 })),
    (error: unknown) => {
      assert.ok(error instanceof InvalidOptionError);
      assert.equal(error.option, 'fn');
      assert.match(error.message, /built-in or bound function/);
      return true;
    },
  );
});

test('describeFunction: a native function is rejected with InvalidOptionError on option fn', () => {
  for (const native of [Math.max, JSON.parse, Array.prototype.map]) {
    assert.throws(
      () => remoteLike(native),
      (error: unknown) => {
        assert.ok(error instanceof InvalidOptionError);
        assert.equal(error.option, 'fn');
        assert.match(error.message, new RegExp(`cannot ship ${native.name}: it is a built-in or bound function`));
        return true;
      },
    );
  }
});

test('describeFunction: a non-function is rejected with InvalidOptionError', () => {
  for (const value of [42, 'x => x', null, undefined, {}]) {
    assert.throws(
      () => describeFunction(value as unknown as Function, site(THIS_URL)),
      (error: unknown) => error instanceof InvalidOptionError && error.option === 'fn' && /expects a function/.test(error.message),
    );
  }
});

test('describeFunction: method shorthand, async and generator functions are shipped as source', () => {
  const holder = {
    multiply(a: number, b: number) {
      return a * b;
    },
    async later(x: number) {
      return x + 1;
    },
    *count(n: number) {
      for (let i = 0; i < n; i++) yield i;
    },
  };
  const m = remoteLike(holder.multiply);
  assert.equal(m.kind, 'source');
  if (m.kind === 'source') assert.equal(compileSource(m.source)(6, 7), 42);
  const a = remoteLike(holder.later);
  assert.equal(a.kind, 'source');
  const g = remoteLike(holder.count);
  assert.equal(g.kind, 'source');
  if (g.kind === 'source') assert.deepEqual([...(compileSource(g.source)(3) as Iterable<number>)], [0, 1, 2]);
});

// ---- compileSource, callerOf, hashId ------------------------------------------------------------

test('compileSource compiles arrows, function expressions and declarations', () => {
  assert.equal(compileSource('(a, b) => a + b')(2, 3), 5);
  assert.equal(compileSource('x => x * 2')(21), 42);
  assert.equal(compileSource('function named(x) { return x + 1; }')(1), 2);
  assert.equal(compileSource('function named(x) { return x + 1; }').name, 'named');
});

test('compileSource compiles method shorthand (plain, async, generator)', async () => {
  assert.equal(compileSource('triple(x) { return x * 3; }')(3), 9);
  assert.equal(await compileSource('async later(x) { return x + 1; }')(1), 2);
  assert.deepEqual([...(compileSource('*gen() { yield 1; yield 2; }')() as Iterable<number>)], [1, 2]);
});

test('compileSource compiles async functions and classes', async () => {
  assert.equal(await compileSource('async (x) => x * 2')(4), 8);
  const Klass = compileSource('class Box { constructor(v) { this.v = v; } }') as new (v: number) => { v: number };
  assert.equal(new Klass(3).v, 3);
});

test('compileSource compiles in strict mode', () => {
  assert.throws(() => compileSource('function f() { undeclaredVariable = 1; }')(), ReferenceError);
  assert.equal(compileSource('function f() { return this; }')(), undefined);
});

test('compileSource rejects source that is not a function', () => {
  assert.throws(() => compileSource('1 + 1'), /shipped source is not a function/);
  assert.throws(() => compileSource('(( =>'), SyntaxError);
});

test('compileSource round-trips the source of real functions', () => {
  const fn = (items: number[]) => items.map((x) => x * x).reduce((a, b) => a + b, 0);
  assert.equal(compileSource(fn.toString())([1, 2, 3]), 14);
});

test('callerOf names the file and line of the caller of its callee', () => {
  const callsite = (function probe() {
    return callerOf(probe);
  })();
  assert.equal(callsite.moduleUrl, THIS_URL);
  assert.ok(callsite.line > 0);
  assert.ok(callsite.sourceLine > 0);
});

test('hashId gives 32 hex characters, equal for equal text', () => {
  assert.match(hashId('abc'), /^[0-9a-f]{32}$/);
  assert.equal(hashId('abc'), hashId('abc'));
  assert.notEqual(hashId('abc'), hashId('abd'));
});
