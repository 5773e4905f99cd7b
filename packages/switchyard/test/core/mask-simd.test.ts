import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { SIMD_THRESHOLD, maskCopy, setSimdMasking } from '../../src/core/mask-simd.js';
import { hex } from '../helpers/frames.js';

/** The definition of RFC 6455 §5.3, written as plainly as possible. */
function referenceMask(data: Uint8Array, mask: Uint8Array, offset: number): Uint8Array {
  return Uint8Array.from(data, (b, i) => b ^ mask[(i + offset) % 4]);
}

const fill = (n: number, seed: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

after(() => setSimdMasking(true));

/**
 * Copies `length` bytes from `srcAt` of a random buffer to `dstAt` of another one (or in place),
 * by the path chosen, and returns both whole backing buffers.
 */
function run(
  simd: boolean,
  c: { length: number; srcAt: number; dstAt: number; mask: Uint8Array; offset: number },
  inPlace: boolean,
): { src: Uint8Array; dst: Uint8Array } {
  setSimdMasking(simd);
  const src = fill(c.srcAt + c.length + 7, 11);
  if (inPlace) {
    maskCopy(src, c.srcAt, c.srcAt + c.length, src, c.srcAt, c.mask, c.offset);
    return { src, dst: src };
  }
  const dst = fill(c.dstAt + c.length + 7, 5);
  // Views that start at the offsets, so that the byteOffsets are unaligned too.
  const from = src.subarray(c.srcAt);
  const to = dst.subarray(c.dstAt);
  maskCopy(from, 0, c.length, to, 0, c.mask, c.offset);
  return { src, dst };
}

function expected(
  c: { length: number; srcAt: number; dstAt: number; mask: Uint8Array; offset: number },
  inPlace: boolean,
): Uint8Array {
  const src = fill(c.srcAt + c.length + 7, 11);
  const out = inPlace ? src : fill(c.dstAt + c.length + 7, 5);
  const at = inPlace ? c.srcAt : c.dstAt;
  out.set(referenceMask(src.subarray(c.srcAt, c.srcAt + c.length), c.mask, c.offset), at);
  return out;
}

const cases = fc.record({
  // Mostly around the threshold and a page (65,536), sometimes several pages.
  length: fc.oneof(
    fc.integer({ min: 0, max: 2 * SIMD_THRESHOLD }),
    fc.integer({ min: 65536 - 80, max: 65536 + 80 }),
    fc.integer({ min: 0, max: 200_000 }),
  ),
  srcAt: fc.integer({ min: 0, max: 19 }),
  dstAt: fc.integer({ min: 0, max: 19 }),
  mask: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  offset: fc.integer({ min: 0, max: 1 << 20 }),
});

describe('maskCopy', () => {
  test('has WebAssembly SIMD on Node (the module validates and instantiates)', () => {
    assert.equal(setSimdMasking(true), true);
  });

  test('the WebAssembly bytes are what scripts/build-wasm.mjs generates', () => {
    const script = fileURLToPath(new URL('../../../../scripts/build-wasm.mjs', import.meta.url));
    // Exits with 1 and says so when the file differs from the script's output.
    execFileSync(process.execPath, [script, '--check'], { stdio: 'pipe' });
  });

  test('masks "Hello" with the key of RFC 6455 §5.7 into another buffer, both paths', () => {
    for (const simd of [true, false]) {
      setSimdMasking(simd);
      const src = new TextEncoder().encode('Hello');
      const dst = new Uint8Array(5);
      maskCopy(src, 0, 5, dst, 0, hex('37 fa 21 3d'), 0);
      assert.deepEqual(dst, hex('7f 9f 4d 51 58'));
      assert.deepEqual(src, new TextEncoder().encode('Hello'), 'the source is left alone');
    }
  });

  for (const simd of [true, false]) {
    const path = simd ? 'WebAssembly' : 'JavaScript fallback';
    test(`copies byte for byte as RFC 6455 §5.3 says, at any length, alignment, key and offset (${path})`, () => {
      fc.assert(
        fc.property(cases, (c) => {
          const { src, dst } = run(simd, c, false);
          assert.deepEqual(dst, expected(c, false), 'the destination, and nothing around it');
          assert.deepEqual(src, fill(c.srcAt + c.length + 7, 11), 'the source is unchanged');
        }),
        { numRuns: 150 },
      );
    });

    test(`masks in place byte for byte, and nothing around the range (${path})`, () => {
      fc.assert(
        fc.property(cases, (c) => {
          assert.deepEqual(run(simd, c, true).src, expected(c, true));
        }),
        { numRuns: 150 },
      );
    });
  }

  test('gives the same bytes by both paths for a payload unmasked in pieces', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100_000 }),
        fc.array(fc.integer({ min: 0, max: 100_000 }), { maxLength: 5 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        (length, rawCuts, mask) => {
          const cuts = [0, ...rawCuts.map((x) => x % (length + 1)).sort((a, b) => a - b), length];
          const results = [true, false].map((simd) => {
            setSimdMasking(simd);
            const src = fill(length, 3);
            const dst = new Uint8Array(length);
            for (let i = 1; i < cuts.length; i++) {
              maskCopy(src, cuts[i - 1], cuts[i], dst, cuts[i - 1], mask, cuts[i - 1]);
            }
            return dst;
          });
          assert.deepEqual(results[0], results[1]);
          assert.deepEqual(results[0], referenceMask(fill(length, 3), mask, 0));
        },
      ),
      { numRuns: 100 },
    );
  });
});
