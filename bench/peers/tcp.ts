/**
 * The raw TCP limits the cluster figures are compared with (npm run bench -- --cluster): a client
 * in this process and the echo server of bench/peers/tcp-echo.mjs in another, at
 * MINIRAY_BENCH_ECHO (HOST:PORT), over loopback, with no miniray code on either side.
 *
 *  - raw_tcp_round_trip: a frame of the size of a small request, echoed, one at a time (p50, p99).
 *  - raw_tcp_stream: the server writes 256 MiB (as the cluster's object transfer moves), this side
 *    copies each chunk into a buffer of its own (as a node copies a pull into its arena); GB/s.
 */
import { connect, type Socket } from 'node:net';
import { Packr } from 'msgpackr';
import type { CaseContext, CaseFn, Metric } from '../lib/protocol.js';
import { median, timeit } from '../lib/timeit.js';

/** The bytes of the object transfer case (bench/cases/cluster.ts), the same here. */
export const STREAM_BYTES = 256 * 1024 * 1024;

const packr = new Packr({ useRecords: false });

async function open(): Promise<Socket> {
  const address = process.env['MINIRAY_BENCH_ECHO'];
  if (address === undefined) throw new Error('MINIRAY_BENCH_ECHO is not set: run this case through npm run bench -- --cluster');
  const at = address.lastIndexOf(':');
  const socket = connect({ host: address.slice(0, at), port: Number(address.slice(at + 1)) });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  return socket;
}

function frame(message: unknown): Buffer {
  const body = packr.pack(message);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

async function roundTrip({ mode }: CaseContext): Promise<Record<string, Metric>> {
  const socket = await open();
  let buffered: Buffer = Buffer.alloc(0);
  let wake: ((message: unknown) => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
      const length = buffered.readUInt32BE(0);
      const message = packr.unpack(buffered.subarray(4, 4 + length));
      buffered = buffered.subarray(4 + length);
      wake?.(message);
    }
  });
  // About what a small task's request carries: ids, a name, a few small fields.
  const message = { echo: { type: 'request', id: 1, method: 'executeTask', body: { taskId: '0123456789abcdef0123456789abcdef', name: 'one', args: new Uint8Array(64) } } };
  const m = await timeit(mode, () => new Promise((resolve) => ((wake = resolve), socket.write(frame(message)))), { latencies: true });
  socket.destroy();
  return {
    rate: { value: m.rate, unit: '/s', runs: m.runs },
    p50: { value: m.p50Us as number, unit: 'us' },
    p99: { value: m.p99Us as number, unit: 'us' },
  };
}

async function stream({ mode }: CaseContext): Promise<Record<string, Metric>> {
  const socket = await open();
  const into = new Uint8Array(STREAM_BYTES).fill(0); // touched, as a warm arena is
  let expected = -1;
  let filled = 0;
  let done: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    let at = 0;
    if (expected < 0) {
      expected = chunk.readUInt32BE(0); // the header arrives before the first byte of the payload
      at = 4;
    }
    into.set(chunk.subarray(at), filled);
    filled += chunk.length - at;
    if (filled === expected) done?.();
  });
  const once = async (): Promise<number> => {
    expected = -1;
    filled = 0;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const started = performance.now();
    socket.write(frame({ stream: STREAM_BYTES }));
    await finished;
    return STREAM_BYTES / 1e9 / ((performance.now() - started) / 1000);
  };
  await once(); // warm-up: the server's payload and this side's buffer exist from here on
  const runs: number[] = [];
  for (let run = 0; run < mode.runs; run++) runs.push(await once());
  socket.destroy();
  return { rate: { value: median(runs), unit: 'GB/s', runs, note: '256 MiB, loopback' } };
}

export const cases: Record<string, CaseFn> = {
  raw_tcp_round_trip: roundTrip,
  raw_tcp_stream: stream,
};
