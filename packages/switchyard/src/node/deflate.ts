/**
 * The permessage-deflate codec (RFC 7692) on Node's zlib: what the core's negotiation decided,
 * carried out with raw DEFLATE streams.
 *
 * Theory of operation.
 * - Inflating: the compressed pieces of a message go into the connection's InflateRaw, followed
 *   by the 0x00 0x00 0xff 0xff that the sender removed (RFC 7692 §7.2.2), and a sync flush. The
 *   output is counted as it comes out, one zlib chunk (16 KiB) at a time: the moment it passes
 *   `maxPayload`, the stream is destroyed and the message fails with 1009. A small frame that
 *   would inflate to gigabytes therefore costs at most `maxPayload` plus one chunk.
 * - Deflating: a message (or one fragment of it) goes into the connection's DeflateRaw with a
 *   sync flush; on the last fragment the trailing 0x00 0x00 0xff 0xff is cut (RFC 7692 §7.2.1).
 * - Small messages (at most `syncLimit` bytes, 16 KiB by default) skip the thread pool: a
 *   whole message is compressed, and a message that inflates to at most that much is inflated,
 *   with the synchronous one-shot calls (`deflateRawSync`, `inflateRawSync`) on the event loop.
 *   A round trip to the thread pool costs more than the zlib work of a 4 KiB message, and on a
 *   busy server the hop itself is most of the time. The bound keeps one call short: compressing
 *   16 KiB took 0.1–0.5 ms on the 2-core bench machine (bench/README.md, "Compression"),
 *   inflating it a tenth of that. Bigger messages, fragmented sends and inflations that pass
 *   the bound go to the streams below, through the limiter. Sync calls bypass the limiter: they
 *   run one at a time by nature, and hold no zlib memory once they return.
 * - Context takeover across one-shot calls: a one-shot call starts a fresh zlib context, so the
 *   codec keeps the last window of what the peer's decompressor has seen (our compressed
 *   messages, uncompressed) and of what ours has produced, and passes it as the call's
 *   dictionary (zlib's deflateSetDictionary / inflateSetDictionary for raw streams). A
 *   decompressor primed with the whole window resolves every distance the peer may use. A
 *   compressor may refer to any suffix of what the peer holds, so it is primed with the last
 *   as many bytes as the message has (priming costs about as much per byte as compressing; on
 *   4 KiB JSON messages 4 KiB of reach gives 19.9% of the size against 19.4% with 32 KiB and
 *   21.9% with none, for about half the CPU of 32 KiB). A stream that missed a sync message
 *   is stale: it is dropped, and the next one starts from the window. Without context
 *   takeover there is no window: each message stands alone anyway.
 * - Every zlib job of every connection in the process goes through one {@link ZlibLimiter}: at
 *   most `concurrency` run at once, the rest wait in one FIFO. A connection runs its own jobs
 *   one at a time and puts only the next one in the FIFO, after its current one is done, so
 *   the FIFO serves connections round-robin: one busy connection cannot starve the others.
 * - Memory: a zlib stream lives only while it is used. After `releaseAfter` ms without
 *   traffic, a connection gives its streams and windows back. A compressor can always start
 *   afresh (the peer only follows back-references we choose to make). A decompressor with
 *   context takeover cannot forget the peer's history, so it keeps just the last window of
 *   output (at most `1 << windowBits` bytes), the dictionary of its next inflation.
 */
import zlib from 'node:zlib';
import { RemoteProtocolError } from '../core/errors.js';
import { formatExtensions, type ExtensionOffer } from '../core/header-lists.js';
import {
  acceptDeflateResponse,
  deflateDirections,
  formatDeflateOffer,
  negotiateDeflateServer,
  PERMESSAGE_DEFLATE,
  type DeflateParams,
  type PerMessageDeflateOptions,
} from '../core/permessage-deflate.js';

/** Options of permessage-deflate for a server or a client: negotiation plus codec settings. */
export interface PerMessageDeflateConfig extends PerMessageDeflateOptions {
  /**
   * Messages smaller than this many bytes are sent uncompressed (a per-message `compress`
   * option overrides it). Compressing a few bytes costs more CPU than it saves on the wire.
   * Default 1024.
   */
  threshold?: number;
  /** The zlib compression level, 0–9 (or -1, zlib's default, which is 6). Default -1. */
  level?: number;
  /**
   * zlib's memLevel, 1–9: the compressor's hash table is `1 << (memLevel + 9)` bytes.
   * Default 8 (128 KiB); 1 uses 1 KiB at some cost in speed and ratio.
   */
  memLevel?: number;
  /**
   * After this many ms without a compressed message, a connection releases its zlib contexts
   * (see docs/permessage-deflate.md for what is kept). `false` keeps them for the
   * connection's lifetime. Default 10,000.
   */
  releaseAfter?: number | false;
  /**
   * Messages of at most this many bytes are compressed, and inflated, synchronously on the
   * event loop instead of on the libuv thread pool: no thread hop, and no zlib memory held
   * between messages. Larger ones (and fragmented sends) go to the thread pool, so that one
   * call cannot block the event loop for long. 0 sends everything to the thread pool.
   * Default 16,384.
   */
  syncLimit?: number;
}

/** The defaults of {@link PerMessageDeflateConfig}'s codec settings. */
export const DEFLATE_DEFAULTS = {
  threshold: 1024,
  level: zlib.constants.Z_DEFAULT_COMPRESSION,
  memLevel: 8,
  releaseAfter: 10_000,
  /**
   * 16 KiB: compressing that much JSON primed with a 32 KiB dictionary (twice what it gets)
   * took 0.1–0.5 ms on a loaded 2-core machine (bench/README.md, "Compression"): the longest
   * a message may hold the event loop.
   */
  syncLimit: 16_384,
  /** zlib jobs running at once across the process. */
  concurrency: 10,
} as const;

/** RFC 7692 §7.2.1: the four octets a sender removes from the end of a compressed message. */
const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/**
 * Output chunk of the zlib streams (Node's default, 16 KiB): the granularity at which the
 * inflate limit is checked, and a buffer each live stream holds.
 */
const CHUNK_SIZE = zlib.constants.Z_DEFAULT_CHUNK;

/**
 * A cap on zlib jobs running at once, with a FIFO of those waiting.
 *
 * @example
 * limiter.run((done) => inflater.flush(() => done()));
 */
export class ZlibLimiter {
  private running = 0;
  private readonly waiting: Array<(done: () => void) => void> = [];
  private limit: number;

  constructor(limit: number = DEFLATE_DEFAULTS.concurrency) {
    this.limit = checkConcurrency(limit);
  }

  /** How many jobs run now, and how many wait. */
  get stats(): { running: number; waiting: number; limit: number } {
    return { running: this.running, waiting: this.waiting.length, limit: this.limit };
  }

  /** Changes the cap; jobs already running finish. */
  setLimit(limit: number): void {
    this.limit = checkConcurrency(limit);
    this.next();
  }

  /** Runs `job` when a slot is free; the job calls `done` exactly once when it has finished. */
  run(job: (done: () => void) => void): void {
    this.waiting.push(job);
    this.next();
  }

  private next(): void {
    while (this.running < this.limit && this.waiting.length > 0) {
      const job = this.waiting.shift() as (done: () => void) => void;
      this.running++;
      let finished = false;
      job(() => {
        if (finished) return;
        finished = true;
        this.running--;
        // On a later tick: a job that finishes synchronously must not recurse without bound.
        if (this.waiting.length > 0) queueMicrotask(() => this.next());
      });
    }
  }
}

function checkConcurrency(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RangeError(`the zlib concurrency must be an integer >= 1, got ${limit}`);
  }
  return limit;
}

/** The process-wide limiter that every connection's zlib work goes through. */
export const zlibLimiter = new ZlibLimiter();

/**
 * Sets how many zlib jobs (inflating or deflating one message) may run at once across every
 * connection of the process. Default 10. Jobs beyond it wait, first come first served.
 */
export function setDeflateConcurrency(limit: number): void {
  zlibLimiter.setLimit(limit);
}

// ---- idle release -----------------------------------------------------------------------------

const holding = new Set<DeflateCodec>();
let sweepTimer: NodeJS.Timeout | null = null;
let sweepPeriod = Infinity;

function hold(codec: DeflateCodec, releaseAfter: number): void {
  holding.add(codec);
  // One timer for every connection; it ticks at half the shortest idle time in use.
  const period = Math.max(10, Math.floor(releaseAfter / 2));
  if (sweepTimer === null || period < sweepPeriod) {
    if (sweepTimer !== null) clearInterval(sweepTimer);
    sweepPeriod = period;
    sweepTimer = setInterval(sweep, period);
    sweepTimer.unref();
  }
}

function sweep(): void {
  const now = Date.now();
  for (const codec of holding) codec.releaseIfIdle(now);
  if (holding.size === 0 && sweepTimer !== null) {
    clearInterval(sweepTimer);
    sweepTimer = null;
    sweepPeriod = Infinity;
  }
}

/** How many connections hold zlib contexts now (for tests and the memory benchmark). */
export function deflateContextsHeld(): number {
  return holding.size;
}

// ---- the codec --------------------------------------------------------------------------------

type InflateCallback = (result: Buffer | RemoteProtocolError) => void;

/**
 * The last `size` bytes that went through one direction of a connection with context takeover,
 * copied (a message handed to the application may be changed by it). Appending copies the new
 * bytes into a buffer of twice the window, sliding the window back to its start when it is full,
 * so a message costs one copy of itself and, every window's worth of bytes, one of the window.
 */
class SlidingWindow {
  private buffer: Buffer | null = null;
  private length = 0;

  constructor(private readonly size: number) {}

  /** The window, a view valid until the next append; null when nothing went through yet. */
  get bytes(): Buffer | null {
    if (this.buffer === null || this.length === 0) return null;
    return this.buffer.subarray(Math.max(0, this.length - this.size), this.length);
  }

  /** Whether it holds more memory than the bytes of the window (what `compact` gives back). */
  get roomy(): boolean {
    return this.buffer !== null && this.buffer.length > Math.min(this.length, this.size);
  }

  append(data: Uint8Array): void {
    const size = this.size;
    if (data.length === 0) return;
    if (data.length >= size) {
      if (this.buffer === null || this.buffer.length < size) this.buffer = Buffer.allocUnsafe(size);
      this.buffer.set(data.subarray(data.length - size));
      this.length = size;
      return;
    }
    const needed = this.length + data.length;
    if (this.buffer === null || (needed > this.buffer.length && this.buffer.length < 2 * size)) {
      // Grown by doubling up to twice the window: a connection that sent one small message
      // holds about that message, not two windows.
      const capacity = Math.min(2 * size, Math.max(1024, 2 * needed));
      const grown = Buffer.allocUnsafe(capacity);
      if (this.buffer !== null) this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    if (this.length + data.length > this.buffer.length) {
      const keep = size - data.length;
      this.buffer.copyWithin(0, this.length - keep, this.length);
      this.length = keep;
    }
    this.buffer.set(data, this.length);
    this.length += data.length;
  }

  /** Keeps the window alone, in a buffer of its size. */
  compact(): void {
    const bytes = this.bytes;
    this.buffer = bytes === null ? null : Buffer.from(bytes);
    this.length = bytes === null ? 0 : bytes.length;
  }

  clear(): void {
    this.buffer = null;
    this.length = 0;
  }
}

/** One connection's compressor and decompressor. */
export class DeflateCodec {
  /** Messages below this size go uncompressed unless `compress: true`. */
  readonly threshold: number;
  /** Messages of at most this size are compressed and inflated synchronously. */
  readonly syncLimit: number;
  private readonly inflateBits: number;
  private readonly inflateReset: boolean;
  private readonly deflateBits: number;
  private readonly deflateReset: boolean;
  private readonly level: number;
  private readonly memLevel: number;
  private readonly releaseAfter: number | false;
  private readonly maxPayload: number;
  private readonly limiter: ZlibLimiter;

  private inflater: zlib.InflateRaw | null = null;
  private deflater: zlib.DeflateRaw | null = null;
  /** What the peer's compressor can refer back to (context takeover): our inflated output. */
  private readonly inflateWindow: SlidingWindow | null;
  /** What the peer's decompressor holds (context takeover): our compressed messages. */
  private readonly deflateWindow: SlidingWindow | null;
  private inflateOut: Buffer[] = [];
  private inflateOutBytes = 0;
  private inflateCallback: InflateCallback | null = null;
  private inflateDone: (() => void) | null = null;
  private deflateDone: (() => void) | null = null;
  private deflateOut: Buffer[] = [];
  private deflateOutBytes = 0;
  /** Deflate jobs given to `deflate` and not finished: a sync one must not overtake them. */
  private deflatesPending = 0;
  /** The same for `inflate`. */
  private inflatesPending = 0;
  private busy = 0;
  private readonly jobs: Array<(done: () => void) => void> = [];
  private queued = false;
  private lastUsed = 0;
  private closed = false;

  constructor(
    params: DeflateParams,
    role: 'client' | 'server',
    config: PerMessageDeflateConfig,
    maxPayload: number,
    limiter: ZlibLimiter = zlibLimiter,
  ) {
    const directions = deflateDirections(params, role);
    this.inflateBits = directions.inflate.windowBits;
    this.inflateReset = directions.inflate.noContextTakeover;
    // zlib cannot compress raw DEFLATE with a 256-byte window and uses 512 bytes instead, but
    // its matches then reach back at most 512 - 262 = 250 bytes, within the peer's 256.
    this.deflateBits = Math.max(9, directions.deflate.windowBits);
    this.deflateReset = directions.deflate.noContextTakeover;
    this.threshold = config.threshold ?? DEFLATE_DEFAULTS.threshold;
    this.syncLimit = config.syncLimit ?? DEFLATE_DEFAULTS.syncLimit;
    this.level = config.level ?? DEFLATE_DEFAULTS.level;
    this.memLevel = config.memLevel ?? DEFLATE_DEFAULTS.memLevel;
    this.releaseAfter = config.releaseAfter ?? DEFLATE_DEFAULTS.releaseAfter;
    this.maxPayload = maxPayload;
    this.limiter = limiter;
    this.inflateWindow = this.inflateReset ? null : new SlidingWindow(1 << this.inflateBits);
    this.deflateWindow = this.deflateReset ? null : new SlidingWindow(1 << this.deflateBits);
  }

  /**
   * When this connection's outgoing messages are compressed without context takeover (the
   * server negotiated server_no_context_takeover, RFC 7692 §7.1.1.1), a message compresses to
   * the same bytes for every connection with the same settings, so a published message can be
   * compressed once for all of them. This key names those settings; null with context takeover.
   */
  get sharedCompressionKey(): string | null {
    return this.deflateReset ? `${this.deflateBits}:${this.level}:${this.memLevel}` : null;
  }

  /**
   * Whether memory that `release` gives back is held now: zlib streams, or windows kept for
   * context takeover beyond the one window a decompressor always keeps (false once released
   * or closed).
   */
  get holdsContexts(): boolean {
    return (
      this.inflater !== null ||
      this.deflater !== null ||
      (this.inflateWindow?.roomy ?? false) ||
      (this.deflateWindow?.bytes ?? null) !== null
    );
  }

  /**
   * Inflates one message now, on the calling thread, when it is small enough: its compressed
   * pieces weigh at most `syncLimit` bytes and it inflates to at most `syncLimit` bytes (zlib
   * stops one 16 KiB chunk past that). Returns the bytes, or the error that fails the
   * connection (1009 past `maxPayload`, 1007 on a corrupt stream), or null when the message is
   * for {@link inflate} (bigger than the bound, or an inflation already under way).
   */
  inflateSync(pieces: readonly Uint8Array[]): Buffer | RemoteProtocolError | null {
    if (this.closed || this.inflatesPending > 0 || this.syncLimit === 0) return null;
    let size = 0;
    for (const piece of pieces) size += piece.length;
    // DEFLATE expands nothing by more than a few bytes per 64 KiB: more input means more output.
    if (size > this.syncLimit) return null;
    const limit = Math.min(this.syncLimit, this.maxPayload);
    const dictionary = this.inflateWindow?.bytes ?? null;
    let data: Buffer;
    try {
      // RFC 7692 §7.2.2: append 0x00 0x00 0xff 0xff, then decompress.
      data = zlib.inflateRawSync(Buffer.concat([...pieces, TRAILER]), {
        windowBits: this.inflateBits,
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
        chunkSize: CHUNK_SIZE,
        // Checked after each output chunk: zlib stops within one chunk past it, so a bomb
        // costs at most the bound plus 16 KiB here, as on the stream.
        maxOutputLength: Math.max(1, limit),
        ...(dictionary !== null ? { dictionary } : {}),
      });
    } catch (error) {
      if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        // Past the sync bound but perhaps within maxPayload: the stream does it again, counted
        // as it goes (the window is untouched: nothing of this attempt was kept).
        if (this.maxPayload > this.syncLimit) return null;
        return this.tooBig(this.maxPayload + 1);
      }
      return this.inflateError(error as Error);
    }
    if (data.length > this.maxPayload) return this.tooBig(data.length);
    // The output is a view of a 16 KiB chunk; a small message handed to the application
    // should not keep the whole chunk alive.
    if (data.length < data.buffer.byteLength >>> 1) data = Buffer.from(data);
    if (this.inflateWindow !== null) {
      this.inflateWindow.append(data);
      // The stream did not see this message: its history is stale. The next stream starts
      // from the window.
      this.dropInflater();
    }
    this.touch();
    return data;
  }

  /**
   * Inflates one message from its compressed pieces. Calls back with the bytes, or with the
   * error that fails the connection: 1009 past `maxPayload`, 1007 on a corrupt stream.
   * One message at a time: the core does not yield the next one before this one is handed back.
   */
  inflate(pieces: readonly Uint8Array[], callback: InflateCallback): void {
    this.busy++;
    this.inflatesPending++;
    this.submit((done) => {
      if (this.closed) {
        this.busy--;
        this.inflatesPending--;
        done();
        return;
      }
      const inflater = this.getInflater();
      this.inflateCallback = callback;
      this.inflateDone = done;
      this.inflateOut = [];
      this.inflateOutBytes = 0;
      // RFC 7692 §7.2.2: "Append 4 octets of 0x00 0x00 0xff 0xff to the tail end of the
      // payload of the message", then decompress. One write (the compressed bytes are copied
      // once, next to the trailer) with the stream's sync flush: one trip to the thread pool.
      inflater.write(Buffer.concat([...pieces, TRAILER]), () => {
        if (this.inflater !== inflater || this.inflateCallback !== callback) return;
        const out = this.inflateOut;
        const data = out.length === 1 ? out[0] : Buffer.concat(out, this.inflateOutBytes);
        this.inflateOut = [];
        if (this.inflateReset) inflater.reset();
        else this.inflateWindow?.append(data);
        this.finishInflate(data);
      });
    });
  }

  /**
   * Compresses one whole message now, on the calling thread, when it is at most `syncLimit`
   * bytes and no earlier compression of this connection is still under way (it must not be
   * overtaken). Returns the payload to send and whether it is compressed (RSV1): a compressed
   * form that is not smaller than `data` is thrown away, as in {@link deflate} with `whole`.
   * Returns null when the message is for {@link deflate}.
   */
  deflateSync(data: Uint8Array): { payload: Uint8Array; compressed: boolean } | null {
    if (this.closed || this.deflatesPending > 0 || data.length > this.syncLimit) return null;
    // Priming a one-shot compressor with the window costs zlib about as much per byte as
    // finding matches in the message, so the dictionary is the window's last bytes, as many
    // as the message has (at least 1 KiB): a 4 KiB message refers back up to 4 KiB, not 32
    // (see the theory of operation above).
    let dictionary = this.deflateWindow?.bytes ?? null;
    if (dictionary !== null) {
      const reach = Math.max(1024, data.length);
      if (dictionary.length > reach) dictionary = dictionary.subarray(dictionary.length - reach);
    }
    let payload: Buffer;
    try {
      payload = zlib.deflateRawSync(data, {
        windowBits: this.deflateBits,
        level: this.level,
        memLevel: this.memLevel,
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
        ...(dictionary !== null ? { dictionary } : {}),
      });
    } catch {
      // Out of memory, nothing else: the stream path reports it its own way.
      return null;
    }
    // RFC 7692 §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end."
    if (endsWithTrailer(payload)) payload = payload.subarray(0, payload.length - 4);
    // RFC 7692 §6: a message may go plain; it then never reaches the peer's decompressor, so
    // it stays out of the window.
    if (payload.length >= data.length) return { payload: data, compressed: false };
    if (this.deflateWindow !== null) {
      this.deflateWindow.append(data);
      this.dropDeflater();
    }
    this.touch();
    return { payload, compressed: true };
  }

  /**
   * Compresses one message, or one fragment of it (`fin` false), and calls back with the
   * payload to send with RSV1 on its first frame. A fragment's output keeps its sync-flush
   * marker: it is valid in the middle of the DEFLATE stream; only the message's end loses it.
   *
   * With `whole` (an unfragmented message), a compressed form that is not smaller than `data`
   * is thrown away and `data` comes back with `compressed` false, to be sent without RSV1:
   * RFC 7692 §6 marks compression per message (RSV1), so a sender may leave any message plain. Random or already
   * compressed payloads (images, video, ciphertext) then cost the peer no inflation.
   */
  deflate(
    data: Uint8Array,
    fin: boolean,
    callback: (payload: Uint8Array | null, compressed: boolean) => void,
    whole = false,
  ): void {
    this.busy++;
    this.deflatesPending++;
    this.submit((done) => {
      if (this.closed) {
        this.busy--;
        this.deflatesPending--;
        done();
        callback(null, false);
        return;
      }
      const deflater = this.getDeflater();
      this.deflateDone = done;
      this.deflateOut = [];
      this.deflateOutBytes = 0;
      // The stream's default flush is Z_SYNC_FLUSH, so one write compresses and flushes.
      const flushed = () => {
        if (this.deflater !== deflater || this.deflateDone !== done) {
          // Closed (or the compressor failed) meanwhile; close() released the slot.
          callback(null, false);
          return;
        }
        const out = this.deflateOut;
        let payload = out.length === 1 ? out[0] : Buffer.concat(out, this.deflateOutBytes);
        this.deflateOut = [];
        let compressed = true;
        if (fin) {
          // RFC 7692 §7.2.1: "Remove 4 octets (that are 0x00 0x00 0xff 0xff) from the tail end."
          if (endsWithTrailer(payload)) payload = payload.subarray(0, payload.length - 4);
          compressed = !whole || payload.length < data.length;
          // RFC 7692 §7.1.1: without context takeover, each message starts a fresh context.
          if (this.deflateReset) deflater.reset();
          // A message sent uncompressed never reaches the peer's decompressor, so our
          // compressor must forget it: the next stream starts from the window, which lacks it.
          // (Not reset(): Node's reset sets the stream's first dictionary again, an older
          // window than the peer's.)
          else if (!compressed) this.dropDeflater();
        }
        if (compressed) this.deflateWindow?.append(data);
        this.deflateDone = null;
        this.busy--;
        this.deflatesPending--;
        this.touch();
        done();
        if (compressed) callback(payload, true);
        else callback(data, false);
      };
      if (data.length > 0) deflater.write(data, flushed);
      else deflater.flush(zlib.constants.Z_SYNC_FLUSH, flushed);
    });
  }

  /** Releases every zlib context; pending callbacks are dropped. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dropInflater();
    this.dropDeflater();
    this.inflateWindow?.clear();
    this.deflateWindow?.clear();
    holding.delete(this);
    // Give the limiter its slots back: a destroyed stream may never call its flush back.
    const inflateDone = this.inflateDone;
    const deflateDone = this.deflateDone;
    this.inflateDone = null;
    this.deflateDone = null;
    this.inflateCallback = null;
    inflateDone?.();
    deflateDone?.();
  }

  /** @internal called by the sweep: give the contexts back after `releaseAfter` idle ms. */
  releaseIfIdle(now: number): void {
    if (this.releaseAfter === false || this.busy > 0) return;
    if (now - this.lastUsed < this.releaseAfter) return;
    this.release();
  }

  /** Gives back the zlib contexts now (when idle), keeping what context takeover needs. */
  release(): void {
    if (this.busy > 0 || this.closed) return;
    this.dropInflater();
    this.dropDeflater();
    // The peer may still refer to what it sent; what we sent, we need not refer to.
    this.inflateWindow?.compact();
    this.deflateWindow?.clear();
    holding.delete(this);
  }

  // ---- internals -------------------------------------------------------------------------------

  /**
   * Runs this connection's zlib jobs one at a time, each taking its turn in the shared limiter:
   * after a job, the next one of this connection queues behind every other connection's.
   */
  private submit(job: (done: () => void) => void): void {
    this.jobs.push(job);
    if (!this.queued) this.takeTurn();
  }

  private takeTurn(): void {
    this.queued = true;
    this.limiter.run((done) => {
      const job = this.jobs.shift() as (done: () => void) => void;
      let finished = false;
      job(() => {
        if (finished) return;
        finished = true;
        done();
        if (this.jobs.length > 0) this.takeTurn();
        else this.queued = false;
      });
    });
  }

  private getInflater(): zlib.InflateRaw {
    if (this.inflater !== null) return this.inflater;
    const dictionary = this.inflateWindow?.bytes ?? null;
    const inflater = zlib.createInflateRaw({
      flush: zlib.constants.Z_SYNC_FLUSH,
      windowBits: this.inflateBits,
      chunkSize: CHUNK_SIZE,
      // The window is copied by zlib here, so later appends cannot change it under the stream.
      ...(dictionary !== null ? { dictionary } : {}),
    });
    inflater.on('data', (chunk: Buffer) => this.onInflateData(inflater, chunk));
    inflater.on('error', (error: Error) => this.onInflateError(inflater, error));
    this.inflater = inflater;
    this.touch();
    return inflater;
  }

  private getDeflater(): zlib.DeflateRaw {
    if (this.deflater !== null) return this.deflater;
    const dictionary = this.deflateWindow?.bytes ?? null;
    const deflater = zlib.createDeflateRaw({
      flush: zlib.constants.Z_SYNC_FLUSH,
      windowBits: this.deflateBits,
      level: this.level,
      memLevel: this.memLevel,
      chunkSize: CHUNK_SIZE,
      ...(dictionary !== null ? { dictionary } : {}),
    });
    deflater.on('data', (chunk: Buffer) => {
      this.deflateOut.push(chunk);
      this.deflateOutBytes += chunk.length;
    });
    // A compressor fed by us cannot meet corrupt data; an error here is a bug or out-of-memory.
    deflater.on('error', () => {
      this.dropDeflater();
      const done = this.deflateDone;
      this.deflateDone = null;
      if (done !== null) {
        this.busy--;
        this.deflatesPending--;
        done();
      }
    });
    this.deflater = deflater;
    this.touch();
    return deflater;
  }

  private onInflateData(inflater: zlib.InflateRaw, chunk: Buffer): void {
    if (inflater !== this.inflater || this.inflateCallback === null) return;
    this.inflateOutBytes += chunk.length;
    if (this.inflateOutBytes > this.maxPayload) {
      // Stop inflating now: destroying the stream drops the input it has not processed yet.
      this.dropInflater();
      this.finishInflate(this.tooBig(this.inflateOutBytes));
      return;
    }
    this.inflateOut.push(chunk);
  }

  private onInflateError(inflater: zlib.InflateRaw, error: Error): void {
    if (inflater !== this.inflater) return;
    this.dropInflater();
    if (this.inflateCallback === null) return;
    this.finishInflate(this.inflateError(error));
  }

  /** 1009 for a message that inflated to at least `inflated` bytes, over `maxPayload`. */
  private tooBig(inflated: number): RemoteProtocolError {
    return new RemoteProtocolError(
      'SWITCHYARD_ERR_MESSAGE_TOO_BIG',
      `Compressed message inflated to at least ${inflated} bytes, over maxPayload (${this.maxPayload} bytes)`,
      { closeCode: 1009 },
    );
  }

  private inflateError(error: Error): RemoteProtocolError {
    // RFC 6455 §7.4.1: 1007, "data within a message that was not consistent with the type of
    // the message"; a corrupt DEFLATE stream is the closest the registry has.
    return new RemoteProtocolError(
      'SWITCHYARD_ERR_INFLATE',
      `A compressed message could not be inflated: ${error.message}`,
      { closeCode: 1007, cause: error },
    );
  }

  private finishInflate(result: Buffer | RemoteProtocolError): void {
    const callback = this.inflateCallback;
    const done = this.inflateDone;
    this.inflateCallback = null;
    this.inflateDone = null;
    this.inflateOut = [];
    this.busy--;
    this.inflatesPending--;
    this.touch();
    done?.();
    callback?.(result);
  }

  private touch(): void {
    this.lastUsed = Date.now();
    if (this.releaseAfter !== false && !this.closed && this.holdsContexts) {
      hold(this, this.releaseAfter);
    }
  }

  private dropInflater(): void {
    const inflater = this.inflater;
    if (inflater === null) return;
    this.inflater = null;
    inflater.removeAllListeners('data');
    // Errors after destroy (an aborted write) have nowhere to go.
    inflater.on('error', noop);
    inflater.destroy();
  }

  private dropDeflater(): void {
    const deflater = this.deflater;
    if (deflater === null) return;
    this.deflater = null;
    deflater.removeAllListeners('data');
    deflater.on('error', noop);
    deflater.destroy();
  }
}

function endsWithTrailer(b: Buffer): boolean {
  const n = b.length;
  return n >= 4 && b[n - 4] === 0 && b[n - 3] === 0 && b[n - 2] === 0xff && b[n - 1] === 0xff;
}

function noop(): void {}

// ---- glue for the server and the client ---------------------------------------------------------

/** The config an option stands for: null for off, `{}` (the defaults) for `true`. */
export function deflateConfig(
  option: boolean | PerMessageDeflateConfig | undefined,
  enabledByDefault = false,
): PerMessageDeflateConfig | null {
  const value = option ?? enabledByDefault;
  if (value === false) return null;
  return value === true ? {} : value;
}

/**
 * Server side: answers the client's offers (already parsed) under `option`, and builds the
 * codec. Returns null when compression is off or no offer was acceptable.
 *
 * @example
 * const accepted = acceptDeflateOffers(check.extensions, options.perMessageDeflate, maxPayload);
 * formatAcceptResponse({ key, extensions: accepted?.header });
 */
export function acceptDeflateOffers(
  offers: readonly ExtensionOffer[],
  option: boolean | PerMessageDeflateConfig | undefined,
  maxPayload: number,
): { header: string; codec: DeflateCodec } | null {
  const config = deflateConfig(option);
  if (config === null) return null;
  const { accepted } = negotiateDeflateServer(offers, config);
  if (accepted === null) return null;
  return {
    header: formatExtensions([accepted.response]),
    codec: new DeflateCodec(accepted.params, 'server', config, maxPayload),
  };
}

/**
 * Client side: the Sec-WebSocket-Extensions value to offer under `option`, or null when
 * compression is off.
 */
export function deflateOfferHeader(config: PerMessageDeflateConfig | null): string | null {
  return config === null ? null : formatExtensions([formatDeflateOffer(config)]);
}

/**
 * Client side: checks the extensions the server accepted (already checked to be among those
 * offered) and builds the codec. Returns null when the server declined compression, or the
 * handshake error when its answer broke RFC 7692 §7.
 */
export function acceptDeflateResponseFor(
  extensions: readonly ExtensionOffer[],
  config: PerMessageDeflateConfig | null,
  maxPayload: number,
): { header: string; codec: DeflateCodec } | RemoteProtocolError | null {
  const response = extensions.find((e) => e.name === PERMESSAGE_DEFLATE);
  if (config === null || response === undefined) return null;
  const result = acceptDeflateResponse(response, config);
  if (!result.ok) {
    return new RemoteProtocolError(
      'SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS',
      `The server's permessage-deflate response is invalid: ${result.reason} (RFC 7692 §7).`,
    );
  }
  return {
    header: formatExtensions(extensions),
    codec: new DeflateCodec(result.params, 'client', config, maxPayload),
  };
}

/**
 * Compresses one message on its own (no context taken over from earlier messages), as a
 * connection with `sharedCompressionKey` `key` would: a raw DEFLATE stream with a sync flush and
 * the trailing 0x00 0x00 0xff 0xff removed (RFC 7692 §7.2.1). Synchronous: it runs once per
 * published message for all its subscribers, and a message is bounded by maxPayload.
 */
export function compressShared(key: string, payload: Uint8Array): Buffer {
  const [windowBits, level, memLevel] = key.split(':').map(Number);
  const out = zlib.deflateRawSync(payload, {
    windowBits,
    level,
    memLevel,
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  return endsWithTrailer(out) ? out.subarray(0, out.length - 4) : out;
}
