/**
 * Ray itself, on this machine, in the same run (`npm run bench -- --ray=<python>`): Ray's own
 * microbenchmark (`ray microbenchmark`, python/ray/_private/ray_perf.py) run by a Python that has
 * Ray installed, after miniray's cases, so that the two never share the CPUs. Ray is not a
 * dependency: without --ray nothing here runs, and the table shows Ray's published figures.
 *
 * Ray's script is run as it is, with two changes that shorten it without touching what it times:
 * the 10 s sleep before each case ("to avoid noisy neighbours") is 1 s, and the Ray Client cases
 * at its end (a client over gRPC, which miniray has no counterpart for, and which needs grpcio)
 * are skipped. Each case is Ray's mean of 4 runs of 2 s after a 1 s warm-up.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Metric } from '../lib/protocol.js';

/** What a Python prints between these markers: Ray's version, then its results as JSON. */
const MARKER = '@@ray-bench ';

const DRIVER = `
import json, sys, types
import ray
# The Ray Client cases need grpcio, which a plain "pip install ray" does not bring: skipped.
client = types.ModuleType("ray._private.ray_client_microbenchmark")
client.main = lambda results=None: None
sys.modules[client.__name__] = client
import ray._private.ray_perf as perf
timeit = perf.timeit
perf.timeit = lambda name, fn, multiplier=1, warmup_time_sec=10: timeit(name, fn, multiplier, warmup_time_sec=1)
print(${JSON.stringify(MARKER)} + json.dumps({"version": ray.__version__}), flush=True)
results = perf.main()
print(${JSON.stringify(MARKER)} + json.dumps({"results": [[r[0], r[1], r[2]] for r in results if r]}), flush=True)
`;

export interface RayFigures {
  readonly version: string;
  /** By the name miniray's table gives the case (Ray's name in snake case: "1:1 actor calls sync" is 1_1_actor_calls_sync). */
  readonly figures: ReadonlyMap<string, Metric>;
}

/** Ray's case name as the table's rows name it. */
export function rowNameOf(rayName: string): string {
  return rayName
    .toLowerCase()
    .replace(/\s*\(plasma store\)\s*/g, '')
    .replace(/[:\s-]+/g, '_');
}

/** Ray's figures, or an Error saying why there are none (the Python cannot import ray, the run failed). */
export async function runRayMicrobenchmark(python: string, timeoutMs: number, log: (line: string) => void): Promise<RayFigures | Error> {
  const temp = mkdtempSync(join(tmpdir(), 'miniray-bench-ray-'));
  try {
    return await new Promise<RayFigures | Error>((resolve) => {
      let version: string | undefined;
      let results: Array<[string, number, number]> | undefined;
      let tail = '';
      const child = spawn(python, ['-c', DRIVER], {
        // RAY_TMPDIR: Ray's session files go to a folder of this run's, removed after.
        env: { ...process.env, RAY_TMPDIR: temp, RAY_USAGE_STATS_ENABLED: '0' },
        stdio: ['ignore', 'pipe', 'pipe'],
        // A group of its own, so that a run stopped at the timeout takes Ray's GCS and raylet with it.
        detached: true,
      });
      const timer = setTimeout(() => {
        try {
          process.kill(-(child.pid as number), 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }, timeoutMs);
      const onLine = (line: string) => {
        if (!line.startsWith(MARKER)) {
          if (/ per second /.test(line)) log(line.trim());
          return;
        }
        const message = JSON.parse(line.slice(MARKER.length)) as { version?: string; results?: Array<[string, number, number]> };
        version ??= message.version;
        results ??= message.results;
      };
      createInterface({ input: child.stdout }).on('line', onLine);
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        tail = (tail + chunk).slice(-2000);
      });
      child.on('error', (error) => {
        clearTimeout(timer);
        resolve(new Error(`could not run ${python}: ${error.message}`));
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        const lastLines = tail.trim().split('\n').slice(-3).join(' / ');
        if (version === undefined) return resolve(new Error(`${python} could not import ray (exit ${code ?? signal}): ${lastLines}`));
        if (results === undefined) {
          return resolve(new Error(`Ray ${version}'s microbenchmark did not finish (${signal === 'SIGKILL' ? `stopped after ${timeoutMs / 1000} s` : `exit ${code ?? signal}`}): ${lastLines}`));
        }
        const figures = new Map<string, Metric>();
        for (const [name, mean, sd] of results) {
          // Ray's "put gigabytes" cases count gigabytes; the others, calls.
          figures.set(rowNameOf(name), { value: mean, unit: name.includes('gigabytes') ? 'GB/s' : '/s', note: `+- ${sd.toFixed(sd >= 10 ? 0 : 2)}` });
        }
        resolve({ version, figures });
      });
    });
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}
