/**
 * The conformance cases (cases.ts) against our client (`connect`), with the tester playing a
 * raw TCP server that completes the handshake and sends unmasked frames. The client runs an
 * echo application; its frames must be masked (RFC 6455 §5.1), and after a clean close it must
 * wait for the server to close TCP (§7.1.1).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect } from '../../src/node/client.js';
import { CASES, limitCases, type ConformanceCase } from './cases.js';
import { checkResult, runCase } from './runner.js';

/** RFC 6455 §1.3: the GUID appended to the key before hashing. */
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

type Upgraded = { socket: net.Socket; head: Buffer };

let rawServer: net.Server;
let port: number;
/** Cases waiting for their connection, by request path. */
const waiting = new Map<string, (upgraded: Upgraded) => void>();

/** Reads the upgrade request, answers 101, and hands the socket to the case that asked for it. */
async function acceptUpgrade(socket: net.Socket): Promise<void> {
  socket.on('error', () => {});
  let received = Buffer.alloc(0);
  while (!received.includes('\r\n\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    received = Buffer.concat([received, chunk]);
  }
  socket.pause();
  const end = received.indexOf('\r\n\r\n') + 4;
  const head = received.subarray(0, end).toString('latin1');
  const path = head.split(' ')[1];
  const key = /^sec-websocket-key:\s*(\S+)\s*$/im.exec(head)?.[1] ?? '';
  const accept = createHash('sha1')
    .update(key + GUID)
    .digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );
  const resolve = waiting.get(path);
  if (resolve === undefined) socket.destroy();
  else resolve({ socket, head: received.subarray(end) });
}

before(async () => {
  rawServer = net.createServer({ allowHalfOpen: true }, (socket) => {
    acceptUpgrade(socket).catch(() => socket.destroy());
  });
  rawServer.listen(0, '127.0.0.1');
  await once(rawServer, 'listening');
  port = (rawServer.address() as net.AddressInfo).port;
});
after(() => new Promise<void>((resolve) => rawServer.close(() => resolve())));

async function play(c: ConformanceCase): Promise<void> {
  const path = `/case/${c.id}`;
  const upgraded = new Promise<Upgraded>((resolve) => waiting.set(path, resolve));
  const ws = await connect(`ws://127.0.0.1:${port}${path}`, {
    heartbeat: false,
    closeTimeout: 2000,
    handshakeTimeout: 3000,
    proxy: false,
    logger: false,
  });
  // Not events.once: it would reject on the 'error' that a failed connection emits first.
  const closed = new Promise<[number, string, boolean]>((resolve) =>
    ws.once('close', (...args) => resolve(args)),
  );
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
  const { socket, head } = await upgraded;
  waiting.delete(path);
  const result = await runCase(c, socket, 'server', head);
  checkResult(c, result, 'client-waits');
  // The client saw the connection close too (its close timer bounds this).
  const [code, , wasClean] = await closed;
  if (c.outcome.close.clean) {
    assert.equal(wasClean, true, 'the client reports a clean close');
    assert.ok(c.outcome.close.codes.includes(code) || code === 1005, `the client reports ${code}`);
  }
}

describe('conformance: our client, sections 1-7 and 10', { concurrency: 16 }, () => {
  for (const c of CASES) {
    test(`${c.id} ${c.description}`, () => play(c));
  }
});

// One at a time: the tester shares the event loop with the peer under test, and a big case
// next to another would delay both by hundreds of ms, which the timing checks would see.
describe('conformance: our client, section 9 (scaled)', { concurrency: 1 }, () => {
  for (const c of limitCases()) {
    test(`${c.id} ${c.description}`, () => play(c));
  }
});
