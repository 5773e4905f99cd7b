import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MessageInbox,
  closedError,
  finalClose,
  gaveUpError,
  queueFullError,
} from '../../src/core/reconnecting-client.js';
import { OutboundQueue } from '../../src/core/reconnect.js';

test('the inbox keeps nothing before an iterator exists, then hands messages over in order', async () => {
  const inbox = new MessageInbox<string>();
  inbox.push('before');
  const it = inbox.iterator();
  inbox.push('one');
  inbox.push('two');
  assert.deepEqual(await it.next(), { value: 'one', done: false });
  assert.deepEqual(await it.next(), { value: 'two', done: false });
  const waiting = it.next();
  inbox.push('three');
  assert.deepEqual(await waiting, { value: 'three', done: false });
});

test('the inbox ends its reads when the connection ends, after what it kept', async () => {
  const inbox = new MessageInbox<string>();
  const it = inbox.iterator();
  const waiting = it.next();
  inbox.end();
  assert.deepEqual(await waiting, { value: undefined, done: true });
  const late = new MessageInbox<string>();
  const reader = late.iterator();
  late.push('kept');
  late.end();
  assert.deepEqual(await reader.next(), { value: 'kept', done: false });
  assert.deepEqual(await reader.next(), { value: undefined, done: true });
});

test('returning from the iterator releases waiting reads and keeps nothing more', async () => {
  const inbox = new MessageInbox<string>();
  const it = inbox.iterator();
  const waiting = it.next();
  assert.deepEqual(await it.return!(), { value: undefined, done: true });
  assert.deepEqual(await waiting, { value: undefined, done: true });
  inbox.push('ignored');
  const again = inbox.iterator();
  inbox.end();
  assert.deepEqual(await again.next(), { value: undefined, done: true });
});

test('the errors name the limit, the attempts and the state', () => {
  const queue = new OutboundQueue<string>(1, 4);
  queue.push('abc', 3);
  const full = queueFullError(queue, 'messages', 1);
  assert.equal(full.code, 'SWITCHYARD_ERR_RECONNECT_QUEUE_FULL');
  assert.match(full.message, /1 messages already wait .*maxQueuedMessages/);
  assert.match(queueFullError(queue, 'bytes', 2).message, /3 bytes wait .* 2 more .*\(4\)/);
  const gaveUp = gaveUpError('ws://h/', 3);
  assert.equal(gaveUp.code, 'SWITCHYARD_ERR_RECONNECT_GAVE_UP');
  assert.match(gaveUp.message, /ws:\/\/h\/ after 3 attempts/);
  assert.equal(closedError().code, 'SWITCHYARD_ERR_INVALID_STATE');
});

test("the last close is the socket's own, or 1006 for a socket that never opened", () => {
  assert.deepEqual(finalClose({ kind: 'close', code: 4000, reason: 'no' }), {
    code: 4000,
    reason: 'no',
  });
  assert.deepEqual(finalClose({ kind: 'network', error: new Error('refused') }), {
    code: 1006,
    reason: '',
  });
  assert.deepEqual(finalClose({ kind: 'handshake', status: 401, retryAfterMs: null }), {
    code: 1006,
    reason: '',
  });
});
