/**
 * GET /healthz of a `miniray start` process, for Kubernetes' (or any supervisor's) readiness and
 * liveness probes: 200 "ok" while the process is a live member of its cluster, 503 and a short
 * reason otherwise.
 *
 * It is the one miniray endpoint that does not check the cluster token, because a kubelet's
 * httpGet probe cannot carry a secret (its headers are literal text in the manifest). So it is
 * made to be worth nothing to anyone else: it answers only GET and HEAD of /healthz (every other
 * path is 404, every other method 405), reads no body, changes nothing, and says only "ok" or one
 * of a few fixed reasons, never an id, an address or a version. It binds to 127.0.0.1 unless told
 * otherwise. See docs/deploy.md.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ConnectionError } from '../errors/index.js';

/** Whether the process can take work now, and if not, why (a fixed phrase: it is shown to anyone). */
export type Health = { readonly ok: true } | { readonly ok: false; readonly reason: HealthReason };

/** Every reason /healthz can give. A closed list, so that no caller leaks an id or an address. */
export type HealthReason = 'starting: not a member of the cluster yet' | 'GCS unreachable' | 'stopping' | 'health check failed';

export const HEALTHZ_PATH = '/healthz';

export interface HealthzOptions {
  /** Where to listen (default 127.0.0.1). */
  readonly host?: string;
  /** 0: any free port. */
  readonly port: number;
  /** Asked on every probe; cheap and synchronous, so that an answer never waits on the cluster. */
  readonly health: () => Health;
  readonly log?: (message: string) => void;
}

export interface HealthzServer {
  readonly host: string;
  readonly port: number;
  /** http://host:port/healthz */
  readonly url: string;
  close(): Promise<void>;
}

/** A probe's request line and headers fit in far less; anything bigger is not a probe. */
const MAX_HEADER_BYTES = 4096;
/** A probe that has not sent its headers by then is not coming; its socket is freed. */
const REQUEST_TIMEOUT_MS = 5_000;
/** Probes come every few seconds per kubelet; this many at once is someone else. */
const MAX_CONNECTIONS = 64;

const TEXT_HEADERS = { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' } as const;

function answer(response: ServerResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  const body = `${text}\n`;
  response.sendDate = false; // nothing about the host, not even its clock
  response.writeHead(status, { ...TEXT_HEADERS, 'content-length': Buffer.byteLength(body), ...extra });
  // HEAD gets the headers only; node:http drops the body for it.
  response.end(body);
}

/** The answer to one request; exported for the unit tests. */
export function route(method: string | undefined, url: string | undefined, health: () => Health): { status: number; text: string; headers?: Record<string, string> } {
  // Only the path counts (a probe may add a query); a malformed URL is simply not /healthz.
  const path = (url ?? '').split('?', 1)[0];
  if (path !== HEALTHZ_PATH) return { status: 404, text: 'not found' };
  if (method !== 'GET' && method !== 'HEAD') return { status: 405, text: 'method not allowed', headers: { allow: 'GET, HEAD' } };
  let state: Health;
  try {
    state = health();
  } catch {
    state = { ok: false, reason: 'health check failed' };
  }
  return state.ok ? { status: 200, text: 'ok' } : { status: 503, text: state.reason };
}

/** Serves /healthz on host:port until closed. */
export async function serveHealthz(options: HealthzOptions): Promise<HealthzServer> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? ((message: string) => console.error(message));
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, connectionsCheckingInterval: 1_000 }, (request: IncomingMessage, response: ServerResponse) => {
    const { status, text, headers } = route(request.method, request.url, options.health);
    // A body, if any was sent, is not read: the connection closes after the answer instead.
    const close = request.method !== 'GET' && request.method !== 'HEAD';
    answer(response, status, text, { ...headers, ...(close ? { connection: 'close' } : {}) });
    request.resume();
  });
  server.keepAliveTimeout = REQUEST_TIMEOUT_MS;
  server.maxConnections = MAX_CONNECTIONS;
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    // Garbage, oversized headers, a slow client: a bare 400 (or nothing, if it is gone) and close.
    if (socket.writable && error.code !== 'ECONNRESET') {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    }
    socket.destroy();
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new ConnectionError(`cannot serve /healthz on ${host}:${options.port}: ${error.message} (choose another --healthz-port, or 0 for any free one)`, { cause: error })));
    server.listen(options.port, host, () => resolve());
  });
  server.on('error', (error) => log(`miniray: the /healthz server failed: ${error.message}`));
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    host,
    port,
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}${HEALTHZ_PATH}`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      })),
  };
}
