/**
 * The replay window of a topic: the last messages published on it, each with its position, so
 * that a client that reconnects gets what it missed (the resume exchange, docs/resume.md).
 *
 * Theory of operation. Positions are a per-topic sequence, 1 for the first message. The window
 * keeps the newest messages within three bounds (count, bytes, age) and forgets the oldest
 * first; `since(p)` answers what follows position p: the messages still kept, and, when the
 * oldest kept one is not p + 1, the range that is gone (a gap, reported to the client instead
 * of silently skipped). Pure: time is passed in, nothing is scheduled. With a backplane that
 * offers a shared window (`ReplayStore`, for example Redis Streams), positions and the window
 * live there instead, so that every instance agrees on them.
 */
import { LocalProtocolError } from '../core/errors.js';
import { is, type OptionTable } from '../core/options.js';

/** Bounds of a topic's replay window. */
export interface ReplayOptions {
  /** Most messages kept per topic. Default 1,000. */
  maxMessages?: number;
  /** Most payload bytes kept per topic. Default 1 MiB. */
  maxBytes?: number;
  /** Oldest message kept, in ms. Default 5 minutes. */
  maxAge?: number;
}

/** The defaults of {@link ReplayOptions}. */
export const REPLAY_DEFAULTS = {
  maxMessages: 1000,
  maxBytes: 1024 * 1024,
  maxAge: 5 * 60_000,
} as const;

/** The option table of `pubsub.replay` (the object form). */
export const REPLAY_OPTIONS: OptionTable = {
  owner: 'pubsub.replay',
  options: [
    {
      name: 'maxMessages',
      check: is.integer(0, true),
      default: REPLAY_DEFAULTS.maxMessages,
      meaning: 'most messages kept per topic',
    },
    {
      name: 'maxBytes',
      check: is.integer(0, true),
      default: REPLAY_DEFAULTS.maxBytes,
      meaning: 'most payload bytes kept (with Redis: replayed) per topic',
    },
    {
      name: 'maxAge',
      check: is.milliseconds,
      default: REPLAY_DEFAULTS.maxAge,
      meaning: 'oldest message kept, in ms',
    },
  ],
};

/** A message kept in a window. */
export interface ReplayEntry {
  position: number;
  data: Uint8Array;
  binary: boolean;
}

/** What follows a position: a lost range first (if any), then the kept messages in order. */
export interface ReplayResult {
  /** Positions lost; `to` null when unknown (the client is ahead: the sequence restarted). */
  gap: { from: number; to: number | null } | null;
  entries: ReplayEntry[];
  /** The newest position, after which live messages continue. */
  last: number;
}

/** Fills defaults and checks bounds. */
export function resolveReplayOptions(options: ReplayOptions): Required<ReplayOptions> {
  const resolved = {
    maxMessages: options.maxMessages ?? REPLAY_DEFAULTS.maxMessages,
    maxBytes: options.maxBytes ?? REPLAY_DEFAULTS.maxBytes,
    maxAge: options.maxAge ?? REPLAY_DEFAULTS.maxAge,
  };
  for (const [name, value] of Object.entries(resolved)) {
    if (typeof value !== 'number' || !(value >= 0)) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `pubsub.replay.${name} must be a non-negative number, got ${String(value)}`,
      );
    }
  }
  return resolved;
}

/** Computes what follows `after`, given the newest position and the kept entries. */
export function replayAfter(after: number, last: number, entries: ReplayEntry[]): ReplayResult {
  if (after > last) return { gap: { from: after + 1, to: null }, entries: [], last };
  if (after === last) return { gap: null, entries: [], last };
  const first = entries.length > 0 ? entries[0].position : last + 1;
  const gap = first > after + 1 ? { from: after + 1, to: first - 1 } : null;
  return { gap, entries: entries.filter((e) => e.position > after), last };
}

/** One topic's window, in this process. */
export class ReplayWindow {
  /** The newest position given (0 before the first message). */
  last = 0;
  private entries: Array<ReplayEntry & { time: number }> = [];
  private head = 0;
  private bytes = 0;

  constructor(private readonly bounds: Required<ReplayOptions>) {}

  /** Keeps a message; returns its position. */
  append(data: Uint8Array, binary: boolean, now: number): number {
    const position = ++this.last;
    this.entries.push({ position, data, binary, time: now });
    this.bytes += data.length;
    this.evict(now);
    return position;
  }

  /** What a client that last saw `after` missed. */
  since(after: number, now: number): ReplayResult {
    this.evict(now);
    return replayAfter(after, this.last, this.entries.slice(this.head));
  }

  /** Messages kept now. */
  get size(): number {
    return this.entries.length - this.head;
  }

  /** Payload bytes kept now. */
  get byteLength(): number {
    return this.bytes;
  }

  private evict(now: number): void {
    const { maxMessages, maxBytes, maxAge } = this.bounds;
    while (this.head < this.entries.length) {
      const oldest = this.entries[this.head];
      if (
        this.entries.length - this.head <= maxMessages &&
        this.bytes <= maxBytes &&
        now - oldest.time <= maxAge
      ) {
        break;
      }
      this.bytes -= oldest.data.length;
      this.head++;
    }
    // Compact once the dead prefix is as long as what is kept (amortised O(1) per message).
    if (this.head > 32 && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
