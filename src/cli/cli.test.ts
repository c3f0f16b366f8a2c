import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { InvalidOptionError } from '../errors/index.js';
import { GcsServer, InMemoryStoreClient } from '../gcs/index.js';
import { Router, listen } from '../net/index.js';
import { isMinirayProcess } from './daemon.js';
import { main } from './index.js';
import { parseAddress, parseCount, parsePort, parseRedisAddress, parseRedisNamespace, parseResources } from './flags.js';
import { fetchNodes, formatStatus, type NodeRow } from './status.js';

const rejects = (call: () => unknown, option: string, message: RegExp) =>
  assert.throws(call, (error: unknown) => {
    assert.ok(error instanceof InvalidOptionError, String(error));
    assert.equal(error.option, option);
    assert.match(error.message, message);
    return true;
  });

describe('miniray flags', () => {
  test('--resources: a JSON object of non-negative numbers, CPU and GPU pointed to their flags', () => {
    assert.deepEqual(parseResources('{"disk": 2, "accel": 0.5, "none": 0}'), { disk: 2, accel: 0.5, none: 0 });
    assert.deepEqual(parseResources('{}'), {});
    rejects(() => parseResources('{disk: 2}'), '--resources', /not JSON .*e\.g\. --resources '\{"disk": 2\}'/);
    rejects(() => parseResources('[1, 2]'), '--resources', /must be a JSON object/);
    rejects(() => parseResources('2'), '--resources', /must be a JSON object/);
    rejects(() => parseResources('null'), '--resources', /must be a JSON object/);
    rejects(() => parseResources('{"disk": -1}'), '--resources', /"disk" must be a number, 0 or more, not -1/);
    rejects(() => parseResources('{"disk": "2"}'), '--resources', /"disk" must be a number, 0 or more, not "2"/);
    rejects(() => parseResources('{"disk": null}'), '--resources', /"disk" must be a number/);
    rejects(() => parseResources('{"CPU": 4}'), '--resources', /cannot set CPU: use --num-cpus/);
    rejects(() => parseResources('{"GPU": 1}'), '--resources', /cannot set GPU: use --num-gpus/);
  });

  test('--port, --num-cpus, --address', () => {
    assert.equal(parsePort('6380'), 6380);
    assert.equal(parsePort('0'), 0);
    for (const bad of ['-1', '65536', 'abc', '1.5', '']) rejects(() => parsePort(bad), '--port', /0 to 65535/);
    assert.equal(parseCount('--num-cpus')('4'), 4);
    for (const bad of ['-1', '1.5', 'two']) rejects(() => parseCount('--num-cpus')(bad), '--num-cpus', /whole number/);
    assert.deepEqual(parseAddress('10.0.0.5:6380'), { host: '10.0.0.5', port: 6380 });
    assert.deepEqual(parseAddress('head.example:7000'), { host: 'head.example', port: 7000 });
    assert.deepEqual(parseAddress('[::1]:6380'), { host: '::1', port: 6380 });
    for (const bad of ['10.0.0.5', ':6380', '10.0.0.5:0', '10.0.0.5:99999', 'a b:1', 'auto']) {
      rejects(() => parseAddress(bad), '--address', /HOST:PORT/);
    }
  });
});

describe('miniray status report', () => {
  const row = (fields: Partial<NodeRow> & Pick<NodeRow, 'nodeId' | 'address'>): NodeRow => ({
    alive: true,
    resources: {},
    available: {},
    isDriver: false,
    ...fields,
  });

  test('each node with its id prefix, address and liveness; used/total over live nodes, CPU first', () => {
    const report = formatStatus([
      row({ nodeId: 'aaaaaaaa11112222', address: '127.0.0.1:6381', resources: { CPU: 2, disk: 2 }, available: { CPU: 2, disk: 1 } }),
      row({ nodeId: 'bbbbbbbb33334444', address: '10.0.0.2:40001', resources: { CPU: 1, GPU: 1 }, available: { CPU: 0.75, GPU: 1 } }),
      row({ nodeId: 'cccccccc55556666', address: '10.0.0.3:40002', alive: false, resources: { CPU: 8 }, available: { CPU: 8 } }),
      row({ nodeId: 'dddddddd77778888', address: '127.0.0.1:40003', isDriver: true }),
      row({ nodeId: 'eeeeeeee99990000', address: '127.0.0.1:40004', isDriver: true, alive: false }),
    ]);
    assert.equal(
      report,
      [
        'Nodes: 2 alive, 1 dead',
        '  aaaaaaaa  127.0.0.1:6381   alive',
        '  bbbbbbbb  10.0.0.2:40001   alive',
        '  cccccccc  10.0.0.3:40002   dead',
        '  dddddddd  127.0.0.1:40003  alive  (driver)',
        'Resources (used/total, live nodes):',
        '  0.25/3.0 CPU',
        '  0.0/1.0 GPU',
        '  1.0/2.0 disk',
        '',
      ].join('\n'),
    );
  });

  test('an empty cluster still shows CPU', () => {
    assert.equal(formatStatus([]), 'Nodes: 0 alive, 0 dead\nResources (used/total, live nodes):\n  0.0/0.0 CPU\n');
  });
});

describe('miniray status over TLS', () => {
  test('MINIRAY_TLS_CA alone is enough to reach a TLS head (status has no listener, so needs no certificate)', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'miniray-status-tls-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    } catch (error) {
      t.skip(`openssl could not make a certificate: ${(error as Error).message}`);
      return;
    }
    const router = new Router();
    const gcs = new GcsServer(new InMemoryStoreClient(), 'test-cluster');
    gcs.register(router);
    const listener = await listen({
      token: 'secret',
      hello: { role: 'gcs', nodeId: 'head' },
      router,
      tls: { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') },
      log: () => {},
    });
    t.after(() => {
      gcs.close();
      return listener.close();
    });
    const saved = { ca: process.env.MINIRAY_TLS_CA, cert: process.env.MINIRAY_TLS_CERT, key: process.env.MINIRAY_TLS_KEY };
    t.after(() => {
      for (const [name, value] of [['MINIRAY_TLS_CA', saved.ca], ['MINIRAY_TLS_CERT', saved.cert], ['MINIRAY_TLS_KEY', saved.key]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    });
    delete process.env.MINIRAY_TLS_CERT;
    delete process.env.MINIRAY_TLS_KEY;
    process.env.MINIRAY_TLS_CA = join(dir, 'cert.pem');
    assert.deepEqual(await fetchNodes(`127.0.0.1:${listener.port}`, 'secret'), []);
  });
});

describe('which processes miniray stop may signal', () => {
  test('not this test runner (a live process that is not `miniray start`), not a pid that is gone', () => {
    assert.equal(isMinirayProcess(process.pid), false);
    assert.equal(isMinirayProcess(2 ** 22 + 12345), false);
  });
});

describe('--redis-address, --redis-password, --redis-namespace', () => {
  test('HOST:PORT of Redis; a URL or a missing port is refused without echoing a password', () => {
    assert.deepEqual(parseRedisAddress('10.0.0.7:6379'), { host: '10.0.0.7', port: 6379 });
    assert.deepEqual(parseRedisAddress('redis.ns.svc:7000'), { host: 'redis.ns.svc', port: 7000 });
    assert.deepEqual(parseRedisAddress('[::1]:6379'), { host: '::1', port: 6379 });
    for (const bad of ['redis', ':6379', 'h:0', 'h:70000', 'a b:1']) rejects(() => parseRedisAddress(bad), '--redis-address', /HOST:PORT of a Redis server/);
    rejects(() => parseRedisAddress('redis://:hunter2@h:6379'), '--redis-address', /not a redis:\/\/ URL; a password goes in --redis-password/);
    assert.throws(() => parseRedisAddress('redis://:hunter2@h:6379'), (error: Error) => !error.message.includes('hunter2'));
    assert.equal(parseRedisNamespace('team-a.prod:1'), 'team-a.prod:1');
    for (const bad of ['', 'a b', 'x*', 'y'.repeat(65)]) rejects(() => parseRedisNamespace(bad), '--redis-namespace', /1 to 64 letters/);
  });

  /** Runs `miniray start ...` in this process up to its first error; returns its exit code and what it printed. */
  async function startFails(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
    const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
    Object.assign(process.env, env);
    const lines: string[] = [];
    const error = console.error;
    console.error = (...parts: unknown[]) => lines.push(parts.join(' '));
    try {
      return { code: await main(['node', 'miniray', 'start', ...args]), stderr: lines.join('\n') };
    } finally {
      console.error = error;
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  }

  test('only for the head: a node given --redis-address is told so; MINIRAY_REDIS_ADDRESS on a node is ignored', async () => {
    const node = await startFails(['--address', '127.0.0.1:1', '--redis-address', '127.0.0.1:6379']);
    assert.equal(node.code, 1);
    assert.match(node.stderr, /--redis-address is for the head/);
    const password = await startFails(['--address', '127.0.0.1:1', '--redis-password', 'pw']);
    assert.match(password.stderr, /--redis-password is for the head/);
  });

  test('--redis-password without an address, and a bad MINIRAY_REDIS_ADDRESS, are refused naming what to fix', async () => {
    const alone = await startFails(['--head', '--redis-password', 'hunter2']);
    assert.equal(alone.code, 1);
    assert.match(alone.stderr, /--redis-password needs --redis-address HOST:PORT \(or MINIRAY_REDIS_ADDRESS\)/);
    assert.doesNotMatch(alone.stderr, /hunter2/);
    const env = await startFails(['--head'], { MINIRAY_REDIS_ADDRESS: 'nowhere' });
    assert.equal(env.code, 1);
    assert.match(env.stderr, /MINIRAY_REDIS_ADDRESS: --redis-address must be the HOST:PORT/);
  });
});
