// What workers say to their node, on fakes (no threads, no node): a message that names what its
// worker was never given marks the worker as crashed; a throw of the node's own handling is logged
// once and blames nobody; a worker's exit sends back the tasks it had not started and fails those
// it had, out of retries, and what it owned goes with it.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { fromErrorRecord } from '../errors/index.js';
import { NameAnswer, type ActorSpec, type WorkerToNode } from '../protocol/index.js';
import { decodeErrorRecord } from '../serialization/index.js';
import { LogRing } from '../state/log-lines.js';
import type { NodeContext } from './context.js';
import type { TaskRecord, Worker } from './task-manager.js';
import { WorkerMessages, type NodeDoors } from './worker-messages.js';
import type { ActorIdHex, RefIdHex } from '../ids/index.js';

const NODE = 'n'.repeat(32);
const WORKER = 'ab'.repeat(16);
const DRIVER = 'd'.repeat(32);

/** A task worker as the node sees it, recording what happens to it. */
function fakeWorker(inFlight = new Map<number, TaskRecord>(), nextSeq = inFlight.size + 1) {
  const events: string[] = [];
  const worker = {
    id: WORKER,
    role: 'task',
    isolation: 'thread',
    alive: true,
    accepting: true,
    nextSeq,
    inFlight,
    progress: new Int32Array(1),
    exitError: undefined as Error | undefined,
    terminatedFor: undefined as string | undefined,
    channel: { send: () => {}, close: () => events.push('closed') },
    host: { terminate: () => (events.push('terminated'), Promise.resolve(0)) },
  };
  return { worker, asWorker: worker as unknown as Worker, events };
}

/** console.error's lines during the test. */
function logged(t: TestContext): string[] {
  const lines: string[] = [];
  t.mock.method(console, 'error', (...args: unknown[]) => lines.push(args.map(String).join(' ')));
  return lines;
}

/** The pool's one door the bad-message path uses: it ends the worker as a crash. */
const pool = { endAsCrashed: (worker: { host: { terminate(): Promise<number> } }) => void worker.host.terminate() };

function messages(context: object, doors: Partial<NodeDoors> = {}): WorkerMessages {
  const node = { driverId: DRIVER, ...doors } as NodeDoors;
  return new WorkerMessages({ nodeId: NODE, stopped: false, pool, ...context } as unknown as NodeContext, node, new LogRing(NODE, 1 << 16), new Map());
}

const results = (seq: number): WorkerToNode => ({ type: 'results', results: [{ seq, outcome: 'ok', values: [new Uint8Array(1)], us: 1 }] });

test("a 'results' message for a seq its worker was never given marks the worker as crashed, once; nothing more of it is read", (t) => {
  const lines = logged(t);
  const { worker, asWorker, events } = fakeWorker();
  let touched = 0;
  // Any component reached means the message was acted on: the check must come first.
  const known: Record<string | symbol, unknown> = { nodeId: NODE, stopped: false, pool };
  const context = new Proxy(known, { get: (target, key) => (key in target ? target[key] : (touched++, undefined)) });
  const part = new WorkerMessages(context as unknown as NodeContext, { driverId: DRIVER } as NodeDoors, new LogRing(NODE, 1 << 16), new Map());
  part.onWorkerMessage(asWorker, results(5), []);
  part.onWorkerMessage(asWorker, results(6), []);
  part.onWorkerMessage(asWorker, { type: 'removeRefs', ids: ['e'.repeat(32) as RefIdHex] }, []); // would reach the directory
  assert.equal(touched, 0);
  assert.deepEqual(lines, [
    "miniray: worker abababab sent a malformed message: its 'results' message has results[0] for seq 5, which it was never given. " +
      'It is handled as crashed: its tasks are retried as after a crash, and it is replaced.',
  ]);
  assert.deepEqual(events, ['closed', 'terminated']);
  assert.equal(worker.accepting, false);
  assert.equal(worker.exitError?.message, "it sent a malformed message: its 'results' message has results[0] for seq 5, which it was never given");
});

test("a 'results' message for a seq reported already, or a lease given to another thread, is the worker's fault and says whose", (t) => {
  const lines = logged(t);
  const first = fakeWorker(new Map(), 3);
  messages({}).onWorkerMessage(first.asWorker, results(2), []);
  const second = fakeWorker();
  messages({ objects: { leaseHolder: () => DRIVER } }).onWorkerMessage(second.asWorker, { type: 'releaseLeases', leases: [7] }, []);
  assert.equal(lines.length, 2);
  assert.match(lines[0] as string, /its 'results' message has results\[0\] for seq 2, which it has reported already\./);
  assert.match(lines[1] as string, /its 'releaseLeases' message releases lease 7, which was given to the driver, not to it\./);
});

test("a throw of the node's own handling is logged once as an internal error, with its stack; the worker is not blamed", (t) => {
  const lines = logged(t);
  const { worker, asWorker, events } = fakeWorker();
  const part = messages({}, {
    killActor: () => {
      throw new Error('a bug of the node');
    },
  });
  part.onWorkerMessage(asWorker, { type: 'killActor', actorId: 'c'.repeat(32) as ActorIdHex, noRestart: true }, []);
  part.onWorkerMessage(asWorker, { type: 'killActor', actorId: 'c'.repeat(32) as ActorIdHex, noRestart: true }, []);
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0] as string, /^miniray: internal error while handling a 'killActor' message of worker abababab \(a bug in miniray/);
  assert.match(lines[0] as string, /Error: a bug of the node\n\s+at /);
  assert.deepEqual(events, []);
  assert.equal(worker.accepting, true);
  assert.equal(worker.exitError, undefined);
});

test("a worker's exit: the task it had started fails when out of retries, with why; the one it had not started goes back for free", () => {
  const record = (seq: number): TaskRecord =>
    ({ seq, spec: { name: `task${seq}`, maxRetries: 0 }, retries: 0, firstAttempt: 0, traced: false, cancelled: false, fromPeer: false, state: 'running' }) as unknown as TaskRecord;
  const started = record(1);
  const notStarted = record(2);
  const { worker, asWorker } = fakeWorker(
    new Map([
      [1, started],
      [2, notStarted],
    ]),
  );
  Atomics.store(worker.progress, 0, 1); // it began seq 1
  const failed: Array<{ record: TaskRecord; error: Error }> = [];
  const requeued: TaskRecord[] = [];
  const steps: string[] = [];
  const owned = record(3); // a task the worker had submitted, queued elsewhere
  const ownedActor = 'ac'.repeat(16);
  const stopped: Array<{ record: TaskRecord; error: Error }> = [];
  const ended: Array<{ actorId: string; reason: string | undefined }> = [];
  const ownedErrors: Error[] = [];
  const context = {
    objects: {
      dropThread: (id: string) => steps.push(`dropThread ${id.slice(0, 8)}`),
      ownerDied: (id: string, error: (id: string) => Uint8Array) => {
        steps.push(`ownerDied ${id.slice(0, 8)}`);
        ownedErrors.push(fromErrorRecord(decodeErrorRecord(error('0f'.repeat(16)))));
        return { producers: [owned], actors: [ownedActor] };
      },
    },
    cancellation: { stopForDeadOwner: (r: TaskRecord, error: Uint8Array) => stopped.push({ record: r, error: fromErrorRecord(decodeErrorRecord(error)) }) },
    actorRouting: { actorOutOfScope: (actorId: string, reason?: string) => ended.push({ actorId, reason }) },
    scheduler: { onWorkerLost: () => steps.push('lost'), requeue: (records: TaskRecord[]) => requeued.push(...records) },
    tasks: {
      retriesLeft: (r: TaskRecord) => r.retries < r.spec.maxRetries,
      failTask: (r: TaskRecord, error: Uint8Array) => failed.push({ record: r, error: fromErrorRecord(decodeErrorRecord(error)) }),
    },
    pool: { forgetEnvWorker: () => false, replace: () => steps.push('replaced') },
    dispatcher: { scheduleDispatch: () => steps.push('dispatch') },
  };
  messages(context).onWorkerExit(asWorker);
  assert.deepEqual(steps, ['dropThread abababab', 'ownerDied abababab', 'lost', 'replaced', 'dispatch']);
  // What it owned goes with it: its objects' error names it, its task stops, its actor ends.
  assert.equal(ownedErrors[0]?.name, 'OwnerDiedError');
  assert.match(ownedErrors[0]?.message ?? '', /^ObjectRef\((0f){16}\) was owned by worker abababab \(a task thread\), which died\. /);
  assert.deepEqual(stopped.map((s) => [s.record, s.error.name]), [[owned, 'OwnerDiedError']]);
  assert.match(stopped[0]?.error.message ?? '', /the task's owner, worker abababab \(a task thread\), died/);
  assert.equal(ended[0]?.actorId, ownedActor);
  assert.match(ended[0]?.reason ?? '', /its owner, worker abababab \(a task thread\), died, and a non-detached actor ends with the worker that created it/);
  assert.equal(failed.length, 1);
  assert.equal(failed[0]?.record, started);
  assert.equal(failed[0]?.error.name, 'WorkerCrashedError');
  assert.equal(failed[0]?.error.message, 'task task1 failed: its worker died (the thread exited). It ran 1 time (maxRetries: 0).');
  assert.deepEqual(requeued, [notStarted]);
  assert.equal(notStarted.state, 'queued');
  assert.equal(worker.inFlight.size, 0);
});

test("a thread's named actor: a name its node knows is taken is answered at once and nothing is made; a free name, or a thread that stopped waiting, gets the actor created", () => {
  const created: Array<[string | undefined, boolean | undefined]> = [];
  const taken = new Set(['held']);
  const context = {
    functions: new Map(),
    actors: { has: () => false, nameTaken: (spec: ActorSpec) => (taken.has(spec.name as string) ? new Error(`${spec.name} is taken`) : undefined) },
  };
  const part = messages(context, { createActor: (_functions, spec, throwIfNameTaken) => void created.push([spec.name, throwIfNameTaken]) });
  const { worker, asWorker } = fakeWorker();
  const answers = new Int32Array(new SharedArrayBuffer(4));
  Object.assign(worker, { answers });
  const spec = (name: string): ActorSpec => ({ actorId: 'c'.repeat(32), owner: { nodeId: NODE, workerId: WORKER }, name, namespace: 'ns' }) as unknown as ActorSpec;
  const create = (name: string) => part.onWorkerMessage(asWorker, { type: 'createActor', functions: [], spec: spec(name), answerAtOnce: true }, []);

  create('held');
  assert.equal(Atomics.load(answers, 0), NameAnswer.taken);
  assert.deepEqual(created, [], 'nothing is made for a refused name');
  Atomics.store(answers, 0, NameAnswer.pending);
  create('free');
  assert.equal(Atomics.load(answers, 0), NameAnswer.free);
  assert.deepEqual(created, [['free', false]]);
  // The thread gave up waiting: the node cannot refuse any more, so the actor is made (dead, by the node: throwIfNameTaken false).
  Atomics.store(answers, 0, NameAnswer.notAwaited);
  create('held');
  assert.equal(Atomics.load(answers, 0), NameAnswer.notAwaited);
  assert.deepEqual(created, [['free', false], ['held', false]]);
});
