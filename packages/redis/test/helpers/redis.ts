/**
 * Real Redis for the backplane tests: one redis-server (from the library's peers helper), and a
 * three-node Redis Cluster of our own. Everything listens on 127.0.0.1 and is stopped by the
 * test that started it; a cluster node's files go to a temporary directory removed at stop.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  freePort,
  pingRedis,
  redisServer,
  skipUnlessAvailable,
  startRedis,
  type SkippableContext,
} from '../../../switchyard/test/helpers/peers.js';

export { redisServer, skipUnlessAvailable, startRedis, pingRedis, type SkippableContext };

const REDIS_CLI = ['/usr/bin/redis-cli', '/usr/local/bin/redis-cli'];

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** Runs redis-cli with `args`; rejects on a non-zero exit or after `ms`. */
export async function redisCli(args: readonly string[], ms = 10_000): Promise<string> {
  const { existsSync } = await import('node:fs');
  const cli = REDIS_CLI.find((p) => existsSync(p));
  if (cli === undefined) throw new Error('redis-cli is not installed (it comes with redis-tools)');
  const child = spawn(cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  live.delete(child);
  if (code !== 0) throw new Error(`redis-cli ${args.join(' ')} exited with ${code}:\n${out}`);
  return out;
}

/** Whether `port` can be bound on 127.0.0.1 right now. */
async function canBind(port: number): Promise<boolean> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * A port for a cluster node: it and its cluster bus port (port + 10000) are free. Taken from
 * 20000-29999, below the ephemeral range, so that the bus port exists and is rarely taken.
 */
async function freeClusterPort(taken: readonly number[]): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = 20000 + Math.floor(Math.random() * 10000);
    if (taken.includes(port)) continue;
    if ((await canBind(port)) && (await canBind(port + 10000))) return port;
  }
  return freePort(); // not expected; the node will say why it cannot start
}

/** A three-node Redis Cluster (three masters, no replicas) on loopback ports. */
export interface RedisCluster {
  ports: number[];
  urls: string[];
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
  live.delete(child);
}

/**
 * Starts three `redis-server --cluster-enabled yes` nodes and joins them with
 * `redis-cli --cluster create`, then waits until the cluster reports `cluster_state:ok`.
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  const check = await redisServer();
  if (!check.available) throw new Error(check.reason);
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-redis-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    await Promise.all(children.map(stopChild));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const port = await freeClusterPort(ports);
      const child = spawn(
        check.path,
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '2000',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'no',
          '--loglevel',
          'warning',
        ],
        { stdio: 'ignore' },
      );
      live.add(child);
      children.push(child);
      ports.push(port);
    }
    for (const port of ports) {
      const deadline = Date.now() + 5000;
      while (!(await pingRedis(port, 250))) {
        if (Date.now() > deadline) throw new Error(`cluster node on ${port} did not start`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    await redisCli([
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ]);
    const deadline = Date.now() + 10_000;
    for (const port of ports) {
      for (;;) {
        const info = await redisCli(['-p', String(port), 'cluster', 'info']);
        if (info.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error(`cluster not ok on ${port}:\n${info}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    return { ports, urls: ports.map((p) => `redis://127.0.0.1:${p}`), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Polls `condition` every 10 ms until it holds; throws after `ms`. */
export async function until(
  condition: () => boolean | Promise<boolean>,
  what: string,
  ms = 5000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
