import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { connect } from '../../src/node/client.js';
import { LocalProtocolError } from '../../src/core/errors.js';
import type { WebSocket } from '../../src/node/websocket.js';
import { startServer } from '../helpers/server.js';
import { closeClient, collector, serveTopics, until } from '../helpers/pubsub.js';

test('server.publish reaches every subscriber of the topic and no one else', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  serveTopics(s.server);
  const a = await collector(s.url, ['news']);
  const b = await collector(s.url, ['news', 'sport']);
  const c = await collector(s.url, ['sport']);
  t.after(() => Promise.all([a, b, c].map((x) => closeClient(x.ws))));
  await until(() => s.server.subscriberCount('news') === 2, 'two news subscribers');
  assert.equal(s.server.subscriberCount('sport'), 2);
  assert.equal(s.server.subscriberCount('nothing'), 0);

  assert.equal(s.server.publish('news', 'n1'), 2);
  assert.equal(s.server.publish('sport', 's1'), 2);
  assert.equal(s.server.publish('nothing', 'x'), 0);
  s.server.publish('news', Buffer.from('n2'), { binary: false });
  await a.waitFor(2);
  await b.waitFor(3);
  await c.waitFor(1);
  assert.deepEqual(a.messages, ['n1', 'n2']);
  assert.deepEqual(b.messages, ['n1', 's1', 'n2']);
  assert.deepEqual(c.messages, ['s1']);
  assert.deepEqual([...s.server.pubsub.topics()].sort(), ['news', 'sport']);
});

test('subscribers with the same queue share one joined write; a different queue gets its own', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  serveTopics(s.server);
  // Connected in this order, so that the fan-out flushes a, then c (the same queue), then b.
  const a = await collector(s.url, ['t1', 't2']);
  const c = await collector(s.url, ['t1', 't2']);
  const b = await collector(s.url, ['t1', 't3']);
  t.after(() => Promise.all([a, b, c].map((x) => closeClient(x.ws))));
  await until(() => s.server.subscriberCount('t1') === 3, 'three subscribers');
  // What each server-side connection writes to its socket from here on.
  const written = new Map<string, unknown[]>();
  for (const ws of s.server.clients) {
    const socket = (ws as unknown as { socket: { write: (...args: unknown[]) => boolean } }).socket;
    const topics = new URL(ws.url).searchParams.get('topics') ?? '';
    const key = topics === 't1,t2' && written.has('t1,t2') ? 't1,t2 (second)' : topics;
    const chunks: unknown[] = [];
    written.set(key, chunks);
    const write = socket.write.bind(socket);
    socket.write = (...args: unknown[]) => {
      chunks.push(args[0]);
      return write(...args);
    };
  }
  // One tick: a and c get [m1, m2] queued, b [m1, m3]: same length, different second chunk.
  s.server.publish('t1', 'm1');
  s.server.publish('t2', 'm2');
  s.server.publish('t3', 'm3');
  await Promise.all([a.waitFor(2), b.waitFor(2), c.waitFor(2)]);
  assert.deepEqual(a.messages, ['m1', 'm2']);
  assert.deepEqual(c.messages, ['m1', 'm2']);
  assert.deepEqual(b.messages, ['m1', 'm3']);
  const [first, second, other] = [
    written.get('t1,t2'),
    written.get('t1,t2 (second)'),
    written.get('t1,t3'),
  ];
  assert.ok(first !== undefined && second !== undefined && other !== undefined);
  assert.equal(first.length, 1, 'one write for the two messages');
  assert.equal(second.length, 1);
  assert.equal(other.length, 1);
  assert.equal(second[0], first[0], 'the same queue writes the same joined Buffer');
  assert.notEqual(other[0], first[0]);
});

test('binary stays binary and text stays text', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  serveTopics(s.server);
  const ws = await connect(`${s.url}/?topics=t`);
  t.after(() => closeClient(ws));
  await until(() => s.server.subscriberCount('t') === 1, 'the subscriber');
  const got: Array<[string | Buffer, boolean]> = [];
  ws.on('message', (data, isBinary) => got.push([data, isBinary]));
  s.server.publish('t', Uint8Array.of(1, 2, 3));
  s.server.publish('t', 'é'.repeat(1000));
  s.server.publish('t', 'bytes', { binary: true });
  await until(() => got.length === 3, 'three messages');
  assert.deepEqual(got[0], [Buffer.from([1, 2, 3]), true]);
  assert.deepEqual(got[1], ['é'.repeat(1000), false]);
  assert.deepEqual(got[2], [Buffer.from('bytes'), true]);
  assert.throws(
    () => s.server.publish('t', Uint8Array.of(0xff), { binary: false }),
    (e: unknown) => e instanceof LocalProtocolError && e.code === 'SWITCHYARD_ERR_INVALID_ARGUMENT',
  );
});

test('ws.publish reaches the other subscribers but not the sender', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  serveTopics(s.server);
  const sender = await collector(s.url, ['room']);
  const other = await collector(s.url, ['room']);
  t.after(() => Promise.all([sender, other].map((x) => closeClient(x.ws))));
  await until(() => s.server.subscriberCount('room') === 2, 'two subscribers');
  for (let i = 0; i < 20; i++) sender.ws.send(JSON.stringify({ publish: 'room', data: `m${i}` }));
  const got = await other.waitFor(20);
  assert.deepEqual(
    got,
    Array.from({ length: 20 }, (_, i) => `m${i}`),
    'in order',
  );
  s.server.publish('room', 'end');
  await sender.waitFor(1);
  assert.deepEqual(sender.messages, ['end'], 'the sender got none of its own');
});

test('a message is framed once and the same chunks go to every subscriber', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  serveTopics(s.server);
  const clients = await Promise.all([1, 2, 3].map(() => collector(s.url, ['big'])));
  t.after(() => Promise.all(clients.map((x) => closeClient(x.ws))));
  await until(() => s.server.subscriberCount('big') === 3, 'three subscribers');
  const seen: Array<readonly Uint8Array[]> = [];
  for (const ws of s.server.clients) {
    const original = ws.sendFramed.bind(ws);
    ws.sendFramed = (chunks) => {
      seen.push(chunks);
      original(chunks);
    };
  }
  const payload = Buffer.alloc(64 * 1024, 'a');
  s.server.publish('big', payload, { binary: false });
  await Promise.all(clients.map((c) => c.waitFor(1)));
  assert.equal(seen.length, 3);
  assert.ok(
    seen.every((chunks) => chunks === seen[0]),
    'one framing shared by all',
  );
  assert.equal(seen[0][1], payload, 'the payload itself is not copied');
  for (const c of clients) assert.equal(c.messages[0].length, 64 * 1024);
});

test('subscribe, unsubscribe and topics; subscriptions end when the connection closes', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const accepted = new Promise<WebSocket>((resolve) => s.server.once('connection', resolve));
  const client = await connect(s.url);
  const ws = await accepted;
  assert.equal(ws.subscribe('a'), true);
  assert.equal(ws.subscribe('a'), false, 'already subscribed');
  assert.equal(ws.subscribe('b'), true);
  assert.deepEqual([...ws.topics], ['a', 'b']);
  assert.equal(ws.unsubscribe('a'), true);
  assert.equal(ws.unsubscribe('a'), false);
  assert.equal(s.server.subscriberCount('a'), 0);
  assert.equal(s.server.subscriberCount('b'), 1);
  await closeClient(client);
  await until(() => s.server.subscriberCount('b') === 0, 'the subscription to end');
  assert.deepEqual([...ws.topics], []);
  assert.deepEqual([...s.server.pubsub.topics()], []);
  assert.equal(ws.subscribe('c'), false, 'a closed connection cannot subscribe');
  assert.equal(s.server.subscriberCount('c'), 0);
});

test('topics belong to server connections: a client cannot subscribe or publish', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const client = await connect(s.url);
  t.after(() => closeClient(client));
  const isInvalidState = (e: unknown) =>
    e instanceof LocalProtocolError && e.code === 'SWITCHYARD_ERR_INVALID_STATE';
  assert.throws(() => client.subscribe('a'), isInvalidState);
  assert.throws(() => client.publish('a', 'x'), isInvalidState);
  assert.equal(client.unsubscribe('a'), false);
  assert.deepEqual([...client.topics], []);
});

/**
 * A fast and a slow subscriber: the slow one stops reading (its kernel buffers fill, then its
 * bufferedAmount grows); the fast one must get every message, in order, while the slow one is
 * skipped or closed and its backlog stays near the limit.
 */
async function slowConsumerScenario(
  t: { after(fn: () => unknown): void },
  policy: 'drop' | 'close-1008' | 'close-1013',
) {
  const limit = 256 * 1024;
  const s = await startServer({ pubsub: { slowConsumer: { limit, policy } } });
  t.after(() => s.close());
  serveTopics(s.server);
  const fast = await collector(s.url, ['feed']);
  const slow = await collector(s.url, ['feed']);
  t.after(() => Promise.all([fast, slow].map((x) => x.ws.terminate())));
  await until(() => s.server.subscriberCount('feed') === 2, 'two subscribers');
  slow.ws.pause();

  const drops: unknown[] = [];
  const onDrop = (message: unknown) => drops.push(message);
  diagnosticsChannel.subscribe('switchyard:pubsub-drop', onDrop);
  t.after(() => diagnosticsChannel.unsubscribe('switchyard:pubsub-drop', onDrop));

  const count = 400;
  const body = 'x'.repeat(64 * 1024 - 8);
  let maxBacklog = 0;
  for (let i = 0; i < count; i++) {
    s.server.publish('feed', `${String(i).padStart(7, '0')} ${body}`);
    for (const ws of s.server.clients) maxBacklog = Math.max(maxBacklog, ws.bufferedAmount);
    // Pace on the fast reader only: the slow one must not hold the publisher back.
    await fast.waitFor(i + 1, 5000);
  }
  assert.equal(fast.messages.length, count);
  assert.ok(
    fast.messages.every((m, i) => m.startsWith(String(i).padStart(7, '0'))),
    'the fast subscriber got every message in order',
  );
  assert.ok(maxBacklog <= limit + 64 * 1024 + 64, `backlog bounded: ${maxBacklog}`);
  return { s, fast, slow, drops, count };
}

test('slow consumer, policy drop: skipped and counted while the others keep up', async (t) => {
  const { s, slow, drops, count } = await slowConsumerScenario(t, 'drop');
  const stats = s.server.pubsub.stats;
  assert.ok(stats.dropped > 0, 'some messages were dropped for the slow subscriber');
  assert.equal(drops.length, stats.dropped, 'every drop is on the diagnostics channel');
  assert.equal(stats.delivered + stats.dropped, 2 * count);
  assert.equal(stats.closedSlow, 0);
  const first = drops[0] as { topic: string; policy: string; bufferedAmount: number };
  assert.equal(first.topic, 'feed');
  assert.equal(first.policy, 'drop');
  assert.ok(first.bufferedAmount > 256 * 1024);
  // Once it reads again it catches up with what it was not skipped for, still in order.
  slow.ws.resume();
  await slow.waitFor(count - stats.dropped);
  const seq = slow.messages.map((m) => Number(m.slice(0, 7)));
  assert.ok(
    seq.every((n, i) => i === 0 || n > seq[i - 1]),
    'what it got is in order',
  );
  assert.equal(s.server.subscriberCount('feed'), 2, 'still subscribed');
});

for (const [policy, code] of [
  ['close-1013', 1013],
  ['close-1008', 1008],
] as const) {
  test(`slow consumer, policy ${policy}: closed with ${code} while the others keep up`, async (t) => {
    const { s, slow, drops } = await slowConsumerScenario(t, policy);
    assert.equal(s.server.pubsub.stats.closedSlow, 1);
    assert.equal(s.server.pubsub.stats.dropped, 0);
    assert.equal(drops.length, 1);
    const closed = new Promise<number>((resolve) => slow.ws.once('close', (c) => resolve(c)));
    slow.ws.resume();
    assert.equal(await closed, code);
    await until(() => s.server.subscriberCount('feed') === 1, 'the slow one to leave');
  });
}
