// Actors from the installed package: state, ordering, errors, concurrency, names, handles passed
// around, kill, constructor failures and bad input. Restarts and isolation have files of their own.
//
// Classes defined here are shipped as source (so they use only their parameters and globals);
// those that need imports (get, getActor) live in test/fixtures/actors-lib.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ActorDiedError,
  ActorNotFoundError,
  InvalidOptionError,
  Queue,
  TaskError,
  get,
  getActor,
  init,
  kill,
  put,
  remote,
  shutdown,
  type ActorHandle,
  type ActorOptions,
} from 'miniray';
import { rejectsWith } from '../fixtures/assertions.js';
import {
  CallerActor,
  CounterActor,
  createCounterInTask,
  createNamedCounterInTask,
  NamedCounterMaker,
  incAllViaTask,
  incNamedViaTask,
  incViaTask,
  lookupMissingInTask,
  type Counter,
} from '../fixtures/actors-lib.js';


// A test that waits for something that never comes fails instead of hanging the suite.
const T = { timeout: 30_000 };

before(async () => {
  await init({ numWorkers: 2, numCpus: 2 });
});

after(async () => {
  await shutdown();
});

// ---- classes (shipped as source) -------------------------------------------------------------------

class Recorder {
  items: number[] = [];
  push(item: number): number {
    this.items.push(item);
    return this.items.length;
  }
  list(): number[] {
    return this.items;
  }
}

class AsyncRecorder {
  items: number[] = [];
  async push(item: number): Promise<number> {
    this.items.push(item);
    const length = this.items.length;
    await null;
    return length;
  }
  list(): number[] {
    return this.items;
  }
}

class Account {
  balance: number;
  readonly owner: string;
  constructor(owner: string, balance: number) {
    this.owner = owner;
    this.balance = balance;
  }
  deposit(amount: number): number {
    this.balance += amount;
    return this.balance;
  }
  withdraw(amount: number): number {
    if (amount > this.balance) throw new RangeError(`insufficient funds: ${this.balance} < ${amount}`);
    this.balance -= amount;
    return this.balance;
  }
  async withdrawLater(amount: number): Promise<number> {
    await null;
    return this.withdraw(amount);
  }
  describe(): { owner: string; balance: number } {
    return { owner: this.owner, balance: this.balance };
  }
}

/** Every call waits until `n` calls have arrived (all running at once), or fails after `timeoutMs`. */
class Barrier {
  arrived = 0;
  running = 0;
  maxRunning = 0;
  waiters: Array<() => void> = [];
  async arrive(n: number, timeoutMs: number): Promise<number> {
    this.arrived++;
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    if (this.arrived >= n) {
      for (const wake of this.waiters) wake();
      this.waiters = [];
    } else {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${this.arrived} of ${n} calls ran at once`)), timeoutMs);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.running--;
    return this.maxRunning;
  }
}

/**
 * Each call reports (its id, how many calls run at that moment) on `started`, then waits for a
 * token on `release` and returns it. The test decides when calls finish; nothing sleeps.
 */
class Gate {
  running = 0;
  async hold(id: number, started: Queue<[number, number]>, release: Queue<number>): Promise<number> {
    this.running++;
    await started.put([id, this.running]);
    const token = await release.get();
    this.running--;
    return token;
  }
  ping(): string {
    return 'pong';
  }
}

class Blocker {
  async wait(queue: Queue<string>): Promise<string> {
    return queue.get();
  }
  ping(): string {
    return 'pong';
  }
}

class Fails {
  constructor(reason: string) {
    throw new SyntaxError(`cannot build: ${reason}`);
  }
  hello(): string {
    return 'hello';
  }
}

class AsyncFails {
  ready = false;
  constructor() {
    // A constructor cannot be async; a rejected promise made here is not awaited, so this actor lives.
    void Promise.resolve().then(() => {
      this.ready = true;
    });
  }
  isReady(): boolean {
    return this.ready;
  }
}

/** Drives `n` Gate.hold calls on `gate`, releasing one at a time; returns the start reports and the results. */
async function driveGate(gate: ActorHandle<Gate>, n: number, cap: number) {
  const started = new Queue<[number, number]>();
  const release = new Queue<number>();
  const refs = Array.from({ length: n }, (_, id) => gate.hold.remote(id, started, release));
  const starts: Array<[number, number]> = [];
  // The first `cap` calls start without any release.
  for (let i = 0; i < Math.min(cap, n); i++) starts.push(await started.get({ timeoutMs: 15_000 }));
  for (let token = 0; token < n; token++) {
    await release.put(token);
    if (starts.length < n) starts.push(await started.get({ timeoutMs: 15_000 }));
  }
  const results = await get(refs);
  return { starts, results, leftover: await started.size() };
}

// ---- state and ordering ---------------------------------------------------------------------------

describe('state and ordering', () => {
  test('state is kept between calls, and each actor has its own', T, async () => {
    const AccountActor = remote(Account);
    const alice = AccountActor.remote('alice', 10);
    const bob = AccountActor.remote('bob', 100);
    assert.equal(await get(alice.deposit.remote(5)), 15);
    assert.equal(await get(bob.deposit.remote(1)), 101);
    assert.equal(await get(alice.deposit.remote(5)), 20);
    assert.deepEqual(await get(alice.describe.remote()), { owner: 'alice', balance: 20 });
    assert.deepEqual(await get(bob.describe.remote()), { owner: 'bob', balance: 101 });
  });

  test('1,000 calls queued at once run in submission order', T, async () => {
    const recorder = remote(Recorder).remote();
    const refs = Array.from({ length: 1000 }, (_, i) => recorder.push.remote(i));
    const lengths = await get(refs);
    assert.deepEqual(lengths, Array.from({ length: 1000 }, (_, i) => i + 1));
    assert.deepEqual(await get(recorder.list.remote()), Array.from({ length: 1000 }, (_, i) => i));
  });

  test('1,000 calls to an async actor (many at once) start in submission order', T, async () => {
    const recorder = remote(AsyncRecorder).remote();
    const refs = Array.from({ length: 1000 }, (_, i) => recorder.push.remote(i));
    assert.deepEqual(await get(refs), Array.from({ length: 1000 }, (_, i) => i + 1));
    assert.deepEqual(await get(recorder.list.remote()), Array.from({ length: 1000 }, (_, i) => i));
  });

  test('a call waiting for a ref argument holds back the calls after it', T, async () => {
    const recorder = remote(Recorder).remote();
    const source = new Queue<number>();
    // A task whose result exists only once the test puts a value in the queue.
    const later = remote(async (queue: Queue<number>) => queue.get()).remote(source);
    const refs = [recorder.push.remote(-1), recorder.push.remote(later), recorder.push.remote(1), recorder.push.remote(put(2))];
    await source.put(0);
    assert.deepEqual(await get(refs), [1, 2, 3, 4]);
    assert.deepEqual(await get(recorder.list.remote()), [-1, 0, 1, 2]);
  });

  test('constructor arguments and method arguments may be refs', T, async () => {
    const account = remote(Account).remote(put('carol'), put(7));
    assert.equal(await get(account.deposit.remote(put(3))), 10);
    const fromTask = remote((x: number) => x * 2).remote(5);
    assert.equal(await get(account.deposit.remote(fromTask)), 20);
  });

  test('a call whose ref argument failed fails with that error; later calls carry on', T, async () => {
    const account = remote(Account).remote('dave', 1);
    const failing = remote((): number => {
      throw new Error('no amount');
    }).remote();
    const error = await rejectsWith(get(account.deposit.remote(failing)), TaskError, /no amount/);
    assert.equal((error.cause as Error).message, 'no amount');
    assert.equal(await get(account.deposit.remote(1)), 2);
  });
});

// ---- errors in methods ---------------------------------------------------------------------------

describe('a method that throws', () => {
  test('gives TaskError with the original error as cause; the actor keeps its state and carries on', T, async () => {
    const account = remote(Account).remote('erin', 10);
    const first = account.withdraw.remote(4);
    const tooMuch = account.withdraw.remote(100);
    const deposit = account.deposit.remote(1);
    const asyncTooMuch = account.withdrawLater.remote(1000);
    assert.equal(await get(first), 6);
    const error = await rejectsWith(get(tooMuch), TaskError, /insufficient funds: 6 < 100/);
    assert.equal(error.functionName, 'Account.withdraw');
    assert.ok(error.cause instanceof RangeError, `cause is ${String(error.cause)}`);
    assert.equal(error.cause.message, 'insufficient funds: 6 < 100');
    assert.equal(await get(deposit), 7);
    // An async method that rejects is the same.
    const asyncError = await rejectsWith(get(asyncTooMuch), TaskError, /insufficient funds: 7 < 1000/);
    assert.ok(asyncError.cause instanceof RangeError);
    assert.deepEqual(await get(account.describe.remote()), { owner: 'erin', balance: 7 });
  });
});

// ---- concurrency ---------------------------------------------------------------------------------

describe('concurrency', () => {
  test('an async actor runs many calls at once (default maxConcurrency)', T, async () => {
    const barrier = remote(Barrier).remote();
    const n = 16;
    const maxima = await get(Array.from({ length: n }, () => barrier.arrive.remote(n, 10_000)));
    assert.deepEqual(maxima, Array(n).fill(n));
  });

  test('maxConcurrency: n lets exactly n calls run at once', T, async () => {
    const gate = remote(Gate).options({ maxConcurrency: 3 }).remote();
    const { starts, results, leftover } = await driveGate(gate, 9, 3);
    assert.equal(leftover, 0);
    assert.deepEqual(
      starts.map(([id]) => id),
      [0, 1, 2, 3, 4, 5, 6, 7, 8],
      'calls start in submission order',
    );
    const concurrency = starts.map(([, running]) => running);
    assert.deepEqual(concurrency.slice(0, 3), [1, 2, 3]);
    assert.ok(concurrency.every((running) => running <= 3), `more than 3 calls ran at once: ${concurrency}`);
    assert.deepEqual([...results].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    // With maxConcurrency calls all waiting, the barrier still meets.
    const barrier = remote(Barrier).options({ maxConcurrency: 4 }).remote();
    assert.deepEqual(await get(Array.from({ length: 4 }, () => barrier.arrive.remote(4, 10_000))), [4, 4, 4, 4]);
  });

  test('maxConcurrency: 1 runs async methods one at a time, in order', T, async () => {
    const gate = remote(Gate).options({ maxConcurrency: 1 }).remote();
    const { starts, results } = await driveGate(gate, 5, 1);
    assert.deepEqual(starts, [
      [0, 1],
      [1, 1],
      [2, 1],
      [3, 1],
      [4, 1],
    ]);
    assert.deepEqual(results, [0, 1, 2, 3, 4]);
  });

  test('a class without async methods runs one call at a time by default', T, async () => {
    // Sync methods cannot overlap anyway; what matters is the default does not break ordering.
    const recorder = remote(Recorder).remote();
    const refs = Array.from({ length: 50 }, (_, i) => recorder.push.remote(i));
    assert.deepEqual(await get(refs), Array.from({ length: 50 }, (_, i) => i + 1));
  });
});

// ---- named actors --------------------------------------------------------------------------------

describe('named actors', () => {
  test('getActor returns a working handle to the same actor', T, async () => {
    const original = remote(Account).options({ name: 'bank' }).remote('bank', 0);
    assert.equal(await get(original.deposit.remote(10)), 10);
    const found = await getActor<Account>('bank');
    assert.equal(found.className, 'Account');
    assert.equal(found.actorId.toHex(), original.actorId.toHex());
    assert.equal(await get(found.deposit.remote(5)), 15);
    assert.equal(await get(original.deposit.remote(0)), 15);
    kill(original);
  });

  test('names are per namespace', T, async () => {
    const AccountActor = remote(Account);
    const inA = AccountActor.options({ name: 'shared-name', namespace: 'a' }).remote('a', 1);
    const inB = AccountActor.options({ name: 'shared-name', namespace: 'b' }).remote('b', 2);
    const foundA = await getActor<Account>('shared-name', { namespace: 'a' });
    const foundB = await getActor<Account>('shared-name', { namespace: 'b' });
    assert.deepEqual(await get(foundA.describe.remote()), { owner: 'a', balance: 1 });
    assert.deepEqual(await get(foundB.describe.remote()), { owner: 'b', balance: 2 });
    // Neither is in the job's namespace (an anonymous one, as Ray's: a UUID).
    await rejectsWith(getActor('shared-name'), ActorNotFoundError, /shared-name' in namespace '[0-9a-f-]{36}'/);
    await rejectsWith(getActor('shared-name', { namespace: 'c' }), ActorNotFoundError, /namespace 'c'/);
    kill(inA);
    kill(inB);
  });

  test('an unknown name rejects with ActorNotFoundError', T, async () => {
    await rejectsWith(getActor('no-such-actor'), ActorNotFoundError, /no-such-actor/);
    await rejectsWith(getActor('no-such-actor', { namespace: 'elsewhere' }), ActorNotFoundError, /elsewhere/);
  });

  test('a taken name throws at .remote(); the name is free again after kill', T, async () => {
    const AccountActor = remote(Account).options({ name: 'unique' });
    const first = AccountActor.remote('first', 1);
    assert.throws(
      () => AccountActor.remote('second', 2),
      (error: unknown) => error instanceof InvalidOptionError && /unique/.test(error.message) && error.option === 'name',
    );
    // The first actor is untouched by the failed attempt.
    const found = await getActor<Account>('unique');
    assert.deepEqual(await get(found.describe.remote()), { owner: 'first', balance: 1 });
    kill(first);
    await rejectsWith(getActor('unique'), ActorNotFoundError);
    const again = AccountActor.remote('third', 3);
    assert.deepEqual(await get((await getActor<Account>('unique')).describe.remote()), { owner: 'third', balance: 3 });
    kill(again);
  });

  test('a taken name throws at .remote() in a task and in a thread actor too, as in the driver (and as in Ray)', T, async () => {
    const holder = CounterActor.options({ name: 'taken-in-task' }).remote(0);
    const inTask = await get(createNamedCounterInTask.remote('taken-in-task'));
    const maker = NamedCounterMaker.remote();
    const inActor = await get(maker.make.remote('taken-in-task'));
    for (const outcome of [inTask, inActor]) {
      assert.ok('thrown' in outcome, 'threw at .remote()');
      assert.match(outcome.thrown, /^InvalidOptionError: an actor named 'taken-in-task' already exists in namespace '[^']+'; use getActor\(\) to reach it/);
    }
    // A free name is not refused, and the refused attempts left nothing behind: the name's holder is the first actor.
    const made = await get(createNamedCounterInTask.remote('free-in-task'));
    assert.ok('handle' in made);
    assert.equal(await get(made.handle.inc.remote(5)), 5);
    assert.equal(await get((await getActor<Counter>('taken-in-task')).inc.remote(1)), 1);
    assert.equal(await get(holder.inc.remote(1)), 2);
    kill(holder);
    kill(made.handle);
    kill(maker);
  });

  test("a taken name in an actor made by a 'process' actor makes that actor dead (a process cannot wait for the answer)", T, async () => {
    const holder = CounterActor.options({ name: 'taken-in-process' }).remote(0);
    const maker = NamedCounterMaker.options({ isolation: 'process' }).remote();
    const outcome = await get(maker.make.remote('taken-in-process'));
    assert.ok('handle' in outcome, 'a process is told later');
    const error = await rejectsWith(get(outcome.handle.inc.remote(1)), Error);
    assert.ok(error instanceof ActorDiedError || error instanceof InvalidOptionError, `got ${String(error)}`);
    assert.match(error.message, /taken-in-process/);
    assert.equal(await get(holder.inc.remote(1)), 1);
    kill(holder);
    kill(maker);
  });
});

// ---- handles passed around -----------------------------------------------------------------------

describe('handles passed to tasks and actors', () => {
  test('a task uses a handle it was given, alone or inside a value', T, async () => {
    const counter = CounterActor.remote(0);
    assert.equal(await get(incViaTask.remote(counter, 5)), 5);
    const other = CounterActor.remote(100);
    assert.deepEqual(await get(incAllViaTask.remote({ counters: [counter, other] })), [6, 101]);
    assert.equal(await get(counter.value.remote()), 6);
    assert.equal(await get(other.value.remote()), 101);
  });

  test('an actor uses a handle it was given, and one it keeps in its state', T, async () => {
    const counter = CounterActor.remote(0);
    const caller = CallerActor.remote();
    assert.equal(await get(caller.incVia.remote(counter, 2)), 2);
    assert.equal(await get(caller.keep.remote(counter)), 'Counter');
    assert.equal(await get(caller.incKept.remote()), 3);
    assert.equal(await get(caller.incKept.remote()), 4);
    assert.equal(await get(counter.value.remote()), 4);
  });

  test('tasks and actors find named actors', T, async () => {
    const counter = CounterActor.options({ name: 'found-remotely', namespace: 'ns' }).remote(0);
    assert.equal(await get(incNamedViaTask.remote('found-remotely', 'ns')), 1);
    assert.equal(await get(CallerActor.remote().incNamed.remote('found-remotely', 'ns')), 2);
    assert.equal(await get(counter.value.remote()), 2);
    assert.equal(await get(lookupMissingInTask.remote('nobody-has-this-name')), 'ActorNotFoundError');
    kill(counter);
  });

  test('a handle made in a task works in the driver', T, async () => {
    const counter = await get(createCounterInTask.remote(40));
    assert.equal(await get(counter.inc.remote(2)), 42);
    assert.equal(await get(incViaTask.remote(counter, 1)), 43);
  });

  test('a handle is a handle in an actor argument list of refs too', T, async () => {
    const counter = CounterActor.remote(0);
    const caller = CallerActor.remote();
    assert.equal(await get(caller.incVia.remote(put(counter), put(3))), 3);
  });
});

// ---- kill ----------------------------------------------------------------------------------------

describe('kill', () => {
  test('every call after kill() fails with ActorDiedError, and so do calls waiting or running', T, async () => {
    const queue = new Queue<string>();
    const blocker = remote(Blocker).remote();
    assert.equal(await get(blocker.ping.remote()), 'pong');
    const running = blocker.wait.remote(queue); // waits in the actor for an item that never comes
    kill(blocker);
    await rejectsWith(get(running), ActorDiedError, /kill/);
    for (let i = 0; i < 3; i++) await rejectsWith(get(blocker.ping.remote()), ActorDiedError, /kill/);
    kill(blocker); // a second kill does nothing
    await rejectsWith(get(blocker.ping.remote()), ActorDiedError);
    // The queue (another actor) is unaffected.
    await queue.put('still here');
    assert.equal(await queue.get({ timeoutMs: 10_000 }), 'still here');
  });

  test('kill() with noRestart: true does not restart an actor that could restart', T, async () => {
    const counter = CounterActor.options({ maxRestarts: 5 }).remote(0);
    assert.equal(await get(counter.inc.remote(1)), 1);
    kill(counter, { noRestart: true });
    await rejectsWith(get(counter.inc.remote(1)), ActorDiedError);
  });

  test('calls submitted before kill() and not yet run fail with ActorDiedError', T, async () => {
    const recorder = remote(Recorder).remote();
    const refs = Array.from({ length: 100 }, (_, i) => recorder.push.remote(i));
    kill(recorder);
    let died = 0;
    for (const ref of refs) {
      try {
        await get(ref);
      } catch (error) {
        assert.ok(error instanceof ActorDiedError, `expected ActorDiedError, got ${String(error)}`);
        died++;
      }
    }
    assert.ok(died > 0, 'no call failed after kill()');
  });
});

// ---- constructor failures ------------------------------------------------------------------------

describe('a constructor that throws', () => {
  test('makes every call fail with ActorDiedError whose cause is the TaskError', T, async () => {
    const broken = remote(Fails).remote('no reason');
    for (const ref of [broken.hello.remote(), broken.hello.remote()]) {
      const error = await rejectsWith(get(ref), ActorDiedError, /cannot build: no reason/);
      assert.ok(error.cause instanceof TaskError, `cause is ${String(error.cause)}`);
      assert.ok(error.cause.cause instanceof SyntaxError, `cause of cause is ${String(error.cause.cause)}`);
      assert.equal(error.cause.cause.message, 'cannot build: no reason');
    }
  });

  test('a failed constructor argument makes the actor dead with that error as cause', T, async () => {
    const failing = remote((): string => {
      throw new Error('no owner');
    }).remote();
    const broken = remote(Account).remote(failing, 1);
    const error = await rejectsWith(get(broken.describe.remote()), ActorDiedError, /no owner/);
    assert.ok(error.cause instanceof TaskError);
  });

  test('a named actor whose constructor threw frees its name', T, async () => {
    const broken = remote(Fails).options({ name: 'broken' }).remote('named');
    await rejectsWith(get(broken.hello.remote()), ActorDiedError);
    await rejectsWith(getActor('broken'), ActorNotFoundError);
  });

  test('a constructor that starts async work is fine', T, async () => {
    const actor = remote(AsyncFails).remote();
    assert.equal(await get(actor.isReady.remote()), true);
  });
});

// ---- bad input -----------------------------------------------------------------------------------

describe('bad input', () => {
  test('an unknown actor option is rejected, naming it', () => {
    assert.throws(
      () => remote(Account, { nmae: 'x' } as unknown as ActorOptions),
      (error: unknown) => error instanceof InvalidOptionError && error.option === 'nmae' && /'nmae'/.test(error.message) && /name/.test(error.message),
    );
    assert.throws(
      () => remote(Account).options({ maxRestart: 1 } as unknown as ActorOptions),
      (error: unknown) => error instanceof InvalidOptionError && /'maxRestart'/.test(error.message) && /maxRestarts/.test(error.message),
    );
  });

  test('option values are checked', () => {
    const AccountActor = remote(Account);
    const bad: Array<[ActorOptions, string]> = [
      [{ maxConcurrency: 0 }, 'maxConcurrency'],
      [{ maxRestarts: -2 }, 'maxRestarts'],
      [{ maxTaskRetries: 1.5 }, 'maxTaskRetries'],
      [{ numCpus: -1 }, 'numCpus'],
      [{ name: '' }, 'name'],
      [{ name: 7 as unknown as string }, 'name'],
      [{ namespace: null as unknown as string }, 'namespace'],
    ];
    for (const [options, option] of bad) {
      assert.throws(
        () => AccountActor.options(options),
        (error: unknown) => error instanceof InvalidOptionError && error.option === option,
        `options ${JSON.stringify(options)}`,
      );
    }
  });

  test('an isolation value that is not allowed is rejected, listing those that are', () => {
    assert.throws(
      () => remote(Account, { isolation: 'fiber' as 'thread' }),
      (error: unknown) =>
        error instanceof InvalidOptionError &&
        error.option === 'isolation' &&
        /'fiber'|"fiber"/.test(error.message) &&
        /thread/.test(error.message) &&
        /shared/.test(error.message) &&
        /process/.test(error.message),
    );
  });

  test('kill() of something that is not a handle throws TypeError', () => {
    for (const value of [{}, null, undefined, 'bank', put(1), { actorId: 'x', className: 'Account' }]) {
      assert.throws(() => kill(value as unknown as ActorHandle<Account>), TypeError, `kill(${String(value)})`);
    }
    assert.throws(() => kill(CounterActor.remote(0), { noRestrat: true } as never), InvalidOptionError);
  });

  test('getActor() with a bad name or options throws', async () => {
    await assert.rejects(getActor(''), TypeError);
    await assert.rejects(getActor(7 as unknown as string), TypeError);
    await assert.rejects(getActor('x', { nmespace: 'y' } as never), InvalidOptionError);
  });

  test('a method missing at run time (handle of the wrong type) fails clearly; the actor carries on', T, async () => {
    class Impostor {
      steal(): number {
        return 0;
      }
    }
    const account = remote(Account).options({ name: 'wrong-type' }).remote('frank', 1);
    const wrong = await getActor<Impostor>('wrong-type');
    // Either the call throws at once or its ref rejects; it must not hang or reach the actor.
    let thrown: unknown;
    try {
      await get(wrong.steal.remote());
    } catch (error) {
      thrown = error;
    }
    assert.ok(thrown instanceof Error, 'calling a method the actor does not have did not fail');
    assert.equal(Object.hasOwn(wrong, 'steal'), false);
    assert.equal(await get(account.deposit.remote(1)), 2);
    kill(account);
  });

  test('an actor class that captures outer variables is rejected at remote()', () => {
    const rate = 2;
    class Captures {
      double(x: number): number {
        return x * rate;
      }
    }
    assert.throws(() => remote(Captures), (error: unknown) => error instanceof Error && /rate/.test(error.message));
  });
});
