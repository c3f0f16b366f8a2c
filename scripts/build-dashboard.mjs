// Bundles the dashboard's page (src/dashboard/ui/main.tsx: preact and uPlot) into
// dist/dashboard/ui/app.js and app.css with esbuild, for `npm run build`: the page's libraries are
// devDependencies, so what the package ships is this bundle, served by src/dashboard/ui.ts.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
await build({
  entryPoints: { app: `${root}src/dashboard/ui/main.tsx` },
  outdir: `${root}dist/dashboard/ui`,
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  tsconfig: `${root}src/dashboard/ui/tsconfig.json`,
  legalComments: 'none',
  logLevel: 'warning',
});
