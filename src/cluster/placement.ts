/**
 * Where a task or an actor runs, as Ray's hybrid policy: a task runs on its own node while that
 * node is less than half busy; past that, on one of the least-loaded nodes that can run it (chosen
 * at random among the best few, so that many submitters do not all pick the same node). SPREAD
 * goes round the nodes; { nodeId, soft } names one; a task whose arguments are large goes where
 * most of their bytes are. Decided from this node's views of the others (their last reports, plus
 * what this node sent there since), so it may be stale: a node sent what it cannot run refuses it
 * (spillback, in remote-tasks.ts).
 */
import { InvalidOptionError } from '../errors/index.js';
import { demandOf } from '../node/index.js';
import { groupsIn } from '../placement-group/resources.js';
import type { ActorSpec, ResourceMap, TaskSpec } from '../protocol/index.js';
import { type AgentContext, type View } from './context.js';

/** Below this share of its CPUs in use, a node runs its own tasks (Ray's scheduler_spread_threshold). */
const SPREAD_THRESHOLD = 0.5;

export class Placement {
  constructor(private readonly context: AgentContext) {}

  private spreadNext = 0;

  /**
   * The node to run on: this one, another, undefined when none can now (wait), or the error
   * to fail with (hard affinity to a node that cannot run it).
   */
  place(spec: TaskSpec | ActorSpec, canRunHere: boolean, isActor: boolean): string | undefined | Error {
    const demand = demandOf(spec);
    const strategy = spec.strategy;
    // A detached actor outlives its driver, so it is not placed in one.
    const detached = !('taskId' in spec) && spec.detached === true;
    if (detached && this.context.views.get(this.context.self)?.info.isDriver === true) canRunHere = false;
    const feasible = [...this.context.views.values()].filter(
      (view) => this.fits(view.info.resources, demand) && (view.info.nodeId !== this.context.self || canRunHere) && !(detached && view.info.isDriver),
    );
    const name = 'taskId' in spec ? `task ${spec.name}` : `actor ${spec.className}`;
    if (typeof strategy === 'object') {
      const view = this.context.views.get(strategy.nodeId);
      if (view !== undefined && feasible.includes(view)) return strategy.nodeId;
      if (!strategy.soft) {
        const why = view === undefined ? 'is not an alive node of this cluster' : `cannot run it (it has ${describe(view.info.resources)}; it needs ${describe(demand)})`;
        return new InvalidOptionError(
          `${name} has schedulingStrategy { nodeId: '${strategy.nodeId}' }, which ${why}; ` +
            'name a node from nodes() that has the resources, or pass soft: true to let it run elsewhere',
          'schedulingStrategy',
        );
      }
    }
    if (feasible.length === 0) {
      // In a placement group: it waits for its bundle (helper pg), unless the group is gone.
      const groups = groupsIn(spec.resources);
      const removed = groups.find((group) => this.context.node.removedGroups.has(group));
      if (removed !== undefined) return this.context.node.groupRemovedError(removed);
      if (this.context.canGrow || groups.length > 0) return undefined;
      return this.context.node.infeasibleError(name, spec);
    }
    if (strategy === 'SPREAD') return (feasible[this.spreadNext++ % feasible.length] as View).info.nodeId;
    // A task whose arguments are large goes where most of their bytes are, if it can run there now.
    if (!isActor && spec.dependencies.length > 0) {
      let best: [string, number] | undefined;
      for (const entry of this.context.node.remoteObjects.bytesByNode(spec.dependencies)) if (best === undefined || entry[1] > best[1]) best = entry;
      if (best !== undefined && best[1] > this.context.inlineLimit) {
        const view = this.context.views.get(best[0]);
        if (view !== undefined && feasible.includes(view) && (best[0] === this.context.self ? this.localUse(demand) <= 1 : this.fits(this.free(view), demand))) return best[0];
      }
    }
    // DEFAULT: here while this node is not busy (an actor, where it has the CPUs free).
    if (canRunHere && this.localUse(demand) < SPREAD_THRESHOLD && !(isActor && this.context.node.options.numCpus === 0)) return this.context.self;
    const withRoom = feasible.filter((view) => this.fits(this.free(view), demand) && !(isActor && view.info.resources['CPU'] === 0));
    const candidates = withRoom.length > 0 ? withRoom : feasible.filter((view) => !(isActor && view.info.resources['CPU'] === 0));
    if (candidates.length === 0) return (feasible[0] as View).info.nodeId;
    // Nothing free anywhere: a task that can run here waits here.
    if (withRoom.length === 0 && canRunHere && !isActor) return this.context.self;
    candidates.sort((a, b) => this.use(a) - this.use(b));
    const k = Math.max(1, Math.ceil(candidates.length * 0.2));
    return (candidates[Math.floor(Math.random() * Math.min(k, candidates.length))] as View).info.nodeId;
  }

  private fits(have: ResourceMap, demand: ResourceMap): boolean {
    for (const [name, amount] of Object.entries(demand)) if (amount > 0 && (have[name] ?? 0) + 1e-9 < amount) return false;
    return true;
  }

  /** What a node has free, as this node sees it (its last report, less what was sent there since). */
  private free(view: View): ResourceMap {
    if (view.info.nodeId === this.context.self) return this.context.node.available();
    return { ...view.available, CPU: (view.available['CPU'] ?? 0) - view.sentCpus - view.actorCpus };
  }

  private use(view: View): number {
    if (view.info.nodeId === this.context.self) return this.localUse({});
    const total = view.info.resources['CPU'] ?? 0;
    if (total === 0) return 1;
    return 1 - (this.free(view)['CPU'] ?? 0) / total;
  }

  /** This node's share of CPUs in use, counting its queue, if it took `demand` too. */
  private localUse(demand: ResourceMap): number {
    const total = this.context.node.options.numCpus;
    if (total === 0) return 1;
    const used = total - (this.context.node.available()['CPU'] ?? 0) + this.context.node.queuedTasks + (demand['CPU'] ?? 0);
    return used / total;
  }

  /** Every alive node's totals, as the view has them (for the warning of a request no node can meet). */
  nodeTotals(): ResourceMap[] {
    return [...this.context.views.values()].filter((view) => !view.info.isDriver || Object.values(view.info.resources).some((amount) => amount > 0)).map((view) => view.info.resources);
  }
}

/** What a task or actor that no node can run says while it waits for one. */
export function warnWaiting(what: string, spec: TaskSpec | ActorSpec, nodes: readonly ResourceMap[]): void {
  // What the cluster has in all, placement groups' names left out: what the request is measured against.
  const totals: Record<string, number> = {};
  for (const node of nodes) for (const [name, amount] of Object.entries(node)) if (groupsIn({ [name]: amount }).length === 0) totals[name] = (totals[name] ?? 0) + amount;
  console.warn(
    `miniray: ${what} needs ${describe(demandOf(spec))}, which no node of the cluster has; ` +
      'it waits until a node that has them joins (miniray start --address ... --num-cpus/--num-gpus/--resources). ' +
      `The cluster has ${describe(totals)} in all, over ${nodes.length} node(s).`,
  );
}

export function describe(resources: ResourceMap): string {
  return Object.entries(resources)
    .filter(([, amount]) => amount > 0)
    .map(([name, amount]) => `${amount} ${name}`)
    .join(', ') || 'nothing';
}
