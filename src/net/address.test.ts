import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatHostPort, parseHostPort } from './address.js';

test('HOST:PORT: names, IPv4, bracketed IPv6; anything else (no port, a URL, a port out of range, spaces, credentials) is not one', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:6380'), { host: '127.0.0.1', port: 6380 });
  assert.deepEqual(parseHostPort(' head.example:7000 '), { host: 'head.example', port: 7000 });
  assert.deepEqual(parseHostPort('[::1]:6380'), { host: '::1', port: 6380 });
  for (const bad of ['', '127.0.0.1', ':6380', '127.0.0.1:', '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:123456', 'http://h:80', 'user@h:80', 'a b:80', '::1:6380', '[::1]', 'h:80x']) {
    assert.equal(parseHostPort(bad), undefined, bad);
  }
});

test('formatHostPort writes what parseHostPort reads, brackets around an IPv6 host', () => {
  assert.equal(formatHostPort('10.0.0.5', 6380), '10.0.0.5:6380');
  assert.equal(formatHostPort('::1', 6380), '[::1]:6380');
  for (const host of ['10.0.0.5', '::1', 'fe80::1', 'head.example']) assert.deepEqual(parseHostPort(formatHostPort(host, 7)), { host, port: 7 });
});
