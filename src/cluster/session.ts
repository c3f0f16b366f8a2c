/**
 * The session files of this machine: the cluster token `miniray start --head` made, the address of
 * the latest head (`address: 'auto'`), and one record per process `miniray start` launched (for
 * `miniray stop`). They live in $MINIRAY_HOME, else ~/.miniray, which only the user can read: the
 * token there is what lets a process join the cluster.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, closeSync, writeSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { InvalidOptionError } from '../errors/index.js';

/** What `miniray stop` needs to know of a process `miniray start` launched. */
export interface ProcessRecord {
  readonly pid: number;
  readonly role: 'head' | 'node';
  /** head: its GCS host:port; node: its own listener's host:port. */
  readonly address: string;
  /** ISO 8601 time the process came up. */
  readonly startedAt: string;
  /** head: its dashboard, http://host:port (without the token), when it serves one. */
  readonly dashboardUrl?: string;
}

/** $MINIRAY_HOME, else ~/.miniray. Not created here: writers create it (0700) when they write. */
export function sessionDir(): string {
  const home = process.env.MINIRAY_HOME?.trim();
  return home ? home : join(homedir(), '.miniray');
}

/** Creates `sessionDir()/sub` (and the session directory) readable only by the user. */
function ensureDir(sub?: string): string {
  const dir = sessionDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mode is masked by the umask and ignored for a directory that exists; the token must stay private.
  chmodSync(dir, 0o700);
  if (sub === undefined) return dir;
  const path = join(dir, sub);
  mkdirSync(path, { recursive: true, mode: 0o700 });
  return path;
}

/** Writes a whole file at once (a reader never sees half of it), readable only by the user. */
function writeAtomic(path: string, text: string): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, text, { mode: 0o600 });
  renameSync(temp, path);
}

function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

const tokenFile = () => join(sessionDir(), 'auth_token');

/** `from` names where the path came from, as the error's `option`: the env var to fix. */
function readToken(path: string, from: 'MINIRAY_AUTH_TOKEN_PATH' | 'MINIRAY_HOME'): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidOptionError(
      `cannot read the cluster token from ${path} (found by ${from}): ${(error as Error).message}. ` +
        'Point it at a file that holds the head\'s token, or set MINIRAY_AUTH_TOKEN to the token itself.',
      from,
      { cause: error },
    );
  }
  const token = text.trim();
  if (token === '') {
    throw new InvalidOptionError(
      `the cluster token file ${path} (found by ${from}) is empty: it should hold the token the head uses ` +
        '(its auth_token file), or set MINIRAY_AUTH_TOKEN to the token itself.',
      from,
    );
  }
  return token;
}

/**
 * The cluster token a node, driver or `miniray status` on this machine presents: MINIRAY_AUTH_TOKEN,
 * else the file MINIRAY_AUTH_TOKEN_PATH names, else sessionDir()/auth_token if it exists.
 * @throws InvalidOptionError naming the file when MINIRAY_AUTH_TOKEN_PATH (or auth_token) cannot be read.
 */
export function resolveToken(): string | undefined {
  const fromEnv = process.env.MINIRAY_AUTH_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  const path = process.env.MINIRAY_AUTH_TOKEN_PATH?.trim();
  if (path) return readToken(path, 'MINIRAY_AUTH_TOKEN_PATH');
  if (readIfExists(tokenFile()) === undefined) return undefined;
  return readToken(tokenFile(), 'MINIRAY_HOME');
}

/**
 * The token a head uses: the one resolveToken() finds, else 32 random bytes (hex) written to
 * sessionDir()/auth_token (0600). Two heads starting at once agree: the file is created exclusively.
 */
export function createToken(): string {
  const existing = resolveToken();
  if (existing !== undefined) return existing;
  ensureDir();
  const token = randomBytes(32).toString('hex');
  let fd: number;
  try {
    fd = openSync(tokenFile(), 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readToken(tokenFile(), 'MINIRAY_HOME');
    throw error;
  }
  try {
    writeSync(fd, `${token}\n`);
  } finally {
    closeSync(fd);
  }
  return token;
}

const latestAddressFile = () => join(sessionDir(), 'latest_address');

/**
 * The address to connect to: 'auto' is the latest head started on this machine; undefined is
 * MINIRAY_ADDRESS (itself possibly 'auto'), or undefined when that is unset too (no cluster: the
 * embedded default); anything else is returned as given.
 * @throws InvalidOptionError for 'auto' when no head was started here.
 */
export function resolveAddress(address: string | undefined): string | undefined {
  const given = address ?? (process.env.MINIRAY_ADDRESS?.trim() || undefined);
  if (given !== 'auto') return given;
  const latest = readLatestAddress();
  if (latest === undefined) {
    throw new InvalidOptionError(
      `address 'auto' means the latest head started on this machine, but there is none (${latestAddressFile()} ` +
        'does not exist): start one with `miniray start --head`, or pass the head\'s HOST:PORT.',
      'address',
    );
  }
  return latest;
}

/** The latest head's address on this machine, if one was started (and has not cleared it). */
export function readLatestAddress(): string | undefined {
  return readIfExists(latestAddressFile())?.trim() || undefined;
}

export function writeLatestAddress(address: string): void {
  ensureDir();
  writeAtomic(latestAddressFile(), `${address}\n`);
}

/** Removes latest_address, only if it still names `address` (a newer head may have replaced it). */
export function clearLatestAddress(address: string): void {
  if (readLatestAddress() === address) rmSync(latestAddressFile(), { force: true });
}

const processesDir = () => join(sessionDir(), 'processes');

export function writeProcessRecord(record: ProcessRecord): void {
  writeAtomic(join(ensureDir('processes'), `${record.pid}.json`), `${JSON.stringify(record)}\n`);
}

export function removeProcessRecord(pid: number): void {
  rmSync(join(processesDir(), `${pid}.json`), { force: true });
}

function parseRecord(text: string): ProcessRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { pid, role, address, startedAt, dashboardUrl } = value as Record<string, unknown>;
  if (!Number.isSafeInteger(pid) || (pid as number) <= 0) return undefined;
  if (role !== 'head' && role !== 'node') return undefined;
  if (typeof address !== 'string' || typeof startedAt !== 'string') return undefined;
  return { pid: pid as number, role, address, startedAt, ...(typeof dashboardUrl === 'string' ? { dashboardUrl } : {}) };
}

/** The record of process `pid`, if there is a well-formed one. */
export function readProcessRecord(pid: number): ProcessRecord | undefined {
  const text = readIfExists(join(processesDir(), `${pid}.json`));
  return text === undefined ? undefined : parseRecord(text);
}

/**
 * Every process record in the session directory; `malformed` lists files that are not one
 * (left alone: they are not ours to interpret).
 */
export function readProcessRecords(): { records: ProcessRecord[]; malformed: string[] } {
  let names: string[];
  try {
    names = readdirSync(processesDir());
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], malformed: [] };
    throw error;
  }
  const records: ProcessRecord[] = [];
  const malformed: string[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const path = join(processesDir(), name);
    const record = parseRecord(readIfExists(path) ?? '');
    if (record !== undefined && `${record.pid}.json` === name) records.push(record);
    else if (readIfExists(path) !== undefined) malformed.push(path);
  }
  return { records, malformed };
}

/** sessionDir()/logs, created (0700) if missing: where `miniray start` sends a daemon's output. */
export function logsDir(): string {
  return ensureDir('logs');
}
