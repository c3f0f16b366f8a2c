import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { InvalidOptionError, MinirayError } from '../errors/index.js';
import {
  clearLatestAddress,
  createToken,
  logsDir,
  readLatestAddress,
  readProcessRecord,
  readProcessRecords,
  removeProcessRecord,
  resolveAddress,
  resolveToken,
  sessionDir,
  writeLatestAddress,
  writeProcessRecord,
} from './session.js';

const ENV = ['MINIRAY_HOME', 'MINIRAY_AUTH_TOKEN', 'MINIRAY_AUTH_TOKEN_PATH', 'MINIRAY_ADDRESS'] as const;
const mode = (path: string) => statSync(path).mode & 0o777;

describe('session files', () => {
  let scratch = '';
  let home = '';
  const saved = new Map<string, string | undefined>();

  beforeEach(() => {
    for (const name of ENV) saved.set(name, process.env[name]);
    for (const name of ENV) delete process.env[name];
    scratch = mkdtempSync(join(tmpdir(), 'miniray-session-'));
    home = join(scratch, 'home');
    process.env.MINIRAY_HOME = home;
  });
  afterEach(() => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    rmSync(scratch, { recursive: true, force: true });
  });

  test('sessionDir is MINIRAY_HOME, else ~/.miniray', () => {
    assert.equal(sessionDir(), home);
    delete process.env.MINIRAY_HOME;
    assert.equal(sessionDir(), join(homedir(), '.miniray'));
  });

  test('createToken makes 32 random bytes in auth_token (0600) in a 0700 directory, once', () => {
    assert.equal(resolveToken(), undefined);
    const token = createToken();
    assert.match(token, /^[0-9a-f]{64}$/);
    assert.equal(mode(join(home, 'auth_token')), 0o600);
    assert.equal(mode(home), 0o700);
    assert.equal(readFileSync(join(home, 'auth_token'), 'utf8').trim(), token);
    assert.equal(createToken(), token, 'a second head reuses the token');
    assert.equal(resolveToken(), token, 'nodes and drivers on this machine find it');
  });

  test('an existing session directory that others can read is made private', () => {
    mkdirSync(home, { mode: 0o755 });
    chmodSync(home, 0o755);
    createToken();
    assert.equal(mode(home), 0o700);
  });

  test('MINIRAY_AUTH_TOKEN wins over MINIRAY_AUTH_TOKEN_PATH and auth_token, and the head writes no file for it', () => {
    process.env.MINIRAY_AUTH_TOKEN = 'from-env';
    assert.equal(createToken(), 'from-env');
    assert.ok(!existsSync(join(home, 'auth_token')));

    delete process.env.MINIRAY_AUTH_TOKEN;
    const fileToken = createToken();
    const path = join(scratch, 'token');
    writeFileSync(path, 'from-path\n');
    process.env.MINIRAY_AUTH_TOKEN_PATH = path;
    assert.equal(resolveToken(), 'from-path');
    process.env.MINIRAY_AUTH_TOKEN = 'from-env';
    assert.equal(resolveToken(), 'from-env');
    assert.notEqual(fileToken, 'from-path');
  });

  test('an unreadable or empty MINIRAY_AUTH_TOKEN_PATH is an error that names the file', () => {
    const missing = join(scratch, 'no-such-token');
    process.env.MINIRAY_AUTH_TOKEN_PATH = missing;
    for (const call of [resolveToken, createToken]) {
      assert.throws(call, (error: unknown) => {
        assert.ok(error instanceof InvalidOptionError && error instanceof MinirayError);
        assert.equal(error.option, 'MINIRAY_AUTH_TOKEN_PATH');
        assert.ok(error.message.includes(missing), error.message);
        assert.match(error.message, /MINIRAY_AUTH_TOKEN to the token/);
        return true;
      });
    }
    process.env.MINIRAY_AUTH_TOKEN_PATH = scratch; // a directory: EISDIR
    assert.throws(resolveToken, (error: unknown) => error instanceof InvalidOptionError && error.message.includes(scratch));
    const empty = join(scratch, 'empty');
    writeFileSync(empty, '\n');
    process.env.MINIRAY_AUTH_TOKEN_PATH = empty;
    assert.throws(resolveToken, /is empty/);

    delete process.env.MINIRAY_AUTH_TOKEN_PATH;
    mkdirSync(home);
    writeFileSync(join(home, 'auth_token'), '');
    assert.throws(resolveToken, (error: unknown) =>
      error instanceof InvalidOptionError && error.option === 'MINIRAY_HOME' && error.message.includes(join(home, 'auth_token')));
  });

  test('resolveAddress: as given; undefined is MINIRAY_ADDRESS; auto is latest_address', () => {
    assert.equal(resolveAddress('10.0.0.1:6380'), '10.0.0.1:6380');
    assert.equal(resolveAddress(undefined), undefined);
    process.env.MINIRAY_ADDRESS = '10.0.0.2:6380';
    assert.equal(resolveAddress(undefined), '10.0.0.2:6380');

    assert.throws(() => resolveAddress('auto'), (error: unknown) =>
      error instanceof InvalidOptionError && /miniray start --head/.test(error.message) && error.message.includes(join(home, 'latest_address')));
    writeLatestAddress('127.0.0.1:6380');
    assert.equal(resolveAddress('auto'), '127.0.0.1:6380');
    process.env.MINIRAY_ADDRESS = 'auto';
    assert.equal(resolveAddress(undefined), '127.0.0.1:6380');
  });

  test('clearLatestAddress leaves an address a newer head wrote', () => {
    writeLatestAddress('127.0.0.1:1111');
    clearLatestAddress('127.0.0.1:2222');
    assert.equal(readLatestAddress(), '127.0.0.1:1111');
    clearLatestAddress('127.0.0.1:1111');
    assert.equal(readLatestAddress(), undefined);
  });

  test('process records are written (0600), read, listed and removed; malformed files are reported', () => {
    assert.deepEqual(readProcessRecords(), { records: [], malformed: [] });
    const head = { pid: 4242, role: 'head', address: '127.0.0.1:6380', startedAt: new Date().toISOString() } as const;
    const node = { pid: 4343, role: 'node', address: '127.0.0.1:40000', startedAt: new Date().toISOString() } as const;
    writeProcessRecord(head);
    writeProcessRecord(node);
    assert.equal(mode(join(home, 'processes', '4242.json')), 0o600);
    assert.equal(mode(join(home, 'processes')), 0o700);
    assert.deepEqual(readProcessRecord(4242), head);
    writeFileSync(join(home, 'processes', '99.json'), '{"pid": "not a number"}');
    writeFileSync(join(home, 'processes', '98.json'), JSON.stringify({ ...head, pid: 97 }));
    const { records, malformed } = readProcessRecords();
    assert.deepEqual(records, [head, node]);
    assert.deepEqual(malformed.sort(), [join(home, 'processes', '98.json'), join(home, 'processes', '99.json')]);
    removeProcessRecord(4242);
    removeProcessRecord(4242);
    assert.equal(readProcessRecord(4242), undefined);
  });

  test('logsDir is created private', () => {
    assert.equal(mode(logsDir()), 0o700);
  });
});
