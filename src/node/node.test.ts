// The node's handling of what workers say: only checks that find a problem in a message blame the
// worker; an exception thrown by the node's own handling is its own bug.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TaskSpec, WorkerToNode } from '../protocol/index.js';
import type { ClusterLink } from './cluster-link.js';
import { Node } from './index.js';

/** The private parts the test reaches into (the node's worker-messages part). */
interface NodeInternals {
  handleWorkerMessage: (worker: unknown, message: WorkerToNode, attached: readonly SharedArrayBuffer[]) => string | undefined;
  onWorkerMessage: (worker: unknown, message: WorkerToNode, attached: readonly SharedArrayBuffer[]) => void;
}

test("an exception in the node's handling of a message is logged once as an internal error, with its stack; the worker is not blamed", async (t) => {
  // No worker threads (they start from the built files): a stand-in worker says when it is blamed.
  const node = new Node({ numWorkers: 0, numCpus: 1, resources: {}, objectStoreMemory: 16 << 20, workerResourceLimits: undefined, spillDirectory: undefined });
  try {
    let blamed = '';
    const worker = {
      id: 'ab'.repeat(16),
      role: 'task',
      alive: true,
      accepting: true,
      exitError: undefined as Error | undefined,
      channel: { close: () => (blamed += 'closed ') },
      host: { terminate: () => ((blamed += 'terminated '), Promise.resolve(0)) },
    };
    const internals = (node as unknown as { workerMessages: NodeInternals }).workerMessages;
    const logged: string[] = [];
    t.mock.method(console, 'error', (...args: unknown[]) => logged.push(args.map(String).join(' ')));
    internals.handleWorkerMessage = () => {
      throw new Error('a bug of the node');
    };
    internals.onWorkerMessage(worker, { type: 'ready' }, []);
    internals.onWorkerMessage(worker, { type: 'ready' }, []);
    assert.equal(logged.length, 1, logged.join('\n'));
    assert.match(logged[0] as string, /^miniray: internal error while handling a 'ready' message of worker abababab \(a bug in miniray/);
    assert.match(logged[0] as string, /Error: a bug of the node\n\s+at /);
    assert.doesNotMatch(logged[0] as string, /malformed/);
    assert.equal(blamed, '');
    assert.equal(worker.exitError, undefined);
    assert.equal(worker.accepting, true);
  } finally {
    await node.shutdown();
  }
});

test('queued tasks, as the node says them and as its stats (state API, status, dashboard) do: those waiting for resources, for a worker, or for a worker of their runtimeEnv', async () => {
  // No workers start (numWorkers 0, and so no env workers either): submitted tasks stay where they wait.
  const node = new Node({ numWorkers: 0, numCpus: 1, resources: {}, objectStoreMemory: 16 << 20, workerResourceLimits: undefined, spillDirectory: undefined });
  try {
    let id = 0x100;
    const newId = (): string => (id++).toString(16).padStart(32, '0');
    const task = (numCpus: number, runtimeEnv?: { envVars: Record<string, string> }): TaskSpec =>
      ({
        taskId: newId(),
        name: 'queued',
        functionId: 'f'.repeat(16),
        args: new Uint8Array(0),
        refArgPositions: [],
        returnIds: [newId()],
        dependencies: [],
        owner: { nodeId: node.nodeId, workerId: 'e'.repeat(32) },
        numCpus,
        maxRetries: 0,
        retryExceptions: false,
        ...(runtimeEnv === undefined ? {} : { runtimeEnv }),
      }) as unknown as TaskSpec;
    // The first holds the CPU and waits for a worker; the second waits for the CPU; the third, of
    // its own environment, waits for a worker of it.
    node.submit([], [task(1), task(1), task(0, { envVars: { OWN: '1' } })]);
    assert.equal(node.queuedTasks, 3);
    assert.equal(node.stats().queuedTasks, 3);
  } finally {
    await node.shutdown();
  }
});

test("a generator's item sent to its owner's node goes inline up to the cluster-wide maxInlineObjectBytes, as returns do", async () => {
  const saved = process.env['MINIRAY_MAX_INLINE_OBJECT_BYTES'];
  process.env['MINIRAY_MAX_INLINE_OBJECT_BYTES'] = '16';
  let node: Node;
  try {
    node = new Node({ numWorkers: 0, numCpus: 1, resources: {}, objectStoreMemory: 16 << 20, workerResourceLimits: undefined, spillDirectory: undefined });
  } finally {
    if (saved === undefined) delete process.env['MINIRAY_MAX_INLINE_OBJECT_BYTES'];
    else process.env['MINIRAY_MAX_INLINE_OBJECT_BYTES'] = saved;
  }
  try {
    // The owner is on another node: the fake cluster link records what goes to it.
    const sent: Array<{ index: number; state: string }> = [];
    node.attachCluster({
      generatorItem: (_spec: TaskSpec, index: number, value: { state: string }) => void sent.push({ index, state: value.state }),
      freed: () => {},
    } as unknown as ClusterLink);
    const spec = {
      taskId: '1'.repeat(32),
      name: 'items',
      returnIds: ['2'.repeat(32)],
      returns: { kind: 'streaming' },
      owner: { nodeId: 'f'.repeat(32), workerId: 'e'.repeat(32) },
    } as unknown as TaskSpec;
    const worker = { id: 'ab'.repeat(16), role: 'task', alive: true, nextSeq: 2, inFlight: new Map([[1, { spec }]]), channel: { send: () => {} } };
    const internals = (node as unknown as { workerMessages: { onGeneratorItem: (worker: unknown, message: WorkerToNode, attached: readonly SharedArrayBuffer[]) => string | undefined } }).workerMessages;
    // The items as the worker serializes them: 8 bytes fits the 16 the setting allows, 64 does not.
    assert.equal(internals.onGeneratorItem(worker, { type: 'generatorItem', seq: 1, index: 0, value: new Uint8Array(8) }, []), undefined);
    assert.equal(internals.onGeneratorItem(worker, { type: 'generatorItem', seq: 1, index: 1, value: new Uint8Array(64) }, []), undefined);
    assert.deepEqual(sent, [
      { index: 0, state: 'ready' },
      { index: 1, state: 'located' },
    ]);
  } finally {
    await node.shutdown();
  }
});
