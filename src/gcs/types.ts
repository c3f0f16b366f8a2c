/**
 * What the GCS's tables hold and what its methods carry. Records are type aliases (not interfaces)
 * so that they are plain StoreValues: a StoreClient keeps them as they are (in memory) or encoded
 * (Redis, next issue).
 */
import type { PlacementGroupState, PlacementStrategy } from '../placement-group/resources.js';

/** IDs are the 32-hex-character strings of src/ids; the brands keep a node's ID from being taken for an actor's. */
import type { ActorIdHex, NodeIdHex } from '../ids/index.js';
export type { ActorIdHex, NodeIdHex };

/** Amounts per resource name: `{ CPU: 2, GPU: 0, disk: 2 }`. */
export type ResourceMap = Readonly<Record<string, number>>;

export type NodeInfo = {
  readonly nodeId: NodeIdHex;
  /** False once the node unregistered or its connection to the GCS closed. */
  readonly alive: boolean;
  /** host:port of that node's listener. */
  readonly address: string;
  readonly resources: ResourceMap;
  readonly available: ResourceMap;
  /** A driver that joined: it offers only the resources it asked for (none by default). */
  readonly isDriver: boolean;
  /** Why the GCS declared it dead, once it is (missed health checks, connection closed, unregistered). */
  readonly deathReason?: string;
};

/** Ray's actor states (gcs.proto's ActorTableData.ActorState). DEAD is final. */
export const ACTOR_STATES = ['DEPENDENCIES_UNREADY', 'PENDING_CREATION', 'ALIVE', 'RESTARTING', 'DEAD'] as const;
export type ActorState = (typeof ACTOR_STATES)[number];

export type ActorEntry = {
  readonly actorId: ActorIdHex;
  readonly name?: string;
  readonly namespace: string;
  readonly className: string;
  readonly methodNames: readonly string[];
  /** Where it runs (or will). */
  readonly nodeId: NodeIdHex;
  /** The node of the worker that created it: its owner. */
  readonly ownerNodeId: NodeIdHex;
  readonly state: ActorState;
  /** Why it died, once DEAD, when the updater said so. */
  readonly reason?: string;
  /** lifetime: 'detached': it outlives its owner (it lives until killed), and the head's node restarts it. */
  readonly detached: boolean;
  /** Restarts it may have (-1: unlimited), and has had, on any node (worker deaths and node deaths alike). */
  readonly maxRestarts: number;
  readonly numRestarts: number;
  /** Retries of a call that may have run on a lost instance (-1: unlimited): callers on other nodes read it here. */
  readonly maxTaskRetries: number;
  /** Per-method options (actors part): handles from getActor() on other nodes call with them. */
  readonly methodOptions?: Readonly<Record<string, { readonly numReturns?: number | 'streaming' | 'dynamic'; readonly concurrencyGroup?: string }>>;
  /** Its generator methods (generators): handles from getActor() on other nodes stream their calls. */
  readonly generatorMethods?: readonly string[];
};

export type JobEntry = {
  readonly jobId: number;
  readonly driverNodeId: NodeIdHex;
  readonly startTimeMs: number;
  /** Set when the job finished (finishJob, or its driver's connection closed). */
  readonly endTimeMs?: number;
  /** The Jobs API's submission ID, when the driver is a submitted job's entrypoint (AddJob's). */
  readonly submissionId?: string;
};

export const CHANNELS = ['nodes', 'actors', 'resources'] as const;
export type Channel = (typeof CHANNELS)[number];

export type NodeEvent = { readonly event: 'added' | 'dead'; readonly node: NodeInfo };
export type ActorEvent = { readonly actor: ActorEntry };
/** Every alive node's resources, as one message: the cluster resource view. */
export type ResourceView = {
  readonly nodes: readonly { readonly nodeId: NodeIdHex; readonly resources: ResourceMap; readonly available: ResourceMap }[];
};

export type ChannelMessage = { nodes: NodeEvent; actors: ActorEvent; resources: ResourceView };
export type Publish = { [C in Channel]: { readonly channel: C; readonly message: ChannelMessage[C] } }[Channel];

// ---- placement groups (helper pg) ---------------------------------------------------------------

/** A placement group's row (Ray's PlacementGroupTableData). */
export type PlacementGroupEntry = {
  readonly placementGroupId: string;
  readonly name?: string;
  readonly namespace: string;
  readonly strategy: PlacementStrategy;
  /** What each bundle reserves (CPUs as 'CPU'). */
  readonly bundles: readonly ResourceMap[];
  readonly state: PlacementGroupState;
  /** The node of each bundle, by index, once placed ('' while it is not). */
  readonly bundleNodes: readonly string[];
  readonly createdAtMs: number;
  /** The node whose driver or task created it (the group ends with it; absent when detached). */
  readonly creatorNodeId?: string;
  /** lifetime: 'detached': it lives until removed, whoever made it (helper pg). */
  readonly detached?: true;
};
