/** `miniray status`: the cluster's node table, as its GCS sees it, printed for a person. */
import { readFileSync } from 'node:fs';
import { clientTls, splitAddress, tlsFromEnvironment } from '../cluster/start.js';
import { resolveAddress, resolveToken } from '../cluster/session.js';
import { ConnectionError, InvalidOptionError } from '../errors/index.js';
import { GcsClient } from '../gcs/index.js';
import { Router, connect, type Peer } from '../net/index.js';
import { parseAddress } from './flags.js';

/** One row of the GCS's node table (the contract's NodeInfo). */
export interface NodeRow {
  readonly nodeId: string;
  readonly alive: boolean;
  readonly address: string;
  readonly resources: Readonly<Record<string, number>>;
  readonly available: Readonly<Record<string, number>>;
  readonly isDriver: boolean;
}

/**
 * The node table of the cluster whose GCS is at `address`, asked as role 'cli'.
 */
export async function fetchNodes(address: string, token: string): Promise<NodeRow[]> {
  const connection = await connectGcs(address, token, 'miniray status');
  try {
    return [...(await connection.gcs.getNodes())];
  } finally {
    connection.close('miniray status is done');
  }
}

/** A connection of the `miniray` command to a cluster's GCS. */
export interface GcsConnection {
  readonly gcs: GcsClient;
  close(reason: string): void;
}

/**
 * Connects to the GCS at `address` as role 'cli', as `miniray status` does (with statusTls()).
 * A cluster that is not there is a ConnectionError that says how to find or start one; a wrong
 * token stays the AuthenticationError that says where the head's token is.
 */
export async function connectGcs(address: string, token: string, command: string): Promise<GcsConnection> {
  const { host, port } = splitAddress(address);
  const tls = statusTls();
  let peer: Peer;
  try {
    peer = await connect({
      host,
      port,
      token,
      timeoutMs: 10_000,
      router: new Router(),
      hello: { role: 'cli', nodeId: `cli-${process.pid}` },
      ...(tls === undefined ? {} : { tls }),
    });
  } catch (error) {
    if (!(error instanceof ConnectionError)) throw error;
    throw new ConnectionError(
      `${command}: no cluster answered at ${address} (${error.message}). Start one with \`miniray start --head\`, ` +
        'or give the head\'s HOST:PORT with --address (or MINIRAY_ADDRESS), as `miniray start --head` printed it',
      { cause: error },
    );
  }
  return { gcs: new GcsClient(peer), close: (reason) => peer.close(reason) };
}

/** The GCS address and token a `miniray` command that reads the cluster uses, or why there are none. */
export function resolveTarget(command: string, flag: string | undefined): { address: string; token: string } {
  const address = resolveAddress(flag) ?? resolveAddress('auto');
  if (address === undefined) throw new InvalidOptionError(`${command}: no address (give --address HOST:PORT)`, '--address');
  parseAddress(address);
  const token = resolveToken();
  if (token === undefined) {
    throw new InvalidOptionError(
      `${command}: no cluster token: set MINIRAY_AUTH_TOKEN to the head's token (or MINIRAY_AUTH_TOKEN_PATH to a file that holds it)`,
      'MINIRAY_AUTH_TOKEN',
    );
  }
  return { address, token };
}

/**
 * How `miniray status` reaches a cluster with TLS: MINIRAY_TLS_CERT and MINIRAY_TLS_KEY (the
 * cluster's shared certificate, or MINIRAY_TLS_CA's), or MINIRAY_TLS_CA alone, since status only
 * connects and has no listener that would need a certificate of its own. Undefined: plain TCP.
 */
export function statusTls(): ReturnType<typeof clientTls> | undefined {
  const own = tlsFromEnvironment();
  if (own !== undefined) return clientTls(own);
  const caFile = process.env['MINIRAY_TLS_CA'];
  return caFile ? { ca: readFileSync(caFile, 'utf8'), rejectUnauthorized: true } : undefined;
}

const ID_PREFIX = 8;

/** 3 -> "3.0", 0.25 -> "0.25": one decimal as Ray prints, more only when a fraction needs it. */
function amount(n: number): string {
  const rounded = Math.round(n * 1e4) / 1e4;
  return Number.isInteger(rounded * 10) ? rounded.toFixed(1) : String(rounded);
}

/**
 * The report `miniray status` prints: one line per node (dead drivers left out: each finished
 * program leaves one), then used/total of each resource over the live ones, CPU and GPU first.
 */
export function formatStatus(nodes: readonly NodeRow[]): string {
  const shown = nodes.filter((n) => n.alive || !n.isDriver);
  const live = nodes.filter((n) => n.alive);
  const lines: string[] = [];
  const workers = shown.filter((n) => !n.isDriver);
  lines.push(`Nodes: ${workers.filter((n) => n.alive).length} alive, ${workers.filter((n) => !n.alive).length} dead`);
  const width = Math.max(0, ...shown.map((n) => n.address.length));
  for (const node of shown) {
    const kind = node.isDriver ? '  (driver)' : '';
    lines.push(`  ${node.nodeId.slice(0, ID_PREFIX).padEnd(ID_PREFIX)}  ${node.address.padEnd(width)}  ${node.alive ? 'alive' : 'dead '}${kind}`.trimEnd());
  }

  const total = new Map<string, number>([['CPU', 0]]);
  const used = new Map<string, number>();
  for (const node of live) {
    for (const [name, capacity] of Object.entries(node.resources)) {
      total.set(name, (total.get(name) ?? 0) + capacity);
      used.set(name, (used.get(name) ?? 0) + capacity - (node.available[name] ?? capacity));
    }
  }
  const rank = (name: string) => (name === 'CPU' ? 0 : name === 'GPU' ? 1 : 2);
  const names = [...total.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  lines.push('Resources (used/total, live nodes):');
  for (const name of names) lines.push(`  ${amount(used.get(name) ?? 0)}/${amount(total.get(name) ?? 0)} ${name}`);
  return `${lines.join('\n')}\n`;
}
