// Actor options that the cluster's fault tolerance reads: lifetime, and its error for other values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidOptionError } from '../errors/index.js';
import { defaultActorOptions, mergeActorOptions } from './options.js';

test("lifetime is 'non_detached' by default, 'detached' when asked; other values are refused naming the option and its values", () => {
  const base = defaultActorOptions(false);
  assert.equal(base.lifetime, 'non_detached');
  assert.equal(mergeActorOptions('C.options()', base, { lifetime: 'detached' }).lifetime, 'detached');
  // A detached actor needs no name (as in Ray).
  assert.equal(mergeActorOptions('C.options()', base, { lifetime: 'detached' }).name, undefined);
  assert.throws(
    () => mergeActorOptions('C.options()', base, { lifetime: 'forever' as 'detached' }),
    (error: unknown) => error instanceof InvalidOptionError && error.option === 'lifetime' && /'detached', 'non_detached'/.test(error.message),
  );
});
