/**
 * The Node.js WebSocket: binds a Duplex (a TCP or TLS socket) to a core {@link Connection}.
 *
 * Theory of operation. The socket's listeners are module-level functions that find their
 * WebSocket through a symbol property, so no closure is allocated per connection. On data, the
 * bytes go to the core, the core's events are dispatched to the application, and whatever the
 * application sent while handling them is written once, corked, at the end of the read callback.
 * Sends from outside a read callback are written at once. Timers exist only while needed: the
 * close timer while closing; heartbeats are driven by the server's single sweep, or by one timer
 * per client connection.
 */
import { captureRejectionSymbol, EventEmitter } from 'node:events';
import { Buffer, isUtf8 } from 'node:buffer';
import type { Duplex } from 'node:stream';
import {
  CONNECTION_DEFAULTS,
  Connection,
  NEED_DATA,
  PAUSED,
  ReadyState,
  type ConnectionEvent,
  type ReadyStateValue,
  type Role,
} from '../core/connection.js';
import {
  ConnectionError,
  LocalProtocolError,
  RemoteProtocolError,
  type SwitchyardError,
} from '../core/errors.js';
import { encodeCloseBody } from '../core/frame.js';
import { SHORT_TEXT, isValidUtf8, Utf8Validator } from '../core/utf8.js';
import { channels, type Logger } from './diagnostics.js';
import type { DeflateCodec, PerMessageDeflateConfig } from './deflate.js';

/** Data accepted by {@link WebSocket.send}. */
export type SendData = string | Buffer | ArrayBuffer | ArrayBufferView;

/** Options of {@link WebSocket.send}. */
export interface SendOptions {
  /** Send as a binary message. Default: true for bytes, false for strings. */
  binary?: boolean;
  /** Whether this is the last fragment of the message (RFC 6455 §5.4). Default true. */
  fin?: boolean;
  /**
   * Compress this message with permessage-deflate when it was negotiated. Default: when it is
   * at least `perMessageDeflate.threshold` bytes. Set on the first fragment; later fragments
   * of the message follow it.
   */
  compress?: boolean;
}

/** Options of `publish` (`server.publish`, `ws.publish`). */
export interface PublishOptions {
  /** Send as a binary message. Default: true for bytes, false for strings. */
  binary?: boolean;
}

/**
 * @internal What a server's topics (`PubSub`, src/pubsub/topics.ts) do for a connection. The
 * server hands its topics to each connection it accepts (`ws.topicHub`), so that this layer
 * calls the one above through this interface and never imports it.
 */
export interface TopicHub {
  subscribe(ws: WebSocket, topic: string): boolean;
  unsubscribe(ws: WebSocket, topic: string): boolean;
  publish(
    topic: string,
    data: SendData,
    options: PublishOptions | undefined,
    except: WebSocket,
  ): number;
  removeAll(ws: WebSocket): void;
}

/** Limits and timings of one WebSocket, shared by the server and the client. */
export interface WebSocketOptions {
  /** The largest message accepted, in bytes; bigger ones fail with 1009. Default 16 MiB. */
  maxPayload?: number;
  /**
   * The most frames one message may be split into; more fail with 1009. Default no limit:
   * fragments cost no memory of their own, and a message whose frame headers outweigh its
   * payload by more than 64 KiB (a flood of empty fragments) fails with 1009 whatever this is.
   */
  maxFragments?: number;
  /**
   * Outgoing bytes that may wait for a slow reader before the connection is failed with 1008
   * (`SWITCHYARD_ERR_BUFFER_FULL`). Default 64 MiB. With permessage-deflate, messages waiting
   * for the compressor count at their uncompressed size, as in `bufferedAmount`.
   */
  maxBufferedAmount?: number;
  /** `send()` returns false once `bufferedAmount` reaches this. Default 1 MiB. */
  highWaterMark?: number;
  /** How long to wait for the peer's close frame (and, for a client, its TCP close). Default 10 s. */
  closeTimeout?: number;
  /**
   * Received messages that may wait unread in the async iterator before reading from the socket
   * pauses (receive back-pressure). Default 64. Reading also pauses once the waiting messages
   * hold `maxPayload` bytes, so that compressed frames a few KiB each cannot inflate into 64
   * messages of `maxPayload` bytes; compressed messages not yet read stay compressed meanwhile.
   */
  maxQueuedMessages?: number;
  /** Deliver text messages as `Buffer` instead of `string` (saves a decode). Default false. */
  textAsBuffer?: boolean;
  /**
   * Pings and pongs the peer may send per second, counted together in fixed one-second
   * windows; one more fails the connection with 1008 (`SWITCHYARD_ERR_CONTROL_RATE`). Every
   * ping costs a pong that the peer need not read, so a flood would grow the outgoing buffer
   * and burn CPU unseen by the application. Default 100: heartbeats run at one per several
   * seconds, and RTT probes rarely exceed ten per second. `Infinity` turns the limit off.
   */
  maxControlFramesPerSecond?: number;
  /**
   * permessage-deflate (RFC 7692): `true` for the defaults, an object to tune it, false for
   * none. Default false (on `BrowserWebSocket`, true, as in browsers). A server accepts what
   * clients offer within these options; a client offers them. Every option and its memory
   * cost: docs/permessage-deflate.md.
   */
  perMessageDeflate?: boolean | PerMessageDeflateConfig;
}

/** The events of a {@link WebSocket}, for typed listeners. */
export interface WebSocketEvents {
  /** A message: text as a string (or Buffer with `textAsBuffer`), binary as a Buffer. */
  message: [data: string | Buffer, isBinary: boolean];
  ping: [data: Buffer];
  pong: [data: Buffer];
  /** The connection is closed: the code and reason the peer sent, or 1006 when it vanished. */
  close: [code: number, reason: string, wasClean: boolean];
  /** A protocol violation by the peer, a timeout, or a failed write. Followed by `close`. */
  error: [error: SwitchyardError | Error];
  /** `bufferedAmount` dropped below `highWaterMark` after `send()` returned false. */
  drain: [];
}

/** @internal the symbol through which socket listeners find their WebSocket. */
export const kWebSocket = Symbol('switchyard.websocket');

/** The defaults of {@link WebSocketOptions} that the core does not hold. */
export const WEBSOCKET_DEFAULTS = {
  maxBufferedAmount: 64 * 1024 * 1024,
  highWaterMark: 1024 * 1024,
  closeTimeout: 10_000,
  maxQueuedMessages: 64,
  maxControlFramesPerSecond: 100,
} as const;

const EMPTY_BUFFER = Buffer.alloc(0);
/**
 * The UTF-8 state of a text message being sent in fragments that were given as bytes: RFC 6455
 * asks the whole message to be UTF-8 (§5.6, §8.1), so a fragment may end inside a character
 * (a file read in chunks, `sendStream`) and the next one finishes it. Kept outside the
 * `WebSocket`, so that only a connection in the middle of such a message pays for it.
 */
const openTexts = new WeakMap<WebSocket, Utf8Validator>();
/**
 * The receiver's allocator for messages it assembles (one that spans reads, or is fragmented):
 * it writes every byte before handing the message out, so the zero-fill of `new Uint8Array` is
 * wasted work (for a 64 KiB message, about as long as unmasking it). Not pooled: a small message
 * must not keep a shared 8 KiB slab alive.
 */
const allocateUnzeroed = (length: number): Uint8Array => Buffer.allocUnsafeSlow(length);

/**
 * The listener table of a WebSocket. EventEmitter makes its own with `{ __proto__: null }`, an
 * object V8 keeps in dictionary mode: about 180 bytes per connection, idle or not. An instance
 * of this constructor looks events up the same way (its prototype has no prototype, so an event
 * named `toString` finds nothing) but is a fast object, a few fields wide.
 */
const ListenerTable = function ListenerTable() {} as unknown as new () => object;
ListenerTable.prototype = Object.create(null) as object;

/**
 * What a WebSocket reads from its options and never changes. The connections of one server
 * share one such object instead of carrying eight fields each.
 */
interface Settings {
  readonly maxBufferedAmount: number;
  readonly highWaterMark: number;
  readonly closeTimeout: number;
  readonly maxQueued: number;
  readonly maxQueuedBytes: number;
  readonly textAsBuffer: boolean;
  readonly maxControlRate: number;
  readonly logger: Logger | null;
}

/** The last settings made for each options object (a server passes the same one every time). */
const settingsCache = new WeakMap<WebSocketOptions, Settings>();

/**
 * The settings of a new connection. Options are read afresh each time, as they always were, so
 * an options object changed after a server started still takes effect: the cached settings are
 * reused only when every value is the same.
 */
function settingsFor(o: WebSocketOptions, logger: Logger | null): Settings {
  const maxBufferedAmount = o.maxBufferedAmount ?? WEBSOCKET_DEFAULTS.maxBufferedAmount;
  const highWaterMark = o.highWaterMark ?? WEBSOCKET_DEFAULTS.highWaterMark;
  const closeTimeout = o.closeTimeout ?? WEBSOCKET_DEFAULTS.closeTimeout;
  const maxQueued = o.maxQueuedMessages ?? WEBSOCKET_DEFAULTS.maxQueuedMessages;
  const maxQueuedBytes = o.maxPayload ?? CONNECTION_DEFAULTS.maxPayload;
  const textAsBuffer = o.textAsBuffer ?? false;
  const maxControlRate =
    o.maxControlFramesPerSecond ?? WEBSOCKET_DEFAULTS.maxControlFramesPerSecond;
  const cached = settingsCache.get(o);
  if (
    cached !== undefined &&
    cached.maxBufferedAmount === maxBufferedAmount &&
    cached.highWaterMark === highWaterMark &&
    cached.closeTimeout === closeTimeout &&
    cached.maxQueued === maxQueued &&
    cached.maxQueuedBytes === maxQueuedBytes &&
    cached.textAsBuffer === textAsBuffer &&
    cached.maxControlRate === maxControlRate &&
    cached.logger === logger
  ) {
    return cached;
  }
  const settings: Settings = {
    maxBufferedAmount,
    highWaterMark,
    closeTimeout,
    maxQueued,
    maxQueuedBytes,
    textAsBuffer,
    maxControlRate,
    logger,
  };
  settingsCache.set(o, settings);
  return settings;
}

// The boolean state of a WebSocket, as bits of one field (see the accessors in the class).
const F_AWAITING_PONG = 1;
const F_PREFIX_OPEN = 2;
const F_DISPATCHING = 4;
const F_NEED_DRAIN = 8;
const F_CLOSED = 16;
const F_PAUSED_BY_QUEUE = 32;
const F_PAUSED_BY_USER = 64;
const F_LISTENER_FAILED = 128;
/** A text message sent as bytes in fragments is open: its UTF-8 state is in `openTexts`. */
const F_TEXT_OPEN = 256;

type Queued = { data: string | Buffer; isBinary: boolean; size: number };

/**
 * The server's answer to a client's opening handshake, as {@link WebSocket.response} shows it:
 * the 101 Switching Protocols over HTTP/1.1, the 200 to the extended CONNECT over HTTP/2.
 */
export interface HandshakeResponse {
  /** 101 over HTTP/1.1; 200 over HTTP/2 (RFC 8441 §5). */
  readonly statusCode: number;
  /** The reason phrase; '' over HTTP/2, which has none (RFC 9113 §8.3.2). */
  readonly statusText: string;
  /**
   * The response headers, names in lower case, repeated headers joined with ", " (as
   * `UnexpectedResponseError.responseHeaders`); no HTTP/2 pseudo-headers.
   */
  readonly headers: Readonly<Record<string, string>>;
}

/** A message yielded by `for await (const message of ws)`. */
export interface IncomingMessageData {
  data: string | Buffer;
  isBinary: boolean;
}

/**
 * One WebSocket connection, server side (from `WebSocketServer`) or client side (from `connect`).
 *
 * @example
 * ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
 */
export class WebSocket extends EventEmitter<WebSocketEvents> {
  static readonly CONNECTING = ReadyState.CONNECTING;
  static readonly OPEN = ReadyState.OPEN;
  static readonly CLOSING = ReadyState.CLOSING;
  static readonly CLOSED = ReadyState.CLOSED;

  /** The negotiated subprotocol, or '' when none. */
  readonly protocol: string;
  /** The negotiated extensions, as sent in Sec-WebSocket-Extensions, or ''. */
  readonly extensions: string;
  /** The URL: the one connected to (client), or the request's (server). */
  readonly url: string;
  /** Whatever the server's upgrade hook returned as `context` (for example the user). */
  context: unknown;
  /**
   * Client side: the server's answer to the opening handshake, for headers it set (a session
   * id, a hook's `headers`). `undefined` on connections a server accepted.
   *
   * @example
   * const ws = await connect(url);
   * console.log(ws.response?.headers['x-session']);
   */
  readonly response: HandshakeResponse | undefined;

  /** @internal */ readonly socket: Duplex;
  /** @internal */ readonly conn: Connection;
  /** @internal last time any byte arrived, for the heartbeat. */ lastSeen = 0;
  /** @internal the server's topics (src/pubsub); null on a client. */
  topicHub: TopicHub | null = null;
  /** @internal the topics this connection is subscribed to, kept by its {@link TopicHub}. */
  subscriptions: Set<string> | null = null;
  /**
   * @internal the resume exchange (core/resume.ts): positions the client presented, consumed
   * as it subscribes; null when the exchange was not agreed.
   */
  resumePositions: Map<string, number> | null = null;
  /** @internal a header put before every message `send` starts (the resume exchange's `d`). */
  messagePrefix: Uint8Array | null = null;

  /** Limits and the logger, shared with the other connections made with the same options. */
  private readonly settings: Settings;
  /** The booleans of this connection, one bit each (F_*): see the accessors below. */
  private flags = 0;
  /** The control-frame rate window: when it began (ms) and how many pings/pongs it saw. */
  private controlWindowStart = 0;
  private controlCount = 0;
  private closeTimer: NodeJS.Timeout | null = null;
  private queue: Queued[] | null = null;
  /** Bytes of the messages in `queue`; reading pauses past `maxQueuedBytes`. */
  private queuedBytes = 0;
  /** Calls of the async iterator's `next()` waiting for a message; null when none ever did. */
  private waiters: Array<(value: IteratorResult<IncomingMessageData>) => void> | null = null;
  private errorEmitted: Error | null = null;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  // permessage-deflate (see sendCompressed): the codec, sends waiting behind a compression,
  // and whether the message being sent in fragments is compressed (null: none open).
  private readonly deflate: DeflateCodec | null;
  private sendQueue: Array<() => void> | null = null;
  private deflatePendingBytes = 0;
  private closeQueued = false;
  private compressingMessage: boolean | null = null;
  private pausedByInflate = false;
  private deflating = false;

  /** @internal created by the server or `connect`, never by users. */
  constructor(
    socket: Duplex,
    role: Role,
    init: {
      protocol: string;
      extensions: string;
      url: string;
      head: Uint8Array | null;
      options: WebSocketOptions;
      logger: Logger | null;
      context?: unknown;
      /** The handshake response (client side only). */
      response?: HandshakeResponse;
      /** The permessage-deflate codec, when the extension was negotiated. */
      deflate?: DeflateCodec | null;
    },
  ) {
    // A listener that returns a promise (an async listener) and rejects is handled like one
    // that throws: see [captureRejectionSymbol] below.
    super({ captureRejections: true });
    (this as unknown as { _events: object })._events = new ListenerTable();
    const o = init.options;
    this.socket = socket;
    this.protocol = init.protocol;
    this.extensions = init.extensions;
    this.url = init.url;
    this.context = init.context;
    this.response = init.response;
    this.settings = settingsFor(o, init.logger);
    this.deflate = init.deflate ?? null;
    this.conn = new Connection({
      // permessage-deflate: RSV1 is allowed on first frames only when it was negotiated.
      compression: this.deflate !== null,
      role,
      maxPayload: o.maxPayload,
      maxFragments: o.maxFragments,
      isUtf8,
      allocate: allocateUnzeroed,
    });
    this.lastSeen = Date.now();

    const s = socket as Duplex & {
      [kWebSocket]?: WebSocket;
      setNoDelay?: (noDelay: boolean) => void;
      setTimeout?: (ms: number) => void;
    };
    s[kWebSocket] = this;
    // Frames are written whole and batched by cork; Nagle would only add latency.
    s.setNoDelay?.(true);
    // The heartbeat, not an idle socket timeout, decides when a quiet peer is gone.
    s.setTimeout?.(0);
    socket.on('data', socketOnData);
    socket.on('close', socketOnClose);
    socket.on('end', socketOnEnd);
    socket.on('error', socketOnError);
    socket.on('drain', socketOnDrain);
    channels.open.publish({ websocket: this, role });
    if (init.head !== null && init.head.length > 0) {
      // Bytes that arrived with the handshake belong to the first frames (h11's trailing data).
      // They are delivered after the caller has had a chance to attach listeners (an awaited
      // connect() resumes in a microtask), with the socket paused so that order is kept.
      socket.pause();
      setImmediate(deliverHead, this, init.head);
    }
  }

  // ---- settings and flags, read and written as if they were fields ---------------------------

  private get maxBufferedAmount(): number {
    return this.settings.maxBufferedAmount;
  }
  private get highWaterMark(): number {
    return this.settings.highWaterMark;
  }
  private get closeTimeoutMs(): number {
    return this.settings.closeTimeout;
  }
  private get maxQueued(): number {
    return this.settings.maxQueued;
  }
  /** Bytes of unread messages past which reading pauses (see `queuedBytes`). */
  private get maxQueuedBytes(): number {
    return this.settings.maxQueuedBytes;
  }
  private get textAsBuffer(): boolean {
    return this.settings.textAsBuffer;
  }
  private get maxControlRate(): number {
    return this.settings.maxControlRate;
  }
  private get logger(): Logger | null {
    return this.settings.logger;
  }

  private setFlag(flag: number, on: boolean): void {
    this.flags = on ? this.flags | flag : this.flags & ~flag;
  }

  /** @internal true while a heartbeat ping is unanswered. */
  get awaitingPong(): boolean {
    return (this.flags & F_AWAITING_PONG) !== 0;
  }
  set awaitingPong(on: boolean) {
    this.setFlag(F_AWAITING_PONG, on);
  }
  /** A message sent with `fin: false` is open: its next fragments get no prefix. */
  /** A text message of byte fragments is open (its validator is in `openTexts`). */
  private get textOpen(): boolean {
    return (this.flags & F_TEXT_OPEN) !== 0;
  }
  private set textOpen(on: boolean) {
    this.setFlag(F_TEXT_OPEN, on);
  }
  private get prefixOpen(): boolean {
    return (this.flags & F_PREFIX_OPEN) !== 0;
  }
  private set prefixOpen(on: boolean) {
    this.setFlag(F_PREFIX_OPEN, on);
  }
  /** Events are being dispatched: sends are written once, at the end. */
  private get dispatching(): boolean {
    return (this.flags & F_DISPATCHING) !== 0;
  }
  private set dispatching(on: boolean) {
    this.setFlag(F_DISPATCHING, on);
  }
  private get needDrain(): boolean {
    return (this.flags & F_NEED_DRAIN) !== 0;
  }
  private set needDrain(on: boolean) {
    this.setFlag(F_NEED_DRAIN, on);
  }
  private get closed(): boolean {
    return (this.flags & F_CLOSED) !== 0;
  }
  private set closed(on: boolean) {
    this.setFlag(F_CLOSED, on);
  }
  private get pausedByQueue(): boolean {
    return (this.flags & F_PAUSED_BY_QUEUE) !== 0;
  }
  private set pausedByQueue(on: boolean) {
    this.setFlag(F_PAUSED_BY_QUEUE, on);
  }
  private get pausedByUser(): boolean {
    return (this.flags & F_PAUSED_BY_USER) !== 0;
  }
  private set pausedByUser(on: boolean) {
    this.setFlag(F_PAUSED_BY_USER, on);
  }
  private get listenerFailed(): boolean {
    return (this.flags & F_LISTENER_FAILED) !== 0;
  }
  private set listenerFailed(on: boolean) {
    this.setFlag(F_LISTENER_FAILED, on);
  }

  /** CONNECTING, OPEN, CLOSING or CLOSED, as in browsers. */
  get readyState(): ReadyStateValue {
    if (this.closed) return ReadyState.CLOSED;
    const state = this.conn.readyState;
    return state === ReadyState.CLOSED ? ReadyState.CLOSING : state;
  }

  /**
   * Bytes passed to `send()` (with framing) that have not reached the network yet, as in
   * browsers: what the socket still holds plus what is queued for it.
   */
  get bufferedAmount(): number {
    return this.socket.writableLength + this.conn.pendingBytes + this.deflatePendingBytes;
  }

  /** Whether the socket is TLS. */
  get secure(): boolean {
    // A TLS socket says so itself; an HTTP/2 stream through its session (RFC 8441 over h2).
    const socket = this.socket as { encrypted?: boolean; session?: { encrypted?: boolean } };
    return socket.encrypted === true || socket.session?.encrypted === true;
  }

  // ---- topics (server connections; see src/pubsub/topics.ts and docs/pubsub.md) ------------

  /**
   * Subscribes this connection to `topic`: it gets what `server.publish` and other connections'
   * `publish` send there, until `unsubscribe` or until it closes. Returns false when it was
   * already subscribed, or is closing.
   * @throws LocalProtocolError on a client connection, or for a topic that is not a string.
   */
  subscribe(topic: string): boolean {
    return hubOf(this).subscribe(this, topic);
  }

  /** Ends a subscription; returns false when there was none. */
  unsubscribe(topic: string): boolean {
    return this.topicHub === null ? false : this.topicHub.unsubscribe(this, topic);
  }

  /** The topics this connection is subscribed to (empty once it closed). */
  get topics(): ReadonlySet<string> {
    return this.subscriptions ?? new Set<string>();
  }

  /**
   * Publishes to every subscriber of `topic`, on this server and (through the backplane) on the
   * others, except this connection. Returns the number of local subscribers written to.
   * @throws LocalProtocolError on a client connection.
   */
  publish(topic: string, data: SendData, options?: PublishOptions): number {
    return hubOf(this).publish(topic, data, options, this);
  }

  /** @internal queues a message framed once for many connections (pub/sub fan-out). */
  sendFramed(chunks: readonly Uint8Array[], rsv1 = false): void {
    // Behind a message being compressed, to keep messages in order (permessage-deflate); the
    // bytes count in bufferedAmount while they wait.
    if (this.sendQueue !== null) {
      let bytes = 0;
      for (const chunk of chunks) bytes += chunk.length;
      this.deflatePendingBytes += bytes;
      this.queueBehindDeflate(() => {
        this.deflatePendingBytes -= bytes;
        this.conn.sendFramed(chunks, rsv1);
      });
      return;
    }
    // Not written yet: the fan-out calls flush() once per tick, so that a burst of publishes
    // costs each subscriber one vectored write instead of one write per message.
    this.conn.sendFramed(chunks, rsv1);
  }

  /**
   * Sends a message. Strings go as text, bytes as binary unless `options.binary` says otherwise.
   * Returns false when `bufferedAmount` has reached `highWaterMark`: wait for `drain` (or
   * `await ws.drained()`) before sending more.
   * @throws LocalProtocolError when the connection is closing or closed.
   */
  send(data: SendData, options?: SendOptions): boolean {
    const fin = options?.fin ?? true;
    if (this.messagePrefix !== null) {
      // The resume exchange marks messages sent to this connection alone; the header goes
      // before the first fragment only.
      if (!this.prefixOpen) {
        const binary =
          typeof data === 'string' ? options?.binary === true : options?.binary !== false;
        const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : toBytes(data);
        data = Buffer.concat([this.messagePrefix, body]);
        options = { ...options, binary };
      }
      this.prefixOpen = !fin;
    }
    if (typeof data === 'string') {
      const bytes = Buffer.from(data, 'utf8');
      // A string is whole characters, but it may follow bytes that left one unfinished.
      if (this.textOpen && options?.binary !== true) this.checkTextFragment(bytes, fin);
      if (this.deflate !== null)
        this.sendMessageData(bytes, options?.binary === true, fin, options);
      else if (options?.binary === true) this.conn.sendBinary(bytes, fin);
      else this.conn.sendText(bytes, fin);
    } else {
      const bytes = toBytes(data);
      if (options?.binary === false) {
        // Text given as bytes: it must be UTF-8, or the peer would fail us with 1007. Short
        // texts are checked in JS, as the receiver does: the native call costs more than that.
        if (fin && !this.textOpen) {
          if (!(bytes.length < SHORT_TEXT ? isValidUtf8(bytes) : isUtf8(bytes))) {
            throw new LocalProtocolError(
              'SWITCHYARD_ERR_INVALID_ARGUMENT',
              'Text messages must be valid UTF-8',
            );
          }
        } else this.checkTextFragment(bytes, fin);
        if (this.deflate !== null) this.sendMessageData(bytes, false, fin, options);
        else this.conn.sendText(bytes, fin);
      } else if (this.deflate !== null) {
        this.sendMessageData(bytes, true, fin, options);
      } else {
        this.conn.sendBinary(bytes, fin);
      }
    }
    return this.afterSend();
  }

  // ---- permessage-deflate: sending ---------------------------------------------------------
  //
  // A compressed message waits for zlib; whatever is sent after it (messages, pings, pongs, the
  // close frame) waits in `sendQueue` behind it, in order, and goes out when it is done.

  /** Sends one message or fragment on a connection that negotiated permessage-deflate. */
  private sendMessageData(
    bytes: Uint8Array,
    binary: boolean,
    fin: boolean,
    options: SendOptions | undefined,
  ): void {
    const codec = this.deflate as DeflateCodec;
    this.assertCanQueue('send a message');
    // Failed for a full buffer (the socket is destroyed, 'close' is on its way): nothing more
    // is kept, as nothing more would be written without compression.
    if (this.socket.destroyed) return;
    const first = this.compressingMessage === null;
    let compress = this.compressingMessage;
    // The decision is taken on a message's first fragment; RSV1 marks the whole message.
    compress ??= options?.compress ?? bytes.length >= codec.threshold;
    this.compressingMessage = fin ? null : compress;
    if (!compress) {
      if (this.sendQueue === null) this.sendFrame(bytes, binary, fin, false);
      else {
        this.deflatePendingBytes += bytes.length;
        this.sendQueue.push(() => {
          this.deflatePendingBytes -= bytes.length;
          this.sendFrame(bytes, binary, fin, false);
        });
      }
      return;
    }
    // A small whole message with nothing ahead of it is compressed here and now (see
    // DeflateCodec.deflateSync): no thread-pool round trip, nothing to queue behind.
    if (this.sendQueue === null && first && fin) {
      const now = codec.deflateSync(bytes);
      if (now !== null) {
        this.sendFrame(now.payload, binary, fin, now.compressed);
        return;
      }
    }
    this.deflatePendingBytes += bytes.length;
    const job = () => {
      this.deflating = true;
      codec.deflate(
        bytes,
        fin,
        (payload, compressed) => {
          this.deflating = false;
          if (this.closed || payload === null || this.socket.destroyed) {
            // Whatever waited is dropped with the connection.
            this.sendQueue = null;
            this.deflatePendingBytes = 0;
            return;
          }
          this.deflatePendingBytes -= bytes.length;
          // RFC 7692 §6: RSV1 on the first frame; the core clears it on continuation frames.
          // An unfragmented message that did not shrink goes as it is, without RSV1.
          this.sendFrame(payload, binary, fin, compressed);
          this.runSendQueue();
        },
        first && fin,
      );
    };
    if (this.sendQueue === null) {
      this.sendQueue = [];
      job();
    } else this.sendQueue.push(job);
  }

  /** Hands a frame to the core; a connection that closed meanwhile drops it, as browsers do. */
  private sendFrame(bytes: Uint8Array, binary: boolean, fin: boolean, rsv1: boolean): void {
    try {
      if (binary) this.conn.sendBinary(bytes, fin, rsv1);
      else this.conn.sendText(bytes, fin, rsv1);
    } catch (error) {
      if (!(error instanceof LocalProtocolError) || this.sendQueue === null) throw error;
    }
  }

  /** Runs what waited behind a compression, up to the next compression. */
  private runSendQueue(): void {
    const queue = this.sendQueue;
    while (queue !== null && queue.length > 0 && !this.deflating && !this.closed) {
      (queue.shift() as () => void)();
    }
    if (!this.deflating) this.sendQueue = null;
    if (!this.dispatching) this.flush();
    if (this.needDrain && this.bufferedAmount < this.highWaterMark) {
      this.needDrain = false;
      this.callUser('drain');
    }
  }

  /** Throws as the core would when nothing more may be sent (checked at the call, not later). */
  private assertCanQueue(what: string): void {
    if (this.sendQueue === null) return;
    if (this.closeQueued || this.closed || this.conn.readyState !== ReadyState.OPEN) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_STATE',
        `Cannot ${what}: the connection is ${this.closed ? 'closed' : 'closing'}`,
      );
    }
  }

  /** Queues `action` behind a compression in progress; returns false when none is. */
  private queueBehindDeflate(action: () => void): boolean {
    if (this.sendQueue === null) return false;
    this.sendQueue.push(() => {
      try {
        action();
      } catch (error) {
        if (!(error instanceof LocalProtocolError)) throw error;
      }
    });
    return true;
  }

  /**
   * Sends a whole message from a stream of chunks, each as one fragment (RFC 6455 §5.4),
   * waiting for `drain` between chunks so memory stays bounded.
   */
  async sendStream(
    source: AsyncIterable<SendData> | Iterable<SendData>,
    options: { binary?: boolean } = {},
  ): Promise<void> {
    const binary = options.binary ?? true;
    let previous: SendData | null = null;
    for await (const chunk of source) {
      if (previous !== null) {
        if (!this.send(previous, { binary, fin: false })) await this.drained();
      }
      previous = chunk;
    }
    this.send(previous ?? EMPTY_BUFFER, { binary, fin: true });
    await this.drained();
  }

  /** Sends a ping (payload at most 125 bytes). */
  ping(data: SendData = EMPTY_BUFFER): void {
    this.conn.sendPing(toPayload(data));
    this.afterSend();
  }

  /** Sends a pong (payload at most 125 bytes): a one-way heartbeat. */
  pong(data: SendData = EMPTY_BUFFER): void {
    this.conn.sendPong(toPayload(data));
    this.afterSend();
  }

  /**
   * Starts the closing handshake (RFC 6455 §7.1.2): sends a close frame with the code (1000,
   * 1001–1003, 1007–1014 or 3000–4999) and a reason of at most 123 bytes, then waits for the
   * peer's close frame (at most `closeTimeout`, after which the socket is destroyed).
   */
  close(code?: number, reason?: string): void {
    if (this.closed || this.conn.readyState !== ReadyState.OPEN) return;
    if (this.sendQueue !== null) {
      // Behind a message being compressed: the close frame must not overtake it. The code and
      // reason are checked now, so that misuse still throws here.
      if (this.closeQueued) return;
      encodeCloseBody(code, reason);
      this.closeQueued = true;
      this.queueBehindDeflate(() => {
        if (this.closed || this.conn.readyState !== ReadyState.OPEN) return;
        this.conn.sendClose(code, reason);
        this.armCloseTimer();
      });
      return;
    }
    this.conn.sendClose(code, reason);
    this.flush();
    this.armCloseTimer();
  }

  /** Destroys the socket at once, without a closing handshake (the peer sees 1006). */
  terminate(): void {
    if (this.closed) return;
    this.socket.destroy();
  }

  /** @internal */
  resumeAfterHead(): void {
    if (!this.pausedByUser && !this.pausedByQueue && !this.pausedByInflate && !this.closed) {
      this.socket.resume();
    }
  }

  /** Stops reading from the socket until `resume()` (TCP back-pressure reaches the peer). */
  pause(): void {
    this.pausedByUser = true;
    this.socket.pause();
  }

  /** Resumes reading after `pause()`. */
  resume(): void {
    this.pausedByUser = false;
    if (!this.pausedByQueue && !this.pausedByInflate) this.socket.resume();
  }

  /** Resolves when `bufferedAmount` is below `highWaterMark` (at once if it is already). */
  drained(): Promise<void> {
    if (this.bufferedAmount < this.highWaterMark || this.closed) return Promise.resolve();
    this.needDrain = true;
    return new Promise((resolve) => {
      const done = () => {
        this.off('drain', done);
        this.off('close', done);
        resolve();
      };
      this.on('drain', done);
      this.on('close', done);
    });
  }

  /**
   * Iterates over incoming messages. While more than `maxQueuedMessages` wait unread, reading
   * from the socket pauses. The iteration ends when the connection closes.
   */
  [Symbol.asyncIterator](): AsyncIterator<IncomingMessageData> {
    if (this.queue === null) this.queue = [];
    return {
      next: () => {
        const queue = this.queue as Queued[];
        const item = queue.shift();
        if (item !== undefined) {
          this.queuedBytes -= item.size;
          if (
            this.pausedByQueue &&
            queue.length <= this.maxQueued / 2 &&
            this.queuedBytes <= this.maxQueuedBytes / 2
          ) {
            this.resumeFromQueue();
          }
          return Promise.resolve({
            value: { data: item.data, isBinary: item.isBinary },
            done: false,
          });
        }
        if (this.closed) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiters ??= []).push(resolve));
      },
      return: () => {
        this.queue = null;
        this.queuedBytes = 0;
        this.flushWaiters();
        if (this.pausedByQueue) this.resumeFromQueue();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  /**
   * The iterator caught up: the events the core held back meanwhile are dispatched (unless
   * that is already under way further up the stack), then the socket is read again.
   */
  private resumeFromQueue(): void {
    this.pausedByQueue = false;
    if (this.closed) return;
    if (!this.dispatching && !this.pausedByInflate) {
      this.dispatching = true;
      try {
        this.drainEvents();
      } finally {
        this.dispatching = false;
      }
      this.flush();
    }
    if (!this.pausedByUser && !this.pausedByInflate && !this.pausedByQueue && !this.closed) {
      this.socket.resume();
    }
  }

  // ---- internals -----------------------------------------------------------------------------

  /** @internal bytes from the socket. */
  onData(chunk: Uint8Array): void {
    if (this.closed) return;
    this.lastSeen = Date.now();
    this.awaitingPong = false;
    this.conn.receiveData(chunk);
    this.dispatching = true;
    try {
      this.drainEvents();
    } finally {
      this.dispatching = false;
    }
    this.flush();
  }

  private drainEvents(): void {
    for (;;) {
      // Unread messages fill the iterator: leave the rest in the core, still compressed, so
      // that a few small frames cannot inflate into many maxPayload-sized messages held here.
      if (this.pausedByQueue) return;
      const event = this.conn.nextEvent();
      if (event === NEED_DATA || event === PAUSED) return;
      this.dispatch(event);
      if (this.closed) return;
    }
  }

  private dispatch(event: ConnectionEvent): void {
    switch (event.type) {
      case 'message': {
        const buf = asBuffer(event.data);
        if (event.binary) this.deliver(buf, true, buf.length);
        else this.deliver(this.textAsBuffer ? buf : buf.toString('utf8'), false, buf.length);
        return;
      }
      case 'ping':
        if (this.controlRateExceeded()) return;
        this.callUser('ping', asBuffer(event.data));
        return;
      case 'pong':
        if (this.controlRateExceeded()) return;
        this.callUser('pong', asBuffer(event.data));
        return;
      case 'close':
        // The reply, when due, is queued by the core; a client waits for the server's TCP close.
        this.armCloseTimer();
        return;
      case 'error':
        this.reportError(event.error);
        return;
      case 'compressed':
        this.inflateMessage(event.binary, event.data);
        return;
    }
  }

  /**
   * permessage-deflate, receiving: the core is PAUSED until the message is inflated, and the
   * socket is paused too, so that bytes do not pile up in the core meanwhile. Messages keep
   * their order: the next event is only read once this one is delivered.
   */
  private inflateMessage(binary: boolean, pieces: Uint8Array[]): void {
    const codec = this.deflate;
    if (codec === null) {
      // The core only yields this when compression was negotiated; fail safely if not.
      this.conn.receiveInflated(
        new RemoteProtocolError('SWITCHYARD_ERR_RESERVED_BITS', 'Compression not negotiated', {
          closeCode: 1002,
        }),
      );
      return;
    }
    // A small message is inflated here and now (see DeflateCodec.inflateSync); its event is
    // dispatched in place, and the loop that called us goes on with the next one.
    const now = codec.inflateSync(pieces);
    if (now !== null) {
      this.dispatch(
        this.conn.receiveInflated(now instanceof RemoteProtocolError ? now : { binary, data: now }),
      );
      return;
    }
    if (!this.pausedByInflate) {
      this.pausedByInflate = true;
      this.socket.pause();
    }
    codec.inflate(pieces, (result) => this.onInflated(binary, result));
  }

  private onInflated(binary: boolean, result: Buffer | RemoteProtocolError): void {
    if (this.closed) return;
    this.pausedByInflate = false;
    const event = this.conn.receiveInflated(
      result instanceof RemoteProtocolError ? result : { binary, data: result },
    );
    this.dispatching = true;
    try {
      this.dispatch(event);
      if (!this.closed) this.drainEvents();
    } finally {
      this.dispatching = false;
    }
    this.flush();
    if (!this.pausedByInflate && !this.pausedByUser && !this.pausedByQueue && !this.closed) {
      this.socket.resume();
    }
  }

  /**
   * Counts one ping or pong against `maxControlFramesPerSecond`; past it, fails the connection
   * with 1008 and returns true. The clock is `lastSeen`, read once per socket read, so a flood
   * that arrives in one chunk costs no extra clock reads. The core has no clock, which is why
   * this limit lives here (RFC 6455 §10.4: "implementations SHOULD impose implementation-
   * and/or platform-specific limitations" on what a peer can make them spend).
   */
  private controlRateExceeded(): boolean {
    if (this.lastSeen - this.controlWindowStart >= 1000) {
      this.controlWindowStart = this.lastSeen;
      this.controlCount = 0;
    }
    if (++this.controlCount <= this.maxControlRate) return false;
    const error = new RemoteProtocolError(
      'SWITCHYARD_ERR_CONTROL_RATE',
      `The peer sent more than ${this.maxControlRate} pings and pongs in one second`,
      // RFC 6455 §7.4.1: 1008, "a message that violates its policy".
      { closeCode: 1008 },
    );
    this.conn.fail(error);
    this.reportError(error);
    return true;
  }

  private deliver(data: string | Buffer, isBinary: boolean, size: number): void {
    if (this.queue !== null) {
      const waiter = this.waiters?.shift();
      if (waiter !== undefined) waiter({ value: { data, isBinary }, done: false });
      else {
        this.queue.push({ data, isBinary, size });
        this.queuedBytes += size;
        if (
          (this.queue.length >= this.maxQueued || this.queuedBytes >= this.maxQueuedBytes) &&
          !this.pausedByQueue
        ) {
          this.pausedByQueue = true;
          this.socket.pause();
        }
      }
    }
    this.callUser('message', data, isBinary);
  }

  /**
   * Calls listeners; an exception from user code must not take the server down. A rejected
   * promise returned by an async listener reaches {@link onListenerError} too, through
   * EventEmitter's `captureRejections`.
   */
  private callUser<K extends 'message' | 'ping' | 'pong' | 'drain'>(
    name: K,
    ...args: WebSocketEvents[K]
  ): void {
    try {
      (this.emit as (n: string, ...a: unknown[]) => boolean)(name, ...args);
    } catch (error) {
      this.onListenerError(name, error);
    }
  }

  /** @internal EventEmitter's hook for a listener's rejected promise (`captureRejections`). */
  override [captureRejectionSymbol]<K>(
    error: Error,
    event: keyof WebSocketEvents | K,
    ..._args: K extends keyof WebSocketEvents ? WebSocketEvents[K] : never
  ): void {
    this.onListenerError(String(event), error);
  }

  /**
   * @internal A listener threw or its promise rejected: a bug in the application, not in the
   * peer. It is logged once per connection (a peer must not be able to flood the log by sending
   * more messages to a broken handler), and the connection is closed with 1011 (RFC 6455
   * §7.4.1: an unexpected condition); other connections are not affected.
   */
  onListenerError(name: string, error: unknown): void {
    channels.error.publish({ websocket: this, error, stage: name });
    if (!this.listenerFailed) {
      this.listenerFailed = true;
      const action =
        this.closed || this.conn.readyState !== ReadyState.OPEN ? '' : '; closing with 1011';
      this.logger?.error(`uncaught exception in a '${name}' listener${action}`, { error });
    }
    if (this.closed || this.conn.readyState !== ReadyState.OPEN) return;
    try {
      this.close(1011, 'Internal error');
    } catch {
      // Already closing behind a compression: the close frame is queued.
    }
  }

  private reportError(error: SwitchyardError | Error): void {
    if (this.errorEmitted !== null) return;
    this.errorEmitted = error;
    const code = (error as SwitchyardError).code;
    this.logger?.warn(`websocket failed: ${error.message}`, { code, url: this.url });
    channels.error.publish({ websocket: this, error, stage: 'protocol' });
    // An 'error' with no listener must not crash the process (a peer's violation is not a bug).
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', error);
      } catch (listenerError) {
        this.onListenerError('error', listenerError);
      }
    }
  }

  /**
   * Writes what the core queued, once, corked; ends the socket when the core says so. `memo`
   * (the fan-out's, for one pass over its subscribers) lets connections whose queues hold the
   * same chunks write the same joined bytes instead of joining them again.
   * @internal
   */
  flush(memo?: JoinMemo): void {
    if (this.closed) return;
    const chunks = this.conn.dataToSend();
    const n = chunks.length;
    if (n === 1) this.socket.write(asBuffer(chunks[0]));
    else if (n > 1) writeJoined(this.socket, chunks, memo);
    if (this.conn.closeTransport) {
      if (this.conn.role === 'server' || this.conn.error !== null) {
        // RFC 6455 §7.1.1: the server closes TCP first; after a failure, either side may.
        if (!this.socket.writableEnded) this.socket.end();
        if (this.conn.role === 'server' && this.conn.closeHandshakeComplete) {
          // Both close frames are exchanged: nothing more may come from the peer, so once our
          // side is shut the connection is done; waiting for the peer's FIN (or END_STREAM)
          // would hold it for closeTimeout when the peer never sends one.
          if (this.socket.writableFinished) this.shutAfterClose();
          else this.socket.once('finish', socketOnFinishAfterClose);
        }
      }
      this.armCloseTimer();
    } else if (this.bufferedAmount > this.maxBufferedAmount) {
      this.failBuffer();
    }
  }

  /**
   * Checks a fragment of a text message against what went before it (a character may span
   * fragments); a fragment that is refused is not sent and leaves the state as it was.
   */
  private checkTextFragment(bytes: Uint8Array, fin: boolean): void {
    const open = openTexts.get(this);
    const validator = open ?? new Utf8Validator(isUtf8);
    if (!validator.tryWrite(bytes, 0, bytes.length, fin)) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        'Text messages must be valid UTF-8; this fragment was not sent (a character may be ' +
          'split between fragments, but the last one must end between characters)',
      );
    }
    if (fin) {
      openTexts.delete(this);
      this.textOpen = false;
    } else if (open === undefined) {
      openTexts.set(this, validator);
      this.textOpen = true;
    }
  }

  private afterSend(): boolean {
    if (!this.dispatching) this.flush();
    // Bytes waiting for the compressor count too: a handler that sends faster than zlib
    // compresses must not queue without bound (flush sees the same sum).
    else if (this.bufferedAmount > this.maxBufferedAmount) this.failBuffer();
    const below = this.bufferedAmount < this.highWaterMark;
    if (!below) this.needDrain = true;
    return below;
  }

  private failBuffer(): void {
    const error = new ConnectionError(
      'SWITCHYARD_ERR_BUFFER_FULL',
      `More than maxBufferedAmount (${this.maxBufferedAmount} bytes) waited for a slow reader`,
      { closeCode: 1008 },
    );
    this.reportError(error);
    // The peer is not reading, so a close frame would never get through: drop the socket, and
    // the messages waiting for the compressor with it.
    this.socket.destroy();
    this.sendQueue = null;
    this.deflatePendingBytes = 0;
  }

  private armCloseTimer(): void {
    if (this.closeTimer !== null || this.closed) return;
    this.closeTimer = setTimeout(closeTimerFired, this.closeTimeoutMs, this);
    this.closeTimer.unref();
  }

  /** @internal the close timer fired: the peer did not finish the closing handshake. */
  onCloseTimeout(): void {
    this.closeTimer = null;
    if (this.closed) return;
    if (!this.conn.closeHandshakeComplete && this.conn.error === null) {
      this.reportError(
        new ConnectionError(
          'SWITCHYARD_ERR_CLOSE_TIMEOUT',
          `The peer did not complete the closing handshake within ${this.closeTimeoutMs} ms`,
          { closeCode: 1006 },
        ),
      );
    }
    this.socket.destroy();
  }

  /**
   * @internal The key under which a published message compressed once can be sent to this
   * connection (see DeflateCodec.sharedCompressionKey), with the codec's size threshold; null
   * when the connection compresses with context takeover or not at all.
   */
  get sharedCompression(): { key: string; threshold: number } | null {
    const key = this.deflate?.sharedCompressionKey ?? null;
    return key === null ? null : { key, threshold: (this.deflate as DeflateCodec).threshold };
  }

  /** @internal a client's own heartbeat (a server sweeps all its connections with one timer). */
  startHeartbeat(interval: number, timeout: number): void {
    if (this.heartbeatTimer !== null) return;
    const period = Math.max(10, Math.min(interval, timeout) / 2);
    this.heartbeatTimer = setInterval(checkHeartbeat, period, this, interval, timeout);
    this.heartbeatTimer.unref();
  }

  /** @internal the heartbeat found the peer silent for too long: a half-open connection. */
  failIdle(idleMs: number): void {
    this.reportError(
      new ConnectionError(
        'SWITCHYARD_ERR_IDLE_TIMEOUT',
        `Nothing arrived from the peer for ${idleMs} ms, not even a pong`,
        { closeCode: 1006 },
      ),
    );
    this.socket.destroy();
  }

  /** @internal */
  onSocketError(error: Error): void {
    if (this.conn.closeTransport) return; // Resets after we decided to close are expected.
    this.reportError(
      new ConnectionError('SWITCHYARD_ERR_CONNECTION_LOST', `Connection lost: ${error.message}`, {
        closeCode: 1006,
        cause: error,
      }),
    );
  }

  /** @internal the peer half-closed: finish our side too. */
  onSocketEnd(): void {
    this.conn.receiveEof();
    // Ending a socket that is already ending makes Node build an ERR_STREAM_ALREADY_FINISHED
    // error, stack trace and all: a tenth of the server's time in a handshake-and-close loop.
    if (!this.closed && !this.socket.writableEnded) this.socket.end();
  }

  /**
   * @internal The closing handshake is complete and our side is shut (FIN, or END_STREAM, sent).
   * TCP and TLS: the server closes the connection now (RFC 6455 §7.1.1). An HTTP/2 stream: the
   * WebSocket is closed now, and the stream, if the peer has not ended it too, is reset after a
   * short grace, so that a proxy that keeps its half open gets the END_STREAM before the reset.
   */
  shutAfterClose(): void {
    if (this.closed) return;
    const stream = this.socket as Duplex & { respond?: unknown; readableEnded: boolean };
    if (typeof stream.respond !== 'function') {
      this.socket.destroy();
      return;
    }
    if (!stream.readableEnded) {
      setTimeout(
        resetStream,
        Math.min(this.closeTimeoutMs, STREAM_RESET_GRACE),
        this.socket,
      ).unref();
    }
    this.onSocketClose();
  }

  /** @internal the socket is gone. */
  onSocketClose(): void {
    if (this.closed) return;
    this.conn.receiveEof();
    this.closed = true;
    this.deflate?.close();
    if (this.closeTimer !== null) {
      clearTimeout(this.closeTimer);
      this.closeTimer = null;
    }
    if (this.heartbeatTimer !== null) {
      clearInterval(this.heartbeatTimer);
      this.heartbeatTimer = null;
    }
    const info = this.conn.closeInfo;
    this.flushWaiters();
    if (this.subscriptions !== null) this.topicHub?.removeAll(this);
    channels.close.publish({ websocket: this, code: info.code, reason: info.reason });
    try {
      this.emit('close', info.code, info.reason, info.wasClean);
    } catch (error) {
      this.onListenerError('close', error);
    }
  }

  /** @internal */
  onSocketDrain(): void {
    if (this.needDrain && this.bufferedAmount < this.highWaterMark) {
      this.needDrain = false;
      this.callUser('drain');
    }
  }

  private flushWaiters(): void {
    const waiters = this.waiters;
    if (waiters === null) return;
    this.waiters = null;
    for (const w of waiters) w({ value: undefined, done: true });
  }
}

type Tagged = Duplex & { [kWebSocket]: WebSocket };

function socketOnData(this: Tagged, chunk: Buffer): void {
  this[kWebSocket].onData(chunk);
}
function socketOnClose(this: Tagged): void {
  this[kWebSocket].onSocketClose();
}
function socketOnEnd(this: Tagged): void {
  this[kWebSocket].onSocketEnd();
}
function socketOnError(this: Tagged, error: Error): void {
  this[kWebSocket].onSocketError(error);
}
function socketOnDrain(this: Tagged): void {
  this[kWebSocket].onSocketDrain();
}
function socketOnFinishAfterClose(this: Tagged): void {
  this[kWebSocket].shutAfterClose();
}
function resetStream(stream: Duplex & { close?: (code: number) => void }): void {
  // RST_STREAM NO_ERROR (0): the response is complete, stop sending (RFC 9113 §8.1).
  if (typeof stream.close === 'function') stream.close(0);
  else stream.destroy();
}
/** How long an HTTP/2 stream may stay half-open after our END_STREAM before it is reset. */
const STREAM_RESET_GRACE = 1000;
function deliverHead(ws: WebSocket, head: Uint8Array): void {
  ws.onData(head);
  ws.resumeAfterHead();
}
function closeTimerFired(ws: WebSocket): void {
  ws.onCloseTimeout();
}

/**
 * @internal One heartbeat check: a ping after `interval` ms of silence, termination after
 * `timeout` ms more (a half-open TCP connection never says it is gone).
 */
export function checkHeartbeat(ws: WebSocket, interval: number, timeout: number): void {
  const idle = Date.now() - ws.lastSeen;
  if (idle >= interval + timeout) {
    ws.failIdle(idle);
  } else if (idle >= interval && !ws.awaitingPong && ws.readyState === ReadyState.OPEN) {
    ws.awaitingPong = true;
    ws.ping();
  }
}

/**
 * Small frames are joined into one Buffer per flush, so a read callback that produced many
 * replies costs one write (one syscall) instead of a writev over many tiny chunks: the
 * profile of the 32-byte echo put writev at a third of the server's time. Chunks of
 * {@link JOIN_LIMIT} or more go as they are (copying them would cost more than it saves).
 */
const JOIN_LIMIT = 64 * 1024;

/**
 * The last queue a fan-out pass joined and what it became. Subscribers of one topic usually
 * have the very same chunks queued (the messages published this tick, framed once), so the
 * next one writes the same Buffers: one join per pass instead of one per subscriber, as a
 * server that frames once and writes the bytes to every socket. Held for one pass only.
 * @internal
 */
export interface JoinMemo {
  chunks: readonly Uint8Array[] | null;
  out: Buffer[] | null;
}

function sameChunks(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function writeJoined(socket: Duplex, chunks: Uint8Array[], memo?: JoinMemo): void {
  let out: Buffer[];
  if (memo !== undefined && memo.chunks !== null && sameChunks(memo.chunks, chunks)) {
    out = memo.out as Buffer[];
  } else {
    out = joinChunks(chunks);
    if (memo !== undefined) {
      memo.chunks = chunks;
      memo.out = out;
    }
  }
  if (out.length === 1) {
    socket.write(out[0]);
    return;
  }
  socket.cork();
  for (const buffer of out) socket.write(buffer);
  socket.uncork();
}

/** The chunks as Buffers to write: runs of small ones joined, large ones as they are. */
function joinChunks(chunks: Uint8Array[]): Buffer[] {
  const out: Buffer[] = [];
  let runStart = 0;
  let runBytes = 0;
  for (let i = 0; i < chunks.length; i++) {
    const size = chunks[i].length;
    if (size >= JOIN_LIMIT) {
      pushRun(out, chunks, runStart, i, runBytes);
      out.push(asBuffer(chunks[i]));
      runStart = i + 1;
      runBytes = 0;
    } else {
      if (runBytes + size > JOIN_LIMIT) {
        pushRun(out, chunks, runStart, i, runBytes);
        runStart = i;
        runBytes = 0;
      }
      runBytes += size;
    }
  }
  pushRun(out, chunks, runStart, chunks.length, runBytes);
  return out;
}

function pushRun(
  out: Buffer[],
  chunks: Uint8Array[],
  start: number,
  end: number,
  bytes: number,
): void {
  if (end - start === 1) out.push(asBuffer(chunks[start]));
  else if (end - start > 1) out.push(joinRun(chunks, start, end, bytes));
}

function joinRun(chunks: Uint8Array[], start: number, end: number, bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let offset = 0;
  for (let i = start; i < end; i++) {
    out.set(chunks[i], offset);
    offset += chunks[i].length;
  }
  return out;
}

/** A Buffer view of bytes (streams convert plain Uint8Arrays one by one otherwise). */
/**
 * V8 keeps a typed array of at most 64 bytes inside the JS heap (`new Uint8Array(n)` for a frame
 * header or a short frame from the core), and asking for its `.buffer` moves it out: a backing
 * store, an `ArrayBuffer` and its GC bookkeeping, about 1 µs against 0.1 µs for copying the bytes
 * into Buffer's pool. So short arrays that are not Buffers are copied, longer ones are wrapped.
 */
const ON_HEAP_MAX = 64;

/** `data` as a Buffer: itself, a copy when short, else a view of the same memory. */
export function asBuffer(data: Uint8Array): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return data.length <= ON_HEAP_MAX
    ? Buffer.from(data)
    : Buffer.from(data.buffer, data.byteOffset, data.length);
}

/** Bytes of any accepted data type, without copying. */
/**
 * The server's topics behind `ws.subscribe` and `ws.publish`.
 * @throws LocalProtocolError on a client connection, which has no topics.
 */
function hubOf(ws: WebSocket): TopicHub {
  const hub = ws.topicHub;
  if (hub === null) {
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_INVALID_STATE',
      'Topics belong to server connections: this WebSocket was not accepted by a WebSocketServer',
    );
  }
  return hub;
}

export function toBytes(data: Exclude<SendData, string>): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data))
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new LocalProtocolError(
    'SWITCHYARD_ERR_INVALID_ARGUMENT',
    'Data must be a string, Buffer, ArrayBuffer or ArrayBufferView',
  );
}

function toPayload(data: SendData): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : toBytes(data);
}
