import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { WebSocketServer } from '../../src/node/server.js';
import { connect } from '../../src/node/client.js';
import { selfSignedCertificate } from '../helpers/tls.js';
import { skipUnlessAvailable } from '../helpers/peers.js';

type Listening = http.Server | https.Server;

async function listen(server: Listening): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** Sends half a head and returns what the server wrote before closing (bounded: 15 s). */
async function halfHead(socket: net.Socket | tls.TLSSocket): Promise<string> {
  let got = '';
  socket.setEncoding('utf8');
  socket.on('data', (s: string) => (got += s));
  socket.on('error', () => {});
  socket.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
  const timer = setTimeout(() => socket.destroy(), 15_000);
  await once(socket, 'close');
  clearTimeout(timer);
  return got;
}

test('an attached server cuts a half-sent head off with 408 at handshakeTimeout', async (t) => {
  const app = http.createServer((_req, res) => res.end('page'));
  const wss = new WebSocketServer({
    server: app,
    path: '/ws',
    handshakeTimeout: 200,
    logger: false,
  });
  t.after(async () => {
    await wss.close({ timeout: 100 });
    app.close();
  });
  // node:http's own defaults would hold the socket for 60 s (checked every 30 s).
  assert.ok(app.headersTimeout <= 200, `headersTimeout ${app.headersTimeout}`);
  const port = await listen(app);
  const got = await halfHead(net.connect(port, '127.0.0.1'));
  assert.match(got, /^HTTP\/1\.1 408 Request Timeout\r\n/);
  // The server still serves.
  const ws = await connect(`ws://127.0.0.1:${port}/ws`);
  ws.terminate();
});

test('the same over TLS (https server attached)', async (t) => {
  const credentials = selfSignedCertificate();
  if (!skipUnlessAvailable(t, credentials)) return;
  const app = https.createServer({ key: credentials.key, cert: credentials.cert });
  const wss = new WebSocketServer({ server: app, handshakeTimeout: 200, logger: false });
  t.after(async () => {
    await wss.close({ timeout: 100 });
    app.close();
  });
  const port = await listen(app);
  const socket = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
  await once(socket, 'secureConnect');
  assert.match(await halfHead(socket), /^HTTP\/1\.1 408 Request Timeout\r\n/);
});

test('complete heads, plain requests and kept-alive connections are left alone', async (t) => {
  const app = http.createServer((_req, res) => res.end('page'));
  const wss = new WebSocketServer({
    server: app,
    path: '/ws',
    handshakeTimeout: 200,
    logger: false,
  });
  t.after(async () => {
    await wss.close({ timeout: 100 });
    app.close();
  });
  const port = await listen(app);
  const agent = new http.Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  const get = () =>
    new Promise<string>((resolve, reject) => {
      http
        .get({ port, host: '127.0.0.1', path: '/', agent }, (res) => {
          let body = '';
          res.on('data', (c) => (body += c));
          res.on('end', () => resolve(body));
        })
        .on('error', reject);
    });
  assert.equal(await get(), 'page');
  // Well past the deadline, the same kept-alive connection still serves.
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(await get(), 'page');
  const ws = await connect(`ws://127.0.0.1:${port}/ws`);
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(ws.readyState, 1);
  ws.terminate();
});

test('closing the WebSocketServer takes its deadline off the application server', async (t) => {
  const app = http.createServer();
  const before = app.listenerCount('connection');
  const wss = new WebSocketServer({ server: app, handshakeTimeout: 200, logger: false });
  assert.equal(app.listenerCount('connection'), before + 1);
  await wss.close({ timeout: 100 });
  assert.equal(app.listenerCount('connection'), before);
  t.after(() => app.close());
});
