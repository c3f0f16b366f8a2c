// The node's handling of what workers say: only checks that find a problem in a message blame the
// worker; an exception thrown by the node's own handling is its own bug.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WorkerToNode } from '../protocol/index.js';
import { Node } from './index.js';

/** The private parts the test reaches into. */
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
    const internals = node as unknown as NodeInternals;
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
