import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isUtf8 } from 'node:buffer';
import { Utf8Validator, isValidUtf8 } from '../../src/core/utf8.js';
import { concat, hex } from '../helpers/frames.js';

const fatal = new TextDecoder('utf-8', { fatal: true });
function reference(bytes: Uint8Array): boolean {
  try {
    fatal.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Valid sequences: boundary code points and a few classics (after Markus Kuhn's stress test). */
const VALID: Array<[string, string]> = [
  ['the empty string', ''],
  ['U+0000', '00'],
  ['U+007F, the last 1-byte code point', '7f'],
  ['U+0080, the first 2-byte code point', 'c2 80'],
  ['U+07FF, the last 2-byte code point', 'df bf'],
  ['U+0800, the first 3-byte code point', 'e0 a0 80'],
  ['U+D7FF, just below the surrogates', 'ed 9f bf'],
  ['U+E000, just above the surrogates', 'ee 80 80'],
  ['U+FEFF, a byte order mark', 'ef bb bf'],
  ['U+FFFD, the replacement character', 'ef bf bd'],
  ['U+FFFE, a noncharacter (valid in UTF-8)', 'ef bf be'],
  ['U+FFFF, the last 3-byte code point', 'ef bf bf'],
  ['U+10000, the first 4-byte code point', 'f0 90 80 80'],
  ['U+10FFFF, the last code point', 'f4 8f bf bf'],
  ['the Greek word kosme', 'ce ba e1 bd b9 cf 83 ce bc ce b5'],
  ['ASCII then a 4-byte sequence at the end', '61 62 63 64 65 66 67 68 69 f0 9f 98 80'],
];

/** Invalid sequences, each with why. */
const INVALID: Array<[string, string]> = [
  ['a lone continuation byte 0x80', '80'],
  ['a lone continuation byte 0xBF', 'bf'],
  ['two continuation bytes', '80 bf'],
  ['a 2-byte lead followed by a space', 'c2 20'],
  ['a 3-byte lead followed by a space', 'e1 20'],
  ['a 4-byte lead followed by a space', 'f1 20'],
  ['a 5-byte form (U+200000)', 'f8 88 80 80 80'],
  ['a 6-byte form (U+4000000)', 'fc 84 80 80 80 80'],
  ['the byte 0xFE', 'fe'],
  ['the byte 0xFF', 'ff'],
  ['0xFE 0xFE 0xFF 0xFF', 'fe fe ff ff'],
  ['an overlong slash, 2 bytes', 'c0 af'],
  ['an overlong slash, 3 bytes', 'e0 80 af'],
  ['an overlong slash, 4 bytes', 'f0 80 80 af'],
  ['an overlong slash, 5 bytes', 'f8 80 80 80 af'],
  ['an overlong slash, 6 bytes', 'fc 80 80 80 80 af'],
  ['the largest overlong 2-byte form (C1 BF)', 'c1 bf'],
  ['the largest overlong 3-byte form (E0 9F BF)', 'e0 9f bf'],
  ['the largest overlong 4-byte form (F0 8F BF BF)', 'f0 8f bf bf'],
  ['an overlong NUL, 2 bytes', 'c0 80'],
  ['an overlong NUL, 3 bytes', 'e0 80 80'],
  ['an overlong NUL, 4 bytes', 'f0 80 80 80'],
  ['the surrogate U+D800', 'ed a0 80'],
  ['the surrogate U+DB7F', 'ed ad bf'],
  ['the surrogate U+DB80', 'ed ae 80'],
  ['the surrogate U+DBFF', 'ed af bf'],
  ['the surrogate U+DC00', 'ed b0 80'],
  ['the surrogate U+DF80', 'ed be 80'],
  ['the surrogate U+DFFF', 'ed bf bf'],
  ['a surrogate pair encoded as two 3-byte forms', 'ed a0 80 ed b0 80'],
  ['U+110000, above the last code point', 'f4 90 80 80'],
  ['a lead byte 0xF5', 'f5 80 80 80'],
  ['a lead byte 0xF7 (U+1FFFFF)', 'f7 bf bf bf'],
  ['valid ASCII then 0xFF', '68 65 6c 6c 6f ff'],
  ['a truncated 2-byte sequence', 'c2'],
  ['a truncated 3-byte sequence', 'e2 82'],
  ['a truncated 4-byte sequence', 'f0 9f 98'],
  ['a 2-byte lead where a continuation is due', 'e2 c2 80'],
];

describe('isValidUtf8', () => {
  for (const [name, text] of VALID) {
    test(`accepts ${name}`, () => {
      const b = hex(text);
      assert.equal(isValidUtf8(b), true);
      assert.equal(reference(b), true, 'the table agrees with TextDecoder');
    });
  }
  for (const [name, text] of INVALID) {
    test(`rejects ${name}`, () => {
      const b = hex(text);
      assert.equal(isValidUtf8(b), false);
      assert.equal(reference(b), false, 'the table agrees with TextDecoder');
    });
  }

  test('rejects every proper prefix of every valid multi-byte sequence', () => {
    for (const [, text] of VALID) {
      const b = hex(text);
      for (let cut = 1; cut < b.length; cut++) {
        const prefix = b.subarray(0, cut);
        assert.equal(isValidUtf8(prefix), reference(prefix), `${text} cut at ${cut}`);
      }
    }
  });

  test('finds an invalid byte at any position of a long ASCII run (strided fast path)', () => {
    for (let len = 1; len <= 40; len++) {
      for (let at = 0; at < len; at++) {
        const b = new Uint8Array(len).fill(0x61);
        b[at] = 0xff;
        assert.equal(isValidUtf8(b), false, `length ${len}, 0xFF at ${at}`);
        b[at] = 0x80;
        assert.equal(isValidUtf8(b), false, `length ${len}, 0x80 at ${at}`);
      }
      assert.equal(isValidUtf8(new Uint8Array(len).fill(0x7f)), true);
    }
  });

  test('checks only the range between start and end', () => {
    const b = hex('ff 61 e2 82 ac 62 ff');
    assert.equal(isValidUtf8(b), false);
    assert.equal(isValidUtf8(b, 1, 6), true);
    assert.equal(isValidUtf8(b, 1, 4), false, 'the range ends inside a sequence');
    assert.equal(isValidUtf8(b, 3, 6), false, 'the range starts inside a sequence');
    assert.equal(isValidUtf8(b, 1), false);
    assert.equal(isValidUtf8(b, 2, 2), true, 'an empty range');
  });

  test('agrees with a fatal TextDecoder on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => isValidUtf8(b) === reference(b)),
      { numRuns: 5000 },
    );
  });

  test('agrees with a fatal TextDecoder on mutated valid UTF-8', () => {
    const enc = new TextEncoder();
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 40 }),
        fc.nat(),
        fc.integer({ min: 0, max: 255 }),
        (s, where, value) => {
          const b = enc.encode(s);
          assert.equal(isValidUtf8(b), true);
          if (b.length > 0) b[where % b.length] = value;
          return isValidUtf8(b) === reference(b);
        },
      ),
      { numRuns: 5000 },
    );
  });
});

describe('Utf8Validator', () => {
  test('accepts valid text split at every point', () => {
    const all = concat(...VALID.map(([, t]) => hex(t)));
    const v = new Utf8Validator();
    for (let cut = 0; cut <= all.length; cut++) {
      v.reset();
      assert.equal(v.write(all, 0, cut), true);
      assert.equal(v.write(all, cut), true);
      assert.equal(v.end(), true, `cut at ${cut}`);
    }
  });

  test('reports a sequence truncated at every split as incomplete at end()', () => {
    for (const [, text] of VALID) {
      const b = hex(text);
      for (let cut = 1; cut < b.length; cut++) {
        const v = new Utf8Validator();
        assert.equal(v.write(b.subarray(0, cut)), true);
        // Is `cut` inside a sequence? Then end() is false; else the prefix is valid on its own.
        assert.equal(v.end(), isValidUtf8(b, 0, cut), `${text} cut at ${cut}`);
      }
    }
  });

  test('fails on the invalid byte itself, in the middle of a sequence, before the sequence ends', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(hex('ce ba e1 bd')), true);
    assert.equal(v.write(hex('b9 ed')), true);
    assert.equal(v.write(hex('a0')), false, 'ED A0 starts a surrogate: fail at once');
    assert.equal(v.write(hex('80')), false, 'stays failed');
    assert.equal(v.end(), false);
  });

  test('fails on 0xF4 0x90 (above U+10FFFF) as soon as the second byte arrives', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(hex('f4')), true);
    assert.equal(v.write(hex('90')), false);
  });

  test('is ready for a new text after reset()', () => {
    const v = new Utf8Validator();
    assert.equal(v.write(hex('ff')), false);
    v.reset();
    assert.equal(v.write(hex('e2 82')), true);
    v.reset();
    assert.equal(v.end(), true);
  });

  test('agrees with a fatal TextDecoder on random inputs fed in random pieces', () => {
    const enc = new TextEncoder();
    const input = fc.oneof(
      fc.uint8Array({ maxLength: 48 }),
      fc.string({ unit: 'binary', maxLength: 24 }).map((s) => enc.encode(s)),
      fc
        .tuple(fc.string({ unit: 'binary', maxLength: 24 }), fc.nat(), fc.nat(255))
        .map(([s, where, value]) => {
          const b = enc.encode(s);
          if (b.length > 0) b[where % b.length] = value;
          return b;
        }),
    );
    fc.assert(
      fc.property(input, fc.array(fc.nat(), { maxLength: 6 }), (b, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
        const v = new Utf8Validator();
        let ok = true;
        let from = 0;
        for (const to of [...points, b.length]) {
          ok = v.write(b, from, to) && ok;
          from = to;
        }
        return (ok && v.end()) === reference(b);
      }),
      { numRuns: 5000 },
    );
  });

  test('with an injected whole-buffer validator, agrees with TextDecoder on long texts in random pieces', () => {
    const enc = new TextEncoder();
    const input = fc
      .tuple(
        fc.string({ unit: 'binary', minLength: 300, maxLength: 1500 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 2 }),
      )
      .map(([s, edits]) => {
        const b = enc.encode(s);
        for (const [where, value] of edits) b[where % b.length] = value;
        return b;
      });
    fc.assert(
      fc.property(input, fc.array(fc.nat(), { maxLength: 3 }), (b, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
        const v = new Utf8Validator(isUtf8);
        let ok = true;
        let from = 0;
        for (const to of [...points, b.length]) {
          ok = v.write(b, from, to) && ok;
          from = to;
        }
        return (ok && v.end()) === reference(b);
      }),
      { numRuns: 1000 },
    );
  });

  test('hands long pieces to the injected validator, up to the last character boundary', () => {
    const calls: string[] = [];
    const v = new Utf8Validator((b) => {
      calls.push(Buffer.from(b.subarray(-2)).toString('hex') + '/' + b.length);
      return isUtf8(b);
    });
    const text = concat(new Uint8Array(1100).fill(0x61), hex('e2 82'));
    assert.equal(v.write(text), true);
    assert.deepEqual(calls, ['6161/1100']);
    assert.equal(v.write(hex('ac')), true, 'the cut sequence continues in the automaton');
    assert.equal(v.end(), true);
    v.reset();
    assert.equal(
      v.write(concat(new Uint8Array(1100), hex('ff'))),
      false,
      'a rejection by the injected validator',
    );
    assert.equal(v.write(hex('61')), false);
  });
});

describe('Utf8Validator.tryWrite', () => {
  test('a refused piece leaves the validator as it was', () => {
    const v = new Utf8Validator();
    assert.equal(v.tryWrite(hex('c3')), true); // a lead byte: the text may go on
    assert.equal(v.tryWrite(hex('41')), false); // cannot follow it
    assert.equal(v.tryWrite(hex('a9')), true, 'still waiting for the continuation byte');
    assert.equal(v.end(), true);
  });

  test('with last, a piece must end the text between characters, or it is not taken', () => {
    const v = new Utf8Validator();
    assert.equal(v.tryWrite(hex('e2 9c'), 0, 2, true), false);
    assert.equal(v.end(), true, 'nothing was taken');
    assert.equal(v.tryWrite(hex('e2 9c')), true);
    assert.equal(v.tryWrite(hex('93'), 0, 1, true), true);
    assert.equal(v.end(), true);
  });

  test('agrees with a whole-text check on any split, with and without the native fast path', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 3000 }).map((t) => Buffer.from(t)),
          fc.uint8Array({ maxLength: 3000 }),
        ),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.boolean(),
        (bytes, cutSeeds, native) => {
          const cuts = [...new Set(cutSeeds.map((c) => c % (bytes.length + 1)))].sort(
            (a, b) => a - b,
          );
          const v = new Utf8Validator(native ? isUtf8 : undefined);
          let at = 0;
          let ok = true;
          for (const cut of [...cuts, bytes.length]) {
            const last = cut === bytes.length;
            if (!v.tryWrite(bytes, at, cut, last)) {
              ok = false;
              break;
            }
            at = cut;
          }
          assert.equal(ok, isUtf8(bytes));
        },
      ),
      { numRuns: 300 },
    );
  });
});
