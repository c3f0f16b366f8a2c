#!/usr/bin/env node
// The `miniray` executable (package.json's bin).
import { main } from './index.js';

// `miniray list tasks | head`: the reader went away, so there is no one left to print for. End
// quietly, as other command-line tools do, instead of with an EPIPE stack.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

process.exitCode = await main(process.argv);
