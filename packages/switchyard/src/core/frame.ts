/**
 * The frame format of RFC 6455 §5.2: opcodes, close codes, and the serializer.
 *
 * Theory of operation: a frame on the wire is
 *
 * ```
 *  byte 0: FIN RSV1 RSV2 RSV3 opcode(4)
 *  byte 1: MASK payload-len(7)          126 -> 16-bit length follows, 127 -> 64-bit length follows
 *  [2 or 8 bytes of extended length, network byte order]
 *  [4 bytes of masking key, when MASK is set]
 *  payload
 * ```
 *
 * {@link serializeFrame} returns the frame as a list of chunks for a vectored write (`writev`,
 * `cork`): small payloads are copied behind the header into one buffer, since one write of a
 * few hundred bytes costs less than two; large unmasked payloads are passed through untouched
 * behind a separate header, so that a message published to many peers is never copied. A
 * masked payload is always copied, because masking must not change the caller's bytes.
 *
 * Parsing lives in `receiver.ts`.
 */

import { LocalProtocolError } from './errors.js';
import { maskRange } from './mask.js';
import { SIMD_THRESHOLD, maskCopy } from './mask-simd.js';

/**
 * The opcodes of RFC 6455 §5.2 (and §11.8). 0x3-0x7 and 0xB-0xF are reserved.
 *
 * @example
 * ```ts
 * serializeFrame(Opcode.TEXT, new TextEncoder().encode('hi'), {});
 * ```
 */
export const Opcode = {
  CONTINUATION: 0,
  TEXT: 1,
  BINARY: 2,
  CLOSE: 8,
  PING: 9,
  PONG: 10,
} as const;

/** One of the defined opcodes (see {@link Opcode}). */
export type OpcodeValue = (typeof Opcode)[keyof typeof Opcode];

/**
 * The largest payload of a control frame. RFC 6455 §5.5: "All control frames MUST have a
 * payload length of 125 bytes or less and MUST NOT be fragmented."
 */
export const MAX_CONTROL_PAYLOAD = 125;

/**
 * The longest close reason, in UTF-8 bytes: the control frame limit minus the 2-byte code
 * (RFC 6455 §5.5, §5.5.1).
 */
export const MAX_CLOSE_REASON = 123;

/**
 * Tells whether `opcode` is a control opcode (close, ping, pong, or a reserved control opcode).
 * RFC 6455 §5.5: "Control frames are identified by opcodes where the most significant bit of the
 * opcode is 1."
 */
export function isControlOpcode(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/**
 * Tells whether `code` may appear in a close frame, sent or received.
 *
 * - 1000-1003 and 1007-1011 are defined by RFC 6455 §7.4.1; 1012-1014 are registered with IANA
 *   (service restart, try again later, bad gateway) and are accepted.
 * - 1004 is reserved, and 1005, 1006 and 1015 "MUST NOT be set as a status code in a Close
 *   control frame by an endpoint" (RFC 6455 §7.4.1); 1016-2999 are reserved for future
 *   revisions of the protocol and extensions (§7.4.2).
 * - 3000-3999 are registered with IANA for libraries and frameworks, 4000-4999 are for private
 *   use (RFC 6455 §7.4.2); nothing at or above 5000 is defined.
 */
export function isValidCloseCode(code: number): boolean {
  if (code >= 1000 && code <= 1014) {
    return code !== 1004 && code !== 1005 && code !== 1006;
  }
  return code >= 3000 && code <= 4999;
}

/** Options of {@link serializeFrame}. */
export interface SerializeOptions {
  /** The FIN bit: false for every frame of a fragmented message but the last. Default true. */
  fin?: boolean;
  /** The RSV1 bit: set on the first frame of a compressed message (RFC 7692 §6). Default false. */
  rsv1?: boolean;
  /**
   * The 4-byte masking key. A client MUST mask every frame it sends with a fresh key (RFC 6455
   * §5.3); a server MUST NOT mask (§5.1). Null or absent: unmasked.
   */
  mask?: Uint8Array | null;
}

/**
 * Up to this many payload bytes are copied behind the header into one buffer; longer unmasked
 * payloads are sent as a separate chunk, untouched.
 */
const COPY_THRESHOLD = 1024;

/** 2^32, to split a length into two 32-bit halves without losing precision. */
const TWO_POW_32 = 0x1_0000_0000;

/**
 * The size of the header of a frame with `payloadLength` bytes of payload: 2 bytes, plus 2 or 8
 * bytes of extended length, plus 4 bytes of masking key when masked (RFC 6455 §5.2).
 */
export function frameHeaderSize(payloadLength: number, masked: boolean): number {
  const base = payloadLength < 126 ? 2 : payloadLength < 0x10000 ? 4 : 10;
  return masked ? base + 4 : base;
}

/**
 * Writes the frame header into `out` at 0 and returns its length. The length uses the minimal
 * encoding, as RFC 6455 §5.2 requires of a sender: "the minimal number of bytes MUST be used to
 * encode the length".
 */
function writeHeader(
  out: Uint8Array,
  opcode: number,
  length: number,
  fin: boolean,
  rsv1: boolean,
  mask: Uint8Array | null,
): number {
  out[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode;
  const maskBit = mask === null ? 0 : 0x80;
  let p: number;
  if (length < 126) {
    out[1] = maskBit | length;
    p = 2;
  } else if (length < 0x10000) {
    out[1] = maskBit | 126;
    out[2] = length >>> 8;
    out[3] = length & 0xff;
    p = 4;
  } else {
    // RFC 6455 §5.2: "the most significant bit MUST be 0". Array lengths stay below 2^53.
    out[1] = maskBit | 127;
    const hi = Math.floor(length / TWO_POW_32);
    const lo = length >>> 0;
    out[2] = hi >>> 24;
    out[3] = (hi >>> 16) & 0xff;
    out[4] = (hi >>> 8) & 0xff;
    out[5] = hi & 0xff;
    out[6] = lo >>> 24;
    out[7] = (lo >>> 16) & 0xff;
    out[8] = (lo >>> 8) & 0xff;
    out[9] = lo & 0xff;
    p = 10;
  }
  if (mask !== null) {
    out[p] = mask[0];
    out[p + 1] = mask[1];
    out[p + 2] = mask[2];
    out[p + 3] = mask[3];
    p += 4;
  }
  return p;
}

/**
 * Serializes one frame, ready for a vectored write.
 *
 * Returns `[frame]` (header and payload in one new buffer) when the payload is at most 1 KiB or
 * when it is masked, else `[header, payload]` with `payload` the caller's own view, neither
 * copied nor changed. The caller's payload is never modified, even when masking.
 *
 * @param opcode - one of {@link Opcode}.
 * @param payload - the payload (already compressed, for a compressed message).
 * @param options - FIN, RSV1 and the masking key; see {@link SerializeOptions}.
 * @throws {@link LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` for an undefined opcode,
 *   a control frame that is fragmented or longer than 125 bytes (RFC 6455 §5.5), or a masking
 *   key that is not 4 bytes long.
 * @example
 * ```ts
 * // A client's "Hello" (RFC 6455 §5.7): 81 85 37 fa 21 3d 7f 9f 4d 51 58
 * const chunks = serializeFrame(Opcode.TEXT, new TextEncoder().encode('Hello'), {
 *   mask: Uint8Array.of(0x37, 0xfa, 0x21, 0x3d),
 * });
 * ```
 */
export function serializeFrame(
  opcode: number,
  payload: Uint8Array,
  options: SerializeOptions = {},
): Uint8Array[] {
  const fin = options.fin ?? true;
  const rsv1 = options.rsv1 ?? false;
  const mask = options.mask ?? null;
  const length = payload.length;
  if (!(
    opcode === 0 ||
    opcode === 1 ||
    opcode === 2 ||
    opcode === 8 ||
    opcode === 9 ||
    opcode === 10
  )) {
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_INVALID_ARGUMENT',
      `Opcode ${opcode} is not a defined WebSocket opcode (RFC 6455 §5.2).`,
    );
  }
  if (opcode >= 8 && (length > MAX_CONTROL_PAYLOAD || !fin)) {
    // RFC 6455 §5.5: control frames are at most 125 bytes and never fragmented.
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_INVALID_ARGUMENT',
      `A control frame must be unfragmented with at most 125 bytes of payload; got ${length} bytes${fin ? '' : ' with FIN clear'} (RFC 6455 §5.5).`,
    );
  }
  if (mask !== null && mask.length !== 4) {
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_INVALID_ARGUMENT',
      `A masking key is 4 bytes long; got ${mask.length} (RFC 6455 §5.3).`,
    );
  }
  const headerSize = frameHeaderSize(length, mask !== null);
  if (mask === null && length > COPY_THRESHOLD) {
    const header = new Uint8Array(headerSize);
    writeHeader(header, opcode, length, fin, rsv1, null);
    return [header, payload];
  }
  const out = new Uint8Array(headerSize + length);
  writeHeader(out, opcode, length, fin, rsv1, mask);
  // RFC 6455 §5.3: mask the copy, never the caller's bytes. A long payload is masked on its way
  // into the frame (WebAssembly SIMD, see mask-simd.ts) instead of copied and then XORed.
  if (mask !== null && length >= SIMD_THRESHOLD) {
    maskCopy(payload, 0, length, out, headerSize, mask, 0);
  } else {
    out.set(payload, headerSize);
    if (mask !== null) maskRange(out, headerSize, out.length, mask, 0);
  }
  return [out];
}

const encoder = new TextEncoder();

/**
 * Encodes the body of a close frame: the 2-byte code in network byte order followed by the
 * UTF-8 reason (RFC 6455 §5.5.1). With no code, the body is empty, and the peer will report
 * 1005 (§7.1.5).
 *
 * @param code - the close code; must satisfy {@link isValidCloseCode}.
 * @param reason - a reason for people; at most 123 bytes once encoded as UTF-8. Default ''.
 * @throws {@link LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` when the code may not be
 *   sent, when a reason is given without a code, or when the reason is longer than 123 bytes.
 * @example
 * ```ts
 * encodeCloseBody(1000, 'bye'); // 03 e8 62 79 65
 * encodeCloseBody(); // empty
 * ```
 */
export function encodeCloseBody(code?: number, reason = ''): Uint8Array {
  if (code === undefined) {
    if (reason !== '') {
      // RFC 6455 §5.5.1: a body that is present starts with the code; a reason cannot stand alone.
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        'A close reason can only be sent together with a close code (RFC 6455 §5.5.1).',
      );
    }
    return new Uint8Array(0);
  }
  if (!Number.isInteger(code) || !isValidCloseCode(code)) {
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_INVALID_ARGUMENT',
      `Close code ${code} may not be sent: use 1000-1003, 1007-1014 or 3000-4999 (RFC 6455 §7.4).`,
    );
  }
  const reasonBytes = encoder.encode(reason);
  if (reasonBytes.length > MAX_CLOSE_REASON) {
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_INVALID_ARGUMENT',
      `A close reason is at most 123 bytes of UTF-8; this one is ${reasonBytes.length} (RFC 6455 §5.5).`,
    );
  }
  const body = new Uint8Array(2 + reasonBytes.length);
  body[0] = code >>> 8;
  body[1] = code & 0xff;
  body.set(reasonBytes, 2);
  return body;
}
