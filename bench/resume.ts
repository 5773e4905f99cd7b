/**
 * The cost of resumable topics against plain topics: deliveries per second, and memory per
 * topic replay window.
 *
 * Deliveries: one server and `--subscribers` clients in this process, all subscribed to one
 * topic; `server.publish` sends `--messages` messages of `--size` bytes, and the figure is
 * deliveries (messages received by all clients together) per second, from the first publish to
 * the last delivery. The publisher never runs more than 200 messages ahead of the slowest count,
 * so nothing is dropped as a slow consumer. A warm-up round of each variant comes first,
 * uncounted; then the variants take turns for `--runs` rounds and the median is reported. Variants:
 * - `plain`: no replay window, plain `connect` clients;
 * - `replay-window`: `pubsub.replay` on, but plain clients (they do not speak the resume
 *   exchange, so messages come without positions): the server's cost of keeping the window;
 * - `replay`: `pubsub.replay` (in-process window per topic), `ReconnectingWebSocket` clients
 *   with `resume: true` (every message carries its position);
 * - `replay-redis`: the same with `@switchyard/redis`, the window in a Redis Stream (XADD per
 *   publish, delivered when Redis hands it back), on a redis-server started here on a free
 *   port of 127.0.0.1 and stopped at the end. Skipped without redis-server.
 *
 * Memory: `--topics` topics each given a full window of `--window` messages of 100 bytes;
 * heap + array buffers after a forced GC (needs `--expose-gc`), less the same before, per
 * message kept and per topic; with Redis, `used_memory` of the redis-server (INFO) for
 * `--redis-topics` topics.
 *
 * Clients and server share one process (and, on a busy machine, the CPU with others): the
 * figures compare the variants with each other; they are not a server's capacity.
 *
 * Usage: node --conditions=switchyard-source --expose-gc --import tsx bench/resume.ts
 *        [--subscribers 100] [--messages 2000] [--size 64] [--topics 1000] [--window 1000]
 *        [--redis-topics 100] [--runs 3] [--quick] [--json]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { connect, ReconnectingWebSocket, WebSocketServer, type PubSubOptions } from 'switchyard';
import { RedisBackplane } from '@switchyard/redis';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const json = argv.includes('--json');
const option = (name: string, normal: number, short: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : quick ? short : normal;
};
const subscribers = option('subscribers', 100, 100);
const messages = option('messages', 2000, 500);
const size = option('size', 64, 64);
const topics = option('topics', 1000, 200);
const windowSize = option('window', 1000, 1000);
const redisTopics = option('redis-topics', 100, 20);
const runs = option('runs', 3, 1);
const log = (s: string) => process.stderr.write(`${s}\n`);

const REDIS_SERVER = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find(existsSync);
const REDIS_CLI = ['/usr/bin/redis-cli', '/usr/local/bin/redis-cli'].find(existsSync);

type Variant = 'plain' | 'replay-window' | 'replay' | 'replay-redis';

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  return port;
}

/** A redis-server of its own on 127.0.0.1, without persistence. */
async function startRedis(): Promise<{ url: string; port: number; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(
    REDIS_SERVER!,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    if (redisCli(port, 'PING') === 'PONG') return { url: `redis://127.0.0.1:${port}`, port, child };
    await sleep(50);
  }
  child.kill();
  throw new Error('redis-server did not answer PING within 5 s');
}

function redisCli(port: number, ...command: string[]): string {
  const r = spawnSync(REDIS_CLI!, ['-h', '127.0.0.1', '-p', String(port), ...command], {
    encoding: 'utf8',
    timeout: 5000,
  });
  return (r.stdout ?? '').trim();
}

function usedMemory(port: number): number {
  const info = redisCli(port, 'INFO', 'memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1]);
}

async function until(predicate: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function pubsubOptions(variant: Variant, redisUrl: string | null): PubSubOptions {
  if (variant === 'plain') return {};
  const replay = { maxMessages: Math.max(windowSize, messages + 1) };
  if (variant === 'replay' || variant === 'replay-window') return { replay };
  return { replay, backplane: new RedisBackplane({ url: redisUrl! }) };
}

/** One measurement of deliveries per second. */
async function deliveries(
  variant: Variant,
  redisUrl: string | null,
  messages: number,
): Promise<number> {
  const server = new WebSocketServer({
    logger: false,
    heartbeat: false,
    pubsub: pubsubOptions(variant, redisUrl),
  });
  server.on('connection', (ws) => ws.subscribe('bench'));
  const { port } = await server.listen(0, '127.0.0.1');
  const url = `ws://127.0.0.1:${port}`;
  let received = 0;
  const closers: Array<() => void> = [];
  try {
    for (let i = 0; i < subscribers; i += 50) {
      const batch: Array<Promise<unknown>> = [];
      for (let j = i; j < Math.min(subscribers, i + 50); j++) {
        if (variant === 'plain' || variant === 'replay-window') {
          batch.push(
            connect(url).then((ws) => {
              ws.on('message', () => received++);
              closers.push(() => ws.terminate());
            }),
          );
        } else {
          const ws = new ReconnectingWebSocket(url, { logger: false, resume: true });
          ws.on('message', () => received++);
          closers.push(() => ws.close());
          batch.push(once(ws, 'open'));
        }
      }
      await Promise.all(batch);
    }
    // A first message reaches everyone: subscriptions (with Redis, the SUBSCRIBE) are in place.
    server.publish('bench', 'warm-up');
    await until(() => received >= subscribers, 10_000, 'the warm-up message');
    received = 0;
    const payload = 'x'.repeat(size);
    const total = messages * subscribers;
    const started = performance.now();
    let published = 0;
    while (published < messages) {
      for (let k = 0; k < 20 && published < messages; k++, published++) {
        server.publish('bench', payload);
      }
      while ((published - 200) * subscribers > received) await tick();
      await tick();
    }
    await until(() => received >= total, 60_000, `${total} deliveries`);
    return total / ((performance.now() - started) / 1000);
  } finally {
    for (const close of closers) close();
    await server.close({ timeout: 1000 });
  }
}

function heapAndBuffers(): number {
  (globalThis as { gc?: () => void }).gc!();
  (globalThis as { gc?: () => void }).gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Bytes kept by `count` full topic windows (in this process), 100-byte messages. */
async function windowMemory(replay: boolean, count: number): Promise<number> {
  const server = new WebSocketServer({
    logger: false,
    pubsub: replay ? { replay: { maxMessages: windowSize, maxBytes: windowSize * 200 } } : {},
  });
  const before = heapAndBuffers();
  for (let t = 0; t < count; t++) {
    for (let m = 0; m < windowSize; m++) {
      server.publish(`topic-${t}`, `${t}:${m}:`.padEnd(100, 'x'));
    }
  }
  const after = heapAndBuffers();
  await server.close();
  return after - before;
}

/** Bytes Redis uses for `count` full topic windows. */
async function redisWindowMemory(redisUrl: string, port: number, count: number): Promise<number> {
  redisCli(port, 'FLUSHALL');
  const before = usedMemory(port);
  const backplane = new RedisBackplane({ url: redisUrl });
  const server = new WebSocketServer({
    logger: false,
    pubsub: { backplane, replay: { maxMessages: windowSize, maxBytes: windowSize * 200 } },
  });
  await server.listen(0, '127.0.0.1');
  try {
    for (let t = 0; t < count; t++) {
      for (let m = 0; m < windowSize; m++) {
        server.publish(`topic-${t}`, `${t}:${m}:`.padEnd(100, 'x'));
      }
      await until(() => backplane.stats.appended >= (t + 1) * windowSize, 60_000, 'the appends');
    }
    return usedMemory(port) - before;
  } finally {
    await server.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function main(): Promise<void> {
  if (typeof (globalThis as { gc?: unknown }).gc !== 'function') {
    throw new Error('run with --expose-gc (see the usage at the top of bench/resume.ts)');
  }
  const redis = REDIS_SERVER && REDIS_CLI ? await startRedis() : null;
  if (redis === null) log('replay-redis: skipped, redis-server (or redis-cli) is not installed');
  try {
    const variants: Variant[] = ['plain', 'replay-window', 'replay'];
    if (redis) variants.push('replay-redis');
    const rates: Record<string, number[]> = {};
    // A warm-up round, not counted: the first variant would otherwise pay for the JIT.
    for (const v of variants) await deliveries(v, redis?.url ?? null, Math.ceil(messages / 4));
    for (let r = 0; r < runs; r++) {
      for (const v of variants) {
        const rate = await deliveries(v, redis?.url ?? null, messages);
        (rates[v] ??= []).push(rate);
        log(`  ${v}: ${Math.round(rate).toLocaleString('en')} deliveries/s (run ${r + 1})`);
      }
    }
    const plainMemory = await windowMemory(false, topics);
    const replayMemory = await windowMemory(true, topics);
    const kept = topics * windowSize;
    const memory: Record<string, unknown> = {
      topics,
      window: windowSize,
      messageBytes: 100,
      plainBytes: plainMemory,
      replayBytes: replayMemory,
      bytesPerMessage: (replayMemory - plainMemory) / kept,
      bytesPerTopic: (replayMemory - plainMemory) / topics,
    };
    if (redis) {
      const used = await redisWindowMemory(redis.url, redis.port, redisTopics);
      memory.redis = {
        topics: redisTopics,
        bytes: used,
        bytesPerMessage: used / (redisTopics * windowSize),
        bytesPerTopic: used / redisTopics,
      };
    }
    const result = {
      subscribers,
      messages,
      size,
      runs,
      deliveriesPerSecond: Object.fromEntries(variants.map((v) => [v, median(rates[v])])),
      memory,
    };
    if (json) {
      console.log(JSON.stringify(result));
      return;
    }
    const plain = result.deliveriesPerSecond.plain;
    console.log(
      `\nDeliveries per second, 1 topic, ${subscribers} subscribers, ${messages} × ${size} B, median of ${runs}:`,
    );
    for (const v of variants) {
      const rate = result.deliveriesPerSecond[v];
      console.log(
        `  ${v.padEnd(13)} ${Math.round(rate).toLocaleString('en').padStart(10)}  ${(rate / plain).toFixed(2)}× plain`,
      );
    }
    console.log(`\nMemory of full replay windows, ${windowSize} × 100 B messages per topic:`);
    console.log(
      `  in-process, ${topics} topics: ${(replayMemory / 2 ** 20).toFixed(1)} MiB (plain topics: ${(plainMemory / 2 ** 20).toFixed(1)} MiB), ` +
        `${Math.round(memory.bytesPerMessage as number)} B per message kept, ${Math.round((memory.bytesPerTopic as number) / 1024)} KiB per topic`,
    );
    if (memory.redis) {
      const m = memory.redis as { bytes: number; bytesPerMessage: number; bytesPerTopic: number };
      console.log(
        `  Redis Streams, ${redisTopics} topics: ${(m.bytes / 2 ** 20).toFixed(1)} MiB of used_memory, ` +
          `${Math.round(m.bytesPerMessage)} B per message kept, ${Math.round(m.bytesPerTopic / 1024)} KiB per topic`,
      );
    }
  } finally {
    if (redis) {
      redis.child.kill('SIGTERM');
      await once(redis.child, 'exit');
    }
  }
}

await main();
