/**
 * Frames on a byte stream (TCP, TLS): each message is one msgpackr body behind its length.
 *
 *    0               4                          4 + length
 *    +---------------+--------------------------+
 *    | length (u32,  | body: one msgpackr value |
 *    | big-endian)   |                          |
 *    +---------------+--------------------------+
 *
 * Kept apart from the sockets so that the parser is tested on its own, with the stream split
 * anywhere (nats.js's habit). Bytes from a socket are untrusted: a length over the limit or a body
 * that does not decode ends the stream with a ProtocolError, never an exception.
 */
import { Packr, RESERVE_START_SPACE } from 'msgpackr';
import { ProtocolError } from '../errors/index.js';

/** The default cap on one frame's body (a setting: maxFrameBytes). */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;

// Instances of our own: src/protocol/frame.ts's use records, which a stream of single messages
// between processes gains nothing from. Reader and writer apart so neither learns from the other.
const options = { useRecords: false, mapsAsObjects: true, useBigIntExtension: true } as const;
const writer = new Packr(options);
const reader = new Packr(options);

/**
 * A frame's header has this bit set when raw bytes follow its body: a u32 of their length, then
 * the bytes, which travel as they are (no msgpack encoding, no copy into the frame). Only a
 * response's value travels this way (a pulled object's chunk), as RawBytes at the other end.
 */
const HAS_TAIL = 0x8000_0000;

/** One message as a frame (header and body), ready for socket.write; `tailLength`: raw bytes follow (see HAS_TAIL). */
export function encodeFrame(message: unknown, tailLength?: number): Buffer {
  // msgpackr never writes over what pack() returned (the next pack goes after it, or into a new
  // buffer), so the frame is that view, with room for the header reserved in front of the body: no
  // copy (the copy and its fresh buffer were about an eighth of the sending node's CPU in a pull).
  const frame = writer.pack(message, RESERVE_START_SPACE | 4);
  frame.writeUInt32BE(((frame.length - 4) | (tailLength === undefined ? 0 : HAS_TAIL)) >>> 0, 0);
  return frame;
}

/** The header of a frame's raw tail: its length. */
export function tailHeader(length: number): Buffer {
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(length, 0);
  return header;
}

/**
 * Raw bytes that came after a frame's body, as the pieces the socket delivered them in (joining
 * them would be one more copy of every byte): copyTo writes them where they are going.
 */
export class RawBytes {
  readonly byteLength: number;

  constructor(readonly pieces: readonly Uint8Array[]) {
    this.byteLength = pieces.reduce((sum, piece) => sum + piece.byteLength, 0);
  }

  copyTo(target: Uint8Array, offset: number): void {
    for (const piece of this.pieces) {
      target.set(piece, offset);
      offset += piece.byteLength;
    }
  }
}

/** Turns chunks of a stream, split anywhere, back into messages. */
export class FrameDecoder {
  private chunks: Uint8Array[] = [];
  private buffered = 0;
  /** The length of the body being read, once its header has arrived; -1 before. */
  private bodyLength = -1;
  /** The body read has a raw tail (HAS_TAIL); its message waits here for it. */
  private hasTail = false;
  private awaitingTail: { message: unknown; length: number } | undefined;
  private broken: ProtocolError | undefined;

  /** Changeable: the server reads the HELLO with a small limit and raises it once authenticated. */
  constructor(public maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  /**
   * Hands each whole message in `chunk` (with what came before it) to `deliver`, in order, or
   * returns the ProtocolError once the stream is broken. One message at a time, so that a limit
   * changed by `deliver` (the handshake's) applies to the very next frame; `deliver` returning
   * false stops reading (the link closed).
   */
  push(chunk: Uint8Array, deliver: (message: unknown, tail?: RawBytes) => boolean | void): ProtocolError | undefined {
    if (this.broken) return this.broken;
    // msgpackr gives byte fields back as views of its input, as Buffers when the input is one:
    // a plain Uint8Array view makes them come back as the Uint8Arrays they were sent as.
    this.chunks.push(chunk.constructor === Uint8Array ? chunk : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    this.buffered += chunk.byteLength;
    for (;;) {
      if (this.awaitingTail !== undefined) {
        const waiting = this.awaitingTail;
        if (waiting.length < 0) {
          if (this.buffered < 4) break;
          const header = this.take(4);
          waiting.length = new DataView(header.buffer, header.byteOffset, 4).getUint32(0);
          if (waiting.length > this.maxFrameBytes) return this.break(`a frame's raw tail announces ${waiting.length} bytes, over the limit of ${this.maxFrameBytes} (maxFrameBytes)`);
        }
        if (this.buffered < waiting.length) break;
        this.awaitingTail = undefined;
        if (deliver(waiting.message, new RawBytes(this.takePieces(waiting.length))) === false) return undefined;
        continue;
      }
      if (this.bodyLength < 0) {
        if (this.buffered < 4) break;
        const header = this.take(4);
        const word = new DataView(header.buffer, header.byteOffset, 4).getUint32(0);
        this.hasTail = (word & HAS_TAIL) !== 0;
        const length = (word & ~HAS_TAIL) >>> 0;
        if (length > this.maxFrameBytes) {
          return this.break(`a frame announces ${length} bytes, over the limit of ${this.maxFrameBytes} (maxFrameBytes)`);
        }
        this.bodyLength = length;
      }
      if (this.buffered < this.bodyLength) break;
      const body = this.take(this.bodyLength);
      this.bodyLength = -1;
      let message: unknown;
      try {
        message = reader.unpack(body);
      } catch (error) {
        return this.break(`a frame of ${body.byteLength} bytes does not decode (${error instanceof Error ? error.message : String(error)})`);
      }
      if (this.hasTail) this.awaitingTail = { message, length: -1 };
      else if (deliver(message) === false) return undefined;
    }
    return undefined;
  }

  /** The next `n` buffered bytes as views of the chunks they arrived in (no copy). */
  private takePieces(n: number): Uint8Array[] {
    const pieces: Uint8Array[] = [];
    this.buffered -= n;
    while (n > 0) {
      const chunk = this.chunks[0] as Uint8Array;
      const used = Math.min(chunk.byteLength, n);
      pieces.push(chunk.subarray(0, used));
      if (used === chunk.byteLength) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
      n -= used;
    }
    return pieces;
  }

  /** Bytes received but not yet part of a whole frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  private break(problem: string): ProtocolError {
    this.broken = new ProtocolError(`bytes that are not the miniray protocol: ${problem}`);
    this.chunks = [];
    this.buffered = 0;
    return this.broken;
  }

  /** The next `n` buffered bytes: a view when they sit in one chunk (the usual case), else a copy. */
  private take(n: number): Uint8Array {
    this.buffered -= n;
    const first = this.chunks[0];
    if (first !== undefined && first.byteLength >= n) {
      if (first.byteLength === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    for (let chunk = this.chunks[0]; chunk !== undefined && filled < n; chunk = this.chunks[0]) {
      const used = Math.min(chunk.byteLength, n - filled);
      out.set(chunk.subarray(0, used), filled);
      filled += used;
      if (used === chunk.byteLength) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
    }
    return out;
  }
}
