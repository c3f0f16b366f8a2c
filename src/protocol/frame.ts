/**
 * One frame = one batch of messages, encoded with msgpackr into a single buffer. Byte fields
 * (values, arguments) are written inline and read back as views into the frame, so a batch of
 * thousands of small results costs one buffer and one transfer, not one ArrayBuffer per value
 * (which is what structured clone of many small Uint8Arrays costs).
 */
import { Packr } from 'msgpackr';

const framePackr = new Packr({ useRecords: false, mapsAsObjects: true, useBigIntExtension: true });

/** Encodes a batch into a buffer of its own, ready to be transferred. */
export function encodeFrame(messages: readonly unknown[]): Uint8Array {
  // msgpackr writes into a reused buffer: copy out exactly the frame, which can then be moved.
  return new Uint8Array(framePackr.pack(messages));
}

export function decodeFrame(frame: Uint8Array): unknown[] {
  const messages = framePackr.unpack(frame) as unknown;
  if (!Array.isArray(messages)) throw new TypeError('malformed frame: not a batch of messages');
  return messages;
}
