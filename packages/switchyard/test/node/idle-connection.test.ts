/**
 * What an idle connection holds (issue 15, "memory per idle connection"): no timer of its own
 * (the server's heartbeat is one sweep for all connections), one listener per event on its
 * socket, and nothing allocated for what it has not used yet. The structures created on first
 * use (the iterator's waiters, the incremental UTF-8 check, the receive and send lists) must
 * then work as if they had always been there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { once } from 'node:events';
import type { WebSocket } from '../../src/node/websocket.js';
import { buildFrame, concat } from '../helpers/frames.js';
import { RawClient, startServer, upgradeRequest } from '../helpers/server.js';

/** Opens a raw connection and waits for its 101 and the server's WebSocket. */
async function openRaw(
  port: number,
  accepted: WebSocket[],
  path = '/',
): Promise<{ raw: RawClient; ws: WebSocket }> {
  const before = accepted.length;
  const raw = await RawClient.connect(port);
  raw.socket.write(upgradeRequest(port, {}, `GET ${path} HTTP/1.1`));
  const { status } = await raw.readHead();
  assert.equal(status, 101);
  while (accepted.length === before) await new Promise((r) => setImmediate(r));
  return { raw, ws: accepted[before] };
}

test('idle server connections hold no timer of their own, and one listener per socket event', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const accepted: WebSocket[] = [];
  s.server.on('connection', (ws) => accepted.push(ws));
  const raws: RawClient[] = [];
  t.after(() => raws.forEach((r) => r.socket.destroy()));
  // The first connection starts the server's heartbeat sweep: count from the second on.
  raws.push((await openRaw(s.port, accepted)).raw);

  const live = new Set<number>();
  const hook = createHook({
    init(id, type) {
      if (type === 'Timeout') live.add(id);
    },
    destroy(id) {
      live.delete(id);
    },
  }).enable();
  try {
    for (let i = 0; i < 10; i++) raws.push((await openRaw(s.port, accepted)).raw);
    // Handshake deadlines are cleared by now; whatever timer is still alive belongs to a
    // connection (or to the test's own waits, which are cleared too).
    await new Promise((r) => setImmediate(r));
  } finally {
    hook.disable();
  }
  assert.equal(live.size, 0, 'timers created for 10 idle connections and still alive');

  for (const ws of accepted) {
    const socket = (ws as unknown as { socket: NodeJS.EventEmitter }).socket;
    for (const event of ['data', 'close', 'error'] as const) {
      assert.equal(socket.listenerCount(event), 1, `listeners of '${event}'`);
    }
    assert.equal(ws.readyState, 1);
  }
});

test('after idling, the iterator, a fragmented text, a ping and a send each work on first use', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const accepted: WebSocket[] = [];
  s.server.on('connection', (ws) => accepted.push(ws));
  const { raw, ws } = await openRaw(s.port, accepted);
  t.after(() => raw.socket.destroy());

  // Waiting before anything arrived: the iterator's first waiter.
  const iterator = ws[Symbol.asyncIterator]();
  const first = iterator.next();
  // A ping, answered with a pong (the first frame the connection queues), then a text in
  // three fragments with '€' (e2 82 ac) split across them: the first piece-by-piece check.
  const euro = Buffer.from('€');
  raw.socket.write(
    concat(
      buildFrame({ opcode: 9, payload: 'hb', mask: true }),
      buildFrame({
        opcode: 1,
        payload: concat(Buffer.from('5 '), euro.subarray(0, 1)),
        fin: false,
        mask: true,
      }),
      buildFrame({ opcode: 0, payload: euro.subarray(1, 2), fin: false, mask: true }),
      buildFrame({ opcode: 0, payload: euro.subarray(2), mask: true }),
    ),
  );
  const message = await first;
  assert.deepEqual(message, { value: { data: '5 €', isBinary: false }, done: false });
  const pong = Buffer.from([0x8a, 2, ...Buffer.from('hb')]);
  await raw.waitFor((b) => b.includes(pong));

  ws.send('reply');
  const reply = Buffer.from([0x81, 5, ...Buffer.from('reply')]);
  await raw.waitFor((b) => b.includes(reply));

  // The iterator ends with the connection, its waiting call resolved as done.
  const last = iterator.next();
  ws.close(1000);
  raw.socket.write(buildFrame({ opcode: 8, payload: Buffer.from([0x03, 0xe8]), mask: true }));
  await once(ws, 'close');
  assert.deepEqual(await last, { value: undefined, done: true });
});
