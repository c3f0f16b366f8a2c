// The main job (`npm start`): miniray's tour in three parts.
//
//   1. The seed's Phase 2 acceptance: init, a remote add, get its result.
//   2. Map-reduce word count over generated text (put, numReturns, refs as arguments).
//   3. A Monte Carlo estimate of pi in many tasks, watched with progress() (a bar on a terminal,
//      plain lines otherwise), timed on all workers and then on one worker.
//
// Functions defined in this file are shipped to the workers as source, so they must be
// self-contained: they use only their parameters, their own locals and globals such as Math.
// Functions that need imports or helpers live in a module (./lib/wordcount.ts).
import { availableParallelism } from 'node:os';
import { get, init, progress, put, remote, shutdown } from 'miniray';
import { countWords, generateText, mergeCounts } from './lib/wordcount.js';

const numWorkers = availableParallelism();

// ---- 1. Phase 2 acceptance ------------------------------------------------------------------------

console.log(`miniray: ${numWorkers} worker threads on a machine with ${availableParallelism()} CPUs\n`);
console.log('1. Remote function');

await init({ numWorkers });
const add = remote((a: number, b: number) => a + b);
console.log(`   add.remote(1, 2) -> ${await get(add.remote(1, 2))}\n`);

// ---- 2. Map-reduce word count ---------------------------------------------------------------------

const NUM_CHUNKS = 8;
const NUM_PARTITIONS = 4;
const WORDS_PER_CHUNK = 250_000;

console.log(`2. Map-reduce word count: ${NUM_CHUNKS} chunks x ${WORDS_PER_CHUNK.toLocaleString('en-US')} words, ${NUM_PARTITIONS} reducers`);
let started = performance.now();
// Each chunk goes into the object store once; the mappers get it by ref.
const chunks = Array.from({ length: NUM_CHUNKS }, (_, i) => put(generateText(WORDS_PER_CHUNK, i + 1)));
// Map: one task per chunk, returning one object per reducer (numReturns).
const mapper = countWords.options({ numReturns: NUM_PARTITIONS });
const mapped = chunks.map((chunk) => mapper.remote(chunk, NUM_PARTITIONS));
// Reduce: reducer r gets partition r of every mapper. Refs given as arguments are resolved to
// their values before the task runs, and the reducers start as soon as the mappers are done.
const reduced = Array.from({ length: NUM_PARTITIONS }, (_, r) => mergeCounts.remote(...mapped.map((parts) => parts[r]!)));

const counts = new Map<string, number>();
for (const partition of await get(reduced)) for (const [word, count] of partition) counts.set(word, count);
const totalWords = [...counts.values()].reduce((sum, count) => sum + count, 0);
const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 5);
console.log(`   ${totalWords.toLocaleString('en-US')} words counted (${counts.size} distinct) in ${seconds(started)}`);
console.log(`   most frequent: ${top.map(([word, count]) => `${word} ${count.toLocaleString('en-US')}`).join(', ')}\n`);
if (totalWords !== NUM_CHUNKS * WORDS_PER_CHUNK) throw new Error(`expected ${NUM_CHUNKS * WORDS_PER_CHUNK} words, counted ${totalWords}`);

// ---- 3. Monte Carlo estimate of pi ----------------------------------------------------------------

const NUM_TASKS = 100;
const SAMPLES_PER_TASK = 3_000_000;

/**
 * Throws `samples` random points into the unit square and counts those inside the quarter circle.
 * Each task has its own seeded generator (mulberry32), so the result depends only on the seed.
 */
const samplePi = remote((seed: number, samples: number): number => {
  let state = seed >>> 0;
  const random = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let inside = 0;
  for (let i = 0; i < samples; i++) {
    const x = random();
    const y = random();
    if (x * x + y * y < 1) inside++;
  }
  return inside;
});

/** Runs the estimate on the current workers, with a progress bar (plain lines when not on a terminal). */
async function estimatePi(workers: number): Promise<{ pi: number; seconds: number }> {
  const start = performance.now();
  const refs = Array.from({ length: NUM_TASKS }, (_, i) => samplePi.remote(i + 1, SAMPLES_PER_TASK));
  // The values come in the order of the refs, once all are done; the bar shows them arrive.
  const hits = await progress(refs, { label: `   on ${workers} worker${workers === 1 ? '' : 's'}`, stream: process.stdout });
  const inside = hits.reduce((sum, n) => sum + n, 0);
  const result = { pi: (4 * inside) / (NUM_TASKS * SAMPLES_PER_TASK), seconds: (performance.now() - start) / 1000 };
  console.log(`   on ${workers} worker${workers === 1 ? '' : 's'}: pi ~ ${result.pi.toFixed(7)} in ${result.seconds.toFixed(2)} s`);
  return result;
}

const totalSamples = NUM_TASKS * SAMPLES_PER_TASK;
console.log(`3. Monte Carlo pi: ${NUM_TASKS} tasks x ${SAMPLES_PER_TASK.toLocaleString('en-US')} samples`);
const parallel = await estimatePi(numWorkers);

// The same work on one worker, for comparison.
await shutdown();
await init({ numWorkers: 1 });
const serial = await estimatePi(1);

const error = Math.abs(parallel.pi - Math.PI);
// One standard deviation of the estimate: 4 * sqrt(p(1-p)/n) with p = pi/4.
const sigma = 4 * Math.sqrt(((Math.PI / 4) * (1 - Math.PI / 4)) / totalSamples);
console.log(`   pi ~ ${parallel.pi.toFixed(7)} from ${totalSamples.toLocaleString('en-US')} samples`);
console.log(`   error ${error.toExponential(1)} (one standard deviation is ${sigma.toExponential(1)})`);
if (serial.pi !== parallel.pi) throw new Error('the one-worker run gave a different estimate');
console.log(`   same estimate on 1 worker: yes (each task's generator is seeded)`);
console.log(
  `   wall time: ${parallel.seconds.toFixed(2)} s on ${numWorkers} workers, ${serial.seconds.toFixed(2)} s on 1 worker` +
    ` -> speed-up ${(serial.seconds / parallel.seconds).toFixed(2)}x`,
);
// No shutdown() needed: the process exits once its work is done.

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(2)} s`;
}
