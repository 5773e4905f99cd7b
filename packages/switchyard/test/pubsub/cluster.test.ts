import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { ClusterRelay } from '../../src/pubsub/cluster.js';
import { closeClient, collector, until } from '../helpers/pubsub.js';

const WORKER = fileURLToPath(new URL('../fixtures/cluster-worker.ts', import.meta.url));

/** Forks a server process and resolves with its port; it is killed by `t.after`. */
async function startWorker(
  t: { after(fn: () => unknown): void },
  relay: ClusterRelay,
): Promise<{ child: ChildProcess; url: string }> {
  const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  t.after(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  });
  relay.add(child);
  const ready = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('worker not ready in 45 s')), 45_000);
    child.on('message', (m: { ready?: number }) => {
      if (m.ready !== undefined) {
        clearTimeout(timer);
        resolve(m.ready);
      }
    });
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
  });
  return { child, url: `ws://127.0.0.1:${await ready}` };
}

test('node:cluster backplane: a publish on one process reaches subscribers on two others, in order, without echo', async (t) => {
  const relay = new ClusterRelay();
  const [one, two, three] = await Promise.all([1, 2, 3].map(() => startWorker(t, relay)));
  const publisher = await collector(one.url, ['room']);
  const neighbour = await collector(one.url, ['room']);
  const onTwo = await collector(two.url, ['room']);
  const onThree = await collector(three.url, ['room']);
  const elsewhere = await collector(three.url, ['other']);
  t.after(() =>
    Promise.all([publisher, neighbour, onTwo, onThree, elsewhere].map((c) => closeClient(c.ws))),
  );
  await until(() => relay.subscriberCount('room') === 3, 'three processes subscribed', 5000);

  const count = 100;
  for (let i = 0; i < count; i++) {
    publisher.ws.send(JSON.stringify({ publish: 'room', data: `m${i}` }));
  }
  const expected = Array.from({ length: count }, (_, i) => `m${i}`);
  for (const c of [neighbour, onTwo, onThree]) assert.deepEqual(await c.waitFor(count), expected);
  // Let anything duplicated or echoed arrive before checking that nothing did.
  await new Promise((resolve) => setTimeout(resolve, 100));
  for (const c of [neighbour, onTwo, onThree]) assert.equal(c.messages.length, count);
  assert.deepEqual(publisher.messages, [], 'the sender is skipped');
  assert.deepEqual(elsewhere.messages, [], 'other topics get nothing');

  // The last subscriber of a process leaving withdraws that process's interest.
  await closeClient(onTwo.ws);
  await until(() => relay.subscriberCount('room') === 2, 'two processes left', 5000);
});
