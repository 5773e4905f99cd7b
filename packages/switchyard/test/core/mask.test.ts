import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MaskKeySource, applyMask, maskRange } from '../../src/core/mask.js';
import { hex } from '../helpers/frames.js';

/** The definition of RFC 6455 §5.3, written as plainly as possible. */
function referenceMask(data: Uint8Array, mask: Uint8Array, offset: number): Uint8Array {
  return Uint8Array.from(data, (b, i) => b ^ mask[(i + offset) % 4]);
}

describe('applyMask', () => {
  test('masks "Hello" with the key of RFC 6455 §5.7', () => {
    const data = new TextEncoder().encode('Hello');
    applyMask(data, hex('37 fa 21 3d'));
    assert.deepEqual(data, hex('7f 9f 4d 51 58'));
  });

  test('unmasks what it masked (the transform is its own inverse)', () => {
    const data = hex('7f 9f 4d 51 58');
    applyMask(data, hex('37 fa 21 3d'));
    assert.deepEqual(new TextDecoder().decode(data), 'Hello');
  });

  test('leaves an empty payload alone', () => {
    const data = new Uint8Array(0);
    applyMask(data, hex('01 02 03 04'));
    assert.equal(data.length, 0);
  });

  test('starts at the right key byte when offset places data[0] inside the payload', () => {
    const data = hex('00 00 00 00 00');
    applyMask(data, hex('01 02 03 04'), 3);
    assert.deepEqual(data, hex('04 01 02 03 04'));
  });

  test('gives the same result for a payload unmasked in several pieces, at any size and alignment', () => {
    // Sizes on both sides of the 32-bit path's threshold, views at every alignment.
    const mask = hex('a1 b2 c3 d4');
    for (const size of [0, 1, 3, 4, 5, 63, 64, 255, 256, 257, 1000, 4099]) {
      for (let align = 0; align < 4; align++) {
        const backing = new Uint8Array(size + 8);
        for (let i = 0; i < backing.length; i++) backing[i] = (i * 31 + 7) & 0xff;
        const data = backing.subarray(align, align + size);
        const expected = referenceMask(data, mask, 0);
        const cut = size >> 1;
        applyMask(data.subarray(0, cut), mask, 0);
        applyMask(data.subarray(cut), mask, cut);
        assert.deepEqual(data, expected, `size ${size}, alignment ${align}`);
        assert.equal(
          backing[align + size],
          ((align + size) * 31 + 7) & 0xff,
          'no write past the end',
        );
        if (align > 0)
          assert.equal(backing[align - 1], ((align - 1) * 31 + 7) & 0xff, 'no write before');
      }
    }
  });

  test('matches the definition of RFC 6455 §5.3 for any data, key, offset and range', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 700 }),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        fc.nat(1 << 20),
        fc.nat(8),
        (data, mask, offset, skew) => {
          const backing = new Uint8Array(data.length + skew);
          backing.set(data, skew);
          const view = backing.subarray(skew);
          applyMask(view, mask, offset);
          assert.deepEqual(view, referenceMask(data, mask, offset));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('maskRange', () => {
  test('transforms only [start, end) with the key starting at maskOffset', () => {
    const data = new Uint8Array(300);
    maskRange(data, 10, 290, hex('01 02 03 04'), 2);
    assert.equal(data[9], 0);
    assert.equal(data[10], 3);
    assert.equal(data[11], 4);
    assert.equal(data[12], 1);
    assert.equal(data[289], referenceMask(new Uint8Array(280), hex('01 02 03 04'), 2)[279]);
    assert.equal(data[290], 0);
  });
});

describe('MaskKeySource', () => {
  test('hands out 4-byte keys that differ from frame to frame (RFC 6455 §5.3)', () => {
    const source = new MaskKeySource();
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const key = source.next();
      assert.equal(key.length, 4);
      seen.add(Array.from(key).join(','));
    }
    // 5000 draws from 2^32 values: a repeat is possible but vanishingly rare.
    assert.ok(seen.size >= 4990, `only ${seen.size} distinct keys`);
  });

  test('keeps a key unchanged when the pool is used up and replaced', () => {
    const source = new MaskKeySource();
    const first = source.next();
    const copy = Uint8Array.from(first);
    for (let i = 0; i < 3 * 2048; i++) source.next();
    assert.deepEqual(first, copy);
  });

  test('fill() writes a fresh key into a target without allocating a view', () => {
    const source = new MaskKeySource();
    const target = new Uint8Array(4 * 3000 + 2);
    for (let i = 0; i < 3000; i++) source.fill(target, 2 + 4 * i);
    const keys = new Set<string>();
    for (let i = 0; i < 3000; i++)
      keys.add(Array.from(target.subarray(2 + 4 * i, 6 + 4 * i)).join());
    assert.ok(keys.size >= 2990);
    assert.equal(target[0], 0);
  });

  test('draws bytes that look uniformly random', () => {
    const source = new MaskKeySource();
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < 16384; i++) for (const b of source.next()) counts[b]++;
    // 65536 bytes: 256 expected per value; a real CSPRNG stays well inside [150, 370].
    assert.ok(Math.min(...counts) > 150 && Math.max(...counts) < 370, 'byte counts skewed');
  });
});
