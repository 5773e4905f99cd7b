/**
 * switchyard/ws's WebSocket: the `ws` 8 WebSocket API over Switchyard's own {@link connect}
 * (client side) or a connection accepted by Switchyard's server (server side).
 *
 * Theory of operation. A client starts as CONNECTING with no Switchyard WebSocket under it;
 * `connect()` runs, and when it resolves the adapter binds to the connection it returned
 * (listeners on its events), emits `upgrade` then `open`; when it fails, `unexpected-response`
 * or `error`, then `close` with 1006. A server-side adapter is created with `address` null,
 * as in ws, and bound at once. Everything after binding is translation: messages arrive as
 * Buffers (Switchyard's `textAsBuffer`) and are converted to the `binaryType`; the close
 * reason becomes a Buffer; `send`/`ping`/`pong` take ws's argument shapes and callbacks. No
 * frame is parsed or written here: the protocol is Switchyard's.
 */
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import {
  connect,
  setDeflateConcurrency,
  ReadyState,
  UnexpectedResponseError,
  type ConnectOptions,
  type SendData,
  type WebSocket as SwitchyardWebSocket,
} from '../index.js';
import {
  addEventListener,
  getHandler,
  removeEventListener,
  setHandler,
  type WsEventListener,
} from './events.js';
import {
  TLS_OPTION_NAMES,
  WS_CLIENT_OPTIONS,
  limit,
  mapDeflate,
  splitOptions,
  type WsPerMessageDeflateOptions,
} from './options.js';
import type { WebSocketServer } from './server.js';
import type { createWebSocketStream } from './stream.js';

/** How binary messages are delivered (`websocket.binaryType`). */
export type BinaryType = 'nodebuffer' | 'arraybuffer' | 'fragments' | 'blob';

/** The data of a `message` event: a Buffer unless `binaryType` says otherwise. */
export type RawData = Buffer | ArrayBuffer | Buffer[] | Blob;

/** What `send`, `ping` and `pong` accept: ws's list, Blob aside. */
export type WsData = SendData | number | readonly number[] | { valueOf(): unknown };

/** The options of `new WebSocket(address, protocols, options)`; see docs/migrating-from-ws.md. */
export interface ClientOptions extends Omit<
  ConnectOptions,
  'perMessageDeflate' | 'followRedirects'
> {
  perMessageDeflate?: boolean | WsPerMessageDeflateOptions;
  followRedirects?: boolean;
  maxRedirects?: number;
  auth?: string;
  allowSynchronousEvents?: boolean;
  autoPong?: boolean;
  skipUTF8Validation?: boolean;
  maxBufferedChunks?: number;
  protocolVersion?: number;
  // TLS options of https.request(), passed to connect() in `tls`.
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer | Array<string | Buffer>;
  key?: string | Buffer | Array<string | Buffer>;
  pfx?: string | Buffer | Array<string | Buffer>;
  passphrase?: string;
  rejectUnauthorized?: boolean;
  servername?: string;
  checkServerIdentity?: (host: string, cert: unknown) => Error | undefined;
  ciphers?: string;
  minVersion?: string;
  maxVersion?: string;
  secureContext?: unknown;
}

/**
 * The handshake response as `upgrade` and `unexpected-response` listeners see it: the parts of
 * `http.IncomingMessage` a ws program reads. For `unexpected-response` it is also a readable
 * stream of the first bytes of the body (at most 1 KiB).
 */
export interface HandshakeResponseLike {
  statusCode: number;
  statusMessage: string;
  httpVersion: string;
  /** Lower-case names; repeated headers joined with ", " (set-cookie too). */
  headers: Record<string, string>;
}

/** The request as an `unexpected-response` listener sees it (ws passes http.ClientRequest). */
export interface HandshakeRequestLike {
  method: 'GET';
  path: string;
  host: string;
  /** No-op: the request has already ended. */
  destroy(): void;
  /** No-op: the request has already ended. */
  abort(): void;
}

/**
 * The events of a {@link WebSocket} and their arguments, for typed listeners. Any other event
 * name is accepted too (untyped), as on any EventEmitter.
 */
export interface WebSocketEventMap {
  open: [];
  message: [data: RawData, isBinary: boolean];
  close: [code: number, reason: Buffer];
  error: [error: Error];
  ping: [data: Buffer];
  pong: [data: Buffer];
  upgrade: [response: HandshakeResponseLike];
  'unexpected-response': [
    request: HandshakeRequestLike,
    response: Readable & HandshakeResponseLike,
  ];
}

type Listener = (...args: any[]) => void;

const EMPTY = Buffer.alloc(0);
const STATE_NAMES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * A WebSocket with ws 8's API.
 *
 * @example
 * import WebSocket from 'switchyard/ws';
 * const ws = new WebSocket('ws://127.0.0.1:8080');
 * ws.on('open', () => ws.send('hello'));
 * ws.on('message', (data) => console.log('received: %s', data));
 */
export class WebSocket extends EventEmitter {
  static readonly CONNECTING = ReadyState.CONNECTING;
  static readonly OPEN = ReadyState.OPEN;
  static readonly CLOSING = ReadyState.CLOSING;
  static readonly CLOSED = ReadyState.CLOSED;
  readonly CONNECTING = ReadyState.CONNECTING;
  readonly OPEN = ReadyState.OPEN;
  readonly CLOSING = ReadyState.CLOSING;
  readonly CLOSED = ReadyState.CLOSED;

  // The default export carries these, as ws's does (set in ./index.ts).
  static WebSocket: typeof WebSocket;
  static WebSocketServer: typeof WebSocketServer;
  static Server: typeof WebSocketServer;
  static createWebSocketStream: typeof createWebSocketStream;

  private inner: SwitchyardWebSocket | null = null;
  private state: number = ReadyState.CONNECTING;
  private binary: BinaryType = 'nodebuffer';
  private paused = false;
  private wasClean = false;
  private readonly address: string | undefined;
  private readonly abort: AbortController | null = null;

  /**
   * A client connecting to `address` (ws:, wss:, http: or https:). `address` null makes the
   * server-side object that a `WebSocketServer` binds to an accepted connection.
   * @throws SyntaxError for an invalid URL or subprotocol, as ws does.
   * @throws InvalidOptionError for a ws option this adapter cannot honour.
   */
  constructor(
    address: string | URL | null,
    protocols?: string | readonly string[] | ClientOptions,
    options?: ClientOptions,
  ) {
    super();
    if (address === null) return;
    if (protocols !== undefined && typeof protocols === 'object' && !Array.isArray(protocols)) {
      options = protocols as ClientOptions;
      protocols = undefined;
    }
    const list =
      protocols === undefined ? [] : typeof protocols === 'string' ? [protocols] : protocols;
    const url = parseAddress(address);
    if (new Set(list).size !== list.length || !(list as string[]).every((p) => TOKEN.test(p))) {
      throw new SyntaxError('An invalid or duplicated subprotocol was specified');
    }
    this.address = url.href;
    this.abort = new AbortController();
    const connectOptions = clientOptions(url, list as string[], options ?? {}, this.abort.signal);
    connect(url, connectOptions).then(
      (inner) => this.opened(inner),
      (error: Error) => this.failed(error, url),
    );
  }

  // Typed listeners for ws's events (as @types/ws has them); other names stay open.
  override on<K extends keyof WebSocketEventMap>(
    event: K,
    listener: (this: WebSocket, ...args: WebSocketEventMap[K]) => void,
  ): this;
  override on(event: string | symbol, listener: Listener): this;
  override on(event: string | symbol, listener: Listener): this {
    return super.on(event, listener);
  }

  override once<K extends keyof WebSocketEventMap>(
    event: K,
    listener: (this: WebSocket, ...args: WebSocketEventMap[K]) => void,
  ): this;
  override once(event: string | symbol, listener: Listener): this;
  override once(event: string | symbol, listener: Listener): this {
    return super.once(event, listener);
  }

  override off<K extends keyof WebSocketEventMap>(
    event: K,
    listener: (this: WebSocket, ...args: WebSocketEventMap[K]) => void,
  ): this;
  override off(event: string | symbol, listener: Listener): this;
  override off(event: string | symbol, listener: Listener): this {
    return super.off(event, listener);
  }

  /** CONNECTING (0), OPEN (1), CLOSING (2) or CLOSED (3). */
  get readyState(): number {
    return this.inner === null ? this.state : this.inner.readyState;
  }

  /** The URL connected to (client), or the request's (server side). */
  get url(): string {
    return this.address ?? this.inner?.url ?? '';
  }

  /** The subprotocol the server chose, or ''. */
  get protocol(): string {
    return this.inner?.protocol ?? '';
  }

  /** The names of the negotiated extensions, comma-separated (as ws gives them), or ''. */
  get extensions(): string {
    const header = this.inner?.extensions ?? '';
    return header === ''
      ? ''
      : header
          .split(',')
          .map((e) => e.split(';')[0].trim())
          .join();
  }

  /** Bytes given to `send()` that have not reached the network yet (framing included). */
  get bufferedAmount(): number {
    return this.inner?.bufferedAmount ?? 0;
  }

  /** 'nodebuffer' (default), 'arraybuffer', 'fragments' (an array of Buffers) or 'blob'. */
  get binaryType(): BinaryType {
    return this.binary;
  }

  set binaryType(type: BinaryType) {
    if (type === 'nodebuffer' || type === 'arraybuffer' || type === 'fragments' || type === 'blob')
      this.binary = type;
  }

  /** Whether `pause()` stopped reading. */
  get isPaused(): boolean {
    return this.paused;
  }

  /**
   * The Switchyard WebSocket under this adapter (null while connecting): for what ws lacks,
   * such as topics (`subscribe`, `publish`), `context` from the upgrade hook, or
   * `for await (const message of ...)`.
   */
  get switchyard(): SwitchyardWebSocket | null {
    return this.inner;
  }

  /**
   * Sends a message: strings as text, everything else as binary unless `options.binary` says
   * otherwise; numbers are sent as their decimal text, as ws does. `callback` runs once the
   * message is handed to the socket (with an error when the connection is not open).
   * @throws Error while CONNECTING, as ws does.
   */
  send(
    data: WsData,
    options?: { binary?: boolean; compress?: boolean; fin?: boolean; mask?: boolean } | Callback,
    callback?: Callback,
  ): void {
    if (typeof options === 'function') {
      callback = options;
      options = {};
    }
    const inner = this.whenOpen(callback);
    if (inner === null) return;
    const payload = toSendData(data);
    inner.send(payload, {
      binary: options?.binary ?? typeof payload !== 'string',
      fin: options?.fin,
      // ws's `compress` defaults to true and still honours the threshold; only false is news.
      compress: options?.compress === false ? false : undefined,
    });
    if (callback !== undefined) afterWrite(inner, callback);
  }

  /** Sends a ping (at most 125 bytes); `mask` is ignored (clients always mask). */
  ping(data?: WsData | Callback, mask?: boolean | Callback, callback?: Callback): void {
    this.control('ping', data, mask, callback);
  }

  /** Sends a pong (at most 125 bytes); `mask` is ignored (clients always mask). */
  pong(data?: WsData | Callback, mask?: boolean | Callback, callback?: Callback): void {
    this.control('pong', data, mask, callback);
  }

  /**
   * Starts the closing handshake; while connecting, abandons the handshake (`error`, then
   * `close` with 1006), as ws does. The reason may be a string or a Buffer of UTF-8.
   */
  close(code?: number, reason?: string | Buffer): void {
    if (this.inner === null) {
      if (this.state === ReadyState.CONNECTING) this.abandon();
      return;
    }
    this.inner.close(code, reason === undefined ? undefined : reason.toString());
  }

  /** Destroys the connection at once (the peer sees 1006); while connecting, abandons it. */
  terminate(): void {
    if (this.inner === null) {
      if (this.state === ReadyState.CONNECTING) this.abandon();
      return;
    }
    this.inner.terminate();
  }

  /** Stops reading from the socket (a no-op while connecting or once closed). */
  pause(): void {
    if (this.inner === null || this.inner.readyState === ReadyState.CLOSED) return;
    this.paused = true;
    this.inner.pause();
  }

  /** Resumes reading after `pause()`. */
  resume(): void {
    if (this.inner === null || this.inner.readyState === ReadyState.CLOSED) return;
    this.paused = false;
    this.inner.resume();
  }

  /** The browser API: listeners of 'open', 'message', 'close' and 'error' get event objects. */
  addEventListener(type: string, listener: WsEventListener, options?: { once?: boolean }): void {
    addEventListener(this, type, listener, options);
  }

  /** Removes a listener added with `addEventListener`. */
  removeEventListener(type: string, listener: WsEventListener): void {
    removeEventListener(this, type, listener);
  }

  get onopen(): WsEventListener | null {
    return getHandler(this, 'open');
  }
  set onopen(handler: WsEventListener | null) {
    setHandler(this, 'open', handler);
  }
  get onmessage(): WsEventListener | null {
    return getHandler(this, 'message');
  }
  set onmessage(handler: WsEventListener | null) {
    setHandler(this, 'message', handler);
  }
  get onclose(): WsEventListener | null {
    return getHandler(this, 'close');
  }
  set onclose(handler: WsEventListener | null) {
    setHandler(this, 'close', handler);
  }
  get onerror(): WsEventListener | null {
    return getHandler(this, 'error');
  }
  set onerror(handler: WsEventListener | null) {
    setHandler(this, 'error', handler);
  }

  /** @internal whether both close frames were exchanged (for CloseEvent.wasClean). */
  closeWasClean(): boolean {
    return this.wasClean;
  }

  /**
   * @internal Binds this adapter to a Switchyard connection: the server does it for the
   * connections it accepts, the client once `connect()` resolved.
   */
  bind(inner: SwitchyardWebSocket): void {
    this.inner = inner;
    inner.on('message', (data, isBinary) => {
      const bytes = data as Buffer; // textAsBuffer: text arrives as bytes, as in ws
      this.emit('message', isBinary ? this.convert(bytes) : bytes, isBinary);
    });
    inner.on('ping', (data) => this.emit('ping', data));
    inner.on('pong', (data) => this.emit('pong', data));
    inner.on('error', (error) => this.emitError(error));
    inner.on('close', (code, reason, wasClean) => {
      this.state = ReadyState.CLOSED;
      this.wasClean = wasClean;
      this.emit('close', code, Buffer.from(reason));
    });
  }

  private convert(data: Buffer): RawData {
    switch (this.binary) {
      case 'nodebuffer':
        return data;
      case 'arraybuffer':
        return data.buffer.slice(data.byteOffset, data.byteOffset + data.length) as ArrayBuffer;
      case 'fragments':
        // Switchyard reassembles messages in its core, so the "fragments" are the whole message.
        return [data];
      case 'blob':
        return new Blob([data]);
    }
  }

  private opened(inner: SwitchyardWebSocket): void {
    if (this.state !== ReadyState.CONNECTING) {
      // close() or terminate() came while connect() was resolving.
      inner.terminate();
      this.failed(new Error('abandoned'), new URL(this.url));
      return;
    }
    this.bind(inner);
    const response = inner.response;
    if (response !== undefined) {
      this.emit('upgrade', responseLike(response, response.statusCode === 200 ? '2.0' : '1.1'));
    }
    this.emit('open');
  }

  private failed(error: Error, url: URL): void {
    const abandoned = this.state === ReadyState.CLOSING;
    this.state = ReadyState.CLOSED;
    if (abandoned) {
      this.emitError(new Error('WebSocket was closed before the connection was established'));
    } else if (
      error instanceof UnexpectedResponseError &&
      this.listenerCount('unexpected-response') > 0
    ) {
      const response = Object.assign(Readable.from([Buffer.from(error.body)]), {
        ...responseLike(
          {
            statusCode: error.statusCode,
            statusText: error.statusText,
            headers: error.responseHeaders,
          },
          '1.1',
        ),
      });
      this.emit('unexpected-response', requestLike(url), response);
    } else {
      this.emitError(error);
    }
    this.emit('close', 1006, EMPTY);
  }

  private abandon(): void {
    this.state = ReadyState.CLOSING;
    this.abort?.abort();
  }

  /** ws emits 'error' only to listeners; with none it would crash the process, we do not. */
  private emitError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  /** The open connection, or null after calling back with an error (ws's sendAfterClose). */
  private whenOpen(callback: Callback | undefined): SwitchyardWebSocket | null {
    const state = this.readyState;
    if (state === ReadyState.CONNECTING) {
      throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    }
    if (state === ReadyState.OPEN && this.inner !== null) return this.inner;
    if (callback !== undefined) {
      const error = new Error(`WebSocket is not open: readyState ${state} (${STATE_NAMES[state]})`);
      process.nextTick(callback, error);
    }
    return null;
  }

  private control(
    kind: 'ping' | 'pong',
    data: WsData | Callback | undefined,
    mask: boolean | Callback | undefined,
    callback: Callback | undefined,
  ): void {
    if (typeof data === 'function') {
      callback = data as Callback;
      data = undefined;
    } else if (typeof mask === 'function') {
      callback = mask;
    }
    const inner = this.whenOpen(callback);
    if (inner === null) return;
    inner[kind](data === undefined ? EMPTY : toSendData(data));
    if (callback !== undefined) afterWrite(inner, callback);
  }
}

/** ws's send callback: `(error?) => void`. */
export type Callback = (error?: Error) => void;

/** Calls back once the data is on the socket (below the high-water mark) or the socket closed. */
function afterWrite(inner: SwitchyardWebSocket, callback: Callback): void {
  inner.drained().then(
    () => callback(),
    (error: Error) => callback(error),
  );
}

/** ws's data conversions: numbers as decimal text, arrays and objects through Buffer.from. */
function toSendData(data: WsData): SendData {
  if (typeof data === 'string' || data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    return data;
  }
  if (typeof data === 'number') return String(data);
  if (typeof Blob !== 'undefined' && data instanceof Blob) {
    throw new TypeError('switchyard/ws cannot send a Blob: send `await blob.arrayBuffer()`');
  }
  return Buffer.from(data as never);
}

function parseAddress(address: string | URL): URL {
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw new SyntaxError(`Invalid URL: ${String(address)}`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new SyntaxError(
      `The URL's protocol must be one of "ws:", "wss:", "http:" or "https:" (switchyard/ws has no "ws+unix:")`,
    );
  }
  if (url.hash !== '') throw new SyntaxError('The URL contains a fragment identifier');
  return url;
}

/** Translates ws client options to connect()'s. */
function clientOptions(
  url: URL,
  protocols: string[],
  options: ClientOptions,
  signal: AbortSignal,
): ConnectOptions {
  const { ws, rest } = splitOptions(
    options as Record<string, unknown>,
    WS_CLIENT_OPTIONS,
    'client',
  );
  const out: ConnectOptions = { logger: false, ...(rest as ConnectOptions), protocols, signal };
  // A caller's own signal still aborts, through ours.
  const own = rest.signal as AbortSignal | undefined;
  if (own !== undefined) {
    const controller = new AbortController();
    const forward = () => controller.abort(own.reason);
    if (own.aborted) forward();
    else own.addEventListener('abort', forward, { once: true });
    signal.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
    out.signal = controller.signal;
  }
  // Switchyard's client delivers text as strings unless told otherwise; ws gives Buffers.
  out.textAsBuffer = true;
  out.perMessageDeflate = mapDeflate(
    (ws.perMessageDeflate as ClientOptions['perMessageDeflate']) ?? true,
    setDeflateConcurrency,
  );
  if (ws.closeTimeout !== undefined) out.closeTimeout = Number(ws.closeTimeout);
  if (ws.maxPayload !== undefined) out.maxPayload = limit(ws.maxPayload);
  if (ws.maxFragments !== undefined) out.maxFragments = limit(ws.maxFragments);
  if (ws.handshakeTimeout !== undefined) out.handshakeTimeout = Number(ws.handshakeTimeout);
  if (ws.origin !== undefined) out.origin = String(ws.origin);
  if (ws.followRedirects === true) out.followRedirects = Number(ws.maxRedirects ?? 10);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries((ws.headers ?? {}) as Record<string, unknown>)) {
    if (value !== undefined)
      headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  // ws sends credentials from `auth` or from the URL as Basic authentication.
  const credentials =
    typeof ws.auth === 'string'
      ? ws.auth
      : url.username !== ''
        ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
        : null;
  if (credentials !== null && !hasHeader(headers, 'authorization')) {
    headers.Authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  if (Object.keys(headers).length > 0) out.headers = headers;
  const tlsOptions: Record<string, unknown> = { ...(out.tls ?? {}) };
  let anyTls = false;
  for (const name of TLS_OPTION_NAMES) {
    if (ws[name] !== undefined) {
      tlsOptions[name] = ws[name];
      anyTls = true;
    }
  }
  if (anyTls) out.tls = tlsOptions;
  return out;
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((n) => n.toLowerCase() === name);
}

function responseLike(
  response: {
    statusCode: number;
    statusText: string;
    headers: Readonly<Record<string, string>>;
  },
  httpVersion: string,
): HandshakeResponseLike {
  return {
    statusCode: response.statusCode,
    statusMessage: response.statusText,
    httpVersion,
    headers: { ...response.headers },
  };
}

function requestLike(url: URL): HandshakeRequestLike {
  return {
    method: 'GET',
    path: `${url.pathname}${url.search}`,
    host: url.host,
    destroy() {},
    abort() {},
  };
}
