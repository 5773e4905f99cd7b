import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import {
  BackplaneError,
  InProcessBackplane,
  InProcessBus,
  type Backplane,
  type BackplaneHost,
  type BackplaneMessage,
} from '../../src/pubsub/backplane.js';
import { decodeEnvelope, encodeEnvelope, createInstanceId } from '../../src/pubsub/envelope.js';
import { startServer } from '../helpers/server.js';
import { closeClient, collector, serveTopics, until } from '../helpers/pubsub.js';

test('in-process: two servers on one bus share topics, with no echo to the publisher', async (t) => {
  const bus = new InProcessBus();
  const a = await startServer({ pubsub: { backplane: new InProcessBackplane({ bus }) } });
  const b = await startServer({ pubsub: { backplane: new InProcessBackplane({ bus }) } });
  t.after(() => Promise.all([a.close(), b.close()]));
  serveTopics(a.server);
  serveTopics(b.server);
  const onA = await collector(a.url, ['chat']);
  const onB = await collector(b.url, ['chat']);
  t.after(() => Promise.all([onA, onB].map((c) => closeClient(c.ws))));
  await until(
    () => b.server.subscriberCount('chat') === 1 && a.server.subscriberCount('chat') === 1,
    'subscribers',
  );
  for (let i = 0; i < 10; i++) a.server.publish('chat', `a${i}`);
  b.server.publish('chat', 'b0');
  await onB.waitFor(11);
  await onA.waitFor(11);
  const expected = [...Array.from({ length: 10 }, (_, i) => `a${i}`), 'b0'];
  assert.deepEqual(onB.messages, expected);
  assert.deepEqual(onA.messages, expected, 'each message exactly once, none echoed');
  assert.equal(b.server.pubsub.stats.received, 10);
  assert.equal(a.server.pubsub.stats.received, 1);
});

test('in-process: an instance without subscribers on a topic is not sent its messages', async (t) => {
  const bus = new InProcessBus();
  const delivered: BackplaneMessage[] = [];
  const host = (): BackplaneHost => ({
    deliver: (m) => delivered.push(m),
    reportError: () => {},
    resync: () => {},
  });
  const one = new InProcessBackplane({ bus });
  const two = new InProcessBackplane({ bus });
  one.start(host());
  two.start(host());
  t.after(() => {
    one.close();
    two.close();
  });
  const message = { topic: 't', data: Uint8Array.of(1), binary: true };
  one.publish(message);
  assert.equal(delivered.length, 0);
  two.subscribe('t');
  one.publish(message);
  two.publish(message);
  assert.equal(delivered.length, 1, 'delivered to two only, and two never hears itself');
  two.unsubscribe('t');
  one.publish(message);
  assert.equal(delivered.length, 1);
});

test('a failing backplane never crashes the app: failures are reported with their stage', async (t) => {
  const calls: string[] = [];
  let host: BackplaneHost | undefined;
  const broken: Backplane = {
    start(h) {
      host = h;
      return Promise.reject(new Error('cannot connect'));
    },
    subscribe() {
      calls.push('subscribe');
      throw new Error('cannot subscribe');
    },
    unsubscribe() {
      calls.push('unsubscribe');
      return Promise.reject(new Error('cannot unsubscribe'));
    },
    publish() {
      calls.push('publish');
      throw new Error('cannot publish');
    },
    close() {
      calls.push('close');
      return Promise.reject(new Error('cannot close'));
    },
  };
  const reported: Array<{ stage: string; error: BackplaneError }> = [];
  const onError = (message: unknown) =>
    reported.push(message as { stage: string; error: BackplaneError });
  diagnosticsChannel.subscribe('switchyard:backplane-error', onError);
  t.after(() => diagnosticsChannel.unsubscribe('switchyard:backplane-error', onError));

  const s = await startServer({ pubsub: { backplane: broken } });
  t.after(() => s.close());
  serveTopics(s.server);
  const local = await collector(s.url, ['t']);
  await until(() => s.server.subscriberCount('t') === 1, 'the subscriber');
  assert.equal(s.server.publish('t', 'still served'), 1);
  await local.waitFor(1);
  assert.deepEqual(local.messages, ['still served']);
  // A remote message that makes fan-out throw is a delivery failure, not a crash.
  host!.deliver(
    Object.defineProperty({ data: Uint8Array.of(1), binary: true }, 'topic', {
      get() {
        throw new Error('bad message');
      },
    }) as BackplaneMessage,
  );
  await closeClient(local.ws);
  await until(() => s.server.subscriberCount('t') === 0, 'unsubscribe');
  await s.close();
  await until(() => reported.length >= 6, 'six reports');
  assert.deepEqual(reported.map((r) => r.stage).sort(), [
    'connect',
    'connect',
    'delivery',
    'publish',
    'subscribe',
    'subscribe',
  ]);
  assert.ok(
    reported.every(
      (r) => r.error instanceof BackplaneError && r.error.code === 'SWITCHYARD_ERR_BACKPLANE',
    ),
  );
  assert.equal(s.server.pubsub.stats.backplaneErrors, 6);
  assert.deepEqual(calls, ['subscribe', 'publish', 'unsubscribe', 'close']);
});

test('envelopes carry origin, topic, type and payload, and reject what is not one', () => {
  const origin = createInstanceId();
  assert.match(origin, /^[0-9a-f]{16}$/);
  const message = { topic: 'été/1', data: Buffer.from('payload'), binary: false };
  const bytes = encodeEnvelope(origin, message);
  const back = decodeEnvelope(bytes);
  assert.ok(back);
  assert.equal(back.origin, origin);
  assert.equal(back.topic, 'été/1');
  assert.equal(back.binary, false);
  assert.equal(Buffer.from(back.data).toString(), 'payload');
  const binary = decodeEnvelope(
    encodeEnvelope(origin, { topic: '', data: new Uint8Array(0), binary: true }),
  );
  assert.ok(binary && binary.binary && binary.topic === '' && binary.data.length === 0);
  assert.equal(decodeEnvelope(Buffer.from('hello')), null, 'not an envelope');
  assert.equal(decodeEnvelope(bytes.subarray(0, 12)), null, 'cut short');
  assert.equal(decodeEnvelope(Uint8Array.of(2, 0, 1, 0x41, 0, 0)), null, 'unknown version');
  assert.throws(() => encodeEnvelope('', message), RangeError);
});
