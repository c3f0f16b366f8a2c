// Chaos: the head dies. A head on Redis (started here, kept running while only the head dies),
// two nodes, and a driver connected before the kill that has a named actor and a 4 s task on a
// non-head node. kill -9 of the head; while it is down the driver runs new tasks on the nodes it
// knows; then the head started again on the same port and Redis:
// the running task finishes and its result reaches its driver, the named actor is found by a new
// driver with its state, new tasks run on every node, and the nodes are alive again under their
// old IDs; a detached actor that was on the head's node is restarted elsewhere. Figures: the time from the restart to the nodes back and to the first new task done.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Cluster, resultsOf, waitFor, type ClusterNode } from '../cluster/harness.js';
import { startRedis, type TestRedis } from '../cluster/redis.js';
import { report } from './figures.js';

const TASK_MS = 4_000;
const HEAD = { numCpus: 1 };
const NODE = { numCpus: 2, resources: { side: 2 } };

let redis: TestRedis;
let cluster: Cluster;
before(async () => {
  redis = await startRedis();
  cluster = await Cluster.start(HEAD, [NODE, NODE], { name: 'head-chaos', headArgs: ['--redis-address', redis.address, '--redis-namespace', 'chaos-head'] });
});
after(async () => {
  await cluster?.stop();
  await redis?.stop();
});

test('kill -9 of the head with Redis, restarted on the same port: a running task finishes, a named actor is found again, new work runs, nodes come back', { timeout: 300_000 }, async () => {
  const nodesBefore = cluster.nodes.filter((n) => n.role === 'node').map((n) => n.nodeId).sort();
  const oldHead = cluster.head;
  const marker = join(cluster.scratch, 'task-started');

  const first = cluster.driver('head-driver.mjs', ['before', JSON.stringify({ marker, taskMs: TASK_MS })]);
  const ready = JSON.parse((await first.match(/READY (.*)/))[1] as string) as { total: number; actorNode: string; survivorNode: string };
  assert.equal(ready.total, 5);
  assert.equal(ready.survivorNode, oldHead.nodeId, 'the detached actor is on the head node');
  assert.ok(nodesBefore.includes(ready.actorNode), 'the actor is on a non-head node');
  await waitFor('the long task to start', () => existsSync(marker));

  const killedAt = Date.now();
  await cluster.killHead();
  assert.equal(oldHead.proc.running, false);

  // While the head is down, new tasks run on the nodes the driver knows.
  first.send('down');
  await first.match(/RESULT .*"duringOutage"/, 60_000);
  const [outage] = resultsOf(first.stdout) as [{ duringOutage: number[]; outageTasksMs: number }];
  assert.deepEqual(outage.duringOutage, [0, 1, 4, 9, 16, 25]);

  const restartedAt = Date.now();
  const head = await cluster.restartHead(HEAD);
  const headUpMs = Date.now() - restartedAt;
  assert.equal(head.address, oldHead.address, 'the head is back on its port');
  assert.notEqual(head.nodeId, oldHead.nodeId, 'the restarted head is a new node');

  const table = await cluster.waitForNodes(3, 90_000);
  const nodesBackMs = Date.now() - restartedAt;
  const alive = table.map((n) => n.nodeId);
  for (const id of nodesBefore) assert.ok(alive.includes(id), `node ${id.slice(0, 8)} is alive again under its ID`);
  assert.ok(alive.includes(head.nodeId));
  const oldRow = (await cluster.nodeTable()).find((n) => n.nodeId === oldHead.nodeId);
  assert.equal(oldRow?.alive, false, 'the head node from before is dead');

  // A new driver at once (node processes start in well under a second; it is timed from the restart).
  const secondRun = cluster.run('head-driver.mjs', ['after'], { timeoutMs: 120_000 });

  // The task that ran through the kill: its result reached the driver connected before it.
  await first.match(/RESULT .*"task"/, 60_000);
  const [, taskResult] = resultsOf(first.stdout) as [unknown, { task: { nodeId: string; ranMs: number; doneAt: number } }];
  assert.ok(nodesBefore.includes(taskResult.task.nodeId));
  assert.ok(taskResult.task.ranMs >= TASK_MS - 50, 'it ran to its end');

  const second = await secondRun;
  const [late] = second as [{ processStartedAt: number; initStartedAt: number; initDoneAt: number; keeper: { nodeId: string; total: number }; survivor: { nodeId: string; total: number }; foundMs: number; firstTaskAt: number; squares: number[]; ranOn: string[]; alive: string[] }];
  assert.equal(late.keeper.nodeId, ready.actorNode, 'the same actor, where it was');
  assert.equal(late.keeper.total, 5, 'with its state: it was not restarted');
  // The detached actor died with the head's node; the restarted head's node restarted it (fresh state).
  assert.notEqual(late.survivor.nodeId, oldHead.nodeId, 'the detached actor was restarted on a live node');
  assert.equal(late.survivor.total, 0, 'a restarted actor has fresh state');
  assert.deepEqual(late.squares, Array.from({ length: 20 }, (_, i) => i * i));
  assert.ok(late.ranOn.length >= 2, `new tasks ran on more than one node (${late.ranOn.length})`);
  for (const id of [...nodesBefore, head.nodeId]) assert.ok(late.alive.includes(id), 'nodes() lists the nodes alive');

  // The first driver, through the restart, still reaches its actor.
  first.send('go');
  const outcome = await first.ended(60_000);
  assert.equal(outcome.code, 0, first.describe());
  const [, , afterward] = resultsOf(outcome.stdout) as [unknown, unknown, { actorAfter: { total: number } }];
  assert.equal(afterward.actorAfter.total, 5);

  report('cluster-head', {
    headUpMs,
    nodesBackMs,
    firstNewTaskMs: late.firstTaskAt - restartedAt,
    // Of which: the new driver's process start-up (loading miniray) and its init(); the rest is
    // finding the actor, calling it and running the task.
    newDriverStartMs: late.initStartedAt - late.processStartedAt,
    newDriverInitMs: late.initDoneAt - late.initStartedAt,
    killToRestartMs: restartedAt - killedAt,
    tasksDuringOutage: outage.duringOutage.length,
    outageTasksMs: outage.outageTasksMs,
    taskDoneAfterKillMs: taskResult.task.doneAt - killedAt,
    actorFoundMs: late.foundMs,
    tasksLost: 0,
  });
});

test('after the restart: one alive head at its address, the one before a dead row', async () => {
  const rows = await cluster.nodeTable();
  const heads = rows.filter((n: { address: string }) => n.address === cluster.gcsAddress);
  assert.equal(heads.filter((n) => n.alive).length, 1, 'one alive head at the address');
  assert.equal(cluster.nodes.filter((n: ClusterNode) => n.role === 'head').length, 1);
});
