// init({ namespace }), after python/ray/tests/test_namespace.py: named actors live in the job's
// namespace, which getActor(), getIfExists and getRuntimeContext().namespace use, in the driver and
// in its tasks; another namespace is reached only by naming it.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ActorNotFoundError, get, getActor, getRuntimeContext, init, remote, shutdown } from 'miniray';

class Box {
  constructor(readonly label: string) {}
  read(): string {
    return this.label;
  }
}

before(async () => {
  await init({ numCpus: 2, namespace: 'team-a' });
});
after(async () => {
  await shutdown();
});

test('test_namespace_basic: the job\'s namespace holds its named actors, in the driver and in its tasks', async () => {
  assert.equal(getRuntimeContext().namespace, 'team-a');
  const box = remote(Box).options({ name: 'box' }).remote('driver');
  await get(box.read.remote());
  assert.equal(await get((await getActor<Box>('box')).read.remote()), 'driver');
  assert.equal(await get((await getActor<Box>('box', { namespace: 'team-a' })).read.remote()), 'driver');
  await assert.rejects(getActor('box', { namespace: 'team-b' }), ActorNotFoundError);
  const BoxClass = remote(Box);
  const inTask = remote(async (cls: typeof BoxClass) => {
    const m = await import('miniray');
    const found = await m.getActor<Box>('box');
    // An actor a task names without a namespace is in the job's too.
    const made = cls.options({ name: 'from-task' }).remote('task');
    await m.get(made.read.remote());
    return { namespace: m.getRuntimeContext().namespace, read: await m.get(found.read.remote()) };
  });
  assert.deepEqual(await get(inTask.remote(BoxClass)), { namespace: 'team-a', read: 'driver' });
  assert.equal(await get((await getActor<Box>('from-task', { namespace: 'team-a' })).read.remote()), 'task');
  // Another namespace's actor of the same name is another actor.
  const other = remote(Box).options({ name: 'box', namespace: 'team-b' }).remote('b');
  assert.equal(await get(other.read.remote()), 'b');
  assert.equal(await get((await getActor<Box>('box')).read.remote()), 'driver');
  // getIfExists looks in the job's namespace too.
  const same = remote(Box).options({ name: 'box', getIfExists: true }).remote('ignored');
  assert.equal(await get(same.read.remote()), 'driver');
});
