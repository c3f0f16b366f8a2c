/**
 * A node's side of the state API: what it answers to the GCS's `nodeState { what, body }` (the
 * fan-out `askNodes`), read from its own tables: objects from its object directory (as memory()
 * lists them), its workers, its figures, and its log lines (`node.logLines`). And the asker's
 * checks of those answers: they are bytes from another process (a 'logs' answer is checked by
 * ClusterLogSource, src/state/logs.ts).
 */
import type { NodeStateQuery } from '../gcs/index.js';
import type { Node } from '../node/index.js';
import { ProtocolError } from '../errors/index.js';
import { bool, fail, fields, id, int, list, oneOf, str } from '../protocol/check.js';
import { parseLogQuery } from './log-lines.js';
import type { NodeStats, ObjectStateEntry, WorkerStateEntry } from './types.js';

/** What `node` answers to `query` (the agent's `nodeState` handler). */
export function answerNodeState(node: Node, query: NodeStateQuery): unknown {
  switch (query.what) {
    case 'objects':
      return objectsOf(node);
    case 'workers':
      return workersOf(node);
    case 'stats':
      return statsOf(node);
    case 'logs': {
      const logQuery = parseLogQuery(query.body ?? {});
      if (logQuery instanceof ProtocolError) throw logQuery;
      return node.logLines(logQuery);
    }
  }
}

export function objectsOf(node: Node): ObjectStateEntry[] {
  return node.memory().objects.map((o) => ({
    objectId: o.id,
    nodeId: node.nodeId,
    state: o.state,
    sizeBytes: o.sizeBytes,
    location: o.location,
    owner: o.owner,
    referencedBy: [...o.referencedBy],
  }));
}

export function workersOf(node: Node): WorkerStateEntry[] {
  return node.workerList().map((w) => ({ workerId: w.workerId, nodeId: node.nodeId, workerType: w.role, isAlive: w.alive, pid: w.pid, isolation: w.isolation }));
}

export function statsOf(node: Node): NodeStats {
  const figures = node.stats();
  const store = node.store.stats();
  return {
    nodeId: node.nodeId,
    storeUsedBytes: store.usedBytes,
    storeCapacityBytes: store.capacityBytes,
    spilledBytes: store.spilledBytes,
    spilledObjects: store.spilledObjects,
    objects: figures.objects,
    workers: figures.workers,
    queuedTasks: figures.queuedTasks,
  };
}

// ---- checks of what nodes answer (the asker's) ----------------------------------------------------

const number = (value: unknown, path: string): number => {
  if (typeof value !== 'number' || !Number.isFinite(value)) fail(path, 'a finite number', value);
  return value;
};

export const anObjectEntry = (value: unknown): ObjectStateEntry => {
  const o = fields(value);
  str(o['objectId'], 'objectId');
  id(o['nodeId'], 'nodeId');
  oneOf(o['state'], 'state', ['pending', 'ready', 'failed'] as const);
  int(o['sizeBytes'], 'sizeBytes');
  oneOf(o['location'], 'location', ['memory', 'disk', 'none', 'remote'] as const);
  str(o['owner'], 'owner');
  list(o['referencedBy'], 'referencedBy', (item) => str(item, 'referencedBy[]'));
  return o as unknown as ObjectStateEntry;
};

export const aWorkerEntry = (value: unknown): WorkerStateEntry => {
  const o = fields(value);
  id(o['workerId'], 'workerId');
  id(o['nodeId'], 'nodeId');
  oneOf(o['workerType'], 'workerType', ['driver', 'task', 'actor'] as const);
  bool(o['isAlive'], 'isAlive');
  int(o['pid'], 'pid');
  oneOf(o['isolation'], 'isolation', ['thread', 'process'] as const);
  return o as unknown as WorkerStateEntry;
};

export const aNodeStats = (value: unknown): NodeStats => {
  const o = fields(value);
  id(o['nodeId'], 'nodeId');
  for (const key of ['storeUsedBytes', 'storeCapacityBytes', 'spilledBytes', 'spilledObjects', 'objects', 'workers', 'queuedTasks']) number(o[key], key);
  return o as unknown as NodeStats;
};

/** Lists of each kind, as nodes answer them. */
export const NODE_ANSWER_CHECKS = {
  objects: (value: unknown): readonly ObjectStateEntry[] => list(value, '', anObjectEntry),
  workers: (value: unknown): readonly WorkerStateEntry[] => list(value, '', aWorkerEntry),
  stats: (value: unknown): NodeStats => aNodeStats(value),
} as const;
