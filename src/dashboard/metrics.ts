/** GET /metrics: Prometheus text (filled in after the skeleton). */
import type { FastifyInstance } from 'fastify';
import type { StateSource } from '../state/types.js';

export function registerMetrics(_app: FastifyInstance, _state: StateSource): void {}
