/**
 * progress(refs): watch a batch of refs complete, then have their values (Ray users reach for
 * tqdm over ray.wait; this is that, built in). On a terminal it draws a bar (cli-progress); where
 * output goes to a file or a pipe (CI logs, `miniray job logs`) it prints plain lines instead,
 * "label: 40/100 done", one per tenth of the refs done (at most one a second), so a log is not flooded.
 *
 *   const values = await progress(refs, { label: 'pi tasks' });
 *
 * It resolves to the values in the order of `refs`, as get() does. A ref whose task failed rejects
 * it with that task's error (a TaskError, or whatever get() throws for it), as soon as it is seen,
 * after the bar has stopped, so that the error is not drawn over.
 */
import cliProgress from 'cli-progress';
import { get, wait, type ValuesOf } from '../api/index.js';
import { validateOptions, type CustomRule, type OptionRules } from '../config/index.js';
import { InvalidArgumentError } from '../errors/index.js';
import { refHex, type ObjectRef } from '../object-ref/index.js';

/** Where progress is shown: a stream with isTTY and columns (process.stderr), or any writable. */
export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export interface ProgressOptions {
  /** What the bar or line says the refs are (default 'progress'). */
  readonly label?: string;
  /** Where it is drawn (default process.stderr, as tqdm does: stdout stays the program's). */
  readonly stream?: ProgressStream;
  /**
   * Least time between two plain lines, in ms (default 1000); plain lines also come only once
   * another tenth of the refs is done. A bar redraws about 10 times a second.
   */
  readonly intervalMs?: number;
}

const STREAM_RULE: CustomRule<ProgressStream> = {
  type: 'custom',
  problem: (value) => (typeof (value as { write?: unknown } | null)?.write === 'function' ? undefined : 'must be a stream (an object with a write() method)'),
  doc: 'where progress is drawn',
};

const PROGRESS_RULES = {
  label: { type: 'string', doc: 'what the bar says the refs are' },
  stream: STREAM_RULE,
  intervalMs: { type: 'number', min: 0, doc: 'least milliseconds between two plain lines' },
} as const satisfies OptionRules;

/** How long one wait() lasts at most: the bar's redraw period. */
const TICK_MS = 100;

export async function progress<const Refs extends readonly ObjectRef<unknown>[]>(refs: Refs, options?: ProgressOptions): Promise<ValuesOf<Refs>> {
  const valid = validateOptions('progress()', PROGRESS_RULES, options);
  if (!Array.isArray(refs)) throw new InvalidArgumentError(`progress() takes an array of ObjectRefs; got ${typeof refs}`, 'refs');
  // The same ref may be given twice (wait() takes each once): its value goes to every position.
  const positions = new Map<string, number[]>();
  const unique: ObjectRef<unknown>[] = [];
  refs.forEach((ref: ObjectRef<unknown>, i: number) => {
    const hex = refHex(ref);
    if (hex === undefined) throw new InvalidArgumentError(`progress(): refs[${i}] is not an ObjectRef`, `refs[${i}]`);
    const at = positions.get(hex);
    if (at === undefined) {
      positions.set(hex, [i]);
      unique.push(ref);
    } else at.push(i);
  });
  const view = show(valid.label ?? 'progress', refs.length, valid.stream ?? process.stderr, valid.intervalMs ?? 1000);
  const values = new Array<unknown>(refs.length);
  let done = 0;
  let pending = unique;
  try {
    while (pending.length > 0) {
      const { ready, pending: rest } = await wait(pending, { numReturns: pending.length, timeoutMs: TICK_MS });
      pending = rest;
      if (ready.length === 0) continue;
      // Read as they come: a failure is known at once, and the values are in this thread when it ends.
      const got = await get(ready);
      ready.forEach((ref, i) => {
        const at = positions.get(ref.hex) as number[];
        for (const index of at) values[index] = got[i];
        done += at.length;
      });
      view.update(done);
    }
  } finally {
    view.stop(done);
  }
  return values as ValuesOf<Refs>;
}

interface View {
  update(done: number): void;
  /** Ends the bar, or prints the last line (once `done` changed since the last one). */
  stop(done: number): void;
}

function show(label: string, total: number, stream: ProgressStream, intervalMs: number): View {
  if (stream.isTTY === true) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {value}/{total} {percentage}% | {duration_formatted} elapsed, eta {eta_formatted}`,
        stream: stream as NodeJS.WritableStream,
        hideCursor: true,
        clearOnComplete: false,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return {
      update: (done) => bar.update(done),
      stop: (done) => {
        bar.update(done);
        bar.stop();
      },
    };
  }
  let shown = -1;
  let shownAt = 0;
  const tenth = Math.max(1, Math.ceil(total / 10));
  const line = (done: number) => {
    shown = done;
    shownAt = performance.now();
    stream.write(`${label}: ${done}/${total} done\n`);
  };
  line(0);
  return {
    update: (done) => {
      const nextTenth = Math.floor(done / tenth) > Math.floor(shown / tenth);
      if (done === total || (nextTenth && performance.now() - shownAt >= intervalMs)) line(done);
    },
    stop: (done) => {
      if (done !== shown) line(done);
    },
  };
}
