/**
 * `node --import tsx bench/net-roundtrip.ts`: the net layer's request/response over loopback TCP in
 * one process: the p50 round trip of one call at a time, and calls/s with 64 in flight. A quick
 * figure for the cluster work, not one of bench/run.ts's cases.
 */
import * as net from 'node:net';
import { connect, encodeFrame, FrameDecoder, listen, Router, type Peer } from '../src/net/index.js';

const token = 'bench';
const router = new Router().handle('echo', (body) => body, (body) => body);
const listener = await listen({ token, hello: { role: 'node', nodeId: 'server' }, router });
const peer = await connect({ host: listener.host, port: listener.port, token, hello: { role: 'driver', nodeId: 'client' }, router: new Router() });
const body = { taskId: '0123456789abcdef0123456789abcdef', args: new Uint8Array(64) };

/** The same figures for a raw msgpackr-frame echo on a plain socket: no envelope, ids or validation. */
async function rawEcho(): Promise<{ request: (b: unknown) => Promise<unknown>; close: () => void }> {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const decoder = new FrameDecoder();
    socket.on('data', (chunk) => decoder.push(chunk, (m) => void socket.write(encodeFrame(m))));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once('connect', resolve));
  const waiting: ((m: unknown) => void)[] = [];
  const decoder = new FrameDecoder();
  socket.on('data', (chunk) => decoder.push(chunk, (m) => waiting.shift()?.(m)));
  return {
    request: (b) => new Promise((resolve) => {
      waiting.push(resolve);
      socket.write(encodeFrame(b));
    }),
    close: () => {
      socket.destroy();
      server.close();
    },
  };
}

async function measure(name: string, request: (b: unknown) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 5000; i++) await request(body); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const start = process.hrtime.bigint();
    await request(body);
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  samples.sort((a, b) => a - b);
  const p = (q: number) => samples[Math.floor(q * (samples.length - 1))]?.toFixed(1);
  const inFlight = 64;
  const total = 200_000;
  let sent = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (sent < total) {
        sent++;
        await request(body);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  console.log(`${name}: round trip one at a time p50 ${p(0.5)} us, p99 ${p(0.99)} us; ${inFlight} in flight ${Math.round(total / seconds).toLocaleString('en-US')} calls/s`);
}

const raw = await rawEcho();
await measure('raw frames ', raw.request);
raw.close();
await measure('net Peer   ', (b) => (peer as Peer).request('echo', b));
peer.close();
await listener.close();
