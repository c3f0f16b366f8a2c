// Chaos: every malformed-message shape, sent from a task straight through parentPort. After each,
// the driver is alive, the node has logged the problem once naming the worker, the sending task is
// retried (or, without retries, fails with a typed error, never hangs), and new tasks run.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  ActorDiedError,
  WorkerCrashedError,
  get,
  getRuntimeContext,
  init,
  memory,
  put,
  remote,
  shutdown,
  type ObjectRef,
} from 'miniray';
import { Gate, waitForGate } from '../fixtures/coordination.js';
import { postAlways, postOnce, poster, type Shape } from '../fixtures/malformed.js';
import { malformedShapes, type MalformedShape } from '../fixtures/malformed-shapes.js';
import { report } from './figures.js';

const add = remote((a: number, b: number) => a + b);
const LIMIT_MS = 60_000; // generous: a worker is replaced per shape, on a loaded machine
/** How long a task that posted a shape waits to be ended before it says it was ignored. */
const IGNORED_AFTER_MS = 20_000;

let dir: string;
let gate: Gate;
let big: ObjectRef<Uint8Array>;
let bigView: Uint8Array;
let existing: ObjectRef<{ kept: string }>;
let shapes: MalformedShape[];
/** What the driver wrote to stderr (the node's log lines), captured per test. */
let logged: string[] = [];
const original = console.error;

before(async () => {
  await init({ numWorkers: 2, numCpus: 2 });
  dir = mkdtempSync(join(tmpdir(), 'miniray-malformed-'));
  // The first lease of the session: the driver holds it while bigView lives.
  big = put(new Uint8Array(200_000).fill(7));
  bigView = await get(big);
  existing = put({ kept: 'yes' });
  // An object that stays pending while the shapes run (its task waits behind a gate). It takes
  // half a CPU, so that no task of a whole CPU is pipelined behind it on its worker.
  gate = new Gate();
  const pending = waitForGate.options({ numCpus: 0.5 }).remote(gate.name, 'done');
  await gate.whenWaiting(1, LIMIT_MS);
  const { nodeId, workerId } = getRuntimeContext();
  shapes = malformedShapes({ existingId: existing.id.toHex(), driverLease: 1, pendingId: pending.id.toHex(), driver: { nodeId, workerId } });
  console.error = (...args: unknown[]) => {
    logged.push(args.map(String).join(' '));
  };
});

after(async () => {
  console.error = original;
  gate.open();
  gate.close();
  await shutdown();
  rmSync(dir, { recursive: true, force: true });
});

const bigObjectLeases = () => memory().objects.find((o) => o.id === big.id.toHex())?.viewLeases;

test('every malformed-message shape, sent from a task: the node survives and keeps working', async () => {
  assert.ok(shapes.length >= 32, `${shapes.length} shapes`);
  assert.equal(bigObjectLeases(), 1, 'the driver holds lease 1');
  const recoveryMs: number[] = [];
  let retried = 0;
  for (let i = 0; i < shapes.length; i++) {
    const { name, shape, logged: expected } = shapes[i] as MalformedShape;
    logged = [];
    const started = performance.now();
    const result = await get(postOnce.remote(shape, join(dir, `${i}.marker`), IGNORED_AFTER_MS), { timeoutMs: LIMIT_MS });
    assert.equal(result, 'retried', `${name}: the sending task ran again after its worker was replaced`);
    retried++;
    // Logged once, naming the worker and what was wrong.
    const lines = logged.filter((line) => line.includes('sent a malformed message'));
    assert.equal(lines.length, 1, `${name}: logged once (${lines.join(' | ')})`);
    assert.match(lines[0] as string, /^miniray: worker [0-9a-f]{8} sent a malformed message: /, name);
    assert.match(lines[0] as string, expected, name);
    // The node keeps working: new tasks run, on every worker.
    assert.deepEqual(await get([add.remote(i, 1), add.remote(i, 2), add.remote(i, 3)], { timeoutMs: LIMIT_MS }), [i + 1, i + 2, i + 3], name);
    recoveryMs.push(performance.now() - started);
  }
  // What the shapes pointed at is untouched: the existing object, the driver's lease and its view.
  assert.deepEqual(await get(existing), { kept: 'yes' });
  assert.equal(bigObjectLeases(), 1, "the driver's lease was not released by a worker");
  assert.ok(bigView.every((b) => b === 7), "the driver's view still reads its object");
  recoveryMs.sort((a, b) => a - b);
  report('malformed-messages', {
    shapes: shapes.length,
    survived: shapes.length,
    retried,
    logged_once: retried,
    median_recovery_ms: Math.round(recoveryMs[Math.floor(recoveryMs.length / 2)] as number),
    max_recovery_ms: Math.round(recoveryMs[recoveryMs.length - 1] as number),
  });
});

test('without retries, the sending task fails with WorkerCrashedError naming the message (never hangs)', async () => {
  const noRetries = postAlways.options({ maxRetries: 0 });
  const picked = shapes.filter((s) => ['undefined', "{ type: 'put', objects: 7 }", 'a put with an out-of-arena slab', "a release of the driver's lease"].includes(s.name));
  assert.equal(picked.length, 4);
  let failed = 0;
  for (const { name, shape } of picked) {
    await assert.rejects(get(noRetries.remote(shape, IGNORED_AFTER_MS), { timeoutMs: LIMIT_MS }), (error: unknown) => {
      assert.ok(error instanceof WorkerCrashedError, `${name}: ${String(error)}`);
      assert.match(error.message, /its worker died: it sent a malformed message: /);
      return true;
    });
    failed++;
  }
  assert.deepEqual(await get([add.remote(1, 1), add.remote(2, 2)], { timeoutMs: LIMIT_MS }), [2, 4]);
  report('malformed-messages-no-retries', { shapes: picked.length, failed_typed: failed, hung: 0 });
});

for (const isolation of ['thread', 'shared', 'process'] as const) {
  test(`an actor (${isolation}) posting malformed messages: its host is replaced, the actor restarts, calls go on`, async () => {
    const actor = poster.options({ isolation }).remote();
    assert.equal(await get(actor.touch.remote(), { timeoutMs: LIMIT_MS }), 1);
    // One shape in five, across the kinds. Left out: those about a task worker's seqs, and, for a
    // worker process, undefined (process.send refuses it) and SharedArrayBuffers (it shares no memory).
    const own = shapes
      .filter((s) => !/for one return|nobody asked for/.test(s.name) && s.shape.kind !== 'ownTask')
      .filter((s) => isolation !== 'process' || (s.shape.kind !== 'attached' && s.shape.kind !== 'undefined'))
      .filter((_, i) => i % 5 === 0);
    let restarted = 0;
    for (const { name, shape } of own) {
      await assert.rejects(get(actor.post.remote(shape as Shape, IGNORED_AFTER_MS), { timeoutMs: LIMIT_MS }), (error: unknown) => {
        assert.ok(error instanceof ActorDiedError, `${name}: ${String(error)}`);
        assert.match(error.message, /it sent a malformed message/);
        return true;
      });
      // The restarted instance runs new calls (its state starts again).
      assert.equal(await get(actor.touch.remote(), { timeoutMs: LIMIT_MS }), 1, name);
      restarted++;
    }
    report(`malformed-messages-actor-${isolation}`, { shapes: own.length, restarted, hung: 0 });
  });
}
