// Type-level tests for runtime environments, the runtime context and cancel options: checked by
// `tsc -p tsconfig.json --noEmit`, never run. Every `@ts-expect-error` line must be an error.
import { cancel, getRuntimeContext, init, put, remote, type ActorHandle, type RuntimeContext, type RuntimeEnv } from 'miniray';

type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
function expectType<Expected>() {
  return <Actual>(_value: Actual, ..._exact: Equal<Actual, Expected> extends true ? [] : [never]): void => {};
}

class Counter {
  n = 0;
  increment(by: number): number {
    return (this.n += by);
  }
}

export async function checks(): Promise<void> {
  const env: RuntimeEnv = { envVars: { A: '1' }, workingDir: '/tmp' };
  await init({ runtimeEnv: env });
  // @ts-expect-error envVars values are strings, as Ray's env_vars
  await init({ runtimeEnv: { envVars: { A: 1 } } });
  // @ts-expect-error only envVars and workingDir
  remote(() => 1, { runtimeEnv: { pip: ['x'] } });
  remote(() => 1).options({ runtimeEnv: { envVars: { B: '2' } } });
  remote(Counter).options({ runtimeEnv: { workingDir: '.' } });

  const ctx = getRuntimeContext();
  expectType<RuntimeContext>()(ctx);
  expectType<string>()(ctx.jobId);
  expectType<string | undefined>()(ctx.taskId);
  expectType<string | undefined>()(ctx.actorId);
  expectType<string>()(ctx.nodeId);
  expectType<string>()(ctx.workerId);
  expectType<string>()(ctx.namespace);
  expectType<boolean>()(ctx.wasCurrentActorReconstructed);
  expectType<RuntimeEnv>()(ctx.runtimeEnv);
  expectType<AbortSignal>()(ctx.signal);
  // The calling actor's handle, typed by the class given.
  const self = getRuntimeContext<Counter>().currentActor;
  expectType<ActorHandle<Counter>>()(self);
  self.increment.remote(1);
  // @ts-expect-error Counter has no method reset
  self.reset.remote();
  // @ts-expect-error the context is read-only
  ctx.taskId = 'x';

  const ref = put(1);
  cancel(ref, { recursive: false, force: false });
  // @ts-expect-error recursive is a boolean
  cancel(ref, { recursive: 'yes' });
}
