import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError } from '../errors/index.js';
import type { ActorIdHex, NodeIdHex, ObjectIdHex, RefIdHex, TaskIdHex, WorkerIdHex } from '../ids/index.js';
import { validate } from './check.js';
import { decodeErrorRecord, encodeErrorRecord } from '../serialization/index.js';
import {
  decodeFrame,
  encodeFrame,
  isActorCall,
  parseNodeToWorker,
  parseWorkerBootData,
  parseWorkerToNode,
  WORKER_ANSWER_CHECKS,
  type ActorCallSpec,
  type ActorSpec,
  type FunctionTaskSpec,
  type NodeToWorker,
  type TaskSpec,
  type WorkerToNode,
} from './index.js';

// IDs of any kind (`as never`: a test's text goes in task, object, actor, node and worker ID fields alike).
const ID: never = 'a'.repeat(32) as never;
const ID2: never = 'b'.repeat(32) as never;
const owner = { nodeId: ID, workerId: ID2 };
const bytes = new Uint8Array([1, 2, 3]);

const taskSpec: TaskSpec = {
  taskId: ID,
  functionId: ID2,
  name: 'f',
  args: bytes,
  refArgPositions: [0],
  dependencies: [ID2],
  returnIds: [ID],
  numCpus: 1,
  maxRetries: -1,
  retryExceptions: false,
  owner,
};
const { functionId: _functionId, ...taskBase } = taskSpec as FunctionTaskSpec; // an actor call has no functionId
const actorCall: ActorCallSpec = { ...taskBase, actorId: ID2, method: 'inc' };
const actorSpec: ActorSpec = {
  actorId: ID,
  classId: ID2,
  className: 'Counter',
  methodNames: ['inc'],
  args: bytes,
  refArgPositions: [],
  dependencies: [],
  name: undefined,
  namespace: 'default',
  maxRestarts: 0,
  maxTaskRetries: 0,
  maxConcurrency: 1,
  numCpus: 0,
  isolation: 'thread',
  owner,
};

/** One valid message of each type a worker sends. */
const validFromWorker: WorkerToNode[] = [
  { type: 'ready' },
  {
    type: 'results',
    results: [
      { seq: 1, outcome: 'ok', values: [bytes], us: 3 },
      { seq: 2, outcome: 'ok', values: [bytes, bytes], parts: [[{ attached: 0 }], [{ bytes }]], nested: [[ID], []], us: 0 },
      { seq: 3, outcome: 'error', error: bytes, userError: true, us: 12.5, startMs: 1.7e12, spans: [{ name: 'step', startMs: 1.7e12, endMs: 1.7e12 + 1, extraData: { k: 'v' } }] },
      { seq: 4, outcome: 'cancelled' },
    ],
  },
  {
    type: 'logs',
    lines: [
      { stream: 'stdout', timeMs: 1, name: 'f', text: 'hello', taskId: ID },
      { stream: 'stderr', timeMs: 2, name: 'C', text: '', taskId: ID, actorId: ID2, ownerNode: ID2 },
    ],
  },
  { type: 'submit', functions: [{ kind: 'source', id: ID2, name: 'f', source: '(x) => x' }], tasks: [taskSpec, actorCall] },
  { type: 'put', objects: [{ id: ID, data: bytes }, { id: ID2, data: bytes, parts: [{ attached: 1 }], nested: [ID] }] },
  { type: 'request', id: 7, method: 'get', ids: [ID, ID2], withData: false },
  { type: 'request', id: 8, method: 'get', ids: [ID], withData: false, fetchLocal: true },
  { type: 'request', id: 9, method: 'get', ids: [ID], withData: true, poll: true },
  { type: 'cancelRequest', id: 7 },
  { type: 'request', id: 2, method: 'clusterInfo', query: 'nodes' },
  { type: 'request', id: 3, method: 'clusterInfo', query: { gcs: 'listActors', body: {}, timeoutMs: 100 } },
  { type: 'blocked' },
  { type: 'unblocked' },
  { type: 'cancel', objectId: ID, force: true },
  {
    type: 'createActor',
    functions: [{ kind: 'module', id: ID2, name: 'Counter', moduleUrl: 'file:///x.js', callsite: '1:1#0', where: 'x.js:1' }],
    spec: actorSpec,
  },
  { type: 'createActor', functions: [], spec: actorSpec, answerAtOnce: true },
  { type: 'request', id: 1, method: 'lookupActor', name: 'n', namespace: '' },
  { type: 'killActor', actorId: ID, noRestart: false },
  { type: 'addRefs', ids: [ID] },
  { type: 'removeRefs', ids: [] },
  { type: 'releaseLeases', leases: [1, 2] },
  // generators
  { type: 'submit', functions: [], tasks: [{ ...taskSpec, returns: { kind: 'streaming', backpressure: 2 } }, { ...taskSpec, returns: { kind: 'static', count: 0 } }] },
  { type: 'generatorItem', seq: 1, index: 0, value: bytes },
  { type: 'generatorItem', seq: 2, index: 3, value: bytes, parts: [{ attached: 0 }], nested: [ID] },
  { type: 'request', id: 4, method: 'generatorNext', generatorId: ID, index: 2 },
  { type: 'request', id: 5, method: 'generatorNext', generatorId: ID, index: 2, peek: true },
  { type: 'put', objects: [{ id: ID, data: bytes, failed: true }] },
  { type: 'submit', functions: [], tasks: [{ ...taskSpec, returns: { kind: 'dynamic', retryThrown: true } }] },
  { type: 'generatorDropped', generatorId: ID },
];

/** One valid message of each type a node sends. */
const validFromNode: NodeToWorker[] = [
  {
    type: 'execute',
    functions: [],
    tasks: [
      { seq: 1, taskId: ID, functionId: ID2, name: 'f', args: bytes, refArgPositions: [], refArgValues: [], numReturns: 1 },
      {
        seq: 2,
        taskId: ID,
        functionId: ID2,
        name: 'f',
        args: bytes,
        refArgPositions: [1],
        refArgValues: [bytes],
        refArgParts: [[{ slab: 0, offset: 64, length: 100 }]],
        lease: 3,
        numReturns: 2,
      },
      { seq: 3, taskId: ID, functionId: ID2, name: 'C', args: bytes, refArgPositions: [], refArgValues: [], numReturns: 0, actorId: ID, maxConcurrency: 2 },
      { seq: 4, taskId: ID2, name: 'C.inc', args: bytes, refArgPositions: [], refArgValues: [], numReturns: 1, actorId: ID, method: 'inc', concurrencyGroup: 'io' },
    ],
  },
  { type: 'reply', id: 1, value: { id: ID, state: 'ready', data: bytes, parts: [{ slab: 1, offset: 0, length: 3 }], lease: 1 } },
  { type: 'response', id: 1, ok: true, value: { id: ID, state: 'lost' } },
  { type: 'response', id: 2, ok: false, error: { name: 'RequestCancelledError', minirayClass: 'RequestCancelledError', message: 'cancelled' } },
  { type: 'cancel', seqs: [1, 2] },
  { type: 'destroyActor', actorId: ID },
  { type: 'dropSlabs', indices: [3] },
  { type: 'collect' },
  { type: 'slabs', slabs: [{ index: 0, attached: 0 }] },
  { type: 'response', id: 3, ok: true, value: null },
  // generators
  { type: 'execute', functions: [], tasks: [{ seq: 4, taskId: ID, functionId: ID2, name: 'g', args: bytes, refArgPositions: [], refArgValues: [], numReturns: 1, returns: { kind: 'dynamic' } }] },
  { type: 'response', id: 4, ok: true, value: 'failed' },
  { type: 'generatorAck', seq: 4, consumed: 2 },
];

test('every valid message a worker sends passes, as sent and after a trip through a frame', () => {
  for (const message of validFromWorker) {
    assert.equal(parseWorkerToNode(message), message, message.type);
    const [decoded] = decodeFrame(encodeFrame([message]));
    const parsed = parseWorkerToNode(decoded);
    assert.ok(!(parsed instanceof ProtocolError), `${message.type}: ${(parsed as Error).message}`);
  }
});

test('every valid message a node sends passes, as sent and after a trip through a frame', () => {
  for (const message of validFromNode) {
    assert.equal(parseNodeToWorker(message), message, message.type);
    const [decoded] = decodeFrame(encodeFrame([message]));
    const parsed = parseNodeToWorker(decoded);
    assert.ok(!(parsed instanceof ProtocolError), `${message.type}: ${(parsed as Error).message}`);
  }
});

/** [what, message, pattern its error must match (naming the field and what was wrong)]. */
const malformedFromWorker: Array<[string, unknown, RegExp]> = [
  ['undefined', undefined, /it must be an object, got undefined/],
  ['null', null, /it must be an object, got null/],
  ['a number', 5, /it must be an object, got number 5/],
  ['a string', 'ready', /it must be an object, got string "ready"/],
  ['an array', [{ type: 'ready' }], /it must be an object, got an array of 1/],
  ['bytes', new Uint8Array(4), /it must be an object, got Uint8Array of 4 bytes/],
  ['no type', {}, /type must be a message type \(ready, results, .*\), got undefined/],
  ['an unknown type', { type: 'explode' }, /type must be a message type .* got string "explode"/],
  ['a prototype key as type', { type: 'toString' }, /type must be a message type .* got string "toString"/],
  ['a log line of no stream', { type: 'logs', lines: [{ stream: 'stdin', timeMs: 1, name: 'f', text: '' }] }, /lines\[0\]\.stream must be one of 'stdout', 'stderr'/],
  ['a log line of no text', { type: 'logs', lines: [{ stream: 'stdout', timeMs: 1, name: 'f' }] }, /lines\[0\]\.text must be a string/],
  ['a numeric type', { type: 3 }, /type must be a message type .* got number 3/],
  ['results: 5', { type: 'results', results: 5 }, /type 'results'.*: results must be an array, got number 5/],
  ['a result that is null', { type: 'results', results: [null] }, /results\[0\] must be an object, got null/],
  ['a string seq', { type: 'results', results: [{ seq: '1', outcome: 'cancelled' }] }, /results\[0\]\.seq must be an integer >= 0, got string "1"/],
  ['a fractional seq', { type: 'results', results: [{ seq: 1.5, outcome: 'cancelled' }] }, /results\[0\]\.seq must be an integer >= 0, got number 1.5/],
  ['an unknown outcome', { type: 'results', results: [{ seq: 1, outcome: 'maybe' }] }, /results\[0\]\.outcome must be one of 'ok', 'error', 'cancelled'/],
  ['values that are not bytes', { type: 'results', results: [{ seq: 1, outcome: 'ok', values: [5], us: 1 }] }, /results\[0\]\.values\[0\] must be bytes/],
  ['an infinite us', { type: 'results', results: [{ seq: 1, outcome: 'ok', values: [], us: Infinity }] }, /results\[0\]\.us must be a finite number >= 0/],
  ['a negative startMs (task events)', { type: 'results', results: [{ seq: 1, outcome: 'ok', values: [], us: 1, startMs: -1 }] }, /results\[0\]\.startMs must be a finite number >= 0/],
  ['a profile span without a name', { type: 'results', results: [{ seq: 1, outcome: 'error', error: bytes, userError: true, us: 1, spans: [{ startMs: 1, endMs: 2 }] }] }, /results\[0\]\.spans\[0\]\.name must be a string/],
  ['a span whose extraData is not strings', { type: 'results', results: [{ seq: 1, outcome: 'ok', values: [], us: 1, spans: [{ name: 'x', startMs: 1, endMs: 2, extraData: { n: 1 } }] }] }, /results\[0\]\.spans\[0\]\.extraData\.n must be a string/],
  ['parts not one per value', { type: 'results', results: [{ seq: 1, outcome: 'ok', values: [bytes], parts: [], us: 1 }] }, /results\[0\]\.parts must be one list per value \(1\)/],
  ['a part of no kind', { type: 'results', results: [{ seq: 1, outcome: 'ok', values: [bytes], parts: [[{}]], us: 1 }] }, /results\[0\]\.parts\[0\]\[0\] must be a part/],
  ['a negative slab', { type: 'put', objects: [{ id: ID, data: bytes, parts: [{ slab: -1, offset: 0, length: 1 }] }] }, /objects\[0\]\.parts\[0\]\.slab must be an integer >= 0, got number -1/],
  ['an error without userError', { type: 'results', results: [{ seq: 1, outcome: 'error', error: bytes, us: 1 }] }, /results\[0\]\.userError must be a boolean, got undefined/],
  ['objects: 7', { type: 'put', objects: 7 }, /type 'put'.*: objects must be an array, got number 7/],
  ['a put with a bad ID', { type: 'put', objects: [{ id: 'x', data: bytes }] }, /objects\[0\]\.id must be an ID \(32 hex characters\), got string "x"/],
  ['a put without data', { type: 'put', objects: [{ id: ID }] }, /objects\[0\]\.data must be bytes/],
  ['submit without tasks', { type: 'submit', functions: [] }, /tasks must be an array, got undefined/],
  ['a task without owner', { type: 'submit', functions: [], tasks: [{ ...taskSpec, owner: undefined }] }, /tasks\[0\]\.owner must be an object, got undefined/],
  ['a task owner with a numeric worker', { type: 'submit', functions: [], tasks: [{ ...taskSpec, owner: { nodeId: ID, workerId: 1 } }] }, /tasks\[0\]\.owner\.workerId must be an ID \(32 hex characters\), got number 1/],
  // The owner's IDs are branded NodeIdHex and WorkerIdHex: checked as IDs, not just as strings.
  ['a task owner whose node is no ID', { type: 'submit', functions: [], tasks: [{ ...taskSpec, owner: { nodeId: 'node-a', workerId: ID2 } }] }, /tasks\[0\]\.owner\.nodeId must be an ID \(32 hex characters\), got string "node-a"/],
  ['an actor owner whose worker is no ID', { type: 'createActor', functions: [], spec: { ...actorSpec, owner: { nodeId: ID, workerId: '' } } }, /spec\.owner\.workerId must be an ID \(32 hex characters\), got string ""/],
  ['a task with NaN CPUs', { type: 'submit', functions: [], tasks: [{ ...taskSpec, numCpus: Number.NaN }] }, /tasks\[0\]\.numCpus must be a finite number >= 0, got number NaN/],
  ['a task with maxRetries -2', { type: 'submit', functions: [], tasks: [{ ...taskSpec, maxRetries: -2 }] }, /tasks\[0\]\.maxRetries must be an integer >= -1/],
  ['a task with no returns', { type: 'submit', functions: [], tasks: [{ ...taskSpec, returnIds: [] }] }, /tasks\[0\]\.returnIds must be at least one ID/],
  ['positions not one per dependency', { type: 'submit', functions: [], tasks: [{ ...taskSpec, refArgPositions: [] }] }, /tasks\[0\]\.refArgPositions must be one position per dependency \(1\)/],
  ['an actor call without method', { type: 'submit', functions: [], tasks: [{ ...taskSpec, actorId: ID }] }, /tasks\[0\]\.method must be a string, got undefined/],
  ['a task with a method but no actor', { type: 'submit', functions: [], tasks: [{ ...taskSpec, method: 'inc' }] }, /tasks\[0\]\.method must be absent: a task that is not an actor call \(no actorId\) has no method, got string "inc"/],
  // A TaskSpec is a function task or an actor call, never both and never neither.
  ['an actor call with a functionId', { type: 'submit', functions: [], tasks: [{ ...actorCall, functionId: ID2 }] }, /tasks\[0\]\.functionId must be absent: an actor call \(with actorId\) runs its actor's method, not a function, got string "b+"/],
  ['an actor call with the old placeholder functionId', { type: 'submit', functions: [], tasks: [{ ...actorCall, functionId: '' }] }, /tasks\[0\]\.functionId must be absent: an actor call/],
  ['a task with neither functionId nor actorId', { type: 'submit', functions: [], tasks: [taskBase] }, /tasks\[0\]\.functionId must be a string, got undefined/],
  ['a function of unknown kind', { type: 'submit', functions: [{ kind: 'eval', id: ID, name: 'f' }], tasks: [] }, /functions\[0\]\.kind must be one of 'source', 'module'/],
  ['a get of no IDs', { type: 'request', id: 1, method: 'get', ids: [], withData: true }, /ids must be at least one ID, got an array of 0/],
  ['a get with ids: null', { type: 'request', id: 1, method: 'get', ids: null, withData: true }, /type 'request'.*: ids must be an array, got null/],
  ['a get whose poll is not a boolean', { type: 'request', id: 1, method: 'get', ids: [ID], withData: true, poll: 'now' }, /poll must be a boolean, got string "now"/],
  // the envelope of a request
  ['a request with id 0', { type: 'request', id: 0, method: 'get', ids: [], withData: true }, /id must be an integer >= 1, got number 0/],
  ['a request with a string id', { type: 'request', id: '1', method: 'get', ids: [], withData: true }, /id must be an integer >= 1, got string "1"/],
  ['a request without id', { type: 'request', method: 'lookupActor', name: 'n', namespace: '' }, /id must be an integer >= 1, got undefined/],
  // An unknown method passes (see the test below); its envelope must still be right.
  ['a request without method', { type: 'request', id: 1 }, /method must be a string, got undefined/],
  ['a request of a numeric method', { type: 'request', id: 1, method: 7 }, /method must be a string, got number 7/],
  ['a request of an unknown method without id', { type: 'request', method: 'shutdownNode' }, /id must be an integer >= 1, got undefined/],
  ['a cancel of a fractional id', { type: 'cancelRequest', id: 1.5 }, /id must be an integer >= 1, got number 1.5/],
  ['a cluster query of no kind', { type: 'request', id: 1, method: 'clusterInfo', query: 'everything' }, /query must be one of 'nodes'/],
  ['a cancel of a number', { type: 'cancel', objectId: 5, force: false }, /objectId must be an ID/],
  ['an actor spec with isolation "vm"', { type: 'createActor', functions: [], spec: { ...actorSpec, isolation: 'vm' } }, /spec\.isolation must be one of 'thread', 'shared', 'process'/],
  ['an actor spec with maxConcurrency 0', { type: 'createActor', functions: [], spec: { ...actorSpec, maxConcurrency: 0 } }, /spec\.maxConcurrency must be an integer >= 1/],
  ['a createActor without spec', { type: 'createActor', functions: [] }, /spec must be an object, got undefined/],
  ['a createActor whose answerAtOnce is not a boolean', { type: 'createActor', functions: [], spec: actorSpec, answerAtOnce: 1 }, /answerAtOnce must be a boolean, got number 1/],
  ['a lookup with a numeric name', { type: 'request', id: 1, method: 'lookupActor', name: 5, namespace: '' }, /name must be a string, got number 5/],
  ['a kill without noRestart', { type: 'killActor', actorId: ID }, /noRestart must be a boolean, got undefined/],
  ['addRefs of numbers', { type: 'addRefs', ids: [1, 2] }, /ids\[0\] must be an ID/],
  ['releaseLeases of strings', { type: 'releaseLeases', leases: ['1'] }, /leases\[0\] must be an integer >= 0, got string "1"/],
  // generators
  ['a generator item with a negative index', { type: 'generatorItem', seq: 1, index: -1, value: bytes }, /index must be an integer >= 0/],
  ['a failed put with parts', { type: 'put', objects: [{ id: ID, data: bytes, failed: true, parts: [] }] }, /objects\[0\]\.failed must be true or absent \(and a failed object has no parts\)/],
  ['a dynamic mode with retryThrown 1', { type: 'submit', functions: [], tasks: [{ ...taskSpec, returns: { kind: 'dynamic', retryThrown: 1 } }] }, /returns\.retryThrown must be true or absent/],
  ['a generator peek that is not true', { type: 'request', id: 1, method: 'generatorNext', generatorId: ID, index: 0, peek: 1 }, /peek must be true or absent, got number 1/],
  ['a generator item without its value', { type: 'generatorItem', seq: 1, index: 0 }, /value must be bytes/],
  ['a task with an unknown return mode', { type: 'submit', functions: [], tasks: [{ ...taskSpec, returns: { kind: 'lazy' } }] }, /returns\.kind must be one of 'streaming', 'dynamic', 'static'/],
  ['a streaming task with backpressure 0', { type: 'submit', functions: [], tasks: [{ ...taskSpec, returns: { kind: 'streaming', backpressure: 0 } }] }, /returns\.backpressure must be an integer >= 1/],
];

for (const [what, message, expected] of malformedFromWorker) {
  test(`parseWorkerToNode rejects ${what}, naming the field`, () => {
    const parsed = parseWorkerToNode(message);
    assert.ok(parsed instanceof ProtocolError, 'a ProtocolError, returned (not thrown)');
    assert.match(parsed.message, /^a message from a worker .*is malformed: /);
    assert.match(parsed.message, expected);
  });
}

test('a well-formed request of a method the node does not answer passes as its envelope alone, to be answered with an error', () => {
  for (const method of ['shutdownNode', 'constructor', '__proto__', 'toString']) {
    const parsed = parseWorkerToNode({ type: 'request', id: 3, method, extra: { anything: 1 } });
    assert.deepEqual(parsed, { type: 'request', id: 3, method, unknownMethod: true }, method);
  }
});

test('a ProtocolError names the field where the problem is', () => {
  const parsed = parseWorkerToNode({ type: 'results', results: [{ seq: 1, outcome: 'ok', values: [bytes, 'x'], us: 1 }] });
  assert.ok(parsed instanceof ProtocolError);
  assert.equal(parsed.field, 'results[0].values[1]');
  assert.equal(parsed.message, "a message from a worker (type 'results') is malformed: results[0].values[1] must be bytes (a Uint8Array), got string \"x\"");
});

const malformedFromNode: Array<[string, unknown, RegExp]> = [
  ['undefined', undefined, /it must be an object, got undefined/],
  ['an unknown type', { type: 'results' }, /type must be a message type \(execute, reply, response, .*\), got string "results"/],
  ['tasks: 1', { type: 'execute', functions: [], tasks: 1 }, /tasks must be an array, got number 1/],
  ['a task with seq 0', { type: 'execute', functions: [], tasks: [{ seq: 0 }] }, /tasks\[0\]\.seq must be an integer >= 1, got number 0/],
  [
    'ref values not one per position',
    { type: 'execute', functions: [], tasks: [{ seq: 1, taskId: ID, functionId: '', name: 'f', args: bytes, refArgPositions: [0], refArgValues: [], numReturns: 1 }] },
    /tasks\[0\]\.refArgValues must be one value per ref position \(1\)/,
  ],
  [
    'an actor call with a functionId',
    { type: 'execute', functions: [], tasks: [{ seq: 1, taskId: ID, functionId: '', name: 'C.inc', args: bytes, refArgPositions: [], refArgValues: [], numReturns: 1, actorId: ID, method: 'inc' }] },
    /tasks\[0\]\.functionId must be absent: an actor call \(with actorId and method\) runs its actor's method, not a function, got string ""/,
  ],
  [
    'a task or creation without functionId',
    { type: 'execute', functions: [], tasks: [{ seq: 1, taskId: ID, name: 'C', args: bytes, refArgPositions: [], refArgValues: [], numReturns: 0, actorId: ID }] },
    /tasks\[0\]\.functionId must be a string, got undefined/,
  ],
  // the envelope of an answer (its value is checked by the asker's RequestTable: see answer checks below)
  ['a reply with id 0', { type: 'reply', id: 0, value: null }, /id must be an integer >= 1, got number 0/],
  ['a reply without id', { type: 'reply', value: null }, /id must be an integer >= 1, got undefined/],
  ['a response whose ok is 1', { type: 'response', id: 1, ok: 1, value: null }, /ok must be a boolean, got number 1/],
  ['a failed response without an error record', { type: 'response', id: 1, ok: false, error: 'boom' }, /error must be an error record/],
  ['slabs without attached', { type: 'slabs', slabs: [{ index: 0 }] }, /slabs\[0\]\.attached must be an integer >= 0/],
  ['cancel of strings', { type: 'cancel', seqs: ['1'] }, /seqs\[0\] must be an integer >= 0/],
];

for (const [what, message, expected] of malformedFromNode) {
  test(`parseNodeToWorker rejects ${what}, naming the field`, () => {
    const parsed = parseNodeToWorker(message);
    assert.ok(parsed instanceof ProtocolError);
    assert.match(parsed.message, /^a message from the node .*is malformed: /);
    assert.match(parsed.message, expected);
  });
}

/** [method, value, pattern]: answers each method's validator rejects (run by the worker's RequestTable). */
const malformedAnswers: Array<[keyof typeof WORKER_ANSWER_CHECKS, unknown, RegExp]> = [
  ['get', { id: ID, state: 'gone' }, /state must be one of 'ready', 'failed', 'lost'/],
  ['get', { id: ID, state: 'ready' }, /data must be bytes/],
  ['get', { pollEnd: false }, /pollEnd must be true, got boolean false/],
  ['lookupActor', 'C', /value must be an object, got string "C"/],
  ['lookupActor', { actorId: ID, className: 'C' }, /value\.methodNames must be an array/],
  ['clusterInfo', { nodes: [{ nodeId: 'x' }] }, /value\.nodes\[0\]\.nodeId must be an ID/],
  ['generatorNext', 'maybe', /value must be one of 'item', 'end', 'failed'/],
];

for (const [method, value, expected] of malformedAnswers) {
  test(`the answer check of '${method}' rejects ${JSON.stringify(value)}, naming the field`, () => {
    const parsed = validate<unknown>(`an answer to '${method}'`, value, WORKER_ANSWER_CHECKS[method]);
    assert.ok(parsed instanceof ProtocolError);
    assert.match(parsed.message, expected);
  });
}

test('the answer checks pass valid answers of each method', () => {
  assert.equal(WORKER_ANSWER_CHECKS.lookupActor(null), null);
  const info = { actorId: ID, className: 'C', methodNames: ['m', 'g'], generatorMethods: ['g'] };
  assert.equal(WORKER_ANSWER_CHECKS.lookupActor(info), info);
  // A named actor found in the GCS names only its owner's node: its handles count there, as a ref's owner (not a spec's, whose IDs are checked).
  const remote = { ...info, owner: { nodeId: ID, workerId: '' } };
  assert.equal(WORKER_ANSWER_CHECKS.lookupActor(remote), remote);
  const object = { id: ID, state: 'failed', data: bytes } as const;
  assert.equal(WORKER_ANSWER_CHECKS.get(object), object);
  const pollEnd = { pollEnd: true } as const;
  assert.equal(WORKER_ANSWER_CHECKS.get(pollEnd), pollEnd);
  assert.equal(WORKER_ANSWER_CHECKS.generatorNext('end'), 'end');
  const answer = { resources: { CPU: 2 } };
  assert.equal(WORKER_ANSWER_CHECKS.clusterInfo(answer), answer);
});

test('boot data: valid passes; each wrong field is named', () => {
  const valid = { nodeId: ID, workerId: ID2, progress: new SharedArrayBuffer(4), preload: [{ kind: 'tsx', apiUrl: 'file:///tsx.mjs' }, { kind: 'import', specifier: 'x' }] };
  assert.equal(parseWorkerBootData(valid), valid);
  const withTimeout = { ...valid, gcsReconnectTimeoutMs: 120_000 };
  assert.equal(parseWorkerBootData(withTimeout), withTimeout);
  const withAnswers = { ...valid, answers: new SharedArrayBuffer(4) };
  assert.equal(parseWorkerBootData(withAnswers), withAnswers);
  const withStore = { ...valid, objectStoreBytes: 8 << 20 };
  assert.equal(parseWorkerBootData(withStore), withStore);
  const cases: Array<[unknown, RegExp]> = [
    [{ ...valid, objectStoreBytes: 'big' }, /objectStoreBytes must be an integer >= 0, got string/],
    [{ ...valid, gcsReconnectTimeoutMs: -1 }, /gcsReconnectTimeoutMs must be an integer >= 0, got number -1/],
    [undefined, /boot data is malformed: it must be an object, got undefined/],
    [{ ...valid, nodeId: 'node' }, /nodeId must be an ID/],
    [{ ...valid, progress: new ArrayBuffer(4) }, /progress must be a SharedArrayBuffer of at least 4 bytes, got ArrayBuffer of 4 bytes/],
    [{ ...valid, progress: new SharedArrayBuffer(2) }, /progress must be a SharedArrayBuffer of at least 4 bytes/],
    [{ ...valid, answers: new ArrayBuffer(4) }, /answers must be a SharedArrayBuffer of at least 4 bytes, got ArrayBuffer of 4 bytes/],
    [{ ...valid, preload: [{ kind: 'require' }] }, /preload\[0\]\.kind must be one of 'import', 'tsx'/],
    [{ ...valid, preload: [{ kind: 'import' }] }, /preload\[0\]\.specifier must be a string, got undefined/],
  ];
  for (const [value, expected] of cases) {
    const parsed = parseWorkerBootData(value);
    assert.ok(parsed instanceof ProtocolError);
    assert.match(parsed.message, expected);
  }
});

test('the validators never throw, whatever they are given (fuzzed)', () => {
  const messageLike = fc.record(
    {
      type: fc.oneof(fc.constantFrom(...validFromWorker.map((m) => m.type), ...validFromNode.map((m) => m.type)), fc.string()),
      results: fc.anything(),
      objects: fc.anything(),
      tasks: fc.array(fc.anything(), { maxLength: 3 }),
      functions: fc.array(fc.anything(), { maxLength: 2 }),
      ids: fc.anything(),
      leases: fc.array(fc.anything(), { maxLength: 3 }),
      spec: fc.anything(),
      info: fc.anything(),
      id: fc.anything(),
      method: fc.anything(),
      value: fc.anything(),
      ok: fc.anything(),
      error: fc.anything(),
    },
    { requiredKeys: ['type'] },
  );
  fc.assert(
    fc.property(fc.oneof(fc.anything({ withTypedArray: true, withMap: true, withSet: true, withBigInt: true }), messageLike), (value) => {
      for (const parse of [parseWorkerToNode, parseNodeToWorker, parseWorkerBootData] as Array<(v: unknown) => unknown>) {
        const parsed = parse(value);
        if (parsed instanceof ProtocolError) assert.match(parsed.message, /is malformed: /);
        // A request of an unknown method passes as its envelope alone (UnknownWorkerRequest).
        else if (typeof parsed === 'object' && parsed !== null && 'unknownMethod' in parsed) assert.deepEqual(parsed, { type: 'request', id: (value as { id: unknown }).id, method: (value as { method: unknown }).method, unknownMethod: true });
        else assert.equal(parsed, value);
      }
    }),
    { numRuns: 2000 },
  );
});

test('valid messages with one field replaced by a random value are rejected or still well-formed (fuzzed)', () => {
  const samples = validFromWorker.filter((m) => Object.keys(m).length > 1);
  fc.assert(
    fc.property(fc.constantFrom(...samples), fc.nat(), fc.anything({ withTypedArray: true }), (message, n, value) => {
      const keys = Object.keys(message).filter((k) => k !== 'type');
      const key = keys[n % keys.length] as string;
      const parsed = parseWorkerToNode({ ...message, [key]: value });
      if (parsed instanceof ProtocolError) assert.ok(parsed.field.startsWith(key), `${parsed.field} names ${key}`);
    }),
    { numRuns: 2000 },
  );
});

test('an error record that is not one decodes as a ProtocolError record, never throws', () => {
  const good = { name: 'TypeError', message: 'x', cause: { name: 'Error', message: 'y' }, props: { code: 'E' } };
  assert.deepEqual(decodeErrorRecord(encodeErrorRecord(good)), good);
  const bad: Array<[Uint8Array, RegExp]> = [
    [new Uint8Array([0x92, 0x01]), /could not be read: it is not msgpack/],
    [new Uint8Array([0xc1]), /its message is undefined, not a string/],
    [encodeErrorRecord(5 as never), /it is number, not a record/],
    [encodeErrorRecord({ name: 1, message: 'x' } as never), /its name is number, not a string/],
    [encodeErrorRecord({ name: 'E', message: 'x', props: { p: { deep: 1 } } } as never), /its prop "p" is not a primitive/],
    [encodeErrorRecord({ name: 'E', message: 'x', cause: 'because' } as never), /its cause: it is string, not a record/],
  ];
  for (const [data, expected] of bad) {
    const record = decodeErrorRecord(data);
    assert.equal(record.minirayClass, 'ProtocolError');
    assert.match(record.message, expected);
  }
  let deep: Record<string, unknown> = { name: 'E', message: 'bottom' };
  for (let i = 0; i < 40; i++) deep = { name: 'E', message: `level ${i}`, cause: deep };
  assert.match(decodeErrorRecord(encodeErrorRecord(deep as never)).message, /causes nest deeper than 32/);
});

test('a TaskSpec is a task or an actor call: isActorCall tells which, and narrows to ActorCallSpec', () => {
  const call = actorCall;
  const specs: TaskSpec[] = [taskSpec, call];
  const methods = specs.map((spec) => (isActorCall(spec) ? spec.method : undefined));
  assert.deepEqual(methods, [undefined, 'inc']);
  // Both kinds are TaskSpecs, and a spec that passed the validator is one of them.
  const asCall: ActorCallSpec = call;
  for (const spec of [asCall, taskSpec]) assert.ok(!(parseWorkerToNode({ type: 'submit', functions: [], tasks: [spec] }) instanceof ProtocolError));
});

test('the validators give branded IDs (by the type of what they return, with no copy): one kind is not taken for another', () => {
  const sent = { type: 'submit', functions: [], tasks: [{ ...taskSpec, dependencies: [ID2], nestedRefs: [ID2] }, actorCall] };
  const message = parseWorkerToNode(sent);
  assert.equal(message, sent, 'the message itself, typed: no copy, no per-field work');
  if (message instanceof ProtocolError || message.type !== 'submit') return assert.fail('a valid submit');
  const [task, call] = message.tasks as [TaskSpec, TaskSpec];
  const taskId: TaskIdHex = task.taskId;
  const returnId: ObjectIdHex = task.returnIds[0] as ObjectIdHex;
  const dependency: ObjectIdHex = task.dependencies[0] as ObjectIdHex;
  const nested: RefIdHex = task.nestedRefs?.[0] as RefIdHex;
  const ownerNode: NodeIdHex = task.owner.nodeId;
  const ownerWorker: WorkerIdHex = task.owner.workerId;
  if (!isActorCall(call)) return assert.fail('an actor call');
  const actorId: ActorIdHex = call.actorId;
  // @ts-expect-error a task's return ID is not an actor's
  const notActor: ActorIdHex = returnId;
  // @ts-expect-error an actor's ID is not an object's (nor may a get ask for one)
  const notObject: ObjectIdHex = actorId;
  // @ts-expect-error a node's ID is not a worker's
  const notWorker: WorkerIdHex = ownerNode;
  // @ts-expect-error a ref nested in a value may be an actor's handle: not taken for an object's ID
  const notOnlyObject: ObjectIdHex = nested;
  // @ts-expect-error a task's ID is not an object's
  const notReturn: ObjectIdHex = taskId;
  for (const id of [dependency, ownerWorker, notActor, notObject, notWorker, notOnlyObject, notReturn]) assert.equal(typeof id, 'string');

  const killed = parseWorkerToNode({ type: 'killActor', actorId: ID, noRestart: true });
  if (killed instanceof ProtocolError || killed.type !== 'killActor') return assert.fail('a valid killActor');
  const killedId: ActorIdHex = killed.actorId;
  const refs = parseWorkerToNode({ type: 'addRefs', ids: [ID], owners: [ID2] });
  if (refs instanceof ProtocolError || refs.type !== 'addRefs') return assert.fail('a valid addRefs');
  const owners: readonly NodeIdHex[] = refs.owners ?? [];
  const boot = parseWorkerBootData({ nodeId: ID, workerId: ID2, progress: new SharedArrayBuffer(4), preload: [] });
  if (boot instanceof ProtocolError) return assert.fail('valid boot data');
  const bootNode: NodeIdHex = boot.nodeId;
  const bootWorker: WorkerIdHex = boot.workerId;
  // @ts-expect-error the worker's own ID is not its node's
  const swapped: NodeIdHex = boot.workerId;
  assert.deepEqual([killedId, owners[0], bootNode, bootWorker, swapped], [ID, ID2, ID, ID2, ID2]);
});
