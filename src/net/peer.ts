/**
 * Request/response over any ordered message link (VS Code IPC's middle layer): ids, timeouts,
 * cancellation, typed errors both ways. The link is a socket (tcp.ts) or the other half of a
 * localPair(); the same Connection runs on both, so the embedded default and a cluster share a path.
 */
import {
  ConnectionError,
  MinirayError,
  ProtocolError,
  RequestCancelledError,
  RequestTimeoutError,
  fromErrorRecord,
  toErrorRecord,
} from '../errors/index.js';
import { parseEnvelope, type Envelope, type PeerHello } from './envelope.js';
import { RawBytes } from './frame.js';

/** A response value of bytes at least this large travels as a raw tail (see frame.ts). */
const RAW_TAIL_BYTES = 64 * 1024;

export interface RequestOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** One multiplexed connection; either side may call the other. */
export interface Peer {
  /** What the OTHER side said about itself. */
  readonly hello: PeerHello;
  request(method: string, body: unknown, options?: RequestOptions): Promise<unknown>;
  /** One-way, ordered with requests. */
  notify(method: string, body: unknown): void;
  /** Called once, when the connection closes (at once, later, if it is closed already). */
  onClose(listener: (reason: string) => void): void;
  close(reason?: string): void;
  readonly isClosed: boolean;
}

type Parse<T> = (body: unknown) => T | ProtocolError;
interface Method {
  readonly parse: Parse<unknown>;
  readonly handler: (body: unknown, peer: Peer, signal: AbortSignal) => unknown;
}

/**
 * Methods a side answers. A handler's throw or rejected promise reaches the caller as the same
 * typed error (an ErrorRecord on the wire, rebuilt with fromErrorRecord).
 */
export class Router {
  /** @internal */ readonly requests = new Map<string, Method>();
  /** @internal */ readonly notifications = new Map<string, Method>();

  handle<T>(method: string, parse: Parse<T>, handler: (body: T, peer: Peer, signal: AbortSignal) => unknown | Promise<unknown>): this {
    return this.add(this.requests, method, parse, handler as Method['handler']);
  }

  /** For notify(): nothing is answered; a throw is logged. */
  on<T>(method: string, parse: Parse<T>, handler: (body: T, peer: Peer) => void): this {
    return this.add(this.notifications, method, parse, handler as Method['handler']);
  }

  private add(table: Map<string, Method>, method: string, parse: Parse<unknown>, handler: Method['handler']): this {
    if (table.has(method)) throw new MinirayError(`Router: '${method}' has a handler already; each method has one`);
    table.set(method, { parse, handler });
    return this;
  }
}

/** What a Connection needs of its link. */
export interface Wire {
  /**
   * Sends in order; a message that cannot be sent (too big, not encodable) is returned as an
   * error. `tail`: a response's value, sent as raw bytes after it (it arrives as RawBytes).
   */
  send(message: Envelope, tail?: Uint8Array): MinirayError | undefined;
  /** Ends the link; the Connection has already settled its side. */
  close(): void;
  /** How the other side is named in errors and logs ("127.0.0.1:5123"). */
  readonly remote: string;
  /** Reports a misbehaving peer, once per connection (later calls are dropped). */
  report(problem: string): void;
  log(line: string): void;
}

interface Pending {
  readonly method: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export class Connection implements Peer {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly running = new Map<number, AbortController>();
  private readonly closeListeners: ((reason: string) => void)[] = [];
  private closedReason: string | undefined;

  constructor(
    readonly hello: PeerHello,
    private readonly router: Router,
    private readonly wire: Wire,
  ) {}

  get isClosed(): boolean {
    return this.closedReason !== undefined;
  }

  /** "node 3f2a... at 127.0.0.1:5123": how errors name this peer. */
  get description(): string {
    return `${this.hello.role} ${this.hello.nodeId} at ${this.wire.remote}`;
  }

  request(method: string, body: unknown, options: RequestOptions = {}): Promise<unknown> {
    if (this.closedReason !== undefined) {
      return Promise.reject(new ConnectionError(`cannot call '${method}': the connection to ${this.description} is closed (${this.closedReason})`));
    }
    const { signal, timeoutMs } = options;
    if (signal?.aborted) return Promise.reject(new RequestCancelledError(`'${method}' to ${this.description} was cancelled before it was sent`, { cause: signal.reason }));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const call: Pending = { method, resolve, reject, timer: undefined, signal, onAbort: undefined };
      this.pending.set(id, call);
      if (timeoutMs !== undefined) {
        call.timer = setTimeout(() => {
          this.giveUp(id, new RequestTimeoutError(`'${method}' to ${this.description} got no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      if (signal !== undefined) {
        call.onAbort = () => this.giveUp(id, new RequestCancelledError(`'${method}' to ${this.description} was cancelled`, { cause: signal.reason }));
        signal.addEventListener('abort', call.onAbort, { once: true });
      }
      const problem = this.wire.send({ type: 'request', id, method, body });
      if (problem !== undefined) this.settle(id)?.reject(problem);
    });
  }

  notify(method: string, body: unknown): void {
    if (this.closedReason !== undefined) return;
    const problem = this.wire.send({ type: 'notify', method, body });
    if (problem !== undefined) throw problem;
  }

  onClose(listener: (reason: string) => void): void {
    const reason = this.closedReason;
    if (reason === undefined) this.closeListeners.push(listener);
    else queueMicrotask(() => listener(reason));
  }

  close(reason = 'closed by this side'): void {
    if (this.closedReason !== undefined) return;
    this.wire.send({ type: 'bye', reason });
    this.closed(reason);
  }

  /** The link delivers each message it received, in order. */
  receive(message: unknown): void {
    if (this.closedReason !== undefined) return;
    const envelope = parseEnvelope(message);
    if (envelope instanceof ProtocolError) return this.misbehaved(envelope.message);
    switch (envelope.type) {
      case 'request':
        return this.answer(envelope.id, envelope.method, envelope.body);
      case 'response': {
        const call = this.settle(envelope.id);
        // No call: it timed out or was cancelled, and its late answer has nowhere to go.
        if (call === undefined) return;
        if (envelope.ok) call.resolve(envelope.value);
        else call.reject(fromErrorRecord(envelope.error));
        return;
      }
      case 'notify':
        return this.deliver(envelope.method, envelope.body);
      case 'cancel':
        this.running.get(envelope.id)?.abort(new RequestCancelledError(`the caller (${this.description}) cancelled the request`));
        this.running.delete(envelope.id);
        return;
      case 'bye':
        return this.closed(`closed by ${this.description}: ${envelope.reason}`);
      default:
        envelope satisfies never;
    }
  }

  /** The link ended or broke: every waiting call fails naming the peer, every running handler is aborted. */
  closed(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    this.wire.close();
    for (const id of [...this.pending.keys()]) {
      const call = this.settle(id);
      call?.reject(new ConnectionError(`'${call.method}' to ${this.description} failed: the connection closed (${reason})`));
    }
    for (const controller of this.running.values()) controller.abort(new ConnectionError(`the connection to ${this.description} closed (${reason})`));
    this.running.clear();
    for (const listener of this.closeListeners.splice(0)) {
      try {
        listener(reason);
      } catch (error) {
        // One listener's bug must not keep the others from hearing of the close.
        this.wire.log(`miniray: an onClose listener of ${this.description} threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      }
    }
  }

  private warn(problem: string): void {
    this.wire.report(`${this.hello.role} ${this.hello.nodeId}: ${problem}`);
  }

  private misbehaved(problem: string): void {
    this.warn(`${problem}; closing the connection`);
    this.closed(`the peer broke the protocol: ${problem}`);
  }

  private answer(id: number, method: string, body: unknown): void {
    if (this.running.has(id)) return this.misbehaved(`it sent request id ${id} twice`);
    const entry = this.router.requests.get(method);
    if (entry === undefined) {
      const known = [...this.router.requests.keys()].join(', ') || 'none';
      return this.reply(id, new ProtocolError(`${this.description} sent '${method}', which this side does not answer (methods: ${known})`, 'method'));
    }
    const parsed = parseBody(entry, body);
    if (parsed instanceof ProtocolError) {
      this.warn(`'${method}' rejected: ${parsed.message}`);
      return this.reply(id, parsed);
    }
    const controller = new AbortController();
    this.running.set(id, controller);
    let result: unknown;
    try {
      result = entry.handler(parsed, this, controller.signal);
    } catch (error) {
      return this.finish(id, controller, error, false);
    }
    if (isThenable(result)) result.then((value) => this.finish(id, controller, value, true), (error: unknown) => this.finish(id, controller, error, false));
    else this.finish(id, controller, result, true);
  }

  private finish(id: number, controller: AbortController, outcome: unknown, ok: boolean): void {
    // Cancelled or closed meanwhile: the caller no longer waits for it.
    if (this.running.get(id) !== controller) return;
    this.running.delete(id);
    if (ok) this.replyValue(id, outcome);
    else this.reply(id, outcome);
  }

  private replyValue(id: number, value: unknown): void {
    if (this.closedReason !== undefined) return;
    // Large bytes (chunks of pulled objects) go raw: neither encoded nor copied on the way out.
    const raw = value instanceof Uint8Array && value.byteLength >= RAW_TAIL_BYTES;
    const problem = raw ? this.wire.send({ type: 'response', id, ok: true, value: null }, value) : this.wire.send({ type: 'response', id, ok: true, value });
    // The value could not be sent (too big, not encodable): the caller gets why instead.
    if (problem !== undefined) this.reply(id, problem);
  }

  private reply(id: number, thrown: unknown): void {
    if (this.closedReason !== undefined) return;
    this.wire.send({ type: 'response', id, ok: false, error: toErrorRecord(thrown) });
  }

  private deliver(method: string, body: unknown): void {
    const entry = this.router.notifications.get(method);
    if (entry === undefined) return this.warn(`sent the notification '${method}', which this side does not handle`);
    const parsed = parseBody(entry, body);
    if (parsed instanceof ProtocolError) return this.warn(`notification '${method}' rejected: ${parsed.message}`);
    try {
      entry.handler(parsed, this, NEVER);
    } catch (error) {
      this.wire.log(`miniray: the handler of notification '${method}' from ${this.description} threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    }
  }

  /** A timeout or an abort: the caller stops waiting, and the handler's signal is told. */
  private giveUp(id: number, error: Error): void {
    const call = this.settle(id);
    if (call === undefined) return;
    this.wire.send({ type: 'cancel', id });
    call.reject(error);
  }

  /** Removes a waiting call and its timer and listener, and returns it to be settled. */
  private settle(id: number): Pending | undefined {
    const call = this.pending.get(id);
    if (call === undefined) return undefined;
    this.pending.delete(id);
    if (call.timer !== undefined) clearTimeout(call.timer);
    if (call.onAbort !== undefined) call.signal?.removeEventListener('abort', call.onAbort);
    return call;
  }
}

const NEVER = new AbortController().signal;

function parseBody(entry: Method, body: unknown): unknown {
  try {
    return entry.parse(body);
  } catch (error) {
    // A parser should return its ProtocolError; one that throws is treated the same way.
    return new ProtocolError(`the body is malformed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

export interface PairSide {
  readonly hello: PeerHello;
  readonly router: Router;
  readonly log?: (line: string) => void;
}

/**
 * Two Peers wired to each other in this process. Messages are delivered asynchronously (so that a
 * handler never runs inside its caller's stack) and in order; bodies pass without encoding, so
 * callers must not mutate them after sending.
 */
export function localPair(a: PairSide, b: PairSide): [Peer, Peer] {
  const wire = (self: PairSide, other: () => Connection, name: string): Wire => {
    const queue: Envelope[] = [];
    let scheduled = false;
    let open = true;
    let reported = false;
    const log = self.log ?? ((line: string) => console.error(line));
    const drain = (): void => {
      scheduled = false;
      const target = other();
      for (const message of queue.splice(0)) target.receive(message);
      if (!open) target.closed(`closed by ${name}`);
    };
    return {
      remote: 'this process',
      log,
      report(problem) {
        if (reported) return;
        reported = true;
        log(`miniray: the peer in this process: ${problem}`);
      },
      send(message, tail) {
        if (!open) return undefined;
        // As a socket would deliver it: the raw tail becomes the response's value.
        queue.push(tail === undefined ? message : { ...message, value: new RawBytes([tail]) } as Envelope);
        if (!scheduled) {
          scheduled = true;
          queueMicrotask(drain);
        }
        return undefined;
      },
      close() {
        if (!open) return;
        open = false;
        if (!scheduled) {
          scheduled = true;
          queueMicrotask(drain);
        }
      },
    };
  };
  const left: Connection = new Connection(b.hello, a.router, wire(a, () => right, `${a.hello.role} ${a.hello.nodeId}`));
  const right: Connection = new Connection(a.hello, b.router, wire(b, () => left, `${b.hello.role} ${b.hello.nodeId}`));
  return [left, right];
}
