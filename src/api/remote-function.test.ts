// Remote functions and actor classes that arrive inside a value get their options checked as the
// user's are, so forged bytes cannot bring in what remote() refuses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SerializationError } from '../errors/index.js';
import { decodeValue, encodeValue, type FunctionDescriptor } from '../serialization/index.js';
import { defaultActorOptions, defaultTaskOptions, generatorTaskOptions, mergeTaskOptions } from './options.js';
import { ActorClassImpl, RemoteFunctionImpl } from './remote-function.js';

const descriptor: FunctionDescriptor = { kind: 'source', id: 'f'.repeat(32), name: 'f', source: '(a) => a' };

test('a remote function decodes with its options', () => {
  const fn = new RemoteFunctionImpl(descriptor, { ...defaultTaskOptions(), numReturns: 2 });
  const back = decodeValue(encodeValue(fn, 'a value').data) as RemoteFunctionImpl;
  assert.ok(back instanceof RemoteFunctionImpl);
  assert.equal(back.taskOptions.numReturns, 2);
});

test('forged options of a remote function or actor class are refused at decode with SerializationError', () => {
  const forgedFn = new RemoteFunctionImpl(descriptor, { ...defaultTaskOptions(), numReturns: 2 ** 31 });
  assert.throws(() => decodeValue(encodeValue(forgedFn, 'a value').data), (error: unknown) => {
    assert.ok(error instanceof SerializationError);
    assert.match(error.message, /received a malformed remote function: .*numReturns/);
    return true;
  });
  const forgedClass = new ActorClassImpl(descriptor, ['m'], { ...defaultActorOptions(false), isolation: 'elsewhere' as 'thread' });
  assert.throws(() => decodeValue(encodeValue(forgedClass, 'a value').data), /received a malformed actor class: .*isolation/);
});

// generators
test("a generator's remote function and an actor class with generator methods decode as they were", () => {
  const streaming = new RemoteFunctionImpl(descriptor, mergeTaskOptions('test', generatorTaskOptions(), { generatorBackpressureNumObjects: 3 }));
  const back = decodeValue(encodeValue(streaming, 'a value').data) as RemoteFunctionImpl;
  assert.deepEqual(back.taskOptions.returns, { kind: 'streaming', backpressure: 3 });
  assert.equal(back.taskOptions.isGenerator, true);
  const fixed = new RemoteFunctionImpl(descriptor, mergeTaskOptions('test', generatorTaskOptions(), { numReturns: 2 }));
  assert.deepEqual((decodeValue(encodeValue(fixed, 'a value').data) as RemoteFunctionImpl).taskOptions.returns, { kind: 'static', count: 2 });
  const plain = decodeValue(encodeValue(new RemoteFunctionImpl(descriptor, defaultTaskOptions()), 'a value').data) as RemoteFunctionImpl;
  assert.equal(plain.taskOptions.returns, undefined);
  const cls = new ActorClassImpl(descriptor, ['m', 'g'], defaultActorOptions(false), ['g']);
  assert.deepEqual((decodeValue(encodeValue(cls, 'a value').data) as ActorClassImpl).generatorMethods, ['g']);
});
