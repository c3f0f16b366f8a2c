/**
 * HOST:PORT, the one way miniray writes a network address (a head's, a node's, Redis's): a name
 * or an IPv4 address, or an IPv6 address in brackets ([::1]:6380), then a port from 1 to 65535.
 * Callers say what the address was for when it is not one.
 */
export function parseHostPort(text: string): { host: string; port: number } | undefined {
  const match = /^(\[[^\]\s]+\]|[^:\s/@[\]]+):(\d{1,5})$/.exec(text.trim());
  if (match === null) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (match[1] as string).replace(/^\[|\]$/g, ''), port };
}

/** `host:port`, with an IPv6 host in brackets, so that parseHostPort reads it back. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
