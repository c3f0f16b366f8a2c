/**
 * The dashboard's door: every request but GET /healthz carries the cluster token, as
 * `Authorization: Bearer <token>` (the CLI, curl, Prometheus) or as the `miniray_token` cookie
 * (the page). The cookie is set by GET /?token=<token>, the URL the head prints once (as
 * Jupyter's), which then redirects to the same path without the token, so that it leaves the
 * address bar and the history. Ray's dashboard had no such door; its jobs API was how ShadowRay
 * (CVE-2023-48022) ran code on clusters.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const TOKEN_COOKIE = 'miniray_token';

/** Paths served without the token: probes only (they say nothing about the cluster). */
const OPEN_PATHS = new Set(['/healthz']);

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Whether `given` is the token, in time that does not depend on where they differ: the digests
 * have one length, so timingSafeEqual compares all of them (comparing the texts would leak the
 * token's length, and `===` the length of the matching prefix).
 */
export function tokenMatcher(token: string): (given: string) => boolean {
  const expected = digest(token);
  return (given) => timingSafeEqual(digest(given), expected);
}

/** The value of cookie `name` in a Cookie header, if there. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at < 0 || part.slice(0, at).trim() !== name) continue;
    const raw = part.slice(at + 1).trim();
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return undefined;
}

/**
 * The token a request presents, and how: the Authorization header wins over the cookie. The
 * cookie counts only for GET and HEAD: SameSite=Strict still sends it from another port of the
 * same host (same site), so a page there could otherwise POST (a text/plain form needs no CORS
 * preflight) and stop a job; the dashboard's page only GETs, and scripts send the header.
 */
function presented(request: FastifyRequest): { token: string } | { malformed: string } | { cookieOnly: true } | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match === null ? { malformed: "the Authorization header must be 'Bearer <token>'" } : { token: match[1] as string };
  }
  const cookie = readCookie(request.headers.cookie, TOKEN_COOKIE);
  if (cookie === undefined || cookie === '') return undefined;
  return request.method === 'GET' || request.method === 'HEAD' ? { token: cookie } : { cookieOnly: true };
}

function refuse(reply: FastifyReply, status: 401 | 403, message: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').send({ error: status === 401 ? 'Unauthorized' : 'Forbidden', message });
}

/** The path of a request URL without its `token` parameter (the others kept). */
function withoutToken(url: string): string {
  const parsed = new URL(url, 'http://dashboard.invalid');
  parsed.searchParams.delete('token');
  // A path that begins with '//' ('/.//evil.example' normalizes to it) would send the browser to another host.
  const path = parsed.pathname.startsWith('//') ? '/' : parsed.pathname;
  return `${path}${parsed.search}`;
}

const WHERE_THE_TOKEN_IS = 'the token `miniray start --head` printed: MINIRAY_AUTH_TOKEN, or ~/.miniray/auth_token on the head';

/** Adds the token check to `app` (a hook on every route, those of plugins registered later included). */
export function installAuth(app: FastifyInstance, token: string): void {
  const matches = tokenMatcher(token);
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    if (OPEN_PATHS.has(path)) return;
    const query = request.query as Record<string, unknown> | undefined;
    const fromUrl = request.method === 'GET' ? query?.['token'] : undefined;
    if (fromUrl !== undefined) {
      if (typeof fromUrl !== 'string' || fromUrl === '') return refuse(reply, 401, 'give one token: ?token=<the cluster token>');
      if (!matches(fromUrl)) return refuse(reply, 403, `wrong token: give ${WHERE_THE_TOKEN_IS}`);
      // Strict: no other site's page can make the browser send it (no cross-site requests with it).
      const cookie = `${TOKEN_COOKIE}=${encodeURIComponent(fromUrl)}; Path=/; HttpOnly; SameSite=Strict`;
      return reply.code(302).header('set-cookie', cookie).header('cache-control', 'no-store').header('location', withoutToken(request.url)).send();
    }
    const given = presented(request);
    if (given === undefined) {
      return refuse(reply, 401, 'this needs the cluster token: send Authorization: Bearer <token>, or open the URL with ?token= that `miniray start --head` printed');
    }
    if ('malformed' in given) return refuse(reply, 401, given.malformed);
    if ('cookieOnly' in given) return refuse(reply, 401, `${request.method} needs Authorization: Bearer <token>: the dashboard's cookie is taken only for GET and HEAD`);
    if (!matches(given.token)) return refuse(reply, 403, `wrong token: this is not the cluster token (${WHERE_THE_TOKEN_IS})`);
    return undefined;
  });
}
