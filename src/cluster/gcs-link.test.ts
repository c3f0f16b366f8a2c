/**
 * GcsLink over in-process pairs: a "GCS" that can go down (connect fails), die (its connections
 * close) and come back, so that waiting, resending, re-registering and giving up are seen
 * without sockets or timers longer than a few hundred milliseconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthenticationError, ConnectionError, GcsUnavailableError, MinirayError } from '../errors/index.js';
import { Router, localPair, type Peer } from '../net/index.js';
import { GcsLink } from './gcs-link.js';

/** A stand-in GCS: answers 'echo' with its generation; `up` says whether connecting works. */
class FakeGcs {
  up = true;
  generation = 1;
  refuseToken = false;
  connects = 0;
  /** Requests it received, by method. */
  readonly seen: string[] = [];
  private readonly peers: Peer[] = [];
  /** Answers the first head holds back. */
  private held: (() => void)[] = [];

  connect = async (): Promise<Peer> => {
    this.connects++;
    if (this.refuseToken) throw new AuthenticationError('the head refused this token: set MINIRAY_AUTH_TOKEN');
    if (!this.up) throw new ConnectionError('cannot connect to 127.0.0.1:1: ECONNREFUSED');
    const router = new Router()
      .handle('echo', (body) => body, (body) => {
        this.seen.push('echo');
        return { generation: this.generation, body };
      })
      // The first head never answers it (it dies first); a restarted one answers at once.
      .handle('hold', (body) => body, () =>
        this.generation === 1 ? new Promise((resolve) => this.held.push(() => resolve({ generation: this.generation }))) : { generation: this.generation },
      );
    const [client, server] = localPair(
      { hello: { role: 'node', nodeId: 'n1' }, router: new Router() },
      { hello: { role: 'gcs', nodeId: `head-${this.generation}` }, router },
    );
    this.peers.push(server);
    return client;
  };

  /** As kill -9 of the head: its connections close and it does not answer until restart(). */
  kill(): void {
    this.up = false;
    this.held = [];
    for (const peer of this.peers.splice(0)) peer.close('the head died');
  }

  restart(): void {
    this.generation++;
    this.up = true;
  }
}

const quiet = { log: () => {} };

test('requests made while the GCS is down wait, and go through once it is back and the node re-registered', async () => {
  const gcs = new FakeGcs();
  const link = new GcsLink({ address: 'head:1', connect: gcs.connect, timeoutMs: 10_000, ...quiet });
  await link.open(false);
  const order: string[] = [];
  link.onReconnect = async (peer) => {
    order.push(`re-registered with ${peer.hello.nodeId}`);
  };
  assert.deepEqual(await link.request('echo', 1), { generation: 1, body: 1 });
  gcs.kill();
  await new Promise((resolve) => setImmediate(resolve)); // the close reaches this end
  assert.equal(link.connected, false);
  const waiting = link.request('echo', 2).then((answer) => (order.push('answered'), answer));
  link.notify('echo', 'dropped while away'); // notifies are dropped, not queued
  gcs.restart();
  assert.deepEqual(await waiting, { generation: 2, body: 2 });
  assert.deepEqual(order, ['re-registered with head-2', 'answered']);
  assert.equal(link.hello.nodeId, 'head-2');
  assert.equal(link.reconnects, 1);
  link.close();
});

test('a request the dead connection dropped is sent again over the next one', async () => {
  const gcs = new FakeGcs();
  const link = new GcsLink({ address: 'head:1', connect: gcs.connect, timeoutMs: 10_000, ...quiet });
  await link.open(false);
  const held = link.request('hold', {});
  await new Promise((resolve) => setImmediate(resolve));
  gcs.kill();
  gcs.restart();
  assert.deepEqual(await held, { generation: 2 });
  link.close();
});

test('no answer within timeoutMs: waiting and later requests fail with GcsUnavailableError, and ended resolves', async () => {
  const gcs = new FakeGcs();
  const link = new GcsLink({ address: 'head:1', connect: gcs.connect, timeoutMs: 300, ...quiet });
  await link.open(false);
  gcs.kill();
  const started = Date.now();
  const waiting = link.request('echo', 1);
  await assert.rejects(waiting, (error: unknown) => {
    assert.ok(error instanceof GcsUnavailableError, String(error));
    assert.ok(error instanceof ConnectionError);
    assert.match(error.message, /the GCS at head:1 did not answer within 0\.3 s \(gcsReconnectTimeoutMs\).*ECONNREFUSED/);
    return true;
  });
  assert.ok(Date.now() - started >= 250, 'it gave up before its time');
  assert.match(await link.ended, /did not answer/);
  assert.equal(link.isClosed, true);
  await assert.rejects(link.request('echo', 2), GcsUnavailableError);
  assert.ok(gcs.connects > 2, `it tried again (${gcs.connects} connects)`);
});

test('a GCS that refuses the re-registration (not a connection failure) ends the link at once', async () => {
  const gcs = new FakeGcs();
  const link = new GcsLink({ address: 'head:1', connect: gcs.connect, timeoutMs: 10_000, ...quiet });
  await link.open(false);
  link.onReconnect = async () => {
    throw new MinirayError('node n1 was declared dead: it must not come back');
  };
  gcs.kill();
  gcs.restart();
  const reason = await link.ended;
  assert.match(reason, /declared dead/);
  await assert.rejects(link.request('echo', 1), (error: unknown) => error instanceof GcsUnavailableError && /declared dead/.test(error.message));
});

test('at first start with retry: waits for a head that is not up yet; without retry fails at once', async () => {
  const gcs = new FakeGcs();
  gcs.up = false;
  const once = new GcsLink({ address: 'head:1', connect: gcs.connect, timeoutMs: 10_000, ...quiet });
  await assert.rejects(once.open(false), ConnectionError);
  const patient = new GcsLink({ address: 'head:1', connect: gcs.connect, timeoutMs: 10_000, ...quiet });
  const opened = patient.open(true);
  const before = gcs.connects;
  while (gcs.connects < before + 2) await new Promise((resolve) => setTimeout(resolve, 10));
  gcs.up = true;
  await opened;
  assert.deepEqual(await patient.request('echo', 'x'), { generation: 1, body: 'x' });
  patient.close();
});

test('at first start a refused token is not retried: AuthenticationError at once', async () => {
  const gcs = new FakeGcs();
  gcs.refuseToken = true;
  const link = new GcsLink({ address: 'head:1', connect: gcs.connect, timeoutMs: 10_000, ...quiet });
  await assert.rejects(link.open(true), AuthenticationError);
  assert.equal(gcs.connects, 1);
});

test('at first start with retry, a head that never comes up: GcsUnavailableError after timeoutMs', async () => {
  const gcs = new FakeGcs();
  gcs.up = false;
  const link = new GcsLink({ address: 'head:1', connect: gcs.connect, timeoutMs: 200, ...quiet });
  await assert.rejects(link.open(true), (error: unknown) => error instanceof GcsUnavailableError && /within 0\.2 s \(gcsReconnectTimeoutMs\) at start/.test(error.message));
});

test('close() while reconnecting stops trying; requests fail, and nothing reconnects later', async () => {
  const gcs = new FakeGcs();
  const link = new GcsLink({ address: 'head:1', connect: gcs.connect, timeoutMs: 10_000, ...quiet });
  await link.open(false);
  gcs.kill();
  const waiting = link.request('echo', 1);
  link.close('node stopped');
  await assert.rejects(waiting, ConnectionError);
  const tries = gcs.connects;
  gcs.restart();
  await new Promise((resolve) => setTimeout(resolve, 1_200));
  assert.ok(gcs.connects <= tries + 1, 'it kept connecting after close()');
  assert.equal(link.connected, false);
});
