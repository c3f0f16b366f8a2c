/**
 * Tasks (and actor calls, for remote-actors.ts) this node owns that run on other nodes: where each
 * goes (Placement), sending it with its arguments and, the first time on each link, its function's
 * definition, taking its return values back, spillback when the node it was sent to cannot run
 * it, and what waits for a node that can (a node may join). Work sent to a node that dies is lost
 * at once (the owner's node retries it within its maxRetries), whatever its connection does.
 */
import { NodeDiedError, PlacementGroupRemovedError } from '../errors/index.js';
import type { RemoteWork } from '../node/index.js';
import { groupsIn } from '../placement-group/resources.js';
import type { TaskSpec } from '../protocol/index.js';
import { encodeError, type FunctionDescriptor } from '../serialization/index.js';
import { type AgentContext } from './context.js';
import { answers } from './messages.js';
import { warnWaiting, type Placement } from './placement.js';

export class RemoteTasks {
  constructor(
    private readonly context: AgentContext,
    private readonly placement: Placement,
  ) {}

  /** Tasks no node can run now: they wait for one that can (a node may join). */
  private readonly parked: { work: RemoteWork; canRunHere: boolean }[] = [];

  /** Parked tasks already warned of. */
  private readonly warnedParked = new WeakSet<RemoteWork>();

  /** Work sent to each node and not back: a death fails it at once, whatever its connection does. */
  private readonly inFlight = new Map<string, Set<(error: NodeDiedError) => void>>();

  /** Where each task sent to another node went (by its first return ID), until it is back. */
  private readonly sentTo = new Map<string, string>();

  takeTask(work: RemoteWork, canRunHere: boolean): boolean {
    if (this.context.deathReason !== undefined) {
      // No node of the cluster takes work from a dead node (each refusal would cost a retry, for
      // ever with maxRetries -1): it runs here if it can, else fails (not lost(), which retries).
      const pinnedElsewhere = typeof work.spec.strategy === 'object' && !work.spec.strategy.soft && work.spec.strategy.nodeId !== this.context.self;
      if (canRunHere && !pinnedElsewhere) return false;
      const error = encodeError(this.context.deadError());
      work.done(work.spec.returnIds.map((id) => ({ id, state: 'failed', data: error })));
      return true;
    }
    // Alone (the embedded default), with no node named: no choice to make.
    if (canRunHere && this.context.otherNodes === 0 && typeof work.spec.strategy !== 'object') return false;
    const target = this.placement.place(work.spec, canRunHere, false);
    if (target === this.context.self) return false;
    if (target === undefined) {
      this.park(work, canRunHere);
      return true;
    }
    if (target instanceof Error) {
      work.done(work.spec.returnIds.map((id) => ({ id, state: 'failed', data: encodeError(target) })));
      return true;
    }
    this.send(work, target);
    return true;
  }

  private park(work: RemoteWork, canRunHere: boolean): void {
    this.parked.push({ work, canRunHere });
    // Parked again at each resource report that does not help it: said once.
    if (this.warnedParked.has(work)) return;
    this.warnedParked.add(work);
    if (work.runHere === undefined) warnWaiting(`task ${work.spec.name}`, work.spec, this.placement.nodeTotals());
    else this.failIfGroupGone(work);
  }

  /**
   * A task that waits for its group's bundle: if the GCS does not know the group (its creation was
   * refused, on the node that asked: a name taken, say) or it was removed, no bundle will ever come,
   * and the task fails instead of waiting for ever. (The creator's node fails its own work when it
   * is refused; this is for work that reached another node, in a task handed the group.) A group
   * the GCS does not know yet may be on its way there (created a moment ago, on another
   * connection): it is asked again, and the task fails only if the group is still unknown after
   * about 5 s.
   */
  private failIfGroupGone(work: RemoteWork, asked = 0): void {
    for (const placementGroupId of groupsIn(work.spec.resources)) {
      void this.context.gcs.call('getPlacementGroup', { placementGroupId }).then(
        (entry) => {
          if (entry !== null && entry.state !== 'REMOVED') return;
          const at = this.parked.findIndex((parked) => parked.work === work);
          if (at < 0) return; // placed meanwhile, or failed already
          if (entry === null && asked < 2) {
            setTimeout(() => this.failIfGroupGone(work, asked + 1), asked === 0 ? 1000 : 4000).unref();
            return;
          }
          this.parked.splice(at, 1);
          const error = new PlacementGroupRemovedError(
            `task ${work.spec.name} cannot run in placement group ${placementGroupId}: ${entry === null ? 'the GCS has no such group (its creation was refused, or its creator left)' : 'it was removed'}. Create the group again, and wait for pg.ready() before you use it`,
          );
          work.done(work.spec.returnIds.map((id) => ({ id, state: 'failed', data: encodeError(error) })));
        },
        () => {}, // the GCS is away: the task waits, as any parked task does
      );
    }
  }

  unpark(): void {
    if (this.parked.length === 0) return;
    // Parked tasks cannot run here (else they would have), so each goes to a node or parks again.
    for (const { work, canRunHere } of this.parked.splice(0)) {
      // A task in a placement group whose bundle is now here runs here (helper pg).
      if (work.runHere === undefined) this.takeTask(work, canRunHere);
      else if (!this.takeTask(work, this.context.node.canRun(work.spec))) work.runHere();
    }
  }

  /** Sends a task or actor call to `nodeId` and hands its return values to `work` when they come. */
  send(work: RemoteWork, nodeId: string): void {
    const link = this.context.links.link(nodeId);
    if (link === undefined) {
      work.lost(new NodeDiedError(`node ${nodeId.slice(0, 8)} is not alive`));
      return;
    }
    const { spec } = work;
    const view = this.context.views.get(nodeId);
    if (view !== undefined) view.sentCpus += spec.numCpus;
    const functions: FunctionDescriptor[] = [];
    if (work.function !== undefined && !link.knownFunctions.has(work.function.id)) {
      link.knownFunctions.add(work.function.id);
      functions.push(work.function);
      this.context.functions.publish(work.function);
    }
    const args = spec.dependencies.map((id) => this.context.node.remoteObjects.valueFor(id, this.context.inlineLimit));
    const returnId = spec.returnIds[0] as string;
    this.sentTo.set(returnId, nodeId);
    // Settled once: by the answer, by the request failing, or by the node's death (whichever is first).
    let settled = false;
    const abort = new AbortController();
    let sent = this.inFlight.get(nodeId);
    if (sent === undefined) this.inFlight.set(nodeId, (sent = new Set()));
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      this.inFlight.get(nodeId)?.delete(lose);
      if (view !== undefined) view.sentCpus -= spec.numCpus;
      this.sentTo.delete(returnId);
      return true;
    };
    const lose = (error: NodeDiedError): void => {
      if (!settle()) return;
      abort.abort(error);
      if (functions.length > 0) link.knownFunctions.delete((work.function as FunctionDescriptor).id);
      work.lost(error);
    };
    sent.add(lose);
    link.peer
      // A task whose events this node sampled out (src/state/events.ts): the node that runs it skips them too.
      .then((peer) => peer.request('executeTask', !work.traced ? { functions, spec, args, attempt: work.attempt, untraced: true } : { functions, spec, args, attempt: work.attempt }, { signal: abort.signal }))
      .then(
        (answer) => {
          if (!settle()) return;
          const result = answers.executed(answer);
          if ('spillback' in result) this.spillback(work, nodeId, result.spillback);
          else work.done(result, nodeId);
        },
        (error: unknown) => lose(new NodeDiedError(`node ${nodeId.slice(0, 8)} could not run ${spec.name}: ${(error as Error).message}`, { cause: error })),
      );
  }

  /** A node refused a task it cannot run (this node's view of it was stale): it is placed again. */
  private spillback(work: RemoteWork, refusedBy: string, reason: string): void {
    const view = this.context.views.get(refusedBy);
    if (view !== undefined) view.available = {}; // no room there, as far as this node knows, until it reports again
    if (!this.takeTask(work, false)) work.lost(new NodeDiedError(`spilled back by node ${refusedBy.slice(0, 8)}: ${reason}`));
  }

  cancelRemote(spec: TaskSpec, force: boolean, recursive = false): void {
    this.cancelSent(spec.returnIds[0] as string, force, recursive);
  }

  /** Asks the node a task or actor call was sent to to cancel it; false if it was not sent (or has reported). */
  cancelSent(returnId: string, force: boolean, recursive: boolean): boolean {
    const nodeId = this.sentTo.get(returnId);
    if (nodeId === undefined) return false;
    this.context.links.tell(this.context.links.get(nodeId), 'cancelTask', recursive ? { returnId, force, recursive } : { returnId, force });
    return true;
  }

  /**
   * Another node is dead (the GCS's event): work sent there fails over now, to be retried
   * elsewhere within its maxRetries (the same path as a closed connection), not when, if ever, its
   * connection gives up (a cut-off host's TCP connection can stay open for minutes).
   */
  nodeDied(nodeId: string): void {
    const sent = this.inFlight.get(nodeId);
    this.inFlight.delete(nodeId);
    for (const lose of sent ?? []) lose(new NodeDiedError(`node ${nodeId.slice(0, 8)} died (the GCS declared it dead) while it ran this task`));
  }

  /**
   * The GCS declared this node dead: work it sent elsewhere fails with NodeDiedError (those nodes
   * have dropped it).
   */
  failInFlight(): void {
    for (const [nodeId, sent] of this.inFlight) {
      this.inFlight.delete(nodeId);
      for (const lose of sent) lose(this.context.deadError());
    }
  }

  /** A placement group was removed: the tasks that wait for one of its bundles fail with `error`. */
  failParkedIn(placementGroupId: string, error: Error): void {
    for (const parked of this.parked.splice(0)) {
      if (groupsIn(parked.work.spec.resources).includes(placementGroupId)) parked.work.done(parked.work.spec.returnIds.map((id) => ({ id, state: 'failed', data: encodeError(error) })));
      else this.parked.push(parked);
    }
  }
}
