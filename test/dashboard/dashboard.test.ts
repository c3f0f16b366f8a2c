// The dashboard's page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
// it loads with the token (and keeps it in its cookie, out of the URL), shows running tasks and
// actors, updates when new work arrives without a reload, and refuses without the token. First over
// a fake StateSource (every view, deterministic), then over a real driver's embedded cluster
// (init({ includeDashboard: true })). The page is the built bundle: the test builds it first.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { get, init, shutdown } from 'miniray';
import { FakeLogSource, FakeStateSource } from '../../src/dashboard/fake-state.js';
import { startDashboard, type RunningDashboard } from '../../src/dashboard/index.js';
import type { TaskEntry } from '../../src/state/types.js';
import { CounterActor } from '../fixtures/actors-lib.js';
import { Gate, waitForGate } from '../fixtures/coordination.js';

const CHROMIUM = '/usr/bin/chromium';
const root = fileURLToPath(new URL('../..', import.meta.url));
const HEX = (n: number) => n.toString(16).padStart(32, '0');
const TOKEN = 'd'.repeat(64);
/** Generous: two cores shared with other test processes. */
const UI_TIMEOUT_MS = 20_000;

const skip = existsSync(CHROMIUM) ? false : `no ${CHROMIUM}: install Debian's chromium (apt-get install -y chromium) to run the browser test`;

function task(n: number, name: string, state: TaskEntry['state'], more: Partial<TaskEntry> = {}): TaskEntry {
  return { taskId: HEX(n), attempt: 0, name, type: 'NORMAL_TASK', state, ownerNodeId: HEX(1), nodeId: HEX(1), workerId: HEX(50), requiredResources: { CPU: 1 }, creationTimeMs: Date.now(), ...more };
}

async function newPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  return page;
}

describe('dashboard in a browser', { skip, timeout: 180_000 }, () => {
  let browser: Browser;
  before(async () => {
    // The page served is dist's bundle: make it from the sources of this checkout.
    execFileSync(process.execPath, [`${root}scripts/build-dashboard.mjs`], { stdio: 'inherit' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  });
  after(async () => {
    await browser?.close();
  });

  describe('over a fake StateSource', () => {
    const state = new FakeStateSource();
    const logs = new FakeLogSource();
    let dashboard: RunningDashboard;
    before(async () => {
      state.tables.nodes.push({ nodeId: HEX(1), state: 'ALIVE', address: '127.0.0.1:6380', isHead: true, isDriver: false, resourcesTotal: { CPU: 4 }, resourcesAvailable: { CPU: 2 } });
      state.stats = [{ nodeId: HEX(1), storeUsedBytes: 3 << 20, storeCapacityBytes: 64 << 20, spilledBytes: 1 << 20, spilledObjects: 2, objects: 5, workers: 4, queuedTasks: 0 }];
      state.tables.tasks.push(
        task(10, 'square', 'RUNNING'),
        task(11, 'square', 'FINISHED'),
        task(12, 'explode', 'FAILED', { errorType: 'TaskError', errorMessage: 'explode() threw: RangeError: too big' }),
      );
      state.tables.actors.push({ actorId: HEX(20), className: 'Counter', namespace: 'default', state: 'ALIVE', nodeId: HEX(1), ownerNodeId: HEX(1), numRestarts: 0, maxRestarts: 2, detached: false });
      state.tables.objects.push({ objectId: HEX(30), nodeId: HEX(1), state: 'ready', sizeBytes: 2048, location: 'memory', owner: 'driver', referencedBy: ['driver (1 ref)'] });
      state.tables.jobs.push({ jobId: '1', status: 'RUNNING', driverNodeId: HEX(1), startTimeMs: Date.now(), submissionId: 'raysubmit_1', entrypoint: 'node job.mjs' });
      logs.lines.push({ nodeId: HEX(1), seq: 1, timeMs: Date.now(), stream: 'stdout', workerId: HEX(50), name: 'square', taskId: HEX(10), text: 'squaring 7' });
      dashboard = await startDashboard({ port: 0, token: TOKEN, state, logs, pollMs: 100 });
    });
    after(() => dashboard?.close());

    test('refuses without the token, or with a wrong one', async () => {
      const page = await newPage(browser);
      try {
        const bare = await page.goto(`${dashboard.url}/`);
        assert.equal(bare?.status(), 401);
        assert.equal(await page.locator('#app').count(), 0, 'no page without the token');
        const wrong = await page.goto(`${dashboard.url}/?token=${'e'.repeat(64)}`);
        assert.equal(wrong?.status(), 403);
        assert.deepEqual(await page.context().cookies(), [], 'no cookie for a wrong token');
        assert.equal((await page.goto(`${dashboard.url}/api/events`))?.status(), 401);
      } finally {
        await page.context().close();
      }
    });

    test('loads with the token, shows every view, and updates live', async () => {
      const page = await newPage(browser);
      try {
        const reply = await page.goto(dashboard.urlWithToken);
        assert.equal(reply?.status(), 200);
        assert.equal(page.url(), `${dashboard.url}/`, 'the token leaves the address bar');
        const [cookie] = await page.context().cookies();
        assert.equal(cookie?.name, 'miniray_token');
        assert.equal(cookie?.httpOnly, true);
        assert.equal(cookie?.sameSite, 'Strict');

        await page.getByTestId('status').filter({ hasText: 'live' }).waitFor();
        const node = page.getByTestId('node-row');
        await node.waitFor();
        assert.match(await node.innerText(), /127\.0\.0\.1:6380[\s\S]*CPU 2\/4[\s\S]*3\.0 MiB \/ 64\.0 MiB[\s\S]*1\.0 MiB \(2\)/);

        await page.getByTestId('tab-tasks').click();
        await page.locator('[data-testid=task-row][data-state=RUNNING][data-name=square]').waitFor();
        assert.match(await page.getByTestId('failed-row').innerText(), /explode[\s\S]*TaskError: explode\(\) threw: RangeError: too big/);
        assert.equal(await page.locator('[data-testid=task-summary-row][data-name=square] [data-state=FINISHED]').innerText(), '1');
        await page.locator('[data-testid=task-chart] canvas').waitFor();

        // New work arrives: the page shows it without a reload.
        state.tables.tasks.push(task(13, 'fresh', 'RUNNING'));
        await page.locator('[data-testid=task-row][data-name=fresh]').waitFor();
        state.tables.tasks[0] = task(10, 'square', 'FINISHED');
        await page.locator('[data-testid=task-row][data-name=square]').waitFor({ state: 'detached' });
        await page.locator('[data-testid=task-summary-row][data-name=square] [data-state=FINISHED]').filter({ hasText: '2' }).waitFor();

        await page.getByTestId('tab-actors').click();
        const actorRow = page.locator('[data-testid=actor-row][data-class=Counter]');
        await actorRow.waitFor();
        assert.match(await actorRow.innerText(), /ALIVE[\s\S]*0\/2/);
        state.tables.actors.push({ actorId: HEX(21), className: 'Cache', namespace: 'default', state: 'PENDING_CREATION', ownerNodeId: HEX(1), numRestarts: 0, maxRestarts: 0, detached: false });
        await page.locator('[data-testid=actor-row][data-class=Cache][data-state=PENDING_CREATION]').waitFor();

        await page.getByTestId('tab-objects').click();
        assert.match(await page.getByTestId('object-row').innerText(), /2\.0 KiB[\s\S]*memory[\s\S]*driver \(1 ref\)/);
        await page.getByTestId('tab-jobs').click();
        assert.match(await page.getByTestId('job-row').innerText(), /raysubmit_1[\s\S]*RUNNING[\s\S]*node job\.mjs/);

        // Logs of one task, from its row.
        await page.getByTestId('tab-tasks').click();
        await page.locator('[data-testid=task-row][data-name=fresh]').waitFor();
        await page.goto(`${dashboard.url}/#logs?taskId=${HEX(10)}`);
        assert.match(await page.getByTestId('log-line').innerText(), /\(square worker=00000000 node=00000000\) squaring 7/);
        logs.lines.push({ nodeId: HEX(1), seq: 2, timeMs: Date.now(), stream: 'stdout', workerId: HEX(50), name: 'square', taskId: HEX(10), text: 'squared: 49' });
        await page.getByTestId('log-line').filter({ hasText: 'squared: 49' }).waitFor();
      } finally {
        await page.context().close();
      }
    });
  });

  describe("over a driver's embedded cluster", () => {
    test('init({ includeDashboard: true }) serves the page; it shows the actors and tasks that run, then new ones', async () => {
      const { dashboardUrl, nodeId, address } = await init({ numWorkers: 3, numCpus: 3, includeDashboard: true, dashboardPort: 0 });
      const gate = new Gate();
      const page = await newPage(browser);
      try {
        assert.equal(address, undefined, 'embedded: nothing to join');
        assert.ok(dashboardUrl !== undefined && /^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]+$/.test(dashboardUrl), dashboardUrl);
        const counter = CounterActor.remote();
        assert.equal(await get(counter.inc.remote()), 1);
        const running = waitForGate.remote(gate.name, 'first');
        await gate.whenWaiting(1, UI_TIMEOUT_MS);

        assert.equal((await page.goto(dashboardUrl))?.status(), 200);
        await page.getByTestId('status').filter({ hasText: 'live' }).waitFor();
        await page.locator(`[data-testid=node-row][title="${nodeId}"]`).waitFor();
        await page.getByTestId('tab-actors').click();
        await page.locator('[data-testid=actor-row][data-class=Counter][data-state=ALIVE]').waitFor();

        // Tasks come from the task events (issue 12's events part): a build without them says so on the page.
        const tasksReply = await page.request.get(new URL('/api/state/tasks', dashboardUrl).href);
        if (tasksReply.status() !== 200) {
          console.log(`# the task list is not served by this build (${tasksReply.status()}): the task assertions are skipped until task events are merged`);
        } else {
          // A task on its worker is SUBMITTED_TO_WORKER until the worker's result says when it started (RUNNING).
          const onWorker = '[data-testid=task-row]:is([data-state=RUNNING], [data-state=SUBMITTED_TO_WORKER])';
          await page.getByTestId('tab-tasks').click();
          await page.locator(onWorker).first().waitFor();
          const more = waitForGate.remote(gate.name, 'second');
          await gate.whenWaiting(2, UI_TIMEOUT_MS);
          await page.locator(onWorker).nth(1).waitFor();
          gate.open();
          assert.equal(await get(more), 'second');
        }
        gate.open();
        assert.equal(await get(running), 'first');
      } finally {
        gate.close();
        await page.context().close();
        await shutdown();
      }
      // shutdown() closes the dashboard too.
      await assert.rejects(fetch(new URL('/healthz', dashboardUrl)));
    });
  });
});
