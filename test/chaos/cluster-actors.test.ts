// Chaos across real processes (loopback): actors whose node is SIGKILLed restart elsewhere and
// their callers are answered (or told ActorDiedError, per maxTaskRetries), never left waiting; a
// detached named actor outlives its driver, is found and called by a new driver, is restarted by
// the head when its node dies, and ends with kill(); a SIGKILLed driver's actors end (GCS DEAD) and
// its tasks on other nodes stop (every CPU free again). Figures: restart and cleanup times.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { GcsClient } from '../../dist/gcs/index.js';
import { Router, connect } from '../../dist/net/index.js';
import { Cluster, resultsOf, waitFor, type ClusterNode } from '../cluster/harness.js';
import { report, scaled } from './figures.js';

interface ActorRow {
  readonly actorId: string;
  readonly name?: string;
  readonly nodeId: string;
  readonly state: string;
  readonly reason?: string;
  readonly numRestarts: number;
}
interface Where {
  readonly nodeId: string;
  readonly pid: number;
  readonly instance: string;
  readonly count: number;
  readonly at: number;
}
interface Outcome<T = unknown> {
  readonly value?: T;
  readonly error?: string;
  readonly message?: string;
}

/** The GCS's actor table, asked as `miniray status` asks for the node table. */
async function actorTable(cluster: Cluster): Promise<ActorRow[]> {
  const at = cluster.gcsAddress.lastIndexOf(':');
  const peer = await connect({
    host: cluster.gcsAddress.slice(0, at),
    port: Number(cluster.gcsAddress.slice(at + 1)),
    token: cluster.token,
    timeoutMs: 10_000,
    router: new Router(),
    hello: { role: 'cli', nodeId: `cli-${randomBytes(4).toString('hex')}` },
  });
  try {
    return [...(await new GcsClient(peer).listActors())] as ActorRow[];
  } finally {
    peer.close('done');
  }
}

const SECOND = 1000;

describe('actors across a cluster when nodes and drivers die (loopback)', { timeout: 600_000 }, () => {
  let cluster: Cluster | undefined;
  const c = (): Cluster => {
    if (cluster === undefined) throw new Error('the cluster did not start (see the before hook)');
    return cluster;
  };

  /** Waits until the alive nodes have every CPU free again. */
  const allCpusFree = (why: string, timeoutMs = 60_000) =>
    waitFor(`every CPU free: ${why}`, async () => {
      const alive = (await c().nodeTable()).filter((n) => n.alive);
      const sum = (pick: (n: (typeof alive)[number]) => Readonly<Record<string, number>>) => alive.reduce((total, n) => total + (pick(n)['CPU'] ?? 0), 0);
      return Math.abs(sum((n) => n.available) - sum((n) => n.resources)) < 1e-9;
    }, timeoutMs);

  before(async () => {
    cluster = await Cluster.start({ numCpus: 1 }, [{ numCpus: 1 }, { numCpus: 1 }], { name: 'actors-ft' });
  });
  after(async () => {
    await cluster?.stop();
  });

  test('an actor whose node is SIGKILLed restarts on another node with fresh state; its callers get answers or ActorDiedError per maxTaskRetries', async () => {
    const victim = c().nodes[1] as ClusterNode;
    const calls = scaled(10);
    const driver = c().driver('actors-ft.mjs', ['restart', JSON.stringify({ victim: victim.nodeId, caller: c().head.nodeId, calls })]);
    await driver.match(/READY/, 120_000);
    const [setup] = resultsOf(driver.stdout) as [{ before: [Where, Where, number, number]; early: { caller: string; value: Where } }];
    assert.equal(setup.before[0].nodeId, victim.nodeId, 'placed on the victim (soft affinity)');
    assert.equal(setup.before[1].nodeId, victim.nodeId);
    assert.deepEqual([setup.before[2], setup.before[3]], [11, 101], 'the constructor argument (a ref, for one) was read');
    assert.equal(setup.early.value.nodeId, victim.nodeId, 'a task on the head reached it before the death');
    driver.send('go');
    await driver.match(/STREAMING/);
    const killedAt = Date.now();
    process.kill(victim.proc.pid, 'SIGKILL');
    driver.send('killed');
    // The GCS's rows: both RESTARTING then ALIVE on another node.
    const rows = await waitFor('both actors ALIVE on another node', async () => {
      const table = await actorTable(c());
      const mine = table.filter((row) => row.numRestarts === 1 && row.state === 'ALIVE' && row.nodeId !== victim.nodeId);
      return mine.length >= 2 ? mine : undefined;
    }, 60_000);
    const restartedAt = Date.now();
    const outcome = await driver.ended(180_000);
    assert.equal(outcome.code, 0, driver.describe());
    await victim.proc.exited;
    c().nodes.splice(c().nodes.indexOf(victim), 1);
    const [, final] = resultsOf(outcome.stdout) as [
      unknown,
      {
        noRetry: Outcome<{ count: number; instance: string; at: number }>[];
        retried: Outcome<{ count: number; instance: string; at: number }>[];
        during: Outcome<number>[];
        after: Outcome<Where>[];
        fromTask: { caller: string; value?: Where; error?: string };
        fromTaskNoRetry: { caller: string; value?: Where; error?: string };
      },
    ];
    const hung = [...final.noRetry, ...final.retried, ...final.during, ...final.after].filter((o) => o.error === 'GetTimeoutError');
    assert.deepEqual(hung, [], 'no call hung');
    // Without call retries: each call got an answer or ActorDiedError (those in flight at the death).
    for (const o of [...final.noRetry, final.during[0] as Outcome]) assert.ok(o.value !== undefined || o.error === 'ActorDiedError', JSON.stringify(o));
    const noRetryDied = final.noRetry.filter((o) => o.error === 'ActorDiedError').length;
    assert.ok(noRetryDied >= 1, `some calls were in flight at the death: ${JSON.stringify(final.noRetry)}`);
    assert.match(final.noRetry.find((o) => o.error !== undefined)?.message ?? '', /died while running or queued to run .*maxTaskRetries: 0/);
    // With retries: every call was answered, by the old instance or the new one.
    for (const o of [...final.retried, final.during[1] as Outcome]) assert.ok(o.value !== undefined, `a call with retries failed: ${JSON.stringify(o)}`);
    const oldInstance = setup.before[1].instance;
    const onNew = final.retried.filter((o) => o.value?.instance !== oldInstance);
    assert.ok(onNew.length >= 1, 'calls in flight at the death ran again on the new instance');
    // Fresh state on the new instance: the constructor ran again with the same argument.
    const [afterNoRetry, afterRetried] = final.after as [Outcome<Where>, Outcome<Where>];
    assert.ok(afterNoRetry.value !== undefined && afterRetried.value !== undefined, JSON.stringify(final.after));
    assert.notEqual(afterNoRetry.value.nodeId, victim.nodeId);
    assert.notEqual(afterRetried.value.nodeId, victim.nodeId);
    assert.notEqual(afterRetried.value.instance, oldInstance);
    assert.ok(afterNoRetry.value.count >= 10 && afterNoRetry.value.count < 10 + calls + 2, `fresh state from the argument 10: ${afterNoRetry.value.count}`);
    assert.ok(afterRetried.value.count >= 100 && afterRetried.value.count < 100 + calls + 2, `fresh state from 100: ${afterRetried.value.count}`);
    // A caller on another node follows it there too.
    assert.equal(final.fromTask.value?.instance, afterRetried.value.instance, JSON.stringify(final.fromTask));
    assert.equal(final.fromTaskNoRetry.value?.instance, afterNoRetry.value.instance, JSON.stringify(final.fromTaskNoRetry));
    const firstNewAnswer = Math.min(...onNew.map((o) => o.value?.at ?? Infinity));
    report('cluster-actors restart', {
      calls: 2 * calls,
      inFlightDiedNoRetries: noRetryDied,
      retriedOnNewInstance: onNew.length,
      restartedOn: rows.map((row) => row.nodeId.slice(0, 8)).join('+'),
      msToAliveInGcs: restartedAt - killedAt,
      msToFirstAnswerOfNewInstance: firstNewAnswer - killedAt,
    });
    await allCpusFree('the actors were killed at the end');
  });

  test("a detached named actor outlives its driver, is found and called by a new driver, is restarted by the head when its node dies, and ends with kill()", async () => {
    const home = await c().addNode({ numCpus: 1 });
    const names = { name: 'keeper', namespace: 'ft', plainName: 'plain', avoid: home.nodeId };
    const [owner] = (await c().run('actors-ft.mjs', ['detachedOwner', JSON.stringify(names)])) as [
      { first: number; where: Where; badLifetime: { error: string; message: string } },
    ];
    assert.equal(owner.first, 6);
    assert.equal(owner.where.nodeId, home.nodeId, 'placed where asked');
    assert.equal(owner.badLifetime.error, 'InvalidOptionError');
    assert.match(owner.badLifetime.message, /lifetime.*'detached', 'non_detached'/);
    // The non-detached one ends with its driver; the detached one lives on, its state kept.
    await waitFor('the plain actor DEAD', async () => (await actorTable(c())).find((row) => row.name === 'plain' && row.state === 'DEAD'));
    const [user] = (await c().run('actors-ft.mjs', ['detachedUser', JSON.stringify(names)])) as [{ count: number; where: Where; plain: string }];
    assert.equal(user.count, 7, 'the same instance, its state kept');
    assert.equal(user.where.instance, owner.where.instance);
    assert.equal(user.plain, 'ActorNotFoundError');

    // Its node dies after its owner is gone: the head restarts it from the creation the GCS keeps.
    const killedAt = Date.now();
    process.kill(home.proc.pid, 'SIGKILL');
    const row = await waitFor('the detached actor ALIVE on another node', async () =>
      (await actorTable(c())).find((r) => r.name === 'keeper' && r.state === 'ALIVE' && r.nodeId !== home.nodeId && r.numRestarts === 1),
    );
    const restartMs = Date.now() - killedAt;
    await home.proc.exited;
    c().nodes.splice(c().nodes.indexOf(home), 1);
    const [again, killed] = (await c().run('actors-ft.mjs', ['detachedUser', JSON.stringify({ ...names, kill: true })])) as [
      { count: number; where: Where },
      { afterKill: string; call: Outcome },
    ];
    assert.equal(again.count, 6, 'fresh state: its constructor ran again with 5');
    assert.equal(again.where.nodeId, row.nodeId);
    assert.equal(killed.afterKill, 'ActorNotFoundError', 'kill() ends it: its name is free');
    assert.equal(killed.call.error, 'ActorDiedError');
    await waitFor('the detached actor DEAD', async () => (await actorTable(c())).find((r) => r.name === 'keeper' && r.state === 'DEAD'));
    report('cluster-actors detached', { restartedByHeadMs: restartMs, restartedOn: row.nodeId.slice(0, 8) });
  });

  test("a SIGKILLed driver's actors end (GCS DEAD) and its tasks on other nodes stop: every CPU is free again", async () => {
    await allCpusFree('before');
    const driver = c().driver('actors-ft.mjs', ['doomed', JSON.stringify({ tasks: 6 })]);
    await driver.match(/READY/, 120_000);
    const [{ where, driver: driverNode }] = resultsOf(driver.stdout) as [{ where: Where[]; driver: string }];
    assert.ok(where.every((w) => w.nodeId !== driverNode));
    // Its actors and a running task hold CPUs on the nodes.
    await waitFor('CPUs in use by the driver\'s work', async () => {
      const alive = (await c().nodeTable()).filter((n) => n.alive && !n.isDriver);
      const free = alive.reduce((total, n) => total + (n.available['CPU'] ?? 0), 0);
      return free < 0.5 + 1e-9 ? true : undefined;
    });
    const killedAt = Date.now();
    process.kill(driver.pid, 'SIGKILL');
    const dead = await waitFor('its actors DEAD', async () => {
      const rows = (await actorTable(c())).filter((row) => row.state === 'DEAD' && /owner/.test(row.reason ?? '') && where.some((w) => w.nodeId === row.nodeId));
      return rows.length >= 2 ? rows : undefined;
    });
    const deadMs = Date.now() - killedAt;
    await allCpusFree('its actors ended and its running and queued tasks were cancelled');
    const freeMs = Date.now() - killedAt;
    assert.match(dead[0]?.reason ?? '', /its owner's node .* died/);
    report('cluster-actors driver-killed', { actorsDeadMs: deadMs, cpusFreeMs: freeMs, tasks: 6 });
  });
});
