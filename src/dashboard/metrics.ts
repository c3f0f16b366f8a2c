/**
 * GET /metrics: the cluster in Prometheus' text format (prom-client), collected from the
 * StateSource on each scrape (one read of each source per scrape, shared by every metric): a
 * registry of its own per server, so that two dashboards in one process (tests) do not mix.
 * The list is in docs/dashboard.md.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, type MetricType } from 'prom-client';
import type { StateSource, TaskMetrics } from '../state/types.js';
import { noQuery } from './query.js';

/**
 * A histogram whose buckets the GCS counted (TaskMetrics.runTime): prom-client's Histogram
 * observes values itself, so this one answers with the counts it is given instead.
 */
class GivenHistogram extends Histogram<'name' | 'le'> {
  runTime: TaskMetrics['runTime'] = {};
  private readonly metricName: string;
  private readonly helpText: string;

  constructor(name: string, help: string) {
    super({ name, help, labelNames: ['name'], registers: [] });
    this.metricName = name;
    this.helpText = help;
  }

  override async get(): ReturnType<Histogram<'name' | 'le'>['get']> {
    const values: Awaited<ReturnType<Histogram<'name' | 'le'>['get']>>['values'] = [];
    for (const [name, histogram] of Object.entries(this.runTime)) {
      histogram.bounds.forEach((bound, i) => {
        values.push({ metricName: `${this.metricName}_bucket`, labels: { name, le: bound }, value: histogram.counts[i] ?? 0 });
      });
      values.push({ metricName: `${this.metricName}_bucket`, labels: { name, le: '+Inf' }, value: histogram.count });
      values.push({ metricName: `${this.metricName}_sum`, labels: { name }, value: histogram.sum });
      values.push({ metricName: `${this.metricName}_count`, labels: { name }, value: histogram.count });
    }
    // prom-client's typings declare MetricType a numeric enum; its code (and the text format) use the name.
    return { name: this.metricName, help: this.helpText, type: 'histogram' as unknown as MetricType, values, aggregator: 'sum', collect: () => undefined };
  }

  /** What the registry calls to print it (prom-client's own Histogram has it too). */
  getForPromString(): ReturnType<Histogram<'name' | 'le'>['get']> {
    return this.get();
  }
}

const PER_NODE = {
  storeUsedBytes: ['miniray_object_store_used_bytes', 'Bytes in use in the object store'],
  storeCapacityBytes: ['miniray_object_store_capacity_bytes', 'Bytes the object store may hold'],
  spilledBytes: ['miniray_spilled_bytes', 'Bytes of objects spilled to disk now'],
  spilledObjects: ['miniray_spilled_objects', 'Objects spilled to disk now'],
  objects: ['miniray_objects', 'Objects in the store (memory or disk)'],
  workers: ['miniray_workers', 'Worker threads and actor hosts'],
  queuedTasks: ['miniray_scheduler_queued_tasks', 'Tasks waiting for resources or a worker'],
} as const;

export function createMetrics(state: StateSource): { registry: Registry; collect(): Promise<void> } {
  const registry = new Registry();
  const tasks = new Gauge({ name: 'miniray_tasks', help: 'Task attempts by state and function (or Class.method)', labelNames: ['state', 'name'], registers: [registry] });
  const runTime = new GivenHistogram('miniray_task_run_seconds', 'Run time of finished task attempts, by function, in seconds');
  registry.registerMetric(runTime);
  const actors = new Gauge({ name: 'miniray_actors', help: 'Actors by state and class', labelNames: ['state', 'class'], registers: [registry] });
  const perNode = Object.fromEntries(
    Object.entries(PER_NODE).map(([field, [name, help]]) => [field, new Gauge({ name, help, labelNames: ['NodeId'], registers: [registry] })]),
  ) as Record<keyof typeof PER_NODE, Gauge<'NodeId'>>;
  const nodesAlive = new Gauge({ name: 'miniray_nodes_alive', help: 'Nodes alive (drivers that joined included)', registers: [registry] });
  const dropped = new Counter({ name: 'miniray_task_events_dropped_total', help: 'Task events dropped under load since the GCS started', registers: [registry] });
  let droppedSeen = 0;

  const sourceUp = new Gauge({ name: 'miniray_state_source_up', help: 'Whether the last scrape could read each part of the cluster state (1) or not (0)', labelNames: ['source'], registers: [registry] });

  /**
   * Reads each part of the state once. A part that fails (a GCS without task events, a node that
   * does not answer) leaves its metrics out of this scrape and says so in miniray_state_source_up,
   * so that the others still arrive; only when every part fails is the scrape an error.
   */
  const collect = async () => {
    const reads = {
      nodeStats: state.nodeStats(),
      taskMetrics: state.taskMetrics(),
      actors: state.summarizeActors(),
      nodes: state.list('nodes', { filters: [['state', '=', 'ALIVE']], limit: 1 }),
    };
    const [stats, metrics, actorSummary, alive] = await Promise.allSettled([reads.nodeStats, reads.taskMetrics, reads.actors, reads.nodes]);
    const outcomes = { nodeStats: stats, taskMetrics: metrics, actors: actorSummary, nodes: alive };
    const failed = Object.entries(outcomes).filter(([, outcome]) => outcome.status === 'rejected');
    if (failed.length === Object.keys(outcomes).length) throw (failed[0]?.[1] as PromiseRejectedResult).reason;
    for (const [source, outcome] of Object.entries(outcomes)) sourceUp.set({ source }, outcome.status === 'fulfilled' ? 1 : 0);
    // Reset first: a node gone, or a state no task is in any more, must not stay at its last value.
    tasks.reset();
    runTime.runTime = {};
    if (metrics.status === 'fulfilled') {
      for (const [name, states] of Object.entries(metrics.value.byState)) {
        for (const [taskState, n] of Object.entries(states)) tasks.set({ state: taskState, name }, n ?? 0);
      }
      runTime.runTime = metrics.value.runTime;
      // A counter only goes up; a lower figure is a new GCS (a restarted head), counted from zero.
      const droppedNow = metrics.value.droppedEvents;
      if (droppedNow < droppedSeen) {
        dropped.reset();
        droppedSeen = 0;
      }
      dropped.inc(droppedNow - droppedSeen);
      droppedSeen = droppedNow;
    }
    actors.reset();
    if (actorSummary.status === 'fulfilled') {
      for (const [className, states] of Object.entries(actorSummary.value.byClass)) {
        for (const [actorState, n] of Object.entries(states)) actors.set({ state: actorState, class: className }, n ?? 0);
      }
    }
    for (const [field, gauge] of Object.entries(perNode) as [keyof typeof PER_NODE, Gauge<'NodeId'>][]) {
      gauge.reset();
      if (stats.status === 'fulfilled') for (const node of stats.value) gauge.set({ NodeId: node.nodeId }, node[field]);
    }
    nodesAlive.reset();
    if (alive.status === 'fulfilled') nodesAlive.set(alive.value.total);
  };
  return { registry, collect };
}

export function registerMetrics(app: FastifyInstance, state: StateSource): void {
  const { registry, collect } = createMetrics(state);
  // Scrapes that arrive together share one collection (they would read the same figures).
  let collecting: Promise<string> | undefined;
  app.get<{ Querystring: Readonly<Record<string, unknown>> }>('/metrics', async (request, reply) => {
    noQuery(request.query, 'GET /metrics');
    collecting ??= collect()
      .then(() => registry.metrics())
      .finally(() => (collecting = undefined));
    let text: string;
    try {
      text = await collecting;
    } catch (error) {
      return reply.code(503).send({ error: 'Service Unavailable', message: `the cluster's state could not be read: ${(error as Error).message}` });
    }
    return reply.type(registry.contentType).send(text);
  });
}
