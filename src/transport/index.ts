/**
 * The transport between a node and a worker: an ordered, batched message channel. Messages sent in
 * one turn of the event loop travel together as one frame (see protocol/frame.ts) in one
 * postMessage, flushed in a microtask, so a loop that submits 10,000 tasks costs a handful of
 * messages, and the frame's buffer is transferred, not copied. The node and worker code see only
 * `Channel`; the TCP transport between nodes will implement the same interface.
 */
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { decodeFrame, encodeFrame } from '../protocol/index.js';

export interface Channel<Out, In> {
  /** Queues a message; it is delivered, in order, after the current synchronous work. */
  send(message: Out): void;
  /**
   * Shares memory with the other side: the buffer travels with the next frame (shared, not
   * copied), and messages of that frame refer to it by the returned index.
   */
  attach(buffer: SharedArrayBuffer): number;
  /** Delivers queued messages now. */
  flush(): void;
  /**
   * Sets the receiver. Messages of one batch are handed over one by one, in order, with the
   * buffers attached to their frame.
   */
  onMessage(handler: (message: In, attached: readonly SharedArrayBuffer[]) => void): void;
  close(): void;
}

/** What PortChannel needs of a port: a worker_threads port or Worker, or a child process adapter. */
export interface MessageEndpoint {
  /** `transfer`: buffers to move rather than copy (ignored where the port cannot move them). */
  postMessage(message: unknown, transfer?: ArrayBuffer[]): void;
  on(event: 'message', listener: (message: never) => void): unknown;
  off(event: 'message', listener: (message: never) => void): unknown;
}
export type PortLike = MessagePort | Worker | MessageEndpoint;

/** A child process's IPC channel as a PortLike (in the parent: the ChildProcess; in the child: process). */
export function processPort(target: {
  send?: (message: unknown) => boolean;
  on(event: 'message', listener: (message: never) => void): unknown;
  off(event: 'message', listener: (message: never) => void): unknown;
}): MessageEndpoint {
  return {
    postMessage: (message) => {
      target.send?.(message);
    },
    on: (event, listener) => target.on(event, listener),
    off: (event, listener) => target.off(event, listener),
  };
}

/** A Channel over a worker_threads port (the Worker object in the node, parentPort in a worker). */
const NO_ATTACHMENTS: readonly SharedArrayBuffer[] = Object.freeze([]);

/** What goes through the port: a frame alone, or a frame with shared buffers. */
type Posted = Uint8Array | { readonly frame: Uint8Array; readonly attached: SharedArrayBuffer[] };

export class PortChannel<Out, In> implements Channel<Out, In> {
  private outbox: Out[] = [];
  private attachments: SharedArrayBuffer[] = [];
  private flushQueued = false;
  private closed = false;
  private handler: ((message: In, attached: readonly SharedArrayBuffer[]) => void) | null = null;
  /** Batches that arrived before onMessage() was called; delivered when it is. */
  private early: Posted[] = [];
  private readonly listener = (posted: Posted) => {
    const handler = this.handler;
    if (handler === null) {
      this.early.push(posted);
      return;
    }
    const frame = posted instanceof Uint8Array ? posted : posted.frame;
    const attached = posted instanceof Uint8Array ? NO_ATTACHMENTS : posted.attached;
    const batch = decodeFrame(frame) as In[];
    for (let i = 0; i < batch.length; i++) handler(batch[i] as In, attached);
  };

  /** `ownsPort`: close() also closes the port (for MessageChannel ports this channel created). */
  private readonly port: MessageEndpoint;

  constructor(
    port: PortLike,
    private readonly options: { ownsPort?: boolean } = {},
  ) {
    this.port = port as unknown as MessageEndpoint;
    this.port.on('message', this.listener);
  }

  send(message: Out): void {
    if (this.closed) return;
    this.outbox.push(message);
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  attach(buffer: SharedArrayBuffer): number {
    return this.attachments.push(buffer) - 1;
  }

  flush(): void {
    this.flushQueued = false;
    if (this.outbox.length === 0 || this.closed) return;
    const frame = encodeFrame(this.outbox);
    this.outbox = [];
    const transfer = [frame.buffer as ArrayBuffer];
    if (this.attachments.length === 0) this.port.postMessage(frame, transfer);
    else {
      this.port.postMessage({ frame, attached: this.attachments }, transfer);
      this.attachments = [];
    }
  }

  onMessage(handler: (message: In, attached: readonly SharedArrayBuffer[]) => void): void {
    this.handler = handler;
    const early = this.early;
    this.early = [];
    for (const posted of early) this.listener(posted);
  }

  close(): void {
    this.closed = true;
    this.outbox = [];
    this.attachments = [];
    this.port.off('message', this.listener);
    if (this.options.ownsPort) (this.port as unknown as MessagePort).close();
  }
}

/**
 * Two connected channels in one thread (over a MessageChannel), for tests of protocol users
 * without worker threads. close() on both lets the process exit.
 */
export function inMemoryChannelPair<A, B>(): [Channel<A, B>, Channel<B, A>] {
  const { port1, port2 } = new MessageChannel();
  return [new PortChannel<A, B>(port1, { ownsPort: true }), new PortChannel<B, A>(port2, { ownsPort: true })];
}
