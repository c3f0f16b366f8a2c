import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { HEALTHZ_PATH, route, serveHealthz, type Health, type HealthzServer } from './healthz.js';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

function get(server: HealthzServer, path = HEALTHZ_PATH, method = 'GET', body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: server.host, port: server.port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes raw bytes and resolves with everything that came back once the server closes the socket. */
function raw(server: HealthzServer, bytes: Buffer | string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    const received: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the socket open ${timeoutMs} ms after ${JSON.stringify(String(bytes).slice(0, 60))}`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('error', () => {}); // a reset is a close too
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(received).toString('latin1'));
    });
    socket.connect(server.port, server.host, () => socket.write(bytes));
  });
}

async function withServer(health: () => Health, body: (server: HealthzServer) => Promise<void>): Promise<void> {
  const server = await serveHealthz({ port: 0, health, log: () => {} });
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

describe('/healthz routing', () => {
  const ok = (): Health => ({ ok: true });
  test('GET and HEAD of /healthz: 200 ok when healthy, 503 and the reason when not', () => {
    assert.deepEqual(route('GET', '/healthz', ok), { status: 200, text: 'ok' });
    assert.deepEqual(route('HEAD', '/healthz', ok), { status: 200, text: 'ok' });
    assert.deepEqual(route('GET', '/healthz?probe=kubelet', ok), { status: 200, text: 'ok' });
    assert.deepEqual(route('GET', '/healthz', () => ({ ok: false, reason: 'GCS unreachable' })), { status: 503, text: 'GCS unreachable' });
    assert.deepEqual(route('GET', '/healthz', () => ({ ok: false, reason: 'starting: not a member of the cluster yet' })), {
      status: 503,
      text: 'starting: not a member of the cluster yet',
    });
  });

  test('a health function that throws is a 503, not a crash', () => {
    assert.deepEqual(route('GET', '/healthz', () => { throw new Error('boom'); }), { status: 503, text: 'health check failed' });
  });

  test('every other path is 404, every other method on /healthz 405 (and health is not even asked)', () => {
    const never = (): Health => assert.fail('health asked for a request that is refused');
    for (const path of ['/', '/healthz/', '/HEALTHZ', '/healthz/../x', '/metrics', '/livez', '*', '', 'http://x/healthz', '//healthz']) {
      assert.equal(route('GET', path, never).status, 404, path);
    }
    assert.equal(route('GET', undefined, never).status, 404);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', undefined]) {
      const answer = route(method, '/healthz', never);
      assert.equal(answer.status, 405, String(method));
      assert.equal(answer.headers?.allow, 'GET, HEAD');
    }
  });
});

describe('/healthz server', () => {
  test('answers with the state of the moment, and says nothing else (no date, no server, no ids)', async () => {
    let state: Health = { ok: false, reason: 'starting: not a member of the cluster yet' };
    await withServer(() => state, async (server) => {
      assert.equal(server.host, '127.0.0.1', 'loopback unless told otherwise');
      assert.equal(server.url, `http://127.0.0.1:${server.port}/healthz`);
      const starting = await get(server);
      assert.equal(starting.status, 503);
      assert.equal(starting.body, 'starting: not a member of the cluster yet\n');

      state = { ok: true };
      const up = await get(server);
      assert.equal(up.status, 200);
      assert.equal(up.body, 'ok\n');
      assert.equal(up.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(up.headers['cache-control'], 'no-store');
      assert.equal(up.headers.date, undefined);
      assert.equal(up.headers.server, undefined);
      const allowed = ['cache-control', 'connection', 'content-length', 'content-type', 'keep-alive', 'x-content-type-options'];
      for (const name of Object.keys(up.headers)) assert.ok(allowed.includes(name), `unexpected header ${name}: ${String(up.headers[name])}`);

      const head = await get(server, HEALTHZ_PATH, 'HEAD');
      assert.equal(head.status, 200);
      assert.equal(head.body, '');

      state = { ok: false, reason: 'GCS unreachable' };
      assert.deepEqual([(await get(server)).status, (await get(server)).body], [503, 'GCS unreachable\n']);
    });
  });

  test('other paths 404, other methods 405 (a body is not read: the connection closes)', async () => {
    await withServer(() => ({ ok: true }), async (server) => {
      assert.equal((await get(server, '/')).status, 404);
      assert.equal((await get(server, '/metrics')).status, 404);
      const post = await get(server, HEALTHZ_PATH, 'POST', Buffer.alloc(1 << 20, 'x'));
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');
      assert.equal(post.headers.connection, 'close');
      assert.equal((await get(server, HEALTHZ_PATH, 'DELETE')).status, 405);
      assert.equal((await get(server)).status, 200);
    });
  });

  test('garbage, oversized headers and broken requests get a 400 or a close, and the server goes on answering', async () => {
    await withServer(() => ({ ok: true }), async (server) => {
      const bad: Array<Buffer | string> = [
        'garbage\r\n\r\n',
        Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 13, 10]),
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(16_384)}\r\n\r\n`,
        'GET /healthz HTTP/9.9\r\n\r\n',
        'GET /healthz HTTP/1.1\r\nContent-Length: -5\r\n\r\n',
        'GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
        `GET /${'x'.repeat(100_000)} HTTP/1.1\r\n\r\n`,
      ];
      for (const bytes of bad) {
        const answer = await raw(server, bytes);
        assert.match(answer, /^(HTTP\/1\.1 (400|404|431|505) |$)/, `answer to ${JSON.stringify(String(bytes).slice(0, 40))}: ${answer.slice(0, 80)}`);
        assert.equal((await get(server)).status, 200, 'still serving after a bad request');
      }
      // A client that vanishes half-way through a request.
      await new Promise<void>((resolve) => {
        const socket = new Socket();
        socket.on('error', () => {});
        socket.connect(server.port, server.host, () => {
          socket.write('GET /healthz HTTP/1.1\r\nHo');
          socket.destroy();
          resolve();
        });
      });
      assert.equal((await get(server)).status, 200);
    });
  });

  test('a client that never finishes its headers is dropped (the request timeout, 5 s), and others are answered meanwhile', async () => {
    await withServer(() => ({ ok: true }), async (server) => {
      const started = Date.now();
      const slow = raw(server, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
      assert.equal((await get(server)).status, 200);
      const answer = await slow;
      assert.match(answer, /^(HTTP\/1\.1 40[08] |$)/);
      assert.ok(Date.now() - started < 15_000, `dropped after ${Date.now() - started} ms`);
    });
  });

  test('a port in use is a ConnectionError that names the flag to change', async () => {
    await withServer(() => ({ ok: true }), async (server) => {
      await assert.rejects(serveHealthz({ port: server.port, health: () => ({ ok: true }) }), (error: Error) => {
        assert.equal(error.name, 'ConnectionError');
        assert.match(error.message, /cannot serve \/healthz on 127\.0\.0\.1:\d+: .*--healthz-port/);
        return true;
      });
    });
  });

  test('close() ends open keep-alive connections too, and can be called twice', async () => {
    const server = await serveHealthz({ port: 0, health: () => ({ ok: true }) });
    const socket = new Socket();
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.connect(server.port, server.host, () => resolve()));
    socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    await Promise.all([server.close(), server.close()]);
    await closed;
  });
});
