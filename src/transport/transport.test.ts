import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProtocolError } from '../errors/index.js';
import { decodeFrame, encodeFrame } from '../protocol/index.js';
import { PortChannel, inMemoryChannelPair, processPort, type Channel } from './index.js';

/** For tests of delivery itself, whose messages are whatever the test sends. */
const anything = <T>(message: unknown): T => message as T;

/** A pair whose both ends are closed when the test ends, so the process can exit. */
function pair<A, B>(t: { after: (fn: () => void) => void }): [Channel<A, B>, Channel<B, A>] {
  const channels = inMemoryChannelPair<A, B>(anything, anything);
  t.after(() => {
    channels[0].close();
    channels[1].close();
  });
  return channels;
}

/** Resolves once `received` holds `count` items; rejects after `ms`. */
async function until(received: readonly unknown[], count: number, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (received.length < count) {
    if (Date.now() > deadline) throw new Error(`timed out with ${received.length} of ${count} messages`);
    await sleep(1);
  }
}

test('inMemoryChannelPair delivers messages in order', async (t) => {
  const [a, b] = pair<number, never>(t);
  const received: number[] = [];
  b.onMessage((m) => received.push(m));
  for (let i = 0; i < 100; i++) a.send(i);
  await until(received, 100);
  assert.deepEqual(received, Array.from({ length: 100 }, (_, i) => i));
});

test('order holds across many turns of the event loop', async (t) => {
  const [a, b] = pair<string, never>(t);
  const received: string[] = [];
  b.onMessage((m) => received.push(m));
  const expected: string[] = [];
  for (let turn = 0; turn < 10; turn++) {
    for (let i = 0; i < 5; i++) {
      a.send(`${turn}.${i}`);
      expected.push(`${turn}.${i}`);
    }
    if (turn % 3 === 0) await sleep(0);
    else await Promise.resolve();
  }
  await until(received, expected.length);
  assert.deepEqual(received, expected);
});

test('both directions work independently', async (t) => {
  const [a, b] = pair<string, number>(t);
  const atA: number[] = [];
  const atB: string[] = [];
  a.onMessage((m) => atA.push(m));
  b.onMessage((m) => atB.push(m));
  a.send('ping');
  b.send(1);
  b.send(2);
  await until(atA, 2);
  await until(atB, 1);
  assert.deepEqual(atA, [1, 2]);
  assert.deepEqual(atB, ['ping']);
});

test('messages arrive as copies with their contents (plain data and bytes)', async (t) => {
  type Message = { id: number; data: Uint8Array; tags: Record<string, number>; list: string[] };
  const [a, b] = pair<Message, never>(t);
  const received: Message[] = [];
  b.onMessage((m) => received.push(m));
  const message = { id: 7, data: new Uint8Array([1, 2, 3]), tags: { x: 1 }, list: ['p', 'q'] };
  a.send(message);
  await until(received, 1);
  const got = received[0] as Message;
  assert.notEqual(got, message);
  assert.deepEqual({ ...got, data: [...got.data] }, { ...message, data: [1, 2, 3] });
});

test('delivery happens after the current synchronous work, not during send', async (t) => {
  const [a, b] = pair<number, never>(t);
  const received: number[] = [];
  b.onMessage((m) => received.push(m));
  a.send(1);
  assert.deepEqual(received, []);
  await until(received, 1);
  assert.deepEqual(received, [1]);
});

test('messages sent in one turn arrive as one batch (no microtask runs between them)', async (t) => {
  const [a, b] = pair<number, never>(t);
  const log: Array<number | string> = [];
  b.onMessage((m) => {
    log.push(m);
    queueMicrotask(() => log.push(`tick after ${m}`));
  });
  a.send(1);
  a.send(2);
  a.send(3);
  await until(log, 6);
  assert.deepEqual(log, [1, 2, 3, 'tick after 1', 'tick after 2', 'tick after 3']);
});

test('messages sent in different turns arrive as separate deliveries', async (t) => {
  const [a, b] = pair<number, never>(t);
  const log: Array<number | string> = [];
  b.onMessage((m) => {
    log.push(m);
    queueMicrotask(() => log.push(`tick after ${m}`));
  });
  a.send(1);
  await sleep(0);
  a.send(2);
  await until(log, 4);
  assert.deepEqual(log, [1, 'tick after 1', 2, 'tick after 2']);
});

test('close on the receiving side stops delivery', async (t) => {
  const [a, b] = pair<number, never>(t);
  const received: number[] = [];
  b.onMessage((m) => received.push(m));
  a.send(1);
  await until(received, 1);
  b.close();
  a.send(2);
  a.send(3);
  await sleep(30);
  assert.deepEqual(received, [1]);
});

test('close on the sending side: later sends are dropped without throwing', async (t) => {
  const [a, b] = pair<number, never>(t);
  const received: number[] = [];
  b.onMessage((m) => received.push(m));
  a.send(1);
  await until(received, 1);
  a.close();
  a.send(2);
  a.flush();
  await sleep(30);
  assert.deepEqual(received, [1]);
});

test('close is idempotent', (t) => {
  const [a, b] = pair<number, number>(t);
  a.close();
  a.close();
  b.close();
  b.close();
});

test('the last onMessage handler receives the messages', async (t) => {
  const [a, b] = pair<number, never>(t);
  const first: number[] = [];
  const second: number[] = [];
  b.onMessage((m) => first.push(m));
  b.onMessage((m) => second.push(m));
  a.send(1);
  await until(second, 1);
  assert.deepEqual(first, []);
  assert.deepEqual(second, [1]);
});

// ---- PortChannel over a recording port ----------------------------------------------------------

/** A port that records the batches posted to it (decoding each frame) and can deliver frames. */
class RecordingPort {
  readonly posted: unknown[][] = [];
  listeners: Array<(frame: Uint8Array) => void> = [];
  closeListeners: Array<() => void> = [];
  closed = 0;
  postMessage(frame: Uint8Array, transfer: ArrayBuffer[]): void {
    assert.ok(frame instanceof Uint8Array, 'a batch travels as one encoded frame');
    assert.deepEqual(transfer, [frame.buffer], "the frame's buffer is transferred, not copied");
    this.posted.push(decodeFrame(frame));
  }
  on(event: string, listener: (frame: Uint8Array) => void): this {
    if (event === 'close') this.closeListeners.push(listener as () => void);
    else (assert.equal(event, 'message'), this.listeners.push(listener));
    return this;
  }
  off(event: string, listener: (frame: Uint8Array) => void): this {
    if (event === 'close') this.closeListeners = this.closeListeners.filter((l) => l !== listener);
    else (assert.equal(event, 'message'), (this.listeners = this.listeners.filter((l) => l !== listener)));
    return this;
  }
  /** The other side went, as a MessagePort's 'close'. */
  hangUp(): void {
    for (const listener of this.closeListeners) listener();
  }
  close(): void {
    this.closed++;
  }
  deliver(batch: unknown[]): void {
    this.post(encodeFrame(batch));
  }
  /** Delivers a value as the port would, whatever it is. */
  post(value: unknown): void {
    for (const listener of this.listeners) listener(value as Uint8Array);
  }
}

const channelOver = (port: RecordingPort, ownsPort?: boolean, parse: (message: unknown) => string | ProtocolError = anything) =>
  new PortChannel<string, string>(port as unknown as ConstructorParameters<typeof PortChannel>[0], parse, ownsPort === undefined ? undefined : { ownsPort });

test('PortChannel posts everything sent in one turn as a single batch', async () => {
  const port = new RecordingPort();
  const channel = channelOver(port);
  channel.send('a');
  channel.send('b');
  channel.send('c');
  assert.deepEqual(port.posted, [], 'nothing is posted synchronously');
  await Promise.resolve();
  assert.deepEqual(port.posted, [['a', 'b', 'c']]);
  channel.send('d');
  await Promise.resolve();
  assert.deepEqual(port.posted, [['a', 'b', 'c'], ['d']]);
});

test('PortChannel.flush posts queued messages immediately, once', async () => {
  const port = new RecordingPort();
  const channel = channelOver(port);
  channel.send('a');
  channel.send('b');
  channel.flush();
  assert.deepEqual(port.posted, [['a', 'b']]);
  await Promise.resolve();
  assert.deepEqual(port.posted, [['a', 'b']], 'the queued microtask flush posts nothing more');
  channel.flush();
  assert.deepEqual(port.posted, [['a', 'b']], 'flush with an empty outbox posts nothing');
});

test('PortChannel hands a received batch to the handler one message at a time, in order', () => {
  const port = new RecordingPort();
  const channel = channelOver(port);
  const received: string[] = [];
  channel.onMessage((m) => received.push(m));
  port.deliver(['x', 'y', 'z']);
  port.deliver(['w']);
  assert.deepEqual(received, ['x', 'y', 'z', 'w']);
});

test('PortChannel.close stops delivery and sending, and closes the port only when it owns it', async () => {
  const port = new RecordingPort();
  const channel = channelOver(port, true);
  const received: string[] = [];
  channel.onMessage((m) => received.push(m));
  channel.close();
  assert.equal(port.listeners.length, 0);
  assert.equal(port.closed, 1);
  port.deliver(['late']);
  channel.send('after close');
  channel.flush();
  await Promise.resolve();
  assert.deepEqual(received, []);
  assert.deepEqual(port.posted, []);

  const shared = new RecordingPort();
  channelOver(shared).close();
  assert.equal(shared.closed, 0, 'a port the channel does not own stays open');
  assert.equal(shared.listeners.length, 0);
});

test('onClose: told once, with why, when the other side goes or this side closes; nothing is delivered after', () => {
  const port = new RecordingPort();
  const channel = channelOver(port);
  const received: string[] = [];
  channel.onMessage((m) => received.push(m));
  const reasons: string[] = [];
  channel.onClose((reason) => reasons.push(reason));
  port.hangUp();
  assert.deepEqual(reasons, ['the other side closed the channel']);
  assert.equal(port.listeners.length, 0, 'the channel let go of the port');
  assert.equal(port.closeListeners.length, 0);
  port.deliver(['late']);
  assert.deepEqual(received, []);
  channel.close();
  assert.deepEqual(reasons, ['the other side closed the channel'], 'once');
  const late: string[] = [];
  channel.onClose((reason) => late.push(reason));
  assert.deepEqual(late, ['the other side closed the channel'], 'a listener added after the end is told at once');

  const own = channelOver(new RecordingPort());
  const ownReasons: string[] = [];
  own.onClose((reason) => ownReasons.push(reason));
  own.close();
  assert.deepEqual(ownReasons, ['this side closed the channel']);
});

test("processPort: a child process's IPC disconnect is the channel's close", () => {
  const listeners = new Map<string, Array<(message: never) => void>>();
  const target = {
    on: (event: string, listener: (message: never) => void) => listeners.set(event, [...(listeners.get(event) ?? []), listener]),
    off: (event: string, listener: (message: never) => void) => listeners.set(event, (listeners.get(event) ?? []).filter((l) => l !== listener)),
  };
  const channel = new PortChannel<string, string>(processPort(target), anything);
  const reasons: string[] = [];
  channel.onClose((reason) => reasons.push(reason));
  assert.equal(listeners.get('disconnect')?.length, 1);
  for (const listener of listeners.get('disconnect') ?? []) (listener as () => void)();
  assert.deepEqual(reasons, ['the other side closed the channel']);
  assert.equal(listeners.get('message')?.length, 0);
});

test('inMemoryChannelPair: closing one side ends the other', async () => {
  const [a, b] = inMemoryChannelPair<string, string>(anything, anything);
  const reasons: string[] = [];
  assert.ok(b.onClose, 'the pair is PortChannels, which report their end');
  b.onClose((reason) => reasons.push(reason));
  a.close();
  for (let i = 0; i < 1000 && reasons.length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(reasons, ['the other side closed the channel']);
});

// ---- malformed input -------------------------------------------------------------------------

const onlyStrings = (message: unknown): string | ProtocolError =>
  typeof message === 'string' ? message : new ProtocolError(`expected a string, got ${typeof message}`, 'message');

/** A channel over a recording port, with what it delivers and what it reports. */
function watched(): { port: RecordingPort; received: string[]; errors: ProtocolError[] } {
  const port = new RecordingPort();
  const channel = channelOver(port, false, onlyStrings);
  const received: string[] = [];
  const errors: ProtocolError[] = [];
  channel.onMessage((m) => received.push(m));
  channel.onError((e) => errors.push(e));
  return { port, received, errors };
}

const notFrames: Array<[string, unknown, RegExp]> = [
  ['undefined', undefined, /must be a frame .* got undefined/],
  ['null', null, /got null/],
  ['a number', 42, /got number/],
  ['NaN', Number.NaN, /got number/],
  ['a string', 'hello', /got string/],
  ['a boolean', true, /got boolean/],
  ['an array', [1, 2], /got an array/],
  ['an object without frame', { type: 'results' }, /without a `frame`/],
  ['frame that is not bytes', { frame: 5, attached: [] }, /without a `frame`/],
  ['an ArrayBuffer', new ArrayBuffer(8), /without a `frame`/],
  ['attached that is not an array', { frame: encodeFrame(['x']), attached: 'x' }, /`attached` that is not an array of SharedArrayBuffers/],
  ['attached holding a number', { frame: encodeFrame(['x']), attached: [1] }, /`attached` that is not an array of SharedArrayBuffers/],
  ['random bytes', Uint8Array.from([0xc1, 0xff, 0x00, 0x13]), /could not be decoded/],
  ['a frame that is not a batch', new Uint8Array([0x2a]), /could not be decoded as a batch/],
  ['an empty frame', new Uint8Array(0), /could not be decoded/],
];

for (const [name, value, expected] of notFrames) {
  test(`PortChannel reports a posted ${name} to onError, without throwing or delivering`, () => {
    const { port, received, errors } = watched();
    assert.doesNotThrow(() => port.post(value));
    assert.deepEqual(received, []);
    assert.equal(errors.length, 1);
    assert.ok(errors[0] instanceof ProtocolError);
    assert.match((errors[0] as ProtocolError).message, expected);
  });
}

test('PortChannel reports a message its parser rejects, and delivers the messages before it', () => {
  const { port, received, errors } = watched();
  port.deliver(['a', 'b', 7, 'c']);
  assert.deepEqual(received, ['a', 'b']);
  assert.equal(errors.length, 1);
  assert.match((errors[0] as ProtocolError).message, /expected a string, got number/);
});

test('after one malformed input, PortChannel takes nothing more from that side (and reports once)', () => {
  const { port, received, errors } = watched();
  port.post(null);
  port.deliver(['later']);
  port.post(undefined);
  assert.deepEqual(received, []);
  assert.equal(errors.length, 1);
});

test('PortChannel checks frames that arrived before onMessage when it is set', () => {
  const port = new RecordingPort();
  const channel = channelOver(port, false, onlyStrings);
  const errors: ProtocolError[] = [];
  channel.onError((e) => errors.push(e));
  port.deliver(['early']);
  port.post(5);
  const received: string[] = [];
  channel.onMessage((m) => received.push(m));
  assert.deepEqual(received, ['early']);
  assert.equal(errors.length, 1);
});

test('PortChannel without an error handler writes the error to stderr instead of throwing', (t) => {
  const port = new RecordingPort();
  const channel = channelOver(port, false, onlyStrings);
  channel.onMessage(() => {});
  const logged: unknown[] = [];
  t.mock.method(console, 'error', (...args: unknown[]) => logged.push(args.join(' ')));
  assert.doesNotThrow(() => port.post(undefined));
  assert.equal(logged.length, 1);
  assert.match(String(logged[0]), /a channel stopped taking messages: .*must be a frame/);
});

test('a frame with attachments delivers them with each of its messages', () => {
  const port = new RecordingPort();
  const channel = channelOver(port, false, onlyStrings);
  const buffer = new SharedArrayBuffer(8);
  const seen: Array<[string, readonly SharedArrayBuffer[]]> = [];
  channel.onMessage((m, attached) => seen.push([m, attached]));
  channel.onError((e) => assert.fail(e));
  port.post({ frame: encodeFrame(['x', 'y']), attached: [buffer] });
  assert.deepEqual(seen.map(([m]) => m), ['x', 'y']);
  assert.equal(seen[0]?.[1][0], buffer);
  assert.equal(seen[1]?.[1][0], buffer);
});
