// Proves the real-peer harness (test/helpers/peers.ts) against the `ws` package, so that a
// failure once it points at Switchyard means Switchyard, not the harness.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import {
  browserWebSocketScenario,
  freePort,
  fromWire,
  launchChromium,
  pingRedis,
  pythonWebsockets,
  redisServer,
  runPythonClient,
  serveStaticPage,
  skipUnlessAvailable,
  startPythonServer,
  startRedis,
} from '../helpers/peers.js';

const MULTILINGUAL = 'Grüße, 世界! Привет, мир. مرحبا 👋🏽 ';
const ONE_MIB = randomBytes(1024 * 1024);

interface EchoServer {
  url: string;
  /** Close code and reason each connection ended with, as the server saw them. */
  closes: Array<{ code: number; reason: string }>;
  origins: Array<string | undefined>;
  received: Array<string | Buffer>;
}

/** A `ws` echo server on 127.0.0.1, closed by the test that started it. */
async function startWsEchoServer(t: TestContext): Promise<EchoServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 64 * 1024 * 1024 });
  await once(wss, 'listening');
  const server: EchoServer = {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`,
    closes: [],
    origins: [],
    received: [],
  };
  wss.on('connection', (ws, req) => {
    server.origins.push(req.headers.origin);
    ws.on('message', (data: Buffer, isBinary) => {
      server.received.push(isBinary ? data : data.toString('utf8'));
      ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code, reason) => server.closes.push({ code, reason: reason.toString('utf8') }));
  });
  t.after(async () => {
    for (const client of wss.clients) client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });
  return server;
}

/** Waits (bounded) until `predicate` holds. */
async function until(what: string, predicate: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 1000 && !predicate(); i++) {
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(predicate(), `timed out after ${timeoutMs} ms waiting for ${what}`);
}

test('a ws server echoes text, a 1 MiB binary and UTF-8 text sent by the Python client', async (t) => {
  if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
  const server = await startWsEchoServer(t);
  const messages = ['hello', ONE_MIB, MULTILINGUAL, '', Buffer.alloc(0)];

  const run = await runPythonClient(server.url, 'echo', { messages });

  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  assert.deepEqual(fromWire(run.result.received), messages);
  assert.deepEqual(server.received, messages);
  assert.deepEqual(run.result.close, { code: 1000, reason: '' });
});

test('a close code and reason from the Python client come back from a ws server', async (t) => {
  if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
  const server = await startWsEchoServer(t);

  const run = await runPythonClient(server.url, 'close', { code: 4001, reason: 'done ✓' });

  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  assert.deepEqual(run.result.close, { code: 4001, reason: 'done ✓' });
  await until('the server to see the close', () => server.closes.length === 1);
  assert.deepEqual(server.closes, [{ code: 4001, reason: 'done ✓' }]);
});

test('a ping from the Python client gets a pong from a ws server', async (t) => {
  if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
  const server = await startWsEchoServer(t);

  const run = await runPythonClient(server.url, 'ping', { count: 3 });

  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  assert.equal(run.result.rtts_ms.length, 3);
  assert.ok(run.result.rtt_ms >= 0 && run.result.rtt_ms < 10_000, String(run.result.rtt_ms));
});

test('the Python client exits 3 when nothing listens', async (t) => {
  if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
  const url = `ws://127.0.0.1:${await freePort()}/`;

  const run = await runPythonClient(url, 'echo', { messages: ['x'] });

  assert.equal(run.code, 3, run.stdout);
  assert.equal(run.result.ok, false);
  assert.equal(run.result.stage, 'connect');
});

test('the Python server echoes what a ws client sends and closes on request', async (t) => {
  if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
  const server = await startPythonServer('echo');
  t.after(() => server.stop());
  const ws = new WebSocket(server.url, { perMessageDeflate: false });
  t.after(() => ws.terminate());
  const received: Array<string | Buffer> = [];
  ws.on('message', (data: Buffer, isBinary) => received.push(isBinary ? data : data.toString()));
  const closed = once(ws, 'close');
  await once(ws, 'open');

  const messages = ['hello', ONE_MIB, MULTILINGUAL];
  for (const m of messages) ws.send(m);
  await until('3 echoes', () => received.length === 3);
  ws.send('close:4002:bye from python');
  const [code, reason] = (await closed) as [number, Buffer];

  assert.deepEqual(received, messages);
  assert.equal(code, 4002);
  assert.equal(reason.toString(), 'bye from python');
  const [seen] = await server.waitForClosedConnections(1);
  assert.deepEqual(seen, { code: 4002, reason: 'bye from python', subprotocol: null });
});

test('the Python server negotiates permessage-deflate and a subprotocol when asked', async (t) => {
  if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
  const server = await startPythonServer('echo', {
    compression: 'deflate',
    subprotocols: ['chat.v2', 'chat.v1'],
  });
  t.after(() => server.stop());
  const ws = new WebSocket(server.url, ['chat.v1'], { perMessageDeflate: true });
  t.after(() => ws.terminate());
  await once(ws, 'open');

  assert.match(ws.extensions, /permessage-deflate/);
  assert.equal(ws.protocol, 'chat.v1');
  ws.send('x'.repeat(100_000));
  const [echo] = (await once(ws, 'message')) as [Buffer];
  assert.equal(echo.toString(), 'x'.repeat(100_000));
  ws.close(1000);
  await once(ws, 'close');
});

test('Chromium exchanges text and binary with a ws server and both see 4000 "bye"', async (t) => {
  const chromium = await launchChromium();
  if (!skipUnlessAvailable(t, chromium)) return;
  t.after(() => chromium.browser.close());
  const server = await startWsEchoServer(t);
  const pageServer = await serveStaticPage('<!doctype html><title>switchyard interop</title>');
  t.after(() => pageServer.close());
  const page = await chromium.browser.newPage();
  await page.goto(pageServer.url);

  const binary = Buffer.from([0, 1, 2, 253, 254, 255]);
  const seen = await browserWebSocketScenario(page, server.url, [
    { send: MULTILINGUAL },
    { sendBinary: binary },
    { waitForMessages: 2 },
    { close: { code: 4000, reason: 'bye' } },
    { waitForClose: true },
  ]);

  assert.deepEqual(seen.errors, []);
  assert.equal(seen.opened, true);
  assert.deepEqual(seen.messages, [MULTILINGUAL, binary]);
  assert.deepEqual(seen.close, { code: 4000, reason: 'bye', wasClean: true });
  await until('the server to see the close', () => server.closes.length === 1);
  assert.deepEqual(server.closes, [{ code: 4000, reason: 'bye' }]);
  assert.deepEqual(server.received, [MULTILINGUAL, binary]);
  assert.deepEqual(server.origins, [pageServer.url.replace(/\/$/, '')]);
});

test('redis-server starts on a free port, answers PING and stops', async (t) => {
  if (!skipUnlessAvailable(t, await redisServer())) return;
  const redis = await startRedis();
  t.after(() => redis.stop());

  assert.equal(await pingRedis(redis.port), true);
  await redis.stop();
  assert.equal(await pingRedis(redis.port), false);
});
