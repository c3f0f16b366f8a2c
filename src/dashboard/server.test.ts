import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { InvalidOptionError, RequestTimeoutError } from '../errors/index.js';
import { TOKEN_COOKIE, readCookie, tokenMatcher } from './auth.js';
import { FakeLogSource, FakeStateSource } from './fake-state.js';
import { buildDashboard, isAddressInUse, startDashboard } from './index.js';

const TOKEN = 'a'.repeat(64);
const WRONG = 'b'.repeat(64);
const HEX = (n: number) => n.toString(16).padStart(32, '0');

const jobsPlugin: FastifyPluginAsync = async (app) => {
  app.post('/api/jobs/', async (request) => ({ got: request.body }));
};

describe('dashboard: the token', () => {
  let app: FastifyInstance;
  const state = new FakeStateSource();
  before(async () => {
    app = await buildDashboard({ token: TOKEN, state, logs: new FakeLogSource(), plugins: [jobsPlugin] });
  });
  after(() => app.close());

  test('tokenMatcher compares digests: any length, only the token', () => {
    const matches = tokenMatcher(TOKEN);
    assert.equal(matches(TOKEN), true);
    for (const other of [WRONG, '', 'a', `${TOKEN}a`, TOKEN.slice(1)]) assert.equal(matches(other), false, other);
  });

  test('readCookie finds the cookie among others', () => {
    assert.equal(readCookie(`x=1; ${TOKEN_COOKIE}=abc; y=2`, TOKEN_COOKIE), 'abc');
    assert.equal(readCookie('x=1', TOKEN_COOKIE), undefined);
    assert.equal(readCookie(undefined, TOKEN_COOKIE), undefined);
  });

  test('GET /healthz needs no token', async () => {
    const reply = await app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(reply.statusCode, 200);
  });

  test('no token is 401, a wrong one 403, the right one 200: header and cookie alike', async () => {
    for (const url of ['/', '/api/state/nodes', '/nope']) {
      assert.equal((await app.inject({ url })).statusCode, 401, url);
      assert.equal((await app.inject({ url, headers: { authorization: `Bearer ${WRONG}` } })).statusCode, 403, url);
      assert.equal((await app.inject({ url, headers: { cookie: `${TOKEN_COOKIE}=${WRONG}` } })).statusCode, 403, url);
      assert.equal((await app.inject({ url, headers: { authorization: 'Basic abc' } })).statusCode, 401, url);
    }
    assert.equal((await app.inject({ url: '/api/state/nodes', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 200);
    assert.equal((await app.inject({ url: '/api/state/nodes', headers: { cookie: `${TOKEN_COOKIE}=${TOKEN}` } })).statusCode, 200);
    const missing = await app.inject({ url: '/nope', headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().error, 'Not Found');
  });

  test('GET /?token= sets an HttpOnly, SameSite=Strict cookie and redirects to the URL without it', async () => {
    const reply = await app.inject({ url: `/?token=${TOKEN}&view=tasks` });
    assert.equal(reply.statusCode, 302);
    assert.equal(reply.headers.location, '/?view=tasks');
    const cookie = String(reply.headers['set-cookie']);
    assert.match(cookie, new RegExp(`^${TOKEN_COOKIE}=${TOKEN};`));
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.equal((await app.inject({ url: `/?token=${WRONG}` })).statusCode, 403);
    assert.equal((await app.inject({ url: '/?token=' })).statusCode, 401);
    assert.equal((await app.inject({ url: `/?token=${TOKEN}&token=${TOKEN}` })).statusCode, 401);
  });

  test("a plugin's routes are behind the token; bodies are size-limited; malformed JSON is a 400", async () => {
    const post = (headers: Record<string, string>, payload: string) =>
      app.inject({ method: 'POST', url: '/api/jobs/', headers: { 'content-type': 'application/json', ...headers }, payload });
    assert.equal((await post({}, '{"entrypoint":"x"}')).statusCode, 401);
    assert.equal((await post({ authorization: `Bearer ${WRONG}` }, '{"entrypoint":"x"}')).statusCode, 403);
    const ok = await post({ authorization: `Bearer ${TOKEN}` }, '{"entrypoint":"x"}');
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), { got: { entrypoint: 'x' } });
    const bad = await post({ authorization: `Bearer ${TOKEN}` }, '{"entrypoint":');
    assert.equal(bad.statusCode, 400);
    assert.equal(typeof bad.json().message, 'string');
    const big = await post({ authorization: `Bearer ${TOKEN}` }, JSON.stringify({ entrypoint: 'x'.repeat(2 << 20) }));
    assert.equal(big.statusCode, 413);
    // Unauthenticated, the body is not read at all: refused before it is parsed.
    assert.equal((await post({}, JSON.stringify({ entrypoint: 'x'.repeat(2 << 20) }))).statusCode, 401);
  });

  test('the cookie authorises only GET and HEAD: a POST with it alone (a cross-port form) is refused', async () => {
    const cookie = `${TOKEN_COOKIE}=${TOKEN}`;
    const form = await app.inject({ method: 'POST', url: '/api/jobs/', headers: { cookie, 'content-type': 'text/plain' }, payload: '{"entrypoint":"x"}' });
    assert.equal(form.statusCode, 401);
    assert.match(form.json().message, /Authorization: Bearer/);
    const json = await app.inject({ method: 'POST', url: '/api/jobs/', headers: { cookie, 'content-type': 'application/json' }, payload: '{"entrypoint":"x"}' });
    assert.equal(json.statusCode, 401);
    assert.equal((await app.inject({ method: 'HEAD', url: '/api/state/nodes', headers: { cookie } })).statusCode, 200);
    const both = await app.inject({ method: 'POST', url: '/api/jobs/', headers: { cookie, authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, payload: '{"entrypoint":"x"}' });
    assert.equal(both.statusCode, 200);
  });

  test('a wrong bearer token is told where the right one is', async () => {
    const reply = await app.inject({ url: '/api/state/nodes', headers: { authorization: `Bearer ${WRONG}` } });
    assert.equal(reply.statusCode, 403);
    assert.match(reply.json().message, /MINIRAY_AUTH_TOKEN/);
  });

  test('an empty token is refused at start', async () => {
    await assert.rejects(buildDashboard({ token: '', state }), InvalidOptionError);
  });
});

/** A small cluster: two nodes, tasks in three states (one failed), an actor, objects, logs. */
function fill(state: FakeStateSource, logs: FakeLogSource): void {
  const [head, worker] = [HEX(1), HEX(2)];
  state.tables.nodes.push(
    { nodeId: head, state: 'ALIVE', address: '127.0.0.1:6380', isHead: true, isDriver: false, resourcesTotal: { CPU: 4 }, resourcesAvailable: { CPU: 3 } },
    { nodeId: worker, state: 'DEAD', address: '127.0.0.1:6390', isHead: false, isDriver: false, resourcesTotal: { CPU: 2 }, resourcesAvailable: {}, deathReason: 'killed' },
  );
  const task = (n: number, name: string, taskState: 'RUNNING' | 'FINISHED' | 'FAILED') => ({
    taskId: HEX(100 + n), attempt: 0, name, type: 'NORMAL_TASK' as const, state: taskState, ownerNodeId: head, nodeId: head,
    requiredResources: { CPU: 1 }, creationTimeMs: 1000 + n, events: [{ state: taskState, timeMs: 1000 + n }],
    ...(taskState === 'FAILED' ? { errorType: 'TaskError', errorMessage: 'boom' } : {}),
  });
  state.tables.tasks.push(task(1, 'square', 'RUNNING'), task(2, 'square', 'FINISHED'), task(3, 'explode', 'FAILED'));
  state.tables.actors.push({ actorId: HEX(200), className: 'Counter', namespace: 'default', state: 'ALIVE', nodeId: head, ownerNodeId: head, numRestarts: 1, maxRestarts: 3, detached: false });
  state.tables.objects.push(
    { objectId: HEX(300), nodeId: head, state: 'ready', sizeBytes: 1024, location: 'memory', owner: 'driver', referencedBy: ['driver'] },
    { objectId: HEX(301), nodeId: head, state: 'ready', sizeBytes: 4096, location: 'disk', owner: 'driver', referencedBy: [] },
  );
  state.tables.jobs.push({ jobId: '1', status: 'RUNNING', driverNodeId: head, startTimeMs: 1000 });
  state.tables.workers.push({ workerId: HEX(400), nodeId: head, workerType: 'task', isAlive: true, pid: 1, isolation: 'thread' });
  state.stats = [{ nodeId: head, storeUsedBytes: 5120, storeCapacityBytes: 1 << 20, spilledBytes: 4096, spilledObjects: 1, objects: 2, workers: 4, queuedTasks: 7 }];
  state.metrics = {
    byState: { square: { RUNNING: 1, FINISHED: 1 }, explode: { FAILED: 1 } },
    runTime: { square: { bounds: [0.1, 1, 10], counts: [0, 1, 1], sum: 0.5, count: 1 } },
    droppedEvents: 3,
  };
  state.events = [{ kind: 'get', nodeId: head, workerId: HEX(400), startMs: 1, endMs: 2, count: 1 }];
  logs.lines.push(
    { nodeId: head, seq: 1, timeMs: 1, stream: 'stdout', workerId: HEX(400), name: 'square', taskId: HEX(101), text: 'hello' },
    { nodeId: head, seq: 2, timeMs: 2, stream: 'stderr', workerId: HEX(400), name: 'Counter', actorId: HEX(200), text: 'oops' },
  );
}

describe('dashboard: every route', () => {
  let app: FastifyInstance;
  const state = new FakeStateSource();
  const logs = new FakeLogSource();
  const auth = { authorization: `Bearer ${TOKEN}` };
  const get = (url: string) => app.inject({ url, headers: auth });
  before(async () => {
    fill(state, logs);
    app = await buildDashboard({ token: TOKEN, state, logs, timeline: async (source) => ({ traceEvents: (await source.coreEvents()).map((e) => ({ name: e.kind })) }) });
  });
  after(() => app.close());

  const ROUTES = [
    '/', '/ui/app.js', '/ui/app.css', '/metrics', '/api/info', '/api/timeline', '/api/logs',
    ...['tasks', 'actors', 'objects', 'nodes', 'jobs', 'workers'].map((kind) => `/api/state/${kind}`),
    `/api/state/tasks/${HEX(101)}`, `/api/state/actors/${HEX(200)}`,
    '/api/state/summary/tasks', '/api/state/summary/actors', '/api/state/summary/objects',
    '/api/state/node-stats', '/api/state/task-metrics', '/api/state/core-events',
  ];

  test('each route: 401 without the token, 403 with a wrong one, 200 with it', async () => {
    for (const url of [...ROUTES, '/api/events']) {
      assert.equal((await app.inject({ url })).statusCode, 401, url);
      assert.equal((await app.inject({ url, headers: { authorization: `Bearer ${WRONG}` } })).statusCode, 403, url);
      assert.equal((await app.inject({ url, headers: { cookie: `${TOKEN_COOKIE}=${WRONG}` } })).statusCode, 403, url);
    }
    for (const url of ROUTES) {
      const reply = await get(url);
      // The page needs its bundle (npm run build); without it, / says so with a 503.
      assert.ok(reply.statusCode === 200 || (reply.statusCode === 503 && ['/', '/ui/app.js', '/ui/app.css'].includes(url)), `${url}: ${reply.statusCode} ${reply.body.slice(0, 200)}`);
    }
  });

  test('lists mirror the StateSource: filters, limit, detail', async () => {
    const all = (await get('/api/state/tasks')).json();
    assert.equal(all.total, 3);
    assert.equal(all.records[0].events, undefined, 'no detail by default');
    assert.ok((await get('/api/state/tasks?detail=true')).json().records[0].events);
    const failed = (await get('/api/state/tasks?filter=state=FAILED')).json();
    assert.deepEqual(failed.records.map((t: { errorMessage: string }) => t.errorMessage), ['boom']);
    const notSquare = (await get('/api/state/tasks?filter=name!=square&filter=state!=RUNNING')).json();
    assert.equal(notSquare.total, 1);
    const one = (await get('/api/state/tasks?limit=1')).json();
    assert.equal(one.records.length, 1);
    assert.equal(one.total, 3);
    assert.equal(one.dropped, 3);
    assert.equal((await get(`/api/state/tasks/${HEX(101)}`)).json()[0].name, 'square');
    assert.equal((await get(`/api/state/actors/${HEX(200)}`)).json().className, 'Counter');
    assert.equal((await get(`/api/state/tasks/${HEX(999)}`)).statusCode, 404);
    assert.equal((await get(`/api/state/actors/${HEX(999)}`)).statusCode, 404);
    assert.deepEqual((await get('/api/state/summary/tasks')).json().byName.square.states, { RUNNING: 1, FINISHED: 1 });
    assert.equal((await get('/api/state/summary/objects')).json().byNode[HEX(1)].spilledBytes, 4096);
    assert.deepEqual((await get('/api/info')).json(), { logs: true, timeline: true });
    assert.deepEqual((await get('/api/timeline')).json(), { traceEvents: [{ name: 'get' }] });
  });

  test('logs per task and per actor, and after a seq', async () => {
    assert.deepEqual((await get(`/api/logs?taskId=${HEX(101)}`)).json().lines.map((l: { text: string }) => l.text), ['hello']);
    assert.deepEqual((await get(`/api/logs?actorId=${HEX(200)}`)).json().lines.map((l: { text: string }) => l.text), ['oops']);
    assert.deepEqual((await get(`/api/logs?after=${HEX(1)}:1&tail=5`)).json().lines.map((l: { text: string }) => l.text), ['oops']);
    assert.deepEqual(logs.queries.at(-1), { tail: 5, after: { [HEX(1)]: 1 } });
  });

  test('malformed queries are 400s that say what is wrong, never a crash', async () => {
    const cases: [string, RegExp][] = [
      ['/api/state/bogus', /no such list/],
      ['/api/state/tasks?limit=0', /'limit' must be an integer from 1 to 10000/],
      ['/api/state/tasks?limit=abc', /'limit'/],
      ['/api/state/tasks?limit=1&limit=2', /give 'limit' once/],
      ['/api/state/tasks?limit=99999999999999999999', /'limit'/],
      ['/api/state/tasks?detail=maybe', /'detail' must be true or false/],
      ['/api/state/tasks?filter=state', /a filter is key=value/],
      ['/api/state/tasks?filter==x', /a filter is key=value/],
      ['/api/state/tasks?filter=bogus=1', /unknown filter key 'bogus'/],
      ['/api/state/tasks?sort=name', /unknown query parameter 'sort'/],
      [`/api/state/tasks?${Array.from({ length: 21 }, (_, i) => `filter=name=${i}`).join('&')}`, /at most 20 filters/],
      ['/api/state/tasks/not-an-id', /taskId must be an ID of 32 lowercase hex/],
      ['/api/state/actors/ABC', /actorId must be an ID/],
      ['/api/state/summary/nodes', /no such summary/],
      ['/api/state/node-stats?x=1', /unknown query parameter 'x'/],
      ['/api/logs?taskId=xyz', /'taskId' must be an ID/],
      ['/api/logs?tail=0', /'tail' must be an integer/],
      ['/api/logs?after=nonsense', /'after' is <nodeId>:<seq>/],
      ['/api/events?x=1', /unknown query parameter/],
      ['/metrics?x=1', /unknown query parameter/],
      ['/api/state/tasks?%zz=1', /./],
    ];
    for (const [url, message] of cases) {
      const reply = await get(url);
      assert.equal(reply.statusCode, 400, `${url}: ${reply.body}`);
      assert.match(reply.json().message, message, url);
    }
    assert.equal((await app.inject({ method: 'POST', url: '/api/state/tasks', headers: auth })).statusCode, 404);
    assert.equal((await app.inject({ method: 'DELETE', url: '/metrics', headers: auth })).statusCode, 404);
  });

  test("a StateSource's miniray error is a 503 that says it; any other a 500 with no detail of it; /metrics a 503", async () => {
    state.failWith = new RequestTimeoutError('the GCS did not answer getNodes within 30000 ms');
    const unavailable = await get('/api/state/nodes');
    assert.equal(unavailable.statusCode, 503);
    assert.match(unavailable.json().message, /the cluster's state could not be read: the GCS did not answer/);
    state.failWith = new Error('GCS gone');
    const errors = console.error;
    console.error = () => {};
    try {
      const list = await get('/api/state/nodes');
      assert.equal(list.statusCode, 500);
      assert.doesNotMatch(list.body, /GCS gone/);
      assert.equal((await get('/metrics')).statusCode, 503);
    } finally {
      console.error = errors;
      state.failWith = undefined;
    }
  });

  test('GET /metrics: a part of the state that fails is left out and said so; the rest still arrives', async () => {
    const original = state.taskMetrics.bind(state);
    state.taskMetrics = async () => {
      throw new Error('no task events on this GCS');
    };
    try {
      const reply = await get('/metrics');
      assert.equal(reply.statusCode, 200);
      const lines = reply.body.split('\n');
      assert.ok(lines.includes('miniray_state_source_up{source="taskMetrics"} 0'));
      assert.ok(lines.includes('miniray_state_source_up{source="nodeStats"} 1'));
      assert.ok(lines.includes('miniray_nodes_alive 1'));
      assert.ok(!lines.some((line) => line.startsWith('miniray_tasks{')));
    } finally {
      state.taskMetrics = original;
    }
  });

  test('GET /metrics: Prometheus text of the tasks, actors, nodes and stores', async () => {
    const reply = await get('/metrics');
    assert.match(String(reply.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const text = reply.body;
    for (const line of [
      'miniray_tasks{state="RUNNING",name="square"} 1',
      'miniray_tasks{state="FAILED",name="explode"} 1',
      'miniray_task_run_seconds_bucket{name="square",le="1"} 1',
      'miniray_task_run_seconds_bucket{name="square",le="+Inf"} 1',
      'miniray_task_run_seconds_sum{name="square"} 0.5',
      'miniray_task_run_seconds_count{name="square"} 1',
      '# TYPE miniray_task_run_seconds histogram',
      'miniray_actors{state="ALIVE",class="Counter"} 1',
      `miniray_object_store_used_bytes{NodeId="${HEX(1)}"} 5120`,
      `miniray_object_store_capacity_bytes{NodeId="${HEX(1)}"} 1048576`,
      `miniray_spilled_bytes{NodeId="${HEX(1)}"} 4096`,
      `miniray_spilled_objects{NodeId="${HEX(1)}"} 1`,
      `miniray_objects{NodeId="${HEX(1)}"} 2`,
      `miniray_workers{NodeId="${HEX(1)}"} 4`,
      `miniray_scheduler_queued_tasks{NodeId="${HEX(1)}"} 7`,
      'miniray_nodes_alive 1',
      'miniray_task_events_dropped_total 3',
    ]) {
      assert.ok(text.split('\n').includes(line), `missing: ${line}\n${text}`);
    }
    // A state no task is in any more is gone from the next scrape, not stuck at its last value.
    const metrics = state.metrics;
    state.metrics = { ...metrics, byState: { square: { FINISHED: 2 } }, droppedEvents: 5 };
    try {
      const next = (await get('/metrics')).body.split('\n');
      assert.ok(next.includes('miniray_tasks{state="FINISHED",name="square"} 2'));
      assert.ok(!next.some((line) => line.startsWith('miniray_tasks{state="RUNNING"')));
      assert.ok(next.includes('miniray_task_events_dropped_total 5'));
    } finally {
      state.metrics = metrics;
    }
  });
});

describe('dashboard: listening', () => {
  test('port 0 takes a free port; the URL carries the token once; a taken port is told apart', async () => {
    const dashboard = await startDashboard({ port: 0, token: TOKEN, state: new FakeStateSource() });
    try {
      assert.match(dashboard.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(dashboard.urlWithToken, `${dashboard.url}/?token=${TOKEN}`);
      assert.equal((await fetch(`${dashboard.url}/healthz`)).status, 200);
      assert.equal((await fetch(`${dashboard.url}/api/state/nodes`)).status, 401);
      const taken = await startDashboard({ port: dashboard.port, token: TOKEN, state: new FakeStateSource() }).then(
        () => assert.fail('a second server on the same port'),
        (error: unknown) => error,
      );
      assert.ok(isAddressInUse(taken));
    } finally {
      await dashboard.close();
    }
  });

  test('the redirect of ?token= stays on this server, whatever the path (over a socket: inject normalizes paths)', async () => {
    const dashboard = await startDashboard({ port: 0, token: TOKEN, state: new FakeStateSource() });
    try {
      for (const path of ['/.//evil.example/', '/%2e//evil.example/', '/a/..//evil.example/', '//evil.example/', '/\\evil.example/']) {
        const socket = connect(dashboard.port, '127.0.0.1');
        socket.write(`GET ${path}?token=${TOKEN} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
        let answer = '';
        socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
        await new Promise((resolve) => socket.on('close', resolve));
        const location = /^location: (.*)$/im.exec(answer)?.[1]?.trim() ?? '';
        assert.ok(location.startsWith('/') && !location.startsWith('//') && !location.startsWith('/\\'), `${path} -> ${location}`);
      }
    } finally {
      await dashboard.close();
    }
  });

  test('a port outside 0..65535 is an InvalidOptionError', async () => {
    await assert.rejects(startDashboard({ port: 70000, token: TOKEN, state: new FakeStateSource() }), InvalidOptionError);
  });

  test('isAddressInUse is true only for EADDRINUSE', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const error = await startDashboard({ port, token: TOKEN, state: new FakeStateSource() }).then(() => undefined, (e: unknown) => e);
    server.close();
    assert.equal(isAddressInUse(error), true);
    assert.equal(isAddressInUse(new Error('x')), false);
    void HEX;
  });
});
