/**
 * The memory of idle compressed connections: the RSS of a Switchyard server holding 1,000
 * WebSockets with permessage-deflate, after each exchanged one compressed message both ways
 * (so every zlib context exists), and again once the idle ones gave their contexts back.
 *
 * Theory of operation. The server runs in a child process (this file with `--serve`), so the
 * clients' memory is not counted; it reports its RSS (after a forced GC) when asked on stdin.
 * The parent opens the connections with `ws` clients in batches, exchanges one 4 KiB message
 * on each, and reads the server's RSS at four points: before any connection, with the
 * connections open and their contexts held, after `releaseAfter` has passed, and for
 * comparison the same count without compression.
 *
 * Usage: node --import tsx bench/deflate-memory.ts [--connections 1000] [--release-after 2000]
 * The figures of docs/permessage-deflate.md come from this script.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { WebSocket as WsClient } from 'ws';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};

if (args.includes('--serve')) {
  const { WebSocketServer } = await import('../packages/switchyard/src/index.js');
  const compress = args.includes('--deflate');
  const server = new WebSocketServer({
    logger: false,
    heartbeat: false,
    maxConnections: 1_000_000,
    perMessageDeflate: compress ? { releaseAfter: option('release-after', 2000) } : false,
  });
  server.on('connection', (ws) => ws.on('message', (d, b) => ws.send(d, { binary: b })));
  const { port } = await server.listen(0, '127.0.0.1');
  console.log(JSON.stringify({ port }));
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'rss') {
      (globalThis as { gc?: () => void }).gc?.();
      await new Promise((r) => setTimeout(r, 100));
      const m = process.memoryUsage();
      console.log(JSON.stringify({ rss: m.rss, heap: m.heapUsed, external: m.external }));
    }
  }
  process.exit(0);
}

const CONNECTIONS = option('connections', 1000);
const RELEASE_AFTER = option('release-after', 2000);
const MESSAGE = JSON.stringify(
  Array.from({ length: 60 }, (_, i) => ({
    id: i,
    name: `user-${(i * 7919) % 1000}`,
    ok: i % 3 === 0,
  })),
);

async function measure(deflate: boolean) {
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      '--serve',
      ...(deflate ? ['--deflate'] : []),
      '--release-after',
      String(RELEASE_AFTER),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const read = async () => JSON.parse((await lines.next()).value as string);
  const { port } = await read();
  const rss = async () => {
    child.stdin!.write('rss\n');
    return (await read()) as { rss: number; heap: number; external: number };
  };
  const before = await rss();
  const clients: WsClient[] = [];
  for (let i = 0; i < CONNECTIONS; i += 100) {
    const batch = Array.from({ length: Math.min(100, CONNECTIONS - i) }, async () => {
      const ws = new WsClient(`ws://127.0.0.1:${port}/`, {
        perMessageDeflate: deflate ? { threshold: 0 } : false,
      });
      clients.push(ws);
      await once(ws, 'open');
      const reply = once(ws, 'message');
      ws.send(MESSAGE);
      await reply;
    });
    await Promise.all(batch);
  }
  const open = await rss();
  await new Promise((r) => setTimeout(r, RELEASE_AFTER * 2 + 500));
  const idle = await rss();
  for (const ws of clients) ws.terminate();
  child.kill();
  return { before, open, idle };
}

const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
const perConn = (a: number, b: number) => ((b - a) / CONNECTIONS / 1024).toFixed(1);
console.log(
  `${CONNECTIONS} connections, one 4 KiB message each way, releaseAfter ${RELEASE_AFTER} ms`,
);
for (const deflate of [false, true]) {
  const { before, open, idle } = await measure(deflate);
  console.log(
    `${deflate ? 'permessage-deflate' : 'no compression    '}  RSS before ${mib(before.rss)} MiB, ` +
      `with contexts ${mib(open.rss)} MiB (${perConn(before.rss, open.rss)} KiB/conn), ` +
      `idle after release ${mib(idle.rss)} MiB (${perConn(before.rss, idle.rss)} KiB/conn)`,
  );
}
