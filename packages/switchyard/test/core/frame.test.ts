import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { LocalProtocolError } from '../../src/core/errors.js';
import {
  MAX_CLOSE_REASON,
  MAX_CONTROL_PAYLOAD,
  Opcode,
  encodeCloseBody,
  frameHeaderSize,
  isControlOpcode,
  isValidCloseCode,
  serializeFrame,
} from '../../src/core/frame.js';
import { Receiver } from '../../src/core/receiver.js';
import { buildFrame, bytes, concat, drain, hex, plain } from '../helpers/frames.js';

const KEY = hex('37 fa 21 3d');

function invalidArgument(fn: () => unknown): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof LocalProtocolError);
    assert.equal(e.code, 'SWITCHYARD_ERR_INVALID_ARGUMENT');
    return true;
  });
}

describe('opcodes', () => {
  test('have the values of RFC 6455 §5.2', () => {
    assert.deepEqual(Opcode, { CONTINUATION: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 });
  });

  test('are control opcodes exactly when their top bit is set (RFC 6455 §5.5)', () => {
    for (let op = 0; op < 16; op++) assert.equal(isControlOpcode(op), op >= 8, `opcode ${op}`);
  });
});

describe('isValidCloseCode', () => {
  const valid = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
  ];
  const invalid = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535, -1000];
  for (const code of valid)
    test(`accepts ${code}`, () => assert.equal(isValidCloseCode(code), true));
  for (const code of invalid)
    test(`rejects ${code}`, () => assert.equal(isValidCloseCode(code), false));
});

describe('frameHeaderSize', () => {
  test('uses 2, 4 or 10 bytes by length, plus 4 for the mask', () => {
    assert.equal(frameHeaderSize(0, false), 2);
    assert.equal(frameHeaderSize(125, false), 2);
    assert.equal(frameHeaderSize(126, false), 4);
    assert.equal(frameHeaderSize(65535, false), 4);
    assert.equal(frameHeaderSize(65536, false), 10);
    assert.equal(frameHeaderSize(2 ** 40, false), 10);
    assert.equal(frameHeaderSize(125, true), 6);
    assert.equal(frameHeaderSize(126, true), 8);
    assert.equal(frameHeaderSize(65536, true), 14);
  });
});

describe('serializeFrame', () => {
  const hello = bytes('Hello');

  test('writes the unmasked "Hello" of RFC 6455 §5.7', () => {
    assert.deepEqual(serializeFrame(Opcode.TEXT, hello), [hex('81 05 48 65 6c 6c 6f')]);
  });

  test('writes the masked "Hello" of RFC 6455 §5.7 without changing the caller\'s payload', () => {
    const payload = bytes('Hello');
    assert.deepEqual(serializeFrame(Opcode.TEXT, payload, { mask: KEY }), [
      hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'),
    ]);
    assert.deepEqual(payload, hello);
  });

  test('writes the fragmented "Hel" + "lo" of RFC 6455 §5.7', () => {
    assert.deepEqual(serializeFrame(Opcode.TEXT, bytes('Hel'), { fin: false }), [
      hex('01 03 48 65 6c'),
    ]);
    assert.deepEqual(serializeFrame(Opcode.CONTINUATION, bytes('lo')), [hex('80 02 6c 6f')]);
  });

  test('writes the unmasked ping and the masked pong of RFC 6455 §5.7', () => {
    assert.deepEqual(serializeFrame(Opcode.PING, hello), [hex('89 05 48 65 6c 6c 6f')]);
    assert.deepEqual(serializeFrame(Opcode.PONG, hello, { mask: KEY }), [
      hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'),
    ]);
  });

  test('writes the 256-byte binary frame of RFC 6455 §5.7 with a 16-bit length', () => {
    const payload = new Uint8Array(256).fill(7);
    const [frame] = serializeFrame(Opcode.BINARY, payload);
    assert.deepEqual(frame.subarray(0, 4), hex('82 7e 01 00'));
    assert.deepEqual(frame.subarray(4), payload);
  });

  test('writes the 64 KiB binary frame of RFC 6455 §5.7 with a 64-bit length, zero copy', () => {
    const payload = new Uint8Array(65536).fill(9);
    const chunks = serializeFrame(Opcode.BINARY, payload);
    assert.equal(chunks.length, 2);
    assert.deepEqual(chunks[0], hex('82 7f 00 00 00 00 00 01 00 00'));
    assert.equal(chunks[1], payload, 'the same view, not a copy');
  });

  test('uses the minimal length encoding at every boundary (RFC 6455 §5.2)', () => {
    for (const [len, head] of [
      [125, '81 7d'],
      [126, '81 7e 00 7e'],
      [65535, '81 7e ff ff'],
      [65536, '81 7f 00 00 00 00 00 01 00 00'],
    ] as const) {
      const chunks = serializeFrame(Opcode.TEXT, new Uint8Array(len));
      assert.deepEqual(chunks[0].subarray(0, hex(head).length), hex(head), `length ${len}`);
    }
  });

  test('writes a length above 2^32 across both halves of the 64-bit field', () => {
    // A fake payload: only .length is read before the split into [header, payload].
    const big = { length: 2 ** 32 + 5 } as Uint8Array;
    const [header] = serializeFrame(Opcode.BINARY, big);
    assert.deepEqual(header, hex('82 7f 00 00 00 01 00 00 00 05'));
  });

  test('copies a payload of up to 1 KiB behind the header, and sends a longer one apart', () => {
    const small = new Uint8Array(1024).fill(1);
    const large = new Uint8Array(1025).fill(2);
    const a = serializeFrame(Opcode.BINARY, small);
    assert.equal(a.length, 1);
    assert.equal(a[0].length, 4 + 1024);
    const b = serializeFrame(Opcode.BINARY, large);
    assert.equal(b.length, 2);
    assert.equal(b[1], large);
  });

  test('always copies (once) a masked payload, whatever its size, and never masks the original', () => {
    const payload = new Uint8Array(5000).fill(0xaa);
    const chunks = serializeFrame(Opcode.BINARY, payload, { mask: KEY });
    assert.equal(chunks.length, 1);
    assert.equal(chunks[0].length, 8 + 5000);
    assert.ok(payload.every((b) => b === 0xaa));
    assert.equal(chunks[0][8], 0xaa ^ 0x37);
    assert.equal(chunks[0][8 + 4999], 0xaa ^ KEY[4999 % 4]);
  });

  test('sets RSV1 and clears FIN when asked', () => {
    assert.deepEqual(serializeFrame(Opcode.TEXT, bytes('x'), { rsv1: true }), [hex('c1 01 78')]);
    assert.deepEqual(serializeFrame(Opcode.BINARY, bytes('x'), { fin: false, rsv1: true }), [
      hex('42 01 78'),
    ]);
  });

  test('writes an empty frame', () => {
    assert.deepEqual(serializeFrame(Opcode.CLOSE, new Uint8Array(0)), [hex('88 00')]);
    assert.deepEqual(serializeFrame(Opcode.CLOSE, new Uint8Array(0), { mask: KEY }), [
      hex('88 80 37 fa 21 3d'),
    ]);
  });

  test('refuses reserved and out-of-range opcodes', () => {
    for (const op of [3, 7, 11, 15, 16, -1, 1.5]) invalidArgument(() => serializeFrame(op, hello));
  });

  test('refuses a control frame longer than 125 bytes or fragmented (RFC 6455 §5.5)', () => {
    assert.doesNotThrow(() => serializeFrame(Opcode.PING, new Uint8Array(MAX_CONTROL_PAYLOAD)));
    invalidArgument(() => serializeFrame(Opcode.PING, new Uint8Array(126)));
    invalidArgument(() => serializeFrame(Opcode.CLOSE, hello, { fin: false }));
  });

  test('refuses a masking key that is not 4 bytes long', () => {
    invalidArgument(() => serializeFrame(Opcode.TEXT, hello, { mask: new Uint8Array(3) }));
  });

  test('matches the independent test frame builder for any payload, flags and key', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1, 2),
        fc
          .uint8Array({ maxLength: 70000 })
          .filter((a) => a.length < 200 || a.length > 65530 || a.length % 97 === 0),
        fc.boolean(),
        fc.boolean(),
        fc.option(fc.uint8Array({ minLength: 4, maxLength: 4 })),
        (opcode, payload, fin, rsv1, mask) => {
          const out = concat(...serializeFrame(opcode, payload, { fin, rsv1, mask }));
          const expected = buildFrame({ opcode, payload, fin, rsv1, mask: mask ?? false });
          assert.deepEqual(out, expected);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('round trip through the Receiver', () => {
  for (const role of ['server', 'client'] as const) {
    test(`delivers what a ${role === 'server' ? 'client' : 'server'} serialized, to a ${role}`, () => {
      fc.assert(
        fc.property(
          fc.array(
            fc.oneof(
              fc.record({ opcode: fc.constant(2), payload: fc.uint8Array({ maxLength: 3000 }) }),
              fc.record({
                opcode: fc.constant(1),
                payload: fc.string({ unit: 'binary', maxLength: 300 }).map((s) => bytes(s)),
              }),
              fc.record({
                opcode: fc.constantFrom(9, 10),
                payload: fc.uint8Array({ maxLength: 125 }),
              }),
            ),
            { maxLength: 8 },
          ),
          (frames) => {
            const keys = role === 'server';
            const receiver = new Receiver({ role, maxPayload: 1 << 20, maxFragments: 10 });
            for (const f of frames) {
              const mask = keys ? crypto.getRandomValues(new Uint8Array(4)) : null;
              for (const c of serializeFrame(f.opcode, f.payload, { mask }))
                receiver.push(Uint8Array.from(c));
            }
            const events = drain(receiver).map(plain);
            assert.deepEqual(
              events,
              frames.map((f) =>
                f.opcode >= 8
                  ? {
                      type: f.opcode === 9 ? 'ping' : 'pong',
                      data: Buffer.from(f.payload).toString('hex'),
                    }
                  : {
                      type: 'message',
                      binary: f.opcode === 2,
                      data: Buffer.from(f.payload).toString('hex'),
                    },
              ),
            );
          },
        ),
        { numRuns: 200 },
      );
    });
  }

  test('delivers a close frame built by encodeCloseBody', () => {
    const receiver = new Receiver({ role: 'client', maxPayload: 100, maxFragments: 1 });
    receiver.push(concat(...serializeFrame(Opcode.CLOSE, encodeCloseBody(4001, 'égal'))));
    assert.deepEqual(plain(receiver.next()!), { type: 'close', code: 4001, reason: 'égal' });
  });
});

describe('encodeCloseBody', () => {
  test('is empty without a code (the peer then reports 1005)', () => {
    assert.deepEqual(encodeCloseBody(), new Uint8Array(0));
  });

  test('writes the code in network byte order, then the UTF-8 reason (RFC 6455 §5.5.1)', () => {
    assert.deepEqual(encodeCloseBody(1000), hex('03 e8'));
    assert.deepEqual(encodeCloseBody(1001, 'bye'), hex('03 e9 62 79 65'));
    assert.deepEqual(encodeCloseBody(4999, '€'), hex('13 87 e2 82 ac'));
  });

  test('accepts a reason of exactly 123 bytes and refuses 124', () => {
    assert.equal(encodeCloseBody(1000, 'a'.repeat(MAX_CLOSE_REASON)).length, 125);
    invalidArgument(() => encodeCloseBody(1000, 'a'.repeat(124)));
    // 41 three-byte characters = 123 bytes; one more ASCII byte is too many.
    assert.equal(encodeCloseBody(1000, '€'.repeat(41)).length, 125);
    invalidArgument(() => encodeCloseBody(1000, '€'.repeat(41) + 'a'));
  });

  test('refuses codes that must not be sent (RFC 6455 §7.4.1)', () => {
    for (const code of [999, 1004, 1005, 1006, 1015, 2000, 5000, 1000.5, NaN]) {
      invalidArgument(() => encodeCloseBody(code));
    }
  });

  test('refuses a reason without a code', () => {
    invalidArgument(() => encodeCloseBody(undefined, 'why'));
  });
});
