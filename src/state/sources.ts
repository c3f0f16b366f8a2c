/**
 * What every observability door reads, over one GcsClient: the CLI's commands, the head's
 * dashboard and a driver's (`init({ includeDashboard })`). One assembly, so that the three show the
 * same state, the same lines and the same timeline.
 */
import type { GcsClient } from '../gcs/client.js';
import { GcsStateSource } from './client.js';
import { ClusterLogSource } from './logs.js';
import { readTimeline } from './timeline.js';
import type { LogSource, StateSource } from './types.js';

export interface ObservabilitySources {
  readonly state: StateSource;
  readonly logs: LogSource;
  /** The Chrome trace of what `state` knows now (the dashboard serves it as /api/timeline). */
  readonly timeline: (state: StateSource) => Promise<unknown>;
}

export function observabilitySources(gcs: GcsClient): ObservabilitySources {
  return {
    state: new GcsStateSource(gcs),
    logs: new ClusterLogSource(gcs),
    timeline: async (state) => (await readTimeline(state, Date.now())).trace,
  };
}
