// RemoteActors with fakes, without a GCS or other nodes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionError, GcsUnavailableError, MinirayError } from '../errors/index.js';
import type { ActorInfo } from '../protocol/index.js';
import type { AgentContext } from './context.js';
import { RemoteActors } from './remote-actors.js';

function withGcs(getNamedActor: () => Promise<unknown>): RemoteActors {
  return new RemoteActors({ gcs: { getNamedActor } } as unknown as AgentContext, undefined as never, undefined as never);
}

const lookUp = (actors: RemoteActors) =>
  new Promise<[ActorInfo | null, MinirayError | undefined]>((resolve) => actors.lookupActor('counter', 'ns', (info, error) => resolve([info, error])));

test('a lookup the GCS could not answer fails with its error, not "no such actor" (as Ray\'s get_actor on a GCS timeout)', async () => {
  const away = new GcsUnavailableError('the GCS at 127.0.0.1:6380 did not answer within 60 s (gcsReconnectTimeoutMs)');
  assert.deepEqual(await lookUp(withGcs(() => Promise.reject(away))), [null, away]);
  const [, closed] = await lookUp(withGcs(() => Promise.reject(new ConnectionError('closed'))));
  assert.ok(closed instanceof ConnectionError);
  const [, other] = await lookUp(withGcs(() => Promise.reject(new TypeError('boom'))));
  assert.ok(other instanceof GcsUnavailableError);
  assert.match(other.message, /looking up actor 'counter' in namespace 'ns' failed: TypeError: boom/);
});

test('a name the GCS does not know, or a dead actor, is null with no error', async () => {
  assert.deepEqual(await lookUp(withGcs(() => Promise.resolve(null))), [null, undefined]);
  assert.deepEqual(await lookUp(withGcs(() => Promise.resolve({ state: 'DEAD' }))), [null, undefined]);
});
