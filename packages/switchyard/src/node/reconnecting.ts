/**
 * A client WebSocket that comes back: one logical connection over as many sockets as it takes.
 *
 * Theory of operation. `ReconnectingWebSocket` calls {@link connect} and binds its listeners to
 * the socket it gets. When that socket ends (or a handshake fails), the cause goes to the
 * sans-I/O {@link ReconnectPolicy}, which says stop or retry after a jittered delay. Messages
 * sent while no socket is open wait in a bounded {@link OutboundQueue} and are written in order
 * on the next open. With `resume: true` it also speaks the resume exchange
 * (`switchyard.resume.v1`, docs/resume.md): it remembers the last position seen on each topic,
 * presents them in the next upgrade URL, drops a replayed message it has already delivered, and
 * reports lost ranges as `gap` events.
 */
import { EventEmitter } from 'node:events';
import {
  OutboundQueue,
  ReconnectPolicy,
  parseRetryAfter,
  type DisconnectCause,
  type ReconnectOptions,
} from '../core/reconnect.js';
import {
  RESUME_PROTOCOL,
  ResumeTracker,
  decodeResumeFrame,
  type GapInfo,
  type MessageMeta,
} from '../core/resume.js';
import { RemoteProtocolError, SwitchyardError, UnexpectedResponseError } from '../core/errors.js';
import {
  MessageInbox,
  closedError,
  finalClose,
  gaveUpError,
  queueFullError,
} from '../core/reconnecting-client.js';
import { ReadyState, type ReadyStateValue } from '../core/connection.js';
import { connect, type ConnectOptions } from './client.js';
import { parseWebSocketUrl } from '../core/websocket-url.js';
import { checkOptions } from '../core/options.js';
import { RECONNECTING_OPTIONS } from './options.js';
import { resolveLogger, type Logger } from './diagnostics.js';
import type { IncomingMessageData, SendData, SendOptions, WebSocket } from './websocket.js';

/** Options of {@link ReconnectingWebSocket}: those of {@link connect}, plus the policy. */
export interface ReconnectingWebSocketOptions extends Omit<ConnectOptions, 'signal'> {
  /** Backoff, retry rules and the offline queue's limits. */
  reconnect?: ReconnectOptions;
  /**
   * Speak the resume exchange (docs/resume.md): offer `switchyard.resume.v1`, present the last
   * position per topic on reconnect, deliver each topic message once. Default false.
   */
  resume?: boolean;
}

export type { GapInfo, MessageMeta };

/** The events of a {@link ReconnectingWebSocket}. */
export interface ReconnectingWebSocketEvents {
  /** A socket opened: the first, or a new one after a drop (`attempt` > 0). */
  open: [info: { attempt: number; socket: WebSocket }];
  /** A message; `meta` is set for topic messages under the resume exchange. */
  message: [data: string | Buffer, isBinary: boolean, meta: MessageMeta | undefined];
  /** A socket ended and another will be tried after `delay` ms. */
  reconnecting: [info: { attempt: number; delay: number; cause: DisconnectCause }];
  /** Topic positions were lost (outside the server's replay window): reload the state. */
  gap: [info: GapInfo];
  /** The logical connection is over: closed by `close()`, or a cause that does not retry. */
  close: [code: number, reason: string];
  /** A socket's error, a refused handshake, a full queue, or giving up. */
  error: [error: Error];
}

type Outgoing = { data: SendData; options: SendOptions | undefined };

/**
 * A WebSocket client that reconnects with exponential backoff and full jitter.
 *
 * @example
 * const ws = new ReconnectingWebSocket('ws://127.0.0.1:8080/feed', { reconnect: { maxDelay: 10_000 } });
 * ws.on('message', (data) => console.log(data));
 * ws.on('reconnecting', ({ attempt, delay }) => console.log(`retry ${attempt} in ${delay} ms`));
 * ws.send('hello'); // queued until the first open
 */
export class ReconnectingWebSocket extends EventEmitter<ReconnectingWebSocketEvents> {
  /** The URL of the current or last socket (without the resume parameter). */
  url: string;
  private readonly urlProvider: (() => string | URL) | null;
  private readonly options: ConnectOptions;
  private readonly policy: ReconnectPolicy;
  private readonly queue: OutboundQueue<Outgoing>;
  /** The resume exchange's state, or null without `resume: true`. */
  private readonly resume: ResumeTracker | null;
  private readonly textAsBuffer: boolean;
  private readonly logger: Logger | null;
  private current: WebSocket | null = null;
  private abort: AbortController | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ended = false;
  private closeRequested: { code: number | undefined; reason: string | undefined } | null = null;
  private opens = 0;
  private readonly inbox = new MessageInbox<IncomingMessageData>();

  /**
   * @param url where to connect, or a function called before every attempt (to pick another
   *   instance, or put a fresh token in the URL).
   */
  constructor(
    url: string | URL | (() => string | URL),
    options: ReconnectingWebSocketOptions = {},
  ) {
    super();
    // Thrown here, once, rather than by every connect() attempt.
    checkOptions(RECONNECTING_OPTIONS, options);
    const { reconnect, resume, ...connectOptions } = options;
    this.urlProvider = typeof url === 'function' ? url : null;
    this.url = parseWebSocketUrl(typeof url === 'function' ? url() : url).href;
    this.policy = new ReconnectPolicy(reconnect);
    this.queue = new OutboundQueue(reconnect?.maxQueuedMessages, reconnect?.maxQueuedBytes);
    this.resume = resume === true ? new ResumeTracker() : null;
    this.textAsBuffer = connectOptions.textAsBuffer === true;
    this.logger = resolveLogger(options.logger);
    this.options = connectOptions;
    if (this.resume !== null) {
      this.options = {
        ...connectOptions,
        protocols: this.resume.protocols(connectOptions.protocols),
        textAsBuffer: true,
      };
    }
    queueMicrotask(() => this.attempt());
  }

  /** CONNECTING while between sockets, OPEN, CLOSING after `close()`, CLOSED at the end. */
  get readyState(): ReadyStateValue {
    if (this.ended) return ReadyState.CLOSED;
    if (this.closeRequested !== null) return ReadyState.CLOSING;
    return this.current?.readyState === ReadyState.OPEN ? ReadyState.OPEN : ReadyState.CONNECTING;
  }

  /** The open socket, or null between sockets. */
  get socket(): WebSocket | null {
    return this.current;
  }

  /** Bytes waiting: those of the open socket plus those queued for the next one. */
  get bufferedAmount(): number {
    return (this.current?.bufferedAmount ?? 0) + this.queue.bytes;
  }

  /** The last position seen per topic (resume exchange), as presented on the next connect. */
  get resumePositions(): ReadonlyMap<string, number> {
    return this.resume?.positions ?? NO_POSITIONS;
  }

  /**
   * Sends now when a socket is open, else queues for the next one. Returns false when the
   * socket is over its high-water mark or the queue is full (an `error` event says which
   * limit; the message is dropped then).
   */
  send(data: SendData, options?: SendOptions): boolean {
    if (this.ended || this.closeRequested !== null) throw closedError();
    const ws = this.current;
    if (ws !== null && ws.readyState === ReadyState.OPEN) return ws.send(data, options);
    const bytes = typeof data === 'string' ? Buffer.byteLength(data) : data.byteLength;
    const over = this.queue.push({ data, options }, bytes);
    if (over === null) return true;
    this.report(queueFullError(this.queue, over, bytes));
    return false;
  }

  /** Ends the logical connection: closes the socket (if any) and stops reconnecting. */
  close(code?: number, reason?: string): void {
    if (this.ended || this.closeRequested !== null) return;
    this.closeRequested = { code, reason };
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.abort?.abort();
    const ws = this.current;
    if (ws !== null && ws.readyState !== ReadyState.CLOSED) ws.close(code, reason);
    else this.finish(code ?? 1000, reason ?? '');
  }

  /** Messages of every socket, in order, until the logical connection ends. */
  [Symbol.asyncIterator](): AsyncIterator<IncomingMessageData> {
    return this.inbox.iterator();
  }

  // ---- internals -----------------------------------------------------------------------------

  private attempt(): void {
    this.timer = null;
    if (this.ended || this.closeRequested !== null) return;
    const abort = new AbortController();
    this.abort = abort;
    let target: string;
    try {
      target = this.targetUrl();
    } catch (error) {
      // A URL function that throws or returns nonsense: a local bug, not a network problem.
      this.report(error as Error);
      this.finish(1006, '');
      return;
    }
    connect(target, { ...this.options, signal: abort.signal }).then(
      (ws) => this.bind(ws),
      (error: Error) => {
        this.abort = null;
        if (this.closeRequested !== null) {
          this.finish(this.closeRequested.code ?? 1000, this.closeRequested.reason ?? '');
          return;
        }
        this.report(error);
        this.disconnected(causeOfFailure(error));
      },
    );
  }

  private targetUrl(): string {
    if (this.urlProvider !== null) this.url = parseWebSocketUrl(this.urlProvider()).href;
    return this.resume?.url(this.url) ?? this.url;
  }

  private bind(ws: WebSocket): void {
    this.abort = null;
    if (this.closeRequested !== null) {
      ws.close(this.closeRequested.code, this.closeRequested.reason);
      ws.once('close', (code, reason) => this.finish(code, reason));
      return;
    }
    this.current = ws;
    const resumed = this.resume !== null && ws.protocol === RESUME_PROTOCOL;
    ws.on('message', (data, isBinary) => {
      if (resumed) this.receiveResumed(ws, data as Buffer, isBinary);
      else this.deliver(data, isBinary, undefined);
    });
    ws.on('error', (error) => this.report(error));
    ws.on('close', (code, reason) => {
      this.current = null;
      if (this.closeRequested !== null) this.finish(code, reason);
      else this.disconnected({ kind: 'close', code, reason });
    });
    this.policy.opened();
    const attempt = this.opens++;
    // Sent in order, before anything the open listener sends.
    for (const { data } of this.queue.drain()) ws.send(data.data, data.options);
    this.emit('open', { attempt, socket: ws });
  }

  private receiveResumed(ws: WebSocket, data: Buffer, isBinary: boolean): void {
    const outcome = this.resume!.receive(decodeResumeFrame(data));
    switch (outcome.action) {
      case 'fail':
        ws.close(1002, outcome.reason);
        return;
      case 'gap':
        this.emit('gap', outcome.gap);
        return;
      case 'drop':
        return;
      case 'deliver': {
        const { payload } = outcome;
        const buffer = Buffer.from(payload.buffer, payload.byteOffset, payload.length);
        const body = isBinary || this.textAsBuffer ? buffer : buffer.toString();
        this.deliver(body, isBinary, outcome.meta);
      }
    }
  }

  private deliver(data: string | Buffer, isBinary: boolean, meta: MessageMeta | undefined): void {
    this.emit('message', data, isBinary, meta);
    this.inbox.push({ data, isBinary });
  }

  private disconnected(cause: DisconnectCause): void {
    const decision = this.policy.next(cause);
    if (decision.action === 'stop') {
      if (decision.reason === 'max-retries') {
        this.report(gaveUpError(this.url, this.policy.attempt));
      }
      const { code, reason } = finalClose(cause);
      this.finish(code, reason);
      return;
    }
    this.emit('reconnecting', { attempt: decision.attempt, delay: decision.delay, cause });
    if (this.ended || this.closeRequested !== null) return;
    this.timer = setTimeout(() => this.attempt(), decision.delay);
  }

  private finish(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.current = null;
    const dropped = this.queue.drain().length;
    if (dropped > 0) {
      this.logger?.warn(`reconnecting websocket closed with ${dropped} unsent messages`, {
        url: this.url,
      });
    }
    this.inbox.end();
    this.emit('close', code, reason);
  }

  private report(error: Error): void {
    // Like WebSocket: an 'error' with no listener is logged, never thrown.
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else
      this.logger?.warn(`reconnecting websocket: ${error.message}`, {
        code: (error as SwitchyardError).code,
        url: this.url,
      });
  }
}

const NO_POSITIONS: ReadonlyMap<string, number> = new Map();

/** What a failed `connect()` means for the policy. */
function causeOfFailure(error: Error): DisconnectCause {
  if (error instanceof UnexpectedResponseError) {
    return {
      kind: 'handshake',
      status: error.statusCode,
      retryAfterMs: parseRetryAfter(error.responseHeaders['retry-after'], Date.now()),
    };
  }
  if (error instanceof RemoteProtocolError && error.code !== 'SWITCHYARD_ERR_HANDSHAKE_TIMEOUT') {
    // A 101 that breaks RFC 6455 (bad accept key, unoffered extension): retrying would repeat it.
    return { kind: 'handshake', status: 101, retryAfterMs: null };
  }
  return { kind: 'network', error };
}
