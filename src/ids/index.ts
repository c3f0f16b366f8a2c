/**
 * Fixed-size, typed identifiers (as Ray's src/ray/common/id.h): every ID is 16 random bytes,
 * shown as 32 lowercase hex characters. The hex string is the canonical in-memory form: it is the
 * Map key everywhere in miniray, so an ID is created once and never re-encoded on the hot path.
 */
import { randomFillSync } from 'node:crypto';
import { InvalidArgumentError, describeValue } from '../errors/index.js';

const ID_BYTES = 16;
const HEX_LENGTH = ID_BYTES * 2;
const HEX_PATTERN = /^[0-9a-f]{32}$/;

// Random bytes are drawn in blocks: one randomFillSync per 256 IDs instead of one per ID.
const POOL_IDS = 256;
const pool = Buffer.allocUnsafe(ID_BYTES * POOL_IDS);
let poolOffset = pool.length;

/**
 * 32 random lowercase hex characters: the text of a new 128-bit ID. `H` names its kind
 * (`randomHex<TaskIdHex>()`): an ID made on the hot path without an ID object.
 */
export function randomHex<H extends string = string>(): H {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const hex = pool.toString('hex', poolOffset, poolOffset + ID_BYTES);
  poolOffset += ID_BYTES;
  return hex as H;
}

/**
 * True for the text of an ID: 32 lowercase hex characters. `H` names the kind the caller knows it
 * to be (`isIdHex<NodeIdHex>(ref.owner.nodeId)`): checked text takes its brand here.
 */
export function isIdHex<H extends string = string>(value: unknown): value is H {
  return typeof value === 'string' && HEX_PATTERN.test(value);
}

/**
 * The hex text of each kind of ID, branded so that one kind is never taken for another in a
 * message field or a Map key (a task's ID for an object's, a node's for an actor's). The brand
 * exists only for the compiler: at run time each is the plain string. Untyped text becomes one
 * in two places only: randomHex<H>() (the runtime's own new IDs), and a validator that has checked it (src/protocol).
 */
export type TaskIdHex = string & { readonly __brand: 'TaskID' };
export type ObjectIdHex = string & { readonly __brand: 'ObjectID' };
export type ActorIdHex = string & { readonly __brand: 'ActorID' };
export type NodeIdHex = string & { readonly __brand: 'NodeID' };
export type WorkerIdHex = string & { readonly __brand: 'WorkerID' };
export type JobIdHex = string & { readonly __brand: 'JobID' };
export type PlacementGroupIdHex = string & { readonly __brand: 'PlacementGroupID' };

/**
 * What a ref names: an object, or an actor. A non-detached actor's handles are counted as refs to
 * an entry with the actor's ID (its scope: actor lifetimes), so the refs a thread adds and drops,
 * and the refs nested in a value (a value may hold an actor handle), are of both kinds.
 */
export type RefIdHex = ObjectIdHex | ActorIdHex;

type IdClass<T> = { new (hex: string): T; readonly name: string };

/**
 * Shared API of all IDs. Subclasses differ only in type, so a TaskID is never taken for an
 * ObjectID. toHex() stays `string`: the ID classes are public, and the type tests pin it.
 */
export abstract class UniqueId {
  private readonly hex: string;

  /** `hex` must be 32 lowercase hex characters; `fromHex` checks it, the runtime's own IDs are trusted. */
  constructor(hex: string) {
    this.hex = hex;
  }

  static fromRandom<T extends UniqueId>(this: IdClass<T>): T {
    return new this(randomHex());
  }

  static fromHex<T extends UniqueId>(this: IdClass<T>, hex: string): T {
    if (!isIdHex(hex)) {
      throw new InvalidArgumentError(
        `${this.name}.fromHex() takes ${HEX_LENGTH} lowercase hex characters (as toHex() gives), got ${describeValue(hex)}`,
        'hex',
      );
    }
    return new this(hex);
  }

  /** 32 lowercase hex characters. */
  toHex(): string {
    return this.hex;
  }

  /** The ID's 16 bytes. */
  toBytes(): Uint8Array {
    return Uint8Array.from(Buffer.from(this.hex, 'hex'));
  }

  /** A string usable as a Map key; equal IDs give equal keys. */
  get key(): string {
    return this.hex;
  }

  equals(other: UniqueId): boolean {
    return other instanceof UniqueId && other.constructor === this.constructor && other.hex === this.hex;
  }

  toString(): string {
    return `${this.constructor.name}(${this.hex})`;
  }
}

// The `declare` brands make the classes distinct types without adding fields at run time.
export class ObjectID extends UniqueId {
  declare private readonly objectIdBrand: never;
}
export class TaskID extends UniqueId {
  declare private readonly taskIdBrand: never;
}
export class ActorID extends UniqueId {
  declare private readonly actorIdBrand: never;
}
export class NodeID extends UniqueId {
  declare private readonly nodeIdBrand: never;
}
export class WorkerID extends UniqueId {
  declare private readonly workerIdBrand: never;
}
export class JobID extends UniqueId {
  declare private readonly jobIdBrand: never;
}

/**
 * The hex text of an ID object, with its kind's brand: how the runtime reads the ID objects it
 * holds (a ref's ObjectID, a handle's ActorID) into the branded fields of its messages and tables.
 * toHex() itself stays `string`, as users see it.
 */
export function hexOf(id: ObjectID): ObjectIdHex;
export function hexOf(id: TaskID): TaskIdHex;
export function hexOf(id: ActorID): ActorIdHex;
export function hexOf(id: NodeID): NodeIdHex;
export function hexOf(id: WorkerID): WorkerIdHex;
export function hexOf(id: JobID): JobIdHex;
export function hexOf(id: UniqueId): string {
  return id.toHex();
}
