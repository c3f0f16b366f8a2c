/**
 * Runtime environments as specs carry them (env): Ray's inheritance rule and the key that keeps
 * workers of different environments apart. Pure functions, used by CoreWorkers (inheritance, at
 * submission) and by the node and its pool (the key, at dispatch).
 */
import type { RuntimeEnvSpec } from './index.js';

/**
 * A child's environment from its parent's, as Ray merges them: envVars merge key by key (the
 * child's winning), every other field (workingDir, excludes) is the child's if it gives one, else the
 * parent's (excludes only with a workingDir, which it applies to). Undefined when the result is empty.
 */
export function mergeRuntimeEnv(parent: RuntimeEnvSpec | undefined, child: RuntimeEnvSpec | undefined): RuntimeEnvSpec | undefined {
  if (child === undefined) return parent;
  if (parent === undefined) return isEmpty(child) ? undefined : child;
  const envVars = parent.envVars === undefined ? child.envVars : child.envVars === undefined ? parent.envVars : { ...parent.envVars, ...child.envVars };
  const workingDir = child.workingDir ?? parent.workingDir;
  const excludes = child.excludes ?? parent.excludes;
  const merged: { envVars?: Readonly<Record<string, string>>; workingDir?: string; excludes?: readonly string[] } = {};
  if (envVars !== undefined && Object.keys(envVars).length > 0) merged.envVars = envVars;
  if (workingDir !== undefined) merged.workingDir = workingDir;
  if (excludes !== undefined && workingDir !== undefined) merged.excludes = excludes;
  return isEmpty(merged) ? undefined : merged;
}

function isEmpty(env: RuntimeEnvSpec): boolean {
  return env.workingDir === undefined && (env.envVars === undefined || Object.keys(env.envVars).length === 0);
}

/** Keys already computed, by the spec object (the driver's tasks share one object per environment). */
const keys = new WeakMap<RuntimeEnvSpec, string>();

/**
 * The same string for the same environment, whatever the order of its variables: workers are
 * pooled by it. '' is no environment at all.
 */
export function runtimeEnvKey(env: RuntimeEnvSpec | undefined): string {
  if (env === undefined) return '';
  let key = keys.get(env);
  if (key !== undefined) return key;
  const vars = Object.entries(env.envVars ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  key = vars.length === 0 && env.workingDir === undefined ? '' : JSON.stringify([env.workingDir ?? null, vars]);
  keys.set(env, key);
  return key;
}
