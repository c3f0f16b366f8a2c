// Ray's runtime_env inheritance (envVars merge, the child's winning; other fields replaced) and
// the pool key, plus the validators' checks of the new fields.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtocolError } from '../errors/index.js';
import { mergeRuntimeEnv, parseWorkerToNode, runtimeEnvKey } from './index.js';

test('mergeRuntimeEnv: envVars merge with the child winning; workingDir is the child\'s or the parent\'s', () => {
  const parent = { envVars: { A: 'parent', B: 'parent' }, workingDir: '/parent' };
  assert.deepEqual(mergeRuntimeEnv(parent, { envVars: { B: 'child', C: 'child' } }), { envVars: { A: 'parent', B: 'child', C: 'child' }, workingDir: '/parent' });
  assert.deepEqual(mergeRuntimeEnv(parent, { workingDir: '/child' }), { envVars: { A: 'parent', B: 'parent' }, workingDir: '/child' });
  assert.equal(mergeRuntimeEnv(parent, undefined), parent);
  assert.equal(mergeRuntimeEnv(undefined, {}), undefined);
  assert.equal(mergeRuntimeEnv(undefined, { envVars: {} }), undefined);
});

test('runtimeEnvKey: the same for the same environment whatever the order; empty is no environment', () => {
  assert.equal(runtimeEnvKey({ envVars: { A: '1', B: '2' } }), runtimeEnvKey({ envVars: { B: '2', A: '1' } }));
  assert.notEqual(runtimeEnvKey({ envVars: { A: '1' } }), runtimeEnvKey({ envVars: { A: '2' } }));
  assert.notEqual(runtimeEnvKey({ envVars: { A: '1' } }), runtimeEnvKey({ envVars: { A: '1' }, workingDir: '/x' }));
  assert.equal(runtimeEnvKey(undefined), '');
  assert.equal(runtimeEnvKey({ envVars: {} }), '');
});

const id = 'a'.repeat(32);
const spec = (extra: object) => ({
  taskId: id, functionId: 'f', name: 'f', args: new Uint8Array(1), refArgPositions: [], dependencies: [], returnIds: [id],
  numCpus: 1, maxRetries: 0, retryExceptions: false, owner: { nodeId: id, workerId: id }, ...extra,
});

test('a submitted spec\'s runtimeEnv and parentTaskId are checked at the boundary', () => {
  const submit = (extra: object) => parseWorkerToNode([{ type: 'submit', functions: [], tasks: [spec(extra)] }][0]);
  assert.ok(!(submit({ runtimeEnv: { envVars: { A: '1' }, workingDir: '/tmp' }, parentTaskId: id }) instanceof ProtocolError));
  assert.match(String(submit({ runtimeEnv: { envVars: { A: 1 } } })), /runtimeEnv\.envVars\.A/);
  assert.match(String(submit({ runtimeEnv: { workingDir: 'relative' } })), /absolute path/);
  assert.match(String(submit({ runtimeEnv: { pip: [] } })), /runtimeEnv\.pip/);
  assert.match(String(submit({ parentTaskId: 'nope' })), /parentTaskId/);
  const cancel = parseWorkerToNode({ type: 'cancel', objectId: id, force: false, recursive: 'yes' });
  assert.ok(cancel instanceof ProtocolError && /recursive/.test(cancel.message));
});
