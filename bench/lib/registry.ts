/**
 * Every case that runs in a child process, by name, and the module that holds it. Case modules
 * are loaded only in the child that runs them (and, for modules that define remote functions, in
 * miniray's workers), so importing a case module must not start anything.
 */
import type { CaseFn } from './protocol.js';

type CaseModule = { readonly cases: Record<string, CaseFn> };

const FAMILIES: Record<string, () => Promise<CaseModule>> = {
  tasks: () => import('../cases/tasks.js'),
  objects: () => import('../cases/objects.js'),
  envelope: () => import('../cases/envelope.js'),
  actors: () => import('../cases/actors.js'),
  pools: () => import('../peers/pools.js'),
  postmessage: () => import('../peers/postmessage.js'),
  memcpy: () => import('../peers/memcpy.js'),
  cluster: () => import('../cases/cluster.js'),
  tcp: () => import('../peers/tcp.js'),
};

export interface CaseEntry {
  readonly name: string;
  readonly family: keyof typeof FAMILIES;
  /** Child timeout (ms) in full and in --quick mode. */
  readonly timeoutMs: { readonly full: number; readonly quick: number };
}

const normal = { full: 60_000, quick: 20_000 };

/** In the order they run: the peers and limits first, so that a slow miniray case cannot starve them. */
export const CASES: readonly CaseEntry[] = [
  { name: 'memcpy', family: 'memcpy', timeoutMs: normal },
  { name: 'raw_postmessage', family: 'postmessage', timeoutMs: normal },
  { name: 'piscina', family: 'pools', timeoutMs: normal },
  { name: 'tinypool', family: 'pools', timeoutMs: normal },
  { name: 'single_client_tasks_sync', family: 'tasks', timeoutMs: normal },
  { name: 'single_client_tasks_async', family: 'tasks', timeoutMs: normal },
  { name: 'single_client_tasks_async_events', family: 'tasks', timeoutMs: { full: 180_000, quick: 40_000 } },
  { name: 'single_client_tasks_and_get_batch', family: 'tasks', timeoutMs: normal },
  { name: 'multi_client_tasks_async', family: 'tasks', timeoutMs: normal },
  { name: 'single_client_put_calls', family: 'objects', timeoutMs: normal },
  { name: 'single_client_get_calls', family: 'objects', timeoutMs: normal },
  { name: 'multi_client_put_calls', family: 'objects', timeoutMs: normal },
  { name: 'single_client_put_gigabytes', family: 'objects', timeoutMs: { full: 90_000, quick: 30_000 } },
  { name: 'get_large_array', family: 'objects', timeoutMs: normal },
  { name: 'single_client_get_object_containing_10k_refs', family: 'objects', timeoutMs: normal },
  { name: 'single_client_wait_1k_refs', family: 'tasks', timeoutMs: normal },
  // queued_noop_tasks and the actor cases with a target in the spec (or a figure of Ray's beside
  // them) run before the other actor cases: when a loaded machine makes the run out of time, the
  // cases skipped at the end are those that only inform.
  { name: 'queued_noop_tasks', family: 'envelope', timeoutMs: { full: 180_000, quick: 30_000 } },
  { name: '1_1_actor_calls_sync', family: 'actors', timeoutMs: normal },
  { name: '1_1_actor_calls_async', family: 'actors', timeoutMs: normal },
  { name: 'many_shared_actors', family: 'actors', timeoutMs: { full: 90_000, quick: 20_000 } },
  { name: '1_1_actor_calls_concurrent', family: 'actors', timeoutMs: normal },
  { name: '1_n_actor_calls_async', family: 'actors', timeoutMs: normal },
  { name: 'n_n_actor_calls_async', family: 'actors', timeoutMs: normal },
  { name: 'n_n_actor_calls_with_arg_async', family: 'actors', timeoutMs: normal },
  { name: '1_1_async_actor_calls_sync', family: 'actors', timeoutMs: normal },
  { name: '1_1_async_actor_calls_async', family: 'actors', timeoutMs: normal },
  { name: '1_1_async_actor_calls_with_args_async', family: 'actors', timeoutMs: normal },
  { name: '1_n_async_actor_calls_async', family: 'actors', timeoutMs: normal },
  { name: 'n_n_async_actor_calls_async', family: 'actors', timeoutMs: normal },
  { name: 'actor_creation_thread', family: 'actors', timeoutMs: normal },
  { name: 'actor_creation_shared', family: 'actors', timeoutMs: normal },
];

/**
 * The cases of `npm run bench -- --cluster` (bench/cluster/run.ts), which need the cluster it
 * starts (MINIRAY_ADDRESS) and the raw TCP echo server (MINIRAY_BENCH_ECHO); in pairs, each limit
 * next to the figure it is compared with.
 */
export const CLUSTER_CASES: readonly CaseEntry[] = [
  { name: 'raw_tcp_round_trip', family: 'tcp', timeoutMs: normal },
  { name: 'cluster_task_round_trip', family: 'cluster', timeoutMs: normal },
  { name: 'cluster_tasks_async', family: 'cluster', timeoutMs: { full: 120_000, quick: 40_000 } },
  { name: 'raw_tcp_stream', family: 'tcp', timeoutMs: normal },
  { name: 'cluster_object_transfer', family: 'cluster', timeoutMs: { full: 120_000, quick: 40_000 } },
];

export async function loadCase(name: string): Promise<CaseFn> {
  const all = [...CASES, ...CLUSTER_CASES];
  const entry = all.find((c) => c.name === name);
  if (entry === undefined) throw new Error(`unknown case ${name}; known: ${all.map((c) => c.name).join(', ')}`);
  const module = await (FAMILIES[entry.family] as () => Promise<CaseModule>)();
  const fn = module.cases[name];
  if (fn === undefined) throw new Error(`case ${name} is missing from its module (${entry.family})`);
  return fn;
}
