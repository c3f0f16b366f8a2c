// Lineage bookkeeping and rebuild plans, over fake tasks (plain names): what is kept while results
// are referenced, what a spec pins, what is dropped past maxLineageBytes, and in what order lost
// objects are made again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Lineage, type LineageInfo } from './lineage.js';

const info = (returnIds: string[], dependencies: string[] = []): LineageInfo => ({ returnIds, dependencies });
const lostAll = (): boolean => true;

test('a spec is kept while one of its results is referenced, and goes with the last', () => {
  const lineage = new Lineage<string>(1 << 20);
  lineage.keep('t', info(['a', 'b']), 100);
  assert.equal(lineage.producerOf('a'), 't');
  assert.equal(lineage.bytes, 100);
  lineage.freed('a');
  assert.equal(lineage.producerOf('b'), 't', 'b still refers to it');
  lineage.freed('b');
  assert.equal(lineage.producerOf('b'), undefined);
  assert.equal(lineage.size, 0);
  assert.equal(lineage.bytes, 0);
});

test('keeping a task again (a rebuild that finished) changes nothing; a freed result of an unknown task is ignored', () => {
  const lineage = new Lineage<string>(1 << 20);
  lineage.keep('t', info(['a']), 100);
  lineage.keep('t', info(['a']), 100);
  assert.equal(lineage.bytes, 100);
  lineage.freed('zz');
  lineage.freed('a');
  lineage.freed('a');
  assert.equal(lineage.size, 0);
});

test("a spec pins its arguments' lineage: an argument whose refs are gone stays rebuildable while a task made from it is kept", () => {
  const lineage = new Lineage<string>(1 << 20);
  lineage.keep('make', info(['x']), 100);
  lineage.keep('double', info(['y'], ['x']), 100);
  lineage.freed('x'); // the driver dropped x; y was made from it
  assert.equal(lineage.producerOf('x'), 'make');
  // x is gone (freed) and y is lost: x first, then y.
  assert.deepEqual(lineage.plan('y', lostAll), { tasks: ['make', 'double'] });
  lineage.freed('y');
  assert.equal(lineage.size, 0, 'both go once y goes');
});

test('only lost arguments are rebuilt, each task once, arguments before the tasks that read them', () => {
  const lineage = new Lineage<string>(1 << 20);
  lineage.keep('a', info(['a1']), 100);
  lineage.keep('b', info(['b1']), 100);
  lineage.keep('c', info(['c1'], ['a1', 'b1', 'a1']), 100);
  lineage.keep('d', info(['d1'], ['c1', 'a1']), 100);
  assert.deepEqual(lineage.plan('d1', (id) => id !== 'b1'), { tasks: ['a', 'c', 'd'] });
  assert.deepEqual(lineage.plan('d1', (id) => id === 'c1'), { tasks: ['c', 'd'] }, "c's arguments are not lost: only c and d run");
  assert.deepEqual(lineage.plan('d1', () => false), { tasks: ['d'] });
});

test('an object with no kept spec (put(), an actor result) is not rebuilt; nor is one whose lost argument cannot be', () => {
  const lineage = new Lineage<string>(1 << 20);
  const none = lineage.plan('p', lostAll);
  assert.ok('reason' in none);
  assert.equal(none.kind, 'not-rebuilt');
  assert.match(none.reason, /ObjectRef\(p\) cannot be rebuilt: no task spec is kept for it \(it was made by put\(\) or by a method of an actor with maxTaskRetries 0/);
  lineage.keep('t', info(['r'], ['p']), 100);
  const argument = lineage.plan('r', lostAll);
  assert.ok('reason' in argument);
  assert.equal(argument.kind, 'argument');
  assert.match(argument.reason, /its argument ObjectRef\(p\) is lost too, and cannot be rebuilt: no task spec is kept/);
});

test('past maxLineageBytes the oldest specs are dropped, once with a warning, and their results say why they cannot be rebuilt', () => {
  const warnings: string[] = [];
  const lineage = new Lineage<string>(250, (tasks, bytes, max) => warnings.push(`${tasks} ${bytes} ${max}`));
  lineage.keep('t1', info(['a']), 100);
  lineage.keep('t2', info(['b']), 100);
  assert.deepEqual(warnings, []);
  lineage.keep('t3', info(['c']), 100);
  assert.deepEqual(warnings, ['1 100 250']);
  assert.equal(lineage.bytes, 200);
  assert.equal(lineage.producerOf('a'), undefined, 'the oldest went');
  assert.equal(lineage.producerOf('c'), 't3');
  const plan = lineage.plan('a', lostAll);
  assert.ok('reason' in plan);
  assert.equal(plan.kind, 'evicted');
  assert.match(plan.reason, /dropped to keep lineage under maxLineageBytes \(250 bytes; raise MINIRAY_MAX_LINEAGE_BYTES/);
  lineage.keep('t4', info(['d']), 100);
  assert.equal(warnings.length, 1, 'said once');
  lineage.freed('a');
  const forgotten = lineage.plan('a', lostAll);
  assert.ok('reason' in forgotten && forgotten.kind === 'not-rebuilt', 'a freed result is no longer remembered as evicted');
});

test('a dropped spec unpins its arguments: those no longer needed go too', () => {
  const lineage = new Lineage<string>(250, () => {});
  lineage.keep('make', info(['x']), 100);
  lineage.keep('use', info(['y'], ['x']), 100);
  lineage.freed('x'); // kept for y's sake only
  assert.equal(lineage.size, 2);
  lineage.keep('other', info(['z']), 100); // 300 > 250: 'make' (oldest) goes first... and is needed by nothing but 'use'
  assert.equal(lineage.producerOf('x'), undefined);
  assert.equal(lineage.producerOf('y'), 'use');
  assert.equal(lineage.bytes, 200);
  const plan = lineage.plan('y', lostAll);
  assert.ok('reason' in plan && plan.kind === 'argument', 'y cannot be rebuilt now that x cannot be');
});

test('maxLineageBytes 0 keeps nothing', () => {
  const lineage = new Lineage<string>(0);
  lineage.keep('t', info(['a']), 100);
  assert.equal(lineage.size, 0);
  assert.equal(lineage.producerOf('a'), undefined);
});

test('a result made again after it was freed counts as referenced until it is freed again', () => {
  const lineage = new Lineage<string>(1 << 20);
  lineage.keep('make', info(['x']), 100);
  lineage.keep('use', info(['y'], ['x']), 100);
  lineage.freed('x');
  lineage.revived('x'); // rebuilt as an argument of use
  lineage.freed('y');
  assert.equal(lineage.producerOf('x'), 'make', 'x is referenced again');
  lineage.freed('x');
  assert.equal(lineage.size, 0);
});
