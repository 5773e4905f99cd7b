// switchyard/browser in a real browser: the entry point bundled with esbuild (as a user's bundler
// would), loaded by a page served from 127.0.0.1 into headless Chromium (Debian's chromium, driven
// by playwright-core through test/helpers/peers.ts), talking to Switchyard servers that the tests
// stop, restart on the same port, or cut while DevTools network emulation says the page is
// offline. One browser for the file; each test has its own context and page.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, test, type TestContext } from 'node:test';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { WebSocketServer, type ServerOptions } from '../../src/node/server.js';
import type { WebSocket } from '../../src/node/websocket.js';
import { launchChromium, skipUnlessAvailable } from '../helpers/peers.js';

const ENTRY = fileURLToPath(new URL('../../src/browser/index.ts', import.meta.url));
const RECONNECT = { minDelay: 50, maxDelay: 200 };
const WAIT_MS = 10_000;

/**
 * The page: loads the bundle and offers `start(url, options)`, which opens a client and records
 * its events in `window.log`. Plain JavaScript, run by the browser as it is.
 */
const PAGE = `<!doctype html><title>switchyard/browser</title>
<script type="module">
import { ReconnectingWebSocket } from '/switchyard-browser.js';
window.start = (url, options) => {
  const log = { opens: [], messages: [], reconnecting: [], gaps: [], closes: [], errors: [], sent: [] };
  const ws = new ReconnectingWebSocket(url, options);
  ws.addEventListener('open', (e) => log.opens.push(e.attempt));
  ws.addEventListener('message', (e) => log.messages.push({ data: String(e.data), meta: e.meta ?? null }));
  ws.addEventListener('reconnecting', (e) =>
    log.reconnecting.push({ attempt: e.attempt, kind: e.cause.kind, code: e.cause.code ?? null }));
  ws.addEventListener('gap', (e) => log.gaps.push({ topic: e.topic, from: e.from, to: e.to }));
  ws.addEventListener('close', (e) => log.closes.push({ code: e.code, reason: e.reason }));
  ws.addEventListener('error', (e) => log.errors.push(e.error.code));
  window.ws = ws;
  window.log = log;
};
window.ready = true;
</script>`;

interface PageLog {
  opens: number[];
  messages: Array<{ data: string; meta: { topic: string; position: number } | null }>;
  reconnecting: Array<{ attempt: number; kind: string; code: number | null }>;
  gaps: Array<{ topic: string; from: number; to: number | null }>;
  closes: Array<{ code: number; reason: string }>;
  errors: string[];
}

let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
let bundle = '';
let bundled: string[] = [];
before(async () => {
  chromium = await launchChromium();
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  bundle = result.outputFiles[0]!.text;
  bundled = Object.keys(result.metafile.inputs);
});
after(async () => {
  if (chromium?.available) await chromium.browser.close();
});

test('the bundle is made of src/browser and src/core alone, with no Node import', () => {
  assert.ok(bundled.some((file) => file.endsWith('src/browser/reconnecting.ts')));
  const others = bundled.filter(
    (file) => !/packages\/switchyard\/src\/(browser|core)\//.test(file),
  );
  assert.deepEqual(others, []);
  assert.doesNotMatch(bundle, /\bimport\b[^;]*["'](node:|events|net|http|buffer)/);
  assert.doesNotMatch(bundle, /\brequire\(/);
});

/** Serves the page at / and the bundle at /switchyard-browser.js, on 127.0.0.1. */
async function servePage(t: TestContext): Promise<{ url: string; origin: string }> {
  const server = http.createServer((req, res) => {
    if (req.url === '/switchyard-browser.js') {
      res.writeHead(200, { 'content-type': 'text/javascript', 'cache-control': 'no-store' });
      res.end(bundle);
    } else if (req.url === '/') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
      });
      res.end(PAGE);
    } else res.writeHead(404).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    const closed = once(server, 'close');
    server.close();
    server.closeAllConnections();
    await closed;
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  return { url, origin: new URL(url).origin };
}

/** A fresh context and page with the harness loaded; null when Chromium is missing (skipped). */
async function openPage(t: TestContext) {
  if (!skipUnlessAvailable(t, chromium!)) return null;
  const site = await servePage(t);
  const context = await chromium.browser.newContext();
  t.after(() => context.close());
  const page = await context.newPage();
  await page.goto(site.url);
  await page.waitForFunction('window.ready === true', undefined, { timeout: WAIT_MS });
  return { page, context, origin: site.origin };
}

/** What a server saw: its end of each connection, each upgrade's path, and text received. */
interface Seen {
  sockets: WebSocket[];
  upgrades: string[];
  received: string[];
}

/** A Switchyard server on 127.0.0.1 (`port` 0: any), stopped when the test ends. */
async function startServer(
  t: TestContext,
  port: number,
  options: ServerOptions,
  seen: Seen = { sockets: [], upgrades: [], received: [] },
) {
  const server = new WebSocketServer({ logger: false, heartbeat: false, ...options });
  server.on('connection', (ws, req) => {
    seen.sockets.push(ws);
    seen.upgrades.push(req.url ?? '');
    ws.on('message', (data) => {
      seen.received.push(String(data));
      ws.send(String(data));
    });
  });
  const address = await server.listen(port, '127.0.0.1');
  t.after(() => server.close({ timeout: 500 }));
  return { server, port: address.port, url: `ws://127.0.0.1:${address.port}/`, seen };
}

const pageLog = (page: Page) => page.evaluate('window.log') as Promise<PageLog>;

/** Waits until `expression` (about `window.log`) holds in the page. */
async function pageUntil(page: Page, expression: string): Promise<void> {
  try {
    await page.waitForFunction(expression, undefined, { timeout: WAIT_MS, polling: 20 });
  } catch (error) {
    const log = await pageLog(page);
    throw new Error(`${expression} did not hold: ${JSON.stringify(log)}`, { cause: error });
  }
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 10) {
    if (waited > WAIT_MS) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('Chromium: the page comes back after the server restarts on the same port, and the queue goes first, in order', async (t) => {
  const opened = await openPage(t);
  if (opened === null) return;
  const { page, origin } = opened;
  const first = await startServer(t, 0, { origin: [origin] });
  await page.evaluate(
    `start(${JSON.stringify(first.url)}, { reconnect: ${JSON.stringify(RECONNECT)} })`,
  );
  await pageUntil(page, 'window.log.opens.length === 1');
  await page.evaluate(`ws.send('hello')`);
  await pageUntil(page, 'window.log.messages.length === 1');

  await first.server.close({ timeout: 500 }); // 1001 Going Away to the page
  await pageUntil(page, 'window.log.reconnecting.length >= 1');
  const queued = await page.evaluate(
    `[ws.send('q1'), ws.send('q2'), ws.send('q3'), ws.readyState, ws.bufferedAmount]`,
  );
  assert.deepEqual(queued, [true, true, true, 0, 6]);
  // While nothing listens, attempts fail as network causes and back off.
  await pageUntil(page, 'window.log.reconnecting.length >= 3');

  const second = await startServer(t, first.port, { origin: [origin] });
  await pageUntil(page, 'window.log.opens.length === 2');
  await until(() => second.seen.received.length >= 3, 'the queued messages');
  assert.deepEqual(second.seen.received, ['q1', 'q2', 'q3']);
  await page.evaluate(`ws.send('after')`);
  await pageUntil(page, 'window.log.messages.length === 5');

  const log = await pageLog(page);
  assert.deepEqual(
    log.messages.map((m) => m.data),
    ['hello', 'q1', 'q2', 'q3', 'after'],
  );
  assert.deepEqual(log.opens, [0, 1]);
  assert.deepEqual(log.reconnecting[0], { attempt: 1, kind: 'close', code: 1001 });
  assert.ok(
    log.reconnecting.slice(1).every((r) => r.kind === 'network'),
    JSON.stringify(log.reconnecting),
  );
  assert.deepEqual(log.closes, []);
  assert.equal(await page.evaluate('ws.readyState'), 1);
});

test('Chromium: while offline the page makes no attempt; back online it reconnects at once and resumes', async (t) => {
  const opened = await openPage(t);
  if (opened === null) return;
  const { page, context, origin } = opened;
  const s = await startServer(t, 0, { origin: [origin], pubsub: { replay: { maxMessages: 100 } } });
  s.server.on('connection', (ws) => ws.subscribe('news'));
  await page.evaluate(
    `start(${JSON.stringify(s.url)}, { resume: true, reconnect: ${JSON.stringify(RECONNECT)} })`,
  );
  await pageUntil(page, 'window.log.opens.length === 1');
  for (let i = 1; i <= 3; i++) s.server.publish('news', `news ${i}`);
  await pageUntil(page, 'window.log.messages.length === 3');

  // DevTools network emulation: navigator.onLine turns false and `offline` fires, but an open
  // WebSocket stays open in Chromium, so the server cuts it, as a network loss would.
  await context.setOffline(true);
  assert.equal(await page.evaluate('navigator.onLine'), false);
  s.seen.sockets[0].terminate();
  await pageUntil(page, 'window.log.reconnecting.length === 1');
  const errorsAtCut = (await pageLog(page)).errors;
  for (let i = 4; i <= 6; i++) s.server.publish('news', `news ${i}`);
  // Many backoff delays (50-200 ms) pass while offline: no attempt, so no failure, no new
  // reconnecting event, and no upgrade at the server.
  await new Promise((r) => setTimeout(r, 1500));
  let log = await pageLog(page);
  assert.equal(log.reconnecting.length, 1, JSON.stringify(log.reconnecting));
  assert.deepEqual(log.errors, errorsAtCut);
  assert.equal(s.seen.upgrades.length, 1);
  assert.equal(await page.evaluate('ws.readyState'), 0);

  await context.setOffline(false);
  await pageUntil(page, 'window.log.opens.length === 2');
  await pageUntil(page, 'window.log.messages.length === 6');
  s.server.publish('news', 'news 7');
  await pageUntil(page, 'window.log.messages.length === 7');

  log = await pageLog(page);
  assert.deepEqual(s.seen.upgrades, ['/', '/?sy-resume=news%403']);
  assert.deepEqual(
    log.messages.map((m) => [m.data, m.meta?.position]),
    Array.from({ length: 7 }, (_, i) => [`news ${i + 1}`, i + 1]),
  );
  assert.deepEqual(log.gaps, []);
  assert.deepEqual(log.reconnecting, [{ attempt: 1, kind: 'close', code: 1006 }]);
  // At most the cut socket's own error event (Chromium may fire one before its 1006 close).
  assert.deepEqual(log.errors, errorsAtCut);
  assert.ok(errorsAtCut.every((code) => code === 'SWITCHYARD_ERR_CONNECTION_LOST'));
});

test('Chromium: resuming across a restart of an in-process window gives a gap with an unknown end, then live messages', async (t) => {
  const opened = await openPage(t);
  if (opened === null) return;
  const { page, origin } = opened;
  const options: ServerOptions = { origin: [origin], pubsub: { replay: { maxMessages: 100 } } };
  const first = await startServer(t, 0, options);
  first.server.on('connection', (ws) => ws.subscribe('news'));
  await page.evaluate(
    `start(${JSON.stringify(first.url)}, { resume: true, reconnect: ${JSON.stringify(RECONNECT)} })`,
  );
  await pageUntil(page, 'window.log.opens.length === 1');
  for (let i = 1; i <= 3; i++) first.server.publish('news', `before ${i}`);
  await pageUntil(page, 'window.log.messages.length === 3');
  await first.server.close({ timeout: 500 });
  await pageUntil(page, 'window.log.reconnecting.length >= 1');

  // The window lived in the old process: the new one knows no position of `news`.
  const second = await startServer(t, first.port, options);
  second.server.on('connection', (ws) => ws.subscribe('news'));
  await pageUntil(page, 'window.log.gaps.length === 1');
  second.server.publish('news', 'after 1');
  await pageUntil(page, 'window.log.messages.length === 4');

  const log = await pageLog(page);
  assert.deepEqual(second.seen.upgrades, ['/?sy-resume=news%403']);
  assert.deepEqual(log.gaps, [{ topic: 'news', from: 4, to: null }]);
  assert.deepEqual(log.messages[3], { data: 'after 1', meta: { topic: 'news', position: 1 } });
  assert.deepEqual(log.opens, [0, 1]);
});
