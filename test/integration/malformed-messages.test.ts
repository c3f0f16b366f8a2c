// A task (or an actor) that posts malformed messages to its node through parentPort: the driver
// lives on, the node logs the problem once naming the worker, the task is retried as after a crash
// (or fails with a typed error), and what the message pointed at is left as it was.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { pack } from 'msgpackr';
import { ActorDiedError, WorkerCrashedError, get, getRuntimeContext, init, memory, put, remote, shutdown, type ObjectRef } from 'miniray';
import { postAlways, postOnce, poster, type Shape } from '../fixtures/malformed.js';
import { malformedShapes, type MalformedShape } from '../fixtures/malformed-shapes.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const add = remote((a: number, b: number) => a + b);
const LIMIT_MS = 60_000;
const IGNORED_AFTER_MS = 20_000;

let dir: string;

test('a driver whose task posts undefined to the node keeps running, prints its results and exits 0', async () => {
  const scratch = mkdtempSync(join(tmpdir(), 'miniray-malformed-exit-'));
  try {
    const script = fileURLToPath(new URL('../fixtures/exit-after-malformed.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', script, join(scratch, 'marker')], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = setTimeout(() => child.kill('SIGKILL'), LIMIT_MS);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    clearTimeout(deadline);
    assert.equal(code, 0, `exit code ${code}; stderr:\n${stderr}`);
    assert.match(stdout, /^result: retried,3$/m);
    const lines = stderr.split('\n').filter((line) => line.includes('sent a malformed message'));
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0] as string, /^miniray: worker [0-9a-f]{8} sent a malformed message: a value posted to a channel must be a frame .*got undefined\. It is handled as crashed/);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

/**
 * Starts the worker runtime on its own, in a child process (a worker writes its output straight to
 * the process's stderr, so it is read there): `boot` is its workerData, with `progress` turned into
 * a SharedArrayBuffer of that many bytes when it is a number of bytes and `sab` is set; once the
 * worker says ready, `frame` (if any) is posted to it. Resolves with its exit code and stderr.
 */
function runWorker(boot: Record<string, unknown>, frame?: Uint8Array): Promise<{ code: number | null; stderr: string }> {
  const script = `
    import { Worker } from 'node:worker_threads';
    const [bootJson, frameBase64] = process.argv.slice(1);
    const boot = JSON.parse(bootJson);
    if (boot.sab) boot.progress = new SharedArrayBuffer(boot.progress);
    delete boot.sab;
    const worker = new Worker(new URL(${JSON.stringify(new URL('../../dist/worker-runtime/main.js', import.meta.url).href)}), { workerData: boot, execArgv: [] });
    worker.on('error', (error) => console.error('error: ' + error.message));
    worker.once('message', () => { if (frameBase64) worker.postMessage(new Uint8Array(Buffer.from(frameBase64, 'base64'))); });
    worker.on('exit', (code) => { process.exitCode = code; });
  `;
  const args = ['--input-type=module', '-e', script, JSON.stringify(boot), frame === undefined ? '' : Buffer.from(frame).toString('base64')];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = setTimeout(() => child.kill('SIGKILL'), LIMIT_MS);
    child.on('close', (code) => {
      clearTimeout(deadline);
      resolve({ code, stderr });
    });
  });
}

describe("a worker's side", () => {
  const boot = { nodeId: 'c'.repeat(32), workerId: 'd'.repeat(32), progress: 4, sab: true, preload: [] };

  test('a worker sent something malformed by its node says what and exits (the node sees a crash)', async () => {
    const { code, stderr } = await runWorker(boot, new Uint8Array(pack([{ type: 'execute', functions: [], tasks: 5 }])));
    assert.equal(code, 70, stderr);
    assert.match(stderr, /^miniray worker dddddddd: a message from the node \(type 'execute'\) is malformed: tasks must be an array, got number 5; exiting/m);
  });

  test('a worker whose boot data is malformed does not start, naming the field', async () => {
    const { code, stderr } = await runWorker({ ...boot, sab: false });
    assert.notEqual(code, 0);
    assert.match(stderr, /boot data is malformed: progress must be a SharedArrayBuffer of at least 4 bytes, got number 4/);
  });
});

describe('malformed messages in a running session', () => {
  let logged: string[] = [];
  const original = console.error;
  let big: ObjectRef<Uint8Array>;
  let bigView: Uint8Array;
  let existing: ObjectRef<number[]>;
  let byName: Map<string, MalformedShape>;

  before(async () => {
    await init({ numWorkers: 2 });
    dir = mkdtempSync(join(tmpdir(), 'miniray-malformed-'));
    big = put(new Uint8Array(150_000).fill(3));
    bigView = await get(big); // lease 1, the first of the session, held by the driver
    existing = put([1, 2, 3]);
    const { nodeId, workerId } = getRuntimeContext();
    const shapes = malformedShapes({ existingId: existing.id.toHex(), driverLease: 1, pendingId: existing.id.toHex(), driver: { nodeId, workerId } });
    byName = new Map(shapes.map((s) => [s.name, s]));
    console.error = (...args: unknown[]) => {
      logged.push(args.map(String).join(' '));
    };
  });
  after(async () => {
    console.error = original;
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const shape = (name: string): MalformedShape => {
    const found = byName.get(name);
    assert.ok(found, name);
    return found;
  };
  const leasesOfBig = () => memory().objects.find((o) => o.id === big.id.toHex())?.viewLeases;

  for (const name of [
    'undefined',
    'random bytes',
    "{ type: 'results', results: 5 }",
    "{ type: 'put', objects: 7 }",
    'a result for a seq never given',
    'a put with an out-of-arena slab',
    'a put of an attachment the frame lacks',
    'a put of an existing ID',
    "a release of the driver's lease",
  ]) {
    test(`${name}: logged once naming the worker, the task retried, new tasks run`, async () => {
      const { shape: posted, logged: expected } = shape(name);
      logged = [];
      const result = await get(postOnce.remote(posted, join(dir, `${name.replace(/\W+/g, '-')}.marker`), IGNORED_AFTER_MS), { timeoutMs: LIMIT_MS });
      assert.equal(result, 'retried');
      const lines = logged.filter((line) => line.includes('sent a malformed message'));
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0] as string, /^miniray: worker [0-9a-f]{8} sent a malformed message: /);
      assert.match(lines[0] as string, expected);
      assert.deepEqual(await get([add.remote(1, 2), add.remote(3, 4)], { timeoutMs: LIMIT_MS }), [3, 7]);
    });
  }

  test('what the messages pointed at is as it was: the existing object, the lease, the view', async () => {
    assert.deepEqual(await get(existing), [1, 2, 3]);
    assert.equal(leasesOfBig(), 1);
    assert.ok(bigView.every((b) => b === 3));
  });

  test('with maxRetries: 0 the task fails with WorkerCrashedError that names the malformed message', async () => {
    await assert.rejects(get(postAlways.options({ maxRetries: 0 }).remote(shape("{ type: 'put', objects: 7 }").shape, IGNORED_AFTER_MS), { timeoutMs: LIMIT_MS }), (error: unknown) => {
      assert.ok(error instanceof WorkerCrashedError, String(error));
      assert.match(error.message, /^task .* failed: its worker died: it sent a malformed message: a message from a worker \(type 'put'\) is malformed: objects must be an array, got number 7\. It ran 1 time \(maxRetries: 0\)\.$/);
      return true;
    });
  });

  test('an actor that posts one: the call fails with ActorDiedError, the actor restarts and serves calls', async () => {
    const actor = poster.remote();
    assert.equal(await get(actor.touch.remote()), 1);
    const posted: Shape = shape('null').shape;
    await assert.rejects(get(actor.post.remote(posted, IGNORED_AFTER_MS), { timeoutMs: LIMIT_MS }), (error: unknown) => {
      assert.ok(error instanceof ActorDiedError, String(error));
      assert.match(error.message, /died while running post: its worker died: it sent a malformed message: .*got null/);
      return true;
    });
    assert.equal(await get(actor.touch.remote(), { timeoutMs: LIMIT_MS }), 1);
    assert.match(logged.filter((line) => line.includes('sent a malformed message')).at(-1) ?? '', /^miniray: actor host [0-9a-f]{8} sent/);
  });

  // A 'process' host's progress cell reaches the node only at its exit. Read when the bad message
  // came, it said the call had not started: the call went to each restarted instance for free, posted
  // again, and with maxRestarts: -1 hosts restarted forever while both calls hung.
  test("a 'process' actor that posts one, maxRestarts: -1: the call fails with ActorDiedError (no restart loop), the next runs on a new instance", async () => {
    const actor = poster.options({ isolation: 'process', maxRestarts: -1, maxTaskRetries: 0 }).remote();
    assert.equal(await get(actor.touch.remote(), { timeoutMs: LIMIT_MS }), 1);
    logged = [];
    await assert.rejects(get(actor.post.remote(shape('null').shape, IGNORED_AFTER_MS), { timeoutMs: LIMIT_MS }), (error: unknown) => {
      assert.ok(error instanceof ActorDiedError, String(error));
      assert.match(error.message, /died while running post: its worker died: it sent a malformed message: .*got null/);
      return true;
    });
    assert.equal(await get(actor.touch.remote(), { timeoutMs: LIMIT_MS }), 1, 'a restarted instance serves the next call');
    assert.equal(logged.filter((line) => line.includes('sent a malformed message')).length, 1, 'one bad host, not a loop of them');
  });

  // A 'thread' actor's host gives seq 1 to the creation, then 2, 3, ... to the calls in order: the
  // third call can forge a result for itself.
  const ownResult = (result: Record<string, unknown>): Shape => ({ kind: 'value', value: new Uint8Array(pack([{ type: 'results', results: [{ seq: 3, ...result }] }])) });

  test("an actor call's result with two values for one return: its object fails with WorkerCrashedError, the actor restarts", async () => {
    const actor = poster.remote();
    assert.equal(await get(actor.touch.remote()), 1); // seq 2
    const forged = ownResult({ outcome: 'ok', values: [Uint8Array.of(0xc0), Uint8Array.of(0xc0)], us: 1 });
    logged = [];
    await assert.rejects(get(actor.post.remote(forged, IGNORED_AFTER_MS), { timeoutMs: LIMIT_MS }), (error: unknown) => {
      assert.ok(error instanceof WorkerCrashedError, String(error));
      assert.match(error.message, /sent a malformed result: its result for seq 3 has 2 value\(s\) for a task with 1 return\(s\)/);
      return true;
    });
    assert.equal(await get(actor.touch.remote(), { timeoutMs: LIMIT_MS }), 1, 'a new instance serves calls');
    assert.equal(logged.filter((line) => line.includes('sent a malformed message')).length, 1);
  });

  test('an actor call that reports itself cancelled, unasked: the host is handled as crashed, the call fails', async () => {
    const actor = poster.remote();
    assert.equal(await get(actor.touch.remote()), 1); // seq 2
    logged = [];
    await assert.rejects(get(actor.post.remote(ownResult({ outcome: 'cancelled' }), IGNORED_AFTER_MS), { timeoutMs: LIMIT_MS }), (error: unknown) => {
      assert.ok(error instanceof ActorDiedError, String(error));
      return true;
    });
    assert.match(logged.find((line) => line.includes('sent a malformed message')) ?? '', /saying seq 3 was cancelled, which it was not asked to/);
    assert.equal(await get(actor.touch.remote(), { timeoutMs: LIMIT_MS }), 1);
  });
});
