// The cross-node tests on loopback: a head and nodes as real processes on 127.0.0.1 (suite.ts).
import { clusterSuite } from './suite.js';

clusterSuite('loopback', { netns: false });
