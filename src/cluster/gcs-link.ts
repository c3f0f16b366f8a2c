/**
 * A node's (or joined driver's) connection to the GCS that outlives the head: when the connection
 * closes, it connects again, with backoff, for up to gcsReconnectTimeoutMs (Ray's raylets wait
 * 60 s too), and hands the new connection to `onReconnect` (which registers the node again under
 * the same ID) before requests go on. Requests made meanwhile wait instead of failing, and
 * requests the closed connection dropped are sent again (every GCS method may be sent twice: a
 * registration sent again finds its entry). Only when the time is up does it give up: waiting
 * and later requests fail with GcsUnavailableError, and `ended` resolves (a `miniray start` node
 * exits then). The same retrying serves a node's first start, when the head may not be up yet.
 *
 * It is a GcsPeer, so that a GcsClient over it does not know about any of this.
 */
import { AuthenticationError, ConnectionError, GcsStoreError, GcsUnavailableError, RequestCancelledError, RequestTimeoutError } from '../errors/index.js';
import type { GcsPeer, GcsRequestOptions } from '../gcs/index.js';
import type { Peer, PeerHello } from '../net/index.js';

export interface GcsLinkOptions {
  /** HOST:PORT of the GCS, for messages. */
  readonly address: string;
  /** Opens one new connection to the GCS (its Router has the GCS's publishes on it). */
  readonly connect: () => Promise<Peer>;
  /** How long to keep trying once the GCS does not answer (gcsReconnectTimeoutMs). */
  readonly timeoutMs: number;
  readonly log?: (line: string) => void;
}

/** Waits between attempts: 100 ms, doubling to at most 1 s, with some jitter so nodes do not all call at once. */
function backoffMs(attempt: number): number {
  return Math.min(1_000, 100 * 2 ** attempt) * (0.75 + Math.random() * 0.5);
}

/** Failures worth another try: the connection, a timeout, or the GCS's store (Redis) failing for a moment. */
const isRetryable = (error: unknown): boolean => error instanceof ConnectionError || error instanceof RequestTimeoutError || error instanceof GcsStoreError;

interface Waiter {
  readonly resolve: (peer: Peer) => void;
  readonly reject: (error: Error) => void;
}

export class GcsLink implements GcsPeer {
  /**
   * Called with each new connection after the first, before any request waiting goes on over it
   * (the node registers again over it). A throw that is not about the connection (the GCS
   * refused the node) ends the link; a connection that fails meanwhile is tried again.
   */
  onReconnect: ((peer: Peer) => Promise<void>) | undefined;
  /** Called when a connection closes and the link starts reaching the GCS again; `hello` is the lost connection's. */
  onDisconnect: ((hello: PeerHello) => void) | undefined;
  /** Resolves, with why, when the link gives up or is closed. */
  readonly ended: Promise<string>;
  /** Times the link came back after its connection closed. */
  reconnects = 0;

  private current: Peer | undefined;
  private lastHello: PeerHello | undefined;
  private waiters: Waiter[] = [];
  private failure: Error | undefined;
  private closed = false;
  private readonly closeListeners: ((reason: string) => void)[] = [];
  private end: (reason: string) => void = () => {};
  private readonly log: (line: string) => void;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly options: GcsLinkOptions) {
    this.log = options.log ?? ((line) => console.error(line));
    this.ended = new Promise((resolve) => (this.end = resolve));
  }

  /**
   * The first connection. With `retry` (a `miniray start` node, which may start before its head),
   * tries until the GCS answers, for up to timeoutMs; else once. A refused token fails at once:
   * trying again would not change it.
   */
  async open(retry: boolean): Promise<Peer> {
    const peer = retry ? await this.connectUntil(Date.now() + this.options.timeoutMs, 'at start') : await this.options.connect();
    this.attach(peer);
    return peer;
  }

  get hello(): PeerHello {
    if (this.lastHello === undefined) throw new Error('GcsLink: used before open()');
    return this.lastHello;
  }

  get isClosed(): boolean {
    return this.closed || this.failure !== undefined;
  }

  /** Whether a connection to the GCS is up now (false while it is being reached again). */
  get connected(): boolean {
    return this.current !== undefined && !this.current.isClosed;
  }

  async request(method: string, body: unknown, options: GcsRequestOptions = {}): Promise<unknown> {
    for (;;) {
      const peer = this.connected ? (this.current as Peer) : await this.whenConnected(method, options.signal);
      try {
        return await peer.request(method, body, options);
      } catch (error) {
        // Lost with its connection (not refused by the GCS): sent again over the next one.
        if (!peer.isClosed || this.isClosed) throw error;
      }
    }
  }

  /** One-way messages (resource reports) sent while the GCS is away are dropped: the node reports again when it is back. */
  notify(method: string, body: unknown): void {
    if (this.connected) (this.current as Peer).notify(method, body);
  }

  /** Called once, when the link gives up or is closed (not when one connection closes and another follows). */
  onClose(listener: (reason: string) => void): void {
    this.closeListeners.push(listener);
  }

  close(reason = 'closed'): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.wake?.();
    this.current?.close(reason);
    this.finish(new ConnectionError(`the connection to the GCS at ${this.options.address} was closed (${reason})`), reason);
  }

  private attach(peer: Peer): void {
    this.current = peer;
    this.lastHello = peer.hello;
    peer.onClose((reason) => {
      if (this.current !== peer || this.isClosed) return;
      this.current = undefined;
      this.onDisconnect?.(peer.hello);
      void this.reconnect(reason);
    });
  }

  private whenConnected(method: string, signal: AbortSignal | undefined): Promise<Peer> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<Peer>((resolve, reject) => {
      const cancelled = (): RequestCancelledError =>
        new RequestCancelledError(`'${method}' was cancelled while waiting for the GCS at ${this.options.address} to answer again`, { cause: signal?.reason });
      if (signal?.aborted) {
        reject(cancelled()); // an abort event that has fired already would never come
        return;
      }
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(cancelled());
      };
      const waiter: Waiter = {
        resolve: (peer) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(peer);
        },
        reject: (error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(error);
        },
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private async reconnect(reason: string): Promise<void> {
    const started = Date.now();
    this.log(
      `miniray: the connection to the GCS at ${this.options.address} closed (${reason}); ` +
        `trying to reach it again for up to ${this.options.timeoutMs / 1000} s (gcsReconnectTimeoutMs); work that does not need it goes on`,
    );
    const deadline = started + this.options.timeoutMs;
    for (;;) {
      let peer: Peer;
      try {
        peer = await this.connectUntil(deadline, `after its connection closed (${reason})`);
      } catch (error) {
        if (!this.closed) this.giveUp(error as Error);
        return;
      }
      try {
        await this.onReconnect?.(peer);
      } catch (error) {
        if (this.closed) return peer.close('the link was closed');
        if (!peer.isClosed && !isRetryable(error)) {
          peer.close('the GCS refused this node');
          this.giveUp(error as Error);
          return;
        }
        peer.close('registering again failed');
        continue; // that connection failed too: try another while time is left
      }
      if (this.closed) return peer.close('the link was closed');
      if (peer.isClosed) continue;
      this.reconnects++;
      this.attach(peer);
      this.log(`miniray: reached the GCS at ${this.options.address} again after ${((Date.now() - started) / 1000).toFixed(1)} s; registered again`);
      for (const waiter of this.waiters.splice(0)) waiter.resolve(peer);
      return;
    }
  }

  /** Connects, trying again with backoff until `deadline`; a refused token or a peer that is not a GCS fails at once. */
  private async connectUntil(deadline: number, when: string): Promise<Peer> {
    let lastError: Error | undefined;
    let said = false;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new ConnectionError(`the connection to the GCS at ${this.options.address} was closed`);
      try {
        return await this.options.connect();
      } catch (error) {
        if (error instanceof AuthenticationError || !isRetryable(error)) throw error;
        lastError = error as Error;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new GcsUnavailableError(
          `the GCS at ${this.options.address} did not answer within ${this.options.timeoutMs / 1000} s (gcsReconnectTimeoutMs) ${when}: ` +
            `${lastError?.message ?? 'no attempt was made'}. Check that the head runs there (miniray status --address ${this.options.address}); ` +
            'a head restarted with the same --redis-address and port is found again within that time',
          { cause: lastError },
        );
      }
      if (!said && when === 'at start') {
        said = true;
        this.log(`miniray: the head at ${this.options.address} does not answer yet (${lastError?.message}); trying again for up to ${this.options.timeoutMs / 1000} s (gcsReconnectTimeoutMs)`);
      }
      // Not unref'd: a driver's program awaiting a GCS call may have nothing else that holds the
      // process open, and must not end in the middle of that wait.
      await this.sleep(Math.min(left, backoffMs(attempt)));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }

  private giveUp(error: Error): void {
    const why = error instanceof GcsUnavailableError ? error : new GcsUnavailableError(`the GCS at ${this.options.address} cannot be used again: ${error.message}`, { cause: error });
    this.log(`miniray: ${why.message}`);
    this.finish(why, why.message);
  }

  private finish(failure: Error, reason: string): void {
    if (this.failure !== undefined) return;
    this.failure = failure;
    for (const waiter of this.waiters.splice(0)) waiter.reject(failure);
    this.end(reason);
    for (const listener of this.closeListeners.splice(0)) listener(reason);
  }
}
