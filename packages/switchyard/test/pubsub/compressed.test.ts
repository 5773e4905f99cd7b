import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { connect } from '../../src/node/client.js';
import type { WebSocket } from '../../src/node/websocket.js';
import { RawClient, afterHead, startServer, upgradeRequest } from '../helpers/server.js';

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (data) => resolve(String(data))));
}

test('a published message is compressed once for every subscriber without context takeover', async (t) => {
  const s = await startServer({
    perMessageDeflate: { serverNoContextTakeover: true, threshold: 64 },
  });
  t.after(() => s.close());
  s.server.on('connection', (ws) => ws.subscribe('news'));
  const subscribers = await Promise.all([
    connect(s.url, { perMessageDeflate: true }),
    connect(s.url, { perMessageDeflate: true }),
    connect(s.url, { perMessageDeflate: true }),
    connect(s.url), // no compression: gets the plain frame
  ]);
  t.after(() => subscribers.forEach((ws) => ws.terminate()));
  assert.match(subscribers[0].extensions, /server_no_context_takeover/);
  for (let i = 0; i < 50 && s.server.subscriberCount('news') < 4; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const text = JSON.stringify({ headline: 'compressed once', body: 'x'.repeat(2000) });
  for (let round = 0; round < 2; round++) {
    const arrivals = subscribers.map(nextMessage);
    assert.equal(s.server.publish('news', text), 4);
    assert.deepEqual(await Promise.all(arrivals), [text, text, text, text]);
  }
  // One compression per publish, shared by the three compressing subscribers.
  assert.equal(s.server.pubsub.stats.compressed, 2);
  // Below the threshold nothing is compressed.
  const small = subscribers.map(nextMessage);
  s.server.publish('news', 'short');
  assert.deepEqual(await Promise.all(small), ['short', 'short', 'short', 'short']);
  assert.equal(s.server.pubsub.stats.compressed, 2);
});

test('the shared compressed frame carries RSV1 and a payload shorter than the message (RFC 7692 §6)', async (t) => {
  const s = await startServer({ perMessageDeflate: { serverNoContextTakeover: true } });
  t.after(() => s.close());
  const subscribed = once(s.server, 'connection');
  s.server.on('connection', (ws) => ws.subscribe('news'));
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(s.port, { 'Sec-WebSocket-Extensions': 'permessage-deflate' }));
  const head = await raw.readHead();
  assert.match(head.headers['sec-websocket-extensions'] ?? '', /server_no_context_takeover/);
  await subscribed;
  const text = 'compressible '.repeat(200);
  s.server.publish('news', text);
  await raw.waitFor((b) => afterHead(b).length >= 2);
  const frame = afterHead(raw.received);
  assert.equal(frame[0] & 0x40, 0x40, 'RSV1 set');
  assert.equal(frame[0] & 0x0f, 1, 'a text frame');
  assert.ok((frame[1] & 0x7f) < 126, `compressed to under 126 bytes, from ${text.length}`);
});

test('a published message that does not shrink goes plain, RSV1 unset (RFC 7692 §6)', async (t) => {
  const s = await startServer({ perMessageDeflate: { serverNoContextTakeover: true } });
  t.after(() => s.close());
  const subscribed = once(s.server, 'connection');
  s.server.on('connection', (ws) => ws.subscribe('news'));
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(s.port, { 'Sec-WebSocket-Extensions': 'permessage-deflate' }));
  await raw.readHead();
  await subscribed;
  const noise = randomBytes(4096);
  s.server.publish('news', noise);
  await raw.waitFor((b) => afterHead(b).length >= 4 + noise.length);
  const frame = afterHead(raw.received);
  assert.equal(frame[0] & 0x40, 0, 'RSV1 unset');
  assert.ok(frame.subarray(4).equals(noise));
  assert.equal(s.server.pubsub.stats.compressed, 0);
});

test('published messages queued behind a compression count in bufferedAmount', async (t) => {
  const s = await startServer({ perMessageDeflate: true });
  t.after(() => s.close());
  const measured = new Promise<[number, number]>((resolve) => {
    s.server.on('connection', (ws) => {
      ws.subscribe('news');
      ws.send('compress me, '.repeat(1000));
      const before = ws.bufferedAmount;
      s.server.publish('news', Buffer.alloc(10_000));
      resolve([before, ws.bufferedAmount]);
    });
  });
  const client = await connect(s.url, { perMessageDeflate: true });
  t.after(() => client.terminate());
  const [before, after] = await measured;
  assert.ok(after - before >= 10_000, `bufferedAmount went from ${before} to ${after}`);
});
