/**
 * The CoreWorker: one per driver and one per worker thread. It turns calls into task specs and
 * objects, owns what it creates (the owner address in every ref it makes), and resolves get/wait
 * by asking its node. It does not know whether the node is in the same thread or across a channel.
 */
import {
  GetTimeoutError,
  InvalidArgumentError,
  ObjectLostError,
  SerializationError,
  fromErrorRecord,
} from '../errors/index.js';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { ObjectID, hexOf, randomHex, type ActorIdHex, type ObjectIdHex, type RefIdHex, type TaskIdHex } from '../ids/index.js';
import { ObjectRef, describeNonRef, onRefCreated, refHex, type OwnerAddressHex } from '../object-ref/index.js';
import type { ActorCallSpec, ActorInfo, ActorSpec, ClusterAnswer, JobInfo, ClusterQuery, MethodOptionsSpec, NewObject, ObjectPayload, Part, ResourceMap, ReturnMode, RuntimeEnvSpec, SchedulingStrategy, TaskSpec } from '../protocol/index.js';
import { mergeRuntimeEnv } from '../protocol/index.js';
import { ObjectRefGenerator, generatorItemId, isObjectRefGenerator, whenGeneratorReady, type StreamReader } from '../object-ref/generator.js';
import {
  OUT_OF_BAND_BYTES,
  decodeErrorRecord,
  decodeValue,
  encodeValue,
  type FunctionDescriptor,
} from '../serialization/index.js';
import type { NodeClient } from './node-client.js';
import { RefTracker, ViewTracker } from './references.js';
import { startTimeout } from './timer.js';

import { groupDemand } from '../placement-group/resources.js';
import { bundleFitError } from '../placement-group/creation.js';
import { capturingGroup } from './assigned.js';

/** Whether a task is running here that puts its children in its placement group (a module read: no cost when not). */
const capturing = (): boolean => capturingGroup() !== undefined;

function inGroupOf(what: string, options: { readonly numCpus: number; readonly resources: ResourceMap | undefined; readonly placementGroup?: InGroup; readonly strategy: SchedulingStrategy | undefined }): Partial<ReturnType<typeof demandIn>> {
  const group = groupFor(options);
  if (group === undefined) return {};
  // Refused at submission, as Ray's: it could never run in its bundle (its bundles are known when the strategy gave a PlacementGroup).
  const misfit = group.bundles === undefined ? undefined : bundleFitError(what, { CPU: options.numCpus, ...options.resources }, group.bundles, group.bundleIndex);
  if (misfit !== undefined) throw misfit;
  return demandIn(options, group);
}
export { ChannelNodeClient, type NodeClient } from './node-client.js';
export { RefTracker, ViewTracker, collectGarbage } from './references.js';
export { registerModuleFunction, lookupModuleFunction } from './function-registry.js';
export { startTimeout, MAX_TIMER_MS } from './timer.js';

export interface ResolvedTaskOptions {
  readonly numCpus: number;
  readonly resources: ResourceMap | undefined;
  readonly strategy: SchedulingStrategy | undefined;
  readonly numReturns: number;
  readonly maxRetries: number;
  /** true: retry on any exception; names: only errors of those classes (their prototype chain's names). */
  readonly retryExceptions: boolean | readonly string[];
  /** Shown in errors instead of the function's own name. */
  readonly name: string | undefined;
  /** Its own runtime environment (env), merged over the inherited one at submission. */
  readonly runtimeEnv?: RuntimeEnvSpec | undefined;
  /** schedulingStrategy: { placementGroup } (helper pg): its demand is asked of the group's bundle. */
  readonly placementGroup?: InGroup;
  // generators
  /** numReturns 'streaming' or 'dynamic' (numReturns is then 1); absent: numReturns says how many. */
  readonly returnKind?: 'streaming' | 'dynamic' | undefined;
  /** The function is a generator function: numReturns n then means it yields n values. */
  readonly isGenerator?: boolean;
  /** generatorBackpressureNumObjects. */
  readonly backpressure?: number | undefined;
  /** What the spec carries, from the three above and numReturns (see returnModeOf); absent for a plain return. */
  readonly returns?: ReturnMode | undefined;
}

/** A task or actor placed in a placement group's bundle (-1: any bundle of it). */
export interface InGroup {
  readonly placementGroupId: string;
  readonly bundleIndex: number;
  readonly captureChildTasks?: boolean;
  /** What each bundle of the group reserves, when known (to refuse a demand no bundle can hold). */
  readonly bundles?: readonly ResourceMap[];
}

/**
 * The spec's CPUs and resources under the group's names (helper pg), and whether its own children
 * go to the group too. `group`: the options', or the running task's that captures its children.
 */
function demandIn(options: { readonly numCpus: number; readonly resources: ResourceMap | undefined }, group: InGroup): { numCpus: number; resources: ResourceMap; captureChildTasks?: true } {
  const resources = groupDemand(group.placementGroupId, group.bundleIndex, options.numCpus, options.resources);
  return group.captureChildTasks === true ? { numCpus: 0, resources, captureChildTasks: true } : { numCpus: 0, resources };
}

/** The group a spec goes to: its options', or (no strategy given) the running task's that captures its children. */
function groupFor(options: { readonly placementGroup?: InGroup; readonly strategy: SchedulingStrategy | undefined }): InGroup | undefined {
  if (options.placementGroup !== undefined) return options.placementGroup;
  if (options.strategy !== undefined) return undefined;
  const captured = capturingGroup();
  return captured === undefined ? undefined : { placementGroupId: captured, bundleIndex: -1, captureChildTasks: true };
}

/** How a task's values come back (TaskSpec.returns), or undefined for a plain return. */
export function returnModeOf(options: Pick<ResolvedTaskOptions, 'numReturns' | 'returnKind' | 'isGenerator' | 'backpressure'>): ReturnMode | undefined {
  if (options.returnKind === 'streaming') return options.backpressure === undefined ? STREAMING : { kind: 'streaming', backpressure: options.backpressure };
  if (options.returnKind === 'dynamic') return DYNAMIC;
  if (options.numReturns === 0 || options.isGenerator === true) return { kind: 'static', count: options.numReturns };
  return undefined;
}
const STREAMING: ReturnMode = Object.freeze({ kind: 'streaming' });
const DYNAMIC: ReturnMode = Object.freeze({ kind: 'dynamic' });

/** An actor's options, as its spec carries them. */
export type ResolvedActorOptions = Pick<
  ActorSpec,
  'name' | 'maxRestarts' | 'maxTaskRetries' | 'maxConcurrency' | 'numCpus' | 'isolation'
> & {
  /** Absent: the job's namespace, read when the actor is created (env). */
  readonly namespace: string | undefined;
  readonly resources: ResourceMap | undefined;
  readonly strategy: SchedulingStrategy | undefined;
  readonly lifetime: 'detached' | 'non_detached';
  readonly runtimeEnv?: RuntimeEnvSpec | undefined;
  readonly placementGroup?: InGroup;
  // Concurrency groups, per-method options and getIfExists (actors part; absent: none, false).
  readonly concurrencyGroups?: Readonly<Record<string, number>> | undefined;
  readonly methodOptions?: Readonly<Record<string, MethodOptionsSpec>> | undefined;
  readonly getIfExists?: boolean;
};

/** Hooks a worker runtime gives its CoreWorker, to learn when a running task waits in get(). */
export interface BlockingHooks {
  onBlocked(): boolean;
  onUnblocked(): void;
  /** The task or actor call running now in this thread (env: its children name it as their parent). */
  currentTaskId?(): TaskIdHex | ActorIdHex | undefined;
}

const NO_POSITIONS: readonly number[] = Object.freeze([]);
const NO_FUNCTIONS: readonly FunctionDescriptor[] = Object.freeze([]);

function newIds(count: number): ObjectIdHex[] {
  const ids: ObjectIdHex[] = [];
  for (let i = 0; i < count; i++) ids.push(randomHex());
  return ids;
}
const NO_DEPENDENCIES: readonly ObjectIdHex[] = Object.freeze([]);

export class CoreWorker {
  /** Function IDs whose definitions this CoreWorker has already given its node. */
  private readonly registeredFunctions = new Set<string>();
  private readonly refs: RefTracker;
  readonly views: ViewTracker;

  /**
   * The runtime environment this thread's tasks run in (the job's in the driver, the worker's in a
   * worker): what the tasks and actors it submits inherit (env).
   */
  runtimeEnv: RuntimeEnvSpec | undefined = undefined;
  /** The last own environment merged over runtimeEnv, and the result (a remote function submits the same one each time). */
  private mergedEnv: { readonly own: RuntimeEnvSpec; readonly parent: RuntimeEnvSpec | undefined; readonly merged: RuntimeEnvSpec | undefined } | undefined;

  /** runtimeEnv with `own` merged over it (Ray's inheritance), the same object for the same inputs. */
  private inheritedEnv(own: RuntimeEnvSpec | undefined): RuntimeEnvSpec | undefined {
    if (own === undefined) return this.runtimeEnv;
    const last = this.mergedEnv;
    if (last !== undefined && last.own === own && last.parent === this.runtimeEnv) return last.merged;
    let merged = mergeRuntimeEnv(this.runtimeEnv, own);
    if (merged?.workingDir !== undefined && this.packWorkingDir !== undefined) merged = this.packWorkingDir(merged);
    this.mergedEnv = { own, parent: this.runtimeEnv, merged };
    return merged;
  }

  /**
   * Set in a driver joined to a cluster: replaces an environment's workingDir with its package
   * (uploaded to the GCS), so that a task runs in a copy of it on any node (env; api's packager).
   */
  packWorkingDir: ((env: RuntimeEnvSpec) => RuntimeEnvSpec) | undefined = undefined;

  /**
   * In a cluster, the job this thread's tasks belong to (a joined driver's own; in a worker, that
   * of the last task it started): the tasks it submits carry it, since a node runs many jobs' (env).
   */
  job: JobInfo | undefined = undefined;
  /** The job's namespace (the driver's, or as the node tells a worker); a cluster's job carries its own. */
  namespace = '';

  /** The namespace names default to: actors', getActor's, the runtime context's (as Ray's job namespace). */
  currentNamespace(): string {
    return this.job?.namespace ?? this.namespace;
  }

  constructor(
    readonly address: OwnerAddressHex,
    private readonly node: NodeClient,
    private readonly blocking: BlockingHooks | undefined = undefined,
  ) {
    this.refs = new RefTracker(node, address.nodeId);
    this.views = new ViewTracker(node);
    // Every ObjectRef made in this thread from now on is counted, so the node knows when the last goes.
    onRefCreated((ref) => this.refs.track(ref));
  }

  /** Actor lifetimes: a handle of a counted actor was decoded here since the last take. */
  private handlesArrived = false;

  noteHandleArrived(): void {
    this.handlesArrived = true;
  }

  /** Whether handles arrived since the last call (an idle worker then collects, so they do not keep their actors). */
  takeHandlesArrived(): boolean {
    const arrived = this.handlesArrived;
    this.handlesArrived = false;
    return arrived;
  }

  /** Tells the node now about refs this thread began or stopped holding (before results go). */
  flushRefs(): void {
    this.refs.flush();
  }

  /** Stops counting refs (at shutdown). */
  detach(): void {
    onRefCreated(undefined);
  }

  /**
   * Decodes an object's value; large binary parts come back as views of shared memory, tracked
   * under the payload's lease.
   */
  decodePayload(data: Uint8Array, parts: readonly Part[] | undefined, lease: number | undefined): unknown {
    if (parts === undefined && lease === undefined) return decodeValue(data);
    return this.decodeValues([data], [parts], lease)[0];
  }

  /**
   * Decodes several values whose parts share one lease (a task's ref arguments).
   *
   * Views are made over an alias of each slab: a SharedArrayBuffer object of this lease's own,
   * sharing the slab's memory. Every view the user derives (subarray, `new X(view.buffer)`) keeps
   * that alias alive, so the lease goes back only when none is left, not merely the first view.
   */
  decodeValues(data: readonly Uint8Array[], parts: readonly (readonly Part[] | undefined)[] | undefined, lease: number | undefined): unknown[] {
    const aliases = new Map<ArrayBufferLike, SharedArrayBuffer>();
    const viewOf = (part: Part): Uint8Array => {
      const view = this.node.partView(part);
      if (lease === undefined || !(view.buffer instanceof SharedArrayBuffer)) return view;
      let alias = aliases.get(view.buffer);
      if (alias === undefined) {
        alias = this.aliasOf(view.buffer);
        aliases.set(view.buffer, alias);
        this.views.viewMade(lease, alias);
      }
      return new Uint8Array(alias, view.byteOffset, view.byteLength);
    };
    try {
      return data.map((bytes, i) => {
        const valueParts = parts?.[i];
        if (valueParts === undefined || valueParts.length === 0) return decodeValue(bytes);
        return decodeValue(bytes, valueParts.map(viewOf));
      });
    } finally {
      this.views.done(lease);
    }
  }

  /** A new SharedArrayBuffer object over the same memory (a same-thread message round trip, ~1 µs). */
  private aliasOf(buffer: SharedArrayBuffer): SharedArrayBuffer {
    if (this.aliasChannel === undefined) {
      this.aliasChannel = new MessageChannel();
      this.aliasChannel.port1.unref();
      this.aliasChannel.port2.unref();
    }
    this.aliasChannel.port1.postMessage(buffer);
    return (receiveMessageOnPort(this.aliasChannel.port2) as { message: SharedArrayBuffer }).message;
  }

  private aliasChannel: MessageChannel | undefined;

  /**
   * Encodes a value to store: large binary parts go to shared memory (the one copy they get).
   * Returns what the node needs, or throws SerializationError / ObjectStoreFullError (having
   * given back any memory taken).
   */
  encodeObject(id: ObjectIdHex, value: unknown, what: string): NewObject;
  /** A task's value (`id` ''): its ID is the node's to give, and only its data, parts and nested refs are sent. */
  encodeObject(id: '', value: unknown, what: string): Omit<NewObject, 'id'>;
  encodeObject(id: ObjectIdHex | '', value: unknown, what: string): Omit<NewObject, 'id'> & { readonly id: string } {
    this.largeParts = undefined;
    const { data, refs } = encodeValue(value, what, this.collectPart);
    const large = this.largeParts as Uint8Array[] | undefined;
    this.largeParts = undefined;
    // put() (an ID of its own) throws for a value the store cannot hold, in a worker as in the
    // driver; a task's value that does not fit fails as its object, at the node.
    if (large !== undefined && id !== '') this.node.checkFits?.(large);
    const parts = large === undefined ? undefined : this.node.storeParts(large);
    const nested = refs.length === 0 ? undefined : refs.map((ref) => hexOf(ref.id));
    if (parts === undefined && nested === undefined) return { id, data };
    return { id, data, ...(parts ? { parts } : {}), ...(nested ? { nested } : {}) };
  }

  /** Large binary parts met while encoding a value (views of the caller's data, copied after). */
  private largeParts: Uint8Array[] | undefined;
  private readonly collectPart = (bytes: Uint8Array): number => (this.largeParts ??= []).push(bytes) - 1;

  /** Submits a task and returns the IDs of its return objects. */
  submitTask(fn: FunctionDescriptor, args: readonly unknown[], options: ResolvedTaskOptions): ObjectIdHex[] {
    const name = options.name ?? fn.name;
    // numReturns 0 (generators): one internal return, so the task has an end like any other.
    // Before the arguments are taken in: a demand its bundle cannot hold throws, and holds nothing.
    const inGroup = options.placementGroup === undefined && !capturing() ? undefined : inGroupOf(`task ${name}`, options);
    const returnIds = newIds(options.numReturns === 0 ? 1 : options.numReturns);
    const spec: TaskSpec = {
      taskId: randomHex(),
      functionId: fn.id,
      name,
      ...this.prepareArgs(args, name),
      returnIds,
      numCpus: options.numCpus,
      ...(options.resources === undefined ? {} : { resources: options.resources }),
      ...inGroup,
      ...(options.strategy === undefined ? {} : { strategy: options.strategy }),
      maxRetries: options.maxRetries,
      retryExceptions: options.retryExceptions !== false,
      owner: this.address,
    };
    this.addEnvFields(spec, options.runtimeEnv);
    if (this.job !== undefined) (spec as { job?: JobInfo }).job = this.job;
    // generators, and retryExceptions with a list of error classes: only such tasks carry the field (and pay for the copy).
    let submitted: TaskSpec = options.returns === undefined ? spec : { ...spec, returns: options.returns };
    if (typeof options.retryExceptions !== 'boolean') submitted = { ...submitted, retryExceptionNames: options.retryExceptions };
    this.node.submit(this.definitionsOf(fn), [submitted]);
    return returnIds;
  }

  /** Creates an actor (the node starts it as soon as it can); returns its ID. */
  createActor(cls: FunctionDescriptor, methodNames: readonly string[], args: readonly unknown[], options: ResolvedActorOptions, generatorMethods: readonly string[] = []): ActorIdHex {
    const created = this.createOrGetActor(cls, methodNames, args, { ...options, getIfExists: false }, generatorMethods);
    return typeof created === 'string' ? created : created.actorId;
  }

  /**
   * createActor, or with getIfExists the ActorInfo of the live actor of that name when the node
   * (in this thread: the driver's) knows it at once.
   */
  createOrGetActor(
    cls: FunctionDescriptor,
    methodNames: readonly string[],
    args: readonly unknown[],
    options: ResolvedActorOptions,
    generatorMethods: readonly string[] = [],
  ): ActorIdHex | ActorInfo {
    const inGroup = options.placementGroup === undefined && !capturing() ? undefined : inGroupOf(`actor ${cls.name}`, options);
    const actorId = randomHex<ActorIdHex>();
    const spec: ActorSpec = {
      actorId,
      classId: cls.id,
      className: cls.name,
      methodNames,
      ...this.prepareArgs(args, `the constructor of ${cls.name}`),
      name: options.name,
      namespace: options.namespace ?? this.currentNamespace(),
      maxRestarts: options.maxRestarts,
      maxTaskRetries: options.maxTaskRetries,
      maxConcurrency: options.maxConcurrency,
      numCpus: options.numCpus,
      ...(options.resources === undefined ? {} : { resources: options.resources }),
      ...inGroup,
      ...(options.strategy === undefined ? {} : { strategy: options.strategy }),
      isolation: options.isolation,
      owner: this.address,
      ...(options.lifetime === 'detached' ? { detached: true } : {}),
      ...(options.concurrencyGroups === undefined ? {} : { concurrencyGroups: options.concurrencyGroups }),
      ...(options.methodOptions === undefined ? {} : { methodOptions: options.methodOptions }),
      ...(options.getIfExists === true ? { getIfExists: true } : {}),
      ...(generatorMethods.length === 0 ? {} : { generatorMethods }),
    };
    const env = this.inheritedEnv(options.runtimeEnv);
    if (env !== undefined) (spec as { runtimeEnv?: RuntimeEnvSpec }).runtimeEnv = env;
    if (this.job !== undefined) (spec as { job?: JobInfo }).job = this.job;
    // getIfExists: a node in this thread answers at once with the live actor of that name, if any.
    return this.node.createActor(this.definitionsOf(cls), spec) ?? actorId;
  }

  /** Calls a method of an actor; returns the IDs of its return objects. */
  submitActorCall(actor: ActorInfo, method: string, args: readonly unknown[], numReturns: number, concurrencyGroup?: string, returns?: ReturnMode): ObjectIdHex[] {
    const name = `${actor.className}.${method}`;
    const returnIds = newIds(numReturns === 0 ? 1 : numReturns);
    const spec: { -readonly [K in keyof ActorCallSpec]: ActorCallSpec[K] } = {
      taskId: randomHex(),
      name,
      ...this.prepareArgs(args, name),
      returnIds,
      numCpus: 0,
      maxRetries: 0,
      retryExceptions: false,
      owner: this.address,
      actorId: actor.actorId,
      method,
    };
    if (concurrencyGroup !== undefined) spec.concurrencyGroup = concurrencyGroup;
    // An actor call runs in its actor's environment; only its parent is recorded (recursive cancel).
    if (this.blocking?.currentTaskId !== undefined) this.addEnvFields(spec, undefined, false);
    // generators: a plain call pays one comparison for them
    this.node.submit(NO_FUNCTIONS, [returns === undefined ? spec : { ...spec, returns }]);
    return returnIds;
  }

  /**
   * Sets the spec's runtime environment (inherited, merged with its own) and, in a worker, its
   * parent task. Set, not spread: a task that uses neither gets no new object and no new shape.
   */
  private addEnvFields(spec: TaskSpec, own: RuntimeEnvSpec | undefined, withEnv = true): void {
    const building = spec as { runtimeEnv?: RuntimeEnvSpec; parentTaskId?: TaskIdHex | ActorIdHex };
    if (withEnv && (own !== undefined || this.runtimeEnv !== undefined)) {
      const env = this.inheritedEnv(own);
      if (env !== undefined) building.runtimeEnv = env;
    }
    const parent = this.blocking?.currentTaskId?.();
    if (parent !== undefined) building.parentTaskId = parent;
  }

  lookupActor(name: string, namespace: string): Promise<ActorInfo | null> {
    return new Promise((resolve, reject) => this.node.lookupActor(name, namespace, (info, error) => (error === undefined ? resolve(info) : reject(error))));
  }

  /** The cluster's node table or resource totals, from its head (through this thread's node). */
  clusterInfo(query: ClusterQuery): Promise<ClusterAnswer> {
    return new Promise((resolve) => this.node.clusterInfo(query, resolve));
  }

  killActor(actorId: ActorIdHex, noRestart: boolean): void {
    this.node.killActor(actorId, noRestart);
  }

  /**
   * Encodes arguments; top-level refs are listed so the node can resolve them before the call.
   * A large binary argument (a typed array or Buffer of 100 KB or more) is put in the object store
   * first and passed as a ref, as Ray does, so the worker reads it in shared memory.
   */
  private prepareArgs(
    args: readonly unknown[],
    name: string,
  ): { args: Uint8Array; refArgPositions: readonly number[]; dependencies: readonly ObjectIdHex[]; nestedRefs?: readonly RefIdHex[] } {
    let refArgPositions = NO_POSITIONS;
    let dependencies = NO_DEPENDENCIES;
    let values = args;
    for (let i = 0; i < args.length; i++) {
      let arg = args[i];
      if (ArrayBuffer.isView(arg) && arg.byteLength >= OUT_OF_BAND_BYTES) {
        if (values === args) values = [...args];
        arg = this.put(arg);
        (values as unknown[])[i] = arg;
      }
      if (isObjectRef(arg)) {
        const hex = refHex(arg);
        if (hex === undefined) {
          throw new InvalidArgumentError(
            `argument ${i + 1} of ${name} is ${describeNonRef(arg)}; pass refs from put() or .remote()`,
            `argument ${i + 1}`,
          );
        }
        if (refArgPositions === NO_POSITIONS) {
          refArgPositions = [];
          dependencies = [];
        }
        (refArgPositions as number[]).push(i);
        (dependencies as ObjectIdHex[]).push(hex);
        // The worker gets the value in its place: no ref to decode (and hold) there.
        if (values === args) values = [...args];
        (values as unknown[])[i] = null;
      }
    }
    const { data, nestedRefs } = this.encodeArgs(values, name);
    return nestedRefs === undefined ? { args: data, refArgPositions, dependencies } : { args: data, refArgPositions, dependencies, nestedRefs };
  }

  /** The definition to send along with the first use of a function or class. */
  private definitionsOf(fn: FunctionDescriptor): readonly FunctionDescriptor[] {
    if (this.registeredFunctions.has(fn.id)) return NO_FUNCTIONS;
    this.registeredFunctions.add(fn.id);
    return [fn];
  }

  /** Stores a value and returns its ref (synchronously; the object is available at once). */
  put<T>(value: T): ObjectRef<T> {
    const id = randomHex<ObjectIdHex>();
    // A put that does not fit throws ObjectStoreFullError; the store has given back its blocks.
    this.node.put([this.encodeObject(id, value, 'the value given to put()')]);
    return this.refFor<T>(id);
  }

  /**
   * Stores an error record as a failed object, whose get() throws it: the last value of a
   * 'dynamic' generator that threw (as Ray's).
   */
  putError(error: Uint8Array): ObjectRef {
    const id = randomHex<ObjectIdHex>();
    this.node.put([{ id, data: error, failed: true }]);
    return this.refFor(id);
  }

  // generators
  /** How this thread's ObjectRefGenerators read their streams (kept by this thread's node). */
  readonly streams: StreamReader = {
    next: (generatorId, index) =>
      new Promise((resolve) => {
        // Waiting for the next item is waiting in get(): the task lends its CPU meanwhile (as Ray's next()).
        const blocked = this.blocking?.onBlocked() ?? false;
        this.node.generatorNext(generatorId, index, (answer) => {
          if (blocked) this.blocking?.onUnblocked();
          resolve(answer);
        });
      }),
    itemRef: (generatorId, index) => this.refFor(generatorItemId(generatorId, index)),
    drop: (generatorId) => this.node.generatorDropped(generatorId),
    peek: (generatorId, index, ready) => this.node.generatorNext(generatorId, index, () => ready(), true),
  };

  /** The first ref to an object this CoreWorker just created (a put, a task's return), or to the scope of an actor it created. */
  refFor<T>(id: RefIdHex): ObjectRef<T> {
    this.refs.expectOwnNew(id);
    return new ObjectRef<T>(new ObjectID(id), this.address);
  }

  /**
   * The values of `refs`, in order. Rejects with the first error met (a failed task, a lost object,
   * a timeout). `timeoutMs` may be any number >= 0 or Infinity (undefined: no limit).
   */
  get(refs: readonly ObjectRef[], timeoutMs: number | undefined): Promise<unknown[]> {
    return new Promise((resolve, reject) => {
      const count = refs.length;
      const values = new Array<unknown>(count);
      if (count === 0) {
        resolve(values);
        return;
      }
      // Where each ID's value goes (a ref may appear more than once).
      const slots = new Map<string, number[]>();
      const ids: ObjectIdHex[] = [];
      for (let i = 0; i < count; i++) {
        const ref = refs[i];
        const id = refHex(ref);
        if (id === undefined) {
          reject(
            new InvalidArgumentError(
              `get() takes an ObjectRef or an array of ObjectRefs; item ${i} of the array is ${describeNonRef(ref)}`,
              `refs[${i}]`,
            ),
          );
          return;
        }
        const existing = slots.get(id);
        if (existing) existing.push(i);
        else {
          slots.set(id, [i]);
          ids.push(id);
        }
      }
      let remaining = ids.length;
      let settled = false;
      let blocked = false;
      let stopTimer: (() => void) | undefined;
      let withdraw: (() => void) | undefined;
      const finish = () => {
        settled = true;
        stopTimer?.();
        if (blocked) this.blocking?.onUnblocked();
        withdraw?.();
      };
      // timeoutMs 0 is a poll: the node answers what exists now, then says so (no timer races its answers).
      const polled =
        timeoutMs !== 0
          ? undefined
          : () => {
              if (settled) return;
              finish();
              reject(new GetTimeoutError(`get() with timeoutMs 0: ${remaining} of ${ids.length} objects not ready`));
            };
      withdraw = this.node.fetch(ids, true, (object) => {
        if (settled) {
          if (object.state === 'ready' && object.lease !== undefined) this.views.release(object.lease);
          return;
        }
        let value: unknown;
        try {
          value = this.readPayload(object);
        } catch (error) {
          finish();
          reject(error);
          return;
        }
        for (const index of slots.get(object.id) ?? []) values[index] = value;
        if (--remaining === 0) {
          finish();
          resolve(values);
        }
      }, undefined, polled);
      if (settled) {
        withdraw();
        return;
      }
      if (polled !== undefined) return; // not blocked: the answer is a round trip away at most
      blocked = this.blocking?.onBlocked() ?? false;
      if (timeoutMs !== undefined) {
        stopTimer = startTimeout(() => {
          if (settled) return;
          finish();
          reject(new GetTimeoutError(`get() timed out after ${timeoutMs} ms: ${remaining} of ${ids.length} objects not ready`));
        }, timeoutMs);
      }
    });
  }

  /**
   * Resolves when `numReturns` of `refs` are ready (computed or failed), or at `timeoutMs` (any
   * number >= 0 or Infinity). Order within ready and pending follows the input. Rejects with
   * InvalidArgumentError when an item is not a ref or a ref appears twice (as Ray: which of the
   * two would be ready?).
   */
  wait(
    refs: readonly (ObjectRef | ObjectRefGenerator)[],
    numReturns: number,
    timeoutMs: number | undefined,
    fetchLocal = true,
  ): Promise<{ ready: (ObjectRef | ObjectRefGenerator)[]; pending: (ObjectRef | ObjectRefGenerator)[] }> {
    return new Promise((resolve, reject) => {
      // keys[i]: refs[i]'s object ID, or for a generator (wait([gen]), as Ray's) 'gen:' + its end object's
      const keys: string[] = [];
      const ids: ObjectIdHex[] = [];
      let generators: number[] | undefined;
      const seen = new Map<string, number>();
      for (let i = 0; i < refs.length; i++) {
        const item = refs[i];
        let key: ObjectIdHex | `gen:${string}` | undefined = refHex(item);
        if (key !== undefined) ids.push(key);
        else if (isObjectRefGenerator(item)) {
          key = `gen:${item.completed().hex}`;
          (generators ??= []).push(i);
        } else {
          reject(new InvalidArgumentError(`wait() takes an array of ObjectRefs (or ObjectRefGenerators); item ${i} is ${describeNonRef(item)}`, `refs[${i}]`));
          return;
        }
        const first = seen.get(key);
        if (first !== undefined) {
          reject(
            new InvalidArgumentError(
              `wait() requires a list of unique ObjectRefs (as Ray); ${generators?.includes(i) === true ? String(item) : `ObjectRef(${key})`} is both item ${first} and item ${i}; pass each ref once.`,
              `refs[${i}]`,
            ),
          );
          return;
        }
        seen.set(key, i);
        keys.push(key);
      }
      const readyIds = new Set<string>();
      let settled = false;
      let blocked = false;
      let stopTimer: (() => void) | undefined;
      let withdraw: (() => void) | undefined;
      const settle = () => {
        settled = true;
        stopTimer?.();
        if (blocked) this.blocking?.onUnblocked();
        withdraw?.();
        const ready: (ObjectRef | ObjectRefGenerator)[] = [];
        const pending: (ObjectRef | ObjectRefGenerator)[] = [];
        for (let i = 0; i < refs.length; i++) {
          const ref = refs[i] as ObjectRef | ObjectRefGenerator;
          if (readyIds.has(keys[i] as string) && ready.length < numReturns) ready.push(ref);
          else pending.push(ref);
        }
        resolve({ ready, pending });
      };
      const isReady = (key: string) => {
        if (settled) return;
        readyIds.add(key);
        if (readyIds.size >= Math.min(numReturns, keys.length)) settle();
      };
      if (numReturns === 0 || keys.length === 0) {
        settle();
        return;
      }
      // A generator is ready once its next item exists or it has ended; a late answer finds the wait settled.
      // Asked before the objects: a poll's end (below) then comes after the generators' answers.
      if (generators !== undefined) for (const i of generators) whenGeneratorReady(refs[i] as ObjectRefGenerator, () => isReady(keys[i] as string));
      // timeoutMs 0 is a poll: whatever is ready now, as the node answers it (no timer races its answers).
      const polled = timeoutMs === 0 && ids.length > 0 ? () => settled || settle() : undefined;
      if (ids.length > 0 && !settled) withdraw = this.node.fetch(ids, false, (object) => isReady(object.id), fetchLocal, polled);
      if (settled) {
        withdraw?.();
        return;
      }
      if (polled !== undefined) return;
      blocked = this.blocking?.onBlocked() ?? false;
      if (timeoutMs !== undefined) stopTimer = startTimeout(settle, timeoutMs);
    });
  }

  /** The value in a payload, or the error it carries, thrown. */
  private readPayload(object: ObjectPayload): unknown {
    switch (object.state) {
      case 'ready':
        try {
          return this.decodePayload(object.data, object.parts, object.lease);
        } catch (error) {
          throw new SerializationError(`object ${object.id} could not be decoded: ${(error as Error).message}`);
        }
      case 'failed':
        throw fromErrorRecord(decodeErrorRecord(object.data));
      case 'lost':
        throw new ObjectLostError(
          `ObjectRef(${object.id}) is not known to this miniray instance: it was never created here, ` +
            'or it comes from a session that was shut down. Refs are valid only between init() and shutdown().',
        );
    }
  }

  cancel(ref: ObjectRef, force: boolean, recursive = false): void {
    const id = refHex(ref);
    if (id === undefined) throw new InvalidArgumentError(`cancel() takes an ObjectRef; got ${describeNonRef(ref)}`, 'ref');
    this.node.cancel(id, force, recursive);
  }

  /** The encoded argument array, and the refs nested inside arguments (kept alive for the call). */
  private encodeArgs(args: readonly unknown[], name: string): { data: Uint8Array; nestedRefs?: readonly RefIdHex[] } {
    if (args.length === 0) return { data: EMPTY_ARGS };
    try {
      // Top-level refs were replaced by null (see prepareArgs): the refs met are all nested ones.
      const { data, refs } = encodeValue(args, `arguments of ${name}`, undefined, 1); // the list is not the user's nesting
      return refs.length === 0 ? { data } : { data, nestedRefs: refs.map((ref) => hexOf(ref.id)) };
    } catch (error) {
      // Encode one by one only on failure, to name the argument.
      for (let i = 0; i < args.length; i++) encodeValue(args[i], `argument ${i + 1} of ${name}`);
      throw error;
    }
  }
}

const EMPTY_ARGS = encodeValue([], 'no arguments').data;

/** `instanceof ObjectRef`, false where that throws (a proxy whose getPrototypeOf trap throws). */
function isObjectRef(value: unknown): value is ObjectRef {
  try {
    return value instanceof ObjectRef;
  } catch {
    return false;
  }
}
