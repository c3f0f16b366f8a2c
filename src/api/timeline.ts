/**
 * `timeline()`: Ray's `ray.timeline()` for miniray. It reads every task attempt (with its state
 * changes and profile spans) and the latest get/put/wait calls from the cluster's state, through
 * this thread's node as `state.*` does, and gives them as Chrome trace events.
 */
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { validateOptions } from '../config/index.js';
import { MinirayError } from '../errors/index.js';
import { readTimeline, type ChromeTrace } from '../state/timeline.js';
import { stateSource } from './state.js';

export type { ChromeTrace, TraceEvent } from '../state/timeline.js';

export interface TimelineOptions {
  /** Also write the trace there, as JSON (open it in https://ui.perfetto.dev or chrome://tracing). */
  readonly filename?: string;
}

const TIMELINE_RULES = {
  filename: { type: 'string', nonEmpty: true, doc: 'a file to write the trace to, as JSON' },
} as const;

/**
 * The cluster's timeline as Chrome trace events (`{ traceEvents }`): a span per task attempt on
 * its node's and worker's lane, its profile() spans inside it, an instant per submission, and the
 * get/put/wait calls. With `filename`, also written there. Works in a driver and in a task.
 */
export async function timeline(options?: TimelineOptions): Promise<ChromeTrace> {
  const { filename } = validateOptions('timeline()', TIMELINE_RULES, options);
  const { trace, dropped } = await readTimeline(stateSource(), Date.now());
  if (dropped > 0) console.warn(`miniray: timeline(): under load the cluster dropped ${dropped} task event(s) or tasks it sampled out, so the timeline may miss tasks (raise taskEventsMaxTasksPerSecond, maxTaskEventsBuffered or maxTaskEventsInGcs to keep more)`);
  if (filename !== undefined) {
    const path = resolve(filename);
    try {
      await writeFile(path, JSON.stringify(trace));
    } catch (error) {
      throw new MinirayError(`timeline({ filename: '${filename}' }): cannot write ${path}: ${(error as Error).message}`, { cause: error });
    }
  }
  return trace;
}
