// The task manager's decisions (task-manager.ts) without threads, sockets or a node: a real object
// directory and store, and fakes for the rest of its host. A task "runs elsewhere" when the fake
// dispatcher hands it to the test as the cluster would (remoteWork); a node "dies" when the fake
// cluster says so and nodeDied() is called, as the cluster link does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidOptionError, ObjectLostError, ObjectReconstructionFailedError, OwnerDiedError, WorkerCrashedError, fromErrorRecord } from '../errors/index.js';
import { ObjectStore } from '../object-store/index.js';
import { ObjectDirectory } from '../ownership/index.js';
import type { RemoteValue, TaskSpec } from '../protocol/index.js';
import { decodeErrorRecord, encodeError, encodeValue } from '../serialization/index.js';
import { TaskEventBuffer } from '../state/events.js';
import type { ClusterLink, RemoteWork } from './cluster-link.js';
import { TaskManager, type TaskHost, type TaskRecord } from './task-manager.js';

const NODE = 'a'.repeat(32);
const OWNER = 'b'.repeat(32);
const B = 'c'.repeat(32);
const C = 'd'.repeat(32);
let nextId = 1;
const newId = <H extends string = string>(): H => (nextId++).toString(16).padStart(32, '0') as H;

function spec(name: string, options: { dependencies?: string[]; maxRetries?: number; actorId?: string } = {}): TaskSpec {
  return {
    taskId: newId(),
    name,
    functionId: 'f'.repeat(16),
    args: new Uint8Array(0),
    refArgPositions: [],
    returnIds: [newId()],
    dependencies: options.dependencies ?? [],
    owner: { nodeId: NODE, workerId: OWNER },
    numCpus: 1,
    maxRetries: options.maxRetries ?? 3,
    retryExceptions: false,
    ...(options.actorId === undefined ? {} : { actorId: options.actorId, method: 'm' }),
  } as unknown as TaskSpec;
}

function setup(options: { actorTaskRetries?: number } = {}) {
  const store = new ObjectStore(1 << 20);
  const dead = new Set<string>();
  /** Tasks handed to "the cluster", in order: each attempt's RemoteWork. */
  const sent: RemoteWork[] = [];
  /** Actor calls sent to their actor, in order. */
  const actorCalls: TaskSpec[] = [];
  let tasks: TaskManager | undefined;
  const objects = new ObjectDirectory<TaskRecord>(store, () => {}, (id) => tasks?.lineage.freed(id));
  /** What the cluster was asked to let go: [location, owner, ids]. */
  const letGo: Array<[string, string, readonly string[]]> = [];
  const cluster = {
    canGrow: true,
    letGo: (location: string, owner: string, ids: readonly string[]) => void letGo.push([location, owner, ids]),
    isDead: (nodeId: string) => dead.has(nodeId),
    actorTaskRetries: () => undefined,
  } as unknown as ClusterLink;
  const host: TaskHost = {
    nodeId: NODE,
    objects,
    store,
    taskEvents: new TaskEventBuffer(NODE, { enabled: false }),
    remoteObjects: {
      // As RemoteObjects takes in a result that stays where it was made.
      storeValues: (values: readonly RemoteValue[]) => {
        for (const value of values) {
          if (value.state === 'located') objects.setRemote(value.id, value.location, value.size, undefined);
          else if (value.state === 'failed') objects.setObject(value.id, value.data, true);
        }
      },
    },
    functions: new Map(),
    cluster,
    startupError: undefined,
    actors: { taskRetriesOf: () => options.actorTaskRetries },
    dispatcher: {
      // The cluster takes every task (as LocalDispatch.enqueue when goesElsewhere says so).
      enqueue: (record: TaskRecord) => {
        record.state = 'running';
        record.remote = true;
        sent.push((tasks as TaskManager).remoteWork(record.spec, record));
      },
      queueHere: () => assert.fail('no task is queued here'),
      canRun: () => true,
      infeasibleError: () => new InvalidOptionError('infeasible', 'numCpus'),
    },
    resources: { releaseResources: () => {} },
    cancellation: { cancelledByParent: () => false },
    actorRouting: { callActor: (call: TaskSpec) => void actorCalls.push(call) },
    streams: () => ({ open: () => {} }),
    reads: { waitForObjects: (what, ids, ready, failed) => objects.waitForObjects(what, ids, ready, failed) },
  };
  tasks = new TaskManager(host);
  const manager = tasks;
  /** The attempt sent last reports its result 'located' on `node` (it stays there). */
  const finishOn = (work: RemoteWork, node: string): void =>
    work.done(work.spec.returnIds.map((id): RemoteValue => ({ id, state: 'located', location: node, size: 10 })));
  /** `nodeId` dies: the cluster reports it dead, and the node is told (as RemoteObjects' nodeDied). */
  const kill = (nodeId: string): void => {
    dead.add(nodeId);
    manager.nodeDied(nodeId);
  };
  const errorOf = (id: string): Error => {
    assert.equal(objects.get(id)?.state, 'failed', `ObjectRef(${id}) failed`);
    return fromErrorRecord(decodeErrorRecord(store.get(id) as Uint8Array));
  };
  return { tasks: manager, objects, store, sent, actorCalls, finishOn, kill, errorOf, letGo };
}

test('a task lost with the node it ran on is retried while maxRetries allows, then fails with the loss', () => {
  const s = setup();
  const task = spec('lost', { maxRetries: 1 });
  s.tasks.submitOne(task);
  assert.equal(s.sent.length, 1);
  (s.sent[0] as RemoteWork).lost(new WorkerCrashedError('gone'));
  assert.equal(s.sent.length, 2, 'sent again: one retry left');
  assert.equal((s.sent[1] as RemoteWork).attempt, 1);
  assert.equal(s.objects.get(task.returnIds[0] as string)?.state, 'pending');
  (s.sent[1] as RemoteWork).lost(new WorkerCrashedError('gone again'));
  assert.equal(s.sent.length, 2, 'no retry left: not sent a third time');
  const error = s.errorOf(task.returnIds[0] as string);
  assert.ok(error instanceof WorkerCrashedError);
  assert.match(error.message, /gone again/);
});

test('maxRetries -1 retries without limit, 0 never', () => {
  const s = setup();
  const forever = spec('forever', { maxRetries: -1 });
  s.tasks.submitOne(forever);
  for (let i = 0; i < 5; i++) (s.sent[i] as RemoteWork).lost(new WorkerCrashedError('gone'));
  assert.equal(s.sent.length, 6);
  const never = spec('never', { maxRetries: 0 });
  s.tasks.submitOne(never);
  (s.sent[6] as RemoteWork).lost(new WorkerCrashedError('gone'));
  assert.equal(s.sent.length, 7);
  assert.ok(s.errorOf(never.returnIds[0] as string) instanceof WorkerCrashedError);
});

test('a result whose only copy died is rebuilt by running its task again, after the task that made its freed argument', () => {
  const s = setup();
  const make = spec('make');
  const x = make.returnIds[0] as string;
  s.tasks.submitOne(make);
  s.finishOn(s.sent[0] as RemoteWork, B);
  const double = spec('double', { dependencies: [x] });
  const y = double.returnIds[0] as string;
  s.tasks.submitOne(double);
  assert.equal(s.sent.length, 2, 'its argument exists: sent at once');
  s.finishOn(s.sent[1] as RemoteWork, B);
  s.objects.removeHandles(OWNER, [x]); // the owner let go of x: only double's lineage pins make's
  assert.equal(s.objects.get(x), undefined, 'x was freed');

  s.kill(B);
  assert.equal(s.objects.get(y)?.state, 'pending', 'y is being made again');
  assert.deepEqual(s.sent.slice(2).map((work) => work.spec.name), ['make'], 'make first; double waits for x');
  assert.equal((s.sent[2] as RemoteWork).attempt, 1, 'a rebuild counts against retries');
  s.finishOn(s.sent[2] as RemoteWork, C);
  assert.deepEqual(s.sent.slice(3).map((work) => work.spec.name), ['double'], 'then double, once x exists again');
  s.finishOn(s.sent[3] as RemoteWork, C);
  assert.equal(s.objects.get(y)?.state, 'ready');
  assert.equal(s.objects.get(y)?.location, C);
  assert.equal(s.objects.get(x), undefined, 'the rebuilt argument goes again once double is done with it');
});

test('a task that has used its retries is not run again: its lost result fails saying to raise maxRetries', () => {
  const s = setup();
  const task = spec('spent', { maxRetries: 0 });
  s.tasks.submitOne(task);
  s.finishOn(s.sent[0] as RemoteWork, B);
  s.kill(B);
  assert.equal(s.sent.length, 1, 'not sent again');
  const error = s.errorOf(task.returnIds[0] as string);
  assert.ok(error instanceof ObjectReconstructionFailedError);
  assert.match(error.message, /maxRetries: 0/);
});

test('an object with no lineage (not made by a task here) fails with ObjectLostError when its node dies', () => {
  const s = setup();
  const id = newId();
  s.objects.addPending(id, OWNER, undefined);
  s.objects.setRemote(id, B, 10, undefined);
  s.kill(B);
  const error = s.errorOf(id);
  assert.ok(error instanceof ObjectLostError && !(error instanceof ObjectReconstructionFailedError));
  assert.match(error.message, /not rebuilt/);
});

test('a lost result with a copy on a live node is read from that copy, not rebuilt', () => {
  const s = setup();
  const task = spec('copied');
  const id = task.returnIds[0] as string;
  s.tasks.submitOne(task);
  s.finishOn(s.sent[0] as RemoteWork, B);
  (s.objects.get(id) as { copies?: Set<string> }).copies = new Set([C]);
  s.kill(B);
  assert.equal(s.sent.length, 1, 'not run again');
  assert.equal(s.objects.get(id)?.state, 'ready');
  assert.equal(s.objects.get(id)?.location, C);
});

test('an object borrowed from a node that died fails with OwnerDiedError, a copy here too', () => {
  const s = setup();
  const [id, copied] = [newId(), newId()];
  s.objects.addForeign(id, B);
  s.objects.addForeign(copied, B);
  s.objects.addHandles(OWNER, [id, copied]);
  s.objects.setObject(copied, encodeValue('pulled', 'copy').data, false); // its value came here
  assert.equal(s.objects.get(copied)?.state, 'ready');
  s.kill(B);
  assert.ok(s.errorOf(id) instanceof OwnerDiedError);
  assert.ok(s.errorOf(copied) instanceof OwnerDiedError);
});

test("an actor call's lost result is rebuilt by calling the method again only when its actor has maxTaskRetries", () => {
  for (const actorTaskRetries of [0, 2]) {
    const s = setup({ actorTaskRetries });
    const call = spec('A.m', { actorId: newId(), maxRetries: 0 });
    const id = call.returnIds[0] as string;
    s.tasks.submitOne(call);
    assert.equal(s.actorCalls.length, 1);
    assert.ok(s.tasks.actorCallsPending.has(id), 'kept until it reports (the cluster may grow)');
    s.tasks.actorCallDone(id, true);
    s.objects.setRemote(id, B, 10, undefined); // its result stays on its actor's node
    assert.ok(!s.tasks.actorCallsPending.has(id));
    s.kill(B);
    if (actorTaskRetries === 0) {
      assert.equal(s.actorCalls.length, 1, 'maxTaskRetries 0: not called again');
      const error = s.errorOf(id);
      assert.ok(error instanceof ObjectLostError && !(error instanceof ObjectReconstructionFailedError), 'no lineage was kept for it');
      assert.match(error.message, /maxTaskRetries 0/);
    } else {
      assert.equal(s.actorCalls.length, 2, 'called again');
      assert.equal(s.objects.get(id)?.state, 'pending');
      assert.equal(s.tasks.actorCallsPending.get(id)?.retries, 1);
    }
  }
});

test('failTask fails every return with the error', () => {
  const s = setup();
  const task = { ...spec('two'), returnIds: [newId(), newId()] } as TaskSpec;
  s.tasks.submitOne(task);
  const record = s.objects.get(task.returnIds[0] as string)?.producer as TaskRecord;
  s.tasks.failTask(record, encodeError(new WorkerCrashedError('no')));
  assert.equal(record.state, 'finished');
  for (const id of task.returnIds) assert.ok(s.errorOf(id) instanceof WorkerCrashedError);
  // A late report of the lost attempt changes nothing.
  (s.sent[0] as RemoteWork).done(task.returnIds.map((id): RemoteValue => ({ id, state: 'ready', data: encodeValue(1, 'v').data })));
  for (const id of task.returnIds) assert.equal(s.objects.get(id)?.state, 'failed');
});

/** A task sent to another node whose owner then died, before the task reported. */
function withDeadOwner(name: string): { s: ReturnType<typeof setup>; id: string; work: RemoteWork } {
  const s = setup();
  const task = spec(name);
  s.tasks.submitOne(task);
  s.objects.ownerDied(OWNER, () => encodeError(new OwnerDiedError('its owner ended')), () => {});
  return { s, id: task.returnIds[0] as string, work: s.sent[0] as RemoteWork };
}

test('a result kept on another node for an owner that died before it came is let go there, not kept until that connection ends', () => {
  const { s, id, work } = withDeadOwner('late');
  s.finishOn(work, B);
  assert.deepEqual(s.letGo, [[B, OWNER, [id]]]);
  assert.ok(s.errorOf(id) instanceof OwnerDiedError, 'it stays failed');
  const live = { ...spec('live'), owner: { nodeId: NODE, workerId: 'e'.repeat(32) } } as TaskSpec;
  s.tasks.submitOne(live);
  s.finishOn(s.sent[1] as RemoteWork, C);
  assert.equal(s.letGo.length, 1, "a live owner's result stays where it is");
  assert.equal(s.objects.get(live.returnIds[0] as string)?.location, C);
  // The same report twice (its entry already names that node) lets nothing go.
  s.finishOn(s.sent[1] as RemoteWork, C);
  assert.equal(s.letGo.length, 1);
});

test('a late inline result with refs inside is let go at the node that sent it (it keeps such values for their refs); one without refs is kept nowhere', () => {
  const { s, id, work } = withDeadOwner('late with refs');
  const data = encodeValue(1, 'v').data;
  work.done([{ id, state: 'ready', data }], C);
  assert.deepEqual(s.letGo, [], 'nothing is kept of a value without refs');
  work.done([{ id, state: 'ready', data, nested: [newId()] }], C);
  assert.deepEqual(s.letGo, [[C, OWNER, [id]]]);
});
