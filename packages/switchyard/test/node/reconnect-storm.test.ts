/**
 * Reconnect storms: a server restart drops every client at the same instant. With full jitter
 * the clients come back spread over the backoff window; without it they all come back at once.
 *
 * The assertions are about behaviour, not speed: the delays the policy chose must cover the
 * window evenly (they depend only on the random draws), and the arrivals the restarted server
 * sees must not pile up in one bucket (a loose bound that a loaded machine still meets). The
 * second test shows that the same loose bound catches a policy without jitter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ReconnectingWebSocket,
  type ReconnectingWebSocketOptions,
} from '../../src/node/reconnecting.js';
import { WebSocketServer } from '../../src/node/server.js';
import { startServer } from '../helpers/server.js';

/** Backoff window: every client's first retry is drawn in [0, WINDOW). */
const WINDOW = 2000;
const BUCKETS = 10;
const BUCKET_MS = WINDOW / BUCKETS;
/** Share of arrivals above which one bucket counts as a storm. */
const STORM_SHARE = 0.3;

interface StormResult {
  /** The delay each client's first `reconnecting` event announced. */
  delays: number[];
  /**
   * When each reconnection reached the restarted server, in ms after the first client saw its
   * socket end (the backoff window starts there: the 1001 close handshakes of a thousand
   * sockets take a while to complete on a busy machine, and the clients learn of the drop
   * about together when they do).
   */
  arrivals: number[];
  /** Spread of the moments the clients saw their socket end, in ms (first to last). */
  dropSpread: number;
}

/**
 * Arrivals are bucketed over twice the window: on a loaded machine (clients and server share
 * this process) the event loop runs late, and a late clump should not all land in one bucket.
 */
const ARRIVAL_BUCKETS = 2 * BUCKETS;

/** Counts per bucket of BUCKET_MS; the last entry counts what came after `buckets` of them. */
function histogram(values: number[], buckets: number): number[] {
  const counts = new Array<number>(buckets + 1).fill(0);
  for (const v of values) counts[Math.min(buckets, Math.max(0, Math.floor(v / BUCKET_MS)))]++;
  return counts;
}

function show(label: string, counts: number[]): string {
  const total = counts.reduce((a, b) => a + b, 0);
  const last = counts.length - 1;
  const lines = counts.map((n, i) => {
    const range =
      i < last ? `${i * BUCKET_MS}-${(i + 1) * BUCKET_MS} ms` : `>= ${last * BUCKET_MS} ms`;
    return `  ${range.padEnd(14)} ${String(n).padStart(5)} ${'#'.repeat(Math.round((n / total) * 50))}`;
  });
  return `${label} (${total})\n${lines.join('\n')}`;
}

/** Resolves when `predicate` holds, polling; rejects after `ms`. */
async function until(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Connects `count` clients to a server, closes it (1001) and restarts it on the same port at
 * once; returns the delays the clients chose and when they reached the new server.
 */
async function storm(
  count: number,
  reconnect: ReconnectingWebSocketOptions['reconnect'],
): Promise<StormResult> {
  const first = await startServer();
  const clients: ReconnectingWebSocket[] = [];
  const delays: number[] = [];
  const arrivals: number[] = [];
  const dropped: number[] = [];
  let second: WebSocketServer | null = null;
  try {
    let opened = 0;
    // In batches, so that the listen backlog never overflows (a dropped SYN would only add noise).
    for (let i = 0; i < count; i += 100) {
      const target = Math.min(count, i + 100);
      for (let j = i; j < target; j++) {
        const ws = new ReconnectingWebSocket(first.url, { logger: false, reconnect });
        ws.once('open', () => opened++);
        ws.on('reconnecting', ({ attempt, delay }) => {
          if (attempt !== 1) return;
          delays.push(delay);
          dropped.push(performance.now());
        });
        ws.on('error', () => {});
        clients.push(ws);
      }
      await until(() => opened >= target, 20_000, `${target} clients to open`);
    }
    assert.equal(first.server.clients.size, count);

    const seen: number[] = [];
    second = new WebSocketServer({ logger: false });
    second.on('connection', () => seen.push(performance.now()));
    const closing = first.server.close({ timeout: 10_000 });
    await second.listen(first.port, '127.0.0.1');
    await closing;
    await until(() => seen.length >= count, 20_000, `${count} clients to come back`);
    const start = Math.min(...dropped);
    for (const at of seen) arrivals.push(at - start);
    return { delays, arrivals, dropSpread: Math.max(...dropped) - start };
  } finally {
    for (const ws of clients) ws.close();
    await first.close();
    await second?.close({ timeout: 1000 });
  }
}

test(
  '1,000 clients reconnecting to a restarted server spread over the backoff window',
  { timeout: 60_000 },
  async (t) => {
    const count = 1000; // ~2,000 descriptors on one process: the test host allows 20,000 (ulimit -n).
    const { delays, arrivals, dropSpread } = await storm(count, {
      minDelay: WINDOW,
      maxDelay: WINDOW,
    });
    t.diagnostic(`the clients saw the drop within ${Math.round(dropSpread)} ms of each other`);
    const chosen = histogram(delays, BUCKETS);
    const seen = histogram(arrivals, ARRIVAL_BUCKETS);
    t.diagnostic(show('chosen delays', chosen));
    t.diagnostic(show('arrivals at the restarted server', seen));

    // Every client announced one first retry, drawn in the window.
    assert.equal(delays.length, count);
    assert.equal(chosen[BUCKETS], 0, 'no delay at or past the window');
    // Full jitter: each tenth of the window holds about a tenth of the clients (5 standard
    // deviations either side of 100 out of 1,000).
    for (let i = 0; i < BUCKETS; i++) {
      assert.ok(
        chosen[i] >= count * 0.05 && chosen[i] <= count * 0.15,
        show('chosen delays', chosen),
      );
    }
    // The server saw them come back spread out, not as one wave.
    assert.equal(arrivals.length, count);
    assert.ok(Math.max(...seen) <= count * STORM_SHARE, show('arrivals', seen));
  },
);

test(
  'without jitter the same restart is a storm: the check above detects it',
  { timeout: 60_000 },
  async (t) => {
    const count = 200;
    const { delays, arrivals } = await storm(count, {
      minDelay: WINDOW,
      maxDelay: WINDOW,
      random: () => 0.5, // every client waits exactly WINDOW / 2
    });
    const seen = histogram(arrivals, ARRIVAL_BUCKETS);
    t.diagnostic(show('arrivals at the restarted server, no jitter', seen));
    assert.deepEqual(new Set(delays), new Set([WINDOW / 2]));
    assert.equal(arrivals.length, count);
    assert.ok(Math.max(...seen) > count * STORM_SHARE, show('arrivals', seen));
  },
);
