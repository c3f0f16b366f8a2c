import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { InvalidOptionError } from '../errors/index.js';
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

  test('an empty token is refused at start', async () => {
    await assert.rejects(buildDashboard({ token: '', state }), InvalidOptionError);
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
