import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  WEBSOCKET_GUID,
  computeAcceptKey,
  decodeBase64,
  encodeBase64,
  sha1,
} from '../../src/core/sha1.js';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

// FIPS 180-2 appendix A and the NIST example values for SHA-1.
const SHA1_VECTORS: Array<[string, string | Uint8Array, string]> = [
  ['the empty string', '', 'da39a3ee5e6b4b0d3255bfef95601890afd80709'],
  ['"abc"', 'abc', 'a9993e364706816aba3e25717850c26c9cd0d89d'],
  [
    'the 448-bit message',
    'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq',
    '84983e441c3bd26ebaae4aa1f95129e5e54670f1',
  ],
  [
    'the 896-bit message',
    'abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu',
    'a49b2446a02c645bf419f995b67091253a04a259',
  ],
  [
    'a million "a"',
    new Uint8Array(1_000_000).fill(0x61),
    '34aa973cd4c4daa4f61eeb2bdbad27316534016f',
  ],
];

for (const [name, input, digest] of SHA1_VECTORS) {
  test(`sha1 of ${name} matches the FIPS 180 test vector`, () => {
    assert.equal(hex(sha1(typeof input === 'string' ? utf8(input) : input)), digest);
  });
}

test('sha1 matches node:crypto for every length from 0 to 300 bytes (all padding cases)', () => {
  for (let length = 0; length <= 300; length++) {
    const input = randomBytes(length);
    const bytes = new Uint8Array(input.buffer, input.byteOffset, input.length);
    assert.equal(
      hex(sha1(bytes)),
      createHash('sha1').update(input).digest('hex'),
      `length ${length}`,
    );
  }
});

test('sha1 hashes a subarray view by its own bytes, not its backing buffer', () => {
  const backing = utf8('xxabcxx');
  assert.equal(hex(sha1(backing.subarray(2, 5))), 'a9993e364706816aba3e25717850c26c9cd0d89d');
});

test('sha1 returns a fresh 20-byte array each call', () => {
  const a = sha1(utf8('a'));
  const b = sha1(utf8('b'));
  assert.equal(a.length, 20);
  assert.notEqual(hex(a), hex(b));
  assert.equal(hex(a), '86f7e437faa5a7fce15d1ddcb9eaeaea377667b8');
});

// RFC 4648 §10 test vectors.
const BASE64_VECTORS: Array<[string, string]> = [
  ['', ''],
  ['f', 'Zg=='],
  ['fo', 'Zm8='],
  ['foo', 'Zm9v'],
  ['foob', 'Zm9vYg=='],
  ['fooba', 'Zm9vYmE='],
  ['foobar', 'Zm9vYmFy'],
];

for (const [plain, encoded] of BASE64_VECTORS) {
  test(`encodes ${JSON.stringify(plain)} as ${JSON.stringify(encoded)} (RFC 4648 §10)`, () => {
    assert.equal(encodeBase64(utf8(plain)), encoded);
  });
  test(`decodes ${JSON.stringify(encoded)} to ${JSON.stringify(plain)} (RFC 4648 §10)`, () => {
    assert.deepEqual(decodeBase64(encoded), utf8(plain));
  });
}

test('base64 round-trips every byte value and agrees with Buffer on random input', () => {
  const all = new Uint8Array(256).map((_, i) => i);
  assert.deepEqual(decodeBase64(encodeBase64(all)), all);
  for (let length = 0; length < 70; length++) {
    const input = randomBytes(length);
    const encoded = encodeBase64(new Uint8Array(input));
    assert.equal(encoded, input.toString('base64'));
    assert.deepEqual(decodeBase64(encoded), new Uint8Array(input));
  }
});

test('encodes the characters + and / of the standard alphabet', () => {
  assert.equal(encodeBase64(new Uint8Array([0xfb, 0xff])), '+/8=');
  assert.deepEqual(decodeBase64('+/8='), new Uint8Array([0xfb, 0xff]));
});

const INVALID_BASE64: Array<[string, string]> = [
  ['a length that is not a multiple of 4', 'Zm9vY'],
  ['missing padding', 'Zg'],
  ['missing one pad char', 'Zg='],
  ['padding in the middle', 'Zg==Zg=='],
  ['a pad char before a data char', 'Z=g='],
  ['three pad chars', 'Z==='],
  ['four pad chars', '===='],
  ['the URL-safe alphabet (-)', 'Zm9-'],
  ['the URL-safe alphabet (_)', 'Zm9_'],
  ['whitespace', 'Zm9v Zm9v'],
  ['a line break', 'Zm9v\r\nZm9v'],
  ['a non-ASCII char', 'Zm9\u00e9'],
  ['a char above 0xff', 'Zm9\u20ac'],
  ['a NUL', 'Zm9\u0000'],
  ['non-zero bits before "=="', 'Zh=='],
  ['non-zero bits before "="', 'Zm9='],
  ['an invalid char in the padded group', 'Z!=='],
  ['an invalid third char in the padded group', 'Zm!='],
];

for (const [what, text] of INVALID_BASE64) {
  test(`decodeBase64 returns null for ${what}`, () => {
    assert.equal(decodeBase64(text), null);
  });
}

test('computes the Sec-WebSocket-Accept of RFC 6455 §1.3', () => {
  assert.equal(computeAcceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
});

test('computes the accept value as base64(SHA-1(key + GUID)) for random keys', () => {
  for (let i = 0; i < 50; i++) {
    const key = randomBytes(16).toString('base64');
    const expected = createHash('sha1')
      .update(key + WEBSOCKET_GUID)
      .digest('base64');
    assert.equal(computeAcceptKey(key), expected);
  }
});

test('computes the accept value of keys of any length, short or longer than the reused buffer', () => {
  for (const key of ['', 'a', 'x'.repeat(68), 'x'.repeat(69), 'x'.repeat(500)]) {
    const expected = createHash('sha1')
      .update(key + WEBSOCKET_GUID, 'latin1')
      .digest('base64');
    assert.equal(computeAcceptKey(key), expected, `length ${key.length}`);
  }
});

test('takes key chars as latin1 bytes, and falls back to UTF-8 beyond latin1', () => {
  const latin1Key = 'caf\u00e9';
  assert.equal(
    computeAcceptKey(latin1Key),
    createHash('sha1')
      .update(latin1Key + WEBSOCKET_GUID, 'latin1')
      .digest('base64'),
  );
  const wideKey = 'key\u20ac';
  assert.equal(
    computeAcceptKey(wideKey),
    createHash('sha1')
      .update(wideKey + WEBSOCKET_GUID, 'utf8')
      .digest('base64'),
  );
});

test('a short key after a long one still hashes only its own bytes', () => {
  computeAcceptKey('y'.repeat(60));
  assert.equal(computeAcceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
});
