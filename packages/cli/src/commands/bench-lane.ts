/**
 * A lean client connection for `switchyard bench`, built on the library's sans-I/O core, so
 * that the generator costs far less per message than the server it measures.
 *
 * Theory of operation. The handshake is the core's (`formatClientRequest`, `HttpHeadParser`,
 * `validateServerResponse`: RFC 6455 §4.1 exactly as `connect()` does it). After the 101 the
 * lane does only what a load generator needs: every message it sends is a frame of its own,
 * masked with a fresh key from the CSPRNG pool (RFC 6455 §5.3, no key is reused), and the frames
 * sent while handling one read are written together; incoming frames are counted by reading
 * their headers only (the echoed payload is never decoded or copied). Pings are answered, a
 * close is answered and ends the lane. Anything else (compression, fragments from the server)
 * is what the full client is for: the bench uses `connect()` when compression is asked for.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import {
  encodeCloseBody,
  formatClientRequest,
  generateKey,
  HttpHeadParser,
  MaskKeySource,
  Opcode,
  serializeFrame,
  validateServerResponse,
} from 'switchyard/core';

/** What the bench needs of a connection: the full WebSocket and the lean lane both fit. */
export interface BenchConnection {
  readonly readyState: number;
  send(data: string | Buffer): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  on(event: 'message', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error & { code?: string }) => void): unknown;
  on(event: 'close', listener: (code: number) => void): unknown;
  once(event: 'close', listener: () => void): unknown;
}

const OPEN = 1;
const CLOSING = 2;
const CLOSED = 3;

/** A connection after its handshake; see the file comment. */
export class LeanLane extends EventEmitter implements BenchConnection {
  readyState = OPEN;
  private readonly socket: net.Socket;
  private readonly keys = new MaskKeySource();
  private pending: Buffer[] = [];
  private reading = false;
  private rest: Buffer | null = null;
  /** Small frames of the current read, framed in place. */
  private readonly out = Buffer.allocUnsafe(16 * 1024);
  private outLength = 0;
  private lastText = '';
  private lastTextBytes = Buffer.alloc(0);
  private closeCode = 1006;

  constructor(socket: net.Socket, head: Uint8Array) {
    super();
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error: Error) => this.emit('error', error));
    socket.on('close', () => {
      this.readyState = CLOSED;
      this.emit('close', this.closeCode);
    });
    if (head.length > 0) {
      // Frames that came with the 101 are handled once the bench has attached its listeners,
      // with the socket paused meanwhile so that they stay first.
      socket.pause();
      setImmediate(() => {
        this.onData(Buffer.from(head));
        socket.resume();
      });
    }
  }

  /** Sends one message as one masked frame; written with the others of this read. */
  send(data: string | Buffer): void {
    if (this.readyState !== OPEN) return;
    if (typeof data === 'string') {
      // The bench sends the same text again and again: encode it once.
      if (data !== this.lastText) {
        this.lastText = data;
        this.lastTextBytes = Buffer.from(data);
      }
      this.queue(Opcode.TEXT, this.lastTextBytes);
    } else this.queue(Opcode.BINARY, data);
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState !== OPEN) return;
    this.queue(Opcode.CLOSE, encodeCloseBody(code, reason));
    this.readyState = CLOSING;
  }

  terminate(): void {
    this.socket.destroy();
  }

  private queue(opcode: number, payload: Uint8Array): void {
    const length = payload.length;
    if (length < 126) {
      // The common case, framed in place (RFC 6455 §5.2: FIN, opcode, MASK + 7-bit length, the
      // key, the masked payload) into this read's output buffer: no allocation per message.
      if (this.outLength + length + 6 > this.out.length) this.flush();
      const out = this.out;
      let at = this.outLength;
      out[at] = 0x80 | opcode;
      out[at + 1] = 0x80 | length;
      this.keys.fill(out, at + 2);
      const k0 = out[at + 2];
      const k1 = out[at + 3];
      const k2 = out[at + 4];
      const k3 = out[at + 5];
      at += 6;
      for (let i = 0; i < length; i++) {
        const k = (i & 3) === 0 ? k0 : (i & 3) === 1 ? k1 : (i & 3) === 2 ? k2 : k3;
        out[at + i] = payload[i] ^ k;
      }
      this.outLength = at + length;
      if (!this.reading) this.flush();
      return;
    }
    this.flushOut();
    const chunks = serializeFrame(opcode, payload, { mask: this.keys.next() });
    for (const chunk of chunks)
      this.pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    if (!this.reading) this.flush();
  }

  /** Moves the small frames framed in place into the list of what to write, in order. */
  private flushOut(): void {
    if (this.outLength === 0) return;
    this.pending.push(Buffer.from(this.out.subarray(0, this.outLength)));
    this.outLength = 0;
  }

  private flush(): void {
    this.flushOut();
    if (this.pending.length === 0) return;
    const out = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    this.pending = [];
    if (!this.socket.destroyed) this.socket.write(out);
  }

  private onData(chunk: Buffer): void {
    let data = chunk;
    if (this.rest !== null) {
      data = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    this.reading = true;
    let i = 0;
    const n = data.length;
    while (i + 2 <= n) {
      const b0 = data[i];
      let length = data[i + 1] & 0x7f;
      let at = i + 2;
      if (length === 126) {
        if (at + 2 > n) break;
        length = data.readUInt16BE(at);
        at += 2;
      } else if (length === 127) {
        if (at + 8 > n) break;
        length = Number(data.readBigUInt64BE(at));
        at += 8;
      }
      if (at + length > n) break;
      const opcode = b0 & 0x0f;
      const fin = (b0 & 0x80) !== 0;
      if (opcode === Opcode.PING) {
        if (this.readyState === OPEN) this.queue(Opcode.PONG, data.subarray(at, at + length));
      } else if (opcode === Opcode.CLOSE) {
        this.closeCode = length >= 2 ? data.readUInt16BE(at) : 1005;
        if (this.readyState === OPEN)
          this.queue(Opcode.CLOSE, data.subarray(at, at + Math.min(2, length)));
        this.readyState = CLOSING;
      } else if (opcode !== Opcode.PONG && fin) {
        // A whole message (an echo comes back as the one frame it was sent as).
        this.emit('message');
      }
      i = at + length;
    }
    if (i < n) this.rest = Buffer.from(data.subarray(i));
    this.reading = false;
    this.flush();
  }
}

/** Opens a lean lane: TCP or TLS, the core's handshake, bounded by `timeoutMs`. */
export function openLeanLane(
  url: URL,
  options: { timeoutMs: number; signal?: AbortSignal; ca?: string | Buffer },
): Promise<LeanLane> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'wss:' || url.protocol === 'https:';
    const port = Number(url.port || (secure ? 443 : 80));
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const socket = secure
      ? tls.connect({
          host,
          port,
          servername: net.isIP(host) ? undefined : host,
          ALPNProtocols: ['http/1.1'],
          ca: options.ca,
        })
      : net.connect({ host, port });
    const key = generateKey();
    const parser = new HttpHeadParser({ kind: 'response' });
    let settled = false;
    const fail = (error: Error & { code?: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () =>
        fail(
          Object.assign(new Error('handshake timeout'), {
            code: 'SWITCHYARD_ERR_HANDSHAKE_TIMEOUT',
          }),
        ),
      options.timeoutMs,
    );
    options.signal?.addEventListener('abort', () => fail(new Error('aborted')), { once: true });
    socket.once('error', fail);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      socket.write(
        formatClientRequest({
          host: url.port ? `${url.hostname}:${url.port}` : url.hostname,
          path: `${url.pathname}${url.search}`,
          key,
        }),
      );
    });
    const onData = (chunk: Buffer) => {
      const result = parser.push(chunk);
      if (result === null) return;
      socket.off('data', onData);
      if (!result.ok) return fail(result.error);
      const check = validateServerResponse(result.head, {
        key,
        protocols: [],
        extensionsOffered: [],
      });
      if (!check.ok) return fail(check.error);
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off('error', fail);
      resolve(new LeanLane(socket, result.rest));
    };
    socket.on('data', onData);
  });
}
