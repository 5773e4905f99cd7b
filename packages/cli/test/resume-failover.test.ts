/**
 * Resumable topics against real failures: two `switchyard serve --redis --replay` processes on
 * a real redis-server, a resuming client on instance A, a publisher on instance B sending
 * 10,000 numbered messages at a steady rate. Mid-stream, A is killed (SIGKILL), or the client's
 * socket is destroyed, or Redis restarts; the client must end with every message exactly once,
 * in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, ReconnectingWebSocket, type GapInfo } from 'switchyard';
import {
  freePort,
  pingRedis,
  redisServer,
  skipUnlessAvailable,
} from '../../switchyard/test/helpers/peers.js';

const BIN = fileURLToPath(new URL('../src/bin.ts', import.meta.url));
const TOTAL = 10_000;
type After = { after(fn: () => unknown): void };

/** Stops a child: SIGTERM, then SIGKILL after 2 s; resolves when it exited. */
async function stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
}

/** A redis-server with an append-only file in a temp dir, so that a restart keeps the data. */
async function durableRedis(t: After, path: string) {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn(
      path,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'yes',
      ],
      { stdio: 'ignore' },
    );
    for (let i = 0; i < 100 && !(await pingRedis(port)); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await start();
  t.after(async () => {
    if (child) await stop(child);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    /** A graceful restart (SIGTERM: Redis writes its append-only file), down for `ms`. */
    async restart(ms: number) {
      if (child) await stop(child);
      await new Promise((r) => setTimeout(r, ms));
      await start();
    },
  };
}

/** Starts `switchyard serve` on a free port; resolves with the process and its ws:// URL. */
async function serve(t: After, redisUrl: string) {
  const child = spawn(
    process.execPath,
    [
      '--conditions=switchyard-source',
      '--import',
      'tsx',
      BIN,
      'serve',
      '--port',
      '0',
      '--quiet',
      '--redis',
      redisUrl,
      '--replay',
      String(TOTAL + 100),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NO_COLOR: '1' } },
  );
  t.after(() => stop(child));
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}`)), 30_000);
    child.stdout!.setEncoding('utf8').on('data', (s: string) => {
      out += s;
      const match = /ws:\/\/127\.0\.0\.1:\d+/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(match[0]);
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
  });
  return { child, url };
}

/** The numbers of 1..TOTAL not in `got`, as ranges (`3001-3040, 3107`), for the failure message. */
function missing(got: readonly number[]): string {
  const seen = new Set(got);
  const ranges: string[] = [];
  for (let i = 1; i <= TOTAL; i++) {
    if (seen.has(i)) continue;
    let j = i;
    while (j < TOTAL && !seen.has(j + 1)) j++;
    ranges.push(i === j ? String(i) : `${i}-${j}`);
    i = j;
  }
  return ranges.slice(0, 10).join(', ') + (ranges.length > 10 ? ', ...' : '') || 'none';
}

type Failure = 'kill-instance' | 'cut-socket' | 'restart-redis';

async function run(t: After & { skip(reason: string): void }, failure: Failure) {
  const peer = await redisServer();
  if (!skipUnlessAvailable(t, peer)) return;
  const redis = await durableRedis(t, peer.path);
  const [a, b] = await Promise.all([serve(t, redis.url), serve(t, redis.url)]);
  let target = `${a.url}/broadcast`;
  const client = new ReconnectingWebSocket(() => target, {
    logger: false,
    resume: true,
    reconnect: { minDelay: 20, maxDelay: 200 },
  });
  t.after(() => client.close());
  const got: number[] = [];
  const gaps: GapInfo[] = [];
  const sockets = new Set<unknown>();
  client.on('open', ({ socket }) => sockets.add(socket));
  client.on('gap', (gap) => gaps.push(gap));
  let probes = 0;
  client.on('message', (data) => {
    const text = String(data);
    if (text.startsWith('probe')) probes++;
    else got.push(Number(text));
  });
  const publisher = await connect(`${b.url}/broadcast`);
  t.after(() => publisher.terminate());
  // Wait until the room spans both instances (their subscriptions reach Redis asynchronously).
  for (let i = 0; i < 100 && probes === 0; i++) {
    publisher.send(`probe ${i}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(probes > 0, 'a probe from B reached the client on A');

  // 10,000 messages at a steady rate: 100 every 10 ms.
  for (let i = 1; i <= TOTAL; i++) {
    publisher.send(String(i));
    if (i === 3000) {
      if (failure === 'kill-instance') {
        target = `${b.url}/broadcast`;
        a.child.kill('SIGKILL');
      } else if (failure === 'cut-socket') {
        client.socket?.socket.destroy();
      } else {
        void redis.restart(300);
      }
    }
    if (i % 100 === 0) await new Promise((r) => setTimeout(r, 10));
  }
  const deadline = Date.now() + 60_000;
  while (got.length < TOTAL && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(gaps, []);
  assert.equal(got.length, TOTAL, `got ${got.length} of ${TOTAL}; missing ${missing(got)}`);
  for (let i = 0; i < TOTAL; i++) {
    if (got[i] !== i + 1)
      assert.fail(`message ${i + 1} is ${got[i]} (${got.slice(Math.max(0, i - 3), i + 3)})`);
  }
  if (failure !== 'restart-redis') assert.ok(sockets.size >= 2, 'the client reconnected');
}

test('instance A is killed (SIGKILL) mid-stream: the client resumes on B, every message once, in order', (t) =>
  run(t, 'kill-instance'));

test('the network is cut (socket destroyed) mid-stream: every message once, in order', (t) =>
  run(t, 'cut-socket'));

test('Redis restarts mid-stream: every message once, in order', (t) => run(t, 'restart-redis'));
