/**
 * Spilled objects: when the arena is full, objects nobody is reading are written to files here and
 * read back when needed. One file per object; files go when their object is freed or read back,
 * and at shutdown. Only files written by miniray are ever removed: the directory may be the user's.
 *
 * Files must not outlive their process however it ends:
 *  - `exit` (with or without shutdown()) and SIGINT/SIGTERM/SIGHUP remove them at once. A signal
 *    handler is installed only while files exist and only for signals the program has no handler
 *    of its own for; after cleaning up it removes itself and raises the signal again, so the
 *    process ends as it would have without miniray.
 *  - SIGKILL (or a crash) cannot be caught: the next miniray to start on the machine removes them.
 *    Every file and directory is named with its process's tag, `<pid>-<start time>.<pid namespace>`,
 *    and one that belongs to no live process is swept. The start time (Linux: /proc/<pid>/stat)
 *    tells a reused pid from the process that made the files; other live miniray processes keep
 *    theirs, and so do processes of other pid namespaces (containers sharing the temp directory),
 *    which cannot be looked up from here.
 *
 * Layout: the default spill directory is `<tmpdir>/miniray-spill-<tag>-<random>/`, removed whole.
 * A directory the user names gets flat files `miniray-<tag>-<object id>.spill`, and a session
 * folder of the same name in tmpdir records where it is, so that a sweep finds it after a SIGKILL
 * even when the next start names another directory (or none).
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  readSync,
  rmdirSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { randomHex } from '../ids/index.js';

const SESSION = /^miniray-spill-(\d+)-(?:(\d+(?:\.\d+)?)-)?[0-9a-f]+$/;
const FILE = /^miniray-(\d+)-(\d+(?:\.\d+)?)-[0-9a-f]+\.spill$/;
/** In a session folder: where the user's spill directory is, when the spill files are there. */
const MARKER = 'directory.json';

/** When the process `pid` started (clock ticks since boot), or undefined where that cannot be read. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22; fields are counted after the command name, which is in parentheses and may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** This process's pid namespace (Linux: the inode of /proc/self/ns/pid), or undefined. */
function pidNamespace(): string | undefined {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
  } catch {
    return undefined;
  }
}

const ownStart = startTimeOf(process.pid) ?? '0';
const ownNamespace = pidNamespace();
/**
 * This process's tag in the names of its spill files and folders: `<pid>-<start time>` and, where
 * known, `.<pid namespace>`. A process in another pid namespace (another container sharing the
 * temp directory) cannot be seen from here, so its files must not be taken for a dead process's.
 */
export const PROCESS_TAG = `${process.pid}-${ownStart}${ownNamespace === undefined ? '' : `.${ownNamespace}`}`;

/**
 * Whether the process that wrote files tagged `pid`-`start` may still be running. Unsure means
 * yes: files of a live process are never taken. Start '0' (or none) means it was not known there.
 */
export function isProcessAlive(pid: number, tagStart: string | undefined): boolean {
  const [start, namespace] = tagStart === undefined ? [undefined, undefined] : tagStart.split('.');
  if (namespace !== undefined && namespace !== ownNamespace) return true; // not a pid we can look up
  if (pid === process.pid) return start === undefined || start === '0' || start === ownStart;
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
  if (start === undefined || start === '0') return true;
  const now = startTimeOf(pid);
  return now === undefined || now === start; // another start time: the pid was reused
}

function entries(directory: string): string[] {
  try {
    return readdirSync(directory);
  } catch {
    return [];
  }
}

/** Removes spill files in `directory` of processes that are gone (of `onlyTag` alone, if given). */
function sweepDirectory(directory: string, onlyTag?: string): void {
  for (const name of entries(directory)) {
    const match = FILE.exec(name);
    if (match === null) continue;
    const [, pid, start] = match;
    if (onlyTag !== undefined ? `${pid}-${start}` !== onlyTag : isProcessAlive(Number(pid), start)) continue;
    rmSync(join(directory, name), { force: true });
  }
}

/**
 * Removes what dead miniray processes left in the temp directory and in `directory` (the spill
 * directory about to be used, if the user named one). Run at every start of an object store.
 */
export function sweepStaleSpillFiles(directory?: string): void {
  const base = tmpdir();
  for (const name of entries(base)) {
    const match = SESSION.exec(name);
    if (match === null) continue;
    const [, pid, start] = match;
    if (isProcessAlive(Number(pid), start)) continue;
    const session = join(base, name);
    try {
      const marker = JSON.parse(readFileSync(join(session, MARKER), 'utf8')) as { directory?: unknown; created?: unknown };
      if (typeof marker.directory === 'string') {
        sweepDirectory(marker.directory, `${pid}-${start}`);
        if (marker.created === true) rmdirQuietly(marker.directory);
      }
    } catch {
      // No marker: the session folder held the files itself.
    }
    try {
      rmSync(session, { recursive: true, force: true });
    } catch {
      // Another process's folder we may not remove, or another sweep got there first.
    }
  }
  if (directory !== undefined) sweepDirectory(directory);
}

function rmdirQuietly(directory: string): void {
  try {
    rmdirSync(directory);
  } catch {
    // Not empty (someone else's files are there too), or gone.
  }
}

export class SpillDirectory {
  /** Where the spill files go. */
  readonly path: string;
  /** This store's folder in tmpdir: the files themselves, or (for a named directory) the marker. */
  private readonly session: string;
  private readonly named: boolean;
  /** Whether this process made `path` (so it may remove it), once it exists. */
  private created: boolean | undefined;
  private readonly files = new Set<string>();

  /** @param directory the user's spill directory; default: a new folder in the temp directory. */
  constructor(directory?: string) {
    this.session = join(tmpdir(), `miniray-spill-${PROCESS_TAG}-${randomHex().slice(0, 8)}`);
    this.named = directory !== undefined;
    this.path = directory ?? this.session;
    sweepStaleSpillFiles(directory);
  }

  /** Writes an object's parts, one after another, to its file; returns the file's path. */
  write(id: string, parts: readonly Uint8Array[]): string {
    if (this.created === undefined) this.open();
    const file = join(this.path, `miniray-${PROCESS_TAG}-${id}.spill`);
    this.files.add(file);
    const fd = openSync(file, 'w');
    try {
      for (const part of parts) {
        for (let written = 0; written < part.byteLength; ) {
          written += writeSync(fd, part, written, part.byteLength - written);
        }
      }
    } catch (error) {
      closeSync(fd);
      this.remove(file);
      throw error;
    }
    closeSync(fd);
    return file;
  }

  /** Reads a spilled object's parts back into `targets` (the same lengths, in order). */
  read(file: string, targets: readonly Uint8Array[]): void {
    const fd = openSync(file, 'r');
    try {
      let position = 0;
      for (const target of targets) {
        for (let read = 0; read < target.byteLength; ) {
          const n = readSync(fd, target, read, target.byteLength - read, position);
          if (n === 0) throw new Error(`spill file ${file} is shorter than expected`);
          read += n;
          position += n;
        }
      }
    } finally {
      closeSync(fd);
    }
  }

  remove(file: string): void {
    rmSync(file, { force: true });
    this.files.delete(file);
  }

  /** Removes the files written here, and the directory if this process made it and it is empty. */
  clear(): void {
    unwatch(this);
    for (const file of this.files) rmSync(file, { force: true });
    this.files.clear();
    if (this.created) rmdirQuietly(this.path);
    if (this.named && this.created !== undefined) rmSync(this.session, { recursive: true, force: true });
    this.created = undefined;
  }

  /** Makes the directory (and, for a named one, the session marker) before the first file. */
  private open(): void {
    const existed = existsSync(this.path);
    mkdirSync(this.path, { recursive: true });
    // Watched before the marker exists, so that a signal from here on finds everything to remove.
    this.created = !existed;
    watch(this);
    if (this.named) {
      mkdirSync(this.session);
      writeFileSync(join(this.session, MARKER), JSON.stringify({ directory: this.path, created: !existed }));
    }
  }
}

// ---- removal at exit and on signals --------------------------------------------------------------

const live = new Set<SpillDirectory>();
const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** Signals this module handles now (those the program had no handler for). */
let handled: NodeJS.Signals[] = [];

const clearAll = (): void => {
  for (const directory of [...live]) directory.clear();
};

function onSignal(signal: NodeJS.Signals): void {
  // A handler of the program's own, added since: it decides whether the process ends ('exit'
  // removes the files if it does).
  if (process.listenerCount(signal) > 1) return;
  clearAll();
  stopHandling();
  // Node's default for the signal is back now that nobody listens: end as it would have.
  process.kill(process.pid, signal);
}

function stopHandling(): void {
  for (const signal of handled) process.off(signal, onSignal);
  handled = [];
}

function watch(directory: SpillDirectory): void {
  if (live.size === 0) {
    process.on('exit', clearAll);
    // Signals reach the main thread only; a program with its own handler keeps it alone.
    if (isMainThread) {
      handled = SIGNALS.filter((signal) => process.listenerCount(signal) === 0);
      for (const signal of handled) process.on(signal, onSignal);
    }
  }
  live.add(directory);
}

function unwatch(directory: SpillDirectory): void {
  if (!live.delete(directory) || live.size > 0) return;
  process.off('exit', clearAll);
  stopHandling();
}
