/**
 * What recording task events costs the thread that records them, without threads or noise from
 * them: the node's calls for each task of a stream (submitted, PENDING_NODE_ASSIGNMENT,
 * SUBMITTED_TO_WORKER, the worker's result), a batch every 7,500 tasks (500 ms at 15,000 tasks/s)
 * validated and merged into the GCS's table, as in the embedded default, where the GCS shares the
 * driver's thread. Each task gets a freshly made spec and result, as the node does, so that the
 * garbage collector's share is counted. Prints the CPU time per task with events on, with them
 * off (the same loop, recording nothing), and the difference: `node --import tsx bench/task-events.ts`.
 */
import { randomBytes } from 'node:crypto';
import { TaskEventBuffer, SUBMITTED_TO_WORKER } from '../src/state/events.js';
import { TaskEventTable, parseNotify, type TaskEventBatch } from '../src/gcs/index.js';
import type { TaskResult, TaskSpec } from '../src/protocol/index.js';
import type { NodeIdHex, ObjectIdHex, TaskIdHex, WorkerIdHex } from '../src/ids/index.js';
import { ProtocolError } from '../src/errors/index.js';

const TASKS = 150_000;
const PER_BATCH = 7_500;
const nodeId = randomBytes(16).toString('hex');
const workerId = randomBytes(16).toString('hex');
const owner = { nodeId: nodeId as NodeIdHex, workerId: randomBytes(16).toString('hex') as WorkerIdHex };
const ids = Array.from({ length: 4096 }, () => randomBytes(16).toString('hex') as ObjectIdHex);
const parse = parseNotify('addTaskEvents');

function run(enabled: boolean): number {
  const buffer = new TaskEventBuffer(nodeId, { enabled, maxBuffered: 100_000, flushMs: 1 << 30 });
  const table = new TaskEventTable({ maxTasks: 100_000 });
  buffer.sendTo((batch: TaskEventBatch) => {
    const checked = parse(batch);
    if (checked instanceof ProtocolError) throw checked;
    table.add(checked);
  });
  let sink = 0;
  const cpuAt = process.cpuUsage();
  for (let i = 0; i < TASKS; i++) {
    // What the node has per task anyway: a spec and a result.
    const spec: TaskSpec = {
      taskId: `${ids[i & 4095]}${i}`.slice(-32) as TaskIdHex,
      functionId: 'f',
      name: 'small_value',
      args: new Uint8Array(3),
      refArgPositions: [],
      dependencies: [],
      returnIds: [ids[(i + 1) & 4095] as ObjectIdHex],
      numCpus: 1,
      maxRetries: 3,
      retryExceptions: false,
      owner,
    };
    const result: TaskResult = { seq: i + 1, outcome: 'ok', values: [spec.args], us: 3, startMs: 1e12 + i };
    buffer.submitted(spec, true); // no arguments to wait for: queued at once
    buffer.state(spec, 0, SUBMITTED_TO_WORKER, workerId);
    buffer.result(spec, 0, workerId, result);
    sink += spec.returnIds.length + result.seq;
    if ((i + 1) % PER_BATCH === 0) buffer.flush();
  }
  buffer.flush();
  const cpu = process.cpuUsage(cpuAt);
  if (sink < 0) console.log(sink);
  return (cpu.user + cpu.system) / TASKS;
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1] as number;
const on: number[] = [];
const off: number[] = [];
run(true);
run(false);
for (let round = 0; round < 7; round++) {
  on.push(run(true));
  off.push(run(false));
}
const [a, b] = [median(on), median(off)];
console.log(`task events, per task (median of 7 rounds of ${TASKS.toLocaleString('en-US')} tasks, CPU time):`);
console.log(`  on  ${a.toFixed(3)} us   off ${b.toFixed(3)} us   cost ${(a - b).toFixed(3)} us per task`);
