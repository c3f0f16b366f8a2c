/**
 * What a node asks of the cluster it belongs to. The node keeps its own store, workers, local
 * scheduling and actors; whatever involves another node (running a task there, reaching an actor
 * there, fetching an object from there, telling a holder that an object was freed) goes through
 * this link, which src/cluster implements. The embedded default has the same link, to a GCS in
 * the same process, with no other node to send anything to.
 */
import type { ActorIdHex } from '../ids/index.js';
import type { ObjectEntry } from '../ownership/index.js';
import type { ActorCallSpec, ActorLookupCallback, ActorSpec, ClusterAnswer, ClusterQuery, RemoteValue, ResourceMap, TaskSpec } from '../protocol/index.js';
import type { FunctionDescriptor } from '../serialization/index.js';

/** A task or actor call this node owns that runs (or may run) on another node. */
export interface RemoteWork<S extends TaskSpec = TaskSpec> {
  readonly spec: S;
  /** Its retries so far (its owner counts them): sent with it, so that the node that runs it records its events under that attempt. */
  readonly attempt: number;
  /** Whether its owner records its events (src/state/events.ts): false tells the node that runs it to skip them too. */
  readonly traced: boolean;
  /** The definition of its function (absent for an actor call). */
  readonly function: FunctionDescriptor | undefined;
  /**
   * Its return values arrived (inline, located on a node, or failed); `from`: the node that ran it
   * and sent them (absent when it failed without running), where values it keeps (keptBySender) are.
   */
  done(values: readonly RemoteValue[], from?: string): void;
  /** The node it ran on went away before it reported: retried while maxRetries allows, else failed with `error`. */
  lost(error: Error): void;
  /** A task in a placement group that waited for its bundle, which is now on this node: it is queued here (helper pg). */
  readonly runHere?: () => void;
}

/** A line of output of a task owned on another node, as this node sends it there (the executing node is the sender). */
export interface ForwardedLogLine {
  readonly stream: 'stdout' | 'stderr';
  readonly name: string;
  readonly workerId: string;
  readonly text: string;
}

export interface ClusterLink {
  /**
   * A task of this node whose arguments exist: returns true if it goes to another node (the link
   * then calls `done` or `lost`), false if it runs here. `canRunHere`: this node has the
   * resources it asks for at all.
   */
  takeTask(work: RemoteWork, canRunHere: boolean): boolean;
  /** An actor call for an actor that is not on this node. */
  callRemoteActor(work: RemoteWork<ActorCallSpec>): void;
  /**
   * An actor creation: true if it is placed on another node (or waits for one that can host it),
   * false if it is created here, or the error it is created dead with (no node can ever host it,
   * or the node it names cannot).
   */
  takeActor(functions: readonly FunctionDescriptor[], spec: ActorSpec, canRunHere: boolean): boolean | Error;
  /** `outOfScope`: no handle to it is left (actor lifetimes), rather than a kill(); `ownerDied`: rather, its owner here ended (the reason). */
  killRemoteActor(actorId: ActorIdHex, noRestart: boolean, outOfScope?: boolean, ownerDied?: string): void;
  /** A named actor not found on this node: asks the cluster; `error` when the GCS could not be asked (not: there is none). */
  lookupActor(name: string, namespace: string, callback: ActorLookupCallback): void;
  /**
   * An actor created here: registered cluster-wide (`onNameTaken`: its name was taken elsewhere
   * first). `functions`: its class's definition, kept with a detached actor's creation record.
   */
  registerActor(spec: ActorSpec, functions: readonly FunctionDescriptor[], onNameTaken: () => void): void;
  /**
   * getIfExists (actors part): claims the actor's name in the GCS before it is created anywhere.
   * `callback`: null when the name is now its own (or the GCS could not be asked), else the live
   * actor that has it.
   */
  claimActorName(spec: ActorSpec, callback: (holder: { actorId: ActorIdHex; ownerNodeId: string; detached: boolean } | null) => void): void;
  /** The maxTaskRetries of an actor this node has seen the row of (undefined: not seen). */
  actorTaskRetries(actorId: string): number | undefined;
  /** An actor of this node died for good. */
  actorDied(actorId: ActorIdHex, reason: string): void;
  /** An instance of an actor is up on this node (first, or after a restart): its callers may reach it here. */
  actorAlive(actorId: ActorIdHex, numRestarts: number): void;
  /** Threads here hold refs to objects owned on `ownerNode` that this node did not know yet. */
  borrow(ownerNode: string, ids: readonly string[]): void;
  /**
   * Brings here the values of objects whose primary copy is on another node, or that are owned on
   * another node; calls `done` once each is stored here (as ready or failed).
   */
  localize(ids: readonly string[], done: () => void): void;
  /** Asks the GCS for its node table or resource totals. */
  info(query: ClusterQuery, callback: (answer: ClusterAnswer) => void): void;
  /** Cancels a task that was sent to another node. */
  cancelRemote(spec: TaskSpec, force: boolean, recursive?: boolean): void;
  /**
   * Cancels a call of this node's to an actor on another node (env): one not sent yet fails with
   * `error`; one sent is cancelled there (removed from its actor's queue, or its signal aborted).
   */
  cancelRemoteCall(returnId: string, recursive: boolean, error: Uint8Array): void;
  /** A runtimeEnv.workingDir package from the GCS's KV (its sha256 as key), or null when it has none (env). */
  fetchPackage(key: string): Promise<Uint8Array | null>;
  /** A worker here that owned objects ended: the nodes that borrow them or hold copies (the map's keys) fail them too. */
  ownerDied(failed: ReadonlyMap<string, readonly { readonly id: string; readonly message: string }[]>): void;
  /** An object was freed here: its holders elsewhere may drop their copies, its owner a borrower. */
  freed(id: string, entry: ObjectEntry<unknown>): void;
  /**
   * Results that node `location` keeps for `owner` (a worker here) and that nobody here will
   * read (their owner died, or their task was cancelled, before they came): that node lets them
   * go, as when they are freed.
   */
  letGo(location: string, owner: string, ids: readonly string[]): void;
  /** A placement group ended (its creation refused here: helper pg): its work here and parked for it fails. */
  placementGroupEnded(placementGroupId: string): void;
  /** No other node is in the cluster (now): everything this node can run, it runs. */
  readonly alone: boolean;
  /** Whether a task no node can run now should wait (a node may join) rather than fail. */
  readonly canGrow: boolean;
  /**
   * Output lines of tasks (and actors) owned on `ownerNode`, to be written to its stdout: sent
   * after whatever was sent there before, so before the results of the tasks that wrote them.
   */
  forwardLogs(ownerNode: string, lines: readonly ForwardedLogLine[]): void;
  /** Whether the cluster has reported node `nodeId` dead (its copies of objects are gone). */
  isDead(nodeId: string): boolean;
  // generators
  /**
   * Item `index` yielded by streaming task `spec` that runs here for its owner's node: sent there
   * (before the task's result, on the same connection). `ack` is called with what the owner has read.
   */
  generatorItem(spec: TaskSpec, index: number, value: RemoteValue, ack: (consumed: number) => void): void;
}

/** Resources a spec asks for, CPUs included. */
export function demandOf(spec: { readonly numCpus: number; readonly resources?: ResourceMap }): ResourceMap {
  return spec.resources === undefined ? { CPU: spec.numCpus } : { CPU: spec.numCpus, ...spec.resources };
}
