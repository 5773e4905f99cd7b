/**
 * Echo over HTTP/2 (RFC 8441 extended CONNECT) beside echo over HTTP/1.1, Switchyard on both
 * ends, on one server that speaks both (an http2 server with a WebSocketServer attached; the
 * HTTP/1.1 clients use a plain http server with the same options, since cleartext HTTP/2 has
 * no HTTP/1.1 fallback in Node).
 *
 * Theory of operation. The server runs in a child process (this file with `--serve`), so its
 * CPU time per message is measured apart from the clients'. The parent opens `--conns`
 * WebSockets per protocol (over HTTP/2 they share one TCP connection, as a browser's do), keeps
 * one message of `--size` bytes in flight on each, and counts echoes for `--seconds` after a
 * one-second warm-up. Protocols take turns for `--runs` rounds; the median is reported.
 * What differs is the transport: HTTP/2 adds a 9-byte DATA frame header per write, stream and
 * connection flow control, and shares one TCP connection among all the WebSockets.
 *
 * Usage: node --import tsx bench/h2-echo.ts [--conns 50] [--size 64] [--seconds 3] [--runs 3]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};

if (args.includes('--serve')) {
  const http2 = await import('node:http2');
  const { WebSocketServer } = await import('../packages/switchyard/src/index.js');
  const options = { logger: false as const, heartbeat: false as const };
  const h2 = http2.createServer();
  const overH2 = new WebSocketServer({ ...options, server: h2 });
  const overH1 = new WebSocketServer(options);
  for (const server of [overH2, overH1]) {
    server.on('connection', (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b })));
  }
  h2.listen(0, '127.0.0.1');
  await once(h2, 'listening');
  const h1Port = (await overH1.listen(0, '127.0.0.1')).port;
  const h2Port = (h2.address() as { port: number }).port;
  console.log(JSON.stringify({ h1Port, h2Port }));
  // The parent asks for CPU time between runs with a line on stdin.
  for await (const _line of createInterface({ input: process.stdin })) {
    const { user, system } = process.cpuUsage();
    console.log(JSON.stringify({ cpuMicros: user + system }));
  }
  process.exit(0);
}

const conns = option('conns', 50);
const size = option('size', 64);
const seconds = option('seconds', 3);
const runs = option('runs', 3);

const { connect } = await import('../packages/switchyard/src/index.js');
const child = spawn(
  process.execPath,
  ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve'],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
const nextLine = async () => JSON.parse((await lines.next()).value as string);
const { h1Port, h2Port } = (await nextLine()) as { h1Port: number; h2Port: number };
const serverCpu = async () => {
  child.stdin!.write('\n');
  return ((await nextLine()) as { cpuMicros: number }).cpuMicros;
};

async function run(protocol: 'HTTP/1.1' | 'HTTP/2'): Promise<{ rate: number; cpuPerMsg: number }> {
  const url = `ws://127.0.0.1:${protocol === 'HTTP/2' ? h2Port : h1Port}/`;
  const sockets = await Promise.all(
    Array.from({ length: conns }, () =>
      connect(url, { http2: protocol === 'HTTP/2', logger: false, heartbeat: false }),
    ),
  );
  const payload = Buffer.alloc(size, 7);
  let counting = false;
  let count = 0;
  for (const ws of sockets) {
    ws.on('message', () => {
      if (counting) count++;
      if (ws.readyState === 1) ws.send(payload);
    });
    ws.send(payload);
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const cpuBefore = await serverCpu();
  counting = true;
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  counting = false;
  const cpuAfter = await serverCpu();
  await Promise.all(
    sockets.map((ws) => {
      const closed = once(ws, 'close');
      ws.close(1000);
      return closed;
    }),
  );
  return { rate: count / seconds, cpuPerMsg: (cpuAfter - cpuBefore) / Math.max(1, count) };
}

const results: Record<string, Array<{ rate: number; cpuPerMsg: number }>> = {
  'HTTP/1.1': [],
  'HTTP/2': [],
};
for (let i = 0; i < runs; i++) {
  for (const protocol of ['HTTP/1.1', 'HTTP/2'] as const)
    results[protocol].push(await run(protocol));
}
const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
if (args.includes('--json')) {
  // One line for `npm run bench`, which shows it beside its HTTP/1.1 scenarios.
  const summary = Object.entries(results).map(([protocol, rows]) => ({
    protocol,
    msgPerSec: Math.round(median(rows.map((r) => r.rate))),
    serverCpuMicrosPerMsg: Number(median(rows.map((r) => r.cpuPerMsg)).toFixed(2)),
    runs: rows.map((r) => Math.round(r.rate)),
  }));
  console.log(JSON.stringify({ conns, size, seconds, results: summary }));
  child.stdin!.end();
  child.kill();
  process.exit(0);
}
console.log(
  `echo, ${conns} connections, ${size}-byte messages, ${seconds} s x ${runs} runs (median)`,
);
for (const [protocol, rows] of Object.entries(results)) {
  const rate = median(rows.map((r) => r.rate));
  const cpu = median(rows.map((r) => r.cpuPerMsg));
  console.log(
    `${protocol.padEnd(9)} ${Math.round(rate).toLocaleString('en').padStart(10)} msg/s   ` +
      `server CPU ${cpu.toFixed(1)} µs/msg`,
  );
}
child.stdin!.end();
child.kill();
