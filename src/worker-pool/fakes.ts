/**
 * TEST ONLY. A pooled worker without a thread, recording what the node sends it and whether it
 * keeps the process alive, and a pool that starts no threads: so that the pool's rules, and the
 * parts of a node that drive them (actors, cancellation), are tested on fakes.
 */
import type { NodeIdHex } from '../ids/index.js';
import type { NodeToWorker } from '../protocol/index.js';
import { WorkerPool, type PooledWorker, type WorkerHost } from './index.js';

export interface FakePooledWorker<TTask> extends PooledWorker<TTask> {
  /** `refd`: whether it keeps the process alive now (a new worker does, until the pool says otherwise); `terminated`: terminate() calls. */
  readonly host: WorkerHost & { refd: boolean; terminated: number };
  /** What was sent to it, each message with the buffers attached to its frame. */
  readonly sent: { message: NodeToWorker; attached: SharedArrayBuffer[] }[];
}

export function fakePooledWorker<TTask = unknown>(options: { role?: 'task' | 'actor'; isolation?: 'thread' | 'process' } = {}): FakePooledWorker<TTask> {
  const sent: FakePooledWorker<TTask>['sent'] = [];
  let attaching: SharedArrayBuffer[] = [];
  return {
    id: `worker-${Math.random()}`,
    role: options.role ?? 'task',
    isolation: options.isolation ?? 'thread',
    host: {
      refd: true,
      terminated: 0,
      ref() {
        this.refd = true;
      },
      unref() {
        this.refd = false;
      },
      terminate() {
        this.terminated++;
        return Promise.resolve();
      },
    },
    channel: {
      send(message) {
        sent.push({ message, attached: attaching });
        attaching = [];
      },
      attach(buffer) {
        return attaching.push(buffer) - 1;
      },
      flush() {},
      onMessage() {},
      onError() {},
      close() {},
    },
    progress: new Int32Array(new SharedArrayBuffer(4)),
    answers: options.isolation === 'process' ? undefined : new Int32Array(new SharedArrayBuffer(4)),
    knownFunctions: new Set(),
    inFlight: new Map(),
    nextSeq: 1,
    alive: true,
    accepting: true,
    load: 0,
    reservedCpuUnits: 0,
    terminatedFor: undefined,
    ending: false,
    exitError: undefined,
    actors: new Set(),
    knownSlabs: new Map(),
    sent,
  };
}

/** A pool of no threads of its own: it kills, ends and makes busy or idle the fakes it is given. */
export function threadlessPool<TTask = unknown>(): WorkerPool<TTask> {
  return new WorkerPool<TTask>({ nodeId: 'n'.repeat(32) as NodeIdHex, size: 0, resourceLimits: undefined, onMessage: () => {}, onBadMessage: () => {}, onExit: () => {} });
}
