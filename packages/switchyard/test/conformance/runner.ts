/**
 * The tester side of a conformance case: plays one {@link ConformanceCase} over an open
 * WebSocket connection (after the handshake) and records what the peer under test did.
 *
 * Theory of operation. The tester is written independently of the library: its own frame
 * encoder (masking with a fresh random key when it plays the client) and its own incremental
 * frame reader. It runs the case's steps in order while it reads; it answers the peer's close
 * frame as the suite does (echoing the code), and when the case says the tester closes, it
 * sends close 1000 as soon as every step ran and the expected events are in. When it plays the
 * server it ends TCP once the closing handshake is over (RFC 6455 §7.1.1); when it plays the
 * client it waits for the server to do so. Everything is bounded by the case's timeout.
 * {@link checkResult} then applies the strict rule of `cases.ts`.
 */
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import type { CaseEvent, ConformanceCase, Step, WireFrame } from './cases.js';

/** Which end the tester plays. A client masks its frames and expects unmasked ones (§5.1). */
export type TesterRole = 'client' | 'server';

/** What happened during a case. */
export interface CaseResult {
  events: CaseEvent[];
  /** The peer's close frame: its code (1005 when the body was empty) and when it came. */
  peerClose: { code: number; reason: Buffer; order: number } | null;
  /** When the tester sent its close frame, in the same order as `peerClose.order`. */
  testerCloseOrder: number | null;
  /** Whether the peer ended TCP (FIN or reset) before the tester ended it. */
  peerEndedFirst: boolean;
  /** Whether the connection was fully closed before the case's deadline. */
  closedInTime: boolean;
  /** Breaches seen on the wire (a mask bit, RSV bits, a frame after the close frame ...). */
  violations: string[];
}

const EMPTY = Buffer.alloc(0);

// ---- frames out ----------------------------------------------------------------------------

function headerLength(length: number, masked: boolean): number {
  return (length < 126 ? 2 : length < 0x10000 ? 4 : 10) + (masked ? 4 : 0);
}

/** Writes one frame into `out` at `at`; returns the offset after it. */
function writeFrame(out: Buffer, at: number, frame: WireFrame, masked: boolean): number {
  const payload = frame.payload ?? EMPTY;
  const n = payload.length;
  out[at++] = ((frame.fin ?? true) ? 0x80 : 0) | ((frame.rsv ?? 0) << 4) | (frame.opcode & 0x0f);
  const maskBit = masked ? 0x80 : 0;
  if (n < 126) {
    out[at++] = maskBit | n;
  } else if (n < 0x10000) {
    out[at++] = maskBit | 126;
    out.writeUInt16BE(n, at);
    at += 2;
  } else {
    out[at++] = maskBit | 127;
    out.writeBigUInt64BE(BigInt(n), at);
    at += 8;
  }
  if (!masked) {
    out.set(payload, at);
    return at + n;
  }
  // RFC 6455 §5.3: a fresh, unpredictable key for every frame.
  const key = randomBytes(4);
  key.copy(out, at);
  at += 4;
  for (let i = 0; i < n; i++) out[at + i] = payload[i] ^ key[i & 3];
  return at + n;
}

/** Encodes frames back to back in one buffer. */
export function encodeFrames(frames: readonly WireFrame[], masked: boolean): Buffer {
  let total = 0;
  for (const f of frames)
    total += headerLength(f.payload?.length ?? 0, masked) + (f.payload?.length ?? 0);
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const f of frames) at = writeFrame(out, at, f, masked);
  return out;
}

// ---- frames in -----------------------------------------------------------------------------

interface InFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** An incremental frame reader over a list of chunks: each byte is copied at most once. */
class FrameReader {
  private chunks: Buffer[] = [];
  private length = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.length -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const chunk = this.chunks[0];
      const count = Math.min(chunk.length, n - at);
      chunk.copy(out, at, 0, count);
      at += count;
      if (count === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(count);
    }
    this.length -= n;
    return out;
  }

  /** The next whole frame, unmasked, or null when more bytes are needed. */
  next(): InFrame | null {
    if (this.length < 2) return null;
    const head = this.peek(Math.min(this.length, 14));
    const len7 = head[1] & 0x7f;
    const masked = (head[1] & 0x80) !== 0;
    const extra = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
    const hlen = 2 + extra + (masked ? 4 : 0);
    if (this.length < hlen) return null;
    const n =
      len7 === 126 ? head.readUInt16BE(2) : len7 === 127 ? Number(head.readBigUInt64BE(2)) : len7;
    if (this.length < hlen + n) return null;
    const header = Buffer.from(this.take(hlen));
    const payload = n === 0 ? EMPTY : Buffer.from(this.take(n));
    if (masked) {
      const key = header.subarray(hlen - 4, hlen);
      for (let i = 0; i < n; i++) payload[i] ^= key[i & 3];
    }
    return {
      fin: (header[0] & 0x80) !== 0,
      rsv: (header[0] >> 4) & 7,
      opcode: header[0] & 0x0f,
      masked,
      payload,
    };
  }
}

function isCloseFrame(frame: WireFrame): boolean {
  return frame.opcode === 8 && (frame.rsv ?? 0) === 0;
}

// ---- the run ---------------------------------------------------------------------------------

/** How long the tester, as the server, waits after the closing handshake to end TCP. */
const LINGER_MS = 20;

/**
 * How long before the case's deadline the tester gives up waiting for the expected events and
 * closes anyway (so that a failing case ends with a report rather than a timeout).
 */
const GIVE_UP_BEFORE_DEADLINE_MS = 2000;

/**
 * Plays `testCase` over `socket` (already upgraded; `head` holds bytes read past the HTTP head).
 * Resolves when the TCP connection is closed or the case's deadline passed.
 */
export async function runCase(
  testCase: ConformanceCase,
  socket: Socket,
  role: TesterRole,
  head: Buffer = EMPTY,
): Promise<CaseResult> {
  const masked = role === 'client';
  const deadlineMs = testCase.timeoutMs ?? 15_000;
  const { outcome } = testCase;
  const autoClose =
    outcome.close.by === 'tester' &&
    !testCase.steps.some((s) => s.type === 'send' && s.frames.some(isCloseFrame));
  const result: CaseResult = {
    events: [],
    peerClose: null,
    testerCloseOrder: null,
    peerEndedFirst: false,
    closedInTime: false,
    violations: [],
  };
  const reader = new FrameReader();
  let order = 0;
  let message: { binary: boolean; pieces: Buffer[] } | null = null;
  let testerEnded = false;
  let peerEnded = false;
  let stepsDone = false;
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };

  const sendRaw = (bytes: Buffer) => {
    if (!testerEnded && !socket.destroyed) socket.write(bytes);
  };
  const endTcp = () => {
    if (testerEnded) return;
    testerEnded = true;
    if (!socket.destroyed) socket.end();
  };
  // As the server, the tester closes TCP once the closing handshake is complete, after a short
  // linger: a client that ends TCP right after its close frame (instead of waiting for the
  // server, RFC 6455 §7.1.1) is caught ending first even when its FIN travels with that frame.
  const endTcpSoon = () => {
    setTimeout(endTcp, LINGER_MS);
  };
  const sendClose = (code: number) => {
    const body = code === 1005 ? EMPTY : Buffer.from([code >> 8, code & 0xff]);
    sendRaw(encodeFrames([{ opcode: 8, payload: body }], masked));
    result.testerCloseOrder = order++;
    if (role === 'server' && result.peerClose !== null) endTcpSoon();
  };
  const maybeFinish = () => {
    if (!autoClose || !stepsDone || result.testerCloseOrder !== null) return;
    if (eventsMatch(result.events, outcome.events)) sendClose(1000);
  };

  const onFrame = (frame: InFrame) => {
    if (result.peerClose !== null) {
      result.violations.push(`a frame (opcode ${frame.opcode}) after the close frame`);
      return;
    }
    if (frame.masked !== !masked) {
      result.violations.push(
        frame.masked ? 'a masked frame from the server' : 'an unmasked frame from the client',
      );
    }
    if (frame.rsv !== 0) result.violations.push(`RSV bits ${frame.rsv} set`);
    // RFC 6455 §5.5: control frames are not fragmented and carry at most 125 octets.
    if (frame.opcode >= 8 && (!frame.fin || frame.payload.length > 125)) {
      result.violations.push(`a fragmented or oversized control frame (opcode ${frame.opcode})`);
    }
    switch (frame.opcode) {
      case 0:
      case 1:
      case 2: {
        if ((frame.opcode === 0) !== (message !== null)) {
          result.violations.push(`a bad fragment sequence (opcode ${frame.opcode})`);
          return;
        }
        if (message === null) message = { binary: frame.opcode === 2, pieces: [] };
        message.pieces.push(frame.payload);
        if (frame.fin) {
          const data = Buffer.concat(message.pieces);
          // RFC 6455 §5.6: what the peer sends as text is UTF-8.
          if (!message.binary && !isUtf8(data)) result.violations.push('a text message not UTF-8');
          result.events.push({ type: 'message', binary: message.binary, data });
          message = null;
        }
        break;
      }
      case 9:
        result.violations.push('an unexpected ping');
        break;
      case 10:
        result.events.push({ type: 'pong', data: frame.payload });
        break;
      case 8: {
        const code = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005;
        result.peerClose = { code, reason: frame.payload.subarray(2), order: order++ };
        // RFC 6455 §5.5.1: the reason, if any, is UTF-8.
        if (!isUtf8(result.peerClose.reason)) result.violations.push('a close reason not UTF-8');
        // The suite answers a close frame by echoing its code.
        if (result.testerCloseOrder === null) sendClose(code);
        else if (role === 'server') endTcpSoon();
        poke();
        return;
      }
      default:
        result.violations.push(`a frame with opcode ${frame.opcode}`);
    }
    maybeFinish();
    poke();
  };

  const onData = (chunk: Buffer) => {
    reader.push(chunk);
    for (let f = reader.next(); f !== null; f = reader.next()) onFrame(f);
  };

  const closed = new Promise<void>((resolve) => {
    socket.on('close', () => {
      poke();
      resolve();
    });
  });
  socket.setNoDelay(true);
  socket.on('data', onData);
  const onPeerEnd = () => {
    if (testerEnded || result.peerEndedFirst) return;
    result.peerEndedFirst = true;
  };
  socket.on('end', () => {
    peerEnded = true;
    onPeerEnd();
    endTcp();
    poke();
  });
  socket.on('error', (error: NodeJS.ErrnoException) => {
    // A reset after the peer closed is the peer's way of dropping TCP.
    onPeerEnd();
    if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') {
      result.violations.push(`socket error ${error.message}`);
    }
  });
  if (head.length > 0) onData(head);
  socket.resume();

  const gone = () => result.peerClose !== null || peerEnded || socket.destroyed;
  const sleep = (ms: number, stopEarly: boolean) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      if (!stopEarly) return;
      const check = () => {
        if (gone()) {
          clearTimeout(timer);
          resolve();
        } else wake = check;
      };
      check();
    });
  const waitFor = (predicate: () => boolean, ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      const check = () => {
        if (predicate()) {
          clearTimeout(timer);
          resolve();
        } else wake = check;
      };
      check();
    });

  const deadline = Date.now() + deadlineMs;
  const encoded = new WeakMap<WireFrame, Buffer>();
  const runStep = async (step: Step): Promise<boolean> => {
    switch (step.type) {
      case 'send': {
        // A close frame among the case's own frames starts the closing handshake from our side
        // (one with RSV bits set, as in 3.7, is a bad frame rather than a close).
        if (result.testerCloseOrder === null && step.frames.some(isCloseFrame)) {
          result.testerCloseOrder = order++;
        }
        if (step.split === undefined) {
          sendRaw(encodeFrames(step.frames, masked));
          return true;
        }
        const pieces: Buffer[] = [];
        if (step.split === 'frame') {
          for (const f of step.frames) pieces.push(encodeFrames([f], masked));
        } else {
          const all = encodeFrames(step.frames, masked);
          for (let at = 0; at < all.length; at += step.split) {
            pieces.push(all.subarray(at, at + step.split));
          }
        }
        for (let i = 0; i < pieces.length; i++) {
          // Its own write, in its own turn of the event loop, so it travels on its own.
          if (i > 0) await new Promise((resolve) => setImmediate(resolve));
          sendRaw(pieces[i]);
        }
        return true;
      }
      case 'send-part': {
        let bytes = encoded.get(step.frame);
        if (bytes === undefined) {
          bytes = encodeFrames([step.frame], masked);
          encoded.set(step.frame, bytes);
        }
        const hlen = bytes.length - (step.frame.payload?.length ?? 0);
        sendRaw(bytes.subarray(step.from === 0 ? 0 : hlen + step.from, hlen + step.to));
        return true;
      }
      case 'wait':
        await sleep(step.ms, step.label !== undefined);
        if (step.label === undefined) return true;
        // As the suite does: stop if the peer closed during the wait, else record the timeout.
        if (gone()) return false;
        result.events.push({ type: 'timeout', label: step.label });
        return true;
      case 'expect-events':
        if (result.events.length < step.count) {
          result.violations.push(
            `${result.events.length} events by step ${testCase.steps.indexOf(step)}, expected ${step.count}`,
          );
        }
        return true;
      case 'await-events':
        await waitFor(() => result.events.length >= step.count || gone(), deadline - Date.now());
        return !gone();
    }
  };

  let timedOut = false;
  const deadlineTimer = setTimeout(() => {
    timedOut = true;
    socket.destroy();
  }, deadlineMs);
  try {
    for (const step of testCase.steps) {
      if (socket.destroyed || !(await runStep(step))) break;
    }
    stepsDone = true;
    maybeFinish();
    if (autoClose && result.testerCloseOrder === null && !gone()) {
      // Wait for the expected events until shortly before the deadline, then close anyway so
      // that the case ends and reports what it got.
      await waitFor(
        () => result.testerCloseOrder !== null || gone(),
        Math.max(0, deadline - GIVE_UP_BEFORE_DEADLINE_MS - Date.now()),
      );
      if (result.testerCloseOrder === null && !socket.destroyed) sendClose(1000);
    }
    await closed;
    result.closedInTime = !timedOut;
  } finally {
    clearTimeout(deadlineTimer);
    socket.destroy();
  }
  return result;
}

// ---- the strict rule ---------------------------------------------------------------------------

function eventsMatch(actual: readonly CaseEvent[], expected: readonly CaseEvent[]): boolean {
  if (actual.length !== expected.length) return false;
  for (let i = 0; i < actual.length; i++) {
    if (describeEvent(actual[i]) !== describeEvent(expected[i])) return false;
    const a = actual[i];
    const e = expected[i];
    if (a.type !== 'timeout' && e.type !== 'timeout' && !Buffer.from(a.data).equals(e.data)) {
      return false;
    }
  }
  return true;
}

/** A short, comparable description of an event: its kind, size and first bytes. */
function describeEvent(event: CaseEvent): string {
  if (event.type === 'timeout') return `timeout ${event.label}`;
  const data = Buffer.from(event.data);
  const preview = data.subarray(0, 16).toString('hex') + (data.length > 16 ? '…' : '');
  const kind = event.type === 'pong' ? 'pong' : event.binary ? 'binary' : 'text';
  return `${kind}(${data.length}) ${preview}`;
}

/**
 * Asserts the case's strict outcome. `tcp` says what the peer under test must do with TCP:
 * 'server-closes' (it ends TCP itself after the closing handshake or a failure), or
 * 'client-waits' (it never ends TCP first after a clean close).
 */
export function checkResult(
  testCase: ConformanceCase,
  result: CaseResult,
  tcp: 'server-closes' | 'client-waits',
): void {
  const { outcome } = testCase;
  assert.deepEqual(result.violations, [], 'no protocol breach on the wire');
  assert.deepEqual(
    result.events.map(describeEvent),
    outcome.events.map(describeEvent),
    'the events match the strict outcome',
  );
  assert.ok(eventsMatch(result.events, outcome.events), 'the payloads match byte for byte');
  assert.ok(result.peerClose !== null, 'the peer sent a close frame');
  assert.ok(
    outcome.close.codes.includes(result.peerClose.code),
    `close code ${result.peerClose.code} is one of ${outcome.close.codes.join(', ')}`,
  );
  if (outcome.close.by === 'tester') {
    assert.ok(
      result.testerCloseOrder !== null && result.testerCloseOrder < result.peerClose.order,
      'the tester started the closing handshake',
    );
  } else {
    assert.ok(
      result.testerCloseOrder === null || result.peerClose.order < result.testerCloseOrder,
      'the peer failed the connection first',
    );
  }
  if (outcome.close.clean) {
    assert.ok(result.testerCloseOrder !== null, 'both close frames were exchanged');
  }
  assert.ok(result.closedInTime, 'the TCP connection was closed within the case timeout');
  if (tcp === 'server-closes') {
    assert.ok(result.peerEndedFirst, 'the server closed the TCP connection');
    // The real suite drops TCP itself 1 s after the end of a case (its killAfter(1)) and then
    // reports that the server did not close it. The server under test runs with a close timer
    // far longer than the case timeout, so a close that waited for that timer fails
    // `closedInTime` above: the check is on which path closed TCP, not on a clock.
    assert.ok(result.peerClose !== null, 'the server closed TCP after its close frame');
  } else if (outcome.close.clean) {
    assert.ok(!result.peerEndedFirst, 'the client waited for the server to close TCP (§7.1.1)');
  }
}
