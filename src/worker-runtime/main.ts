/**
 * Entry of a worker thread. Loads the driver's preload hooks (e.g. tsx), sets up this thread's
 * CoreWorker, tells the node it is ready, then runs tasks as they arrive.
 */
import { parentPort, workerData } from 'node:worker_threads';
// Register the serializer extensions for actor handles and queues, which arrive inside arguments.
import '../actors/handle.js';
import '../util/queue.js';
import { ChannelNodeClient, CoreWorker, collectGarbage } from '../core-worker/index.js';
import { setCurrentRuntime } from '../core-worker/current.js';
import type { NodeToWorker, WorkerBootData, WorkerToNode } from '../protocol/index.js';
import { PortChannel, processPort } from '../transport/index.js';
import { TaskExecutor } from './executor.js';
import { writeStdioDirectly } from './stdio.js';

// A worker thread gets its boot data as workerData; a worker process ('process' isolation) in
// MINIRAY_WORKER_BOOT, and talks over its IPC channel. A process has no shared progress cell: its
// calls are accounted for by the node without one.
const inProcess = parentPort === null;
if (inProcess && (process.send === undefined || process.env['MINIRAY_WORKER_BOOT'] === undefined)) {
  throw new Error('the miniray worker runtime runs only as a worker thread or process started by miniray');
}
const boot: WorkerBootData = inProcess
  ? { ...(JSON.parse(process.env['MINIRAY_WORKER_BOOT'] as string) as WorkerBootData), progress: new SharedArrayBuffer(4) }
  : (workerData as WorkerBootData);
if (inProcess) {
  // The driver went away: nothing can reach this process any more.
  process.on('disconnect', () => process.exit(0));
}
// Task output must not be lost at exit nor overtaken by the task's result (see stdio.ts).
writeStdioDirectly();

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
);
const client = new ChannelNodeClient(boot.nodeId, channel, !inProcess);
const executor = new TaskExecutor(channel, new Int32Array(boot.progress), client);
const coreWorker = new CoreWorker({ nodeId: boot.nodeId, workerId: boot.workerId }, client, executor);
executor.coreWorker = coreWorker;
setCurrentRuntime({ kind: 'worker', coreWorker });

channel.onMessage((message, attached) => {
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
    case 'destroyActor':
      executor.destroyActor(message.actorId);
      return;
    case 'actorInfo':
      client.deliverActorInfo(message.requestId, message.info);
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
