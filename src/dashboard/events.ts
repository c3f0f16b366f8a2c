/**
 * GET /api/events: the cluster's state as server-sent events, so that the page follows a running
 * job without reloading. One poller per server, whatever the number of clients: it asks the
 * StateSource every `pollMs` (after the previous poll finished, so polls never pile up on a slow
 * GCS) while at least one client listens, and not at all otherwise. A new client gets the latest
 * whole snapshot at once; every poll sends each client what changed since (see snapshot.ts).
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { StateSource, TaskMetrics, TaskState, TaskSummary, TaskType } from '../state/types.js';
import { noQuery } from './query.js';
import { SNAPSHOT_LIMITS, type SectionName, type Sections, type SnapshotEvent, type TaskCounts } from './snapshot.js';

/** What the poller needs of a client's response (a ServerResponse; a stand-in in tests). */
export type Client = Pick<ServerResponse, 'on' | 'write' | 'end' | 'destroy' | 'writableLength'>;

/** A client whose unsent data passes this is dropped (it reconnects and gets a whole snapshot). */
const MAX_BUFFERED_BYTES = 8 << 20;

function readers(state: StateSource): { [K in SectionName]: () => Promise<Sections[K]> } {
  return {
    nodes: () => state.list('nodes', { limit: SNAPSHOT_LIMITS.nodes }),
    nodeStats: () => state.nodeStats(),
    jobs: () => state.list('jobs', { limit: SNAPSHOT_LIMITS.jobs }),
    actors: () => state.list('actors', { limit: SNAPSHOT_LIMITS.actors }),
    // From the GCS's running counts, not summarizeTasks(): that builds every attempt's record
    // (up to 100000) on the head's main thread, every poll, while a page is open.
    taskSummary: async () => summaryOf(await state.taskMetrics()),
    activeTasks: () => state.list('tasks', { filters: [['state', '!=', 'FINISHED'], ['state', '!=', 'FAILED']], limit: SNAPSHOT_LIMITS.activeTasks }),
    failedTasks: () => state.list('tasks', { filters: [['state', '=', 'FAILED']], limit: SNAPSHOT_LIMITS.failedTasks }),
    objectSummary: () => state.summarizeObjects(),
    objects: () => state.list('objects', { limit: SNAPSHOT_LIMITS.objects }),
  };
}

/**
 * The task summary from the GCS's per name and state counts. They carry no task type: it follows
 * from the name, as the GCS's task events make them (`Class.constructor` creates an actor,
 * `Class.method` is an actor task, a function's name has no dot).
 */
export function summaryOf(metrics: TaskMetrics): TaskSummary {
  let total = 0;
  const byName: Record<string, { type: TaskType; states: Partial<Record<TaskState, number>> }> = {};
  for (const [name, states] of Object.entries(metrics.byState)) {
    const type: TaskType = name.endsWith('.constructor') ? 'ACTOR_CREATION_TASK' : name.includes('.') ? 'ACTOR_TASK' : 'NORMAL_TASK';
    // defineProperty: a function named "__proto__" is counted, not taken for a prototype.
    Object.defineProperty(byName, name, { value: { type, states: { ...states } }, enumerable: true, writable: true, configurable: true });
    for (const n of Object.values(states)) total += n ?? 0;
  }
  return { byName, total };
}

function countsOf(summary: Sections['taskSummary'] | undefined): TaskCounts {
  const counts: Partial<Record<TaskState, number>> = {};
  for (const { states } of Object.values(summary?.byName ?? {})) {
    for (const [state, n] of Object.entries(states) as [TaskState, number][]) counts[state] = (counts[state] ?? 0) + n;
  }
  return counts;
}

/**
 * Sections read only every this many polls (and at the first): listing objects makes every node
 * answer its whole object directory, too much to ask twice a second while a page is open.
 */
export const SLOW_SECTIONS: ReadonlySet<SectionName> = new Set(['objects']);
export const SLOW_EVERY = 10;

function frame(event: 'snapshot' | 'update' | 'error', data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export class StatePoller {
  private readonly clients = new Set<Client>();
  private readonly read: ReturnType<typeof readers>;
  /** The latest value of each section, and its JSON (to tell what changed). */
  private readonly latest: Partial<Record<SectionName, { value: unknown; json: string }>> = {};
  private latestEvent: SnapshotEvent | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;
  /** Polls done since the server started (tests see polling stop by it). */
  polls = 0;

  constructor(
    state: StateSource,
    private readonly pollMs: number,
  ) {
    this.read = readers(state);
  }

  get clientCount(): number {
    return this.clients.size;
  }

  /** Neither polling nor due to poll: nothing more reads the StateSource until a client comes. */
  get idle(): boolean {
    return this.timer === undefined && !this.polling;
  }

  add(response: Client): void {
    this.clients.add(response);
    response.on('close', () => this.remove(response));
    if (this.latestEvent !== undefined) this.send(response, frame('snapshot', this.latestEvent));
    if (this.clients.size === 1 && this.timer === undefined && !this.polling) void this.poll();
  }

  private remove(response: Client): void {
    this.clients.delete(response);
    if (this.clients.size === 0 && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private send(response: Client, text: string): void {
    if (response.writableLength > MAX_BUFFERED_BYTES) {
      response.destroy();
      this.remove(response);
      return;
    }
    response.write(text);
  }

  private async poll(): Promise<void> {
    this.timer = undefined;
    this.polling = true;
    try {
      const slowDue = this.polls % SLOW_EVERY === 0;
      const names = (Object.keys(this.read) as SectionName[]).filter((name) => slowDue || !SLOW_SECTIONS.has(name) || this.latest[name] === undefined);
      const outcomes = await Promise.allSettled(names.map((name) => this.read[name]()));
      this.polls++;
      const changed: Partial<Record<SectionName, unknown>> = {};
      const errors: Partial<Record<SectionName, string>> = {};
      names.forEach((name, i) => {
        const outcome = outcomes[i] as PromiseSettledResult<unknown>;
        if (outcome.status === 'rejected') {
          errors[name] = outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason);
          return;
        }
        const json = JSON.stringify(outcome.value);
        if (this.latest[name]?.json !== json) changed[name] = outcome.value;
        this.latest[name] = { value: outcome.value, json };
      });
      const timeMs = Date.now();
      const counts = countsOf(this.latest.taskSummary?.value as Sections['taskSummary'] | undefined);
      const whole = Object.fromEntries(Object.entries(this.latest).map(([name, entry]) => [name, entry.value])) as Partial<Sections>;
      const first = this.latestEvent === undefined;
      this.latestEvent = { timeMs, counts, sections: whole, errors };
      const text = first ? frame('snapshot', this.latestEvent) : frame('update', { timeMs, counts, sections: changed as Partial<Sections>, errors } satisfies SnapshotEvent);
      for (const client of this.clients) this.send(client, text);
    } finally {
      this.polling = false;
      // Unref'd: watching a process is no reason to keep it alive (a head's listener keeps it up).
      if (!this.closed && this.clients.size > 0) this.timer = setTimeout(() => void this.poll(), this.pollMs).unref();
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const client of this.clients) client.end();
    this.clients.clear();
  }
}

export function registerEvents(app: FastifyInstance, state: StateSource, pollMs: number): StatePoller {
  const poller = new StatePoller(state, pollMs);
  app.addHook('onClose', async () => poller.close());
  app.get<{ Querystring: Readonly<Record<string, unknown>> }>('/api/events', async (request, reply) => {
    noQuery(request.query, 'GET /api/events');
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // A proxy in front must not hold the stream back.
      'x-accel-buffering': 'no',
    });
    // The browser reconnects after this many ms if the stream breaks.
    response.write('retry: 2000\n\n');
    poller.add(response);
  });
  return poller;
}
