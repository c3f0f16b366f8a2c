/**
 * A harness for cluster tests across real processes: a head and nodes started with the built
 * command (`node dist/cli/main.js start ... --block`, each in its own process group), drivers run
 * as child processes (fixtures in ./fixtures that import 'miniray' and print `RESULT <json>` lines),
 * and cleanup that leaves nothing behind: every process group it started is killed when the
 * cluster stops, and also when the test process exits or is signalled before that.
 *
 * Two layouts: loopback (every process on 127.0.0.1, one MINIRAY_HOME per cluster), and netns
 * (root only): the head and each node in a network namespace of its own, joined by veth pairs to a
 * bridge in the test's namespace (where drivers run), with addresses 10.77.S.x, each "machine" with
 * a MINIRAY_HOME of its own and the token passed as MINIRAY_AUTH_TOKEN, as on separate hosts.
 *
 * Tests wait on conditions (a line printed, a node table, a closed socket), never on sleeps; every
 * wait has a generous limit and says what it waited for when it runs out.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { fetchNodes, type NodeRow } from '../../dist/cli/status.js';
import { connect, encodeFrame, NET_PROTOCOL_VERSION, Router } from '../../dist/net/index.js';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const cliMain = join(root, 'dist', 'cli', 'main.js');
export const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

if (!existsSync(cliMain)) throw new Error(`${cliMain} is missing: run \`npm run build\` before the cluster tests`);

const POLL_MS = 50;

/** Waits until `condition` holds (checked every 50 ms), or throws naming `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, condition: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const why = lastError === undefined ? '' : ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await delay(POLL_MS);
  }
}

// ---- processes ------------------------------------------------------------------------------------

/** Every process group started here and not yet known to be gone: killed on exit at the latest. */
const liveGroups = new Set<number>();
/** Network namespaces and links made here and not yet removed. */
const liveNetns = new Set<string>();
const liveLinks = new Set<string>();
/** Temp directories of clusters not yet stopped. */
const liveScratch = new Set<string>();

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is gone already.
  }
}

function removeNetworkSync(): void {
  for (const ns of liveNetns) {
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // Gone already.
    }
    liveNetns.delete(ns);
  }
  for (const link of liveLinks) {
    try {
      execFileSync('ip', ['link', 'del', link], { stdio: 'ignore' });
    } catch {
      // Gone with its namespace.
    }
    liveLinks.delete(link);
  }
}

function cleanUpSync(): void {
  for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  liveGroups.clear();
  removeNetworkSync();
  for (const dir of liveScratch) rmSync(dir, { recursive: true, force: true });
  liveScratch.clear();
}

process.on('exit', cleanUpSync);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    cleanUpSync();
    process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
  });
}

/** Kills process group `pgid` when this process exits, unless untrack() says it is gone. */
export function trackGroup(pgid: number): void {
  liveGroups.add(pgid);
}

export function untrackGroup(pgid: number): void {
  liveGroups.delete(pgid);
}

export interface Outcome {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** A child process in a process group of its own, its output kept, its lines waited on. */
export class Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Outcome>;
  private outcome: Outcome | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
  ) {
    this.child = spawn(command, args, { cwd: root, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    if (this.child.pid === undefined) throw new Error(`${name}: could not start ${command}`);
    this.pid = this.child.pid;
    liveGroups.add(this.pid);
    this.child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString();
      for (const waiter of [...this.waiters]) waiter();
    });
    this.child.stderr?.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.child.stdin?.on('error', () => {}); // it may exit before reading what it was sent
    this.exited = new Promise<Outcome>((resolve) => {
      this.child.on('close', (code, signal) => {
        // The leader is gone; anything left in its group (a stuck worker process) is killed too.
        killGroup(this.pid, 'SIGKILL');
        liveGroups.delete(this.pid);
        this.outcome = { code, signal, stdout: this.stdout, stderr: this.stderr };
        for (const waiter of [...this.waiters]) waiter();
        resolve(this.outcome);
      });
    });
  }

  get running(): boolean {
    return this.outcome === undefined;
  }

  /** Resolves with the first match of `pattern` in stdout (from `from` on); rejects if it exits first or after `timeoutMs`. */
  match(pattern: RegExp, timeoutMs = 60_000, from = 0): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`${this.name}: no ${pattern} in its output within ${timeoutMs} ms\n${this.describe()}`));
      }, timeoutMs);
      const check = (): void => {
        const found = pattern.exec(this.stdout.slice(from));
        if (found === null && this.outcome === undefined) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        if (found !== null) resolve(found);
        else reject(new Error(`${this.name} exited (${this.outcome?.code ?? this.outcome?.signal}) before printing ${pattern}\n${this.describe()}`));
      };
      this.waiters.add(check);
      check();
    });
  }

  send(line: string): void {
    this.child.stdin?.write(`${line}\n`);
  }

  /** Waits for it to exit; kills its group and rejects after `timeoutMs`. */
  async ended(timeoutMs = 120_000): Promise<Outcome> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        killGroup(this.pid, 'SIGKILL');
        reject(new Error(`${this.name} did not exit within ${timeoutMs} ms, so it was killed\n${this.describe()}`));
      }, timeoutMs);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM to its group; SIGKILL after `graceMs` if it still runs. */
  async stop(graceMs = 10_000): Promise<Outcome> {
    if (this.outcome !== undefined) return this.outcome;
    killGroup(this.pid, 'SIGTERM');
    const timer = setTimeout(() => killGroup(this.pid, 'SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  describe(): string {
    const tail = (text: string) => text.trimEnd().split('\n').slice(-30).map((line) => `  | ${line}`).join('\n');
    return `--- ${this.name} stdout:\n${tail(this.stdout)}\n--- ${this.name} stderr:\n${tail(this.stderr)}`;
  }
}

/** A driver's results: the JSON of each `RESULT <json>` line it printed, in order. */
export function resultsOf(stdout: string): unknown[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('RESULT '))
    .map((line) => JSON.parse(line.slice('RESULT '.length)) as unknown);
}

/** Whether `pid` is a live process (not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return process.platform !== 'linux';
  }
}

/** Live processes whose process group is `pgid` (Linux; empty elsewhere). */
export function groupMembers(pgid: number): number[] {
  if (process.platform !== 'linux') return [];
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') members.push(Number(entry));
    } catch {
      // It exited while we looked.
    }
  }
  return members;
}

// ---- network namespaces ------------------------------------------------------------------------------

/** Why namespaces cannot be used here, or undefined when they can (root, and `ip netns` works). */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces are Linux only (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return `network namespaces need root (this runs as uid ${process.getuid?.()})`;
  const probe = `mr${process.pid}-probe`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return `\`ip netns add\` failed: ${stderr || (error as Error).message}`;
  }
  try {
    execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
  } catch {
    // Best effort.
  }
  return undefined;
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'pipe' });
}

/** Namespaces and links of earlier runs whose process is gone (a run killed with SIGKILL). */
function reapStaleNetwork(): void {
  const dead = (name: string, pattern: RegExp) => {
    const pid = Number(pattern.exec(name)?.[1]);
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && !isAlive(pid);
  };
  try {
    for (const line of execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n')) {
      const name = line.split(' ')[0] ?? '';
      if (dead(name, /^mr(\d+)-/)) execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    }
    for (const line of execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n')) {
      const name = /^\d+: ([^:@]+)/.exec(line)?.[1] ?? '';
      if (dead(name, /^mrb(\d+)$/)) execFileSync('ip', ['link', 'del', name], { stdio: 'ignore' });
    }
  } catch {
    // Best effort: a leftover of another run does not stop this one.
  }
}

/** A bridge in this namespace at 10.77.S.1, and a namespace per "host" wired to it. */
class Network {
  readonly subnet: string;
  readonly bridge: string;
  readonly gateway: string;
  private hosts = 0;

  constructor() {
    reapStaleNetwork();
    // One subnet per test process, so that two runs never share addresses.
    this.subnet = `10.77.${process.pid % 250}`;
    this.bridge = `mrb${process.pid}`;
    this.gateway = `${this.subnet}.1`;
    liveLinks.add(this.bridge);
    ip('link', 'add', this.bridge, 'type', 'bridge');
    ip('addr', 'add', `${this.gateway}/24`, 'dev', this.bridge);
    ip('link', 'set', this.bridge, 'up');
  }

  /** A new namespace with its address on the bridge: [namespace name, its IP, its veth on the bridge]. */
  addHost(): [string, string, string] {
    const index = ++this.hosts;
    const ns = `mr${process.pid}-${index}`;
    const outside = `mrv${process.pid}${index}`.slice(0, 15);
    const inside = `mrp${process.pid}${index}`.slice(0, 15);
    const address = `${this.subnet}.${10 + index}`;
    liveNetns.add(ns);
    ip('netns', 'add', ns);
    liveLinks.add(outside);
    ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
    ip('link', 'set', inside, 'netns', ns);
    ip('link', 'set', outside, 'master', this.bridge);
    ip('link', 'set', outside, 'up');
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', inside);
    ip('-n', ns, 'link', 'set', inside, 'up');
    return [ns, address, outside];
  }
}

// ---- the cluster ----------------------------------------------------------------------------------------

export interface NodeSpec {
  readonly numCpus: number;
  readonly numGpus?: number;
  readonly resources?: Record<string, number>;
}

export interface ClusterNode {
  readonly proc: Proc;
  readonly role: 'head' | 'node';
  /** head: the GCS's HOST:PORT; node: its listener's. */
  readonly address: string;
  readonly nodeId: string;
  readonly spec: NodeSpec;
  /** Its network namespace (netns layout only). */
  readonly netns?: string;
  /** Its veth's end on the bridge (netns layout only): down cuts the host off, as a pulled cable. */
  readonly veth?: string;
}

export interface ClusterOptions {
  /** Put each node in a network namespace of its own (see netnsUnavailable()). */
  readonly netns?: boolean;
  /** Label for the temp directory and process names. */
  readonly name?: string;
  /** More arguments of the head's `miniray start --head` (e.g. --port, --redis-address), also when restartHead() starts it again. */
  readonly headArgs?: readonly string[];
  /** More environment of every process of the cluster (e.g. MINIRAY_GCS_RECONNECT_TIMEOUT_MS). */
  readonly env?: Readonly<Record<string, string>>;
}

/** This environment without MINIRAY_* settings of the caller (so that a test sees only its own). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('MINIRAY_') && name !== 'NODE_OPTIONS'));
}

export class Cluster {
  readonly scratch: string;
  /** The head's MINIRAY_HOME (in the loopback layout, every process's). */
  readonly home: string;
  /** The cluster's token (netns: made here and given to every host; loopback: the head's auth_token file). */
  token: string;
  readonly nodes: ClusterNode[] = [];
  private readonly drivers = new Set<Proc>();
  private readonly network: Network | undefined;
  private stopped = false;

  private constructor(readonly options: ClusterOptions) {
    this.scratch = mkdtempSync(join(tmpdir(), `miniray-${options.name ?? 'cluster'}-`));
    liveScratch.add(this.scratch);
    this.home = join(this.scratch, 'head-home');
    mkdirSync(this.home, { recursive: true, mode: 0o700 });
    this.token = randomBytes(32).toString('hex');
    this.network = options.netns ? new Network() : undefined;
  }

  /** Starts a head and then `nodes`, and waits until the GCS lists them all alive. */
  static async start(head: NodeSpec, nodes: readonly NodeSpec[], options: ClusterOptions = {}): Promise<Cluster> {
    const cluster = new Cluster(options);
    try {
      await cluster.startProcess('head', head);
      // One after the other, so that nodes[i] is the i-th spec.
      for (const spec of nodes) await cluster.addNode(spec);
      await cluster.waitForNodes(1 + nodes.length);
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  get head(): ClusterNode {
    return this.nodes[0] as ClusterNode;
  }

  get netns(): boolean {
    return this.network !== undefined;
  }

  /** Where a driver in the test's namespace listens (so that nodes reach it): the bridge in netns. */
  get driverIp(): string {
    return this.network?.gateway ?? '127.0.0.1';
  }

  /**
   * Environment of a process of this cluster. Loopback: the shared MINIRAY_HOME, the token found
   * there. Netns: a home per host and MINIRAY_AUTH_TOKEN, as on other machines.
   */
  env(home = this.home, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      ...cleanEnv(),
      MINIRAY_HOME: home,
      ...(this.network === undefined ? {} : { MINIRAY_AUTH_TOKEN: this.token }),
      ...this.options.env,
      ...extra,
    };
  }

  /** Starts a node that joins the head; resolves once the head lists it. */
  async addNode(spec: NodeSpec): Promise<ClusterNode> {
    return this.startProcess('node', spec);
  }

  private async startProcess(role: 'head' | 'node', spec: NodeSpec): Promise<ClusterNode> {
    const index = this.nodes.length + this.starting++;
    const name = role === 'head' ? 'head' : `node${index}`;
    const [netns, hostIp, veth] = this.network?.addHost() ?? [undefined, '127.0.0.1', undefined];
    const home = this.network === undefined || role === 'head' ? this.home : join(this.scratch, `${name}-home`);
    mkdirSync(home, { recursive: true, mode: 0o700 });
    const args = [
      cliMain,
      'start',
      // A later --port wins: restartHead()'s over headArgs' over 0. Heads started at once must not
      // all want the dashboard's 8265: any free port (headArgs may give one).
      ...(role === 'head' ? ['--head', '--port', '0', '--dashboard-port', '0', ...(this.options.headArgs ?? []), ...(this.headPort === undefined ? [] : ['--port', this.headPort])] : ['--address', this.gcsAddress]),
      '--num-cpus',
      String(spec.numCpus),
      ...(spec.numGpus === undefined ? [] : ['--num-gpus', String(spec.numGpus)]),
      ...(spec.resources === undefined ? [] : ['--resources', JSON.stringify(spec.resources)]),
      '--node-ip-address',
      hostIp,
      '--block',
    ];
    // The loopback head makes the token file, where the others find it; the netns layout gives every host the token.
    const env = this.env(home);
    const proc = netns === undefined ? new Proc(name, process.execPath, args, env) : new Proc(name, 'ip', ['netns', 'exec', netns, process.execPath, ...args], env);
    try {
      const up = await proc.match(role === 'head' ? /Started the miniray head at (\S+) / : /Started a miniray node at (\S+) /);
      const address = up[1] as string;
      if (role === 'head') {
        this.gcsAddress = address;
        if (this.network === undefined) this.token = readFileSync(join(this.home, 'auth_token'), 'utf8').trim();
      }
      const row = await waitFor(`${name} at ${address} in the node table`, async () => (await this.nodeTable()).find((n) => n.address === address && n.alive));
      const node: ClusterNode = { proc, role, address, nodeId: row.nodeId, spec, ...(netns === undefined ? {} : { netns }), ...(veth === undefined ? {} : { veth }) };
      // The head first (restartHead() adds it again after the nodes).
      if (role === 'head') this.nodes.unshift(node);
      else this.nodes.push(node);
      return node;
    } catch (error) {
      await proc.stop(2_000);
      throw error;
    } finally {
      this.starting--;
    }
  }

  private starting = 0;
  /** The head's GCS HOST:PORT, once it is up. */
  gcsAddress = '';

  /** The GCS's node table (drivers included), asked as `miniray status` does. */
  nodeTable(): Promise<NodeRow[]> {
    return fetchNodes(this.gcsAddress, this.token);
  }

  /** Waits until `count` nodes (not drivers) are alive. */
  async waitForNodes(count: number, timeoutMs = 60_000): Promise<NodeRow[]> {
    return waitFor(`${count} alive nodes`, async () => {
      const alive = (await this.nodeTable()).filter((n) => n.alive && !n.isDriver);
      return alive.length === count ? alive : undefined;
    }, timeoutMs);
  }

  /** Starts a driver: `node [nodeArgs] fixtures/<script> ...args`, joined to this cluster by MINIRAY_ADDRESS. */
  driver(script: string, args: readonly string[] = [], options: { env?: Record<string, string>; nodeArgs?: readonly string[] } = {}): Proc {
    const home = this.network === undefined ? this.home : join(this.scratch, 'driver-home');
    mkdirSync(home, { recursive: true, mode: 0o700 });
    const env = this.env(home, { MINIRAY_ADDRESS: this.gcsAddress, MINIRAY_NODE_IP_ADDRESS: this.driverIp, ...options.env });
    const proc = new Proc(`driver ${script} ${args.join(' ')}`.trim(), process.execPath, [...(options.nodeArgs ?? []), fixture(script), ...args], env);
    this.drivers.add(proc);
    void proc.exited.then(() => this.drivers.delete(proc));
    return proc;
  }

  /** Runs a driver to its end; returns its RESULT lines. Throws (with its output) if it fails. */
  async run(script: string, args: readonly string[] = [], options: { env?: Record<string, string>; nodeArgs?: readonly string[]; timeoutMs?: number } = {}): Promise<unknown[]> {
    const proc = this.driver(script, args, options);
    const outcome = await proc.ended(options.timeoutMs ?? 120_000);
    if (outcome.code !== 0) throw new Error(`${proc.name} exited with ${outcome.code ?? outcome.signal}\n${proc.describe()}`);
    return resultsOf(outcome.stdout);
  }

  /** Runs the built `miniray` command with this cluster's environment (in the test's namespace). */
  async cli(args: readonly string[], timeoutMs = 60_000): Promise<Outcome> {
    const proc = new Proc(`miniray ${args.join(' ')}`, process.execPath, [cliMain, ...args], this.env(this.home, this.network === undefined ? {} : { MINIRAY_ADDRESS: this.gcsAddress }));
    return proc.ended(timeoutMs);
  }

  /** Cuts a host's link (netns layout), or restores it: its veth on the bridge goes down or up. */
  setLink(node: ClusterNode, up: boolean): void {
    if (node.veth === undefined) throw new Error('setLink needs the netns layout');
    ip('link', 'set', node.veth, up ? 'up' : 'down');
  }

  /** kill -9 of the head's process group; resolves once it is gone. The nodes are left running. */
  async killHead(): Promise<ClusterNode> {
    const head = this.head;
    if (head.role !== 'head') throw new Error('killHead: the head is not running (killed already?)');
    killGroup(head.proc.pid, 'SIGKILL');
    await head.proc.exited;
    this.nodes.splice(this.nodes.indexOf(head), 1);
    return head;
  }

  /**
   * Starts the head again, with the same arguments and spec, on the port of the one before (its
   * nodes reconnect there); resolves once it is up and lists itself. Loopback layout only.
   */
  async restartHead(spec: NodeSpec): Promise<ClusterNode> {
    if (this.network !== undefined) throw new Error('restartHead: loopback layout only');
    this.headPort = this.gcsAddress.slice(this.gcsAddress.lastIndexOf(':') + 1);
    return this.startProcess('head', spec);
  }

  /** The port a restarted head listens on: the one before's. */
  private headPort: string | undefined;

  /** Stops a node (SIGTERM, then SIGKILL) and forgets it. */
  async stopNode(node: ClusterNode): Promise<void> {
    await node.proc.stop();
    this.nodes.splice(this.nodes.indexOf(node), 1);
  }

  /** Stops drivers, nodes, then the head; removes namespaces and the temp directory. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all([...this.drivers].map((driver) => driver.stop(5_000)));
    await Promise.all(this.nodes.filter((n) => n.role === 'node').map((n) => n.proc.stop()));
    await Promise.all(this.nodes.filter((n) => n.role === 'head').map((n) => n.proc.stop()));
    if (this.network !== undefined) removeNetworkSync();
    rmSync(this.scratch, { recursive: true, force: true });
    liveScratch.delete(this.scratch);
  }
}

// ---- probes of a node's listener -------------------------------------------------------------------------

function hostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

/**
 * Opens a raw TCP connection to `address`, writes `bytes` (and, once an answer matching
 * `then.answer` has come back, `then.bytes`), and resolves with what came back once the other side
 * closes it; rejects if it is still open after `timeoutMs`.
 */
export function sendRaw(address: string, bytes: Buffer, then?: { answer: RegExp; bytes: Buffer }, timeoutMs = 20_000): Promise<Buffer> {
  const { host, port } = hostPort(address);
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    const received: Buffer[] = [];
    let next = then;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`${address} kept the connection open ${timeoutMs} ms after the bad bytes (received: ${JSON.stringify(Buffer.concat(received).toString('latin1'))})`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk);
      if (next !== undefined && next.answer.test(Buffer.concat(received).toString('latin1'))) {
        socket.write(next.bytes);
        next = undefined;
      }
    });
    socket.on('error', () => {}); // a reset is a close too
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(received));
    });
    socket.connect(port, host, () => socket.write(bytes));
  });
}

/** A valid hello frame with `token`, as a client would send it first. */
export function helloFrame(token: string): Buffer {
  return encodeFrame({ type: 'hello', token, protocolVersion: NET_PROTOCOL_VERSION, hello: { role: 'node', nodeId: randomBytes(16).toString('hex') } });
}

/**
 * Whether the node at `address` holds object `id` in its store now: asked as another node pulling
 * it would (pullObject), and the lease that takes given back at once. (There is no public way to
 * see another node's store: memory() reports the driver's node.)
 */
export async function nodeHolds(address: string, token: string, id: string): Promise<boolean> {
  const { host, port } = hostPort(address);
  const peer = await connect({ host, port, token, router: new Router(), hello: { role: 'node', nodeId: randomBytes(16).toString('hex') }, timeoutMs: 10_000 });
  try {
    const answer = (await peer.request('pullObject', { id }, { timeoutMs: 10_000 })) as { pullId?: number; state?: string };
    if (answer.pullId !== undefined) {
      peer.notify('endPull', { pullId: answer.pullId });
      return true;
    }
    return answer.state !== 'lost';
  } finally {
    peer.close('probe done');
  }
}
