/**
 * Connections between processes: frames (frame.ts) on node:net or node:tls sockets, an
 * authenticating handshake, and the bounds that keep a bad or slow peer from hurting this process.
 *
 *   client                                   server
 *     hello {token, protocolVersion, hello} ──►   (the only frame read before the token is checked,
 *                                                  with a small size limit)
 *     ◄── welcome {hello}  |  refused {code, reason}, then close
 *     ◄──► request / response / cancel / notify / bye   (envelope.ts, peer.ts)
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { AuthenticationError, ConnectionError, MinirayError, ProtocolError, SerializationError } from '../errors/index.js';
import { NET_PROTOCOL_VERSION, parseHandshake, type Envelope, type Handshake, type PeerHello } from './envelope.js';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder, tailHeader } from './frame.js';
import { Connection, type Peer, type Router, type Wire } from './peer.js';

/** The hello is small; an unauthenticated peer must not make us buffer a 256 MiB frame. */
const MAX_HELLO_BYTES = 64 * 1024;
const DEFAULT_HELLO_TIMEOUT_MS = 5_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Idle time after which TCP keepalive probes start on every cluster connection. */
const KEEPALIVE_IDLE_MS = 10_000;

/** Limits shared by both ends. */
export interface LinkLimits {
  /** The largest frame body sent or accepted (default 256 MiB). */
  maxFrameBytes?: number;
  /** Bytes waiting to be written past which the connection is closed as "peer does not read" (default 2 x maxFrameBytes). */
  maxBufferedBytes?: number;
  /** Where a misbehaving peer is reported, once per connection (default console.error). */
  log?: (line: string) => void;
}

export interface ListenOptions extends LinkLimits {
  /** Default 127.0.0.1: reachable from other machines only when asked for. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  token: string;
  hello: PeerHello;
  router: Router;
  tls?: { cert: string | Buffer; key: string | Buffer };
  onPeer?: (peer: Peer) => void;
  /** How long a new connection has to send a valid hello before it is closed (default 5 s). */
  helloTimeoutMs?: number;
}

export interface Listener {
  readonly host: string;
  readonly port: number;
  /** Stops accepting and closes every connection. */
  close(): Promise<void>;
}

export interface ConnectOptions extends LinkLimits {
  host: string;
  port: number;
  token: string;
  hello: PeerHello;
  router: Router;
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean; checkServerIdentity?: (host: string, cert: tls.PeerCertificate) => Error | undefined } | boolean;
  /** For the TCP connection and the handshake together (default 10 s). */
  timeoutMs?: number;
}

/** A socket with frames, bounded writes and one report per misbehaving peer. */
class SocketLink implements Wire {
  readonly decoder: FrameDecoder;
  readonly remote: string;
  /** Receives each decoded message, in order, until the link closes. */
  onMessage: (message: unknown) => void = () => {};
  onClose: (reason: string) => void = () => {};
  private readonly waiting: Uint8Array[] = [];
  private waitingBytes = 0;
  private needDrain = false;
  private corked = false;
  private writesThisTick = 0;
  private closedReason: string | undefined;
  private reported = false;
  private readonly maxFrameBytes: number;
  private readonly maxBufferedBytes: number;
  readonly log: (line: string) => void;

  constructor(
    private readonly socket: net.Socket,
    limits: LinkLimits,
    remote?: string,
  ) {
    this.maxFrameBytes = limits.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.maxBufferedBytes = limits.maxBufferedBytes ?? 2 * this.maxFrameBytes;
    this.log = limits.log ?? ((line) => console.error(line));
    this.remote = remote ?? `${socket.remoteAddress}:${socket.remotePort}`;
    this.decoder = new FrameDecoder(this.maxFrameBytes);
    socket.setNoDelay(true);
    // An idle connection to a host that is gone (cut off, powered off) otherwise stays open for
    // ever: keepalive probes end it (after KEEPALIVE_IDLE_MS, then the kernel's probes, by
    // default 9 every 75 s). That is how the GCS learns that a cut-off driver is gone, since
    // drivers are not health-checked (their main thread runs user code). Nodes are found out
    // sooner, by the GCS's health checks.
    socket.setKeepAlive(true, KEEPALIVE_IDLE_MS);
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('drain', () => this.drained());
    socket.on('error', (error) => this.ended(`socket error: ${error.message}`));
    socket.on('end', () => this.ended('the peer ended the connection'));
    socket.on('close', () => this.ended('the connection closed'));
  }

  send(message: Envelope | Handshake, tail?: Uint8Array): MinirayError | undefined {
    if (this.closedReason !== undefined) return undefined;
    if (tail !== undefined && tail.byteLength > this.maxFrameBytes) {
      return new ProtocolError(`bytes of ${tail.byteLength} to ${this.remote} are over the frame limit of ${this.maxFrameBytes} bytes (maxFrameBytes)`);
    }
    let frame: Buffer;
    try {
      frame = encodeFrame(message, tail?.byteLength);
    } catch (error) {
      return new SerializationError(`a message to ${this.remote} cannot be encoded: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    if (frame.byteLength - 4 > this.maxFrameBytes) {
      return new ProtocolError(`a message of ${frame.byteLength - 4} bytes to ${this.remote} is over the frame limit of ${this.maxFrameBytes} bytes (maxFrameBytes)`);
    }
    const pieces = tail === undefined ? [frame] : [frame, tailHeader(tail.byteLength), tail];
    if (this.needDrain) {
      for (const piece of pieces) {
        this.waiting.push(piece);
        this.waitingBytes += piece.byteLength;
      }
      if (this.waitingBytes + this.socket.writableLength > this.maxBufferedBytes) {
        this.fail(`peer does not read: over ${this.maxBufferedBytes} bytes wait to be written to it (maxBufferedBytes)`);
      }
      return undefined;
    }
    for (const piece of pieces) this.write(piece);
    return undefined;
  }

  /** Closes after a protocol violation, reporting it. */
  fail(problem: string): void {
    this.report(`${problem}; closed the connection`);
    this.ended(problem);
  }

  /** Once per connection: a bad peer must not flood the log. */
  report(problem: string): void {
    if (this.reported) return;
    this.reported = true;
    this.log(`miniray: the peer at ${this.remote}: ${problem}`);
  }

  /** Ends after what was written (a refusal) has gone out. */
  endGracefully(reason: string): void {
    this.closedReason ??= reason;
    this.socket.end();
    // A peer that does not read its refusal must not keep the socket open.
    setTimeout(() => this.socket.destroy(), 1_000).unref();
  }

  close(): void {
    // end(), not destroy(): what was written (a bye, a refusal) still goes out.
    this.endGracefully('closed by this side');
  }

  private write(frame: Uint8Array): void {
    // The first write of a tick goes out at once (a lone call's latency); the ones after it in the
    // same tick are corked into one writev (64 calls in flight cost one syscall, not 64).
    if (this.writesThisTick++ === 0) {
      process.nextTick(() => {
        this.writesThisTick = 0;
        if (this.corked) {
          this.corked = false;
          this.socket.uncork();
        }
      });
    } else if (!this.corked) {
      this.corked = true;
      this.socket.cork();
    }
    if (!this.socket.write(frame)) this.needDrain = true;
  }

  private drained(): void {
    this.needDrain = false;
    while (this.waiting.length > 0 && !this.needDrain) {
      const frame = this.waiting.shift();
      if (frame === undefined) break;
      this.waitingBytes -= frame.byteLength;
      this.write(frame);
    }
  }

  private received(chunk: Buffer): void {
    if (this.closedReason !== undefined) return;
    const error = this.decoder.push(chunk, (message, tail) => {
      try {
        if (tail !== undefined) {
          // Only a response's value comes raw (Connection.replyValue).
          const response = message as { type?: unknown; ok?: unknown; value?: unknown } | null;
          if (typeof response !== 'object' || response === null || response.type !== 'response' || response.ok !== true) {
            this.fail('a frame with raw bytes after it that is not a response');
            return false;
          }
          response.value = tail;
        }
        this.onMessage(message);
      } catch (thrown) {
        // A bug on this side (an onPeer callback, a listener) must cost one connection, not the process.
        this.log(`miniray: handling a message from ${this.remote} threw; closing that connection: ${thrown instanceof Error ? (thrown.stack ?? thrown.message) : String(thrown)}`);
        this.ended('this side failed while handling a message');
      }
      return this.closedReason === undefined;
    });
    if (error !== undefined && this.closedReason === undefined) this.fail(error.message);
  }

  private ended(reason: string): void {
    if (this.closedReason === undefined) {
      this.closedReason = reason;
      this.waiting.length = 0;
      this.socket.destroy();
    }
    const listener = this.onClose;
    this.onClose = () => {};
    listener(this.closedReason);
  }
}

function sameToken(given: string, expected: string): boolean {
  // Digests first: equal lengths for timingSafeEqual, and the time taken says nothing of the token's length.
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Accepts connections: each must authenticate with a hello before anything else is read. */
export function listen(options: ListenOptions): Promise<Listener> {
  const host = options.host ?? '127.0.0.1';
  const helloTimeoutMs = options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
  const links = new Set<SocketLink>();

  const accept = (socket: net.Socket): void => {
    const link = new SocketLink(socket, options);
    links.add(link);
    link.decoder.maxFrameBytes = Math.min(MAX_HELLO_BYTES, link.decoder.maxFrameBytes);
    const timer = setTimeout(() => link.fail(`no valid hello within ${helloTimeoutMs} ms`), helloTimeoutMs);
    link.onClose = () => {
      clearTimeout(timer);
      links.delete(link);
    };
    link.onMessage = (message) => {
      clearTimeout(timer);
      const hello = parseHandshake(message);
      if (hello instanceof ProtocolError || hello.type !== 'hello') {
        return link.fail(`its first message is not a hello: ${hello instanceof ProtocolError ? hello.message : `type '${hello.type}'`}`);
      }
      if (hello.protocolVersion !== NET_PROTOCOL_VERSION) {
        const reason = `protocol version ${hello.protocolVersion} is not this side's ${NET_PROTOCOL_VERSION}: run the same miniray version on every machine`;
        link.report(`refused: ${reason}`);
        link.send({ type: 'refused', code: 'version', reason });
        return link.endGracefully(reason);
      }
      if (!sameToken(hello.token, options.token)) {
        link.report(`refused ${hello.hello.role} ${hello.hello.nodeId}: wrong token`);
        link.send({ type: 'refused', code: 'token', reason: 'wrong token' });
        return link.endGracefully('wrong token');
      }
      link.send({ type: 'welcome', hello: options.hello });
      link.decoder.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
      const peer = new Connection(hello.hello, options.router, link);
      link.onMessage = (m) => peer.receive(m);
      link.onClose = (reason) => {
        links.delete(link);
        peer.closed(reason);
      };
      options.onPeer?.(peer);
    };
  };

  const server = options.tls
    ? tls.createServer({ cert: options.tls.cert, key: options.tls.key, handshakeTimeout: helloTimeoutMs }, accept)
    : net.createServer(accept);
  if (server instanceof tls.Server) {
    // Bytes that are not TLS (or a failed handshake) end here, before any link exists.
    server.on('tlsClientError', (error, socket) => {
      (options.log ?? console.error)(`miniray: closed the connection with ${socket.remoteAddress}:${socket.remotePort}: TLS handshake failed (${error.message})`);
      socket.destroy();
    });
  }
  return new Promise((resolve, reject) => {
    server.once('error', (error) => reject(new ConnectionError(`cannot listen on ${host}:${options.port ?? 0}: ${error.message}`, { cause: error })));
    server.listen(options.port ?? 0, host, () => {
      const address = server.address() as net.AddressInfo;
      server.on('error', (error) => (options.log ?? console.error)(`miniray: the listener on ${host}:${address.port} failed: ${error.message}`));
      resolve({
        host,
        port: address.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            for (const link of [...links]) link.close();
          }),
      });
    });
  });
}

/** Connects and authenticates; rejects with AuthenticationError when the server refuses the token. */
export function connect(options: ConnectOptions): Promise<Peer> {
  const address = `${options.host}:${options.port}`;
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const socket = options.tls
      ? tls.connect({ host: options.host, port: options.port, servername: net.isIP(options.host) ? undefined : options.host, ...(typeof options.tls === 'object' ? options.tls : {}) })
      : net.connect({ host: options.host, port: options.port });
    const link = new SocketLink(socket, options, address);
    link.decoder.maxFrameBytes = Math.min(MAX_HELLO_BYTES, link.decoder.maxFrameBytes);
    const timer = setTimeout(() => {
      link.close();
      reject(new ConnectionError(`no answer from ${address} within ${timeoutMs} ms: is a miniray head or node listening there${options.tls ? ' with TLS' : ''}?`));
    }, timeoutMs);
    link.onClose = (reason) => {
      clearTimeout(timer);
      reject(new ConnectionError(`cannot connect to ${address}: ${reason}`));
    };
    link.onMessage = (message) => {
      clearTimeout(timer);
      const answer = parseHandshake(message);
      if (answer instanceof ProtocolError || answer.type === 'hello') {
        link.fail(`it did not answer the hello: ${answer instanceof ProtocolError ? answer.message : "it sent a hello"}`);
        return reject(new ProtocolError(`${address} is not a miniray head or node (it did not answer the hello with welcome or refused)`));
      }
      if (answer.type === 'refused') {
        link.close();
        return reject(
          answer.code === 'token'
            ? new AuthenticationError(
                `${address} refused this connection's token: set MINIRAY_AUTH_TOKEN to the head's token (on the head's machine it is in ~/.miniray/auth_token, or $MINIRAY_HOME/auth_token, readable only by the user who started the head)`,
              )
            : new ConnectionError(`${address} refused this connection: ${answer.reason}`),
        );
      }
      link.decoder.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
      const peer = new Connection(answer.hello, options.router, link);
      link.onMessage = (m) => peer.receive(m);
      link.onClose = (reason) => peer.closed(reason);
      resolve(peer);
    };
    link.send({ type: 'hello', token: options.token, protocolVersion: NET_PROTOCOL_VERSION, hello: options.hello });
  });
}
