/**
 * How a worker runs a task (or actor call) whose values come back as ExecuteTask.returns says:
 * generators, and numReturns 0. The executor hands over what the function returned; this drives
 * the generator to its end and reports the outcome through the executor's own succeed/fail, so a
 * generator task ends as any task does (one result per seq).
 *
 *  - 'streaming': each yielded value is encoded and sent at once as a `generatorItem` (the channel
 *    is flushed, so a value yielded before a long computation is not held behind it); the result is
 *    the number of values. With backpressure, the generator is not resumed while that many values
 *    are unread; the node's `generatorAck` says how many the caller has read.
 *  - 'dynamic': each value is put as its own object as it comes; the result is the array of refs.
 *    A throw ends the array with a ref to the error, unless it is to be retried (as Ray's).
 *  - 'static': the values are gathered, and there must be exactly `count` of them.
 *
 * A sync generator runs without a turn of the event loop between values (no promise per value)
 * unless backpressure makes it wait.
 */
import type { CoreWorker } from '../core-worker/index.js';
import type { ObjectRef } from '../object-ref/index.js';
import type { ExecuteTask, NodeToWorker, ReturnMode, WorkerToNode } from '../protocol/index.js';
import type { Channel } from '../transport/index.js';

/** What the driver needs of the executor. */
export interface GeneratorHost {
  readonly coreWorker: CoreWorker;
  readonly channel: Channel<WorkerToNode, NodeToWorker>;
  /** Reports the task's values (as its function had returned `value`). */
  succeed(task: ExecuteTask, value: unknown): void;
  /** Reports the task's failure (`userError`: thrown by its code). */
  fail(task: ExecuteTask, error: unknown, userError: boolean): void;
  /**
   * 'dynamic': what the generator threw, stored as a failed object (the last of its values, as
   * Ray's); undefined when the throw is to be retried, so the attempt fails instead.
   */
  keepThrown(task: ExecuteTask, error: unknown): ObjectRef | undefined;
}

interface Stepper {
  next(): IteratorResult<unknown> | Promise<IteratorResult<unknown>>;
  return?(value?: unknown): unknown;
}

/** Backpressure waits of running streaming tasks, by seq (there are few: only generator tasks). */
const acks = new Map<number, { consumed: number; wake: (() => void) | undefined }>();

/** The node says the caller has read `consumed` items of the streaming task `seq`. */
export function generatorAck(seq: number, consumed: number): void {
  const waiting = acks.get(seq);
  if (waiting === undefined || consumed <= waiting.consumed) return;
  waiting.consumed = consumed;
  const wake = waiting.wake;
  waiting.wake = undefined;
  wake?.();
}

function isGenerator(value: unknown): value is Stepper {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as Partial<Record<PropertyKey, unknown>>;
  return typeof candidate['next'] === 'function' && (typeof candidate[Symbol.iterator] === 'function' || typeof candidate[Symbol.asyncIterator] === 'function');
}

/**
 * Runs what the task's function returned (`result`, awaited already if it was a promise) as its
 * return mode says, then reports. `done` runs after the report, in every case.
 */
export function driveReturns(host: GeneratorHost, task: ExecuteTask, mode: ReturnMode, result: unknown, done: () => void): void {
  if (!isGenerator(result)) {
    if (mode.kind === 'static' && mode.count === 0) host.succeed(task, undefined); // numReturns 0: the value is not kept
    else if (mode.kind === 'static') host.succeed(task, result); // a plain function with numReturns n
    else {
      const what = mode.kind === 'streaming' ? "'streaming'" : "'dynamic'";
      host.fail(
        task,
        new TypeError(`${task.name} has numReturns: ${what}, which is for generator functions, and it returned ${describe(result)}; yield its values, or leave numReturns out`),
        false,
      );
    }
    done();
    return;
  }
  run(host, task, mode, result).then(done, (error: unknown) => {
    host.fail(task, error, false);
    done();
  });
}

async function run(host: GeneratorHost, task: ExecuteTask, mode: ReturnMode, gen: Stepper): Promise<void> {
  const values: unknown[] = [];
  let index = 0;
  const backpressure = mode.kind === 'streaming' ? mode.backpressure : undefined;
  const window = backpressure === undefined ? undefined : { consumed: 0, wake: undefined as (() => void) | undefined };
  if (window !== undefined) acks.set(task.seq, window);
  try {
    for (;;) {
      let step: IteratorResult<unknown>;
      try {
        const next = gen.next();
        step = next instanceof Promise ? await next : next;
      } catch (error) {
        // 'dynamic': the values yielded so far are kept, and a last ref throws the error (as Ray's).
        const thrown = mode.kind === 'dynamic' ? host.keepThrown(task, error) : undefined;
        if (thrown === undefined) {
          host.fail(task, error, true);
          return;
        }
        values.push(thrown);
        break;
      }
      if (step.done === true) break;
      const value = step.value;
      if (mode.kind === 'streaming') {
        if (!sendItem(host, task, index, value, gen)) return;
        index++;
        while (window !== undefined && index - window.consumed >= (backpressure as number)) {
          await new Promise<void>((resolve) => (window.wake = resolve));
        }
      } else if (mode.kind === 'dynamic') {
        try {
          values.push(host.coreWorker.put(value));
        } catch (error) {
          closeQuietly(gen);
          host.fail(task, error, false);
          return;
        }
      } else values.push(value);
    }
  } finally {
    if (window !== undefined) acks.delete(task.seq);
  }
  if (mode.kind === 'streaming') host.succeed(task, index);
  else if (mode.kind === 'dynamic') host.succeed(task, values);
  else if (values.length !== mode.count) {
    host.fail(
      task,
      new TypeError(`${task.name} has numReturns: ${mode.count} and must yield exactly that many values; it yielded ${values.length}`),
      false,
    );
  } else host.succeed(task, mode.count === 0 ? undefined : mode.count === 1 ? values[0] : values);
}

/** Encodes and sends item `index`; false (having failed the task) when it cannot be encoded. */
function sendItem(host: GeneratorHost, task: ExecuteTask, index: number, value: unknown, gen: Stepper): boolean {
  let object: ReturnType<CoreWorker['encodeObject']>;
  try {
    object = host.coreWorker.encodeObject('', value, `value ${index + 1} yielded by ${task.name}`);
  } catch (error) {
    closeQuietly(gen);
    host.fail(task, error, false);
    return false;
  }
  // Refs this thread began to hold go first (as before results), so the node knows of them.
  host.coreWorker.flushRefs();
  const message: { -readonly [K in keyof Extract<WorkerToNode, { type: 'generatorItem' }>]: Extract<WorkerToNode, { type: 'generatorItem' }>[K] } = {
    type: 'generatorItem',
    seq: task.seq,
    index,
    value: object.data,
  };
  if (object.parts !== undefined) message.parts = object.parts;
  if (object.nested !== undefined) message.nested = object.nested;
  host.channel.send(message);
  host.channel.flush();
  return true;
}

function closeQuietly(gen: Stepper): void {
  try {
    const closing = gen.return?.();
    if (closing instanceof Promise) closing.catch(() => {});
  } catch {
    // its finally block threw: the task fails with the first error anyway
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`;
}
