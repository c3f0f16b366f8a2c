// Task events across processes: a task and an actor call that a driver pins to another node show
// RUNNING and FINISHED there, with that node's ID and a worker of it, merged with the owner's
// (the driver's) own events into one entry each.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Cluster } from './harness.js';

interface Entry {
  readonly name: string;
  readonly state: string;
  readonly nodeId?: string;
  readonly workerId?: string;
  readonly ownerNodeId: string;
  readonly attempt: number;
  readonly errorType?: string;
  readonly startTimeMs?: number;
  readonly endTimeMs?: number;
  readonly events: readonly { readonly state: string; readonly timeMs: number }[];
}

let cluster: Cluster | undefined;
before(async () => {
  cluster = await Cluster.start({ numCpus: 1 }, [{ numCpus: 1 }], { name: 'task-events', env: { MINIRAY_TASK_EVENTS_FLUSH_MS: '50' } });
});
after(async () => {
  await cluster?.stop();
});

test('a task and an actor call run on another node show RUNNING/FINISHED with that node\'s ID', { timeout: 180_000 }, async () => {
  const c = cluster as Cluster;
  const target = c.nodes[1]?.nodeId as string;
  const [outcome] = (await c.run('task-events.mjs', [target])) as [{ driverNode: string; entries: Entry[] }];
  const byName = new Map(outcome.entries.map((e) => [e.name, e]));
  for (const name of ['where_events_ran', 'Holder.hello']) {
    const entry = byName.get(name);
    assert.ok(entry, `${name} is in the GCS's table: ${JSON.stringify(outcome.entries)}`);
    assert.equal(entry.state, 'FINISHED', JSON.stringify(entry));
    assert.equal(entry.nodeId, target, 'where it ran');
    assert.equal(entry.ownerNodeId, outcome.driverNode, 'who submitted it');
    assert.equal(entry.attempt, 0);
    assert.match(entry.workerId ?? '', /^[0-9a-f]{32}$/);
    const states = entry.events.map((e) => e.state);
    assert.equal(states[0], 'PENDING_ARGS_AVAIL', 'the owner\'s submission');
    assert.ok(states.includes('RUNNING') && states.includes('FINISHED'), JSON.stringify(states));
    assert.ok((entry.startTimeMs ?? Infinity) <= (entry.endTimeMs ?? -Infinity));
  }
  // Retried where it ran (retryExceptions): each try is an attempt of its own, not both "the
  // latest" (where the first FAILED would stand and hide the retry that succeeded).
  const tries = outcome.entries.filter((e) => e.name === 'flaky_events').sort((a, b) => a.attempt - b.attempt);
  assert.deepEqual(
    tries.map((e) => [e.attempt, e.state, e.nodeId === target]),
    [
      [0, 'FAILED', true],
      [1, 'FINISHED', true],
    ],
    JSON.stringify(tries),
  );
});
