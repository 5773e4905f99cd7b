/**
 * Every usage example and FAQ answer of ws's README, written as the README writes it with the
 * import changed to switchyard/ws (and port 0 on 127.0.0.1 instead of 8080), each exercised by
 * a client: the real `ws` package where the example is a server (interop), the adapter's own
 * client where the example is a client (against a real `ws` server).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import RealWebSocket, { WebSocketServer as RealServer } from 'ws';
import WebSocket, { WebSocketServer, createWebSocketStream } from 'switchyard/ws';
import { selfSignedCertificate } from '../helpers/tls.js';
import { skipUnlessAvailable } from '../helpers/peers.js';
import {
  closeClient,
  closeServer,
  listen,
  nextText,
  portOf,
  realClient,
  until,
} from './helpers.js';

/** A real ws echo server, for the client examples. */
async function realEchoServer(): Promise<{ url: string; server: RealServer }> {
  const server = new RealServer({ port: 0, host: '127.0.0.1' });
  await once(server, 'listening');
  server.on('connection', (ws) =>
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })),
  );
  const { port } = server.address() as { port: number };
  return { url: `ws://127.0.0.1:${port}/`, server };
}

function closeRealServer(server: RealServer): Promise<void> {
  for (const client of server.clients) client.terminate();
  return new Promise((resolve) => server.close(() => resolve()));
}

test('Sending and receiving text data / Sending binary data: the adapter client against a ws server', async (t) => {
  const { url, server } = await realEchoServer();
  t.after(() => closeRealServer(server));
  const ws = new WebSocket(url);
  ws.on('error', console.error);
  const received: Array<[Buffer, boolean]> = [];
  ws.on('open', function open() {
    ws.send('something');
    const array = new Float32Array(5);
    for (let i = 0; i < array.length; ++i) array[i] = i / 2;
    ws.send(array);
  });
  ws.on('message', function message(data: Buffer, isBinary: boolean) {
    received.push([data, isBinary]);
  });
  await until(() => received.length === 2);
  assert.equal(`received: ${received[0][0]}`, 'received: something');
  assert.equal(received[0][1], false);
  assert.ok(Buffer.isBuffer(received[0][0]), 'text arrives as a Buffer, as in ws');
  assert.equal(received[1][1], true);
  const floats = new Float32Array(
    received[1][0].buffer.slice(received[1][0].byteOffset, received[1][0].byteOffset + 20),
  );
  assert.deepEqual([...floats], [0, 0.5, 1, 1.5, 2]);
  await closeClient(ws);
});

test('Simple server: a ws client gets "something" and its message is received', async (t) => {
  const logged: string[] = [];
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  t.after(() => new Promise((resolve) => wss.close(resolve)));

  wss.on('connection', function connection(ws) {
    ws.on('error', console.error);
    ws.on('message', function message(data: Buffer) {
      logged.push(`received: ${data}`);
    });
    ws.send('something');
  });

  const port = await portOf(wss);
  const client = new RealWebSocket(`ws://127.0.0.1:${port}`);
  assert.equal(await nextText(client), 'something');
  client.send('hello from ws');
  await until(() => logged.length === 1);
  assert.deepEqual(logged, ['received: hello from ws']);
  await closeClient(client);
});

test('External HTTP/S server: an https server with the adapter attached, a ws client over TLS', async (t) => {
  const tls = selfSignedCertificate();
  if (!skipUnlessAvailable(t, tls)) return;
  const server = createHttpsServer({ cert: tls.cert, key: tls.key });
  const wss = new WebSocketServer({ server });
  const logged: string[] = [];
  wss.on('connection', function connection(ws) {
    ws.on('error', console.error);
    ws.on('message', function message(data: Buffer) {
      logged.push(`received: ${data}`);
    });
    ws.send('something');
  });
  const port = await listen(server);
  t.after(async () => {
    await new Promise((resolve) => wss.close(resolve));
    await closeServer(server);
  });

  const client = new RealWebSocket(`wss://localhost:${port}`, { ca: tls.cert });
  assert.equal(await nextText(client), 'something');
  client.send('over TLS');
  await until(() => logged.length === 1);
  assert.deepEqual(logged, ['received: over TLS']);
  await closeClient(client);
});

test('Multiple servers sharing a single HTTP/S server: noServer + handleUpgrade by pathname', async (t) => {
  const server = createServer();
  const wss1 = new WebSocketServer({ noServer: true });
  const wss2 = new WebSocketServer({ noServer: true });

  wss1.on('connection', function connection(ws) {
    ws.on('error', console.error);
    ws.send('wss1');
  });
  wss2.on('connection', function connection(ws) {
    ws.on('error', console.error);
    ws.send('wss2');
  });

  server.on('upgrade', function upgrade(request: IncomingMessage, socket: Duplex, head: Buffer) {
    const { pathname } = new URL(request.url as string, 'wss://base.url');
    if (pathname === '/foo') {
      wss1.handleUpgrade(request, socket, head, function done(ws) {
        wss1.emit('connection', ws, request);
      });
    } else if (pathname === '/bar') {
      wss2.handleUpgrade(request, socket, head, function done(ws) {
        wss2.emit('connection', ws, request);
      });
    } else {
      socket.destroy();
    }
  });
  const port = await listen(server);
  t.after(async () => {
    await new Promise((resolve) => wss1.close(resolve));
    await new Promise((resolve) => wss2.close(resolve));
    await closeServer(server);
  });

  const foo = new RealWebSocket(`ws://127.0.0.1:${port}/foo`);
  const bar = new RealWebSocket(`ws://127.0.0.1:${port}/bar`);
  assert.equal(await nextText(foo), 'wss1');
  assert.equal(await nextText(bar), 'wss2');
  assert.equal(wss1.clients.size, 1);
  assert.equal(wss2.clients.size, 1);
  const other = new RealWebSocket(`ws://127.0.0.1:${port}/other`);
  const [error] = (await once(other, 'error')) as [Error];
  assert.match(error.message, /socket hang up/);
  await closeClient(foo);
  await closeClient(bar);
});

test('Multiple servers on one HTTP server by `path` (the attached form of the same), beside a ws noServer handler', async (t) => {
  const server = createServer();
  const wssA = new WebSocketServer({ server, path: '/a' });
  const wssB = new WebSocketServer({ server, path: '/b' });
  wssA.on('connection', (ws) => ws.send('a'));
  wssB.on('connection', (ws) => ws.send('b'));
  // The real ws package in noServer mode on the same server, for /c.
  const real = new RealServer({ noServer: true });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (req.url === '/c') real.handleUpgrade(req, socket, head, (ws) => ws.send('c'));
  });
  const port = await listen(server);
  t.after(async () => {
    await new Promise((resolve) => wssA.close(resolve));
    await new Promise((resolve) => wssB.close(resolve));
    await closeRealServer(real);
    await closeServer(server);
  });
  const a = new RealWebSocket(`ws://127.0.0.1:${port}/a`);
  const b = new RealWebSocket(`ws://127.0.0.1:${port}/b`);
  const c = new RealWebSocket(`ws://127.0.0.1:${port}/c`);
  assert.equal(await nextText(a), 'a');
  assert.equal(await nextText(b), 'b');
  assert.equal(await nextText(c), 'c');
  // A path nobody serves still gets an HTTP answer.
  const nobody = new RealWebSocket(`ws://127.0.0.1:${port}/nobody`);
  const [error] = (await once(nobody, 'error')) as [Error];
  assert.match(error.message, /Unexpected server response: 404/);
  await Promise.all([a, b, c].map(closeClient));
});

test('Client authentication: the upgrade listener authenticates, 401 otherwise, and the client reaches connection', async (t) => {
  const errors: Error[] = [];
  function onSocketError(err: Error) {
    errors.push(err);
  }
  // The README leaves `authenticate` to the reader: here, a bearer token names the user.
  function authenticate(
    request: IncomingMessage,
    next: (err: Error | null, client?: string) => void,
  ): void {
    const match = /^Bearer (\w+)$/.exec(request.headers.authorization ?? '');
    setImmediate(() => next(match === null ? new Error('no token') : null, match?.[1]));
  }

  const server = createServer();
  const wss = new WebSocketServer({ noServer: true });
  const logged: string[] = [];

  wss.on(
    'connection',
    function connection(ws: WebSocket, request: IncomingMessage, client: string) {
      ws.on('error', console.error);
      ws.on('message', function message(data: Buffer) {
        logged.push(`Received message ${data} from user ${client}`);
      });
    },
  );

  server.on('upgrade', function upgrade(request: IncomingMessage, socket: Duplex, head: Buffer) {
    socket.on('error', onSocketError);
    authenticate(request, function next(err, client) {
      if (err || !client) {
        socket.write('HTTP/1.1 401 Unauthorized\r\n\r\n');
        socket.destroy();
        return;
      }
      socket.removeListener('error', onSocketError);
      wss.handleUpgrade(request, socket, head, function done(ws) {
        wss.emit('connection', ws, request, client);
      });
    });
  });
  const port = await listen(server);
  t.after(async () => {
    await new Promise((resolve) => wss.close(resolve));
    await closeServer(server);
  });

  const alice = await realClient(`ws://127.0.0.1:${port}`, {
    headers: { Authorization: 'Bearer alice' },
  });
  alice.send('hi');
  await until(() => logged.length === 1);
  assert.deepEqual(logged, ['Received message hi from user alice']);

  const stranger = new RealWebSocket(`ws://127.0.0.1:${port}`);
  const [error] = (await once(stranger, 'error')) as [Error];
  assert.match(error.message, /Unexpected server response: 401/);
  assert.deepEqual(errors, []);
  await closeClient(alice);
});

for (const includingSelf of [true, false]) {
  test(`Server broadcast ${includingSelf ? 'to every client, including itself' : 'to every other client, excluding itself'}`, async (t) => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    t.after(() => new Promise((resolve) => wss.close(resolve)));
    wss.on('connection', function connection(ws) {
      ws.on('error', console.error);
      ws.on('message', function message(data: Buffer, isBinary: boolean) {
        wss.clients.forEach(function each(client) {
          if ((includingSelf || client !== ws) && client.readyState === WebSocket.OPEN) {
            client.send(data, { binary: isBinary });
          }
        });
      });
    });
    const port = await portOf(wss);
    const clients = await Promise.all([0, 1, 2].map(() => realClient(`ws://127.0.0.1:${port}`)));
    await until(() => wss.clients.size === 3);
    const got = clients.map(() => [] as string[]);
    clients.forEach((c, i) => c.on('message', (data: Buffer) => got[i].push(data.toString())));
    clients[0].send('text');
    clients[0].send(Buffer.from([1, 2, 3]));
    await until(() => got[1].length === 2 && got[2].length === 2);
    assert.deepEqual(got[1], ['text', '\x01\x02\x03']);
    if (includingSelf) await until(() => got[0].length === 2);
    else {
      // A last message proves that nothing more was on its way to the sender.
      clients[1].send('done');
      await until(() => got[0].length === 1);
      assert.deepEqual(got[0], ['done']);
    }
    await Promise.all(clients.map(closeClient));
  });
}

test('Round-trip time: the adapter client sends Date.now() and reads it back from a Buffer', async (t) => {
  const { url, server } = await realEchoServer();
  t.after(() => closeRealServer(server));
  const ws = new WebSocket(url);
  const times: number[] = [];
  const events: string[] = [];
  ws.on('error', console.error);
  ws.on('open', function open() {
    events.push('connected');
    ws.send(Date.now());
  });
  ws.on('close', function close() {
    events.push('disconnected');
  });
  ws.on('message', function message(data: Buffer) {
    // `Date.now() - data`, as the README writes it: the Buffer converts to its number.
    times.push(Date.now() - (data as unknown as number));
    if (times.length === 3) ws.close();
    else setTimeout(() => ws.send(Date.now()), 5);
  });
  await once(ws, 'close');
  assert.equal(times.length, 3);
  for (const rtt of times) assert.ok(Number.isFinite(rtt) && rtt >= 0, `rtt ${rtt}`);
  assert.deepEqual(events, ['connected', 'disconnected']);
});

test('Use the Node.js streams API: createWebSocketStream with utf8, piped both ways', async (t) => {
  const { url, server } = await realEchoServer();
  t.after(() => closeRealServer(server));
  const ws = new WebSocket(url);
  const duplex = createWebSocketStream(ws, { encoding: 'utf8' });
  duplex.on('error', console.error);
  const finished = once(duplex, 'finish');
  let output = '';
  duplex.on('data', (chunk: string) => {
    output += chunk;
  });
  // Written while still connecting: the stream waits for 'open'.
  Readable.from(['hello ', 'streams']).pipe(duplex);
  await until(() => output === 'hello streams');
  await finished;
  await until(() => ws.readyState === WebSocket.CLOSED);
});

test('How to get the IP address of the client: req.socket.remoteAddress and X-Forwarded-For', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  t.after(() => new Promise((resolve) => wss.close(resolve)));
  const ips: Array<[string | undefined, string]> = [];
  wss.on('connection', function connection(ws, req: IncomingMessage) {
    const ip = req.socket.remoteAddress;
    const forwarded = (req.headers['x-forwarded-for'] as string).split(',')[0].trim();
    ips.push([ip, forwarded]);
    ws.on('error', console.error);
  });
  const port = await portOf(wss);
  const client = await realClient(`ws://127.0.0.1:${port}`, {
    headers: { 'X-Forwarded-For': '203.0.113.7, 10.0.0.1' },
  });
  await until(() => ips.length === 1);
  assert.deepEqual(ips, [['127.0.0.1', '203.0.113.7']]);
  await closeClient(client);
});

test('How to detect and close broken connections: the server pings, a client that never pongs is terminated', async (t) => {
  type Alive = WebSocket & { isAlive?: boolean };
  let pongs = 0;
  function heartbeat(this: Alive) {
    this.isAlive = true;
    pongs++;
  }
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('connection', function connection(ws: Alive) {
    ws.isAlive = true;
    ws.on('error', console.error);
    ws.on('pong', heartbeat);
  });
  function ping() {
    wss.clients.forEach(function each(ws: Alive) {
      if (ws.isAlive === false) return ws.terminate();
      ws.isAlive = false;
      ws.ping();
    });
  }
  // The README's interval; the test runs its sweeps itself, one after the healthy client's pong,
  // so that nothing depends on how fast a loaded machine answers.
  const interval = setInterval(ping, 30000);
  let cleared = false;
  wss.on('close', function close() {
    clearInterval(interval);
    cleared = true;
  });
  t.after(() => clearInterval(interval));

  const port = await portOf(wss);
  const healthy = await realClient(`ws://127.0.0.1:${port}`);
  // A peer whose link is gone answers no ping: ws's `autoPong: false` stands for it.
  const broken = await realClient(`ws://127.0.0.1:${port}`, { autoPong: false });
  await until(() => wss.clients.size === 2);
  const brokenClosed = once(broken, 'close');
  ping();
  await until(() => pongs === 1);
  ping(); // the broken client has not answered: terminated; the healthy one is pinged again
  const [code] = (await brokenClosed) as [number];
  assert.equal(code, 1006, 'terminated, not closed');
  await until(() => pongs === 2);
  assert.equal(healthy.readyState, RealWebSocket.OPEN);
  assert.equal(wss.clients.size, 1);
  await closeClient(healthy);
  await new Promise((resolve) => wss.close(resolve));
  assert.ok(cleared, "the server's close event cleared the interval");
});

test('How to detect and close broken connections: a client that stops hearing pings terminates itself', async (t) => {
  // A real ws server that pings three times, then falls silent (the cord is pulled).
  const server = new RealServer({ port: 0, host: '127.0.0.1' });
  await once(server, 'listening');
  t.after(() => closeRealServer(server));
  server.on('connection', (ws) => {
    // Three pings at once, then nothing.
    for (let i = 0; i < 3; i++) ws.ping();
  });
  const { port } = server.address() as { port: number };

  type Watched = WebSocket & { pingTimeout?: NodeJS.Timeout };
  const pings: number[] = [];
  function heartbeat(this: Watched) {
    pings.push(Date.now());
    clearTimeout(this.pingTimeout);
    // The README waits 30 s + 1 s for the next ping; 1.5 s here.
    this.pingTimeout = setTimeout(() => {
      this.terminate();
    }, 1500);
  }
  const client: Watched = new WebSocket(`ws://127.0.0.1:${port}`);
  client.on('error', console.error);
  client.on('open', heartbeat);
  client.on('ping', heartbeat);
  client.on('close', function clear(this: Watched) {
    clearTimeout(this.pingTimeout);
  });
  const [code] = (await once(client, 'close')) as [number];
  assert.equal(code, 1006);
  assert.equal(pings.length, 4, 'open and three pings');
});
