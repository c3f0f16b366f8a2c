/**
 * Work other nodes sent this one: their tasks and actor calls (run here, their values answered
 * back; cancelled if their owner's node dies), the actors they placed here, and what goes back to
 * the owners while the work runs (streaming tasks' items, with their backpressure acks, and the
 * output lines of their tasks), on the connection the work came over, ahead of its result.
 */
import { NodeDiedError } from '../errors/index.js';
import type { Peer } from '../net/index.js';
import type { ForwardedLogLine } from '../node/index.js';
import { keptBySender, type RemoteValue, type TaskSpec } from '../protocol/index.js';
import { formatLogLine } from '../state/log-lines.js';
import { type AgentContext } from './context.js';
import type { CreateActor, ExecuteTask } from './messages.js';
import type { ObjectTransfer } from './object-transfer.js';
import { describe } from './placement.js';

export class WorkForPeers {
  constructor(
    private readonly context: AgentContext,
    private readonly objects: ObjectTransfer,
  ) {}

  /** Tasks other nodes sent here that have not finished, by their owner's node (first return IDs). */
  private readonly runningFor = new Map<string, Set<string>>();

  // generators
  /** Backpressure acks of streaming tasks that run here for another node, by generator ID (while they run). */
  private readonly streamAcks = new Map<string, (consumed: number) => void>();

  generatorItem(spec: TaskSpec, index: number, value: RemoteValue, ack: (consumed: number) => void): void {
    const ownerNode = spec.owner.nodeId;
    const generatorId = spec.returnIds[0] as string;
    if (spec.returns?.kind === 'streaming' && spec.returns.backpressure !== undefined) this.streamAcks.set(generatorId, ack);
    if (keptBySender(value)) this.objects.keep(ownerNode, spec.owner.workerId, value.id);
    if (this.context.deadNodes.has(ownerNode)) return;
    // On the connection the task came over: ahead of its result, which follows on it.
    const route = this.logRoutes.get(ownerNode);
    const peer = route !== undefined ? Promise.resolve(route) : this.context.links.link(ownerNode)?.peer;
    peer?.then((connected) => connected.notify('generatorItem', { generatorId, index, value })).catch(() => {});
  }

  // ---- logs (issue 12) ----
  /** The connection each owner's tasks came over: their output goes back on it, ahead of their results. */
  private readonly logRoutes = new Map<string, Peer>();

  forwardLogs(ownerNode: string, lines: readonly ForwardedLogLine[]): void {
    if (this.context.deadNodes.has(ownerNode)) return;
    const route = this.logRoutes.get(ownerNode);
    const peer = route !== undefined ? Promise.resolve(route) : this.context.links.link(ownerNode)?.peer;
    // An owner gone (or unreachable) has nowhere to show them: they are in this node's stdout and ring.
    peer?.then((connected) => connected.notify('taskLogs', { lines })).catch(() => {});
  }

  /** executeTask: runs a task or an actor call that `peer`'s node owns, and answers its return values (or spillback). */
  async executeTask({ functions, spec, args, attempt, untraced }: ExecuteTask, peer: Peer): Promise<readonly RemoteValue[] | { spillback: string }> {
    const node = this.context.node;
    if (this.context.deadNodes.has(peer.hello.nodeId)) throw new NodeDiedError(`node ${peer.hello.nodeId} was declared dead by the GCS: this node takes no work from it`);
    if (spec.actorId === undefined && !node.canRun(spec)) return { spillback: `it offers ${describe({ CPU: node.options.numCpus, ...node.options.resources })}` };
    // With the definition at hand the task starts in this same turn, so that the tasks sent
    // right behind it without one (known to be sent already) find it here, not in the GCS,
    // which they would wait for while the head is down.
    const atHand = spec.actorId !== undefined || functions.some((fn) => fn.id === spec.functionId) || node.knowsFunction(spec.functionId);
    const definitions = atHand ? functions : await this.context.functions.withDefinition(functions, spec.functionId);
    // A task, until it ends: cancelled if its owner's node dies meanwhile (see ownerDied).
    const owner = spec.owner.nodeId;
    if (owner === peer.hello.nodeId) this.logRoutes.set(owner, peer);
    const returnId = spec.returnIds[0] as string;
    let running = this.runningFor.get(owner);
    if (spec.actorId === undefined) {
      if (running === undefined) this.runningFor.set(owner, (running = new Set()));
      running.add(returnId);
    }
    return new Promise<RemoteValue[]>((resolve) =>
      node.runForPeer(definitions, spec, args, this.context.inlineLimit, (values) => {
        running?.delete(returnId);
        this.streamAcks.delete(returnId); // generators
        if (running?.size === 0 && this.runningFor.get(owner) === running) this.runningFor.delete(owner);
        for (const value of values) if (keptBySender(value)) this.objects.keep(peer.hello.nodeId, spec.owner.workerId, value.id);
        resolve(values);
      }, attempt ?? 0, untraced === true),
    );
  }

  /** createActor: an actor another node placed here. */
  createActor({ functions, spec, args }: CreateActor): void {
    const node = this.context.node;
    // At once when the definition is at hand (calls to the actor may follow on this
    // connection, and must find it); only a definition this node was not sent is read first.
    if (functions.some((fn) => fn.id === spec.classId) || node.knowsFunction(spec.classId)) node.createActorForPeer(functions, spec, args);
    else void this.context.functions.withDefinition(functions, spec.classId).then((definitions) => node.createActorForPeer(definitions, spec, args));
  }

  /** generatorAck: the owner has read `consumed` items of a stream that runs here. */
  generatorAck(generatorId: string, consumed: number): void {
    this.streamAcks.get(generatorId)?.(consumed);
  }

  /**
   * A node died (called from removeNode): the tasks it sent here stop, since their owner is gone
   * (running ones have their worker terminated, queued ones are dropped), as Ray's raylet kills
   * the workers leased to a dead owner.
   */
  ownerDied(nodeId: string): void {
    const owned = this.runningFor.get(nodeId);
    this.runningFor.delete(nodeId);
    for (const returnId of owned ?? []) this.context.node.cancel(returnId, true);
  }

  /** A node's connection closed: its tasks' output and items have no route to follow. */
  peerGone(nodeId: string): void {
    this.logRoutes.delete(nodeId);
  }
}

/**
 * Lines of this node's tasks that ran on node `nodeId`, written to this process's stdout and
 * stderr with the prefix the executing worker gave them, as if the task had run here.
 */
export function writeForwardedLogs(nodeId: string, lines: readonly ForwardedLogLine[]): void {
  let out = '';
  let err = '';
  for (const line of lines) {
    const shown = `${formatLogLine({ ...line, nodeId })}\n`;
    if (line.stream === 'stdout') out += shown;
    else err += shown;
  }
  if (out !== '') process.stdout.write(out);
  if (err !== '') process.stderr.write(err);
}
