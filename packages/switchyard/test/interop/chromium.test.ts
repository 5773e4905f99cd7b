// Interop with a real browser: headless Chromium (Debian's chromium, driven by playwright-core
// through test/helpers/peers.ts) loads a page from 127.0.0.1 whose WebSocket talks to a
// Switchyard server. One browser for the whole file; each test opens its own page.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test, type TestContext } from 'node:test';
import type { SwitchyardError } from '../../src/core/errors.js';
import { WebSocketServer, type ServerOptions } from '../../src/node/server.js';
import type { WebSocket } from '../../src/node/websocket.js';
import {
  browserWebSocketScenario,
  launchChromium,
  serveStaticPage,
  skipUnlessAvailable,
} from '../helpers/peers.js';
import { MULTILINGUAL } from '../shared/behaviour.js';
import { switchyardPeer, type BehaviourPeer } from '../shared/transports.js';

const PAGE = '<!doctype html><title>switchyard interop</title>';

let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
before(async () => {
  chromium = await launchChromium();
});
after(async () => {
  if (chromium?.available) await chromium.browser.close();
});

/** A fresh page at `url` (a real origin), closed when the test ends; null when skipped. */
async function openPage(t: TestContext, url: string) {
  if (!skipUnlessAvailable(t, chromium!)) return null;
  const page = await chromium.browser.newPage();
  t.after(() => page.close());
  await page.goto(url);
  return page;
}

/** What a Switchyard server saw: its end of each connection, request Origins, rejections. */
interface Seen {
  peers: BehaviourPeer[];
  sockets: WebSocket[];
  origins: Array<string | undefined>;
  rejected: SwitchyardError[];
}

function record(server: WebSocketServer, behaviour?: (peer: BehaviourPeer) => void): Seen {
  const seen: Seen = { peers: [], sockets: [], origins: [], rejected: [] };
  server.on('connection', (ws, req) => {
    const peer = switchyardPeer(ws);
    seen.peers.push(peer);
    seen.sockets.push(ws);
    seen.origins.push(req.headers.origin);
    behaviour?.(peer);
  });
  server.on('rejected', (error) => seen.rejected.push(error));
  return seen;
}

/** A standalone Switchyard server on 127.0.0.1, closed when the test ends. */
async function startServer(
  t: TestContext,
  options: ServerOptions,
  behaviour?: (peer: BehaviourPeer) => void,
): Promise<{ url: string; seen: Seen }> {
  const server = new WebSocketServer({ logger: false, heartbeat: false, ...options });
  const seen = record(server, behaviour);
  const { port } = await server.listen(0, '127.0.0.1');
  t.after(() => server.close({ timeout: 500 }));
  return { url: `ws://127.0.0.1:${port}/`, seen };
}

/** A page server on 127.0.0.1 whose origin the WebSocket server is told to allow. */
async function servePage(t: TestContext) {
  const pageServer = await serveStaticPage(PAGE);
  t.after(() => pageServer.close());
  return { url: pageServer.url, origin: new URL(pageServer.url).origin };
}

function echo(peer: BehaviourPeer): void {
  peer.onMessage((data) => {
    if (data === 'close me') peer.close(4001, 'server bye ✓');
    else peer.send(data);
  });
}

test('Chromium exchanges text and binary with a Switchyard server; both see its 4000 close', async (t) => {
  const pageServer = await servePage(t);
  const page = await openPage(t, pageServer.url);
  if (page === null) return;
  const { url, seen } = await startServer(
    t,
    { origin: [pageServer.origin], protocols: ['chat.v2', 'chat.v1'] },
    echo,
  );
  const small = Buffer.from([0, 1, 2, 253, 254, 255]);
  // 65,536 bytes: the first length that needs the 64-bit form (RFC 6455 §5.2).
  const large = randomBytes(65_536);

  const result = await browserWebSocketScenario(
    page,
    url,
    [
      { send: MULTILINGUAL },
      { sendBinary: small },
      { send: '' },
      { sendBinary: large },
      { waitForMessages: 4 },
      { close: { code: 4000, reason: 'bye ✓' } },
      { waitForClose: true },
    ],
    { protocols: ['chat.v1', 'chat.v2'] },
  );

  assert.deepEqual(result.errors, []);
  assert.equal(result.opened, true);
  assert.equal(result.protocol, 'chat.v2');
  // Whatever was negotiated (Chromium offers permessage-deflate), both ends agree on it.
  assert.equal(result.extensions, seen.sockets[0].extensions);
  assert.deepEqual(result.messages, [MULTILINGUAL, small, '', large]);
  const [peer] = seen.peers;
  assert.deepEqual(peer.messages, [MULTILINGUAL, small, '', large]);
  assert.deepEqual(await peer.closed(), { code: 4000, reason: 'bye ✓', wasClean: true });
  // The page's close event reports the server's reply. Switchyard echoes the status code, as
  // RFC 6455 §5.5.1 suggests ("typically echos the status code it received"), not the reason.
  assert.deepEqual(result.close, { code: 4000, reason: '', wasClean: true });
  assert.deepEqual(seen.origins, [pageServer.origin]);
});

test('Chromium and a Switchyard server negotiate permessage-deflate and exchange messages', async (t) => {
  const pageServer = await servePage(t);
  const page = await openPage(t, pageServer.url);
  if (page === null) return;
  const { url, seen } = await startServer(
    t,
    { origin: [pageServer.origin], perMessageDeflate: true },
    echo,
  );
  const text = `${MULTILINGUAL}${'compressible '.repeat(10_000)}`;
  const binary = randomBytes(65_536);

  const result = await browserWebSocketScenario(page, url, [
    { send: text },
    { sendBinary: binary },
    { waitForMessages: 2 },
    { close: { code: 1000 } },
    { waitForClose: true },
  ]);

  assert.deepEqual(result.errors, []);
  // RFC 7692 §5: Chromium offers permessage-deflate; the server's answer is what both use.
  assert.match(result.extensions, /^permessage-deflate\b/);
  assert.equal(result.extensions, seen.sockets[0].extensions);
  assert.deepEqual(result.messages, [text, binary]);
  assert.deepEqual(seen.peers[0].messages, [text, binary]);
  assert.deepEqual(result.close, { code: 1000, reason: '', wasClean: true });
});

test("Chromium sees a Switchyard server's close code and reason", async (t) => {
  const pageServer = await servePage(t);
  const page = await openPage(t, pageServer.url);
  if (page === null) return;
  const { url, seen } = await startServer(t, { origin: [pageServer.origin] }, echo);

  const result = await browserWebSocketScenario(page, url, [
    { send: 'close me' },
    { waitForClose: true },
  ]);

  assert.deepEqual(result.errors, []);
  assert.deepEqual(result.close, { code: 4001, reason: 'server bye ✓', wasClean: true });
  const closed = await seen.peers[0].closed();
  assert.equal(closed.code, 4001);
  assert.equal(closed.wasClean, true);
});

test('the default same-origin policy refuses a page from another origin with 403', async (t) => {
  const pageServer = await servePage(t);
  const page = await openPage(t, pageServer.url);
  if (page === null) return;
  // No `origin` option: the page (another port, so another origin) is cross-site.
  const { url, seen } = await startServer(t, {});

  const result = await browserWebSocketScenario(page, url, [{ waitForClose: true }]);

  // WHATWG WebSockets: a failed handshake fires error, then close with 1006.
  assert.equal(result.opened, false);
  assert.deepEqual(result.errors, ['error event']);
  assert.deepEqual(result.close, { code: 1006, reason: '', wasClean: false });
  assert.equal(seen.peers.length, 0);
  assert.equal(seen.rejected.length, 1);
  assert.equal(seen.rejected[0].code, 'SWITCHYARD_ERR_HANDSHAKE_ORIGIN');
  assert.equal(seen.rejected[0].status, 403);
});

test('a page served by the same host:port as the server is accepted by default', async (t) => {
  // The page and the WebSocket share one http server, so the Origin's host is the Host.
  const httpServer = http.createServer((req, res) => {
    res.writeHead(req.url === '/' ? 200 : 404, { 'content-type': 'text/html; charset=utf-8' });
    res.end(req.url === '/' ? PAGE : '');
  });
  const server = new WebSocketServer({ server: httpServer, logger: false, heartbeat: false });
  const seen = record(server, echo);
  httpServer.listen(0, '127.0.0.1');
  await once(httpServer, 'listening');
  t.after(async () => {
    await server.close({ timeout: 500 });
    httpServer.closeAllConnections();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
  });
  const origin = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
  const page = await openPage(t, `${origin}/`);
  if (page === null) return;

  const result = await browserWebSocketScenario(
    page,
    `ws://127.0.0.1:${(httpServer.address() as AddressInfo).port}/`,
    [{ send: 'same origin' }, { waitForMessages: 1 }, { close: {} }, { waitForClose: true }],
  );

  assert.deepEqual(result.errors, []);
  assert.equal(result.opened, true);
  assert.deepEqual(result.messages, ['same origin']);
  assert.equal(result.close?.wasClean, true);
  assert.deepEqual(seen.origins, [origin]);
  assert.deepEqual(seen.rejected, []);
});
