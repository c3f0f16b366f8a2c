/**
 * ObjectRef<T>: a typed future for an object that may not exist yet and may live on another
 * worker or node. It names the object (its ObjectID) and its owner: the CoreWorker that created it
 * with put() or by submitting the task that returns it, which knows its state and lineage.
 */
import { inspect } from 'node:util';
import { ObjectID } from '../ids/index.js';

/** Where the owner of an object lives: the node, and the worker (or driver) on it. */
export interface OwnerAddress {
  readonly nodeId: string;
  readonly workerId: string;
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

let refCreated: ((ref: ObjectRef) => void) | undefined;

/**
 * Called with every ObjectRef made in this thread from now on (the thread's CoreWorker counts
 * them, to know when the last one is gone). One per thread; undefined stops it.
 */
export function onRefCreated(hook: ((ref: ObjectRef) => void) | undefined): void {
  refCreated = hook;
}
