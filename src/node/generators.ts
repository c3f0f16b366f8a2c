/**
 * Streams of generator tasks (numReturns 'streaming'), kept by the node of their owner, as Ray's
 * owner keeps an ObjectRefStream per generator task. Each value the generator yields is reported as
 * it is yielded (a worker's `generatorItem`, or another node's when the task ran there) and stored
 * as object `generatorItemId(generatorId, index)`, owned by the task's owner; the stream's end is
 * the task's one return object, which holds the number of items or the error the task ended with.
 *
 *  - next(index): answered once item `index` exists ('item'), or the stream has ended: 'failed' for
 *    the index right after the last item when the task failed (the end object is then the item
 *    that throws), else 'end'.
 *  - A retried task runs its generator again from the start: items it reports again (index below
 *    those stored) are dropped, so the caller never sees an item twice (as Ray skips them).
 *  - Backpressure: once the caller has read an item, the task is told how many it has read (an ack),
 *    so a generator that runs `backpressure` items ahead waits for the reader.
 *  - The owner lets go of the stream (its ObjectRefGenerator returned or was collected, or its
 *    thread died): the items not read yet are freed, later ones are not stored, and the generator
 *    is no longer held back.
 *
 * Only generator tasks make a stream: other tasks pay nothing for this file.
 */
import type { ObjectDirectory } from '../ownership/index.js';
import { generatorItemId } from '../object-ref/generator.js';
import type { GeneratorAnswer, TaskSpec } from '../protocol/index.js';

/** Ack value that lets a generator run free (its reader is gone). */
const UNBOUNDED = Number.MAX_SAFE_INTEGER;

interface Stream {
  /** The thread that owns the task (and reads the stream). */
  readonly owner: string;
  readonly backpressure: number | undefined;
  /** Items stored so far (indices 0 .. count-1). */
  count: number;
  /** Items the reader has been told exist (its next() calls answered 'item'). */
  read: number;
  /** The end object is no longer pending: the task is done. */
  ended: boolean;
  dropped: boolean;
  /** next() calls waiting, by index. */
  waiters: Map<number, ((answer: GeneratorAnswer) => void)[]> | undefined;
  /** wait([gen]) calls waiting, by index: told as next() would be, but they read nothing (made on first use). */
  peeks: Map<number, ((answer: GeneratorAnswer) => void)[]> | undefined;
  /** Tells the running attempt how many items the reader has read (set by its first item, with backpressure). */
  ack: ((consumed: number) => void) | undefined;
  /** Which attempt `ack` reaches (a worker and seq, or a node). */
  attempt: string | undefined;
}

export class GeneratorStreams<P> {
  private readonly streams = new Map<string, Stream>();

  constructor(private readonly objects: ObjectDirectory<P>) {}

  /** A streaming task this node owns was submitted: its stream opens (before any item can come). */
  open(spec: TaskSpec): void {
    const generatorId = spec.returnIds[0] as string;
    if (this.streams.has(generatorId)) return;
    const backpressure = spec.returns?.kind === 'streaming' ? spec.returns.backpressure : undefined;
    this.streams.set(generatorId, { owner: spec.owner.workerId, backpressure, count: 0, read: 0, ended: false, dropped: false, waiters: undefined, peeks: undefined, ack: undefined, attempt: undefined });
    this.objects.fetch([generatorId], () => this.ended(generatorId));
  }

  has(generatorId: string): boolean {
    return this.streams.has(generatorId);
  }

  /**
   * Item `index` of a stream, reported by the attempt running now: `store(id)` stores it (as an
   * object owned by the stream's owner) unless it was stored already by an earlier attempt or the
   * reader is gone. `ack` reaches that attempt, named `attempt` (for backpressure). Returns what is
   * wrong with the report instead, having stored nothing.
   */
  item(generatorId: string, index: number, store: (id: string) => void, attempt: string, ack: (consumed: number) => void): string | undefined {
    const stream = this.streams.get(generatorId);
    if (stream === undefined) return undefined; // the reader let go and the task ended meanwhile: nothing to keep
    if (index > stream.count) return `reports item ${index} of a stream that has ${stream.count}`;
    if (stream.ended) return undefined; // the task failed or was cancelled meanwhile: its late items are not kept
    if (stream.backpressure !== undefined && stream.attempt !== attempt) {
      stream.attempt = attempt;
      stream.ack = ack;
      // A retried attempt starts again from the first item: it is told at once what was read.
      if (stream.read > 0 || stream.dropped) ack(stream.dropped ? UNBOUNDED : stream.read);
    }
    if (index < stream.count) return undefined; // a retry's repeat of an item stored already
    stream.count++;
    if (stream.dropped) return undefined;
    const id = generatorItemId(generatorId, index);
    this.objects.addPending(id, stream.owner, undefined);
    store(id);
    const waiting = stream.waiters?.get(index);
    if (waiting !== undefined) {
      stream.waiters?.delete(index);
      for (const answer of waiting) this.give(stream, index, answer);
    }
    const peeking = stream.peeks?.get(index);
    if (peeking !== undefined) {
      stream.peeks?.delete(index);
      for (const answer of peeking) answer('item');
    }
    return undefined;
  }

  /** The reader asks for item `index`; `thread` must be the stream's owner. */
  next(thread: string, generatorId: string, index: number, answer: (answer: GeneratorAnswer) => void): void {
    const stream = this.streams.get(generatorId);
    // A stream that is not (or no longer) here has ended: the reader was told so, or let it go.
    if (stream === undefined || stream.owner !== thread) return answer('end');
    if (index < stream.count) return this.give(stream, index, answer);
    if (stream.ended) return answer(this.endAnswer(generatorId, stream, index));
    let waiting = stream.waiters?.get(index);
    if (waiting === undefined) (stream.waiters ??= new Map()).set(index, (waiting = []));
    waiting.push(answer);
  }

  /**
   * wait([gen]): answered as next(index) would be, once item `index` exists or the stream has
   * ended, but nothing counts as read (no backpressure ack) and the stream stays: as Ray's wait
   * peeks at a generator's next ref without taking it.
   */
  peek(thread: string, generatorId: string, index: number, answer: (answer: GeneratorAnswer) => void): void {
    const stream = this.streams.get(generatorId);
    if (stream === undefined || stream.owner !== thread) return answer('end');
    if (index < stream.count) return answer('item');
    if (stream.ended) return answer(index === stream.count && this.objects.get(generatorId)?.state === 'failed' ? 'failed' : 'end');
    let peeking = stream.peeks?.get(index);
    if (peeking === undefined) (stream.peeks ??= new Map()).set(index, (peeking = []));
    peeking.push(answer);
  }

  /** The owner lets go of the stream: unread items are freed, later ones not kept, the generator not held back. */
  drop(thread: string, generatorId: string): void {
    const stream = this.streams.get(generatorId);
    if (stream === undefined || stream.owner !== thread || stream.dropped) return;
    stream.dropped = true;
    const unread: string[] = [];
    for (let i = stream.read; i < stream.count; i++) unread.push(generatorItemId(generatorId, i));
    stream.waiters = undefined;
    const peeks = stream.peeks;
    stream.peeks = undefined;
    stream.ack?.(UNBOUNDED);
    if (stream.ended) this.streams.delete(generatorId);
    // A wait() on a generator let go is not left waiting (its reader is done with it).
    if (peeks !== undefined) for (const peeking of peeks.values()) for (const answer of peeking) answer('end');
    this.objects.removeHandles(stream.owner, unread);
  }

  /** A thread is gone: the streams it owned are let go. */
  ownerGone(thread: string): void {
    for (const [generatorId, stream] of this.streams) if (stream.owner === thread) this.drop(thread, generatorId);
  }

  /** Tells the reader item `index` exists; what it has read so far goes to the generator (backpressure). */
  private give(stream: Stream, index: number, answer: (answer: GeneratorAnswer) => void): void {
    if (index >= stream.read) {
      stream.read = index + 1;
      stream.ack?.(stream.read);
    }
    answer('item');
  }

  private endAnswer(generatorId: string, stream: Stream, index: number): GeneratorAnswer {
    const failed = index === stream.count && this.objects.get(generatorId)?.state === 'failed';
    // Told of its end, the reader asks no more: the stream goes.
    this.streams.delete(generatorId);
    return failed ? 'failed' : 'end';
  }

  /** The task is done (its end object is stored, or failed): waiting readers get their answers. */
  private ended(generatorId: string): void {
    const stream = this.streams.get(generatorId);
    if (stream === undefined) return;
    stream.ended = true;
    // A task cancelled (or failed here) may still run on, waiting for its reader: let it run free.
    stream.ack?.(UNBOUNDED);
    stream.ack = undefined;
    if (stream.dropped) {
      this.streams.delete(generatorId);
      return;
    }
    const peeks = stream.peeks;
    stream.peeks = undefined;
    if (peeks !== undefined) {
      for (const [index, peeking] of peeks) {
        const failed = index === stream.count && this.objects.get(generatorId)?.state === 'failed';
        for (const answer of peeking) answer(failed ? 'failed' : 'end');
      }
    }
    const waiters = stream.waiters;
    stream.waiters = undefined;
    if (waiters === undefined || waiters.size === 0) return;
    const answers: [(answer: GeneratorAnswer) => void, GeneratorAnswer][] = [];
    for (const [index, waiting] of waiters) {
      const failed = index === stream.count && this.objects.get(generatorId)?.state === 'failed';
      for (const answer of waiting) answers.push([answer, failed ? 'failed' : 'end']);
    }
    // Told of its end, the reader asks no more: the stream goes.
    this.streams.delete(generatorId);
    for (const [answer, value] of answers) answer(value);
  }
}
