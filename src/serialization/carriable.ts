/**
 * What the codec can carry faithfully, and where in a value the first thing it cannot sits.
 *
 * msgpackr writes any object it has no rule for as its own enumerable fields, so a Response, a
 * generator, a Map iterator or a TextEncoder would arrive as `{}`. The codec asks `rejectionOf`
 * about every object that is not a plain object, array or Map (from hooks msgpackr calls anyway,
 * so a value is walked once); the answer is decided once per prototype and cached.
 *
 * Carried: plain and null-prototype objects, arrays, Map, Set, Date, RegExp, errors, typed arrays,
 * DataView, ArrayBuffer (and subclasses of these, as their base class), ObjectRefs, actor handles,
 * Queues, remote functions, actor classes, self-contained functions (as source), and instances of
 * the program's own classes that have own fields (as plain objects) or a toJSON() method.
 * Rejected: every other built-in object (whose state is in internal slots), iterators and
 * generators, promises, weak collections, event emitters and event targets, boxed primitives, and
 * class instances with no own fields (their state is in #private fields or symbols).
 */
import { EventEmitter } from 'node:events';
import { MessagePort } from 'node:worker_threads';
import { findFreeVariables } from './function-descriptor.js';
import { ObjectRefGenerator } from '../object-ref/generator.js';

/**
 * The deepest nesting a value may have: containers (arrays, objects, Maps, Sets, errors) inside
 * containers, counted from 1 at the top. Deeper values fail with SerializationError when encoded,
 * well before the encoder or decoder would run out of stack (Python's default recursion limit,
 * which bounds what Ray can pickle, is the same number).
 */
export const MAX_DEPTH = 1000;

/** Thrown from inside msgpackr's hooks; encodeValue turns it into a SerializationError. */
export class RejectedValue extends Error {}

/** Why a kind of object cannot travel, and what to do instead. */
export interface Rejection {
  readonly reason: string;
}

const TypedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
const IteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf([][Symbol.iterator]())) as object;
const GeneratorPrototype = Object.getPrototypeOf(function* () {}).prototype as object;
const AsyncGeneratorPrototype = Object.getPrototypeOf(async function* () {}).prototype as object;
const AsyncIteratorPrototype = Object.getPrototypeOf(AsyncGeneratorPrototype) as object;

/** Prototypes of what msgpackr or our extensions write faithfully (their subclasses arrive as them). */
const CARRIED_BASES = new Set<object>([
  Array.prototype, Map.prototype, Set.prototype, Date.prototype, RegExp.prototype, Error.prototype,
  TypedArrayPrototype, ArrayBuffer.prototype, DataView.prototype,
]);

const boxed = (name: string): string => `a ${name} object (made with new ${name}()) cannot travel; pass the primitive value`;

/** Built-ins with a reason of their own; others get a generic one (see builtinRejection). */
const SPECIFIC = new Map<object, string>([
  [Promise.prototype, 'a Promise cannot travel; await it first, or return an ObjectRef from a task'],
  [WeakMap.prototype, 'a WeakMap cannot be copied; use a Map'],
  [WeakSet.prototype, 'a WeakSet cannot be copied; use a Set'],
  [WeakRef.prototype, 'a WeakRef cannot be copied'],
  [FinalizationRegistry.prototype, 'a FinalizationRegistry cannot be copied'],
  [MessagePort.prototype, 'a MessagePort cannot be sent inside a value'],
  [SharedArrayBuffer.prototype, 'a SharedArrayBuffer is not copied into the object store; pass its contents (e.g. new Uint8Array(sab).slice())'],
  [EventEmitter.prototype, 'an EventEmitter (socket, stream, server, worker) is tied to its thread; open it inside the task instead'],
  [EventTarget.prototype, 'an EventTarget (AbortSignal, BroadcastChannel, ...) is tied to its thread; create it inside the task instead'],
  [GeneratorPrototype, 'a generator cannot travel: where it stopped is internal state. Collect its values first ([...gen]), or call the generator function inside the task'],
  [AsyncGeneratorPrototype, 'an async generator cannot travel: where it stopped is internal state. Collect its values first (for await), or call the generator function inside the task'],
  [IteratorPrototype, 'an iterator cannot travel: its position is internal state. Spread it into an array first ([...iterator])'],
  [AsyncIteratorPrototype, 'an async iterator cannot travel: its position is internal state. Collect its values first (for await)'],
  // generators
  [ObjectRefGenerator.prototype, 'an ObjectRefGenerator cannot travel: only the caller that started its task reads its stream. Pass the refs it gives (or gen.completed()), or collect them into an array first'],
  [Number.prototype, boxed('Number')],
  [String.prototype, boxed('String')],
  [Boolean.prototype, boxed('Boolean')],
  [Symbol.prototype, 'a Symbol object cannot travel; use a string'],
  [BigInt.prototype, 'a BigInt object cannot travel; pass the primitive bigint'],
]);

/** Advice for common built-ins, by global name. */
const ADVICE: Record<string, string> = {
  Response: 'read its body first (await response.json(), .text() or .arrayBuffer()) and pass that',
  Request: 'pass its URL and options, and make the request inside the task',
  Headers: 'pass Object.fromEntries(headers)',
  Blob: 'pass new Uint8Array(await blob.arrayBuffer())',
  File: 'pass new Uint8Array(await file.arrayBuffer()) and its name',
  FormData: 'pass Object.fromEntries(formData)',
  URL: 'pass url.href and make a new URL inside the task',
  URLSearchParams: 'pass params.toString()',
  AbortController: 'create it inside the task; to stop a running task, use cancel()',
  TextEncoder: 'create one inside the task',
  TextDecoder: 'create one inside the task',
  ReadableStream: 'read it first and pass the data',
  WritableStream: 'open it inside the task',
  TransformStream: 'create it inside the task',
};

const CARRIED = 0;
const INSTANCE = 1;
type Verdict = typeof CARRIED | typeof INSTANCE | Rejection;
const verdicts = new WeakMap<object, Verdict>();

const EMPTY_INSTANCE: Rejection = {
  reason:
    'it has no own fields, so it would arrive as an empty object: its state (if any) is in #private fields, ' +
    'symbols or internal slots, which the codec cannot see, and methods do not travel. Pass the data it holds, ' +
    'or give the class a toJSON() method',
};

/**
 * Why `value` (an object msgpackr has no rule of its own for) cannot travel, or undefined when it
 * can. Arrays and plain objects answer at once; other prototypes are judged once.
 */
export function rejectionOf(value: object): Rejection | undefined {
  const proto = Object.getPrototypeOf(value) as object | null;
  if (proto === Object.prototype || proto === null || Array.isArray(value)) return undefined;
  let verdict = verdicts.get(proto);
  if (verdict === undefined) {
    verdict = judge(proto);
    verdicts.set(proto, verdict);
  }
  if (verdict === CARRIED) return undefined;
  if (verdict === INSTANCE) return hasOwnField(value) || typeof (value as { toJSON?: unknown }).toJSON === 'function' ? undefined : EMPTY_INSTANCE;
  return verdict;
}

function judge(proto: object): Verdict {
  for (let p: object | null = proto; p !== null; p = Object.getPrototypeOf(p) as object | null) {
    if (CARRIED_BASES.has(p)) return CARRIED;
  }
  for (let p: object | null = proto; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    const specific = SPECIFIC.get(p);
    if (specific !== undefined) return { reason: specific };
    const builtin = builtinName(p);
    if (builtin === 'Object') return CARRIED; // another realm's Object.prototype: a plain object there
    if (builtin !== undefined) {
      const advice = ADVICE[builtin];
      return {
        reason:
          `${article(builtin)} ${builtin} is a built-in object whose state the codec cannot copy (it would arrive as {})` +
          (advice === undefined ? '; create it inside the task, or pass the plain data it holds' : `; ${advice}`),
      };
    }
  }
  return INSTANCE;
}

/** The name of the built-in class whose prototype `proto` is, or undefined for the program's own. */
function builtinName(proto: object): string | undefined {
  const own = Object.getOwnPropertyDescriptor(proto, 'constructor');
  const ctor: unknown = own?.value;
  if (typeof ctor !== 'function' || ctor.prototype !== proto) return undefined;
  if (/\{\s*\[native code\]\s*\}$/.test(Function.prototype.toString.call(ctor))) return ctor.name || 'built-in object';
  // Classes written in JavaScript that Node.js exposes as globals (Response, Headers, Blob, ...);
  // some are lazy getters, which an existing instance has already loaded.
  const global = ctor.name ? Object.getOwnPropertyDescriptor(globalThis, ctor.name) : undefined;
  const exposed: unknown = global === undefined ? undefined : global.get ? global.get.call(globalThis) : global.value;
  return exposed === ctor ? ctor.name : undefined;
}

const article = (name: string): string => (/^[AEIO]/i.test(name) ? 'an' : 'a');

function hasOwnField(value: object): boolean {
  for (const key in value) if (Object.prototype.hasOwnProperty.call(value, key)) return true;
  return false;
}

/** The class name to show for an object, read defensively (proxies and getters may throw). */
export function classOf(value: object): string {
  try {
    const tag = (value as { [Symbol.toStringTag]?: unknown })[Symbol.toStringTag];
    const ctor = (value as { constructor?: { name?: unknown } }).constructor;
    const name = typeof ctor?.name === 'string' && ctor.name !== '' && ctor.name !== 'Object' ? ctor.name : undefined;
    return name ?? (typeof tag === 'string' ? tag : 'Object');
  } catch {
    return 'Object';
  }
}

// ---- functions as values -------------------------------------------------------------------------

const shipped = new WeakMap<Function, readonly [string, string] | Rejection>();

/** How a function value travels, [name, source], or why it cannot (throws RejectedValue). */
export function shipFunction(fn: Function): readonly [string, string] {
  const entry = functionEntry(fn);
  if ('reason' in entry) throw new RejectedValue(entry.reason);
  return entry;
}

export function functionRejection(fn: Function): Rejection | undefined {
  const entry = functionEntry(fn);
  return 'reason' in entry ? entry : undefined;
}

function functionEntry(fn: Function): readonly [string, string] | Rejection {
  let entry = shipped.get(fn);
  if (entry === undefined) {
    entry = judgeFunction(fn);
    shipped.set(fn, entry);
  }
  return entry;
}

function judgeFunction(fn: Function): readonly [string, string] | Rejection {
  const source = Function.prototype.toString.call(fn);
  const name = fn.name || 'anonymous';
  if (/\{\s*\[native code\]\s*\}$/.test(source)) {
    return { reason: 'a built-in or bound function has no source to ship; pass a function that makes the call in its body, e.g. (x) => Math.sqrt(x)' };
  }
  let free: string[];
  try {
    free = findFreeVariables(source, name);
  } catch {
    return { reason: 'its source could not be parsed, so it cannot be shipped; make it a remote function with remote() and pass that' };
  }
  if (free.length > 0) {
    const list = free.map((v) => `'${v}'`).join(', ');
    return {
      reason:
        `it uses ${list} from the scope where it is defined: a function travels as its source, so it must be ` +
        `self-contained. Pass ${free.length > 1 ? 'them' : 'it'} as an argument instead, or make it a remote ` +
        'function with remote() and pass that',
    };
  }
  return [name, source];
}

// ---- walking a value: where the problem is, and how deep it goes ---------------------------------

/** A value met on the walk; its path is rebuilt from the parents only when it is reported. */
interface Step {
  readonly value: unknown;
  readonly parent: Step | undefined;
  /** How it sits in its parent: an index, a field name, a Map key, ... (see segmentOf). */
  readonly how: Segment;
  readonly key: unknown;
  readonly index: number;
  readonly depth: number;
}

const enum Segment {
  Top,
  Index,
  Field,
  MapKey,
  MapValue,
  SetItem,
  Cause,
  Errors,
}

export interface Found {
  /** Path from the top, e.g. `.body` or `[1].get("k")`; '' for the value itself. */
  readonly path: string;
  readonly depth: number;
}

export type WalkResult =
  | (Found & { readonly kind: 'rejected'; readonly what: string; readonly reason: string })
  | (Found & { readonly kind: 'tooDeep' })
  | { readonly kind: 'overBudget' }
  | { readonly kind: 'fine'; readonly maxDepth: number };

export interface WalkOptions {
  /** Look for values that cannot travel (the failure path), not only for depth. */
  readonly inspect: boolean;
  /**
   * Without a visited set, shared references are walked again (and a cycle forever): stop after
   * this many containers and report 'overBudget'. A value with no sharing has at most as many
   * containers as its encoding has bytes.
   */
  readonly budget?: number;
  /** Report 'tooDeep' past this depth (MAX_DEPTH unless the runtime wrapped the value). */
  readonly maxDepth?: number;
}

/**
 * Walks `value` in the order msgpackr writes it (so the depth found is the depth of its encoding,
 * where a second visit is a pointer), iteratively, so that any depth can be walked. Only objects
 * are pushed, and paths are built only for what is reported: a wide array of numbers costs a loop.
 */
export function walkValue(value: unknown, options: WalkOptions): WalkResult {
  const visited = options.budget === undefined ? new Set<object>() : undefined;
  const inspecting = options.inspect;
  let budget = options.budget ?? Infinity;
  let maxDepth = 0;
  const limit = options.maxDepth ?? MAX_DEPTH;
  const stack: Step[] = [{ value, parent: undefined, how: Segment.Top, key: undefined, index: 0, depth: 0 }];
  for (let step = stack.pop(); step !== undefined; step = stack.pop()) {
    const current = step.value;
    if (inspecting) {
      const rejected = inspect(current);
      if (rejected !== undefined) return { kind: 'rejected', path: pathOf(step), depth: step.depth, ...rejected };
    }
    if (typeof current !== 'object' || current === null) continue;
    if (visited !== undefined) {
      if (visited.has(current)) continue;
      visited.add(current);
    }
    if (isLeaf(current)) continue;
    const depth = step.depth + 1;
    if (depth > limit) return { kind: 'tooDeep', path: pathOf(step), depth };
    if (depth > maxDepth) maxDepth = depth;
    if (--budget < 0) return { kind: 'overBudget' };
    // Children are pushed in reverse, so that they are popped (visited) in msgpackr's order.
    const parent = step;
    const push = (child: unknown, how: Segment, key: unknown, index: number): void => {
      if ((typeof child === 'object' && child !== null) || (inspecting && (typeof child === 'function' || typeof child === 'symbol'))) {
        stack.push({ value: child, parent, how, key, index, depth });
      }
    };
    if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) push(current[i], Segment.Index, undefined, i);
    } else if (current instanceof Map) {
      const entries = [...current.entries()];
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, v] = entries[i] as [unknown, unknown];
        push(v, Segment.MapValue, k, i);
        push(k, Segment.MapKey, k, i);
      }
    } else if (current instanceof Set) {
      const items = [...current];
      for (let i = items.length - 1; i >= 0; i--) push(items[i], Segment.SetItem, undefined, i);
    } else if (current instanceof Error) {
      if (current instanceof AggregateError) push(current.errors, Segment.Errors, undefined, 0);
      push(current.cause, Segment.Cause, undefined, 0);
    } else {
      const keys: string[] = [];
      for (const key in current) if (Object.prototype.hasOwnProperty.call(current, key)) keys.push(key);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i] as string;
        push((current as Record<string, unknown>)[key], Segment.Field, key, i);
      }
    }
  }
  return { kind: 'fine', maxDepth };
}

/**
 * The success-path depth check: like walkValue without paths or inspection, on two flat stacks,
 * so that it costs a loop per container. 'tooDeep' and 'overBudget' are settled by walkValue.
 */
export function depthCheck(value: unknown, limit: number, budget: number): 'fine' | 'tooDeep' | 'overBudget' {
  if (typeof value !== 'object' || value === null) return 'fine';
  const values: object[] = [value];
  const depths: number[] = [1];
  for (let current = values.pop(); current !== undefined; current = values.pop()) {
    const depth = depths.pop() as number;
    if (depth > limit) return 'tooDeep';
    if (--budget < 0) return 'overBudget';
    const next = depth + 1;
    if (Array.isArray(current)) {
      for (let i = current.length - 1; i >= 0; i--) {
        const child: unknown = current[i];
        if (typeof child === 'object' && child !== null) {
          values.push(child);
          depths.push(next);
        }
      }
      continue;
    }
    const proto = Object.getPrototypeOf(current) as object | null;
    if (proto === Object.prototype || proto === null) {
      for (const key in current) {
        const child: unknown = (current as Record<string, unknown>)[key];
        if (typeof child === 'object' && child !== null) {
          values.push(child);
          depths.push(next);
        }
      }
      continue;
    }
    if (isLeaf(current)) continue;
    let children: unknown[];
    if (current instanceof Map) children = [...current].flat();
    else if (current instanceof Set) children = [...current];
    else if (current instanceof Error) children = current instanceof AggregateError ? [current.cause, current.errors] : [current.cause];
    else children = Object.keys(current).map((key) => (current as Record<string, unknown>)[key]);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) {
        values.push(child);
        depths.push(next);
      }
    }
  }
  return 'fine';
}

function inspect(value: unknown): { what: string; reason: string } | undefined {
  if (typeof value === 'function') {
    const rejection = functionRejection(value);
    return rejection && { what: `a function (${value.name || 'anonymous'})`, reason: rejection.reason };
  }
  if (typeof value === 'symbol') return { what: `a symbol (${value.toString()})`, reason: 'symbols cannot travel; use a string' };
  if (typeof value !== 'object' || value === null) return undefined;
  const rejection = rejectionOf(value);
  if (rejection === undefined) return undefined;
  const name = classOf(value);
  return { what: rejection === EMPTY_INSTANCE ? `an instance of ${name}` : `${article(name)} ${name}`, reason: rejection.reason };
}

/** Objects msgpackr writes without looking inside (or, with toJSON, as something else). */
function isLeaf(value: object): boolean {
  if (Array.isArray(value)) return false;
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date || value instanceof RegExp) return true;
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto !== Object.prototype && proto !== null && !(value instanceof Map || value instanceof Set || value instanceof Error) &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function';
}

function segmentOf(step: Step): string {
  switch (step.how) {
    case Segment.Top:
      return '';
    case Segment.Index:
      return `[${step.index}]`;
    case Segment.Field:
      return `.${String(step.key)}`;
    case Segment.MapKey:
      return `<key ${step.index}>`;
    case Segment.MapValue:
      return `.get(${JSON.stringify(typeof step.key === 'string' ? step.key : step.index)})`;
    case Segment.SetItem:
      return `<item ${step.index}>`;
    case Segment.Cause:
      return '.cause';
    case Segment.Errors:
      return '.errors';
  }
}

const SHOWN_SEGMENTS = 12;

function pathOf(step: Step): string {
  const segments: string[] = [];
  for (let s: Step | undefined = step; s !== undefined; s = s.parent) segments.push(segmentOf(s));
  segments.reverse();
  if (segments.length <= SHOWN_SEGMENTS * 2) return segments.join('');
  return `${segments.slice(0, SHOWN_SEGMENTS).join('')}...${segments.slice(-SHOWN_SEGMENTS).join('')}`;
}
