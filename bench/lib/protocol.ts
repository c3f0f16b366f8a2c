/**
 * What a case is, and how a case's child process reports to the orchestrator: one line on stdout,
 * RESULT_PREFIX followed by the JSON of a CaseResult. Everything else the child prints is kept as
 * its log and shown only when the case fails.
 */
import type { TimingMode } from './timeit.js';

export const RESULT_PREFIX = '@@miniray-bench-result ';

export interface Metric {
  readonly value: number;
  /** '/s', 'us', 'GB/s', 's', 'B/task', ... */
  readonly unit: string;
  /** Each timed run's figure, when the value is a median of runs. */
  readonly runs?: readonly number[];
  /** Shown beside the figure (e.g. the count behind it). */
  readonly note?: string;
}

export interface CaseResult {
  readonly case: string;
  readonly metrics: Record<string, Metric>;
  readonly error?: string;
  /** Wall time of the child process, as seen by the orchestrator. */
  readonly durationMs?: number;
}

export interface CaseContext {
  readonly mode: TimingMode;
  readonly quick: boolean;
}

export type CaseFn = (context: CaseContext) => Promise<Record<string, Metric>>;
