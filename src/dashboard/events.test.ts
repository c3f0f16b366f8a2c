import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { FakeStateSource } from './fake-state.js';
import { SLOW_EVERY, StatePoller, summaryOf, type Client } from './events.js';
import { startDashboard } from './index.js';
import type { SnapshotEvent } from './snapshot.js';

const HEX = (n: number) => n.toString(16).padStart(32, '0');
const TOKEN = 'c'.repeat(64);

async function waitFor<T>(what: string, check: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/** A client's response as the poller sees it: what was written, parsed into events. */
class FakeClient extends EventEmitter {
  writableLength = 0;
  text = '';
  ended = false;
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
  end(): this {
    this.ended = true;
    return this;
  }
  destroy(): this {
    this.emit('close');
    return this;
  }
  events(): { event: string; data: SnapshotEvent }[] {
    return this.text
      .split('\n\n')
      .filter((block) => block.startsWith('event: '))
      .map((block) => {
        const [eventLine = '', dataLine = ''] = block.split('\n');
        return { event: eventLine.slice('event: '.length), data: JSON.parse(dataLine.slice('data: '.length)) as SnapshotEvent };
      });
  }
}

const asClient = (client: FakeClient) => client as unknown as Client;

function task(n: number, state: 'RUNNING' | 'FINISHED') {
  return { taskId: HEX(n), attempt: 0, name: 'f', type: 'NORMAL_TASK' as const, state, ownerNodeId: HEX(1), requiredResources: {}, creationTimeMs: n };
}

describe('dashboard: /api/events', () => {
  test("a poll counts tasks from the GCS's task metrics, never from every task's record, and lists objects only every few polls", async () => {
    const state = new FakeStateSource();
    state.metrics = { byState: { f: { RUNNING: 2, FINISHED: 3 }, 'A.constructor': { FINISHED: 1 }, 'A.go': { FAILED: 1 } }, runTime: {}, droppedEvents: 0 };
    let summarized = 0;
    state.summarizeTasks = async () => {
      summarized++;
      throw new Error('summarizeTasks reads every task: the poller must not call it');
    };
    const poller = new StatePoller(state, 1);
    const client = new FakeClient();
    poller.add(asClient(client));
    await waitFor('many polls', () => poller.polls >= 2 * SLOW_EVERY + 1);
    poller.close();
    assert.equal(summarized, 0);
    const snapshot = client.events()[0]?.data;
    assert.deepEqual(snapshot?.sections.taskSummary, {
      byName: { f: { type: 'NORMAL_TASK', states: { RUNNING: 2, FINISHED: 3 } }, 'A.constructor': { type: 'ACTOR_CREATION_TASK', states: { FINISHED: 1 } }, 'A.go': { type: 'ACTOR_TASK', states: { FAILED: 1 } } },
      total: 7,
    });
    assert.deepEqual(snapshot?.counts, { RUNNING: 2, FINISHED: 4, FAILED: 1 });
    const objectLists = state.listCalls['objects'] ?? 0;
    assert.ok(objectLists >= 1 && objectLists <= Math.ceil(poller.polls / SLOW_EVERY) + 1, `objects listed ${objectLists} times in ${poller.polls} polls`);
  });

  test('summaryOf counts a function named __proto__', () => {
    const summary = summaryOf({ byState: JSON.parse('{"__proto__":{"RUNNING":1}}'), runTime: {}, droppedEvents: 0 });
    assert.equal(summary.total, 1);
    assert.deepEqual(Object.keys(summary.byName), ['__proto__']);
  });

  test('polls only while a client listens; a snapshot first, then only what changed', async () => {
    const state = new FakeStateSource();
    state.tables.nodes.push({ nodeId: HEX(1), state: 'ALIVE', address: 'a:1', isHead: true, isDriver: false, resourcesTotal: {}, resourcesAvailable: {} });
    const poller = new StatePoller(state, 20);
    assert.ok(poller.idle, 'no client, no polling');
    assert.equal(state.listCalls['nodes'], undefined);

    const first = new FakeClient();
    poller.add(asClient(first));
    const snapshot = await waitFor('a snapshot', () => first.events()[0]);
    assert.equal(snapshot.event, 'snapshot');
    assert.equal(snapshot.data.sections.nodes?.total, 1);
    assert.deepEqual(snapshot.data.sections.activeTasks?.records, []);

    state.tables.tasks.push(task(10, 'RUNNING'));
    const changed = await waitFor('an update with the new task', () =>
      first.events().find((e) => e.event === 'update' && e.data.sections.activeTasks?.records.length === 1),
    );
    assert.equal(changed.data.sections.nodes, undefined, 'unchanged sections are not sent again');
    // Updates keep coming while nothing changes: the chart's points.
    const before = first.events().length;
    await waitFor('more updates', () => first.events().length >= before + 2);

    // A second client gets the latest whole snapshot at once.
    const second = new FakeClient();
    poller.add(asClient(second));
    assert.equal(second.events()[0]?.event, 'snapshot');
    assert.equal(second.events()[0]?.data.sections.activeTasks?.records.length, 1);
    assert.equal(second.events()[0]?.data.sections.nodes?.total, 1);

    first.emit('close');
    second.emit('close');
    assert.equal(poller.clientCount, 0);
    await waitFor('the poller to stop', () => poller.idle);
    const calls = state.listCalls['nodes'];
    const polls = poller.polls;
    // Idle means no timer and no poll in flight: nothing can read the source until a client comes.
    assert.ok(poller.idle);
    assert.equal(state.listCalls['nodes'], calls);

    const third = new FakeClient();
    poller.add(asClient(third));
    await waitFor('polling again for a new client', () => poller.polls > polls);
    poller.close();
    assert.ok(third.ended, 'close() ends the streams');
    assert.ok(poller.idle);
  });

  test('a failing section is reported, the others still arrive', async () => {
    const state = new FakeStateSource();
    const poller = new StatePoller(state, 20);
    const original = state.nodeStats.bind(state);
    state.nodeStats = async () => {
      throw new Error('node 1 did not answer');
    };
    const client = new FakeClient();
    poller.add(asClient(client));
    const snapshot = await waitFor('a snapshot', () => client.events()[0]);
    assert.equal(snapshot.data.errors.nodeStats, 'node 1 did not answer');
    assert.ok(snapshot.data.sections.nodes !== undefined);
    state.nodeStats = original;
    poller.close();
  });

  test('a client that does not read is dropped, not buffered for ever', async () => {
    const poller = new StatePoller(new FakeStateSource(), 20);
    const slow = new FakeClient();
    poller.add(asClient(slow));
    await waitFor('a snapshot', () => slow.events()[0]);
    slow.writableLength = 64 << 20;
    await waitFor('the slow client dropped', () => poller.clientCount === 0);
    await waitFor('the poller to stop', () => poller.idle);
    poller.close();
  });

  test('over HTTP: text/event-stream behind the token, a snapshot then updates as work arrives', async () => {
    const state = new FakeStateSource();
    const dashboard = await startDashboard({ port: 0, token: TOKEN, state, pollMs: 25 });
    try {
      assert.equal((await fetch(`${dashboard.url}/api/events`)).status, 401);
      const abort = new AbortController();
      const reply = await fetch(`${dashboard.url}/api/events`, { headers: { cookie: `miniray_token=${TOKEN}` }, signal: abort.signal });
      assert.equal(reply.status, 200);
      assert.match(String(reply.headers.get('content-type')), /^text\/event-stream/);
      const reader = (reply.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let text = '';
      const until = async (pattern: RegExp) => {
        const deadline = Date.now() + 20_000;
        while (!pattern.test(text)) {
          if (Date.now() > deadline) throw new Error(`no ${pattern} in ${text.slice(-500)}`);
          const { value, done } = await reader.read();
          if (done) throw new Error('the stream ended');
          text += decoder.decode(value, { stream: true });
        }
      };
      await until(/event: snapshot\n/);
      state.tables.tasks.push(task(11, 'RUNNING'));
      await until(new RegExp(`event: update\\ndata: [^\\n]*${HEX(11)}`));
      abort.abort();
    } finally {
      await dashboard.close();
    }
  });
});
