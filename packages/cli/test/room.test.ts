import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect, InProcessBackplane, InProcessBus, WebSocketServer } from 'switchyard';
import { TopicRoom } from '../src/serve/room.js';

function nextMessage(ws: Awaited<ReturnType<typeof connect>>): Promise<string> {
  return new Promise((resolve) => ws.once('message', (data) => resolve(String(data))));
}

/** A server whose connections all join `room`; closed by `t.after`. */
async function roomServer(
  t: { after(fn: () => unknown): void },
  options: ConstructorParameters<typeof WebSocketServer>[0] = {},
) {
  const server = new WebSocketServer({ logger: false, ...options });
  const room = new TopicRoom(server);
  server.on('connection', (ws) => {
    room.join(ws);
    ws.on('message', (data, isBinary) => room.publish(data, isBinary));
  });
  const { port } = await server.listen(0, '127.0.0.1');
  t.after(() => server.close({ timeout: 500 }));
  return { server, room, url: `ws://127.0.0.1:${port}` };
}

test('a topic room sends every message to every member, the sender included', async (t) => {
  const { room, url } = await roomServer(t);
  const a = await connect(url, { logger: false });
  const b = await connect(url, { logger: false });
  t.after(() => {
    a.terminate();
    b.terminate();
  });
  for (let i = 0; i < 100 && room.size < 2; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(room.size, 2);
  const toA = nextMessage(a);
  const toB = nextMessage(b);
  a.send('hello room');
  assert.equal(await toA, 'hello room');
  assert.equal(await toB, 'hello room');
});

test('two servers on one backplane share the room (as two serve processes on one Redis do)', async (t) => {
  const bus = new InProcessBus();
  const one = await roomServer(t, { pubsub: { backplane: new InProcessBackplane({ bus }) } });
  const two = await roomServer(t, { pubsub: { backplane: new InProcessBackplane({ bus }) } });
  const a = await connect(one.url, { logger: false });
  const b = await connect(two.url, { logger: false });
  t.after(() => {
    a.terminate();
    b.terminate();
  });
  for (let i = 0; i < 100 && (one.room.size < 1 || two.room.size < 1); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const toB = nextMessage(b);
  a.send('across instances');
  assert.equal(await toB, 'across instances');
});
