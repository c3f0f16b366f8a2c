import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionError, MinirayError, ProtocolError, RequestCancelledError, RequestTimeoutError, toErrorRecord } from '../errors/index.js';
import { fail, str } from '../protocol/check.js';
import { parseNodeToWorker, type RequestAnswer } from '../protocol/index.js';
import { PendingRequest, RequestTable } from './requests.js';

interface Answers {
  readonly [method: string]: unknown;
  readonly echo: string;
  readonly stream: string;
}

/** Records what the table does with one request. */
class Recorder extends PendingRequest<string> {
  readonly answers: [string, boolean][] = [];
  readonly errors: MinirayError[] = [];
  readonly drops: string[] = [];
  answer(value: string, done: boolean): void {
    this.answers.push([value, done]);
  }
  fail(error: MinirayError): void {
    this.errors.push(error);
  }
  override dropped(value: string): void {
    this.drops.push(value);
  }
}

const aString = (value: unknown): string => (typeof value === 'string' ? value : fail('', 'a string', value));

function table() {
  const cancels: number[] = [];
  const reports: ProtocolError[] = [];
  const requests = new RequestTable<Answers>({
    sendCancel: (id) => cancels.push(id),
    checks: { echo: aString, stream: (value) => str(value, '') },
    report: (error) => reports.push(error),
    peer: 'the node',
  });
  return { requests, cancels, reports };
}

const response = (id: number, value: unknown): RequestAnswer => ({ type: 'response', id, ok: true, value });
const reply = (id: number, value: unknown): RequestAnswer => ({ type: 'reply', id, value });

test('ids are distinct and from 1; a response ends its request', () => {
  const { requests } = table();
  const a = new Recorder();
  const b = new Recorder();
  const idA = requests.open('echo', a);
  const idB = requests.open('echo', b);
  assert.equal(idA, 1);
  assert.equal(idB, 2);
  assert.equal(requests.size, 2);
  requests.receive(response(idB, 'B'));
  requests.receive(response(idA, 'A'));
  assert.deepEqual(a.answers, [['A', true]]);
  assert.deepEqual(b.answers, [['B', true]]);
  assert.equal(requests.size, 0);
});

test('a stream: replies with the same id until its response', () => {
  const { requests, reports } = table();
  const r = new Recorder();
  const id = requests.open('stream', r);
  requests.receive(reply(id, 'x'));
  requests.receive(reply(id, 'y'));
  assert.equal(requests.size, 1);
  requests.receive(response(id, 'z'));
  assert.deepEqual(r.answers, [['x', false], ['y', false], ['z', true]]);
  assert.equal(requests.size, 0);
  assert.equal(reports.length, 0);
});

test('an error response fails the request with the same typed error', () => {
  const { requests } = table();
  const r = new Recorder();
  const id = requests.open('echo', r);
  requests.receive({ type: 'response', id, ok: false, error: toErrorRecord(new RequestCancelledError('no')) });
  assert.equal(r.errors.length, 1);
  assert.ok(r.errors[0] instanceof RequestCancelledError);
  assert.equal(requests.size, 0);
});

test('cancel: the other side is told once; answers still coming are dropped until the response ends it', () => {
  const { requests, cancels, reports } = table();
  const r = new Recorder();
  const id = requests.open('stream', r);
  requests.receive(reply(id, 'a'));
  requests.cancel(id);
  requests.cancel(id);
  assert.deepEqual(cancels, [id]);
  requests.receive(reply(id, 'late'));
  requests.receive({ type: 'response', id, ok: false, error: toErrorRecord(new RequestCancelledError('cancelled')) });
  assert.deepEqual(r.answers, [['a', false]]);
  assert.deepEqual(r.drops, ['late']);
  assert.equal(r.errors.length, 0, 'the caller stopped waiting: it is not told again');
  assert.equal(requests.size, 0);
  assert.equal(reports.length, 0, 'answers to a cancelled request are not protocol errors');
  requests.cancel(id); // after its end: a no-op
  assert.deepEqual(cancels, [id]);
});

test('a cancelled request answered in full anyway (the cancel crossed its response) ends quietly', () => {
  const { requests, reports } = table();
  const r = new Recorder();
  const id = requests.open('echo', r);
  requests.cancel(id);
  requests.receive(response(id, 'done'));
  assert.deepEqual(r.drops, ['done']);
  assert.equal(requests.size, 0);
  assert.equal(reports.length, 0);
});

test('a timeout fails the request with a RequestTimeoutError and cancels it; no timer without one', async () => {
  const { requests, cancels } = table();
  const r = new Recorder();
  const id = requests.open('echo', r, 5);
  const untimed = new Recorder();
  requests.open('echo', untimed);
  assert.equal(untimed.timer, undefined, 'no timer unless a timeout was asked for');
  for (let i = 0; i < 400 && r.errors.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(r.errors.length, 1);
  assert.ok(r.errors[0] instanceof RequestTimeoutError);
  assert.match(r.errors[0].message, /'echo' to the node got no answer within 5 ms/);
  assert.deepEqual(cancels, [id]);
  requests.receive(response(id, 'late'));
  assert.deepEqual(r.answers, []);
  assert.deepEqual(r.drops, ['late']);
});

test('a response in time clears its timer', async () => {
  const { requests, cancels } = table();
  const r = new Recorder();
  const id = requests.open('echo', r, 20);
  requests.receive(response(id, 'ok'));
  await new Promise((resolve) => setTimeout(resolve, 40));
  assert.deepEqual(r.answers, [['ok', true]]);
  assert.equal(r.errors.length, 0);
  assert.deepEqual(cancels, []);
});

test('answers to an unknown id are a protocol error, reported once, and nothing breaks', () => {
  const { requests, reports } = table();
  const r = new Recorder();
  const id = requests.open('echo', r);
  requests.receive(response(99, 'x'));
  requests.receive(reply(100, 'y'));
  requests.receive(response(id, 'ok'));
  requests.receive(response(id, 'again')); // after its end
  assert.equal(reports.length, 1);
  assert.ok(reports[0] instanceof ProtocolError);
  assert.match(reports[0].message, /the node sent a response to request 99, which was never sent; it is ignored/);
  assert.equal(requests.problems, 3);
  assert.deepEqual(r.answers, [['ok', true]], 'the request in between was answered as usual');
});

test('a malformed value fails its request with the ProtocolError, and is reported', () => {
  const { requests, reports } = table();
  const r = new Recorder();
  const id = requests.open('stream', r);
  requests.receive(reply(id, 5));
  assert.equal(r.errors.length, 1);
  assert.ok(r.errors[0] instanceof ProtocolError);
  assert.match(r.errors[0].message, /an answer to 'stream' from the node is malformed: it must be a string, got number 5/);
  assert.equal(reports.length, 1);
  assert.equal(requests.size, 0, 'nothing more of it is trusted');
});

test('close: waiting requests fail with a ConnectionError, cancelled ones quietly, later ones at once', () => {
  const { requests } = table();
  const a = new Recorder();
  const b = new Recorder();
  requests.open('echo', a, 10_000);
  const idB = requests.open('echo', b);
  requests.cancel(idB);
  requests.close('the worker is exiting');
  assert.equal(a.errors.length, 1);
  assert.ok(a.errors[0] instanceof ConnectionError);
  assert.match(a.errors[0].message, /'echo' to the node failed: the channel closed \(the worker is exiting\)/);
  assert.equal(b.errors.length, 0);
  assert.equal(requests.size, 0);
  const c = new Recorder();
  requests.open('stream', c);
  assert.ok(c.errors[0] instanceof ConnectionError);
  requests.receive(response(1, 'late')); // ignored: closed
  assert.deepEqual(a.answers, []);
});

test("the worker channel's validator checks the envelope of answers", () => {
  for (const bad of [{ type: 'reply', id: -1, value: 1 }, { type: 'response', id: 1, ok: 'yes', value: 1 }, { type: 'response', id: 2, ok: false, error: 7 }]) {
    assert.ok(parseNodeToWorker(bad) instanceof ProtocolError, JSON.stringify(bad));
  }
});
