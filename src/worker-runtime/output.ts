/**
 * The output of a worker's tasks and actors: each line written to stdout or stderr is prefixed with
 * where it came from, `(add worker=1a2b3c4d node=5e6f7a8b) text` (src/state/log-lines.ts), written
 * at once to the process's descriptor (stdio.ts: synchronous, so it is in the file before the
 * task's result is sent), and kept as a line record for the node (its log ring, and the owner's
 * node when the task's owner is elsewhere), sent before the results of the tasks that wrote it.
 *
 * Which task wrote a line: the newest task (or actor call) started and not finished on this
 * worker, else the last one that finished (a line written by leftover async code after its task
 * ended gets that task's prefix). Without AsyncLocalStorage (whose promise hooks would cost every
 * task) this cannot tell apart two tasks that run at once on one worker (one waits in get() while
 * the next runs, or an async actor's concurrent calls): a line then goes to the newer one.
 *
 * The prefix goes in at line starts, byte by byte: a newline byte (0x0A) never occurs inside a
 * multi-byte UTF-8 character, so splitting there never cuts one. The start of a line written
 * without its newline is held back a little (see write()), so that lines stay whole on a
 * descriptor that other workers write to as well.
 */
import type { ActorIdHex, NodeIdHex, TaskIdHex } from '../ids/index.js';
import { StringDecoder } from 'node:string_decoder';
import type { WorkerLogLine } from '../protocol/index.js';
import { logPrefix } from '../state/log-lines.js';

/** Who a line belongs to. One per task or call started (small: it must not keep the task's arguments alive). */
export interface OutputContext {
  readonly name: string;
  readonly taskId?: TaskIdHex | ActorIdHex;
  readonly actorId?: ActorIdHex;
  readonly ownerNode?: NodeIdHex;
}

/** A seq no task has (seqs are >= 1): the mark of a task that ended below the top of the running ones. */
const ENDED = -1;

/** Output with no task yet (the worker's start-up, preload modules): `(worker=... node=...)`. */
const NO_TASK: OutputContext = { name: '' };

/** Lines held for the node before they are sent without waiting for a result. */
const MAX_PENDING_LINES = 256;
const MAX_PENDING_CHARS = 64 * 1024;
/** A record's text at most (the node's ring keeps less of a line by default: a sixteenth of it, 1 MiB). */
const MAX_RECORD_CHARS = 1024 * 1024;

/** How long the start of a line without its newline is held back before it is written all the same. */
export const PARTIAL_LINE_HOLD_MS = 1000;
/** Bytes of an unfinished line held back at most. */
const MAX_HELD_BYTES = 64 * 1024;

const NEWLINE = 0x0a;
const NEWLINE_BYTES = Buffer.from('\n');

interface StreamState {
  readonly fd: 1 | 2;
  readonly stream: WorkerLogLine['stream'];
  /** A line is open: its prefix and some text were written or are held, its newline not yet. */
  lineOpen: boolean;
  /** Whose line is open. */
  lineOwner: OutputContext | undefined;
  /** The open line's bytes not yet written (its prefix first, unless already written). */
  held: Uint8Array[];
  heldBytes: number;
  holdTimer: NodeJS.Timeout | undefined;
  readonly decoder: StringDecoder;
  /** Text of the open line not yet made a record. */
  partial: string;
  partialOwner: OutputContext | undefined;
}

export interface TaskOutputOptions {
  readonly workerId: string;
  readonly nodeId: string;
  /** Writes bytes to descriptor 1 or 2, all of them, synchronously. */
  readonly write: (fd: 1 | 2, bytes: Uint8Array) => void;
  /** Clock of the records (tests fix it). */
  readonly now?: () => number;
}

export class TaskOutput {
  // The tasks running, in start order (usually none or one), in parallel arrays of primitives: a
  // task costs no allocation here unless it writes (its context object is made on its first line).
  private readonly seqs: number[] = [];
  private readonly names: string[] = [];
  private readonly taskIds: (TaskIdHex | ActorIdHex | undefined)[] = [];
  private readonly actorIds: (ActorIdHex | undefined)[] = [];
  private readonly ownerNodes: (NodeIdHex | undefined)[] = [];
  private readonly contexts: (OutputContext | undefined)[] = [];
  /**
   * Each running task's index in those arrays: finished() finds it in O(1) (an actor may run
   * many calls at once). A task that ends below the top is marked ENDED there (its seq), and the
   * arrays are compacted once ended entries outnumber the running ones.
   */
  private readonly indexOf = new Map<number, number>();
  /** The contexts made for running tasks (whether an open line's owner still runs, in O(1)). */
  private readonly runningContexts = new Set<OutputContext>();
  /** The last task that finished: its context, made when a line needs it. */
  private lastName = '';
  private lastTaskId: TaskIdHex | ActorIdHex | undefined;
  private lastActorId: ActorIdHex | undefined;
  private lastOwnerNode: NodeIdHex | undefined;
  private lastContext: OutputContext | undefined = NO_TASK;
  private readonly prefixes = new Map<string, Uint8Array>();
  private readonly streams: readonly [StreamState, StreamState];
  private pending: WorkerLogLine[] = [];
  private pendingChars = 0;
  private flushQueued = false;
  private send: ((lines: readonly WorkerLogLine[]) => void) | undefined;
  private readonly now: () => number;

  constructor(private readonly options: TaskOutputOptions) {
    const state = (fd: 1 | 2, stream: WorkerLogLine['stream']): StreamState => ({
      fd,
      stream,
      lineOpen: false,
      lineOwner: undefined,
      held: [],
      heldBytes: 0,
      holdTimer: undefined,
      decoder: new StringDecoder('utf8'),
      partial: '',
      partialOwner: undefined,
    });
    this.streams = [state(1, 'stdout'), state(2, 'stderr')];
    this.now = options.now ?? Date.now;
  }

  /** Where line records go (the worker's channel, once it exists); lines written before wait for it. */
  connect(send: (lines: readonly WorkerLogLine[]) => void): void {
    this.send = send;
    this.queueFlush();
  }

  /** Task or call `seq` starts: lines are its from now on. */
  started(seq: number, name: string, taskId?: TaskIdHex | ActorIdHex, actorId?: ActorIdHex, ownerNode?: NodeIdHex): void {
    this.indexOf.set(seq, this.seqs.length);
    this.seqs.push(seq);
    this.names.push(name);
    this.taskIds.push(taskId);
    this.actorIds.push(actorId);
    this.ownerNodes.push(ownerNode);
    this.contexts.push(undefined);
  }

  /** Task or call `seq` ended (any outcome; a seq that never started is ignored). */
  finished(seq: number): void {
    const i = this.indexOf.get(seq);
    if (i === undefined) return;
    this.indexOf.delete(seq);
    const seqs = this.seqs;
    this.lastName = this.names[i] as string;
    this.lastTaskId = this.taskIds[i];
    this.lastActorId = this.actorIds[i];
    this.lastOwnerNode = this.ownerNodes[i];
    const context = this.contexts[i];
    this.lastContext = context;
    if (context !== undefined) this.runningContexts.delete(context);
    seqs[i] = ENDED;
    this.contexts[i] = undefined;
    // The top is always a running task (or nothing): `current` reads it.
    while (seqs.length > 0 && seqs[seqs.length - 1] === ENDED) {
      seqs.pop();
      this.names.pop();
      this.taskIds.pop();
      this.actorIds.pop();
      this.ownerNodes.pop();
      this.contexts.pop();
    }
    if (seqs.length > 64 && 2 * this.indexOf.size < seqs.length) this.compact();
  }

  /** Drops the entries of tasks that ended below the top. */
  private compact(): void {
    let to = 0;
    for (let from = 0; from < this.seqs.length; from++) {
      const seq = this.seqs[from] as number;
      if (seq === ENDED) continue;
      this.seqs[to] = seq;
      this.names[to] = this.names[from] as string;
      this.taskIds[to] = this.taskIds[from];
      this.actorIds[to] = this.actorIds[from];
      this.ownerNodes[to] = this.ownerNodes[from];
      this.contexts[to] = this.contexts[from];
      this.indexOf.set(seq, to++);
    }
    this.seqs.length = to;
    this.names.length = to;
    this.taskIds.length = to;
    this.actorIds.length = to;
    this.ownerNodes.length = to;
    this.contexts.length = to;
  }

  /** Who writes now: the newest running task, else the last that finished. */
  private get current(): OutputContext {
    const top = this.seqs.length - 1;
    if (top >= 0) {
      let context = this.contexts[top];
      if (context === undefined) {
        context = contextOf(this.names[top] as string, this.taskIds[top], this.actorIds[top], this.ownerNodes[top]);
        this.contexts[top] = context;
        this.runningContexts.add(context);
      }
      return context;
    }
    return (this.lastContext ??= contextOf(this.lastName, this.lastTaskId, this.lastActorId, this.lastOwnerNode));
  }

  /**
   * A write to stdout (fd 1) or stderr (fd 2). Whole lines are written at once, prefixed; the start
   * of a line without its newline is held back (as Ray's log monitor reads whole lines), so that
   * other workers' lines written meanwhile to the same descriptor do not land in its middle. It is
   * written when its newline comes, when its task ends (with a newline), when another task of this
   * worker writes, or after PARTIAL_LINE_HOLD_MS (a progress line of dots is seen as it grows).
   */
  write(fd: 1 | 2, bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return;
    const state = this.streams[fd - 1] as StreamState;
    const owner = this.current;
    const out: Uint8Array[] = [];
    // Another task's line is open: end it, so that this one starts on a line of its own.
    if (state.lineOpen && state.lineOwner !== owner) this.closeLine(state, out);
    const prefix = this.prefixOf(owner.name);
    let start = 0;
    while (start < bytes.byteLength) {
      const newline = bytes.indexOf(NEWLINE, start);
      if (!state.lineOpen) {
        state.lineOpen = true;
        state.lineOwner = owner;
        state.held.push(prefix);
        state.heldBytes += prefix.byteLength;
      }
      if (newline === -1) {
        // Copied: the caller may reuse its buffer once write() returns.
        const rest = Buffer.from(bytes.subarray(start));
        state.held.push(rest);
        state.heldBytes += rest.byteLength;
        break;
      }
      out.push(...state.held, bytes.subarray(start, newline + 1));
      this.release(state);
      state.lineOpen = false;
      state.lineOwner = undefined;
      start = newline + 1;
    }
    if (state.heldBytes > MAX_HELD_BYTES) {
      out.push(...state.held);
      this.release(state);
    } else if (state.heldBytes > 0 && state.holdTimer === undefined) {
      state.holdTimer = setTimeout(() => this.writeHeld(state), PARTIAL_LINE_HOLD_MS);
      state.holdTimer.unref();
    }
    if (out.length > 0) this.options.write(fd, out.length === 1 ? (out[0] as Uint8Array) : Buffer.concat(out));
    this.record(state, owner, state.decoder.write(bytes));
  }

  /** Ends the open line: what is held of it, and its newline, go into `out`. */
  private closeLine(state: StreamState, out: Uint8Array[]): void {
    out.push(...state.held, NEWLINE_BYTES);
    this.release(state);
    state.lineOpen = false;
    state.lineOwner = undefined;
    this.endPartial(state);
  }

  /** What is held of the open line is written; the line stays open (its next write adds to it). */
  private writeHeld(state: StreamState): void {
    if (state.heldBytes === 0) return;
    const held = state.held;
    this.release(state);
    this.options.write(state.fd, held.length === 1 ? (held[0] as Uint8Array) : Buffer.concat(held));
  }

  private release(state: StreamState): void {
    state.held = [];
    state.heldBytes = 0;
    if (state.holdTimer !== undefined) clearTimeout(state.holdTimer);
    state.holdTimer = undefined;
  }

  /**
   * Every open line is ended now (with a newline) and its record sent: the worker is about to exit
   * (process.exit() in a task), and what is held would be lost.
   */
  end(): void {
    for (const state of this.streams) {
      if (!state.lineOpen) continue;
      const out: Uint8Array[] = [];
      this.closeLine(state, out);
      this.options.write(state.fd, Buffer.concat(out));
    }
    this.flush();
  }

  /** Line records of the text written, one per complete line. */
  private record(state: StreamState, owner: OutputContext, text: string): void {
    if (state.partial !== '' && state.partialOwner !== owner) this.endPartial(state);
    let start = 0;
    for (let newline = text.indexOf('\n'); newline !== -1; newline = text.indexOf('\n', start)) {
      const piece = text.slice(start, newline);
      this.push(state.stream, owner, state.partial === '' ? piece : state.partial + piece);
      state.partial = '';
      start = newline + 1;
    }
    if (start < text.length) {
      state.partial += text.slice(start);
      state.partialOwner = owner;
      // A line that never ends (a stream of dots for hours) is recorded in pieces, not held whole.
      if (state.partial.length >= MAX_RECORD_CHARS) this.endPartial(state);
    }
  }

  /** The open line's text so far becomes a record (its task ended, or another task writes). */
  private endPartial(state: StreamState): void {
    if (state.partial === '' || state.partialOwner === undefined) return;
    this.push(state.stream, state.partialOwner, state.partial);
    state.partial = '';
    state.partialOwner = undefined;
  }

  private push(stream: WorkerLogLine['stream'], owner: OutputContext, raw: string): void {
    const ended = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const text = ended.length > MAX_RECORD_CHARS ? `${ended.slice(0, MAX_RECORD_CHARS)} [line truncated]` : ended;
    const line: { -readonly [K in keyof WorkerLogLine]: WorkerLogLine[K] } = { stream, timeMs: this.now(), name: owner.name, text };
    if (owner.taskId !== undefined) line.taskId = owner.taskId;
    if (owner.actorId !== undefined) line.actorId = owner.actorId;
    if (owner.ownerNode !== undefined) line.ownerNode = owner.ownerNode;
    this.pending.push(line);
    this.pendingChars += text.length;
    // A long synchronous task that prints a lot sends its lines as it goes (the flush queued below
    // would wait for it to end), so that they neither pile up here nor all arrive at its end.
    if (this.pending.length >= MAX_PENDING_LINES || this.pendingChars >= MAX_PENDING_CHARS) this.flush();
    else this.queueFlush();
  }

  private queueFlush(): void {
    if (this.flushQueued || this.pending.length === 0) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      this.flush();
    });
  }

  /**
   * Sends the records so far; partial lines of tasks no longer running go as lines too. Called
   * before results are sent, so a task's lines reach its node (and its owner) before its result.
   */
  flush(): void {
    const [out, err] = this.streams;
    // The common case, once per batch of results: nothing written since the last flush.
    if (this.pending.length === 0 && !out.lineOpen && !err.lineOpen && out.partial === '' && err.partial === '') return;
    for (const state of this.streams) {
      if (state.lineOpen && state.lineOwner !== undefined && !this.isRunning(state.lineOwner)) {
        const out: Uint8Array[] = [];
        this.closeLine(state, out);
        this.options.write(state.fd, Buffer.concat(out));
      }
      if (state.partial !== '' && state.partialOwner !== undefined && !this.isRunning(state.partialOwner)) this.endPartial(state);
    }
    if (this.pending.length === 0 || this.send === undefined) return;
    const lines = this.pending;
    this.pending = [];
    this.pendingChars = 0;
    this.send(lines);
  }

  private isRunning(context: OutputContext): boolean {
    return this.runningContexts.has(context);
  }

  private prefixOf(name: string): Uint8Array {
    let prefix = this.prefixes.get(name);
    if (prefix === undefined) {
      prefix = Buffer.from(logPrefix(name, this.options.workerId, this.options.nodeId));
      // Names are the functions and classes a worker runs: few. A bound all the same.
      if (this.prefixes.size >= 1000) this.prefixes.clear();
      this.prefixes.set(name, prefix);
    }
    return prefix;
  }
}

function contextOf(name: string, taskId: TaskIdHex | ActorIdHex | undefined, actorId: ActorIdHex | undefined, ownerNode: NodeIdHex | undefined): OutputContext {
  return {
    name,
    ...(taskId === undefined ? {} : { taskId }),
    ...(actorId === undefined ? {} : { actorId }),
    ...(ownerNode === undefined ? {} : { ownerNode }),
  };
}
