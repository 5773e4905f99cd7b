import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  OutboundQueue,
  ReconnectPolicy,
  isRetryableByDefault,
  parseRetryAfter,
  RECONNECT_DEFAULTS,
  type DisconnectCause,
} from '../../src/core/reconnect.js';

const close = (code: number): DisconnectCause => ({ kind: 'close', code, reason: '' });
const status = (s: number, retryAfterMs: number | null = null): DisconnectCause => ({
  kind: 'handshake',
  status: s,
  retryAfterMs,
});
const network: DisconnectCause = { kind: 'network', error: new Error('ECONNREFUSED') };

test('network errors and 1001, 1006, 1011, 1012, 1013, 1014 reconnect by default', () => {
  assert.equal(isRetryableByDefault(network), true);
  for (const code of [1001, 1006, 1011, 1012, 1013, 1014]) {
    assert.equal(isRetryableByDefault(close(code)), true, String(code));
  }
});

test('1000, 1008, 1002 and 4xxx application codes do not reconnect by default', () => {
  for (const code of [1000, 1002, 1003, 1007, 1008, 1009, 1010, 4000, 4401, 4999]) {
    assert.equal(isRetryableByDefault(close(code)), false, String(code));
  }
});

test('handshake answers 401, 403, 404 stop; 408, 429, 500, 502, 503, 504 retry', () => {
  for (const s of [400, 401, 403, 404, 426, 101])
    assert.equal(isRetryableByDefault(status(s)), false);
  for (const s of [408, 425, 429, 500, 502, 503, 504])
    assert.equal(isRetryableByDefault(status(s)), true);
});

test('the backoff cap grows by factor up to maxDelay and the delay is drawn with full jitter', () => {
  const draws = [0.999, 0.999, 0.999, 0.999, 0.999, 0.5, 0];
  const policy = new ReconnectPolicy({
    minDelay: 100,
    maxDelay: 1000,
    factor: 2,
    random: () => draws.shift() ?? 0,
  });
  const delays = [];
  for (let i = 0; i < 7; i++) {
    const d = policy.next(network);
    assert.equal(d.action, 'retry');
    if (d.action === 'retry') {
      assert.equal(d.attempt, i + 1);
      delays.push(d.delay);
    }
  }
  // caps 100, 200, 400, 800, 1000, 1000, 1000; jitter 0.999 ~ the cap, 0.5 half, 0 none.
  assert.deepEqual(delays, [99, 199, 399, 799, 999, 500, 0]);
});

test('full jitter spreads a crowd over the whole window', () => {
  let seed = 42;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const buckets = new Array<number>(10).fill(0);
  for (let i = 0; i < 1000; i++) {
    const d = new ReconnectPolicy({ minDelay: 1000, random }).next(network);
    assert.equal(d.action, 'retry');
    if (d.action === 'retry') buckets[Math.floor(d.delay / 100)]++;
  }
  for (const count of buckets) assert.ok(count > 50 && count < 150, `bucket ${count}`);
});

test('an open resets the backoff', () => {
  const policy = new ReconnectPolicy({ minDelay: 100, random: () => 0.999 });
  policy.next(network);
  policy.next(network);
  policy.opened();
  const d = policy.next(network);
  assert.deepEqual(d, { action: 'retry', attempt: 1, delay: 99 });
});

test('maxRetries stops with max-retries; a non-retryable cause stops with not-retryable', () => {
  const policy = new ReconnectPolicy({ maxRetries: 2, random: () => 0 });
  assert.equal(policy.next(network).action, 'retry');
  assert.equal(policy.next(network).action, 'retry');
  assert.deepEqual(policy.next(network), { action: 'stop', reason: 'max-retries' });
  assert.deepEqual(new ReconnectPolicy().next(close(1000)), {
    action: 'stop',
    reason: 'not-retryable',
  });
});

test('shouldReconnect overrides the default rule and sees the attempt number', () => {
  const seen: number[] = [];
  const policy = new ReconnectPolicy({
    random: () => 0,
    shouldReconnect: (cause, attempt) => {
      seen.push(attempt);
      return cause.kind === 'close' && cause.code === 4001;
    },
  });
  assert.equal(policy.next(close(4001)).action, 'retry');
  assert.equal(policy.next(close(1006)).action, 'stop');
  assert.deepEqual(seen, [1, 2]);
});

test('Retry-After is a floor on the delay', () => {
  const policy = new ReconnectPolicy({ minDelay: 100, random: () => 0.5 });
  assert.deepEqual(policy.next(status(503, 2000)), { action: 'retry', attempt: 1, delay: 2000 });
  const long = new ReconnectPolicy({ minDelay: 10_000, random: () => 0.5 });
  assert.deepEqual(long.next(status(503, 2000)), { action: 'retry', attempt: 1, delay: 5000 });
});

test('parseRetryAfter reads delay-seconds and HTTP-dates (RFC 9110 §10.2.3)', () => {
  const now = Date.parse('Tue, 01 Dec 2026 12:00:00 GMT');
  assert.equal(parseRetryAfter('2', now), 2000);
  assert.equal(parseRetryAfter(' 120 ', now), 120_000);
  assert.equal(parseRetryAfter('Tue, 01 Dec 2026 12:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Tue, 01 Dec 2026 11:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter(undefined, now), null);
  assert.equal(parseRetryAfter('soon', now), null);
  assert.equal(parseRetryAfter('-1', now), null);
});

test('options are checked', () => {
  assert.throws(() => new ReconnectPolicy({ minDelay: -1 }), RangeError);
  assert.throws(() => new ReconnectPolicy({ factor: 0.5 }), RangeError);
  assert.throws(() => new ReconnectPolicy({ minDelay: 10, maxDelay: 5 }), RangeError);
  assert.throws(() => new ReconnectPolicy({ maxRetries: Number.NaN }), RangeError);
});

test('the outbound queue is bounded by messages and bytes and drains in order', () => {
  const queue = new OutboundQueue<string>(3, 10);
  assert.equal(queue.push('a', 4), null);
  assert.equal(queue.push('b', 4), null);
  assert.equal(queue.push('c', 4), 'bytes');
  assert.equal(queue.push('c', 2), null);
  assert.equal(queue.push('d', 0), 'messages');
  assert.equal(queue.bytes, 10);
  assert.equal(queue.length, 3);
  assert.deepEqual(
    queue.drain().map((m) => m.data),
    ['a', 'b', 'c'],
  );
  assert.equal(queue.bytes, 0);
  assert.equal(new OutboundQueue().maxBytes, RECONNECT_DEFAULTS.maxQueuedBytes);
});
