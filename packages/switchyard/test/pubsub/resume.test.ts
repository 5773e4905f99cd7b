import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  ReconnectingWebSocket,
  type GapInfo,
  type ReconnectingWebSocketOptions,
} from '../../src/node/reconnecting.js';
import { connect } from '../../src/node/client.js';
import { RESUME_PROTOCOL } from '../../src/core/resume.js';
import type { PubSubOptions } from '../../src/pubsub/topics.js';
import { ReplayWindow, replayAfter, type ReplayEntry } from '../../src/pubsub/replay.js';
import type { Backplane, BackplaneHost } from '../../src/pubsub/backplane.js';
import { startServer } from '../helpers/server.js';

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (let waited = 0; !check(); waited += 5) {
    if (waited > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A server whose every connection subscribes to `news`. */
async function newsServer(replay: PubSubOptions['replay']) {
  const s = await startServer({ pubsub: { replay } });
  s.server.on('connection', (ws) => ws.subscribe('news'));
  return s;
}

function resumingClient(url: string, options: ReconnectingWebSocketOptions = {}) {
  const ws = new ReconnectingWebSocket(url, {
    logger: false,
    resume: true,
    reconnect: { minDelay: 5, maxDelay: 20 },
    ...options,
  });
  const got: string[] = [];
  const gaps: GapInfo[] = [];
  ws.on('message', (data, _binary, meta) => {
    if (meta?.topic === 'news') got.push(String(data));
  });
  ws.on('gap', (gap) => gaps.push(gap));
  return { ws, got, gaps };
}

test('the replay window keeps the newest messages within count, bytes and age', () => {
  const w = new ReplayWindow({ maxMessages: 3, maxBytes: 10, maxAge: 1000 });
  const b = (n: number) => new Uint8Array(n);
  for (let i = 0; i < 5; i++) w.append(b(1), false, 0);
  assert.deepEqual(
    w.since(0, 0).entries.map((e) => e.position),
    [3, 4, 5],
  );
  assert.deepEqual(w.since(0, 0).gap, { from: 1, to: 2 });
  assert.deepEqual(w.since(3, 0), { gap: null, entries: w.since(3, 0).entries, last: 5 });
  assert.equal(w.since(3, 0).entries.length, 2);
  w.append(b(9), true, 0); // four messages, then 12 bytes: positions 3 and 4 go
  assert.equal(w.size, 2);
  assert.equal(w.byteLength, 10);
  assert.deepEqual(w.since(2, 5000), { gap: { from: 3, to: 6 }, entries: [], last: 6 });
  assert.deepEqual(w.since(9, 0).gap, { from: 10, to: null });
  assert.deepEqual(replayAfter(4, 4, []), { gap: null, entries: [], last: 4 });
});

test('the server agrees on switchyard.resume.v1 only when replay is on', async (t) => {
  const on = await newsServer({});
  const off = await startServer();
  t.after(() => Promise.all([on.close(), off.close()]));
  const a = await connect(on.url, { protocols: [RESUME_PROTOCOL] });
  const b = await connect(off.url, { protocols: [RESUME_PROTOCOL] });
  assert.equal(a.protocol, RESUME_PROTOCOL);
  assert.equal(b.protocol, '');
  a.terminate();
  b.terminate();
});

test('on the wire: topic messages carry their position, direct ones a d header', async (t) => {
  const s = await newsServer({});
  t.after(() => s.close());
  s.server.on('connection', (ws) => ws.send('welcome'));
  const raw = await connect(s.url, { protocols: [RESUME_PROTOCOL], textAsBuffer: true });
  t.after(() => raw.terminate());
  const frames: string[] = [];
  raw.on('message', (d) => frames.push(String(d)));
  await until(() => frames.length === 1, 'welcome');
  s.server.publish('news', 'first');
  s.server.publish('news', Buffer.from('second'));
  await until(() => frames.length === 3, 'two messages');
  assert.deepEqual(frames, ['d\nwelcome', 'm news 1\nfirst', 'm news 2\nsecond']);
});

test('a client whose connection is cut gets every message exactly once, in order', async (t) => {
  const s = await newsServer({ maxMessages: 10_000 });
  t.after(() => s.close());
  const { ws, got, gaps } = resumingClient(s.url);
  t.after(() => ws.close());
  await new Promise((r) => ws.once('open', r));
  const total = 2000;
  let cuts = 0;
  for (let i = 1; i <= total; i++) {
    s.server.publish('news', String(i));
    if (i % 500 === 0) {
      // A network cut: the socket dies without a close frame; publishing goes on meanwhile.
      ws.socket?.socket.destroy();
      cuts++;
    }
    if (i % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  await until(() => got.length >= total, `${total} messages (have ${got.length})`);
  assert.equal(cuts, 4);
  assert.deepEqual(gaps, []);
  assert.deepEqual(
    got,
    Array.from({ length: total }, (_, i) => String(i + 1)),
  );
  assert.equal(ws.resumePositions.get('news'), total);
});

test('a window too small for the gap gives a gap event with the lost range', async (t) => {
  const s = await newsServer({ maxMessages: 5 });
  t.after(() => s.close());
  const { ws, got } = resumingClient(s.url, {
    reconnect: { minDelay: 60_000, maxDelay: 60_000 },
  });
  t.after(() => ws.close());
  await new Promise((r) => ws.once('open', r));
  for (let i = 1; i <= 3; i++) s.server.publish('news', String(i));
  await until(() => got.length === 3, 'three');
  const closed = new Promise((r) => ws.socket?.once('close', r));
  ws.socket?.socket.destroy();
  await closed;
  for (let i = 4; i <= 20; i++) s.server.publish('news', String(i));
  // Reconnect by hand now rather than after the 60 s backoff: a second client with the same
  // positions (what the first would present).
  const again = resumingClient(s.url);
  t.after(() => again.ws.close());
  (again.ws.resumePositions as Map<string, number>).set('news', 3);
  await until(() => again.got.length === 5, 'the window');
  assert.deepEqual(again.gaps, [{ topic: 'news', from: 4, to: 15 }]);
  assert.deepEqual(again.got, ['16', '17', '18', '19', '20']);
});

test('positions ahead of a restarted server give a gap with an unknown end', async (t) => {
  const s = await newsServer({});
  t.after(() => s.close());
  const { ws, got, gaps } = resumingClient(s.url);
  t.after(() => ws.close());
  (ws.resumePositions as Map<string, number>).set('news', 500);
  await until(() => gaps.length === 1, 'the gap');
  assert.deepEqual(gaps, [{ topic: 'news', from: 501, to: null }]);
  s.server.publish('news', 'fresh');
  await until(() => got.length === 1, 'a live message');
  assert.deepEqual(got, ['fresh']);
});

test('plain clients on the same topic get plain messages; direct sends reach resuming ones bare', async (t) => {
  const s = await newsServer({});
  t.after(() => s.close());
  s.server.on('connection', (ws) => ws.send('hi', {}));
  const plain = await connect(s.url);
  t.after(() => plain.terminate());
  const plainGot: unknown[] = [];
  plain.on('message', (d) => plainGot.push(d));
  const { ws } = resumingClient(s.url);
  t.after(() => ws.close());
  const direct: unknown[] = [];
  ws.on('message', (d, _b, meta) => {
    if (meta === undefined) direct.push(d);
  });
  await until(() => direct.length === 1 && plainGot.length === 1, 'welcomes');
  s.server.publish('news', 'x');
  await until(() => plainGot.length === 2, 'plain');
  assert.deepEqual(plainGot, ['hi', 'x']);
  assert.deepEqual(direct, ['hi']);
});

test('replay can be chosen per topic; others are delivered with position 0', async (t) => {
  const s = await startServer({
    pubsub: { replay: (topic) => (topic.startsWith('durable/') ? { maxMessages: 10 } : false) },
  });
  t.after(() => s.close());
  s.server.on('connection', (ws) => {
    ws.subscribe('durable/a');
    ws.subscribe('live');
  });
  const ws = new ReconnectingWebSocket(s.url, { logger: false, resume: true });
  t.after(() => ws.close());
  const got: string[] = [];
  ws.on('message', (d, _b, meta) => got.push(`${meta?.topic}@${meta?.position}:${String(d)}`));
  await new Promise((r) => ws.once('open', r));
  s.server.publish('durable/a', 'x');
  s.server.publish('live', 'y');
  await until(() => got.length === 2, 'two');
  assert.deepEqual(got, ['durable/a@1:x', 'live@0:y']);
});

/**
 * A backplane with a shared window (as Redis Streams are) whose link to this instance can be
 * cut: while `cut`, appends reach the window but are not delivered here, as when an instance's
 * subscription connection is down while others keep publishing.
 */
function sharedWindowBackplane() {
  const log: ReplayEntry[] = [];
  const plane = {
    host: null as BackplaneHost | null,
    cut: false,
    reads: 0,
    start(host: BackplaneHost) {
      plane.host = host;
    },
    subscribe() {},
    unsubscribe() {},
    publish() {},
    close() {},
    replay: {
      append(message: { topic: string; data: Uint8Array; binary: boolean }) {
        const position = log.length + 1;
        log.push({ position, data: message.data, binary: message.binary });
        if (!plane.cut) plane.host?.deliver({ ...message, position });
      },
      async range(_topic: string, after: number) {
        plane.reads++;
        await new Promise((r) => setTimeout(r, 5));
        return replayAfter(after, log.length, log.slice(after));
      },
    },
  };
  return plane satisfies Backplane;
}

test('an instance that missed positions of a shared window reads them back, on a jump and on resync', async (t) => {
  const plane = sharedWindowBackplane();
  const s = await startServer({ pubsub: { replay: { maxMessages: 100 }, backplane: plane } });
  t.after(() => s.close());
  s.server.on('connection', (ws) => ws.subscribe('news'));
  const client = await connect(s.url);
  t.after(() => client.terminate());
  const got: string[] = [];
  client.on('message', (data) => got.push(String(data)));
  await until(() => s.server.pubsub.subscriberCount('news') === 1, 'the subscription');
  s.server.publish('news', '1');
  await until(() => got.length === 1, 'message 1');

  // Missed in the middle: the next live message reveals the jump.
  plane.cut = true;
  s.server.publish('news', '2');
  s.server.publish('news', '3');
  plane.cut = false;
  s.server.publish('news', '4');
  await until(() => got.length === 4, 'messages 2 to 4');

  // Missed at the end of a burst: no later message comes, the backplane asks for a resync.
  plane.cut = true;
  s.server.publish('news', '5');
  s.server.publish('news', '6');
  plane.cut = false;
  plane.host!.resync('news');
  // Live messages during the read are held and come after what is read back, each once.
  s.server.publish('news', '7');
  plane.host!.resync('news');
  await until(() => got.length === 7, 'messages 5 to 7');
  // A resync with nothing missed reads the window and delivers nothing twice.
  const reads = plane.reads;
  plane.host!.resync('news');
  await until(() => plane.reads > reads, 'the read');
  s.server.publish('news', '8');
  await until(() => got.length === 8, 'message 8');
  assert.deepEqual(got, ['1', '2', '3', '4', '5', '6', '7', '8']);
  // A topic with nothing delivered yet has nothing to resync.
  plane.host!.resync('other');
});
