// Bad input gets a clear error: the right class, and a message that names what is wrong.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  CapturedVariableError,
  InvalidOptionError,
  MinirayError,
  ObjectID,
  ObjectLostError,
  ObjectRef,
  SerializationError,
  TaskError,
  cancel,
  get,
  init,
  isInitialized,
  put,
  remote,
  shutdown,
  wait,
} from 'miniray';

/** A matcher for assert.throws/rejects: the error is a `Class` and its message matches each pattern. */
function expectError(Class: abstract new (...args: never[]) => Error, ...patterns: RegExp[]) {
  return (error: unknown) => {
    assert.ok(error instanceof Class, `expected ${Class.name}, got ${String(error)}`);
    for (const pattern of patterns) assert.match(error.message, pattern);
    return true;
  };
}

describe('init() options', () => {
  after(() => shutdown());

  test('an unknown option is named, with the closest known one suggested', async () => {
    // @ts-expect-error: numWorker is not an option
    await assert.rejects(init({ numWorker: 2 }), (error: unknown) => {
      expectError(InvalidOptionError, /'numWorker'/, /Did you mean 'numWorkers'\?/)(error);
      assert.equal((error as InvalidOptionError).option, 'numWorker');
      return true;
    });
    assert.equal(isInitialized(), false, 'a rejected init() leaves miniray stopped');
  });

  test('an option of the wrong type or range is named, with what it must be and what it got', async () => {
    // @ts-expect-error: numWorkers is a number
    await assert.rejects(init({ numWorkers: 'two' }), expectError(InvalidOptionError, /'numWorkers'/, /integer/, /"two"/));
    await assert.rejects(init({ numWorkers: 0 }), expectError(InvalidOptionError, /'numWorkers'/, />= 1/));
    await assert.rejects(init({ numWorkers: 1.5 }), expectError(InvalidOptionError, /'numWorkers'/, /integer/));
    await assert.rejects(init({ numCpus: -1 }), expectError(InvalidOptionError, /'numCpus'/));
    await assert.rejects(init({ objectStoreMemory: Number.NaN }), expectError(InvalidOptionError, /'objectStoreMemory'/));
    await assert.rejects(init({ workerHeapLimitMb: 1 }), expectError(InvalidOptionError, /'workerHeapLimitMb'/));
    // @ts-expect-error: ignoreReinitError is a boolean
    await assert.rejects(init({ ignoreReinitError: 'yes' }), expectError(InvalidOptionError, /'ignoreReinitError'/, /true or false/));
    // @ts-expect-error: options are an object
    await assert.rejects(init(4), expectError(InvalidOptionError, /options must be an object/));
    assert.equal(isInitialized(), false);
  });

  test('init() twice is an error unless ignoreReinitError is set', async () => {
    await init({ numWorkers: 1 });
    await assert.rejects(init({ numWorkers: 1 }), expectError(MinirayError, /already running/, /shutdown\(\)/));
    await init({ numWorkers: 1, ignoreReinitError: true });
    assert.equal(isInitialized(), true);
    await shutdown();
    assert.equal(isInitialized(), false);
  });
});

describe('bad input to tasks and objects', () => {
  const socket = new net.Socket();
  const add = remote(function add(a: number, b: number) {
    return a + b;
  });

  before(() => init({ numWorkers: 2 }));
  after(async () => {
    socket.destroy();
    await shutdown();
  });

  test('task options: unknown names and wrong values are named, at remote() and at .options()', () => {
    // @ts-expect-error: numReturn is not an option
    assert.throws(() => remote((x: number) => x, { numReturn: 2 }), expectError(InvalidOptionError, /'numReturn'/, /Did you mean 'numReturns'\?/));
    // @ts-expect-error: maxRetries is a number
    assert.throws(() => add.options({ maxRetries: 'x' }), expectError(InvalidOptionError, /'maxRetries'/, /"x"/));
    assert.throws(() => add.options({ maxRetries: -2 }), expectError(InvalidOptionError, /'maxRetries'/));
    // @ts-expect-error: retryExceptions is a boolean
    assert.throws(() => add.options({ retryExceptions: 1 }), expectError(InvalidOptionError, /'retryExceptions'/, /true or false/));
    assert.throws(() => add.options({ numReturns: 0 }), expectError(InvalidOptionError, /'numReturns'/));
    assert.throws(() => add.options({ numCpus: -1 }), expectError(InvalidOptionError, /'numCpus'/));
    // @ts-expect-error: name is a string
    assert.throws(() => add.options({ name: 5 }), expectError(InvalidOptionError, /'name'/));
  });

  test('options of get, wait and cancel are checked too', async () => {
    const ref = put(1);
    // @ts-expect-error: the option is timeoutMs
    await assert.rejects(get(ref, { timeout: 5 }), expectError(InvalidOptionError, /'timeout'/, /'timeoutMs'/));
    await assert.rejects(get(ref, { timeoutMs: -1 }), expectError(InvalidOptionError, /'timeoutMs'/));
    // @ts-expect-error: the option is numReturns
    await assert.rejects(wait([ref], { numReturn: 1 }), expectError(InvalidOptionError, /'numReturn'/, /'numReturns'/));
    await assert.rejects(wait([ref], { numReturns: 2 }), expectError(InvalidOptionError, /numReturns/, /\(2\)/));
    // @ts-expect-error: the option is force
    assert.throws(() => cancel(ref, { forced: true }), expectError(InvalidOptionError, /'forced'/, /'force'/));
  });

  test('a task that needs more CPUs than the node has fails at get, naming numCpus', async () => {
    await assert.rejects(get(add.options({ numCpus: 64 }).remote(1, 2)), expectError(InvalidOptionError, /numCpus/, /64/));
  });

  test('remote() of something that is not a shippable function', () => {
    // @ts-expect-error: not a function
    assert.throws(() => remote(42), expectError(InvalidOptionError, /expects a function/));
    assert.throws(() => remote(Math.max), expectError(InvalidOptionError, /max/, /built-in or bound/));
  });

  test('an unserializable argument fails at .remote() with SerializationError naming the argument', () => {
    // @ts-expect-error: a function is not a number
    // A function travels only if self-contained (as source); this one uses `socket` from its scope.
    assert.throws(() => add.remote(1, () => socket), expectError(SerializationError, /argument 2 of add/, /function/, /'socket'/));
    // @ts-expect-error: a symbol is not a number
    assert.throws(() => add.remote(Symbol('token'), 1), expectError(SerializationError, /argument 1 of add/, /symbol/, /Symbol\(token\)/));
    // @ts-expect-error: a socket is not a number
    assert.throws(() => add.remote(1, socket), expectError(SerializationError, /argument 2 of add/, /Socket/));
    const takesObject = remote(function takesObject(value: object) {
      return Object.keys(value).length;
    });
    assert.throws(
      () => takesObject.remote({ config: { onDone() { return socket; } } }),
      expectError(SerializationError, /argument 1 of takesObject/, /\.config\.onDone/, /function/),
    );
    assert.throws(() => takesObject.remote({ pending: Promise.resolve(1) }), expectError(SerializationError, /\.pending/, /Promise/));
    assert.throws(() => takesObject.remote(new Map([['conn', socket]])), expectError(SerializationError, /argument 1/, /Socket/));
  });

  test('an unserializable value fails at put() with SerializationError naming it', () => {
    assert.throws(() => put(() => socket), expectError(SerializationError, /put\(\)/, /function/));
    assert.throws(() => put(Symbol('s')), expectError(SerializationError, /put\(\)/, /symbol/));
    assert.throws(() => put({ conn: socket }), expectError(SerializationError, /put\(\)/, /\.conn/, /Socket/));
    assert.throws(() => put(new WeakMap()), expectError(SerializationError, /put\(\)/, /WeakMap/));
  });

  test('a SharedArrayBuffer is refused with SerializationError instead of arriving as something else', () => {
    const shared = new SharedArrayBuffer(8);
    const length = remote(function length(value: { byteLength: number }) {
      return value.byteLength;
    });
    assert.throws(() => length.remote(shared), expectError(SerializationError, /argument 1 of length/, /SharedArrayBuffer/));
    assert.throws(() => put({ shared }), expectError(SerializationError, /put\(\)/, /\.shared/, /SharedArrayBuffer/));
  });

  test('after serialization failures the next calls work', async () => {
    assert.equal(await get(add.remote(1, 2)), 3);
    assert.equal(await get(put('fine')), 'fine');
  });

  test('a function that captures an outer variable is rejected at remote(), naming the variable and the fix', () => {
    const factor = 3;
    assert.throws(
      () => remote((x: number) => x * factor),
      (error: unknown) => {
        expectError(CapturedVariableError, /'factor'/, /argument/, /module/)(error);
        assert.deepEqual((error as CapturedVariableError).variables, ['factor']);
        return true;
      },
    );
    const offset = 1;
    const scale = 2;
    assert.throws(
      () =>
        remote(function transform(x: number) {
          return x * scale + offset + Math.PI;
        }),
      (error: unknown) => {
        expectError(CapturedVariableError, /transform/, /'scale'/, /'offset'/)(error);
        assert.deepEqual([...(error as CapturedVariableError).variables].sort(), ['offset', 'scale']);
        assert.doesNotMatch((error as Error).message, /'Math'/);
        return true;
      },
    );
    // Using another remote function from the entry script is capturing it too.
    assert.throws(() => remote((x: number) => add.remote(x, 1)), expectError(CapturedVariableError, /'add'/));
  });

  test('parameters, locals and globals are not captured variables', async () => {
    const ok = remote((values: number[]) => {
      const total = values.reduce((sum, value) => sum + value, 0);
      return JSON.stringify({ total, max: Math.max(...values), at: typeof Date.now() });
    });
    assert.equal(await get(ok.remote([1, 2, 3])), '{"total":6,"max":3,"at":"number"}');
  });

  test('get of an unknown ref rejects with ObjectLostError naming the ref', async () => {
    const unknown = new ObjectRef<number>(ObjectID.fromRandom(), { nodeId: '', workerId: '' });
    await assert.rejects(get(unknown), expectError(ObjectLostError, new RegExp(unknown.id.toHex())));
    await assert.rejects(get([put(1), unknown]), ObjectLostError);
    await assert.rejects(get(add.remote(unknown, 1)), expectError(ObjectLostError, new RegExp(unknown.id.toHex())));
  });

  test('get of something that is not a ref rejects with TypeError', async () => {
    // @ts-expect-error: not a ref
    await assert.rejects(get(42), expectError(TypeError, /ObjectRef/, /number/));
    // @ts-expect-error: not a ref
    await assert.rejects(get({ id: 'abc' }), expectError(TypeError, /ObjectRef/));
    // @ts-expect-error: an array holding a non-ref
    await assert.rejects(get([put(1), 'x']), expectError(TypeError, /ObjectRef/, /item 1/));
    // @ts-expect-error: not a list of refs
    await assert.rejects(wait(put(1)), expectError(TypeError, /array of ObjectRefs/));
    // @ts-expect-error: not a ref
    assert.throws(() => cancel('abc'), expectError(TypeError, /ObjectRef/));
    assert.throws(() => put(put(1)), expectError(TypeError, /ObjectRef/));
  });

  test('a task that returns a function that is not self-contained fails at get, naming the return value', async () => {
    const returnsFunction = remote(function makeCallback() {
      const base = 1;
      return () => base;
    });
    await assert.rejects(get(returnsFunction.remote()), (error: unknown) => {
      expectError(TaskError, /makeCallback/, /return value/, /function/)(error);
      assert.ok((error as TaskError).cause instanceof SerializationError);
      return true;
    });
    const returnsSymbol = remote(() => Symbol('nope'));
    await assert.rejects(get(returnsSymbol.remote()), expectError(TaskError, /return value/, /symbol/));
    // The worker that ran them is fine.
    assert.equal(await get(add.remote(2, 3)), 5);
  });

  test('get after shutdown rejects with ObjectLostError', async () => {
    const ref = put('soon gone');
    await shutdown();
    try {
      await assert.rejects(get(ref), expectError(ObjectLostError, /shutdown|shut down/));
    } finally {
      await init({ numWorkers: 2 });
    }
  });
});
