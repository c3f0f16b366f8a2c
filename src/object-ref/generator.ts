/**
 * ObjectRefGenerator<T>: what `.remote()` of a generator function (or an actor's generator method)
 * returns, as Ray's. Each value the generator yields is its own object, and the caller gets a ref
 * to each as soon as it is yielded: `for await (const ref of gen)`, or `await gen.next()`. An
 * error thrown inside the generator arrives at the next item (a ref whose get() throws it); after
 * it, the generator is done.
 *
 * The stream lives with the owner's node; this object only reads it, through the StreamReader its
 * thread's CoreWorker gives it (see core-worker and node/generators.ts).
 */
import { inspect } from 'node:util';
import type { ObjectRef } from './index.js';
import { hexOf, type ObjectIdHex } from '../ids/index.js';

/** What a node answers a next(): item `index` exists, or the stream ended (ok, or with an error). */
export type StreamAnswer = 'item' | 'end' | 'failed';

/** How an ObjectRefGenerator reads its stream (the CoreWorker of the thread that made it). */
export interface StreamReader {
  /** Resolves once item `index` of the stream exists, or the stream has ended. */
  next(generatorId: ObjectIdHex, index: number): Promise<StreamAnswer>;
  /** The first ref to item `index` (the owner's, made once). */
  itemRef(generatorId: ObjectIdHex, index: number): ObjectRef;
  /** The reader lets go of the stream: its unread items are freed. */
  drop(generatorId: ObjectIdHex): void;
  /** wait([gen]): calls `ready` once item `index` exists or the stream has ended; reads nothing. */
  peek(generatorId: ObjectIdHex, index: number, ready: () => void): void;
}

/**
 * wait() on a generator: calls `ready` once its next item is available or it is finished (as Ray's
 * ray.wait([gen])). Nothing is read: next() still gives that item.
 */
export function whenGeneratorReady(gen: ObjectRefGenerator, ready: () => void): void {
  peekOf(gen, ready);
}
let peekOf: (gen: ObjectRefGenerator, ready: () => void) => void;

/**
 * The ID of item `index` of the stream whose end object is `generatorId`: derived, so the node,
 * the worker and another node all name it alike without telling each other (as Ray derives a
 * generator's return IDs from its task ID and an index). The last 32 bits of the 128-bit ID are
 * XORed with index + 1, which never gives the generator's own ID.
 */
export function generatorItemId(generatorId: string, index: number): ObjectIdHex {
  const last = Number.parseInt(generatorId.slice(24), 16);
  const mixed = ((last ^ (index + 1)) >>> 0).toString(16).padStart(8, '0');
  return (generatorId.slice(0, 24) + mixed) as ObjectIdHex;
}

/** Lets go of streams whose generator was collected unfinished, so their unread items go too. */
const collected = new FinalizationRegistry<{ reader: StreamReader; generatorId: ObjectIdHex }>(({ reader, generatorId }) => reader.drop(generatorId));

export class ObjectRefGenerator<T = unknown> implements AsyncIterator<ObjectRef<T>, undefined, undefined> {
  /** Phantom, as ObjectRef's: ties the generator to its items' type. */
  declare readonly itemType?: T;

  #index = 0;
  #finished = false;
  readonly #ref: ObjectRef;
  readonly #reader: StreamReader;
  readonly #token = {};

  /** @internal made by `.remote()`: `ref` is the stream's end object. */
  constructor(ref: ObjectRef, reader: StreamReader) {
    this.#ref = ref;
    this.#reader = reader;
    collected.register(this, { reader, generatorId: hexOf(ref.id) }, this.#token);
  }

  /**
   * The ref to the next yielded value, as soon as it is yielded; `done` once the generator has
   * returned. If the generator threw (or its worker died for good, or it was cancelled), the next
   * item is a ref whose get() throws that error, and the generator is done after it.
   */
  async next(): Promise<IteratorResult<ObjectRef<T>, undefined>> {
    if (this.#finished) return { done: true, value: undefined };
    const index = this.#index++;
    const answer = await this.#reader.next(hexOf(this.#ref.id), index);
    if (answer === 'item') return { done: false, value: this.#reader.itemRef(hexOf(this.#ref.id), index) as ObjectRef<T> };
    this.#finish(false);
    // The stream's end object holds the error: it is the item that throws it (as in Ray).
    if (answer === 'failed') return { done: false, value: this.#ref as ObjectRef<T> };
    return { done: true, value: undefined };
  }

  /** Stops reading (`break` in `for await` calls it): the items not read yet are freed. */
  async return(): Promise<IteratorResult<ObjectRef<T>, undefined>> {
    this.#finish(true);
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  static {
    // A function of the module rather than a method: wait() needs it, users do not.
    peekOf = (gen, ready) => {
      if (gen.#finished) ready();
      else gen.#reader.peek(hexOf(gen.#ref.id), gen.#index, ready);
    };
  }

  /**
   * A ref that is ready when the generator task has finished: get() gives the number of values it
   * yielded, or throws the error it ended with.
   */
  completed(): ObjectRef<number> {
    return this.#ref as ObjectRef<number>;
  }

  #finish(drop: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    collected.unregister(this.#token);
    if (drop) this.#reader.drop(hexOf(this.#ref.id));
  }

  toString(): string {
    return `ObjectRefGenerator(${this.#ref.hex})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** `instanceof ObjectRefGenerator`, false where that throws (a proxy whose getPrototypeOf trap throws: wait() and cancel() get any value). */
export function isObjectRefGenerator(value: unknown): value is ObjectRefGenerator<unknown> {
  try {
    return value instanceof ObjectRefGenerator;
  } catch {
    return false;
  }
}
