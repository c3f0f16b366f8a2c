import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidArgumentError, MinirayError } from '../errors/index.js';
import {
  ActorID,
  JobID,
  NodeID,
  ObjectID,
  TaskID,
  UniqueId,
  WorkerID,
  hexOf,
  isIdHex,
  randomHex,
  type ActorIdHex,
  type NodeIdHex,
  type ObjectIdHex,
  type RefIdHex,
  type TaskIdHex,
  type WorkerIdHex,
} from './index.js';

const HEX_32 = /^[0-9a-f]{32}$/;
type AnyIdClass = {
  readonly name: string;
  new (hex: string): UniqueId;
  fromRandom(): UniqueId;
  fromHex(hex: string): UniqueId;
};
const ALL_CLASSES: readonly AnyIdClass[] = [ObjectID, TaskID, ActorID, NodeID, WorkerID, JobID];

test('ObjectID.fromRandom gives 32 lowercase hex characters', () => {
  for (let i = 0; i < 50; i++) {
    const id = ObjectID.fromRandom();
    assert.ok(id instanceof ObjectID);
    assert.match(id.toHex(), HEX_32);
  }
});

test('ObjectID.fromRandom is unique over many draws (more than one random block)', () => {
  const seen = new Set<string>();
  const draws = 10_000;
  for (let i = 0; i < draws; i++) seen.add(ObjectID.fromRandom().toHex());
  assert.equal(seen.size, draws);
});

test('randomHex gives distinct 32-char lowercase hex strings', () => {
  const a = randomHex();
  const b = randomHex();
  assert.match(a, HEX_32);
  assert.match(b, HEX_32);
  assert.notEqual(a, b);
});

test('fromHex round-trips through toHex', () => {
  const hex = '0123456789abcdef0123456789abcdef';
  const id = ObjectID.fromHex(hex);
  assert.ok(id instanceof ObjectID);
  assert.equal(id.toHex(), hex);
  const random = ObjectID.fromRandom();
  assert.ok(ObjectID.fromHex(random.toHex()).equals(random));
});

test('fromHex rejects bad input with a message naming the class, the rule and the value', () => {
  const bad: unknown[] = [
    '',
    '0123456789abcdef0123456789abcde', // 31 chars
    '0123456789abcdef0123456789abcdef0', // 33 chars
    '0123456789ABCDEF0123456789ABCDEF', // upper case
    '0123456789abcdef0123456789abcdeg', // non-hex
    ' 0123456789abcdef0123456789abcdef',
    '0123456789abcdef0123456789abcdef\n',
    42,
    null,
    undefined,
    1n, // JSON.stringify throws on a BigInt: the message must not be built with it
    Symbol('id'),
    { toHex: () => 'x' },
    Object.create(null),
  ];
  for (const value of bad) {
    assert.throws(
      () => ObjectID.fromHex(value as string),
      (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, `expected InvalidArgumentError for ${typeof value}`);
        assert.ok(error instanceof MinirayError);
        assert.equal(error.argument, 'hex');
        assert.match(error.message, /^ObjectID\.fromHex\(\) /);
        assert.match(error.message, /32 lowercase hex characters/);
        if (typeof value === 'string') assert.ok(error.message.includes(JSON.stringify(value)), error.message);
        return true;
      },
    );
  }
});

test('fromHex on a subclass names that subclass in its error', () => {
  assert.throws(
    () => TaskID.fromHex('nope'),
    /^InvalidArgumentError: TaskID\.fromHex\(\) takes 32 lowercase hex characters \(as toHex\(\) gives\), got string "nope"$/,
  );
  assert.throws(() => ObjectID.fromHex(1n as unknown as string), /^InvalidArgumentError: ObjectID\.fromHex\(\) .* got bigint 1n$/);
});

test('equals: same class and hex are equal; different hex or class are not', () => {
  const hex = 'ffffffffffffffffffffffffffffffff';
  const a = ObjectID.fromHex(hex);
  const b = ObjectID.fromHex(hex);
  assert.notEqual(a, b); // distinct instances
  assert.ok(a.equals(b));
  assert.ok(b.equals(a));
  assert.ok(a.equals(a));
  assert.ok(!a.equals(ObjectID.fromHex('fffffffffffffffffffffffffffffffe')));
  const task = TaskID.fromHex(hex);
  assert.ok(!a.equals(task), 'an ObjectID must not equal a TaskID with the same hex');
  assert.ok(!task.equals(a));
  assert.ok(!a.equals({ hex, toHex: () => hex } as unknown as ObjectID));
});

test('key is the hex and works as a Map key across instances', () => {
  const map = new Map<string, number>();
  const id = ObjectID.fromRandom();
  map.set(id.key, 1);
  assert.equal(id.key, id.toHex());
  assert.equal(map.get(ObjectID.fromHex(id.toHex()).key), 1);
  assert.equal(map.get(ObjectID.fromRandom().key), undefined);
});

test('toBytes returns the 16 bytes the hex encodes', () => {
  const hex = '000102030405060708090a0b0c0d0eff';
  const bytes = ObjectID.fromHex(hex).toBytes();
  assert.ok(bytes instanceof Uint8Array);
  assert.equal(bytes.length, 16);
  assert.deepEqual([...bytes], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 255]);
  assert.equal(Buffer.from(bytes).toString('hex'), hex);
  assert.equal(ObjectID.fromRandom().toBytes().length, 16);
});

test('toBytes returns a fresh copy each time', () => {
  const id = ObjectID.fromHex('00000000000000000000000000000000');
  const bytes = id.toBytes();
  bytes[0] = 7;
  assert.equal(id.toBytes()[0], 0);
  assert.equal(id.toHex(), '00000000000000000000000000000000');
});

test('toString names the class and hex', () => {
  const hex = 'abcdefabcdefabcdefabcdefabcdefab';
  assert.equal(String(ObjectID.fromHex(hex)), `ObjectID(${hex})`);
  assert.equal(String(WorkerID.fromHex(hex)), `WorkerID(${hex})`);
});

for (const IdClass of ALL_CLASSES) {
  test(`${IdClass.name}: fromRandom, fromHex, equals, toBytes`, () => {
    const id = IdClass.fromRandom();
    assert.ok(id instanceof IdClass);
    assert.ok(id instanceof UniqueId);
    assert.match(id.toHex(), HEX_32);
    const again = IdClass.fromHex(id.toHex());
    assert.ok(again instanceof IdClass);
    assert.ok(again.equals(id));
    assert.equal(again.key, id.key);
    assert.equal(id.toBytes().length, 16);
    assert.throws(() => IdClass.fromHex('xyz'), new RegExp(`^InvalidArgumentError: ${IdClass.name}\\.fromHex`));
  });
}

test('IDs of different classes with the same hex are never equal', () => {
  const hex = ObjectID.fromRandom().toHex();
  const ids = ALL_CLASSES.map((C) => C.fromHex(hex));
  for (let i = 0; i < ids.length; i++) {
    for (let j = 0; j < ids.length; j++) {
      assert.equal((ids[i] as UniqueId).equals(ids[j] as UniqueId), i === j, `${ids[i]} vs ${ids[j]}`);
    }
  }
});

test('randomHex<H>() gives branded hex text: one kind of ID is not taken for another', () => {
  const task = randomHex<TaskIdHex>();
  const object = randomHex<ObjectIdHex>();
  const made = randomHex<TaskIdHex>();
  // @ts-expect-error an object's ID is not a task's
  const wrong: TaskIdHex = object;
  const asText: string = task; // and each is still a string (zero cost: the brand is only a type)
  assert.equal(typeof asText, 'string');
  assert.ok(isIdHex(made) && isIdHex(wrong));
});

test('hexOf(id) gives the hex of an ID object with its kind: a ref\'s ObjectID is no actor\'s ID', () => {
  const object = ObjectID.fromRandom();
  const actor = ActorID.fromRandom();
  const objectHex: ObjectIdHex = hexOf(object);
  const actorHex: ActorIdHex = hexOf(actor);
  const nodeHex: NodeIdHex = hexOf(NodeID.fromRandom());
  const workerHex: WorkerIdHex = hexOf(WorkerID.fromRandom());
  // @ts-expect-error an object's ID is not an actor's
  const wrongActor: ActorIdHex = hexOf(object);
  // @ts-expect-error nor a node's a worker's
  const wrongWorker: WorkerIdHex = nodeHex;
  // The public toHex() stays plain text, as users see it (no brand asked of them).
  // @ts-expect-error toHex() is a string, not an ActorIdHex
  const fromPublic: ActorIdHex = actor.toHex();
  assert.equal(objectHex, object.toHex());
  assert.equal(actorHex, actor.toHex());
  assert.ok([nodeHex, workerHex, wrongActor, wrongWorker, fromPublic].every((hex) => isIdHex(hex)));
});

test('a ref names an object or an actor (RefIdHex); a task\'s ID is neither', () => {
  const refs: RefIdHex[] = [randomHex<ObjectIdHex>(), randomHex<ActorIdHex>()];
  // @ts-expect-error a task's ID is not a ref's
  refs.push(randomHex<TaskIdHex>());
  // @ts-expect-error a ref's ID may be an actor's: not taken where only an object's is
  const object: ObjectIdHex = refs[0] as RefIdHex;
  assert.equal(refs.length, 3);
  assert.ok(isIdHex(object));
});

test('isIdHex<H>() brands the text it has checked', () => {
  const text: string = randomHex();
  // @ts-expect-error unchecked text is no node's ID
  const unchecked: NodeIdHex = text;
  if (!isIdHex<NodeIdHex>(text)) assert.fail('random hex is an ID');
  const checked: NodeIdHex = text;
  assert.equal(checked, unchecked);
  assert.equal(isIdHex<NodeIdHex>('not hex'), false);
});
