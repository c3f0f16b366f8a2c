/**
 * Summaries of the state API (Ray's `ray summary tasks|actors|objects`): counts per function, per
 * class and per node, computed from the records every list gives, so that a summary and a list
 * never disagree.
 */
import type { ActorStateEntry, ActorSummary, NodeStats, ObjectSummary, TaskEntry, TaskState, TaskSummary, TaskType } from './types.js';

export function summarizeTasks(tasks: readonly TaskEntry[]): TaskSummary {
  // Maps, not objects: a function named "__proto__" is counted, not taken for a prototype.
  const byName = new Map<string, { type: TaskType; states: Map<TaskState, number> }>();
  for (const task of tasks) {
    let row = byName.get(task.name);
    if (row === undefined) byName.set(task.name, (row = { type: task.type, states: new Map() }));
    row.states.set(task.state, (row.states.get(task.state) ?? 0) + 1);
  }
  return {
    byName: Object.fromEntries([...byName].map(([name, row]) => [name, { type: row.type, states: Object.fromEntries(row.states) }])),
    total: tasks.length,
  };
}

export function summarizeActors(actors: readonly ActorStateEntry[]): ActorSummary {
  const byClass = new Map<string, Map<string, number>>();
  for (const actor of actors) {
    let states = byClass.get(actor.className);
    if (states === undefined) byClass.set(actor.className, (states = new Map()));
    states.set(actor.state, (states.get(actor.state) ?? 0) + 1);
  }
  return { byClass: Object.fromEntries([...byClass].map(([name, states]) => [name, Object.fromEntries(states)])), total: actors.length };
}

/** From each node's figures: what its store holds in memory and what it spilled. */
export function summarizeObjects(stats: readonly NodeStats[]): ObjectSummary {
  const byNode = new Map<string, ObjectSummary['byNode'][string]>();
  let totalObjects = 0;
  let totalBytes = 0;
  for (const node of stats) {
    byNode.set(node.nodeId, { objects: node.objects, bytes: node.storeUsedBytes, spilledObjects: node.spilledObjects, spilledBytes: node.spilledBytes });
    totalObjects += node.objects;
    totalBytes += node.storeUsedBytes + node.spilledBytes;
  }
  return { totalObjects, totalBytes, byNode: Object.fromEntries(byNode) };
}
