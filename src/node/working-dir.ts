/**
 * runtimeEnv.workingDir in a cluster, as Ray's: the driver packs the directory (a tar.gz, with
 * `excludes` left out), stores it once in the GCS KV under its content hash, and the spec carries
 * `gcs://_miniray_pkg_<sha256>.tar.gz` instead of the driver's path. A node that runs a task or
 * actor with it fetches the package once, checks it against its hash, unpacks it into a cache
 * directory of its own and starts the worker process there. The embedded default uses the
 * directory in place (nothing here runs).
 *
 * A package is bytes from the network: no entry may land outside the folder it is unpacked into
 * (absolute paths, `..`, links that point out, devices are refused), and it may unpack to at most
 * UNPACKED_RATIO times its size.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readlinkSync, rmSync, Stats } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { create, extract, type ReadEntry } from 'tar';
import { InvalidOptionError, MinirayError, RuntimeEnvSetupError } from '../errors/index.js';

/** The GCS KV namespace of working-directory packages (Ray keeps its packages in the KV too). */
export const PACKAGES = 'pkg';
const URI_PREFIX = 'gcs://_miniray_pkg_';
const URI_SUFFIX = '.tar.gz';
const URI = /^gcs:\/\/_miniray_pkg_([0-9a-f]{64})\.tar\.gz$/;
/** Unpacked, a package may be this many times its packed size (gzip of text is ~5-10x): past it, a bomb. */
const UNPACKED_RATIO = 10;
/** Version control folders: never packed (as `miniray job submit --working-dir`). */
const ALWAYS_EXCLUDED = new Set(['.git', '.hg', '.svn']);
/**
 * How long a node waits for a package the spec names but the GCS does not have yet: the driver's
 * upload and its task travel on different connections, so a large upload may arrive second.
 */
const FETCH_PATIENCE_MS = 60_000;

export function isPackageUri(workingDir: string): boolean {
  return workingDir.startsWith(URI_PREFIX);
}

/** The package's KV key (its sha256), or undefined when `uri` is not a package URI. */
function hashOf(uri: string): string | undefined {
  return URI.exec(uri)?.[1];
}

/**
 * Unpacks the tar.gz `file` into `into`, only what entryProblem allows and at most `unpackedLimit`
 * bytes in all (a small archive may not unpack into a huge one); returns why it stopped, if it did.
 * (The Jobs API's packages are unpacked with it too.)
 */
export async function unpackSafely(file: string, into: string, unpackedLimit: number): Promise<string | undefined> {
  let unpacked = 0;
  let problem: string | undefined;
  await extract({
    file,
    cwd: into,
    strict: true,
    preservePaths: false,
    preserveOwner: false,
    filter: (path, entry) => {
      const e = entry as ReadEntry;
      problem ??= entryProblem(path, e.type, e.linkpath);
      unpacked += e.size ?? 0;
      if (problem === undefined && unpacked > unpackedLimit) problem = `it unpacks to more than ${unpackedLimit} bytes`;
      return problem === undefined;
    },
  });
  return problem;
}

/**
 * Why the entry may not be unpacked under a folder, or undefined when it may: only files,
 * folders and links that stay inside. (The Jobs API's packages are checked with it too.)
 */
export function entryProblem(path: string, type: string, linkpath: string | undefined): string | undefined {
  if (!['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link'].includes(type)) return `'${path}' is a ${type}, not a file, folder or link`;
  const escapes = (p: string) => p.startsWith('/') || /^[A-Za-z]:/.test(p) || p.split(/[\\/]/).includes('..');
  if (escapes(path)) return `'${path}' would be unpacked outside the working directory`;
  if (type === 'SymbolicLink' || type === 'Link') {
    if (linkpath === undefined || linkpath === '') return `link '${path}' has no target`;
    // A symlink's target is relative to the link's folder; a hard link's to the archive's root.
    const base = type === 'SymbolicLink' ? posix.dirname(path) : '.';
    if (linkpath.startsWith('/') || posix.normalize(posix.join(base, linkpath)).split('/')[0] === '..') {
      return `link '${path}' points outside the working directory (to '${linkpath}')`;
    }
  }
  return undefined;
}

/**
 * A matcher for Ray's `excludes` (gitignore-style): a pattern without a `/` (other than a
 * trailing one) matches a file or folder of that name at any depth; one with a `/` matches from
 * the working directory's root; `*` and `?` stay within a name, `**` spans folders; a trailing
 * `/` matches folders only. An excluded folder is left out with everything in it.
 */
export function excludeMatcher(patterns: readonly string[]): (path: string, isDirectory: boolean) => boolean {
  const rules = patterns.map((pattern) => {
    const dirOnly = pattern.endsWith('/');
    let body = dirOnly ? pattern.slice(0, -1) : pattern;
    const anchored = body.includes('/');
    if (body.startsWith('/')) body = body.slice(1);
    const source = body
      .split(/(\*\*\/?|\*|\?)/)
      .map((part) => (part === '**/' ? '(?:.*/)?' : part === '**' ? '.*' : part === '*' ? '[^/]*' : part === '?' ? '[^/]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('');
    return { regex: new RegExp(anchored ? `^${source}$` : `(?:^|/)${source}$`), dirOnly };
  });
  return (path, isDirectory) => rules.some((rule) => (!rule.dirOnly || isDirectory) && rule.regex.test(path));
}

/**
 * Packs `dir` as a tar.gz (synchronously: a task's `.remote()` returns at once, and its spec must
 * name the package), leaving out `excludes`, version control folders and links that point outside.
 * @throws InvalidOptionError when the package passes `maxBytes` (it says how to make it smaller).
 */
export function packWorkingDir(dir: string, excludes: readonly string[], maxBytes: number): { uri: string; bytes: Buffer } {
  const excluded = excludeMatcher(excludes);
  const filter = (path: string, entry: Stats | ReadEntry): boolean => {
    const rel = path.replace(/^\.\/?/, '');
    if (rel === '') return true;
    if (rel.split('/').some((part) => ALWAYS_EXCLUDED.has(part))) return false;
    const stats = entry instanceof Stats ? entry : undefined;
    if (excluded(rel, stats?.isDirectory() === true)) return false;
    if (stats?.isSymbolicLink() === true) return entryProblem(rel, 'SymbolicLink', readlinkSync(join(dir, rel))) === undefined;
    return true;
  };
  const scratch = join(tmpdir(), `miniray-pack-${process.pid}-${Math.random().toString(36).slice(2)}.tar.gz`);
  let bytes: Buffer;
  try {
    create({ sync: true, gzip: true, file: scratch, cwd: dir, portable: true, filter }, ['.']);
    bytes = readFileSync(scratch);
  } finally {
    rmSync(scratch, { force: true });
  }
  if (bytes.byteLength > maxBytes) {
    throw new InvalidOptionError(
      `runtimeEnv.workingDir ${dir} packs to ${bytes.byteLength} bytes, over the limit of ${maxBytes} (setting jobMaxPackageBytes, env MINIRAY_JOB_MAX_PACKAGE_BYTES): ` +
        "leave large files out with runtimeEnv.excludes (e.g. ['data/', '*.bin']) and read them from shared storage, or raise the limit",
      'runtimeEnv.workingDir',
    );
  }
  return { uri: `${URI_PREFIX}${createHash('sha256').update(bytes).digest('hex')}${URI_SUFFIX}`, bytes };
}

/** The package's KV key for a package URI. */
export function packageKey(uri: string): string {
  const hash = hashOf(uri);
  if (hash === undefined) throw new MinirayError(`'${uri}' is not a working-directory package URI (${URI_PREFIX}<sha256>${URI_SUFFIX})`);
  return hash;
}

/**
 * A node's unpacked working directories, by package URI: each fetched and unpacked once, into a
 * folder of the node's own (removed when the node stops).
 */
export class WorkingDirCache {
  private readonly dirs = new Map<string, string>();
  private readonly preparing = new Map<string, Promise<string>>();
  private readonly failed = new Map<string, Error>();

  constructor(
    private readonly root: string,
    private readonly fetch: (key: string) => Promise<Uint8Array | null>,
  ) {}

  /** The local folder of a prepared package URI; any other working dir as it is. */
  localDir(workingDir: string): string {
    return this.dirs.get(workingDir) ?? workingDir;
  }

  /** Whether what a spec names can be started in now (a path, or a package unpacked here). */
  isReady(workingDir: string | undefined): boolean {
    return workingDir === undefined || !isPackageUri(workingDir) || this.dirs.has(workingDir);
  }

  /** Whether the package is being fetched or unpacked now. */
  isPreparing(uri: string): boolean {
    return this.preparing.has(uri);
  }

  /** Why a package could not be prepared here (it is not tried again), or undefined. */
  failure(uri: string): Error | undefined {
    return this.failed.get(uri);
  }

  /** Fetches and unpacks the package once; resolves to its folder here. */
  prepare(uri: string): Promise<string> {
    const known = this.dirs.get(uri);
    if (known !== undefined) return Promise.resolve(known);
    const failed = this.failed.get(uri);
    if (failed !== undefined) return Promise.reject(failed);
    let pending = this.preparing.get(uri);
    if (pending === undefined) {
      pending = this.unpack(uri).then(
        (dir) => {
          this.preparing.delete(uri);
          this.dirs.set(uri, dir);
          return dir;
        },
        (error: unknown) => {
          this.preparing.delete(uri);
          const reason = error instanceof RuntimeEnvSetupError ? error : new RuntimeEnvSetupError(`runtimeEnv.workingDir ${uri} could not be unpacked on this node: ${(error as Error).message}`, { cause: error });
          this.failed.set(uri, reason);
          throw reason;
        },
      );
      this.preparing.set(uri, pending);
    }
    return pending;
  }

  private async unpack(uri: string): Promise<string> {
    const key = packageKey(uri);
    const deadline = Date.now() + FETCH_PATIENCE_MS;
    let bytes: Uint8Array | null = null;
    for (let wait = 20; ; wait = Math.min(wait * 2, 1000)) {
      bytes = await this.fetch(key).catch(() => null);
      if (bytes !== null || Date.now() > deadline) break;
      await delay(wait);
    }
    if (bytes === null) {
      throw new RuntimeEnvSetupError(
        `runtimeEnv.workingDir ${uri} is not in the GCS (waited ${FETCH_PATIENCE_MS / 1000} s): the driver that uploaded it may have failed to, or the head restarted without it. Run the driver again`,
      );
    }
    const actual = createHash('sha256').update(bytes).digest('hex');
    if (actual !== key) throw new RuntimeEnvSetupError(`runtimeEnv.workingDir ${uri}: the GCS's package hashes to ${actual}, not to its name: it was changed or cut short; run the driver again`);
    const into = join(this.root, key);
    const temp = `${into}.${Math.random().toString(36).slice(2)}.part`;
    const file = `${temp}.tar.gz`;
    await mkdir(temp, { recursive: true, mode: 0o700 });
    try {
      await writeFile(file, bytes, { mode: 0o600 });
      const problem = await unpackSafely(file, temp, bytes.byteLength * UNPACKED_RATIO + 1024 * 1024);
      if (problem !== undefined) throw new RuntimeEnvSetupError(`runtimeEnv.workingDir ${uri} cannot be unpacked: ${problem}`);
      await rm(into, { recursive: true, force: true });
      await rename(temp, into);
      return into;
    } finally {
      await rm(file, { force: true });
      await rm(temp, { recursive: true, force: true });
    }
  }

  /** Removes the node's folder (at its shutdown). */
  clear(): void {
    this.dirs.clear();
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** The cache folder of a node: one per node (nodes on one machine keep theirs apart). */
export function workingDirCacheRoot(nodeId: string): string {
  const root = join(tmpdir(), `miniray-working-dirs-${process.getuid?.() ?? 'user'}`, nodeId.slice(0, 16));
  mkdirSync(root, { recursive: true, mode: 0o700 });
  return root;
}
