/**
 * The GCS's function table as a node uses it (Ray keeps function definitions in the GCS KV too):
 * a definition is sent along with the first task of its function to each node, and put in the
 * table, so that a node that was never sent it (a task forwarded on, an actor restarted elsewhere)
 * reads it there.
 */
import { Packr } from 'msgpackr';
import type { GcsClient } from '../gcs/index.js';
import type { Node } from '../node/index.js';
import { aFunctionDescriptor } from '../protocol/check.js';
import type { FunctionDescriptor } from '../serialization/index.js';

/** The GCS KV namespace of function and actor class definitions (Ray's function table). */
const FUNCTIONS = 'fun';
/** The encoding of the records a node keeps in the GCS KV: function definitions, detached actors' creations. */
export const functionCodec = new Packr({ useRecords: false });

function decodeFunction(bytes: Uint8Array): FunctionDescriptor | undefined {
  try {
    return aFunctionDescriptor(functionCodec.unpack(bytes));
  } catch {
    return undefined; // a malformed entry: as if there were none
  }
}

export class FunctionTable {
  constructor(private readonly context: { readonly node: Node; readonly gcs: GcsClient }) {}

  /**
   * `functions` with the definition of `id` among them: sent along (the first time to this node),
   * known here already, or else read from the GCS's function table (a node this one has not
   * heard from is not sent it). Without it the task fails at its worker, naming the function.
   */
  async withDefinition(functions: readonly FunctionDescriptor[], id: string): Promise<readonly FunctionDescriptor[]> {
    if (functions.some((fn) => fn.id === id) || this.context.node.knowsFunction(id)) return functions;
    const stored = await this.context.gcs.kvGet(FUNCTIONS, id).catch(() => null);
    const fn = stored === null ? undefined : decodeFunction(stored);
    return fn === undefined ? functions : [...functions, fn];
  }

  /** Puts a function's definition in the GCS's function table, once per function and node. */
  publish(fn: FunctionDescriptor): void {
    if (this.published.has(fn.id)) return;
    this.published.add(fn.id);
    void this.context.gcs.kvPut(FUNCTIONS, fn.id, functionCodec.pack(fn), false).catch(() => this.published.delete(fn.id));
  }

  private readonly published = new Set<string>();
}
