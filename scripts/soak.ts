/**
 * `npm run soak`: thousands of connections with mixed traffic, churn, faults and pings, for
 * minutes, bounded by time; not part of `npm test`.
 *
 * The server runs in a child process (so its figures are its own): an echo server with the
 * heartbeat on, sampling every second its RSS, heap, active handles, event-loop delay and
 * connection count. This process runs the clients: it opens SOAK_CONNECTIONS (default 2,000),
 * then, until SOAK_SECONDS (default 120) have passed, each connection sends a text or binary
 * message every few seconds and checks that it comes back; every second a share of the
 * connections is replaced (most closed cleanly, some destroyed without a close: the faults),
 * and some send pings. A connection closed cleanly first waits for its echoes, so "bytes lost"
 * counts every byte a connection sent and never got back while it stayed up.
 *
 * The report goes to docs/figures/soak.{json,md}: the samples, and whether RSS, handles and
 * event-loop delay levelled off (the last third of the run against the middle third).
 */
import { fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { connect, WebSocketServer, type WebSocket } from '../packages/switchyard/src/index.js';

interface Sample {
  t: number;
  rssMiB: number;
  heapMiB: number;
  handles: number;
  connections: number;
  loopP99Ms: number;
  loopMaxMs: number;
}

const SECONDS = Number(process.env.SOAK_SECONDS ?? 120);
const CONNECTIONS = Number(process.env.SOAK_CONNECTIONS ?? 2000);

if (process.argv.includes('--server')) runServer();
else await runClients();

function runServer(): void {
  const server = new WebSocketServer({
    logger: false,
    heartbeat: { interval: 10_000, timeout: 10_000 },
    maxConnections: CONNECTIONS * 2,
  });
  server.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const started = Date.now();
  void server.listen(0, '127.0.0.1').then((address) => {
    process.send?.({ port: address.port });
    const timer = setInterval(() => {
      const memory = process.memoryUsage();
      const sample: Sample = {
        t: Math.round((Date.now() - started) / 1000),
        rssMiB: round(memory.rss / 2 ** 20),
        heapMiB: round(memory.heapUsed / 2 ** 20),
        handles: process.getActiveResourcesInfo().length,
        connections: server.clients.size,
        loopP99Ms: round(delay.percentile(99) / 1e6),
        loopMaxMs: round(delay.max / 1e6),
      };
      delay.reset();
      process.send?.({ sample });
    }, 1000);
    process.on('message', (message: { stop?: boolean }) => {
      if (message.stop !== true) return;
      clearInterval(timer);
      void server.close({ timeout: 5000 }).then(() => process.exit(0));
    });
  });
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}

interface Client {
  ws: WebSocket;
  outstanding: Map<string, number>;
  sentBytes: number;
}

async function runClients(): Promise<void> {
  const child = fork(new URL(import.meta.url).pathname, ['--server'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env },
  });
  const samples: Sample[] = [];
  const port = await new Promise<number>((resolve) =>
    child.on('message', (m: { port?: number; sample?: Sample }) => {
      if (m.port !== undefined) resolve(m.port);
      if (m.sample !== undefined) samples.push(m.sample);
    }),
  );
  const url = `ws://127.0.0.1:${port}/`;
  const totals = {
    opened: 0,
    closedCleanly: 0,
    faults: 0,
    messages: 0,
    echoes: 0,
    bytesSent: 0,
    bytesEchoed: 0,
    bytesLost: 0,
    pings: 0,
    pongs: 0,
    openFailures: 0,
    unexpectedCloses: 0,
  };
  const clients = new Set<Client>();

  async function open(): Promise<void> {
    let ws: WebSocket;
    try {
      ws = await connect(url, { heartbeat: false, handshakeTimeout: 10_000 });
    } catch {
      totals.openFailures++;
      return;
    }
    totals.opened++;
    const client: Client = { ws, outstanding: new Map(), sentBytes: 0 };
    ws.on('error', () => {});
    ws.on('pong', () => totals.pongs++);
    ws.on('message', (data) => {
      const key =
        typeof data === 'string' ? data.slice(0, 16) : data.subarray(0, 8).toString('hex');
      const length = client.outstanding.get(key);
      if (length === undefined) return;
      client.outstanding.delete(key);
      totals.echoes++;
      totals.bytesEchoed += length;
    });
    ws.on('close', () => {
      if (clients.delete(client)) totals.unexpectedCloses++;
    });
    clients.add(client);
  }

  function send(client: Client): void {
    if (client.ws.readyState !== 1) return;
    const id = randomBytes(8);
    let key: string;
    let length: number;
    if (Math.random() < 0.5) {
      const text = id.toString('hex') + 'x'.repeat(Math.floor(Math.random() * 200));
      key = text.slice(0, 16);
      length = Buffer.byteLength(text);
      client.ws.send(text);
    } else {
      const bytes = Buffer.concat([id, randomBytes(Math.floor(Math.random() * 16 * 1024))]);
      key = bytes.subarray(0, 8).toString('hex');
      length = bytes.length;
      client.ws.send(bytes);
    }
    client.outstanding.set(key, length);
    totals.messages++;
    totals.bytesSent += length;
  }

  /** Closes cleanly after the echoes are in (at most 5 s); what never came back is lost. */
  async function retire(client: Client): Promise<void> {
    clients.delete(client);
    const deadline = Date.now() + 5000;
    while (client.outstanding.size > 0 && Date.now() < deadline && client.ws.readyState === 1)
      await new Promise((resolve) => setTimeout(resolve, 50));
    for (const length of client.outstanding.values()) totals.bytesLost += length;
    const closed = new Promise((resolve) => client.ws.once('close', resolve));
    client.ws.close(1000);
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 5000))]);
    totals.closedCleanly++;
  }

  function fault(client: Client): void {
    // A peer that vanishes: no close frame; its echoes in flight are not counted as lost.
    clients.delete(client);
    client.ws.terminate();
    totals.faults++;
  }

  const started = Date.now();
  const deadline = started + SECONDS * 1000;
  process.stderr.write(`soak: opening ${CONNECTIONS} connections\n`);
  for (let i = 0; i < CONNECTIONS; i += 100) {
    await Promise.all(Array.from({ length: Math.min(100, CONNECTIONS - i) }, open));
  }
  process.stderr.write(
    `soak: ${clients.size} open after ${Date.now() - started} ms; running for ${SECONDS} s\n`,
  );

  const retiring: Promise<void>[] = [];
  let tick = 0;
  while (Date.now() < deadline) {
    tick++;
    const list = [...clients];
    // Traffic: each connection sends about once every 4 s (500 messages/s for 2,000).
    for (const client of list) if (Math.random() < 0.25) send(client);
    // Pings from about 1% of the connections.
    for (const client of list) {
      if (Math.random() < 0.01 && client.ws.readyState === 1) {
        client.ws.ping();
        totals.pings++;
      }
    }
    // Churn: 1% replaced per second, one in five of them abruptly.
    const churn = Math.max(1, Math.floor(list.length / 100));
    for (let i = 0; i < churn; i++) {
      const client = list[Math.floor(Math.random() * list.length)];
      if (!clients.has(client)) continue;
      if (Math.random() < 0.2) fault(client);
      else retiring.push(retire(client));
    }
    const opening: Promise<void>[] = [];
    while (clients.size + opening.length < CONNECTIONS) opening.push(open());
    await Promise.all(opening);
    if (tick % 10 === 0) {
      const s = samples.at(-1);
      process.stderr.write(
        `soak: ${Math.round((Date.now() - started) / 1000)} s, ${clients.size} open, ${totals.messages} messages, ` +
          `server RSS ${s?.rssMiB ?? '?'} MiB, handles ${s?.handles ?? '?'}, loop p99 ${s?.loopP99Ms ?? '?'} ms\n`,
      );
    }
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, started + tick * 1000 - Date.now())),
    );
  }

  process.stderr.write('soak: closing every connection cleanly\n');
  await Promise.all(retiring);
  await Promise.all([...clients].map(retire));
  child.send({ stop: true });
  await new Promise((resolve) => child.once('exit', resolve));

  const summary = summarize(samples);
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    seconds: SECONDS,
    connections: CONNECTIONS,
    totals,
    summary,
    samples,
  };
  const dir = new URL('../docs/figures/', import.meta.url);
  mkdirSync(dir, { recursive: true });
  writeFileSync(new URL('soak.json', dir), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(new URL('soak.md', dir), markdown(report));
  process.stderr.write(`soak: ${JSON.stringify(totals)}\n${JSON.stringify(summary)}\n`);
  const ok = totals.bytesLost === 0 && summary.levelledOff;
  process.exit(ok ? 0 : 1);
}

function mean(values: number[]): number {
  return values.length === 0 ? 0 : round(values.reduce((a, b) => a + b, 0) / values.length);
}

/** Compares the middle third of the run with the last third: growth under 10% is level. */
function summarize(samples: Sample[]) {
  const n = samples.length;
  const middle = samples.slice(Math.floor(n / 3), Math.floor((2 * n) / 3));
  const last = samples.slice(Math.floor((2 * n) / 3));
  const metric = (pick: (s: Sample) => number, slack: number) => {
    const a = mean(middle.map(pick));
    const b = mean(last.map(pick));
    return { middle: a, last: b, level: b <= a * 1.1 + slack };
  };
  const rss = metric((s) => s.rssMiB, 5);
  const heap = metric((s) => s.heapMiB, 5);
  const handles = metric((s) => s.handles, 20);
  const loopP99 = metric((s) => s.loopP99Ms, 5);
  return {
    samples: n,
    peakConnections: Math.max(0, ...samples.map((s) => s.connections)),
    peakRssMiB: Math.max(0, ...samples.map((s) => s.rssMiB)),
    maxLoopDelayMs: Math.max(0, ...samples.map((s) => s.loopMaxMs)),
    rss,
    heap,
    handles,
    loopP99,
    levelledOff: rss.level && heap.level && handles.level && loopP99.level,
  };
}

function markdown(report: {
  date: string;
  node: string;
  seconds: number;
  connections: number;
  totals: Record<string, number>;
  summary: ReturnType<typeof summarize>;
}): string {
  const { totals: t, summary: s } = report;
  const row = (name: string, m: { middle: number; last: number; level: boolean }) =>
    `| ${name} | ${m.middle} | ${m.last} | ${m.level ? 'yes' : 'NO'} |`;
  return [
    '# Last soak run',
    '',
    `${report.date.slice(0, 10)}, Node ${report.node}, ${report.seconds} s, ${report.connections} connections held ` +
      `(peak ${s.peakConnections} on the server), 2-core machine, clients and server on one host.`,
    '',
    '| traffic | count |',
    '| --- | ---: |',
    `| connections opened | ${t.opened} |`,
    `| closed cleanly (churn and the end) | ${t.closedCleanly} |`,
    `| faults survived (peers destroyed without a close) | ${t.faults} |`,
    `| messages echoed / sent | ${t.echoes} / ${t.messages} |`,
    `| bytes sent | ${t.bytesSent} |`,
    `| bytes lost | ${t.bytesLost} |`,
    `| pings sent / pongs received | ${t.pings} / ${t.pongs} |`,
    `| failed opens / unexpected closes | ${t.openFailures} / ${t.unexpectedCloses} |`,
    '',
    'Server figures, averaged over the middle and the last third of the run (level: the last is',
    'within 10% of the middle, plus a small absolute slack):',
    '',
    '| metric | middle third | last third | level |',
    '| --- | ---: | ---: | :---: |',
    row('RSS (MiB)', s.rss),
    row('heap used (MiB)', s.heap),
    row('active handles', s.handles),
    row('event-loop delay p99 (ms)', s.loopP99),
    '',
    `Peak RSS ${s.peakRssMiB} MiB; worst event-loop delay ${s.maxLoopDelayMs} ms. Every sample is in soak.json.`,
    '',
  ].join('\n');
}
