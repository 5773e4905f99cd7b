/**
 * WebSockets over HTTP/2 (RFC 8441) end to end: our client against our server on cleartext
 * HTTP/2 and on TLS with `allowHTTP1` (both protocols on one port), rejections as real HTTP/2
 * responses, many WebSockets on one session, and resets (RST_STREAM, GOAWAY) mid-message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect } from '../../src/node/client.js';
import { reject, WebSocketServer, type ServerOptions } from '../../src/node/server.js';
import type { WebSocket } from '../../src/node/websocket.js';
import { ConnectionError, UnexpectedResponseError } from '../../src/core/errors.js';
import { skipUnlessAvailable } from '../helpers/peers.js';
import { selfSignedCertificate } from '../helpers/tls.js';

interface H2Server {
  server: http2.Http2Server | http2.Http2SecureServer;
  wss: WebSocketServer;
  port: number;
  /** Every stream the http2 server saw, with its headers (to check the transport). */
  streams: http2.IncomingHttpHeaders[];
}

/** A cleartext HTTP/2 server on 127.0.0.1 with a WebSocketServer attached, closed by `t.after`. */
async function startH2(
  t: { after(fn: () => unknown): void },
  options: ServerOptions = {},
  secure?: { key: Buffer; cert: Buffer },
): Promise<H2Server> {
  const server = secure
    ? http2.createSecureServer({ ...secure, allowHTTP1: true }, (_req, res) => res.end('page'))
    : http2.createServer();
  const streams: http2.IncomingHttpHeaders[] = [];
  server.on('stream', (_stream, headers) => streams.push(headers));
  const wss = new WebSocketServer({ logger: false, heartbeat: false, ...options, server });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const sessions = new Set<http2.Http2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  t.after(async () => {
    await wss.close({ timeout: 200 });
    for (const session of sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { server, wss, port: (server.address() as AddressInfo).port, streams };
}

function echo(ws: WebSocket): void {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

const quiet = { logger: false as const, heartbeat: false as const, handshakeTimeout: 5000 };

test('our client and server speak WebSocket over a cleartext HTTP/2 stream', async (t) => {
  const s = await startH2(t, { protocols: ['chat'] });
  const seen: Array<{ version: string; url: string }> = [];
  s.wss.on('connection', (ws, req) => {
    seen.push({ version: req.httpVersion, url: ws.url });
    echo(ws);
  });
  const ws = await connect(`ws://127.0.0.1:${s.port}/room?x=1`, {
    ...quiet,
    http2: true,
    protocols: ['chat'],
  });
  t.after(() => ws.terminate());
  assert.equal(ws.protocol, 'chat');
  ws.send('over h2');
  const [data] = await once(ws, 'message');
  assert.equal(data, 'over h2');
  ws.send(Buffer.alloc(70_000, 7));
  const [big, isBinary] = await once(ws, 'message');
  assert.equal(isBinary, true);
  assert.equal((big as Buffer).length, 70_000);
  assert.deepEqual(seen, [{ version: '2.0', url: `ws://127.0.0.1:${s.port}/room?x=1` }]);
  assert.equal(s.streams[0][':protocol'], 'websocket');
  ws.close(1000, 'done');
  const [code, , wasClean] = await once(ws, 'close');
  assert.equal(code, 1000);
  assert.equal(wasClean, true);
  await waitFor(() => s.wss.clients.size === 0, 'the server to forget the connection');
});

test('the server advertises SETTINGS_ENABLE_CONNECT_PROTOCOL only once a WebSocketServer is attached', async (t) => {
  const bare = http2.createServer();
  bare.listen(0, '127.0.0.1');
  await once(bare, 'listening');
  t.after(() => new Promise<void>((resolve) => bare.close(() => resolve())));
  const settingsOf = async (port: number) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const [settings] = (await once(session, 'remoteSettings')) as [http2.Settings];
    session.destroy();
    return settings.enableConnectProtocol === true;
  };
  assert.equal(await settingsOf((bare.address() as AddressInfo).port), false);
  const s = await startH2(t);
  assert.equal(await settingsOf(s.port), true);
});

test('one HTTP/2 server on one port takes HTTP/1.1 upgrades and HTTP/2 WebSockets', async (t) => {
  const tls = selfSignedCertificate();
  if (!skipUnlessAvailable(t, tls)) return;
  const s = await startH2(t, {}, tls);
  const versions: string[] = [];
  s.wss.on('connection', (ws, req) => {
    versions.push(req.httpVersion);
    echo(ws);
  });
  const url = `wss://localhost:${s.port}/`;
  const h1 = await connect(url, { ...quiet, tls: { ca: tls.cert } });
  const h2 = await connect(url, { ...quiet, tls: { ca: tls.cert }, http2: true });
  t.after(() => {
    h1.terminate();
    h2.terminate();
  });
  for (const ws of [h1, h2]) {
    ws.send('both');
    const [data] = await once(ws, 'message');
    assert.equal(data, 'both');
  }
  assert.deepEqual(versions, ['1.1', '2.0']);
  assert.equal(h1.secure, true);
  assert.equal(h2.secure, true, 'a stream of a TLS HTTP/2 session is secure too');
});

test('falls back to HTTP/1.1 when the server does not advertise extended CONNECT', async (t) => {
  const tls = selfSignedCertificate();
  if (!skipUnlessAvailable(t, tls)) return;
  // An https server: ALPN picks http/1.1, so there is no HTTP/2 at all.
  const https = await import('node:https');
  const server = https.createServer({ key: tls.key, cert: tls.cert });
  const wss = new WebSocketServer({ ...quiet, server });
  wss.on('connection', echo);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    await wss.close({ timeout: 200 });
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  const ws = await connect(`wss://localhost:${port}/`, {
    ...quiet,
    tls: { ca: tls.cert },
    http2: true,
  });
  t.after(() => ws.terminate());
  ws.send('fallback');
  assert.equal((await once(ws, 'message'))[0], 'fallback');
  assert.equal(ws.secure, true, 'the WebSocket runs on its own TLS connection');

  // An HTTP/2 server without a WebSocketServer: speaks HTTP/2, never advertises the setting.
  const plain = http2.createServer();
  plain.listen(0, '127.0.0.1');
  await once(plain, 'listening');
  const session = http2.connect(`http://127.0.0.1:${(plain.address() as AddressInfo).port}`);
  t.after(() => {
    session.destroy();
    return new Promise<void>((resolve) => plain.close(() => resolve()));
  });
  await assert.rejects(
    connect(`ws://127.0.0.1:${(plain.address() as AddressInfo).port}/`, {
      ...quiet,
      http2: session,
    }),
    (error: unknown) =>
      error instanceof ConnectionError && error.code === 'SWITCHYARD_ERR_HTTP2_NO_EXTENDED_CONNECT',
  );
});

test('rejections are real HTTP/2 responses: 404 for a path, 403 for an Origin, the hook status', async (t) => {
  const s = await startH2(t, {
    path: '/ws',
    onUpgrade: (req) =>
      req.headers.authorization === 'Bearer ok'
        ? { context: { user: 'ann' }, headers: { 'x-hello': 'h2' } }
        : reject(401, 'log in first', { 'WWW-Authenticate': 'Bearer' }),
  });
  const rejected: string[] = [];
  s.wss.on('rejected', (error) => rejected.push(error.code));
  const base = `ws://127.0.0.1:${s.port}`;
  const failure = (status: number, body?: string) => (error: unknown) => {
    assert.ok(error instanceof UnexpectedResponseError, String(error));
    assert.equal(error.statusCode, status);
    if (body !== undefined) assert.equal(error.bodyText, body);
    return true;
  };
  await assert.rejects(connect(`${base}/nope`, { ...quiet, http2: true }), failure(404));
  await assert.rejects(
    connect(`${base}/ws`, { ...quiet, http2: true, origin: 'https://evil.example' }),
    failure(403),
  );
  await assert.rejects(connect(`${base}/ws`, { ...quiet, http2: true }), (error: unknown) => {
    failure(401, 'log in first')(error);
    assert.equal((error as UnexpectedResponseError).responseHeaders['www-authenticate'], 'Bearer');
    return true;
  });
  const contexts: unknown[] = [];
  s.wss.on('connection', (ws) => contexts.push(ws.context));
  const ws = await connect(`${base}/ws`, {
    ...quiet,
    http2: true,
    headers: { authorization: 'Bearer ok' },
  });
  t.after(() => ws.terminate());
  assert.deepEqual(contexts, [{ user: 'ann' }]);
  // The 200 to the extended CONNECT, with the hook's header (RFC 8441 §5).
  assert.deepEqual(
    { status: ws.response?.statusCode, text: ws.response?.statusText },
    { status: 200, text: '' },
  );
  assert.equal(ws.response?.headers['x-hello'], 'h2');
  assert.equal(ws.response?.headers[':status'], undefined);
  assert.deepEqual(rejected, [
    'SWITCHYARD_ERR_HANDSHAKE_NOT_FOUND',
    'SWITCHYARD_ERR_HANDSHAKE_ORIGIN',
    'SWITCHYARD_ERR_HANDSHAKE_REJECTED',
  ]);
});

test('a malformed extended CONNECT gets 400 with the version the server speaks', async (t) => {
  const s = await startH2(t);
  const session = http2.connect(`http://127.0.0.1:${s.port}`);
  t.after(() => session.destroy());
  await once(session, 'remoteSettings');
  const stream = session.request({
    ':method': 'CONNECT',
    ':protocol': 'websocket',
    ':path': '/',
    'sec-websocket-version': '8',
  });
  const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
  assert.equal(headers[':status'], 400);
  assert.equal(headers['sec-websocket-version'], '13');
  stream.resume();
  await once(stream, 'close');
});

test('many WebSockets share one HTTP/2 session, and the session closes with the last', async (t) => {
  const s = await startH2(t);
  s.wss.on('connection', echo);
  const sessions = new Set<http2.Http2Session>();
  s.server.on('session', (session) => sessions.add(session));
  const N = 50;
  const sockets = await Promise.all(
    Array.from({ length: N }, () =>
      connect(`ws://127.0.0.1:${s.port}/`, { ...quiet, http2: true }),
    ),
  );
  t.after(() => sockets.forEach((ws) => ws.terminate()));
  assert.equal(sessions.size, 1, 'one TCP connection for all of them');
  assert.equal(s.wss.clients.size, N);
  const replies = await Promise.all(
    sockets.map((ws, i) => {
      ws.send(`n${i}`);
      return once(ws, 'message').then(([data]) => data as string);
    }),
  );
  assert.deepEqual(
    replies,
    sockets.map((_, i) => `n${i}`),
  );
  await Promise.all(
    sockets.map((ws) => {
      ws.close(1000);
      return once(ws, 'close');
    }),
  );
  const [session] = sessions;
  if (!session.closed) await once(session, 'close');
  await waitFor(() => s.wss.clients.size === 0, 'every server-side WebSocket to close');
});

test('a stream reset mid-message closes both ends with 1006 and leaves nothing behind', async (t) => {
  const s = await startH2(t);
  const serverSide = new Promise<WebSocket>((resolve) => s.wss.once('connection', resolve));
  const ws = await connect(`ws://127.0.0.1:${s.port}/`, { ...quiet, http2: true });
  const server = await serverSide;
  const serverClosed = closeOf(server);
  const clientClosed = closeOf(ws);
  // Half a message: a fragment without FIN, then the server resets the stream.
  ws.send('first half', { fin: false });
  await waitFor(() => server.conn.bufferedIncomingBytes > 0, 'the fragment to arrive');
  (server.socket as http2.ServerHttp2Stream).close(http2.constants.NGHTTP2_CANCEL);
  const [[clientCode], [serverCode]] = await Promise.all([clientClosed, serverClosed]);
  assert.equal(clientCode, 1006);
  assert.equal(serverCode, 1006);
  assert.equal(s.wss.clients.size, 0);
  // The session survives a stream reset: another WebSocket opens on it.
  const again = await connect(`ws://127.0.0.1:${s.port}/`, { ...quiet, http2: true });
  t.after(() => again.terminate());
  assert.equal(again.readyState, 1);
});

test('a GOAWAY mid-message is a lost connection: 1006 on both ends, the pool opens a new session', async (t) => {
  const s = await startH2(t);
  const serverSide = new Promise<WebSocket>((resolve) => s.wss.once('connection', resolve));
  const ws = await connect(`ws://127.0.0.1:${s.port}/`, { ...quiet, http2: true });
  const server = await serverSide;
  const serverClosed = closeOf(server);
  const clientClosed = closeOf(ws);
  server.send('half', { fin: false });
  const stream = server.socket as http2.ServerHttp2Stream;
  stream.session!.goaway(http2.constants.NGHTTP2_INTERNAL_ERROR);
  stream.session!.destroy();
  const [[clientCode], [serverCode]] = await Promise.all([clientClosed, serverClosed]);
  assert.equal(clientCode, 1006);
  assert.equal(serverCode, 1006);
  assert.equal(s.wss.clients.size, 0);
  const again = await connect(`ws://127.0.0.1:${s.port}/`, { ...quiet, http2: true });
  t.after(() => again.terminate());
  again.send('new session');
  assert.equal(again.readyState, 1);
});

/** The close code of a WebSocket, errors ignored (events.once would reject on 'error'). */
function closeOf(ws: WebSocket): Promise<[number]> {
  ws.on('error', () => {});
  return new Promise((resolve) => ws.once('close', (code) => resolve([code])));
}

async function waitFor(predicate: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
