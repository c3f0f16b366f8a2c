/**
 * What the task (or actor) running in this thread holds, as its node gave it (helper pg): read by
 * getRuntimeContext().getAssignedResources() and getGpuIds(). The executor sets it as each task or
 * actor call starts. Its GPU IDs also go to CUDA_VISIBLE_DEVICES, as Ray sets it in its workers
 * (a worker thread has its own copy of process.env, so this touches no other thread).
 */
import { BUNDLE_RESOURCE, groupOf, plainOf } from '../placement-group/resources.js';
import type { ResourceMap } from '../protocol/index.js';

const DEFAULT: ResourceMap = { CPU: 1 };
let current: ResourceMap | undefined;
let currentGpus: readonly number[] | undefined;
/** CUDA_VISIBLE_DEVICES as the thread started (restored when a task without GPUs runs). */
let originalCuda: string | undefined | null = null;

/** `resources` absent: 1 CPU (the default task); `inWorker` false: the driver (holds nothing). */
export function setAssigned(resources: ResourceMap | undefined, gpuIds: readonly number[] | undefined, captureChildTasks?: true): void {
  current = resources ?? DEFAULT;
  captured = captureChildTasks === true ? resources : undefined;
  if (gpuIds === currentGpus) return;
  currentGpus = gpuIds;
  if (originalCuda === null) originalCuda = process.env['CUDA_VISIBLE_DEVICES'];
  if (gpuIds !== undefined) process.env['CUDA_VISIBLE_DEVICES'] = gpuIds.join(',');
  else if (originalCuda === undefined) delete process.env['CUDA_VISIBLE_DEVICES'];
  else process.env['CUDA_VISIBLE_DEVICES'] = originalCuda;
}

/** Plain names: a placement group's CPU_group_<pg> reads as CPU (Ray reports what the task asked for). */
export function assignedResources(): Record<string, number> {
  if (current === undefined) return {};
  const out: Record<string, number> = {};
  for (const [name, amount] of Object.entries(current)) {
    if (amount <= 0) continue;
    const of = plainOf(name);
    if (of === undefined) out[name] = amount;
    else if (of.bundleIndex < 0 && of.name !== BUNDLE_RESOURCE) out[of.name] = amount;
  }
  return out;
}

/** The running task's resources when it captures its children in its placement group. */
let captured: ResourceMap | undefined;

/**
 * The group that tasks submitted now go to when they name no strategy (captureChildTasks, as
 * Ray's placement_group_capture_child_tasks): any bundle of the running task's group.
 */
export function capturingGroup(): string | undefined {
  if (captured === undefined) return undefined;
  for (const name in captured) {
    const group = groupOf(name);
    if (group !== undefined) return group;
  }
  return undefined;
}

export function assignedGpuIds(): number[] {
  return currentGpus === undefined ? [] : [...currentGpus];
}
