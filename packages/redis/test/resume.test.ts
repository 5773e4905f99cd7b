/**
 * Resumable topics across instances: the replay window in Redis Streams, with a real
 * redis-server. The end-to-end run with `switchyard serve` processes killed mid-stream is in
 * packages/cli/test/resume-failover.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReconnectingWebSocket, WebSocketServer, type GapInfo } from 'switchyard';
import { createClient } from '@redis/client';
import { RedisBackplane } from '../src/index.js';
import { redisServer, skipUnlessAvailable, startRedis, until } from './helpers/redis.js';

type After = { after(fn: () => unknown): void };

async function instance(t: After, redisUrl: string, replay = { maxMessages: 100_000 }) {
  const backplane = new RedisBackplane({ url: redisUrl, maxReconnectDelay: 100 });
  const server = new WebSocketServer({ logger: false, pubsub: { backplane, replay } });
  server.on('connection', (ws) => ws.subscribe('feed'));
  const { port } = await server.listen(0, '127.0.0.1');
  await backplane.ready();
  t.after(() => server.close({ timeout: 100 }));
  return { server, backplane, url: `ws://127.0.0.1:${port}` };
}

function resumer(t: After, url: () => string) {
  const ws = new ReconnectingWebSocket(url, {
    logger: false,
    resume: true,
    reconnect: { minDelay: 10, maxDelay: 50 },
  });
  t.after(() => ws.close());
  const got: number[] = [];
  const positions: number[] = [];
  const gaps: GapInfo[] = [];
  ws.on('message', (data, _binary, meta) => {
    if (meta?.topic !== 'feed') return;
    got.push(Number(data));
    positions.push(meta.position);
  });
  ws.on('gap', (gap) => gaps.push(gap));
  return { ws, got, positions, gaps };
}

test('positions come from Redis and are the same on every instance', async (t) => {
  if (!skipUnlessAvailable(t, await redisServer())) return;
  const redis = await startRedis();
  t.after(() => redis.stop());
  const a = await instance(t, redis.url);
  const b = await instance(t, redis.url);
  const onA = resumer(t, () => a.url);
  const onB = resumer(t, () => b.url);
  await Promise.all([onA, onB].map((c) => new Promise((r) => c.ws.once('open', r))));
  for (let i = 1; i <= 50; i++) (i % 2 ? a : b).server.publish('feed', String(i));
  await until(() => onA.got.length === 50 && onB.got.length === 50, 'both got 50', 10_000);
  assert.deepEqual(onA.positions, onB.positions);
  assert.deepEqual(onA.got, onB.got);
  assert.deepEqual(
    onA.positions,
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
  assert.deepEqual(
    [...onA.got].sort((x, y) => x - y),
    Array.from({ length: 50 }, (_, i) => i + 1),
  );
});

test('a client of an instance that dies resumes on another with every message once, in order', async (t) => {
  if (!skipUnlessAvailable(t, await redisServer())) return;
  const redis = await startRedis();
  t.after(() => redis.stop());
  const a = await instance(t, redis.url);
  const b = await instance(t, redis.url);
  let target = a.url;
  const client = resumer(t, () => target);
  await new Promise((r) => client.ws.once('open', r));
  const total = 3000;
  for (let i = 1; i <= total; i++) {
    b.server.publish('feed', String(i));
    if (i === 1000) {
      // Instance A vanishes: its sockets die without a close frame, its Redis link goes.
      target = b.url;
      for (const ws of a.server.clients) ws.socket.destroy();
      await a.backplane.close();
      await a.server.close({ timeout: 0 });
    }
    if (i % 100 === 0) await new Promise((r) => setTimeout(r, 5));
  }
  await until(() => client.got.length >= total, `all ${total} (have ${client.got.length})`, 20_000);
  assert.deepEqual(client.gaps, []);
  assert.deepEqual(
    client.got,
    Array.from({ length: total }, (_, i) => i + 1),
  );
});

test('a window too small for the gap gives the gap event with the range, from Redis', async (t) => {
  if (!skipUnlessAvailable(t, await redisServer())) return;
  const redis = await startRedis();
  t.after(() => redis.stop());
  const a = await instance(t, redis.url, { maxMessages: 10 });
  for (let i = 1; i <= 30; i++) a.server.publish('feed', String(i));
  // Wait until Redis has them all (they reach no one: there is no subscriber yet). A client
  // cannot really be at position 5 before Redis has position 5; resuming while the appends are
  // still on their way would make this one look ahead of the window (seen once under load).
  await until(() => a.backplane.stats.appended === 30, 'the 30 appends', 10_000);
  const probe = resumer(t, () => a.url);
  (probe.ws.resumePositions as Map<string, number>).set('feed', 5);
  await until(() => probe.got.length === 10, 'the window', 10_000);
  assert.deepEqual(probe.gaps, [{ topic: 'feed', from: 6, to: 20 }]);
  assert.deepEqual(
    probe.got,
    Array.from({ length: 10 }, (_, i) => i + 21),
  );
});

/** Keeps Redis busy in a script for `ms`: meanwhile other clients are answered BUSY. */
const BUSY_SCRIPT = `
local t = redis.call('TIME')
local t0 = t[1] * 1000000 + t[2]
while true do
  local now = redis.call('TIME')
  if now[1] * 1000000 + now[2] - t0 > tonumber(ARGV[1]) * 1000 then return 1 end
end
`;

test('Redis answering BUSY for a while (as it answers LOADING after a restart): appends and window reads wait, nothing is lost or doubled', async (t) => {
  if (!skipUnlessAvailable(t, await redisServer())) return;
  const redis = await startRedis();
  t.after(() => redis.stop());
  const admin = createClient({ url: redis.url });
  const busy = createClient({ url: redis.url });
  // Without an 'error' listener node-redis throws when Redis stops at the end of the test.
  for (const client of [admin, busy]) client.on('error', () => {});
  await Promise.all([admin.connect(), busy.connect()]);
  t.after(() => {
    admin.destroy();
    busy.destroy();
  });
  // Past 50 ms in a script, Redis answers every other client BUSY until the script ends.
  await admin.configSet('busy-reply-threshold', '50');
  const a = await instance(t, redis.url);
  const live = resumer(t, () => a.url);
  await new Promise((r) => live.ws.once('open', r));
  for (let i = 1; i <= 20; i++) a.server.publish('feed', String(i));
  await until(() => live.got.length === 20, 'the first 20', 10_000);

  const script = busy.eval(BUSY_SCRIPT, { arguments: ['1500'] });
  // Until the threshold has passed, commands just wait; from then on they are refused.
  for (let i = 0; ; i++) {
    const answer = await admin.ping().catch((error: Error) => error.message);
    if (answer.startsWith('BUSY')) break;
    assert.ok(i < 200, `Redis never said BUSY (${answer})`);
    await new Promise((r) => setTimeout(r, 10));
  }
  for (let i = 21; i <= 40; i++) a.server.publish('feed', String(i));
  // A client resuming from position 10 meanwhile: its window read is refused at first.
  const late = resumer(t, () => a.url);
  (late.ws.resumePositions as Map<string, number>).set('feed', 10);
  await script;

  await until(() => live.got.length >= 40, `all 40 (have ${live.got.length})`, 20_000);
  await until(() => late.got.length >= 30, `11 to 40 (have ${late.got.length})`, 20_000);
  const expected = (from: number) => Array.from({ length: 41 - from }, (_, i) => i + from);
  assert.deepEqual(live.got, expected(1));
  assert.deepEqual(late.got, expected(11));
  assert.deepEqual([...live.gaps, ...late.gaps], []);
  assert.equal(a.backplane.stats.unrelayed, 0, 'nothing was given up on');
});
