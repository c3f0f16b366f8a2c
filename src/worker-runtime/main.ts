/**
 * Entry of a worker thread. Loads the driver's preload hooks (e.g. tsx), sets up this thread's
 * CoreWorker, tells the node it is ready, then runs tasks as they arrive.
 */
import { generatorAck } from './generator.js';
import { writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
// Register the serializer extensions for actor handles, queues, remote functions and actor
// classes, which arrive inside arguments.
import '../actors/handle.js';
import '../util/queue.js';
import '../api/remote-function.js';
import '../placement-group/handle.js';
import { ChannelNodeClient, CoreWorker, collectGarbage } from '../core-worker/index.js';
import { setCurrentRuntime } from '../core-worker/current.js';
import { ProtocolError } from '../errors/index.js';
import { PROCESS_PROGRESS_FD, parseNodeToWorker, parseWorkerBootData, type NodeToWorker, type WorkerBootData, type WorkerToNode } from '../protocol/index.js';
import { PortChannel, processPort } from '../transport/index.js';
import { TaskExecutor, type ProgressCell } from './executor.js';
import { TaskOutput } from './output.js';
import { writeOut, writeStdioDirectly } from './stdio.js';

// A worker thread gets its boot data as workerData; a worker process ('process' isolation) in
// MINIRAY_WORKER_BOOT, and talks over its IPC channel. A process shares no memory: its progress
// cell is the first 4 bytes of a file the node holds open (PROCESS_PROGRESS_FD), which the node
// reads after the process dies, even of SIGKILL.
const inProcess = parentPort === null;
if (inProcess && (process.send === undefined || process.env['MINIRAY_WORKER_BOOT'] === undefined)) {
  throw new Error('the miniray worker runtime runs only as a worker thread or process started by miniray');
}
let bootValue: unknown = workerData;
if (inProcess) {
  try {
    bootValue = { ...(JSON.parse(process.env['MINIRAY_WORKER_BOOT'] as string) as object), progress: new SharedArrayBuffer(4) };
  } catch (error) {
    throw new ProtocolError(`MINIRAY_WORKER_BOOT is not JSON: ${(error as Error).message}`, 'MINIRAY_WORKER_BOOT');
  }
}
// Thrown, this ends the worker before it reports ready: the node counts a failed start.
const parsedBoot = parseWorkerBootData(bootValue);
if (parsedBoot instanceof ProtocolError) throw parsedBoot;
const boot: WorkerBootData = parsedBoot;
if (inProcess) {
  // The driver went away: nothing can reach this process any more.
  process.on('disconnect', () => process.exit(0));
}
// Task output must not be lost at exit nor overtaken by the task's result (see stdio.ts), and
// each line says which task wrote it (output.ts).
const output = new TaskOutput({ workerId: boot.workerId, nodeId: boot.nodeId, write: writeOut });
writeStdioDirectly((fd, bytes) => output.write(fd, bytes));

for (const module of boot.preload) {
  if (module.kind === 'tsx') {
    const api = (await import(module.apiUrl)) as { register: () => unknown };
    api.register();
  } else {
    await import(module.specifier);
  }
}

// esbuild (and so tsx) may wrap functions in `__name(fn, "name")`; shipped source can contain it.
const globals = globalThis as { __name?: unknown };
globals.__name ??= (target: object, value: string) =>
  Object.defineProperty(target, 'name', { value, configurable: true });

const channel = new PortChannel<WorkerToNode, NodeToWorker>(
  parentPort ?? processPort(process as unknown as Parameters<typeof processPort>[0]),
  parseNodeToWorker,
);
// A node that sends something malformed is broken: say what it was, and end this worker, which the
// node handles as a crash (its tasks go back to the queue).
channel.onError((error) => {
  // The runtime's own words, not a task's: not prefixed (they name the worker themselves).
  writeOut(2, Buffer.from(`miniray worker ${boot.workerId.slice(0, 8)}: ${error.message}; exiting\n`));
  client.close(error.message);
  process.exit(70);
});
// A node's answer to no request of this worker is reported, not fatal: the worker carries on.
const client = new ChannelNodeClient(
  boot.nodeId,
  channel,
  !inProcess,
  (error) => writeOut(2, Buffer.from(`miniray worker ${boot.workerId.slice(0, 8)}: ${error.message}\n`)),
  boot.gcsReconnectTimeoutMs,
  boot.answers === undefined ? undefined : new Int32Array(boot.answers),
  boot.objectStoreBytes,
);
output.connect((lines) => channel.send({ type: 'logs', lines }));
const executor = new TaskExecutor(channel, progressCell(), client, output);
const coreWorker = new CoreWorker({ nodeId: boot.nodeId, workerId: boot.workerId }, client, executor);
executor.coreWorker = coreWorker;
// env: what its tasks run in and their children inherit; the job, for getRuntimeContext().
coreWorker.runtimeEnv = boot.runtimeEnv;
executor.jobIdHex = boot.jobId ?? '';
executor.namespaceName = coreWorker.namespace = boot.namespace ?? '';
setCurrentRuntime({ kind: 'worker', coreWorker, work: executor });

channel.onMessage((message, attached) => {
  switch (message.type) {
    case 'execute':
      if (message.jobId !== undefined) executor.jobIdHex = message.jobId;
      if (message.namespace !== undefined) executor.namespaceName = coreWorker.namespace = message.namespace;
      executor.enqueue(message.functions, message.tasks, attached);
      return;
    case 'reply':
    case 'response':
      client.receive(message);
      return;
    case 'cancel':
      executor.cancel(message.seqs);
      return;
    case 'destroyActor':
      executor.destroyActor(message.actorId, message.seq);
      return;
    // generators
    case 'generatorAck':
      generatorAck(message.seq, message.consumed);
      return;
    case 'slabs':
      client.addSlabs(message.slabs, attached);
      return;
    case 'dropSlabs':
      client.dropSlabs(message.indices);
      return;
    case 'collect':
      collectGarbage();
      return;
  }
});

// `process.exit()` in a task ends this thread only; send what is finished first, so that results
// of tasks that completed before it are not lost.
const exit = process.exit.bind(process);
process.exit = ((code?: number) => {
  output.end();
  executor.sendResults();
  channel.flush();
  exit(code);
}) as typeof process.exit;

// A promise rejected with nobody awaiting it would end the thread (Node's default), taking a task or
// an actor's state with it; as Ray's workers do, report it and carry on.
process.on('unhandledRejection', (reason) => {
  console.error('miniray worker: a promise was rejected and nothing awaited it (ignored):', reason);
});

channel.send({ type: 'ready' });

function progressCell(): ProgressCell {
  if (!inProcess) {
    const cell = new Int32Array(boot.progress);
    return (seq) => Atomics.store(cell, 0, seq);
  }
  const cell = new Int32Array(1);
  const bytes = new Uint8Array(cell.buffer);
  return (seq) => {
    cell[0] = seq;
    writeSync(PROCESS_PROGRESS_FD, bytes, 0, 4, 0);
  };
}
