/**
 * Fan-out benchmark: deliveries per second from one publisher to 1,000 subscribers.
 *
 * Scenarios (each a fresh server process, runs taking turns so that drift of the machine hits
 * them alike; the median of the runs is reported):
 * - `switchyard`: `server.publish` (framed once, the same bytes written to every subscriber);
 * - `ws`: a loop over the subscribers calling `send`;
 * - `bun`: Bun's `server.publish` (uWebSockets), when the `bun` binary is installed;
 * - `switchyard-redis`: two Switchyard processes and a redis-server: the publisher on one, the
 *   1,000 subscribers on the other, through @switchyard/redis.
 *
 * This process is the client: 1,000 subscriber connections and one publisher connection (the
 * `ws` client library), counting what arrives. A message is 64 bytes; the publisher sends them
 * in bursts so that the servers are never idle. The client's own CPU time is reported: near one
 * full core, the figure would be the client's, not the server's.
 *
 * Usage: node --conditions=switchyard-source --import tsx bench/fanout.ts
 *        [--subscribers 1000] [--messages 1000] [--runs 3] [--only a,b] [--out file.json]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const SUBSCRIBERS = Number(arg('subscribers', '1000'));
const MESSAGES = Number(arg('messages', '1000'));
const RUNS = Number(arg('runs', '3'));
const BURST = 50;
const TIMEOUT_MS = 60_000;
const BUN = join(root, 'node_modules', '.bin', 'bun');
const REDIS = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p));

type Scenario = 'switchyard' | 'ws' | 'bun' | 'switchyard-redis';
const all: Scenario[] = ['switchyard', 'ws', 'bun', 'switchyard-redis'];
const only = arg('only', '');
const scenarios = all.filter((s) => only === '' || only.split(',').includes(s));

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function startServer(
  impl: 'switchyard' | 'ws' | 'bun',
  extra: string[] = [],
): Promise<{ port: number; child: ChildProcess }> {
  const child =
    impl === 'bun'
      ? spawn(BUN, [join(here, 'fanout', 'bun-server.ts')], { stdio: ['pipe', 'pipe', 'inherit'] })
      : spawn(
          process.execPath,
          [
            '--conditions=switchyard-source',
            '--import',
            'tsx',
            join(here, 'fanout', 'server.ts'),
            impl,
            ...extra,
          ],
          { stdio: ['pipe', 'pipe', 'inherit'], cwd: root },
        );
  children.add(child);
  child.once('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${impl} server did not start`)), 30_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve({ port: (JSON.parse(line) as { port: number }).port, child });
    });
    child.once('exit', (code) => reject(new Error(`${impl} server exited with ${code}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.stdin?.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await exited;
  clearTimeout(timer);
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  return port;
}

async function openAll(url: string, n: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  // In batches, so that the accept queue never overflows.
  for (let i = 0; i < n; i += 100) {
    const batch = Array.from(
      { length: Math.min(100, n - i) },
      () => new WebSocket(url, { perMessageDeflate: false }),
    );
    await Promise.all(batch.map((ws) => once(ws, 'open')));
    sockets.push(...batch);
  }
  return sockets;
}

/** One run: returns deliveries per second and the client's CPU share. */
async function measure(
  subUrl: string,
  pubUrl: string,
): Promise<{ rate: number; clientCpu: number }> {
  const subs = await openAll(subUrl, SUBSCRIBERS);
  const [pub] = await openAll(pubUrl, 1);
  const expected = SUBSCRIBERS * MESSAGES;
  let received = 0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  for (const ws of subs) {
    ws.on('message', () => {
      if (++received === expected) done();
    });
  }
  // A warm-up message through the whole path (and, through Redis, a check that it is up).
  const warm = new Promise<void>((resolve) =>
    subs[subs.length - 1].once('message', () => resolve()),
  );
  for (let i = 0; i < 50; i++) {
    pub.send('warm-up');
    const ok = await Promise.race([
      warm.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 100)),
    ]);
    if (ok) break;
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  received = 0;
  const payload = Buffer.alloc(64, 'm');
  const cpuStart = process.cpuUsage();
  const start = process.hrtime.bigint();
  for (let sent = 0; sent < MESSAGES; sent += BURST) {
    for (let i = 0; i < BURST && sent + i < MESSAGES; i++) pub.send(payload);
    await new Promise((resolve) => setImmediate(resolve));
  }
  // A server too slow to finish in time is measured on what it delivered so far.
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, TIMEOUT_MS)));
  await Promise.race([finished, timeout]);
  clearTimeout(timer);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const cpu = process.cpuUsage(cpuStart);
  for (const ws of [...subs, pub]) ws.terminate();
  return { rate: received / seconds, clientCpu: (cpu.user + cpu.system) / 1e6 / seconds };
}

async function runScenario(scenario: Scenario): Promise<{ rate: number; clientCpu: number }> {
  if (scenario === 'switchyard-redis') {
    const port = await freePort();
    const redis = spawn(
      REDIS!,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--loglevel',
        'warning',
      ],
      { stdio: 'ignore' },
    );
    children.add(redis);
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const url = `redis://127.0.0.1:${port}`;
      const a = await startServer('switchyard', ['--redis', url]);
      const b = await startServer('switchyard', ['--redis', url]);
      try {
        return await measure(`ws://127.0.0.1:${b.port}/sub`, `ws://127.0.0.1:${a.port}/pub`);
      } finally {
        await Promise.all([stop(a.child), stop(b.child)]);
      }
    } finally {
      redis.kill('SIGTERM');
      children.delete(redis);
    }
  }
  const server = await startServer(scenario);
  try {
    return await measure(`ws://127.0.0.1:${server.port}/sub`, `ws://127.0.0.1:${server.port}/pub`);
  } finally {
    await stop(server.child);
  }
}

const available = scenarios.filter((s) => {
  if (s === 'bun' && !existsSync(BUN)) {
    console.log('bun: skipped, node_modules/.bin/bun is not installed');
    return false;
  }
  if (s === 'switchyard-redis' && REDIS === undefined) {
    console.log('switchyard-redis: skipped, redis-server is not installed');
    return false;
  }
  return true;
});
console.log(
  `fan-out: 1 publisher -> ${SUBSCRIBERS} subscribers, ${MESSAGES} messages of 64 B, ${RUNS} runs; load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} on ${cpus().length} CPUs`,
);
const results: Record<string, { runs: number[]; median: number; clientCpu: number }> = {};
for (let run = 0; run < RUNS; run++) {
  for (const scenario of available) {
    const r = await runScenario(scenario);
    const entry = (results[scenario] ??= { runs: [], median: 0, clientCpu: 0 });
    entry.runs.push(r.rate);
    entry.clientCpu = Math.max(entry.clientCpu, r.clientCpu);
    process.stdout.write(
      `  run ${run + 1} ${scenario}: ${Math.round(r.rate).toLocaleString('en')} deliveries/s (client CPU ${(r.clientCpu * 100).toFixed(0)}%)\n`,
    );
  }
}
console.log('\nmedian deliveries per second');
for (const [scenario, entry] of Object.entries(results)) {
  const sorted = [...entry.runs].sort((a, b) => a - b);
  entry.median = sorted[Math.floor(sorted.length / 2)];
  const vs =
    results.switchyard && scenario !== 'switchyard'
      ? ` (switchyard is ${(results.switchyard.median / entry.median).toFixed(2)}x)`
      : '';
  console.log(
    `  ${scenario.padEnd(17)} ${Math.round(entry.median).toLocaleString('en').padStart(12)}${vs}`,
  );
}
const out = arg('out', '');
if (out !== '') {
  writeFileSync(
    out,
    `${JSON.stringify({ date: new Date().toISOString(), subscribers: SUBSCRIBERS, messages: MESSAGES, load: loadavg(), cpus: cpus().length, results }, null, 2)}\n`,
  );
}
process.exit(0);
