/**
 * Where the head tells the cluster its dashboard's URL (without the token): GCS KV, so that a
 * driver that joins learns it (`init()` resolves to it, with the token, as Ray's init returns the
 * dashboard's URL). Apart from index.ts so that reading it does not load the server.
 */
export const DASHBOARD_URL_KEY = { namespace: 'dashboard', key: 'url' } as const;

/** host:port for a URL: IPv6 addresses in brackets. */
export function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
