/**
 * Once both close frames are exchanged the server shuts its side and the connection is done:
 * `close` fires without waiting for the peer's TCP FIN or HTTP/2 END_STREAM (RFC 6455 §7.1.1:
 * the server closes the TCP connection first). The peers here never half-close, and the server's
 * closeTimeout is ten minutes, so a test that passes (within the runner's timeout) proves the
 * close did not wait for either (issue 16, item 5).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from '../../src/node/server.js';
import type { WebSocket } from '../../src/node/websocket.js';
import { clientFrame, serverFrames, upgradeRequest } from '../helpers/server.js';
import { skipUnlessAvailable } from '../helpers/peers.js';
import { selfSignedCertificate } from '../helpers/tls.js';

const TEN_MINUTES = 600_000;
/** Bounds a failing test (a close that waits for closeTimeout) well below ten minutes. */
const TEST_OPTIONS = { timeout: 60_000 };

function closeBody(code: number): Buffer {
  const body = Buffer.alloc(2);
  body.writeUInt16BE(code);
  return body;
}

/** Reads from `socket` until `predicate` holds on everything read (or the socket ends). */
function readUntil(socket: Duplex, predicate: (data: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, rejectRead) => {
    let data = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (predicate(data)) {
        socket.off('data', onData);
        socket.off('end', onEnd);
        resolve(data);
      }
    };
    const onEnd = () => rejectRead(new Error(`ended after ${data.length} bytes`));
    socket.on('data', onData);
    socket.on('end', onEnd);
  });
}

function hasCloseFrame(data: Buffer): boolean {
  const start = data.indexOf('\r\n\r\n');
  const frames = serverFrames(start < 0 ? data : data.subarray(start + 4));
  return frames.some((f) => f.opcode === 0x8);
}

/**
 * The shared scenario: an HTTP/1.1 peer on `socket` (TCP or TLS, allowHalfOpen, so it never
 * answers our FIN with its own) upgrades, then the closing handshake is started by `initiator`.
 */
async function closeWithSilentPeer(
  t: TestContext,
  wss: WebSocketServer,
  socket: Duplex,
  port: number,
  initiator: 'peer' | 'server',
): Promise<void> {
  socket.on('error', () => {});
  t.after(() => socket.destroy());
  const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
  socket.write(upgradeRequest(port, {}, 'GET / HTTP/1.1'));
  await readUntil(socket, (d) => d.includes('\r\n\r\n'));
  const [ws] = await accepted;
  const serverClosed = once(ws, 'close');
  const peerEnded = once(socket, 'end');
  if (initiator === 'peer') {
    const reply = readUntil(socket, hasCloseFrame);
    socket.write(clientFrame(0x8, closeBody(1000)));
    await reply;
  } else {
    const frame = readUntil(socket, hasCloseFrame);
    ws.close(1000, 'bye');
    await frame;
    socket.write(clientFrame(0x8, closeBody(1000)));
  }
  const [code, , wasClean] = await serverClosed;
  assert.equal(code, 1000);
  assert.equal(wasClean, true);
  // The server shut its side first (RFC 6455 §7.1.1); the peer never ended its own.
  await peerEnded;
  assert.equal(socket.writableEnded, false);
}

for (const initiator of ['peer', 'server'] as const) {
  test(
    `TCP: close fires once the ${initiator}-initiated closing handshake is done, without the peer's FIN`,
    TEST_OPTIONS,
    async (t) => {
      const wss = new WebSocketServer({
        logger: false,
        closeTimeout: TEN_MINUTES,
        heartbeat: false,
      });
      const address = await wss.listen(0, '127.0.0.1');
      t.after(() => wss.close({ timeout: 1000 }));
      const socket = net.connect({ host: '127.0.0.1', port: address.port, allowHalfOpen: true });
      await once(socket, 'connect');
      await closeWithSilentPeer(t, wss, socket, address.port, initiator);
    },
  );
}

test(
  "TLS: close fires once the closing handshake is done, without the peer's close_notify or FIN",
  TEST_OPTIONS,
  async (t) => {
    const creds = selfSignedCertificate();
    if (!skipUnlessAvailable(t, creds)) return;
    const server = https.createServer({ key: creds.key, cert: creds.cert });
    const wss = new WebSocketServer({
      server,
      logger: false,
      closeTimeout: TEN_MINUTES,
      heartbeat: false,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      await wss.close({ timeout: 1000 });
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });
    const port = (server.address() as net.AddressInfo).port;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: creds.cert,
      servername: 'localhost',
      // Runtime option of tls.connect (passed to its net.Socket), missing from the types.
      allowHalfOpen: true,
    } as tls.ConnectionOptions);
    await once(socket, 'secureConnect');
    await closeWithSilentPeer(t, wss, socket, port, 'peer');
  },
);

test(
  "HTTP/2: close fires once the closing handshake is done, without the peer's END_STREAM, and the stream is reset",
  TEST_OPTIONS,
  async (t) => {
    const server = http2.createServer();
    const wss = new WebSocketServer({
      server,
      logger: false,
      closeTimeout: TEN_MINUTES,
      heartbeat: false,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', () => {});
    t.after(async () => {
      session.destroy();
      await wss.close({ timeout: 1000 });
      await new Promise((resolve) => server.close(resolve));
    });
    // RFC 8441 §3: :protocol only once the server's SETTINGS allow extended CONNECT.
    await once(session, 'remoteSettings');
    const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
    const stream = session.request(
      {
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': 'http',
        ':path': '/',
        ':authority': `127.0.0.1:${port}`,
        'sec-websocket-version': '13',
      },
      { endStream: false },
    );
    stream.on('error', () => {});
    const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
    assert.equal(headers[':status'], 200);
    const [ws] = await accepted;
    const serverClosed = once(ws, 'close');
    const streamClosed = once(stream, 'close');
    const streamEnded = once(stream, 'end');
    stream.resume();
    const reply = readUntil(stream, hasCloseFrame);
    stream.write(clientFrame(0x8, closeBody(1000)));
    await reply;
    const [code, , wasClean] = await serverClosed;
    assert.equal(code, 1000);
    assert.equal(wasClean, true);
    // The peer never ends its half; the server ends its own, then resets the stream.
    await streamEnded;
    await streamClosed;
    assert.equal(stream.rstCode, http2.constants.NGHTTP2_NO_ERROR);
  },
);
