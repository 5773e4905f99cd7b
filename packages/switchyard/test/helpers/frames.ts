/**
 * Test helpers for the frame layer: a frame builder that can write anything, valid or not, and
 * `feedThreeWays`, which runs a Receiver over an input whole, one byte at a time, and followed
 * by trailing bytes, and checks that all three agree (STYLE.md, after h11's helper).
 */
import assert from 'node:assert/strict';
import { Receiver } from '../../src/core/receiver.js';
import type { ReceiverEvent, ReceiverOptions } from '../../src/core/receiver.js';

/** Everything a test may want to set in a frame, including what the RFC forbids. */
export interface FrameSpec {
  opcode: number;
  payload?: Uint8Array | string;
  /** Default true. */
  fin?: boolean;
  rsv1?: boolean;
  rsv2?: boolean;
  rsv3?: boolean;
  /** A 4-byte key, or true for a fixed test key, or false/absent for no mask. */
  mask?: Uint8Array | boolean;
  /** Force the length encoding: 7, 16 or 64 bits. Default: minimal. */
  lengthBits?: 7 | 16 | 64;
  /** Write this length in the header instead of the payload's (as a bigint for 64-bit). */
  declaredLength?: number | bigint;
}

/** The key used when a spec says `mask: true`. */
export const TEST_MASK = Uint8Array.of(0x37, 0xfa, 0x21, 0x3d);

const encoder = new TextEncoder();

/** Encodes a string as UTF-8, or returns bytes unchanged. */
export function bytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? encoder.encode(data) : data;
}

/** Parses a hex string ("81 05 48 65") into bytes. */
export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, '');
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Concatenates byte arrays. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Builds one frame from a spec, written independently of the library's serializer. */
export function buildFrame(spec: FrameSpec): Uint8Array {
  const payload = bytes(spec.payload ?? new Uint8Array(0));
  const declared = BigInt(spec.declaredLength ?? payload.length);
  const bits =
    spec.lengthBits ?? (declared < 126n ? 7 : declared < 0x10000n ? 16 : (64 as 7 | 16 | 64));
  const key =
    spec.mask === true ? TEST_MASK : spec.mask instanceof Uint8Array ? spec.mask : undefined;
  const head: number[] = [
    ((spec.fin ?? true) ? 0x80 : 0) |
      (spec.rsv1 ? 0x40 : 0) |
      (spec.rsv2 ? 0x20 : 0) |
      (spec.rsv3 ? 0x10 : 0) |
      (spec.opcode & 0x0f),
  ];
  const maskBit = key ? 0x80 : 0;
  if (bits === 7) {
    head.push(maskBit | Number(declared));
  } else if (bits === 16) {
    head.push(maskBit | 126, Number(declared >> 8n) & 0xff, Number(declared) & 0xff);
  } else {
    head.push(maskBit | 127);
    for (let shift = 56n; shift >= 0n; shift -= 8n) head.push(Number((declared >> shift) & 0xffn));
  }
  const body = Uint8Array.from(payload);
  if (key) {
    head.push(...key);
    for (let i = 0; i < body.length; i++) body[i] ^= key[i % 4];
  }
  return concat(Uint8Array.from(head), body);
}

/** A receiver event in a form that `deepStrictEqual` can compare across input splits. */
export type PlainEvent =
  | { type: 'message'; binary: boolean; data: string }
  | { type: 'compressed'; binary: boolean; data: string }
  | { type: 'ping' | 'pong'; data: string }
  | { type: 'close'; code: number; reason: string }
  | { type: 'error'; code: string; closeCode: number | undefined };

function toHex(data: Uint8Array): string {
  return Array.from(data, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Converts an event to a {@link PlainEvent}; payload bytes become hex. */
export function plain(event: ReceiverEvent): PlainEvent {
  switch (event.type) {
    case 'message':
      return { type: 'message', binary: event.binary, data: toHex(event.data) };
    case 'compressed':
      return { type: 'compressed', binary: event.binary, data: toHex(concat(...event.data)) };
    case 'ping':
    case 'pong':
      return { type: event.type, data: toHex(event.data) };
    case 'close':
      return { type: 'close', code: event.code, reason: event.reason };
    case 'error':
      return { type: 'error', code: event.error.code, closeCode: event.error.closeCode };
  }
}

/** Shortcut for the plain form of a message event. */
export function msg(data: Uint8Array | string, binary = typeof data !== 'string'): PlainEvent {
  return { type: 'message', binary, data: toHex(bytes(data)) };
}

/** Shortcut for the plain form of an error event. */
export function err(code: string, closeCode: number): PlainEvent {
  return { type: 'error', code, closeCode };
}

/** Pulls every available event. */
export function drain(receiver: Receiver, into: ReceiverEvent[] = []): ReceiverEvent[] {
  for (let ev = receiver.next(); ev !== null; ev = receiver.next()) into.push(ev);
  return into;
}

/** Default receiver options for tests: a server (so input frames are masked), 1 MiB limit. */
export function options(overrides: Partial<ReceiverOptions> = {}): ReceiverOptions {
  return { role: 'server', maxPayload: 1 << 20, maxFragments: 1000, ...overrides };
}

/** Feeds `pieces` to a new receiver in order, draining after each, and returns the events. */
export function feedPieces(pieces: Uint8Array[], opts: ReceiverOptions): PlainEvent[] {
  const receiver = new Receiver(opts);
  const events: ReceiverEvent[] = [];
  for (const piece of pieces) {
    // The receiver owns (and unmasks in place) what it is given: give it a copy.
    receiver.push(Uint8Array.from(piece));
    drain(receiver, events);
  }
  const result = events.map(plain);
  const errors = result.filter((e) => e.type === 'error');
  assert.ok(errors.length <= 1, 'at most one error event');
  if (errors.length === 1) {
    assert.equal(result.at(-1)?.type, 'error', 'the error event is the last one');
    receiver.push(Uint8Array.of(0x81, 0x80, 0, 0, 0, 0));
    assert.equal(receiver.next(), null, 'a failed receiver ignores more input');
    assert.equal(receiver.bufferedBytes, 0, 'a failed receiver holds nothing');
  }
  return result;
}

/**
 * Feeds `input` three ways: whole, one byte at a time, and followed by a trailing frame (a ping
 * with payload "trail", masked for a server). Asserts that the three agree (the trailing way
 * adds the trailing ping unless the input ended in an error), and returns the events of the
 * whole way.
 */
export function feedThreeWays(input: Uint8Array, opts: ReceiverOptions = options()): PlainEvent[] {
  const whole = feedPieces([input], opts);
  const byByte = feedPieces(
    Array.from(input, (b) => Uint8Array.of(b)),
    opts,
  );
  assert.deepEqual(byByte, whole, 'fed one byte at a time');
  const trailer = buildFrame({ opcode: 0x9, payload: 'trail', mask: opts.role === 'server' });
  const trailed = feedPieces([concat(input, trailer)], opts);
  const failed = whole.at(-1)?.type === 'error';
  if (failed) {
    assert.deepEqual(trailed, whole, 'followed by trailing bytes');
  } else {
    assert.deepEqual(
      trailed,
      [...whole, { type: 'ping', data: toHex(bytes('trail')) }],
      'followed by trailing bytes',
    );
  }
  return whole;
}
