/**
 * The page: GET / (a shell that loads the bundle) and GET /ui/app.js, /ui/app.css (the bundle
 * scripts/build-dashboard.mjs makes at `npm run build`, in dist/dashboard/ui/, beside this file's
 * build; from the sources, as in tests, the bundle of dist/ is used). Read once, on first request.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

const CANDIDATES = [new URL('./ui/', import.meta.url), new URL('../../dist/dashboard/ui/', import.meta.url)];

/** Where the built page is, if it was built. */
export function bundleDir(): string | undefined {
  for (const url of CANDIDATES) {
    const dir = fileURLToPath(url);
    if (existsSync(`${dir}app.js`)) return dir;
  }
  return undefined;
}

const SHELL = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>miniray dashboard</title>
<link rel="stylesheet" href="/ui/app.css">
</head>
<body>
<div id="app"></div>
<script type="module" src="/ui/app.js"></script>
</body>
</html>
`;

/**
 * Only this server's own scripts run on the page, it cannot be framed (clickjacking), and it sends
 * no Referer (links out of it carry nothing of the cluster's address).
 */
function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer');
}

export async function registerUi(app: FastifyInstance): Promise<void> {
  const files = new Map<string, Buffer>();
  const asset = (name: 'app.js' | 'app.css'): Buffer | undefined => {
    const cached = files.get(name);
    if (cached !== undefined) return cached;
    const dir = bundleDir();
    if (dir === undefined || !existsSync(`${dir}${name}`)) return undefined;
    const bytes = readFileSync(`${dir}${name}`);
    files.set(name, bytes);
    return bytes;
  };
  const notBuilt = (reply: FastifyReply) =>
    reply.code(503).send({ error: 'Service Unavailable', message: "the dashboard's page is not built: run `npm run build` (it bundles src/dashboard/ui into dist/dashboard/ui)" });

  app.get('/', async (_request, reply) => {
    if (asset('app.js') === undefined) return notBuilt(reply);
    return secure(reply).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(SHELL);
  });
  const serve = (name: 'app.js' | 'app.css', type: string) =>
    app.get(`/ui/${name}`, async (_request, reply) => {
      const bytes = asset(name);
      if (bytes === undefined) return notBuilt(reply);
      return secure(reply).header('cache-control', 'no-cache').type(type).send(bytes);
    });
  serve('app.js', 'text/javascript; charset=utf-8');
  serve('app.css', 'text/css; charset=utf-8');
}
