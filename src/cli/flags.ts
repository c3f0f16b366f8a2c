/**
 * Parsers of the `miniray` command's flag values. Each throws an InvalidOptionError that names the
 * flag and says what to give instead; `asArgParser` hands that message to commander, which prints
 * it with the usage error and exits with code 1.
 */
import { parseHostPort } from '../net/index.js';
import { InvalidArgumentError as CommanderArgumentError } from 'commander';
import { InvalidOptionError, describeValue } from '../errors/index.js';

/** A TCP port, 0 (any free one) included; `flag` names the flag in the error. */
export function parsePort(text: string, flag = '--port'): number {
  const port = Number(text);
  if (!/^\d+$/.test(text.trim()) || port > 65535) {
    throw new InvalidOptionError(`${flag} must be a port number from 0 to 65535, not '${text}'`, flag);
  }
  return port;
}

/** A count of CPUs or GPUs: a whole number, 0 or more. */
export function parseCount(flag: string): (text: string) => number {
  return (text) => {
    if (!/^\d+$/.test(text.trim())) throw new InvalidOptionError(`${flag} must be a whole number, 0 or more, not '${text}'`, flag);
    return Number(text);
  };
}

/** HOST:PORT, as the head printed it (an IPv6 host in brackets: [::1]:6380). */
export function parseAddress(text: string): { host: string; port: number } {
  const address = parseHostPort(text);
  if (address === undefined) {
    throw new InvalidOptionError(
      `--address must be the head's HOST:PORT (e.g. 127.0.0.1:6380, as \`miniray start --head\` printed it), not '${text}'`,
      '--address',
    );
  }
  return address;
}

/** --redis-address: HOST:PORT of the Redis that keeps the head's GCS tables. */
export function parseRedisAddress(text: string): { host: string; port: number } {
  const address = parseHostPort(text);
  if (address === undefined) {
    const hint = /^rediss?:\/\//.test(text.trim()) ? ' (not a redis:// URL; a password goes in --redis-password or MINIRAY_REDIS_PASSWORD)' : '';
    throw new InvalidOptionError(
      `--redis-address must be the HOST:PORT of a Redis server (e.g. 127.0.0.1:6379), not '${redact(text)}'${hint}`,
      '--redis-address',
    );
  }
  return address;
}

/** A Redis key prefix: letters, digits and - _ . : (so that it cannot be mistaken for a pattern). */
export function parseRedisNamespace(text: string): string {
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(text)) {
    throw new InvalidOptionError(`--redis-namespace must be 1 to 64 letters, digits or - _ . :, not '${text}'`, '--redis-namespace');
  }
  return text;
}

/** An address as the user typed it, without what looks like a password in it (user:pass@). */
function redact(text: string): string {
  return text.replace(/\/\/[^@/]*@/, '//***@').replace(/^[^/@]*@/, '***@');
}

/**
 * Custom resources a node offers: a JSON object of names to non-negative amounts. CPU and GPU have
 * flags of their own, so that a node's count of each is set in one place.
 */
export function parseResources(text: string): Record<string, number> {
  const example = `e.g. --resources '{"disk": 2}'`;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new InvalidOptionError(`--resources is not JSON (${(error as Error).message}): give an object of resource names to amounts, ${example}`, '--resources');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOptionError(`--resources must be a JSON object of resource names to amounts, ${example}, not ${describeValue(value)}`, '--resources');
  }
  const resources: Record<string, number> = {};
  for (const [name, amount] of Object.entries(value)) {
    if (name === 'CPU' || name === 'GPU') {
      throw new InvalidOptionError(`--resources cannot set ${name}: use --num-${name.toLowerCase()}s instead`, '--resources');
    }
    if (name.trim() === '') throw new InvalidOptionError(`--resources has an empty resource name: ${example}`, '--resources');
    if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
      throw new InvalidOptionError(`--resources: "${name}" must be a number, 0 or more, not ${JSON.stringify(amount) ?? describeValue(amount)}`, '--resources');
    }
    resources[name] = amount;
  }
  return resources;
}

/** Adapts a parser above to commander's argParser, whose usage errors it prints and exits 1 on. */
export function asArgParser<T>(parse: (text: string) => T): (text: string) => T {
  return (text) => {
    try {
      return parse(text);
    } catch (error) {
      if (error instanceof InvalidOptionError) throw new CommanderArgumentError(error.message);
      throw error;
    }
  };
}
