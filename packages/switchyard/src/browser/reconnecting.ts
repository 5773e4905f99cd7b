/**
 * The reconnecting client for browsers: one logical connection over as many native `WebSocket`s
 * as it takes, as an `EventTarget`.
 *
 * Theory of operation. The rules are the Node class's (node/reconnecting.ts), from the same core
 * pieces: {@link ReconnectPolicy} decides stop or retry after a jittered delay,
 * {@link OutboundQueue} keeps what is sent between sockets, {@link ResumeTracker} speaks the
 * resume exchange. What differs is what a browser lets a page see:
 *
 * - A refused or failed handshake is only an `error` then a `close` with 1006 (WHATWG
 *   WebSockets: the status, a 401 as much as a 503, is hidden from scripts). A socket that never
 *   opened is therefore a `{ kind: 'network' }` cause, retried by default; `Retry-After` cannot
 *   be read. A socket that opened and then closed is a `{ kind: 'close', code, reason }` cause.
 * - A page may only close with 1000 or 3000-4999, so a server that breaks the resume exchange
 *   is left with 1000 and the reason, and the logical connection reports 1002 as Node does.
 * - `navigator.onLine === false` means there is no network: an attempt due then is not made
 *   (it would fail and count against `maxRetries`); the client waits for the `online` event and
 *   tries at once, also cutting short a backoff it was sleeping through.
 */
import {
  OutboundQueue,
  ReconnectPolicy,
  type DisconnectCause,
  type ReconnectOptions,
} from '../core/reconnect.js';
import {
  RESUME_PROTOCOL,
  ResumeTracker,
  decodeResumeFrame,
  decodeResumeText,
  type MessageMeta,
} from '../core/resume.js';
import { ConnectionError, InvalidOptionError } from '../core/errors.js';
import { ReadyState, type ReadyStateValue } from '../core/connection.js';
import { checkOptions } from '../core/options.js';
import {
  MessageInbox,
  closedError,
  finalClose,
  gaveUpError,
  queueFullError,
} from '../core/reconnecting-client.js';
import { parseWebSocketUrl } from '../core/websocket-url.js';
import {
  GapEvent,
  ReconnectingCloseEvent,
  ReconnectingErrorEvent,
  ReconnectingEvent,
  ReconnectingMessageEvent,
  ReconnectingOpenEvent,
  type MessageData,
  type ReconnectingWebSocketEventMap,
} from './events.js';
import { BROWSER_RECONNECTING_OPTIONS } from './options.js';
import {
  globalWebSocket,
  isOffline,
  onlineEvents,
  pageLocation,
  type WebSocketConstructor,
  type WebSocketLike,
} from './socket.js';

/** Options of the browser {@link ReconnectingWebSocket}. */
export interface ReconnectingWebSocketOptions {
  /** Subprotocols to offer, in order of preference. */
  protocols?: string | string[];
  /** Backoff, retry rules and the offline queue's limits (the Node class's `reconnect`). */
  reconnect?: ReconnectOptions;
  /**
   * Speak the resume exchange (docs/resume.md): offer `switchyard.resume.v1`, present the last
   * position per topic on reconnect, deliver each topic message once. Default false.
   */
  resume?: boolean;
  /** The WebSocket class. Default `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
}

/** What `send` takes: what the native `WebSocket.send` takes. */
export type SendData = string | ArrayBuffer | ArrayBufferView | Blob;

type Listener<E> = ((this: ReconnectingWebSocket, event: E) => unknown) | null;
type AnyListener = Parameters<EventTarget['addEventListener']>[1];
type AddOptions = Parameters<EventTarget['addEventListener']>[2];
type RemoveOptions = Parameters<EventTarget['removeEventListener']>[2];

/**
 * A browser WebSocket that reconnects with exponential backoff and full jitter.
 *
 * @example
 * const ws = new ReconnectingWebSocket('wss://example.com/feed', { resume: true });
 * ws.addEventListener('message', (event) => console.log(event.data, event.meta?.position));
 * ws.addEventListener('reconnecting', (event) => console.log(`retry in ${event.delay} ms`));
 * ws.send('hello'); // queued until the first open
 */
export class ReconnectingWebSocket extends EventTarget {
  static readonly CONNECTING = ReadyState.CONNECTING;
  static readonly OPEN = ReadyState.OPEN;
  static readonly CLOSING = ReadyState.CLOSING;
  static readonly CLOSED = ReadyState.CLOSED;

  /** The URL of the current or last socket (without the resume parameter). */
  url: string;
  /** How binary messages are delivered: 'blob' (the default, as in browsers) or 'arraybuffer'. */
  binaryType: 'blob' | 'arraybuffer' = 'blob';

  private readonly urlProvider: (() => string | URL) | null;
  private readonly Socket: WebSocketConstructor;
  private readonly protocols: string[];
  private readonly policy: ReconnectPolicy;
  private readonly queue: OutboundQueue<SendData>;
  /** The resume exchange's state, or null without `resume: true`. */
  private readonly resume: ResumeTracker | null;
  private readonly inbox = new MessageInbox<ReconnectingMessageEvent>();
  /** The socket of the current attempt, connecting or open; null between attempts. */
  private current: WebSocketLike | null = null;
  private opened = false;
  /** Set when the server broke the resume exchange: the reason the socket was closed with. */
  private violation: string | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly online = (): void => this.cameOnline();
  /** Stops listening for `online`, while the client listens. */
  private unlistenOnline: (() => void) | null = null;
  private ended = false;
  private closeRequested: { code: number | undefined; reason: string | undefined } | null = null;
  private opens = 0;

  /**
   * @param url where to connect (ws, wss, http, https, or relative to the page), or a function
   *   called before every attempt (to pick another instance, or put a fresh token in the URL).
   * @throws {InvalidOptionError} for an unknown option or a bad value, or when there is no
   *   `WebSocket` class; a `LocalProtocolError` (`SWITCHYARD_ERR_INVALID_ARGUMENT`) for a URL
   *   that is not a WebSocket URL.
   */
  constructor(
    url: string | URL | (() => string | URL),
    options: ReconnectingWebSocketOptions = {},
  ) {
    super();
    checkOptions(BROWSER_RECONNECTING_OPTIONS, options);
    const Socket = options.WebSocket ?? globalWebSocket();
    if (Socket === undefined) {
      throw new InvalidOptionError(
        'WebSocket',
        'This environment has no global WebSocket: pass the class to use as the `WebSocket` option.',
      );
    }
    this.Socket = Socket;
    this.urlProvider = typeof url === 'function' ? url : null;
    this.url = resolve(typeof url === 'function' ? url() : url);
    this.policy = new ReconnectPolicy(options.reconnect);
    this.queue = new OutboundQueue(
      options.reconnect?.maxQueuedMessages,
      options.reconnect?.maxQueuedBytes,
    );
    this.resume = options.resume === true ? new ResumeTracker() : null;
    const offered = options.protocols;
    this.protocols =
      this.resume?.protocols(offered) ??
      (offered === undefined ? [] : typeof offered === 'string' ? [offered] : [...offered]);
    // Listeners added right after construction see the first events.
    queueMicrotask(() => this.attempt());
  }

  /** CONNECTING while between sockets, OPEN, CLOSING after `close()`, CLOSED at the end. */
  get readyState(): ReadyStateValue {
    if (this.ended) return ReadyState.CLOSED;
    if (this.closeRequested !== null) return ReadyState.CLOSING;
    return this.opened ? ReadyState.OPEN : ReadyState.CONNECTING;
  }

  /** The open native socket, or null between sockets. */
  get socket(): WebSocketLike | null {
    return this.opened ? this.current : null;
  }

  /** The subprotocol of the open socket, or ''. */
  get protocol(): string {
    return this.socket?.protocol ?? '';
  }

  /** Bytes waiting: those of the open socket plus those queued for the next one. */
  get bufferedAmount(): number {
    return (this.socket?.bufferedAmount ?? 0) + this.queue.bytes;
  }

  /** The last position seen per topic (resume exchange), as presented on the next connect. */
  get resumePositions(): ReadonlyMap<string, number> {
    return this.resume?.positions ?? new Map();
  }

  /**
   * Sends now when a socket is open, else queues for the next one. Returns false when the
   * queue is full: the message is dropped and an `error` event says which limit.
   * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_STATE` after `close()`.
   */
  send(data: SendData): boolean {
    if (this.ended || this.closeRequested !== null) throw closedError();
    const ws = this.socket;
    if (ws !== null) {
      ws.send(data);
      return true;
    }
    const bytes = byteLength(data);
    const over = this.queue.push(data, bytes);
    if (over === null) return true;
    this.report(queueFullError(this.queue, over, bytes));
    return false;
  }

  /**
   * Ends the logical connection: closes the socket (if any) and stops reconnecting. The code is
   * 1000 or 3000-4999 and the reason at most 123 bytes, as for the native `close`.
   * @throws {DOMException} `InvalidAccessError` for another code, `SyntaxError` for a long reason.
   */
  close(code?: number, reason?: string): void {
    if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
      throw new DOMException(
        `The close code must be 1000 or 3000-4999, got ${code}`,
        'InvalidAccessError',
      );
    }
    if (reason !== undefined && byteLength(reason) > 123) {
      throw new DOMException('The close reason must be at most 123 bytes of UTF-8', 'SyntaxError');
    }
    if (this.ended || this.closeRequested !== null) return;
    this.closeRequested = { code, reason };
    this.stopWaiting();
    const ws = this.current;
    if (ws !== null) ws.close(code, reason);
    else this.finish(code ?? 1000, reason ?? '', true);
  }

  /** Messages of every socket, in order, until the logical connection ends. */
  [Symbol.asyncIterator](): AsyncIterator<ReconnectingMessageEvent> {
    return this.inbox.iterator();
  }

  /** Adds a listener, typed by event name. */
  override addEventListener<K extends keyof ReconnectingWebSocketEventMap>(
    type: K,
    listener: Listener<ReconnectingWebSocketEventMap[K]>,
    options?: AddOptions,
  ): void;
  override addEventListener(type: string, listener: AnyListener | null, options?: AddOptions): void;
  override addEventListener(type: string, listener: unknown, options?: AddOptions): void {
    super.addEventListener(type, listener as AnyListener, options);
  }

  /** Removes a listener added with {@link addEventListener}. */
  override removeEventListener<K extends keyof ReconnectingWebSocketEventMap>(
    type: K,
    listener: Listener<ReconnectingWebSocketEventMap[K]>,
    options?: RemoveOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: AnyListener | null,
    options?: RemoveOptions,
  ): void;
  override removeEventListener(type: string, listener: unknown, options?: RemoveOptions): void {
    super.removeEventListener(type, listener as AnyListener, options);
  }

  // ---- internals -----------------------------------------------------------------------------

  private attempt(): void {
    this.stopWaiting();
    if (this.ended || this.closeRequested !== null) return;
    if (isOffline() && this.waitForOnline()) return;
    let socket: WebSocketLike;
    try {
      if (this.urlProvider !== null) this.url = resolve(this.urlProvider());
      socket = new this.Socket(this.resume?.url(this.url) ?? this.url, this.protocols);
    } catch (error) {
      // A URL function that throws or returns nonsense: a local bug, not a network problem.
      this.report(error as Error);
      this.finish(1006, '', false);
      return;
    }
    // Binary arrives as bytes so that a resume header can be read; a Blob is made after.
    socket.binaryType = 'arraybuffer';
    this.current = socket;
    this.opened = false;
    this.violation = null;
    socket.addEventListener('open', () => this.socketOpened(socket));
    socket.addEventListener('message', (event) => this.socketMessage(socket, event));
    socket.addEventListener('error', () => this.socketError(socket));
    socket.addEventListener('close', (event) => this.socketClosed(socket, event));
  }

  private socketOpened(socket: WebSocketLike): void {
    if (socket !== this.current) return;
    this.opened = true;
    this.policy.opened();
    const attempt = this.opens++;
    // Sent in order, before anything the open listener sends.
    for (const { data } of this.queue.drain()) socket.send(data);
    this.dispatchEvent(new ReconnectingOpenEvent(attempt, socket));
  }

  private socketMessage(socket: WebSocketLike, event: Event): void {
    if (socket !== this.current || this.violation !== null) return;
    const data = (event as Event & { data: unknown }).data as string | ArrayBuffer;
    if (this.resume === null || socket.protocol !== RESUME_PROTOCOL) {
      this.deliver(data, undefined);
      return;
    }
    const outcome =
      typeof data === 'string'
        ? this.resume.receive(decodeResumeText(data))
        : this.resume.receive(decodeResumeFrame(new Uint8Array(data)));
    switch (outcome.action) {
      case 'fail':
        // A page may not send 1002; the logical connection still ends as the Node one does.
        this.violation = outcome.reason;
        socket.close(1000, outcome.reason);
        return;
      case 'gap':
        this.dispatchEvent(new GapEvent(outcome.gap));
        return;
      case 'drop':
        return;
      case 'deliver': {
        const { payload } = outcome;
        this.deliver(typeof payload === 'string' ? payload : copy(payload), outcome.meta);
      }
    }
  }

  private deliver(data: string | ArrayBuffer, meta: MessageMeta | undefined): void {
    const body: MessageData =
      typeof data === 'string' || this.binaryType === 'arraybuffer' ? data : new Blob([data]);
    const event = new ReconnectingMessageEvent(body, meta);
    this.dispatchEvent(event);
    this.inbox.push(event);
  }

  private socketError(socket: WebSocketLike): void {
    if (socket !== this.current || this.closeRequested !== null) return;
    // WHATWG WebSockets says nothing more than "error"; the close event that follows has 1006.
    this.report(
      new ConnectionError(
        'SWITCHYARD_ERR_CONNECTION_LOST',
        this.opened
          ? `The WebSocket to ${this.url} failed`
          : `The WebSocket to ${this.url} failed before it opened (refused, unreachable, or a handshake the server declined: a browser does not say which)`,
        { closeCode: 1006 },
      ),
    );
  }

  private socketClosed(socket: WebSocketLike, event: Event): void {
    if (socket !== this.current) return;
    const { code, reason, wasClean } = event as Event & {
      code: number;
      reason: string;
      wasClean: boolean;
    };
    const opened = this.opened;
    this.current = null;
    this.opened = false;
    if (this.closeRequested !== null) {
      const asked = this.closeRequested;
      if (opened) this.finish(code, reason, wasClean);
      else this.finish(asked.code ?? 1000, asked.reason ?? '', true);
      return;
    }
    let cause: DisconnectCause;
    if (this.violation !== null) cause = { kind: 'close', code: 1002, reason: this.violation };
    else if (opened) cause = { kind: 'close', code, reason };
    else {
      cause = {
        kind: 'network',
        error: new ConnectionError(
          'SWITCHYARD_ERR_CONNECTION_LOST',
          `Could not open a WebSocket to ${this.url} (close ${code})`,
          { closeCode: code },
        ),
      };
    }
    this.disconnected(cause, wasClean && this.violation === null);
  }

  private disconnected(cause: DisconnectCause, wasClean: boolean): void {
    const decision = this.policy.next(cause);
    if (decision.action === 'stop') {
      if (decision.reason === 'max-retries') {
        this.report(gaveUpError(this.url, this.policy.attempt));
      }
      const { code, reason } = finalClose(cause);
      this.finish(code, reason, wasClean);
      return;
    }
    this.dispatchEvent(new ReconnectingEvent(decision.attempt, decision.delay, cause));
    if (this.ended || this.closeRequested !== null) return;
    this.timer = setTimeout(() => this.attempt(), decision.delay);
    // Coming back online ends the backoff early: the network it was waiting out is back.
    this.listenOnline();
  }

  /** Offline: waits for `online` rather than spend an attempt. False when nothing would say so. */
  private waitForOnline(): boolean {
    return this.listenOnline();
  }

  private listenOnline(): boolean {
    if (this.unlistenOnline !== null) return true;
    const target = onlineEvents();
    if (target === null) return false;
    const remove = target.removeEventListener;
    target.addEventListener('online', this.online);
    this.unlistenOnline = () => remove.call(target, 'online', this.online);
    return true;
  }

  private cameOnline(): void {
    if (this.ended || this.closeRequested !== null || this.current !== null) return;
    this.attempt();
  }

  /** Cancels a pending attempt and stops listening for `online`. */
  private stopWaiting(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.unlistenOnline?.();
    this.unlistenOnline = null;
  }

  private finish(code: number, reason: string, wasClean: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.stopWaiting();
    this.current = null;
    this.opened = false;
    this.queue.drain();
    this.inbox.end();
    this.dispatchEvent(new ReconnectingCloseEvent(code, reason, wasClean));
  }

  private report(error: Error): void {
    this.dispatchEvent(new ReconnectingErrorEvent(error));
  }
}

/** A URL function's or the constructor's URL, resolved against the page. */
function resolve(input: string | URL): string {
  return parseWebSocketUrl(input, pageLocation()).href;
}

const encoder = new TextEncoder();

/** Bytes a message takes, for the queue's limit (UTF-8 for text). */
function byteLength(data: SendData): number {
  if (typeof data === 'string') return encoder.encode(data).byteLength;
  if (data instanceof Blob) return data.size;
  return data.byteLength;
}

/** The payload as an ArrayBuffer of its own (it is a view into the frame with its header). */
function copy(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer;
}
