/** The page: GET / (filled in after the skeleton). */
import type { FastifyInstance } from 'fastify';

export async function registerUi(app: FastifyInstance): Promise<void> {
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send('<!doctype html><title>miniray</title><p>miniray dashboard</p>'));
}
