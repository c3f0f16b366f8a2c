/**
 * A StateSource over the GCS methods that exist without the state API (nodes, actors, jobs), for
 * the dashboard of a head or a driver until helper "state"'s GcsStateSource (src/state/client.ts)
 * is merged: then `stateSourceFor` returns that instead, and this file goes. Tasks, objects and
 * workers are empty here (they need the task events and the nodes' fan-out).
 */
import type { GcsClient } from '../gcs/index.js';
import type {
  ActorStateEntry,
  ActorSummary,
  JobStateEntry,
  ListOptions,
  ListResult,
  NodeStateEntry,
  StateKind,
  StateRecords,
  StateSource,
  TaskMetrics,
} from '../state/types.js';

const DEFAULT_LIMIT = 100;

function applyOptions<R>(records: readonly R[], options: ListOptions<R> | undefined): ListResult<R> {
  const filters = options?.filters ?? [];
  const kept = records.filter((record) =>
    filters.every(([key, op, value]) => {
      const field = (record as Record<string, unknown>)[key];
      const equal = String(field) === String(value);
      return op === '=' ? equal : !equal;
    }),
  );
  return { records: kept.slice(0, options?.limit ?? DEFAULT_LIMIT), total: kept.length, partial: [], dropped: 0 };
}

export class MinimalGcsStateSource implements StateSource {
  constructor(private readonly gcs: GcsClient) {}

  private async nodes(): Promise<NodeStateEntry[]> {
    const nodes = await this.gcs.getNodes();
    return nodes.map((node, index) => ({
      nodeId: node.nodeId,
      state: node.alive ? 'ALIVE' : 'DEAD',
      address: node.address,
      // The GCS lists the head's node first: it registers first.
      isHead: index === 0 && !node.isDriver,
      isDriver: node.isDriver,
      resourcesTotal: node.resources,
      resourcesAvailable: node.available,
      ...(node.deathReason === undefined ? {} : { deathReason: node.deathReason }),
    }));
  }

  private async actors(): Promise<ActorStateEntry[]> {
    const actors = await this.gcs.listActors();
    return actors.map((actor) => ({
      actorId: actor.actorId,
      className: actor.className,
      ...(actor.name === undefined ? {} : { name: actor.name }),
      namespace: actor.namespace,
      state: actor.state,
      nodeId: actor.nodeId,
      ownerNodeId: actor.ownerNodeId,
      numRestarts: actor.numRestarts,
      maxRestarts: actor.maxRestarts,
      detached: actor.detached,
      ...(actor.reason === undefined ? {} : { deathCause: actor.reason }),
    }));
  }

  private async jobs(): Promise<JobStateEntry[]> {
    const jobs = await this.gcs.listJobs();
    return jobs.map((job) => ({
      jobId: String(job.jobId),
      status: job.endTimeMs === undefined ? 'RUNNING' : 'SUCCEEDED',
      driverNodeId: job.driverNodeId,
      startTimeMs: job.startTimeMs,
      ...(job.endTimeMs === undefined ? {} : { endTimeMs: job.endTimeMs }),
    }));
  }

  async list<K extends StateKind>(kind: K, options?: ListOptions<StateRecords[K]>): Promise<ListResult<StateRecords[K]>> {
    const records: readonly unknown[] = kind === 'nodes' ? await this.nodes() : kind === 'actors' ? await this.actors() : kind === 'jobs' ? await this.jobs() : [];
    return applyOptions(records as readonly StateRecords[K][], options);
  }

  async getTask(): Promise<readonly never[]> {
    return [];
  }

  async getActor(actorId: string): Promise<ActorStateEntry | undefined> {
    return (await this.actors()).find((actor) => actor.actorId === actorId);
  }

  async summarizeTasks() {
    return { byName: {}, total: 0 };
  }

  async summarizeActors(): Promise<ActorSummary> {
    const byClass: Record<string, Record<string, number>> = {};
    const actors = await this.actors();
    for (const actor of actors) {
      const states = (byClass[actor.className] ??= {});
      states[actor.state] = (states[actor.state] ?? 0) + 1;
    }
    return { byClass, total: actors.length };
  }

  async summarizeObjects() {
    return { totalObjects: 0, totalBytes: 0, byNode: {} };
  }

  async nodeStats() {
    return [];
  }

  async taskMetrics(): Promise<TaskMetrics> {
    return { byState: {}, runTime: {}, droppedEvents: 0 };
  }

  async coreEvents() {
    return [];
  }
}

/** The StateSource a dashboard in this process reads. */
export function stateSourceFor(gcs: GcsClient): StateSource {
  return new MinimalGcsStateSource(gcs);
}
