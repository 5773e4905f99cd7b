/**
 * Servers and raw sockets for end-to-end tests. Everything listens on 127.0.0.1 and is closed
 * by the test that started it (register `t.after(...)`).
 */
import net from 'node:net';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import { connect } from '../../src/node/client.js';
import { WebSocketServer, type ServerOptions } from '../../src/node/server.js';

export interface TestServer {
  server: WebSocketServer;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** A WebSocketServer on 127.0.0.1, silent unless `logger` is given. */
export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const server = new WebSocketServer({ logger: false, ...options });
  const address = await server.listen(0, '127.0.0.1');
  return {
    server,
    port: address.port,
    url: `ws://127.0.0.1:${address.port}`,
    close: () => server.close({ timeout: 1000 }),
  };
}

/** Makes every connection of `server` echo its messages, text as text, binary as binary. */
export function echo(server: WebSocketServer): void {
  server.on('connection', (ws) =>
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })),
  );
}

/** Proves the server still serves: a fresh client gets its message echoed. */
export async function assertServes(url: string): Promise<void> {
  const ws = await connect(url);
  try {
    const reply = once(ws, 'message');
    ws.send('still serving');
    assert.equal((await reply)[0], 'still serving');
  } finally {
    ws.terminate();
  }
}

/** The RFC 6455 §1.3 sample key and its accept value. */
export const SAMPLE_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
export const SAMPLE_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/** A valid upgrade request head, with headers replaced or removed (value null). */
export function upgradeRequest(
  port: number,
  overrides: Record<string, string | null> = {},
  requestLine = 'GET /chat HTTP/1.1',
): string {
  const headers: Record<string, string | null> = {
    Host: `127.0.0.1:${port}`,
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': SAMPLE_KEY,
    'Sec-WebSocket-Version': '13',
    ...overrides,
  };
  let head = `${requestLine}\r\n`;
  for (const [name, value] of Object.entries(headers))
    if (value !== null) head += `${name}: ${value}\r\n`;
  return `${head}\r\n`;
}

/** A raw TCP client that collects everything it reads. */
export class RawClient {
  readonly socket: net.Socket;
  private buffer = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  ended = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await once(socket, 'connect');
    return new RawClient(socket);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Everything received so far. */
  get received(): Buffer {
    return this.buffer;
  }

  /** Waits until `predicate(received)` holds or the socket closed; bounded by `ms`. */
  async waitFor(predicate: (data: Buffer) => boolean, ms = 3000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (!predicate(this.buffer)) {
      if (this.ended) break;
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(`timed out; received ${JSON.stringify(this.buffer.toString('latin1'))}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.buffer;
  }

  /** Waits for a whole HTTP response head and returns it with the status. */
  async readHead(
    ms = 3000,
  ): Promise<{ status: number; head: string; headers: Record<string, string>; body: Buffer }> {
    await this.waitFor((b) => b.includes('\r\n\r\n'), ms);
    const end = this.buffer.indexOf('\r\n\r\n');
    const head = this.buffer.subarray(0, end).toString('latin1');
    const lines = head.split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    const status = Number(lines[0].split(' ')[1]);
    const length = Number(headers['content-length'] ?? 0);
    if (length > 0) await this.waitFor((b) => b.length >= end + 4 + length, ms);
    return { status, head, headers, body: this.buffer.subarray(end + 4, end + 4 + length) };
  }

  /** Waits for the socket to close. */
  async closed(ms = 3000): Promise<void> {
    await this.waitFor(() => false, ms).catch(() => {
      if (!this.ended) throw new Error('the socket did not close in time');
    });
    if (!this.ended) throw new Error('the socket did not close in time');
  }

  write(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A masked client frame (RFC 6455 §5.3) with a fixed key, for raw tests. */
export function clientFrame(
  opcode: number,
  payload: Uint8Array | string,
  fin = true,
  rsv = 0,
): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  const mask = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const len = data.length;
  const header: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  if (len < 126) header.push(0x80 | len);
  else if (len < 65536) header.push(0x80 | 126, len >> 8, len & 0xff);
  else {
    header.push(0x80 | 127, 0, 0, 0, 0);
    header.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
  }
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = data[i] ^ mask[i & 3];
  return Buffer.concat([Buffer.from(header), mask, masked]);
}

/** Parses unmasked server frames from a buffer (after the 101 head). */
export function serverFrames(
  data: Buffer,
): Array<{ fin: boolean; rsv1: boolean; opcode: number; payload: Buffer }> {
  const frames: Array<{ fin: boolean; rsv1: boolean; opcode: number; payload: Buffer }> = [];
  let i = 0;
  while (i + 2 <= data.length) {
    const fin = (data[i] & 0x80) !== 0;
    const opcode = data[i] & 0x0f;
    let len = data[i + 1] & 0x7f;
    let p = i + 2;
    if (len === 126) {
      len = data.readUInt16BE(p);
      p += 2;
    } else if (len === 127) {
      len = Number(data.readBigUInt64BE(p));
      p += 8;
    }
    if (p + len > data.length) break;
    const rsv1 = (data[i] & 0x40) !== 0;
    frames.push({ fin, rsv1, opcode, payload: data.subarray(p, p + len) });
    i = p + len;
  }
  return frames;
}

/** The bytes after the first HTTP head. */
export function afterHead(data: Buffer): Buffer {
  const end = data.indexOf('\r\n\r\n');
  return end < 0 ? Buffer.alloc(0) : data.subarray(end + 4);
}
