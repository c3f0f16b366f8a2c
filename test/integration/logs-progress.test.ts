// progress(refs) (issue 12): the values in the order of the refs, plain lines where the output is
// not a terminal, a bar on one (cli-progress), and a failing ref rejects with its TaskError once
// the bar has stopped.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { InvalidArgumentError, InvalidOptionError, TaskError, init, progress, remote, shutdown } from 'miniray';

/** A stream that keeps what is written to it. */
function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 100, write: (text: string) => writes.push(text) } };
}

describe('progress()', () => {
  before(async () => {
    await init({ numWorkers: 2 });
  });
  after(async () => {
    await shutdown();
  });

  // Later refs finish first: the values still come in the order of the refs.
  const square = remote(async (x: number, delayMs: number) => {
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    return x * x;
  });

  test('not a terminal: plain lines as refs complete, the values in order', async () => {
    const { writes, stream } = sink(false);
    const refs = [0, 1, 2, 3, 4].map((x) => square.remote(x, (5 - x) * 30));
    const values = await progress(refs, { label: 'squares', stream, intervalMs: 0 });
    assert.deepEqual(values, [0, 1, 4, 9, 16]);
    assert.equal(writes[0], 'squares: 0/5 done\n');
    assert.equal(writes.at(-1), 'squares: 5/5 done\n');
    const counts = writes.map((line) => Number(/^squares: (\d)\/5 done\n$/.exec(line)?.[1]));
    assert.ok(counts.every((n, i) => i === 0 || n > (counts[i - 1] as number)), `counts go up: ${counts.join(',')}`);
  });

  test('at most a line per intervalMs, and always the last; the same ref twice counts twice', async () => {
    const { writes, stream } = sink(false);
    const a = square.remote(3, 0);
    const b = square.remote(4, 50);
    const values = await progress([a, b, a], { label: 'x', stream, intervalMs: 60_000 });
    assert.deepEqual(values, [9, 16, 9]);
    assert.deepEqual(writes, ['x: 0/3 done\n', 'x: 3/3 done\n']);
  });

  test('a terminal: a bar that ends at the total', async () => {
    const { writes, stream } = sink(true);
    const values = await progress([square.remote(2, 10), square.remote(5, 0)], { label: 'bar', stream });
    assert.deepEqual(values, [4, 25]);
    const text = writes.join('');
    assert.match(text, /bar \[[█░]+\] 2\/2 100%/);
    assert.ok(text.endsWith('\x1B[?25h') || text.includes('\x1B[?25h'), 'the cursor is shown again');
  });

  test('a failing ref rejects with its TaskError, after the bar stopped', async () => {
    const fails = remote((x: number): number => {
      throw new RangeError(`no ${x}`);
    });
    const { writes, stream } = sink(true);
    let writesAtRejection = -1;
    await assert.rejects(
      progress([square.remote(1, 0), fails.remote(7), square.remote(2, 200)], { label: 'f', stream }).finally(() => (writesAtRejection = writes.length)),
      (error: unknown) => {
        assert.ok(error instanceof TaskError, String(error));
        assert.match((error as Error).message, /no 7/);
        return true;
      },
    );
    assert.equal(writesAtRejection, writes.length, 'nothing drawn after the rejection');
    assert.ok(writes.includes('\x1B[?25h'), 'the bar stopped (cursor shown again) before the rejection');
  });

  test('wrong arguments and options are named', async () => {
    await assert.rejects(progress([{} as never]), (error: unknown) => error instanceof InvalidArgumentError && /refs\[0\] is not an ObjectRef/.test((error as Error).message));
    await assert.rejects(progress([], { label: 5 as never }), (error: unknown) => error instanceof InvalidOptionError && /label/.test((error as Error).message));
    await assert.rejects(progress([], { stream: {} as never }), (error: unknown) => error instanceof InvalidOptionError && /must be a stream/.test((error as Error).message));
    const { writes, stream } = sink(false);
    assert.deepEqual(await progress([], { label: 'none', stream }), []);
    assert.deepEqual(writes, ['none: 0/0 done\n']);
  });
});
