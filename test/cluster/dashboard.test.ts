// The head's dashboard with real processes: `miniray start --head` serves it (the harness asks for
// --dashboard-port 0, so that heads started together do not fight over 8265) and prints its URL
// with the token once; a node serves none; a port taken is a warning and a head without it; the
// detached form prints the URL too. What it shows is the cluster's (both nodes, per-node metrics).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Cluster, Proc, cliMain, trackGroup } from './harness.js';

const DASHBOARD_LINE = /Dashboard:\s+(http:\/\/127\.0\.0\.1:(\d+))\/\?token=([0-9a-f]+)/;

describe('the head serves the dashboard', { timeout: 240_000 }, () => {
  let cluster: Cluster;
  let base = '';
  let token = '';
  before(async () => {
    cluster = await Cluster.start({ numCpus: 1 }, [{ numCpus: 1 }], { name: 'dashboard' });
    const line = DASHBOARD_LINE.exec(cluster.head.proc.stdout);
    assert.ok(line !== null, cluster.head.proc.stdout);
    base = line[1] as string;
    token = line[3] as string;
  });
  after(() => cluster?.stop());

  test('the printed URL holds the cluster token; every route checks it', async () => {
    assert.equal(token, cluster.token);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/api/state/nodes`)).status, 401);
    assert.equal((await fetch(`${base}/api/state/nodes`, { headers: { authorization: `Bearer ${'0'.repeat(64)}` } })).status, 403);
    const opened = await fetch(`${base}/?token=${token}`, { redirect: 'manual' });
    assert.equal(opened.status, 302);
    const cookie = String(opened.headers.get('set-cookie')).split(';')[0] as string;
    const page = await fetch(`${base}/`, { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script type="module" src="\/ui\/app\.js">/);
    assert.equal((await fetch(`${base}/ui/app.js`, { headers: { cookie } })).status, 200, 'npm run build bundled the page into dist');
  });

  test("it lists the cluster's nodes, and /metrics has a series per node", async () => {
    const auth = { headers: { authorization: `Bearer ${token}` } };
    const nodes = (await (await fetch(`${base}/api/state/nodes?filter=state=ALIVE`, auth)).json()) as { records: { nodeId: string; isHead: boolean }[] };
    const ids = nodes.records.map((n) => n.nodeId).sort();
    for (const node of cluster.nodes) assert.ok(ids.includes(node.nodeId), `${node.nodeId} in ${ids.join(', ')}`);
    assert.ok(nodes.records.some((n) => n.isHead && n.nodeId === cluster.head.nodeId));
    const metrics = await (await fetch(`${base}/metrics`, auth)).text();
    assert.match(metrics, /^miniray_nodes_alive 2$/m);
    for (const node of cluster.nodes) assert.match(metrics, new RegExp(`^miniray_object_store_capacity_bytes\\{NodeId="${node.nodeId}"\\} [1-9]`, 'm'));
  });

  test("a driver that joins gets the head's dashboard from init(), with the token", async () => {
    const [result] = (await cluster.run('dashboard-driver.mjs')) as { address: string; nodeId: string; dashboardUrl: string }[];
    assert.ok(result !== undefined);
    assert.equal(result.address, cluster.gcsAddress);
    assert.match(result.nodeId, /^[0-9a-f]{32}$/);
    assert.equal(result.dashboardUrl, `${base}/?token=${token}`);
  });

  test('a node serves no dashboard', () => {
    const node = cluster.nodes[1];
    assert.ok(node !== undefined);
    assert.doesNotMatch(node.proc.stdout, /Dashboard/);
  });

  test('a head whose dashboard port is taken warns and runs without it', async () => {
    const port = (DASHBOARD_LINE.exec(cluster.head.proc.stdout)?.[2] ?? '') as string;
    const second = await Cluster.start({ numCpus: 1 }, [], { name: 'dashboard-taken', headArgs: ['--dashboard-port', port] });
    try {
      assert.match(second.head.proc.stdout, new RegExp(`Dashboard: +not served: 127\\.0\\.0\\.1:${port} is taken`));
      assert.match(second.head.proc.stderr, /warning: the dashboard's port .* is taken, so the head runs without a dashboard/);
      assert.equal((await second.nodeTable()).length, 1, 'the head runs');
    } finally {
      await second.stop();
    }
  });

  test('miniray start --head (detached) prints the URL too', async () => {
    const home = mkdtempSync(join(tmpdir(), 'miniray-dashboard-detached-'));
    const env = { ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MINIRAY_'))), MINIRAY_HOME: home };
    const run = await new Proc('start --head', process.execPath, [cliMain, 'start', '--head', '--port', '0', '--dashboard-port', '0', '--num-cpus', '1'], env).ended(90_000);
    const pid = Number(/\(pid (\d+);/.exec(run.stdout)?.[1]);
    if (pid > 0) trackGroup(pid);
    try {
      assert.equal(run.code, 0, run.stderr);
      const line = DASHBOARD_LINE.exec(run.stdout);
      assert.ok(line !== null, run.stdout);
      assert.equal((await fetch(`${line[1]}/api/state/nodes`, { headers: { authorization: `Bearer ${line[3]}` } })).status, 200);
    } finally {
      await new Proc('stop', process.execPath, [cliMain, 'stop', '--grace', '5'], env).ended(60_000);
    }
  });
});
