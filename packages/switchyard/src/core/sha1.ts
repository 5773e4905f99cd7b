/**
 * SHA-1, base64 and the Sec-WebSocket-Accept computation.
 *
 * Theory of operation: the opening handshake needs exactly one hash, SHA-1 over a ~60-byte
 * string (RFC 6455 §4.2.2), on every connection, and the core may not import `node:crypto`
 * (it is sans-I/O and runs anywhere). So SHA-1 is written here, once, for speed on short
 * inputs: the message schedule and the padding block live in module-level buffers (the core
 * is synchronous, so nothing can re-enter while they are in use), and a call allocates only
 * its 20-byte result. SHA-1 is broken for collision resistance; RFC 6455 uses it only to prove
 * that the server read the key (§1.3), which it still does.
 *
 * Base64 is strict (RFC 4648 §4, standard alphabet, padding required) because it guards the
 * handshake: a lenient decoder would let a malformed Sec-WebSocket-Key through.
 */

/** The GUID that RFC 6455 §1.3 appends to the key before hashing. */
export const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// The 80-word message schedule, reused by every call (FIPS 180-4 §6.1.2 step 1).
const schedule = new Int32Array(80);
// The last one or two blocks: the tail of the message, the 0x80 byte, zeros and the length.
const tailBlocks = new Uint8Array(128);
// Hash state, reused; copied into the result at the end.
const state = new Int32Array(5);

/** Processes one 64-byte block of `bytes` starting at `offset` into `state`. */
function compressBlock(bytes: Uint8Array, offset: number): void {
  const w = schedule;
  for (let i = 0; i < 16; i++) {
    const j = offset + i * 4;
    w[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
  }
  for (let i = 16; i < 80; i++) {
    const x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
    w[i] = (x << 1) | (x >>> 31);
  }
  let a = state[0];
  let b = state[1];
  let c = state[2];
  let d = state[3];
  let e = state[4];
  // FIPS 180-4 §4.1.1: Ch for rounds 0-19, Parity for 20-39 and 60-79, Maj for 40-59.
  for (let i = 0; i < 80; i++) {
    let f: number;
    let k: number;
    if (i < 20) {
      f = (b & c) | (~b & d);
      k = 0x5a827999;
    } else if (i < 40) {
      f = b ^ c ^ d;
      k = 0x6ed9eba1;
    } else if (i < 60) {
      f = (b & c) | (b & d) | (c & d);
      k = 0x8f1bbcdc;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6;
    }
    const t = (((a << 5) | (a >>> 27)) + f + e + k + w[i]) | 0;
    e = d;
    d = c;
    c = (b << 30) | (b >>> 2);
    b = a;
    a = t;
  }
  state[0] = (state[0] + a) | 0;
  state[1] = (state[1] + b) | 0;
  state[2] = (state[2] + c) | 0;
  state[3] = (state[3] + d) | 0;
  state[4] = (state[4] + e) | 0;
}

/**
 * Computes the SHA-1 digest (FIPS 180-4) of `bytes`.
 *
 * @returns a new 20-byte array.
 * @example
 * sha1(new TextEncoder().encode('abc')); // a9 99 3e 36 ...
 */
export function sha1(bytes: Uint8Array): Uint8Array {
  state[0] = 0x67452301;
  state[1] = 0xefcdab89 | 0;
  state[2] = 0x98badcfe | 0;
  state[3] = 0x10325476;
  state[4] = 0xc3d2e1f0 | 0;

  const length = bytes.length;
  const fullBlocks = length >>> 6;
  for (let i = 0; i < fullBlocks; i++) compressBlock(bytes, i * 64);

  // FIPS 180-4 §5.1.1: append 0x80, zeros, then the length in bits as 64-bit big-endian.
  // The tail needs a second block when fewer than 9 bytes are left in the first.
  const tailLength = length - fullBlocks * 64;
  const tailSize = tailLength < 56 ? 64 : 128;
  tailBlocks.fill(0, 0, tailSize);
  tailBlocks.set(bytes.subarray(fullBlocks * 64), 0);
  tailBlocks[tailLength] = 0x80;
  // The bit length, split so that inputs over 512 MiB keep their high bits.
  const high = Math.floor(length / 0x20000000);
  const low = (length << 3) >>> 0;
  tailBlocks[tailSize - 8] = high >>> 24;
  tailBlocks[tailSize - 7] = high >>> 16;
  tailBlocks[tailSize - 6] = high >>> 8;
  tailBlocks[tailSize - 5] = high;
  tailBlocks[tailSize - 4] = low >>> 24;
  tailBlocks[tailSize - 3] = low >>> 16;
  tailBlocks[tailSize - 2] = low >>> 8;
  tailBlocks[tailSize - 1] = low;
  compressBlock(tailBlocks, 0);
  if (tailSize === 128) compressBlock(tailBlocks, 64);

  const digest = new Uint8Array(20);
  for (let i = 0; i < 5; i++) {
    const v = state[i];
    digest[i * 4] = v >>> 24;
    digest[i * 4 + 1] = v >>> 16;
    digest[i * 4 + 2] = v >>> 8;
    digest[i * 4 + 3] = v;
  }
  return digest;
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
// Char code → 6-bit value, or -1 for anything outside the standard alphabet (RFC 4648 §4).
const DECODE_TABLE = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE_TABLE[ALPHABET.charCodeAt(i)] = i;

/**
 * Encodes bytes as base64 with the standard alphabet and `=` padding (RFC 4648 §4).
 *
 * @example
 * encodeBase64(new Uint8Array([1, 2, 3])); // 'AQID'
 */
export function encodeBase64(bytes: Uint8Array): string {
  let out = '';
  const length = bytes.length;
  const whole = length - (length % 3);
  for (let i = 0; i < whole; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out +=
      ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63] + ALPHABET[(n >>> 6) & 63] + ALPHABET[n & 63];
  }
  if (length - whole === 1) {
    const n = bytes[whole] << 16;
    out += ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63] + '==';
  } else if (length - whole === 2) {
    const n = (bytes[whole] << 16) | (bytes[whole + 1] << 8);
    out += ALPHABET[n >>> 18] + ALPHABET[(n >>> 12) & 63] + ALPHABET[(n >>> 6) & 63] + '=';
  }
  return out;
}

/** The 6-bit value of the char at `index`, or -1 when it is not in the alphabet. */
function sextet(text: string, index: number): number {
  const code = text.charCodeAt(index);
  return code < 128 ? DECODE_TABLE[code] : -1;
}

/**
 * Decodes strict base64 (RFC 4648 §4): standard alphabet only, length a multiple of 4, `=`
 * padding only at the end, no whitespace, and the unused bits before the padding zero (RFC
 * 4648 §3.5 lets a decoder reject non-canonical input; we do, so that each byte string has
 * exactly one accepted encoding).
 *
 * @returns the bytes, or `null` when `text` is not canonical base64.
 * @example
 * decodeBase64('AQID'); // Uint8Array [1, 2, 3]
 * decodeBase64('AQID='); // null
 */
export function decodeBase64(text: string): Uint8Array | null {
  const length = text.length;
  if (length % 4 !== 0) return null;
  let padding = 0;
  if (length > 0 && text.charCodeAt(length - 1) === 0x3d) {
    padding = text.charCodeAt(length - 2) === 0x3d ? 2 : 1;
  }
  const out = new Uint8Array((length / 4) * 3 - padding);
  const whole = padding === 0 ? length : length - 4;
  let o = 0;
  for (let i = 0; i < whole; i += 4) {
    const a = sextet(text, i);
    const b = sextet(text, i + 1);
    const c = sextet(text, i + 2);
    const d = sextet(text, i + 3);
    if ((a | b | c | d) < 0) return null;
    const n = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = n >>> 16;
    out[o++] = n >>> 8;
    out[o++] = n;
  }
  if (padding === 0) return out;
  const a = sextet(text, whole);
  const b = sextet(text, whole + 1);
  if ((a | b) < 0) return null;
  if (padding === 2) {
    // "xx==" carries 8 bits: the low 4 bits of the second char must be zero.
    if ((b & 15) !== 0) return null;
    out[o] = (a << 2) | (b >>> 4);
    return out;
  }
  const c = sextet(text, whole + 2);
  // "xxx=" carries 16 bits: the low 2 bits of the third char must be zero.
  if (c < 0 || (c & 3) !== 0) return null;
  const n = (a << 18) | (b << 12) | (c << 6);
  out[o++] = n >>> 16;
  out[o] = n >>> 8;
  return out;
}

// The key and GUID as bytes, reused: a valid key is 24 chars, so 60 bytes in all; longer
// strings (only ever seen in tests or from a broken peer) get a fresh array.
const acceptInput = new Uint8Array(128);
const GUID_LENGTH = WEBSOCKET_GUID.length;

/**
 * Computes the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
 *
 * RFC 6455 §4.2.2: "concatenate this with the Globally Unique Identifier ... A SHA-1 hash
 * (160 bits) [FIPS.180-3], base64-encoded (see Section 4 of [RFC4648]), of this concatenation
 * is then returned in the server's handshake." The key is used as sent, not base64-decoded.
 * Characters are taken as bytes (latin1), as the HTTP head carried them; a key outside
 * latin1 cannot have come off the wire and is encoded as UTF-8.
 *
 * @example
 * computeAcceptKey('dGhlIHNhbXBsZSBub25jZQ=='); // 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='
 */
export function computeAcceptKey(key: string): string {
  const total = key.length + GUID_LENGTH;
  const input =
    total <= acceptInput.length ? acceptInput.subarray(0, total) : new Uint8Array(total);
  for (let i = 0; i < key.length; i++) {
    const code = key.charCodeAt(i);
    if (code > 0xff) return encodeBase64(sha1(new TextEncoder().encode(key + WEBSOCKET_GUID)));
    input[i] = code;
  }
  // The GUID follows the key, whose length varies, so it is written on every call.
  for (let i = 0; i < GUID_LENGTH; i++) input[key.length + i] = WEBSOCKET_GUID.charCodeAt(i);
  return encodeBase64(sha1(input));
}
