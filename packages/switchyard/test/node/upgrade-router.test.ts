/**
 * Several endpoints and libraries on one HTTP server: two WebSocketServers on one http.Server,
 * a WebSocketServer beside a `ws` noServer handler and beside socket.io, each reached by its
 * own client; an upgrade that nobody takes gets 404 (or 426) instead of a hanging socket. The
 * same for HTTP/2 extended CONNECT streams.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { WebSocketServer as WsServer } from 'ws';
import { Server as SocketIoServer } from 'socket.io';
import { io as socketIoClient } from 'socket.io-client';
import { connect } from '../../src/node/client.js';
import { WebSocketServer, type ServerOptions } from '../../src/node/server.js';
import { UnexpectedResponseError } from '../../src/core/errors.js';
import { RawClient, upgradeRequest } from '../helpers/server.js';

interface Recorder {
  lines: string[];
  logger: { warn(m: string): void; error(m: string): void };
}

function recorder(): Recorder {
  const lines: string[] = [];
  return { lines, logger: { warn: (m) => lines.push(m), error: (m) => lines.push(m) } };
}

/** An http.Server on 127.0.0.1 that answers plain requests, closed by `t.after`. */
async function startHttp(t: { after(fn: () => unknown): void }): Promise<{
  server: http.Server;
  port: number;
}> {
  const server = http.createServer((_req, res) => res.end('page'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  // Stops listening at once; the WebSockets and clients of each test are closed by its own
  // hooks (which run after this one), and the server is done when they are.
  t.after(() => {
    server.close();
    server.closeAllConnections();
  });
  return { server, port: (server.address() as AddressInfo).port };
}

function attach(
  t: { after(fn: () => unknown): void },
  server: http.Server | http2.Http2Server,
  options: ServerOptions,
): WebSocketServer {
  const wss = new WebSocketServer({ heartbeat: false, ...options, server });
  t.after(() => wss.close({ timeout: 200 }));
  return wss;
}

/** Connects to `url`, sends `text` and resolves with the reply. */
async function roundTrip(url: string, text: string, http2Option = false): Promise<string> {
  const ws = await connect(url, { logger: false, heartbeat: false, http2: http2Option });
  try {
    const reply = once(ws, 'message');
    ws.send(text);
    return String((await reply)[0]);
  } finally {
    ws.terminate();
  }
}

function tagging(wss: WebSocketServer, tag: string): void {
  wss.on('connection', (ws) => ws.on('message', (data) => ws.send(`${tag}:${String(data)}`)));
}

const is404 = (error: unknown) =>
  error instanceof UnexpectedResponseError && error.statusCode === 404;

test('two WebSocketServers on one http.Server each serve their own path, with no error logged', async (t) => {
  const { server, port } = await startHttp(t);
  const logA = recorder();
  const logB = recorder();
  const a = attach(t, server, { path: '/a', logger: logA.logger });
  const b = attach(t, server, { path: '/b', logger: logB.logger });
  tagging(a, 'a');
  tagging(b, 'b');
  const base = `ws://127.0.0.1:${port}`;
  assert.equal(await roundTrip(`${base}/a`, 'hi'), 'a:hi');
  assert.equal(await roundTrip(`${base}/b`, 'hi'), 'b:hi');
  assert.equal(await roundTrip(`${base}/a`, 'again'), 'a:again');
  await assert.rejects(connect(`${base}/c`, { logger: false }), is404);
  assert.equal(a.clients.size + b.clients.size <= 3, true);
  // Only the one 404 is logged, once; nothing about a socket handled twice.
  const all = [...logA.lines, ...logB.lines];
  assert.deepEqual(
    all.filter((line) => /already|upgrade failed/i.test(line)),
    [],
    all.join('\n'),
  );
  assert.equal(all.filter((line) => /404/.test(line)).length, 1, all.join('\n'));
  // Plain HTTP requests still reach the server's own handler.
  const page = await fetch(`http://127.0.0.1:${port}/a`);
  assert.equal(await page.text(), 'page');
});

test('a WebSocketServer beside a ws noServer handler on another path: both serve', async (t) => {
  const { server, port } = await startHttp(t);
  const log = recorder();
  const ours = attach(t, server, { path: '/ours', logger: log.logger });
  tagging(ours, 'switchyard');
  const theirs = new WsServer({ noServer: true });
  t.after(() => {
    for (const client of theirs.clients) client.terminate();
    theirs.close();
  });
  theirs.on('connection', (ws) => ws.on('message', (data) => ws.send(`ws:${String(data)}`)));
  // The ws README's way to share a server, leaving the paths it does not serve alone.
  server.on('upgrade', (req, socket, head) => {
    if (req.url !== '/theirs') return;
    theirs.handleUpgrade(req, socket, head, (ws) => theirs.emit('connection', ws, req));
  });
  const base = `ws://127.0.0.1:${port}`;
  assert.equal(await roundTrip(`${base}/ours`, 'x'), 'switchyard:x');
  assert.equal(await roundTrip(`${base}/theirs`, 'y'), 'ws:y');
  // And a client of the ws package reaches ours too.
  const { WebSocket: WsClient } = await import('ws');
  const client = new WsClient(`${base}/ours`);
  await once(client, 'open');
  const reply = once(client, 'message');
  client.send('z');
  assert.equal(String((await reply)[0]), 'switchyard:z');
  client.terminate();
  await assert.rejects(connect(`${base}/neither`, { logger: false }), is404);
  assert.deepEqual(
    log.lines.filter((line) => /already|upgrade failed/i.test(line)),
    [],
  );
});

test('a WebSocketServer beside socket.io on the same port: both serve', async (t) => {
  const { server, port } = await startHttp(t);
  const log = recorder();
  const ours = attach(t, server, { path: '/ws', logger: log.logger });
  tagging(ours, 'switchyard');
  const sio = new SocketIoServer(server, { transports: ['websocket', 'polling'] });
  t.after(() => sio.close());
  sio.on('connection', (socket) => {
    socket.on('ping-me', (text: string, reply: (answer: string) => void) =>
      reply(`socket.io:${text}`),
    );
  });
  assert.equal(await roundTrip(`ws://127.0.0.1:${port}/ws`, 'x'), 'switchyard:x');
  // socket.io's client over a WebSocket upgrade of its own (no long-polling first).
  const client = socketIoClient(`http://127.0.0.1:${port}`, {
    transports: ['websocket'],
    reconnection: false,
    timeout: 3000,
  });
  t.after(() => client.close());
  await new Promise<void>((resolve, fail) => {
    client.once('connect', resolve);
    client.once('connect_error', fail);
  });
  const answer = await client.timeout(3000).emitWithAck('ping-me', 'y');
  assert.equal(answer, 'socket.io:y');
  // And long-polling first, then upgraded, as socket.io's client does by default.
  const polling = socketIoClient(`http://127.0.0.1:${port}`, { reconnection: false });
  t.after(() => polling.close());
  await new Promise<void>((resolve, fail) => {
    polling.once('connect', resolve);
    polling.once('connect_error', fail);
  });
  assert.equal(await polling.timeout(3000).emitWithAck('ping-me', 'z'), 'socket.io:z');
  assert.equal(await roundTrip(`ws://127.0.0.1:${port}/ws`, 'again'), 'switchyard:again');
  assert.deepEqual(
    log.lines.filter((line) => /already|upgrade failed/i.test(line)),
    [],
  );
});

test('an upgrade that nobody takes gets 404 and its socket is closed, never left hanging', async (t) => {
  const { server, port } = await startHttp(t);
  attach(t, server, { path: '/a', logger: false });
  // Another library that takes nothing on this path.
  server.on('upgrade', () => {});
  const raw = await RawClient.connect(port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(port, {}, 'GET /unclaimed HTTP/1.1'));
  const response = await raw.readHead();
  assert.equal(response.status, 404);
  assert.match(response.body.toString(), /\/unclaimed/);
  await raw.closed();
});

test('an unclaimed upgrade on a keep-alive connection that already served a page still gets 404', async (t) => {
  const { server, port } = await startHttp(t);
  attach(t, server, { path: '/a', logger: false });
  server.on('upgrade', () => {});
  const raw = await RawClient.connect(port);
  t.after(() => raw.destroy());
  raw.write(`GET /page HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  assert.equal((await raw.readHead()).status, 200);
  raw.write(upgradeRequest(port, {}, 'GET /unclaimed HTTP/1.1'));
  await raw.waitFor((data) => data.includes('HTTP/1.1 404'));
  await raw.closed();
});

test('a listener that only listens to every upgrade socket does not stop an endpoint taking its path', async (t) => {
  const { server, port } = await startHttp(t);
  // Runs before the endpoint's router, as a logging or error-hygiene listener would.
  server.prependListener('upgrade', (_req, socket) => socket.on('error', () => {}));
  const ours = attach(t, server, { path: '/a', logger: false });
  tagging(ours, 'a');
  assert.equal(await roundTrip(`ws://127.0.0.1:${port}/a`, 'x'), 'a:x');
});

test('a served path asked for with a protocol nobody speaks gets 426 naming the served ones', async (t) => {
  const { server, port } = await startHttp(t);
  attach(t, server, { path: '/a', logger: false });
  const raw = await RawClient.connect(port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(port, { Upgrade: 'h2c' }, 'GET /a HTTP/1.1'));
  const response = await raw.readHead();
  assert.equal(response.status, 426);
  assert.equal(response.headers['upgrade'], 'websocket');
  await raw.closed();
});

test('an upgrade another listener answers is left to it', async (t) => {
  const { server, port } = await startHttp(t);
  attach(t, server, { path: '/a', logger: false });
  server.on('upgrade', (req, socket) => {
    if (req.url !== '/other') return;
    // Answers later, as a proxy would: it marks the socket as its own by listening to it.
    socket.on('error', () => {});
    setTimeout(() => socket.end('HTTP/1.1 418 I am a teapot\r\nContent-Length: 0\r\n\r\n'), 50);
  });
  const raw = await RawClient.connect(port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(port, {}, 'GET /other HTTP/1.1'));
  assert.equal((await raw.readHead()).status, 418);
});

test('the router leaves the server once its last WebSocketServer closes', async (t) => {
  const { server } = await startHttp(t);
  const before = server.listenerCount('upgrade');
  const a = new WebSocketServer({ server, path: '/a', logger: false, heartbeat: false });
  const b = new WebSocketServer({ server, path: '/b', logger: false, heartbeat: false });
  assert.ok(server.listenerCount('upgrade') > before);
  await a.close({ timeout: 100 });
  assert.ok(server.listenerCount('upgrade') > before);
  await b.close({ timeout: 100 });
  assert.equal(server.listenerCount('upgrade'), before);
});

test('two WebSocketServers on one HTTP/2 server each serve their own path; others get 404', async (t) => {
  const server = http2.createServer();
  const log = recorder();
  const a = attach(t, server, { path: '/a', logger: log.logger });
  const b = attach(t, server, { path: '/b', logger: log.logger });
  tagging(a, 'a');
  tagging(b, 'b');
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const sessions = new Set<http2.Http2Session>();
  server.on('session', (session) => sessions.add(session));
  t.after(async () => {
    for (const session of sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  assert.equal(await roundTrip(`${base}/a`, 'hi', true), 'a:hi');
  assert.equal(await roundTrip(`${base}/b`, 'hi', true), 'b:hi');
  await assert.rejects(
    connect(`${base}/c`, { logger: false, heartbeat: false, http2: true }),
    is404,
  );
  assert.deepEqual(
    log.lines.filter((line) => /already|failed/i.test(line)),
    [],
    log.lines.join('\n'),
  );
});
