/**
 * One frame = one batch of messages, encoded with msgpackr into a single buffer. Byte fields
 * (values, arguments) are written inline and read back as views into the frame, so a batch of
 * thousands of small results costs one buffer and one transfer, not one ArrayBuffer per value
 * (which is what structured clone of many small Uint8Arrays costs).
 */
import { Packr } from 'msgpackr';

// useRecords: each message shape (an ExecuteTask, a TaskResult, ...) is described once per frame
// and its instances are written as values only, which halves the bytes of a batch and makes it
// several times faster to read. Every frame carries its own record definitions, so frames need no
// shared state between the two sides.
// Separate instances for writing and reading, so what one side learns never mixes with the other's.
const options = { useRecords: true, mapsAsObjects: true, useBigIntExtension: true } as const;
const frameWriter = new Packr(options);
const frameReader = new Packr(options);

/** Encodes a batch into a buffer of its own, ready to be transferred. */
export function encodeFrame(messages: readonly unknown[]): Uint8Array {
  // msgpackr writes into a reused buffer: copy out exactly the frame, which can then be moved.
  return new Uint8Array(frameWriter.pack(messages));
}

export function decodeFrame(frame: Uint8Array): unknown[] {
  const messages = frameReader.unpack(frame) as unknown;
  if (!Array.isArray(messages)) throw new TypeError('malformed frame: not a batch of messages');
  return messages;
}
