// The object directory's reference counting (ownership/index.ts), without threads: random
// sequences of what the node does to it (tasks submitted with arguments and finished with values
// that nest other refs, puts, threads taking and dropping refs, threads exiting, gets reading
// errors) are checked against a declarative rule, not a copy of the code. An object is alive
// exactly while it is reachable: pending (its task may still store it), referred to by a thread,
// held as an argument of an unfinished task, or nested in a live object; once freed it never comes
// back. Freed objects leave the store, each is announced once, and a failed one freed without its
// error having been read is reported once as unhandled. A thread that exits takes what it owns
// with it (ownerDied): those objects fail, their values' nested refs and their tasks' arguments
// are let go, and what their tasks report later is dropped.
import { randomHex, type ActorIdHex, type ObjectIdHex, type TaskIdHex } from '../ids/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ObjectStore } from '../object-store/index.js';
import { OwnerDiedError } from '../errors/index.js';
import { decodeErrorRecord, encodeError, encodeValue } from '../serialization/index.js';
import { ObjectDirectory } from './index.js';

const THREADS = ['driver', 'w1', 'w2'] as const;

type Op =
  | { op: 'submit'; owner: number; args: number[] }
  | { op: 'finish'; task: number; failed: boolean; nested: number[] }
  | { op: 'put'; owner: number; nested: number[] }
  | { op: 'addRef'; thread: number; object: number }
  | { op: 'removeRef'; thread: number; object: number }
  | { op: 'exit'; thread: number }
  | { op: 'read'; object: number };

const pick = fc.nat(40);
const picks = fc.array(pick, { maxLength: 3 });
const thread = fc.nat(THREADS.length - 1);
const ops: fc.Arbitrary<Op[]> = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant('submit' as const), owner: thread, args: picks }),
    fc.record({ op: fc.constant('finish' as const), task: pick, failed: fc.boolean(), nested: picks }),
    fc.record({ op: fc.constant('put' as const), owner: thread, nested: picks }),
    fc.record({ op: fc.constant('addRef' as const), thread, object: pick }),
    fc.record({ op: fc.constant('removeRef' as const), thread, object: pick }),
    fc.record({ op: fc.constant('exit' as const), thread }),
    fc.record({ op: fc.constant('read' as const), object: pick }),
  ),
  { maxLength: 60 },
);

/** What the rule needs to know: facts about each object, not the directory's counters. */
interface Fact {
  pending: boolean;
  failed: boolean;
  read: boolean;
  nested: string[];
  /** Threads that took a ref to it (the owner from the start) and have not dropped it. */
  threads: Set<string>;
  readonly owner: string;
  /** Its owner exited: it failed with OwnerDiedError, whatever its task reports. */
  ownerDied: boolean;
}

function run(sequence: Op[]): void {
  const store = new ObjectStore(1 << 22);
  const unhandled: string[] = [];
  const freed: string[] = [];
  const directory = new ObjectDirectory<undefined>(store, (id) => unhandled.push(id), (id) => freed.push(id));
  const facts = new Map<string, Fact>();
  /** Arguments held by each unfinished task, by its return ID. */
  const argumentsOf = new Map<string, string[]>();
  const gone = new Set<string>();
  const ids: string[] = [];
  let next = 0;
  const idAt = (n: number): string | undefined => (ids.length === 0 ? undefined : ids[n % ids.length]);
  const known = (list: number[]) => list.map(idAt).filter((id): id is string => id !== undefined);
  /** Whether `target` is `from`, or nested in it, directly or deeper. */
  const reaches = (from: string, target: string, seen = new Set<string>()): boolean => {
    if (from === target) return true;
    if (seen.has(from)) return false;
    seen.add(from);
    return (facts.get(from)?.nested ?? []).some((inner) => reaches(inner, target, seen));
  };
  const create = (owner: string, pending: boolean): string => {
    const id = `o${next++}`;
    ids.push(id);
    facts.set(id, { pending, failed: false, read: false, nested: [], threads: new Set([owner]), owner, ownerDied: false });
    return id;
  };

  for (const step of sequence) {
    switch (step.op) {
      case 'submit': {
        const owner = THREADS[step.owner] as string;
        const args = known(step.args);
        const id = create(owner, true);
        directory.addPending(id, owner, undefined);
        directory.hold(id as ObjectIdHex, args, `argument of task ${id}`);
        argumentsOf.set(id, args);
        break;
      }
      case 'finish': {
        const pendingIds = ids.filter((id) => facts.get(id)?.pending === true && !gone.has(id));
        if (pendingIds.length === 0) break;
        const id = pendingIds[step.task % pendingIds.length] as string;
        const fact = facts.get(id) as Fact;
        // No cycles: reference counting does not collect them. One can form only when a task's
        // value nests an object that itself nests that task's result (a ref put inside a put,
        // handed back to the task), so the sequences here leave those out.
        const nested = step.failed ? [] : known(step.nested).filter((inner) => !reaches(inner, id));
        const data = step.failed ? encodeError(new Error('boom')) : encodeValue(id, 'value').data;
        directory.setObject(id, data, step.failed, { nested });
        fact.pending = false;
        fact.failed = step.failed;
        fact.nested = nested.filter((inner) => !gone.has(inner)); // a ref to a freed object holds nothing
        argumentsOf.delete(id);
        break;
      }
      case 'put': {
        const owner = THREADS[step.owner] as string;
        const nested = known(step.nested);
        const id = create(owner, false);
        directory.setObject(id, encodeValue(id, 'value').data, false, { owner, nested });
        (facts.get(id) as Fact).nested = nested.filter((inner) => !gone.has(inner));
        break;
      }
      case 'addRef': {
        const id = idAt(step.object);
        if (id === undefined || gone.has(id)) break; // a thread can only copy a ref it can still reach
        directory.addHandles(THREADS[step.thread] as string, [id]);
        facts.get(id)?.threads.add(THREADS[step.thread] as string);
        break;
      }
      case 'removeRef': {
        const id = idAt(step.object);
        if (id === undefined) break;
        directory.removeHandles(THREADS[step.thread] as string, [id]);
        facts.get(id)?.threads.delete(THREADS[step.thread] as string);
        break;
      }
      case 'exit': {
        const name = THREADS[step.thread] as string;
        directory.dropThread(name);
        directory.ownerDied(name, () => encodeError(new OwnerDiedError(`${name} died`)));
        for (const [id, fact] of facts) {
          fact.threads.delete(name);
          if (fact.owner !== name || gone.has(id) || fact.ownerDied) continue;
          fact.ownerDied = true;
          if (!fact.failed) {
            fact.failed = true;
            fact.read = true; // not a task's error: never reported as unhandled
            fact.nested = [];
          }
          fact.pending = false;
          argumentsOf.delete(id);
        }
        break;
      }
      case 'read': {
        const id = idAt(step.object);
        if (id === undefined || gone.has(id)) break;
        const fact = facts.get(id) as Fact;
        directory.fetch([id], () => {}, true)();
        if (!fact.pending) fact.read = true;
        break;
      }
    }

    // The rule: reachable from the roots, among the objects not freed yet.
    const roots = ids.filter((id) => {
      const fact = facts.get(id) as Fact;
      return !gone.has(id) && (fact.pending || fact.threads.size > 0);
    });
    for (const args of argumentsOf.values()) roots.push(...args.filter((id) => !gone.has(id)));
    const alive = new Set<string>();
    const visit = (id: string) => {
      if (alive.has(id) || gone.has(id)) return;
      alive.add(id);
      for (const inner of (facts.get(id) as Fact).nested) visit(inner);
    };
    roots.forEach(visit);
    for (const id of ids) if (!gone.has(id) && !alive.has(id)) gone.add(id);

    for (const id of ids) {
      const fact = facts.get(id) as Fact;
      const context = `${id} after ${JSON.stringify(step)}`;
      assert.equal(directory.get(id) !== undefined, alive.has(id), `${context}: in the directory iff reachable`);
      assert.equal(store.get(id) !== undefined, alive.has(id) && !fact.pending, `${context}: its bytes are stored iff it is alive and done`);
    }
    assert.deepEqual([...freed].sort(), [...gone].sort(), 'each freed object is announced once');
    const unread = [...gone].filter((id) => (facts.get(id) as Fact).failed && !(facts.get(id) as Fact).read);
    assert.deepEqual([...unhandled].sort(), unread.sort(), 'a failed object freed unread is reported once');
  }
}

test('an object lives exactly while it is reachable, and goes once', () => {
  fc.assert(fc.property(ops, (sequence) => run(sequence)), { numRuns: 400 });
});

test('the sequence fast-check found with a cycle (a put nesting a pending result that then nests the put) is run without the cycle', () => {
  // Seed -1265395988 in CI: o1 nests o0, then o0 finished nesting o1. Without the cycle, both go.
  run([
    { op: 'submit', owner: 2, args: [] },
    { op: 'put', owner: 1, nested: [0] },
    { op: 'exit', thread: 2 },
    { op: 'finish', task: 0, failed: false, nested: [31] },
    { op: 'removeRef', thread: 1, object: 7 },
  ]);
});

test('a pending object outlives every ref to it, and goes when its task stores it unreferenced', () => {
  run([
    { op: 'submit', owner: 0, args: [] },
    { op: 'removeRef', thread: 0, object: 0 },
    { op: 'exit', thread: 1 },
    { op: 'finish', task: 0, failed: false, nested: [] },
  ]);
});

test("an owner's exit fails what it owns and others still hold; its tasks' late results are dropped", () => {
  const store = new ObjectStore(1 << 20);
  const freed: string[] = [];
  const directory = new ObjectDirectory<string>(store, () => assert.fail('nothing is reported as unhandled'), (id) => freed.push(id));
  const [put, inner, result, argument] = [0, 1, 2, 3].map(() => randomHex<ObjectIdHex>());
  directory.setObject(inner as string, encodeValue(1, 'inner').data, false, { owner: 'w1' });
  directory.setObject(argument as string, encodeValue(2, 'argument').data, false, { owner: 'driver' });
  directory.setObject(put as string, encodeValue(3, 'put').data, false, { owner: 'w1', nested: [inner as string] });
  directory.addPending(result as string, 'w1', 'task of w1');
  directory.hold(result as ObjectIdHex, [argument as string], 'argument of task t');
  directory.addHandles('driver', [put as string, result as string]); // the driver borrows both
  directory.removeHandles('w1', [inner as string]);
  directory.removeHandles('driver', [argument as string]); // only the task's hold keeps it

  directory.dropThread('w1');
  const { producers, actors } = directory.ownerDied('w1', (id) => encodeError(new OwnerDiedError(`${id}: w1 died`)));
  assert.deepEqual(producers, ['task of w1'], "the pending object's task is the node's to stop");
  assert.deepEqual(actors, []);
  for (const id of [put, result]) {
    assert.equal(directory.get(id as string)?.state, 'failed');
    const record = decodeErrorRecord(store.get(id as string) as Uint8Array);
    assert.equal(record.name, 'OwnerDiedError');
    assert.equal(record.message, `${id}: w1 died`);
  }
  // The put's value went, and with it the ref nested in it; the task's argument is let go too.
  assert.deepEqual(freed.sort(), [inner, argument].sort());
  assert.equal(store.contains(inner as string), false);

  // The task reports after all: nothing changes, and its out-of-band bytes go back to the arena.
  const block = store.allocate(64);
  directory.setObject(result as string, encodeValue(4, 'late').data, false, { blocks: [block] });
  assert.equal(decodeErrorRecord(store.get(result as string) as Uint8Array).name, 'OwnerDiedError');
  assert.equal(store.stats().arena.usedBytes, 0);

  // Once the borrower lets go, they go as any object does.
  directory.removeHandles('driver', [put as string, result as string]);
  assert.equal(directory.size, 0);
});

test('an argument is held until its task finishes, and a nested ref while its container lives', () => {
  run([
    { op: 'put', owner: 0, nested: [] }, // o0
    { op: 'submit', owner: 1, args: [0] }, // o1, holding o0
    { op: 'removeRef', thread: 0, object: 0 }, // o0 is now held only as an argument
    { op: 'finish', task: 0, failed: false, nested: [0] }, // o1's value nests o0: o0 stays
    { op: 'removeRef', thread: 1, object: 1 }, // o1 goes, and o0 with it
  ]);
});

test('holds are taken under a HoldKey: a return ID, an actor ID or restart: and an actor ID, not a task ID', () => {
  const store = new ObjectStore(1 << 20);
  const directory = new ObjectDirectory<undefined>(store, () => {});
  const object = randomHex<ObjectIdHex>();
  directory.addPending(object, 'driver', undefined);
  const actor = randomHex<ActorIdHex>();
  for (const key of [randomHex<ObjectIdHex>(), actor, `restart:${actor}` as const]) {
    directory.hold(key, [object], 'a test hold');
    directory.releaseHolds(key);
  }
  // @ts-expect-error a task's ID keys no hold (a task's arguments are held under its first return ID)
  directory.hold(randomHex<TaskIdHex>(), [object], 'wrong key');
  // @ts-expect-error nor does untyped text
  directory.releaseHolds('some text');
  assert.equal(directory.get(object)?.state, 'pending');
});
