/**
 * The incremental frame parser and message assembler (RFC 6455 §5).
 *
 * Theory of operation: the receiver is only a parser. The connection pushes the chunks it
 * reads ({@link Receiver.push}) and pulls events ({@link Receiver.next}) until it gets null,
 * which means "more bytes needed". It never throws on bytes from the peer: a violation becomes
 * one 'error' event whose `closeCode` is the code to send, after which the receiver is dead.
 *
 * Received chunks wait in a list. A frame goes through explicit states, each of which either
 * completes with the bytes already buffered or returns null and resumes on the next call:
 *
 * | state      | waits for                              | then                                  |
 * | ---------- | -------------------------------------- | ------------------------------------- |
 * | INFO       | 2 bytes: FIN, RSV, opcode, MASK, len7  | checks them at once; HEADER           |
 * | HEADER     | extended length and masking key        | checks the length; PAYLOAD or CONTROL |
 * | PAYLOAD    | any byte of a data frame's payload     | unmasks and checks it piece by piece  |
 * | CONTROL    | the whole (<= 125 byte) payload        | emits ping, pong or close; INFO       |
 * | FAILED     | nothing: input is ignored from now on  |                                       |
 *
 * The hot path is one unfragmented data frame whose payload sits in one chunk: its payload is
 * unmasked in place and handed out as a view of that chunk, with no copy, and a text payload is
 * checked by the (injected, usually native) whole-buffer UTF-8 validator once. Every other data
 * payload is consumed as it arrives: each piece is unmasked, checked by the incremental UTF-8
 * validator (so that invalid text fails the connection as soon as its bytes arrive, RFC 6455
 * §8.1 and conformance cases 6.4.x), and kept in a list; the list is joined with one allocation
 * when the message ends. An unfragmented, uncompressed message that spans chunks (a 64 KiB
 * message over TCP, usually) skips the list once half of it has arrived: its buffer is
 * allocated then, and each piece is unmasked from its chunk straight into it. Limits are
 * enforced from the frame header, before the payload is buffered.
 */

import { maxCompressedPayload } from './permessage-deflate.js';
import { RemoteProtocolError } from './errors.js';
import type { ErrorCode } from './errors.js';
import { MAX_CONTROL_PAYLOAD, isValidCloseCode } from './frame.js';
import { maskRange } from './mask.js';
import { SIMD_THRESHOLD, maskCopy } from './mask-simd.js';
import { SHORT_TEXT, Utf8Validator, isValidUtf8 } from './utf8.js';

/** Options of a {@link Receiver}. */
export interface ReceiverOptions {
  /**
   * Which end this receiver is. A server requires every frame from its peer to be masked, a
   * client requires none to be (RFC 6455 §5.1); anything else fails with 1002.
   */
  role: 'server' | 'client';
  /**
   * The most bytes one message may have, once its fragments are put together. Checked against
   * the length in each frame header, before the payload is buffered; exceeding it fails with
   * 1009 (`SWITCHYARD_ERR_MESSAGE_TOO_BIG`). A compressed message may take up to
   * {@link maxCompressedPayload} bytes on the wire (incompressible data grows a little); the
   * inflater enforces `maxPayload` on its inflated size. Use `Infinity` for no limit.
   */
  maxPayload: number;
  /**
   * The most frames one data message may have; more fail with 1009. Default (when omitted)
   * `Infinity`: a fragment costs no memory of its own (small ones are joined as they arrive),
   * and a flood of empty or tiny fragments is cut off by {@link MAX_FRAMING_OVERHEAD} instead.
   */
  maxFragments?: number;
  /**
   * Whether RSV1 may be set: true once permessage-deflate was negotiated. Even then it is
   * allowed only on the first frame of a data message (RFC 7692 §6). Default false.
   */
  rsv1Allowed?: boolean;
  /**
   * A fast whole-buffer UTF-8 validator (the Node layer passes `buffer.isUtf8`), used for text
   * payloads of 64 bytes or more that one chunk holds, and for long pieces of texts that arrive
   * in several. Default {@link isValidUtf8}.
   */
  isUtf8?: (bytes: Uint8Array) => boolean;
  /**
   * Allocates the buffer of a message that has to be assembled (one that spans reads, or is
   * fragmented). Every byte of what it returns is written before the message is handed out, so
   * it need not be zeroed: the Node layer passes `Buffer.allocUnsafeSlow`, which skips the
   * zero-fill a fresh `Uint8Array` pays (for a 64 KiB message, as long as unmasking it). Default
   * `new Uint8Array(length)`.
   */
  allocate?: (length: number) => Uint8Array;
}

/** What the platform lends the receiver; one object shared by every receiver that uses the same pair. */
interface Natives {
  readonly isUtf8: (bytes: Uint8Array) => boolean;
  readonly allocate: (length: number) => Uint8Array;
}

const newUint8Array = (length: number): Uint8Array => new Uint8Array(length);
const PORTABLE: Natives = { isUtf8: isValidUtf8, allocate: newUint8Array };
/** The last pair asked for: a server's receivers all ask for the same one, so share its object. */
let lastNatives: Natives = PORTABLE;

function nativesFor(
  isUtf8: (bytes: Uint8Array) => boolean = isValidUtf8,
  allocate: (length: number) => Uint8Array = newUint8Array,
): Natives {
  if (lastNatives.isUtf8 !== isUtf8 || lastNatives.allocate !== allocate) {
    lastNatives = { isUtf8, allocate };
  }
  return lastNatives;
}

/** A complete uncompressed data message. */
export interface ReceiverMessageEvent {
  type: 'message';
  /** True for a binary message, false for text (already checked to be valid UTF-8). */
  binary: boolean;
  /** The unmasked payload: a view into a pushed chunk when one chunk held it all. */
  data: Uint8Array;
}

/** A complete compressed (RSV1) data message, still compressed. */
export interface ReceiverCompressedEvent {
  type: 'compressed';
  /** True for a binary message; for text, the caller checks UTF-8 after inflating. */
  binary: boolean;
  /** The unmasked compressed payload, in pieces, in order. */
  data: Uint8Array[];
}

/** A ping frame; the connection should answer with a pong of the same payload (RFC 6455 §5.5.2). */
export interface ReceiverPingEvent {
  type: 'ping';
  /** The unmasked application data, as is (0 to 125 bytes). */
  data: Uint8Array;
}

/** A pong frame (RFC 6455 §5.5.3). */
export interface ReceiverPongEvent {
  type: 'pong';
  /** The unmasked application data, as is (0 to 125 bytes). */
  data: Uint8Array;
}

/** A close frame (RFC 6455 §5.5.1). */
export interface ReceiverCloseEvent {
  type: 'close';
  /** The close code, or 1005 when the frame had no body (RFC 6455 §7.1.5). */
  code: number;
  /** The close reason, decoded from UTF-8; '' when there was none. */
  reason: string;
}

/** The peer broke a rule of RFC 6455 §5; the receiver accepts no more input. */
export interface ReceiverErrorEvent {
  type: 'error';
  /** What went wrong; `error.closeCode` is the close code to send (1002, 1007 or 1009). */
  error: RemoteProtocolError;
}

/** What {@link Receiver.next} returns. */
export type ReceiverEvent =
  | ReceiverMessageEvent
  | ReceiverCompressedEvent
  | ReceiverPingEvent
  | ReceiverPongEvent
  | ReceiverCloseEvent
  | ReceiverErrorEvent;

const ST_INFO = 0;
const ST_HEADER = 1;
const ST_PAYLOAD = 2;
const ST_CONTROL = 3;
const ST_FAILED = 4;

/** 2^32, to combine the halves of a 64-bit length without precision loss. */
const TWO_POW_32 = 0x1_0000_0000;

/** The payload of every empty message, ping or pong: nothing can be written into it. */
const EMPTY = new Uint8Array(0);

/**
 * Pieces of a fragmented message shorter than this are copied into a shared block as they
 * arrive instead of being kept one object each, so that a message in many small fragments
 * costs its bytes (and one block per {@link JOIN_BLOCK} bytes), not an object per fragment.
 */
const JOIN_BELOW = 1024;

/** The size of the blocks small pieces are joined into. */
const JOIN_BLOCK = 16384;

/**
 * How many bytes of frame headers one data message may carry beyond the bytes of its payload
 * (RFC 6455 §10.4 asks for limits on what a peer can make an endpoint do). Fragments cost no
 * memory once joined, but a message that never ends, made of empty frames, would keep the
 * connection parsing for nothing: it is cut off with 1009 once its headers outweigh its
 * payload by this much (10,922 empty masked frames). Any message whose fragments carry at
 * least as many bytes as their headers (6 to 14 bytes) is never affected: the conformance
 * suite's 4 MiB in 65,537 frames of 64 bytes carries 384 KiB of headers for 4 MiB of payload.
 */
export const MAX_FRAMING_OVERHEAD = 65536;

/**
 * The list of a receiver that holds nothing: shared, never written to. A receiver swaps in a
 * list of its own when bytes or pieces arrive and back to this one when they are consumed, so
 * that an idle connection holds no array (it would keep its grown backing store too).
 */
const NONE: Uint8Array[] = [];

/** `maxFragments` when there is no limit (kept as a small integer: Infinity would be boxed). */
const NO_FRAGMENT_LIMIT = -1;

/**
 * Where the masking key of the frame being unmasked is spelled out for {@link maskRange}, just
 * before each call: one array for all receivers, as each receiver keeps its key as an integer.
 */
const KEY = new Uint8Array(4);

/** Decodes close reasons, which are checked first. Keeps a leading BOM: it is part of the text. */
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * The incremental parser of RFC 6455 frames: bytes in, events out.
 *
 * @example
 * ```ts
 * const receiver = new Receiver({ role: 'server', maxPayload: 1 << 20, maxFragments: 1024 });
 * socket.on('data', (chunk) => {
 *   receiver.push(chunk);
 *   for (let ev = receiver.next(); ev !== null; ev = receiver.next()) handle(ev);
 * });
 * ```
 */
export class Receiver {
  // Configuration.
  private readonly requireMask: boolean;
  private readonly maxPayload: number;
  private readonly maxFragments: number;
  private rsv1Allowed: boolean;
  /** The UTF-8 validator and the allocator: one object per distinct pair, not two fields each. */
  private readonly natives: Natives;

  // Buffered input: chunks[0] starts at `offset`; `buffered` bytes in all. NONE when empty.
  private chunks: Uint8Array[] = NONE;
  private offset = 0;
  private buffered = 0;
  /** Where {@link Receiver.take} left the bytes it took: `hbuf[hpos..]`. */
  private hbuf: Uint8Array = EMPTY;
  private hpos = 0;
  /**
   * Room to gather a header that straddles chunks (at most 8 + 4 bytes after the first 2).
   * Allocated on first need: most connections never see a split header, and an idle connection
   * should cost as little as possible.
   */
  private scratch: Uint8Array | null = null;

  // The frame being parsed.
  private state = ST_INFO;
  private fin = false;
  private opcode = 0;
  private masked = false;
  /** The 7-bit length field of the frame: 0-125, or 126/127 for an extended length. */
  private length7 = 0;
  private payloadLength = 0;
  private payloadRead = 0;
  /** The frame's masking key, its 4 bytes big-endian in one integer (no array per receiver). */
  private maskKey = 0;

  // The data message being assembled. `messageOpcode` is 0 when no message is open.
  private messageOpcode = 0;
  private compressed = false;
  private checkUtf8 = false;
  private fragmentCount = 0;
  /** Declared bytes of the message so far (the sum of its frames' header lengths). */
  private messageLength = 0;
  /** Bytes of frame headers of the message so far (see {@link MAX_FRAMING_OVERHEAD}). */
  private messageOverhead = 0;
  /** The pieces of the message being assembled; NONE between messages. */
  private pieces: Uint8Array[] = NONE;
  private piecesBytes = 0;
  /** The block small pieces are copied into: filled up to `blockEnd`, not yet in `pieces` from `blockStart`. */
  private block: Uint8Array | null = null;
  private blockStart = 0;
  private blockEnd = 0;
  /**
   * The whole payload of an unfragmented, uncompressed message that spans chunks, allocated
   * once half of it has arrived; its pieces are unmasked straight into it (see
   * {@link Receiver.readPayloadPiece}). Null otherwise.
   */
  private message: Uint8Array | null = null;
  /** The incremental UTF-8 check of text in pieces; created on the first text that needs it. */
  private validator: Utf8Validator | null = null;

  constructor(options: ReceiverOptions) {
    this.requireMask = options.role === 'server';
    this.maxPayload = options.maxPayload;
    const maxFragments = options.maxFragments ?? Infinity;
    this.maxFragments = maxFragments === Infinity ? NO_FRAGMENT_LIMIT : maxFragments;
    this.rsv1Allowed = options.rsv1Allowed ?? false;
    this.natives = nativesFor(options.isUtf8, options.allocate);
  }

  /**
   * Adds received bytes. The receiver takes ownership of `chunk`: it may unmask it in place and
   * hand out views of it, so the caller must not reuse it. Ignored after an 'error' event.
   */
  push(chunk: Uint8Array): void {
    if (this.state === ST_FAILED || chunk.length === 0) return;
    if (this.chunks === NONE) this.chunks = [chunk];
    else this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Bytes held: unparsed input plus the fragments of a message not yet complete. */
  get bufferedBytes(): number {
    return this.buffered + this.piecesBytes;
  }

  /**
   * Allows or forbids RSV1 on the first frame of data messages, once permessage-deflate was
   * negotiated (or not). Takes effect from the next frame header.
   */
  setRsv1Allowed(allowed: boolean): void {
    this.rsv1Allowed = allowed;
  }

  /**
   * Parses as far as the buffered bytes go and returns the next event, or null when more bytes
   * are needed. After an 'error' event, returns null forever.
   */
  next(): ReceiverEvent | null {
    for (;;) {
      switch (this.state) {
        case ST_INFO: {
          if (this.buffered < 2) return null;
          this.take(2);
          const error = this.readInfo(this.hbuf[this.hpos], this.hbuf[this.hpos + 1]);
          if (error !== null) return error;
          this.state = ST_HEADER;
          break;
        }
        case ST_HEADER: {
          const len7 = this.length7;
          const extra = (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.masked ? 4 : 0);
          if (this.buffered < extra) return null;
          if (extra !== 0) this.take(extra);
          const error = this.readLength();
          if (error !== null) return error;
          if (this.opcode >= 8) {
            this.state = ST_CONTROL;
            break;
          }
          const event = this.startDataPayload();
          if (event !== null) return event;
          break;
        }
        case ST_PAYLOAD: {
          if (this.payloadRead < this.payloadLength) {
            if (this.buffered === 0) return null;
            const error = this.readPayloadPiece();
            if (error !== null) return error;
            break;
          }
          this.state = ST_INFO;
          if (this.fin) return this.endMessage();
          break;
        }
        case ST_CONTROL: {
          if (this.buffered < this.payloadLength) return null;
          this.state = ST_INFO;
          return this.controlEvent();
        }
        default:
          return null;
      }
    }
  }

  /** Checks the first two bytes of a frame (RFC 6455 §5.2). Returns an error event or null. */
  private readInfo(b0: number, b1: number): ReceiverErrorEvent | null {
    const fin = (b0 & 0x80) !== 0;
    const rsv1 = (b0 & 0x40) !== 0;
    const opcode = b0 & 0x0f;
    const masked = (b1 & 0x80) !== 0;
    const len7 = b1 & 0x7f;
    // RFC 6455 §5.2: "If a nonzero value is received and none of the negotiated extensions
    // defines the meaning of such a nonzero value, the receiving endpoint MUST _Fail the
    // WebSocket Connection_." No extension we negotiate defines RSV2 or RSV3.
    if ((b0 & 0x30) !== 0) {
      return this.fail(
        'SWITCHYARD_ERR_RESERVED_BITS',
        1002,
        'A frame set RSV2 or RSV3, which no negotiated extension defines (RFC 6455 §5.2).',
      );
    }
    if (opcode >= 8) {
      // RFC 6455 §5.2: "%xB-F are reserved for further control frames"; and "If an unknown
      // opcode is received, the receiving endpoint MUST _Fail the WebSocket Connection_."
      if (opcode > 10) {
        return this.fail(
          'SWITCHYARD_ERR_RESERVED_OPCODE',
          1002,
          `A frame used the reserved control opcode 0x${opcode.toString(16)} (RFC 6455 §5.2).`,
        );
      }
      // RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less and
      // MUST NOT be fragmented." len7 126/127 announce an extended, hence too long, length.
      if (!fin || len7 > MAX_CONTROL_PAYLOAD) {
        return this.fail(
          'SWITCHYARD_ERR_CONTROL_FRAME',
          1002,
          fin
            ? 'A control frame had more than 125 bytes of payload (RFC 6455 §5.5).'
            : 'A control frame was fragmented (FIN clear) (RFC 6455 §5.5).',
        );
      }
      // RFC 7692 §6: the "Per-Message Compressed" bit belongs to data messages only; on a
      // control frame no extension defines RSV1.
      if (rsv1) {
        return this.fail(
          'SWITCHYARD_ERR_RESERVED_BITS',
          1002,
          'A control frame set RSV1, which only the first frame of a data message may carry (RFC 7692 §6).',
        );
      }
    } else if (opcode > 2) {
      // RFC 6455 §5.2: "%x3-7 are reserved for further non-control frames".
      return this.fail(
        'SWITCHYARD_ERR_RESERVED_OPCODE',
        1002,
        `A frame used the reserved data opcode 0x${opcode.toString(16)} (RFC 6455 §5.2).`,
      );
    } else if (opcode === 0) {
      // RFC 6455 §5.4: fragments are a first frame with a nonzero opcode, then continuation
      // frames; a continuation with nothing to continue breaks that.
      if (this.messageOpcode === 0) {
        return this.fail(
          'SWITCHYARD_ERR_CONTINUATION',
          1002,
          'A continuation frame arrived with no fragmented message to continue (RFC 6455 §5.4).',
        );
      }
      // RFC 7692 §6: RSV1 is set on the first frame of a compressed message only.
      if (rsv1) {
        return this.fail(
          'SWITCHYARD_ERR_RESERVED_BITS',
          1002,
          'A continuation frame set RSV1, which only the first frame of a message may carry (RFC 7692 §6).',
        );
      }
    } else {
      // RFC 6455 §5.4: "The fragments of one message MUST NOT be interleaved between the
      // fragments of another message".
      if (this.messageOpcode !== 0) {
        return this.fail(
          'SWITCHYARD_ERR_CONTINUATION',
          1002,
          'A new data frame began before the fragmented message before it had ended (RFC 6455 §5.4).',
        );
      }
      // RFC 6455 §5.2 (RSV1 "MUST be 0 unless an extension is negotiated that defines meanings
      // for non-zero values"), RFC 7692 §6 (permessage-deflate defines it on a first frame).
      if (rsv1 && !this.rsv1Allowed) {
        return this.fail(
          'SWITCHYARD_ERR_RESERVED_BITS',
          1002,
          'A frame set RSV1, but no extension that uses it (permessage-deflate) was negotiated (RFC 6455 §5.2).',
        );
      }
    }
    if (
      opcode < 8 &&
      this.maxFragments !== NO_FRAGMENT_LIMIT &&
      this.fragmentCount >= this.maxFragments
    ) {
      return this.fail(
        'SWITCHYARD_ERR_TOO_MANY_FRAGMENTS',
        1009,
        `A message was split into more than ${this.maxFragments} frames (maxFragments).`,
      );
    }
    // RFC 6455 §5.1: "a client MUST mask all frames that it sends to the server ... The server
    // MUST close the connection upon receiving a frame that is not masked", and "A client MUST
    // close a connection if it detects a masked frame."
    if (masked !== this.requireMask) {
      return this.fail(
        'SWITCHYARD_ERR_MASK',
        1002,
        masked
          ? 'The server sent a masked frame; servers must not mask (RFC 6455 §5.1).'
          : 'The client sent an unmasked frame; clients must mask every frame (RFC 6455 §5.1).',
      );
    }
    this.fin = fin;
    this.opcode = opcode;
    this.masked = masked;
    this.length7 = len7;
    if (opcode === 1 || opcode === 2) {
      this.messageOpcode = opcode;
      this.compressed = rsv1;
      this.checkUtf8 = opcode === 1 && !rsv1;
      this.validator?.reset();
    }
    return null;
  }

  /**
   * Reads the payload length and the masking key from `hbuf[hpos..]` and checks the length.
   * Returns an error event or null.
   */
  private readLength(): ReceiverErrorEvent | null {
    const b = this.hbuf;
    let p = this.hpos;
    let length = this.length7;
    // RFC 6455 §5.2 tells the sender that "the minimal number of bytes MUST be used to encode
    // the length"; it sets no rule for the receiver, and a longer encoding is unambiguous, so
    // (like most implementations) we accept it.
    if (length === 126) {
      length = (b[p] << 8) | b[p + 1];
      p += 2;
    } else if (length === 127) {
      const hi = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
      const lo = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
      p += 8;
      // RFC 6455 §5.2: "the most significant bit MUST be 0".
      if (hi >= 0x8000_0000) {
        return this.fail(
          'SWITCHYARD_ERR_FRAME_LENGTH',
          1002,
          'A 64-bit payload length had its most significant bit set (RFC 6455 §5.2).',
        );
      }
      // At 2^53 and above a double can no longer count bytes exactly; no message that long
      // could be buffered anyway, so it fails as too big whatever maxPayload says.
      if (hi > 0x1f_ffff) {
        return this.tooBig(Number.MAX_SAFE_INTEGER);
      }
      length = hi * TWO_POW_32 + lo;
    }
    if (this.masked) this.maskKey = (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];
    if (this.opcode < 8) {
      if (this.messageLength + length > this.maxPayload) {
        // A compressed message may be a little longer than what it inflates to (RFC 7692 §7.2.1
        // does not promise that compression shrinks anything); its inflated size is checked as it
        // is inflated. The continuation frames of a compressed message take this branch too.
        const compressed = this.compressed;
        if (
          !compressed ||
          this.messageLength + length >
            maxCompressedPayload(this.maxPayload, this.fragmentCount + 1)
        ) {
          return this.tooBig(this.messageLength + length, compressed);
        }
      }
      const len7 = this.length7;
      this.messageOverhead += 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.masked ? 4 : 0);
      if (this.messageOverhead > this.messageLength + length + MAX_FRAMING_OVERHEAD) {
        return this.fail(
          'SWITCHYARD_ERR_TOO_MANY_FRAGMENTS',
          1009,
          `A message's frame headers took ${this.messageOverhead} bytes for ${this.messageLength + length} bytes of payload: more than ${MAX_FRAMING_OVERHEAD} bytes of framing beyond its payload (a flood of empty fragments).`,
        );
      }
    }
    this.payloadLength = length;
    this.payloadRead = 0;
    return null;
  }

  /**
   * Begins the payload of a data frame whose header was read. Returns the message event when
   * the fast path completes it at once (or an error event), else null.
   */
  private startDataPayload(): ReceiverEvent | null {
    const length = this.payloadLength;
    this.fragmentCount++;
    this.messageLength += length;
    if (this.fin && this.fragmentCount === 1) {
      // Fast path: an unfragmented message. If one chunk holds its payload, hand out a view.
      let chunk: Uint8Array = EMPTY;
      let start = 0;
      if (length === 0) {
        this.state = ST_INFO;
        return this.endMessage();
      }
      if (this.chunks.length !== 0) {
        chunk = this.chunks[0];
        start = this.offset;
      }
      if (chunk.length - start >= length) {
        const end = start + length;
        if (this.masked) {
          // Short payloads (most of chat-like traffic) call the JS path directly: a few ns a frame.
          if (length < SIMD_THRESHOLD) maskRange(chunk, start, end, this.key(), 0);
          else maskCopy(chunk, start, end, chunk, start, this.key(), 0);
        }
        const data = chunk.subarray(start, end);
        this.skip(length);
        this.state = ST_INFO;
        const binary = this.messageOpcode === 2;
        const compressed = this.compressed;
        this.resetMessage();
        if (compressed) return { type: 'compressed', binary, data: [data] };
        // RFC 6455 §8.1: text that is not valid UTF-8 fails the connection with 1007. Short
        // texts are checked here: a native validator's call costs more than the check itself
        // (on Node 20, 32 bytes: about 22-46 ns in JS against 53-82 ns for buffer.isUtf8).
        if (
          !binary &&
          !(length < SHORT_TEXT ? isValidUtf8(chunk, start, end) : this.natives.isUtf8(data))
        ) {
          return this.invalidUtf8();
        }
        return { type: 'message', binary, data };
      }
    }
    this.state = ST_PAYLOAD;
    return null;
  }

  /**
   * Consumes the part of the current data frame's payload that sits in the first chunk:
   * unmasks it in place, checks it as UTF-8 if it is text, and keeps it. Returns an error
   * event or null.
   */
  private readPayloadPiece(): ReceiverErrorEvent | null {
    const chunk = this.chunks[0];
    const start = this.offset;
    const n = Math.min(chunk.length - start, this.payloadLength - this.payloadRead);
    const end = start + n;
    const message = this.message ?? this.allocateMessage();
    if (message !== null) {
      // One pass from the socket's chunk into the message, unmasking on the way, instead of an
      // XOR pass in place and a copy when the pieces are joined. RFC 6455 §5.3: the piece starts
      // at byte payloadRead of the payload (the message has one frame), hence of the key.
      const at = this.payloadRead;
      if (this.masked) maskCopy(chunk, start, end, message, at, this.key(), at);
      else message.set(chunk.subarray(start, end), at);
      // RFC 6455 §8.1: fail as soon as the text cannot be valid UTF-8, not at the end of it.
      if (this.checkUtf8 && !this.utf8Validator().write(message, at, at + n)) {
        return this.invalidUtf8();
      }
      this.piecesBytes += n;
      this.payloadRead += n;
      this.skip(n);
      return null;
    }
    // RFC 6455 §5.3: the piece starts at byte payloadRead of the payload, hence of the key.
    if (this.masked) maskCopy(chunk, start, end, chunk, start, this.key(), this.payloadRead);
    // RFC 6455 §8.1: fail as soon as the text cannot be valid UTF-8, not at the end of it.
    if (this.checkUtf8 && !this.utf8Validator().write(chunk, start, end)) return this.invalidUtf8();
    // A view keeps its whole backing buffer alive. A small piece of a large chunk (a 1-byte
    // fragment read together with 64 KiB of pings) is copied, so that what the message holds
    // stays within twice its counted bytes, and maxPayload bounds memory, not just the count.
    if (n < JOIN_BELOW) this.joinSmall(chunk, start, end);
    else {
      this.flushBlock();
      const piece = chunk.subarray(start, end);
      this.keep(n * 2 < chunk.buffer.byteLength ? piece.slice() : piece);
    }
    this.piecesBytes += n;
    this.payloadRead += n;
    this.skip(n);
    return null;
  }

  /**
   * Allocates the buffer of an unfragmented, uncompressed message whose payload spans chunks,
   * once at least half of the payload has arrived (consumed, or buffered in any chunk), and
   * moves the pieces read so far into it. Returns it, or null when the message is fragmented or
   * compressed (its length is not known, or the inflater takes the pieces as they are) or when
   * too little has arrived. Waiting for half keeps a peer that announces a long frame and sends
   * little of it from making us hold more than twice what it sent, as the pieces do.
   */
  private allocateMessage(): Uint8Array | null {
    const length = this.payloadLength;
    if (!this.fin || this.fragmentCount !== 1 || this.compressed) return null;
    const arrived = this.payloadRead + Math.min(this.buffered, length - this.payloadRead);
    if (arrived * 2 < length) return null;
    // Not zeroed when the platform can skip it: every byte is written before it is handed out.
    const message = this.natives.allocate(length);
    this.flushBlock();
    this.block = null;
    const pieces = this.pieces;
    let at = 0;
    for (let i = 0; i < pieces.length; i++) {
      message.set(pieces[i], at);
      at += pieces[i].length;
    }
    this.pieces = NONE;
    this.message = message;
    return message;
  }

  /**
   * Copies a small piece into the current block (a new one when it is full), so that many
   * small fragments cost their bytes, not an object each.
   */
  private joinSmall(chunk: Uint8Array, start: number, end: number): void {
    while (start < end) {
      let block = this.block;
      if (block === null || this.blockEnd === block.length) {
        this.flushBlock();
        block = this.block = new Uint8Array(JOIN_BLOCK);
        this.blockStart = this.blockEnd = 0;
      }
      const n = Math.min(end - start, block.length - this.blockEnd);
      block.set(chunk.subarray(start, start + n), this.blockEnd);
      this.blockEnd += n;
      start += n;
    }
  }

  /** Moves the filled, not yet listed part of the block to `pieces`; the rest stays in use. */
  private flushBlock(): void {
    if (this.block === null || this.blockEnd === this.blockStart) return;
    this.keep(this.block.subarray(this.blockStart, this.blockEnd));
    this.blockStart = this.blockEnd;
  }

  /** Adds a piece to the message being assembled. */
  private keep(piece: Uint8Array): void {
    if (this.pieces === NONE) this.pieces = [piece];
    else this.pieces.push(piece);
  }

  /**
   * The frame's masking key as the 4 bytes the maskers take, spelled out into the array all
   * receivers share (each keeps its key as an integer). Valid until the next call.
   */
  private key(): Uint8Array {
    const key = this.maskKey;
    KEY[0] = key >>> 24;
    KEY[1] = (key >>> 16) & 0xff;
    KEY[2] = (key >>> 8) & 0xff;
    KEY[3] = key & 0xff;
    return KEY;
  }

  /** Unmasks `data[start..end)`, which begins at byte `offset` of the frame's payload. */
  private unmask(data: Uint8Array, start: number, end: number, offset: number): void {
    maskRange(data, start, end, this.key(), offset);
  }

  /** The incremental UTF-8 validator, created on first use (the fast path never needs it). */
  private utf8Validator(): Utf8Validator {
    // The injected whole-buffer validator speeds up long pieces; the portable one would not.
    const isUtf8 = this.natives.isUtf8;
    return (this.validator ??= new Utf8Validator(isUtf8 === isValidUtf8 ? undefined : isUtf8));
  }

  /** Builds the event of the data message whose last frame was just read. */
  private endMessage(): ReceiverEvent {
    this.flushBlock();
    this.block = null;
    const binary = this.messageOpcode === 2;
    const message = this.message;
    if (message !== null) {
      // RFC 6455 §8.1: a text message that stops inside a UTF-8 sequence is invalid.
      if (this.checkUtf8 && !this.utf8Validator().end()) return this.invalidUtf8();
      this.message = null;
      this.resetMessage();
      return { type: 'message', binary, data: message };
    }
    if (this.compressed) {
      // The list goes to the inflater, which may keep it: never hand out the shared one.
      const data = this.pieces === NONE ? [] : this.pieces;
      this.pieces = NONE;
      this.resetMessage();
      return { type: 'compressed', binary, data };
    }
    // RFC 6455 §8.1: a text message that stops inside a UTF-8 sequence is invalid.
    // No validator means no piece of it was checked: an empty text, which is valid.
    if (this.checkUtf8 && this.validator !== null && !this.validator.end()) {
      return this.invalidUtf8();
    }
    const pieces = this.pieces;
    let data: Uint8Array;
    if (pieces.length === 1) {
      // A short message in a mostly empty join block is copied out, so that what it keeps
      // alive stays within twice its bytes.
      const only = pieces[0];
      data = only.length * 2 < only.buffer.byteLength ? only.slice() : only;
    } else if (pieces.length === 0) {
      data = EMPTY;
    } else {
      // The only copy of a fragmented (or chunk-straddling) message: one allocation.
      data = this.natives.allocate(this.piecesBytes);
      let at = 0;
      for (let i = 0; i < pieces.length; i++) {
        data.set(pieces[i], at);
        at += pieces[i].length;
      }
    }
    this.pieces = NONE;
    this.resetMessage();
    return { type: 'message', binary, data };
  }

  /** Reads a whole control frame payload (it is buffered) and builds its event. */
  private controlEvent(): ReceiverEvent {
    const length = this.payloadLength;
    const data = length === 0 ? EMPTY : this.consume(length);
    if (this.masked) this.unmask(data, 0, length, 0);
    if (this.opcode === 9) return { type: 'ping', data };
    if (this.opcode === 10) return { type: 'pong', data };
    // RFC 6455 §5.5.1 and §7.1.5: an empty body means "no status code was present" (1005).
    if (length === 0) return { type: 'close', code: 1005, reason: '' };
    // RFC 6455 §5.5.1: "If there is a body, the first two bytes of the body MUST be a 2-byte
    // unsigned integer ... representing a status code"; one byte cannot be one.
    if (length === 1) {
      return this.fail(
        'SWITCHYARD_ERR_CLOSE_PAYLOAD',
        1002,
        'A close frame had a 1-byte body, too short for a status code (RFC 6455 §5.5.1).',
      );
    }
    const code = (data[0] << 8) | data[1];
    // RFC 6455 §7.4.1: 1005, 1006 and 1015 must not appear in a close frame; §7.4.2: the
    // other unassigned codes are reserved. Receiving one is a protocol error.
    if (!isValidCloseCode(code)) {
      return this.fail(
        'SWITCHYARD_ERR_CLOSE_PAYLOAD',
        1002,
        `A close frame carried the invalid close code ${code} (RFC 6455 §7.4).`,
      );
    }
    // RFC 6455 §5.5.1: the reason is UTF-8; §8.1: invalid UTF-8 fails the connection (1007).
    if (!isValidUtf8(data, 2, length)) return this.invalidUtf8();
    const reason = length === 2 ? '' : decoder.decode(data.subarray(2, length));
    return { type: 'close', code, reason };
  }

  /** Forgets the data message just completed, ready for the next one. */
  private resetMessage(): void {
    this.messageOpcode = 0;
    this.compressed = false;
    this.checkUtf8 = false;
    this.fragmentCount = 0;
    this.messageLength = 0;
    this.messageOverhead = 0;
    this.piecesBytes = 0;
  }

  /** Advances past `n` bytes that all sit in the first chunk. */
  private skip(n: number): void {
    this.buffered -= n;
    this.offset += n;
    if (this.offset === this.chunks[0].length) {
      if (this.chunks.length === 1) this.chunks = NONE;
      else this.chunks.shift();
      this.offset = 0;
    }
  }

  /**
   * Copies the next `n` buffered bytes into `target` at 0, across chunks, consuming them.
   * The caller has checked that they are buffered.
   */
  private copyOut(target: Uint8Array, n: number): void {
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[0];
      const count = Math.min(chunk.length - this.offset, n - at);
      target.set(chunk.subarray(this.offset, this.offset + count), at);
      at += count;
      this.skip(count);
    }
  }

  /**
   * Takes the next `n` (<= 14) buffered bytes, leaving them at `hbuf[hpos..]`: in place when the
   * first chunk holds them all, else gathered into the scratch buffer.
   */
  private take(n: number): void {
    const chunk = this.chunks[0];
    if (chunk.length - this.offset >= n) {
      this.hbuf = chunk;
      this.hpos = this.offset;
      this.skip(n);
    } else {
      const scratch = (this.scratch ??= new Uint8Array(14));
      this.copyOut(scratch, n);
      this.hbuf = scratch;
      this.hpos = 0;
    }
  }

  /**
   * Returns the next `n` buffered bytes, consuming them: a view when the first chunk holds them
   * all, else a copy.
   */
  private consume(n: number): Uint8Array {
    const chunk = this.chunks[0];
    if (chunk.length - this.offset >= n) {
      const data = chunk.subarray(this.offset, this.offset + n);
      this.skip(n);
      return data;
    }
    const data = new Uint8Array(n);
    this.copyOut(data, n);
    return data;
  }

  /** Fails with 1009, saying which size (at least `size` bytes) was over which limit. */
  private tooBig(size: number, compressed = false): ReceiverErrorEvent {
    // RFC 6455 §7.4.1: 1009 "indicates that an endpoint is terminating the connection because
    // it has received a message that is too big for it to process". The reason goes into the
    // close frame, so it stays within 123 bytes.
    const at = size >= Number.MAX_SAFE_INTEGER ? '2^53 or more' : `at least ${size}`;
    return this.fail(
      'SWITCHYARD_ERR_MESSAGE_TOO_BIG',
      1009,
      compressed
        ? `Compressed message of ${at} bytes, over ${maxCompressedPayload(this.maxPayload, this.fragmentCount + 1)} (maxPayload ${this.maxPayload} + deflate overhead)`
        : `Message of ${at} bytes, over maxPayload (${this.maxPayload} bytes)`,
    );
  }

  private invalidUtf8(): ReceiverErrorEvent {
    // RFC 6455 §8.1 and §7.4.1 (1007: "data within a message that was not consistent with the
    // type of the message").
    return this.fail(
      'SWITCHYARD_ERR_INVALID_UTF8',
      1007,
      this.opcode === 8
        ? 'A close frame had a reason that is not valid UTF-8 (RFC 6455 §5.5.1).'
        : 'A text message was not valid UTF-8 (RFC 6455 §8.1).',
    );
  }

  /** Records the failure: drops all input, ignores any more, and returns the error event. */
  private fail(code: ErrorCode, closeCode: number, message: string): ReceiverErrorEvent {
    this.state = ST_FAILED;
    this.chunks = NONE;
    this.offset = 0;
    this.buffered = 0;
    this.pieces = NONE;
    this.piecesBytes = 0;
    this.block = null;
    this.message = null;
    return { type: 'error', error: new RemoteProtocolError(code, message, { closeCode }) };
  }
}
