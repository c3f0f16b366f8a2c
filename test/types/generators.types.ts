// Type-level tests of generators (checked by `npm run typecheck`, never run): a generator function
// made remote gives an ObjectRefGenerator of what it yields, numReturns 'dynamic' a ref to an array
// of refs, numReturns n n refs; numReturns n of a function typed to return a tuple must be its length.
import { type ObjectRef, type ObjectRefGenerator, remote, wait } from 'miniray';

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<Expected>() {
  return <Actual>(_value: Actual, ..._exact: Equals<Expected, Actual> extends true ? [] : ['types differ', Expected, Actual]): void => {};
}

export function generatorTypes(): void {
  const counter = remote(function* (n: number): Generator<number> {
    for (let i = 0; i < n; i++) yield i;
  });
  expectType<ObjectRefGenerator<number>>()(counter.remote(3));
  const words = remote(async function* (text: string) {
    for (const word of text.split(' ')) yield word;
  });
  expectType<ObjectRefGenerator<string>>()(words.remote('a b'));
  expectType<ObjectRef<ObjectRef<number>[]>>()(counter.options({ numReturns: 'dynamic' }).remote(3));
  expectType<[ObjectRef<number>, ObjectRef<number>, ObjectRef<number>]>()(counter.options({ numReturns: 3 }).remote(3));
  expectType<ObjectRef<number>>()(counter.options({ numReturns: 1 }).remote(1));
  expectType<undefined>()(counter.options({ numReturns: 0 }).remote(0));
  expectType<ObjectRefGenerator<number>>()(remote(function* () { yield 1; }, { numReturns: 'streaming', generatorBackpressureNumObjects: 2 }).remote());

  // numReturns n against a tuple's length
  const pair = remote((): [number, string] => [1, 'a'], { numReturns: 2 });
  expectType<[ObjectRef<number>, ObjectRef<string>]>()(pair.remote());
  // @ts-expect-error a function returning a pair has 2 returns, not 3
  remote((): [number, string] => [1, 'a'], { numReturns: 3 });
  // @ts-expect-error the same through .options()
  remote((): [number, string] => [1, 'a']).options({ numReturns: 3 });
  // an array of unknown length takes any count
  remote((n: number) => Array.from({ length: n }, () => 0), { numReturns: 4 });
  // numReturns 0: nothing to wait on
  expectType<undefined>()(remote((x: number) => void x, { numReturns: 0 }).remote(1));
  // @ts-expect-error numReturns is a count, 'streaming' or 'dynamic'
  remote(() => 1, { numReturns: 'stream' });

  // actor generator methods stream too
  class Source {
    *items(n: number): Generator<number> {
      for (let i = 0; i < n; i++) yield i;
    }
    async *lines(): AsyncGenerator<string> {
      yield 'x';
    }
    plain(): number {
      return 1;
    }
  }
  const source = remote(Source).remote();
  expectType<ObjectRefGenerator<number>>()(source.items.remote(2));
  expectType<ObjectRefGenerator<string>>()(source.lines.remote());
  expectType<ObjectRef<number>>()(source.plain.remote());
  // ...and take numReturns 'dynamic' or n, as generator tasks do
  expectType<ObjectRef<ObjectRef<number>[]>>()(source.items.options({ numReturns: 'dynamic' }).remote(2));
  expectType<[ObjectRef<number>, ObjectRef<number>]>()(source.items.options({ numReturns: 2 }).remote(2));
  expectType<ObjectRef<number>>()(source.items.options({ numReturns: 1 }).remote(1));
  expectType<undefined>()(source.items.options({ numReturns: 0 }).remote(0));
  expectType<ObjectRefGenerator<string>>()(source.lines.options({ numReturns: 'streaming' }).remote());
  expectType<ObjectRefGenerator<number>>()(source.items.options({ concurrencyGroup: 'io' }).remote(1));
  expectType<undefined>()(source.plain.options({ numReturns: 0 }).remote());
  // @ts-expect-error 'dynamic' is for generator methods
  source.plain.options({ numReturns: 'dynamic' });
  class Static {
    static readonly methodOptions = { all: { numReturns: 'dynamic' }, three: { numReturns: 3 } } as const;
    *all(): Generator<string> {
      yield 'a';
    }
    *three(): Generator<number> {
      yield 1;
    }
    *stream(): Generator<boolean> {
      yield true;
    }
  }
  const byClass = remote(Static).remote();
  expectType<ObjectRef<ObjectRef<string>[]>>()(byClass.all.remote());
  expectType<[ObjectRef<number>, ObjectRef<number>, ObjectRef<number>]>()(byClass.three.remote());
  expectType<ObjectRefGenerator<boolean>>()(byClass.stream.remote());

  // wait() takes generators, alone or with refs, and gives back what it was given
  const gen = counter.remote(1);
  void wait([gen]).then((r) => expectType<{ ready: ObjectRefGenerator<number>[]; pending: ObjectRefGenerator<number>[] }>()(r));
  const ref = source.plain.remote();
  void wait([gen, ref]).then((r) => expectType<(ObjectRefGenerator<number> | ObjectRef<number>)[]>()(r.ready));
}
