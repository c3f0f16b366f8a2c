import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../errors/index.js';
import type { ActorCallSpec, FunctionTaskSpec } from '../protocol/index.js';
import { parse } from './messages.js';

// IDs of any kind (`as never`: a test's text goes in task, object, actor, node and worker ID fields alike).
const ID: never = 'a'.repeat(32) as never;
const ID2: never = 'b'.repeat(32) as never;
const task: FunctionTaskSpec = {
  taskId: ID,
  functionId: ID2,
  name: 'f',
  args: new Uint8Array([0x90]),
  refArgPositions: [],
  dependencies: [],
  returnIds: [ID2],
  numCpus: 1,
  maxRetries: 0,
  retryExceptions: false,
  owner: { nodeId: ID, workerId: ID2 },
};
const { functionId: _functionId, ...base } = task; // an actor call has no functionId
const call: ActorCallSpec = { ...base, numCpus: 0, actorId: ID2, method: 'inc' };

test("a peer's executeTask carries a function task or an actor call", () => {
  for (const spec of [task, call]) {
    const parsed = parse.executeTask({ functions: [], args: [], spec });
    assert.ok(!(parsed instanceof ProtocolError), parsed instanceof ProtocolError ? parsed.message : '');
  }
});

test("a peer's executeTask of a spec that is both kinds, or neither, is refused with a ProtocolError", () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ ...call, functionId: '' }, /spec must be a valid spec .*functionId must be absent: an actor call/],
    [{ ...task, actorId: ID2 }, /spec must be a valid spec .*method must be a string/],
    [base, /spec must be a valid spec .*functionId must be a string, got undefined/],
  ];
  for (const [spec, expected] of cases) {
    const parsed = parse.executeTask({ functions: [], args: [], spec });
    assert.ok(parsed instanceof ProtocolError);
    assert.match(parsed.message, expected);
  }
});

test("a peer's ownerDied names objects by ID, each with its message; killActor may say the owner ended", () => {
  const body = { failed: [{ id: ID, message: 'ObjectRef(a…) was owned by worker w, which died.' }] };
  assert.deepEqual(parse.ownerDied(body), body);
  const cases: Array<[unknown, RegExp]> = [
    [{}, /failed must be an array/],
    [{ failed: [{ id: 'not an id', message: 'm' }] }, /failed\[0\]/],
    [{ failed: [{ id: ID }] }, /message must be a string/],
  ];
  for (const [bad, expected] of cases) {
    const parsed = parse.ownerDied(bad);
    assert.ok(parsed instanceof ProtocolError, JSON.stringify(bad));
    assert.match(parsed.message, expected);
  }
  const kill = parse.killActor({ actorId: ID, noRestart: true, outOfScope: true, ownerDied: 'its owner ended' });
  assert.ok(!(kill instanceof ProtocolError) && kill.ownerDied === 'its owner ended');
  assert.ok(parse.killActor({ actorId: ID, noRestart: true, outOfScope: true, ownerDied: 3 }) instanceof ProtocolError);
});
