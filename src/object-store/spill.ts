/**
 * Spilled objects: when the arena is full, objects nobody is reading are written to files here and
 * read back when needed. One file per object; files go when their object is freed and at shutdown.
 */
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export class SpillDirectory {
  private created = false;

  constructor(readonly path: string) {}

  /** Writes an object's parts, one after another, to its file; returns the file's path. */
  write(id: string, parts: readonly Uint8Array[]): string {
    if (!this.created) {
      mkdirSync(this.path, { recursive: true });
      this.created = true;
    }
    const file = join(this.path, id);
    const fd = openSync(file, 'w');
    try {
      for (const part of parts) {
        for (let written = 0; written < part.byteLength; ) {
          written += writeSync(fd, part, written, part.byteLength - written);
        }
      }
    } catch (error) {
      closeSync(fd);
      rmSync(file, { force: true });
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
  }

  /** Removes the directory and every file in it. */
  clear(): void {
    if (this.created) rmSync(this.path, { recursive: true, force: true });
    this.created = false;
  }
}
