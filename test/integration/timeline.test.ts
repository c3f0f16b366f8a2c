// timeline(): the trace of a few real tasks (one failing) and object calls, as Perfetto loads it,
// returned and written to a file, from the driver and from inside a task.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { InvalidOptionError, MinirayError, TaskError, get, init, put, remote, shutdown, timeline, type ChromeTrace, type TraceEvent } from 'miniray';
import { eventsSeenInTask } from '../fixtures/timeline.js';

const square = remote(function square(x: number): number {
  const until = Date.now() + 5; // long enough for a span a viewer shows
  while (Date.now() < until);
  return x * x;
});
const boom = remote(function boom(): never {
  throw new Error('boom on purpose');
}, { maxRetries: 0 });

type Span = Extract<TraceEvent, { ph: 'X' }>;
const spansOf = (trace: ChromeTrace, name: string): Span[] => trace.traceEvents.filter((e): e is Span => e.ph === 'X' && e.name === name);

/** Task events reach the GCS in batches (taskEventsFlushMs): waits until the trace has what `done` wants. */
async function traceWhen(done: (trace: ChromeTrace) => boolean, options?: { filename?: string }): Promise<ChromeTrace> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const trace = await timeline(options);
    if (done(trace)) return trace;
    if (Date.now() > deadline) throw new Error(`the timeline did not show the tasks within 30 s: ${JSON.stringify(trace.traceEvents.filter((e) => e.ph !== 'M').map((e) => e.name))}`);
    await delay(100);
  }
}

describe('timeline()', { timeout: 120_000 }, () => {
  let dir = '';
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'miniray-timeline-'));
    await init({ numWorkers: 2 });
  });
  after(async () => {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a span per task run on its worker lane, the failed one red with its error, submits, get/put; written to filename', async () => {
    const ref = put(3);
    assert.deepEqual(await get([square.remote(ref), square.remote(4), square.remote(5)]), [9, 16, 25]);
    await assert.rejects(get(boom.remote()), TaskError);
    const filename = join(dir, 'trace.json');
    const trace = await traceWhen((t) => spansOf(t, 'square').length === 3 && spansOf(t, 'boom').length === 1, { filename });

    assert.deepEqual(JSON.parse(readFileSync(filename, 'utf8')), trace, 'the file holds what it resolved to');
    for (const event of trace.traceEvents) {
      assert.ok(Number.isInteger(event.pid) && Number.isInteger(event.tid), JSON.stringify(event));
      assert.equal(typeof event.ts, 'number');
      if (event.ph === 'X') assert.ok(event.dur >= 0);
    }
    const squares = spansOf(trace, 'square');
    for (const span of squares) {
      assert.equal(span.args.state, 'FINISHED');
      assert.ok(span.dur >= 4_000, `a 5 ms task lasts about 5000 µs, not ${span.dur}`);
      assert.ok(Math.abs(span.ts / 1000 - Date.now()) < 120_000, 'ts is epoch microseconds');
      const lane = trace.traceEvents.find((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === span.pid && e.tid === span.tid);
      assert.ok(lane !== undefined && 'name' in lane.args && /^worker [0-9a-f]{8}$/.test(String(lane.args.name)), 'on a worker lane');
    }
    const [failed] = spansOf(trace, 'boom');
    assert.equal(failed?.cname, 'terrible');
    assert.equal(failed?.args.state, 'FAILED');
    assert.match(String(failed?.args.error), /boom on purpose/);
    const submits = trace.traceEvents.filter((e) => e.ph === 'i' && e.cat === 'submit');
    assert.ok(submits.length >= 4, `a submit per task (${submits.length})`);
  });

  test('from inside a task too; bad options are refused', async () => {
    assert.ok((await get(eventsSeenInTask.remote())) > 0);
    await assert.rejects(timeline({ filename: '' }), InvalidOptionError);
    await assert.rejects(timeline({ file: 'x' } as never), (error: unknown) => error instanceof InvalidOptionError && /unknown option 'file'/.test(error.message));
    await assert.rejects(timeline({ filename: join(dir, 'missing', 'trace.json') }), (error: unknown) => error instanceof MinirayError && /cannot write/.test(error.message));
  });
});
