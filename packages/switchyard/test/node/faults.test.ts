/**
 * Faults: peers that vanish at the worst moments, and application code that throws. Each test
 * checks that the affected connection ends with the documented error, that nothing leaks (the
 * pending-handshake slot, timers), and that the server keeps serving. The half-open peer found
 * by the heartbeat and the exception from a message listener are in server.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { WebSocketServer } from '../../src/node/server.js';
import type { WebSocket } from '../../src/node/websocket.js';
import { connect } from '../../src/node/client.js';
import type { SwitchyardError } from '../../src/core/errors.js';
import {
  RawClient,
  clientFrame,
  startServer,
  upgradeRequest,
  assertServes,
  echo,
} from '../helpers/server.js';

/** The server side of the next connection, with its close and errors recorded. */
function nextServerSocket(
  server: WebSocketServer,
): Promise<{ ws: WebSocket; closed: Promise<unknown[]>; errors: string[] }> {
  return new Promise((resolve) =>
    server.once('connection', (ws) => {
      const errors: string[] = [];
      ws.on('error', (e) => errors.push((e as SwitchyardError).code));
      // Not events.once: it would reject on the 'error' that precedes this 'close'.
      const closed = new Promise<unknown[]>((done) => ws.once('close', (...args) => done(args)));
      resolve({ ws, closed, errors });
    }),
  );
}

async function openRaw(port: number): Promise<RawClient> {
  const raw = await RawClient.connect(port);
  raw.write(upgradeRequest(port));
  assert.equal((await raw.readHead()).status, 101);
  return raw;
}

test('a peer that resets mid-frame closes that connection with 1006, nothing else', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  echo(s.server);
  const next = nextServerSocket(s.server);
  const raw = await openRaw(s.port);
  const { closed } = await next;
  // Half of a 1 KiB frame, then a TCP reset.
  raw.write(clientFrame(2, Buffer.alloc(1024)).subarray(0, 500));
  await new Promise((resolve) => setTimeout(resolve, 20));
  raw.socket.resetAndDestroy();
  const [code, , wasClean] = await closed;
  assert.equal(code, 1006);
  assert.equal(wasClean, false);
  await assertServes(s.url);
});

test('a peer that resets mid-handshake, while the hook runs, frees its pending slot', async (t) => {
  let hookCalls = 0;
  const s = await startServer({
    maxPendingHandshakes: 1,
    onUpgrade: async (_req, { signal }) => {
      hookCalls++;
      if (hookCalls === 1) {
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
      }
    },
  });
  t.after(() => s.close());
  echo(s.server);
  // A head cut in the middle, then a reset: node:http never sees a request.
  const partial = await RawClient.connect(s.port);
  partial.write(upgradeRequest(s.port).slice(0, 40));
  await new Promise((resolve) => setTimeout(resolve, 20));
  partial.socket.resetAndDestroy();
  // A whole head, then a reset while the hook awaits: the hook's signal fires.
  const raw = await RawClient.connect(s.port);
  raw.write(upgradeRequest(s.port));
  while (hookCalls === 0) await new Promise((resolve) => setTimeout(resolve, 5));
  raw.socket.resetAndDestroy();
  // With maxPendingHandshakes 1, this only succeeds if the slot was given back.
  await assertServes(s.url);
});

test('a peer that resets mid-close ends the connection at once, not at closeTimeout', async (t) => {
  // The close timer is far longer than the test may run: only the reset can end it.
  const s = await startServer({ closeTimeout: 10 * 60_000 });
  t.after(() => s.close());
  const next = nextServerSocket(s.server);
  const raw = await openRaw(s.port);
  const { ws, closed } = await next;
  ws.close(1000, 'bye');
  await raw.waitFor((b) => b.length > 0 && b.includes(Buffer.from('bye')));
  const errors: string[] = [];
  ws.on('error', (e) => errors.push((e as { code: string }).code));
  raw.socket.resetAndDestroy();
  const [code] = await closed;
  assert.equal(code, 1006);
  assert.ok(!errors.includes('SWITCHYARD_ERR_CLOSE_TIMEOUT'), errors.join());
});

test('writes after the peer vanished never throw out of an event and are reported', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  echo(s.server);
  const next = nextServerSocket(s.server);
  const raw = await openRaw(s.port);
  const { ws, closed } = await next;
  raw.socket.resetAndDestroy();
  // Keep writing as fast as the app would, across the moment the reset is noticed.
  let sent = 0;
  let refused: unknown = null;
  const payload = Buffer.alloc(16 * 1024);
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline && refused === null) {
    try {
      ws.send(payload);
      sent++;
    } catch (error) {
      refused = error;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await closed;
  assert.ok(sent >= 1);
  // Once closed, a send is refused synchronously: the app learns it at once, never silently.
  assert.throws(() => ws.send('late'), { code: 'SWITCHYARD_ERR_INVALID_STATE' });
  await assertServes(s.url);
});

test('close() with messages in flight loses nothing a side accepted without telling it', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  let received = 0;
  s.server.on('connection', (ws) => {
    ws.on('message', () => received++);
    // The server sends 200 messages, then the server is closed: all arrive before its close.
    for (let i = 0; i < 200; i++) ws.send(`from server ${i}`);
  });
  const ws = await connect(s.url);
  let gotFromServer = 0;
  ws.on('message', () => gotFromServer++);
  const closed = once(ws, 'close');
  // The client keeps sending while the server shuts down; a send either succeeds or throws.
  let accepted = 0;
  let refusedAfterClose = false;
  let closing: Promise<void> | null = null;
  for (let round = 0; round < 200 && !refusedAfterClose; round++) {
    for (let i = 0; i < 20; i++) {
      try {
        ws.send(`from client ${accepted}`);
        accepted++;
      } catch (error) {
        assert.equal((error as SwitchyardError).code, 'SWITCHYARD_ERR_INVALID_STATE');
        refusedAfterClose = true;
        break;
      }
    }
    if (round === 5) closing = s.server.close({ timeout: 2000 });
    await new Promise((resolve) => setImmediate(resolve));
  }
  const [code] = await closed;
  await closing;
  assert.equal(code, 1001, 'the client was told the server is going away');
  assert.equal(gotFromServer, 200, 'every message the server sent before close() arrived');
  assert.ok(accepted > 100);
  // RFC 6455 §7.1.2: after sending its close frame the server keeps reading until the
  // client's; so every message the client's send() accepted was delivered to the server.
  assert.equal(received, accepted, 'every message the client sent was received');
});

test('exceptions in connection, ping, pong and close listeners never take the server down', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  let connections = 0;
  s.server.on('connection', (ws) => {
    connections++;
    ws.on('ping', () => {
      throw new Error('ping listener bug');
    });
    ws.on('pong', () => {
      throw new Error('pong listener bug');
    });
    ws.on('close', () => {
      throw new Error('close listener bug');
    });
    if (connections === 1) throw new Error('connection listener bug');
  });
  // The first connection's listener threw: that connection goes, the server stays.
  const first = await connect(s.url).catch(() => null);
  if (first !== null) await once(first, 'close');
  echo(s.server);
  const ws = await connect(s.url);
  const closed = once(ws, 'close');
  ws.ping('x');
  const [code] = await closed;
  assert.equal(code, 1011, 'the throwing ping listener closed it with 1011');
  const pongClient = await connect(s.url);
  const pongClosed = once(pongClient, 'close');
  pongClient.pong('x');
  assert.equal((await pongClosed)[0], 1011);
  await assertServes(s.url);
});
