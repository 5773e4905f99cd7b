import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type WebSocket } from 'switchyard';
import { RedisBackplane } from '@switchyard/redis';
import { startServe } from '../src/serve/server.js';
import {
  redisServer,
  skipUnlessAvailable,
  startRedis,
} from '../../switchyard/test/helpers/peers.js';

function nextMessage(ws: WebSocket, ms = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message in time')), ms);
    ws.once('message', (data) => {
      clearTimeout(timer);
      resolve(String(data));
    });
  });
}

test('two serve instances on one Redis share the /broadcast room', async (t) => {
  const peer = await redisServer();
  if (!skipUnlessAvailable(t, peer)) return;
  const redis = await startRedis();
  t.after(() => redis.stop());
  const a = await startServe({
    port: 0,
    host: '127.0.0.1',
    backplane: new RedisBackplane({ url: redis.url }),
  });
  t.after(() => a.close());
  const b = await startServe({
    port: 0,
    host: '127.0.0.1',
    backplane: new RedisBackplane({ url: redis.url }),
  });
  t.after(() => b.close());
  const onA = await connect(`${a.wsUrl}/broadcast`);
  t.after(() => onA.terminate());
  const onB = await connect(`${b.wsUrl}/broadcast`);
  t.after(() => onB.terminate());
  // Subscriptions reach Redis asynchronously: retry until the room spans both (bounded).
  let received: string | null = null;
  for (let i = 0; i < 20 && received === null; i++) {
    const arrival = nextMessage(onB, 250).catch(() => null);
    onA.send(`hello ${i}`);
    received = await arrival;
  }
  assert.match(String(received), /^hello \d+$/, 'a message sent on one instance reaches the other');
  const back = nextMessage(onA);
  onB.send('and back');
  // The sender's own instance echoes to the room as well; skip anything older.
  let got = await back;
  for (let i = 0; i < 20 && got !== 'and back'; i++) got = await nextMessage(onA);
  assert.equal(got, 'and back');
});
