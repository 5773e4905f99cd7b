/**
 * The "Node floor" of `npm run bench`: the least a WebSocket server on `node:net` can do, as a
 * measuring stick for what Node's sockets cost by themselves. NOT a server to ship: it finds the
 * key with `indexOf`, answers 101 without checking anything else, echoes unfragmented frames
 * without validating them (no UTF-8 check, no limits, no fragments, no extensions), and for the
 * fan-out frames the /pub messages of one read once and writes the same bytes to every /sub
 * connection.
 *
 * Per connection it keeps the socket and two properties on it (the bytes of an incomplete frame,
 * and whether the handshake is done); its listeners are module-level functions, so the idle
 * memory it shows is Node's `net.Socket` plus as little as a server can add.
 */
import { createHash } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { announce, serveControl } from './common.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY = 'sec-websocket-key:';

type FloorSocket = Socket & { rest: Buffer | null; open: boolean; pub: boolean };
const subscribers = new Set<Socket>();

function accept(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

function onHead(s: FloorSocket, data: Buffer): void {
  const all = s.rest === null ? data : Buffer.concat([s.rest, data]);
  const end = all.indexOf('\r\n\r\n');
  if (end < 0) {
    s.rest = all;
    return;
  }
  // Lower-casing the head is the one concession: clients spell the header as they like.
  const head = all.toString('latin1', 0, end).toLowerCase();
  const at = head.indexOf(KEY);
  if (at < 0) {
    s.destroy();
    return;
  }
  const eol = head.indexOf('\r\n', at);
  const key = all.toString('latin1', at + KEY.length, eol < 0 ? end : eol).trim();
  s.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`,
  );
  s.open = true;
  s.rest = null;
  if (head.startsWith('get /sub ')) subscribers.add(s);
  else if (head.startsWith('get /pub ')) s.pub = true;
  if (all.length > end + 4) onFrames(s, all.subarray(end + 4));
}

/** Frames the unmasked payload `p[start..end]` with opcode `op` into `out` at `at`. */
function frame(out: Buffer, at: number, op: number, p: Buffer, start: number, end: number): number {
  const n = end - start;
  out[at++] = 0x80 | op;
  if (n < 126) out[at++] = n;
  else if (n < 65536) {
    out[at++] = 126;
    out.writeUInt16BE(n, at);
    at += 2;
  } else {
    out[at++] = 127;
    out.writeUInt32BE(0, at);
    out.writeUInt32BE(n, at + 4);
    at += 8;
  }
  p.copy(out, at, start, end);
  return at + n;
}

function onFrames(s: FloorSocket, data: Buffer): void {
  const buf = s.rest === null ? data : Buffer.concat([s.rest, data]);
  // Replies are never longer than the requests (unmasked frames are 4 bytes shorter).
  let out: Buffer | null = null;
  let o = 0;
  let p = 0;
  let close = false;
  while (buf.length - p >= 2) {
    const op = buf[p] & 0x0f;
    let n = buf[p + 1] & 0x7f;
    let h = p + 2;
    if (n === 126) {
      if (buf.length - p < 4) break;
      n = buf.readUInt16BE(h);
      h += 2;
    } else if (n === 127) {
      if (buf.length - p < 10) break;
      n = buf.readUInt32BE(h + 4);
      h += 8;
    }
    if (buf.length < h + 4 + n) break;
    const k0 = buf[h];
    const k1 = buf[h + 1];
    const k2 = buf[h + 2];
    const k3 = buf[h + 3];
    h += 4;
    for (let i = 0; i + 3 < n; i += 4) {
      buf[h + i] ^= k0;
      buf[h + i + 1] ^= k1;
      buf[h + i + 2] ^= k2;
      buf[h + i + 3] ^= k3;
    }
    for (let i = n & ~3; i < n; i++)
      buf[h + i] ^= i % 4 === 0 ? k0 : i % 4 === 1 ? k1 : i % 4 === 2 ? k2 : k3;
    p = h + n;
    if (op === 8) {
      close = true;
      break;
    }
    out ??= Buffer.allocUnsafe(buf.length);
    o = frame(out, o, op === 9 ? 10 : op, buf, h, h + n);
  }
  s.rest = p < buf.length ? Buffer.from(buf.subarray(p)) : null;
  if (out !== null) {
    // The frames of one read are written together: to the sender, or to every subscriber.
    const bytes = out.subarray(0, o);
    if (s.pub) for (const sub of subscribers) sub.write(bytes);
    else s.write(bytes);
  }
  if (close) {
    s.end(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
    s.rest = null;
  }
}

function socketOnData(this: FloorSocket, data: Buffer): void {
  if (this.open) onFrames(this, data);
  else onHead(this, data);
}

function socketOnClose(this: FloorSocket): void {
  subscribers.delete(this);
}

function socketOnError(this: FloorSocket): void {
  this.destroy();
}

const server = createServer({ noDelay: true }, (socket) => {
  const s = socket as FloorSocket;
  s.rest = null;
  s.open = false;
  s.pub = false;
  s.on('data', socketOnData);
  s.on('close', socketOnClose);
  s.on('error', socketOnError);
});

server.listen(0, '127.0.0.1', () => {
  announce((server.address() as { port: number }).port);
  serveControl();
});
