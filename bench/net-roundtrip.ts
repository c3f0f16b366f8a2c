/**
 * `node --import tsx bench/net-roundtrip.ts`: the net layer's request/response over loopback TCP in
 * one process: the p50 round trip of one call at a time, and calls/s with 64 in flight. A quick
 * figure for the cluster work, not one of bench/run.ts's cases.
 */
import { connect, listen, Router } from '../src/net/index.js';

const token = 'bench';
const router = new Router().handle('echo', (body) => body, (body) => body);
const listener = await listen({ token, hello: { role: 'node', nodeId: 'server' }, router });
const peer = await connect({ host: listener.host, port: listener.port, token, hello: { role: 'driver', nodeId: 'client' }, router: new Router() });
const body = { taskId: '0123456789abcdef0123456789abcdef', args: new Uint8Array(64) };

for (let i = 0; i < 5000; i++) await peer.request('echo', body); // warm-up

const samples: number[] = [];
for (let i = 0; i < 20_000; i++) {
  const start = process.hrtime.bigint();
  await peer.request('echo', body);
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
      await peer.request('echo', body);
    }
  }),
);
const seconds = (performance.now() - started) / 1000;
console.log(`round trip, one at a time: p50 ${p(0.5)} us, p99 ${p(0.99)} us`);
console.log(`${inFlight} in flight: ${Math.round(total / seconds).toLocaleString('en-US')} calls/s`);
peer.close();
await listener.close();
