import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createClient } from '@redis/client';
import { BackplaneError, WebSocketServer } from 'switchyard';
import { RedisBackplane } from '../src/index.js';
import { closeClient, collector, serveTopics } from '../../switchyard/test/helpers/pubsub.js';
import {
  redisServer,
  skipUnlessAvailable,
  startRedis,
  startRedisCluster,
  until,
} from './helpers/redis.js';

const WORKER = fileURLToPath(new URL('./fixtures/redis-worker.ts', import.meta.url));
type After = { after(fn: () => unknown): void };
/** The test messages a collector got, without the probes that made sure the path was up. */
const data = (c: { messages: string[] }) => c.messages.filter((m) => !m.startsWith('probe'));

/** Forks a server process on Redis `redisUrl`; resolves with its ws:// URL. */
async function startWorker(t: After, redisUrl: string): Promise<string> {
  const child: ChildProcess = fork(WORKER, [redisUrl], {
    execArgv: ['--conditions=switchyard-source', '--import', 'tsx'],
    stdio: 'inherit',
  });
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('worker not ready in 45 s')), 45_000);
    child.on('message', (m: { ready?: number }) => {
      if (m.ready !== undefined) {
        clearTimeout(timer);
        resolve(m.ready);
      }
    });
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
  });
  return `ws://127.0.0.1:${port}`;
}

/** A server in this process with a Redis backplane; closed by `t.after`. */
async function startInstance(
  t: After,
  backplane: RedisBackplane,
  options: ConstructorParameters<typeof WebSocketServer>[0] = {},
) {
  const server = new WebSocketServer({
    logger: { warn: () => {}, error: () => {} },
    ...options,
    pubsub: { ...options.pubsub, backplane },
  });
  serveTopics(server);
  const { port } = await server.listen(0, '127.0.0.1');
  t.after(() => server.close({ timeout: 500 }));
  return { server, url: `ws://127.0.0.1:${port}` };
}

test('a publish on one server process reaches subscribers on two others, in order, without echo', async (t) => {
  if (!skipUnlessAvailable(t, await redisServer())) return;
  const redis = await startRedis();
  t.after(() => redis.stop());
  // The publishing server runs in this process, the two others in processes of their own.
  const [two, three] = await Promise.all([1, 2].map(() => startWorker(t, redis.url)));
  const backplane = new RedisBackplane({ url: redis.url });
  const one = (await startInstance(t, backplane)).url;
  await backplane.ready();
  const publisher = await collector(one, ['room']);
  const neighbour = await collector(one, ['room']);
  const onTwo = await collector(two, ['room']);
  const onThree = await collector(three, ['room']);
  const quiet = await collector(three, ['elsewhere']);
  t.after(() =>
    Promise.all([publisher, neighbour, onTwo, onThree, quiet].map((c) => closeClient(c.ws))),
  );
  // Only topics with local subscribers are subscribed in Redis.
  const probe = createClient({ url: redis.url });
  probe.on('error', () => {}); // Redis stops before this client in t.after
  await probe.connect();
  t.after(() => probe.destroy());
  await until(
    async () => (await probe.PUBSUB_NUMSUB('switchyard:room'))['switchyard:room'] === 3,
    'three instances subscribed to the room in Redis',
  );
  assert.equal((await probe.PUBSUB_NUMSUB('switchyard:elsewhere'))['switchyard:elsewhere'], 1);
  assert.deepEqual((await probe.PUBSUB_CHANNELS()).sort(), [
    'switchyard:elsewhere',
    'switchyard:room',
  ]);

  const count = 200;
  for (let i = 0; i < count; i++) {
    publisher.ws.send(JSON.stringify({ publish: 'room', data: `m${i}` }));
  }
  const expected = Array.from({ length: count }, (_, i) => `m${i}`);
  for (const c of [neighbour, onTwo, onThree]) assert.deepEqual(await c.waitFor(count), expected);
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (const c of [neighbour, onTwo, onThree]) {
    assert.equal(c.messages.length, count, 'each message exactly once');
  }
  assert.deepEqual(publisher.messages, [], 'the sender is skipped');
  assert.deepEqual(quiet.messages, [], 'other topics get nothing');
});

test('Redis killed and restarted: local subscribers are served throughout, then relaying resumes', async (t) => {
  if (!skipUnlessAvailable(t, await redisServer())) return;
  let redis = await startRedis();
  const port = redis.port;
  t.after(() => redis.stop());
  const reported: BackplaneError[] = [];
  const { default: dc } = await import('node:diagnostics_channel');
  const onError = (m: unknown) => reported.push((m as { error: BackplaneError }).error);
  dc.subscribe('switchyard:backplane-error', onError);
  t.after(() => dc.unsubscribe('switchyard:backplane-error', onError));

  const backplaneA = new RedisBackplane({ url: redis.url, maxReconnectDelay: 100 });
  const backplaneB = new RedisBackplane({ url: redis.url, maxReconnectDelay: 100 });
  const a = await startInstance(t, backplaneA);
  const b = await startInstance(t, backplaneB);
  await Promise.all([backplaneA.ready(), backplaneB.ready()]);
  const onA = await collector(a.url, ['news']);
  const onB = await collector(b.url, ['news']);
  t.after(() => Promise.all([onA, onB].map((c) => closeClient(c.ws))));
  await until(() => b.server.subscriberCount('news') === 1, 'subscriber on b');

  // Relayed while Redis is up (probe until b's SUBSCRIBE has landed).
  await until(async () => {
    a.server.publish('news', 'probe');
    await new Promise((resolve) => setTimeout(resolve, 20));
    return onB.messages.includes('probe');
  }, 'the first relay');
  const before = onA.messages.length;

  await redis.stop();
  await until(() => !backplaneA.connected && !backplaneB.connected, 'both to notice');
  for (let i = 0; i < 5; i++) a.server.publish('news', `down${i}`);
  await onA.waitFor(before + 5);
  assert.deepEqual(onA.messages.slice(before), ['down0', 'down1', 'down2', 'down3', 'down4']);
  assert.ok(
    !onB.messages.some((m) => m.startsWith('down')),
    'nothing crossed while Redis was down',
  );
  assert.ok(
    reported.some((e) => e.stage === 'connect'),
    'the outage is reported',
  );

  redis = await startRedis({ port });
  await Promise.all([backplaneA.ready(), backplaneB.ready()]);
  await until(
    async () => {
      a.server.publish('news', 'back');
      await new Promise((resolve) => setTimeout(resolve, 20));
      return onB.messages.includes('back');
    },
    'relaying to resume after Redis restarted',
    8000,
  );
  const lost = reported.find((e) => e.stage === 'publish' && e.unrelayed > 0);
  assert.ok(lost, 'what could not be relayed is reported');
  assert.equal(lost.unrelayed, backplaneA.stats.unrelayed);
  assert.ok(backplaneA.stats.unrelayed >= 5);
  assert.equal(backplaneA.stats.outages, 1);
  for (let i = 0; i < 20; i++) a.server.publish('news', `after${i}`);
  await until(() => onB.messages.filter((m) => m.startsWith('after')).length === 20, 'after');
  assert.deepEqual(
    onB.messages.filter((m) => m.startsWith('after')),
    Array.from({ length: 20 }, (_, i) => `after${i}`),
  );
});

test('through Redis: a slow subscriber is dropped while the rest keep up', async (t) => {
  if (!skipUnlessAvailable(t, await redisServer())) return;
  const redis = await startRedis();
  t.after(() => redis.stop());
  const backplaneA = new RedisBackplane({ url: redis.url });
  const backplaneB = new RedisBackplane({ url: redis.url });
  const a = await startInstance(t, backplaneA);
  const limit = 128 * 1024;
  const b = await startInstance(t, backplaneB, {
    pubsub: { slowConsumer: { limit, policy: 'drop' } },
  });
  await Promise.all([backplaneA.ready(), backplaneB.ready()]);
  const fast = await collector(b.url, ['feed']);
  const slow = await collector(b.url, ['feed']);
  t.after(() => [fast, slow].forEach((c) => c.ws.terminate()));
  await until(() => b.server.subscriberCount('feed') === 2, 'two subscribers on b');
  await until(async () => {
    a.server.publish('feed', 'probe');
    await new Promise((resolve) => setTimeout(resolve, 20));
    return fast.messages.includes('probe');
  }, 'the subscription in Redis');
  slow.ws.pause();
  const body = 'y'.repeat(64 * 1024);
  const count = 200;
  for (let i = 0; i < count; i++) {
    a.server.publish('feed', `${String(i).padStart(6, '0')}${body}`);
    // Paced on the fast subscriber only (probes that arrive late merely loosen the pace).
    await fast.waitFor(fast.messages.length - data(fast).length + i + 1);
  }
  const got = data(fast);
  assert.ok(
    got.every((m, i) => m.startsWith(String(i).padStart(6, '0'))),
    'fast got all, in order',
  );
  assert.ok(b.server.pubsub.stats.dropped > 0, 'the slow one was dropped for');
  for (const ws of b.server.clients) assert.ok(ws.bufferedAmount <= limit + body.length + 64);
});

test('Redis Cluster: sharded pub/sub relays between instances, in order, without echo', async (t) => {
  if (!skipUnlessAvailable(t, await redisServer())) return;
  const cluster = await startRedisCluster();
  t.after(() => cluster.stop());
  const backplaneA = new RedisBackplane({ cluster: [cluster.urls[0]] });
  const backplaneB = new RedisBackplane({ cluster: [cluster.urls[1]] });
  const a = await startInstance(t, backplaneA);
  const b = await startInstance(t, backplaneB);
  await Promise.all([backplaneA.ready(), backplaneB.ready()]);
  // Several topics, so that their channels hash to different shards.
  const topics = ['t0', 't1', 't2', 't3', 't4', 't5'];
  const onA = await collector(a.url, topics);
  const onB = await collector(b.url, topics);
  t.after(() => Promise.all([onA, onB].map((c) => closeClient(c.ws))));
  await until(() => b.server.subscriberCount('t5') === 1, 'subscriptions on b');
  await until(
    async () => {
      a.server.publish('t0', 'probe');
      await new Promise((resolve) => setTimeout(resolve, 20));
      return topics.every((topic) => {
        a.server.publish(topic, `probe:${topic}`);
        return onB.messages.includes(`probe:${topic}`);
      });
    },
    'sharded subscriptions on every topic',
    8000,
  );
  for (let i = 0; i < 60; i++) a.server.publish(topics[i % topics.length], `m${i}`);
  const expected = Array.from({ length: 60 }, (_, i) => `m${i}`);
  await until(() => data(onB).length === 60, 'sixty messages on b');
  for (const topic of topics) {
    const mine = expected.filter((_, i) => topics[i % topics.length] === topic);
    assert.deepEqual(
      data(onB).filter((m) => mine.includes(m)),
      mine,
      `order kept on ${topic}`,
    );
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(data(onB).length, 60, 'each once');
  assert.deepEqual(data(onA), expected, 'local subscribers once, no echo');
  assert.ok(backplaneA.stats.ownSkipped >= 60, 'its own messages came back and were skipped');
});
