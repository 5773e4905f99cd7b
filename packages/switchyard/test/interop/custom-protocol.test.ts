// A protocol other than WebSocket switched to through the same server (RFC 9110 §7.8,
// `registerProtocol`), exercised by a client we did not write: Node's own `http.request`.
//
// The protocol, "line-echo/1": once switched, the server greets with "line-echo/1 ready\n",
// then answers every line with "echo: <line>\n"; the line "quit" gets "bye\n" and the end of
// the connection.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { WebSocket as WsWebSocket } from 'ws';
import { WebSocketServer } from '../../src/node/server.js';

/** The server side of line-echo/1. */
function lineEcho(socket: Duplex, head: Buffer): void {
  socket.on('error', () => {});
  // Sent at once, so it travels right behind the 101: the client finds it in `head`.
  socket.write('line-echo/1 ready\n');
  let pending = '';
  const onData = (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line === 'quit') {
        socket.off('data', onData);
        socket.end('bye\n');
        return;
      }
      socket.write(`echo: ${line}\n`);
    }
  };
  socket.on('data', onData);
  // Bytes the client sent right behind its request head belong to the new protocol.
  if (head.length > 0) onData(head);
}

/** A Switchyard server on 127.0.0.1 speaking websocket and line-echo/1, closed by the test. */
async function startServer(t: TestContext): Promise<{ port: number; server: WebSocketServer }> {
  const server = new WebSocketServer({ logger: false, heartbeat: false });
  server.registerProtocol('line-echo/1', lineEcho);
  server.on('connection', (ws) =>
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })),
  );
  const { port } = await server.listen(0, '127.0.0.1');
  t.after(() => server.close({ timeout: 500 }));
  return { port, server };
}

/** Sends an upgrade request with Node's http client; resolves with its 'upgrade' or 'response'. */
async function request(
  port: number,
  headers: Record<string, string>,
): Promise<
  | { kind: 'upgrade'; res: http.IncomingMessage; socket: Socket; head: Buffer }
  | { kind: 'response'; res: http.IncomingMessage; body: string }
> {
  const req = http.request({ host: '127.0.0.1', port, path: '/', headers, timeout: 5000 });
  req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
  req.end();
  return new Promise((resolve, reject) => {
    req.once('error', reject);
    req.once('upgrade', (res: http.IncomingMessage, socket: Socket, head: Buffer) =>
      resolve({ kind: 'upgrade', res, socket, head }),
    );
    req.once('response', (res: http.IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (body += s));
      res.once('end', () => resolve({ kind: 'response', res, body }));
      res.once('error', reject);
    });
  });
}

/** Reads from `socket` (after `head`) until it ends; bounded by `timeoutMs`. */
async function readUntilEnd(socket: Socket, head: Buffer, timeoutMs = 5000): Promise<string> {
  let text = head.toString('utf8');
  socket.setEncoding('utf8');
  socket.on('data', (s: string) => (text += s));
  const timer = setTimeout(
    () => socket.destroy(new Error(`no end within ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    await once(socket, 'end');
  } finally {
    clearTimeout(timer);
  }
  return text;
}

test("Node's http client switches to line-echo/1 and speaks it", async (t) => {
  const { port } = await startServer(t);

  const answer = await request(port, { Connection: 'Upgrade', Upgrade: 'line-echo/1' });

  assert.equal(answer.kind, 'upgrade');
  const { res, socket, head } = answer;
  t.after(() => socket.destroy());
  assert.equal(res.statusCode, 101);
  // RFC 9110 §7.8: the 101 names the protocol switched to, as the client offered it.
  assert.equal(res.headers.upgrade, 'line-echo/1');
  assert.match(String(res.headers.connection), /upgrade/i);
  const transcript = readUntilEnd(socket, head);
  socket.write('hello\n');
  socket.write('Grüße, 世界\nquit\n');
  assert.equal(await transcript, 'line-echo/1 ready\necho: hello\necho: Grüße, 世界\nbye\n');
});

test("the client's first supported protocol wins, even ahead of websocket", async (t) => {
  const { port } = await startServer(t);

  // RFC 9110 §7.8: protocols are listed "in order of descending preference".
  const answer = await request(port, {
    Connection: 'keep-alive, Upgrade',
    Upgrade: 'unknown/9, line-echo/1, websocket',
  });

  assert.equal(answer.kind, 'upgrade');
  t.after(() => answer.socket.destroy());
  assert.equal(answer.res.headers.upgrade, 'line-echo/1');
  const transcript = readUntilEnd(answer.socket, answer.head);
  answer.socket.write('quit\n');
  assert.equal(await transcript, 'line-echo/1 ready\nbye\n');
});

test('a protocol the server does not speak gets 426 listing those it does', async (t) => {
  const { port } = await startServer(t);

  const answer = await request(port, { Connection: 'Upgrade', Upgrade: 'line-echo/2' });

  assert.equal(answer.kind, 'response');
  // RFC 9110 §15.5.22: a 426 "MUST send an Upgrade header field to indicate the acceptable
  // protocols".
  assert.equal(answer.res.statusCode, 426);
  assert.equal(answer.res.headers.upgrade, 'websocket, line-echo/1');
});

test('the same server still serves WebSocket clients next to line-echo/1', async (t) => {
  const { port, server } = await startServer(t);
  const switched = await request(port, { Connection: 'Upgrade', Upgrade: 'line-echo/1' });
  assert.equal(switched.kind, 'upgrade');
  t.after(() => switched.socket.destroy());

  const ws = new WsWebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  t.after(() => ws.terminate());
  await once(ws, 'open');
  ws.send('still a websocket');
  const [data] = (await once(ws, 'message')) as [Buffer];

  assert.equal(data.toString(), 'still a websocket');
  assert.equal(server.clients.size, 1, 'only the WebSocket counts as a client');
  const transcript = readUntilEnd(switched.socket, switched.head);
  switched.socket.write('after ws\nquit\n');
  assert.equal(await transcript, 'line-echo/1 ready\necho: after ws\nbye\n');
});
