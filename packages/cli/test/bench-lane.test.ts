import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocketServer, type WebSocket } from 'switchyard';
import { openLeanLane } from '../src/commands/bench-lane.js';

test('a lean bench lane answers pings, counts a fragmented message once, and sees the close code', async (t) => {
  const wss = new WebSocketServer({ logger: false });
  const { port } = await wss.listen(0, '127.0.0.1');
  t.after(() => wss.close({ timeout: 200 }));
  const connected = once(wss, 'connection') as Promise<[WebSocket]>;
  const lane = await openLeanLane(new URL(`ws://127.0.0.1:${port}/`), { timeoutMs: 2000 });
  const [server] = await connected;
  let messages = 0;
  lane.on('message', () => messages++);
  const received: string[] = [];
  server.on('message', (data) => received.push(String(data)));
  const pong = once(server, 'pong');
  server.ping(Buffer.from('hi'));
  assert.equal(String((await pong)[0]), 'hi', 'the ping was answered with its payload');
  server.send('ab', { fin: false });
  server.send('cd');
  lane.send('x'.repeat(10));
  lane.send(Buffer.alloc(200, 1)); // over 125 bytes: framed by the core's serializer
  for (let i = 0; i < 100 && (messages < 1 || received.length < 2); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.equal(messages, 1, 'two fragments are one message');
  assert.deepEqual(
    received.map((r) => r.length),
    [10, 200],
    'the server accepted both frames (masked)',
  );
  const closed = new Promise<number>((resolve) => lane.on('close', resolve));
  server.close(4000, 'done');
  assert.equal(await closed, 4000);
});
