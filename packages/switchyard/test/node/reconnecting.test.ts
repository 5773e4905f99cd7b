import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import {
  ReconnectingWebSocket,
  type ReconnectingWebSocketEvents,
} from '../../src/node/reconnecting.js';
import { WebSocketServer } from '../../src/node/server.js';
import { UnexpectedResponseError, type SwitchyardError } from '../../src/core/errors.js';
import { ReadyState } from '../../src/core/connection.js';
import { echo, startServer } from '../helpers/server.js';

/** The next `event` of a reconnecting client (unlike events.once, an 'error' does not reject). */
function next<K extends keyof ReconnectingWebSocketEvents>(
  ws: ReconnectingWebSocket,
  event: K,
): Promise<ReconnectingWebSocketEvents[K]> {
  return new Promise((resolve) => {
    const listener = (...args: ReconnectingWebSocketEvents[K]) => resolve(args);
    (ws as unknown as NodeJS.EventEmitter).once(event, listener as (...a: unknown[]) => void);
  });
}

const FAST = { minDelay: 5, maxDelay: 20 };

function client(url: string, options: ConstructorParameters<typeof ReconnectingWebSocket>[1] = {}) {
  return new ReconnectingWebSocket(url, { logger: false, reconnect: FAST, ...options });
}

/** An HTTP server whose upgrades all get `status` (and headers); counts the attempts. */
async function refusingServer(status: number, headers: Record<string, string> = {}) {
  const arrivals: number[] = [];
  const server = http.createServer();
  server.on('upgrade', (_req, socket: net.Socket) => {
    arrivals.push(Date.now());
    const lines = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.end(`HTTP/1.1 ${status} Nope\r\n${lines}Content-Length: 0\r\nConnection: close\r\n\r\n`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}`,
    arrivals,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test('comes back after the connection drops (1006) and emits reconnecting with the cause', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  echo(s.server);
  const ws = client(s.url);
  t.after(() => ws.close());
  const first = (await next(ws, 'open'))[0];
  assert.equal(first.attempt, 0);
  assert.equal(ws.readyState, ReadyState.OPEN);
  const reconnecting = next(ws, 'reconnecting');
  first.socket.terminate();
  const [info] = await reconnecting;
  assert.equal(info.attempt, 1);
  assert.deepEqual(info.cause, { kind: 'close', code: 1006, reason: '' });
  assert.ok(info.delay >= 0 && info.delay < FAST.minDelay);
  const second = (await next(ws, 'open'))[0];
  assert.equal(second.attempt, 1);
  const reply = next(ws, 'message');
  ws.send('after');
  assert.deepEqual((await reply).slice(0, 2), ['after', false]);
});

test('comes back after the server restarts on the same port', async (t) => {
  const s1 = await startServer();
  const port = s1.port;
  const ws = client(s1.url);
  t.after(() => ws.close());
  await next(ws, 'open');
  const reconnecting = next(ws, 'reconnecting');
  await s1.server.close({ timeout: 100 }); // closes with 1001 Going Away
  assert.deepEqual((await reconnecting)[0].cause, {
    kind: 'close',
    code: 1001,
    reason: 'Server shutting down',
  });
  const s2 = new WebSocketServer({ logger: false });
  t.after(() => s2.close({ timeout: 100 }));
  echo(s2);
  await s2.listen(port, '127.0.0.1');
  await next(ws, 'open');
  const reply = next(ws, 'message');
  ws.send('hello again');
  assert.equal((await reply)[0], 'hello again');
});

test('1012 and 1013 reconnect; 1000, 1008 and 4000 end the logical connection', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  for (const [code, retries] of [
    [1012, true],
    [1013, true],
    [1000, false],
    [1008, false],
    [4000, false],
  ] as const) {
    const ws = client(s.url);
    const [{ socket }] = await next(ws, 'open');
    const server = [...s.server.clients].at(-1);
    assert.ok(server);
    const outcome = Promise.race([
      next(ws, 'reconnecting').then(() => 'reconnecting'),
      next(ws, 'close').then(([c]) => `close ${c}`),
    ]);
    server.close(code);
    assert.equal(await outcome, retries ? 'reconnecting' : `close ${code}`, String(code));
    assert.equal(socket.readyState, ReadyState.CLOSED);
    ws.close();
  }
});

test('a 401 handshake answer is not retried: error then close', async (t) => {
  const s = await refusingServer(401);
  t.after(() => s.close());
  const ws = client(s.url);
  const errors: Error[] = [];
  ws.on('error', (e) => errors.push(e));
  const [code] = await next(ws, 'close');
  assert.equal(code, 1006);
  assert.equal(s.arrivals.length, 1);
  assert.ok(errors[0] instanceof UnexpectedResponseError);
  assert.equal((errors[0] as UnexpectedResponseError).statusCode, 401);
});

test('503 with Retry-After: 2 is retried no sooner than 2 s', async (t) => {
  const s = await refusingServer(503, { 'Retry-After': '2' });
  t.after(() => s.close());
  const ws = client(s.url, { reconnect: { ...FAST, maxRetries: 1 } });
  ws.on('error', () => {});
  const [info] = await next(ws, 'reconnecting');
  assert.equal(info.delay, 2000);
  assert.deepEqual(info.cause, { kind: 'handshake', status: 503, retryAfterMs: 2000 });
  await next(ws, 'close');
  assert.equal(s.arrivals.length, 2);
  // A lower bound only: a loaded machine makes the gap longer, never shorter.
  assert.ok(s.arrivals[1] - s.arrivals[0] >= 1990, `${s.arrivals[1] - s.arrivals[0]} ms`);
});

test('refused connections back off, and maxRetries gives up with an error then close', async (t) => {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((r) => probe.close(r));
  const ws = client(`ws://127.0.0.1:${port}`, { reconnect: { ...FAST, maxRetries: 3 } });
  t.after(() => ws.close());
  const errors: SwitchyardError[] = [];
  ws.on('error', (e) => errors.push(e as SwitchyardError));
  const attempts: number[] = [];
  ws.on('reconnecting', ({ attempt, cause }) => {
    assert.equal(cause.kind, 'network');
    attempts.push(attempt);
  });
  const [code] = await next(ws, 'close');
  assert.equal(code, 1006);
  assert.deepEqual(attempts, [1, 2, 3]);
  assert.equal(errors.at(-1)?.code, 'SWITCHYARD_ERR_RECONNECT_GAVE_UP');
  assert.match(errors.at(-1)?.message ?? '', /after 3 attempts/);
});

test('shouldReconnect can retry an application close code', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const ws = client(s.url, {
    reconnect: {
      ...FAST,
      shouldReconnect: (cause) => cause.kind === 'close' && cause.code === 4500,
    },
  });
  t.after(() => ws.close());
  await next(ws, 'open');
  [...s.server.clients][0].close(4500, 'rebalance');
  const [info] = await next(ws, 'reconnecting');
  assert.deepEqual(info.cause, { kind: 'close', code: 4500, reason: 'rebalance' });
  await next(ws, 'open');
});

test('sends while disconnected are queued, counted in bufferedAmount and flushed in order', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const received: string[] = [];
  s.server.on('connection', (sock) => sock.on('message', (d) => received.push(String(d))));
  const ws = client(s.url);
  t.after(() => ws.close());
  assert.equal(ws.send('one'), true);
  assert.equal(ws.send('two'), true);
  assert.equal(ws.bufferedAmount, 6);
  const [{ socket }] = await next(ws, 'open');
  assert.equal(ws.bufferedAmount, socket.bufferedAmount);
  socket.terminate();
  await next(ws, 'reconnecting');
  assert.equal(ws.send('three'), true);
  await next(ws, 'open');
  ws.send('four');
  for (let i = 0; i < 200 && received.length < 4; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(received, ['one', 'two', 'three', 'four']);
});

test('a full queue drops the message: send returns false and an error says which limit', async (t) => {
  const ws = new ReconnectingWebSocket('ws://127.0.0.1:9', {
    logger: false,
    reconnect: { minDelay: 60_000, maxDelay: 60_000, maxQueuedMessages: 2, maxQueuedBytes: 8 },
  });
  t.after(() => ws.close());
  const errors: SwitchyardError[] = [];
  ws.on('error', (e) => errors.push(e as SwitchyardError));
  assert.equal(ws.send('12345'), true);
  assert.equal(ws.send('123456'), false);
  assert.match(errors.at(-1)?.message ?? '', /maxQueuedBytes/);
  assert.equal(ws.send('123'), true);
  assert.equal(ws.send(''), false);
  assert.match(errors.at(-1)?.message ?? '', /maxQueuedMessages/);
  assert.ok(errors.every((e) => e.code === 'SWITCHYARD_ERR_RECONNECT_QUEUE_FULL'));
  assert.equal(ws.bufferedAmount, 8);
});

test('close() during the backoff stops reconnecting; send after close throws', async (t) => {
  const s = await refusingServer(503, { 'Retry-After': '3600' });
  t.after(() => s.close());
  const ws = client(s.url);
  ws.on('error', () => {});
  await next(ws, 'reconnecting');
  const closed = next(ws, 'close');
  ws.close(1000, 'bye');
  assert.deepEqual(await closed, [1000, 'bye']);
  assert.equal(ws.readyState, ReadyState.CLOSED);
  assert.equal(s.arrivals.length, 1);
  assert.throws(() => ws.send('x'), { code: 'SWITCHYARD_ERR_INVALID_STATE' });
});

test('close() on an open socket sends the close frame and ends without reconnecting', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const ws = client(s.url);
  await next(ws, 'open');
  const serverClose = once([...s.server.clients][0], 'close');
  ws.close(4001, 'done');
  assert.equal((await next(ws, 'close'))[0], 4001);
  assert.equal((await serverClose)[0], 4001);
});

test('async iteration continues across sockets and ends with the logical connection', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  let n = 0;
  s.server.on('connection', (sock) => {
    n++;
    sock.send(`hello ${n}`);
    if (n === 1) setImmediate(() => sock.terminate());
    else setImmediate(() => sock.close(1000));
  });
  const ws = client(s.url);
  const got: unknown[] = [];
  for await (const { data } of ws) got.push(data);
  assert.deepEqual(got, ['hello 1', 'hello 2']);
});
