import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import diagnosticsChannel from 'node:diagnostics_channel';
import { WebSocketServer, reject } from '../../src/node/server.js';
import { WebSocket } from '../../src/node/websocket.js';
import { connect } from '../../src/node/client.js';
import { LocalProtocolError, UnexpectedResponseError } from '../../src/core/errors.js';
import {
  RawClient,
  SAMPLE_ACCEPT,
  afterHead,
  clientFrame,
  serverFrames,
  startServer,
  upgradeRequest,
  echo,
} from '../helpers/server.js';

function nextMessage(ws: WebSocket): Promise<[string | Buffer, boolean]> {
  return once(ws, 'message') as Promise<[string | Buffer, boolean]>;
}

test('answers a valid upgrade with 101 and the RFC 6455 §1.3 accept value', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(s.port));
  const res = await raw.readHead();
  assert.equal(res.status, 101);
  assert.equal(res.headers['upgrade'], 'websocket');
  assert.equal(res.headers['connection'].toLowerCase(), 'upgrade');
  assert.equal(res.headers['sec-websocket-accept'], SAMPLE_ACCEPT);
  assert.equal(res.headers['sec-websocket-protocol'], undefined);
});

test('echoes text, binary and a 1 MiB message to our client', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  echo(s.server);
  const ws = await connect(s.url);
  t.after(() => ws.terminate());
  ws.send('héllo wörld ✓');
  assert.deepEqual(await nextMessage(ws), ['héllo wörld ✓', false]);
  ws.send(Buffer.from([0, 1, 2, 255]));
  const [bin, isBinary] = await nextMessage(ws);
  assert.equal(isBinary, true);
  assert.deepEqual([...(bin as Buffer)], [0, 1, 2, 255]);
  const big = Buffer.alloc(1024 * 1024, 7);
  ws.send(big);
  const [echoed] = await nextMessage(ws);
  assert.ok(big.equals(echoed as Buffer));
  ws.send(new Uint16Array([1, 2]));
  const [view] = await nextMessage(ws);
  assert.equal((view as Buffer).length, 4);
});

test('plain HTTP requests to the standalone server get 426 naming websocket (RFC 9110 §15.5.22)', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const res = await fetch(`http://127.0.0.1:${s.port}/`);
  assert.equal(res.status, 426);
  assert.equal(res.headers.get('upgrade'), 'websocket');
  assert.match(await res.text(), /websocket/);
});

const rejections: Array<
  [
    string,
    Record<string, string | null>,
    string | undefined,
    number,
    RegExp,
    Record<string, string>?,
  ]
> = [
  [
    'a missing Sec-WebSocket-Key',
    { 'Sec-WebSocket-Key': null },
    undefined,
    400,
    /Sec-WebSocket-Key/i,
  ],
  [
    'a key of 15 bytes',
    { 'Sec-WebSocket-Key': 'AAAAAAAAAAAAAAAAAAAA' },
    undefined,
    400,
    /Sec-WebSocket-Key/i,
  ],
  [
    'version 8',
    { 'Sec-WebSocket-Version': '8' },
    undefined,
    426,
    /13/,
    { 'sec-websocket-version': '13' },
  ],
  [
    'a missing version',
    { 'Sec-WebSocket-Version': null },
    undefined,
    426,
    /Version/i,
    { 'sec-websocket-version': '13' },
  ],
  ['Connection without upgrade', { Connection: 'keep-alive' }, undefined, 426, /./],
  ['a POST', {}, 'POST /chat HTTP/1.1', 405, /GET/],
  [
    'a malformed subprotocol list',
    { 'Sec-WebSocket-Protocol': 'a b' },
    undefined,
    400,
    /Protocol/i,
  ],
  [
    'a malformed extension offer',
    { 'Sec-WebSocket-Extensions': 'x; =' },
    undefined,
    400,
    /Extensions/i,
  ],
];
for (const [what, overrides, line, status, body, headers] of rejections) {
  test(`rejects ${what} with ${status} and a body that says why`, async (t) => {
    const s = await startServer();
    t.after(() => s.close());
    const rejected: string[] = [];
    s.server.on('rejected', (error) => rejected.push(error.code));
    const raw = await RawClient.connect(s.port);
    t.after(() => raw.destroy());
    raw.write(upgradeRequest(s.port, overrides, line));
    const res = await raw.readHead();
    assert.equal(res.status, status, res.head);
    assert.match(res.body.toString(), body);
    for (const [name, value] of Object.entries(headers ?? {}))
      assert.equal(res.headers[name], value);
    if (status !== 426 || what !== 'Connection without upgrade') assert.equal(rejected.length, 1);
    await raw.closed();
  });
}

test('rejects a cross-site Origin with 403 by default, and accepts same-origin and no Origin', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(s.port, { Origin: 'https://evil.example' }));
  assert.equal((await raw.readHead()).status, 403);
  const same = await connect(s.url, { origin: `http://127.0.0.1:${s.port}` });
  same.terminate();
  const none = await connect(s.url);
  none.terminate();
});

test('an Origin allow-list and origin "any" widen the policy', async (t) => {
  const listed = await startServer({ origin: ['https://app.example'] });
  t.after(() => listed.close());
  (await connect(listed.url, { origin: 'https://app.example' })).terminate();
  await assert.rejects(
    connect(listed.url, { origin: 'https://other.example' }),
    (e: unknown) => e instanceof UnexpectedResponseError && e.statusCode === 403,
  );
  const any = await startServer({ origin: 'any' });
  t.after(() => any.close());
  (await connect(any.url, { origin: 'https://other.example' })).terminate();
});

test('answers 404 for a path it does not serve', async (t) => {
  const s = await startServer({ path: ['/a', '/b'] });
  t.after(() => s.close());
  (await connect(`${s.url}/b`)).terminate();
  await assert.rejects(
    connect(`${s.url}/c`),
    (e: unknown) =>
      e instanceof UnexpectedResponseError &&
      e.statusCode === 404 &&
      /\/c/.test(Buffer.from(e.body).toString()),
  );
});

test('chooses the subprotocol by server preference, never one the client did not offer', async (t) => {
  const s = await startServer({ protocols: ['v2.chat', 'v1.chat'] });
  t.after(() => s.close());
  const a = await connect(s.url, { protocols: ['v1.chat', 'v2.chat'] });
  assert.equal(a.protocol, 'v2.chat');
  a.terminate();
  const b = await connect(s.url, { protocols: ['other'] });
  assert.equal(b.protocol, '');
  b.terminate();
  const c = await connect(s.url);
  assert.equal(c.protocol, '');
  c.terminate();
});

test('a protocols callback picks among the offered ones', async (t) => {
  const s = await startServer({ protocols: (offered) => offered.at(-1) });
  t.after(() => s.close());
  const ws = await connect(s.url, { protocols: ['a', 'b', 'c'] });
  assert.equal(ws.protocol, 'c');
  ws.terminate();
});

test('the async upgrade hook can reject with status, headers and body', async (t) => {
  const s = await startServer({
    onUpgrade: async (req) => {
      await new Promise((r) => setTimeout(r, 10));
      if (req.headers.authorization !== 'Bearer good') {
        return reject(401, 'Log in first', { 'WWW-Authenticate': 'Bearer' });
      }
      return { context: { user: 'ada' } };
    },
  });
  t.after(() => s.close());
  const err = await connect(s.url).catch((e: unknown) => e);
  assert.ok(err instanceof UnexpectedResponseError);
  assert.equal(err.statusCode, 401);
  assert.equal(err.responseHeaders['www-authenticate'], 'Bearer');
  assert.equal(Buffer.from(err.body).toString(), 'Log in first');
  assert.equal(err.code, 'SWITCHYARD_ERR_HANDSHAKE_STATUS');

  const opened = once(s.server, 'connection');
  const ws = await connect(s.url, { headers: { Authorization: 'Bearer good' } });
  t.after(() => ws.terminate());
  const [serverSide] = (await opened) as [WebSocket];
  assert.deepEqual(serverSide.context, { user: 'ada' });
});

test('the hook can add headers to the 101 and override the subprotocol', async (t) => {
  const s = await startServer({
    protocols: ['a', 'b'],
    onUpgrade: () => ({ headers: { 'X-Session': '42' }, protocol: 'b' }),
  });
  t.after(() => s.close());
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(s.port, { 'Sec-WebSocket-Protocol': 'a, b' }));
  const res = await raw.readHead();
  assert.equal(res.status, 101);
  assert.equal(res.headers['x-session'], '42');
  assert.equal(res.headers['sec-websocket-protocol'], 'b');
});

test('a hook that throws gets 500 and the server keeps serving', async (t) => {
  let calls = 0;
  const s = await startServer({
    onUpgrade: () => {
      calls++;
      if (calls === 1) throw new Error('database down');
    },
  });
  t.after(() => s.close());
  await assert.rejects(
    connect(s.url),
    (e: unknown) => e instanceof UnexpectedResponseError && e.statusCode === 500,
  );
  (await connect(s.url)).terminate();
});

test('a hook that never finishes is cut off by handshakeTimeout with 503', async (t) => {
  const s = await startServer({ handshakeTimeout: 100, onUpgrade: () => new Promise(() => {}) });
  t.after(() => s.close());
  await assert.rejects(
    connect(s.url),
    (e: unknown) => e instanceof UnexpectedResponseError && e.statusCode === 503,
  );
});

test('a client that goes away while the hook awaits aborts the hook signal and leaks nothing', async (t) => {
  let aborted: Promise<unknown> | null = null;
  let release: () => void = () => {};
  const s = await startServer({
    onUpgrade: (_req, info) => {
      aborted = once(info.signal, 'abort');
      return new Promise<void>((resolve) => {
        release = resolve;
      });
    },
  });
  t.after(() => s.close());
  const raw = await RawClient.connect(s.port);
  raw.write(upgradeRequest(s.port));
  for (let i = 0; i < 100 && aborted === null; i++) await new Promise((r) => setTimeout(r, 10));
  raw.destroy();
  await aborted;
  release();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(s.server.clients.size, 0);
});

test('calling handleUpgrade twice for one socket is a clear error', async (t) => {
  const wss = new WebSocketServer({ logger: false });
  const httpServer = http.createServer();
  const errors: unknown[] = [];
  httpServer.on('upgrade', (req, socket, head) => {
    void wss.handleUpgrade(req, socket, head);
    wss.handleUpgrade(req, socket, head).catch((e: unknown) => errors.push(e));
  });
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  t.after(() => httpServer.close());
  t.after(() => wss.close());
  const port = (httpServer.address() as { port: number }).port;
  const ws = await connect(`ws://127.0.0.1:${port}`);
  ws.terminate();
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof LocalProtocolError);
  assert.equal((errors[0] as LocalProtocolError).code, 'SWITCHYARD_ERR_ALREADY_HANDLED');
});

test('passing both server and port is a clear error', () => {
  assert.throws(
    () => new WebSocketServer({ server: http.createServer(), port: 1 }),
    LocalProtocolError,
  );
});

test('attaches to an existing HTTP server that keeps serving plain requests', async (t) => {
  const httpServer = http.createServer((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ server: httpServer, logger: false });
  echo(wss);
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => httpServer.close(r)));
  t.after(() => wss.close());
  const port = (httpServer.address() as { port: number }).port;
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'plain');
  const ws = await connect(`ws://127.0.0.1:${port}/`);
  ws.send('via attached');
  assert.deepEqual(await nextMessage(ws), ['via attached', false]);
  ws.terminate();
});

test('switches to a registered non-WebSocket protocol, first in the client order (RFC 9110 §7.8)', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  s.server.registerProtocol('line-echo/1', (socket, head) => {
    socket.write(Buffer.concat([Buffer.from('head:'), head]));
    socket.on('data', (chunk: Buffer) => socket.write(chunk));
  });
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.write(
    `GET / HTTP/1.1\r\nHost: x\r\nUpgrade: unknown/9, line-echo/1, websocket\r\nConnection: keep-alive, Upgrade\r\n\r\nearly`,
  );
  await raw.waitFor((b) => b.includes('head:early'));
  const text = raw.received.toString();
  assert.match(text, /^HTTP\/1\.1 101 /);
  assert.match(text, /\r\nUpgrade: line-echo\/1\r\n/i);
  assert.match(text, /\r\nConnection: Upgrade\r\n/i);
  raw.write('ping!');
  await raw.waitFor((b) => b.includes('ping!'));
});

test('fails a connection with 1009 when a message passes maxPayload, and serves others', async (t) => {
  const s = await startServer({ maxPayload: 1000 });
  t.after(() => s.close());
  echo(s.server);
  const other = await connect(s.url);
  t.after(() => other.terminate());
  const ws = await connect(s.url);
  const closed = once(ws, 'close');
  ws.send(Buffer.alloc(1001));
  const [code] = await closed;
  assert.equal(code, 1009);
  other.send('still here');
  assert.deepEqual(await nextMessage(other), ['still here', false]);
});

test('a protocol error from the peer closes with 1002 and never crashes, even with no error listener', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(s.port));
  await raw.readHead();
  // RSV1 set without compression negotiated.
  raw.write(clientFrame(1, 'x', true, 4));
  await raw.closed();
  const frames = serverFrames(afterHead(raw.received));
  assert.equal(frames.at(-1)?.opcode, 8);
  assert.equal(frames.at(-1)?.payload.readUInt16BE(0), 1002);
});

test('the server answers pings and completes a close started by a raw client, closing TCP first', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(s.port));
  await raw.readHead();
  raw.write(clientFrame(9, 'hi'));
  const close = Buffer.alloc(5);
  close.writeUInt16BE(4000, 0);
  close.write('bye', 2);
  raw.write(clientFrame(8, close));
  await raw.closed();
  const frames = serverFrames(afterHead(raw.received));
  assert.deepEqual(
    frames.map((f) => [f.opcode, f.payload.toString('latin1')]),
    [
      [10, 'hi'],
      [8, Buffer.from([0x0f, 0xa0]).toString('latin1')],
    ],
  );
});

test('close codes and reasons reach both sides, with wasClean', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const serverClosed = new Promise<[number, string, boolean]>((resolve) =>
    s.server.on('connection', (ws) => ws.on('close', (...args) => resolve(args))),
  );
  const ws = await connect(s.url);
  const clientClosed = once(ws, 'close');
  ws.close(4001, 'done here');
  assert.deepEqual(await serverClosed, [4001, 'done here', true]);
  assert.deepEqual(await clientClosed, [4001, '', true]);
  assert.equal(ws.readyState, WebSocket.CLOSED);
});

test('an exception in a message listener closes that connection with 1011 and the server carries on', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  s.server.on('connection', (ws) =>
    ws.on('message', (data) => {
      if (data === 'boom') throw new Error('bug in the app');
      ws.send(data);
    }),
  );
  const bad = await connect(s.url);
  const closed = once(bad, 'close');
  bad.send('boom');
  assert.equal((await closed)[0], 1011);
  const good = await connect(s.url);
  good.send('fine');
  assert.deepEqual(await nextMessage(good), ['fine', false]);
  good.terminate();
});

test('the heartbeat terminates a peer that never answers pings, and keeps a live one', async (t) => {
  // Margins wide enough that a busy machine still answers pings in time.
  const s = await startServer({ heartbeat: { interval: 150, timeout: 400 } });
  t.after(() => s.close());
  const errors: string[] = [];
  s.server.on('connection', (ws) =>
    ws.on('error', (e) => errors.push((e as { code: string }).code)),
  );
  const live = await connect(s.url, { heartbeat: false });
  t.after(() => live.terminate());
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(s.port));
  await raw.readHead();
  await raw.closed(3000);
  const pings = serverFrames(afterHead(raw.received)).filter((f) => f.opcode === 9);
  assert.ok(pings.length >= 1, 'it was pinged first');
  assert.deepEqual(errors, ['SWITCHYARD_ERR_IDLE_TIMEOUT']);
  assert.equal(live.readyState, WebSocket.OPEN, 'our client answered every ping');
});

test('close() shuts down gracefully with 1001 and resolves when the clients are gone', async (t) => {
  const s = await startServer();
  const a = await connect(s.url);
  const b = await connect(s.url);
  const codes = Promise.all([once(a, 'close'), once(b, 'close')]);
  await s.server.close();
  const [[codeA], [codeB]] = await codes;
  assert.equal(codeA, 1001);
  assert.equal(codeB, 1001);
  assert.equal(s.server.clients.size, 0);
  await assert.rejects(fetch(`http://127.0.0.1:${s.port}/`));
  t.diagnostic('closed');
});

test('close() is bounded by its timeout when a peer never answers the close frame', async () => {
  const s = await startServer();
  const raw = await RawClient.connect(s.port);
  raw.write(upgradeRequest(s.port));
  await raw.readHead();
  await s.server.close({ timeout: 200 });
  await raw.closed();
  raw.destroy();
});

test('answers 503 past maxConnections', async (t) => {
  const s = await startServer({ maxConnections: 1 });
  t.after(() => s.close());
  const codes: string[] = [];
  s.server.on('rejected', (error) => codes.push(error.code));
  const first = await connect(s.url);
  t.after(() => first.terminate());
  await assert.rejects(
    connect(s.url),
    (e: unknown) => e instanceof UnexpectedResponseError && e.statusCode === 503,
  );
  assert.deepEqual(codes, ['SWITCHYARD_ERR_SERVER_LIMIT']);
});

test('send returns false past highWaterMark, and drain follows once the reader catches up', async (t) => {
  const s = await startServer({ highWaterMark: 64 * 1024 });
  t.after(() => s.close());
  const opened = once(s.server, 'connection');
  const client = await connect(s.url);
  t.after(() => client.terminate());
  const [ws] = (await opened) as [WebSocket];
  client.pause();
  let sent = 0;
  const chunk = Buffer.alloc(16 * 1024);
  while (ws.send(chunk) && sent < 10_000) sent++;
  assert.ok(ws.bufferedAmount >= 64 * 1024);
  let received = 0;
  client.on('message', () => received++);
  client.resume();
  await ws.drained();
  assert.ok(ws.bufferedAmount < 64 * 1024);
  assert.ok(sent < 10_000);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(received > 0);
});

test('fails with SWITCHYARD_ERR_BUFFER_FULL when a reader never reads past maxBufferedAmount', async (t) => {
  const s = await startServer({ maxBufferedAmount: 256 * 1024 });
  t.after(() => s.close());
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.socket.pause();
  const opened = once(s.server, 'connection');
  raw.write(upgradeRequest(s.port));
  const [ws] = (await opened) as [WebSocket];
  const errors: string[] = [];
  ws.on('error', (e) => errors.push((e as { code: string }).code));
  const closed = new Promise((resolve) => ws.on('close', resolve));
  const chunk = Buffer.alloc(64 * 1024);
  for (let i = 0; i < 2000 && ws.readyState === WebSocket.OPEN; i++) {
    ws.send(chunk);
    await new Promise((r) => setImmediate(r));
  }
  await closed;
  assert.deepEqual(errors, ['SWITCHYARD_ERR_BUFFER_FULL']);
});

test('for await pauses the socket while messages wait unread, and resumes as they are read', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const opened = once(s.server, 'connection');
  const client = await connect(s.url, { maxQueuedMessages: 8 });
  t.after(() => client.terminate());
  const [ws] = (await opened) as [WebSocket];
  for (let i = 0; i < 50; i++) ws.send(`m${i}`);
  const iterator = client[Symbol.asyncIterator]();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(client.socket.isPaused(), true);
  const seen: string[] = [];
  for (let i = 0; i < 50; i++) seen.push(String((await iterator.next()).value.data));
  assert.deepEqual(
    seen,
    Array.from({ length: 50 }, (_, i) => `m${i}`),
  );
  assert.equal(client.socket.isPaused(), false);
  ws.close(1000);
  assert.equal((await iterator.next()).done, true);
});

test('sendStream sends a message in fragments that arrive as one', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  echo(s.server);
  const ws = await connect(s.url);
  t.after(() => ws.terminate());
  async function* parts() {
    for (let i = 0; i < 5; i++) yield Buffer.from(`part${i};`);
  }
  await ws.sendStream(parts(), { binary: false });
  assert.deepEqual(await nextMessage(ws), ['part0;part1;part2;part3;part4;', false]);
});

test('publishes open, close and handshake-rejected on diagnostics_channel', async (t) => {
  const seen: string[] = [];
  const onOpen = () => seen.push('open');
  const onClose = () => seen.push('close');
  const onRejected = (msg: unknown) => seen.push(`rejected:${(msg as { status: number }).status}`);
  diagnosticsChannel.subscribe('switchyard:open', onOpen);
  diagnosticsChannel.subscribe('switchyard:close', onClose);
  diagnosticsChannel.subscribe('switchyard:handshake-rejected', onRejected);
  t.after(() => {
    diagnosticsChannel.unsubscribe('switchyard:open', onOpen);
    diagnosticsChannel.unsubscribe('switchyard:close', onClose);
    diagnosticsChannel.unsubscribe('switchyard:handshake-rejected', onRejected);
  });
  const s = await startServer({ path: '/only' });
  t.after(() => s.close());
  await connect(`${s.url}/nope`).catch(() => {});
  const ws = await connect(`${s.url}/only`);
  const closed = once(ws, 'close');
  ws.close(1000);
  await closed;
  await new Promise((r) => setTimeout(r, 20));
  assert.ok(seen.includes('rejected:404'), seen.join());
  assert.ok(seen.filter((x) => x === 'open').length >= 2, seen.join());
  assert.ok(seen.filter((x) => x === 'close').length >= 1, seen.join());
});

test('logs one line per rejected handshake through the logger option', async (t) => {
  const lines: string[] = [];
  const s = await startServer({
    logger: { warn: (m) => lines.push(m), error: (m) => lines.push(m) },
  });
  t.after(() => s.close());
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(s.port, { 'Sec-WebSocket-Version': '7' }));
  await raw.readHead();
  assert.equal(lines.length, 1);
  assert.match(lines[0], /426/);
});

test('a server used only through handleUpgrade runs its heartbeat too', async (t) => {
  const wss = new WebSocketServer({ logger: false, heartbeat: { interval: 150, timeout: 400 } });
  const httpServer = http.createServer();
  httpServer.on('upgrade', (req, socket, head) => void wss.handleUpgrade(req, socket, head));
  await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
  const port = (httpServer.address() as { port: number }).port;
  t.after(() => new Promise((r) => httpServer.close(r)));
  t.after(() => wss.close({ timeout: 200 }));
  const raw = await RawClient.connect(port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(port));
  await raw.readHead();
  await raw.closed(3000);
  assert.ok(
    serverFrames(afterHead(raw.received)).some((f) => f.opcode === 9),
    'it was pinged',
  );
});

test('a peer that never answers our close frame is dropped after closeTimeout with SWITCHYARD_ERR_CLOSE_TIMEOUT', async (t) => {
  const s = await startServer({ closeTimeout: 200 });
  t.after(() => s.close());
  const opened = once(s.server, 'connection');
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(s.port));
  const [ws] = (await opened) as [WebSocket];
  const errors: string[] = [];
  ws.on('error', (e) => errors.push((e as { code: string }).code));
  const closed = new Promise<[number, string, boolean]>((resolve) =>
    ws.on('close', (...args) => resolve(args)),
  );
  ws.close(1000, 'bye');
  const [code, , wasClean] = await closed;
  assert.deepEqual(errors, ['SWITCHYARD_ERR_CLOSE_TIMEOUT']);
  assert.equal(code, 1006);
  assert.equal(wasClean, false);
  await raw.closed();
});

test('textAsBuffer delivers text as a Buffer, still marked as text', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  echo(s.server);
  const ws = await connect(s.url, { textAsBuffer: true });
  t.after(() => ws.terminate());
  ws.send('héllo');
  const [data, isBinary] = await nextMessage(ws);
  assert.ok(Buffer.isBuffer(data));
  assert.equal(data.toString('utf8'), 'héllo');
  assert.equal(isBinary, false);
});

test('text given as bytes must be UTF-8: short (checked in JS) and long (checked natively) alike', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  echo(s.server);
  const ws = await connect(s.url);
  t.after(() => ws.terminate());
  // Invalid: a lone continuation byte, an overlong form, a surrogate, a truncated sequence,
  // each alone (below 64 bytes) and after 100 bytes of ASCII (the native validator's range).
  const invalid = ['80', 'c0 af', 'ed a0 80', 'e2 82'].map((hex) =>
    Buffer.from(hex.replace(/ /g, ''), 'hex'),
  );
  for (const bad of invalid) {
    for (const bytes of [bad, Buffer.concat([Buffer.alloc(100, 0x61), bad])]) {
      assert.throws(
        () => ws.send(bytes, { binary: false }),
        (e: unknown) =>
          e instanceof LocalProtocolError && e.code === 'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `${bytes.length} bytes ending ${bad.toString('hex')}`,
      );
    }
  }
  // Valid text as bytes goes out as text, short and long.
  for (const text of ['héllo ✓ 𝄞', `${'a'.repeat(100)}héllo ✓ 𝄞`]) {
    ws.send(Buffer.from(text), { binary: false });
    assert.deepEqual(await nextMessage(ws), [text, false]);
  }
});

test('a text sent in fragments of bytes may split a character between them (RFC 6455 §5.6)', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  echo(s.server);
  const ws = await connect(s.url);
  t.after(() => ws.terminate());
  const e = Buffer.from('é'); // c3 a9
  // A character split between two fragments.
  ws.send(e.subarray(0, 1), { binary: false, fin: false });
  ws.send(e.subarray(1), { binary: false, fin: true });
  assert.deepEqual(await nextMessage(ws), ['é', false]);
  // sendStream of text read in chunks that cut characters, as a file stream does.
  const text = `${'a'.repeat(100)}é✓𝄞`.repeat(20);
  const bytes = Buffer.from(text);
  async function* chunks() {
    for (let at = 0; at < bytes.length; at += 7) yield bytes.subarray(at, at + 7);
  }
  await ws.sendStream(chunks(), { binary: false });
  assert.deepEqual(await nextMessage(ws), [text, false]);
  // A fragment that cannot continue the text is refused and not sent; the message goes on.
  const refused = (e: unknown) =>
    e instanceof LocalProtocolError && e.code === 'SWITCHYARD_ERR_INVALID_ARGUMENT';
  ws.send(e.subarray(0, 1), { binary: false, fin: false });
  assert.throws(() => ws.send('a', { binary: false, fin: false }), refused);
  assert.throws(() => ws.send(Buffer.from([0x41]), { binary: false, fin: true }), refused);
  // A last fragment may not end inside a character either.
  assert.throws(() => ws.send(Buffer.from([0xa9, 0xe2, 0x9c]), { binary: false }), refused);
  ws.send(e.subarray(1), { binary: false, fin: true });
  assert.deepEqual(await nextMessage(ws), ['é', false]);
  // The next message starts afresh.
  assert.throws(() => ws.send(e.subarray(1), { binary: false }), refused);
  ws.send(e, { binary: false });
  assert.deepEqual(await nextMessage(ws), ['é', false]);
});
