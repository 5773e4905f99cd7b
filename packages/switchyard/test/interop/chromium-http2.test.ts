/**
 * Headless Chromium opens its WebSocket as an HTTP/2 stream (RFC 8441) when the page's origin
 * speaks HTTP/2 and advertises extended CONNECT: the page is served over HTTPS HTTP/2 by an
 * http2 server with a WebSocketServer attached (self-signed certificate made by the test;
 * Chromium runs with --ignore-certificate-errors), and the server checks that the WebSocket
 * arrived on a stream of that connection, not as an HTTP/1.1 upgrade.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from '../../src/node/server.js';
import { browserWebSocketScenario, launchChromium, skipUnlessAvailable } from '../helpers/peers.js';
import { selfSignedCertificate } from '../helpers/tls.js';

const PAGE = '<!doctype html><title>switchyard over HTTP/2</title><p>h2</p>';

test('Chromium opens its WebSocket as an HTTP/2 stream when the server advertises extended CONNECT', async (t) => {
  const tls = selfSignedCertificate();
  if (!skipUnlessAvailable(t, tls)) return;
  const chromium = await launchChromium(['--ignore-certificate-errors']);
  if (!skipUnlessAvailable(t, chromium)) return;
  t.after(() => chromium.browser.close());

  // One port, both protocols: the page and the WebSocket share the browser's HTTP/2 connection.
  const pageVersions: string[] = [];
  const server = http2.createSecureServer(
    { key: tls.key, cert: tls.cert, allowHTTP1: true },
    (req, res) => {
      pageVersions.push(req.httpVersion);
      res.writeHead(req.url === '/' ? 200 : 404, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
      });
      res.end(req.url === '/' ? PAGE : '');
    },
  );
  const streamsSeen: Array<{ protocol: unknown; sessionAlpn: unknown }> = [];
  server.on('stream', (stream, headers) => {
    if (headers[':method'] === 'CONNECT') {
      streamsSeen.push({
        protocol: headers[':protocol'],
        sessionAlpn: stream.session?.alpnProtocol,
      });
    }
  });
  const wss = new WebSocketServer({ server, logger: false, heartbeat: false, protocols: ['chat'] });
  const arrivals: Array<{ httpVersion: string; stream: boolean }> = [];
  wss.on('connection', (ws, req) => {
    arrivals.push({ httpVersion: req.httpVersion, stream: 'stream' in req });
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  t.after(async () => {
    await wss.close({ timeout: 500 });
    for (const session of sessions) session.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const origin = `https://localhost:${(server.address() as AddressInfo).port}`;

  const page = await chromium.browser.newPage();
  t.after(() => page.close());
  await page.goto(`${origin}/`);
  const seen = await browserWebSocketScenario(
    page,
    `${origin.replace('https', 'wss')}/chat`,
    [
      { send: 'hello over h2' },
      { sendBinary: new Uint8Array([1, 2, 3]) },
      { waitForMessages: 2 },
      { close: { code: 4000, reason: 'bye' } },
      { waitForClose: true },
    ],
    { protocols: ['chat'] },
  );

  assert.deepEqual(seen.errors, []);
  assert.equal(seen.opened, true);
  assert.equal(seen.protocol, 'chat');
  assert.deepEqual(seen.messages, ['hello over h2', Buffer.from([1, 2, 3])]);
  // The server echoes the close code only (RFC 6455 §5.5.1); the reason is the closer's own.
  assert.equal(seen.close?.code, 4000);
  assert.equal(seen.close?.wasClean, true);
  assert.equal(pageVersions[0], '2.0', 'the page itself came over HTTP/2');
  // The server side: one extended CONNECT stream, on a TLS session that negotiated h2.
  assert.deepEqual(streamsSeen, [{ protocol: 'websocket', sessionAlpn: 'h2' }]);
  assert.deepEqual(arrivals, [{ httpVersion: '2.0', stream: true }]);
});
