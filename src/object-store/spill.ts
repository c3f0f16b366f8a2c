/**
 * Spilled objects: when the arena is full, objects nobody is reading are written to files here and
 * read back when needed. One file per object; files go when their object is freed or read back,
 * and at shutdown. Only files written here are ever removed: the directory may be the user's.
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync, rmdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class SpillDirectory {
  /** Whether this process made the directory (so it may remove it), once it exists. */
  private created: boolean | undefined;
  private readonly files = new Set<string>();

  constructor(readonly path: string) {}

  /** Writes an object's parts, one after another, to its file; returns the file's path. */
  write(id: string, parts: readonly Uint8Array[]): string {
    if (this.created === undefined) {
      this.created = !existsSync(this.path);
      mkdirSync(this.path, { recursive: true });
      // A program may end without shutdown(): its spill files go with it all the same.
      process.once('exit', this.clearAtExit);
    }
    const file = join(this.path, `miniray-${id}.spill`);
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

  private readonly clearAtExit = (): void => this.clear();

  /** Removes the files written here, and the directory if this process made it and it is empty. */
  clear(): void {
    process.off('exit', this.clearAtExit);
    for (const file of this.files) rmSync(file, { force: true });
    this.files.clear();
    if (this.created) {
      try {
        rmdirSync(this.path);
      } catch {
        // Not empty: someone else's files are there too.
      }
    }
    this.created = undefined;
  }
}
