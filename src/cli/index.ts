/**
 * The `miniray` command: start a head or a node on this machine (in the foreground with --block,
 * else as a daemon), show the cluster's nodes and resources, stop what was started here.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import type { RedisAddress, RunningNode, StartNodeOptions } from '../cluster/start.js';
import { createToken, resolveAddress, resolveToken, sessionDir } from '../cluster/session.js';
import { setting } from '../config/index.js';
import { InvalidOptionError, MinirayError } from '../errors/index.js';
import { runForeground, startDetached, stopAll, type HealthzPlace } from './daemon.js';
import { asArgParser, parseAddress, parseCount, parsePort, parseRedisAddress, parseRedisNamespace, parseResources } from './flags.js';
import { registerJobCommands } from './job.js';
import { registerStateCommands } from './state.js';
import { fetchNodes, formatStatus, resolveTarget } from './status.js';

interface StartFlags {
  readonly head?: boolean;
  readonly address?: string;
  readonly port?: number;
  readonly numCpus?: number;
  readonly numGpus?: number;
  readonly resources?: Record<string, number>;
  readonly nodeIpAddress?: string;
  readonly advertiseAddress?: string;
  readonly healthzPort?: number;
  readonly healthzHost?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly redisAddress?: { host: string; port: number };
  readonly redisPassword?: string;
  readonly redisNamespace?: string;
  readonly block?: boolean;
  readonly dashboardPort?: number;
  readonly dashboardHost?: string;
}

const HEAD_PORT = 6380;
const DASHBOARD_PORT = 8265;
const DEFAULT_IP = '127.0.0.1';

/** An address that means "every interface": fine to bind to, but no one can connect to it. */
const isWildcard = (ip: string) => ['0.0.0.0', '::', '[::]', ''].includes(ip.trim());

/** Where this process serves /healthz: off unless a port is given; on the node's interface by default. */
function healthzPlace(flags: StartFlags): HealthzPlace | undefined {
  if (flags.healthzPort === undefined) return undefined;
  return { host: flags.healthzHost ?? flags.nodeIpAddress ?? DEFAULT_IP, port: flags.healthzPort };
}

function readPem(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidOptionError(`${flag}: cannot read ${path}: ${(error as Error).message}`, flag, { cause: error });
  }
}

/**
 * The head's Redis, from the flags or else MINIRAY_REDIS_ADDRESS / _PASSWORD / _NAMESPACE (which
 * a node ignores, so that one environment can serve every pod of a cluster).
 */
function redisOptions(flags: StartFlags): RedisAddress | undefined {
  const env = (name: string) => process.env[name]?.trim() || undefined;
  if (flags.head !== true) {
    const given = (['redisAddress', 'redisPassword', 'redisNamespace'] as const).find((name) => flags[name] !== undefined);
    if (given !== undefined) {
      const flag = `--${given.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      throw new InvalidOptionError(`${flag} is for the head (miniray start --head ${flag} ...): a node finds the GCS through --address`, flag);
    }
    return undefined;
  }
  const fromEnv = (name: string, parse: (text: string) => ReturnType<typeof parseRedisAddress>) => {
    const text = env(name);
    if (text === undefined) return undefined;
    try {
      return parse(text);
    } catch (error) {
      throw new InvalidOptionError(`${name}: ${(error as Error).message}`, name, { cause: error });
    }
  };
  const address = flags.redisAddress ?? fromEnv('MINIRAY_REDIS_ADDRESS', parseRedisAddress);
  const password = flags.redisPassword ?? env('MINIRAY_REDIS_PASSWORD');
  const namespaceText = flags.redisNamespace ?? env('MINIRAY_REDIS_NAMESPACE');
  if (address === undefined) {
    if (flags.redisPassword !== undefined || flags.redisNamespace !== undefined) {
      const flag = flags.redisPassword !== undefined ? '--redis-password' : '--redis-namespace';
      throw new InvalidOptionError(`${flag} needs --redis-address HOST:PORT (or MINIRAY_REDIS_ADDRESS): the Redis it is for`, flag);
    }
    return undefined;
  }
  let namespace: string | undefined;
  if (namespaceText !== undefined) {
    try {
      namespace = parseRedisNamespace(namespaceText);
    } catch (error) {
      if (flags.redisNamespace !== undefined) throw error;
      throw new InvalidOptionError(`MINIRAY_REDIS_NAMESPACE: ${(error as Error).message}`, 'MINIRAY_REDIS_NAMESPACE', { cause: error });
    }
  }
  return { ...address, ...(password === undefined ? {} : { password }), ...(namespace === undefined ? {} : { namespace }) };
}

/** What startNode gets for these flags; the head makes the cluster token, a node must find one. */
function nodeOptions(flags: StartFlags): StartNodeOptions {
  const head = flags.head === true;
  const redis = redisOptions(flags);
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new InvalidOptionError('--tls-cert and --tls-key go together: give both (PEM files), or neither', '--tls-cert');
  }
  const nodeIp = flags.nodeIpAddress ?? DEFAULT_IP;
  if (flags.advertiseAddress !== undefined && isWildcard(flags.advertiseAddress)) {
    throw new InvalidOptionError(`--advertise-address must be an address the other nodes can reach, not '${flags.advertiseAddress}'`, '--advertise-address');
  }
  if (isWildcard(nodeIp) && flags.advertiseAddress === undefined) {
    throw new InvalidOptionError(
      `--node-ip-address ${nodeIp} listens on every interface, but the other nodes cannot connect to ${nodeIp}: ` +
        "also give --advertise-address <this machine's IP> (in Kubernetes, the pod's IP: see docs/deploy.md)",
      '--advertise-address',
    );
  }
  if (!head && (flags.dashboardPort !== undefined || flags.dashboardHost !== undefined)) {
    const flag = flags.dashboardPort !== undefined ? '--dashboard-port' : '--dashboard-host';
    throw new InvalidOptionError(`${flag} is for the head (miniray start --head ${flag} ...): a node serves no dashboard`, flag);
  }
  const token = head ? createToken() : resolveToken();
  if (token === undefined) {
    throw new InvalidOptionError(
      `no cluster token: set MINIRAY_AUTH_TOKEN to the head's token (on the head's machine it is in ` +
        `${join(sessionDir(), 'auth_token')}, or the MINIRAY_AUTH_TOKEN the head was started with), ` +
        'or MINIRAY_AUTH_TOKEN_PATH to a file that holds it',
      'MINIRAY_AUTH_TOKEN',
    );
  }
  return {
    head,
    ...(head ? {} : { address: flags.address }),
    port: flags.port ?? (head ? HEAD_PORT : 0),
    nodeIpAddress: nodeIp,
    ...(flags.advertiseAddress === undefined ? {} : { advertiseAddress: flags.advertiseAddress.trim() }),
    numCpus: flags.numCpus ?? availableParallelism(),
    numGpus: flags.numGpus ?? 0,
    resources: flags.resources ?? {},
    token,
    ...(redis === undefined ? {} : { redis }),
    ...(head ? { dashboard: { host: flags.dashboardHost?.trim() || DEFAULT_IP, port: flags.dashboardPort ?? DASHBOARD_PORT } } : {}),
    ...(flags.tlsCert !== undefined && flags.tlsKey !== undefined
      ? { tls: { cert: readPem(flags.tlsCert, '--tls-cert'), key: readPem(flags.tlsKey, '--tls-key') } }
      : {}),
  };
}

function tokenWhere(): string {
  if (process.env.MINIRAY_AUTH_TOKEN?.trim()) return 'the MINIRAY_AUTH_TOKEN you set: nodes and drivers need the same MINIRAY_AUTH_TOKEN.';
  const path = process.env.MINIRAY_AUTH_TOKEN_PATH?.trim() || join(sessionDir(), 'auth_token');
  return `in ${path} (readable only by you); nodes and drivers on this machine find it there.\n` +
    '                  On other machines, set MINIRAY_AUTH_TOKEN to its contents.';
}

/** Where the head keeps its tables, for the user: the Redis address, never its password. */
function tablesWhere(options: StartNodeOptions): string {
  const redis = options.redis;
  if (redis === undefined) return 'in this process: a restarted head is a new cluster (start it with --redis-address HOST:PORT to keep them).';
  const host = redis.host.includes(':') ? `[${redis.host}]` : redis.host;
  return `in Redis at ${host}:${redis.port}, namespace '${redis.namespace ?? 'miniray'}'${redis.password === undefined ? '' : ' (with a password)'}: ` +
    `a head restarted on it, on the same port, finds this cluster again; nodes wait for it up to ${setting('gcsReconnectTimeoutMs') / 1000} s.`;
}

/**
 * The dashboard's line: its URL with the token, once (as Jupyter prints its own): opening it sets
 * the page's cookie and takes the token out of the address bar.
 */
function dashboardLine(options: StartNodeOptions, url: string | undefined): string {
  if (options.dashboard === undefined) return '';
  if (url === undefined) return `Dashboard:        not served: ${options.dashboard.host ?? DEFAULT_IP}:${options.dashboard.port} is taken (see the warning above, or in its log)`;
  return `Dashboard:        ${url}/?token=${encodeURIComponent(options.token)}`;
}

/** What the user is told once a head or node is up. */
function upMessage(role: 'head' | 'node', address: string, pid: number, options: StartNodeOptions, where: string, dashboardUrl?: string): string {
  if (role === 'node') {
    return `Started a miniray node at ${address} (pid ${pid}; ${where}), joined to the head at ${options.address}.\n` +
      'See the cluster: miniray status    Stop what runs here: miniray stop\n';
  }
  const lines = [
    `Started the miniray head at ${address} (pid ${pid}; ${where}).`,
    '',
    `Add a node:       miniray start --address ${address}`,
    `Connect a driver: await init({ address: '${address}' }), or MINIRAY_ADDRESS=${address}; on this machine also address: 'auto'`,
    `Cluster token:    ${tokenWhere()}`,
    `GCS tables:       ${tablesWhere(options)}`,
    ...(options.dashboard === undefined ? [] : [dashboardLine(options, dashboardUrl)]),
    'See the cluster:  miniray status    Stop it: miniray stop',
  ];
  if (options.nodeIpAddress === DEFAULT_IP) {
    lines.push(`It listens on ${DEFAULT_IP} only: for nodes on other machines, start it with --node-ip-address <this machine's IP>.`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * The arguments for the daemon without --redis-password, which goes in its environment instead:
 * a process's arguments are visible to every user of the machine (ps), its environment is not.
 */
function withoutPassword(args: readonly string[]): [string[], NodeJS.ProcessEnv | undefined] {
  const kept: string[] = [];
  let password: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--redis-password') password = args[++i];
    else if (arg.startsWith('--redis-password=')) password = arg.slice('--redis-password='.length);
    else kept.push(arg);
  }
  return [kept, password === undefined ? undefined : { ...process.env, MINIRAY_REDIS_PASSWORD: password }];
}

async function start(flags: StartFlags, command: Command): Promise<void> {
  if (!flags.head && flags.address === undefined) {
    command.error('error: miniray start needs --head (start a head) or --address HOST:PORT (join the head there)');
  }
  const role = flags.head ? 'head' : 'node';
  const options = nodeOptions(flags);
  if (flags.block) {
    const onUp = (node: RunningNode) => {
      process.stdout.write(upMessage(role, node.address, process.pid, options, 'in the foreground: Ctrl-C or `miniray stop` stops it', node.dashboardUrl));
    };
    process.exit(await runForeground(role, options, onUp, healthzPlace(flags)));
  }
  const { record, logPath } = await startDetached(role, ...withoutPassword(process.argv.slice(2)));
  process.stdout.write(upMessage(role, record.address, record.pid, options, `log: ${logPath}`, record.dashboardUrl));
  const probes = healthzPlace(flags);
  if (probes !== undefined) {
    process.stdout.write(`GET /healthz is served at ${probes.port === 0 ? `a free port on ${probes.host} (its log says which)` : `http://${probes.host}:${probes.port}/healthz`}.\n`);
  }
}

async function status(flags: { address?: string }): Promise<void> {
  const { address, token } = resolveTarget('miniray status', flags.address);
  process.stdout.write(`Cluster at ${address}\n${formatStatus(await fetchNodes(address, token))}`);
}

async function stop(flags: { grace: number }): Promise<void> {
  const { stopped, killed, malformed } = await stopAll(flags.grace * 1000);
  for (const path of malformed) console.error(`miniray stop: ${path} is not a process record; left alone`);
  if (stopped.length === 0) {
    console.log('No miniray processes were running.');
    return;
  }
  const noun = stopped.length === 1 ? 'process' : 'processes';
  const forced = killed.length === 0 ? '' : ` (${killed.length} killed after ${flags.grace} s of grace: ${killed.map((r) => r.pid).join(', ')})`;
  console.log(`Stopped ${stopped.length} miniray ${noun}${forced}.`);
}

function version(): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

export function createProgram(): Command {
  const program = new Command('miniray')
    .description('Start, inspect and stop a miniray cluster.')
    .version(version())
    .showHelpAfterError('(add --help for usage)');

  program
    .command('start')
    .description('Start the head (--head) or a node that joins it (--address). Returns once it is up, unless --block.')
    .addOption(new Option('--head', 'start the head: the cluster\'s GCS and a node').conflicts('address'))
    .option('--address <host:port>', "the head's address, for a node that joins it", asArgParser((text) => (parseAddress(text), text.trim())))
    .option('--port <port>', `head: the GCS port (default ${HEAD_PORT}); node: its listener's port (default: any free one)`, asArgParser((text) => parsePort(text)))
    .option('--num-cpus <n>', `CPUs this node offers (default: this machine's, ${availableParallelism()})`, asArgParser(parseCount('--num-cpus')))
    .option('--num-gpus <n>', 'GPUs this node offers (default 0)', asArgParser(parseCount('--num-gpus')))
    .option('--resources <json>', 'custom resources this node offers, a JSON object, e.g. \'{"disk": 2}\'', asArgParser(parseResources))
    .option('--node-ip-address <ip>', `the address to listen on and advertise (default ${DEFAULT_IP}: this machine only)`)
    .option('--advertise-address <ip>', 'the address to tell the others, when it is not --node-ip-address (which may then be 0.0.0.0: every interface)')
    .addOption(new Option('--healthz-port <port>', 'serve GET /healthz (readiness and liveness probes, no token) on this port; 0: any free one (default: not served)').env('MINIRAY_HEALTHZ_PORT').argParser(asArgParser((text) => parsePort(text, '--healthz-port'))))
    .addOption(new Option('--healthz-host <ip>', 'the address /healthz listens on (default: --node-ip-address)').env('MINIRAY_HEALTHZ_HOST'))
    .addOption(new Option('--tls-cert <file>', 'TLS certificate (PEM) for this node\'s listeners').env('MINIRAY_TLS_CERT'))
    .addOption(new Option('--tls-key <file>', 'TLS private key (PEM) for --tls-cert').env('MINIRAY_TLS_KEY'))
    .option('--redis-address <host:port>', 'head: keep the GCS tables in the Redis there, so that the head can be restarted (env MINIRAY_REDIS_ADDRESS)', asArgParser(parseRedisAddress))
    .option('--redis-password <password>', 'head: the password of --redis-address (env MINIRAY_REDIS_PASSWORD, which keeps it out of the process list)')
    .option('--redis-namespace <name>', "head: the prefix of this cluster's keys in Redis, one per cluster sharing it (default miniray; env MINIRAY_REDIS_NAMESPACE)", asArgParser(parseRedisNamespace))
    .option('--dashboard-port <port>', `head: the dashboard's port (default ${DASHBOARD_PORT}; 0: any free one; taken: the head runs without it)`, asArgParser((text) => parsePort(text, '--dashboard-port')))
    .option('--dashboard-host <ip>', `head: the address the dashboard listens on (default ${DEFAULT_IP}: this machine only)`)
    .option('--block', 'run in the foreground until SIGINT or SIGTERM')
    .action(start);

  program
    .command('status')
    .description('Print the cluster\'s nodes and its resources used/total.')
    .option('--address <host:port>', 'the head\'s address (default: MINIRAY_ADDRESS, else the latest head started on this machine)')
    .action(status);

  program
    .command('stop')
    .description('Stop every miniray process `miniray start` launched on this machine.')
    .option('--grace <seconds>', 'seconds to wait after SIGTERM before SIGKILL', asArgParser((text) => {
      const seconds = Number(text);
      if (text.trim() === '' || !Number.isFinite(seconds) || seconds < 0) throw new InvalidOptionError(`--grace must be a number of seconds, 0 or more, not '${text}'`, '--grace');
      return seconds;
    }), 10)
    .action(stop);

  registerStateCommands(program);
  registerJobCommands(program);

  return program;
}

/** Runs the command line `argv` (process.argv's shape); returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await createProgram().parseAsync([...argv]);
    return 0;
  } catch (error) {
    if (!(error instanceof MinirayError)) throw error;
    console.error(`miniray: ${error.message}`);
    return 1;
  }
}
