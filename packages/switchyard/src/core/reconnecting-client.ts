/**
 * What the two reconnecting clients share beyond the policy and the resume codec: the Node one
 * (`node/reconnecting.ts`, over `connect()`) and the browser one (`browser/reconnecting.ts`, over
 * the native `WebSocket`) differ in their I/O and their events, not in their rules, so the
 * `reconnect` option table, the errors they report and the async iterator's inbox live here,
 * once. Internal: not exported by `switchyard/core`.
 */
import { LocalProtocolError } from './errors.js';
import { is, type OptionTable } from './options.js';
import { RECONNECT_DEFAULTS, type DisconnectCause, type OutboundQueue } from './reconnect.js';

/** `reconnect: { ... }` of both `ReconnectingWebSocket` classes. */
export const RECONNECT_OPTIONS: OptionTable = {
  owner: 'reconnect',
  options: [
    {
      name: 'minDelay',
      check: is.milliseconds,
      default: RECONNECT_DEFAULTS.minDelay,
      defaultText: '500 ms',
      meaning: 'the first backoff delay',
    },
    {
      name: 'maxDelay',
      check: is.milliseconds,
      default: RECONNECT_DEFAULTS.maxDelay,
      defaultText: '30,000 ms',
      meaning: 'the longest backoff delay',
    },
    {
      name: 'factor',
      check: {
        type: 'number',
        expected: 'a number of at least 1',
        test: (v) => typeof v === 'number' && Number.isFinite(v) && v >= 1,
      },
      default: RECONNECT_DEFAULTS.factor,
      meaning: 'how much the delay grows per attempt',
    },
    {
      name: 'maxRetries',
      check: is.integer(0, true),
      default: RECONNECT_DEFAULTS.maxRetries,
      defaultText: 'Infinity',
      meaning: 'attempts without an open before giving up',
    },
    { name: 'shouldReconnect', check: is.function, meaning: '`(cause, attempt) => boolean`' },
    {
      name: 'maxQueuedMessages',
      check: is.integer(0, true),
      default: RECONNECT_DEFAULTS.maxQueuedMessages,
      meaning: 'messages queued while disconnected',
    },
    {
      name: 'maxQueuedBytes',
      check: is.integer(0, true),
      default: RECONNECT_DEFAULTS.maxQueuedBytes,
      meaning: 'bytes queued while disconnected',
    },
    { name: 'random', check: is.function, meaning: 'the jitter source, `() => number` in [0, 1)' },
  ],
};

/**
 * The error of a `send` that found the offline queue full (`over`: the limit it would pass);
 * the message is dropped and `send` returns false.
 */
export function queueFullError(
  queue: OutboundQueue<unknown>,
  over: 'messages' | 'bytes',
  bytes: number,
): LocalProtocolError {
  return new LocalProtocolError(
    'SWITCHYARD_ERR_RECONNECT_QUEUE_FULL',
    over === 'messages'
      ? `Message dropped: ${queue.maxMessages} messages already wait for a connection (reconnect.maxQueuedMessages)`
      : `Message dropped: ${queue.bytes} bytes wait for a connection and ${bytes} more would pass reconnect.maxQueuedBytes (${queue.maxBytes})`,
  );
}

/** The error reported before the final `close` when `reconnect.maxRetries` is reached. */
export function gaveUpError(url: string, attempts: number): LocalProtocolError {
  return new LocalProtocolError(
    'SWITCHYARD_ERR_RECONNECT_GAVE_UP',
    `Gave up reconnecting to ${url} after ${attempts} attempts (reconnect.maxRetries)`,
  );
}

/**
 * The code and reason of the last `close` when `cause` is not retried: the socket's own for a
 * close, 1006 (abnormal, RFC 6455 §7.4.1) for a socket that never opened.
 */
export function finalClose(cause: DisconnectCause): { code: number; reason: string } {
  return cause.kind === 'close'
    ? { code: cause.code, reason: cause.reason }
    : { code: 1006, reason: '' };
}

/** The error of `send` after `close()`. */
export function closedError(): LocalProtocolError {
  return new LocalProtocolError(
    'SWITCHYARD_ERR_INVALID_STATE',
    'Cannot send: the reconnecting WebSocket was closed',
  );
}

/**
 * The messages of a logical connection waiting for `for await`, and the reads waiting for a
 * message. Nothing is kept until the first iterator is asked for, nor after it returns.
 */
export class MessageInbox<T> {
  private items: T[] | null = null;
  private waiters: Array<(result: IteratorResult<T>) => void> = [];
  private ended = false;

  /** A message arrived: to a waiting read, else kept (when an iterator exists). */
  push(item: T): void {
    if (this.items === null) return;
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter({ value: item, done: false });
    else this.items.push(item);
  }

  /** The logical connection is over: kept messages are still read, then the iterator ends. */
  end(): void {
    this.ended = true;
    this.release();
  }

  /** An iterator over the messages from now on. */
  iterator(): AsyncIterator<T> {
    if (this.items === null) this.items = [];
    return {
      next: () => {
        const item = this.items?.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => this.waiters.push(resolve));
      },
      return: () => {
        this.items = null;
        this.release();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  private release(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const resolve of waiters) resolve({ value: undefined, done: true });
  }
}
