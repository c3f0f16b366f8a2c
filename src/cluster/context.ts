/**
 * What the parts of a node's ClusterAgent share: the node, its membership (its view of each other
 * node, the nodes the GCS declared dead, whether this node stopped or was itself declared dead),
 * the connections to other nodes and the function table. The agent keeps the membership up to
 * date (join, the GCS's events); the parts read it, and change only what is theirs in it (the
 * counters of a view: sentCpus, actorCpus). One object handed to every part, rather than the agent
 * itself, so that no part depends on the agent's class, and the agent's own surface stays the
 * ClusterLink the node calls.
 */
import { setting } from '../config/index.js';
import { NodeDiedError } from '../errors/index.js';
import type { GcsClient, NodeIdHex, NodeInfo } from '../gcs/index.js';
import type { Peer } from '../net/index.js';
import type { Node } from '../node/index.js';
import type { ResourceMap } from '../protocol/index.js';
import { FunctionTable } from './functions.js';
import { PeerLinks } from './links.js';

export interface AgentOptions {
  readonly node: Node;
  /** Connects to another node's listener (with the cluster's token and TLS settings). */
  readonly connect: (address: string) => Promise<Peer>;
  /** False in the embedded default: no node can join, so what cannot run here fails at once. */
  readonly canGrow: boolean;
  /** This node restarts detached actors whose node died (the head's: the GCS keeps their creation). */
  readonly restartsDetached?: boolean;
}

/** This node's view of one alive node (itself included), from the GCS's node table and resource reports. */
export interface View {
  info: NodeInfo;
  available: ResourceMap;
  /** CPUs of tasks this node sent there that have not come back (the view lags behind them). */
  sentCpus: number;
  /**
   * CPUs of actors this node placed there that its reports do not show yet. An actor never
   * "comes back" as a task does, so they count until a report shows its CPUs changed.
   */
  actorCpus: number;
}

export class AgentContext {
  readonly node: Node;
  readonly self: NodeIdHex;
  readonly canGrow: boolean;
  readonly views = new Map<string, View>();
  /** Nodes the GCS reported dead: a new connection of one is no link, and work it sends is refused. */
  readonly deadNodes = new Set<string>();
  readonly links: PeerLinks;
  readonly functions: FunctionTable;
  stopped = false;
  /** Set once the GCS said this node is dead: why. */
  deathReason: string | undefined;
  /** Set by join(). */
  gcsClient: GcsClient | undefined;
  /**
   * Values up to this size go inline to their owner or reader; larger ones stay where they were
   * made (the cluster-wide setting maxInlineObjectBytes, read once: the head's, as the agent is
   * built after this process adopted the head's settings).
   */
  readonly inlineLimit = setting('maxInlineObjectBytes');

  /**
   * `linkLost`: a connection to `nodeId` closed (`wasOpen`) or could not be made; the agent
   * takes the node out of the views until the GCS says what became of it, and drops what it kept
   * for it.
   */
  constructor(readonly options: AgentOptions, linkLost: (nodeId: string, wasOpen: boolean) => void) {
    this.node = options.node;
    this.self = options.node.nodeId;
    this.canGrow = options.canGrow;
    this.links = new PeerLinks(this, linkLost);
    this.functions = new FunctionTable(this);
  }

  get gcs(): GcsClient {
    if (this.gcsClient === undefined) throw new Error('the cluster agent was used before join()');
    return this.gcsClient;
  }

  /** The other nodes this node knows to be alive. */
  get otherNodes(): number {
    return this.views.size - (this.views.has(this.self) ? 1 : 0);
  }

  deadError(): NodeDiedError {
    return new NodeDiedError(`this node (${this.self.slice(0, 8)}) was declared dead by the GCS (${this.deathReason}), so it can no longer run work on the cluster; start a new driver or node`);
  }
}
