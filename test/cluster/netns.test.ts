// The cross-node tests with the head and each node in a network namespace of its own, as separate
// hosts on one subnet (suite.ts, harness.ts). Needs root and a working `ip netns`; else it skips,
// saying why.
import { test } from 'node:test';
import { netnsUnavailable } from './harness.js';
import { clusterSuite } from './suite.js';

const unavailable = netnsUnavailable();
if (unavailable === undefined) clusterSuite('netns', { netns: true });
else test(`cluster across network namespaces: skipped, ${unavailable}`, { skip: unavailable }, () => {});
