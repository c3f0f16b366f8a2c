/**
 * Entry of a worker thread. Loads the driver's preload hooks (e.g. tsx), sets up this thread's
 * CoreWorker, tells the node it is ready, then runs tasks as they arrive.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ChannelNodeClient, CoreWorker } from '../core-worker/index.js';
import { setCurrentRuntime } from '../core-worker/current.js';
import type { NodeToWorker, WorkerBootData, WorkerToNode } from '../protocol/index.js';
import { PortChannel } from '../transport/index.js';
import { TaskExecutor } from './executor.js';

const boot = workerData as WorkerBootData;
if (parentPort === null) throw new Error('miniray worker runtime must run in a worker thread');

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

const channel = new PortChannel<WorkerToNode, NodeToWorker>(parentPort);
const client = new ChannelNodeClient(boot.nodeId, channel);
const executor = new TaskExecutor(channel, new Int32Array(boot.progress), client);
const coreWorker = new CoreWorker({ nodeId: boot.nodeId, workerId: boot.workerId }, client, executor);
setCurrentRuntime({ kind: 'worker', coreWorker });

channel.onMessage((message) => {
  switch (message.type) {
    case 'execute':
      executor.enqueue(message.functions, message.tasks);
      return;
    case 'objects':
      client.deliver(message.requestId, message.objects);
      return;
    case 'cancel':
      executor.cancel(message.seqs);
      return;
  }
});

// `process.exit()` in a task ends this thread only; flush first so finished results are not lost.
const exit = process.exit.bind(process);
process.exit = ((code?: number) => {
  channel.flush();
  exit(code);
}) as typeof process.exit;

channel.send({ type: 'ready' });
