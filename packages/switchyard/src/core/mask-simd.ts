/**
 * Masking that copies (RFC 6455 §5.3), through WebAssembly SIMD when the runtime has it.
 *
 * Theory of operation: JavaScript can XOR at most 32 bits at a time (see mask.ts), about 4 GB/s
 * on 64 KiB; a WebAssembly module XORs 16 bytes per instruction (mask-wasm.ts, 148 bytes, written
 * by scripts/build-wasm.mjs). But WebAssembly reaches only its own linear memory, so each range
 * goes there and back: copied into the module's one page, XORed, copied out to where it belongs,
 * a page at a time. The two copies are `TypedArray.prototype.set`, a memmove at 20-60 GB/s, so
 * the whole trip still beats the JavaScript XOR on anything but small ranges (SIMD_THRESHOLD).
 *
 * The copy out can go anywhere, which is why this module's verb is a copy: the receiver unmasks
 * the pieces of a frame that spans several reads straight from the socket's chunks into the
 * message buffer (one trip instead of an XOR pass and then a join), and unmasks a frame that one
 * chunk holds in place (the copy out goes back where it came from).
 *
 * Where `WebAssembly` is missing, lacks SIMD (`WebAssembly.validate` refuses the module), or is
 * forbidden (a page's Content-Security-Policy without 'wasm-unsafe-eval' makes compiling throw),
 * every range takes the JavaScript path, with the same result. The module is compiled on the
 * first range long enough to use it, not at import. Each JavaScript realm (a worker, too) has
 * its own instance, and nothing is shared between calls but the scratch page, so there is no
 * state to leak from one connection to another: every call overwrites what it reads back.
 */

import { maskRange } from './mask.js';
import { MASK_WASM } from './mask-wasm.js';

/**
 * Ranges shorter than this take the JavaScript path. Measured on Node 20.20 (x64, 2 shared vCPUs),
 * whole calls including the copies, minima of 15 alternating rounds: at 256 bytes both paths
 * take about 95 ns; at 384 the WebAssembly trip is 1.1× faster in place and 1.4× into another
 * buffer, at 1 KiB 1.5× and 2.1×, at 64 KiB 3.4× and 3.8× (bench/micro.ts: 25 GB/s against 7);
 * at 1 MiB about 3× (the copies leave the cache).
 */
export const SIMD_THRESHOLD = 384;

/** The module's page: the most bytes one call of its `mask` transforms. */
const PAGE = 65536;

interface SimdMasker {
  /** XORs the 32-bit little-endian key into `memory[0..n)` (and up to 63 bytes past it). */
  mask: (n: number, key: number) => void;
  /** The module's page, viewed once: its memory cannot grow, so the view never detaches. */
  memory: Uint8Array;
}

/**
 * The little of the `WebAssembly` global this module uses. The global is declared by the DOM
 * library, which the core does not compile against (it runs in Node, browsers and other
 * runtimes alike), and it may be missing, so it is looked up on `globalThis`.
 */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

/** undefined until first needed; null when WebAssembly SIMD cannot be used here. */
let masker: SimdMasker | null | undefined;
let enabled = true;

function loadMasker(): SimdMasker | null {
  try {
    const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
    if (wasm === undefined || !wasm.validate(MASK_WASM)) return null;
    // Synchronous compilation is allowed for modules this small, even on a browser's main thread.
    const { exports } = new wasm.Instance(new wasm.Module(MASK_WASM));
    const memory = exports.memory as { buffer: ArrayBuffer };
    return { mask: exports.mask as SimdMasker['mask'], memory: new Uint8Array(memory.buffer) };
  } catch {
    // A Content-Security-Policy that forbids WebAssembly, or an engine that refuses it.
    return null;
  }
}

/**
 * Turns the WebAssembly path off (or back on, where the runtime supports it), for tests that
 * compare the two paths. Returns whether the WebAssembly path will be used from now on.
 *
 * @internal Not exported from the package: tests only.
 */
export function setSimdMasking(on: boolean): boolean {
  enabled = on;
  if (on && masker === undefined) masker = loadMasker();
  return on && masker !== null;
}

/**
 * Copies `src[start..end)` to `dst[at..)`, XORed with `mask`, where `src[start]` is byte
 * `maskOffset` of the frame payload (RFC 6455 §5.3). `dst` may be `src` with `at === start`
 * (in place); other overlapping ranges are not supported. `dst` must have room for
 * `end - start` bytes at `at`.
 *
 * @param src - the bytes to mask or unmask; left unchanged unless `dst` is `src`.
 * @param start - the first index of `src` to transform.
 * @param end - one past the last index of `src` to transform.
 * @param dst - where the transformed bytes go.
 * @param at - the index of `dst` that receives `src[start]`.
 * @param mask - the 4-byte masking key.
 * @param maskOffset - the position of `src[start]` within the frame payload.
 */
export function maskCopy(
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
  at: number,
  mask: Uint8Array,
  maskOffset: number,
): void {
  const n = end - start;
  if (n >= SIMD_THRESHOLD && enabled) {
    if (masker === undefined) masker = loadMasker();
    if (masker !== null) {
      simdCopy(masker, src, start, end, dst, at, mask, maskOffset);
      return;
    }
  }
  if (dst !== src || at !== start) dst.set(src.subarray(start, end), at);
  maskRange(dst, at, at + n, mask, maskOffset);
}

function simdCopy(
  m: SimdMasker,
  src: Uint8Array,
  start: number,
  end: number,
  dst: Uint8Array,
  at: number,
  mask: Uint8Array,
  maskOffset: number,
): void {
  const k = maskOffset & 3;
  // WebAssembly memory is little-endian on every host: byte k of the key goes in the low byte.
  const key =
    mask[k] | (mask[(k + 1) & 3] << 8) | (mask[(k + 2) & 3] << 16) | (mask[(k + 3) & 3] << 24);
  const memory = m.memory;
  // PAGE is a multiple of 4, so every page starts at the same byte of the key.
  for (let from = start; from < end; from += PAGE) {
    const n = Math.min(PAGE, end - from);
    memory.set(src.subarray(from, from + n));
    m.mask(n, key);
    dst.set(memory.subarray(0, n), at);
    at += n;
  }
}
