/**
 * The dashboard's JSON routes: /api/state/* mirrors StateSource (one route per method), /api/logs
 * the LogSource. The page (ui.ts), /api/events (events.ts) and /metrics (metrics.ts) read the same
 * source.
 */
import type { FastifyInstance } from 'fastify';
import type { DashboardOptions } from './index.js';
import { registerEvents } from './events.js';
import { registerMetrics } from './metrics.js';
import { noQuery, parseId, parseListQuery, parseLogQuery, QueryError, STATE_KINDS } from './query.js';
import { registerUi } from './ui.js';
import type { StateKind } from '../state/types.js';

type Params = Readonly<Record<string, string>>;
type Query = Readonly<Record<string, unknown>>;

const SUMMARIES = { tasks: 'summarizeTasks', actors: 'summarizeActors', objects: 'summarizeObjects' } as const;

export async function registerRoutes(app: FastifyInstance, options: DashboardOptions): Promise<void> {
  const { state } = options;

  app.get<{ Params: Params; Querystring: Query }>('/api/state/:kind', async (request) => {
    const kind = request.params['kind'] ?? '';
    const where = `GET /api/state/${kind}`;
    if (!(STATE_KINDS as readonly string[]).includes(kind)) {
      throw new QueryError(`${where}: no such list: give one of ${STATE_KINDS.join(', ')} (or summary/<kind>, node-stats, task-metrics, core-events)`);
    }
    return state.list(kind as StateKind, parseListQuery(request.query, where));
  });

  app.get<{ Params: Params; Querystring: Query }>('/api/state/tasks/:taskId', async (request, reply) => {
    const where = 'GET /api/state/tasks/:taskId';
    noQuery(request.query, where);
    const attempts = await state.getTask(parseId(request.params['taskId'], 'taskId', where));
    if (attempts.length === 0) return reply.code(404).send({ error: 'Not Found', message: `no task ${request.params['taskId']} (finished tasks are evicted oldest first)` });
    return attempts;
  });

  app.get<{ Params: Params; Querystring: Query }>('/api/state/actors/:actorId', async (request, reply) => {
    const where = 'GET /api/state/actors/:actorId';
    noQuery(request.query, where);
    const actor = await state.getActor(parseId(request.params['actorId'], 'actorId', where));
    if (actor === undefined) return reply.code(404).send({ error: 'Not Found', message: `no actor ${request.params['actorId']}` });
    return actor;
  });

  app.get<{ Params: Params; Querystring: Query }>('/api/state/summary/:kind', async (request) => {
    const kind = request.params['kind'] ?? '';
    const where = `GET /api/state/summary/${kind}`;
    noQuery(request.query, where);
    if (!Object.hasOwn(SUMMARIES, kind)) throw new QueryError(`${where}: no such summary: give tasks, actors or objects`);
    return state[SUMMARIES[kind as keyof typeof SUMMARIES]]();
  });

  const plain = (path: string, read: () => Promise<unknown>) =>
    app.get<{ Querystring: Query }>(path, async (request) => {
      noQuery(request.query, `GET ${path}`);
      return read();
    });
  plain('/api/state/node-stats', () => state.nodeStats());
  plain('/api/state/task-metrics', () => state.taskMetrics());
  plain('/api/state/core-events', () => state.coreEvents());

  app.get<{ Querystring: Query }>('/api/logs', async (request, reply) => {
    const query = parseLogQuery(request.query, 'GET /api/logs');
    if (options.logs === undefined) return reply.code(404).send({ error: 'Not Found', message: 'this dashboard has no log source' });
    return options.logs.logs(query);
  });

  registerEvents(app, state, options.pollMs ?? 500);
  registerMetrics(app, state);
  await registerUi(app);
}
