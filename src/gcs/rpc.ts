/**
 * The few shapes of src/net that the GCS needs, declared here so that src/gcs does not depend on
 * the transport: each is a structural subset of the one in /work/wt/CLUSTER-CONTRACT.md, so net's
 * `Router` and `Peer` (and `localPair`'s peers) are passed in as they are.
 */
import type { ProtocolError } from '../errors/index.js';

/** Who is on the other side (net's `PeerHello`). */
export interface GcsPeerHello {
  readonly role: 'node' | 'driver' | 'cli' | 'gcs';
  readonly nodeId: string;
  readonly listenAddress?: string;
}

export interface GcsRequestOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** One connection, seen from either end (the part of net's `Peer` the GCS uses). */
export interface GcsPeer {
  readonly hello: GcsPeerHello;
  request(method: string, body: unknown, options?: GcsRequestOptions): Promise<unknown>;
  notify(method: string, body: unknown): void;
  onClose(listener: (reason: string) => void): void;
  close(reason?: string): void;
  readonly isClosed: boolean;
}

/** Where methods are registered (the part of net's `Router` the GCS uses). */
export interface GcsRoutes {
  handle<T>(
    method: string,
    parse: (body: unknown) => T | ProtocolError,
    handler: (body: T, peer: GcsPeer, signal: AbortSignal) => unknown,
  ): unknown;
  on<T>(method: string, parse: (body: unknown) => T | ProtocolError, handler: (body: T, peer: GcsPeer) => void): unknown;
}
