/**
 * switchyard/ws's WebSocketServer, option by option and event by event as ws's doc/ws.md
 * describes them, exercised by the real `ws` client.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import RealWebSocket from 'ws';
import { WebSocketServer, WebSocket, type VerifyClientInfo } from 'switchyard/ws';
import { InvalidOptionError, WebSocketServer as SwitchyardServer } from 'switchyard';
import {
  closeClient,
  closeServer,
  listen,
  nextText,
  portOf,
  realClient,
  until,
} from './helpers.js';

function closeWss(wss: WebSocketServer): Promise<void> {
  return new Promise((resolve) => wss.close(() => resolve()));
}

async function started(options: ConstructorParameters<typeof WebSocketServer>[0] = {}) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  const port = await portOf(wss);
  return { wss, port, url: `ws://127.0.0.1:${port}` };
}

/** What a ws client gets when the handshake is refused: status, headers, body. */
async function refusal(url: string, options: RealWebSocket.ClientOptions = {}) {
  const ws = new RealWebSocket(url, options);
  ws.on('error', () => {}); // terminate() below abandons the handshake
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
  let body = '';
  for await (const chunk of res) body += String(chunk);
  ws.terminate();
  return { status: res.statusCode, headers: res.headers, body };
}

test('requires exactly one of port, server and noServer, with ws`s TypeError', () => {
  assert.throws(() => new WebSocketServer({}), TypeError);
  assert.throws(() => new WebSocketServer({ port: 0, noServer: true }), TypeError);
  assert.throws(() => new WebSocketServer({ server: createServer(), noServer: true }), TypeError);
});

test('a ws option it cannot honour throws, naming it and what to use instead', () => {
  assert.throws(
    () => new WebSocketServer({ noServer: true, autoPong: false }),
    (error: unknown) =>
      error instanceof InvalidOptionError &&
      error.code === 'SWITCHYARD_ERR_INVALID_OPTION' &&
      error.option === 'autoPong' &&
      /autoPong/.test(error.message) &&
      /migrating-from-ws/.test(error.message),
  );
  // Harmless values and ignored options are accepted.
  const wss = new WebSocketServer({
    noServer: true,
    autoPong: true,
    allowSynchronousEvents: false,
    skipUTF8Validation: true,
    maxBufferedChunks: 10,
  });
  void wss.close();
});

test('port: the callback and `listening` fire, address() reports the port, plain requests get 426', async (t) => {
  let called = 0;
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' }, () => called++);
  t.after(() => closeWss(wss));
  await once(wss, 'listening');
  assert.equal(called, 1);
  const address = wss.address();
  assert.ok(address !== null && typeof address === 'object' && address.port > 0);
  const res = await fetch(`http://127.0.0.1:${address.port}/`);
  assert.equal(res.status, 426);
  assert.equal(await res.text(), 'Upgrade Required');
});

test('port already in use: `error` on the server', async (t) => {
  const { wss, port } = await started();
  t.after(() => closeWss(wss));
  const second = new WebSocketServer({ port, host: '127.0.0.1' });
  const [error] = (await once(second, 'error')) as [NodeJS.ErrnoException];
  assert.equal(error.code, 'EADDRINUSE');
  await closeWss(second);
});

test('noServer: address() throws as in ws', async () => {
  const wss = new WebSocketServer({ noServer: true });
  assert.throws(() => wss.address(), /noServer/);
  await closeWss(wss);
});

test('verifyClient (sync): false answers 401 and `connection` never fires; info has origin, secure, req', async (t) => {
  const seen: VerifyClientInfo[] = [];
  const { wss, url } = await started({
    verifyClient: (info: VerifyClientInfo) => {
      seen.push(info);
      return info.req.headers.authorization === 'Bearer ok';
    },
  });
  t.after(() => closeWss(wss));
  let connections = 0;
  wss.on('connection', () => connections++);
  const refused = await refusal(url, { origin: `http://127.0.0.1:${new URL(url).port}` });
  assert.equal(refused.status, 401);
  assert.equal(connections, 0);
  assert.equal(seen[0].origin, `http://127.0.0.1:${new URL(url).port}`);
  assert.equal(seen[0].secure, false);
  assert.equal(seen[0].req.url, '/');
  const ok = await realClient(url, { headers: { Authorization: 'Bearer ok' } });
  await until(() => connections === 1);
  await closeClient(ok);
});

test('verifyClient (callback): the refusal`s status, message and headers reach the client', async (t) => {
  const { wss, url } = await started({
    verifyClient: (info: VerifyClientInfo, cb: (...args: any[]) => void) => {
      setImmediate(() => {
        if (info.req.url === '/let-me-in') cb(true);
        else cb(false, 429, 'Slow down', { 'Retry-After': 120 });
      });
    },
  });
  t.after(() => closeWss(wss));
  const refused = await refusal(`${url}/other`);
  assert.equal(refused.status, 429);
  assert.equal(refused.headers['retry-after'], '120');
  assert.equal(refused.body, 'Slow down');
  const ok = await realClient(`${url}/let-me-in`);
  await closeClient(ok);
});

test('verifyClient in noServer mode is honoured (a ws program`s authentication does not vanish)', async (t) => {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true, verifyClient: () => false });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)),
  );
  const port = await listen(server);
  t.after(async () => {
    await closeWss(wss);
    await closeServer(server);
  });
  const refused = await refusal(`ws://127.0.0.1:${port}`);
  assert.equal(refused.status, 401);
});

test('handleProtocols gets a Set and the request; its answer is the subprotocol, false sends none', async (t) => {
  const calls: Array<[string[], string | undefined]> = [];
  const { wss, url } = await started({
    handleProtocols: (protocols: Set<string>, req: IncomingMessage) => {
      calls.push([[...protocols], req.url]);
      return protocols.has('chat.v2') ? 'chat.v2' : false;
    },
  });
  t.after(() => closeWss(wss));
  const v2 = await realClient(`${url}/p`, ['chat.v1', 'chat.v2']);
  assert.equal(v2.protocol, 'chat.v2');
  assert.deepEqual(calls[0], [['chat.v1', 'chat.v2'], '/p']);
  // The ws client fails a handshake that answers no subprotocol to one it offered.
  const none = new RealWebSocket(url, ['other']);
  const [error] = (await once(none, 'error')) as [Error];
  assert.match(error.message, /Server sent no subprotocol/);
  await closeClient(v2);
});

test('without handleProtocols the client`s first subprotocol is chosen, as in ws', async (t) => {
  const { wss, url } = await started();
  t.after(() => closeWss(wss));
  const protocols: string[] = [];
  wss.on('connection', (ws: WebSocket) => protocols.push(ws.protocol));
  const client = await realClient(url, ['first', 'second']);
  assert.equal(client.protocol, 'first');
  await until(() => protocols.length === 1);
  assert.deepEqual(protocols, ['first']);
  await closeClient(client);
});

test('clients: tracked by default and left on close; clientTracking: false leaves it undefined', async (t) => {
  const { wss, url } = await started();
  t.after(() => closeWss(wss));
  const sizesInClose: number[] = [];
  wss.on('connection', (ws: WebSocket) =>
    ws.on('close', () => sizesInClose.push(wss.clients.size)),
  );
  const client = await realClient(url);
  await until(() => wss.clients.size === 1);
  assert.ok([...wss.clients][0] instanceof WebSocket);
  await closeClient(client);
  await until(() => sizesInClose.length === 1);
  assert.deepEqual(sizesInClose, [0], 'already removed when the application hears close');

  const untracked = new WebSocketServer({ noServer: true, clientTracking: false });
  assert.equal(untracked.clients, undefined);
  await closeWss(untracked);
});

test('`headers`: lines a listener adds become headers of the 101, repeated ones kept apart', async (t) => {
  const { wss, url } = await started();
  t.after(() => closeWss(wss));
  const requests: string[] = [];
  wss.on('headers', (headers: string[], req: IncomingMessage) => {
    requests.push(req.url as string);
    assert.equal(headers[0], 'HTTP/1.1 101 Switching Protocols');
    assert.ok(headers.some((h) => h.startsWith('Sec-WebSocket-Accept: ')));
    headers.push('Set-Cookie: a=1; Path=/', 'Set-Cookie: b=2', 'X-Served-By: adapter');
  });
  const client = new RealWebSocket(`${url}/h`);
  const [res] = (await once(client, 'upgrade')) as [IncomingMessage];
  assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/', 'b=2']);
  assert.equal(res.headers['x-served-by'], 'adapter');
  assert.deepEqual(requests, ['/h']);
  await until(() => client.readyState === RealWebSocket.OPEN);
  await closeClient(client);
});

test('path with noServer: shouldHandle refuses other paths with 400, as ws does', async (t) => {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true, path: '/chat' });
  assert.equal(wss.shouldHandle({ url: '/chat?room=1' } as IncomingMessage), true);
  assert.equal(wss.shouldHandle({ url: '/other' } as IncomingMessage), false);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)),
  );
  const port = await listen(server);
  t.after(async () => {
    await closeWss(wss);
    await closeServer(server);
  });
  assert.equal((await refusal(`ws://127.0.0.1:${port}/other`)).status, 400);
  const ok = await realClient(`ws://127.0.0.1:${port}/chat?room=1`);
  await closeClient(ok);
});

test('shouldHandle can be overridden: a subclass decides by header', async (t) => {
  class Picky extends WebSocketServer {
    override shouldHandle(request: IncomingMessage): boolean {
      return request.headers['x-pick-me'] === 'yes';
    }
  }
  const wss = new Picky({ port: 0, host: '127.0.0.1' });
  const port = await portOf(wss);
  t.after(() => closeWss(wss));
  assert.equal((await refusal(`ws://127.0.0.1:${port}`)).status, 400);
  const ok = await realClient(`ws://127.0.0.1:${port}`, { headers: { 'X-Pick-Me': 'yes' } });
  await closeClient(ok);
});

test('server with path: the attached server serves its path, the request reaches `connection`', async (t) => {
  const server = createServer();
  const wss = new WebSocketServer({ server, path: '/live' });
  const urls: string[] = [];
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    urls.push(req.url as string);
    ws.send('live');
  });
  const port = await listen(server);
  t.after(async () => {
    await closeWss(wss);
    await closeServer(server);
  });
  const client = new RealWebSocket(`ws://127.0.0.1:${port}/live?x=1`);
  assert.equal(await nextText(client), 'live');
  assert.deepEqual(urls, ['/live?x=1']);
  await closeClient(client);
});

test('handleUpgrade: the callback gets the WebSocket and request; `connection` is the caller`s to emit', async (t) => {
  const server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  let emitted = 0;
  wss.on('connection', () => emitted++);
  const got: Array<[WebSocket, IncomingMessage]> = [];
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    wss.handleUpgrade(req, socket, head, (ws, request) => {
      got.push([ws, request]);
      ws.send('welcome');
    }),
  );
  const port = await listen(server);
  t.after(async () => {
    await closeWss(wss);
    await closeServer(server);
  });
  const client = new RealWebSocket(`ws://127.0.0.1:${port}/x`);
  assert.equal(await nextText(client), 'welcome');
  assert.equal(got.length, 1);
  assert.ok(got[0][0] instanceof WebSocket);
  assert.equal(got[0][1].url, '/x');
  assert.equal(emitted, 0);
  await closeClient(client);
});

test('handleUpgrade: bytes that arrive with the request head reach the first message listener', async (t) => {
  const wss = new WebSocketServer({ noServer: true });
  const http = createServer();
  const messages: string[] = [];
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    wss.handleUpgrade(req, socket, head, (ws) =>
      ws.on('message', (d: Buffer) => messages.push(d.toString())),
    ),
  );
  const port = await listen(http);
  const socket = net.connect(port, '127.0.0.1');
  t.after(async () => {
    socket.destroy();
    await closeWss(wss);
    await closeServer(http);
  });
  await once(socket, 'connect');
  // The upgrade request and a masked text frame ("hi") in one write.
  const frame = Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0x68 ^ 1, 0x69 ^ 2]);
  socket.write(
    Buffer.concat([
      Buffer.from(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      ),
      frame,
    ]),
  );
  await until(() => messages.length === 1);
  assert.deepEqual(messages, ['hi']);
});

test('close(cb): closes the connections, emits close, calls back; a second close calls back with an error', async (t) => {
  const { wss, url } = await started();
  const client = await realClient(url);
  const clientClosed = once(client, 'close');
  let events = 0;
  wss.on('close', () => events++);
  await new Promise<void>((resolve, reject) =>
    wss.close((error) => (error ? reject(error) : resolve())),
  );
  assert.equal(events, 1);
  const [code] = (await clientClosed) as [number];
  assert.equal(code, 1001);
  const [error] = await new Promise<[Error | undefined]>((resolve) =>
    wss.close((e) => resolve([e])),
  );
  assert.match(String(error?.message), /not running/);
  t.diagnostic('the port is released');
  const probe = new RealWebSocket(url);
  await once(probe, 'error');
});

test('server-side sockets: messages as Buffers, binary as binary, close with code and reason Buffer', async (t) => {
  const { wss, url } = await started();
  t.after(() => closeWss(wss));
  const seen: unknown[] = [];
  const closed: Array<[number, Buffer]> = [];
  wss.on('connection', (ws: WebSocket) => {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      seen.push([Buffer.isBuffer(data), isBinary, data.toString('hex')]);
      ws.send(data, { binary: isBinary });
    });
    ws.on('close', (code: number, reason: Buffer) => closed.push([code, reason]));
  });
  const client = await realClient(url);
  client.send('é');
  client.send(Buffer.from([0xff]));
  const echoes: Array<[string, boolean]> = [];
  client.on('message', (d: Buffer, b: boolean) => echoes.push([d.toString('hex'), b]));
  await until(() => echoes.length === 2);
  assert.deepEqual(seen, [
    [true, false, 'c3a9'],
    [true, true, 'ff'],
  ]);
  assert.deepEqual(echoes, [
    ['c3a9', false],
    ['ff', true],
  ]);
  client.close(4000, 'bye now');
  await until(() => closed.length === 1);
  assert.equal(closed[0][0], 4000);
  assert.ok(Buffer.isBuffer(closed[0][1]));
  assert.equal(closed[0][1].toString(), 'bye now');
});

test('the `WebSocket` option: server-side connections are instances of the given subclass', async (t) => {
  class Tagged extends WebSocket {
    tag = 'mine';
  }
  const { wss, url } = await started({ WebSocket: Tagged });
  t.after(() => closeWss(wss));
  const tags: string[] = [];
  wss.on('connection', (ws: Tagged) => tags.push(ws.tag));
  const client = await realClient(url);
  await until(() => tags.length === 1);
  assert.deepEqual(tags, ['mine']);
  await closeClient(client);
});

test('perMessageDeflate: negotiated with the ws client, ws`s zlib options accepted', async (t) => {
  const { wss, url } = await started({
    perMessageDeflate: {
      zlibDeflateOptions: { chunkSize: 1024, memLevel: 7, level: 3 },
      zlibInflateOptions: { chunkSize: 10 * 1024 },
      clientNoContextTakeover: true,
      serverNoContextTakeover: true,
      serverMaxWindowBits: 10,
      concurrencyLimit: 10,
      threshold: 1024,
    },
  });
  t.after(() => closeWss(wss));
  wss.on('connection', (ws: WebSocket) =>
    ws.on('message', (d: Buffer, isBinary: boolean) => ws.send(d, { binary: isBinary })),
  );
  const client = await realClient(url);
  assert.match(client.extensions, /permessage-deflate/);
  const big = 'x'.repeat(100_000);
  client.send(big);
  assert.equal(await nextText(client), big);
  await closeClient(client);
});

test('maxPayload: a larger message closes the connection with 1009', async (t) => {
  const { wss, url } = await started({ maxPayload: 10 });
  t.after(() => closeWss(wss));
  const client = await realClient(url);
  client.send('more than ten bytes');
  const [code] = (await once(client, 'close')) as [number];
  assert.equal(code, 1009);
});

test('switchyard: the Switchyard server under the adapter, for topics', async (t) => {
  const { wss, url } = await started();
  t.after(() => closeWss(wss));
  assert.ok(wss.switchyard instanceof SwitchyardServer);
  wss.on('connection', (ws: WebSocket) => ws.switchyard?.subscribe('news'));
  const client = await realClient(url);
  await until(() => wss.switchyard.subscriberCount('news') === 1);
  wss.switchyard.publish('news', 'extra');
  assert.equal(await nextText(client), 'extra');
  await closeClient(client);
});
