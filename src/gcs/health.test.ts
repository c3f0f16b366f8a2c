// The GCS's health checks of nodes, with an in-process GCS and nodes that are fakes over net's
// in-process pairs, with short periods: what is declared dead, when, and what a dead node is told.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { randomHex } from '../ids/index.js';
import { Router, localPair, type Peer } from '../net/index.js';
import { GcsClient, GcsPublishes, GcsServer, HEALTH_CHECK, InMemoryStoreClient, NODE_DEAD, parseNodeDead, type HealthCheckOptions, type NodeDead, type NodeEvent, type NodeIdHex } from './index.js';

const T = { timeout: 30_000 };
const HEALTH: HealthCheckOptions = { periodMs: 20, timeoutMs: 60, failureThreshold: 3 };

type Mode = 'ok' | 'hang' | 'error';

function cluster(health: Partial<HealthCheckOptions> = HEALTH) {
  const server = new GcsServer(new InMemoryStoreClient(), 'c', { healthCheck: health });
  const serverRouter = new Router();
  server.register(serverRouter);
  const peers: Peer[] = [];
  const gcs = {
    server,
    /** A node (or driver) joined over its own connection, answering checks as `mode` says. */
    async join(isDriver = false, nodeId = randomHex() as NodeIdHex) {
      const node = { nodeId, mode: 'ok' as Mode, checks: 0, told: [] as NodeDead[], events: [] as NodeEvent[], closed: undefined as string | undefined };
      const router = new Router()
        .handle(HEALTH_CHECK, (body) => body, () => {
          node.checks++;
          if (node.mode === 'hang') return new Promise(() => {});
          if (node.mode === 'error') throw new Error('a handler that throws is an answer too');
          return null;
        })
        .on(NODE_DEAD, parseNodeDead, (body) => node.told.push(body));
      const publishes = new GcsPublishes().register(router);
      const [peer] = localPair({ hello: { role: isDriver ? 'driver' : 'node', nodeId }, router }, { hello: { role: 'gcs', nodeId: 'gcs' }, router: serverRouter });
      peers.push(peer);
      peer.onClose((reason) => (node.closed = reason));
      const client = new GcsClient(peer, publishes);
      client.onPublish('nodes', (event) => node.events.push(event));
      const answer = await client.registerNode({ nodeId, address: 'a:1', resources: { CPU: 1 }, isDriver });
      await client.subscribe(['nodes']);
      return { ...node, state: node, peer, client, answer };
    },
    close() {
      server.close();
      for (const peer of peers) peer.close();
    },
  };
  return gcs;
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

test('a node that stops answering is declared dead after failureThreshold missed checks: published, told, cut off', T, async () => {
  const gcs = cluster();
  try {
    const silent = await gcs.join();
    const watcher = await gcs.join();
    await waitFor('a few checks answered', () => silent.state.checks >= 3);
    const stoppedAt = performance.now();
    silent.state.mode = 'hang';
    await waitFor('the silent node to be cut off', () => silent.state.closed !== undefined);
    const detectionMs = performance.now() - stoppedAt;
    // At least threshold timeouts, and not much more than threshold * max(period, timeout) plus one check in flight.
    assert.ok(detectionMs >= HEALTH.failureThreshold * HEALTH.timeoutMs - 5, `declared dead after ${detectionMs} ms`);
    assert.match(silent.state.closed ?? '', /declared node .* dead: it missed 3 health checks/);
    // Told before the close, with why.
    assert.equal(silent.state.told.length, 1);
    assert.equal(silent.state.told[0]?.nodeId, silent.nodeId);
    assert.match(silent.state.told[0]?.reason ?? '', /missed 3 health checks in a row \(each given 60 ms, every 20 ms\)/);
    // The others hear of it; the table has it dead, with the reason.
    await waitFor('the dead event', () => watcher.state.events.some((e) => e.event === 'dead' && e.node.nodeId === silent.nodeId));
    const row = (await watcher.client.getNodes()).find((n) => n.nodeId === silent.nodeId);
    assert.equal(row?.alive, false);
    assert.match(row?.deathReason ?? '', /missed 3 health checks/);
    // The one that answers is alive.
    assert.equal((await watcher.client.getNodes()).find((n) => n.nodeId === watcher.nodeId)?.alive, true);
    assert.equal(watcher.state.closed, undefined);
  } finally {
    gcs.close();
  }
});

test('a node that answers (even with an error) stays alive; drivers are not checked', T, async () => {
  const gcs = cluster();
  try {
    const erring = await gcs.join();
    erring.state.mode = 'error';
    const driver = await gcs.join(true);
    driver.state.mode = 'hang';
    const checker = await gcs.join();
    // Many periods and more than a detection time.
    await waitFor('many checks of the erring node', () => erring.state.checks >= 4 * HEALTH.failureThreshold);
    const nodes = await checker.client.getNodes();
    assert.deepEqual(nodes.filter((n) => !n.alive), []);
    assert.equal(driver.state.checks, 0);
    assert.equal(erring.state.closed, undefined);
  } finally {
    gcs.close();
  }
});

test('missed checks count only in a row: a node that misses fewer than the threshold, then answers, stays alive', T, async () => {
  const gcs = cluster({ periodMs: 10, timeoutMs: 40, failureThreshold: 3 });
  try {
    const node = await gcs.join();
    const watcher = await gcs.join();
    for (let round = 0; round < 4; round++) {
      node.state.mode = 'hang';
      const before = node.state.checks;
      await waitFor('two checks missed', () => node.state.checks >= before + 2);
      node.state.mode = 'ok';
      const after = node.state.checks;
      await waitFor('a check answered', () => node.state.checks >= after + 2);
    }
    assert.equal(node.state.closed, undefined);
    assert.equal((await watcher.client.getNodes()).find((n) => n.nodeId === node.nodeId)?.alive, true);
  } finally {
    gcs.close();
  }
});

test('a node the GCS declared dead that registers again is answered that it is dead, and is not listed alive', T, async () => {
  const gcs = cluster();
  try {
    const node = await gcs.join();
    node.state.mode = 'hang';
    await waitFor('the node to be cut off', () => node.state.closed !== undefined);
    // Back from the partition, over a new connection, under the same ID.
    const again = await gcs.join(false, node.nodeId);
    assert.ok('dead' in again.answer);
    assert.deepEqual(again.answer, { dead: true, nodeId: node.nodeId, reason: (again.answer as NodeDead).reason });
    assert.match((again.answer as NodeDead).reason, /missed 3 health checks/);
    const row = (await again.client.getNodes()).find((n) => n.nodeId === node.nodeId);
    assert.equal(row?.alive, false);
    // Not checked either (it is not a member): its connection stays as it is, unused.
    const checks = again.state.checks;
    await new Promise((resolve) => setTimeout(resolve, 5 * HEALTH.timeoutMs));
    assert.equal(again.state.checks, checks);
    // A node that unregistered is dead too.
    const other = await gcs.join();
    await other.client.unregisterNode(other.nodeId);
    const back = await gcs.join(false, other.nodeId);
    assert.deepEqual(back.answer, { dead: true, nodeId: other.nodeId, reason: 'it unregistered' });
  } finally {
    gcs.close();
  }
});

test('closing the GCS stops its checks', T, async () => {
  const gcs = cluster();
  const node = await gcs.join();
  await waitFor('a check', () => node.state.checks >= 1);
  gcs.server.close();
  const checks = node.state.checks;
  await new Promise((resolve) => setTimeout(resolve, 5 * HEALTH.periodMs + HEALTH.timeoutMs));
  assert.ok(node.state.checks <= checks + 1);
  gcs.close();
});

test("a GCS whose own event loop was held up does not count the checks that timed out meanwhile", T, async () => {
  // Over a real socket, in this process: the node's handler holds the thread (and so the GCS's
  // loop) past the check's timeout; then the timeout's timer runs before the answer, waiting in the
  // socket, is read. With a threshold of 1, one such check counted would kill the node.
  const { listen, connect } = await import('../net/index.js');
  const server = new GcsServer(new InMemoryStoreClient(), 'c', { healthCheck: { periodMs: 20, timeoutMs: 50, failureThreshold: 1 } });
  const serverRouter = new Router();
  server.register(serverRouter);
  const listener = await listen({ host: '127.0.0.1', port: 0, token: 't', hello: { role: 'gcs', nodeId: 'gcs' }, router: serverRouter });
  let checks = 0;
  const nodeRouter = new Router().handle(HEALTH_CHECK, (body) => body, () => {
    checks++;
    if (checks % 3 === 0) {
      const end = performance.now() + 300;
      while (performance.now() < end);
    }
    return null;
  });
  const nodeId = randomHex() as NodeIdHex;
  const peer = await connect({ host: listener.host, port: listener.port, token: 't', hello: { role: 'node', nodeId }, router: nodeRouter });
  try {
    const client = new GcsClient(peer);
    await client.registerNode({ nodeId, address: 'a:1', resources: {}, isDriver: false });
    await waitFor('five holds', () => checks >= 16);
    assert.equal(peer.isClosed, false);
    assert.equal((await client.getNodes())[0]?.alive, true);
  } finally {
    peer.close();
    server.close();
    await listener.close();
  }
});
