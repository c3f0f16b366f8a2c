/**
 * The cross-node tests, on one cluster of real processes per run: a head and two nodes of one CPU
 * each (the second offers `disk`), and a third node (`late`) added during the resources test.
 * cluster.test.ts runs them on loopback; netns.test.ts with every node in a network namespace.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster, helloFrame, isAlive, nodeHolds, resultsOf, sendRaw, waitFor, type ClusterNode } from './harness.js';

interface Where {
  readonly nodeId: string;
  readonly pid: number;
}
interface ErrorOutcome {
  readonly value?: unknown;
  readonly error?: { readonly name: string; readonly message: string };
}

export function clusterSuite(label: string, options: { netns: boolean }): void {
  describe(`cluster across processes (${label})`, { timeout: 300_000 }, () => {
    let cluster: Cluster | undefined;
    const c = (): Cluster => {
      if (cluster === undefined) throw new Error('the cluster did not start (see the before hook)');
      return cluster;
    };
    const head = (): ClusterNode => c().head;
    const plain = (): ClusterNode => c().nodes[1] as ClusterNode;
    const disk = (): ClusterNode => c().nodes[2] as ClusterNode;
    const baseNodes = (): ClusterNode[] => [head(), plain(), disk()];

    /** Waits until the alive nodes report every CPU free (nothing left running or held). */
    const allCpusFree = (why: string) =>
      waitFor(`every CPU free: ${why}`, async () => {
        const alive = (await c().nodeTable()).filter((n) => n.alive);
        const sum = (pick: (n: (typeof alive)[number]) => Readonly<Record<string, number>>) => alive.reduce((total, n) => total + (pick(n)['CPU'] ?? 0), 0);
        return sum((n) => n.available) === sum((n) => n.resources);
      }, 30_000);

    before(async () => {
      cluster = await Cluster.start({ numCpus: 1 }, [{ numCpus: 1 }, { numCpus: 1, resources: { disk: 1 } }], { netns: options.netns, name: label });
      // Started one after the other so that nodes[1] and nodes[2] are the ones named above.
      assert.deepEqual(c().nodes.map((n) => n.spec.resources?.['disk'] ?? 0), [0, 0, 1]);
      if (options.netns) {
        // Each on an address of its own namespace, not loopback: as separate hosts.
        const hosts = c().nodes.map((n) => n.address.slice(0, n.address.lastIndexOf(':')));
        for (const host of hosts) assert.match(host, /^10\.77\.\d+\.\d+$/);
        assert.equal(new Set(hosts).size, hosts.length, `one address per host: ${hosts.join(', ')}`);
      }
    });
    after(async () => {
      await cluster?.stop();
    });

    test('spread: SPREAD tasks run on every node, and DEFAULT ones on more than one', async () => {
      const [outcome] = (await c().run('driver.mjs', ['spread'])) as [{ nodes: string[]; spread: string[]; pids: number[]; byDefault: string[]; driver: Where }];
      const ids = baseNodes().map((n) => n.nodeId).sort();
      assert.deepEqual([...outcome.nodes].sort(), ids, 'nodes() lists the head and both nodes');
      assert.deepEqual([...new Set(outcome.spread)].sort(), ids, 'SPREAD tasks ran on every node');
      assert.deepEqual([...new Set(outcome.pids)].sort(), baseNodes().map((n) => n.proc.pid).sort(), 'each in its node\'s process');
      assert.ok(!outcome.spread.includes(outcome.driver.nodeId), 'none in the driver, which offers no CPUs');
      assert.ok(new Set(outcome.byDefault).size >= 2, `DEFAULT tasks that take a while use more than one node: ${JSON.stringify(outcome.byDefault)}`);
    });

    test('affinity: hard runs there, hard to a node that cannot fails with InvalidOptionError, soft falls back', async () => {
      const [outcome] = (await c().run('driver.mjs', ['affinity', JSON.stringify({ target: plain().nodeId, lacking: plain().nodeId, holder: disk().nodeId })])) as [
        { hard: string[]; impossible: ErrorOutcome; nowhere: ErrorOutcome; soft: string; softNowhere: string },
      ];
      assert.deepEqual(outcome.hard, [plain().nodeId, plain().nodeId, plain().nodeId]);
      assert.equal(outcome.impossible.error?.name, 'InvalidOptionError', JSON.stringify(outcome.impossible));
      assert.match(outcome.impossible.error?.message ?? '', /schedulingStrategy.*cannot run it/);
      assert.equal(outcome.nowhere.error?.name, 'InvalidOptionError', JSON.stringify(outcome.nowhere));
      assert.match(outcome.nowhere.error?.message ?? '', /not an alive node/);
      assert.equal(outcome.soft, disk().nodeId, 'soft affinity to a node without disk runs where disk is');
      assert.ok(baseNodes().some((n) => n.nodeId === outcome.softNowhere), 'soft affinity to no node runs on one');
    });

    test('resources: { disk: 1 } runs only where disk is; a task no node can run waits, then runs on a node that joins', async () => {
      const driver = c().driver('driver.mjs', ['resources']);
      await driver.match(/WAITING/, 120_000);
      const [diskRun, before] = resultsOf(driver.stdout) as [{ disk: string[] }, { readyBeforeJoin: number; pendingBeforeJoin: number }];
      assert.deepEqual(diskRun.disk, [disk().nodeId, disk().nodeId, disk().nodeId]);
      assert.deepEqual(before, { readyBeforeJoin: 0, pendingBeforeJoin: 1 }, 'wait() times out with the task pending');
      assert.match(driver.stderr, /needs 1 CPU, 1 late, which no node of the cluster has; it waits until a node that has them joins/);
      assert.equal(driver.stderr.match(/which no node of the cluster has/g)?.length, 1, `warned once, not at each resource report:\n${driver.stderr}`);
      const late = await c().addNode({ numCpus: 1, resources: { late: 1 } });
      driver.send('go');
      const outcome = await driver.ended();
      assert.equal(outcome.code, 0, driver.describe());
      const results = resultsOf(outcome.stdout) as [unknown, unknown, { late: string }];
      assert.equal(results[2].late, late.nodeId, 'it ran on the node that joined');
      await c().stopNode(late);
      await c().waitForNodes(3);
    });

    test('actors on another node: placed there, calls in order, state kept, callable from a task elsewhere', async () => {
      const [outcome] = (await c().run('driver.mjs', ['actors', JSON.stringify({ target: disk().nodeId })])) as [
        { order: number[]; placedOrder: number[]; fromTask: { value: number; nodeId: string }; last: number; pinnedAt: Where; placedAt: Where; free: string; driver: Where },
      ];
      assert.deepEqual(outcome.order, Array.from({ length: 50 }, (_, i) => i + 1), 'calls ran in submission order');
      assert.deepEqual(outcome.placedOrder, [1, 2, 3, 4, 5]);
      assert.deepEqual(outcome.pinnedAt, { nodeId: disk().nodeId, pid: disk().proc.pid }, 'the pinned actor lives in the disk node\'s process');
      assert.notEqual(outcome.placedAt.nodeId, outcome.driver.nodeId, 'a DEFAULT actor goes to a node with CPUs, not the driver');
      assert.ok(baseNodes().some((n) => n.nodeId === outcome.placedAt.nodeId && n.proc.pid === outcome.placedAt.pid));
      assert.notEqual(outcome.placedAt.nodeId, disk().nodeId, 'the DEFAULT actor is not placed where the pinned one holds the only CPU');
      assert.deepEqual(outcome.fromTask, { value: 51, nodeId: outcome.free }, 'a task on a third node called it through its handle');
      assert.equal(outcome.last, 52, 'its state is kept across callers');
      await allCpusFree('the actors of a driver that left die with it');
    });

    test('named actors: a second driver finds one with getActor(name, { namespace }) and calls it', async () => {
      const name = { name: 'tally', namespace: 'cluster-test' };
      const owner = c().driver('driver.mjs', ['namedOwner', JSON.stringify(name)]);
      await owner.match(/READY/, 120_000);
      const [user] = (await c().run('driver.mjs', ['namedUser', JSON.stringify(name)])) as [{ counts: number[]; otherNamespace: ErrorOutcome }];
      assert.deepEqual(user.counts, [2, 3, 4], 'driver 2\'s calls reach the actor driver 1 made, after its own');
      assert.equal(user.otherNamespace.error?.name, 'ActorNotFoundError', `the name is not found in another namespace: ${JSON.stringify(user.otherNamespace)}`);
      owner.send('go');
      const outcome = await owner.ended();
      assert.equal(outcome.code, 0, owner.describe());
      const [first, final] = resultsOf(outcome.stdout) as [{ first: number }, { calls: string[]; last: number }];
      assert.equal(first.first, 1);
      assert.deepEqual(final, { calls: ['owner', 'user', 'user', 'user'], last: 5 });
      await allCpusFree('the named actor of a driver that left dies with it');
    });

    test('object transfer: a 64 MiB array put by the driver is read on every node; a result made on one node is read on another', async () => {
      const [outcome] = (await c().run('driver.mjs', ['transfer', JSON.stringify({ nodes: baseNodes().map((n) => n.nodeId), producer: plain().nodeId, consumer: disk().nodeId })])) as [
        {
          expected: number;
          reads: { nodeId: string; sum: number; length: number; type: string }[];
          readMs: number;
          madeExpected: number;
          consumed: { nodeId: string; sum: number; length: number };
          driverSum: number;
          driverLength: number;
        },
      ];
      assert.deepEqual(
        outcome.reads,
        baseNodes().map((n) => ({ nodeId: n.nodeId, sum: outcome.expected, length: 8 * 1024 * 1024, type: 'Float64Array' })),
      );
      assert.deepEqual(outcome.consumed, { nodeId: disk().nodeId, sum: outcome.madeExpected, length: 4 * 1024 * 1024, type: 'Float64Array' });
      assert.equal(outcome.driverSum, outcome.madeExpected);
      assert.equal(outcome.driverLength, 4 * 1024 * 1024);
      console.log(`# ${label}: 64 MiB read on ${baseNodes().length} nodes in ${outcome.readMs} ms`);
    });

    test('distributed freeing: once the driver drops its ref and GC runs, the holder node frees its copy', async () => {
      const holder = plain();
      const reader = disk();
      const driver = c().driver('driver.mjs', ['freeing', JSON.stringify({ holder: holder.nodeId, reader: reader.nodeId })], { nodeArgs: ['--expose-gc'] });
      await driver.match(/HOLDING/, 120_000);
      const [made] = resultsOf(driver.stdout) as [{ id: string; read: number; ready: number }];
      assert.equal(made.read, 3 * 1024 * 1024);
      assert.equal(await nodeHolds(holder.address, c().token, made.id), true, 'the node that made it holds it while the driver has the ref');
      const readerHadCopy = await nodeHolds(reader.address, c().token, made.id);
      driver.send('drop');
      await driver.match(/DROPPED/);
      await waitFor('the holder node to free the object', async () => !(await nodeHolds(holder.address, c().token, made.id)), 30_000);
      await waitFor('the reader node to have no copy', async () => !(await nodeHolds(reader.address, c().token, made.id)), 30_000);
      console.log(`# ${label}: the reader's node ${readerHadCopy ? 'held' : 'did not hold'} a copy after its task; both gone after the drop`);
      driver.send('exit');
      assert.equal((await driver.ended()).code, 0, driver.describe());
    });

    test('distributed freeing: a ref borrowed by an actor on another node keeps the object alive until the actor lets go', async () => {
      const holder = plain();
      const borrower = disk();
      const driver = c().driver('driver.mjs', ['borrowing', JSON.stringify({ holder: holder.nodeId, borrower: borrower.nodeId })], { nodeArgs: ['--expose-gc'] });
      await driver.match(/HOLDING/, 120_000);
      const [made] = resultsOf(driver.stdout) as [{ id: string; kept: number; before: string[] }];
      assert.equal(made.kept, 1);
      assert.ok(made.before.includes('driver') && made.before.some((h) => h.includes('node:')), `the driver and the borrowing node hold it: ${made.before.join(', ')}`);
      driver.send('drop');
      await driver.match(/DROPPED/);
      const [, dropped] = resultsOf(driver.stdout) as [unknown, { afterDrop: string[] }];
      assert.ok(!dropped.afterDrop.includes('driver') && dropped.afterDrop.length > 0, `only the borrower holds it now: ${dropped.afterDrop.join(', ')}`);
      driver.send('go');
      await driver.match(/RELEASED/);
      const [, , after] = resultsOf(driver.stdout) as [unknown, unknown, { sumAfterDrop: number }];
      assert.equal(after.sumAfterDrop, 2 * 1024 * 1024, 'the actor still reads it after the driver dropped its ref');
      await waitFor('the holder node to free it once the borrower let go', async () => !(await nodeHolds(holder.address, c().token, made.id)), 30_000);
      driver.send('exit');
      assert.equal((await driver.ended()).code, 0, driver.describe());
    });

    test('actors created back to back by DEFAULT go to nodes with free CPUs', async () => {
      const [outcome] = (await c().run('driver.mjs', ['actorBurst', JSON.stringify({ count: 3, timeoutMs: 3_000 })])) as [{ started: number; at: string[] }];
      assert.equal(outcome.started, 3, `started on ${outcome.at.join(', ')}`);
      await allCpusFree('the burst\'s actors die with their driver');
    });

    test('auth: garbage, a wrong token and oversized frames close the connection on every port; the cluster keeps working', async () => {
      const ports = baseNodes().map((n) => n.address);
      const oversized = Buffer.alloc(4 + 1024);
      oversized.writeUInt32BE(0x7fff_fff0, 0);
      const attacks: [string, () => Buffer, ((answer: Buffer) => void)?, { answer: RegExp; bytes: Buffer }?][] = [
        ['bytes that are not msgpack', () => Buffer.from([0, 0, 0, 8, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1, 0xc1])],
        ['an HTTP request', () => Buffer.from('GET / HTTP/1.1\r\nHost: miniray\r\n\r\n')],
        ['a wrong token', () => helloFrame('not-the-token'), (answer) => assert.match(answer.toString('latin1'), /refused/)],
        ['an oversized first frame', () => oversized, (answer) => assert.equal(answer.byteLength, 0)],
        // Authenticated first: the frame limit of a peer that gave the token, not the hello's.
        ['an oversized frame after a valid hello', () => helloFrame(c().token), (answer) => assert.match(answer.toString('latin1'), /welcome/), { answer: /welcome/, bytes: oversized }],
      ];
      await Promise.all(
        ports.flatMap((address) =>
          attacks.map(async ([what, bytes, check, then]) => {
            const answer = await sendRaw(address, bytes(), then).catch((error: Error) => assert.fail(`${what} at ${address}: ${error.message}`));
            check?.(answer);
          }),
        ),
      );
      for (const node of baseNodes()) assert.ok(isAlive(node.proc.pid) && node.proc.running, `${node.proc.name} still runs`);
      assert.match(head().proc.stderr, /miniray: the peer at .*/, 'the head logged the bad peers');
      const [outcome] = (await c().run('driver.mjs', ['spread'])) as [{ spread: string[] }];
      assert.deepEqual([...new Set(outcome.spread)].sort(), baseNodes().map((n) => n.nodeId).sort(), 'every node still runs tasks');
    });

    test('auth: a driver with a wrong token, or none, fails init() with AuthenticationError', async () => {
      const [wrong] = (await c().run('driver.mjs', ['initFails'], { env: { MINIRAY_AUTH_TOKEN: 'not-the-token' } })) as [ErrorOutcome];
      assert.equal(wrong.error?.name, 'AuthenticationError', JSON.stringify(wrong));
      assert.match(wrong.error?.message ?? '', /MINIRAY_AUTH_TOKEN/);
      const [none] = (await c().run('driver.mjs', ['initFails'], { env: { MINIRAY_AUTH_TOKEN: '', MINIRAY_HOME: `${c().scratch}/empty-home` } })) as [ErrorOutcome];
      assert.equal(none.error?.name, 'AuthenticationError', JSON.stringify(none));
      assert.match(none.error?.message ?? '', /MINIRAY_AUTH_TOKEN/);
    });
  });
}
