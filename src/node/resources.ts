/**
 * A node's resources beyond the scheduler's CPUs: GPUs and custom resources free and held, the
 * tasks that wait for them, GPU IDs (the node's and each bundle's), and placement groups' bundles
 * reserved here in two phases (the GCS's prepare, then commit), their removal, and the bundle
 * CPUs a task lends back while it waits in get() (helper pg). Also what the cluster's view shows
 * of them: available() and totals().
 */
import { MinirayError, PlacementGroupRemovedError } from '../errors/index.js';
import { embeddedInfeasibleError, groupRequest, nameTakenError } from '../placement-group/creation.js';
import { bundleResources, groupOf, groupsIn, plainOf } from '../placement-group/resources.js';
import type { ClusterAnswer, ClusterQuery, ResourceMap } from '../protocol/index.js';
import { GpuIdPool } from '../scheduler/gpu-ids.js';
import { encodeError } from '../serialization/index.js';
import type { ClusterLink } from './cluster-link.js';
import type { NodeContext } from './context.js';
import type { TaskRecord, Worker } from './task-manager.js';

/** GPU IDs taken from a pool (the node's, or a placement group bundle's) for `amount` GPUs. */
export interface GpuHold {
  readonly ids: number[];
  readonly amount: number;
  readonly pool: GpuIdPool;
}

export class NodeResources {
  constructor(private readonly context: NodeContext) {
    this.freeResources = new Map(Object.entries(context.options.resources));
  }

  /** An actor's CPUs, GPUs and custom resources, taken if they are all free now (its GPU IDs kept by actor ID). */
  reserveForActor(amount: number, resources: ResourceMap | undefined, actorId: string | undefined): boolean {
    if (!this.resourcesFree(resources) || !this.context.scheduler.tryReserve(amount)) return false;
    this.takeResources(resources, -1);
    const gpus = resources === undefined || actorId === undefined ? undefined : this.takeGpus(resources);
    if (gpus !== undefined) this.actorGpus.set(actorId as string, gpus);
    return true;
  }

  /** An actor's resources come back. */
  releaseForActor(amount: number, resources: ResourceMap | undefined, actorId: string | undefined): void {
    const gpus = actorId === undefined ? undefined : this.actorGpus.get(actorId);
    if (gpus !== undefined) {
      this.giveGpus(gpus);
      this.actorGpus.delete(actorId as string);
    }
    this.context.scheduler.releaseCpus(amount);
    this.takeResources(resources, 1);
    this.queueResourceWaiters();
    this.context.dispatcher.scheduleDispatch();
    // Actors waiting for CPUs may start now (after this actor's teardown has finished).
    queueMicrotask(() => this.context.actors.onCpusReleased());
  }

  /** GPUs and custom resources not held by tasks and actors (CPUs are the scheduler's). */
  readonly freeResources: Map<string, number>;

  /** Tasks queued here waiting for those, in order. */
  readonly waitingForResources: TaskRecord[] = [];

  /**
   * A group this node's driver or task creates (helper pg): refused here when the embedded
   * default could never hold it, or when the GCS says its name is taken. A refused group ends here
   * with that error, so that ready() and whatever was submitted to it fail with it (not wait).
   */
  createPlacementGroup(cluster: ClusterLink, query: Extract<ClusterQuery, object>, callback: (answer: ClusterAnswer) => void): void {
    const request = groupRequest(query.body);
    if (request === undefined) return cluster.info(query, callback); // the GCS says what is wrong with it
    const refuse = (error: MinirayError): void => {
      this.groupErrors.set(request.placementGroupId, error);
      cluster.placementGroupEnded(request.placementGroupId);
      callback({ error: encodeError(error) });
    };
    if (!cluster.canGrow) {
      const error = embeddedInfeasibleError(request, { CPU: this.context.options.numCpus, ...this.context.options.resources });
      if (error !== undefined) return refuse(error);
    }
    cluster.info(query, (answer) => {
      const created = 'gcs' in answer ? (answer.gcs as { ok?: unknown; warning?: unknown } | null) : null;
      if (created?.ok === false) return refuse(nameTakenError(request.name ?? '', request.namespace));
      if (typeof created?.warning === 'string' && cluster.canGrow) console.warn(created.warning);
      callback(answer);
    });
  }

  /** Groups whose creation this node refused, with the error their work fails with (see groupRemovedError). */
  private readonly groupErrors = new Map<string, MinirayError>();

  /** Whether this node offers at least these GPUs and custom resources. */
  offers(resources: ResourceMap | undefined): boolean {
    if (resources === undefined) return true;
    for (const [name, amount] of Object.entries(resources)) if ((this.context.options.resources[name] ?? this.groupTotals.get(name) ?? 0) < amount - 1e-9) return false;
    return true;
  }

  /** Free CPUs, and GPUs and custom resources, as the cluster's view shows them. */
  available(): Record<string, number> {
    return { CPU: this.context.scheduler.availableCpus, ...Object.fromEntries(this.freeResources) };
  }

  // ---- placement groups (helper pg): bundles reserved here, in two phases (the GCS's prepare, then commit) ----

  /** Bundles reserved here, by "group:index": what each holds of this node's, and whether it is committed (its group's names exist). */
  private readonly bundles = new Map<string, { readonly cpus: number; readonly resources: ResourceMap; committed: boolean; readonly gpus: GpuHold | undefined; readonly gpuPool: GpuIdPool | undefined }>();

  /** The totals of the names committed bundles add (CPU_group_0_<pg>, ...). */
  readonly groupTotals = new Map<string, number>();

  /** Totals, as the GCS's resource view shows them: what the node offers, and its committed bundles' names. */
  totals(): Record<string, number> {
    return { CPU: this.context.options.numCpus, ...this.context.options.resources, ...Object.fromEntries(this.groupTotals) };
  }

  /** Phase 1: reserves every bundle or none; false when this node has not the room now. */
  prepareBundles(placementGroupId: string, bundles: readonly { readonly index: number; readonly resources: ResourceMap }[]): boolean {
    const fresh = bundles.filter((bundle) => !this.bundles.has(`${placementGroupId}:${bundle.index}`));
    let cpus = 0;
    const others: Record<string, number> = {};
    for (const { resources } of fresh) {
      for (const [name, amount] of Object.entries(resources)) {
        if (name === 'CPU') cpus += amount;
        else others[name] = (others[name] ?? 0) + amount;
      }
    }
    if (!this.resourcesFree(others) || !this.context.scheduler.tryReserve(cpus)) return false;
    this.takeResources(others, -1);
    for (const { index, resources } of fresh) {
      const { CPU = 0, ...rest } = resources;
      // A bundle's GPUs are its own: the tasks in it get their IDs from these.
      const gpus = rest['GPU'] === undefined ? undefined : this.takeGpus({ GPU: rest['GPU'] });
      this.bundles.set(`${placementGroupId}:${index}`, { cpus: CPU, resources: rest, committed: false, gpus, gpuPool: gpus === undefined ? undefined : new GpuIdPool(gpus.ids) });
    }
    return true;
  }

  /** Phase 2: the reserved bundles become the group's resources here; what waited for them may run. */
  commitBundles(placementGroupId: string, indices: readonly number[]): void {
    for (const index of indices) {
      const bundle = this.bundles.get(`${placementGroupId}:${index}`);
      if (bundle === undefined || bundle.committed) continue;
      bundle.committed = true;
      for (const [name, amount] of Object.entries(bundleResources(placementGroupId, index, { CPU: bundle.cpus, ...bundle.resources }))) {
        this.groupTotals.set(name, (this.groupTotals.get(name) ?? 0) + amount);
        this.freeResources.set(name, (this.freeResources.get(name) ?? 0) + amount);
      }
    }
    this.resourcesReturned();
  }

  /** Gives back bundles of a group (an aborted prepare, or the group removed): their names go, their resources return. */
  cancelBundles(placementGroupId: string, indices?: readonly number[]): void {
    for (const [key, bundle] of [...this.bundles]) {
      const [group, index] = key.split(':');
      if (group !== placementGroupId || (indices !== undefined && !indices.includes(Number(index)))) continue;
      this.bundles.delete(key);
      if (bundle.committed) {
        for (const [name, amount] of Object.entries(bundleResources(placementGroupId, Number(index), { CPU: bundle.cpus, ...bundle.resources }))) {
          const left = (this.groupTotals.get(name) ?? 0) - amount;
          if (left > 1e-9) {
            this.groupTotals.set(name, left);
            this.freeResources.set(name, (this.freeResources.get(name) ?? 0) - amount);
          } else {
            this.groupTotals.delete(name);
            this.freeResources.delete(name);
          }
        }
      }
      this.context.scheduler.releaseCpus(bundle.cpus);
      this.takeResources(bundle.resources, 1);
      if (bundle.gpus !== undefined) this.giveGpus(bundle.gpus);
    }
    this.resourcesReturned();
  }

  /**
   * The group is removed (Ray's RemovePlacementGroup): its bundles here go back, and the work in it
   * ends: tasks waiting for it or running in it fail with PlacementGroupRemovedError (a running
   * one's worker is terminated), and its actors die.
   */
  groupRemovedError(placementGroupId: string): MinirayError {
    const refused = this.groupErrors.get(placementGroupId);
    if (refused !== undefined) return refused;
    return new PlacementGroupRemovedError(
      `the placement group ${placementGroupId} was removed (removePlacementGroup), so the tasks and actors in it end; create a new group and submit them again`,
    );
  }

  /** Groups removed while this node ran, or refused at creation (work submitted to one fails at once). */
  readonly removedGroups = new Set<string>();

  placementGroupRemoved(placementGroupId: string): void {
    this.removedGroups.add(placementGroupId);
    const error = this.groupRemovedError(placementGroupId);
    const inGroup = (resources: ResourceMap | undefined): boolean => groupsIn(resources).includes(placementGroupId);
    const encoded = encodeError(error);
    for (const record of this.waitingForResources.filter((r) => inGroup(r.spec.resources))) {
      this.context.dispatcher.removeFromQueue(record);
      this.context.tasks.failTask(record, encoded);
    }
    for (const record of this.context.scheduler.removeWhere((r) => inGroup(r.spec.resources))) {
      this.releaseResources(record);
      this.context.tasks.failTask(record, encoded);
    }
    // Tasks with a runtimeEnv of their own wait in the env queue (their resources held, as the scheduler's).
    const envQueue = this.context.envs.envQueue;
    for (let i = envQueue.length - 1; i >= 0; i--) {
      const record = envQueue[i] as TaskRecord;
      if (!inGroup(record.spec.resources)) continue;
      envQueue.splice(i, 1);
      this.releaseResources(record);
      this.context.tasks.failTask(record, encoded);
    }
    const stopInGroup = (worker: Worker): void => {
      for (const record of worker.inFlight.values()) {
        if (record.cancelled || record.state === 'finished' || !inGroup(record.spec.resources)) continue;
        record.cancelled = true;
        this.context.tasks.failTask(record, encoded);
        // As a forced cancel: terminate the thread only while it runs this task (a cell past its
        // seq means it ran already, and the thread now runs another task). A task process's cell
        // is read only at its exit; it runs one task at a time, so the one in flight runs.
        const started = Atomics.load(worker.progress, 0);
        if (started === record.seq || (worker.isolation === 'process' && worker.envKey !== undefined && worker.inFlight.size === 1)) this.context.cancellation.killToCancel(worker);
        else if (started < record.seq) worker.channel.send({ type: 'cancel', seqs: [record.seq] });
      }
    };
    for (const worker of this.context.pool.workers) stopInGroup(worker);
    for (const list of this.context.pool.envWorkers.values()) for (const worker of list) stopInGroup(worker);
    this.context.actors.endWhere((spec) => inGroup(spec.resources), error.message);
    this.cancelBundles(placementGroupId);
  }

  /** The bundle CPUs (CPU_group_*) that tasks waiting in get() lent back to their bundle, by task. */
  lentGroupCpus: Map<TaskRecord, ResourceMap> | undefined;

  /**
   * A task of `worker` in a placement group waits in get(): the CPUs it holds of its bundle go
   * back to the bundle meanwhile, as Ray releases a blocked worker's CPUs, a bundle's included, so
   * that the children it waits for can run in the same bundle. The running one of its tasks
   * (pipelined tasks wait for it), else the first that holds bundle CPUs and lent none yet.
   */
  lendGroupCpus(worker: Worker): void {
    const started = Atomics.load(worker.progress, 0);
    let lender: TaskRecord | undefined;
    for (const record of worker.inFlight.values()) {
      if (!record.reserved || record.spec.resources === undefined || this.lentGroupCpus?.has(record) === true) continue;
      if (!Object.keys(record.spec.resources).some((name) => plainOf(name)?.name === 'CPU')) continue;
      if (lender === undefined || record.seq === started) lender = record;
    }
    if (lender === undefined) return;
    const cpus = Object.fromEntries(Object.entries(lender.spec.resources as ResourceMap).filter(([name]) => plainOf(name)?.name === 'CPU'));
    (this.lentGroupCpus ??= new Map()).set(lender, cpus);
    this.takeResources(cpus, 1);
    this.queueResourceWaiters();
  }

  /** The task runs again: it takes its bundle CPUs back, oversubscribing the bundle if a child holds them (as Ray's CPUs). */
  takeBackGroupCpus(worker: Worker): void {
    const lent = this.lentGroupCpus as Map<TaskRecord, ResourceMap>;
    for (const record of worker.inFlight.values()) {
      const cpus = lent.get(record);
      if (cpus === undefined) continue;
      lent.delete(record);
      // Of a bundle still here (a removed one's names are gone with it).
      this.takeResources(Object.fromEntries(Object.entries(cpus).filter(([name]) => this.groupTotals.has(name))), -1);
      return;
    }
  }

  // ---- GPU IDs (helper pg) ----

  private nodeGpus: GpuIdPool | undefined;

  /** IDs for the GPUs a demand holds: plain GPUs from the node's pool, a group's from its bundle's here. */
  takeGpus(resources: ResourceMap): GpuHold | undefined {
    const plain = resources['GPU'];
    if (plain !== undefined && plain > 0) {
      const total = this.context.options.resources['GPU'] ?? 0;
      const pool = (this.nodeGpus ??= new GpuIdPool(Array.from({ length: Math.ceil(total) }, (_, i) => i)));
      const ids = pool.take(plain);
      return ids === undefined ? undefined : { ids, amount: plain, pool };
    }
    if (this.bundles.size === 0) return undefined;
    for (const name in resources) {
      const of = plainOf(name);
      if (of === undefined || of.name !== 'GPU') continue;
      const group = groupOf(name) as string;
      const amount = resources[name] as number;
      const pools = [...this.bundles]
        .filter(([key, bundle]) => bundle.gpuPool !== undefined && (of.bundleIndex < 0 ? key.startsWith(`${group}:`) : key === `${group}:${of.bundleIndex}`))
        .map(([, bundle]) => bundle.gpuPool as GpuIdPool);
      for (const pool of pools) {
        const ids = pool.take(amount);
        if (ids !== undefined) return { ids, amount, pool };
      }
      return undefined;
    }
    return undefined;
  }

  giveGpus(hold: GpuHold): void {
    hold.pool.give(hold.ids, hold.amount);
  }

  /** GPU IDs held by this node's actors, by actor ID. */
  readonly actorGpus = new Map<string, GpuHold>();

  /** Resources came back or appeared: tasks and actors waiting for them may go. */
  private resourcesReturned(): void {
    this.queueResourceWaiters();
    this.context.dispatcher.scheduleDispatch();
    queueMicrotask(() => this.context.actors.onCpusReleased());
  }

  /** Whether these GPUs and custom resources are free now. */
  resourcesFree(resources: ResourceMap | undefined): boolean {
    for (const [name, amount] of Object.entries(resources ?? {})) if ((this.freeResources.get(name) ?? 0) < amount - 1e-9) return false;
    return true;
  }

  /** Takes (sign -1) or gives back (+1) GPUs and custom resources. */
  takeResources(resources: ResourceMap | undefined, sign: 1 | -1): void {
    for (const [name, amount] of Object.entries(resources ?? {})) {
      // A bundle removed while a task held some of it: what the task gives back has nowhere to go.
      if (sign > 0 && !(name in this.context.options.resources) && !this.groupTotals.has(name) && groupOf(name) !== undefined) continue;
      this.freeResources.set(name, (this.freeResources.get(name) ?? 0) + sign * amount);
    }
  }

  /** Takes the task's GPUs and custom resources from this node's; false if they are not free now. */
  reserveResources(record: TaskRecord): boolean {
    const resources = record.spec.resources;
    if (resources === undefined || record.reserved) return true;
    if (!this.resourcesFree(resources)) return false;
    this.takeResources(resources, -1);
    record.reserved = true;
    record.gpus = this.takeGpus(resources);
    return true;
  }

  /** Gives back a finished task's resources, and queues the tasks that were waiting for them. */
  releaseResources(record: TaskRecord): void {
    if (!record.reserved) return;
    record.reserved = false;
    if (record.gpus !== undefined) this.giveGpus(record.gpus);
    record.gpus = undefined;
    // Bundle CPUs it lent while it waited in get() (helper pg) are back already.
    const lent = this.lentGroupCpus === undefined ? undefined : this.lentGroupCpus.get(record);
    if (lent !== undefined) {
      (this.lentGroupCpus as Map<TaskRecord, ResourceMap>).delete(record);
      this.takeResources(Object.fromEntries(Object.entries(record.spec.resources ?? {}).filter(([name]) => !(name in lent))), 1);
    } else this.takeResources(record.spec.resources, 1);
    this.queueResourceWaiters();
  }

  /** Tasks that waited for GPUs or custom resources go to the queue, in order, while there are enough. */
  queueResourceWaiters(): void {
    const waiting = this.waitingForResources.splice(0);
    for (const next of waiting) {
      if (next.state !== 'queued') continue;
      if (this.reserveResources(next)) {
        this.context.envs.toWorkerQueue(next);
        this.context.dispatcher.scheduleDispatch();
      } else this.waitingForResources.push(next);
    }
  }
}
