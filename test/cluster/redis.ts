/**
 * TEST ONLY: a real redis-server on a free loopback port (Debian's /usr/bin/redis-server), for
 * the store tests and the head's chaos check. Never 6379; nothing saved to disk unless asked.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, Socket } from 'node:net';

export const REDIS_SERVER = process.env['MINIRAY_TEST_REDIS_SERVER'] ?? '/usr/bin/redis-server';

/** A port no one listens on now (the OS's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let seen = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      // +PONG, or -NOAUTH when it has a password: either way it is up.
      if (seen.includes('\r\n')) done(/^(\+PONG|-NOAUTH)/.test(seen));
    });
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
  });
}

export interface TestRedis {
  readonly port: number;
  readonly address: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts redis-server and waits until it answers PING. `args`: more of its flags (e.g. --requirepass x). */
export async function startRedis(args: readonly string[] = [], timeoutMs = 20_000): Promise<TestRedis> {
  const port = await freePort();
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  const deadline = Date.now() + timeoutMs;
  while (!(await answers(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server on port ${port} did not come up (${REDIS_SERVER}): ${stderr.trim() || 'no output'}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { port, address: `127.0.0.1:${port}`, process: child, stop };
}
