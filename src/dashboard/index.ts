/**
 * The dashboard: an HTTP server (fastify) that shows a cluster as the state API sees it. It is
 * served by the head (`miniray start --head`, port 8265 by default) and, when asked, by a driver
 * (`init({ includeDashboard: true })`). Everything it shows comes from a StateSource (and logs from
 * a LogSource), so the same server runs over a cluster's GCS, an embedded one, or a fake in tests.
 * Every route but GET /healthz needs the cluster token (see auth.ts); other parts of miniray add
 * routes as `plugins` (the Jobs API), registered after the token check so that they are behind it.
 */
import type { Socket } from 'node:net';
import fastify, { type FastifyError, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { InvalidArgumentError, InvalidOptionError, MinirayError } from '../errors/index.js';
import type { LogSource, StateSource } from '../state/types.js';
import { installAuth } from './auth.js';
import { urlHost } from './kv.js';
import { registerRoutes } from './routes.js';

export const DEFAULT_DASHBOARD_PORT = 8265;
/** Requests bigger than this are refused (413) unless a plugin's route sets its own bodyLimit. */
export const DASHBOARD_BODY_LIMIT_BYTES = 1 << 20;

export interface DashboardOptions {
  /** Where to listen (default 127.0.0.1: this machine only). */
  readonly host?: string;
  /** 0: any free port (default 8265). */
  readonly port?: number;
  /** The cluster token every request but GET /healthz must carry. */
  readonly token: string;
  readonly state: StateSource;
  readonly logs?: LogSource;
  /** More routes (e.g. the Jobs API), behind the token check. */
  readonly plugins?: readonly FastifyPluginAsync[];
  /** How often /api/events asks the StateSource while a client listens (default 500). */
  readonly pollMs?: number;
  /**
   * Chrome trace events of what `state` knows (src/state/timeline.ts's readTimeline), served as
   * GET /api/timeline; the page links to it when given.
   */
  readonly timeline?: (state: StateSource) => Promise<unknown>;
  /**
   * false: the server (and every connection to it, a page's event stream included) does not keep
   * the process alive, so a driver that never calls shutdown() still exits when its work is done.
   * A head's is true (default): serving is its work.
   */
  readonly keepProcessAlive?: boolean;
}

export interface RunningDashboard {
  /** http://host:port, without the token. */
  readonly url: string;
  /** The URL to open once in a browser: it sets the token's cookie and redirects to `url`. */
  readonly urlWithToken: string;
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Whether starting failed because the port is taken (so a head can go on without a dashboard). */
export function isAddressInUse(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'EADDRINUSE';
}

/** The server with its routes, not listening (tests inject requests into it). */
export async function buildDashboard(options: DashboardOptions): Promise<FastifyInstance> {
  if (typeof options.token !== 'string' || options.token === '') {
    throw new InvalidOptionError('startDashboard: token must be the cluster token (a non-empty string): without it anyone could read the cluster', 'token');
  }
  const app = fastify({
    bodyLimit: DASHBOARD_BODY_LIMIT_BYTES,
    logger: false,
    // A client that sends its request slowly does not hold a connection for ever.
    requestTimeout: 60_000,
    routerOptions: { maxParamLength: 200 },
    return503OnClosing: true,
    // Server-sent event streams stay open: close() ends them instead of waiting for clients to leave.
    forceCloseConnections: true,
  });
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    // A StateSource's InvalidOptionError is the request's fault (an unknown filter key): a 400 that says so.
    if (error instanceof InvalidOptionError || error instanceof InvalidArgumentError) return reply.code(400).send({ error: 'Bad Request', message: error.message });
    // Any other miniray error is the cluster's (the GCS unreachable, a request timed out): worth telling whoever holds the token.
    if (error instanceof MinirayError) return reply.code(503).send({ error: 'Service Unavailable', message: `the cluster's state could not be read: ${error.message}` });
    const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) console.error('miniray dashboard: a request failed:', error);
    return reply.code(status).send({ error: status === 500 ? 'Internal Server Error' : (error.code ?? 'Bad Request'), message: status === 500 ? 'the dashboard failed to answer: see the head\'s log' : error.message });
  });
  app.setNotFoundHandler((request, reply) => reply.code(404).send({ error: 'Not Found', message: `no route ${request.method} ${request.url.split('?')[0]}` }));
  app.get('/healthz', async () => ({ ok: true }));
  installAuth(app, options.token);
  await registerRoutes(app, options);
  for (const plugin of options.plugins ?? []) await app.register(plugin);
  return app;
}

/**
 * Starts the dashboard. Rejects if it cannot listen (isAddressInUse tells a port taken, which a
 * head reports as a warning and runs without its dashboard, as Ray's does).
 */
export async function startDashboard(options: DashboardOptions): Promise<RunningDashboard> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? DEFAULT_DASHBOARD_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidOptionError(`startDashboard: port must be an integer from 0 (any free port) to 65535, not ${String(port)}`, 'port');
  }
  const app = await buildDashboard(options);
  try {
    await app.listen({ host, port });
  } catch (error) {
    await app.close();
    throw error;
  }
  if (options.keepProcessAlive === false) {
    app.server.unref();
    app.server.on('connection', (socket: Socket) => socket.unref());
  }
  const address = app.server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  const url = `http://${urlHost(host)}:${bound}`;
  return {
    url,
    urlWithToken: `${url}/?token=${encodeURIComponent(options.token)}`,
    host,
    port: bound,
    close: async () => {
      await app.close();
    },
  };
}

export type { FastifyPluginAsync } from 'fastify';
