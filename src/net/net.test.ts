import assert from 'node:assert/strict';
import test from 'node:test';
import fc from 'fast-check';
import {
  ActorDiedError,
  ConnectionError,
  InvalidOptionError,
  ProtocolError,
  RequestCancelledError,
  RequestTimeoutError,
  TaskError,
} from '../errors/index.js';
import { fields, int, validate } from '../protocol/check.js';
import { parseEnvelope, parseHandshake } from './envelope.js';
import { encodeFrame, FrameDecoder, localPair, Router, type Peer, type PeerHello } from './index.js';
import { encodeValue } from '../serialization/index.js';

const driver: PeerHello = { role: 'driver', nodeId: 'd1' };
const node: PeerHello = { role: 'node', nodeId: 'n1', listenAddress: '127.0.0.1:6380' };

const addParse = (body: unknown) =>
  validate('an add', body, (v) => {
    const o = fields(v);
    int(o['a'], 'a');
    int(o['b'], 'b');
    return o as { a: number; b: number };
  });
const anything = (body: unknown): unknown => body;

/** Resolves when `condition` holds, checking on every turn of the event loop (no fixed sleeps). */
async function until(condition: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > limitMs) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

// ---- frames ------------------------------------------------------------------------------------

/** Everything `push` delivers for one chunk, and its error. */
function decode(decoder: FrameDecoder, chunk: Uint8Array): { messages: unknown[]; error: ProtocolError | undefined } {
  const messages: unknown[] = [];
  const error = decoder.push(chunk, (m) => {
    messages.push(m);
  });
  return { messages, error };
}

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
};

test('frames: several frames in one chunk, and a frame split byte by byte', () => {
  const messages = [{ type: 'a', n: 1 }, 'two', [3, { bytes: new Uint8Array([1, 2, 3]) }]];
  const stream = concat(messages.map((m) => encodeFrame(m)));
  assert.deepEqual(decode(new FrameDecoder(), stream).messages, messages);
  const decoder = new FrameDecoder();
  const got: unknown[] = [];
  for (let i = 0; i < stream.byteLength; i++) got.push(...decode(decoder, stream.subarray(i, i + 1)).messages);
  assert.deepEqual(got, messages);
  assert.equal(decoder.pendingBytes, 0);
});

test('frames: Uint8Array bodies come back as Uint8Array (not Buffer), bigints as bigints', () => {
  const [out] = decode(new FrameDecoder(), encodeFrame({ value: new Uint8Array([9, 8]), big: 2n ** 70n })).messages as [{ value: Uint8Array; big: bigint }];
  assert.equal(out.value.constructor, Uint8Array);
  assert.deepEqual([...out.value], [9, 8]);
  assert.equal(out.big, 2n ** 70n);
});

test('frames: random chunking of random frame sequences gives back the same messages', () => {
  const value = fc.oneof(
    fc.integer(),
    fc.string(),
    fc.boolean(),
    fc.constant(null),
    fc.uint8Array({ maxLength: 300 }),
    fc.dictionary(fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'), fc.oneof(fc.integer(), fc.string(), fc.uint8Array({ maxLength: 50 })), { maxKeys: 5, noNullPrototype: true }),
    fc.array(fc.oneof(fc.integer(), fc.string()), { maxLength: 10 }),
  );
  fc.assert(
    fc.property(fc.array(value, { minLength: 1, maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }), (messages, cuts) => {
      const stream = concat(messages.map((m) => encodeFrame(m)));
      const decoder = new FrameDecoder();
      const got: unknown[] = [];
      let at = 0;
      for (let i = 0; at < stream.byteLength; i++) {
        const size = cuts[i % cuts.length] ?? 1;
        const { messages: out, error } = decode(decoder, Buffer.from(stream.subarray(at, at + size)));
        assert.equal(error, undefined);
        got.push(...out);
        at += size;
      }
      assert.deepEqual(got, messages);
    }),
    { numRuns: 300 },
  );
});

test('frames: a frame stays intact while later messages are packed (it is a view of msgpackr\'s buffer, not a copy)', () => {
  // A socket may hold a frame until it drains; frames, values packed by the codec (msgpackr's
  // buffer is one per process) and big messages that make msgpackr take a new buffer come after it.
  const kept = [encodeFrame({ n: 1, bytes: new Uint8Array(1000).fill(7) }), encodeFrame('second')];
  const copies = kept.map((frame) => Buffer.from(frame));
  for (let i = 0; i < 200; i++) encodeFrame({ i, pad: 'x'.repeat(i * 50) });
  encodeFrame(new Uint8Array(3 * 1024 * 1024).fill(1));
  encodeValue({ after: new Uint8Array(2048) }, 'a value');
  kept.forEach((frame, i) => assert.deepEqual(frame, copies[i]));
  const { messages } = decode(new FrameDecoder(), concat(kept));
  assert.deepEqual(messages, [{ n: 1, bytes: new Uint8Array(1000).fill(7) }, 'second']);
});

test('frames: a length over the limit and undecodable bytes are a ProtocolError, not a throw', () => {
  const decoder = new FrameDecoder(1000);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(1001);
  const first = decode(decoder, concat([encodeFrame('ok'), header]));
  assert.deepEqual(first.messages, ['ok']);
  assert.ok(first.error instanceof ProtocolError);
  assert.match(first.error.message, /1001 bytes, over the limit of 1000/);
  // Broken for good: later bytes are not read as frames.
  assert.ok(decode(decoder, encodeFrame('later')).error instanceof ProtocolError);

  const garbage = decode(new FrameDecoder(), concat([Uint8Array.of(0, 0, 0, 2), Uint8Array.of(0x92, 1)]));
  assert.ok(garbage.error instanceof ProtocolError);
  assert.match(garbage.error.message, /does not decode/);
  const http = decode(new FrameDecoder(), new TextEncoder().encode('GET / HTTP/1.1\r\n\r\n'));
  assert.ok(http.error instanceof ProtocolError);
});

test('frames: a limit changed while delivering applies to the next frame of the same chunk', () => {
  // The server reads the hello with a small limit and raises it once authenticated: a request
  // sent right behind the hello must be read with the raised limit.
  const decoder = new FrameDecoder(100);
  const got: unknown[] = [];
  const error = decoder.push(concat([encodeFrame('hello'), encodeFrame(new Uint8Array(500))]), (m) => {
    got.push(m);
    decoder.maxFrameBytes = 1000;
  });
  assert.equal(error, undefined);
  assert.equal(got.length, 2);
  // And returning false stops reading: the link closed.
  const stopped: unknown[] = [];
  new FrameDecoder().push(concat([encodeFrame(1), encodeFrame(2)]), (m) => {
    stopped.push(m);
    return false;
  });
  assert.deepEqual(stopped, [1]);
});

// ---- envelope ----------------------------------------------------------------------------------

test('envelope: each kind passes; a malformed one names its field', () => {
  for (const ok of [
    { type: 'request', id: 1, method: 'm', body: { x: 1 } },
    { type: 'response', id: 1, ok: true, value: 3 },
    { type: 'response', id: 1, ok: false, error: { name: 'Error', message: 'x' } },
    { type: 'notify', method: 'm', body: null },
    { type: 'cancel', id: 2 },
    { type: 'bye', reason: 'done' },
  ]) {
    assert.ok(!(parseEnvelope(ok) instanceof ProtocolError), JSON.stringify(ok));
  }
  const cases: [unknown, RegExp][] = [
    [{ type: 'request', id: -1, method: 'm' }, /id must be an integer/],
    [{ type: 'request', id: 1, method: 7 }, /method must be a string/],
    [{ type: 'response', id: 1, ok: 'yes' }, /ok must be a boolean/],
    [{ type: 'response', id: 1, ok: false, error: { name: 1 } }, /error must be an error record/],
    [{ type: 'launch' }, /type must be a message type/],
    ['hello', /must be an object/],
  ];
  for (const [bad, message] of cases) {
    const error = parseEnvelope(bad);
    assert.ok(error instanceof ProtocolError, JSON.stringify(bad));
    assert.match(error.message, message);
  }
  assert.ok(!(parseHandshake({ type: 'hello', token: 't', protocolVersion: 1, hello: node }) instanceof ProtocolError));
  assert.match(String((parseHandshake({ type: 'hello', token: 't', protocolVersion: 1, hello: { role: 'king', nodeId: 'x' } }) as ProtocolError).message), /hello\.role must be one of/);
  // A head's GCS sends its cluster-wide settings in its welcome: integers, by name.
  assert.ok(!(parseHandshake({ type: 'welcome', hello: { role: 'gcs', nodeId: 'x', settings: { gcsReconnectTimeoutMs: 2000 } } }) instanceof ProtocolError));
  assert.match(String((parseHandshake({ type: 'welcome', hello: { role: 'gcs', nodeId: 'x', settings: { gcsReconnectTimeoutMs: '2s' } } }) as ProtocolError).message), /hello\.settings\.gcsReconnectTimeoutMs must be an integer/);
  assert.match(String((parseHandshake({ type: 'welcome', hello: { role: 'gcs', nodeId: 'x', settings: [1] } }) as ProtocolError).message), /hello\.settings must be an object/);
});

// ---- router and localPair ----------------------------------------------------------------------

function pair(serverRouter: Router, clientRouter = new Router(), log?: (line: string) => void): [Peer, Peer] {
  return localPair({ hello: driver, router: clientRouter, log }, { hello: node, router: serverRouter, log });
}

test('localPair: requests both ways, each side sees the other hello, bodies arrive as sent', async () => {
  const serverRouter = new Router().handle('add', addParse, ({ a, b }) => a + b);
  const clientRouter = new Router().handle('whoami', anything, (_body, peer) => peer.hello.nodeId);
  const [client, server] = pair(serverRouter, clientRouter);
  assert.deepEqual(client.hello, node);
  assert.deepEqual(server.hello, driver);
  assert.equal(await client.request('add', { a: 2, b: 3 }), 5);
  assert.equal(await server.request('whoami', null), 'n1');
  const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => client.request('add', { a: i, b: 1 })));
  assert.deepEqual(answers, Array.from({ length: 100 }, (_, i) => i + 1));
});

test('localPair: notifications arrive in order with requests', async () => {
  const seen: string[] = [];
  const router = new Router()
    .on('note', (b) => (typeof b === 'string' ? b : new ProtocolError('not a string')), (b) => seen.push(`note ${b}`))
    .handle('ask', anything, () => {
      seen.push('ask');
      return 'ok';
    });
  const [client] = pair(router);
  client.notify('note', 'a');
  const asked = client.request('ask', null);
  client.notify('note', 'b');
  await asked;
  await until(() => seen.length === 3, 'the second note');
  assert.deepEqual(seen, ['note a', 'ask', 'note b']);
});

test('localPair: a handler throw arrives as the same class, a rejection too, with its fields', async () => {
  const router = new Router()
    .handle('boom', anything, () => {
      throw new InvalidOptionError('numCpus must be >= 0', 'numCpus');
    })
    .handle('later', anything, async () => {
      await Promise.resolve();
      throw new ActorDiedError('gone', { cause: new TypeError('inner') });
    })
    .handle('plain', anything, () => {
      throw new RangeError('out of range');
    });
  const [client] = pair(router);
  await assert.rejects(client.request('boom', null), (e: unknown) => e instanceof InvalidOptionError && e.option === 'numCpus');
  await assert.rejects(client.request('later', null), (e: unknown) => e instanceof ActorDiedError && e.cause instanceof TypeError);
  await assert.rejects(client.request('plain', null), RangeError);
  // A TaskError keeps its own fields too (props on the record).
  router.handle('task', anything, () => {
    throw new TaskError('f failed', { functionName: 'f', taskId: 't1' });
  });
  await assert.rejects(client.request('task', null), (e: unknown) => e instanceof TaskError && e.functionName === 'f');
});

test('localPair: an unknown method and a rejected body are ProtocolErrors to the caller, logged, and the connection stays', async () => {
  const lines: string[] = [];
  const [client] = pair(new Router().handle('add', addParse, ({ a, b }) => a + b), new Router(), (line) => lines.push(line));
  await assert.rejects(client.request('nope', {}), (e: unknown) => e instanceof ProtocolError && e.field === 'method' && /does not answer \(methods: add\)/.test(e.message));
  await assert.rejects(client.request('add', { a: 1, b: 'x' }), (e: unknown) => e instanceof ProtocolError && /b must be an integer/.test(e.message));
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? '', /'add' rejected: an add is malformed: b must be an integer/);
  assert.equal(await client.request('add', { a: 1, b: 1 }), 2);
  assert.equal(client.isClosed, false);
});

test('localPair: timeouts and aborts reject with typed errors and abort the handler signal', async () => {
  let handlerSignal: AbortSignal | undefined;
  const router = new Router().handle('hang', anything, (_b, _p, signal) => {
    handlerSignal = signal;
    return new Promise(() => {});
  });
  const [client] = pair(router);
  await assert.rejects(client.request('hang', null, { timeoutMs: 20 }), (e: unknown) => e instanceof RequestTimeoutError && /'hang' to node n1 .* within 20 ms/.test(e.message));
  await until(() => handlerSignal?.aborted === true, 'the handler signal to abort after the timeout');

  handlerSignal = undefined;
  const controller = new AbortController();
  const pending = client.request('hang', null, { signal: controller.signal });
  await until(() => handlerSignal !== undefined, 'the handler to start');
  controller.abort(new Error('user gave up'));
  await assert.rejects(pending, (e: unknown) => e instanceof RequestCancelledError && e.cause instanceof Error && e.cause.message === 'user gave up');
  await until(() => handlerSignal?.aborted === true, 'the handler signal to abort after the cancel');
  assert.ok((handlerSignal as AbortSignal | undefined)?.reason instanceof RequestCancelledError);
  await assert.rejects(client.request('hang', null, { signal: controller.signal }), RequestCancelledError);
});

test('localPair: closing rejects pending calls on both sides naming the peer, and tells onClose', async () => {
  let handlerSignal: AbortSignal | undefined;
  const [client, server] = pair(
    new Router().handle('hang', anything, (_b, _p, signal) => {
      handlerSignal = signal;
      return new Promise(() => {});
    }),
  );
  const reasons: string[] = [];
  server.onClose((reason) => reasons.push(`server: ${reason}`));
  client.onClose((reason) => reasons.push(`client: ${reason}`));
  const pending = client.request('hang', null);
  await until(() => handlerSignal !== undefined, 'the handler to start');
  client.close('shutting down');
  await assert.rejects(pending, (e: unknown) => e instanceof ConnectionError && /'hang' to node n1 at this process failed: the connection closed \(shutting down\)/.test(e.message));
  await until(() => server.isClosed, 'the server side to close');
  assert.equal(handlerSignal?.aborted, true);
  assert.deepEqual(reasons, ['client: shutting down', 'server: closed by driver d1 at this process: shutting down']);
  await assert.rejects(client.request('hang', null), ConnectionError);
  let late = '';
  client.onClose((reason) => (late = reason));
  await until(() => late !== '', 'a listener added after the close');
});

test('Router: a second handler for one method is refused', () => {
  const router = new Router().handle('m', anything, () => 1);
  assert.throws(() => router.handle('m', anything, () => 2), /'m' has a handler already/);
  // A request and a notification may share a name: they are different tables.
  router.on('m', anything, () => {});
});
