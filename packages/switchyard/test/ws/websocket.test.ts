/**
 * switchyard/ws's WebSocket client, as ws's doc/ws.md describes it, against real `ws` servers
 * (interop) and, where a server must misbehave, a plain http server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer as RealServer, type WebSocket as RealSocket } from 'ws';
import WebSocketDefault, {
  WebSocket,
  WebSocketServer,
  Server,
  createWebSocketStream,
  type HandshakeResponseLike,
} from 'switchyard/ws';
import { InvalidOptionError, WebSocket as SwitchyardWebSocket } from 'switchyard';
import { closeClient, closeServer, listen, until } from './helpers.js';

/** A real ws server on 127.0.0.1; `onConnection` sets each connection up. */
async function realServer(
  onConnection: (ws: RealSocket, req: IncomingMessage) => void = (ws) =>
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })),
  options: ConstructorParameters<typeof RealServer>[0] = {},
) {
  const server = new RealServer({ port: 0, host: '127.0.0.1', ...options });
  await once(server, 'listening');
  server.on('connection', onConnection);
  const { port } = server.address() as { port: number };
  return {
    server,
    url: `ws://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of server.clients) c.terminate();
        server.close(() => resolve());
      }),
  };
}

async function opened(url: string, ...args: unknown[]): Promise<WebSocket> {
  const ws = new WebSocket(url, ...(args as []));
  await once(ws, 'open');
  return ws;
}

test('the default export is WebSocket, carrying WebSocketServer, Server and createWebSocketStream', () => {
  assert.equal(WebSocketDefault, WebSocket);
  assert.equal(WebSocketDefault.WebSocket, WebSocket);
  assert.equal(WebSocketDefault.WebSocketServer, WebSocketServer);
  assert.equal(WebSocketDefault.Server, WebSocketServer);
  assert.equal(Server, WebSocketServer);
  assert.equal(WebSocketDefault.createWebSocketStream, createWebSocketStream);
  assert.deepEqual(
    [WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED],
    [0, 1, 2, 3],
  );
});

test('readyState goes CONNECTING, OPEN, CLOSING, CLOSED; instance constants too', async (t) => {
  const peer = await realServer();
  t.after(() => peer.close());
  const ws = new WebSocket(peer.url);
  assert.equal(ws.readyState, ws.CONNECTING);
  assert.equal(ws.url, `${peer.url}/`);
  assert.throws(() => ws.send('early'), /readyState 0 \(CONNECTING\)/);
  await once(ws, 'open');
  assert.equal(ws.readyState, ws.OPEN);
  ws.close(1000, 'done');
  assert.equal(ws.readyState, ws.CLOSING);
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
  assert.equal(ws.readyState, ws.CLOSED);
  assert.equal(code, 1000);
  assert.ok(Buffer.isBuffer(reason));
  assert.equal(reason.toString(), 'done');
});

test('send after close calls back with an error instead of throwing; send callback runs on success', async (t) => {
  const peer = await realServer();
  t.after(() => peer.close());
  const ws = await opened(peer.url);
  const sent = await new Promise<Error | undefined>((resolve) => ws.send('x', resolve));
  assert.equal(sent, undefined);
  const withOptions = await new Promise<Error | undefined>((resolve) =>
    ws.send(Buffer.from('y'), { binary: true, compress: false }, resolve),
  );
  assert.equal(withOptions, undefined);
  await closeClient(ws);
  const late = await new Promise<Error | undefined>((resolve) => ws.send('late', resolve));
  assert.match(String(late?.message), /readyState 3 \(CLOSED\)/);
  ws.send('late, no callback'); // no throw, as in ws
});

test('messages are Buffers; binaryType arraybuffer, fragments and blob convert binary ones', async (t) => {
  const peer = await realServer();
  t.after(() => peer.close());
  const ws = await opened(peer.url);
  const next = async () => (await once(ws, 'message')) as [unknown, boolean];
  assert.equal(ws.binaryType, 'nodebuffer');
  ws.send('text');
  const [text, textIsBinary] = await next();
  assert.ok(Buffer.isBuffer(text));
  assert.equal(textIsBinary, false);
  ws.send(Buffer.from([1, 2]));
  assert.deepEqual(await next(), [Buffer.from([1, 2]), true]);

  ws.binaryType = 'arraybuffer';
  ws.send(Buffer.from([3, 4]));
  const [ab] = await next();
  assert.ok(ab instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(ab)], [3, 4]);
  ws.send('still a Buffer');
  assert.ok(Buffer.isBuffer((await next())[0]), 'text ignores binaryType, as in ws');

  ws.binaryType = 'fragments';
  ws.send(Buffer.from([5]));
  const [fragments] = await next();
  assert.ok(Array.isArray(fragments));
  assert.deepEqual(Buffer.concat(fragments as Buffer[]), Buffer.from([5]));

  ws.binaryType = 'blob';
  ws.send(Buffer.from([6]));
  const blob = (await next())[0] as Blob;
  assert.ok(blob instanceof Blob);
  assert.deepEqual([...new Uint8Array(await blob.arrayBuffer())], [6]);

  ws.binaryType = 'bogus' as never;
  assert.equal(ws.binaryType, 'blob', 'an unknown type is ignored');
  await closeClient(ws);
});

test('send takes ws`s data types: numbers as text, arrays and typed arrays as binary', async (t) => {
  const received: Array<[string, boolean]> = [];
  const peer = await realServer((ws) =>
    ws.on('message', (d: Buffer, isBinary) => received.push([d.toString('hex'), isBinary])),
  );
  t.after(() => peer.close());
  const ws = await opened(peer.url);
  ws.send(42);
  ws.send([1, 2, 3]);
  ws.send(new Uint16Array([0x0102]));
  ws.send(new ArrayBuffer(2));
  ws.send('as binary', { binary: true });
  await until(() => received.length === 5);
  assert.deepEqual(received, [
    [Buffer.from('42').toString('hex'), false],
    ['010203', true],
    [Buffer.from(new Uint16Array([0x0102]).buffer).toString('hex'), true],
    ['0000', true],
    [Buffer.from('as binary').toString('hex'), true],
  ]);
  await closeClient(ws);
});

test('ping and pong: events both ways, data and callbacks in ws`s argument shapes', async (t) => {
  const serverSaw: string[] = [];
  const peer = await realServer((ws) => {
    ws.on('ping', (d) => serverSaw.push(`ping:${d}`));
    ws.on('pong', (d) => serverSaw.push(`pong:${d}`));
    ws.on('message', () => ws.ping('from server'));
  });
  t.after(() => peer.close());
  const ws = await opened(peer.url);
  const calls: Array<Error | undefined> = [];
  ws.ping('a', undefined, (e) => calls.push(e));
  ws.ping((e?: Error) => calls.push(e));
  ws.pong(7, true, (e) => calls.push(e));
  const pongs: string[] = [];
  ws.on('pong', (d: Buffer) => pongs.push(d.toString()));
  await until(() => serverSaw.length === 3 && pongs.length === 2 && calls.length === 3);
  assert.deepEqual(serverSaw, ['ping:a', 'ping:', 'pong:7']);
  assert.deepEqual(pongs, ['a', '']);
  assert.deepEqual(calls, [undefined, undefined, undefined]);
  const ping = once(ws, 'ping');
  ws.send('ping me');
  assert.equal(String((await ping)[0]), 'from server');
  await closeClient(ws);
});

test('subprotocols and the `upgrade` event: response headers reach the client', async (t) => {
  const peer = await realServer(undefined, { handleProtocols: (set) => [...set][1] ?? false });
  peer.server.on('headers', (headers) => headers.push('X-Session: s-42'));
  t.after(() => peer.close());
  const ws = new WebSocket(peer.url, ['one', 'two']);
  const [response] = (await once(ws, 'upgrade')) as [HandshakeResponseLike];
  assert.equal(response.statusCode, 101);
  assert.equal(response.headers['x-session'], 's-42');
  assert.equal(ws.readyState, WebSocket.OPEN, "'open' follows 'upgrade' at once, as in ws");
  assert.equal(ws.protocol, 'two');
  await closeClient(ws);
});

test('protocols may be omitted: new WebSocket(url, options)', async (t) => {
  const origins: Array<string | undefined> = [];
  const peer = await realServer((_ws, req) => origins.push(req.headers.origin));
  t.after(() => peer.close());
  const ws = await opened(peer.url, { origin: 'https://app.example' });
  assert.deepEqual(origins, ['https://app.example']);
  await closeClient(ws);
});

test('invalid URLs and subprotocols throw SyntaxError synchronously', () => {
  assert.throws(() => new WebSocket('not a url'), SyntaxError);
  assert.throws(() => new WebSocket('ftp://127.0.0.1/'), SyntaxError);
  assert.throws(() => new WebSocket('ws+unix:/tmp/sock'), SyntaxError);
  assert.throws(() => new WebSocket('ws://127.0.0.1/#frag'), SyntaxError);
  assert.throws(() => new WebSocket('ws://127.0.0.1/', ['a', 'a']), SyntaxError);
  assert.throws(() => new WebSocket('ws://127.0.0.1/', ['bad protocol']), SyntaxError);
});

test('unsupported client options throw, naming the option (agent would silently skip a proxy)', () => {
  for (const options of [
    { agent: {} },
    { autoPong: false },
    { protocolVersion: 8 },
    { finishRequest: () => {} },
    { generateMask: () => {} },
    { socketPath: '/tmp/x' },
  ]) {
    const name = Object.keys(options)[0];
    assert.throws(
      () => new WebSocket('ws://127.0.0.1:1/', options),
      (error: unknown) =>
        error instanceof InvalidOptionError && error.message.includes(`\`${name}\``),
      name,
    );
  }
});

test('a refused handshake: `unexpected-response` with status, headers and a readable body, then close 1006', async (t) => {
  const server = createServer((_req, res) => res.end());
  server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
    socket.end(
      'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 9\r\n\r\nlog in!\r\n',
    );
  });
  const port = await listen(server);
  t.after(() => closeServer(server));

  const ws = new WebSocket(`ws://127.0.0.1:${port}`);
  const events: string[] = [];
  ws.on('error', () => events.push('error'));
  ws.on('close', (code: number) => events.push(`close ${code}`));
  const [request, response] = (await once(ws, 'unexpected-response')) as [
    { method: string; path: string },
    IncomingMessage,
  ];
  assert.equal(request.method, 'GET');
  assert.equal(response.statusCode, 401);
  assert.equal(response.headers['www-authenticate'], 'Bearer');
  let body = '';
  for await (const chunk of response) body += String(chunk);
  assert.equal(body, 'log in!\r\n');
  await until(() => events.length === 1);
  assert.deepEqual(events, ['close 1006'], 'no error when unexpected-response is listened to');

  // Without an unexpected-response listener: error (with the status), then close.
  const plain = new WebSocket(`ws://127.0.0.1:${port}`);
  const order: string[] = [];
  plain.on('error', (e: Error & { statusCode?: number }) => order.push(`error ${e.statusCode}`));
  plain.on('close', (code: number) => order.push(`close ${code}`));
  await until(() => order.length === 2);
  assert.deepEqual(order, ['error 401', 'close 1006']);
  assert.equal(plain.readyState, WebSocket.CLOSED);
});

test('close() while connecting abandons the handshake: error, then close 1006', async (t) => {
  const peer = await realServer();
  t.after(() => peer.close());
  const ws = new WebSocket(peer.url);
  const order: string[] = [];
  ws.on('open', () => order.push('open'));
  ws.on('error', (e: Error) => order.push(e.message));
  ws.on('close', (code: number) => order.push(`close ${code}`));
  ws.close();
  assert.equal(ws.readyState, WebSocket.CLOSING);
  await until(() => order.length === 2);
  assert.deepEqual(order, [
    'WebSocket was closed before the connection was established',
    'close 1006',
  ]);
});

test('terminate() destroys an open connection: the peer sees 1006', async (t) => {
  const codes: number[] = [];
  const peer = await realServer((ws) => ws.on('close', (code) => codes.push(code)));
  t.after(() => peer.close());
  const ws = await opened(peer.url);
  ws.terminate();
  await until(() => codes.length === 1);
  assert.deepEqual(codes, [1006]);
});

test('the browser-style API: addEventListener (once, handleEvent), removeEventListener, on* properties', async (t) => {
  const peer = await realServer();
  t.after(() => peer.close());
  const ws = new WebSocket(peer.url);
  const log: string[] = [];
  ws.onopen = (event: { type: string; target: unknown }) => {
    log.push(`onopen ${event.type} ${event.target === ws}`);
    ws.send('hello');
    ws.send(Buffer.from([1]));
  };
  const onMessage = (event: { data: unknown }) => log.push(`listener ${typeof event.data}`);
  ws.addEventListener('message', onMessage);
  ws.addEventListener('message', onMessage); // a duplicate is ignored
  ws.addEventListener('message', { handleEvent: () => log.push('handleEvent') }, { once: true });
  ws.onmessage = (event: { data: unknown }) => {
    log.push(`onmessage ${Buffer.isBuffer(event.data) ? 'buffer' : event.data}`);
    if (Buffer.isBuffer(event.data)) {
      ws.removeEventListener('message', onMessage);
      ws.close(4001, 'reason');
    }
  };
  ws.addEventListener('bogus', () => log.push('never'));
  ws.onclose = (event: { code: number; reason: string; wasClean: boolean }) =>
    log.push(`onclose ${event.code} ${event.reason} ${event.wasClean}`);
  assert.equal(typeof ws.onmessage, 'function');
  await once(ws, 'close');
  assert.deepEqual(log, [
    'onopen open true',
    'listener string',
    'handleEvent',
    'onmessage hello',
    'listener object',
    'onmessage buffer',
    'onclose 4001 reason true',
  ]);
  ws.onmessage = null;
  assert.equal(ws.onmessage, null);
});

test('onerror gets an ErrorEvent with the error and its message', async (t) => {
  const server = createServer();
  server.on('upgrade', (_req: IncomingMessage, socket: Duplex) =>
    socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'),
  );
  const port = await listen(server);
  t.after(() => closeServer(server));
  const ws = new WebSocket(`ws://127.0.0.1:${port}`);
  const [event] = await new Promise<[{ error: Error; message: string; type: string }]>(
    (resolve) => {
      ws.onerror = (e: { error: Error; message: string; type: string }) => resolve([e]);
    },
  );
  assert.equal(event.type, 'error');
  assert.ok(event.error instanceof Error);
  assert.equal(event.message, event.error.message);
});

test('perMessageDeflate is offered by default, as ws`s client does; extensions names it', async (t) => {
  const peer = await realServer(undefined, { perMessageDeflate: true });
  t.after(() => peer.close());
  const ws = await opened(peer.url);
  assert.equal(ws.extensions, 'permessage-deflate');
  const big = 'y'.repeat(50_000);
  ws.send(big);
  const [echo] = (await once(ws, 'message')) as [Buffer];
  assert.equal(echo.toString(), big);
  await closeClient(ws);
  const plain = await opened(peer.url, { perMessageDeflate: false });
  assert.equal(plain.extensions, '');
  await closeClient(plain);
});

test('headers, auth and URL credentials are sent; maxPayload is enforced', async (t) => {
  const seen: Array<[string | undefined, string | undefined]> = [];
  const peer = await realServer((ws, req) => {
    seen.push([req.headers.authorization, req.headers['x-extra'] as string | undefined]);
    ws.send('x'.repeat(100));
  });
  t.after(() => peer.close());
  const withAuth = await opened(peer.url, { auth: 'user:pw', headers: { 'X-Extra': 'yes' } });
  const port = new URL(peer.url).port;
  const fromUrl = new WebSocket(`ws://me:secret@127.0.0.1:${port}`, { maxPayload: 10 });
  const errors: string[] = [];
  fromUrl.on('error', (e: Error & { code?: string }) => errors.push(String(e.code)));
  const code = await new Promise<number>((resolve) => fromUrl.on('close', resolve));
  assert.deepEqual(errors, ['SWITCHYARD_ERR_MESSAGE_TOO_BIG']);
  assert.equal(code, 1009, 'a 100-byte message exceeds maxPayload 10');
  assert.deepEqual(seen, [
    [`Basic ${Buffer.from('user:pw').toString('base64')}`, 'yes'],
    [`Basic ${Buffer.from('me:secret').toString('base64')}`, undefined],
  ]);
  await closeClient(withAuth);
});

test('pause() and resume(): isPaused, and messages wait while paused', async (t) => {
  const peer = await realServer();
  t.after(() => peer.close());
  const ws = await opened(peer.url);
  const got: string[] = [];
  ws.on('message', (d: Buffer) => got.push(d.toString()));
  ws.pause();
  assert.equal(ws.isPaused, true);
  ws.send('while paused');
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(got, []);
  ws.resume();
  assert.equal(ws.isPaused, false);
  await until(() => got.length === 1);
  await closeClient(ws);
});

test('bufferedAmount is 0 while connecting and a number once open; switchyard exposes the connection', async (t) => {
  const peer = await realServer();
  t.after(() => peer.close());
  const ws = new WebSocket(peer.url);
  assert.equal(ws.bufferedAmount, 0);
  const before = ws.switchyard;
  assert.equal(before, null);
  await once(ws, 'open');
  assert.equal(typeof ws.bufferedAmount, 'number');
  assert.ok(ws.switchyard instanceof SwitchyardWebSocket);
  await closeClient(ws);
});

test('the adapter client and the adapter server talk to each other', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  t.after(() => new Promise((resolve) => wss.close(resolve)));
  wss.on('connection', (ws: WebSocket) =>
    ws.on('message', (d: Buffer, isBinary: boolean) => ws.send(d, { binary: isBinary })),
  );
  await once(wss, 'listening');
  const { port } = wss.address() as { port: number };
  const ws = await opened(`ws://127.0.0.1:${port}`);
  ws.send('round trip');
  const [data, isBinary] = (await once(ws, 'message')) as [Buffer, boolean];
  assert.equal(data.toString(), 'round trip');
  assert.equal(isBinary, false);
  await closeClient(ws);
});

test('createWebSocketStream: objectMode reads text as strings; destroying the stream terminates', async (t) => {
  const codes: number[] = [];
  const peer = await realServer((ws) => {
    ws.send('text');
    ws.send(Buffer.from([9]));
    ws.on('close', (code) => codes.push(code));
  });
  t.after(() => peer.close());
  const ws = new WebSocket(peer.url);
  const duplex = createWebSocketStream(ws, { objectMode: true });
  const chunks: unknown[] = [];
  duplex.on('data', (chunk) => chunks.push(chunk));
  await until(() => chunks.length === 2);
  assert.equal(chunks[0], 'text');
  assert.ok(Buffer.isBuffer(chunks[1]));
  duplex.destroy();
  await until(() => codes.length === 1);
  assert.deepEqual(codes, [1006]);
});
