/**
 * The connections of a node to the other nodes of its cluster: one per pair of nodes, used both
 * ways (opened by whichever needed it first, or adopted when the other side opened it), each with
 * the function definitions already sent over it, so that a definition crosses each link once.
 */
import type { Peer } from '../net/index.js';
import type { AgentContext } from './context.js';

/** A node's connection, with the function definitions sent over it. */
export interface PeerLink {
  readonly peer: Promise<Peer>;
  readonly knownFunctions: Set<string>;
}

export class PeerLinks {
  private readonly links = new Map<string, PeerLink>();

  /** `lost`: see AgentContext's constructor. */
  constructor(
    private readonly context: AgentContext,
    private readonly lost: (nodeId: string, wasOpen: boolean) => void,
  ) {}

  /** The link to `nodeId` if one is open or opening (none is opened). */
  get(nodeId: string): PeerLink | undefined {
    return this.links.get(nodeId);
  }

  has(nodeId: string): boolean {
    return this.links.has(nodeId);
  }

  /** Forgets the link to `nodeId` (its node is dead), and closes it with `reason`. */
  drop(nodeId: string, reason: string): void {
    const link = this.links.get(nodeId);
    this.links.delete(nodeId);
    void link?.peer.then((peer) => peer.close(reason), () => {});
  }

  /** Closes every link (this node stops). */
  closeAll(reason: string): void {
    for (const link of this.links.values()) void link.peer.then((peer) => peer.close(reason), () => {});
    this.links.clear();
  }

  /**
   * A connection another node opened to this one (or this node's own to the head) serves as the
   * link to that node too: one connection per pair of nodes, used both ways.
   */
  adopt(peer: Peer): void {
    const nodeId = peer.hello.nodeId;
    // A dead node back from a partition is not a link (nothing is sent to it, no work is taken from
    // it: see executeTask). Its connection is not closed here: on the head it may be asking the
    // GCS to register again, and is to be answered that it is dead.
    if (nodeId === this.context.self || this.links.has(nodeId) || peer.hello.role === 'cli' || this.context.deadNodes.has(nodeId)) return;
    const link = { peer: Promise.resolve(peer), knownFunctions: new Set<string>() };
    this.links.set(nodeId, link);
    peer.onClose(() => {
      if (this.links.get(nodeId) === link) this.links.delete(nodeId);
      this.lost(nodeId, true);
    });
  }

  /** The link to `nodeId`, opened if need be (undefined: no such alive node in the views). */
  link(nodeId: string): PeerLink | undefined {
    let link = this.links.get(nodeId);
    if (link !== undefined) return link;
    const view = this.context.views.get(nodeId);
    if (view === undefined) return undefined;
    const peer = this.context.options.connect(view.info.address);
    // Before the sends' own handlers (attached after these): what they place again does not go here.
    peer.then(
      (connected) =>
        connected.onClose(() => {
          if (this.links.get(nodeId)?.peer === peer) this.links.delete(nodeId);
          this.lost(nodeId, true);
        }),
      () => {
        if (this.links.get(nodeId)?.peer === peer) this.links.delete(nodeId);
        this.lost(nodeId, false);
      },
    );
    link = { peer, knownFunctions: new Set() };
    this.links.set(nodeId, link);
    return link;
  }

  /**
   * Notifies a node, once its connection is up. A connection that fails, or a body that cannot be
   * sent, is logged: a notification has no caller to reject, and must not end this process.
   */
  tell(link: PeerLink | undefined, method: string, body: unknown): void {
    link?.peer
      .then((peer) => peer.notify(method, body))
      .catch((error: unknown) => console.error(`miniray: could not tell another node '${method}': ${(error as Error).message}`));
  }
}
