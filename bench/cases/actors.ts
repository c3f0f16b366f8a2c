/**
 * Ray's actor cases from python/ray/_private/ray_perf.py, with Ray's names and definitions:
 *
 *   1_1_actor_calls_sync                get(a.small_value.remote()), one at a time
 *   1_1_actor_calls_async               1,000 calls to one actor, then get of all     (x1000 calls/s)
 *   1_1_actor_calls_concurrent          the same, on an actor with maxConcurrency: 16 (x1000 calls/s)
 *   1_n_actor_calls_async               one Client actor calls n actors 5,000 times each, then gets
 *                                       (x 5,000 x n calls/s)
 *   n_n_actor_calls_async               4 tasks each make 5,000 calls spread over n actors (x20000)
 *   n_n_actor_calls_with_arg_async      n Client actors, each calling its own actor 1,000 times
 *                                       with a ref argument (put(0))       (x 1,000 x n calls/s)
 *   1_1_async_actor_calls_sync / _async / _with_args_async, 1_n_async_actor_calls_async,
 *   n_n_async_actor_calls_async         the same with AsyncActor (async methods, many calls at once)
 *
 * and from Ray's scalability envelope (release/benchmarks/distributed/test_many_actors.py: create N
 * actors, then get one call on each; actors_per_second):
 *
 *   actor_creation_thread               'thread' actors created and called once, in batches of n,
 *                                       killed after each batch (actors/s); beside it, a bare
 *                                       worker thread started and answering once, the machine's limit.
 *                                       Run under tsx, as here, each new worker registers tsx too (as
 *                                       a TypeScript user's would), which adds to a 'thread' actor's start
 *   actor_creation_shared               'shared' actors, in batches of 1,000, the same way (actors/s)
 *   many_shared_actors                  10,000 'shared' actors (2,000 with --quick) created, each
 *                                       called once, all alive at the end (seconds; target 10 s per
 *                                       10,000)
 *
 * With --quick, the 1:n and n:n batches of 5,000 are 1,000 (see batchOf), and 2,000 actors stand
 * for 10,000.
 *
 * How many actors: Ray uses n = cpu_count() // 2 server actors, 1 on this 2-core machine, which
 * would make 1:n and n:n the same as 1:1. A 'thread' actor is a worker thread of its own (a V8
 * isolate and an event loop), on top of the node's 2 task workers, so more of them than cores only
 * adds contention: n is cpus / 2, at least 2 and at most 4 (2 here). The Client actors of
 * n_n_actor_calls_with_arg_async are n more threads: 2 + 2 + the 2 task workers = 6 threads here.
 *
 * This module is also imported by miniray's workers: Client and work() use names from this module
 * (get, put), so miniray ships them by module import. Nothing here may start work at import.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { get, kill, put, remote, shutdown, type ActorHandle, type ObjectRef } from 'miniray';
import type { CaseContext, CaseFn, Metric } from '../lib/protocol.js';
import { median, timeit } from '../lib/timeit.js';
import { startMiniray } from './tasks.js';

/** Server actors in the 1:n and n:n cases (Ray: cpu_count() // 2; see above). */
const N_ACTORS = Math.min(4, Math.max(2, Math.floor(availableParallelism() / 2)));

// ---- Ray's classes -------------------------------------------------------------------------------

/** Ray's Actor (num_cpus=0, miniray's default for actors): sync methods, one call at a time. */
export class Actor {
  small_value(): string {
    return 'ok';
  }
  small_value_arg(_x: number): string {
    return 'ok';
  }
}
export const ActorClass = remote(Actor);

/** Ray's AsyncActor: async methods, so many calls run at once (maxConcurrency 1000 by default, as Ray). */
export class AsyncActor {
  async small_value(): Promise<string> {
    return 'ok';
  }
  async small_value_with_arg(_x: number): Promise<string> {
    return 'ok';
  }
}
export const AsyncActorClass = remote(AsyncActor);

type Server = ActorHandle<Actor> | ActorHandle<AsyncActor>;

/**
 * Ray's Client (num_cpus=0): calls its servers n times each, then gets all the results. Ray's
 * methods block in ray.get(); here they await get(), with maxConcurrency: 1 so that, as in Ray, a
 * client runs one batch at a time.
 */
export class Client {
  readonly servers: readonly Server[];
  constructor(servers: Server | readonly Server[]) {
    this.servers = Array.isArray(servers) ? servers : [servers as Server];
  }
  async small_value_batch(n: number): Promise<null> {
    const results: ObjectRef<string>[] = [];
    for (const s of this.servers) for (let i = 0; i < n; i++) results.push(s.small_value.remote());
    await get(results);
    return null;
  }
  async small_value_batch_arg(n: number): Promise<null> {
    const x = put(0);
    const results: ObjectRef<string>[] = [];
    for (const s of this.servers) for (let i = 0; i < n; i++) results.push((s as ActorHandle<Actor>).small_value_arg.remote(x));
    await get(results);
    return null;
  }
}
export const ClientClass = remote(Client, { maxConcurrency: 1 });

/** Ray's work() and async_actor_work(): one task making n calls spread over the actors. */
export const work = remote(async function work(actors: readonly Server[], n: number) {
  const refs: ObjectRef<string>[] = new Array(n);
  for (let i = 0; i < n; i++) refs[i] = (actors[i % actors.length] as Server).small_value.remote();
  await get(refs);
  return null;
});

// ---- helpers -------------------------------------------------------------------------------------

const perSecond = (value: number, runs: readonly number[], note?: string): Metric =>
  note === undefined ? { value, unit: '/s', runs } : { value, unit: '/s', runs, note };

/** Waits until every actor is up (its first call answered), so that timing starts with live actors. */
async function ready(actors: readonly Server[]): Promise<void> {
  await get(actors.map((a) => a.small_value.remote()));
}

function calls(actor: Server, n: number): ObjectRef<string>[] {
  const refs: ObjectRef<string>[] = new Array(n);
  for (let i = 0; i < n; i++) refs[i] = actor.small_value.remote();
  return refs;
}

// ---- 1:1 -----------------------------------------------------------------------------------------

async function oneToOneSync({ mode }: CaseContext, actor: () => Server): Promise<Record<string, Metric>> {
  await startMiniray();
  const a = actor();
  await ready([a]);
  const m = await timeit(mode, () => get(a.small_value.remote()), { latencies: true });
  await shutdown();
  return { rate: perSecond(m.rate, m.runs), p50: { value: m.p50Us as number, unit: 'us' } };
}

async function oneToOneAsync({ mode }: CaseContext, actor: () => Server): Promise<Record<string, Metric>> {
  await startMiniray();
  const a = actor();
  await ready([a]);
  const m = await timeit(mode, () => get(calls(a, 1000)), { multiplier: 1000 });
  await shutdown();
  return { rate: perSecond(m.rate, m.runs) };
}

async function asyncActorWithArgs({ mode }: CaseContext): Promise<Record<string, Metric>> {
  await startMiniray();
  const a = AsyncActorClass.remote();
  await ready([a]);
  const m = await timeit(
    mode,
    () => {
      const refs: ObjectRef<string>[] = new Array(1000);
      for (let i = 0; i < 1000; i++) refs[i] = a.small_value_with_arg.remote(i);
      return get(refs);
    },
    { multiplier: 1000 },
  );
  await shutdown();
  return { rate: perSecond(m.rate, m.runs) };
}

// ---- 1:n and n:n ---------------------------------------------------------------------------------

/**
 * Ray's batch size for the 1:n and n:n cases; a fifth of it with --quick, where Ray's 10,000 to
 * 20,000 calls per batch (0.5 to 1.5 s here) would make each case's 4 batches (warm-up and 3 runs)
 * outlast the timing and push the whole run past its 2 minutes.
 */
const batchOf = (quick: boolean) => (quick ? 1000 : 5000);

/** One Client actor calling N_ACTORS actors n = 5,000 times each per batch. */
async function oneToN({ mode, quick }: CaseContext, actor: () => Server): Promise<Record<string, Metric>> {
  const n = batchOf(quick);
  await startMiniray();
  const actors = Array.from({ length: N_ACTORS }, actor);
  const client = ClientClass.remote(actors);
  await ready(actors);
  await get(client.small_value_batch.remote(1));
  const m = await timeit(mode, () => get(client.small_value_batch.remote(n)), { multiplier: n * actors.length });
  await shutdown();
  return { rate: perSecond(m.rate, m.runs, `1 client actor -> ${N_ACTORS} actors x ${n.toLocaleString('en-US')}`) };
}

/** m = 4 tasks, each making n = 5,000 calls spread over N_ACTORS actors. */
async function nToN({ mode, quick }: CaseContext, actor: () => Server): Promise<Record<string, Metric>> {
  const n = batchOf(quick);
  const m = 4;
  await startMiniray();
  const actors = Array.from({ length: N_ACTORS }, actor);
  await ready(actors);
  await get(work.remote(actors, 1));
  const measured = await timeit(
    mode,
    () => {
      const submitted: ObjectRef<null>[] = [];
      for (let i = 0; i < m; i++) submitted.push(work.remote(actors, n));
      return get(submitted);
    },
    { multiplier: m * n },
  );
  await shutdown();
  return { rate: perSecond(measured.rate, measured.runs, `${m} tasks x ${n.toLocaleString('en-US')} -> ${N_ACTORS} actors`) };
}

/** N_ACTORS Client actors, each calling its own actor 1,000 times with a ref argument. */
async function nToNWithArg({ mode }: CaseContext): Promise<Record<string, Metric>> {
  const n = 1000;
  await startMiniray();
  const actors = Array.from({ length: N_ACTORS }, () => ActorClass.remote());
  const clients = actors.map((a) => ClientClass.remote(a));
  await ready(actors);
  await get(clients.map((c) => c.small_value_batch_arg.remote(1)));
  const m = await timeit(mode, () => get(clients.map((c) => c.small_value_batch_arg.remote(n))), { multiplier: n * clients.length });
  await shutdown();
  return { rate: perSecond(m.rate, m.runs, `${N_ACTORS} client actors x 1,000 -> ${N_ACTORS} actors`) };
}

// ---- creation ------------------------------------------------------------------------------------

const ECHO = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (message) => parentPort.postMessage(message));
`;

/** A bare worker thread: started, answering one message, terminated. The floor under a 'thread' actor. */
async function bareWorker(): Promise<void> {
  const worker = new Worker(ECHO, { eval: true });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
    worker.postMessage(0);
  });
  await worker.terminate();
}

/** Creates `count` actors, gets one call on each (so each is up), then kills them: all within the timing. */
async function createCallKill(cls: typeof ActorClass, count: number): Promise<void> {
  const actors = Array.from({ length: count }, () => cls.remote());
  await get(actors.map((a) => a.small_value.remote()));
  for (const a of actors) kill(a);
}

async function creationThread({ mode }: CaseContext): Promise<Record<string, Metric>> {
  const batch = N_ACTORS;
  await startMiniray();
  const m = await timeit(mode, () => createCallKill(ActorClass, batch), { multiplier: batch });
  await shutdown();
  const bare = await timeit(mode, () => Promise.all(Array.from({ length: batch }, bareWorker)), { multiplier: batch });
  return {
    rate: perSecond(m.rate, m.runs, `batches of ${batch}`),
    bareWorker: perSecond(bare.rate, bare.runs),
  };
}

async function creationShared({ mode }: CaseContext): Promise<Record<string, Metric>> {
  const batch = 1000;
  await startMiniray();
  const Shared = ActorClass.options({ isolation: 'shared' });
  const m = await timeit(mode, () => createCallKill(Shared, batch), { multiplier: batch });
  await shutdown();
  return { rate: perSecond(m.rate, m.runs, `batches of ${batch.toLocaleString('en-US')}`) };
}

/**
 * 10,000 'shared' actors (2,000 with --quick), as Ray's many_actors test: create them all, then get
 * one call on each; timed from the first creation to the last answer, on a node just started (so
 * the shared workers start within the timing, as they would for a user). All are alive at the end.
 * Repeated on a fresh node (3 times in a full run, while the repeats stay short) for a median.
 */
async function manySharedActors({ quick }: CaseContext): Promise<Record<string, Metric>> {
  const count = quick ? 2000 : 10_000;
  const repeats = quick ? 1 : 3;
  const Shared = ActorClass.options({ isolation: 'shared' });
  const times: number[] = [];
  const started = performance.now();
  for (let r = 0; r < repeats; r++) {
    await startMiniray();
    const start = performance.now();
    const actors: ActorHandle<Actor>[] = new Array(count);
    for (let i = 0; i < count; i++) actors[i] = Shared.remote();
    const values = await get(actors.map((a) => a.small_value.remote()));
    const seconds = (performance.now() - start) / 1000;
    if (values.length !== count || values[count - 1] !== 'ok') throw new Error('actors returned wrong values');
    times.push(seconds);
    await shutdown();
    if (performance.now() - started > 30_000) break;
  }
  const seconds = median(times);
  const n = count.toLocaleString('en-US');
  return {
    time: { value: seconds, unit: 's', runs: times, note: `${n} actors, ${Math.round(count / seconds).toLocaleString('en-US')}/s` },
    // The spec's bound, 10 s for 10,000, scaled to the count of this run.
    budget: { value: (10 * count) / 10_000, unit: 's', note: `10 s per 10,000` },
  };
}

export const cases: Record<string, CaseFn> = {
  '1_1_actor_calls_sync': (context) => oneToOneSync(context, () => ActorClass.remote()),
  '1_1_actor_calls_async': (context) => oneToOneAsync(context, () => ActorClass.remote()),
  '1_1_actor_calls_concurrent': (context) => oneToOneAsync(context, () => ActorClass.options({ maxConcurrency: 16 }).remote()),
  '1_n_actor_calls_async': (context) => oneToN(context, () => ActorClass.remote()),
  n_n_actor_calls_async: (context) => nToN(context, () => ActorClass.remote()),
  n_n_actor_calls_with_arg_async: nToNWithArg,
  '1_1_async_actor_calls_sync': (context) => oneToOneSync(context, () => AsyncActorClass.remote()),
  '1_1_async_actor_calls_async': (context) => oneToOneAsync(context, () => AsyncActorClass.remote()),
  '1_1_async_actor_calls_with_args_async': asyncActorWithArgs,
  '1_n_async_actor_calls_async': (context) => oneToN(context, () => AsyncActorClass.remote()),
  n_n_async_actor_calls_async: (context) => nToN(context, () => AsyncActorClass.remote()),
  actor_creation_thread: creationThread,
  actor_creation_shared: creationShared,
  many_shared_actors: manySharedActors,
};
