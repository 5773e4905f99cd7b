// Interop with compression on (RFC 7692): Python websockets (compression="deflate", its
// default) against our server and our client against its server; headless Chromium, which
// offers `permessage-deflate; client_max_window_bits` on every connection, against our server.
// The `ws` package is covered, parameter by parameter, in test/conformance/deflate.test.ts.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, test, type TestContext } from 'node:test';
import { connect } from '../../src/node/client.js';
import { WebSocketServer, type ServerOptions } from '../../src/node/server.js';
import type { WebSocket } from '../../src/node/websocket.js';
import {
  browserWebSocketScenario,
  fromWire,
  launchChromium,
  pythonWebsockets,
  runPythonClient,
  serveStaticPage,
  skipUnlessAvailable,
  startPythonServer,
} from '../helpers/peers.js';

const JSONISH = JSON.stringify(
  Array.from({ length: 400 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })),
);
const BINARY = Buffer.concat([randomBytes(2048), Buffer.alloc(30_000, 7)]);
const SMALL = 'hi';

async function startEcho(
  t: TestContext,
  options: ServerOptions,
): Promise<{ url: string; sockets: WebSocket[] }> {
  const server = new WebSocketServer({ logger: false, heartbeat: false, ...options });
  const sockets: WebSocket[] = [];
  server.on('connection', (ws) => {
    sockets.push(ws);
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const { port } = await server.listen(0, '127.0.0.1');
  t.after(() => server.close({ timeout: 500 }));
  return { url: `ws://127.0.0.1:${port}/`, sockets };
}

for (const [name, perMessageDeflate] of [
  ['defaults', true],
  [
    'no context takeover, small windows',
    {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 9,
      clientMaxWindowBits: 10,
      threshold: 0,
    },
  ],
] as const) {
  test(`Python websockets client, compression on, against our server (${name})`, async (t) => {
    const py = await pythonWebsockets();
    if (!skipUnlessAvailable(t, py)) return;
    const { url, sockets } = await startEcho(t, { perMessageDeflate });
    const run = await runPythonClient(url, 'echo', {
      compression: 'deflate',
      messages: [JSONISH, BINARY, SMALL, JSONISH],
    });
    assert.equal(run.code, 0, run.stderr + JSON.stringify(run.result));
    assert.deepEqual(fromWire(run.result.received), [JSONISH, BINARY, SMALL, JSONISH]);
    assert.deepEqual(run.result.close, { code: 1000, reason: '' });
    assert.match(sockets[0].extensions, /^permessage-deflate/);
    if (typeof perMessageDeflate === 'object') {
      assert.match(sockets[0].extensions, /client_max_window_bits=10/);
      assert.match(sockets[0].extensions, /server_max_window_bits=9/);
    }
  });
}

for (const [name, perMessageDeflate] of [
  ['defaults', { threshold: 0 }],
  [
    'asks for no context takeover and a small server window',
    {
      serverNoContextTakeover: true,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 9,
    },
  ],
] as const) {
  test(`our client, compression on, against a Python websockets server (${name})`, async (t) => {
    const py = await pythonWebsockets();
    if (!skipUnlessAvailable(t, py)) return;
    const server = await startPythonServer('echo', { compression: 'deflate' });
    t.after(() => server.stop());
    const ws = await connect(server.url, { logger: false, perMessageDeflate });
    t.after(() => ws.terminate());
    assert.match(ws.extensions, /^permessage-deflate/);
    const got: Array<string | Buffer> = [];
    const all = new Promise<void>((resolve) => {
      ws.on('message', (data) => {
        got.push(data);
        if (got.length === 4) resolve();
      });
    });
    ws.send(JSONISH);
    ws.send(BINARY);
    ws.send(SMALL);
    ws.send(JSONISH.slice(0, 5000), { fin: false });
    ws.send(JSONISH.slice(5000), { fin: true });
    await all;
    assert.deepEqual(got, [JSONISH, BINARY, SMALL, JSONISH]);
    ws.close(1000);
    await once(ws, 'close');
    const [closed] = await server.waitForClosedConnections(1);
    assert.equal(closed.code, 1000);
  });
}

let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
before(async () => {
  chromium = await launchChromium();
});
after(async () => {
  if (chromium?.available) await chromium.browser.close();
});

test('headless Chromium, which offers permessage-deflate, echoes compressed text and binary', async (t) => {
  if (!skipUnlessAvailable(t, chromium!)) return;
  const pageServer = await serveStaticPage('<!doctype html><title>deflate</title>');
  t.after(() => pageServer.close());
  const origin = new URL(pageServer.url).origin;
  const { url, sockets } = await startEcho(t, {
    origin: [origin],
    perMessageDeflate: { threshold: 0, clientMaxWindowBits: 12 },
  });
  const page = await chromium.browser.newPage();
  t.after(() => page.close());
  await page.goto(pageServer.url);
  const seen = await browserWebSocketScenario(page, url, [
    { send: JSONISH },
    { sendBinary: BINARY },
    { send: SMALL },
    { waitForMessages: 3 },
    { close: { code: 1000, reason: 'done' } },
    { waitForClose: true },
  ]);
  assert.deepEqual(seen.errors, []);
  assert.equal(seen.extensions, 'permessage-deflate; client_max_window_bits=12');
  assert.equal(sockets[0].extensions, 'permessage-deflate; client_max_window_bits=12');
  assert.deepEqual(seen.messages, [JSONISH, BINARY, SMALL]);
  // The server echoes the status code of the browser's close (RFC 6455 §5.5.1), not its reason.
  assert.equal(seen.close?.code, 1000);
  assert.equal(seen.close?.wasClean, true);
});
