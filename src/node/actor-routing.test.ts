// Actor routing's aliases (actor-routing.ts) without a node or a cluster: fakes record where calls
// and kills go. Handles that lost a getIfExists name race stand for the winner, possibly through a
// claimant on this node that itself lost its claim at the GCS.
import type { ActorIdHex } from '../ids/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ActorCallSpec, ActorSpec } from '../protocol/index.js';
import { ActorRouting } from './actor-routing.js';
import type { NodeContext } from './context.js';

const NODE = 'a'.repeat(32);
const OTHER_NODE = 'b'.repeat(32);
const WINNER = 'c'.repeat(32);

function actorSpec(actorId: string): ActorSpec {
  return {
    actorId,
    className: 'Counter',
    classId: 'f'.repeat(16),
    methodNames: ['incr'],
    name: 'counter',
    namespace: 'ns',
    getIfExists: true,
    owner: { nodeId: NODE, workerId: 'd'.repeat(32) },
  } as unknown as ActorSpec;
}

function setup() {
  const kills: string[] = [];
  const calls: string[] = [];
  const claims: Array<(holder: { actorId: string; ownerNodeId: string; detached: boolean } | null) => void> = [];
  const context = {
    nodeId: NODE,
    objects: { addActorHandle: () => {}, hold: () => {}, get: () => undefined, addForeign: () => {} },
    actors: { has: () => false, lookup: () => null },
    envs: { awaitingWorkingDir: undefined },
    tasks: { remoteWork: (spec: ActorCallSpec) => spec },
    cluster: {
      claimActorName: (_spec: ActorSpec, answer: (typeof claims)[number]) => void claims.push(answer),
      borrow: () => {},
      killRemoteActor: (actorId: string) => void kills.push(actorId),
      callRemoteActor: (spec: ActorCallSpec) => void calls.push(spec.actorId),
    },
  } as unknown as NodeContext;
  return { routing: new ActorRouting(context), kills, calls, claims };
}

test('a handle whose claimant lost the name race reaches the winner: its calls and its kill alike', () => {
  const { routing, kills, calls, claims } = setup();
  const claimant = '1'.repeat(32);
  const late = '2'.repeat(32) as ActorIdHex;
  // The claimant asks the GCS for the name; a later handle on this node waits on the claimant.
  routing.createActor([], actorSpec(claimant), false);
  routing.createActor([], actorSpec(late), false);
  // The GCS says another node's actor holds the name: the claimant's ID stands for it.
  assert.equal(claims.length, 1);
  (claims[0] as (typeof claims)[number])({ actorId: WINNER, ownerNodeId: OTHER_NODE, detached: false });
  routing.callActor({ actorId: late, returnIds: ['3'.repeat(32)] } as unknown as ActorCallSpec, false);
  routing.killActor(late, true);
  assert.deepEqual(calls, [WINNER]);
  assert.deepEqual(kills, [WINNER], 'kill through the late handle reaches the winner, not the claimant');
});
