/**
 * The envelope of a message between instances, for backplanes that carry bytes (Redis, IPC):
 * the publishing instance's id (so that an instance can recognise and skip its own publishes,
 * which a Redis subscription delivers back to it), the topic, the type and the payload.
 *
 * ```
 *  byte 0      version (1)
 *  byte 1      flags: bit 0 set for a binary message
 *  byte 2      n, the length of the origin id (1-255)
 *  n bytes     origin id (ASCII)
 *  2 bytes     m, the length of the topic in UTF-8 bytes (big-endian)
 *  m bytes     topic
 *  the rest    payload
 * ```
 */
import { randomBytes } from 'node:crypto';
import type { BackplaneMessage } from './backplane.js';

const VERSION = 1;
const FLAG_BINARY = 1;
const MAX_TOPIC_BYTES = 0xffff;

/** A message taken out of its envelope, with the id of the instance that published it. */
export interface EnvelopeContents extends BackplaneMessage {
  origin: string;
}

/** A fresh id for one backplane instance: 16 hex digits, random. */
export function createInstanceId(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Puts a message in an envelope (see the layout above).
 * @throws RangeError when the origin id is empty or longer than 255 bytes, or the topic longer
 *   than 65,535 bytes of UTF-8.
 */
export function encodeEnvelope(origin: string, message: BackplaneMessage): Buffer {
  const originBytes = Buffer.from(origin, 'latin1');
  const topicBytes = Buffer.from(message.topic, 'utf8');
  if (originBytes.length === 0 || originBytes.length > 255) {
    throw new RangeError('An origin id is 1 to 255 bytes long');
  }
  if (topicBytes.length > MAX_TOPIC_BYTES) {
    throw new RangeError(`A topic is at most ${MAX_TOPIC_BYTES} bytes of UTF-8`);
  }
  const headerLength = 3 + originBytes.length + 2 + topicBytes.length;
  const out = Buffer.allocUnsafe(headerLength + message.data.length);
  out[0] = VERSION;
  out[1] = message.binary ? FLAG_BINARY : 0;
  out[2] = originBytes.length;
  originBytes.copy(out, 3);
  let p = 3 + originBytes.length;
  out.writeUInt16BE(topicBytes.length, p);
  topicBytes.copy(out, p + 2);
  p += 2 + topicBytes.length;
  out.set(message.data, p);
  return out;
}

/**
 * Takes a message out of its envelope; the payload is a view of `bytes`, not a copy. Returns null
 * for bytes that are not an envelope of a version this code knows (the caller reports that as a
 * `delivery` failure).
 */
export function decodeEnvelope(bytes: Uint8Array): EnvelopeContents | null {
  if (bytes.length < 5 || bytes[0] !== VERSION) return null;
  const buf = Buffer.isBuffer(bytes)
    ? bytes
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const originLength = buf[2];
  if (originLength === 0) return null;
  let p = 3 + originLength;
  if (p + 2 > buf.length) return null;
  const topicLength = buf.readUInt16BE(p);
  p += 2;
  if (p + topicLength > buf.length) return null;
  return {
    origin: buf.toString('latin1', 3, 3 + originLength),
    topic: buf.toString('utf8', p, p + topicLength),
    binary: (buf[1] & FLAG_BINARY) !== 0,
    data: buf.subarray(p + topicLength),
  };
}
