// The raw TCP peer of `npm run bench -- --cluster`: a process that answers length-prefixed msgpackr
// frames (4-byte big-endian length, then the body) over loopback TCP, with no miniray code.
//
//   { echo: ... }     -> the same message back, as a frame
//   { stream: n }     -> a 4-byte length n, then n bytes of one Float64Array, in one write
//
// Plain JavaScript (node bench/peers/tcp-echo.mjs), like the nodes it is compared with, which run
// dist/. Prints "listening on HOST:PORT" once up; runs until killed.
import { createServer } from 'node:net';
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false });
let payload = new Uint8Array(0);

function frame(message) {
  const body = packr.pack(message);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

const server = createServer((socket) => {
  socket.setNoDelay(true);
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (buffered.length >= 4 && buffered.length >= 4 + buffered.readUInt32BE(0)) {
      const length = buffered.readUInt32BE(0);
      const message = packr.unpack(buffered.subarray(4, 4 + length));
      buffered = buffered.subarray(4 + length);
      if (message.stream === undefined) {
        socket.write(frame(message));
        continue;
      }
      if (payload.byteLength < message.stream) payload = new Uint8Array(new Float64Array(message.stream / 8).fill(1.5).buffer);
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32BE(message.stream, 0);
      socket.write(header);
      socket.write(payload.subarray(0, message.stream));
    }
  });
  socket.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${server.address().port}`));
