/**
 * The decompression bomb (Python websockets CVE-2018-1000518, undici CVE-2026-1526): a small
 * compressed frame that inflates far past maxPayload must fail with 1009 while inflating, not
 * after, and the server must keep serving. Kept apart from limits.test.ts because it depends
 * on permessage-deflate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { once } from 'node:events';
import { connect } from '../../src/node/client.js';
import type { SwitchyardError } from '../../src/core/errors.js';
import {
  RawClient,
  afterHead,
  clientFrame,
  serverFrames,
  startServer,
  upgradeRequest,
} from '../helpers/server.js';

test('a frame of about 64 KiB that inflates to 64 MiB fails with 1009 at maxPayload (decompression bomb)', async (t) => {
  const s = await startServer({ maxPayload: 1024 * 1024, perMessageDeflate: true });
  t.after(() => s.close());
  const codes: string[] = [];
  s.server.on('connection', (ws) => {
    ws.on('error', (e) => codes.push((e as SwitchyardError).code));
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(s.port, { 'Sec-WebSocket-Extensions': 'permessage-deflate' }));
  const { status, headers } = await raw.readHead();
  assert.equal(status, 101);
  assert.match(headers['sec-websocket-extensions'] ?? '', /permessage-deflate/);
  // RFC 7692 §7.2.1: a sync-flushed raw DEFLATE stream without its final 00 00 ff ff.
  const deflated = zlib.deflateRawSync(Buffer.alloc(64 * 1024 * 1024), {
    level: 9,
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const payload = deflated.subarray(0, deflated.length - 4);
  assert.ok(payload.length < 100 * 1024, `the bomb is ${payload.length} bytes`);
  const before = process.memoryUsage().rss;
  // RSV1 (0b100 in the rsv argument) marks the message compressed (RFC 7692 §6).
  raw.write(clientFrame(2, payload, true, 4));
  await raw.closed(5000);
  const last = serverFrames(afterHead(raw.received)).at(-1);
  assert.equal(last?.opcode, 8);
  assert.equal(last?.payload.readUInt16BE(0), 1009);
  assert.deepEqual(codes, ['SWITCHYARD_ERR_MESSAGE_TOO_BIG']);
  const grew = process.memoryUsage().rss - before;
  assert.ok(grew < 48 * 1024 * 1024, `RSS grew ${grew} bytes, well under the 64 MiB inflated`);
  const ws = await connect(s.url);
  t.after(() => ws.terminate());
  const reply = once(ws, 'message');
  ws.send('still serving');
  assert.equal((await reply)[0], 'still serving');
});
