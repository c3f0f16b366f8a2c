/**
 * PLACEHOLDER written on the `cli` branch so the CLI typechecks: only the contract's types and a
 * startNode that throws. The lead's real src/cluster/start.ts replaces this file at merge.
 */

export interface StartNodeOptions {
  /** true: a GCS and a node; false: a node that joins `address`. */
  readonly head: boolean;
  /** HOST:PORT of the head's GCS (required when !head). */
  readonly address?: string;
  /** head: the GCS port (default 6380); node: its listener (default 0 = any). */
  readonly port?: number;
  /** Where to bind and what to advertise (default 127.0.0.1). */
  readonly nodeIpAddress?: string;
  readonly numCpus?: number;
  readonly numGpus?: number;
  readonly resources?: Record<string, number>;
  readonly token: string;
  readonly tls?: { cert: string; key: string };
}

export interface RunningNode {
  readonly nodeId: string;
  /** head: GCS host:port; node: its own listener. */
  readonly address: string;
  readonly gcsAddress: string;
  stop(): Promise<void>;
  /** Resolves if the node ends on its own (e.g. head gone). */
  readonly stopped: Promise<void>;
}

export function startNode(options: StartNodeOptions): Promise<RunningNode> {
  void options;
  throw new Error('startNode: not merged yet');
}
