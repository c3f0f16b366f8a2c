/**
 * The transport between a node and a worker: an ordered, batched message channel. Messages sent in
 * one turn of the event loop travel together as one frame (see protocol/frame.ts) in one
 * postMessage, flushed in a microtask, so a loop that submits 10,000 tasks costs a handful of
 * messages, and the frame's buffer is transferred, not copied. The node and worker code see only
 * `Channel`; the TCP transport between nodes will implement the same interface.
 *
 * What arrives is untrusted (user code in a worker can reach `parentPort`; later, bytes from a
 * socket): every posted value must be a frame, every frame a msgpack batch, and every message
 * pass the channel's parser (one of the validators in src/protocol). Anything else is reported to
 * the channel's error handler, never thrown, and the channel takes nothing more from that side: a
 * peer that sent one malformed message cannot be trusted with the next.
 */
import { MessageChannel, MessagePort, receiveMessageOnPort, type Worker } from 'node:worker_threads';
import { ProtocolError } from '../errors/index.js';
import { decodeFrame, encodeFrame } from '../protocol/index.js';

/** Checks one decoded message: the typed message, or what is wrong with it. */
export type MessageParser<In> = (message: unknown) => In | ProtocolError;

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
  /**
   * Sets the receiver of what could not be delivered: a posted value that is not a frame, a frame
   * that is not a batch, a message its parser rejects. After the first, nothing more is delivered.
   * Without a handler, the error is written to stderr.
   */
  onError(handler: (error: ProtocolError) => void): void;
  /**
   * Whether a message from the other side is waiting while this thread is busy in a synchronous
   * stretch; if so it is handled on the next turn of the event loop, in order. Absent, or false,
   * where the transport cannot tell synchronously.
   */
  inputWaiting?(): boolean;
  /**
   * Adds a listener of the channel's end, called once with why: this side closed it, or the other
   * side went (its port closed; a worker process's parent disconnected). Nothing more is
   * delivered after it. A listener added after the end is called at once. (Optional only so that a
   * test's fake channel need not have it: PortChannel, every real transport, does.)
   */
  onClose?(listener: (reason: string) => void): void;
  close(): void;
}

/** What PortChannel needs of a port: a worker_threads port or Worker, or a child process adapter. */
export interface MessageEndpoint {
  /** `transfer`: buffers to move rather than copy (ignored where the port cannot move them). */
  postMessage(message: unknown, transfer?: ArrayBuffer[]): void;
  /** 'close': the other side is gone (a MessagePort's close; a child process's IPC disconnect). */
  on(event: 'message' | 'close', listener: (message: never) => void): unknown;
  off(event: 'message' | 'close', listener: (message: never) => void): unknown;
}
export type PortLike = MessagePort | Worker | MessageEndpoint;

/** A child process's IPC channel as a PortLike (in the parent: the ChildProcess; in the child: process). */
export function processPort(target: {
  send?: (message: unknown) => boolean;
  on(event: 'message' | 'disconnect', listener: (message: never) => void): unknown;
  off(event: 'message' | 'disconnect', listener: (message: never) => void): unknown;
}): MessageEndpoint {
  // The IPC channel's end is its 'disconnect' (the other process exited or closed it).
  const name = (event: 'message' | 'close') => (event === 'close' ? 'disconnect' : event);
  return {
    postMessage: (message) => {
      target.send?.(message);
    },
    on: (event, listener) => target.on(name(event), listener),
    off: (event, listener) => target.off(name(event), listener),
  };
}

/** A Channel over a worker_threads port (the Worker object in the node, parentPort in a worker). */
const NO_ATTACHMENTS: readonly SharedArrayBuffer[] = Object.freeze([]);


export class PortChannel<Out, In> implements Channel<Out, In> {
  private outbox: Out[] = [];
  private attachments: SharedArrayBuffer[] = [];
  private flushQueued = false;
  private closed = false;
  /** Set by the first malformed input: nothing more is taken from the other side. */
  private broken = false;
  private handler: ((message: In, attached: readonly SharedArrayBuffer[]) => void) | null = null;
  private errorHandler: ((error: ProtocolError) => void) | null = null;
  /** Set once the channel has ended (see onClose), with why. */
  private endReason: string | undefined;
  private closeListeners: ((reason: string) => void)[] = [];
  private readonly portClosed = () => this.end('the other side closed the channel');
  /** Batches that arrived before onMessage() was called; delivered when it is. */
  private early: unknown[] = [];
  /** Posted values taken off the port by inputWaiting(), handled before any that arrive later. */
  private held: unknown[] = [];
  private readonly listener = (posted: unknown) => {
    if (this.held.length > 0) this.held.push(posted);
    else this.deliver(posted);
  };
  private readonly drainHeld = () => {
    // What arrives meanwhile joins the end of `held`, so the port's order is kept.
    while (this.held.length > 0) this.deliver(this.held.shift());
  };
  private readonly deliver = (posted: unknown) => {
    if (this.broken) return;
    const handler = this.handler;
    if (handler === null) {
      this.early.push(posted);
      return;
    }
    const unpacked = unpackPosted(posted);
    if (unpacked instanceof ProtocolError) return this.fail(unpacked);
    const { frame, attached } = unpacked;
    let batch: unknown[];
    try {
      batch = decodeFrame(frame);
    } catch (error) {
      return this.fail(new ProtocolError(`a frame could not be decoded as a batch of messages: ${(error as Error).message}`, 'frame'));
    }
    for (let i = 0; i < batch.length; i++) {
      const message = this.parse(batch[i]);
      if (message instanceof ProtocolError) return this.fail(message);
      handler(message, attached);
      // The handler may have closed the channel, or a message before this one broke it.
      if (this.broken || this.closed) return;
    }
  };

  /** `ownsPort`: close() also closes the port (for MessageChannel ports this channel created). */
  private readonly port: MessageEndpoint;

  constructor(
    port: PortLike,
    /** Checks each message that arrives (see src/protocol: parseWorkerToNode, parseNodeToWorker). */
    private readonly parse: MessageParser<In>,
    private readonly options: { ownsPort?: boolean } = {},
  ) {
    this.port = port as unknown as MessageEndpoint;
    this.port.on('message', this.listener);
    this.port.on('close', this.portClosed);
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

  onError(handler: (error: ProtocolError) => void): void {
    this.errorHandler = handler;
  }

  private fail(error: ProtocolError): void {
    this.broken = true;
    this.early = [];
    if (this.errorHandler !== null) this.errorHandler(error);
    else console.error(`miniray: a channel stopped taking messages: ${error.message}`);
  }

  /**
   * Only a worker_threads port can be read synchronously (receiveMessageOnPort); a waiting value
   * is taken off it and handled on the next turn, ahead of what arrives after it.
   */
  inputWaiting(): boolean {
    if (this.held.length > 0) return true;
    if (this.closed || this.broken || !(this.port instanceof MessagePort)) return false;
    const got = receiveMessageOnPort(this.port);
    if (got === undefined) return false;
    this.held.push(got.message);
    setImmediate(this.drainHeld);
    return true;
  }

  onClose(listener: (reason: string) => void): void {
    if (this.endReason !== undefined) listener(this.endReason);
    else this.closeListeners.push(listener);
  }

  close(): void {
    this.held = [];
    this.closed = true;
    this.outbox = [];
    this.attachments = [];
    this.port.off('message', this.listener);
    this.port.off('close', this.portClosed);
    if (this.options.ownsPort) (this.port as unknown as MessagePort).close();
    this.end('this side closed the channel');
  }

  private end(reason: string): void {
    if (this.endReason !== undefined) return;
    this.endReason = reason;
    if (!this.closed) this.close();
    const listeners = this.closeListeners;
    this.closeListeners = [];
    for (const listener of listeners) listener(reason);
  }
}

/**
 * The frame and attachments of a posted value, or what is wrong with it. What goes through the
 * port is a frame alone, or a frame with shared buffers:
 *
 *   Uint8Array                                    a frame (msgpack array of messages)
 *   { frame: Uint8Array, attached: SAB[] }        a frame whose messages refer to attached[i]
 */
function unpackPosted(posted: unknown): { frame: Uint8Array; attached: readonly SharedArrayBuffer[] } | ProtocolError {
  if (posted instanceof Uint8Array) return { frame: posted, attached: NO_ATTACHMENTS };
  if (typeof posted !== 'object' || posted === null) return notAFrame(posted);
  const { frame, attached } = posted as { frame?: unknown; attached?: unknown };
  if (!(frame instanceof Uint8Array)) return notAFrame(posted);
  if (!Array.isArray(attached) || !attached.every((buffer) => buffer instanceof SharedArrayBuffer)) {
    return new ProtocolError('a frame came with `attached` that is not an array of SharedArrayBuffers', 'attached');
  }
  return { frame, attached };
}

function notAFrame(posted: unknown): ProtocolError {
  const what =
    posted === null ? 'null' : Array.isArray(posted) ? 'an array' : typeof posted === 'object' ? 'an object without a `frame` Uint8Array' : typeof posted;
  return new ProtocolError(`a value posted to a channel must be a frame (a Uint8Array, or { frame, attached }), got ${what}`, 'frame');
}

/**
 * Two connected channels in one thread (over a MessageChannel), for tests of protocol users
 * without worker threads: the first receives what `parseFirst` accepts, the second what
 * `parseSecond` accepts. close() on both lets the process exit.
 */
export function inMemoryChannelPair<A, B>(parseFirst: MessageParser<B>, parseSecond: MessageParser<A>): [Channel<A, B>, Channel<B, A>] {
  const { port1, port2 } = new MessageChannel();
  return [new PortChannel<A, B>(port1, parseFirst, { ownsPort: true }), new PortChannel<B, A>(port2, parseSecond, { ownsPort: true })];
}

export { PendingRequest, RequestTable, type RequestTableOptions } from './requests.js';
