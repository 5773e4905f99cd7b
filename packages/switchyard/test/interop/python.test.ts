// Interop with Python `websockets` (Debian's python3-websockets, run by test/helpers/peers.ts):
// its client against a Switchyard server, and Switchyard's client against its server.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, test, type TestContext } from 'node:test';
import { connect, type ConnectOptions } from '../../src/node/client.js';
import { WebSocketServer, type ServerOptions } from '../../src/node/server.js';
import type { WebSocket } from '../../src/node/websocket.js';
import {
  fromWire,
  pythonWebsockets,
  runPythonClient,
  skipUnlessAvailable,
  startPythonServer,
} from '../helpers/peers.js';
import { MULTILINGUAL } from '../shared/behaviour.js';
import { switchyardPeer, type BehaviourPeer } from '../shared/transports.js';

const ONE_MIB = randomBytes(1024 * 1024);

/**
 * The compression settings every case runs under: none, and permessage-deflate (RFC 7692) with
 * both implementations' defaults (Python offers client_max_window_bits; we answer).
 */
interface CompressionVariant {
  name: string;
  /** What the Python peer offers or accepts. */
  python: 'deflate' | null;
  /** Extra options of the Switchyard server and client under this variant. */
  server: Partial<ServerOptions>;
  client: Partial<ConnectOptions>;
  /** The negotiated extensions, as `ws.extensions` reports them. */
  extensions: RegExp;
}

const VARIANTS: readonly CompressionVariant[] = [
  { name: 'uncompressed', python: null, server: {}, client: {}, extensions: /^$/ },
  {
    name: 'permessage-deflate',
    python: 'deflate',
    server: { perMessageDeflate: true },
    client: { perMessageDeflate: true },
    extensions: /^permessage-deflate\b/,
  },
];

/** A Switchyard server on 127.0.0.1 whose connections are recorded, stopped by `t.after`. */
async function startServer(
  t: TestContext,
  variant: CompressionVariant,
  options: Partial<ServerOptions> & { behaviour?: (peer: BehaviourPeer, ws: WebSocket) => void },
): Promise<{ url: string; peers: BehaviourPeer[]; sockets: WebSocket[] }> {
  const { behaviour, ...serverOptions } = options;
  const server = new WebSocketServer({
    logger: false,
    heartbeat: false,
    ...variant.server,
    ...serverOptions,
  });
  const peers: BehaviourPeer[] = [];
  const sockets: WebSocket[] = [];
  server.on('connection', (ws) => {
    const peer = switchyardPeer(ws);
    peers.push(peer);
    sockets.push(ws);
    behaviour?.(peer, ws);
  });
  const { port } = await server.listen(0, '127.0.0.1');
  t.after(() => server.close({ timeout: 500 }));
  return { url: `ws://127.0.0.1:${port}/`, peers, sockets };
}

function echo(peer: BehaviourPeer): void {
  peer.onMessage((data) => peer.send(data));
}

/** Fails with everything the Python client said when it did not exit 0. */
function assertRan(run: { code: number; stdout: string; stderr: string }): void {
  assert.equal(run.code, 0, `Python client exited ${run.code}\n${run.stdout}\n${run.stderr}`);
}

/** The text message that makes the Python echo server close with a code and reason. */
function closeCommand(code: number, reason: string): string {
  return `close:${code}:${reason}`;
}

for (const variant of VARIANTS) {
  describe(`Python websockets client → Switchyard server (${variant.name})`, () => {
    test('text, a 1 MiB binary and multilingual UTF-8 come back as sent', async (t) => {
      if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
      const server = await startServer(t, variant, { behaviour: echo });
      const messages = ['hello', ONE_MIB, MULTILINGUAL, '', Buffer.alloc(0), randomBytes(126)];

      const run = await runPythonClient(server.url, 'echo', {
        messages,
        compression: variant.python,
      });

      assertRan(run);
      assert.deepEqual(fromWire(run.result.received), messages);
      const [peer] = server.peers;
      assert.deepEqual(peer.messages, messages);
      assert.match(server.sockets[0].extensions, variant.extensions);
      // The Python client ends the echo scenario with a plain 1000 close.
      assert.deepEqual(await peer.closed(), { code: 1000, reason: '', wasClean: true });
      assert.deepEqual(run.result.close, { code: 1000, reason: '' });
    });

    test('its close code and reason reach the server, which echoes them', async (t) => {
      if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
      const server = await startServer(t, variant, {});

      const run = await runPythonClient(server.url, 'close', {
        code: 4001,
        reason: 'done ✓',
        compression: variant.python,
      });

      assertRan(run);
      assert.deepEqual(await server.peers[0].closed(), {
        code: 4001,
        reason: 'done ✓',
        wasClean: true,
      });
      // RFC 6455 §5.5.1: the reply "typically echos the status code it received".
      assert.equal(run.result.close.code, 4001);
    });

    test("the server's close code and reason reach it", async (t) => {
      if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
      const server = await startServer(t, variant, {
        behaviour: (peer) =>
          peer.onMessage((data) => {
            if (data === 'close me') peer.close(4002, 'server bye ✓');
          }),
      });

      const run = await runPythonClient(server.url, 'await-close', {
        messages: ['close me'],
        compression: variant.python,
      });

      assertRan(run);
      assert.deepEqual(run.result.close, { code: 4002, reason: 'server bye ✓' });
      assert.deepEqual(run.result.received, []);
      const seen = await server.peers[0].closed();
      assert.equal(seen.code, 4002);
      assert.equal(seen.wasClean, true);
    });

    test('its pings get pongs with the same payload', async (t) => {
      if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
      const server = await startServer(t, variant, {});

      const run = await runPythonClient(server.url, 'ping', {
        count: 3,
        compression: variant.python,
      });

      assertRan(run);
      assert.equal(run.result.rtts_ms.length, 3);
      // ws_client.py pings with "switchyard-<n>" and waits for the pong that matches it.
      assert.deepEqual(
        server.peers[0].pings.map((p) => p.toString()),
        ['switchyard-0', 'switchyard-1', 'switchyard-2'],
      );
    });

    test("a subprotocol it offers is chosen by the server's preference", async (t) => {
      if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
      const server = await startServer(t, variant, {
        protocols: ['chat.v2', 'chat.v1'],
        behaviour: echo,
      });

      const run = await runPythonClient(server.url, 'echo', {
        messages: ['hi'],
        subprotocols: ['chat.v1', 'chat.v2'],
        compression: variant.python,
      });

      assertRan(run);
      assert.equal(run.result.subprotocol, 'chat.v2');
      assert.equal(server.peers[0].protocol, 'chat.v2');
    });

    test('a message over the server maxPayload gets a 1009 close', async (t) => {
      if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
      const server = await startServer(t, variant, { maxPayload: 1024 });

      // Compressible, so that under permessage-deflate only inflating reveals the size.
      const run = await runPythonClient(server.url, 'await-close', {
        messages: [Buffer.alloc(1025, 'switchyard ')],
        compression: variant.python,
      });

      assertRan(run);
      assert.equal(run.result.close.code, 1009);
      assert.equal(server.peers[0].errors.length, 1);
      assert.deepEqual(server.peers[0].messages, []);
    });
  });

  describe(`Switchyard client → Python websockets server (${variant.name})`, () => {
    /** Starts the Python echo server and connects Switchyard's client to it. */
    async function openToPython(
      t: TestContext,
      options: { subprotocols?: string[]; protocols?: string[] } = {},
    ) {
      const python = await startPythonServer('echo', {
        compression: variant.python,
        subprotocols: options.subprotocols,
        maxSeconds: 30,
      });
      t.after(() => python.stop());
      const ws = await connect(python.url, {
        logger: false,
        heartbeat: false,
        handshakeTimeout: 5000,
        protocols: options.protocols,
        ...variant.client,
      });
      t.after(() => ws.terminate());
      return { python, ws, peer: switchyardPeer(ws) };
    }

    test('text, a 1 MiB binary and multilingual UTF-8 come back as sent', async (t) => {
      if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
      const { ws, peer } = await openToPython(t);
      const messages = ['hello', ONE_MIB, MULTILINGUAL, '', Buffer.alloc(0)];

      for (const message of messages) peer.send(message);
      await peer.until('every echo', () => peer.messages.length === messages.length);

      assert.deepEqual(peer.messages, messages);
      assert.match(ws.extensions, variant.extensions);
    });

    test("the server's close code and reason reach the client", async (t) => {
      if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
      const { python, peer } = await openToPython(t);

      peer.send(closeCommand(4002, 'bye from python ✓'));

      assert.deepEqual(await peer.closed(), {
        code: 4002,
        reason: 'bye from python ✓',
        wasClean: true,
      });
      const [seen] = await python.waitForClosedConnections(1);
      assert.equal(seen.code, 4002);
    });

    test('its close code and reason reach the server', async (t) => {
      if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
      const { python, peer } = await openToPython(t);

      peer.close(4003, 'client bye ✓');

      const [seen] = await python.waitForClosedConnections(1);
      assert.deepEqual(seen, { code: 4003, reason: 'client bye ✓', subprotocol: null });
      const closed = await peer.closed();
      assert.equal(closed.code, 4003);
      assert.equal(closed.wasClean, true);
    });

    test('its ping gets a pong with the same payload', async (t) => {
      if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
      const { ws, peer } = await openToPython(t);
      const payload = randomBytes(125);

      ws.ping(payload);
      const [pong] = (await once(ws, 'pong')) as [Buffer];

      assert.deepEqual(pong, payload);
      assert.deepEqual(peer.messages, []);
    });

    test("the server's choice of subprotocol is adopted", async (t) => {
      if (!skipUnlessAvailable(t, await pythonWebsockets())) return;
      const { python, ws, peer } = await openToPython(t, {
        subprotocols: ['chat.v2', 'chat.v1'],
        protocols: ['chat.v1'],
      });

      assert.equal(ws.protocol, 'chat.v1');
      peer.close(1000);
      const [seen] = await python.waitForClosedConnections(1);
      assert.equal(seen.subprotocol, 'chat.v1');
    });
  });
}
