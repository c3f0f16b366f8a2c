/**
 * TEST ONLY. A StateSource over records the test sets (and changes, to see the dashboard follow),
 * applying filters and limit as the state API does, with an InvalidOptionError for an unknown key.
 */
import { InvalidOptionError } from '../errors/index.js';
import type {
  ActorStateEntry,
  ActorSummary,
  CoreEvent,
  ListOptions,
  ListResult,
  LogLine,
  LogQuery,
  LogSource,
  NodeStats,
  ObjectSummary,
  StateKind,
  StateRecords,
  StateSource,
  TaskEntry,
  TaskMetrics,
  TaskSummary,
} from '../state/types.js';

type Tables = { -readonly [K in StateKind]: StateRecords[K][] };

export class FakeStateSource implements StateSource {
  readonly tables: Tables = { tasks: [], actors: [], objects: [], nodes: [], jobs: [], workers: [] };
  stats: NodeStats[] = [];
  metrics: TaskMetrics = { byState: {}, runTime: {}, droppedEvents: 0 };
  events: CoreEvent[] = [];
  /** Calls of list(), by kind: how a test sees polling start and stop. */
  readonly listCalls: Record<string, number> = {};
  /** When set, every call rejects with it (a GCS gone). */
  failWith: Error | undefined;

  private check(): void {
    if (this.failWith !== undefined) throw this.failWith;
  }

  async list<K extends StateKind>(kind: K, options?: ListOptions<StateRecords[K]>): Promise<ListResult<StateRecords[K]>> {
    this.check();
    this.listCalls[kind] = (this.listCalls[kind] ?? 0) + 1;
    const records = this.tables[kind] as StateRecords[K][];
    const filters = options?.filters ?? [];
    for (const [key] of filters) {
      const known = new Set(records.flatMap((record) => Object.keys(record)));
      if (records.length > 0 && !known.has(key)) {
        throw new InvalidOptionError(`list ${kind}: unknown filter key '${key}' (valid: ${[...known].join(', ')})`, 'filters');
      }
    }
    const kept = records.filter((record) =>
      filters.every(([key, op, value]) => (String((record as Record<string, unknown>)[key]) === String(value)) === (op === '=')),
    );
    const detail = options?.detail === true;
    const shown = kept.slice(0, options?.limit ?? 100).map((record) => {
      if (kind !== 'tasks' || detail) return record;
      const { events: _events, profile: _profile, ...rest } = record as TaskEntry;
      return rest as StateRecords[K];
    });
    return { records: shown, total: kept.length, partial: [], dropped: this.metrics.droppedEvents };
  }

  async getTask(taskId: string): Promise<readonly TaskEntry[]> {
    this.check();
    return this.tables.tasks.filter((task) => task.taskId === taskId);
  }

  async getActor(actorId: string): Promise<ActorStateEntry | undefined> {
    this.check();
    return this.tables.actors.find((actor) => actor.actorId === actorId);
  }

  async summarizeTasks(): Promise<TaskSummary> {
    this.check();
    const byName: Record<string, { type: TaskEntry['type']; states: Record<string, number> }> = {};
    for (const task of this.tables.tasks) {
      const entry = (byName[task.name] ??= { type: task.type, states: {} });
      entry.states[task.state] = (entry.states[task.state] ?? 0) + 1;
    }
    return { byName, total: this.tables.tasks.length };
  }

  async summarizeActors(): Promise<ActorSummary> {
    this.check();
    const byClass: Record<string, Record<string, number>> = {};
    for (const actor of this.tables.actors) {
      const states = (byClass[actor.className] ??= {});
      states[actor.state] = (states[actor.state] ?? 0) + 1;
    }
    return { byClass, total: this.tables.actors.length };
  }

  async summarizeObjects(): Promise<ObjectSummary> {
    this.check();
    const byNode: Record<string, { objects: number; bytes: number; spilledObjects: number; spilledBytes: number }> = {};
    for (const object of this.tables.objects) {
      const node = (byNode[object.nodeId] ??= { objects: 0, bytes: 0, spilledObjects: 0, spilledBytes: 0 });
      node.objects++;
      node.bytes += object.sizeBytes;
      if (object.location === 'disk') {
        node.spilledObjects++;
        node.spilledBytes += object.sizeBytes;
      }
    }
    return { totalObjects: this.tables.objects.length, totalBytes: this.tables.objects.reduce((sum, o) => sum + o.sizeBytes, 0), byNode };
  }

  async nodeStats(): Promise<readonly NodeStats[]> {
    this.check();
    return this.stats;
  }

  /** Counts tasks are set in `metrics`; when it has none, those of `tables.tasks`, as the GCS counts them. */
  async taskMetrics(): Promise<TaskMetrics> {
    this.check();
    if (Object.keys(this.metrics.byState).length > 0 || this.tables.tasks.length === 0) return this.metrics;
    const byState: Record<string, Record<string, number>> = {};
    for (const task of this.tables.tasks) {
      const states = (byState[task.name] ??= {});
      states[task.state] = (states[task.state] ?? 0) + 1;
    }
    return { ...this.metrics, byState };
  }

  async coreEvents(): Promise<readonly CoreEvent[]> {
    this.check();
    return this.events;
  }
}

/** TEST ONLY. A LogSource over lines the test adds. */
export class FakeLogSource implements LogSource {
  readonly lines: LogLine[] = [];
  readonly queries: LogQuery[] = [];

  async logs(query: LogQuery): Promise<{ readonly lines: readonly LogLine[]; readonly partial: readonly string[] }> {
    this.queries.push(query);
    const lines = this.lines.filter(
      (line) =>
        (query.taskId === undefined || line.taskId === query.taskId) &&
        (query.actorId === undefined || line.actorId === query.actorId) &&
        line.seq > (query.after?.[line.nodeId] ?? -1),
    );
    return { lines: lines.slice(-(query.tail ?? 1000)), partial: [] };
  }
}
