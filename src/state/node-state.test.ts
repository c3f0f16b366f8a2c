import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtocolError } from '../errors/index.js';
import type { Node } from '../node/index.js';
import { LogRing } from './log-lines.js';
import { answerNodeState } from './node-state.js';
import type { LogQuery } from './types.js';

const NODE = 'a'.repeat(32);

/** A node as answerNodeState reads it for 'logs': only its ring. */
function nodeWith(ring: LogRing): Node {
  return { logLines: (query: LogQuery) => ({ lines: ring.query(query), lastSeq: ring.lastSeq }) } as unknown as Node;
}

test("'logs': the node checks the query as the asker does (tail 0 is fine), and answers its lines with its latest seq", () => {
  const ring = new LogRing(NODE, 1 << 20);
  ring.add({ stream: 'stdout', timeMs: 1, workerId: 'e'.repeat(32), name: 'f', text: 'one' });
  ring.add({ stream: 'stdout', timeMs: 2, workerId: 'e'.repeat(32), name: 'f', text: 'two' });
  const node = nodeWith(ring);
  assert.deepEqual(answerNodeState(node, { what: 'logs', body: { tail: 0 } }), { lines: [], lastSeq: 2 });
  const all = answerNodeState(node, { what: 'logs' }) as { lines: { text: string }[]; lastSeq: number };
  assert.deepEqual(all.lines.map((l) => l.text), ['one', 'two']);
  assert.throws(() => answerNodeState(node, { what: 'logs', body: { actorId: 'nope' } }), (error: unknown) => {
    assert.ok(error instanceof ProtocolError);
    assert.match(error.message, /'actorId' must be an ID of 32 lowercase hex characters, not 'nope'/);
    return true;
  });
});
