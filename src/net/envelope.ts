/**
 * The messages of a connection: a handshake (hello, then welcome or refused), then one envelope for
 * every call either side makes (request / response / cancel, notify), and bye when a side closes.
 * Each method's body is validated by the parser its Router registered; this file checks only the
 * envelope around it.
 */
import { errorRecordProblem, type ErrorRecord, type ProtocolError } from '../errors/index.js';
import { fail, fields, int, messageCheck, oneOf, optionalStr, str, validate, Violation, type Fields } from '../protocol/check.js';

/** Raised when the handshake or envelope changes incompatibly; sent in the hello. */
export const NET_PROTOCOL_VERSION = 1;

/** Who is on the other side, sent in the HELLO after the token. */
export interface PeerHello {
  readonly role: 'node' | 'driver' | 'cli' | 'gcs';
  readonly nodeId: string;
  readonly listenAddress?: string;
  /**
   * A head's GCS only: its values of the cluster-wide settings (src/config), which a node or
   * driver that joins uses instead of its own environment's.
   */
  readonly settings?: Readonly<Record<string, number>>;
}

export type Handshake =
  | { readonly type: 'hello'; readonly token: string; readonly protocolVersion: number; readonly hello: PeerHello }
  | { readonly type: 'welcome'; readonly hello: PeerHello }
  /** `code` tells the client which error to raise: a wrong token is an AuthenticationError. */
  | { readonly type: 'refused'; readonly code: 'token' | 'version'; readonly reason: string };

export type Envelope =
  | { readonly type: 'request'; readonly id: number; readonly method: string; readonly body: unknown }
  | { readonly type: 'response'; readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly type: 'response'; readonly id: number; readonly ok: false; readonly error: ErrorRecord }
  | { readonly type: 'notify'; readonly method: string; readonly body: unknown }
  | { readonly type: 'cancel'; readonly id: number }
  | { readonly type: 'bye'; readonly reason: string };

const ROLES: readonly PeerHello['role'][] = ['node', 'driver', 'cli', 'gcs'];

function peerHello(value: unknown, path: string): PeerHello {
  const o = fields(value, path);
  oneOf(o['role'], `${path}.role`, ROLES);
  str(o['nodeId'], `${path}.nodeId`);
  optionalStr(o['listenAddress'], `${path}.listenAddress`);
  if (o['settings'] !== undefined) {
    // Their ranges are the joining side's to check (mergeClusterSettings): its table decides.
    for (const [name, value] of Object.entries(fields(o['settings'], `${path}.settings`))) int(value, `${path}.settings.${name}`, -Infinity);
  }
  return o as unknown as PeerHello;
}

const handshakeCheck = messageCheck<Handshake>({
  hello: (o: Fields) => {
    str(o['token'], 'token');
    int(o['protocolVersion'], 'protocolVersion');
    peerHello(o['hello'], 'hello');
    return o as unknown as Extract<Handshake, { type: 'hello' }>;
  },
  welcome: (o: Fields) => {
    peerHello(o['hello'], 'hello');
    return o as unknown as Extract<Handshake, { type: 'welcome' }>;
  },
  refused: (o: Fields) => {
    oneOf(o['code'], 'code', ['token', 'version']);
    str(o['reason'], 'reason');
    return o as unknown as Extract<Handshake, { type: 'refused' }>;
  },
});

const envelopeCheck = messageCheck<Envelope>({
  request: (o: Fields) => {
    int(o['id'], 'id');
    str(o['method'], 'method');
    return o as unknown as Extract<Envelope, { type: 'request' }>;
  },
  response: (o: Fields) => {
    int(o['id'], 'id');
    if (o['ok'] === false) {
      const problem = errorRecordProblem(o['error']);
      if (problem !== undefined) throw new Violation('error', `must be an error record: ${problem}`);
    } else if (o['ok'] !== true) {
      fail('ok', 'a boolean', o['ok']);
    }
    return o as unknown as Extract<Envelope, { type: 'response' }>;
  },
  notify: (o: Fields) => {
    str(o['method'], 'method');
    return o as unknown as Extract<Envelope, { type: 'notify' }>;
  },
  cancel: (o: Fields) => {
    int(o['id'], 'id');
    return o as unknown as Extract<Envelope, { type: 'cancel' }>;
  },
  bye: (o: Fields) => {
    str(o['reason'], 'reason');
    return o as unknown as Extract<Envelope, { type: 'bye' }>;
  },
});

export const parseHandshake = (value: unknown): Handshake | ProtocolError => validate('a handshake message', value, handshakeCheck);
export const parseEnvelope = (value: unknown): Envelope | ProtocolError => validate('a message from a peer', value, envelopeCheck);
