/**
 * Microbenchmarks of the core's hot paths: frame parsing, serialisation, masking, UTF-8
 * validation and the server's handshake work, with the native or ws equivalents beside them
 * where they exist, so that a figure can be read against something.
 *
 * Each case is timed in rounds of a calibrated number of iterations; the report gives the
 * median round. A sink keeps V8 from dropping work whose result is unused.
 *
 * Usage: npx tsx bench/micro.ts [--quick] [--json] [--filter text]
 */
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { createRequire } from 'node:module';
import { Receiver } from '../packages/switchyard/src/core/receiver.js';
import { serializeFrame, Opcode } from '../packages/switchyard/src/core/frame.js';
import { maskRange } from '../packages/switchyard/src/core/mask.js';
import {
  SIMD_THRESHOLD,
  maskCopy,
  setSimdMasking,
} from '../packages/switchyard/src/core/mask-simd.js';
import { isValidUtf8, Utf8Validator } from '../packages/switchyard/src/core/utf8.js';
import { HttpHeadParser } from '../packages/switchyard/src/core/http-head.js';
import {
  formatAcceptResponse,
  validateUpgradeRequest,
} from '../packages/switchyard/src/core/handshake.js';
import { computeAcceptKey } from '../packages/switchyard/src/core/sha1.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const json = argv.includes('--json');
const filterAt = argv.indexOf('--filter');
const filter = filterAt >= 0 ? argv[filterAt + 1] : null;

/** One result row. `bytes` per op, when the case moves bytes, gives MB/s. */
export interface MicroResult {
  name: string;
  nsPerOp: number;
  opsPerSec: number;
  mbPerSec: number | null;
}

let sink = 0;

function bench(name: string, bytes: number | null, fn: () => number): MicroResult | null {
  if (filter !== null && !name.includes(filter)) return null;
  const roundMs = quick ? 20 : 200;
  const rounds = quick ? 3 : 7;
  // Calibrate: double the iterations until one batch takes a tenth of a round.
  let iterations = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) sink ^= fn();
    const ms = performance.now() - t0;
    if (ms >= roundMs / 10 || iterations > 1e9) {
      iterations = Math.max(1, Math.ceil((iterations * roundMs) / Math.max(ms, 0.001)));
      break;
    }
    iterations *= 2;
  }
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < iterations; i++) sink ^= fn();
    samples.push(((performance.now() - t0) * 1e6) / iterations);
  }
  samples.sort((a, b) => a - b);
  const ns = samples[samples.length >> 1];
  const round = (x: number) => Math.round(x * 100) / 100;
  return {
    name,
    nsPerOp: round(ns),
    opsPerSec: Math.round(1e9 / ns),
    mbPerSec: bytes === null ? null : round((bytes / ns) * 1000),
  };
}

function maskedFrames(opcode: number, payload: Uint8Array, count: number): Uint8Array {
  const key = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);
  const one = Buffer.concat(serializeFrame(opcode, payload, { mask: key }));
  const all = new Uint8Array(one.length * count);
  for (let i = 0; i < count; i++) all.set(one, i * one.length);
  return all;
}

const text32 = new TextEncoder().encode('abcdefghijklmnopqrstuvwxyz012345');
const bin64k = new Uint8Array(65536).map((_, i) => (i * 31 + 7) & 0xff);
const mixed4k = new TextEncoder()
  .encode('Grüße, 世界! ✓ naïve café — '.repeat(140))
  .subarray(0, 4096);
// Cut at a character boundary so that the text stays valid.
let mixedEnd = mixed4k.length;
while ((mixed4k[mixedEnd - 1] & 0xc0) === 0x80 || mixed4k[mixedEnd - 1] >= 0xc0) mixedEnd--;
const mixed = mixed4k.subarray(0, mixedEnd);
const ascii4k = new Uint8Array(4096).fill(0x61);

const results: Array<MicroResult | null> = [];
const require = createRequire(import.meta.url);
const optional = (name: string): any => {
  try {
    return require(name);
  } catch {
    return null;
  }
};

// ---- frame parsing ---------------------------------------------------------------------------
// The receiver unmasks in place, so each op parses a fresh copy (the copy is part of the cost,
// as a socket's chunk would be).
{
  const batch = 256;
  const frames = maskedFrames(Opcode.TEXT, text32, batch);
  const r = bench(`parse: ${batch} × 32 B text frames, one chunk (per frame)`, 32 * batch, () => {
    const rx = new Receiver({ role: 'server', maxPayload: 1 << 24, maxFragments: 1024, isUtf8 });
    rx.push(frames.slice());
    let n = 0;
    for (let ev = rx.next(); ev !== null; ev = rx.next()) n++;
    return n;
  });
  if (r) results.push({ ...r, nsPerOp: r.nsPerOp / batch, opsPerSec: r.opsPerSec * batch });
}
{
  const frame = maskedFrames(Opcode.BINARY, bin64k, 1);
  results.push(
    bench('parse: 64 KiB binary frame, one chunk', 65536, () => {
      const rx = new Receiver({ role: 'server', maxPayload: 1 << 24, maxFragments: 1024, isUtf8 });
      rx.push(frame.slice());
      const ev = rx.next();
      return ev === null ? 0 : 1;
    }),
  );
  // As TCP delivers it: in 16 KiB pieces (payload joined once at the end).
  const pieces: Uint8Array[] = [];
  for (let i = 0; i < frame.length; i += 16384) pieces.push(frame.subarray(i, i + 16384));
  results.push(
    bench('parse: 64 KiB binary frame, 16 KiB chunks', 65536, () => {
      const rx = new Receiver({ role: 'server', maxPayload: 1 << 24, maxFragments: 1024, isUtf8 });
      let n = 0;
      for (const p of pieces) {
        rx.push(p.slice());
        if (rx.next() !== null) n++;
      }
      return n;
    }),
  );
}

{
  // As the 64 KiB echo's server reads them: a stream of 64 KiB frames in 64 KiB reads, so that
  // nearly every frame spans two reads (unmasked into the message buffer as it arrives).
  const frames = 16;
  const stream = maskedFrames(Opcode.BINARY, bin64k, frames);
  const reads: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i += 65536) reads.push(stream.subarray(i, i + 65536));
  const r = bench(
    `parse: ${frames} × 64 KiB binary frames in 64 KiB reads (per frame)`,
    65536 * frames,
    () => {
      const rx = new Receiver({ role: 'server', maxPayload: 1 << 24, maxFragments: 1024, isUtf8 });
      let n = 0;
      for (const p of reads) {
        rx.push(p.slice());
        for (let ev = rx.next(); ev !== null; ev = rx.next()) n++;
      }
      return n;
    },
  );
  if (r) results.push({ ...r, nsPerOp: r.nsPerOp / frames, opsPerSec: r.opsPerSec * frames });
}

// ---- serialisation ---------------------------------------------------------------------------
results.push(
  bench(
    'serialize: 32 B text, server (unmasked)',
    32,
    () => serializeFrame(Opcode.TEXT, text32)[0].length,
  ),
);
{
  const key = Uint8Array.of(1, 2, 3, 4);
  results.push(
    bench(
      'serialize: 32 B text, client (masked)',
      32,
      () => serializeFrame(Opcode.TEXT, text32, { mask: key })[0].length,
    ),
  );
}
results.push(
  bench(
    'serialize: 64 KiB binary, server (header only)',
    65536,
    () => serializeFrame(Opcode.BINARY, bin64k).length,
  ),
);

// ---- masking ---------------------------------------------------------------------------------
// Per size: the JS XOR (maskRange, what runs where WebAssembly SIMD is missing), the receiver's
// path (maskCopy in place: WebAssembly SIMD from SIMD_THRESHOLD bytes, copies in and out
// included), the same into another buffer (how a frame that spans reads is unmasked), and
// bufferutil's native unmask for reference.
{
  const key = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);
  const bu = optional('bufferutil');
  const sizes: Array<[string, number]> = [
    ['32 B', 32],
    ['125 B', 125],
    ['1 KiB', 1024],
    ['16 KiB', 16384],
    ['64 KiB', 65536],
    ['1 MiB', 1 << 20],
  ];
  const simd = setSimdMasking(true);
  for (const [label, n] of sizes) {
    // Views at an odd offset, as a payload sits in a socket's chunk after its frame header.
    const data = new Uint8Array(n + 8).map((_, i) => (i * 31 + 7) & 0xff).subarray(6, 6 + n);
    const dst = new Uint8Array(n);
    results.push(
      bench(`mask: ${label}, switchyard JS`, n, () => (maskRange(data, 0, n, key, 0), data[0])),
    );
    if (simd) {
      results.push(
        bench(
          `mask: ${label}, switchyard maskCopy in place${n >= SIMD_THRESHOLD ? ' (WebAssembly SIMD)' : ' (JS)'}`,
          n,
          () => (maskCopy(data, 0, n, data, 0, key, 0), data[0]),
        ),
      );
      results.push(
        bench(
          `mask: ${label}, switchyard maskCopy to another buffer`,
          n,
          () => (maskCopy(data, 0, n, dst, 0, key, 0), dst[0]),
        ),
      );
    }
    if (bu) {
      const b = Buffer.from(data.buffer, data.byteOffset, n);
      const bkey = Buffer.from(key);
      results.push(
        bench(
          `mask: ${label}, bufferutil (native, reference)`,
          n,
          () => (bu.unmask(b, bkey), b[0]),
        ),
      );
    }
  }
}

// ---- UTF-8 validation ------------------------------------------------------------------------
results.push(bench('utf8: 32 B ASCII, isValidUtf8', 32, () => +isValidUtf8(text32)));
results.push(
  bench('utf8: 32 B ASCII, buffer.isUtf8 (native, reference)', 32, () => +isUtf8(text32)),
);
results.push(bench('utf8: 4 KiB ASCII, isValidUtf8', 4096, () => +isValidUtf8(ascii4k)));
results.push(bench('utf8: 4 KiB mixed, isValidUtf8', mixed.length, () => +isValidUtf8(mixed)));
results.push(
  bench('utf8: 4 KiB mixed, buffer.isUtf8 (native, reference)', mixed.length, () => +isUtf8(mixed)),
);
{
  const v = new Utf8Validator();
  const third = Math.floor(mixed.length / 3);
  results.push(
    bench('utf8: 4 KiB mixed, Utf8Validator in 3 pieces', mixed.length, () => {
      v.reset();
      v.write(mixed, 0, third);
      v.write(mixed, third, 2 * third);
      v.write(mixed, 2 * third, mixed.length);
      return +v.end();
    }),
  );
}
{
  const u8v = optional('utf-8-validate');
  if (u8v)
    results.push(
      bench(
        'utf8: 4 KiB mixed, utf-8-validate (reference)',
        mixed.length,
        () => +u8v(Buffer.from(mixed.buffer, mixed.byteOffset, mixed.length)),
      ),
    );
}

// ---- handshake -------------------------------------------------------------------------------
{
  const request = new TextEncoder().encode(
    'GET /chat HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
      'User-Agent: bench\r\nAccept-Encoding: gzip\r\n\r\n',
  );
  results.push(
    bench('handshake: parse request head (HttpHeadParser)', request.length, () => {
      const p = new HttpHeadParser({ kind: 'request' });
      const r = p.push(request);
      return r !== null && r.ok ? 1 : 0;
    }),
  );
  const parsed = new HttpHeadParser({ kind: 'request' }).push(request);
  if (parsed === null || !parsed.ok) throw new Error('the sample request did not parse');
  const head = parsed.head;
  results.push(
    bench('handshake: validateUpgradeRequest', null, () => +validateUpgradeRequest(head).ok),
  );
  results.push(
    bench(
      'handshake: Sec-WebSocket-Accept (JS SHA-1)',
      null,
      () => computeAcceptKey('dGhlIHNhbXBsZSBub25jZQ==').length,
    ),
  );
  results.push(
    bench(
      'handshake: Sec-WebSocket-Accept (node:crypto, reference)',
      null,
      () =>
        createHash('sha1')
          .update('dGhlIHNhbXBsZSBub25jZQ==258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
          .digest('base64').length,
    ),
  );
  results.push(
    bench('handshake: parse + validate + 101 response', request.length, () => {
      const r = new HttpHeadParser({ kind: 'request' }).push(request);
      if (r === null || !r.ok) return 0;
      const v = validateUpgradeRequest(r.head);
      if (!v.ok) return 0;
      return formatAcceptResponse({ key: v.key }).length;
    }),
  );
}

const rows = results.filter((r): r is MicroResult => r !== null);
if (json) {
  process.stdout.write(`${JSON.stringify({ quick, results: rows, sink: sink & 1 })}\n`);
} else {
  for (const r of rows) {
    const mb = r.mbPerSec === null ? '' : `  ${r.mbPerSec.toFixed(0).padStart(6)} MB/s`;
    console.log(`${r.name.padEnd(58)} ${r.nsPerOp.toFixed(1).padStart(10)} ns/op${mb}`);
  }
}
