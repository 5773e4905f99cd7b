import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalProtocolError } from '../../src/core/errors.js';
import { Opcode, serializeFrame } from '../../src/core/frame.js';
import { createPair } from '../helpers/pair.js';

const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const isInvalidState = (e: unknown) =>
  e instanceof LocalProtocolError && e.code === 'SWITCHYARD_ERR_INVALID_STATE';

test('a pre-framed message is queued as the very same chunks and reaches the client', () => {
  const pair = createPair();
  const chunks = serializeFrame(Opcode.TEXT, text('x'.repeat(2000)));
  pair.server.conn.sendFramed(chunks);
  assert.equal(pair.server.conn.pendingBytes, chunks[0].length + chunks[1].length);
  const queued = pair.server.conn.dataToSend();
  assert.equal(queued[0], chunks[0], 'the header chunk is shared, not copied');
  assert.equal(queued[1], chunks[1], 'the payload chunk is shared, not copied');
  pair.server.conn.sendFramed(chunks);
  pair.flush();
  const event = pair.client.events[0];
  assert.ok(event.type === 'message');
  assert.equal(decode(event.data), 'x'.repeat(2000));
});

test('keeps its place among messages sent before and after it', () => {
  const pair = createPair();
  pair.server.conn.sendText('one');
  pair.server.conn.sendFramed(serializeFrame(Opcode.BINARY, Uint8Array.of(2)));
  pair.server.conn.sendText('three');
  pair.flush();
  const got = pair.client.events.map((e) => (e.type === 'message' ? decode(e.data) : e.type));
  assert.deepEqual(got, ['one', '\u0002', 'three']);
});

test('waits for a fragmented message to end instead of interleaving (RFC 6455 §5.4)', () => {
  const pair = createPair();
  pair.server.conn.sendText('Hel', false);
  const frame = serializeFrame(Opcode.TEXT, text('published'));
  pair.server.conn.sendFramed(frame);
  assert.equal(pair.server.conn.pendingBytes, 5 + frame[0].length, 'deferred bytes are counted');
  pair.flush();
  assert.equal(pair.client.events.length, 0, 'nothing complete yet');
  pair.server.conn.sendText('lo', true);
  pair.flush();
  const got = pair.client.events.map((e) => (e.type === 'message' ? decode(e.data) : e.type));
  assert.deepEqual(got, ['Hello', 'published']);
});

test('drops deferred messages when a close frame goes first (RFC 6455 §5.5.1)', () => {
  const pair = createPair();
  pair.server.conn.sendText('Hel', false);
  pair.server.conn.sendFramed(serializeFrame(Opcode.TEXT, text('late')));
  pair.server.conn.sendClose(1001);
  assert.equal(pair.server.conn.pendingBytes, 5 + 4, 'the fragment and the close frame only');
  pair.flush();
  assert.deepEqual(
    pair.client.events.map((e) => e.type),
    ['close'],
  );
});

test('refuses after a close frame was sent, on a client, and RSV1 without compression', () => {
  const pair = createPair();
  const frame = serializeFrame(Opcode.TEXT, text('x'));
  assert.throws(() => pair.client.conn.sendFramed(frame), isInvalidState);
  assert.throws(() => pair.server.conn.sendFramed(frame, true), isInvalidState);
  pair.server.conn.sendClose(1000);
  assert.throws(() => pair.server.conn.sendFramed(frame), isInvalidState);
});
