/**
 * `profile(name)`: a custom span inside a task (Ray's `ray.util.profiling.profile`), shown in the
 * timeline nested in the task's own span. The executor tells this module which task runs
 * (beginTask) and takes the task's spans when it reports the result (takeSpans), which carries
 * them to the node (TaskResult.spans) and on to the GCS (TaskEntry.profile).
 *
 * A span belongs to the task that was running when profile() was called. A worker runs one task
 * at a time, except while a task waits in get() (the next one may start): a span begun after such
 * a wait, or in an async actor method while other calls of it run, may be counted to another
 * task of the same worker. A span ended after its task reported its result is dropped, and so are
 * spans made outside any task (in the driver).
 */
import { InvalidArgumentError } from '../errors/index.js';
import type { ProfileSpan } from '../state/types.js';

export interface ProfileOptions {
  /** Shown with the span in the timeline (string values, as Ray's extra_data). */
  readonly extraData?: Readonly<Record<string, string>>;
}

export interface ProfileSpanHandle {
  /** Ends the span (later calls do nothing). */
  end(): void;
}

interface State {
  /** The seq of the task running now on this thread, or 0. */
  current: number;
  /** Spans of tasks not yet reported, by seq (empty unless profile() is used). */
  readonly spans: Map<number, ProfileSpan[]>;
}

// On globalThis: a second copy of the package loaded in the same thread shares it.
const KEY = Symbol.for('miniray.profile');
const holder = globalThis as { [KEY]?: State };
const state: State = (holder[KEY] ??= { current: 0, spans: new Map() });

const NOOP: ProfileSpanHandle = { end() {} };

/**
 * Starts a span named `name` in the current task; `end()` closes it.
 *
 *   const span = profile('load', { extraData: { file } });
 *   try { ... } finally { span.end(); }
 */
export function profile(name: string, options: ProfileOptions = {}): ProfileSpanHandle {
  if (typeof name !== 'string' || name === '') throw new InvalidArgumentError(`profile(name): name must be a non-empty string, got ${typeof name === 'string' ? '""' : typeof name}`, 'name');
  const extraData = options.extraData;
  if (extraData !== undefined) {
    if (typeof extraData !== 'object' || extraData === null) throw new InvalidArgumentError('profile(name, { extraData }): extraData must be an object of strings', 'extraData');
    for (const [key, value] of Object.entries(extraData)) {
      if (typeof value !== 'string') throw new InvalidArgumentError(`profile(name, { extraData }): extraData.${key} must be a string, got ${typeof value}`, 'extraData');
    }
  }
  const seq = state.current;
  if (seq === 0) return NOOP;
  const startMs = performance.timeOrigin + performance.now();
  let ended = false;
  return {
    end() {
      if (ended) return;
      ended = true;
      const span: ProfileSpan = { name, startMs, endMs: performance.timeOrigin + performance.now(), ...(extraData === undefined ? {} : { extraData: { ...extraData } }) };
      let list = state.spans.get(seq);
      if (list === undefined) {
        // Spans ended after their task reported are never taken: the oldest such go first.
        if (state.spans.size >= MAX_TASKS_WITH_SPANS) state.spans.delete(state.spans.keys().next().value as number);
        state.spans.set(seq, (list = []));
      }
      list.push(span);
    },
  };
}

const MAX_TASKS_WITH_SPANS = 10_000;

/** The executor starts the task with this seq (its spans are kept until takeSpans). */
export function beginTask(seq: number): void {
  state.current = seq;
}

/** The task's spans, as its result is reported (undefined when it made none). */
export function takeSpans(seq: number): ProfileSpan[] | undefined {
  if (state.current === seq) state.current = 0;
  if (state.spans.size === 0) return undefined;
  const spans = state.spans.get(seq);
  if (spans !== undefined) state.spans.delete(seq);
  return spans;
}
