#!/usr/bin/env node
// The `miniray` executable (package.json's bin).
import { main } from './index.js';

process.exitCode = await main(process.argv);
