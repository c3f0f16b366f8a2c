// The shared-memory object store as a user sees it (issue 3): large binary values are read as
// views of shared memory, not copies, in the driver and in workers; what memory() reports; clear
// errors when the store cannot take an object; the seed's ObjectStore API.
// Reference counting: object-store-refcount.test.ts. Spilling: object-store-spill.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ObjectID,
  ObjectRef,
  ObjectStore,
  ObjectStoreFullError,
  get,
  init,
  memory,
  put,
  remote,
  shutdown,
  type ObjectInfo,
} from 'miniray';
import { Gate } from '../fixtures/coordination.js';
import { putFromWorker } from '../fixtures/tasks.js';
import {
  describeArgument,
  describeNested,
  holdUntilOpen,
  makeFloats,
  makeNestedBinaries,
  putInWorker,
  sumOf,
  writeOrRead,
} from '../fixtures/object-store-tasks.js';

const MB = 1024 * 1024;
const OUT_OF_BAND = 100 * 1024; // values this large go to shared memory (Ray's inline threshold)

const identity = remote((value: unknown) => value);

/** The memory under a binary value. */
const bufferOf = (value: ArrayBufferView | ArrayBuffer) => (value instanceof ArrayBuffer ? value : value.buffer);
const isShared = (value: ArrayBufferView | ArrayBuffer) => bufferOf(value) instanceof SharedArrayBuffer;
const bytesOf = (value: ArrayBufferView | ArrayBuffer) =>
  value instanceof ArrayBuffer ? new Uint8Array(value) : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);

/** memory()'s entry for a ref. */
function entryOf(ref: ObjectRef): ObjectInfo | undefined {
  return memory().objects.find((object) => object.id === ref.hex);
}

/** One of each binary kind, each large enough to go out of band, with recognisable contents. */
function everyBinaryKind() {
  const n = OUT_OF_BAND * 2; // bytes of each
  const fill = <T extends { length: number; [i: number]: number | bigint }>(array: T, value: (i: number) => number | bigint): T => {
    for (let i = 0; i < array.length; i++) array[i] = value(i) as never;
    return array;
  };
  const dataView = new DataView(new ArrayBuffer(n));
  for (let i = 0; i < n; i += 4) dataView.setUint32(i, i * 2654435761, true);
  return {
    int8: fill(new Int8Array(n), (i) => (i % 256) - 128),
    uint8: fill(new Uint8Array(n), (i) => i % 251),
    uint8Clamped: fill(new Uint8ClampedArray(n), (i) => i % 256),
    int16: fill(new Int16Array(n / 2), (i) => (i % 65536) - 32768),
    uint16: fill(new Uint16Array(n / 2), (i) => (i * 7) % 65536),
    int32: fill(new Int32Array(n / 4), (i) => -i * 1000),
    uint32: fill(new Uint32Array(n / 4), (i) => i * 3000),
    float32: fill(new Float32Array(n / 4), (i) => i / 3),
    float64: fill(new Float64Array(n / 8), (i) => Math.sqrt(i) - 1e6),
    bigInt64: fill(new BigInt64Array(n / 8), (i) => BigInt(i) * -(2n ** 40n)),
    bigUint64: fill(new BigUint64Array(n / 8), (i) => BigInt(i) * 2n ** 40n),
    buffer: Buffer.alloc(n, 'miniray'),
    dataView,
  };
}
type BinaryKinds = ReturnType<typeof everyBinaryKind>;

/** Checks that `back` holds the same kinds, with the same bytes, as `original`, all views of shared memory. */
function assertSameBinaries(back: BinaryKinds, original: BinaryKinds, where: string): void {
  for (const key of Object.keys(original) as (keyof BinaryKinds)[]) {
    const value = back[key];
    const expected = original[key];
    assert.equal(value.constructor, expected.constructor, `${where}: ${key} came back as ${value.constructor.name}`);
    assert.equal(value.byteLength, expected.byteLength, `${where}: ${key} length`);
    assert.ok(isShared(value), `${where}: ${key} is not a view of shared memory`);
    assert.ok(Buffer.from(bytesOf(value)).equals(Buffer.from(bytesOf(expected))), `${where}: ${key} contents differ`);
  }
  assert.ok(Buffer.isBuffer(back.buffer), `${where}: the Buffer is not a Buffer`);
}

describe('object store: zero-copy reads', () => {
  before(() => init({ numWorkers: 2, objectStoreMemory: 1024 * MB }));
  after(() => shutdown());

  test('get of a large Float64Array gives a view of shared memory with the values put', async () => {
    const values = new Float64Array(MB).map((_, i) => i * 0.25);
    const ref = put(values);
    const back = await get(ref);
    assert.ok(back instanceof Float64Array);
    assert.ok(back.buffer instanceof SharedArrayBuffer, 'the value is a copy, not a view of the arena');
    assert.equal(back.length, values.length);
    assert.deepEqual(back, values);
    // The caller's own array is not the stored object: the put copied it once.
    values[0] = 123;
    assert.equal((await get(ref))[0], 0);
  });

  test('two gets of one object read the same memory (a write through one is seen by the other; test only)', async () => {
    const ref = put(new Float64Array(MB / 8).fill(1));
    const [first, second] = [await get(ref), await get(ref)];
    first[5] = 42; // objects are immutable once sealed: only a test writes into one, to prove sharing
    assert.equal(second[5], 42);
  });

  test('a write through one worker\'s view is seen by another worker and by the driver (shared memory; test only)', async () => {
    const ref = put(new Float64Array(MB / 8).fill(1)); // 1 MB
    const driverView = await get(ref);
    const channel = `object-store-${ObjectID.fromRandom().toHex()}`;
    // The two tasks meet before the write, so they run at once, on two different workers, each
    // with the view it was given when it started.
    const [writer, reader] = await get(
      [writeOrRead.remote(ref, channel, 'writer', 7, 99.5), writeOrRead.remote(ref, channel, 'reader', 7, 0)],
      { timeoutMs: 20_000 },
    );
    assert.notEqual(writer.workerId, reader.workerId, 'the two tasks ran on the same worker');
    assert.equal(writer.shared, true, 'the writer was given a copy');
    assert.equal(reader.shared, true, 'the reader was given a copy');
    assert.equal(reader.before, 1);
    assert.equal(reader.seen, 99.5, 'the reader did not see the writer\'s write');
    assert.equal(driverView[7], 99.5, 'the driver\'s view did not see the worker\'s write');
    assert.equal((await get(ref))[7], 99.5);
  });

  test('a task given a large ref argument receives a view of shared memory', async () => {
    const values = new Float64Array(MB / 8).map((_, i) => i);
    const ref = put(values);
    const shape = await get(describeArgument.remote(ref));
    assert.deepEqual({ kind: shape.kind, shared: shape.shared, byteLength: shape.byteLength }, { kind: 'Float64Array', shared: true, byteLength: MB });
    assert.equal(await get(sumOf.remote(ref)), ((values.length - 1) * values.length) / 2);
  });

  test('a large typed array passed directly as an argument is put first and read as a view', async () => {
    const values = new Float64Array(MB / 8).fill(2);
    const shape = await get(describeArgument.remote(values));
    assert.equal(shape.kind, 'Float64Array');
    assert.equal(shape.shared, true, 'a large argument was copied into the task message');
    assert.equal(await get(sumOf.remote(values)), 2 * values.length);
  });

  test('a worker reading a ref nested in its argument with get() gets a view of shared memory', async () => {
    const ref = put(new Int32Array(MB / 4).fill(-1));
    const shape = await get(describeNested.remote({ ref }));
    assert.equal(shape.kind, 'Int32Array');
    assert.equal(shape.shared, true);
    assert.equal(shape.byteLength, MB);
  });

  test('a worker\'s large return value reaches the driver as a view of shared memory', async () => {
    const length = MB; // 8 MB of float64
    const back = await get(makeFloats.remote(length));
    assert.ok(back instanceof Float64Array);
    assert.ok(back.buffer instanceof SharedArrayBuffer, 'the result was copied');
    assert.equal(back.length, length);
    assert.equal(back[0], 0);
    assert.equal(back[12345], 12345 * 0.5);
    assert.equal(back[length - 1], (length - 1) * 0.5);
  });

  test('large binary values nested inside a worker\'s return value (object, Map) are views', async () => {
    const back = await get(makeNestedBinaries.remote(OUT_OF_BAND * 4));
    assert.ok(back.bytes instanceof Uint8Array && isShared(back.bytes));
    assert.ok(back.bytes.every((b) => b === 7));
    const ints = back.map.get('ints') as Int32Array;
    assert.ok(ints instanceof Int32Array && isShared(ints));
    assert.ok(ints.every((n) => n === -3));
  });

  test('Buffer, every TypedArray kind and DataView round-trip with their types and contents, nested in an object', async () => {
    const original = everyBinaryKind();
    assertSameBinaries(await get(put(everyBinaryKind())), original, 'put/get');
    assertSameBinaries((await get(identity.remote(everyBinaryKind()))) as BinaryKinds, original, 'through a task');
  });

  test('binary values nested in Maps and arrays round-trip as views of shared memory', async () => {
    const original = everyBinaryKind();
    const value = new Map<string, unknown>([
      ['all', [everyBinaryKind()]],
      ['deeper', new Map([['floats', original.float64]])],
    ]);
    const back = (await get(put(value))) as typeof value;
    assertSameBinaries((back.get('all') as BinaryKinds[])[0] as BinaryKinds, original, 'in a Map in an array');
    const floats = (back.get('deeper') as Map<string, Float64Array>).get('floats') as Float64Array;
    assert.ok(isShared(floats));
    assert.deepEqual(floats, original.float64);
  });

  test('a view at an offset into a larger buffer round-trips as just that view', async () => {
    const backing = new Float64Array(MB / 8).map((_, i) => i);
    const window = backing.subarray(1000, 1000 + OUT_OF_BAND / 8 + 1); // 1 element more than the threshold
    const back = await get(put(window));
    assert.ok(back instanceof Float64Array && isShared(back));
    assert.equal(back.length, window.length);
    assert.equal(back[0], 1000);
    assert.equal(back[back.length - 1], 1000 + window.length - 1);
  });

  test('an ArrayBuffer round-trips as a copy of its own (an ArrayBuffer cannot be a view), with its contents', async () => {
    const original = new Uint8Array(OUT_OF_BAND * 3).map((_, i) => i % 253).buffer;
    const ref = put(original);
    const back = await get(ref);
    assert.ok(back instanceof ArrayBuffer, `came back as ${Object.prototype.toString.call(back)}`);
    assert.ok(!(back instanceof SharedArrayBuffer));
    assert.equal(back.byteLength, original.byteLength);
    assert.ok(Buffer.from(back).equals(Buffer.from(original)));
    // A copy: changing it changes neither the stored object nor another get.
    new Uint8Array(back)[0] = 200;
    assert.equal(new Uint8Array(await get(ref))[0], 0);
    const viaTask = (await get(identity.remote(original))) as ArrayBuffer;
    assert.ok(viaTask instanceof ArrayBuffer && Buffer.from(viaTask).equals(Buffer.from(original)));
  });

  test('small binary values stay inline: plain memory of their own, not the arena', async () => {
    const arenaBefore = memory().store.arena.usedBytes;
    const small = new Float64Array(1000).map((_, i) => i);
    const ref = put(small);
    const justBelow = put(new Uint8Array(OUT_OF_BAND - 1).fill(1));
    assert.equal(memory().store.arena.usedBytes, arenaBefore, 'a small value took arena memory');
    const back = await get(ref);
    assert.ok(back instanceof Float64Array);
    assert.ok(back.buffer instanceof ArrayBuffer && !(back.buffer instanceof SharedArrayBuffer));
    assert.deepEqual(back, small);
    assert.ok(!isShared(await get(justBelow)));
    const fromTask = (await get(identity.remote(new Int16Array([1, -2, 3])))) as Int16Array;
    assert.ok(fromTask instanceof Int16Array && !isShared(fromTask));
    assert.deepEqual([...fromTask], [1, -2, 3]);
    // At the threshold a value goes to shared memory.
    assert.ok(isShared(await get(put(new Uint8Array(OUT_OF_BAND)))));
  });
});

describe('object store: a 400 MB array', () => {
  before(() => init({ numWorkers: 1, objectStoreMemory: 1024 * MB }));
  after(() => shutdown());

  test('get of a 400 MB Float64Array returns a view onto shared memory, and a task receives one too', async () => {
    const length = (400 * MB) / 8;
    const ref = (() => {
      const values = new Float64Array(length);
      values[0] = 1.5;
      values[length / 2] = 2.5;
      values[length - 1] = 3.5;
      return put(values);
    })();
    const back = await get(ref);
    assert.ok(back instanceof Float64Array);
    assert.ok(back.buffer instanceof SharedArrayBuffer, 'the 400 MB value was copied');
    assert.equal(back.byteLength, 400 * MB);
    assert.deepEqual([back[0], back[length / 2], back[length - 1]], [1.5, 2.5, 3.5]);
    const again = await get(ref);
    assert.ok(again.buffer instanceof SharedArrayBuffer);
    const shape = await get(describeArgument.remote(ref));
    assert.deepEqual({ kind: shape.kind, shared: shape.shared, byteLength: shape.byteLength }, { kind: 'Float64Array', shared: true, byteLength: 400 * MB });
    const entry = entryOf(ref);
    assert.ok(entry !== undefined && entry.sizeBytes >= 400 * MB);
  });
});

describe('object store: memory()', () => {
  const capacity = 256 * MB;
  before(() => init({ numWorkers: 1, objectStoreMemory: capacity }));
  after(() => shutdown());

  test('lists a put object with its size, owner, state, location and who refers to it', async () => {
    const ref = put(new Float64Array(MB / 8));
    const entry = entryOf(ref);
    assert.ok(entry, 'memory() does not list the object');
    assert.equal(entry.state, 'ready');
    assert.equal(entry.owner, 'driver');
    assert.equal(entry.location, 'memory');
    assert.ok(entry.sizeBytes >= MB && entry.sizeBytes < MB + 1024, `sizeBytes ${entry.sizeBytes}`);
    assert.deepEqual(entry.referencedBy, ['driver']);
    const small = put({ a: 1 });
    const smallEntry = entryOf(small);
    assert.ok(smallEntry && smallEntry.sizeBytes > 0 && smallEntry.sizeBytes < 100);
  });

  test('the store figures: used and capacity bytes, arena, spilled objects', () => {
    const before = memory().store;
    assert.equal(before.capacityBytes, capacity);
    assert.equal(before.arena.capacityBytes, capacity);
    assert.equal(before.spilledObjects, 0);
    assert.equal(before.spilledBytes, 0);
    assert.ok(before.usedBytes <= capacity);
    const keep = put(new Uint8Array(4 * MB));
    const after = memory().store;
    assert.ok(after.usedBytes >= before.usedBytes + 4 * MB, `usedBytes ${before.usedBytes} -> ${after.usedBytes}`);
    assert.ok(after.arena.usedBytes >= before.arena.usedBytes + 4 * MB);
    assert.ok(after.arena.reservedBytes >= after.arena.usedBytes);
    assert.ok(after.arena.slabs >= 1);
    assert.equal(after.objects, memory().objects.filter((o) => o.location !== 'none').length);
    assert.ok(entryOf(keep));
  });

  test('an object nested in another is listed as held "inside" it', () => {
    const inner = put(new Uint8Array(MB));
    const outer = put({ label: 'outer', inner });
    const entry = entryOf(inner);
    assert.ok(entry);
    assert.ok(entry.referencedBy.includes('driver'));
    assert.ok(entry.referencedBy.includes(`inside ${outer.hex}`), `referencedBy: ${entry.referencedBy.join(', ')}`);
  });

  test('an argument of a running task is listed as held by it; a pending result as pending', async () => {
    const gate = new Gate();
    try {
      const argument = put(new Uint8Array(MB).fill(1));
      const result = holdUntilOpen.remote(argument, gate.name);
      await gate.whenWaiting(1);
      const argumentEntry = entryOf(argument);
      assert.ok(argumentEntry);
      assert.ok(
        argumentEntry.referencedBy.some((why) => /^argument of task .*holdUntilOpen/.test(why) || /^argument of task/.test(why)),
        `referencedBy: ${argumentEntry.referencedBy.join(', ')}`,
      );
      const resultEntry = entryOf(result);
      assert.ok(resultEntry);
      assert.equal(resultEntry.state, 'pending');
      assert.ok(resultEntry.referencedBy.includes('its task is pending'), `referencedBy: ${resultEntry.referencedBy.join(', ')}`);
      gate.open();
      assert.equal(await get(result), 2);
      assert.equal(entryOf(result)?.state, 'ready');
      // Once the task is done it no longer holds its argument.
      const after = entryOf(argument)?.referencedBy ?? [];
      assert.ok(after.includes('driver'));
      assert.ok(!after.some((why) => why.startsWith('argument of')), `referencedBy: ${after.join(', ')}`);
    } finally {
      gate.close();
    }
  });

  test('an object a worker put is owned by that worker', async () => {
    const ref = await get(putFromWorker.remote('from a worker'));
    const entry = entryOf(ref);
    assert.ok(entry);
    assert.match(entry.owner, /^worker [0-9a-f]+/);
    assert.equal(await get(ref), 'from a worker');
  });

  test('a failed task\'s result is listed as failed', async () => {
    const fails = remote(() => {
      throw new Error('boom');
    });
    const ref = fails.options({ maxRetries: 0 }).remote();
    await assert.rejects(get(ref));
    assert.equal(entryOf(ref)?.state, 'failed');
  });
});

describe('object store: errors', () => {
  const capacity = 8 * MB;
  let workDir: string;
  before(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'miniray-store-test-'));
    const notADirectory = join(workDir, 'a-file');
    writeFileSync(notADirectory, 'spill files cannot go under a regular file');
    await init({ numWorkers: 1, objectStoreMemory: capacity, spillDirectory: join(notADirectory, 'spill') });
  });
  after(async () => {
    await shutdown();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('put of an object larger than the whole store throws ObjectStoreFullError naming both sizes', () => {
    const tooBig = 16 * MB;
    assert.throws(
      () => put(new Uint8Array(tooBig)),
      (error: unknown) => {
        assert.ok(error instanceof ObjectStoreFullError, `got ${String(error)}`);
        assert.match(error.message, new RegExp(`${tooBig}`));
        assert.match(error.message, new RegExp(`${capacity}`));
        assert.match(error.message, /objectStoreMemory/);
        return true;
      },
    );
    assert.equal(memory().store.arena.usedBytes, 0, 'the failed put left memory taken');
  });

  test('in a task too, put() of an object larger than the whole store throws at once, with the same words (not a ref that fails at get)', async () => {
    let driverWords = '';
    try {
      put(new Uint8Array(16 * MB));
    } catch (error) {
      driverWords = `${(error as Error).constructor.name}: ${(error as Error).message}`;
    }
    assert.match(driverWords, /^ObjectStoreFullError: /);
    assert.equal(await get(putInWorker.remote(16 * MB)), driverWords);
    assert.equal(await get(putInWorker.remote(1024)), 'stored', 'a value that fits is stored');
  });

  test('a task given a too-large argument fails at .remote(); one returning a too-large value fails with ObjectStoreFullError', async () => {
    assert.throws(() => describeArgument.remote(new Uint8Array(16 * MB)), ObjectStoreFullError);
    await assert.rejects(get(makeFloats.remote((16 * MB) / 8)), (error: unknown) => {
      assert.ok(error instanceof ObjectStoreFullError, `got ${String(error)}`);
      assert.match((error as Error).message, new RegExp(`${16 * MB}`));
      return true;
    });
    assert.equal(await get(identity.remote('still running')), 'still running');
  });

  test('a full store whose spill directory cannot be created gives ObjectStoreFullError, and the node keeps running', async () => {
    const kept: ObjectRef<Uint8Array>[] = [];
    let failure: unknown;
    for (let i = 0; i < 10 && failure === undefined; i++) {
      try {
        kept.push(put(new Uint8Array(2 * MB).fill(i)));
      } catch (error) {
        failure = error;
      }
    }
    assert.ok(failure !== undefined, 'ten 2 MB puts into an 8 MB store with no room on disk all succeeded');
    assert.ok(failure instanceof ObjectStoreFullError, `got ${String(failure)}`);
    assert.match(failure.message, /spill/);
    assert.ok(kept.length >= 2, `only ${kept.length} objects fitted`);
    // The failed put gave back the memory it had taken: only the objects that fitted use the arena.
    assert.equal(memory().store.arena.usedBytes, kept.length * 2 * MB, 'the failed put left its memory taken');
    // The objects that fitted are intact, and the node keeps working.
    for (const [i, ref] of kept.entries()) {
      const bytes = await get(ref);
      assert.ok(bytes[0] === i && bytes[bytes.length - 1] === i, `object ${i} changed`);
    }
    assert.equal(await get(identity.remote(21)), 21);
    assert.deepEqual(await get(put({ small: true })), { small: true });
  });
});

describe('object store: the seed API (new ObjectStore(capacity))', () => {
  test('put copies the bytes and returns a ref; get, contains, size and delete work by ref, ObjectID or hex', () => {
    const store = new ObjectStore(1024);
    const data = new Uint8Array([1, 2, 3]);
    const ref = store.put(data);
    assert.ok(ref instanceof ObjectRef);
    data[0] = 9; // the store has its own copy
    assert.deepEqual(store.get(ref), new Uint8Array([1, 2, 3]));
    assert.deepEqual(store.get(ref.id), new Uint8Array([1, 2, 3]));
    assert.deepEqual(store.get(ref.hex), new Uint8Array([1, 2, 3]));
    assert.equal(store.contains(ref), true);
    assert.equal(store.contains(ObjectID.fromRandom()), false);
    const other = store.put(new Uint8Array(10));
    assert.equal(store.size(), 2);
    assert.equal(store.delete(ref), true);
    assert.equal(store.delete(ref), false);
    assert.equal(store.contains(ref), false);
    assert.equal(store.get(ref), undefined);
    assert.equal(store.size(), 1);
    assert.equal(store.get(other)?.byteLength, 10);
  });

  test('a put beyond its capacity throws ObjectStoreFullError; deleting makes room again', () => {
    const store = new ObjectStore(100);
    const first = store.put(new Uint8Array(60));
    assert.throws(() => store.put(new Uint8Array(50)), (error: unknown) => {
      assert.ok(error instanceof ObjectStoreFullError);
      assert.match(error.message, /50 bytes/);
      assert.match(error.message, /60 of 100 bytes in use, 40 free/);
      return true;
    });
    store.delete(first);
    store.put(new Uint8Array(50));
    assert.equal(store.stats().usedBytes, 50);
    assert.equal(store.size(), 1);
  });
});
