/**
 * After the 101: does the WebSocket work? A ping and its pong (with the round-trip time), then a
 * close handshake, and the optional idle test. The frames are made and read by a client-side
 * core `Connection` from `switchyard/core`.
 */
import type { Duplex } from 'node:stream';
import { inflateRawSync } from 'node:zlib';
import { Connection, NEED_DATA, PAUSED, RemoteProtocolError } from 'switchyard/core';

/** What happened to the ping. */
export type PingOutcome =
  | { kind: 'pong'; rttMs: number }
  | { kind: 'closed-frame'; code: number; reason: string; afterMs: number }
  | { kind: 'dropped'; afterMs: number }
  | { kind: 'frame-error'; message: string; beforePing: boolean }
  | { kind: 'timeout'; waitedMs: number };

/** What happened to the close handshake. */
export type CloseOutcome =
  | { kind: 'complete'; code: number; ms: number; tcpClosedByServer: boolean }
  | { kind: 'frame-error'; message: string }
  | { kind: 'no-reply'; waitedMs: number }
  | { kind: 'dropped'; afterMs: number };

/** What the idle test saw. */
export type IdleOutcome =
  | { kind: 'cut'; afterMs: number; how: 'tcp' | 'close-frame'; code?: number; reason?: string }
  | { kind: 'survived'; ms: number; serverPings: number }
  | { kind: 'frame-error'; afterMs: number; message: string };

/**
 * A WebSocket after a 101, driven by a core Connection over a socket.
 *
 * Nothing here throws for what the server does: a frame that breaks RFC 6455 becomes
 * `protocolError` (the core fails the connection and queues its close frame), and every wait
 * ends on it, so that doctor reports the violation instead of crashing on a send to a connection
 * the core already closed.
 */
export class FrameSession {
  private readonly conn: Connection;
  private ended = false;
  private listeners = new Set<() => void>();
  /** Events seen, for the waits below. */
  pongs = 0;
  serverPings = 0;
  closeFrame: { code: number; reason: string } | null = null;
  protocolError: Error | null = null;

  constructor(
    private readonly socket: Duplex,
    rest: Buffer,
    compression: boolean,
  ) {
    this.conn = new Connection({ role: 'client', compression });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => {
      this.ended = true;
      this.conn.receiveEof();
      this.notify();
    });
    socket.on('error', () => {});
    socket.resume();
    if (rest.length > 0) this.onData(rest);
  }

  /** Whether the TCP connection has closed. */
  get closed(): boolean {
    return this.ended;
  }

  private onData(chunk: Uint8Array): void {
    try {
      this.receive(chunk);
    } catch (error) {
      // The core never throws on peer bytes; should that ever change, it is still a finding.
      this.protocolError ??= new Error(`the frames could not be read: ${(error as Error).message}`);
    }
    this.notify();
  }

  private receive(chunk: Uint8Array): void {
    this.conn.receiveData(chunk);
    for (;;) {
      const event = this.conn.nextEvent();
      if (event === NEED_DATA) break;
      if (event === PAUSED) break;
      if (event.type === 'pong') this.pongs++;
      else if (event.type === 'ping') this.serverPings++;
      else if (event.type === 'close') this.closeFrame = { code: event.code, reason: event.reason };
      else if (event.type === 'error') this.protocolError = event.error;
      else if (event.type === 'compressed') {
        // Only control frames matter here, but a compressed message must be inflated for the
        // connection to go on (RFC 7692 §7.2.2: append 00 00 ff ff before inflating).
        let result: { binary: boolean; data: Uint8Array } | RemoteProtocolError;
        try {
          const data = inflateRawSync(
            Buffer.concat([...event.data, Buffer.from([0, 0, 0xff, 0xff])]),
          );
          result = { binary: event.binary, data };
        } catch {
          result = new RemoteProtocolError('SWITCHYARD_ERR_INFLATE', 'could not inflate', {
            closeCode: 1007,
          });
        }
        const next = this.conn.receiveInflated(result);
        if (next.type === 'error') this.protocolError = next.error;
      }
    }
    this.flush();
  }

  private flush(): void {
    if (this.ended || this.socket.destroyed) return;
    for (const chunk of this.conn.dataToSend()) this.socket.write(chunk);
  }

  /** Runs a send unless the connection is already failed or closing; says whether it ran. */
  private trySend(send: () => void): boolean {
    if (this.ended || this.protocolError !== null || this.closeFrame !== null) return false;
    try {
      send();
    } catch {
      // The core refuses sends once it is closing (SWITCHYARD_ERR_INVALID_STATE): nothing to send.
      return false;
    }
    this.flush();
    return true;
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }

  /** Waits until `done()` is true or `ms` pass; resolves with whether it became true. */
  private waitFor(done: () => boolean, ms: number, signal?: AbortSignal): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (value: boolean) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      };
      const check = () => {
        if (done()) finish(true);
      };
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(done()), ms);
      this.listeners.add(check);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Sends a ping and waits for its pong. */
  async ping(timeoutMs: number): Promise<PingOutcome> {
    const start = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - start) / 1e6;
    const before = this.pongs;
    const beforePing = this.protocolError !== null;
    this.trySend(() => this.conn.sendPing(new TextEncoder().encode('switchyard-doctor')));
    await this.waitFor(
      () =>
        this.pongs > before ||
        this.ended ||
        this.closeFrame !== null ||
        this.protocolError !== null,
      timeoutMs,
    );
    if (this.pongs > before) return { kind: 'pong', rttMs: ms() };
    if (this.protocolError !== null)
      return { kind: 'frame-error', message: this.protocolError.message, beforePing };
    if (this.closeFrame !== null)
      return { kind: 'closed-frame', ...this.closeFrame, afterMs: ms() };
    if (this.ended) return { kind: 'dropped', afterMs: ms() };
    return { kind: 'timeout', waitedMs: timeoutMs };
  }

  /** Sends close 1000 and waits for the server's close frame, then for it to close TCP. */
  async close(timeoutMs: number): Promise<CloseOutcome> {
    const start = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - start) / 1e6;
    if (this.protocolError !== null) {
      this.socket.destroy();
      return { kind: 'frame-error', message: this.protocolError.message };
    }
    if (this.ended) return { kind: 'dropped', afterMs: 0 };
    this.trySend(() => this.conn.sendClose(1000, 'switchyard doctor done'));
    await this.waitFor(
      () => this.closeFrame !== null || this.ended || this.protocolError !== null,
      timeoutMs,
    );
    // Set by onData while this waited (TypeScript narrowed it to null above).
    const failure = this.protocolError as Error | null;
    if (failure !== null) {
      this.socket.destroy();
      return { kind: 'frame-error', message: failure.message };
    }
    if (this.closeFrame === null) {
      const waited = ms();
      this.socket.destroy();
      return this.ended
        ? { kind: 'dropped', afterMs: waited }
        : { kind: 'no-reply', waitedMs: timeoutMs };
    }
    const replyMs = ms();
    // RFC 6455 §7.1.1: the server closes TCP first; give it a moment.
    const tcpClosedByServer = await this.waitFor(() => this.ended, Math.min(2000, timeoutMs));
    this.socket.destroy();
    return { kind: 'complete', code: this.closeFrame.code, ms: replyMs, tcpClosedByServer };
  }

  /**
   * Stays silent (pongs to the server's pings excepted) for up to `maxMs`, calling `onTick`
   * every second, and reports whether and when the connection was cut.
   */
  async idle(
    maxMs: number,
    onTick: (elapsedMs: number) => void,
    signal?: AbortSignal,
  ): Promise<IdleOutcome> {
    const start = Date.now();
    const ticker = setInterval(() => onTick(Date.now() - start), 1000);
    try {
      await this.waitFor(
        () => this.ended || this.closeFrame !== null || this.protocolError !== null,
        maxMs,
        signal,
      );
    } finally {
      clearInterval(ticker);
    }
    const afterMs = Date.now() - start;
    if (this.protocolError !== null) {
      return { kind: 'frame-error', afterMs, message: this.protocolError.message };
    }
    if (this.closeFrame !== null) {
      return { kind: 'cut', afterMs, how: 'close-frame', ...this.closeFrame };
    }
    if (this.ended) return { kind: 'cut', afterMs, how: 'tcp' };
    return { kind: 'survived', ms: afterMs, serverPings: this.serverPings };
  }

  /** Ends the connection at once. */
  destroy(): void {
    this.socket.destroy();
  }
}
