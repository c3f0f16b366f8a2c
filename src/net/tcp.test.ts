import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { AuthenticationError, ConnectionError, InvalidOptionError, ProtocolError, RequestCancelledError, RequestTimeoutError } from '../errors/index.js';
import { AuthenticationError as PublicAuthenticationError } from '../index.js';
import { connect, encodeFrame, listen, NET_PROTOCOL_VERSION, RawBytes, Router, type ListenOptions, type Peer, type PeerHello } from './index.js';

const head: PeerHello = { role: 'gcs', nodeId: 'head' };
const client: PeerHello = { role: 'driver', nodeId: 'drv' };
const TOKEN = 'correct horse battery staple';
const anything = (body: unknown): unknown => body;

async function until(condition: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > limitMs) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

let watched: AbortSignal | undefined;

function serverRouter(): Router {
  return new Router()
    .handle('watch', anything, (_body, _peer, signal) => {
      watched = signal;
      return new Promise(() => {});
    })
    .handle('echo', anything, (body) => body)
    .handle('fail', anything, () => {
      throw new InvalidOptionError('numCpus must be >= 0', 'numCpus');
    })
    .handle('hang', anything, () => new Promise(() => {}))
    .handle('callback', anything, async (_body, peer) => peer.request('whoami', null));
}

async function start(extra: Partial<ListenOptions> = {}) {
  const lines: string[] = [];
  const peers: Peer[] = [];
  const listener = await listen({ token: TOKEN, hello: head, router: serverRouter(), log: (line) => lines.push(line), onPeer: (p) => peers.push(p), ...extra });
  const join = (options: { token?: string; router?: Router; maxFrameBytes?: number } = {}) =>
    connect({ host: listener.host, port: listener.port, token: options.token ?? TOKEN, hello: client, router: options.router ?? new Router(), maxFrameBytes: options.maxFrameBytes, log: (line) => lines.push(line) });
  return { listener, lines, peers, join };
}

/** A raw socket that writes `bytes` and resolves once the server has closed it. */
function rawPeer(port: number, write: (socket: net.Socket) => void): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => write(socket));
    socket.on('error', () => {});
    socket.on('close', () => resolve());
    socket.resume();
  });
}

const helloFrame = (token = TOKEN) => encodeFrame({ type: 'hello', token, protocolVersion: NET_PROTOCOL_VERSION, hello: client });

test('tcp: requests both ways, hellos exchanged, typed errors, bytes intact', async () => {
  const { listener, peers, join } = await start();
  assert.equal(listener.host, '127.0.0.1');
  const peer = await join({ router: new Router().handle('whoami', anything, (_b, p) => `I was called by ${p.hello.nodeId}`) });
  assert.deepEqual(peer.hello, head);
  await until(() => peers.length === 1, 'the server to see the peer');
  assert.deepEqual(peers[0]?.hello, client);
  const bytes = new Uint8Array(1 << 20).map((_, i) => i % 251);
  const echoed = (await peer.request('echo', { bytes, n: 7n })) as { bytes: Uint8Array; n: bigint };
  assert.equal(echoed.bytes.constructor, Uint8Array);
  assert.deepEqual(echoed.bytes, bytes);
  assert.equal(echoed.n, 7n);
  assert.equal(await peer.request('callback', null), 'I was called by head');
  await assert.rejects(peer.request('fail', null), (e: unknown) => e instanceof InvalidOptionError && e.option === 'numCpus');
  await assert.rejects(peer.request('hang', null, { timeoutMs: 30 }), RequestTimeoutError);
  await assert.rejects(peer.request('nope', null), (e: unknown) => e instanceof ProtocolError && e.field === 'method');
  const many = await Promise.all(Array.from({ length: 200 }, (_, i) => peer.request('echo', i)));
  assert.deepEqual(many, Array.from({ length: 200 }, (_, i) => i));

  // A cancel crosses the wire: the handler's signal aborts.
  const controller = new AbortController();
  const watching = peer.request('watch', null, { signal: controller.signal });
  await until(() => watched !== undefined, 'the handler to start');
  controller.abort();
  await assert.rejects(watching, RequestCancelledError);
  await until(() => watched?.aborted === true, "the handler's signal to abort");

  const pending = peer.request('hang', null);
  const closed = new Promise<string>((resolve) => peers[0]?.onClose(resolve));
  peer.close('done');
  await assert.rejects(pending, ConnectionError);
  assert.match(await closed, /closed by driver drv at 127\.0\.0\.1:\d+: done/);
  await listener.close();
});

test('tcp: a frame over maxFrameBytes is refused to the sender and the connection stays', async () => {
  const { listener, join } = await start();
  const peer = await join({ maxFrameBytes: 1000 });
  await assert.rejects(peer.request('echo', new Uint8Array(2000)), (e: unknown) => e instanceof ProtocolError && /over the frame limit of 1000 bytes/.test(e.message));
  assert.equal(await peer.request('echo', 'small'), 'small');
  peer.close();
  await listener.close();
});

test('tcp: a wrong token fails connect() with AuthenticationError saying what to do', async () => {
  const { listener, lines, join } = await start();
  await assert.rejects(join({ token: 'wrong' }), (e: unknown) => {
    assert.ok(e instanceof AuthenticationError);
    assert.ok(e instanceof PublicAuthenticationError);
    assert.match((e as Error).message, /refused this connection's token: set MINIRAY_AUTH_TOKEN to the head's token/);
    return true;
  });
  await until(() => lines.length === 1, 'the refusal to be logged');
  assert.match(lines[0] ?? '', /the peer at 127\.0\.0\.1:\d+: refused driver drv: wrong token/);
  await assert.rejects(join({ token: '' }), AuthenticationError);
  await listener.close();
});

test('tcp: bad peers are closed and logged once each, and the server keeps serving a good client', async () => {
  const { listener, lines, peers, join } = await start({ helloTimeoutMs: 300 });
  const good = await join();
  const cases: [string, (socket: net.Socket) => void, RegExp | undefined][] = [
    ['garbage bytes', (s) => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /bytes that are not the miniray protocol: a frame announces \d+ bytes, over the limit of 65536/],
    [
      'a huge length prefix after the hello',
      (s) => {
        s.write(helloFrame());
        s.write(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
      },
      /over the limit of 268435456/,
    ],
    ['a wrong token', (s) => s.write(helloFrame('nope')), /wrong token/],
    ['a first message that is not a hello', (s) => s.write(encodeFrame({ type: 'request', id: 1, method: 'echo', body: 1 })), /its first message is not a hello/],
    ['a wrong protocol version', (s) => s.write(encodeFrame({ type: 'hello', token: TOKEN, protocolVersion: 999, hello: client })), /protocol version 999/],
    [
      'a valid hello then a malformed envelope',
      (s) => {
        s.write(helloFrame());
        s.write(encodeFrame({ type: 'request', id: 'one', method: 'echo' }));
      },
      /driver drv: a message from a peer \(type 'request'\) is malformed: id must be an integer/,
    ],
    [
      'a valid hello then undecodable bytes',
      (s) => {
        s.write(helloFrame());
        s.write(Uint8Array.of(0, 0, 0, 2, 0x92, 1));
      },
      /does not decode/,
    ],
    ['no hello at all', () => {}, /no valid hello within 300 ms/],
    [
      'a peer that closes mid-frame',
      (s) => {
        s.write(helloFrame());
        s.end(encodeFrame({ type: 'notify', method: 'x', body: 'long enough' }).subarray(0, 7));
      },
      undefined,
    ],
  ];
  for (const [what, write, logged] of cases) {
    const before = lines.length;
    await rawPeer(listener.port, write);
    if (logged !== undefined) {
      await until(() => lines.length > before, `the log of ${what}`);
      assert.equal(lines.length, before + 1, `${what}: logged once: ${lines.slice(before).join(' | ')}`);
      assert.match(lines[before] ?? '', /127\.0\.0\.1:\d+/, what);
      assert.match(lines[before] ?? '', logged, what);
    }
    assert.equal(await good.request('echo', what), what, `still serving after ${what}`);
  }
  await until(() => peers.slice(1).every((p) => p.isClosed), 'the bad peers to be closed');
  assert.equal(good.isClosed, false);
  good.close();
  await listener.close();
});

test('tcp: a peer that does not read is closed past maxBufferedBytes; one that reads gets every byte', async () => {
  const { listener, lines, peers } = await start({ maxBufferedBytes: 4 << 20 });
  // Stalled: authenticates, then never reads.
  const stalled = net.connect({ host: '127.0.0.1', port: listener.port });
  stalled.on('error', () => {});
  stalled.write(helloFrame());
  stalled.pause();
  await until(() => peers.length === 1, 'the stalled peer');
  const stalledPeer = peers[0] as Peer;
  const chunk = new Uint8Array(256 << 10);
  for (let sent = 0; !stalledPeer.isClosed; sent++) {
    assert.ok(sent < 4096, 'still open after 1 GiB to a peer that does not read');
    stalledPeer.notify('data', chunk);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await until(() => lines.some((l) => /peer does not read/.test(l)), 'the log');
  stalled.destroy();

  // Reading: the same stream (64 MiB, 16 times the limit) arrives whole and in order.
  let received = 0;
  let inOrder = true;
  const reader = await connect({
    host: listener.host,
    port: listener.port,
    token: TOKEN,
    hello: client,
    router: new Router().on('data', anything, (body) => {
      const b = body as Uint8Array;
      if (b[0] !== received % 256) inOrder = false;
      received++;
    }),
  });
  await until(() => peers.length === 2, 'the reading peer');
  const readingPeer = peers[1] as Peer;
  for (let i = 0; i < 256; i++) {
    readingPeer.notify('data', new Uint8Array(256 << 10).fill(i % 256));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await until(() => received === 256, 'every chunk to arrive');
  assert.ok(inOrder);
  assert.equal(readingPeer.isClosed, false);
  reader.close();
  await listener.close();
});

test('tcp: connect() to nothing, or to a server that never answers, fails with ConnectionError', async () => {
  const closed = await listen({ token: TOKEN, hello: head, router: new Router() });
  const port = closed.port;
  await closed.close();
  await assert.rejects(connect({ host: '127.0.0.1', port, token: TOKEN, hello: client, router: new Router() }), (e: unknown) => e instanceof ConnectionError && /cannot connect to 127\.0\.0\.1:\d+/.test((e as Error).message));

  const silent = net.createServer((socket) => socket.on('error', () => {}).resume());
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const silentPort = (silent.address() as net.AddressInfo).port;
  await assert.rejects(connect({ host: '127.0.0.1', port: silentPort, token: TOKEN, hello: client, router: new Router(), timeoutMs: 200 }), (e: unknown) => e instanceof ConnectionError && /no answer from .* within 200 ms/.test((e as Error).message));
  await new Promise((resolve) => silent.close(resolve));
});

test('tcp: closing the listener closes its connections', async () => {
  const { listener, join } = await start();
  const peer = await join();
  const reason = new Promise<string>((resolve) => peer.onClose(resolve));
  await listener.close();
  assert.match(await reason, /closed|ended/);
  await assert.rejects(peer.request('echo', 1), ConnectionError);
});

function selfSignedCert(): { cert: string; key: string } | string {
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(tmpdir(), 'miniray-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } catch (error) {
    return `openssl could not make a self-signed certificate (${error instanceof Error ? error.message : String(error)})`;
  } finally {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  }
}

test('tls: requests over TLS with a self-signed certificate; plain bytes to it do not crash it', async (t) => {
  const made = selfSignedCert();
  if (typeof made === 'string') return t.skip(made);
  const { listener, lines } = await start({ tls: made });
  const peer = await connect({ host: '127.0.0.1', port: listener.port, token: TOKEN, hello: client, router: new Router(), tls: { ca: made.cert } });
  assert.equal(await peer.request('echo', 'over tls'), 'over tls');
  // Without trusting the certificate, the TLS handshake fails: no token is sent.
  await assert.rejects(connect({ host: '127.0.0.1', port: listener.port, token: TOKEN, hello: client, router: new Router(), tls: true }), ConnectionError);
  await assert.rejects(connect({ host: '127.0.0.1', port: listener.port, token: 'wrong', hello: client, router: new Router(), tls: { ca: made.cert } }), AuthenticationError);
  await rawPeer(listener.port, (s) => s.write('GET / HTTP/1.1\r\n\r\n'));
  await until(() => lines.some((l) => /TLS handshake failed/.test(l)), 'the plain-bytes log');
  assert.equal(await peer.request('echo', 'still'), 'still');
  peer.close();
  await listener.close();
});

test('tcp: an onPeer callback that throws costs that connection, not the process', async () => {
  const { listener, lines, join } = await start({
    onPeer: () => {
      throw new Error('bug in onPeer');
    },
  });
  // The welcome may or may not reach the client before the close: either way it ends, and is logged.
  await join().then(
    (peer) => new Promise<string>((resolve) => peer.onClose(resolve)),
    (error: unknown) => assert.ok(error instanceof ConnectionError),
  );
  await until(() => lines.length > 0, 'the log');
  assert.ok(lines.some((l) => /handling a message from 127\.0\.0\.1:\d+ threw; closing that connection: Error: bug in onPeer/.test(l)), lines.join('\n'));
  await listener.close();
});

test('large bytes answered travel raw after their frame and arrive as RawBytes with the same content; small ones as a Uint8Array', async () => {
  const { listener, join } = await start();
  const peer = await join();
  try {
    const big = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 31) & 0xff);
    const answer = await peer.request('echo', big);
    assert.ok(answer instanceof RawBytes, `got ${Object.prototype.toString.call(answer)}`);
    assert.equal(answer.byteLength, big.byteLength);
    const joined = new Uint8Array(answer.byteLength + 3);
    answer.copyTo(joined, 3);
    assert.deepEqual(joined.subarray(3), big);
    // Requests interleaved with raw answers keep their order and content.
    const answers = await Promise.all([peer.request('echo', 'a'), peer.request('echo', big.subarray(0, 70_000)), peer.request('echo', 'b')]);
    assert.equal(answers[0], 'a');
    assert.equal(answers[2], 'b');
    assert.ok(answers[1] instanceof RawBytes && answers[1].byteLength === 70_000);
    const small = await peer.request('echo', new Uint8Array([1, 2, 3]));
    assert.ok(small instanceof Uint8Array);
  } finally {
    peer.close();
    await listener.close();
  }
});

test('a raw tail on a frame that is not a response closes that connection, logged', async () => {
  const { listener, lines, join } = await start();
  try {
    const body = encodeFrame({ type: 'hello', token: TOKEN, protocolVersion: NET_PROTOCOL_VERSION, hello: client }, 4);
    await rawPeer(listener.port, (socket) => socket.write(Buffer.concat([body, Buffer.from([0, 0, 0, 4, 1, 2, 3, 4])])));
    await until(() => lines.some((line) => /raw bytes after it that is not a response/.test(line)), 'the log line');
    // The server still serves a good client.
    const peer = await join();
    assert.equal(await peer.request('echo', 'still here'), 'still here');
    peer.close();
  } finally {
    await listener.close();
  }
});
