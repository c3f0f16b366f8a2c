/**
 * What /api/events streams, shared by the server (events.ts) and the page (ui/): a snapshot of the
 * cluster in sections, first whole (`snapshot`), then every poll only the sections that changed
 * (`update`), always with the time and the tasks' counts by state (so the page's chart gets a
 * point per poll even when nothing else changed). Types only: the page's bundle imports nothing
 * of the server.
 */
import type {
  ActorStateEntry,
  JobStateEntry,
  ListResult,
  NodeStateEntry,
  NodeStats,
  ObjectStateEntry,
  ObjectSummary,
  TaskEntry,
  TaskState,
  TaskSummary,
} from '../state/types.js';

export type Sections = {
  readonly nodes: ListResult<NodeStateEntry>;
  readonly nodeStats: readonly NodeStats[];
  readonly jobs: ListResult<JobStateEntry>;
  readonly actors: ListResult<ActorStateEntry>;
  readonly taskSummary: TaskSummary;
  /** Tasks in every state but FINISHED (those are in the summary's counts): what runs and waits. */
  readonly activeTasks: ListResult<TaskEntry>;
  readonly failedTasks: ListResult<TaskEntry>;
  readonly objectSummary: ObjectSummary;
  readonly objects: ListResult<ObjectStateEntry>;
};
export type SectionName = keyof Sections;

/** Attempts per state over every function: the chart's point. */
export type TaskCounts = Readonly<Partial<Record<TaskState, number>>>;

export type SnapshotEvent = { readonly timeMs: number; readonly counts: TaskCounts; readonly sections: Partial<Sections>; readonly errors: Readonly<Partial<Record<SectionName, string>>> };

/** How many records of each list a snapshot carries (the page links to the JSON routes for the rest). */
export const SNAPSHOT_LIMITS = { actors: 1000, activeTasks: 500, failedTasks: 100, objects: 500, jobs: 200, nodes: 1000 } as const;
