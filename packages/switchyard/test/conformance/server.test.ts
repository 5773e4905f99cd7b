/**
 * The conformance cases (cases.ts) against our WebSocketServer, with the tester playing a raw
 * TCP client that masks its frames. The server runs an echo application.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startServer, upgradeRequest, type TestServer } from '../helpers/server.js';
import { CASES, limitCases, type ConformanceCase } from './cases.js';
import { checkResult, runCase } from './runner.js';

let server: TestServer;

before(async () => {
  // A close timer longer than any case: TCP must be closed by the closing handshake itself.
  server = await startServer({ heartbeat: false, closeTimeout: 10 * 60_000 });
  server.server.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
  });
});
after(() => server.close());

/** Opens TCP, upgrades, and returns the socket with the bytes read past the 101's head. */
async function upgrade(port: number): Promise<{ socket: net.Socket; head: Buffer }> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await once(socket, 'connect');
  socket.write(upgradeRequest(port, { 'Sec-WebSocket-Key': randomKey() }));
  let received = Buffer.alloc(0);
  while (!received.includes('\r\n\r\n')) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    received = Buffer.concat([received, chunk]);
  }
  const end = received.indexOf('\r\n\r\n') + 4;
  assert.match(received.subarray(0, end).toString('latin1'), /^HTTP\/1\.1 101 /);
  return { socket, head: received.subarray(end) };
}

function randomKey(): string {
  return Buffer.from(Array.from({ length: 16 }, () => Math.floor(Math.random() * 256))).toString(
    'base64',
  );
}

async function play(c: ConformanceCase): Promise<void> {
  const { socket, head } = await upgrade(server.port);
  // Data events must not be lost between the handshake and the runner's listener.
  socket.pause();
  const result = await runCase(c, socket, 'client', head);
  checkResult(c, result, 'server-closes');
}

describe('conformance: our server, sections 1-7 and 10', { concurrency: 16 }, () => {
  for (const c of CASES) {
    test(`${c.id} ${c.description}`, () => play(c));
  }
});

// One at a time: the tester shares the event loop with the peer under test, and a big case
// next to another would delay both by hundreds of ms, which the timing checks would see.
describe('conformance: our server, section 9 (scaled)', { concurrency: 1 }, () => {
  for (const c of limitCases()) {
    test(`${c.id} ${c.description}`, () => play(c));
  }
});
