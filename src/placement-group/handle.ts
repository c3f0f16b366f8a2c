/**
 * The PlacementGroup handle (Ray's PlacementGroup): what placementGroup() and getPlacementGroup()
 * return, and what a task or actor is given when one is passed to it. It lives here, apart from
 * the API that makes groups (src/api/placement-group.ts), so that a worker can read one from a
 * task's arguments at no cost at start-up: this module is small, and the worker loads it first.
 * ready() and wait() ask the GCS, which is the API's work: it lends them here when it loads
 * (placementGroupCalls), as it does in any thread that imported miniray.
 */
import { addExtension } from 'msgpackr';
import { MinirayError } from '../errors/index.js';
import type { ObjectRef } from '../object-ref/index.js';
import { EXTENSION_TYPES } from '../serialization/index.js';
import type { PlacementStrategy } from './resources.js';

type Bundle = Readonly<Record<string, number>>;

/** What the API lends the handle (see the file's comment). */
export const placementGroupCalls: {
  ready?: (group: PlacementGroup) => ObjectRef<true>;
  wait?: (group: PlacementGroup, timeoutMs: number) => Promise<boolean>;
} = {};

function calls(): Required<typeof placementGroupCalls> {
  const { ready, wait } = placementGroupCalls;
  if (ready === undefined || wait === undefined) throw new MinirayError("a PlacementGroup's ready() and wait() need miniray's API: import 'miniray' first");
  return { ready, wait };
}

export class PlacementGroup {
  /** @internal Settles once the GCS has the group (rejects when its name is taken); a group passed to a task has it already. */
  readonly created: Promise<void>;

  /** @internal made by placementGroup() and getPlacementGroup(), and when one arrives in a task's arguments. */
  constructor(
    readonly id: string,
    readonly bundleSpecs: readonly Bundle[],
    readonly strategy: PlacementStrategy,
    created: Promise<void> = Promise.resolve(),
  ) {
    this.created = created;
    // Not left unhandled: wait() and ready() report it.
    created.catch(() => {});
  }

  get bundleCount(): number {
    return this.bundleSpecs.length;
  }

  /**
   * A ref that becomes ready once the group is placed (Ray's pg.ready()): usable with get() and
   * wait(). Its value is true.
   */
  ready(): ObjectRef<true> {
    return calls().ready(this);
  }

  /** Whether the group is placed within `timeoutMs` (Ray's pg.wait(timeout_seconds)). Default: 30000. */
  wait(timeoutMs = 30_000): Promise<boolean> {
    return calls().wait(this, timeoutMs);
  }

  toJSON(): { id: string; bundleSpecs: readonly Bundle[]; strategy: PlacementStrategy } {
    return { id: this.id, bundleSpecs: this.bundleSpecs, strategy: this.strategy };
  }
}

// A group passed to a task or actor arrives as a handle to the same group (as Ray's do).
addExtension({
  Class: PlacementGroup,
  type: EXTENSION_TYPES.placementGroup,
  write(group: PlacementGroup): [string, readonly Bundle[], PlacementStrategy] {
    return [group.id, group.bundleSpecs, group.strategy];
  },
  read([id, bundleSpecs, strategy]: [string, Bundle[], PlacementStrategy]): PlacementGroup {
    return new PlacementGroup(id, bundleSpecs, strategy);
  },
});
