// The request layer between a worker and its node, as a task sees it: a request of a method the
// node does not answer (a newer asker's) gets an error response and the worker carries on, where a
// malformed envelope ends it (test/integration/malformed-messages.test.ts).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { pack } from 'msgpackr';
import { get, init, shutdown } from 'miniray';
import { postThenLookUp } from '../fixtures/malformed.js';

const LIMIT_MS = 60_000;

before(async () => {
  await init({ numCpus: 1 });
});
after(async () => {
  await shutdown();
});

test('a task whose worker asks a method the node does not answer goes on: the node answers with an error, and the next request is served', async () => {
  const original = console.error;
  const logged: string[] = [];
  console.error = (...args: unknown[]) => void logged.push(args.map(String).join(' '));
  try {
    const frame = new Uint8Array(pack([{ type: 'request', id: 2 ** 30, method: 'drainNode', deadline: 5 }]));
    // maxRetries 0: had the node ended the worker, the task would fail with WorkerCrashedError.
    const result = await get(postThenLookUp.options({ maxRetries: 0 }).remote({ kind: 'value', value: frame }), { timeoutMs: LIMIT_MS });
    assert.equal(result, 'ActorNotFoundError', 'the lookup after it was answered');
    assert.deepEqual(logged.filter((line) => line.includes('malformed')), [], 'not handled as a malformed message');
  } finally {
    console.error = original;
  }
});
