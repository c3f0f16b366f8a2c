/**
 * The processes of the cluster bench: a head and nodes (`miniray start ... --block`, from this
 * checkout's dist/) and the raw TCP echo server, each a child of this process, stopped by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface Started {
  readonly name: string;
  /** HOST:PORT it printed once up. */
  readonly address: string;
  readonly child: ChildProcess;
}

/** Spawns `node args...` and resolves once its output matches `up` (whose first group is the address). */
export function startProcess(name: string, args: readonly string[], up: RegExp, cwd: string): Promise<Started> {
  const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(`not up after 30 s`), 30_000);
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${name} (node ${args.join(' ')}) ${why}; its output:\n${log}`));
    };
    const seen = (chunk: string): void => {
      log += chunk;
      const match = up.exec(log);
      if (match === null) return;
      clearTimeout(timer);
      child.removeListener('exit', exited);
      resolve({ name, address: match[1] as string, child });
    };
    const exited = (code: number | null, signal: string | null): void => fail(`exited with ${signal ?? `code ${code}`}`);
    child.stdout.setEncoding('utf8').on('data', seen);
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
    child.once('exit', exited);
  });
}

/** SIGTERM (a node stops its workers and leaves), then SIGKILL if it has not exited within 5 s. */
export function stopProcess({ child }: Started): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
