/**
 * The WebSocket protocol for one connection, after the opening handshake: sans-I/O.
 *
 * Theory of operation. A driver (the Node layer, or a test) owns the transport and calls four
 * kinds of verbs on this object:
 * - data in: {@link Connection.receiveData} with the bytes read from the transport, and
 *   {@link Connection.receiveEof} when the transport is gone;
 * - events out: {@link Connection.nextEvent} until it answers {@link NEED_DATA};
 * - bytes out: {@link Connection.dataToSend}, then, when {@link Connection.closeTransport} is
 *   set, the driver ends the transport (RFC 6455 §7.1.1: the server closes TCP first);
 * - the application's actions: `sendText`, `sendBinary`, `sendPing`, `sendPong`, `sendClose`
 *   and `fail`.
 *
 * Bytes from the peer never make this object throw: a violation is recorded, the matching close
 * frame is queued (RFC 6455 §7.1.7 _Fail the WebSocket Connection_), `closeTransport` is set,
 * and an `error` event tells the driver. Misuse by the local caller (sending after close, an
 * invalid close code) throws a {@link LocalProtocolError}.
 *
 * The closing handshake (RFC 6455 §7) is written as the table {@link CLOSE_TRANSITIONS}: the
 * state is the pair (close frame sent?, close frame received?) plus whether the transport has
 * ended; readyState is derived from it.
 */
import { LocalProtocolError, RemoteProtocolError } from './errors.js';
import { encodeCloseBody, Opcode, serializeFrame } from './frame.js';
import { MaskKeySource } from './mask.js';
import { Receiver, type ReceiverEvent } from './receiver.js';
import { isValidUtf8 } from './utf8.js';

/** Which end of the connection this object speaks for. */
export type Role = 'client' | 'server';

/** The states of a WebSocket connection, with the values of the browser API. */
export const ReadyState = { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 } as const;
/** One of {@link ReadyState}'s values. */
export type ReadyStateValue = (typeof ReadyState)[keyof typeof ReadyState];

/** Returned by {@link Connection.nextEvent} when every buffered byte has been consumed. */
export const NEED_DATA: unique symbol = Symbol('switchyard.needData');
/**
 * Returned by {@link Connection.nextEvent} while a compressed message is out for inflation: the
 * driver must hand the result to {@link Connection.receiveInflated} (or fail the connection)
 * before asking for more events, so that messages keep their order.
 */
export const PAUSED: unique symbol = Symbol('switchyard.paused');

/** The defaults of {@link ConnectionOptions}. */
export const CONNECTION_DEFAULTS = {
  /**
   * 16 MiB: large enough for the conformance suite's biggest messages (16 MiB), small enough
   * that one connection cannot hold more than that in an incomplete message.
   */
  maxPayload: 16 * 1024 * 1024,
  /**
   * No count: a fragment costs no memory of its own (the receiver joins small ones as they
   * arrive), so the conformance suite's 4 MiB in 65,537 frames of 64 bytes goes through, while
   * a flood of empty fragments is cut off with 1009 once a message's frame headers outweigh its
   * payload by 64 KiB (`MAX_FRAMING_OVERHEAD`, RFC 6455 §10.4).
   */
  maxFragments: Infinity,
} as const;

/** Options of a {@link Connection}. */
export interface ConnectionOptions {
  /** Which end this is: a server expects masked frames and sends unmasked ones (RFC 6455 §5.1). */
  role: Role;
  /** The largest message accepted, in bytes; bigger ones fail with 1009. Default 16 MiB. */
  maxPayload?: number;
  /**
   * The most frames one message may be split into; more fail with 1009. Default no limit: a
   * flood of empty fragments is cut off by bytes of framing instead (`MAX_FRAMING_OVERHEAD`).
   */
  maxFragments?: number;
  /** Whether RSV1 (permessage-deflate, RFC 7692 §6) was negotiated. Default false. */
  compression?: boolean;
  /** Answer every ping with a pong carrying the same payload (RFC 6455 §5.5.2). Default true. */
  autoPong?: boolean;
  /** A whole-buffer UTF-8 validator to use instead of the portable one (e.g. `buffer.isUtf8`). */
  isUtf8?: (bytes: Uint8Array) => boolean;
  /**
   * Allocates the buffer of a message assembled from several reads or frames; every byte is
   * written before the message is handed out, so it need not be zeroed (e.g.
   * `Buffer.allocUnsafeSlow`). Default `new Uint8Array(length)`.
   */
  allocate?: (length: number) => Uint8Array;
}

/** A complete message from the peer. Text arrives as validated UTF-8 bytes. */
export interface MessageEvent {
  type: 'message';
  binary: boolean;
  data: Uint8Array;
}
/** A complete compressed message, to be inflated by the driver and passed to `receiveInflated`. */
export interface CompressedEvent {
  type: 'compressed';
  binary: boolean;
  data: Uint8Array[];
}
/** A ping from the peer (already answered when autoPong is on). */
export interface PingEvent {
  type: 'ping';
  data: Uint8Array;
}
/** A pong from the peer. */
export interface PongEvent {
  type: 'pong';
  data: Uint8Array;
}
/** The peer's close frame. Code 1005 means the frame had no status code (RFC 6455 §7.1.5). */
export interface CloseEvent {
  type: 'close';
  code: number;
  reason: string;
}
/** The peer broke the protocol; the connection is being failed with `error.closeCode`. */
export interface ErrorEvent {
  type: 'error';
  error: RemoteProtocolError;
}
/** Everything {@link Connection.nextEvent} can report. */
export type ConnectionEvent =
  MessageEvent | CompressedEvent | PingEvent | PongEvent | CloseEvent | ErrorEvent;

/**
 * The closing handshake as data (RFC 6455 §7.1.2–§7.1.4). Keyed by `sent|received`, each row
 * says what a close frame received or a local close does next.
 * - `onReceive`: reply with our own close frame (only if we have not sent one yet), and whether
 *   the closing handshake is complete afterwards.
 * - `onSend`: whether a local close may still send a close frame.
 */
export const CLOSE_TRANSITIONS: Readonly<
  Record<
    'open' | 'sent' | 'received' | 'both',
    { readyState: ReadyStateValue; onReceive: 'reply' | 'complete' | 'ignore'; canSend: boolean }
  >
> = {
  // Neither side has sent a close frame: the peer's close is echoed (§5.5.1), which completes
  // the handshake.
  open: { readyState: ReadyState.OPEN, onReceive: 'reply', canSend: true },
  // We sent ours: the peer's close completes the handshake.
  sent: { readyState: ReadyState.CLOSING, onReceive: 'complete', canSend: false },
  // Received but not yet answered cannot persist (the reply is queued at once); kept for clarity.
  received: { readyState: ReadyState.CLOSING, onReceive: 'ignore', canSend: true },
  // Both sent: anything further from the peer is ignored (§5.5.1: it must send nothing more).
  both: { readyState: ReadyState.CLOSING, onReceive: 'ignore', canSend: false },
};

const EMPTY = new Uint8Array(0);
/**
 * The outgoing list of a connection with nothing to send: shared and never written to, so that
 * an idle connection holds no array of its own (nor the backing store a used one keeps).
 */
const NOTHING: Uint8Array[] = [];
const textEncoder = new TextEncoder();

/** One WebSocket connection's protocol state, from OPEN until CLOSED. */
export class Connection {
  readonly role: Role;
  private readonly receiver: Receiver;
  private readonly masks: MaskKeySource | null;
  private readonly autoPong: boolean;
  private readonly isUtf8: (bytes: Uint8Array) => boolean;
  private readonly maxPayload: number;
  /** Chunks queued for the transport; {@link NOTHING} when none are. */
  private outgoing: Uint8Array[] = NOTHING;
  private outgoingBytes = 0;
  /** Pre-framed messages waiting for the fragmented message being sent to end (RFC 6455 §5.4). */
  private deferred: Uint8Array[] | null = null;
  private deferredBytes = 0;
  private closeSent = false;
  private closeReceived = false;
  private transportEnded = false;
  private failed = false;
  private inflating = false;
  /** The opcode of a message we are sending in fragments, or 0 when none is open. */
  private sendingOpcode = 0;
  private shouldCloseTransport = false;
  private peerCode = 1006;
  private peerReason = '';
  private localCode = 0;
  private failure: RemoteProtocolError | null = null;
  private compression: boolean;

  constructor(options: ConnectionOptions) {
    this.role = options.role;
    this.autoPong = options.autoPong ?? true;
    this.isUtf8 = options.isUtf8 ?? ((b: Uint8Array) => isValidUtf8(b));
    this.maxPayload = options.maxPayload ?? CONNECTION_DEFAULTS.maxPayload;
    this.compression = options.compression ?? false;
    this.masks = options.role === 'client' ? new MaskKeySource() : null;
    this.receiver = new Receiver({
      role: options.role,
      maxPayload: this.maxPayload,
      maxFragments: options.maxFragments ?? CONNECTION_DEFAULTS.maxFragments,
      rsv1Allowed: this.compression,
      // The receiver's own default when none was given (no closure per connection to compare).
      isUtf8: options.isUtf8,
      allocate: options.allocate,
    });
  }

  /** The browser-style readyState, derived from the closing handshake's progress. */
  get readyState(): ReadyStateValue {
    if (this.transportEnded) return ReadyState.CLOSED;
    return CLOSE_TRANSITIONS[this.closeKey()].readyState;
  }

  /** True once both close frames have been exchanged (a clean close, RFC 6455 §7.1.4). */
  get closeHandshakeComplete(): boolean {
    return this.closeSent && this.closeReceived && !this.failed;
  }

  /** Set when the driver should end the transport after writing {@link dataToSend}. */
  get closeTransport(): boolean {
    return this.shouldCloseTransport;
  }

  /**
   * The close code and reason to report to the application: the peer's when it sent a close
   * frame, ours when we failed the connection, 1006 when the transport ended without either
   * (RFC 6455 §7.1.5, §7.4.1).
   */
  get closeInfo(): { code: number; reason: string; wasClean: boolean } {
    if (this.failure !== null && !this.closeReceived) {
      return {
        code: this.failure.closeCode ?? 1006,
        reason: this.failure.message,
        wasClean: false,
      };
    }
    if (this.closeReceived) {
      return {
        code: this.peerCode,
        reason: this.peerReason,
        wasClean: this.closeSent && !this.failed,
      };
    }
    return { code: 1006, reason: '', wasClean: false };
  }

  /** The remote violation that failed this connection, if any. */
  get error(): RemoteProtocolError | null {
    return this.failure;
  }

  /** Bytes queued by the app and not yet taken by {@link dataToSend}. */
  get pendingBytes(): number {
    return this.outgoingBytes + this.deferredBytes;
  }

  /** Bytes held by the receiver: incomplete frames and fragments of an incomplete message. */
  get bufferedIncomingBytes(): number {
    return this.receiver.bufferedBytes;
  }

  // ---- data in -------------------------------------------------------------------------------

  /** Feeds bytes read from the transport. The connection takes ownership of `chunk`. */
  receiveData(chunk: Uint8Array): void {
    if (this.closeReceived || this.failed || this.transportEnded) return;
    if (chunk.length > 0) this.receiver.push(chunk);
  }

  /** Tells the connection that the transport has ended (EOF, reset or closed). */
  receiveEof(): void {
    this.transportEnded = true;
    this.shouldCloseTransport = true;
  }

  // ---- events out ----------------------------------------------------------------------------

  /** The next event, {@link NEED_DATA} when more bytes are needed, or {@link PAUSED}. */
  nextEvent(): ConnectionEvent | typeof NEED_DATA | typeof PAUSED {
    if (this.inflating) return PAUSED;
    if (this.closeReceived || this.failed) return NEED_DATA;
    const event = this.receiver.next();
    if (event === null) return NEED_DATA;
    return this.handle(event);
  }

  private handle(event: ReceiverEvent): ConnectionEvent {
    switch (event.type) {
      case 'message':
        return event;
      case 'compressed':
        this.inflating = true;
        return event;
      case 'ping':
        // RFC 6455 §5.5.2–§5.5.3: answer with the same payload, unless we are closing (after our
        // close frame nothing more may be sent, §5.5.1).
        if (this.autoPong && !this.closeSent) this.queueFrame(Opcode.PONG, event.data, true);
        return event;
      case 'pong':
        return event;
      case 'close':
        return this.onCloseFrame(event);
      case 'error':
        this.failWith(event.error);
        return event;
    }
  }

  private onCloseFrame(event: CloseEvent): CloseEvent {
    const row = CLOSE_TRANSITIONS[this.closeKey()];
    this.closeReceived = true;
    this.peerCode = event.code;
    this.peerReason = event.reason;
    if (row.onReceive === 'reply') {
      // RFC 6455 §5.5.1: reply with a close frame, typically echoing the status code received.
      // A 1005 (no code) is answered with an empty body: 1005 must never be sent (§7.4.1).
      const body = event.code === 1005 ? EMPTY : encodeCloseBody(event.code);
      this.queueFrame(Opcode.CLOSE, body, true);
      this.closeSent = true;
      this.localCode = event.code;
    }
    // RFC 6455 §7.1.1: after the closing handshake, the server closes the TCP connection first;
    // the client waits for it (the driver bounds that wait with a timer).
    if (this.role === 'server') this.shouldCloseTransport = true;
    return event;
  }

  /**
   * Delivers the result of inflating a {@link CompressedEvent}: the message's bytes, or an error
   * (a corrupt stream, 1007; a message over the limit, 1009) that fails the connection.
   */
  receiveInflated(
    result: { binary: boolean; data: Uint8Array } | RemoteProtocolError,
  ): MessageEvent | ErrorEvent {
    if (!this.inflating) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_STATE',
        'receiveInflated called while no compressed message was out for inflation',
      );
    }
    this.inflating = false;
    if (result instanceof RemoteProtocolError) {
      this.failWith(result);
      return { type: 'error', error: result };
    }
    if (result.data.length > this.maxPayload) {
      const error = new RemoteProtocolError(
        'SWITCHYARD_ERR_MESSAGE_TOO_BIG',
        `Inflated message of ${result.data.length} bytes, over maxPayload (${this.maxPayload} bytes)`,
        { closeCode: 1009 },
      );
      this.failWith(error);
      return { type: 'error', error };
    }
    // RFC 7692 §6: the payload of a compressed text message is UTF-8 once decompressed.
    if (!result.binary && !this.isUtf8(result.data)) {
      const error = new RemoteProtocolError(
        'SWITCHYARD_ERR_INVALID_UTF8',
        'Text message is not valid UTF-8',
        { closeCode: 1007 },
      );
      this.failWith(error);
      return { type: 'error', error };
    }
    return { type: 'message', binary: result.binary, data: result.data };
  }

  // ---- bytes out -----------------------------------------------------------------------------

  /** Takes every byte queued for the transport, in order, as chunks for a vectored write. */
  dataToSend(): Uint8Array[] {
    if (this.outgoing.length === 0) return [];
    const out = this.outgoing;
    this.outgoing = NOTHING;
    this.outgoingBytes = 0;
    return out;
  }

  // ---- the application's actions ------------------------------------------------------------

  /**
   * Sends a text message, or one fragment of it with `fin: false` (RFC 6455 §5.4). A string is
   * encoded as UTF-8; bytes must already be valid UTF-8 (not checked again, for speed).
   */
  sendText(data: string | Uint8Array, fin = true, rsv1 = false): void {
    const bytes = typeof data === 'string' ? textEncoder.encode(data) : data;
    this.sendData(Opcode.TEXT, bytes, fin, rsv1);
  }

  /** Sends a binary message, or one fragment of it with `fin: false` (RFC 6455 §5.4). */
  sendBinary(data: Uint8Array, fin = true, rsv1 = false): void {
    this.sendData(Opcode.BINARY, data, fin, rsv1);
  }

  private sendData(opcode: number, data: Uint8Array, fin: boolean, rsv1: boolean): void {
    this.assertCanSend('send a message');
    let frameOpcode = opcode;
    if (this.sendingOpcode !== 0) {
      if (this.sendingOpcode !== opcode) {
        throw new LocalProtocolError(
          'SWITCHYARD_ERR_INVALID_STATE',
          'A fragmented message of another type is still being sent; finish it first (RFC 6455 §5.4)',
        );
      }
      frameOpcode = Opcode.CONTINUATION;
      // RFC 7692 §6: RSV1 marks only the first frame of a compressed message.
      rsv1 = false;
    }
    if (rsv1 && !this.compression) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_STATE',
        'RSV1 (compression) was not negotiated on this connection',
      );
    }
    this.sendingOpcode = fin ? 0 : opcode;
    this.queueFrame(frameOpcode, data, fin, rsv1);
    if (fin && this.deferred !== null) this.releaseDeferred();
  }

  /**
   * Queues a whole data message that was framed elsewhere, for a server that publishes one
   * message to many connections and frames it only once (`serializeFrame`, unmasked). The chunks
   * are queued as they are, never copied or changed, so they may be shared between connections.
   *
   * While a fragmented message is being sent, the frames wait until its last fragment has been
   * queued: RFC 6455 §5.4 forbids interleaving data frames of two messages. They count in
   * {@link pendingBytes} meanwhile, and are dropped if a close frame is sent first.
   *
   * @param chunks - one complete frame (FIN set), as `serializeFrame` returns it.
   * @param rsv1 - whether the frame is compressed (RSV1 set); compression must be negotiated.
   * @throws {@link LocalProtocolError} `SWITCHYARD_ERR_INVALID_STATE` when a close frame was
   *   already sent or the transport ended, on a client (its frames must be masked, RFC 6455
   *   §5.3, so they cannot be shared), or for RSV1 without negotiated compression.
   */
  sendFramed(chunks: readonly Uint8Array[], rsv1 = false): void {
    this.assertCanSend('send a message');
    if (this.role !== 'server') {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_STATE',
        'Only a server can send pre-framed messages: client frames are masked (RFC 6455 §5.3)',
      );
    }
    if (rsv1 && !this.compression) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_STATE',
        'RSV1 (compression) was not negotiated on this connection',
      );
    }
    let bytes = 0;
    for (let i = 0; i < chunks.length; i++) bytes += chunks[i].length;
    if (this.sendingOpcode !== 0) {
      if (this.deferred === null) this.deferred = [];
      for (let i = 0; i < chunks.length; i++) this.deferred.push(chunks[i]);
      this.deferredBytes += bytes;
      return;
    }
    for (let i = 0; i < chunks.length; i++) this.enqueue(chunks[i]);
  }

  private releaseDeferred(): void {
    const deferred = this.deferred as Uint8Array[];
    for (let i = 0; i < deferred.length; i++) this.enqueue(deferred[i]);
    this.deferred = null;
    this.deferredBytes = 0;
  }

  /** Sends a ping (at most 125 bytes, RFC 6455 §5.5). */
  sendPing(data: Uint8Array = EMPTY): void {
    this.assertCanSend('send a ping');
    this.assertControlPayload(data);
    this.queueFrame(Opcode.PING, data, true);
  }

  /** Sends an unsolicited pong, a heartbeat that expects no answer (RFC 6455 §5.5.3). */
  sendPong(data: Uint8Array = EMPTY): void {
    this.assertCanSend('send a pong');
    this.assertControlPayload(data);
    this.queueFrame(Opcode.PONG, data, true);
  }

  /**
   * Starts the closing handshake (RFC 6455 §7.1.2) with an optional code and reason (at most
   * 123 bytes of UTF-8). Does nothing when a close frame was already sent.
   */
  sendClose(code?: number, reason = ''): void {
    if (this.closeSent || this.transportEnded) return;
    const body = encodeCloseBody(code, reason);
    this.queueFrame(Opcode.CLOSE, body, true);
    this.closeSent = true;
    this.localCode = code ?? 1005;
    if (this.closeReceived && this.role === 'server') this.shouldCloseTransport = true;
  }

  /**
   * Fails the connection from this side (RFC 6455 §7.1.7), for a violation the driver found
   * (a limit of the I/O layer, an inflated message too big): queues a close frame with the
   * error's close code, and asks for the transport to be closed.
   */
  fail(error: RemoteProtocolError): void {
    this.failWith(error);
  }

  private failWith(error: RemoteProtocolError): void {
    if (this.failed) return;
    this.failed = true;
    this.failure = error;
    this.inflating = false;
    if (!this.closeSent && !this.transportEnded) {
      // The reason is for people reading captures; keep it within the 123 bytes of §5.5.
      const body = encodeCloseBody(error.closeCode ?? 1002, truncateUtf8(error.message, 123));
      this.queueFrame(Opcode.CLOSE, body, true);
      this.closeSent = true;
      this.localCode = error.closeCode ?? 1002;
    }
    // RFC 6455 §7.1.7: after a failure the endpoint need not wait for the peer's close frame.
    this.shouldCloseTransport = true;
  }

  /** The close code we sent, or 0 when we sent none. */
  get sentCloseCode(): number {
    return this.localCode;
  }

  // ---- helpers -------------------------------------------------------------------------------

  private closeKey(): 'open' | 'sent' | 'received' | 'both' {
    if (this.closeSent) return this.closeReceived ? 'both' : 'sent';
    return this.closeReceived ? 'received' : 'open';
  }

  private assertCanSend(what: string): void {
    // RFC 6455 §5.5.1: after sending a close frame, no more data frames.
    if (this.closeSent || this.transportEnded) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_STATE',
        `Cannot ${what}: the connection is ${this.transportEnded ? 'closed' : 'closing'}`,
      );
    }
  }

  private assertControlPayload(data: Uint8Array): void {
    if (data.length > 125) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `Control frame payloads are at most 125 bytes (RFC 6455 §5.5), got ${data.length}`,
      );
    }
  }

  private queueFrame(opcode: number, payload: Uint8Array, fin: boolean, rsv1 = false): void {
    if (opcode === Opcode.CLOSE && this.deferred !== null) {
      // RFC 6455 §5.5.1: no data frames after a close frame, so messages still waiting go.
      this.deferred = null;
      this.deferredBytes = 0;
    }
    const chunks = serializeFrame(opcode, payload, {
      fin,
      rsv1,
      mask: this.masks === null ? null : this.masks.next(),
    });
    for (let i = 0; i < chunks.length; i++) this.enqueue(chunks[i]);
  }

  /** Queues one chunk for the transport. */
  private enqueue(chunk: Uint8Array): void {
    if (this.outgoing === NOTHING) this.outgoing = [chunk];
    else this.outgoing.push(chunk);
    this.outgoingBytes += chunk.length;
  }
}

/** Cuts a string so that its UTF-8 encoding fits in `max` bytes, never inside a character. */
export function truncateUtf8(text: string, max: number): string {
  const bytes = textEncoder.encode(text);
  if (bytes.length <= max) return text;
  let end = max;
  // Step back over continuation bytes (10xxxxxx) so the cut lands on a character boundary.
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end));
}
