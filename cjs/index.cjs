// miniray is an ES module package. This file answers `require('miniray')` with an error that says
// so and how to load it, instead of Node's generic ERR_PACKAGE_PATH_NOT_EXPORTED.
'use strict';
const error = new Error(
  "miniray is ESM-only: load it with `import { init, remote, get } from 'miniray'` " +
    "(in a file that is an ES module: \"type\": \"module\" in package.json, or a .mjs/.mts file), " +
    "or from CommonJS with `const miniray = await import('miniray')`.",
);
error.code = 'ERR_REQUIRE_ESM';
throw error;
