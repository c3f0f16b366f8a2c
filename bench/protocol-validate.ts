/**
 * What message validation costs on the hot paths: decoding a frame of 1,000 results (what the node
 * reads from a worker running short tasks), 1,000 submitted task specs, and 1,000 tasks to execute
 * (what a worker reads), each alone and then with its validator. Measures the built code (dist/,
 * what workers run): `npm run build && node bench/protocol-validate.ts` (or through tsx).
 * Prints the median of interleaved rounds, per frame and per message item.
 */
import { randomBytes } from 'node:crypto';
// @ts-ignore -- the built module: its types are those of src/protocol
import * as built from '../dist/protocol/index.js';
import type * as Protocol from '../src/protocol/index.js';

const { decodeFrame, encodeFrame, parseNodeToWorker, parseWorkerToNode } = built as typeof Protocol;

const N = 1000;
const hex = () => randomBytes(16).toString('hex');
const value = Uint8Array.of(0x93, 1, 2, 3);
const owner = { nodeId: hex(), workerId: hex() };

const frames: Array<[string, Uint8Array, (m: unknown) => unknown]> = [
  [
    'results (node reads)',
    encodeFrame([{ type: 'results', results: Array.from({ length: N }, (_, i) => ({ seq: i + 1, outcome: 'ok', values: [value], us: 3 })) }]),
    parseWorkerToNode,
  ],
  [
    'submit (node reads)',
    encodeFrame([
      {
        type: 'submit',
        functions: [],
        tasks: Array.from({ length: N }, () => ({
          taskId: hex(),
          functionId: hex(),
          name: 'add',
          args: value,
          refArgPositions: [],
          dependencies: [],
          returnIds: [hex()],
          numCpus: 1,
          maxRetries: 3,
          retryExceptions: false,
          owner,
        })),
      },
    ]),
    parseWorkerToNode,
  ],
  [
    'execute (worker reads)',
    encodeFrame([
      {
        type: 'execute',
        functions: [],
        tasks: Array.from({ length: N }, (_, i) => ({ seq: i + 1, taskId: hex(), functionId: hex(), name: 'add', args: value, refArgPositions: [], refArgValues: [], numReturns: 1 })),
      },
    ]),
    parseNodeToWorker,
  ],
];

function timeUs(frame: Uint8Array, parse: ((m: unknown) => unknown) | undefined, iterations: number): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) {
    const batch = decodeFrame(frame);
    if (parse !== undefined) for (const message of batch) if (parse(message) instanceof Error) throw new Error('rejected');
  }
  return Number(process.hrtime.bigint() - started) / 1000 / iterations;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

for (const [name, frame, parse] of frames) {
  for (let i = 0; i < 3; i++) timeUs(frame, parse, 300); // warm up both paths
  for (let i = 0; i < 3; i++) timeUs(frame, undefined, 300);
  const plain: number[] = [];
  const checked: number[] = [];
  const alone: number[] = [];
  const batch = decodeFrame(frame);
  for (let round = 0; round < 15; round++) {
    plain.push(timeUs(frame, undefined, 300));
    checked.push(timeUs(frame, parse, 300));
    const started = process.hrtime.bigint();
    for (let i = 0; i < 300; i++) for (const message of batch) parse(message);
    alone.push(Number(process.hrtime.bigint() - started) / 1000 / 300);
  }
  const [p, c, a] = [median(plain), median(checked), median(alone)];
  console.log(
    `${name}, ${N} items, ${frame.byteLength} bytes: decode ${p.toFixed(1)} us, decode+validate ${c.toFixed(1)} us ` +
      `(+${(((c - p) / p) * 100).toFixed(0)}%); validate alone ${a.toFixed(1)} us = ${((a * 1000) / N).toFixed(0)} ns per item`,
  );
}
