/**
 * Working-directory packages: `miniray job submit --working-dir DIR` packs DIR as a tar.gz, the
 * head keeps it under its sha256, and each job that names it (`runtimeEnv.workingDir:
 * 'pkg://<sha256>'`) gets its own unpacked copy as its cwd. A package is bytes from the network:
 * it is checked against its hash, its size is limited (packed and unpacked), and no entry may land
 * outside the folder it is unpacked into (absolute paths, `..`, links that point out, devices are
 * refused), when it is uploaded and again when it is unpacked.
 */
import { createHash } from 'node:crypto';
import { Stats, createWriteStream, readlinkSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { create, list, type ReadEntry } from 'tar';
import { entryProblem, unpackSafely } from '../node/working-dir.js';
import { JobError } from './errors.js';

export const PACKAGE_SCHEME = 'pkg://';
const SHA256 = /^[0-9a-f]{64}$/;

/** Unpacked, a package may be this many times its packed size (gzip of text is ~5-10x): past it, a bomb. */
const UNPACKED_RATIO = 10;
const MAX_ENTRIES = 200_000;

/** Directories the packer leaves out: version control only (a job may need its node_modules). */
const EXCLUDED = new Set(['.git', '.hg', '.svn']);

export function isPackageHash(text: string): boolean {
  return SHA256.test(text);
}

/** The sha256 of a `pkg://<sha256>` working dir, or undefined when it is not one. */
export function packageHashOf(workingDir: string): string | undefined {
  if (!workingDir.startsWith(PACKAGE_SCHEME)) return undefined;
  const hash = workingDir.slice(PACKAGE_SCHEME.length);
  if (!isPackageHash(hash)) {
    throw new JobError(`runtimeEnv.workingDir '${workingDir}' is not a package: it must be pkg://<sha256 in 64 lowercase hex digits>, as \`miniray job submit --working-dir\` uploads it`, 400);
  }
  return hash;
}

// Why an entry may not be unpacked: the same rule as runtimeEnv.workingDir packages' on nodes.
export { entryProblem };

export interface PackageStoreOptions {
  /** Where packages and unpacked working dirs are kept (the head's session directory). */
  readonly dir: string;
  /** Largest package accepted, in bytes (packed). */
  readonly maxBytes: number;
}

/** The head's packages: uploads kept by hash, unpacked once per job. */
export class PackageStore {
  constructor(private readonly options: PackageStoreOptions) {}

  get maxBytes(): number {
    return this.options.maxBytes;
  }

  private path(hash: string): string {
    return join(this.options.dir, 'job_packages', `${hash}.tar.gz`);
  }

  async has(hash: string): Promise<boolean> {
    if (!isPackageHash(hash)) return false;
    try {
      return (await stat(this.path(hash))).isFile();
    } catch {
      return false;
    }
  }

  /**
   * Stores the bytes of `body` as package `hash`, once they are all there, hash to it, stay under
   * the size limit and are an archive that may be unpacked (see entryProblem).
   * @throws JobError 400 (wrong hash, not a tar.gz, an entry that escapes) or 413 (too big).
   */
  async put(hash: string, body: Readable, declaredBytes?: number): Promise<void> {
    if (!isPackageHash(hash)) throw new JobError(`'${hash}' is not a package name: it must be the sha256 of the package, in 64 lowercase hex digits`, 400);
    const limit = this.options.maxBytes;
    if (declaredBytes !== undefined && declaredBytes > limit) throw tooBig(declaredBytes, limit);
    const target = this.path(hash);
    await mkdir(join(this.options.dir, 'job_packages'), { recursive: true, mode: 0o700 });
    const temp = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.part`;
    const digest = createHash('sha256');
    let bytes = 0;
    try {
      await pipeline(
        body,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            bytes += chunk.length;
            if (bytes > limit) throw tooBig(bytes, limit);
            digest.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(temp, { mode: 0o600 }),
      );
      const actual = digest.digest('hex');
      if (actual !== hash) throw new JobError(`the package's bytes hash to ${actual}, not to ${hash} as its name says: upload it again (it was cut short or changed on the way)`, 400);
      await checkArchive(temp, limit * UNPACKED_RATIO);
      await rename(temp, target);
    } finally {
      await rm(temp, { force: true });
    }
  }

  /**
   * Unpacks package `hash` into `into` (made empty first).
   * @throws JobError 404 when there is no such package, 400 when it may not be unpacked.
   */
  async unpack(hash: string, into: string): Promise<void> {
    if (!(await this.has(hash))) {
      throw new JobError(`there is no package ${hash} on the head: upload it first (PUT /api/packages/${hash}), as \`miniray job submit --working-dir\` does`, 404);
    }
    await rm(into, { recursive: true, force: true });
    await mkdir(into, { recursive: true, mode: 0o700 });
    const problem = await unpackSafely(this.path(hash), into, this.options.maxBytes * UNPACKED_RATIO);
    if (problem !== undefined) {
      await rm(into, { recursive: true, force: true });
      throw new JobError(`package ${hash} cannot be unpacked: ${problem}`, 400);
    }
  }
}

function tooBig(bytes: number, limit: number): JobError {
  return new JobError(
    `the package is ${bytes > limit ? `more than ${limit}` : bytes} bytes, over the head's limit of ${limit} (setting jobMaxPackageBytes, env MINIRAY_JOB_MAX_PACKAGE_BYTES): ` +
      'leave large data out of --working-dir (read it from shared storage), or raise the limit on the head',
    413,
  );
}

/** Reads the whole archive's headers: a bad gzip, a bad entry or too much is a JobError 400. */
async function checkArchive(file: string, unpackedLimit: number): Promise<void> {
  let problem: string | undefined;
  let unpacked = 0;
  let entries = 0;
  try {
    await list({
      file,
      strict: true,
      onReadEntry: (entry: ReadEntry) => {
        entries++;
        unpacked += entry.size ?? 0;
        problem ??= entryProblem(entry.path, entry.type, entry.linkpath);
        if (problem === undefined && unpacked > unpackedLimit) problem = `it unpacks to more than ${unpackedLimit} bytes`;
        if (problem === undefined && entries > MAX_ENTRIES) problem = `it has more than ${MAX_ENTRIES} entries`;
      },
    });
  } catch (error) {
    throw new JobError(`the package is not a tar.gz archive that can be read: ${(error as Error).message}`, 400, { cause: error });
  }
  if (problem !== undefined) throw new JobError(`the package cannot be unpacked: ${problem}`, 400);
}

/**
 * Packs `dir` (for `--working-dir`) as a tar.gz in memory: its bytes, their sha256, and the links
 * left out because they point outside `dir` (the head would refuse them; a linked
 * node_modules/miniray, as `npm link` makes, is the usual one, and the head offers its own miniray).
 * @throws JobError 413 when it passes `maxBytes` packed.
 */
export async function packDirectory(dir: string, maxBytes: number): Promise<{ bytes: Buffer; sha256: string; leftOut: string[] }> {
  const info = await stat(dir).catch((error: unknown) => {
    throw new JobError(`--working-dir ${dir}: ${(error as Error).message}`, 400, { cause: error });
  });
  if (!info.isDirectory()) throw new JobError(`--working-dir ${dir} is not a directory`, 400);
  const chunks: Buffer[] = [];
  let bytes = 0;
  const digest = createHash('sha256');
  const leftOut: string[] = [];
  const keep = (path: string, entry: Stats | ReadEntry): boolean => {
    if (path.split('/').some((part) => EXCLUDED.has(part))) return false;
    if (!(entry instanceof Stats) || !entry.isSymbolicLink()) return true;
    const target = readlinkSync(join(dir, path));
    if (entryProblem(path.replace(/^\.\//, ''), 'SymbolicLink', target) === undefined) return true;
    leftOut.push(`${path.replace(/^\.\//, '')} -> ${target}`);
    return false;
  };
  const stream = create({ gzip: true, cwd: dir, portable: true, filter: keep }, ['.']);
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > maxBytes) {
      throw new JobError(`--working-dir ${dir} packs to more than ${maxBytes} bytes (the limit): leave large data out of it (read it from shared storage on the cluster)`, 413);
    }
    digest.update(chunk);
    chunks.push(chunk);
  }
  return { bytes: Buffer.concat(chunks), sha256: digest.digest('hex'), leftOut };
}
