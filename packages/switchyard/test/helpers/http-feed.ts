// Feeds an HTTP head to HttpHeadParser three ways (STYLE.md, as h11's tests do): whole, one
// byte at a time, and followed by trailing bytes, which must come back untouched in `rest`.
// `expectHead` and `expectHeadError` assert that all three ways agree and return the result.
import assert from 'node:assert/strict';
import { HttpHeadParser } from '../../src/core/http-head.js';
import type {
  HeadKind,
  HeadOf,
  HeadResult,
  HttpHeadParserOptions,
} from '../../src/core/http-head.js';
import type { RemoteProtocolError } from '../../src/core/errors.js';

/** The three ways every head is fed. */
export const FEED_WAYS = ['whole', 'byte by byte', 'with trailing bytes'] as const;
/** One of {@link FEED_WAYS}. */
export type FeedWay = (typeof FEED_WAYS)[number];

/** Bytes that follow a head in the trailing way: a WebSocket frame, then more HTTP. */
export const TRAILING_BYTES = latin1Bytes('\x81\x05hello\r\n\r\nGET / HTTP/1.1\r\n\r\n\xff');

/** Encodes a string one char per byte, as heads travel (chars above 0xff are a test bug). */
export function latin1Bytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) throw new Error(`latin1Bytes: char ${c} does not fit in a byte`);
    out[i] = c;
  }
  return out;
}

/** Decodes bytes one byte per char. */
export function latin1Text(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += String.fromCharCode(b);
  return out;
}

/** What one way of feeding produced. */
export interface FeedOutcome<H> {
  way: FeedWay;
  /** The parser's result, or null when it still wanted more bytes after all were fed. */
  result: HeadResult<H> | null;
  /** How many input bytes had been pushed when the result came (all of them if none came). */
  pushed: number;
  /** What `rest` should hold on success. */
  expectedRest: Uint8Array;
}

/** Feeds `input` one way to a fresh parser. */
export function feedHead<K extends HeadKind>(
  options: HttpHeadParserOptions<K>,
  input: Uint8Array | string,
  way: FeedWay,
): FeedOutcome<HeadOf<K>> {
  const bytes = typeof input === 'string' ? latin1Bytes(input) : input;
  const parser = new HttpHeadParser(options);
  if (way === 'whole') {
    return {
      way,
      result: parser.push(bytes),
      pushed: bytes.length,
      expectedRest: new Uint8Array(0),
    };
  }
  if (way === 'with trailing bytes') {
    const all = new Uint8Array(bytes.length + TRAILING_BYTES.length);
    all.set(bytes);
    all.set(TRAILING_BYTES, bytes.length);
    return { way, result: parser.push(all), pushed: bytes.length, expectedRest: TRAILING_BYTES };
  }
  for (let i = 0; i < bytes.length; i++) {
    // A fresh one-byte array each time, as a socket would hand over separate buffers.
    const result = parser.push(bytes.slice(i, i + 1));
    if (result !== null) {
      return { way, result, pushed: i + 1, expectedRest: new Uint8Array(0) };
    }
  }
  return { way, result: null, pushed: bytes.length, expectedRest: new Uint8Array(0) };
}

/** Feeds `input` all three ways; returns the outcomes in {@link FEED_WAYS} order. */
export function feedThreeWays<K extends HeadKind>(
  options: HttpHeadParserOptions<K>,
  input: Uint8Array | string,
): FeedOutcome<HeadOf<K>>[] {
  return FEED_WAYS.map((way) => feedHead(options, input, way));
}

/**
 * Asserts that `input` parses the same all three ways, that the head ends exactly at the last
 * byte of `input`, and that `rest` is exactly the trailing bytes; returns the head.
 */
export function expectHead<K extends HeadKind>(
  options: HttpHeadParserOptions<K>,
  input: Uint8Array | string,
): HeadOf<K> {
  const bytes = typeof input === 'string' ? latin1Bytes(input) : input;
  let first: HeadOf<K> | undefined;
  for (const outcome of feedThreeWays(options, bytes)) {
    const { result, way } = outcome;
    assert.ok(result, `${way}: the head was not complete`);
    if (!result.ok)
      assert.fail(`${way}: unexpected error ${result.error.code}: ${result.error.message}`);
    assert.equal(outcome.pushed, bytes.length, `${way}: the head ended early`);
    assert.deepEqual([...result.rest], [...outcome.expectedRest], `${way}: rest`);
    if (first === undefined) first = result.head;
    else assert.deepStrictEqual(result.head, first, `${way}: a different head`);
  }
  return first as HeadOf<K>;
}

/** Asserts that `input` fails the same way all three ways; returns the error. */
export function expectHeadError<K extends HeadKind>(
  options: HttpHeadParserOptions<K>,
  input: Uint8Array | string,
): RemoteProtocolError {
  let first: RemoteProtocolError | undefined;
  for (const { result, way } of feedThreeWays(options, input)) {
    assert.ok(result, `${way}: no result; the parser still wants bytes`);
    if (result.ok) assert.fail(`${way}: parsed, but an error was expected`);
    if (first === undefined) {
      first = result.error;
    } else {
      assert.equal(result.error.code, first.code, `${way}: a different code`);
      assert.equal(result.error.status, first.status, `${way}: a different status`);
      assert.equal(result.error.message, first.message, `${way}: a different message`);
    }
  }
  return first as RemoteProtocolError;
}
