import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Opcode, serializeFrame } from '../../src/core/frame.js';
import { MAX_FRAMING_OVERHEAD, Receiver } from '../../src/core/receiver.js';
import { maxCompressedPayload } from '../../src/core/permessage-deflate.js';
import { setSimdMasking } from '../../src/core/mask-simd.js';
import type { ReceiverEvent } from '../../src/core/receiver.js';
import {
  buildFrame,
  bytes,
  concat,
  drain,
  err,
  feedPieces,
  feedThreeWays,
  hex,
  msg,
  options,
  plain,
} from '../helpers/frames.js';
import type { FrameSpec, PlainEvent } from '../helpers/frames.js';

const server = options();
const client = options({ role: 'client' });
const deflate = options({ rsv1Allowed: true });

/** A frame as a client sends it (masked), for a server-side receiver. */
function c(spec: FrameSpec): Uint8Array {
  return buildFrame({ mask: true, ...spec });
}

const toHex = (b: Uint8Array | string): string => Buffer.from(bytes(b)).toString('hex');
const ping = (data: Uint8Array | string): PlainEvent => ({ type: 'ping', data: toHex(data) });
const pong = (data: Uint8Array | string): PlainEvent => ({ type: 'pong', data: toHex(data) });
const close = (code: number, reason = ''): PlainEvent => ({ type: 'close', code, reason });

describe('RFC 6455 §5.7 examples', () => {
  test('parses a single-frame unmasked text message', () => {
    assert.deepEqual(feedThreeWays(hex('81 05 48 65 6c 6c 6f'), client), [msg('Hello')]);
  });

  test('parses a single-frame masked text message', () => {
    assert.deepEqual(feedThreeWays(hex('81 85 37 fa 21 3d 7f 9f 4d 51 58'), server), [
      msg('Hello'),
    ]);
  });

  test('parses a fragmented unmasked text message', () => {
    assert.deepEqual(feedThreeWays(hex('01 03 48 65 6c 80 02 6c 6f'), client), [msg('Hello')]);
  });

  test('parses an unmasked ping and a masked pong', () => {
    assert.deepEqual(feedThreeWays(hex('89 05 48 65 6c 6c 6f'), client), [ping('Hello')]);
    assert.deepEqual(feedThreeWays(hex('8a 85 37 fa 21 3d 7f 9f 4d 51 58'), server), [
      pong('Hello'),
    ]);
  });

  test('parses 256 bytes of binary data in a single unmasked frame', () => {
    const payload = Uint8Array.from({ length: 256 }, (_, i) => i);
    const frame = concat(hex('82 7e 01 00'), payload);
    assert.deepEqual(feedThreeWays(frame, client), [msg(payload)]);
  });

  test('parses 64 KiB of binary data in a single unmasked frame', () => {
    const payload = Uint8Array.from({ length: 65536 }, (_, i) => (i * 7) & 0xff);
    const frame = concat(hex('82 7f 00 00 00 00 00 01 00 00'), payload);
    assert.deepEqual(feedThreeWays(frame, client), [msg(payload)]);
  });

  test('parses 64 KiB of masked binary data', () => {
    const payload = Uint8Array.from({ length: 65536 }, (_, i) => (i * 13) & 0xff);
    assert.deepEqual(feedThreeWays(c({ opcode: 2, payload }), server), [msg(payload)]);
  });
});

describe('payload lengths', () => {
  for (const len of [0, 1, 125, 126, 127, 65535, 65536, 70000]) {
    test(`parses a ${len}-byte payload in its minimal length encoding`, () => {
      const payload = new Uint8Array(len).fill(0x41);
      assert.deepEqual(feedThreeWays(c({ opcode: 2, payload }), server), [msg(payload)]);
    });
  }

  test('accepts non-minimal 16-bit and 64-bit encodings (minimality is a sender rule, RFC 6455 §5.2)', () => {
    assert.deepEqual(feedThreeWays(c({ opcode: 1, payload: 'abc', lengthBits: 16 }), server), [
      msg('abc'),
    ]);
    assert.deepEqual(feedThreeWays(c({ opcode: 1, payload: 'abc', lengthBits: 64 }), server), [
      msg('abc'),
    ]);
    const p = new Uint8Array(300);
    assert.deepEqual(feedThreeWays(c({ opcode: 2, payload: p, lengthBits: 64 }), server), [msg(p)]);
  });

  test('fails with 1002 when a 64-bit length has its most significant bit set', () => {
    const frame = c({ opcode: 2, declaredLength: 0x8000_0000_0000_0005n });
    assert.deepEqual(feedThreeWays(frame, server), [err('SWITCHYARD_ERR_FRAME_LENGTH', 1002)]);
  });

  test('fails with 1009 on a length of 2^53 or more, even with no maxPayload', () => {
    const unlimited = options({ maxPayload: Infinity });
    for (const n of [2n ** 53n, 2n ** 53n + 1n, 2n ** 62n, 2n ** 63n - 1n]) {
      const frame = c({ opcode: 2, declaredLength: n });
      assert.deepEqual(
        feedThreeWays(frame, unlimited),
        [err('SWITCHYARD_ERR_MESSAGE_TOO_BIG', 1009)],
        `${n}`,
      );
    }
  });

  test('reads a 64-bit length just below 2^53 exactly (it fails the limit, not the arithmetic)', () => {
    const frame = c({ opcode: 2, declaredLength: 2n ** 53n - 1n });
    assert.deepEqual(feedThreeWays(frame, options({ maxPayload: 2 ** 53 - 2 })), [
      err('SWITCHYARD_ERR_MESSAGE_TOO_BIG', 1009),
    ]);
    const r = new Receiver(options({ maxPayload: Infinity }));
    r.push(frame);
    assert.equal(r.next(), null, 'waits for the payload');
    assert.equal(r.bufferedBytes, 0);
  });
});

describe('maxPayload and maxFragments', () => {
  const limited = options({ maxPayload: 10, maxFragments: 3 });

  test('accepts a message of exactly maxPayload bytes', () => {
    assert.deepEqual(feedThreeWays(c({ opcode: 2, payload: new Uint8Array(10) }), limited), [
      msg(new Uint8Array(10)),
    ]);
  });

  test('fails with 1009 from the frame header, before the payload arrives', () => {
    const frame = c({ opcode: 2, payload: new Uint8Array(11) });
    const header = frame.subarray(0, 6);
    assert.deepEqual(feedThreeWays(header, limited), [err('SWITCHYARD_ERR_MESSAGE_TOO_BIG', 1009)]);
  });

  test('fails with 1009 when the fragments of one message add up to more than maxPayload', () => {
    const input = concat(
      c({ opcode: 1, payload: 'abcdef', fin: false }),
      c({ opcode: 0, payload: 'ghijk' }),
    );
    assert.deepEqual(feedThreeWays(input, limited), [err('SWITCHYARD_ERR_MESSAGE_TOO_BIG', 1009)]);
  });

  test('counts maxPayload per message, not per connection', () => {
    const input = concat(
      c({ opcode: 1, payload: 'abcdefgh' }),
      c({ opcode: 1, payload: 'ijklmnop' }),
    );
    assert.deepEqual(feedThreeWays(input, limited), [msg('abcdefgh'), msg('ijklmnop')]);
  });

  test('does not count control frames against maxPayload', () => {
    const input = c({ opcode: 9, payload: new Uint8Array(100) });
    assert.deepEqual(feedThreeWays(input, limited), [ping(new Uint8Array(100))]);
  });

  test('accepts a message of exactly maxFragments frames', () => {
    const input = concat(
      c({ opcode: 1, payload: 'a', fin: false }),
      c({ opcode: 0, payload: 'b', fin: false }),
      c({ opcode: 0, payload: 'c' }),
    );
    assert.deepEqual(feedThreeWays(input, limited), [msg('abc')]);
  });

  test('fails with 1009 on one fragment more than maxFragments', () => {
    const input = concat(
      c({ opcode: 1, payload: 'a', fin: false }),
      c({ opcode: 0, payload: 'b', fin: false }),
      c({ opcode: 0, payload: '', fin: false }),
      c({ opcode: 0, payload: 'c' }),
    );
    assert.deepEqual(feedThreeWays(input, limited), [
      err('SWITCHYARD_ERR_TOO_MANY_FRAGMENTS', 1009),
    ]);
  });
});

describe('fragments without a count (the default)', () => {
  const unlimited = options({ maxFragments: undefined, maxPayload: 1 << 24 });

  test('cuts a flood of empty fragments off with 1009 at the first frame past the allowance', () => {
    // 6 bytes of header per masked empty frame: 10,922 of them are within the 64 KiB allowance.
    const allowed = Math.floor(MAX_FRAMING_OVERHEAD / 6);
    const frames = [c({ opcode: 1, payload: '', fin: false })];
    for (let i = 1; i < allowed; i++) frames.push(c({ opcode: 0, payload: '', fin: false }));
    // A last frame whose payload pays for its header completes the message.
    const ok = new Receiver(unlimited);
    ok.push(concat(...frames, c({ opcode: 0, payload: 'xy' })));
    assert.deepEqual(drain(ok).map(plain), [msg('xy')]);
    // One more empty frame is one too many.
    const flood = new Receiver(unlimited);
    flood.push(concat(...frames, c({ opcode: 0, payload: '', fin: false })));
    assert.deepEqual(drain(flood).map(plain), [err('SWITCHYARD_ERR_TOO_MANY_FRAGMENTS', 1009)]);
    assert.equal(flood.bufferedBytes, 0);
  });

  test('does not count control frames between fragments as framing of the message', () => {
    const allowed = Math.floor(MAX_FRAMING_OVERHEAD / 6);
    const frames = [c({ opcode: 1, payload: '', fin: false })];
    for (let i = 1; i < allowed; i++) frames.push(c({ opcode: 0, payload: '', fin: false }));
    const pings = Array.from({ length: 100 }, () => c({ opcode: 9, payload: '' }));
    const r = new Receiver(unlimited);
    r.push(concat(...pings, ...frames, ...pings, c({ opcode: 0, payload: 'xy' })));
    const events = drain(r).map(plain);
    assert.equal(events.length, 201);
    assert.deepEqual(events.at(-1), msg('xy'));
  });

  test('joins small fragments of a text in order, across join blocks, three ways', () => {
    const text = 'é€𝄞abc'.repeat(3000); // about 33 KB: more than two join blocks
    const data = Buffer.from(text);
    const frames: Uint8Array[] = [];
    for (let at = 0; at < data.length; at += 7)
      frames.push(
        c({
          opcode: at === 0 ? 1 : 0,
          payload: data.subarray(at, at + 7),
          fin: at + 7 >= data.length,
        }),
      );
    assert.deepEqual(feedThreeWays(concat(...frames), unlimited), [msg(text)]);
  });

  test('joins small and large fragments in order, and a compressed message too', () => {
    const big = new Uint8Array(5000).fill(0x42);
    const input = concat(
      c({ opcode: 2, payload: 'ab', rsv1: true, fin: false }),
      c({ opcode: 0, payload: big, fin: false }),
      c({ opcode: 0, payload: 'cd', fin: false }),
      c({ opcode: 0, payload: big, fin: false }),
      c({ opcode: 0, payload: 'ef' }),
    );
    const expected = concat(bytes('ab'), big, bytes('cd'), big, bytes('ef'));
    assert.deepEqual(feedThreeWays(input, { ...unlimited, rsv1Allowed: true }), [
      { type: 'compressed', binary: true, data: toHex(expected) },
    ]);
  });
});

describe('opcodes and reserved bits', () => {
  for (const opcode of [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    test(`fails with 1002 on the reserved opcode 0x${opcode.toString(16)}`, () => {
      assert.deepEqual(feedThreeWays(c({ opcode, payload: 'x' }), server), [
        err('SWITCHYARD_ERR_RESERVED_OPCODE', 1002),
      ]);
    });
  }

  for (const bit of ['rsv1', 'rsv2', 'rsv3'] as const) {
    test(`fails with 1002 on ${bit.toUpperCase()} when no extension was negotiated`, () => {
      assert.deepEqual(feedThreeWays(c({ opcode: 1, payload: 'x', [bit]: true }), server), [
        err('SWITCHYARD_ERR_RESERVED_BITS', 1002),
      ]);
    });
  }

  test('fails with 1002 on RSV2 or RSV3 even with permessage-deflate', () => {
    for (const bit of ['rsv2', 'rsv3'] as const) {
      assert.deepEqual(
        feedThreeWays(c({ opcode: 2, payload: 'x', rsv1: true, [bit]: true }), deflate),
        [err('SWITCHYARD_ERR_RESERVED_BITS', 1002)],
      );
    }
  });

  test('fails with 1002 on RSV1 on a control frame, even with permessage-deflate (RFC 7692 §6)', () => {
    assert.deepEqual(feedThreeWays(c({ opcode: 9, payload: 'x', rsv1: true }), deflate), [
      err('SWITCHYARD_ERR_RESERVED_BITS', 1002),
    ]);
  });

  test('fails with 1002 on RSV1 on a continuation frame (RFC 7692 §6)', () => {
    const input = concat(
      c({ opcode: 1, payload: 'a', fin: false, rsv1: true }),
      c({ opcode: 0, payload: 'b', rsv1: true }),
    );
    assert.deepEqual(feedThreeWays(input, deflate), [err('SWITCHYARD_ERR_RESERVED_BITS', 1002)]);
  });

  test('honours setRsv1Allowed from the next frame on', () => {
    const r = new Receiver(server);
    r.setRsv1Allowed(true);
    r.push(c({ opcode: 2, payload: 'z', rsv1: true }));
    assert.equal(r.next()?.type, 'compressed');
    r.setRsv1Allowed(false);
    r.push(c({ opcode: 2, payload: 'z', rsv1: true }));
    assert.deepEqual(plain(r.next()!), err('SWITCHYARD_ERR_RESERVED_BITS', 1002));
  });
});

describe('masking (RFC 6455 §5.1)', () => {
  test('fails with 1002 when a server receives an unmasked frame', () => {
    assert.deepEqual(feedThreeWays(buildFrame({ opcode: 1, payload: 'hi' }), server), [
      err('SWITCHYARD_ERR_MASK', 1002),
    ]);
  });

  test('fails with 1002 when a client receives a masked frame', () => {
    assert.deepEqual(feedThreeWays(c({ opcode: 1, payload: 'hi' }), client), [
      err('SWITCHYARD_ERR_MASK', 1002),
    ]);
  });

  test('unmasks fragments, and a ping between them, with keys whose high bits are set', () => {
    // The receiver keeps the key as one 32-bit integer: bytes >= 0x80 in every position.
    const k1 = hex('80 ff 7f 01');
    const k2 = hex('fe 01 80 ff');
    const input = concat(
      buildFrame({ opcode: 1, payload: 'frag', fin: false, mask: k1 }),
      buildFrame({ opcode: 9, payload: 'p', mask: k2 }),
      buildFrame({ opcode: 0, payload: 'mented', mask: k2 }),
    );
    assert.deepEqual(feedThreeWays(input, server), [ping('p'), msg('fragmented')]);
  });

  test('unmasks with any key, including one of zeros', () => {
    const keys = [hex('00 00 00 00'), hex('ff ff ff ff'), hex('01 02 03 04')];
    for (const mask of keys) {
      assert.deepEqual(
        feedThreeWays(buildFrame({ opcode: 1, payload: 'masked text', mask }), server),
        [msg('masked text')],
      );
    }
  });
});

describe('control frames', () => {
  test('delivers ping and pong payloads as they are, including empty ones', () => {
    const input = concat(
      c({ opcode: 9 }),
      c({ opcode: 10 }),
      c({ opcode: 9, payload: hex('00 ff 80') }),
      c({ opcode: 10, payload: new Uint8Array(125).fill(0xc3) }),
    );
    assert.deepEqual(feedThreeWays(input, server), [
      ping(''),
      pong(''),
      ping(hex('00 ff 80')),
      pong(new Uint8Array(125).fill(0xc3)),
    ]);
  });

  test('fails with 1002 when a control frame is longer than 125 bytes (RFC 6455 §5.5)', () => {
    for (const opcode of [8, 9, 10]) {
      assert.deepEqual(feedThreeWays(c({ opcode, payload: new Uint8Array(126) }), server), [
        err('SWITCHYARD_ERR_CONTROL_FRAME', 1002),
      ]);
    }
  });

  test('fails with 1002 when a control frame uses an extended length, even a short one', () => {
    // The 7-bit field says 126 ("a 16-bit length follows"), which is more than 125 on its own.
    assert.deepEqual(feedThreeWays(c({ opcode: 9, payload: 'x', lengthBits: 16 }), server), [
      err('SWITCHYARD_ERR_CONTROL_FRAME', 1002),
    ]);
  });

  test('fails with 1002 when a control frame is fragmented (RFC 6455 §5.5)', () => {
    for (const opcode of [8, 9, 10]) {
      assert.deepEqual(feedThreeWays(c({ opcode, payload: 'x', fin: false }), server), [
        err('SWITCHYARD_ERR_CONTROL_FRAME', 1002),
      ]);
    }
  });

  test('delivers control frames that arrive between the fragments of a message (RFC 6455 §5.4)', () => {
    const input = concat(
      c({ opcode: 1, payload: 'Hel', fin: false }),
      c({ opcode: 9, payload: 'p1' }),
      c({ opcode: 0, payload: '', fin: false }),
      c({ opcode: 10, payload: 'p2' }),
      c({ opcode: 0, payload: 'lo' }),
    );
    assert.deepEqual(feedThreeWays(input, server), [ping('p1'), pong('p2'), msg('Hello')]);
  });
});

describe('close frames (RFC 6455 §5.5.1)', () => {
  const body = (code: number, reason: Uint8Array | string = ''): Uint8Array =>
    concat(Uint8Array.of(code >> 8, code & 0xff), bytes(reason));

  test('reports 1005 and no reason for an empty close frame (RFC 6455 §7.1.5)', () => {
    assert.deepEqual(feedThreeWays(c({ opcode: 8 }), server), [close(1005)]);
  });

  test('reports the code and the reason', () => {
    assert.deepEqual(feedThreeWays(c({ opcode: 8, payload: body(1000) }), server), [close(1000)]);
    assert.deepEqual(feedThreeWays(c({ opcode: 8, payload: body(1001, 'going away') }), server), [
      close(1001, 'going away'),
    ]);
    assert.deepEqual(feedThreeWays(c({ opcode: 8, payload: body(4000, 'κόσμε') }), server), [
      close(4000, 'κόσμε'),
    ]);
  });

  test('keeps a byte order mark at the start of the reason', () => {
    assert.deepEqual(feedThreeWays(c({ opcode: 8, payload: body(1000, '\ufeffbom') }), server), [
      close(1000, '\ufeffbom'),
    ]);
  });

  test('accepts the longest reason, 123 bytes', () => {
    const reason = 'r'.repeat(123);
    assert.deepEqual(feedThreeWays(c({ opcode: 8, payload: body(3000, reason) }), server), [
      close(3000, reason),
    ]);
  });

  test('fails with 1002 on a 1-byte close body', () => {
    assert.deepEqual(feedThreeWays(c({ opcode: 8, payload: hex('03') }), server), [
      err('SWITCHYARD_ERR_CLOSE_PAYLOAD', 1002),
    ]);
  });

  for (const code of [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999,
  ]) {
    test(`accepts the close code ${code}`, () => {
      assert.deepEqual(feedThreeWays(c({ opcode: 8, payload: body(code) }), server), [close(code)]);
    });
  }

  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]) {
    test(`fails with 1002 on the close code ${code}`, () => {
      assert.deepEqual(feedThreeWays(c({ opcode: 8, payload: body(code) }), server), [
        err('SWITCHYARD_ERR_CLOSE_PAYLOAD', 1002),
      ]);
    });
  }

  test('fails with 1007 on a close reason that is not UTF-8', () => {
    for (const bad of [hex('ff'), hex('ce ba e1 bd'), hex('ed a0 80'), hex('c0 80')]) {
      assert.deepEqual(feedThreeWays(c({ opcode: 8, payload: body(1000, bad) }), server), [
        err('SWITCHYARD_ERR_INVALID_UTF8', 1007),
      ]);
    }
  });
});

describe('fragmentation (RFC 6455 §5.4)', () => {
  test('fails with 1002 on a continuation frame with no message to continue', () => {
    assert.deepEqual(feedThreeWays(c({ opcode: 0, payload: 'x' }), server), [
      err('SWITCHYARD_ERR_CONTINUATION', 1002),
    ]);
    const afterComplete = concat(c({ opcode: 1, payload: 'a' }), c({ opcode: 0, payload: 'b' }));
    assert.deepEqual(feedThreeWays(afterComplete, server), [
      msg('a'),
      err('SWITCHYARD_ERR_CONTINUATION', 1002),
    ]);
  });

  test('fails with 1002 on a new data frame while a fragmented message is open', () => {
    for (const opcode of [1, 2]) {
      const input = concat(c({ opcode: 2, payload: 'a', fin: false }), c({ opcode, payload: 'b' }));
      assert.deepEqual(feedThreeWays(input, server), [err('SWITCHYARD_ERR_CONTINUATION', 1002)]);
    }
  });

  test('assembles a message from many fragments, including empty ones', () => {
    const parts = ['', 'a', '', 'bc', 'def', ''];
    const input = concat(
      ...parts.map((payload, i) =>
        c({ opcode: i === 0 ? 2 : 0, payload, fin: i === parts.length - 1 }),
      ),
    );
    assert.deepEqual(feedThreeWays(input, server), [msg(bytes('abcdef'))]);
  });

  test('delivers an empty text message, fragmented or not', () => {
    assert.deepEqual(feedThreeWays(c({ opcode: 1 }), server), [msg('')]);
    const input = concat(c({ opcode: 1, fin: false }), c({ opcode: 0 }));
    assert.deepEqual(feedThreeWays(input, server), [msg('')]);
  });

  test('parses several messages in one chunk', () => {
    const input = concat(
      c({ opcode: 1, payload: 'one' }),
      c({ opcode: 2, payload: hex('0102') }),
      c({ opcode: 1, payload: 'three' }),
    );
    assert.deepEqual(feedThreeWays(input, server), [msg('one'), msg(hex('0102')), msg('three')]);
  });
});

describe('UTF-8 of text messages (RFC 6455 §8.1)', () => {
  test('fails with 1007 on a single text frame that is not UTF-8', () => {
    for (const bad of ['ff', 'c0 af', 'ed a0 80', 'f4 90 80 80', '68 65 6c 6c 6f ed bf bf']) {
      assert.deepEqual(feedThreeWays(c({ opcode: 1, payload: hex(bad) }), server), [
        err('SWITCHYARD_ERR_INVALID_UTF8', 1007),
      ]);
    }
  });

  test('does not check binary messages', () => {
    assert.deepEqual(feedThreeWays(c({ opcode: 2, payload: hex('ff fe') }), server), [
      msg(hex('ff fe')),
    ]);
  });

  test('accepts a character split across fragments', () => {
    const input = concat(
      c({ opcode: 1, payload: hex('e2'), fin: false }),
      c({ opcode: 0, payload: hex('82'), fin: false }),
      c({ opcode: 0, payload: hex('ac') }),
    );
    assert.deepEqual(feedThreeWays(input, server), [msg('€')]);
  });

  test('fails with 1007 when a text fragment ends inside a UTF-8 sequence', () => {
    const input = concat(
      c({ opcode: 1, payload: 'ok', fin: false }),
      c({ opcode: 0, payload: hex('e2 82') }),
    );
    assert.deepEqual(feedThreeWays(input, server), [err('SWITCHYARD_ERR_INVALID_UTF8', 1007)]);
    assert.deepEqual(feedThreeWays(c({ opcode: 1, payload: hex('f0 9f 98') }), server), [
      err('SWITCHYARD_ERR_INVALID_UTF8', 1007),
    ]);
  });

  test('checks each fragmented text from its own start, after other texts on the same connection', () => {
    // The piece-by-piece check is set up on the first text that needs it, then reused.
    const euro = bytes('€'); // e2 82 ac
    const input = concat(
      c({ opcode: 1, payload: 'plain' }),
      c({ opcode: 1, payload: concat(bytes('a'), euro.subarray(0, 2)), fin: false }),
      c({ opcode: 0, payload: euro.subarray(2) }),
      c({ opcode: 1, payload: euro.subarray(0, 1), fin: false }),
      c({ opcode: 0, payload: new Uint8Array(0) }),
    );
    assert.deepEqual(feedThreeWays(input, server), [
      msg('plain'),
      msg('a€'),
      err('SWITCHYARD_ERR_INVALID_UTF8', 1007),
    ]);
  });

  test('fails with 1007 on a surrogate assembled across fragments', () => {
    const input = concat(
      c({ opcode: 1, payload: hex('ed'), fin: false }),
      c({ opcode: 0, payload: hex('a0 80') }),
    );
    assert.deepEqual(feedThreeWays(input, server), [err('SWITCHYARD_ERR_INVALID_UTF8', 1007)]);
  });

  test('fails with 1007 as soon as a chunk holds invalid bytes, before the rest of the frame (case 6.4.3)', () => {
    // A 21-byte text frame: "κόσμε", then an invalid F4 90 80 80, then "edited".
    const payload = concat(
      hex('ce ba e1 bd b9 cf 83 ce bc ce b5'),
      hex('f4 90 80 80'),
      bytes('edited'),
    );
    const frame = c({ opcode: 1, payload });
    const first = frame.subarray(0, 6 + 11); // header and the valid text
    const second = frame.subarray(6 + 11, 6 + 15); // the invalid sequence
    const rest = frame.subarray(6 + 15);
    const r = new Receiver(server);
    r.push(Uint8Array.from(first));
    assert.equal(r.next(), null, 'valid so far: waits');
    r.push(Uint8Array.from(second));
    assert.deepEqual(plain(r.next()!), err('SWITCHYARD_ERR_INVALID_UTF8', 1007));
    r.push(Uint8Array.from(rest));
    assert.equal(r.next(), null);
    // The same three ways: the frame's first 17 + 2 bytes (F4 90) already fail.
    assert.deepEqual(feedThreeWays(frame.subarray(0, 6 + 13), server), [
      err('SWITCHYARD_ERR_INVALID_UTF8', 1007),
    ]);
  });

  test('fails with 1007 on an invalid fragment as soon as its bytes arrive, before it ends (case 6.4.4)', () => {
    const input = concat(
      c({ opcode: 1, payload: hex('ce ba e1 bd b9 cf 83 ce bc ce b5'), fin: false }),
      c({ opcode: 0, payload: concat(hex('f4 90'), bytes('remaining bytes')) }).subarray(0, 6 + 2),
    );
    assert.deepEqual(feedThreeWays(input, server), [err('SWITCHYARD_ERR_INVALID_UTF8', 1007)]);
  });

  test('does not check compressed text (the caller checks it after inflating)', () => {
    assert.deepEqual(feedThreeWays(c({ opcode: 1, payload: hex('ff c0'), rsv1: true }), deflate), [
      { type: 'compressed', binary: false, data: 'ffc0' },
    ]);
  });

  test('uses the injected whole-buffer validator for texts of 64 bytes or more that one chunk holds', () => {
    const seen: number[] = [];
    const isUtf8 = (b: Uint8Array): boolean => {
      seen.push(b.length);
      return !Buffer.from(b).toString().includes('bad');
    };
    const good = 'good'.repeat(16);
    const bad = 'bad!'.repeat(16);
    const r = new Receiver(options({ isUtf8 }));
    r.push(
      concat(
        c({ opcode: 1, payload: 'short' }),
        c({ opcode: 1, payload: good }),
        c({ opcode: 1, payload: bad }),
      ),
    );
    assert.deepEqual(drain(r).map(plain), [
      msg('short'),
      msg(good),
      err('SWITCHYARD_ERR_INVALID_UTF8', 1007),
    ]);
    assert.deepEqual(seen, [64, 64], 'the 5-byte text was checked by the built-in validator');
  });

  test('uses the injected validator for long pieces of a text that arrives in several chunks', () => {
    const seen: number[] = [];
    const isUtf8 = (b: Uint8Array): boolean => {
      seen.push(b.length);
      return !Buffer.from(b).toString().includes('bad');
    };
    const text = 'é'.repeat(1500);
    const frame = c({ opcode: 1, payload: text });
    const r = new Receiver(options({ isUtf8 }));
    r.push(frame.subarray(0, 2001)); // an 8-byte header, then 1993 payload bytes: 996 'é' and a lead byte
    r.push(frame.subarray(2001));
    assert.deepEqual(drain(r).map(plain), [msg(text)]);
    assert.deepEqual(seen, [1992], 'up to the last character boundary of the first piece');
  });
});

describe('the injected allocator (buffers that are not zeroed)', () => {
  /** An allocator that hands out garbage, as `Buffer.allocUnsafeSlow` may, and records the sizes. */
  function dirty(): { allocate: (n: number) => Uint8Array; sizes: number[] } {
    const sizes: number[] = [];
    return {
      sizes,
      allocate: (n) => {
        sizes.push(n);
        return new Uint8Array(n).fill(0xa5);
      },
    };
  }

  test('a message that spans reads is assembled in a buffer from the allocator, every byte written', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 200, maxLength: 3000 }),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 12 }),
        (payload, masked, cuts) => {
          const { allocate, sizes } = dirty();
          // A server reads masked frames, a client unmasked ones.
          const reader = new Receiver(options({ allocate, role: masked ? 'server' : 'client' }));
          const frame = buildFrame({ opcode: 2, payload, mask: masked });
          const header = frame.length - payload.length;
          let at = 0;
          let spans = false; // a read ends inside the payload
          for (const cut of cuts) {
            if (at + cut >= frame.length) break;
            reader.push(frame.slice(at, at + cut));
            at += cut;
            if (at > header) spans = true;
          }
          reader.push(frame.slice(at));
          const events = drain(reader);
          assert.equal(events.length, 1);
          const event = events[0];
          assert.equal(event.type, 'message');
          assert.deepEqual(
            Buffer.from(event.type === 'message' ? event.data : []),
            Buffer.from(payload),
          );
          // A payload split across reads is assembled through the allocator; one that a single
          // read holds is handed out as a view of it, with no allocation.
          assert.deepEqual(sizes, spans ? [payload.length] : []);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('a fragmented message is joined into a buffer from the allocator', () => {
    const { allocate, sizes } = dirty();
    const r = new Receiver(options({ allocate }));
    const first = 'x'.repeat(3000);
    const second = 'y'.repeat(2000);
    r.push(concat(c({ opcode: 1, payload: first, fin: false }), c({ opcode: 0, payload: second })));
    assert.deepEqual(drain(r).map(plain), [msg(first + second)]);
    assert.deepEqual(sizes, [5000]);
  });

  test('a message cut off by an error never hands out the unwritten buffer', () => {
    const { allocate, sizes } = dirty();
    const r = new Receiver(options({ allocate }));
    // A text whose byte 2100 (0xff) can never be UTF-8, sent in two reads: the buffer is
    // allocated during the first (half of the payload has arrived), the second fails it.
    const payload = concat(bytes('a'.repeat(2100)), hex('ff'), bytes('a'.repeat(899)));
    const frame = c({ opcode: 1, payload });
    r.push(frame.subarray(0, 1600));
    r.push(frame.subarray(1600, 2500));
    const events = drain(r).map(plain);
    assert.deepEqual(events, [err('SWITCHYARD_ERR_INVALID_UTF8', 1007)]);
    assert.deepEqual(sizes, [3000]);
  });
});

describe('compressed messages (RFC 7692)', () => {
  test('delivers the raw pieces of a fragmented compressed message', () => {
    const input = concat(
      c({ opcode: 2, payload: hex('01 02'), rsv1: true, fin: false }),
      c({ opcode: 9, payload: 'p' }),
      c({ opcode: 0, payload: hex('03') }),
    );
    assert.deepEqual(feedThreeWays(input, deflate), [
      ping('p'),
      { type: 'compressed', binary: true, data: '010203' },
    ]);
  });

  test("lets a compressed message exceed maxPayload by deflate's worst-case expansion, no more", () => {
    // A message of maxPayload bytes that did not compress is a little longer once compressed;
    // the inflater enforces maxPayload on what it inflates to.
    const opts = options({ rsv1Allowed: true, maxPayload: 4 });
    const bound = maxCompressedPayload(4, 1);
    assert.equal(bound, 4 + 1 + 1 + 1 + 4 + 16);
    const fits = Buffer.alloc(bound, 7);
    assert.deepEqual(feedThreeWays(c({ opcode: 1, payload: fits, rsv1: true }), opts), [
      { type: 'compressed', binary: false, data: fits.toString('hex') },
    ]);
    assert.deepEqual(
      feedThreeWays(c({ opcode: 1, payload: Buffer.alloc(bound + 1), rsv1: true }), opts),
      [err('SWITCHYARD_ERR_MESSAGE_TOO_BIG', 1009)],
    );
    // Uncompressed frames get no such allowance.
    assert.deepEqual(feedThreeWays(c({ opcode: 1, payload: '12345' }), opts), [
      err('SWITCHYARD_ERR_MESSAGE_TOO_BIG', 1009),
    ]);
  });

  test('the allowance grows by the sync flush of each fragment of a compressed message', () => {
    const opts = options({ rsv1Allowed: true, maxPayload: 4 });
    const first = Buffer.alloc(maxCompressedPayload(4, 1), 1);
    const rest = Buffer.alloc(16, 2);
    const input = concat(
      c({ opcode: 2, payload: first, rsv1: true, fin: false }),
      c({ opcode: 0, payload: rest }),
    );
    assert.deepEqual(feedThreeWays(input, opts), [
      { type: 'compressed', binary: true, data: first.toString('hex') + rest.toString('hex') },
    ]);
    const over = concat(
      c({ opcode: 2, payload: first, rsv1: true, fin: false }),
      c({ opcode: 0, payload: Buffer.alloc(17) }),
    );
    assert.deepEqual(feedThreeWays(over, opts), [err('SWITCHYARD_ERR_MESSAGE_TOO_BIG', 1009)]);
  });

  test('every 1009 says which size was over which limit, within the 123 bytes of a close reason', () => {
    const reasonOf = (input: Uint8Array, maxPayload: number): string => {
      const r = new Receiver(options({ rsv1Allowed: true, maxPayload }));
      r.push(input);
      const event = drain(r).at(-1);
      assert.equal(event?.type, 'error');
      const message = (event as Extract<ReceiverEvent, { type: 'error' }>).error.message;
      assert.ok(Buffer.byteLength(message) <= 123, message);
      return message;
    };
    const max = 16 * 1024 * 1024;
    const head = (len: number, rsv1: boolean) => {
      const b = Buffer.alloc(14);
      b[0] = 0x82 | (rsv1 ? 0x40 : 0);
      b[1] = 0x80 | 127;
      b.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
      b.writeUInt32BE(len >>> 0, 6);
      return b;
    };
    assert.equal(
      reasonOf(head(max + 1, false), max),
      `Message of at least ${max + 1} bytes, over maxPayload (${max} bytes)`,
    );
    const bound = maxCompressedPayload(max, 1);
    assert.equal(
      reasonOf(head(bound + 1, true), max),
      `Compressed message of at least ${bound + 1} bytes, over ${bound} (maxPayload ${max} + deflate overhead)`,
    );
    assert.match(reasonOf(head(2 ** 60, false), max), /of 2\^53 or more bytes, over maxPayload/);
  });

  test('delivers an uncompressed message normally when permessage-deflate is on', () => {
    assert.deepEqual(feedThreeWays(c({ opcode: 1, payload: 'plain' }), deflate), [msg('plain')]);
  });
});

describe('buffers and ownership', () => {
  test('hands out a view of the input chunk, unmasked in place, when one chunk holds the frame', () => {
    const chunk = concat(c({ opcode: 2, payload: 'abc' }), c({ opcode: 1, payload: 'de' }));
    const r = new Receiver(server);
    r.push(chunk);
    const a = r.next() as Extract<ReceiverEvent, { type: 'message' }>;
    const b = r.next() as Extract<ReceiverEvent, { type: 'message' }>;
    assert.equal(a.data.buffer, chunk.buffer);
    assert.equal(a.data.byteOffset, chunk.byteOffset + 6);
    assert.equal(b.data.buffer, chunk.buffer);
    assert.equal(b.data.byteOffset, chunk.byteOffset + 6 + 3 + 6);
    assert.equal(Buffer.from(a.data).toString(), 'abc');
    assert.equal(Buffer.from(b.data).toString(), 'de');
  });

  test('joins a fragmented message into one new buffer', () => {
    const chunk = concat(
      c({ opcode: 2, payload: 'ab', fin: false }),
      c({ opcode: 0, payload: 'cd' }),
    );
    const r = new Receiver(server);
    r.push(chunk);
    const ev = r.next() as Extract<ReceiverEvent, { type: 'message' }>;
    assert.notEqual(ev.data.buffer, chunk.buffer);
    assert.equal(ev.data.byteLength, 4);
    assert.equal(ev.data.buffer.byteLength, 4, 'exactly one allocation of the total');
  });

  test('counts buffered bytes: an incomplete frame, then held fragments, then nothing', () => {
    const r = new Receiver(server);
    const first = c({ opcode: 1, payload: 'abcd', fin: false });
    r.push(first.subarray(0, 3));
    assert.equal(r.next(), null);
    // The first two bytes are parsed into the receiver's state: only the third is still held.
    assert.equal(r.bufferedBytes, 1);
    r.push(first.subarray(3));
    assert.equal(r.next(), null);
    assert.equal(r.bufferedBytes, 4, 'the payload of the first fragment is held');
    const last = c({ opcode: 0, payload: 'ef' });
    r.push(last.subarray(0, 7));
    assert.equal(r.next(), null);
    assert.equal(r.bufferedBytes, 5);
    r.push(last.subarray(7));
    assert.deepEqual(plain(r.next()!), msg('abcdef'));
    assert.equal(r.bufferedBytes, 0);
  });

  test('ignores empty chunks', () => {
    const r = new Receiver(server);
    r.push(new Uint8Array(0));
    assert.equal(r.next(), null);
    r.push(c({ opcode: 1, payload: 'x' }));
    r.push(new Uint8Array(0));
    assert.deepEqual(plain(r.next()!), msg('x'));
    assert.equal(r.next(), null);
  });

  test('returns null forever after an error and ignores further input', () => {
    const r = new Receiver(server);
    r.push(concat(buildFrame({ opcode: 1, payload: 'unmasked' }), c({ opcode: 1, payload: 'ok' })));
    assert.equal(r.next()?.type, 'error');
    assert.equal(r.next(), null);
    r.push(c({ opcode: 1, payload: 'more' }));
    assert.equal(r.next(), null);
    assert.equal(r.bufferedBytes, 0);
  });

  test('names the error for people and gives the close code to send', () => {
    const r = new Receiver(server);
    r.push(c({ opcode: 3 }));
    const ev = r.next();
    assert.ok(ev?.type === 'error');
    assert.equal(ev.error.name, 'RemoteProtocolError');
    assert.equal(ev.error.closeCode, 1002);
    assert.match(ev.error.message, /reserved data opcode 0x3/);
  });
});

describe('properties', () => {
  /** A random valid stream: messages (maybe fragmented, with control frames between fragments). */
  const stream = fc.array(
    fc.oneof(
      fc.record({
        kind: fc.constant('message' as const),
        binary: fc.boolean(),
        parts: fc.array(fc.string({ unit: 'binary', maxLength: 40 }), {
          minLength: 1,
          maxLength: 4,
        }),
        controls: fc.array(fc.uint8Array({ maxLength: 125 }), { maxLength: 3 }),
        bits: fc.constantFrom(7 as const, 16 as const, 64 as const, undefined),
      }),
      fc.record({ kind: fc.constant('ping' as const), data: fc.uint8Array({ maxLength: 125 }) }),
      fc.record({ kind: fc.constant('big' as const), size: fc.integer({ min: 126, max: 20000 }) }),
    ),
    { maxLength: 6 },
  );

  type Item = typeof stream extends fc.Arbitrary<Array<infer T>> ? T : never;

  function encode(items: Item[], masked: boolean): { input: Uint8Array; expected: PlainEvent[] } {
    const frames: Uint8Array[] = [];
    const expected: PlainEvent[] = [];
    for (const item of items) {
      if (item.kind === 'ping') {
        frames.push(buildFrame({ opcode: 9, payload: item.data, mask: masked }));
        expected.push(ping(item.data));
      } else if (item.kind === 'big') {
        const payload = Uint8Array.from({ length: item.size }, (_, i) => i & 0xff);
        frames.push(buildFrame({ opcode: 2, payload, mask: masked }));
        expected.push(msg(payload));
      } else {
        // Split the message's bytes (not its characters) so characters straddle fragments.
        const all = bytes(item.parts.join(''));
        const cuts = item.parts.map((_, i) => Math.floor((all.length * i) / item.parts.length));
        for (let i = 0; i < cuts.length; i++) {
          const piece = all.subarray(cuts[i], i + 1 < cuts.length ? cuts[i + 1] : all.length);
          frames.push(
            buildFrame({
              opcode: i === 0 ? (item.binary ? 2 : 1) : 0,
              payload: piece,
              fin: i === cuts.length - 1,
              mask: masked,
              lengthBits: item.bits,
            }),
          );
          if (i < item.controls.length && i < cuts.length - 1) {
            frames.push(buildFrame({ opcode: 10, payload: item.controls[i], mask: masked }));
            expected.push(pong(item.controls[i]));
          }
        }
        expected.push(msg(all, item.binary));
      }
    }
    return { input: concat(...frames), expected };
  }

  for (const role of ['server', 'client'] as const) {
    test(`any valid stream split at random points yields the same events (${role})`, () => {
      fc.assert(
        fc.property(stream, fc.array(fc.nat(), { maxLength: 20 }), (items, cutSeeds) => {
          const { input, expected } = encode(items, role === 'server');
          const cuts = [...new Set(cutSeeds.map((s) => s % (input.length + 1)))].sort(
            (a, b) => a - b,
          );
          const pieces: Uint8Array[] = [];
          let from = 0;
          for (const to of [...cuts, input.length]) {
            pieces.push(input.subarray(from, to));
            from = to;
          }
          const opts = options({ role, maxFragments: 10 });
          assert.deepEqual(feedPieces(pieces, opts), expected);
          assert.deepEqual(feedPieces([input], opts), expected);
        }),
        { numRuns: 200 },
      );
    });
  }

  test('random bytes never throw, and any failure carries 1002, 1007 or 1009', () => {
    const arbitraryInput = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      // Mostly valid streams with a few bytes changed reach deeper states.
      fc
        .tuple(
          stream,
          fc.boolean(),
          fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
        )
        .map(([items, masked, edits]) => {
          const { input } = encode(items, masked);
          for (const [at, value] of edits) if (input.length > 0) input[at % input.length] = value;
          return input;
        }),
    );
    fc.assert(
      fc.property(
        arbitraryInput,
        fc.constantFrom('server' as const, 'client' as const),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 8 }),
        (input, role, rsv1Allowed, cutSeeds) => {
          const cuts = [...new Set(cutSeeds.map((s) => s % (input.length + 1)))].sort(
            (a, b) => a - b,
          );
          const pieces: Uint8Array[] = [];
          let from = 0;
          for (const to of [...cuts, input.length]) {
            pieces.push(input.subarray(from, to));
            from = to;
          }
          const opts = options({ role, rsv1Allowed, maxPayload: 5000, maxFragments: 8 });
          const split = feedPieces(pieces, opts);
          const whole = feedPieces([input], opts);
          assert.deepEqual(split, whole, 'splitting does not change the outcome');
          const last = whole.at(-1);
          if (last?.type === 'error') assert.ok([1002, 1007, 1009].includes(last.closeCode!));
        },
      ),
      { numRuns: 2000 },
    );
  });

  test('a stream from serializeFrame with a fresh key per frame round-trips', () => {
    const r = new Receiver(options());
    const keyed = (op: number, p: Uint8Array, fin = true) =>
      serializeFrame(op, p, { fin, mask: crypto.getRandomValues(new Uint8Array(4)) });
    for (const chunk of [
      ...keyed(Opcode.TEXT, bytes('frag'), false),
      ...keyed(Opcode.PING, bytes('x')),
      ...keyed(Opcode.CONTINUATION, bytes('ment')),
    ]) {
      r.push(Uint8Array.from(chunk));
    }
    assert.deepEqual(drain(r).map(plain), [ping('x'), msg('fragment')]);
  });
});

describe('a message that spans chunks (unmasked into its own buffer)', () => {
  after(() => setSimdMasking(true));

  /** A payload that is valid UTF-8 of any length: ASCII with a 3-byte character now and then. */
  function text(length: number): Uint8Array {
    const out = new Uint8Array(length);
    let i = 0;
    while (i < length) {
      if (i % 97 === 50 && length - i >= 3) {
        out.set(hex('e2 9c 93'), i); // ✓
        i += 3;
      } else out[i++] = 0x61 + (i % 26);
    }
    return out;
  }

  for (const simd of [true, false]) {
    const path = simd ? 'WebAssembly' : 'JavaScript';
    test(`delivers a 70,000-byte frame split in two as one buffer of exactly its length (${path} unmasking)`, () => {
      setSimdMasking(simd);
      const payload = Uint8Array.from({ length: 70000 }, (_, i) => (i * 13) & 0xff);
      const frame = c({ opcode: 2, payload });
      for (const cut of [20, 14 + 1000, 14 + 20000, 14 + 35000, 14 + 50000, frame.length - 1]) {
        const r = new Receiver(server);
        r.push(frame.slice(0, cut));
        assert.equal(r.next(), null);
        r.push(frame.slice(cut));
        const ev = r.next() as Extract<ReceiverEvent, { type: 'message' }>;
        assert.equal(ev.type, 'message');
        assert.deepEqual(ev.data, payload, `cut at ${cut}`);
        assert.equal(ev.data.buffer.byteLength, 70000, 'one allocation of the payload');
        assert.equal(r.bufferedBytes, 0);
      }
    });

    test(`delivers any unfragmented message cut anywhere, masked or not, text or binary (${path} unmasking)`, () => {
      fc.assert(
        fc.property(
          fc.oneof(fc.integer({ min: 0, max: 3000 }), fc.integer({ min: 0, max: 140_000 })),
          fc.boolean(),
          fc.boolean(),
          fc.uint8Array({ minLength: 4, maxLength: 4 }),
          fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
          (length, binary, masked, mask, fractions) => {
            setSimdMasking(simd);
            const payload = binary ? Uint8Array.from({ length }, (_, i) => i * 7) : text(length);
            const frame = concat(
              buildFrame({ opcode: binary ? 2 : 1, payload, mask: masked ? mask : false }),
              buildFrame({ opcode: 9, payload: 'after', mask: masked ? mask : false }),
            );
            const cuts = fractions.map((f) => Math.floor(f * frame.length)).sort((a, b) => a - b);
            const pieces = [0, ...cuts, frame.length]
              .map((at, i, all) => frame.subarray(at, all[i + 1] ?? at))
              .filter((p) => p.length > 0);
            const events = feedPieces(pieces, masked ? server : client);
            assert.deepEqual(events, [
              msg(binary ? payload : new TextDecoder().decode(payload), binary),
              ping('after'),
            ]);
          },
        ),
        { numRuns: 150 },
      );
    });
  }

  test('fails with 1007 as soon as the invalid bytes of a long text arrive, before the rest', () => {
    const payload = text(4000);
    payload.set(hex('f4 90 80 80'), 2500);
    const frame = c({ opcode: 1, payload });
    // The first chunk holds less than half of the payload, the second the invalid bytes.
    for (const cuts of [
      [14 + 1000, 14 + 2600],
      [14 + 2600, 14 + 3000],
    ]) {
      const r = new Receiver(server);
      r.push(frame.slice(0, cuts[0]));
      const first = r.next();
      if (cuts[0] < 14 + 2500) {
        assert.equal(first, null);
        r.push(frame.slice(cuts[0], cuts[1]));
      }
      assert.deepEqual(plain(first ?? r.next()!), err('SWITCHYARD_ERR_INVALID_UTF8', 1007));
      r.push(frame.slice(cuts[1]));
      assert.equal(r.next(), null);
      assert.equal(r.bufferedBytes, 0);
    }
  });

  test('fails with 1007 when a long text that spans chunks ends inside a UTF-8 sequence', () => {
    const payload = concat(text(3000), hex('e2 9c'));
    const frame = c({ opcode: 1, payload });
    assert.deepEqual(feedPieces([frame.subarray(0, 2000), frame.subarray(2000)], server), [
      err('SWITCHYARD_ERR_INVALID_UTF8', 1007),
    ]);
  });

  test('still joins a fragmented message and a compressed one from their pieces', () => {
    const big = Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff);
    const fragmented = concat(
      c({ opcode: 2, payload: big.subarray(0, 3000), fin: false }),
      c({ opcode: 0, payload: big.subarray(3000) }),
    );
    assert.deepEqual(
      feedPieces([fragmented.subarray(0, 1500), fragmented.subarray(1500)], server),
      [msg(big)],
    );
    const compressed = c({ opcode: 2, payload: big, rsv1: true });
    const r = new Receiver(deflate);
    r.push(compressed.slice(0, 3000));
    r.push(compressed.slice(3000));
    const ev = r.next();
    assert.ok(ev?.type === 'compressed');
    assert.deepEqual(concat(...ev.data), big);
  });
});
