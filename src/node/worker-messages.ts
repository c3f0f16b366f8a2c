/**
 * What workers say to their node: every message a worker sends is checked against what the worker
 * was given, then acted on (results, puts, submits, refs, leases, get() waits, generator items,
 * output lines, requests), and a worker's exit sends its tasks back or fails them. A message that
 * names what its worker has no business with marks the worker as crashed (onBadMessage); anything
 * the node's own handling throws is logged as an internal error. What a worker asks of the node
 * goes through the node's doors (NodeDoors), the same ones the driver's calls go through
 * (local-client.ts), so that a worker and the driver take one path.
 */
import { setting } from '../config/index.js';
import { OutOfMemoryError, OwnerDiedError, WorkerCrashedError } from '../errors/index.js';
import type { ActorIdHex } from '../ids/index.js';
import type { Block } from '../object-store/index.js';
import { generatorItemId } from '../object-ref/generator.js';
import type {
  ActorInfo,
  ActorLookupCallback,
  ActorSpec,
  ClusterAnswer,
  ClusterQuery,
  GeneratorAnswer,
  NewObject,
  ObjectPayload,
  PollEnd,
  TaskResult,
  TaskSpec,
  WorkerLogLine,
  WorkerToNode,
} from '../protocol/index.js';
import { keptBySender, NameAnswer } from '../protocol/index.js';
import { encodeError, type FunctionDescriptor } from '../serialization/index.js';
import { PENDING_NODE_ASSIGNMENT } from '../state/events.js';
import type { LogRing } from '../state/log-lines.js';
import type { ForwardedLogLine } from './cluster-link.js';
import type { NodeContext } from './context.js';
import { functionIdOf, type TaskRecord, type Worker } from './task-manager.js';
import { WorkerRequests } from './worker-requests.js';

const POLL_END: PollEnd = Object.freeze({ pollEnd: true });

/** The node's own methods that workers' messages call (the Node has them; this module does not import it). */
export interface NodeDoors {
  /** The driver's worker ID, to name it in messages. */
  readonly driverId: string;
  submit(functions: readonly FunctionDescriptor[], specs: readonly TaskSpec[]): void;
  createActor(functions: readonly FunctionDescriptor[], spec: ActorSpec, throwIfNameTaken?: boolean): ActorInfo | undefined;
  killActor(actorId: string, noRestart: boolean): void;
  lookupActor(name: string, namespace: string, callback: ActorLookupCallback): void;
  clusterInfo(query: ClusterQuery, callback: (answer: ClusterAnswer) => void): void;
  fetch(ids: readonly string[], withData: boolean, onObject: (object: ObjectPayload) => void, reader?: Worker, fetchLocal?: boolean): () => void;
  addRefs(thread: string, ids: readonly string[], owners?: readonly string[]): void;
  releaseLeases(leases: readonly number[]): void;
  cancel(objectId: string, force: boolean, recursive?: boolean): void;
  generatorNext(thread: string, generatorId: string, index: number, answer: (answer: GeneratorAnswer) => void, peek?: boolean): void;
  generatorDropped(thread: string, generatorId: string): void;
}

type Building<T> = { -readonly [K in keyof T]: T[K] };

export class WorkerMessages {
  /**
   * `logRing`: where workers' output lines are kept (the node serves them to the state API);
   * `runTimeUs`: each function's recent run time, which results update (the scheduler reads it).
   */
  constructor(
    private readonly context: NodeContext,
    private readonly node: NodeDoors,
    private readonly logRing: LogRing,
    private readonly runTimeUs: Map<string, number>,
  ) {}

  /** Workers that sent something malformed: handled as crashed, nothing more of theirs is read. */
  private readonly badWorkers = new WeakSet<Worker>();
  /** Workers that have said `ready` (once each). */
  private readonly readyWorkers = new WeakSet<Worker>();
  /** Tasks of each worker waiting in get() (`blocked` and not yet `unblocked`). */
  private readonly blockedTasks = new Map<Worker, number>();
  private startupFailures = 0;

  /** Read once, here: a bad value fails init(), not some later message's handling. */
  private readonly workerStartupFailureLimit = setting('workerStartupFailureLimit');

  /**
   * Generator items up to this size go inline to their owner's node, as returns do (the
   * cluster-wide setting maxInlineObjectBytes, read once: a node that joins is built after it
   * adopted the head's settings).
   */
  private readonly inlineItemLimit = setting('maxInlineObjectBytes');

  /**
   * Item `index` yielded by the streaming task or actor call `spec`, running on `worker` as `seq`:
   * stored here for the stream if this node owns it, else sent to the owner's node. Returns what is
   * wrong with the report instead.
   */
  private onGeneratorItem(worker: Worker, message: Extract<WorkerToNode, { type: 'generatorItem' }>, attached: readonly SharedArrayBuffer[]): string | undefined {
    const { seq } = message;
    if (seq < 1 || seq >= worker.nextSeq) return `reports an item of seq ${seq}, which it was never given`;
    const spec = worker.role === 'task' ? worker.inFlight.get(seq)?.spec : this.context.actors.callSpec(worker, seq);
    if (spec === undefined) return undefined; // reported or taken back already: a late item is not kept
    if (spec.returns?.kind !== 'streaming') return `reports an item of ${spec.name} (seq ${seq}), which is not a streaming generator`;
    const problem = this.context.delivery.checkParts(message.parts, attached, `has item ${message.index} whose`);
    if (problem !== undefined) return problem;
    const generatorId = spec.returnIds[0] as string;
    const result: Building<Extract<TaskResult, { outcome: 'ok' }>> = { seq, outcome: 'ok', values: [message.value], us: 0 };
    if (message.parts !== undefined) result.parts = [message.parts];
    if (message.nested !== undefined) result.nested = [message.nested];
    const store = (id: string): void => this.context.delivery.storeResult(worker, [id], result, attached);
    const ack = (consumed: number): void => {
      if (worker.alive) worker.channel.send({ type: 'generatorAck', seq, consumed });
    };
    if (spec.owner.nodeId === this.context.nodeId) return this.context.streams().item(generatorId, message.index, store, `${worker.id}:${seq}`, ack);
    // The task runs here for another node: the item is stored here, then sent to its owner's node.
    const id = generatorItemId(generatorId, message.index);
    if (this.context.objects.get(id) !== undefined) return undefined; // a retry's repeat, sent already
    this.context.objects.addPending(id, spec.owner.workerId, undefined);
    store(id);
    const value = this.context.remoteObjects.valueFor(id, this.inlineItemLimit);
    // Sent inline: the owner has the value, nothing here needs it any more (as runForPeer's returns).
    if (!keptBySender(value)) this.context.objects.removeHandles(spec.owner.workerId, [id]);
    this.context.cluster?.generatorItem(spec, message.index, value, ack);
    return undefined;
  }

  /**
   * Everything a worker says arrives here, checked for shape by its channel (parseWorkerToNode).
   * What a message points at is checked here, before anything changes: a message that names a seq,
   * an attachment, a lease or an ID it has no business with marks its worker as crashed. Only
   * those checks blame the worker: anything thrown while handling a message is the node's own
   * fault (a bug), so it is logged as an internal error and the node goes on; it must not escape
   * either, as it would end the process from the worker's event.
   */
  onWorkerMessage(worker: Worker, message: WorkerToNode, attached: readonly SharedArrayBuffer[]): void {
    if (this.badWorkers.has(worker)) return;
    try {
      const problem = this.handleWorkerMessage(worker, message, attached);
      if (problem !== undefined) this.onBadMessage(worker, `its '${message.type}' message ${problem}`);
    } catch (error) {
      this.onInternalError(worker, message.type, error);
    }
  }

  /** Internal errors logged already (by message and where thrown): each is logged once, however often it recurs. */
  private readonly internalErrorsLogged = new Set<string>();

  private onInternalError(worker: Worker, messageType: string, error: unknown): void {
    const stack = error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
    const thrownAt = stack.split('\n').find((line) => line.trimStart().startsWith('at ')) ?? '';
    const key = `${messageType}|${error instanceof Error ? error.message : stack}|${thrownAt}`;
    if (this.internalErrorsLogged.has(key)) return;
    if (this.internalErrorsLogged.size < 100) this.internalErrorsLogged.add(key);
    console.error(
      `miniray: internal error while handling a '${messageType}' message of worker ${worker.id.slice(0, 8)} ` +
        '(a bug in miniray, not in the worker or your code; please report it). ' +
        `The node goes on, but what that message was to do may be left undone:\n${stack}`,
    );
  }

  /**
   * A worker sent something malformed, or something that does not fit what it was given: it is
   * handled as crashed (its tasks go back as after its death, its actors restart if they may), and
   * replaced. Logged once per worker.
   */
  onBadMessage(worker: Worker, problem: string): void {
    if (this.badWorkers.has(worker) || !worker.alive || this.context.stopped) return;
    this.badWorkers.add(worker);
    const what = worker.role === 'actor' ? 'actor host' : 'worker';
    console.error(
      `miniray: ${what} ${worker.id.slice(0, 8)} sent a malformed message: ${problem}. ` +
        'It is handled as crashed: its tasks are retried as after a crash, and it is replaced.',
    );
    worker.exitError = new Error(`it sent a malformed message: ${problem}`);
    worker.accepting = false; // no more tasks for it while it goes
    worker.channel.close();
    // Nothing more goes to its actors; they move on (restart or die) at its exit, once it is known
    // which of their calls had started.
    if (worker.role === 'actor') this.context.actors.onHostBad(worker);
    this.context.pool.endAsCrashed(worker); // not pool.kill(): its exit is a crash, not a deliberate end
  }

  /** Acts on one message; returns what is wrong with it instead, having changed nothing. */
  private handleWorkerMessage(worker: Worker, message: WorkerToNode, attached: readonly SharedArrayBuffer[]): string | undefined {
    switch (message.type) {
      case 'ready':
        if (this.readyWorkers.has(worker)) return 'came twice';
        this.readyWorkers.add(worker);
        this.startupFailures = 0;
        this.context.startupError = undefined; // workers start again
        if (worker.role === 'actor') this.context.actors.onHostReady(worker);
        else this.context.dispatcher.scheduleDispatch();
        return undefined;
      case 'logs':
        this.onLogs(worker, message.lines);
        return undefined;
      case 'results': {
        const problem = this.checkResults(worker, message.results, attached);
        if (problem !== undefined) return problem;
        if (worker.role === 'actor') this.context.actors.onResults(worker, message.results, attached);
        else this.onResults(worker, message.results, attached);
        return undefined;
      }
      case 'createActor': {
        const { spec } = message;
        if (this.context.actors.has(spec.actorId)) return `creates actor ${spec.actorId}, which exists already`;
        const problem = this.checkOwner(worker, spec.owner) ?? this.checkFunctions(message.functions);
        if (problem !== undefined) return problem;
        if (message.answerAtOnce === true && worker.answers !== undefined) {
          // The thread waits: a name this node knows is taken throws at its .remote(), as in the
          // driver, and nothing is made. Unless it stopped waiting: then the actor is created dead.
          const taken = this.context.actors.nameTaken(spec) !== undefined;
          const answered = Atomics.compareExchange(worker.answers, 0, NameAnswer.pending, taken ? NameAnswer.taken : NameAnswer.free) === NameAnswer.pending;
          Atomics.notify(worker.answers, 0);
          if (taken && answered) return undefined;
        }
        // A process (or a thread that stopped waiting) cannot be refused at once: a taken name's actor is created dead.
        this.node.createActor(message.functions, spec, false);
        return undefined;
      }
      case 'request':
        return this.workerRequests.receive(worker, message);
      case 'cancelRequest':
        this.workerRequests.cancel(worker, message.id);
        return undefined;
      case 'killActor':
        this.node.killActor(message.actorId, message.noRestart);
        return undefined;
      case 'submit': {
        const problem = this.checkSubmit(worker, message.tasks) ?? this.checkFunctions(message.functions);
        if (problem !== undefined) return problem;
        this.node.submit(message.functions, message.tasks);
        return undefined;
      }
      case 'put': {
        const problem = this.checkPut(message.objects, attached);
        if (problem !== undefined) return problem;
        if (this.context.taskEvents.coreTraced()) this.context.taskEvents.core('put', worker.id, Date.now(), message.objects.length);
        // A worker's put() has returned already: an object that does not fit becomes its error.
        for (const object of message.objects) {
          let blocks: Block[];
          try {
            blocks = this.context.delivery.blocksFrom(object.parts, attached);
          } catch (error) {
            this.context.objects.setObject(object.id, encodeError(error as Error), true, { owner: worker.id });
            continue;
          }
          this.context.objects.setObject(object.id, object.data, object.failed === true, { owner: worker.id, blocks, nested: object.nested });
        }
        return undefined;
      }
      case 'addRefs':
        this.node.addRefs(worker.id, message.ids, message.owners);
        return undefined;
      case 'removeRefs':
        this.context.objects.removeHandles(worker.id, message.ids);
        return undefined;
      case 'releaseLeases': {
        for (const lease of message.leases) {
          const holder = this.context.objects.leaseHolder(lease);
          if (holder === undefined) return `releases lease ${lease}, which was never given out`;
          if (holder !== null && holder !== worker.id) return `releases lease ${lease}, which was given to ${this.threadName(holder)}, not to it`;
        }
        this.node.releaseLeases(message.leases);
        return undefined;
      }
      case 'blocked': {
        // Only a task can wait in get() with its CPU lent out; each blocked task is one of those it runs.
        const blocked = this.blockedTasks.get(worker) ?? 0;
        if (worker.role === 'actor') return 'comes from an actor host, whose CPUs are held by its actors';
        if (blocked >= worker.inFlight.size) return `says a task waits in get(), but it has ${worker.inFlight.size - blocked} task(s) that could`;
        this.blockedTasks.set(worker, blocked + 1);
        this.context.scheduler.onBlocked(worker);
        if (this.context.resources.groupTotals.size > 0) this.context.resources.lendGroupCpus(worker); // helper pg
        this.context.dispatcher.scheduleDispatch();
        return undefined;
      }
      case 'unblocked': {
        const blocked = this.blockedTasks.get(worker) ?? 0;
        if (blocked === 0) return 'says a task stopped waiting in get(), but none was waiting';
        if (blocked === 1) this.blockedTasks.delete(worker);
        else this.blockedTasks.set(worker, blocked - 1);
        this.context.scheduler.onUnblocked(worker);
        if (this.context.resources.lentGroupCpus !== undefined && this.context.resources.lentGroupCpus.size > 0) this.context.resources.takeBackGroupCpus(worker); // helper pg
        return undefined;
      }
      case 'cancel':
        this.node.cancel(message.objectId, message.force, message.recursive === true);
        return undefined;
      // generators
      case 'generatorItem':
        return this.onGeneratorItem(worker, message, attached);
      case 'generatorDropped':
        this.node.generatorDropped(worker.id, message.generatorId);
        return undefined;
    }
  }

  /** The requests workers make of their node (the answered part of handleWorkerMessage). */
  private readonly workerRequests = new WorkerRequests<Worker>({
    get: (worker, request) => {
      let remaining = request.ids.length;
      const traced = this.context.taskEvents.coreTraced();
      const startMs = traced ? Date.now() : 0;
      const kind = request.withData ? 'get' : 'wait';
      const withdraw = this.node.fetch(
        request.ids,
        request.withData,
        (object) => {
          const done = --remaining === 0;
          if (done && traced) this.context.taskEvents.core(kind, worker.id, startMs, request.ids.length);
          if (!this.workerRequests.reply(worker, request.id, object, done) && object.state === 'ready' && object.lease !== undefined) this.context.objects.releaseLease(object.lease);
        },
        worker,
        request.fetchLocal === true,
      );
      if (remaining === 0) return undefined;
      const stop = () => (withdraw(), traced && this.context.taskEvents.core(kind, worker.id, startMs, request.ids.length));
      if (request.poll !== true) return stop;
      // A poll (timeoutMs 0): what exists now has been answered; the rest will not be.
      stop();
      this.workerRequests.reply(worker, request.id, POLL_END, true);
      return undefined;
    },
    lookupActor: (worker, request) => {
      this.node.lookupActor(request.name, request.namespace, (info, error) => (error === undefined ? this.workerRequests.reply(worker, request.id, info, true) : this.workerRequests.fail(worker, request.id, error)));
      return undefined;
    },
    clusterInfo: (worker, request) => {
      this.node.clusterInfo(request.query, (answer) => this.workerRequests.reply(worker, request.id, answer, true));
      return undefined;
    },
    // generators
    generatorNext: (worker, request) => {
      this.node.generatorNext(worker.id, request.generatorId, request.index, (answer) => this.workerRequests.reply(worker, request.id, answer, true), request.peek === true);
      return undefined;
    },
  });

  /**
   * Results must be for seqs the worker was given and has not reported, be cancelled only when the
   * node asked, and have one value per return.
   */
  private checkResults(worker: Worker, results: readonly TaskResult[], attached: readonly SharedArrayBuffer[]): string | undefined {
    for (let i = 0; i < results.length; i++) {
      const result = results[i] as TaskResult;
      const { seq } = result;
      if (seq < 1 || seq >= worker.nextSeq) return `has results[${i}] for seq ${seq}, which it was never given`;
      if (worker.role === 'task') {
        const record = worker.inFlight.get(seq);
        if (record === undefined) return `has results[${i}] for seq ${seq}, which it has reported already`;
        if (result.outcome === 'cancelled' && !record.cancelled) return `has results[${i}] saying seq ${seq} was cancelled, which it was not asked to`;
        if (result.outcome === 'ok' && result.values.length !== record.spec.returnIds.length) {
          return `has results[${i}] with ${result.values.length} value(s) for task ${record.spec.name}, which has ${record.spec.returnIds.length} return(s)`;
        }
      } else if (result.outcome === 'cancelled' && this.context.actors.awaits(worker, seq) && !this.context.actors.expectsCancelled(worker, seq)) {
        // A host reports calls cancelled only for actors the manager has let go of (destroyActor),
        // or is killing to restart them (a 'shared' actor drops its queued calls).
        return `has results[${i}] saying seq ${seq} was cancelled, which it was not asked to`;
      }
      // An actor call's values are counted by delivery.storeResult, which knows its returns.
      if (result.outcome === 'ok' && result.parts !== undefined) {
        for (let v = 0; v < result.parts.length; v++) {
          const problem = this.context.delivery.checkParts(result.parts[v], attached, `has results[${i}] value ${v} whose`);
          if (problem !== undefined) return problem;
        }
      }
    }
    return undefined;
  }

  /** Objects put must be new, named once, with parts the worker may send. */
  private checkPut(objects: readonly NewObject[], attached: readonly SharedArrayBuffer[]): string | undefined {
    const ids = objects.length > 1 ? new Set<string>() : undefined;
    for (let i = 0; i < objects.length; i++) {
      const object = objects[i] as NewObject;
      if (this.context.objects.get(object.id) !== undefined || this.context.store.contains(object.id)) return `puts objects[${i}] with ID ${object.id}, which exists already`;
      if (ids !== undefined) {
        if (ids.has(object.id)) return `puts ID ${object.id} twice`;
        ids.add(object.id);
      }
      const problem = this.context.delivery.checkParts(object.parts, attached, `has objects[${i}] whose`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }

  /** Tasks a worker submits are its own, and their return IDs are new. */
  private checkSubmit(worker: Worker, tasks: readonly TaskSpec[]): string | undefined {
    const returns = new Set<string>();
    for (let i = 0; i < tasks.length; i++) {
      const spec = tasks[i] as TaskSpec;
      const problem = this.checkOwner(worker, spec.owner);
      if (problem !== undefined) return `has tasks[${i}] that ${problem}`;
      for (const id of spec.returnIds) {
        if (this.context.objects.get(id) !== undefined || this.context.store.contains(id) || returns.has(id)) {
          return `has tasks[${i}] (${spec.name}) returning ${id}, which exists already`;
        }
        returns.add(id);
      }
    }
    return undefined;
  }

  /** What a worker creates is owned by that worker (the owner counts as holding a ref to it). */
  private checkOwner(worker: Worker, owner: { readonly nodeId: string; readonly workerId: string }): string | undefined {
    if (owner.workerId === worker.id && owner.nodeId === this.context.nodeId) return undefined;
    return `names owner { nodeId: ${owner.nodeId.slice(0, 8)}, workerId: ${owner.workerId.slice(0, 8)} }, not itself`;
  }

  /** A function ID is the hash of its definition: a worker may not give a known ID another one. */
  private checkFunctions(functions: readonly FunctionDescriptor[]): string | undefined {
    for (const fn of functions) {
      const known = this.context.functions.get(fn.id) as Readonly<Record<string, unknown>> | undefined;
      if (known === undefined) continue;
      const given = fn as unknown as Readonly<Record<string, unknown>>;
      const keys = Object.keys(known);
      if (keys.length !== Object.keys(given).length || keys.some((key) => known[key] !== given[key])) {
        return `redefines function ${fn.id} (${fn.name}) with another definition`;
      }
    }
    return undefined;
  }

  private threadName(thread: string): string {
    return thread === this.node.driverId ? 'the driver' : `worker ${thread.slice(0, 8)}`;
  }

  /**
   * Lines a worker's tasks wrote (it wrote them to this process's stdout itself): kept in the ring,
   * and those of tasks owned on another node sent there, so that they reach the driver that
   * submitted the task (before its result, which goes back over the same connection after them).
   */
  private onLogs(worker: Worker, lines: readonly WorkerLogLine[]): void {
    let elsewhere: Map<string, ForwardedLogLine[]> | undefined;
    for (const line of lines) {
      const { ownerNode, ...rest } = line;
      this.logRing.add({ ...rest, workerId: worker.id });
      if (ownerNode === undefined || ownerNode === this.context.nodeId) continue;
      elsewhere ??= new Map();
      let batch = elsewhere.get(ownerNode);
      if (batch === undefined) elsewhere.set(ownerNode, (batch = []));
      batch.push({ stream: line.stream, name: line.name, workerId: worker.id, text: line.text });
    }
    if (elsewhere === undefined || this.context.cluster === undefined) return;
    for (const [ownerNode, batch] of elsewhere) this.context.cluster.forwardLogs(ownerNode, batch);
  }


  private onResults(worker: Worker, results: readonly TaskResult[], attached: readonly SharedArrayBuffer[]): void {
    for (const result of results) {
      const record = worker.inFlight.get(result.seq);
      if (record === undefined) continue;
      worker.inFlight.delete(result.seq);
      this.context.scheduler.onTaskDone(worker);
      record.worker = undefined;
      if (record.cancelled) this.context.cancellation.stopWatchingForceCancel(record);
      if (result.outcome !== 'cancelled') {
        const functionId = functionIdOf(record.spec);
        const previous = this.runTimeUs.get(functionId);
        this.runTimeUs.set(functionId, previous === undefined ? result.us : 0.8 * previous + 0.2 * result.us);
      }
      if (record.cancelled) continue; // already failed with TaskCancelledError
      if (record.traced) this.context.taskEvents.result(record.spec, record.firstAttempt + record.retries, worker.id, result);
      if (result.outcome === 'ok') {
        record.state = 'finished';
        this.context.resources.releaseResources(record);
        if (!record.fromPeer) this.context.tasks.keepLineage(record);
        this.context.delivery.storeResult(worker, record.spec.returnIds, result, attached);
      } else if (result.outcome === 'error') {
        if (result.userError && record.spec.retryExceptions && this.context.tasks.retriesLeft(record)) {
          record.retries++;
          this.context.dispatcher.enqueue(record);
        } else {
          this.context.tasks.failTask(record, result.error, false);
        }
      }
    }
    if (worker.inFlight.size === 0) this.context.pool.setBusy(worker, false);
    this.context.dispatcher.scheduleDispatch();
    this.context.actors.onCpusReleased();
  }

  onWorkerExit(worker: Worker): void {
    this.blockedTasks.delete(worker);
    if (this.context.stopped) return;
    this.context.objects.dropThread(worker.id); // its refs and leases die with it
    this.context.generators?.ownerGone(worker.id);
    this.ownerGone(worker);
    this.workerRequests.dropWorker(worker);
    if (worker.role === 'actor') {
      this.context.actors.onHostExit(worker);
      return;
    }
    this.context.scheduler.onWorkerLost(worker);
    const lastStarted = Atomics.load(worker.progress, 0);
    const crash = this.crashError(worker);
    const requeue: TaskRecord[] = [];
    for (const [seq, record] of worker.inFlight) {
      record.worker = undefined;
      if (record.cancelled) {
        this.context.cancellation.stopWatchingForceCancel(record);
        continue;
      }
      // Tasks the worker had not started, and bystanders of a deliberate kill, go back for free.
      if (seq > lastStarted || worker.terminatedFor === 'cancel') {
        requeue.push(record);
      } else if (this.context.tasks.retriesLeft(record)) {
        if (record.traced) this.context.taskEvents.failed(record.spec, record.firstAttempt + record.retries, encodeError(crash(record)));
        record.retries++;
        if (record.traced && !record.fromPeer) this.context.taskEvents.state(record.spec, record.retries, PENDING_NODE_ASSIGNMENT);
        requeue.push(record);
      } else {
        this.context.tasks.failTask(record, encodeError(crash(record)));
      }
    }
    worker.inFlight.clear();
    for (const record of requeue) record.state = 'queued';
    if (this.context.pool.forgetEnvWorker(worker)) {
      this.context.envs.onEnvWorkerExit(worker, requeue);
      return;
    }
    this.context.scheduler.requeue(requeue);
    if (worker.terminatedFor === 'idle') return; // a worker the pool no longer needed: not replaced

    if (!worker.accepting && worker.terminatedFor === undefined && worker.nextSeq === 1) {
      // It died while starting (e.g. a preload module failed): do not respawn forever.
      if (++this.startupFailures >= this.workerStartupFailureLimit) {
        this.context.startupError = new WorkerCrashedError(
          `miniray workers fail to start (${this.startupFailures} attempts): ${worker.exitError?.message ?? 'no error given'}`,
        );
        if (this.context.pool.workers.every((w) => w === worker || !w.alive)) {
          const error = encodeError(this.context.startupError);
          for (const record of this.context.scheduler.drain()) this.context.tasks.failTask(record, error);
        }
        return;
      }
    }
    this.context.pool.replace(worker);
    this.context.dispatcher.scheduleDispatch();
  }

  /**
   * What the worker owned goes with it, as in Ray, where an object lives only as long as the
   * worker that owns it: the objects it put and the results of the tasks and actor calls it
   * submitted fail with OwnerDiedError for whoever still holds refs to them, those tasks stop, and
   * the non-detached actors it created end. Called at its exit, and already when the node decides
   * to end an actor's worker (so that what it owned is gone as soon as kill() has taken effect);
   * what it owned is gone once either happened.
   */
  ownerGone(worker: Worker, how = ownerEnd(worker), classes = worker.role === 'actor' ? this.context.actors.classesOn(worker) : []): void {
    const kind = worker.isolation === 'process' ? 'process' : 'thread';
    const who = `worker ${worker.id.slice(0, 8)} (${classes.length > 0 ? `the ${kind} of actor ${classes.join(', ')}` : worker.role === 'actor' ? `an actor ${kind}` : `a task ${kind}`})`;
    // Other nodes that borrow its objects or hold copies of them are told, so that their readers fail too.
    const elsewhere = new Map<string, { id: string; message: string }[]>();
    const { producers, actors } = this.context.objects.ownerDied(
      worker.id,
      (id) => encodeError(threadOwnerDiedError(id, who, how)),
      (id, entry) => {
        this.context.tasks.lineage.freed(id); // nobody is left to rebuild it
        this.context.cluster?.freed(id, entry); // its primary copy on another node goes
        const nodes = new Set(entry.copies);
        for (const holder of entry.handles ?? []) if (holder.startsWith('node:')) nodes.add(holder.slice('node:'.length));
        for (const node of nodes) {
          let failed = elsewhere.get(node);
          if (failed === undefined) elsewhere.set(node, (failed = []));
          failed.push({ id, message: threadOwnerDiedError(id, who, how).message });
        }
      },
    );
    if (elsewhere.size > 0) this.context.cluster?.ownerDied(elsewhere);
    if (producers.length === 0 && actors.length === 0) return;
    const error = encodeError(new OwnerDiedError(`the task's owner, ${who}, ${how}: a task stops with the worker that submitted it, as its results would have no owner`));
    for (const record of producers) this.context.cancellation.stopForDeadOwner(record, error);
    const reason = `its owner, ${who}, ${how}, and a non-detached actor ends with the worker that created it (create it with lifetime: 'detached' to keep it)`;
    for (const actorId of actors) this.context.actorRouting.actorOutOfScope(actorId as ActorIdHex, reason);
  }

  private crashError(worker: Worker): (record: TaskRecord) => Error {
    const reason = worker.exitError;
    const oom = (reason as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY';
    return (record) => {
      const tries = record.retries + 1;
      const detail = reason ? `: ${reason.message}` : ' (the thread exited)';
      const message =
        `task ${record.spec.name} failed: its worker ${oom ? 'ran out of memory' : 'died'}${detail}. ` +
        `It ran ${tries} time${tries > 1 ? 's' : ''} (maxRetries: ${record.spec.maxRetries}).`;
      return oom ? new OutOfMemoryError(message) : new WorkerCrashedError(message);
    };
  }
}

/** How an actor's worker ended that the node ended, as an owner's error says it. */
export const ACTOR_WORKER_ENDED = 'ended (its actor was killed, exited or went out of scope)';

/** How a worker ended, as an owner's error says it. */
function ownerEnd(worker: Worker): string {
  if (worker.terminatedFor === 'actor') return ACTOR_WORKER_ENDED;
  if (worker.terminatedFor === 'cancel') return 'was terminated by cancel({ force: true })';
  if (worker.terminatedFor === 'shutdown') return 'was stopped';
  if (worker.terminatedFor === 'idle') return 'was retired, idle';
  return `died${worker.exitError === undefined ? '' : ` (${worker.exitError.message})`}`;
}

/** What an object fails with when the worker thread (or process) that owned it ends. */
export function threadOwnerDiedError(id: string, who: string, how: string): OwnerDiedError {
  return new OwnerDiedError(
    `ObjectRef(${id}) was owned by ${who}, which ${how}. An object lives only as long as its owner, the worker that put it or submitted the task that made it ` +
      '(as in Ray). To outlive that worker, return the value itself rather than a ref made there (the caller then owns it), or keep the worker alive while its refs are used ' +
      '(for an actor: kill it only once they are read).',
  );
}
