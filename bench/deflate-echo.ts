/**
 * Compressed echo, Switchyard against ws with the same permessage-deflate settings (context
 * takeover both ways, 15-bit windows, zlib's default level and memLevel, threshold 0 so every
 * message is compressed, 10 zlib jobs at once).
 *
 * Theory of operation. Each server runs in a child process (this file with `--serve`); the
 * parent drives it with `ws` clients that keep one message in flight each, and counts echoes
 * for a fixed time after a warm-up. The servers take turns (ours, ws, ours, ws ...) and the
 * median of the runs is reported with the server's CPU time per message (from its own
 * `process.cpuUsage`), so that the client's cost, the same for both, is not in that column.
 * `npm run bench` has a scenario of its own with the C load generator (echo-deflate); this
 * script stays for quick comparisons with Node clients.
 *
 * With `--random`, each message is `--size` random bytes (binary) instead of JSON text: what
 * images, video or ciphertext look like to zlib. The clients still compress every message
 * (threshold 0); Switchyard's server sends back plain any message whose compressed form is not
 * smaller (RFC 7692 §6 lets a sender choose per message), ws compresses it anyway. The
 * "plain replies" column counts echoes that arrived without RSV1.
 *
 * Usage: node --import tsx bench/deflate-echo.ts [--conns 50] [--size 4096] [--seconds 5] [--runs 3]
 *        node --import tsx bench/deflate-echo.ts --random --size 65536 --conns 10
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocket as WsClient } from 'ws';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const which = args[args.indexOf('--serve') + 1];

if (args.includes('--serve')) {
  let port: number;
  if (which === 'switchyard') {
    const { WebSocketServer } = await import('../packages/switchyard/src/index.js');
    const server = new WebSocketServer({
      logger: false,
      heartbeat: false,
      perMessageDeflate: { threshold: 0 },
    });
    server.on('connection', (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b })));
    port = (await server.listen(0, '127.0.0.1')).port;
  } else {
    const { WebSocketServer } = await import('ws');
    const server = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      perMessageDeflate: { threshold: 0, concurrencyLimit: 10 },
    });
    server.on('connection', (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b })));
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  }
  console.log(JSON.stringify({ port }));
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'cpu') console.log(JSON.stringify(process.cpuUsage()));
  }
  process.exit(0);
}

const CONNS = option('conns', 50);
const SIZE = option('size', 4096);
const SECONDS = option('seconds', 5);
const RUNS = option('runs', 3);

/** JSON-like text of `size` bytes: repetitive keys, pseudo-random values. */
function sample(size: number): string {
  let x = 12345;
  let text = '[';
  while (text.length < size) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    text += `{"id":${x % 100000},"name":"user-${x % 977}","score":${(x % 10000) / 100},"active":${x % 2 === 0}},`;
  }
  return text.slice(0, size - 1) + ']';
}
const RANDOM = args.includes('--random');
const MESSAGE: string | Buffer = RANDOM ? randomBytes(SIZE) : sample(SIZE);

type Result = { rate: number; cpuUsPerMsg: number; plain: number };

async function run(server: 'switchyard' | 'ws'): Promise<Result> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve', server],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const read = async () => JSON.parse((await lines.next()).value as string);
  const { port } = await read();
  const clients = await Promise.all(
    Array.from({ length: CONNS }, async () => {
      const ws = new WsClient(`ws://127.0.0.1:${port}/`, { perMessageDeflate: { threshold: 0 } });
      await once(ws, 'open');
      return ws;
    }),
  );
  let count = 0;
  let plain = 0;
  let counting = false;
  let stop = false;
  for (const ws of clients) {
    // RSV1 of each reply, read from ws's receiver (it parses the frame before 'message').
    const receiver = (ws as unknown as { _receiver?: { _compressed?: boolean } })._receiver;
    ws.on('message', () => {
      if (counting) {
        count++;
        if (receiver?._compressed === false) plain++;
      }
      if (!stop) ws.send(MESSAGE);
    });
    ws.send(MESSAGE);
  }
  await new Promise((r) => setTimeout(r, 1000)); // warm-up
  child.stdin!.write('cpu\n');
  const cpu0 = await read();
  counting = true;
  const started = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  counting = false;
  const elapsed = (performance.now() - started) / 1000;
  const measured = count;
  child.stdin!.write('cpu\n');
  const cpu1 = await read();
  stop = true;
  for (const ws of clients) ws.terminate();
  child.kill();
  const cpuUs = cpu1.user - cpu0.user + (cpu1.system - cpu0.system);
  return { rate: measured / elapsed, cpuUsPerMsg: cpuUs / measured, plain: plain / measured };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results: Record<string, Result[]> = {
  switchyard: [],
  ws: [],
};
for (let i = 0; i < RUNS; i++) {
  for (const server of ['switchyard', 'ws'] as const) results[server].push(await run(server));
}
console.log(
  `compressed echo: ${CONNS} connections, ${SIZE}-byte ${RANDOM ? 'random binary' : 'JSON text'}, ${SECONDS} s x ${RUNS} runs`,
);
for (const [server, runs] of Object.entries(results)) {
  console.log(
    `${server.padEnd(10)} ${median(runs.map((r) => r.rate))
      .toFixed(0)
      .padStart(7)} msg/s  ` +
      `server CPU ${median(runs.map((r) => r.cpuUsPerMsg)).toFixed(1)} µs/msg  ` +
      `plain replies ${(100 * median(runs.map((r) => r.plain))).toFixed(0)}%  ` +
      `(runs: ${runs.map((r) => r.rate.toFixed(0)).join(', ')})`,
  );
}
