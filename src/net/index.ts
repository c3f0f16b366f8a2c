/**
 * The network: framed, authenticated, multiplexed RPC between processes over TCP (or TLS), and an
 * in-process pair with the same interface. See docs/architecture.md ("net") and tcp.ts's diagram.
 */
export { Router, localPair, type Peer, type RequestOptions, type PairSide } from './peer.js';
export { listen, connect, type ListenOptions, type ConnectOptions, type Listener, type LinkLimits } from './tcp.js';
export { NET_PROTOCOL_VERSION, type PeerHello } from './envelope.js';
export { FrameDecoder, RawBytes, encodeFrame, DEFAULT_MAX_FRAME_BYTES } from './frame.js';
export { formatHostPort, parseHostPort } from './address.js';
