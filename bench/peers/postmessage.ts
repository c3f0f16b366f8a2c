/**
 * The machine's limits for moving tasks between threads with worker_threads alone:
 *
 *  - round trip: one echo worker; post a message, await its reply, one at a time (p50, rate).
 *  - stream: two echo workers; post 10,000 messages, one per task, alternating between the two,
 *    and wait for all 10,000 replies (each a message of its own): the pipelined rate.
 *
 * Whatever a runtime adds on top (scheduling, serialization, bookkeeping) shows as the distance
 * from these figures.
 */
import { Worker } from 'node:worker_threads';
import type { CaseContext, CaseFn, Metric } from '../lib/protocol.js';
import { timeit } from '../lib/timeit.js';

const ECHO = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (message) => parentPort.postMessage(message));
`;
const STREAM = 10_000;

function startEcho(onMessage: (message: unknown) => void): Promise<Worker> {
  const worker = new Worker(ECHO, { eval: true });
  return new Promise((resolve, reject) => {
    worker.once('online', () => resolve(worker));
    worker.once('error', reject);
    worker.on('message', onMessage);
  });
}

async function rawPostMessage({ mode }: CaseContext): Promise<Record<string, Metric>> {
  // Round trip: one outstanding message at a time.
  let wake: (() => void) | undefined;
  const one = await startEcho(() => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  });
  const roundTrip = await timeit(
    mode,
    () =>
      new Promise<void>((resolve) => {
        wake = resolve;
        one.postMessage(0);
      }),
    { latencies: true },
  );
  await one.terminate();

  // Stream: 10,000 messages in flight over two workers.
  let remaining = 0;
  let done: (() => void) | undefined;
  const onReply = () => {
    if (--remaining === 0) done?.();
  };
  const workers = await Promise.all([startEcho(onReply), startEcho(onReply)]);
  const [a, b] = workers as [Worker, Worker];
  const stream = await timeit(
    mode,
    () =>
      new Promise<void>((resolve) => {
        done = resolve;
        remaining = STREAM;
        for (let i = 0; i < STREAM; i += 2) {
          a.postMessage(i);
          b.postMessage(i + 1);
        }
      }),
    { multiplier: STREAM },
  );
  await Promise.all(workers.map((worker) => worker.terminate()));

  return {
    roundTrip: { value: roundTrip.rate, unit: '/s', runs: roundTrip.runs },
    roundTripP50: { value: roundTrip.p50Us as number, unit: 'us' },
    stream: { value: stream.rate, unit: '/s', runs: stream.runs, note: '10,000 messages to 2 workers' },
  };
}

export const cases: Record<string, CaseFn> = { raw_postmessage: rawPostMessage };
