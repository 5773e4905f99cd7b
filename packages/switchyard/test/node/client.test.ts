import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { once } from 'node:events';
import { connect, proxyFromEnv } from '../../src/node/client.js';
import { WebSocketServer } from '../../src/node/server.js';
import { BrowserWebSocket, CloseEvent } from '../../src/node/browser.js';
import {
  ConnectionError,
  LocalProtocolError,
  RemoteProtocolError,
  UnexpectedResponseError,
} from '../../src/core/errors.js';
import { computeAcceptKey } from '../../src/core/sha1.js';
import { skipUnlessAvailable } from '../helpers/peers.js';
import { startServer } from '../helpers/server.js';
import { selfSignedCertificate } from '../helpers/tls.js';

/** A raw HTTP server whose `upgrade` handler writes whatever the test wants. */
async function rawServer(onUpgrade: (req: http.IncomingMessage, socket: net.Socket) => void) {
  const server = http.createServer((_req, res) => res.end());
  const upgraded = new Set<net.Socket>();
  server.on('upgrade', (req, socket: net.Socket) => {
    upgraded.add(socket);
    socket.on('error', () => {});
    onUpgrade(req, socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}`,
    port,
    close: () => {
      // Upgraded sockets are no longer the HTTP server's to close.
      for (const socket of upgraded) socket.destroy();
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function accept101(req: http.IncomingMessage, extra = ''): string {
  const key = String(req.headers['sec-websocket-key']);
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${computeAcceptKey(key)}\r\n${extra}\r\n`;
}

test('sends a well-formed RFC 6455 §4.1 request', async (t) => {
  let seen: http.IncomingHttpHeaders = {};
  let url = '';
  const s = await rawServer((req, socket) => {
    seen = req.headers;
    url = req.url ?? '';
    socket.write(accept101(req));
  });
  t.after(() => s.close());
  const ws = await connect(`${s.url}/path?q=1#frag`, {
    protocols: ['a', 'b'],
    origin: 'https://o.example',
    headers: { 'X-Token': 't' },
  });
  ws.terminate();
  assert.equal(url, '/path?q=1');
  assert.equal(seen.upgrade, 'websocket');
  assert.match(String(seen.connection), /upgrade/i);
  assert.equal(seen['sec-websocket-version'], '13');
  assert.equal(Buffer.from(String(seen['sec-websocket-key']), 'base64').length, 16);
  assert.equal(seen['sec-websocket-protocol'], 'a, b');
  assert.equal(seen.origin, 'https://o.example');
  assert.equal(seen['x-token'], 't');
  assert.equal(seen.host, `127.0.0.1:${s.port}`);
});

test('uses a fresh random key for every connection', async (t) => {
  const keys: string[] = [];
  const s = await rawServer((req, socket) => {
    keys.push(String(req.headers['sec-websocket-key']));
    socket.write(accept101(req));
  });
  t.after(() => s.close());
  for (let i = 0; i < 3; i++) (await connect(s.url)).terminate();
  assert.equal(new Set(keys).size, 3);
});

test('a non-101 answer becomes an error with the status, headers and the first bytes of the body', async (t) => {
  const s = await rawServer((_req, socket) => {
    socket.end(
      'HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nX-Why: test\r\nContent-Length: 11\r\n\r\nmissing key',
    );
  });
  t.after(() => s.close());
  const err = await connect(s.url).catch((e: unknown) => e);
  assert.ok(err instanceof UnexpectedResponseError);
  assert.equal(err.statusCode, 400);
  assert.equal(err.statusText, 'Bad Request');
  assert.equal(err.responseHeaders['x-why'], 'test');
  assert.equal(Buffer.from(err.body).toString(), 'missing key');
  assert.equal(err.bodyText, 'missing key');
  assert.match(err.message, /400/);
});

test('bodyText decodes the body as UTF-8 and never throws on bytes that are not UTF-8', () => {
  const make = (body?: Uint8Array) =>
    new UnexpectedResponseError('x', { statusCode: 500, statusText: '', headers: {}, body });
  assert.equal(make().bodyText, '');
  assert.equal(make(Buffer.from('café ✓')).bodyText, 'café ✓');
  // A body cut inside a character by the 1 KiB limit, and bytes that are no UTF-8 at all.
  assert.equal(make(Buffer.from('é').subarray(0, 1)).bodyText, '\uFFFD');
  assert.equal(make(Uint8Array.of(0x61, 0xff, 0x62)).bodyText, 'a\uFFFDb');
});

test('the 101 response is on the client WebSocket: status, reason and headers, repeated ones joined', async (t) => {
  const s = await rawServer((req, socket) => {
    socket.write(accept101(req, 'X-Session: abc\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n'));
  });
  t.after(() => s.close());
  const ws = await connect(s.url);
  ws.terminate();
  assert.ok(ws.response !== undefined);
  assert.equal(ws.response.statusCode, 101);
  assert.equal(ws.response.statusText, 'Switching Protocols');
  assert.equal(ws.response.headers['x-session'], 'abc');
  assert.equal(ws.response.headers['set-cookie'], 'a=1, b=2');
  assert.equal(ws.response.headers.upgrade, 'websocket');
});

test("a header from the server's upgrade hook reaches the client; server-side sockets have no response", async (t) => {
  const s = await startServer({ onUpgrade: () => ({ headers: { 'X-Hook': 'hi' } }) });
  t.after(() => s.close());
  const accepted = once(s.server, 'connection');
  const ws = await connect(s.url, { logger: false });
  t.after(() => ws.terminate());
  assert.equal(ws.response?.headers['x-hook'], 'hi');
  const [serverSide] = await accepted;
  assert.equal(serverSide.response, undefined);
});

test('a 200 from a server that ignored the upgrade is an error naming the status', async (t) => {
  const server = http.createServer((_req, res) => res.end('hello'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(r)));
  const port = (server.address() as net.AddressInfo).port;
  server.on('upgrade', (_req, socket) =>
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'),
  );
  const err = await connect(`ws://127.0.0.1:${port}`).catch((e: unknown) => e);
  assert.ok(err instanceof UnexpectedResponseError);
  assert.equal(err.statusCode, 200);
});

const badResponses: Array<[string, (req: http.IncomingMessage) => string, string]> = [
  [
    'a wrong Sec-WebSocket-Accept',
    () =>
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n',
    'SWITCHYARD_ERR_HANDSHAKE_ACCEPT',
  ],
  [
    'a missing Upgrade header',
    (req) => accept101(req).replace('Upgrade: websocket\r\n', ''),
    'SWITCHYARD_ERR_HANDSHAKE_UPGRADE',
  ],
  [
    'a missing Connection header',
    (req) => accept101(req).replace('Connection: Upgrade\r\n', ''),
    'SWITCHYARD_ERR_HANDSHAKE_CONNECTION',
  ],
  [
    'a subprotocol that was not offered',
    (req) => accept101(req, 'Sec-WebSocket-Protocol: evil\r\n'),
    'SWITCHYARD_ERR_HANDSHAKE_PROTOCOL',
  ],
  [
    'an extension that was not offered',
    (req) => accept101(req, 'Sec-WebSocket-Extensions: permessage-deflate\r\n'),
    'SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS',
  ],
];
for (const [what, response, code] of badResponses) {
  test(`fails the handshake on ${what}`, async (t) => {
    const s = await rawServer((req, socket) => socket.write(response(req)));
    t.after(() => s.close());
    const err = await connect(s.url).catch((e: unknown) => e);
    assert.ok(err instanceof RemoteProtocolError, String(err));
    assert.equal(err.code, code);
  });
}

test('hands bytes that arrive with the 101 to the first frames', async (t) => {
  const s = await rawServer((req, socket) => {
    socket.write(
      Buffer.concat([Buffer.from(accept101(req)), Buffer.from([0x81, 0x02, 0x68, 0x69])]),
    );
  });
  t.after(() => s.close());
  const ws = await connect(s.url);
  const [data] = await once(ws, 'message');
  assert.equal(data, 'hi');
  ws.terminate();
});

test('a server that never answers hits handshakeTimeout', async (t) => {
  const server = net.createServer(() => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sockets: net.Socket[] = [];
  server.on('connection', (s) => sockets.push(s));
  t.after(() => {
    sockets.forEach((s) => s.destroy());
    return new Promise((r) => server.close(r));
  });
  const port = (server.address() as net.AddressInfo).port;
  const err = await connect(`ws://127.0.0.1:${port}`, { handshakeTimeout: 150 }).catch(
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConnectionError);
  assert.equal(err.code, 'SWITCHYARD_ERR_HANDSHAKE_TIMEOUT');
});

test('an AbortSignal aborts the handshake', async (t) => {
  const server = net.createServer(() => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const sockets: net.Socket[] = [];
  server.on('connection', (s) => sockets.push(s));
  t.after(() => {
    sockets.forEach((s) => s.destroy());
    return new Promise((r) => server.close(r));
  });
  const port = (server.address() as net.AddressInfo).port;
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 50);
  const err = await connect(`ws://127.0.0.1:${port}`, { signal: controller.signal }).catch(
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConnectionError);
  assert.equal(err.code, 'SWITCHYARD_ERR_HANDSHAKE_ABORTED');
  const already = await connect(`ws://127.0.0.1:${port}`, { signal: AbortSignal.abort() }).catch(
    (e: unknown) => e,
  );
  assert.equal((already as ConnectionError).code, 'SWITCHYARD_ERR_HANDSHAKE_ABORTED');
});

test('a refused connection is a ConnectionError', async () => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  const err = await connect(`ws://127.0.0.1:${port}`).catch((e: unknown) => e);
  assert.ok(err instanceof ConnectionError);
  assert.equal(err.code, 'SWITCHYARD_ERR_CONNECTION_LOST');
});

test('rejects URLs that are not ws, wss, http or https', async () => {
  await assert.rejects(connect('ftp://x'), LocalProtocolError);
  await assert.rejects(connect('not a url'), LocalProtocolError);
});

test('redirects are not followed by default, followed when asked, and bounded', async (t) => {
  const target = await startServer();
  t.after(() => target.close());
  let hops = 0;
  const s = await rawServer((req, socket) => {
    hops++;
    const location = req.url === '/loop' ? '/loop' : `http://127.0.0.1:${target.port}/landed`;
    socket.end(`HTTP/1.1 302 Found\r\nLocation: ${location}\r\nContent-Length: 0\r\n\r\n`);
  });
  t.after(() => s.close());
  const err = await connect(s.url).catch((e: unknown) => e);
  assert.ok(err instanceof UnexpectedResponseError);
  assert.equal(err.statusCode, 302);
  const ws = await connect(s.url, { followRedirects: true });
  assert.equal(new URL(ws.url).pathname, '/landed');
  ws.terminate();
  hops = 0;
  const loop = await connect(`${s.url}/loop`, { followRedirects: 3 }).catch((e: unknown) => e);
  assert.equal((loop as RemoteProtocolError).code, 'SWITCHYARD_ERR_TOO_MANY_REDIRECTS');
  assert.equal(hops, 4);
});

/** A minimal CONNECT proxy (RFC 9110 §9.3.6) that records what it tunnelled. */
async function connectProxy() {
  const tunnels: string[] = [];
  const server = http.createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, client: net.Socket, head) => {
    tunnels.push(`${req.url} ${req.headers['proxy-authorization'] ?? ''}`.trim());
    const [host, port] = String(req.url).split(':');
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `http://user:p%40ss@127.0.0.1:${port}`,
    tunnels,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

test('goes through an HTTP proxy with CONNECT, with credentials', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  s.server.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
  const proxy = await connectProxy();
  t.after(() => proxy.close());
  const ws = await connect(s.url, { proxy: proxy.url });
  ws.send('through the proxy');
  const [data] = await once(ws, 'message');
  assert.equal(data, 'through the proxy');
  ws.terminate();
  assert.equal(proxy.tunnels.length, 1);
  assert.equal(
    proxy.tunnels[0],
    `127.0.0.1:${s.port} Basic ${Buffer.from('user:p@ss').toString('base64')}`,
  );
});

test('a proxy that refuses CONNECT is a SWITCHYARD_ERR_PROXY error', async (t) => {
  const server = http.createServer();
  server.on('connect', (_req, socket: net.Socket) => socket.end('HTTP/1.1 403 Forbidden\r\n\r\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(r)));
  const port = (server.address() as net.AddressInfo).port;
  const err = await connect('ws://127.0.0.1:1/', { proxy: `http://127.0.0.1:${port}` }).catch(
    (e: unknown) => e,
  );
  assert.equal((err as ConnectionError).code, 'SWITCHYARD_ERR_PROXY');
  assert.match((err as Error).message, /403/);
});

test('HTTP_PROXY and HTTPS_PROXY are honoured, and NO_PROXY exempts hosts', () => {
  const env = {
    HTTP_PROXY: 'http://p:1',
    HTTPS_PROXY: 'http://p:2',
    NO_PROXY: 'internal.example,.corp,localhost:8080',
  };
  assert.equal(proxyFromEnv(new URL('ws://a.example/'), env), 'http://p:1');
  assert.equal(proxyFromEnv(new URL('wss://a.example/'), env), 'http://p:2');
  assert.equal(proxyFromEnv(new URL('ws://internal.example/'), env), null);
  assert.equal(proxyFromEnv(new URL('ws://x.corp/'), env), null);
  assert.equal(proxyFromEnv(new URL('ws://localhost:8080/'), env), null);
  assert.equal(proxyFromEnv(new URL('ws://localhost:9090/'), env), 'http://p:1');
  assert.equal(proxyFromEnv(new URL('ws://a.example/'), { ...env, NO_PROXY: '*' }), null);
  assert.equal(proxyFromEnv(new URL('ws://a.example/'), {}), null);
});

test('connects over wss:// (TLS) to an https server, checking the certificate', async (t) => {
  const tls = selfSignedCertificate();
  if (!skipUnlessAvailable(t, tls)) return;
  const server = https.createServer({ key: tls.key, cert: tls.cert });
  const wss = new WebSocketServer({ server, logger: false });
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(r)));
  t.after(() => wss.close());
  const port = (server.address() as net.AddressInfo).port;
  await assert.rejects(
    connect(`wss://localhost:${port}`),
    ConnectionError,
    'an unknown CA is refused',
  );
  const ws = await connect(`wss://localhost:${port}`, { tls: { ca: tls.cert } });
  assert.equal(ws.secure, true);
  ws.send('secret');
  const [data] = await once(ws, 'message');
  assert.equal(data, 'secret');
  ws.terminate();
});

test('BrowserWebSocket follows the browser API: open, message, binaryType, close', async (t) => {
  const s = await startServer({ protocols: ['chat'] });
  t.after(() => s.close());
  s.server.on('connection', (ws) =>
    ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary })),
  );
  const ws = new BrowserWebSocket(s.url, ['chat']);
  assert.equal(ws.readyState, BrowserWebSocket.CONNECTING);
  assert.throws(
    () => ws.send('too early'),
    (e: unknown) => e instanceof DOMException && e.name === 'InvalidStateError',
  );
  await new Promise((resolve) => (ws.onopen = resolve));
  assert.equal(ws.protocol, 'chat');
  assert.equal(ws.readyState, BrowserWebSocket.OPEN);
  const messages: unknown[] = [];
  ws.onmessage = (event) => messages.push(event.data);
  ws.send('text');
  ws.binaryType = 'arraybuffer';
  ws.send(new Uint8Array([1, 2]));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(messages[0], 'text');
  assert.ok(messages[1] instanceof ArrayBuffer);
  ws.binaryType = 'blob';
  ws.send(new Blob([new Uint8Array([3])]));
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(messages[2] instanceof Blob);
  assert.throws(
    () => ws.close(1001),
    (e: unknown) => e instanceof DOMException && e.name === 'InvalidAccessError',
  );
  assert.throws(
    () => ws.close(1000, 'x'.repeat(124)),
    (e: unknown) => e instanceof DOMException && e.name === 'SyntaxError',
  );
  const closed = new Promise<CloseEvent>((resolve) =>
    ws.addEventListener('close', (e) => resolve(e as CloseEvent)),
  );
  ws.close(4000, 'bye');
  const event = await closed;
  assert.equal(event.code, 4000);
  assert.equal(event.wasClean, true);
  assert.equal(ws.readyState, BrowserWebSocket.CLOSED);
  ws.send('discarded');
  assert.ok(ws.bufferedAmount >= 9);
});

test('BrowserWebSocket validates its arguments like browsers do', () => {
  assert.throws(
    () => new BrowserWebSocket('ftp://x'),
    (e: unknown) => e instanceof DOMException && e.name === 'SyntaxError',
  );
  assert.throws(
    () => new BrowserWebSocket('ws://x/#frag'),
    (e: unknown) => e instanceof DOMException && e.name === 'SyntaxError',
  );
  assert.throws(
    () => new BrowserWebSocket('ws://127.0.0.1:1', ['a', 'a']),
    (e: unknown) => e instanceof DOMException,
  );
  assert.throws(
    () => new BrowserWebSocket('ws://127.0.0.1:1', ['a b']),
    (e: unknown) => e instanceof DOMException,
  );
});

test('BrowserWebSocket fires error then close 1006 when the connection fails', async () => {
  const ws = new BrowserWebSocket('ws://127.0.0.1:1');
  const order: string[] = [];
  ws.onerror = () => order.push('error');
  const event = await new Promise<CloseEvent>((resolve) => {
    ws.onclose = (e) => {
      order.push('close');
      resolve(e);
    };
  });
  assert.deepEqual(order, ['error', 'close']);
  assert.equal(event.code, 1006);
  assert.equal(event.wasClean, false);
});
