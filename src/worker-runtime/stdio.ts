/**
 * A worker's stdout and stderr, written synchronously to the process's file descriptors 1 and 2.
 *
 * Node pipes a worker thread's `process.stdout` through the main thread: each write becomes a
 * message on an internal port of the Worker, apart from the port that results travel on, and the
 * main thread copies it to its own stdout when it gets to it. So a task's result could reach the
 * driver before the lines the task had logged (the driver printed its result first), and lines still
 * in that port when the driver exited, or when shutdown() terminated the worker, were lost (4 to 7
 * runs in 20). Node's write callback does not tell when the main thread has the chunk either (one
 * "wants more data" reply acknowledges every chunk sent before it arrived), so there is nothing
 * exact to drain. Written here instead, every line is in the file before the task's result is sent:
 * it cannot be lost at exit or terminate(), and it comes out in the order the task wrote it.
 *
 * A worker process ('process' isolation) shares the driver's descriptors (stdio 'inherit'); its own
 * libuv stream would queue what a full pipe does not take at once, and the SIGKILL that ends it
 * would lose that. It writes the same way.
 */
import { writeSync } from 'node:fs';
import type { Writable } from 'node:stream';

type WriteCallback = (error?: Error | null) => void;
interface Chunk {
  readonly chunk: unknown;
  readonly encoding: BufferEncoding;
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `bytes` to `fd`, waiting while a non-blocking pipe is full. */
function writeAll(fd: number, bytes: Uint8Array): void {
  let backoffMs = 1;
  for (let offset = 0; offset < bytes.byteLength; ) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.byteLength - offset);
      backoffMs = 1;
    } catch (error) {
      // The driver's stdout is often a pipe that its libuv made non-blocking: when the reader is
      // behind, wait (this worker's task waits, as a blocking write would) rather than drop.
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      Atomics.wait(pause, 0, 0, backoffMs);
      backoffMs = Math.min(backoffMs * 2, 50);
    }
  }
}

function bytesOf({ chunk, encoding }: Chunk): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  return Buffer.from(String(chunk), Buffer.isEncoding(encoding) ? encoding : 'utf8');
}

/**
 * Writes all of `bytes` to `fd`; when there is nowhere to write (EPIPE: the reader is gone; EBADF:
 * closed), the output is dropped, as a terminal that went away drops it; the task is not failed for it.
 */
export function writeOut(fd: number, bytes: Uint8Array): void {
  try {
    writeAll(fd, bytes);
  } catch {
    // dropped (see above)
  }
}

/** What a write to stdout (fd 1) or stderr (fd 2) goes through: by default, straight to the descriptor. */
export type OutputRoute = (fd: 1 | 2, bytes: Uint8Array) => void;

function writeDirectly(stream: Writable, fd: 1 | 2, route: OutputRoute): void {
  const writeChunks = (chunks: readonly Chunk[], callback: WriteCallback): void => {
    try {
      for (const chunk of chunks) route(fd, bytesOf(chunk));
    } catch (error) {
      // The route writes with writeOut, which drops what cannot be written; anything else thrown
      // here would end the task in a write callback: say it, once, on the descriptor itself.
      writeOut(2, Buffer.from(`miniray worker: output could not be written: ${(error as Error).message}\n`));
    }
    callback();
  };
  stream._writev = writeChunks;
  stream._write = (chunk: unknown, encoding: BufferEncoding, callback: WriteCallback) => writeChunks([{ chunk, encoding }], callback);
}

/**
 * From now on this worker's stdout and stderr go through `route` (the prefixer of task output,
 * output.ts), which writes synchronously to the process's descriptors 1 and 2.
 */
export function writeStdioDirectly(route: OutputRoute = writeOut): void {
  writeDirectly(process.stdout, 1, route);
  writeDirectly(process.stderr, 2, route);
}
