/**
 * Reconnection policy and the send queue of a reconnecting client: pure data and arithmetic,
 * no sockets and no timers, shared by the Node client (`ReconnectingWebSocket`) and the browser
 * entry point (`switchyard/browser`).
 *
 * Theory of operation. A logical connection lives over many sockets. When one ends, the driver
 * asks {@link ReconnectPolicy.next} with the cause (a close code, a handshake status, or a
 * network error). The policy answers "stop" (with the reason) or "retry after N ms": an
 * exponential backoff `min(maxDelay, minDelay * factor^attempt)` drawn with full jitter
 * (uniform between 0 and that cap, so that a thousand clients dropped by one restart do not
 * come back at the same instant), never sooner than a server's `Retry-After`. A successful
 * open resets the attempt count. While no socket is open, messages wait in an
 * {@link OutboundQueue} bounded in count and bytes; it is flushed in order on the next open.
 */

/** Why a socket of a reconnecting client ended: what decides whether it comes back. */
export type DisconnectCause =
  /** The connection closed after it was open (a close frame, or 1006 when it vanished). */
  | { kind: 'close'; code: number; reason: string }
  /** The server answered the opening handshake with something other than 101. */
  | { kind: 'handshake'; status: number; retryAfterMs: number | null }
  /** No answer at all: refused, reset, DNS, TLS, timeout. */
  | { kind: 'network'; error: Error };

/** Options of a reconnecting client. */
export interface ReconnectOptions {
  /** Smallest backoff cap, in ms (the first retry waits between 0 and this). Default 500. */
  minDelay?: number;
  /** Largest backoff cap, in ms. Default 30 000. */
  maxDelay?: number;
  /** Growth of the cap per failed attempt. Default 2. */
  factor?: number;
  /** Attempts after a drop before giving up; Infinity for never. Default Infinity. */
  maxRetries?: number;
  /**
   * Decides whether a cause reconnects, overriding the default rule
   * ({@link isRetryableByDefault}). Return `true` to retry, `false` to stop.
   */
  shouldReconnect?: (cause: DisconnectCause, attempt: number) => boolean;
  /** Most messages `send` queues while disconnected. Default 1 000. */
  maxQueuedMessages?: number;
  /** Most bytes `send` queues while disconnected. Default 1 MiB. */
  maxQueuedBytes?: number;
  /** Pseudo-random source in [0, 1), for tests. Default `Math.random`. */
  random?: () => number;
}

/** The defaults of {@link ReconnectOptions}. */
export const RECONNECT_DEFAULTS = {
  minDelay: 500,
  maxDelay: 30_000,
  factor: 2,
  maxRetries: Infinity,
  maxQueuedMessages: 1_000,
  maxQueuedBytes: 1024 * 1024,
} as const;

/**
 * Close codes that reconnect by default: going away (1001), abnormal (1006), internal error
 * (1011), service restart (1012), try again later (1013), bad gateway (1014). Normal closure
 * (1000), policy violation (1008), other protocol errors and application codes (4000-4999) mean
 * "do not come back" unless `shouldReconnect` says otherwise.
 */
export const RETRYABLE_CLOSE_CODES: ReadonlySet<number> = new Set([
  1001, 1006, 1011, 1012, 1013, 1014,
]);

/**
 * Handshake statuses that reconnect by default: timeouts, rate limits and server-side failures.
 * 401, 403, 404 and the rest of 4xx are answers that a retry would only repeat.
 */
export const RETRYABLE_HANDSHAKE_STATUSES: ReadonlySet<number> = new Set([
  408, 425, 429, 500, 502, 503, 504,
]);

/** The default rule: network errors always, close codes and statuses from the two sets. */
export function isRetryableByDefault(cause: DisconnectCause): boolean {
  switch (cause.kind) {
    case 'network':
      return true;
    case 'close':
      return RETRYABLE_CLOSE_CODES.has(cause.code);
    case 'handshake':
      return RETRYABLE_HANDSHAKE_STATUSES.has(cause.status);
  }
}

/**
 * Reads a `Retry-After` value (RFC 9110 §10.2.3): delay-seconds or an HTTP-date, as ms from
 * `now`. Returns null when absent or unreadable.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | null {
  if (value === undefined) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP-date names its day and month (IMF-fixdate, RFC 850 or asctime); a bare "-1" is not one.
  const date = /[A-Za-z]/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}

/** What to do after a disconnect. */
export type ReconnectDecision =
  | { action: 'retry'; attempt: number; delay: number }
  | { action: 'stop'; reason: 'not-retryable' | 'max-retries' };

/** The backoff state of one logical connection. */
export class ReconnectPolicy {
  private readonly minDelay: number;
  private readonly maxDelay: number;
  private readonly factor: number;
  private readonly maxRetries: number;
  private readonly random: () => number;
  private readonly shouldReconnect: ReconnectOptions['shouldReconnect'];
  /** Attempts since the last successful open. */
  private attempts = 0;

  constructor(options: ReconnectOptions = {}) {
    this.minDelay = checkNumber('minDelay', options.minDelay ?? RECONNECT_DEFAULTS.minDelay);
    this.maxDelay = checkNumber('maxDelay', options.maxDelay ?? RECONNECT_DEFAULTS.maxDelay);
    this.factor = checkNumber('factor', options.factor ?? RECONNECT_DEFAULTS.factor);
    this.maxRetries = checkNumber(
      'maxRetries',
      options.maxRetries ?? RECONNECT_DEFAULTS.maxRetries,
    );
    if (this.factor < 1) throw new RangeError('reconnect.factor must be at least 1');
    if (this.maxDelay < this.minDelay) {
      throw new RangeError('reconnect.maxDelay must be at least reconnect.minDelay');
    }
    this.random = options.random ?? Math.random;
    this.shouldReconnect = options.shouldReconnect;
  }

  /** Attempts made since the last open. */
  get attempt(): number {
    return this.attempts;
  }

  /** A socket opened: the next drop starts the backoff from the beginning. */
  opened(): void {
    this.attempts = 0;
  }

  /** Decides what follows `cause`, and advances the attempt count when it is a retry. */
  next(cause: DisconnectCause): ReconnectDecision {
    const retryable = this.shouldReconnect
      ? this.shouldReconnect(cause, this.attempts + 1)
      : isRetryableByDefault(cause);
    if (!retryable) return { action: 'stop', reason: 'not-retryable' };
    if (this.attempts >= this.maxRetries) return { action: 'stop', reason: 'max-retries' };
    const cap = Math.min(this.maxDelay, this.minDelay * this.factor ** this.attempts);
    // Full jitter: uniform in [0, cap). Spreads a crowd over the whole window.
    let delay = Math.floor(this.random() * cap);
    if (cause.kind === 'handshake' && cause.retryAfterMs !== null) {
      // The server said when to come back: never sooner (RFC 9110 §10.2.3).
      delay = Math.max(delay, cause.retryAfterMs);
    }
    this.attempts++;
    return { action: 'retry', attempt: this.attempts, delay };
  }
}

function checkNumber(name: string, value: number): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`reconnect.${name} must be a non-negative number, got ${String(value)}`);
  }
  return value;
}

/** A message waiting for the next socket. */
export interface QueuedMessage<T> {
  data: T;
  bytes: number;
}

/** The bounded queue of messages sent while disconnected. */
export class OutboundQueue<T> {
  private items: QueuedMessage<T>[] = [];
  private byteCount = 0;

  constructor(
    readonly maxMessages: number = RECONNECT_DEFAULTS.maxQueuedMessages,
    readonly maxBytes: number = RECONNECT_DEFAULTS.maxQueuedBytes,
  ) {}

  /** Queued bytes (for `bufferedAmount`). */
  get bytes(): number {
    return this.byteCount;
  }

  /** Queued messages. */
  get length(): number {
    return this.items.length;
  }

  /**
   * Queues a message; returns null when it fits, else which limit it would pass (nothing is
   * queued then).
   */
  push(data: T, bytes: number): 'messages' | 'bytes' | null {
    if (this.items.length + 1 > this.maxMessages) return 'messages';
    if (this.byteCount + bytes > this.maxBytes) return 'bytes';
    this.items.push({ data, bytes });
    this.byteCount += bytes;
    return null;
  }

  /** Takes every queued message, oldest first, and empties the queue. */
  drain(): QueuedMessage<T>[] {
    const items = this.items;
    this.items = [];
    this.byteCount = 0;
    return items;
  }
}
