// init()'s result and its dashboard in a driver: { address, nodeId, dashboardUrl }, the token
// (MINIRAY_AUTH_TOKEN when set, else a new one), a taken port, and shutdown() closing it.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { afterEach, describe, test } from 'node:test';
import { InvalidOptionError, getRuntimeContext, init, isInitialized, shutdown } from 'miniray';

describe('init() and the dashboard in a driver', { timeout: 120_000 }, () => {
  afterEach(async () => {
    delete process.env['MINIRAY_AUTH_TOKEN'];
    await shutdown();
  });

  test('init() resolves to { address, nodeId, dashboardUrl }; again with ignoreReinitError, to the same', async () => {
    const first = await init({ numWorkers: 1 });
    assert.deepEqual(first, { address: undefined, nodeId: getRuntimeContext().nodeId, dashboardUrl: undefined });
    assert.match(first.nodeId, /^[0-9a-f]{32}$/);
    assert.deepEqual(await init({ numWorkers: 1, ignoreReinitError: true }), first);
  });

  test('includeDashboard serves it behind MINIRAY_AUTH_TOKEN; shutdown() closes it', async () => {
    const token = 'f'.repeat(64);
    process.env['MINIRAY_AUTH_TOKEN'] = token;
    const { dashboardUrl } = await init({ numWorkers: 1, includeDashboard: true, dashboardPort: 0 });
    assert.ok(dashboardUrl !== undefined);
    const url = new URL(dashboardUrl);
    assert.equal(url.hostname, '127.0.0.1');
    assert.equal(url.searchParams.get('token'), token);
    const base = url.origin;
    assert.equal((await fetch(`${base}/api/state/nodes`)).status, 401);
    const nodes = await fetch(`${base}/api/state/nodes`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(nodes.status, 200);
    const { records } = (await nodes.json()) as { records: { nodeId: string }[] };
    assert.deepEqual(records.map((n) => n.nodeId), [getRuntimeContext().nodeId]);
    await shutdown();
    await assert.rejects(fetch(`${base}/healthz`), 'closed with the runtime');
  });

  test('without MINIRAY_AUTH_TOKEN, a new random token per process', async () => {
    const { dashboardUrl } = await init({ numWorkers: 1, includeDashboard: true, dashboardPort: 0 });
    assert.match(new URL(dashboardUrl ?? '').searchParams.get('token') ?? '', /^[0-9a-f]{64}$/);
  });

  test('a taken port is an InvalidOptionError naming dashboardPort, and miniray is not left running', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      await assert.rejects(
        init({ numWorkers: 1, includeDashboard: true, dashboardPort: port }),
        (error: unknown) => error instanceof InvalidOptionError && error.option === 'dashboardPort' && /is taken/.test(error.message),
      );
      assert.equal(isInitialized(), false);
    } finally {
      server.close();
    }
    const { dashboardUrl } = await init({ numWorkers: 1, includeDashboard: true, dashboardPort: 0 });
    assert.ok(dashboardUrl !== undefined, 'init() works again after');
  });
});
