// Bad input gets a clear error: the right class, and a message that names what is wrong.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  ActorID,
  CapturedVariableError,
  GetTimeoutError,
  InvalidArgumentError,
  InvalidOptionError,
  MinirayError,
  ObjectID,
  ObjectLostError,
  ObjectRef,
  SerializationError,
  TaskError,
  cancel,
  get,
  getActor,
  init,
  isInitialized,
  kill,
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

  test('init() options inherited through the prototype are checked (they used to start a node that ran nothing)', async () => {
    const inherited = Object.create({ numWorkers: 'lots' }) as { numWorkers: number };
    await assert.rejects(init(inherited), expectError(InvalidOptionError, /'numWorkers'/, /"lots"/));
    await assert.rejects(init(Object.create({ numWorker: 2 }) as object), expectError(InvalidOptionError, /unknown option 'numWorker'/));
    // Workers start eagerly, so a number of them that would exhaust the machine is refused.
    await assert.rejects(init({ numWorkers: 1_000_000 }), expectError(InvalidOptionError, /'numWorkers'/, />= 1 and <= 1024/));
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
    assert.throws(() => add.options({ numReturns: -1 as 0 }), expectError(InvalidOptionError, /'numReturns'/));
    assert.throws(() => add.options({ numCpus: -1 }), expectError(InvalidOptionError, /'numCpus'/));
    // @ts-expect-error: name is a string
    assert.throws(() => add.options({ name: 5 }), expectError(InvalidOptionError, /'name'/));
    // An empty name made errors read "task  failed"; as for actors, it is refused.
    assert.throws(() => add.options({ name: '' }), expectError(InvalidOptionError, /'name'/, /non-empty string/));
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

  test('misuse of get, wait, cancel, kill, getActor and put is an InvalidArgumentError naming the argument', async () => {
    const argument = (name: string, ...patterns: RegExp[]) => (error: unknown) => {
      expectError(InvalidArgumentError, ...patterns)(error);
      assert.ok(error instanceof MinirayError);
      assert.ok(error instanceof TypeError, 'and a TypeError, as JavaScript\'s own wrong-argument errors');
      assert.equal((error as InvalidArgumentError).argument, name);
      return true;
    };
    // @ts-expect-error: not a ref
    await assert.rejects(get(42), argument('refs', /^get\(\) takes an ObjectRef or an array of ObjectRefs; got number 42$/));
    // @ts-expect-error: not a ref
    await assert.rejects(get({ id: 'abc' }), argument('refs', /ObjectRef/, /object/));
    // @ts-expect-error: an array holding a non-ref
    await assert.rejects(get([put(1), 'x']), argument('refs[1]', /ObjectRef/, /item 1/, /string "x"/));
    // @ts-expect-error: not a list of refs
    await assert.rejects(wait(5), argument('refs', /^wait\(\) takes an array of ObjectRefs \(or ObjectRefGenerators\); got number 5$/));
    // @ts-expect-error: not a list of refs
    await assert.rejects(wait(put(1)), argument('refs', /array of ObjectRefs/, /got a single ObjectRef \(put it in an array: \[ref\]\)/));
    // @ts-expect-error: an array holding a non-ref
    await assert.rejects(wait([put(1), null]), argument('refs[1]', /item 1 is null/));
    // A proxy whose getPrototypeOf throws (found by the API fuzz, seed 20261201): a typed error, not the trap's.
    const hostile = new Proxy({}, { getPrototypeOf: () => { throw new Error('trap proto'); } });
    // @ts-expect-error: not a ref
    await assert.rejects(wait([put(1), hostile]), argument('refs[1]'));
    // @ts-expect-error: not a ref
    assert.throws(() => cancel(hostile), argument('ref', /cancel\(\) takes an ObjectRef/));
    // @ts-expect-error: not a ref
    assert.throws(() => cancel({}), argument('ref', /cancel\(\) takes an ObjectRef/, /object/));
    // @ts-expect-error: not a ref
    assert.throws(() => cancel('abc'), argument('ref', /ObjectRef/));
    // @ts-expect-error: not a handle
    assert.throws(() => kill({}), argument('handle', /kill\(\) takes an actor handle/, /object/));
    await assert.rejects(getActor(''), argument('name', /getActor\(\) takes the non-empty name/, /string ""/));
    // @ts-expect-error: not a name
    await assert.rejects(getActor(7), argument('name', /number 7/));
    assert.throws(() => put(put(1)), argument('value', /ObjectRef/));
    assert.throws(() => ObjectID.fromHex('x'), argument('hex', /ObjectID\.fromHex\(\)/, /string "x"/));
    // @ts-expect-error: not a string
    assert.throws(() => ActorID.fromHex(1n), argument('hex', /bigint 1n/));
  });

  test('a forged ref is refused where it is made or used, never a TypeError from inside', async () => {
    // @ts-expect-error: not an ObjectID, and no owner
    assert.throws(() => new ObjectRef(5, null), expectError(InvalidArgumentError, /new ObjectRef\(\) takes an ObjectID/, /number 5/));
    // @ts-expect-error: no owner
    assert.throws(() => new ObjectRef(ObjectID.fromRandom(), null), expectError(InvalidArgumentError, /owner address/, /null/));
    // Made without its constructor: passes instanceof, but its id is nothing.
    const forged = Object.create(ObjectRef.prototype) as ObjectRef<number>;
    await assert.rejects(get(forged), expectError(InvalidArgumentError, /not made by miniray/));
    await assert.rejects(get([put(1), forged]), expectError(InvalidArgumentError, /item 1/, /not made by miniray/));
    await assert.rejects(wait([forged]), expectError(InvalidArgumentError, /not made by miniray/));
    assert.throws(() => cancel(forged), expectError(InvalidArgumentError, /not made by miniray/));
    assert.throws(() => add.remote(forged, 1), expectError(InvalidArgumentError, /argument 1 of add/, /not made by miniray/));
    const withBadId = Object.assign(Object.create(ObjectRef.prototype) as object, { id: { toHex: () => 'x' } }) as ObjectRef;
    await assert.rejects(get(withBadId), InvalidArgumentError);
    assert.equal(await get(add.remote(1, 2)), 3);
  });

  test('wait() of the same ref twice is an error, as in Ray', async () => {
    const x = put(1);
    await assert.rejects(
      wait([x, x]),
      expectError(InvalidArgumentError, /unique ObjectRefs/, new RegExp(`ObjectRef\\(${x.hex}\\) is both item 0 and item 1`)),
    );
    // The same object through two ref objects counts as a duplicate too.
    const again = new ObjectRef<number>(x.id, x.owner);
    await assert.rejects(wait([put(2), x, again], { numReturns: 1 }), expectError(InvalidArgumentError, /item 1 and item 2/));
    const { ready, pending } = await wait([x, put(2)], { numReturns: 2 });
    assert.equal(ready.length, 2);
    assert.equal(pending.length, 0);
  });

  test('options inherited through the prototype are checked and used, not skipped', async () => {
    const inherited = <T extends object>(options: T) => Object.create(options) as T;
    assert.throws(
      () => add.options(inherited({ numReturns: 'two' } as unknown as { numReturns: number })),
      expectError(InvalidOptionError, /'numReturns'/, /"two"/),
    );
    assert.throws(() => add.options(inherited({ numRetrns: 2 } as object)), expectError(InvalidOptionError, /unknown option 'numRetrns'/));
    // A valid inherited value takes effect (two refs), as an own one would.
    const pair = remote(() => [1, 2]).options(inherited({ numReturns: 2 }));
    assert.deepEqual(await get(pair.remote()), [1, 2]);
    await assert.rejects(get(put(1), inherited({ timeoutMs: -1 })), expectError(InvalidOptionError, /'timeoutMs'/));
    await assert.rejects(wait([put(1)], inherited({ numReturns: 2 })), expectError(InvalidOptionError, /numReturns/));
    assert.throws(() => cancel(put(1), inherited({ force: 'yes' } as unknown as { force: boolean })), expectError(InvalidOptionError, /'force'/));
    class Counter {
      n = 0;
    }
    assert.throws(
      () => remote(Counter, inherited({ isolation: 'vm' } as unknown as { isolation: 'thread' })),
      expectError(InvalidOptionError, /'isolation'/, /one of 'thread', 'shared', 'process'/, /"vm"/),
    );
    assert.throws(
      () => remote(Counter).options(inherited({ maxRestarts: -5 })),
      expectError(InvalidOptionError, /'maxRestarts'/),
    );
  });

  test('an option read is the value checked: a getter is read once, and one that throws is an InvalidOptionError', () => {
    let reads = 0;
    const flipping = {
      get numReturns() {
        reads++;
        return reads === 1 ? 2 : 'two';
      },
    };
    const pair = add.options(flipping as { numReturns: number });
    assert.equal(reads, 1);
    const refs = pair.remote(1, 2);
    assert.ok(Array.isArray(refs) && refs.length === 2);
    const hostile = {
      get numCpus(): number {
        throw new Error('no');
      },
    };
    assert.throws(() => add.options(hostile), (error: unknown) => {
      expectError(InvalidOptionError, /option 'numCpus' could not be read/, /no/)(error);
      assert.equal((error as InvalidOptionError).option, 'numCpus');
      assert.ok((error as Error).cause instanceof Error);
      return true;
    });
    const revoked = Proxy.revocable({}, {});
    revoked.revoke();
    assert.throws(() => add.options(revoked.proxy), expectError(InvalidOptionError, /could not be read/));
  });

  test('numReturns is bounded (10,000): 2**31 is an InvalidOptionError, not an out-of-memory crash', async () => {
    assert.throws(() => add.options({ numReturns: 2 ** 31 }), expectError(InvalidOptionError, /'numReturns'/, /from 0 to 10000/, /2147483648/));
    assert.throws(() => remote(() => [1], { numReturns: 10_001 }), expectError(InvalidOptionError, /'numReturns'/));
    const many = remote(function many() {
      return Array.from({ length: 10_000 }, (_, i) => i);
    }).options({ numReturns: 10_000 });
    const refs = many.remote();
    assert.equal(refs.length, 10_000);
    assert.equal(await get(refs[9_999] as ObjectRef<number>), 9_999);
  });

  test('timeouts beyond setTimeout\'s 2**31 - 1 ms mean a long wait, not an immediate one; Infinity is no limit', async () => {
    const gate = remote(async function gate(ms: number) {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return ms;
    });
    for (const timeoutMs of [2 ** 31, 1e12, Infinity]) {
      const ref = gate.remote(300);
      // Before the fix, get() timed out after 1-2 ms and wait() returned at once with nothing ready.
      assert.equal(await get(ref, { timeoutMs }), 300, `get with timeoutMs ${timeoutMs}`);
      const next = gate.remote(300);
      const { ready } = await wait([next], { timeoutMs });
      assert.equal(ready.length, 1, `wait with timeoutMs ${timeoutMs}`);
    }
    await assert.rejects(get(gate.remote(1_000), { timeoutMs: 20 }), GetTimeoutError);
    await assert.rejects(get(put(1), { timeoutMs: -1 }), expectError(InvalidOptionError, /'timeoutMs'/, />= 0 \(or Infinity\)/));
    await assert.rejects(wait([put(1)], { timeoutMs: -Infinity }), expectError(InvalidOptionError, /'timeoutMs'/));
    await assert.rejects(wait([put(1)], { timeoutMs: Number.NaN }), expectError(InvalidOptionError, /'timeoutMs'/));
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
