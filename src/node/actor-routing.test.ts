// Actor routing's aliases (actor-routing.ts) without a node or a cluster: fakes record where calls
// and kills go. Handles that lost a getIfExists name race stand for the winner, possibly through a
// claimant on this node that itself lost its claim at the GCS.
import type { ActorIdHex } from '../ids/index.js';
import { InvalidOptionError } from '../errors/index.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ActorCallSpec, ActorSpec } from '../protocol/index.js';
import { ActorRouting } from './actor-routing.js';
import type { NodeContext } from './context.js';
import { RuntimeEnvs } from './runtime-envs.js';

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
  /** What reached this node's actor table (an actor whose claim won is created here), in order. */
  const local: string[] = [];
  const created = new Set<string>();
  const context = {
    nodeId: NODE,
    objects: { addActorHandle: () => {}, hold: () => {}, get: () => undefined, addForeign: () => {}, releaseHolds: (key: string) => void local.push(`release ${key}`) },
    actors: {
      has: (actorId: string) => created.has(actorId),
      lookup: () => null,
      unalias: () => false,
      create: (spec: ActorSpec) => {
        created.add(spec.actorId);
        local.push(`create ${spec.actorId}`);
      },
      submitCall: (spec: ActorCallSpec) => void local.push(`call ${spec.actorId} ${spec.returnIds[0]}`),
      kill: (actorId: string, noRestart: boolean) => void local.push(`kill ${actorId} noRestart=${noRestart}`),
      outOfScope: (actorId: string) => void local.push(`outOfScope ${actorId}`),
    },
    envs: { awaitingWorkingDir: undefined, workingDirReady: () => true },
    dispatcher: { canRun: () => true },
    definitionsFor: () => [],
    tasks: { remoteWork: (spec: ActorCallSpec) => spec },
    cluster: {
      claimActorName: (_spec: ActorSpec, answer: (typeof claims)[number]) => void claims.push(answer),
      borrow: () => {},
      takeActor: () => false, // created here
      registerActor: () => {},
      killRemoteActor: (actorId: string) => void kills.push(actorId),
      callRemoteActor: (spec: ActorCallSpec) => void calls.push(spec.actorId),
    },
  } as unknown as NodeContext;
  return { routing: new ActorRouting(context), context, kills, calls, claims, local, created };
}

const call = (actorId: string, returnId: string) => ({ actorId, returnIds: [returnId] }) as unknown as ActorCallSpec;

test('a handle whose claimant lost the name race reaches the winner: its calls and its kill alike', () => {
  const { routing, kills, calls, claims } = setup();
  const claimant = '1'.repeat(32) as ActorIdHex;
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

// kill() right after creating a getIfExists actor in a cluster, before the GCS answered its name
// claim: the handle's ID is the claimant's, and which actor it stands for is the claim's outcome.
// Ray's getIfExists handle is the holder's own (ray.kill of it ends the holder), so the kill waits
// for the answer and goes where the calls go.
test('a kill made while the name claim is pending reaches the holder the claim lost to', () => {
  const { routing, kills, calls, claims, local } = setup();
  const claimant = '1'.repeat(32) as ActorIdHex;
  routing.createActor([], actorSpec(claimant), false);
  routing.callActor(call(claimant, '3'.repeat(32)), false);
  routing.killActor(claimant, true);
  assert.deepEqual([kills, calls], [[], []], 'nothing is sent before the claim is answered');
  (claims[0] as (typeof claims)[number])({ actorId: WINNER, ownerNodeId: OTHER_NODE, detached: false });
  assert.deepEqual(calls, [WINNER]);
  assert.deepEqual(kills, [WINNER], 'the kill ends the holder, not the claimant');
  assert.deepEqual(local, [], 'no actor is created for the claimant');
});

test('a kill made while the name claim is pending ends the actor created when the claim wins, after the calls made before it', () => {
  const { routing, kills, claims, local } = setup();
  const claimant = '1'.repeat(32) as ActorIdHex;
  const late = '2'.repeat(32) as ActorIdHex;
  routing.createActor([], actorSpec(claimant), false);
  routing.createActor([], actorSpec(late), false); // waits on the claimant
  routing.callActor(call(claimant, 'a'.repeat(32)), false);
  routing.killActor(late, true);
  routing.callActor(call(late, 'b'.repeat(32)), false);
  assert.deepEqual(local, []);
  (claims[0] as (typeof claims)[number])(null);
  assert.deepEqual(local, [`create ${claimant}`, `call ${claimant} ${'a'.repeat(32)}`, `kill ${claimant} noRestart=true`, `call ${claimant} ${'b'.repeat(32)}`]);
  assert.deepEqual(kills, []);
});

test("a claimant whose handles all go while its claim is pending: its alias is dropped if it lost, it ends if it won", () => {
  const lost = setup();
  const claimant = '1'.repeat(32) as ActorIdHex;
  lost.routing.createActor([], actorSpec(claimant), false);
  lost.routing.actorOutOfScope(claimant);
  (lost.claims[0] as (typeof lost.claims)[number])({ actorId: WINNER, ownerNodeId: OTHER_NODE, detached: false });
  assert.deepEqual(lost.local, [`release ${claimant}`], 'its hold on the holder is released');
  assert.deepEqual(lost.kills, [], 'the holder, with handles of its own elsewhere, lives on');

  const won = setup();
  won.routing.createActor([], actorSpec(claimant), false);
  won.routing.actorOutOfScope(claimant);
  assert.deepEqual(won.kills, [], 'not sent to the cluster under an ID it does not know yet');
  (won.claims[0] as (typeof won.claims)[number])(null);
  assert.deepEqual(won.local, [`create ${claimant}`, `outOfScope ${claimant}`]);
});

test("calls and a kill made while an actor's working-dir package is unpacked wait for it, then reach the actor in order", async () => {
  const { routing, context, kills, local, created } = setup();
  const actor = '4'.repeat(32) as ActorIdHex;
  // The node's runtime envs, with a package cache whose one package comes when the test says.
  const envs = new RuntimeEnvs(context);
  let unpacked: () => void = () => {};
  const prepared = new Promise<void>((resolve) => (unpacked = resolve));
  envs.workingDirs = { isReady: () => false, isPreparing: () => true, failure: () => undefined, prepare: () => prepared } as unknown as RuntimeEnvs['workingDirs'];
  Object.assign(context, { envs, actorRouting: routing });
  const spec = { ...actorSpec(actor), getIfExists: false, runtimeEnv: { workingDir: 'gcs://_miniray_pkg_0123456789abcdef.tar' } } as ActorSpec;
  envs.whenWorkingDirReady(spec, () => {
    created.add(actor);
    local.push(`create ${actor}`);
  });
  routing.callActor(call(actor, '5'.repeat(32)), false);
  routing.killActor(actor, true);
  assert.deepEqual([local, kills], [[], []], 'nothing reaches an actor that does not exist yet');
  unpacked();
  await prepared;
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(local, [`create ${actor}`, `call ${actor} ${'5'.repeat(32)}`, `kill ${actor} noRestart=true`]);
  assert.deepEqual(kills, [], 'not sent to the cluster, where the actor is not');
});

test('a name this node knows is taken throws before anything is registered for the new actor (no handle entry is left behind)', () => {
  const registered: string[] = [];
  const context = {
    nodeId: NODE,
    functions: new Map(),
    objects: { addActorHandle: (actorId: string) => void registered.push(`handle ${actorId}`) },
    actors: {
      lookup: () => null,
      nameTaken: () => new InvalidOptionError("an actor named 'counter' already exists", 'name'),
      create: (spec: ActorSpec) => void registered.push(`create ${spec.actorId}`),
    },
    cluster: undefined,
    dispatcher: { canRun: () => true },
    envs: { workingDirReady: () => true },
  };
  const routing = new ActorRouting(context as unknown as NodeContext);
  const spec = { ...actorSpec('e'.repeat(32)), getIfExists: false } as ActorSpec;
  assert.throws(() => routing.createActor([], spec), InvalidOptionError);
  assert.deepEqual(registered, []);
  // Not to be told at once (a worker process): the actor is created (dead, by the actor table).
  routing.createActor([], spec, false);
  assert.deepEqual(registered, [`handle ${'e'.repeat(32)}`, `create ${'e'.repeat(32)}`]);
});
