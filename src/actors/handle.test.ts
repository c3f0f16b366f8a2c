// The handle's wire shapes (merge of generators and actor lifetimes): the current shape carries
// owner, methodOptions and generatorMethods, and both older shapes are still read.
import type { ActorIdHex } from '../ids/index.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pack, unpack } from 'msgpackr';
import { ActorHandleImpl } from './handle.js';
import { EXTENSION_TYPES } from '../serialization/index.js';

/** An actor-handle extension holding `payload`, as a sender of that shape wrote it (msgpackr's write: a fixext1 marker, then the value). */
function handleBytes(payload: unknown[]): Uint8Array {
  return new Uint8Array([0xd4, EXTENSION_TYPES.actorHandle, 0x00, ...pack(payload)]);
}

const owner = { nodeId: 'a'.repeat(32), workerId: 'b'.repeat(32) };
const id = 'c'.repeat(32) as ActorIdHex;

test('the current shape round-trips owner, methodOptions and generatorMethods', () => {
  const handle = new ActorHandleImpl({ actorId: id, className: 'C', methodNames: ['f', 'g'], owner, methodOptions: { f: { numReturns: 2 } }, generatorMethods: ['g'] });
  const back = unpack(pack(handle)) as ActorHandleImpl;
  assert.ok(back instanceof ActorHandleImpl);
  assert.deepEqual(back.info, handle.info);
});

test("a generator-only sender's [id, class, methods, generatorMethods] is read", () => {
  const back = unpack(handleBytes([id, 'C', ['f', 'g'], ['g']])) as ActorHandleImpl;
  assert.deepEqual(back.info, { actorId: id, className: 'C', methodNames: ['f', 'g'], generatorMethods: ['g'] });
});

test("a lifetimes sender's [id, class, methods, owner, methodOptions] is read", () => {
  const back = unpack(handleBytes([id, 'C', ['f'], owner, { f: { concurrencyGroup: 'io' } }])) as ActorHandleImpl;
  assert.deepEqual(back.info, { actorId: id, className: 'C', methodNames: ['f'], owner, methodOptions: { f: { concurrencyGroup: 'io' } } });
  const detached = unpack(handleBytes([id, 'C', ['f'], null, null])) as ActorHandleImpl;
  assert.deepEqual(detached.info, { actorId: id, className: 'C', methodNames: ['f'] });
});
