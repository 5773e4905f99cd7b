import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Connection,
  CLOSE_TRANSITIONS,
  NEED_DATA,
  PAUSED,
  ReadyState,
  truncateUtf8,
} from '../../src/core/connection.js';
import { LocalProtocolError, RemoteProtocolError } from '../../src/core/errors.js';
import { concat, createPair } from '../helpers/pair.js';

const text = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

test('a text message from the client reaches the server, masked on the wire (RFC 6455 §5.3)', () => {
  const pair = createPair();
  pair.client.conn.sendText('Hello');
  const wire = pair.take(pair.client);
  assert.equal(wire[0], 0x81);
  assert.equal(wire[1], 0x80 | 5, 'mask bit set and length 5');
  pair.server.conn.receiveData(wire);
  const event = pair.server.conn.nextEvent();
  assert.ok(typeof event === 'object' && event.type === 'message');
  assert.equal(event.binary, false);
  assert.equal(decode(event.data), 'Hello');
  assert.equal(pair.server.conn.nextEvent(), NEED_DATA);
});

test('a binary message from the server reaches the client unmasked (RFC 6455 §5.1)', () => {
  const pair = createPair();
  pair.server.conn.sendBinary(new Uint8Array([1, 2, 3]));
  const wire = pair.take(pair.server);
  assert.deepEqual([...wire], [0x82, 0x03, 1, 2, 3]);
  pair.client.conn.receiveData(wire);
  const event = pair.client.conn.nextEvent();
  assert.ok(typeof event === 'object' && event.type === 'message');
  assert.equal(event.binary, true);
  assert.deepEqual([...event.data], [1, 2, 3]);
});

test('a fragmented send goes as a first frame and continuation frames (RFC 6455 §5.4)', () => {
  const pair = createPair();
  pair.server.conn.sendText('Hel', false);
  pair.server.conn.sendText('lo', true);
  const wire = pair.take(pair.server);
  // RFC 6455 §5.7: the fragmented unmasked "Hello".
  assert.deepEqual([...wire], [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);
  pair.client.conn.receiveData(wire);
  const event = pair.client.conn.nextEvent();
  assert.ok(typeof event === 'object' && event.type === 'message');
  assert.equal(decode(event.data), 'Hello');
});

test('refuses to interleave another data message into a fragmented send', () => {
  const pair = createPair();
  pair.client.conn.sendText('a', false);
  assert.throws(
    () => pair.client.conn.sendBinary(new Uint8Array(1)),
    (e: unknown) => e instanceof LocalProtocolError && e.code === 'SWITCHYARD_ERR_INVALID_STATE',
  );
  // Control frames may still be sent between fragments (RFC 6455 §5.4).
  pair.client.conn.sendPing(text('x'));
  pair.client.conn.sendText('b');
  pair.flush();
  const types = pair.server.events.map((e) => e.type);
  assert.deepEqual(types, ['ping', 'message']);
});

test('answers a ping with a pong carrying the same payload (RFC 6455 §5.5.2)', () => {
  const pair = createPair();
  pair.client.conn.sendPing(text('Hello'));
  pair.flush();
  assert.equal(pair.server.events[0].type, 'ping');
  const pong = pair.client.events[0];
  assert.ok(pong.type === 'pong');
  assert.equal(decode(pong.data), 'Hello');
});

test('does not answer pings when autoPong is off', () => {
  const pair = createPair({}, { autoPong: false });
  pair.client.conn.sendPing(text('x'));
  pair.flush();
  assert.equal(pair.server.events[0].type, 'ping');
  assert.equal(pair.client.events.length, 0);
});

test('sends an unsolicited pong as a heartbeat that needs no answer (RFC 6455 §5.5.3)', () => {
  const pair = createPair();
  pair.client.conn.sendPong(text('beat'));
  pair.flush();
  assert.equal(pair.server.events[0].type, 'pong');
  assert.equal(pair.client.events.length, 0);
});

test('a close started by the client: the server echoes the code and closes TCP first (RFC 6455 §7.1.1)', () => {
  const pair = createPair();
  pair.client.conn.sendClose(1000, 'bye');
  assert.equal(pair.client.conn.readyState, ReadyState.CLOSING);
  const wire = pair.take(pair.client);
  pair.server.conn.receiveData(wire);
  const event = pair.server.conn.nextEvent();
  assert.deepEqual(event, { type: 'close', code: 1000, reason: 'bye' });
  assert.equal(pair.server.conn.closeTransport, true, 'the server ends TCP after replying');
  const reply = pair.take(pair.server);
  assert.deepEqual([...reply], [0x88, 0x02, 0x03, 0xe8], 'the reply echoes 1000');
  pair.client.conn.receiveData(reply);
  assert.deepEqual(pair.client.conn.nextEvent(), { type: 'close', code: 1000, reason: '' });
  assert.equal(
    pair.client.conn.closeTransport,
    false,
    'the client waits for the server to close TCP',
  );
  assert.equal(pair.client.conn.closeHandshakeComplete, true);
  pair.client.conn.receiveEof();
  assert.equal(pair.client.conn.readyState, ReadyState.CLOSED);
  assert.deepEqual(pair.client.conn.closeInfo, { code: 1000, reason: '', wasClean: true });
  assert.deepEqual(pair.server.conn.closeInfo, { code: 1000, reason: 'bye', wasClean: true });
});

test('a close started by the server ends TCP only once the client has answered', () => {
  const pair = createPair();
  pair.server.conn.sendClose(1001, 'going away');
  assert.equal(pair.server.conn.closeTransport, false);
  pair.client.conn.receiveData(pair.take(pair.server));
  assert.deepEqual(pair.client.conn.nextEvent(), {
    type: 'close',
    code: 1001,
    reason: 'going away',
  });
  pair.server.conn.receiveData(pair.take(pair.client));
  assert.deepEqual(pair.server.conn.nextEvent(), { type: 'close', code: 1001, reason: '' });
  assert.equal(pair.server.conn.closeTransport, true);
  assert.equal(pair.server.conn.closeHandshakeComplete, true);
});

test('a close frame without a code is reported as 1005 and answered with an empty close (RFC 6455 §7.1.5)', () => {
  const pair = createPair();
  pair.client.conn.sendClose();
  pair.server.conn.receiveData(pair.take(pair.client));
  assert.deepEqual(pair.server.conn.nextEvent(), { type: 'close', code: 1005, reason: '' });
  assert.deepEqual([...pair.take(pair.server)], [0x88, 0x00]);
});

test('a second sendClose does nothing', () => {
  const pair = createPair();
  pair.client.conn.sendClose(1000);
  pair.take(pair.client);
  pair.client.conn.sendClose(1000);
  assert.equal(pair.take(pair.client).length, 0);
});

test('refuses to send data after sending a close frame (RFC 6455 §5.5.1)', () => {
  const pair = createPair();
  pair.client.conn.sendClose(1000);
  for (const send of [
    () => pair.client.conn.sendText('x'),
    () => pair.client.conn.sendBinary(new Uint8Array(1)),
    () => pair.client.conn.sendPing(),
    () => pair.client.conn.sendPong(),
  ]) {
    assert.throws(
      send,
      (e: unknown) => e instanceof LocalProtocolError && e.code === 'SWITCHYARD_ERR_INVALID_STATE',
    );
  }
});

test('does not answer pings that arrive after its own close frame', () => {
  const pair = createPair();
  pair.client.conn.sendPing(text('late'));
  const ping = pair.take(pair.client);
  pair.server.conn.sendClose(1000);
  pair.take(pair.server);
  pair.server.conn.receiveData(ping);
  assert.equal((pair.server.conn.nextEvent() as { type: string }).type, 'ping');
  assert.equal(pair.take(pair.server).length, 0);
});

test('still delivers messages that arrive after its own close frame, before the peer closes', () => {
  const pair = createPair();
  pair.client.conn.sendText('in flight');
  const message = pair.take(pair.client);
  pair.server.conn.sendClose(1000);
  pair.server.conn.receiveData(message);
  const event = pair.server.conn.nextEvent();
  assert.ok(typeof event === 'object' && event.type === 'message');
});

test('ignores everything after the peer close frame (RFC 6455 §5.5.1)', () => {
  const pair = createPair();
  pair.client.conn.sendClose(1000);
  const close = pair.take(pair.client);
  const server = new Connection({ role: 'server' });
  const extra = new Connection({ role: 'client' });
  extra.sendText('after');
  server.receiveData(concat([close, concat(extra.dataToSend())]));
  assert.equal((server.nextEvent() as { type: string }).type, 'close');
  assert.equal(server.nextEvent(), NEED_DATA);
  server.receiveData(new Uint8Array([0x81, 0x80, 0, 0, 0, 0]));
  assert.equal(server.nextEvent(), NEED_DATA);
});

test('rejects control payloads over 125 bytes from the local caller (RFC 6455 §5.5)', () => {
  const conn = new Connection({ role: 'client' });
  assert.throws(() => conn.sendPing(new Uint8Array(126)), LocalProtocolError);
  assert.throws(() => conn.sendPong(new Uint8Array(126)), LocalProtocolError);
  conn.sendPing(new Uint8Array(125));
});

test('rejects close codes that must not be sent, such as 1005 and 1006 (RFC 6455 §7.4.1)', () => {
  const conn = new Connection({ role: 'client' });
  assert.throws(() => conn.sendClose(1005), LocalProtocolError);
  assert.throws(() => conn.sendClose(1006), LocalProtocolError);
  assert.throws(() => conn.sendClose(1000, 'x'.repeat(124)), LocalProtocolError);
});

test('refuses RSV1 when compression was not negotiated', () => {
  const conn = new Connection({ role: 'server' });
  assert.throws(() => conn.sendText('x', true, true), LocalProtocolError);
});

test('fails with 1002 when a client sends an unmasked frame, queues the close and ends TCP', () => {
  const server = new Connection({ role: 'server' });
  server.receiveData(new Uint8Array([0x81, 0x01, 0x61]));
  const event = server.nextEvent();
  assert.ok(typeof event === 'object' && event.type === 'error');
  assert.ok(event.error instanceof RemoteProtocolError);
  assert.equal(event.error.closeCode, 1002);
  assert.equal(server.closeTransport, true);
  assert.equal(server.readyState, ReadyState.CLOSING);
  const out = concat(server.dataToSend());
  assert.equal(out[0], 0x88);
  assert.equal((out[2] << 8) | out[3], 1002);
  assert.ok(out[1] <= 125, 'the close reason fits a control frame');
  assert.equal(server.sentCloseCode, 1002);
  server.receiveData(new Uint8Array([0x81, 0x81, 0, 0, 0, 0, 0x61]));
  assert.equal(server.nextEvent(), NEED_DATA, 'nothing more is processed after a failure');
  server.receiveEof();
  assert.equal(server.readyState, ReadyState.CLOSED);
  assert.equal(server.closeInfo.code, 1002);
  assert.equal(server.closeInfo.wasClean, false);
});

test('fail() from the driver queues the close frame with the error code', () => {
  const conn = new Connection({ role: 'server' });
  conn.fail(
    new RemoteProtocolError('SWITCHYARD_ERR_CONTROL_RATE', 'too many pings', { closeCode: 1008 }),
  );
  const out = concat(conn.dataToSend());
  assert.equal((out[2] << 8) | out[3], 1008);
  assert.equal(conn.closeTransport, true);
  conn.fail(new RemoteProtocolError('SWITCHYARD_ERR_CONTROL_RATE', 'again', { closeCode: 1008 }));
  assert.equal(conn.dataToSend().length, 0, 'a second failure sends nothing more');
});

test('a transport that ends without a close frame reports 1006, not clean', () => {
  const conn = new Connection({ role: 'client' });
  conn.receiveEof();
  assert.equal(conn.readyState, ReadyState.CLOSED);
  assert.deepEqual(conn.closeInfo, { code: 1006, reason: '', wasClean: false });
  assert.throws(() => conn.sendText('x'), LocalProtocolError);
  conn.receiveData(new Uint8Array([0x81, 0x00]));
  assert.equal(conn.nextEvent(), NEED_DATA);
});

test('pauses on a compressed message until the inflated bytes come back, keeping order', () => {
  const pair = createPair({ compression: true }, { compression: true });
  pair.client.conn.sendText(new Uint8Array([1, 2, 3]), true, true);
  pair.client.conn.sendText('after');
  pair.server.conn.receiveData(pair.take(pair.client));
  const compressed = pair.server.conn.nextEvent();
  assert.ok(typeof compressed === 'object' && compressed.type === 'compressed');
  assert.equal(pair.server.conn.nextEvent(), PAUSED);
  const message = pair.server.conn.receiveInflated({ binary: false, data: text('inflated') });
  assert.ok(message.type === 'message');
  assert.equal(decode(message.data), 'inflated');
  const next = pair.server.conn.nextEvent();
  assert.ok(typeof next === 'object' && next.type === 'message');
  assert.equal(decode(next.data), 'after');
});

test('fails with 1007 when an inflated text message is not UTF-8, and 1009 when too big', () => {
  for (const [data, code, options] of [
    [new Uint8Array([0xff]), 1007, {}],
    [new Uint8Array(11), 1009, { maxPayload: 10 }],
  ] as const) {
    const pair = createPair({ compression: true }, { compression: true, ...options });
    pair.client.conn.sendText(new Uint8Array([1]), true, true);
    pair.server.conn.receiveData(pair.take(pair.client));
    pair.server.conn.nextEvent();
    const result = pair.server.conn.receiveInflated({ binary: false, data });
    assert.ok(result.type === 'error');
    assert.equal(result.error.closeCode, code);
    assert.equal(pair.server.conn.closeTransport, true);
  }
});

test('receiveInflated without a compressed message out is local misuse', () => {
  const conn = new Connection({ role: 'server' });
  assert.throws(
    () => conn.receiveInflated({ binary: true, data: new Uint8Array(0) }),
    LocalProtocolError,
  );
});

test('an inflation error fails the connection with its code', () => {
  const pair = createPair({ compression: true }, { compression: true });
  pair.client.conn.sendBinary(new Uint8Array([1]), true, true);
  pair.server.conn.receiveData(pair.take(pair.client));
  pair.server.conn.nextEvent();
  const result = pair.server.conn.receiveInflated(
    new RemoteProtocolError('SWITCHYARD_ERR_INFLATE', 'corrupt', { closeCode: 1007 }),
  );
  assert.ok(result.type === 'error');
  assert.equal(pair.server.conn.sentCloseCode, 1007);
});

test('the closing states table maps to browser readyStates', () => {
  assert.equal(CLOSE_TRANSITIONS.open.readyState, ReadyState.OPEN);
  assert.equal(CLOSE_TRANSITIONS.sent.readyState, ReadyState.CLOSING);
  assert.equal(CLOSE_TRANSITIONS.both.readyState, ReadyState.CLOSING);
  assert.equal(CLOSE_TRANSITIONS.open.onReceive, 'reply');
  assert.equal(CLOSE_TRANSITIONS.sent.onReceive, 'complete');
});

test('pendingBytes counts what is queued and not yet taken', () => {
  const conn = new Connection({ role: 'server' });
  conn.sendBinary(new Uint8Array(10));
  assert.equal(conn.pendingBytes, 12);
  conn.dataToSend();
  assert.equal(conn.pendingBytes, 0);
  assert.deepEqual(conn.dataToSend(), []);
});

test('truncateUtf8 never cuts inside a character', () => {
  assert.equal(truncateUtf8('abc', 5), 'abc');
  assert.equal(truncateUtf8('aé', 2), 'a');
  assert.equal(truncateUtf8('€€', 4), '€');
  assert.equal(truncateUtf8('𝄞x', 3), '');
});
