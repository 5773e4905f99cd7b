/** connect()'s `host` option: the Host header sent, while the connection goes to the URL. */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { connect, WebSocketServer } from '../../src/index.js';

test('host sets the Host header; a Host in headers is refused with a hint naming an option that exists', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', logger: false });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  t.after(() => wss.close({ timeout: 100 }));
  const seen: string[] = [];
  wss.on('connection', (ws, req) => {
    seen.push(String(req.headers.host));
    ws.close();
  });
  const port = (wss.address() as AddressInfo).port;
  const ws = await connect(`ws://127.0.0.1:${port}/`, { host: 'chat.example', logger: false });
  await new Promise((resolve) => ws.once('close', resolve));
  assert.deepEqual(seen, ['chat.example']);
  await assert.rejects(
    connect(`ws://127.0.0.1:${port}/`, { headers: { Host: 'x' }, logger: false }),
    (error: Error) => /host option/.test(error.message),
  );
});
