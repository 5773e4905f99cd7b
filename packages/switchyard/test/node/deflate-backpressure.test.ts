/**
 * Compression back-pressure, end to end on real sockets (issue 16, item 1): with
 * permessage-deflate negotiated, a peer that never reads must not grow memory. Bytes waiting
 * for the compressor count toward maxBufferedAmount like bytes waiting in the socket, and
 * messages inflated for an async iterator that is not read pause reading from the socket.
 *
 * Kept in a file of its own: the tests measure the process's RSS, which other tests in the same
 * process would disturb.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { test } from 'node:test';
import zlib from 'node:zlib';
import type { SwitchyardError } from '../../src/core/errors.js';
import { computeAcceptKey } from '../../src/core/sha1.js';
import { connect } from '../../src/node/client.js';
import type { WebSocket } from '../../src/node/websocket.js';
import { RawClient, clientFrame, startServer, upgradeRequest } from '../helpers/server.js';

const MiB = 1024 * 1024;
/** What a hostile peer sends in each test; the server must hold far less. */
const SENT = 200 * MiB;
const MESSAGE = 64 * 1024;

/** A raw HTTP server that answers the upgrade with permessage-deflate, then never reads. */
async function deafServer() {
  const server = http.createServer((_req, res) => res.end());
  const upgraded = new Set<net.Socket>();
  server.on('upgrade', (req, socket: net.Socket) => {
    upgraded.add(socket);
    socket.on('error', () => {});
    const key = String(req.headers['sec-websocket-key']);
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${computeAcceptKey(key)}\r\n` +
        'Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n',
    );
    socket.pause();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}`,
    upgraded,
    close: () => {
      for (const socket of upgraded) socket.destroy();
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Writes `frame` until `total` bytes of messages went out or the socket closed; bounded. */
async function flood(raw: RawClient, frame: Buffer, perFrame: number, total: number) {
  let sent = 0;
  const deadline = Date.now() + 15_000;
  while (!raw.ended && sent < total && Date.now() < deadline) {
    if (!raw.socket.write(frame)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          raw.socket.off('drain', done);
          raw.socket.off('close', done);
          resolve();
        };
        raw.socket.on('drain', done);
        raw.socket.on('close', done);
      });
    }
    sent += perFrame;
  }
  return sent;
}

for (const perMessageDeflate of [false, true]) {
  const mode = perMessageDeflate ? 'with compression' : 'without compression';
  test(`an echo peer that never reads is cut off at maxBufferedAmount with 1008, ${mode}; RSS stays far below what it sent`, async (t) => {
    const maxBufferedAmount = 16 * MiB;
    const s = await startServer({ perMessageDeflate, maxBufferedAmount });
    t.after(() => s.close());
    const errors: SwitchyardError[] = [];
    let peak = 0;
    const closed = new Promise<WebSocket>((resolve) => {
      s.server.on('connection', (ws) => {
        ws.on('error', (e) => errors.push(e as SwitchyardError));
        ws.on('message', (data, isBinary) => {
          ws.send(data, { binary: isBinary });
          peak = Math.max(peak, ws.bufferedAmount);
        });
        ws.on('close', () => resolve(ws));
      });
    });
    const raw = await RawClient.connect(s.port);
    t.after(() => raw.destroy());
    raw.write(upgradeRequest(s.port, { 'Sec-WebSocket-Extensions': 'permessage-deflate' }));
    const head = await raw.readHead();
    assert.equal(
      /permessage-deflate/.test(head.headers['sec-websocket-extensions'] ?? ''),
      perMessageDeflate,
    );
    // Never read again: what the server writes stays in its buffers.
    raw.socket.pause();
    // Plain frames (no RSV1): nothing to inflate, so the server reads as fast as the socket
    // goes, and every echo waits for the compressor, which is slower than the network.
    const frame = clientFrame(2, randomBytes(MESSAGE));
    const before = process.memoryUsage().rss;
    const sent = await flood(raw, frame, MESSAGE, SENT);
    const ws = await Promise.race([closed, new Promise<null>((r) => setTimeout(r, 10_000, null))]);
    assert.ok(ws !== null, 'the server closed the connection');
    const grew = process.memoryUsage().rss - before;
    t.diagnostic(`sent ${(sent / MiB).toFixed(0)} MiB, RSS grew ${(grew / MiB).toFixed(1)} MiB`);
    assert.deepEqual(
      errors.map((e) => [e.code, e.closeCode]),
      [['SWITCHYARD_ERR_BUFFER_FULL', 1008]],
    );
    assert.ok(sent < SENT, `the peer was cut off after ${sent} bytes`);
    // One message past the limit at most: the check runs at every send.
    assert.ok(peak <= maxBufferedAmount + MESSAGE + 64, `bufferedAmount peaked at ${peak}`);
    assert.ok(
      grew < SENT / 2,
      `RSS grew ${(grew / MiB).toFixed(1)} MiB for ${sent / MiB} MiB sent`,
    );
    assert.equal(ws.bufferedAmount <= ws.socket.writableLength, true, 'nothing waits for zlib');
  });
}

test('ws.send faster than zlib compresses fails with 1008 at the send that passes maxBufferedAmount', async (t) => {
  const maxBufferedAmount = 4 * MiB;
  const s = await startServer({ perMessageDeflate: true, maxBufferedAmount });
  t.after(() => s.close());
  const result = new Promise<{ accepted: number; peak: number; errors: string[] }>((resolve) => {
    s.server.on('connection', (ws) => {
      const errors: string[] = [];
      ws.on('error', (e) => errors.push((e as SwitchyardError).code));
      const text = 'compressible text, '.repeat(MESSAGE / 19);
      let accepted = 0;
      let peak = 0;
      // 200 MiB of sends in one synchronous loop, ignoring send()'s return value.
      for (let i = 0; i < SENT / text.length && errors.length === 0; i++) {
        ws.send(text);
        peak = Math.max(peak, ws.bufferedAmount);
        accepted++;
      }
      resolve({ accepted, peak, errors });
    });
  });
  const client = await connect(s.url, { perMessageDeflate: true });
  t.after(() => client.terminate());
  const { accepted, peak, errors } = await result;
  t.diagnostic(`${accepted} sends taken, bufferedAmount peaked at ${(peak / MiB).toFixed(1)} MiB`);
  assert.deepEqual(errors, ['SWITCHYARD_ERR_BUFFER_FULL']);
  assert.ok(accepted <= maxBufferedAmount / MESSAGE + 2, `${accepted} sends were taken`);
  assert.ok(peak <= maxBufferedAmount + MESSAGE, `bufferedAmount peaked at ${peak}`);
});

test('a client sending to a server that never reads fails with 1008; its RSS stays far below what it sent', async (t) => {
  const server = await deafServer();
  t.after(() => server.close());
  const ws = await connect(server.url, { perMessageDeflate: true, maxBufferedAmount: 16 * MiB });
  t.after(() => ws.terminate());
  assert.match(ws.extensions, /permessage-deflate/);
  const errors: string[] = [];
  ws.on('error', (e) => errors.push((e as SwitchyardError).code));
  const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
  // Each send copies the string into a new Buffer: without a limit on what waits for zlib,
  // every copy would be kept.
  const text = 'the same text again and again; '.repeat(MESSAGE / 31);
  const before = process.memoryUsage().rss;
  let sent = 0;
  for (let round = 0; round < 40 && errors.length === 0 && sent < SENT; round++) {
    for (let i = 0; i < 80 && errors.length === 0; i++) {
      ws.send(text);
      sent += text.length;
    }
    await new Promise((r) => setImmediate(r));
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
  const grew = process.memoryUsage().rss - before;
  t.diagnostic(`sent ${(sent / MiB).toFixed(0)} MiB, RSS grew ${(grew / MiB).toFixed(1)} MiB`);
  assert.deepEqual(errors, ['SWITCHYARD_ERR_BUFFER_FULL']);
  assert.ok(sent < SENT, `cut off after ${sent / MiB} MiB`);
  assert.ok(grew < SENT / 4, `RSS grew ${(grew / MiB).toFixed(1)} MiB`);
});

test('compressed messages inflated for an unread async iterator pause reading; they stay compressed until read', async (t) => {
  const maxPayload = 4 * MiB;
  const count = 60;
  // A 4 MiB message compresses to about 4 KiB: 60 of them are 240 MiB once inflated, but
  // well under 1 MiB on the wire, so the server writes them all at once.
  const deflated = zlib.deflateRawSync(Buffer.alloc(maxPayload, 0x61), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const payload = deflated.subarray(0, deflated.length - 4);
  const header = Buffer.from([0xc2, 126, payload.length >> 8, payload.length & 0xff]);
  assert.ok(payload.length < 65536);
  const server = http.createServer((_req, res) => res.end());
  const upgraded = new Set<net.Socket>();
  server.on('upgrade', (req, socket: net.Socket) => {
    upgraded.add(socket);
    socket.on('error', () => {});
    const key = String(req.headers['sec-websocket-key']);
    const frames: Buffer[] = [];
    for (let i = 0; i < count; i++) frames.push(header, payload);
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Accept: ${computeAcceptKey(key)}\r\n` +
        'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n',
    );
    socket.write(Buffer.concat(frames));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const socket of upgraded) socket.destroy();
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const port = (server.address() as net.AddressInfo).port;
  const before = process.memoryUsage().rss;
  const ws = await connect(`ws://127.0.0.1:${port}`, { perMessageDeflate: true, maxPayload });
  t.after(() => ws.terminate());
  const messages = ws[Symbol.asyncIterator]();
  // Give the client time to read and inflate what it would without back-pressure (bounded:
  // 3 s, or as soon as RSS shows it held more than a few messages).
  let grew = 0;
  for (let i = 0; i < 30 && grew < 48 * MiB; i++) {
    await new Promise((r) => setTimeout(r, 100));
    grew = process.memoryUsage().rss - before;
  }
  t.diagnostic(
    `${count} messages of ${maxPayload / MiB} MiB unread: RSS grew ${(grew / MiB).toFixed(1)} MiB`,
  );
  assert.ok(grew < 48 * MiB, `RSS grew ${(grew / MiB).toFixed(1)} MiB with nothing read`);
  // Every message still arrives, whole and in order, once the iterator is read.
  for (let i = 0; i < count; i++) {
    const { value, done } = await messages.next();
    assert.equal(done, false);
    assert.equal(value?.data.length, maxPayload);
  }
});
