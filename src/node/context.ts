/**
 * What the parts of a node share: its components (the store and the object directory, the
 * scheduler, the worker pool, the actor manager, the task events), its state that more than one
 * part reads (the cluster link, the job, whether it stopped or its workers fail to start), the
 * reads that wait for copies from other nodes, and its parts themselves. One object handed to
 * every part, rather than the node, so that no part depends on the Node class (as the cluster
 * agent's parts share AgentContext), and the node's own surface stays what the rest of src/ calls.
 * The node makes it, then its parts, and fills in `parts`' fields before any work arrives.
 */
import type { ActorManager } from '../actors/manager.js';
import type { ObjectStore } from '../object-store/index.js';
import type { ObjectDirectory } from '../ownership/index.js';
import type { Scheduler } from '../scheduler/index.js';
import type { FunctionDescriptor } from '../serialization/index.js';
import type { TaskEventBuffer } from '../state/events.js';
import type { WorkerPool } from '../worker-pool/index.js';
import type { ActorRouting } from './actor-routing.js';
import type { Cancellation } from './cancellation.js';
import type { ClusterLink } from './cluster-link.js';
import type { ObjectDelivery } from './delivery.js';
import type { LocalDispatch } from './dispatch.js';
import { GeneratorStreams } from './generators.js';
import type { NodeOptions } from './index.js';
import type { RemoteObjects } from './remote-objects.js';
import type { ObjectReads } from './reads.js';
import type { NodeResources } from './resources.js';
import type { RuntimeEnvs } from './runtime-envs.js';
import type { TaskManager } from './task-manager.js';
import type { TaskRecord, Worker } from './task-manager.js';

/** The node's components, made by the node before its context, and the context's own fields (below). */
export interface NodeComponents {
  readonly options: NodeOptions;
  readonly nodeId: string;
  readonly taskEvents: TaskEventBuffer;
  readonly store: ObjectStore;
  readonly objects: ObjectDirectory<TaskRecord>;
  readonly delivery: ObjectDelivery<TaskRecord>;
  readonly remoteObjects: RemoteObjects<TaskRecord>;
  readonly functions: Map<string, FunctionDescriptor>;
  readonly scheduler: Scheduler<TaskRecord, Worker>;
  readonly pool: WorkerPool<TaskRecord>;
  readonly actors: ActorManager;
}

// So that the components are listed once (in NodeComponents) and still reached as the context's own
// fields (context.store): this interface merges them into the class, whose constructor copies them in.
export interface NodeContext extends NodeComponents {}

export class NodeContext {
  // The parts (set by the node right after it made them).
  tasks!: TaskManager;
  resources!: NodeResources;
  cancellation!: Cancellation;
  envs!: RuntimeEnvs;
  actorRouting!: ActorRouting;
  dispatcher!: LocalDispatch;
  reads!: ObjectReads;

  constructor(components: NodeComponents) {
    Object.assign(this, components);
  }

  /** Set when workers keep failing to start: tasks fail with it instead of waiting forever. */
  startupError: Error | undefined;

  stopped = false;

  /** The cluster this node belongs to (in the embedded default too, with no other node in it). */
  cluster: ClusterLink | undefined;

  // generators
  /** Streams of the streaming generator tasks this node owns (made on first use). */
  generators: GeneratorStreams<TaskRecord> | undefined;

  streams(): GeneratorStreams<TaskRecord> {
    return (this.generators ??= new GeneratorStreams(this.objects));
  }

  definitionsFor(functionId: string): readonly FunctionDescriptor[] {
    const fn = this.functions.get(functionId);
    return fn === undefined ? [] : [fn];
  }

  // ---- runtime environments (env) ----

  /** The job's ID (hex), set by api once the GCS has given it; workers learn it with their next execute message. */
  jobId = '';

  /** The job's namespace (init({ namespace }), else an anonymous one, as Ray's), sent to workers with jobId. */
  namespace = '';
}
