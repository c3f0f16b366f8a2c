// miniray is an ES module package. Where Node can require() ES modules (20.19+, 22.12+), the
// "module-sync" export condition hands require('miniray') the package itself; on older Node, this
// file answers instead, with an error that says what to do rather than Node's generic
// ERR_REQUIRE_ESM / ERR_PACKAGE_PATH_NOT_EXPORTED.
'use strict';
const error = new Error(
  "miniray is an ES module package, and this Node.js (" + process.version + ") cannot require() ES modules. " +
    "Load it with `import { init, remote, get } from 'miniray'` (in an ES module: \"type\": \"module\" in package.json, " +
    "or a .mjs/.mts file), or from CommonJS with `const miniray = await import('miniray')`; " +
    "or use Node.js 20.19 or later, where require('miniray') works.",
);
error.code = 'ERR_REQUIRE_ESM';
throw error;
