/**
 * ObjectRef<T>: a typed future for an object that may not exist yet and may live on another
 * worker or node. It names the object (its ObjectID) and its owner: the CoreWorker that created it
 * with put() or by submitting the task that returns it, which knows its state and lineage.
 */
import { inspect } from 'node:util';
import { InvalidArgumentError, describeValue } from '../errors/index.js';
import { ObjectID, UniqueId, isIdHex, type NodeIdHex, type ObjectIdHex, type WorkerIdHex } from '../ids/index.js';

/**
 * Where the owner of an object lives: the node, and the worker (or driver) on it. Plain strings, as
 * a ref carries them: a ref made by hand or decoded from a value names what it was given, and the
 * runtime checks them before it relies on them (core-worker/references.ts).
 */
export interface OwnerAddress {
  readonly nodeId: string;
  readonly workerId: string;
}

/**
 * An owner's address as the runtime's own specs and messages carry it: the IDs of a node and of a
 * worker, made by the runtime or checked where they arrived (src/protocol).
 */
export interface OwnerAddressHex extends OwnerAddress {
  readonly nodeId: NodeIdHex;
  readonly workerId: WorkerIdHex;
}

/** Key of ObjectRef's phantom member; exists only in types. */
declare const valueType: unique symbol;

export class ObjectRef<T = unknown> {
  /**
   * Phantom: ties the ref to the type of its value at compile time (no field at run time). Not
   * `private`, because declaration files drop the types of private members, which would make every
   * ObjectRef<X> assignable to every ObjectRef<Y> for users of the built package.
   */
  declare readonly [valueType]?: T;

  readonly id: ObjectID;
  readonly owner: OwnerAddress;

  constructor(id: ObjectID, owner: OwnerAddress) {
    if (!(id instanceof ObjectID)) {
      throw new InvalidArgumentError(
        `new ObjectRef() takes an ObjectID first (e.g. ObjectID.fromHex(hex)); got ${describeValue(id)}. ` +
          'Refs come from put() and .remote(); make one by hand only to name an object that exists.',
        'id',
      );
    }
    if (!isOwnerAddress(owner)) {
      throw new InvalidArgumentError(
        `new ObjectRef() takes an owner address { nodeId: string, workerId: string } second; got ${describeValue(owner)}`,
        'owner',
      );
    }
    this.id = id;
    this.owner = owner;
    refCreated?.(this);
  }

  /** The object's ID as 32 hex characters (the key miniray uses everywhere). */
  get hex(): string {
    return this.id.toHex();
  }

  toString(): string {
    return `ObjectRef(${this.id.toHex()})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

function isOwnerAddress(value: unknown): value is OwnerAddress {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as OwnerAddress).nodeId === 'string' &&
    typeof (value as OwnerAddress).workerId === 'string'
  );
}

const toHex = UniqueId.prototype.toHex;

/**
 * The object ID of `value` if it is a well-formed ObjectRef, else undefined. A value can pass
 * `instanceof ObjectRef` without being made by the constructor (Object.create, a changed
 * prototype, a proxy), so callers that take refs from users check with this, never with
 * `instanceof` alone. Never throws.
 */
export function refHex(value: unknown): ObjectIdHex | undefined {
  try {
    if (!(value instanceof ObjectRef)) return undefined;
    const id: unknown = value.id;
    if (!(id instanceof ObjectID)) return undefined;
    const hex = toHex.call(id);
    return isIdHex<ObjectIdHex>(hex) ? hex : undefined;
  } catch {
    return undefined; // a hostile proxy or getter
  }
}

/** What `value` is, for an error where refs were expected: its description, or that it is a forged ref. */
export function describeNonRef(value: unknown): string {
  if (refHex(value) !== undefined) return 'a single ObjectRef (put it in an array: [ref])';
  let looksLikeRef = false;
  try {
    looksLikeRef = value instanceof ObjectRef;
  } catch {
    // a proxy whose getPrototypeOf trap throws
  }
  return looksLikeRef ? 'an ObjectRef that was not made by miniray (its id is not an ObjectID)' : describeValue(value);
}

let refCreated: ((ref: ObjectRef) => void) | undefined;

/**
 * Called with every ObjectRef made in this thread from now on (the thread's CoreWorker counts
 * them, to know when the last one is gone). One per thread; undefined stops it.
 */
export function onRefCreated(hook: ((ref: ObjectRef) => void) | undefined): void {
  refCreated = hook;
}
