import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CapturedVariableError,
  GetTimeoutError,
  InvalidArgumentError,
  InvalidOptionError,
  describeValue,
  MinirayError,
  ActorDiedError,
  ActorNotFoundError,
  QueueEmptyError,
  QueueFullError,
  AuthenticationError,
  ConnectionError,
  GcsStoreError,
  GcsUnavailableError,
  RequestTimeoutError,
  RequestCancelledError,
  ObjectLostError,
  OwnerDiedError,
  ObjectReconstructionFailedError,
  NodeDiedError,
  ObjectStoreFullError,
  OutOfMemoryError,
  SerializationError,
  TaskCancelledError,
  TaskError,
  WorkerCrashedError,
  fromErrorRecord,
  toErrorRecord,
  type ErrorRecord,
} from './index.js';

const BRAND = Symbol.for('miniray.error.classes');

/** What crossing a thread does to a record: a structured clone (no prototypes, no functions). */
const roundTrip = (thrown: unknown): Error => fromErrorRecord(structuredClone(toErrorRecord(thrown)));

class ValidationError extends Error {
  code: string;
  retryable: boolean;
  constructor(message: string) {
    super(message);
    this.name = 'ValidationError';
    this.code = 'E_VALIDATION';
    this.retryable = false;
  }
}

test('a built-in TypeError comes back as a TypeError with message and stack', () => {
  const original = new TypeError('bad type');
  const rebuilt = roundTrip(original);
  assert.ok(rebuilt instanceof TypeError);
  assert.equal(rebuilt.name, 'TypeError');
  assert.equal(rebuilt.message, 'bad type');
  assert.equal(rebuilt.stack, original.stack);
  assert.equal(Object.hasOwn(rebuilt, 'cause'), false);
});

test('every built-in error class comes back as itself', () => {
  for (const Builtin of [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError]) {
    const rebuilt = roundTrip(new Builtin('x'));
    assert.equal(Object.getPrototypeOf(rebuilt), Builtin.prototype, Builtin.name);
    assert.equal(rebuilt.name, Builtin.name);
  }
});

test('a user error subclass keeps its name, message, stack and primitive own properties', () => {
  const original = new ValidationError('field x is required');
  const record = toErrorRecord(original);
  assert.equal(record.name, 'ValidationError');
  assert.equal(record.minirayClass, undefined);
  const rebuilt = fromErrorRecord(structuredClone(record));
  assert.ok(rebuilt instanceof Error);
  assert.equal(rebuilt.name, 'ValidationError');
  assert.equal(rebuilt.message, 'field x is required');
  assert.equal(rebuilt.stack, original.stack);
  assert.equal((rebuilt as ValidationError).code, 'E_VALIDATION');
  assert.equal((rebuilt as ValidationError).retryable, false);
  assert.match(String(rebuilt), /^ValidationError: field x is required$/);
});

test('a Node-style system error keeps code, errno and syscall; non-primitive properties are dropped', () => {
  const original = Object.assign(new Error('ENOENT: no such file'), {
    code: 'ENOENT',
    errno: -2,
    syscall: 'open',
    path: '/nope',
    detail: { nested: true },
    big: 12n,
    nothing: null,
  });
  const record = toErrorRecord(original);
  assert.deepEqual(record.props, { code: 'ENOENT', errno: -2, syscall: 'open', path: '/nope', big: 12n, nothing: null });
  const rebuilt = fromErrorRecord(record) as unknown as Record<string, unknown>;
  assert.equal(rebuilt.code, 'ENOENT');
  assert.equal(rebuilt.errno, -2);
  assert.equal(rebuilt.syscall, 'open');
  assert.equal(rebuilt.big, 12n);
  assert.equal(rebuilt.nothing, null);
  assert.equal(rebuilt.detail, undefined);
});

test('TaskError comes back as a TaskError with functionName, taskId, cause and remoteStack', () => {
  const cause = new RangeError('index out of range');
  const original = new TaskError('task f failed: RangeError: index out of range', {
    functionName: 'f',
    taskId: '0123456789abcdef0123456789abcdef',
    cause,
  });
  const rebuilt = roundTrip(original);
  assert.ok(rebuilt instanceof TaskError);
  assert.ok(rebuilt instanceof MinirayError);
  assert.ok(rebuilt instanceof Error);
  assert.equal(rebuilt.name, 'TaskError');
  assert.equal(rebuilt.message, original.message);
  assert.equal(rebuilt.functionName, 'f');
  assert.equal(rebuilt.taskId, '0123456789abcdef0123456789abcdef');
  assert.equal(rebuilt.stack, original.stack);
  assert.ok(rebuilt.cause instanceof RangeError);
  assert.equal(rebuilt.cause.message, 'index out of range');
  assert.equal(rebuilt.remoteStack, cause.stack);
});

test('TaskError built from a hand-made record (as the worker sends) takes its fields from props', () => {
  const record: ErrorRecord = {
    name: 'TaskError',
    minirayClass: 'TaskError',
    message: 'task g failed: boom',
    stack: 'TaskError: task g failed: boom\n    at g (file:///app.js:1:1)',
    cause: { name: 'Error', message: 'boom', stack: 'Error: boom\n    at g (file:///app.js:1:1)' },
    props: { functionName: 'g', taskId: 'abc' },
  };
  const rebuilt = fromErrorRecord(record);
  assert.ok(rebuilt instanceof TaskError);
  assert.equal(rebuilt.functionName, 'g');
  assert.equal(rebuilt.taskId, 'abc');
  assert.equal(rebuilt.stack, record.stack);
  assert.equal(rebuilt.remoteStack, 'Error: boom\n    at g (file:///app.js:1:1)');
});

test('InvalidOptionError comes back with its option', () => {
  const rebuilt = roundTrip(new InvalidOptionError("init(): option 'numCpus' must be a number", 'numCpus'));
  assert.ok(rebuilt instanceof InvalidOptionError);
  assert.equal(rebuilt.option, 'numCpus');
  assert.equal(rebuilt.message, "init(): option 'numCpus' must be a number");
  assert.equal(Object.hasOwn(rebuilt, 'cause'), false);
});

test('CapturedVariableError comes back as CapturedVariableError', () => {
  const rebuilt = roundTrip(new CapturedVariableError('uses outer variables', ['a', 'b']));
  assert.ok(rebuilt instanceof CapturedVariableError);
  assert.equal(rebuilt.message, 'uses outer variables');
});

// ErrorRecord.props is documented as carrying "a miniray error's fields"; `variables` is the field
// that makes CapturedVariableError useful, and it is an array, which toErrorRecord drops.
test('CapturedVariableError keeps its variables across a boundary', () => {
  const rebuilt = roundTrip(new CapturedVariableError('uses outer variables', ['a', 'b']));
  assert.ok(rebuilt instanceof CapturedVariableError);
  assert.deepEqual(rebuilt.variables, ['a', 'b']);
});

test('every miniray class comes back as the same class with its name', () => {
  const classes = [
    MinirayError,
    WorkerCrashedError,
    OutOfMemoryError,
    GetTimeoutError,
    TaskCancelledError,
    ObjectLostError,
    OwnerDiedError,
    ObjectReconstructionFailedError,
    NodeDiedError,
    SerializationError,
    ObjectStoreFullError,
    ActorDiedError,
    ActorNotFoundError,
    QueueEmptyError,
    QueueFullError,
    AuthenticationError,
    ConnectionError,
    GcsUnavailableError,
    GcsStoreError,
    RequestTimeoutError,
    RequestCancelledError,
  ];
  for (const C of classes) {
    const original = new C(`a ${C.errorName}`);
    assert.equal(original.name, C.errorName);
    const record = toErrorRecord(original);
    assert.equal(record.minirayClass, C.errorName);
    const rebuilt = fromErrorRecord(structuredClone(record));
    assert.equal(Object.getPrototypeOf(rebuilt), C.prototype, C.errorName);
    assert.equal(rebuilt.name, C.errorName);
    assert.equal(rebuilt.message, `a ${C.errorName}`);
  }
});

test('OwnerDiedError and ObjectReconstructionFailedError are ObjectLostErrors across a boundary, not each other', () => {
  const ownerDied = roundTrip(new OwnerDiedError('owner gone'));
  const failed = roundTrip(new ObjectReconstructionFailedError('no retries left'));
  for (const error of [ownerDied, failed]) {
    assert.ok(error instanceof ObjectLostError);
    assert.ok(error instanceof MinirayError);
  }
  assert.ok(ownerDied instanceof OwnerDiedError && !(ownerDied instanceof ObjectReconstructionFailedError));
  assert.ok(failed instanceof ObjectReconstructionFailedError && !(failed instanceof OwnerDiedError));
  assert.ok(!(new ObjectLostError('x') instanceof OwnerDiedError));
});

test('OutOfMemoryError is a WorkerCrashedError and a MinirayError, not the reverse', () => {
  const oom = roundTrip(new OutOfMemoryError('heap limit'));
  assert.ok(oom instanceof OutOfMemoryError);
  assert.ok(oom instanceof WorkerCrashedError);
  assert.ok(oom instanceof MinirayError);
  assert.ok(!(oom instanceof TaskError));
  const crash = new WorkerCrashedError('exit 1');
  assert.ok(!(crash instanceof OutOfMemoryError));
});

test('cause chains are rebuilt level by level', () => {
  const root = Object.assign(new Error('disk on fire'), { code: 'EFIRE' });
  const middle = new TypeError('could not read', { cause: root });
  const top = new TaskError('task h failed', { functionName: 'h', taskId: 't', cause: middle });
  const rebuilt = roundTrip(top);
  assert.ok(rebuilt instanceof TaskError);
  const c1 = rebuilt.cause;
  assert.ok(c1 instanceof TypeError);
  assert.equal(c1.message, 'could not read');
  const c2 = c1.cause;
  assert.ok(c2 instanceof Error);
  assert.equal(c2.message, 'disk on fire');
  assert.equal((c2 as Error & { code?: string }).code, 'EFIRE');
  assert.equal(Object.hasOwn(c2, 'cause'), false);
});

test('a miniray error as the cause of a user error comes back as the miniray class', () => {
  const rebuilt = roundTrip(new Error('outer', { cause: new ObjectLostError('gone') }));
  assert.ok(rebuilt.cause instanceof ObjectLostError);
});

test('a self-referencing cause does not recurse forever', () => {
  const error = new Error('loop') as Error & { cause?: unknown };
  error.cause = error;
  const record = toErrorRecord(error);
  let depth = 0;
  for (let r: ErrorRecord | undefined = record; r; r = r.cause) depth++;
  assert.ok(depth > 1 && depth < 20, `depth ${depth}`);
  assert.ok(roundTrip(error) instanceof Error);
});

test('instanceof works for an object carrying the brand (another copy of miniray)', () => {
  const foreign = { [BRAND]: ['OutOfMemoryError', 'WorkerCrashedError', 'MinirayError'] };
  assert.ok((foreign as unknown) instanceof WorkerCrashedError);
  assert.ok((foreign as unknown) instanceof OutOfMemoryError);
  assert.ok((foreign as unknown) instanceof MinirayError);
  assert.ok(!((foreign as unknown) instanceof TaskError));
  assert.ok(!((foreign as unknown) instanceof GetTimeoutError));
});

test('instanceof is false without a proper brand', () => {
  assert.ok(!(new Error('plain') instanceof MinirayError));
  assert.ok(!((null as unknown) instanceof MinirayError));
  assert.ok(!(('MinirayError' as unknown) instanceof MinirayError));
  assert.ok(!(({ [BRAND]: 'MinirayError' } as unknown) instanceof MinirayError));
  assert.ok(!(({ name: 'MinirayError' } as unknown) instanceof MinirayError));
});

test('miniray errors carry their class chain as a non-enumerable brand', () => {
  const oom = new OutOfMemoryError('x');
  assert.deepEqual((oom as unknown as Record<symbol, unknown>)[BRAND], ['OutOfMemoryError', 'WorkerCrashedError', 'MinirayError']);
  assert.equal(Object.prototype.propertyIsEnumerable.call(oom, BRAND), false);
  assert.equal(JSON.stringify(Object.keys(oom)).includes('miniray'), false);
});

test('a thrown string becomes an Error with that message', () => {
  const record = toErrorRecord('plain string');
  assert.deepEqual(record, { name: 'Error', message: 'plain string' });
  const rebuilt = fromErrorRecord(record);
  assert.ok(rebuilt instanceof Error);
  assert.equal(rebuilt.message, 'plain string');
});

test('other non-Error thrown values are described in the message', () => {
  assert.equal(toErrorRecord(42).message, 'non-Error value thrown: 42');
  assert.equal(toErrorRecord(null).message, 'non-Error value thrown: null');
  assert.equal(toErrorRecord({ a: 1 }).message, 'non-Error value thrown: {"a":1}');
  assert.equal(toErrorRecord(undefined).message, 'non-Error value thrown: undefined');
  assert.equal(toErrorRecord(10n).message, 'non-Error value thrown: 10');
  for (const value of [42, null, undefined, { a: 1 }, 10n, Symbol('s'), [1, 2]]) {
    const record = toErrorRecord(value);
    assert.equal(record.name, 'Error');
    assert.ok(fromErrorRecord(record) instanceof Error);
  }
});

test('a non-Error value with a cycle does not make toErrorRecord throw', () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const record = toErrorRecord(cyclic);
  assert.equal(record.name, 'Error');
  assert.match(record.message, /^non-Error value thrown: /);
});

test('an unknown miniray class name falls back to a plain Error with that name', () => {
  const rebuilt = fromErrorRecord({ name: 'FutureError', minirayClass: 'FutureError', message: 'from a newer version' });
  assert.ok(rebuilt instanceof Error);
  assert.equal(rebuilt.name, 'FutureError');
  assert.equal(rebuilt.message, 'from a newer version');
});

test('InvalidArgumentError comes back with its argument and cause', () => {
  const rebuilt = roundTrip(new InvalidArgumentError('get() takes an ObjectRef; got number 42', 'refs', { cause: new Error('why') }));
  assert.ok(rebuilt instanceof InvalidArgumentError);
  assert.ok(rebuilt instanceof MinirayError);
  assert.ok(rebuilt instanceof TypeError);
  assert.equal(rebuilt.name, 'InvalidArgumentError');
  assert.equal(rebuilt.argument, 'refs');
  assert.equal((rebuilt.cause as Error).message, 'why');
});

test('InvalidOptionError keeps a cause given after the option name', () => {
  const error = new InvalidOptionError("f(): option 'x' could not be read", 'x', { cause: new TypeError('getter') });
  assert.equal(error.option, 'x');
  assert.ok(error.cause instanceof TypeError);
});

test('describeValue says what any value is, and never throws', () => {
  assert.equal(describeValue(42), 'number 42');
  assert.equal(describeValue('x'), 'string "x"');
  assert.equal(describeValue(1n), 'bigint 1n');
  assert.equal(describeValue(Symbol('s')), 'symbol Symbol(s)');
  assert.equal(describeValue(null), 'null');
  assert.equal(describeValue(undefined), 'undefined');
  assert.equal(describeValue([1, 2]), 'an array of length 2');
  assert.equal(describeValue(new Map()), 'an object (Map)');
  assert.equal(describeValue(Object.create(null)), 'an object');
  assert.equal(describeValue(function named() {}), 'function named');
  assert.match(describeValue('y'.repeat(100)), /^string "y{40}\.\.\."$/);
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  assert.equal(describeValue(revoked.proxy), 'a value of type object');
  const hostile = new Proxy({}, { getPrototypeOf() { throw new Error('no'); } });
  assert.equal(describeValue(hostile), 'a value of type object');
});

test('toErrorRecord never throws, whatever is thrown (a worker must always be able to report)', () => {
  const hostile: unknown[] = [
    new Proxy(new Error('proxied'), { get() { throw new Error('trap'); } }),
    new Proxy({}, { getPrototypeOf() { throw new Error('proto trap'); } }),
    Object.defineProperty(new Error('e'), 'code', { enumerable: true, get() { throw new Error('code getter'); } }),
    Object.defineProperty(new Error('e'), 'message', { get() { throw new Error('message getter'); } }),
    Object.assign(new Error('with a proxy array prop'), { list: new Proxy([1], { get() { throw new Error('array trap'); } }) }),
    { toString() { throw new Error('toString'); }, toJSON() { throw new Error('toJSON'); } },
    Symbol('thrown'),
    5n,
    null,
    undefined,
  ];
  const cyclic = new Error('cyclic');
  (cyclic as { cause?: unknown }).cause = cyclic;
  hostile.push(cyclic);
  for (const thrown of hostile) {
    const record = toErrorRecord(thrown);
    assert.equal(typeof record.name, 'string');
    assert.equal(typeof record.message, 'string');
    structuredClone(record); // it can cross a boundary
    assert.ok(fromErrorRecord(record) instanceof Error);
  }
  const withCode = toErrorRecord(Object.defineProperty(new Error('e'), 'code', { enumerable: true, get() { throw new Error('x'); } }));
  assert.equal(withCode.message, 'e');
  assert.equal(withCode.props, undefined);
});

test('InvalidArgumentError is a TypeError (as JavaScript\'s wrong-argument errors) and a MinirayError', () => {
  const error = new InvalidArgumentError('get() takes an ObjectRef; got number 42', 'refs');
  assert.ok(error instanceof TypeError);
  assert.ok(error instanceof MinirayError);
  assert.ok(error instanceof InvalidArgumentError);
  assert.equal(String(error), 'InvalidArgumentError: get() takes an ObjectRef; got number 42');
  assert.ok(!(new TypeError('plain') instanceof MinirayError), 'a plain TypeError is not a MinirayError');
  assert.ok(!(new MinirayError('m') instanceof InvalidArgumentError));
  assert.ok(!(new InvalidOptionError('o', 'x') instanceof InvalidArgumentError));
  assert.equal(toErrorRecord(error).minirayClass, 'InvalidArgumentError');
});
