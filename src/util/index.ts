/**
 * `util`, as Ray's ray.util: the library utilities in one object, for code ported from Ray
 * (`util.multiprocessing.Pool`, `util.ActorPool`, `util.Queue`). Each is also a named export.
 */
import { ActorPool } from './actor-pool.js';
import { Pool } from './multiprocessing/pool.js';
import { Queue } from './queue.js';

export const util = {
  multiprocessing: { Pool },
  ActorPool,
  Queue,
} as const;
