// Type-level tests for per-method options (actors part): checked by `npm run typecheck`, never run.
// A method's numReturns in the class's static methodOptions, or in one call's .options(), changes
// what its handle method returns.
import { remote, type ActorHandle, type ObjectRef } from 'miniray';

type Equal<X, Y> = (<T>() => T extends X ? 1 : 2) extends <T>() => T extends Y ? 1 : 2 ? true : false;
function expectType<Expected>() {
  return <Actual>(_value: Actual, ..._exact: Equal<Actual, Expected> extends true ? [] : [never]): void => {};
}

class Splitter {
  static readonly methodOptions = {
    split: { numReturns: 2 },
    fetch: { concurrencyGroup: 'io' },
  } as const;
  split(x: number): [number, string] {
    return [x, String(x)];
  }
  async fetch(url: string): Promise<number> {
    return url.length;
  }
  plain(): boolean {
    return true;
  }
}

const actor = remote(Splitter).options({ concurrencyGroups: { io: 2 } }).remote();

// numReturns: 2 in the static map: two refs, typed per element.
expectType<[ObjectRef<number>, ObjectRef<string>]>()(actor.split.remote(1));
// A group alone does not change the return type.
expectType<ObjectRef<number>>()(actor.fetch.remote('x'));
expectType<ObjectRef<boolean>>()(actor.plain.remote());
// @ts-expect-error: split gives two refs, not one
const single: ObjectRef<[number, string]> = actor.split.remote(1);
void single;

// One call's .options({ numReturns }) changes that call's type; numReturns: 1 brings one ref back.
class Pair {
  pair(): [number, number] {
    return [1, 2];
  }
}
const pair = remote(Pair).remote();
expectType<[ObjectRef<number>, ObjectRef<number>]>()(pair.pair.options({ numReturns: 2 }).remote());
expectType<ObjectRef<[number, number]>>()(pair.pair.options({ numReturns: 1 }).remote());
expectType<ObjectRef<[number, number]>>()(pair.pair.options({ concurrencyGroup: 'io' }).remote());
// @ts-expect-error: an unknown method option
pair.pair.options({ numReturn: 2 });

// A handle typed by hand (ActorHandle<T, typeof Class.methodOptions>) agrees with remote()'s.
const typed: ActorHandle<Splitter, typeof Splitter.methodOptions> = actor;
void typed;
