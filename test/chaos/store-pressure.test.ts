// Chaos: the object store at 3x its capacity. Objects put by the driver and returned by tasks,
// three times what the store holds, all kept alive at once, so that most spill to disk; tasks read
// some of them back meanwhile. Every object must come back byte for byte, and once the refs are
// dropped, all of the store's memory and every spill file must be reclaimed.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { get, init, memory, put, remote, shutdown, type ObjectRef } from 'miniray';
import { collectUntil } from '../fixtures/gc.js';
import { report, scaled } from './figures.js';

const MB = 1024 * 1024;
const CAPACITY = 16 * MB;
const OBJECT = 2 * MB;
const OBJECTS = scaled((3 * CAPACITY) / OBJECT);
const LIMIT_MS = 150_000;

/** The bytes of object `index`: a cheap pseudo-random fill that the driver and tasks both compute. */
function bytesOf(index: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  const words = new Uint32Array(bytes.buffer, 0, length >>> 2);
  let state = (index * 2_654_435_761 + 1) >>> 0;
  for (let i = 0; i < words.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    words[i] = state;
  }
  return bytes;
}

/** The same fill, made in a worker: bytesOf is self-contained, so it travels as its source. */
const makeObject = remote(bytesOf);

/** A checksum of an object, computed where it is read (in a worker). */
const checksum = remote((bytes: Uint8Array): number => {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) sum = (Math.imul(sum, 31) + (bytes[i] as number)) >>> 0;
  return sum;
});
function checksumHere(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) sum = (Math.imul(sum, 31) + (bytes[i] as number)) >>> 0;
  return sum;
}

let root: string;
let spillDirectory: string;
before(async () => {
  root = mkdtempSync(join(tmpdir(), 'miniray-chaos-store-'));
  spillDirectory = join(root, 'spill');
  await init({ numWorkers: 2, numCpus: 2, objectStoreMemory: CAPACITY, spillDirectory });
});
after(async () => {
  await shutdown();
  rmSync(root, { recursive: true, force: true });
});

/** Reads every object back twice; returns how many differed from what was stored. */
async function readBack(refs: readonly ObjectRef<Uint8Array>[]): Promise<number> {
  let wrong = 0;
  for (const order of [refs.map((_, i) => i), refs.map((_, i) => refs.length - 1 - i)]) {
    for (const i of order) {
      const back = await get(refs[i] as ObjectRef<Uint8Array>, { timeoutMs: 60_000 });
      if (back.byteLength !== OBJECT || Buffer.compare(back, bytesOf(i, OBJECT)) !== 0) wrong++;
    }
  }
  return wrong;
}

const filesIn = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

test(`the store at 3x capacity: ${OBJECTS} objects of ${OBJECT / MB} MB through ${CAPACITY / MB} MB`, { timeout: LIMIT_MS }, async () => {
  const startedAt = performance.now();
  let refs: ObjectRef<Uint8Array>[] = [];
  // Half put by the driver, half returned by tasks, interleaved.
  for (let i = 0; i < OBJECTS; i++) refs.push(i % 2 === 0 ? put(bytesOf(i, OBJECT)) : makeObject.remote(i, OBJECT));
  // Tasks read every third object while the others spill and come back.
  const sums = refs.map((ref, i) => (i % 3 === 0 ? checksum.remote(ref) : undefined));
  let wrong = 0;
  let wrongInTasks = 0;
  const sumsBack = await get(sums.filter((ref) => ref !== undefined) as ObjectRef<number>[], { timeoutMs: LIMIT_MS });
  let k = 0;
  for (let i = 0; i < OBJECTS; i++) {
    if (sums[i] === undefined) continue;
    if (sumsBack[k++] !== checksumHere(bytesOf(i, OBJECT))) wrongInTasks++;
  }
  const peak = memory().store;
  const peakFiles = filesIn(spillDirectory).length;
  // Every object back in the driver, byte for byte, twice (in order, then in reverse). In a
  // function of its own: a suspended async frame can keep its last values (a view) alive, which
  // would hold their memory after the refs are gone.
  wrong += await readBack(refs);
  const readSeconds = (performance.now() - startedAt) / 1000;
  // Drop every ref: all memory and all files must go.
  const ids = new Set(refs.map((ref) => ref.hex));
  refs = [];
  sums.length = 0;
  await collectUntil(
    () => {
      const { objects, store } = memory();
      return !objects.some((o) => ids.has(o.id)) && store.usedBytes === 0 && store.spilledObjects === 0 && filesIn(spillDirectory).length === 0;
    },
    () => {
      const { objects, store } = memory();
      return `reclaiming (still ${objects.filter((o) => ids.has(o.id)).length} objects, ${store.usedBytes} bytes in memory, ${store.spilledObjects} spilled, ${filesIn(spillDirectory).length} files)`;
    },
    60_000,
  );
  const end = memory().store;
  report('store-pressure', {
    objects: OBJECTS,
    objectMb: OBJECT / MB,
    capacityMb: CAPACITY / MB,
    peakSpilledObjects: peak.spilledObjects,
    peakSpillFiles: peakFiles,
    wrong,
    wrongInTasks,
    usedBytesAtEnd: end.usedBytes,
    spillFilesAtEnd: filesIn(spillDirectory).length,
    readSeconds: readSeconds.toFixed(1),
    seconds: ((performance.now() - startedAt) / 1000).toFixed(1),
  });
  assert.equal(wrong, 0, 'objects changed on their way through the store');
  assert.equal(wrongInTasks, 0, 'tasks read objects that had changed');
  assert.ok(peak.spilledObjects > 0 && peakFiles > 0, 'nothing spilled: the check did not press the store');
});
