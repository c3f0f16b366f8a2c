// Chaos: init() and shutdown() again and again, half the time with tasks and actor calls still
// running (blocked for good, so shutdown() must terminate them): no shutdown hangs, and after each
// one no thread, child process or spill file is left (threads and children are counted in /proc).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BroadcastChannel } from 'node:worker_threads';
import { after, before, describe, test } from 'node:test';
import { get, init, memory, put, remote, shutdown, type ObjectRef } from 'miniray';
import { report, scaled } from './figures.js';

const MB = 1024 * 1024;
const linux = existsSync('/proc/self/task');
const threads = (): number => (linux ? readdirSync('/proc/self/task').length : 0);
/** miniray's worker processes ('process' actors) among this process's children, reaped or not. */
function children(): number {
  if (!linux) return 0;
  let count = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== process.pid) continue;
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker-runtime')) count++;
    } catch {
      // gone meanwhile
    }
  }
  return count;
}

/** Polls `condition` each turn of the event loop (with a 5 ms timer, to spare the CPU) until it holds. */
async function until(condition: () => boolean, what: string, deadlineMs = 20_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms (a hang)`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Says it started (on `channel`), then blocks its thread for good: only terminate() ends it. */
const blockForever = remote((channel: string): number => {
  const started = new BroadcastChannel(channel);
  started.postMessage('started');
  started.close();
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  return 0;
});
const add = remote((a: number, b: number) => a + b);
class Blocker {
  ready(): boolean {
    return true;
  }
  block(): number {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
    return 0;
  }
}

let temp: string;
before(() => {
  temp = mkdtempSync(join(tmpdir(), 'miniray-chaos-cycles-'));
});
after(() => rmSync(temp, { recursive: true, force: true }));

describe('chaos: init/shutdown cycles', () => {
  test('cycles of init and shutdown, half with work running: no hang, no thread, process or file left', async () => {
    const cycles = scaled(20);
    // libuv starts its thread pool at the first file read: start it now, so that the baseline,
    // taken before any init(), counts it as the process's own.
    await readFile(new URL(import.meta.url));
    const baseline = threads();
    let threadsLeftMax = 0;
    let childrenLeftMax = 0;
    let spillDirsLeft = 0;
    let spilled = 0;
    let shutdownMsMax = 0;
    let runningAtShutdown = 0;
    for (let cycle = 0; cycle < cycles; cycle++) {
      const spillDirectory = join(temp, `spill-${cycle}`);
      await withDeadline(init({ numWorkers: 2, objectStoreMemory: 16 * MB, spillDirectory }), 60_000, `init() of cycle ${cycle}`);
      const kept: ObjectRef<Uint8Array>[] = [];
      for (let i = 0; i < 6; i++) kept.push(put(new Uint8Array(4 * MB).fill(i)));
      spilled += memory().store.spilledObjects;
      assert.equal(await get(add.remote(cycle, 1)), cycle + 1);
      if (cycle % 2 === 1) {
        const channel = new BroadcastChannel(`cycle-${cycle}-${process.pid}`);
        let started = 0;
        channel.onmessage = () => started++;
        // Three blocked tasks on two workers (one waits in the queue), and an actor of each isolation stuck in a call.
        for (let i = 0; i < 3; i++) blockForever.remote(`cycle-${cycle}-${process.pid}`);
        for (const isolation of ['thread', 'process'] as const) {
          const blocker = remote(Blocker).options({ isolation }).remote();
          await get(blocker.ready.remote());
          blocker.block.remote();
        }
        await until(() => started >= 2, 'two blocked tasks starting');
        channel.close();
        runningAtShutdown += started;
      }
      const began = Date.now();
      await withDeadline(shutdown(), 30_000, `shutdown() of cycle ${cycle}`);
      shutdownMsMax = Math.max(shutdownMsMax, Date.now() - began);
      assert.equal(kept.length, 6);
      // Threads and processes end as their 'exit' events come: wait for that (a failure to is
      // reported by the figures and the assertions below).
      await until(() => threads() <= baseline && children() === 0, `threads and child processes of cycle ${cycle} exiting`).catch(() => {});
      threadsLeftMax = Math.max(threadsLeftMax, threads() - baseline);
      childrenLeftMax = Math.max(childrenLeftMax, children());
      if (existsSync(spillDirectory)) spillDirsLeft++;
    }
    const leftInTemp = readdirSync(temp);
    report('init-shutdown', {
      cycles,
      withWorkRunning: Math.floor(cycles / 2),
      tasksRunningAtShutdown: runningAtShutdown,
      objectsSpilled: spilled,
      shutdownMsMax,
      threadsLeftMax,
      childProcessesLeftMax: childrenLeftMax,
      spillDirectoriesLeft: spillDirsLeft,
    });
    assert.ok(spilled > 0, 'nothing spilled');
    assert.equal(threadsLeftMax, 0, 'threads left after shutdown()');
    assert.equal(childrenLeftMax, 0, 'child processes left after shutdown()');
    assert.equal(spillDirsLeft, 0);
    assert.deepEqual(leftInTemp, []);
  });
});
