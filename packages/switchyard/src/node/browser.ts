/**
 * The browser's `WebSocket` API (WHATWG WebSockets Standard) on top of {@link connect}, so that
 * code written for browsers runs unchanged on Node: `new WebSocket(url, protocols)`, `onmessage`,
 * `binaryType`, `bufferedAmount`, `EventTarget`.
 */
import { connect, type ConnectOptions } from './client.js';
import { parseWebSocketUrl } from '../core/websocket-url.js';
import type { WebSocket as NodeWebSocket } from './websocket.js';
import { ReadyState, type ReadyStateValue } from '../core/connection.js';
import { resolveLogger, type Logger } from './diagnostics.js';
import { checkOptions } from '../core/options.js';
import { CONNECT_OPTIONS } from './options.js';

const BROWSER_OPTIONS = { ...CONNECT_OPTIONS, owner: 'BrowserWebSocket' };

/** The `close` event of the browser API (Node 20 has no global CloseEvent). */
export class CloseEvent extends Event {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
  constructor(type: string, init: { code?: number; reason?: string; wasClean?: boolean } = {}) {
    super(type);
    this.code = init.code ?? 0;
    this.reason = init.reason ?? '';
    this.wasClean = init.wasClean ?? false;
  }
}

type Handler<E extends Event> = ((this: BrowserWebSocket, event: E) => unknown) | null;
type AnyListener = ((event: Event) => unknown) | { handleEvent(event: Event): unknown };
type ListenerOptions = Parameters<EventTarget['addEventListener']>[2];
type RemoveOptions = Parameters<EventTarget['removeEventListener']>[2];
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * A WebSocket with the browser's API.
 *
 * @example
 * const ws = new BrowserWebSocket('ws://127.0.0.1:8080');
 * ws.binaryType = 'arraybuffer';
 * ws.onmessage = (event) => console.log(event.data);
 * ws.onopen = () => ws.send('hello');
 */
export class BrowserWebSocket extends EventTarget {
  static readonly CONNECTING = ReadyState.CONNECTING;
  static readonly OPEN = ReadyState.OPEN;
  static readonly CLOSING = ReadyState.CLOSING;
  static readonly CLOSED = ReadyState.CLOSED;
  readonly CONNECTING = ReadyState.CONNECTING;
  readonly OPEN = ReadyState.OPEN;
  readonly CLOSING = ReadyState.CLOSING;
  readonly CLOSED = ReadyState.CLOSED;

  /** The URL, as resolved (ws: or wss:). */
  readonly url: string;
  /** 'blob' (the default, as in browsers) or 'arraybuffer'. */
  binaryType: 'blob' | 'arraybuffer' = 'blob';

  onopen: Handler<Event> = null;
  onmessage: Handler<MessageEvent> = null;
  onerror: Handler<Event> = null;
  onclose: Handler<CloseEvent> = null;

  private state: ReadyStateValue = ReadyState.CONNECTING;
  private socket: NodeWebSocket | null = null;
  private readonly abort = new AbortController();
  private discarded = 0;
  private sendChain: Promise<void> | null = null;
  private protocolValue = '';
  private readonly logger: Logger | null;
  private listenerFailed = false;
  /** The wrapper each listener was registered with, so that removeEventListener finds it. */
  private readonly wrapped = new WeakMap<AnyListener, (event: Event) => void>();

  /**
   * @param protocols subprotocols to offer; each a token, no duplicates (else a SyntaxError).
   * @param options Node-only extras (headers, TLS, limits) passed to {@link connect}.
   */
  constructor(url: string | URL, protocols: string | string[] = [], options: ConnectOptions = {}) {
    super();
    // A TypeError with SWITCHYARD_ERR_INVALID_OPTION, thrown here rather than as an error event.
    checkOptions(BROWSER_OPTIONS, options);
    let parsed: URL;
    try {
      parsed = parseWebSocketUrl(url);
    } catch (error) {
      throw new DOMException((error as Error).message, 'SyntaxError');
    }
    if (new URL(String(url)).hash !== '') {
      throw new DOMException('WebSocket URLs must not contain a fragment', 'SyntaxError');
    }
    const list = typeof protocols === 'string' ? [protocols] : protocols;
    const seen = new Set<string>();
    for (const p of list) {
      if (!TOKEN.test(p) || seen.has(p)) {
        throw new DOMException(`Invalid or duplicate subprotocol: ${p}`, 'SyntaxError');
      }
      seen.add(p);
    }
    this.url = parsed.href;
    this.logger = resolveLogger(options.logger);
    for (const type of ['open', 'message', 'error', 'close'] as const) {
      super.addEventListener(type, (event) => {
        const handler = this[`on${type}`] as Handler<Event>;
        if (typeof handler === 'function') this.invoke(handler, event);
      });
    }
    // Browsers offer permessage-deflate on every connection; so does this one unless told not to.
    connect(parsed, {
      ...options,
      perMessageDeflate: options.perMessageDeflate ?? true,
      protocols: list,
      signal: this.abort.signal,
    }).then(
      (ws) => this.opened(ws),
      () => this.failed(),
    );
  }

  /**
   * Adds a listener, as EventTarget does. A listener that throws, or returns a promise that
   * rejects, is logged and closes this connection with 1011 instead of reaching the process as
   * an uncaught exception or an unhandled rejection (as Node's EventTarget would report it).
   */
  override addEventListener(
    type: string,
    listener: AnyListener | null,
    options?: ListenerOptions,
  ): void {
    if (listener === null) return;
    let wrapper = this.wrapped.get(listener);
    if (wrapper === undefined) {
      wrapper = (event: Event) => this.invoke(listener, event);
      this.wrapped.set(listener, wrapper);
    }
    super.addEventListener(type, wrapper, options);
  }

  /** Removes a listener added with {@link addEventListener}. */
  override removeEventListener(
    type: string,
    listener: AnyListener | null,
    options?: RemoveOptions,
  ): void {
    if (listener === null) return;
    super.removeEventListener(type, this.wrapped.get(listener) ?? listener, options);
  }

  /** Calls a listener; a throw or a rejected promise goes to {@link listenerError}. */
  private invoke(listener: AnyListener, event: Event): void {
    let result: unknown;
    try {
      result =
        typeof listener === 'function'
          ? (listener as (this: BrowserWebSocket, e: Event) => unknown).call(this, event)
          : listener.handleEvent(event);
    } catch (error) {
      this.listenerError(event.type, error);
      return;
    }
    if (isThenable(result)) {
      result.then(undefined, (error: unknown) => this.listenerError(event.type, error));
    }
  }

  /** A listener failed: logged once, and the connection closes with 1011 (RFC 6455 §7.4.1). */
  private listenerError(type: string, error: unknown): void {
    if (!this.listenerFailed) {
      this.listenerFailed = true;
      this.logger?.error(`uncaught exception in a '${type}' listener; closing with 1011`, {
        error,
      });
    }
    if (this.state !== ReadyState.OPEN) return;
    this.state = ReadyState.CLOSING;
    this.socket?.close(1011, 'Internal error');
  }

  /** CONNECTING, OPEN, CLOSING or CLOSED. */
  get readyState(): ReadyStateValue {
    return this.state;
  }
  /** The subprotocol the server chose, or ''. */
  get protocol(): string {
    return this.protocolValue;
  }
  /** The extensions in use, or ''. */
  get extensions(): string {
    return this.socket?.extensions ?? '';
  }
  /** Bytes queued by send() and not yet sent, including those discarded after close. */
  get bufferedAmount(): number {
    return (this.socket?.bufferedAmount ?? 0) + this.discarded;
  }

  /** Sends text, a Blob, an ArrayBuffer or a view. Throws InvalidStateError while CONNECTING. */
  send(data: string | Blob | ArrayBuffer | ArrayBufferView): void {
    if (this.state === ReadyState.CONNECTING) {
      throw new DOMException('The WebSocket is still connecting', 'InvalidStateError');
    }
    const ws = this.socket;
    if (this.state !== ReadyState.OPEN || ws === null) {
      // WHATWG: after close, data is discarded but still counted in bufferedAmount.
      this.discarded += typeof data === 'string' ? Buffer.byteLength(data) : byteSize(data);
      return;
    }
    if (data instanceof Blob || this.sendChain !== null) {
      // A Blob is read asynchronously; later sends wait for it so that order is kept.
      const previous = this.sendChain ?? Promise.resolve();
      const next = previous.then(async () => {
        const payload = data instanceof Blob ? new Uint8Array(await data.arrayBuffer()) : data;
        if (ws.readyState === ReadyState.OPEN)
          ws.send(payload, { binary: typeof payload !== 'string' });
      });
      this.sendChain = next.finally(() => {
        if (this.sendChain === next) this.sendChain = null;
      });
      return;
    }
    ws.send(data, { binary: typeof data !== 'string' });
  }

  /** Starts the closing handshake: code 1000 or 3000–4999, reason of at most 123 bytes. */
  close(code?: number, reason?: string): void {
    if (code !== undefined && code !== 1000 && !(code >= 3000 && code <= 4999)) {
      throw new DOMException(
        `The close code must be 1000 or 3000-4999, got ${code}`,
        'InvalidAccessError',
      );
    }
    if (reason !== undefined && Buffer.byteLength(reason) > 123) {
      throw new DOMException('The close reason must be at most 123 bytes of UTF-8', 'SyntaxError');
    }
    if (this.state === ReadyState.CLOSING || this.state === ReadyState.CLOSED) return;
    if (this.state === ReadyState.CONNECTING) {
      this.state = ReadyState.CLOSING;
      this.abort.abort();
      return;
    }
    this.state = ReadyState.CLOSING;
    this.socket?.close(code ?? (reason !== undefined ? 1000 : undefined), reason ?? '');
  }

  private opened(ws: NodeWebSocket): void {
    if (this.state !== ReadyState.CONNECTING) {
      ws.terminate();
      return;
    }
    this.socket = ws;
    this.protocolValue = ws.protocol;
    this.state = ReadyState.OPEN;
    ws.on('message', (data, isBinary) => {
      let payload: string | Blob | ArrayBuffer;
      if (!isBinary) payload = String(data);
      else {
        const buf = data as Buffer;
        const copy = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length) as ArrayBuffer;
        payload = this.binaryType === 'arraybuffer' ? copy : new Blob([copy]);
      }
      this.dispatchEvent(
        new MessageEvent('message', { data: payload, origin: new URL(this.url).origin }),
      );
    });
    ws.on('error', () => {
      // WHATWG: a failed connection fires error, then close.
      this.dispatchEvent(new Event('error'));
    });
    ws.on('close', (code, reason, wasClean) => {
      this.state = ReadyState.CLOSED;
      this.dispatchEvent(new CloseEvent('close', { code, reason, wasClean }));
    });
    this.dispatchEvent(new Event('open'));
  }

  private failed(): void {
    this.state = ReadyState.CLOSED;
    this.dispatchEvent(new Event('error'));
    this.dispatchEvent(new CloseEvent('close', { code: 1006, reason: '', wasClean: false }));
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function byteSize(data: Blob | ArrayBuffer | ArrayBufferView): number {
  if (data instanceof Blob) return data.size;
  return data.byteLength;
}
