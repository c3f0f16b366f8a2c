/**
 * The Global Control Service (the head's): its server, its typed client, the store behind it, and
 * the shapes of the connections it is given (net's Router and Peer fit them).
 */
export { GcsServer, type GcsServerOptions, type HealthCheckOptions } from './server.js';
export { GcsClient, GcsPublishes } from './client.js';
export { InMemoryStoreClient, type StoreClient, type StoreValue } from './store.js';
export type { GcsPeer, GcsPeerHello, GcsRequestOptions, GcsRoutes } from './rpc.js';
export {
  HEALTH_CHECK,
  NODE_DEAD,
  PUBLISH,
  parseAnswer,
  parseNodeDead,
  parseBody,
  parseNotify,
  parsePublish,
  type Answer,
  type Body,
  type GcsMethod,
  type GcsNotifies,
  type GcsRequests,
  type NodeDead,
  type Registered,
  type RegisterNodeAnswer,
  CORE_EVENT_KINDS,
  type TaskEventBatch,
  type TaskEventInfo,
  type TaskEventList,
  type TaskFilter,
  type ListTaskEvents,
  // state API (helper state)
  MAX_ASK_NODES_TIMEOUT_MS,
  NODE_STATE,
  NODE_STATE_KINDS,
  parseNodeStateQuery,
  type AskNodes,
  type ClusterInfo,
  type NodeAnswers,
  type NodeStateKind,
  type NodeStateQuery,
  // placement groups (helper pg)
  PREPARE_BUNDLES,
  COMMIT_BUNDLES,
  CANCEL_BUNDLES,
  PLACEMENT_GROUP_REMOVED,
  MAX_PLACEMENT_GROUP_WAIT_MS,
  parsePrepareBundles,
  parseBundleIndices,
  parsePlacementGroupRef,
  type PrepareBundles,
} from './messages.js';
export { TaskEventTable, RUN_TIME_BOUNDS, TASK_FILTER_KEYS } from './task-events.js';
export {
  ACTOR_STATES,
  CHANNELS,
  type ActorEntry,
  type ActorEvent,
  type ActorIdHex,
  type ActorState,
  type Channel,
  type ChannelMessage,
  type JobEntry,
  type NodeEvent,
  type NodeIdHex,
  type NodeInfo,
  type PlacementGroupEntry,
  type Publish,
  type ResourceMap,
  type ResourceView,
} from './types.js';
