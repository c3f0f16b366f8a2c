/** GET /api/events: server-sent events of the cluster's state (filled in after the skeleton). */
import type { FastifyInstance } from 'fastify';
import type { StateSource } from '../state/types.js';

export function registerEvents(_app: FastifyInstance, _state: StateSource, _pollMs: number): void {}
