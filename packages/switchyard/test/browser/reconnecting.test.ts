// switchyard/browser on Node: the browser ReconnectingWebSocket over the library's own
// BrowserWebSocket (the WHATWG API on Node) against real Switchyard servers on 127.0.0.1. The
// browser's online status is faked on globalThis (navigator.onLine, and the `online` event that
// a page's window would dispatch). test/interop/chromium-reconnect.test.ts runs it in Chromium.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import {
  ReconnectingWebSocket,
  type ReconnectingWebSocketEventMap,
  type ReconnectingWebSocketOptions,
  type WebSocketLike,
} from '../../src/browser/index.js';
import { BrowserWebSocket } from '../../src/node/browser.js';
import type { WebSocket } from '../../src/node/websocket.js';
import { ReadyState } from '../../src/core/connection.js';
import { RESUME_PROTOCOL } from '../../src/core/resume.js';
import type { SwitchyardError } from '../../src/core/errors.js';
import type { PubSubOptions } from '../../src/pubsub/topics.js';
import { startServer, type TestServer } from '../helpers/server.js';

const FAST = { minDelay: 5, maxDelay: 20 };
/** A backoff long enough that only an `online` event (or the test) ends it. */
const FOREVER = { minDelay: 60_000, maxDelay: 60_000, random: () => 0.99 };

function client(url: string | (() => string), options: ReconnectingWebSocketOptions = {}) {
  return new ReconnectingWebSocket(url, {
    WebSocket: BrowserWebSocket,
    reconnect: FAST,
    ...options,
  });
}

/** The next `type` event of `ws`, within 10 s. */
function next<K extends keyof ReconnectingWebSocketEventMap>(
  ws: ReconnectingWebSocket,
  type: K,
): Promise<ReconnectingWebSocketEventMap[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${type} event within 10 s`)), 10_000);
    ws.addEventListener(
      type,
      (event) => {
        clearTimeout(timer);
        resolve(event);
      },
      { once: true },
    );
  });
}

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  for (let waited = 0; !check(); waited += 5) {
    if (waited > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A server that echoes, and remembers its end of every connection and what each received. */
async function echoServer(t: TestContext, options: Parameters<typeof startServer>[0] = {}) {
  const s = await startServer(options);
  t.after(() => s.close());
  const sockets: WebSocket[] = [];
  const received: string[] = [];
  const urls: string[] = [];
  s.server.on('connection', (ws, req) => {
    sockets.push(ws);
    urls.push(req.url ?? '');
    ws.on('message', (data, isBinary) => {
      received.push(String(data));
      ws.send(data, { binary: isBinary });
    });
  });
  return { ...s, sockets, received, urls };
}

/**
 * navigator.onLine and the `online` event of a page, on Node's globalThis, restored when the
 * test ends.
 */
function fakeNetwork(t: TestContext) {
  const scope = globalThis as unknown as Record<string, unknown>;
  const events = new EventTarget();
  let onLine = true;
  const saved = {
    navigator: Object.getOwnPropertyDescriptor(globalThis, 'navigator'),
    add: scope.addEventListener,
    remove: scope.removeEventListener,
  };
  Object.defineProperty(globalThis, 'navigator', {
    value: {
      get onLine() {
        return onLine;
      },
    },
    configurable: true,
  });
  scope.addEventListener = events.addEventListener.bind(events);
  scope.removeEventListener = events.removeEventListener.bind(events);
  t.after(() => {
    if (saved.navigator) Object.defineProperty(globalThis, 'navigator', saved.navigator);
    else delete scope.navigator;
    scope.addEventListener = saved.add;
    scope.removeEventListener = saved.remove;
  });
  return {
    goOffline() {
      onLine = false;
      events.dispatchEvent(new Event('offline'));
    },
    goOnline() {
      onLine = true;
      events.dispatchEvent(new Event('online'));
    },
  };
}

/** Resolves after `ms`: only to show that something did NOT happen meanwhile. */
const quiet = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('comes back after the server closes with 1012, and messages flow again', async (t) => {
  const s = await echoServer(t);
  const ws = client(s.url);
  t.after(() => ws.close());
  const first = await next(ws, 'open');
  assert.equal(first.attempt, 0);
  assert.equal(ws.readyState, ReadyState.OPEN);
  const reconnecting = next(ws, 'reconnecting');
  s.sockets[0].close(1012, 'restarting');
  const info = await reconnecting;
  assert.equal(info.attempt, 1);
  assert.deepEqual(info.cause, { kind: 'close', code: 1012, reason: 'restarting' });
  assert.ok(info.delay >= 0 && info.delay < FAST.minDelay);
  assert.equal(ws.readyState, ReadyState.CONNECTING);
  const second = await next(ws, 'open');
  assert.equal(second.attempt, 1);
  const reply = next(ws, 'message');
  ws.send('after');
  assert.equal((await reply).data, 'after');
  assert.equal(s.sockets.length, 2);
});

test('1000, 1008 and 4000 from the server end the logical connection without a retry', async (t) => {
  const s = await echoServer(t);
  for (const code of [1000, 1008, 4000]) {
    const ws = client(s.url);
    await next(ws, 'open');
    let retried = false;
    ws.addEventListener('reconnecting', () => (retried = true));
    const closed = next(ws, 'close');
    s.sockets.at(-1)!.close(code, 'go away');
    const event = await closed;
    assert.deepEqual([event.code, event.reason, event.wasClean], [code, 'go away', true]);
    assert.equal(retried, false, String(code));
    assert.equal(ws.readyState, ReadyState.CLOSED);
  }
  assert.equal(s.sockets.length, 3);
});

test('shouldReconnect decides instead of the default rule', async (t) => {
  const s = await echoServer(t);
  const ws = client(s.url, {
    reconnect: {
      ...FAST,
      shouldReconnect: (cause) => cause.kind === 'close' && cause.code === 4500,
    },
  });
  t.after(() => ws.close());
  await next(ws, 'open');
  s.sockets[0].close(4500, 'rebalance');
  assert.deepEqual((await next(ws, 'reconnecting')).cause, {
    kind: 'close',
    code: 4500,
    reason: 'rebalance',
  });
  await next(ws, 'open');
});

test('sends while disconnected are queued, counted in bufferedAmount and flushed in order', async (t) => {
  const s = await echoServer(t);
  const ws = client(s.url);
  t.after(() => ws.close());
  assert.equal(ws.send('one'), true);
  assert.equal(ws.send(new Uint8Array([0x74, 0x77, 0x6f])), true); // "two", as bytes
  assert.equal(ws.send('drei ü'), true);
  assert.equal(ws.bufferedAmount, 3 + 3 + 7);
  const first = await next(ws, 'open');
  assert.equal(ws.bufferedAmount, first.socket.bufferedAmount);
  await until(() => s.received.length === 3, 'the first three');
  s.sockets[0].terminate();
  await next(ws, 'reconnecting');
  assert.equal(ws.socket, null);
  assert.equal(ws.send('four'), true);
  // The open listener's own send goes after the queue.
  ws.addEventListener('open', () => ws.send('five'), { once: true });
  await next(ws, 'open');
  ws.send('six');
  await until(() => s.received.length >= 6, 'six messages').catch((e: Error) => {
    throw new Error(`${e.message}: ${s.received.join()}`);
  });
  assert.deepEqual(s.received, ['one', 'two', 'drei ü', 'four', 'five', 'six']);
});

test('a full queue drops the message: send returns false and an error event says which limit', async (t) => {
  const network = fakeNetwork(t);
  network.goOffline(); // no attempt is made: the messages stay queued
  const ws = client('ws://127.0.0.1:9', {
    reconnect: { ...FOREVER, maxQueuedMessages: 2, maxQueuedBytes: 8 },
  });
  t.after(() => ws.close());
  const errors: SwitchyardError[] = [];
  ws.addEventListener('error', (event) => errors.push(event.error as SwitchyardError));
  assert.equal(ws.send('12345'), true);
  assert.equal(ws.send('123456'), false);
  assert.match(errors.at(-1)?.message ?? '', /maxQueuedBytes/);
  assert.equal(ws.send('123'), true);
  assert.equal(ws.send(''), false);
  assert.match(errors.at(-1)?.message ?? '', /maxQueuedMessages/);
  assert.equal(errors.length, 2);
  assert.ok(errors.every((e) => e.code === 'SWITCHYARD_ERR_RECONNECT_QUEUE_FULL'));
  assert.equal(ws.bufferedAmount, 8);
});

test('a refused connection is a network cause; maxRetries gives up with an error then close 1006', async (t) => {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((r) => probe.close(r));
  const ws = client(`ws://127.0.0.1:${port}`, { reconnect: { ...FAST, maxRetries: 3 } });
  t.after(() => ws.close());
  const errors: SwitchyardError[] = [];
  ws.addEventListener('error', (event) => errors.push(event.error as SwitchyardError));
  const attempts: number[] = [];
  ws.addEventListener('reconnecting', ({ attempt, cause }) => {
    assert.equal(cause.kind, 'network');
    attempts.push(attempt);
  });
  const closed = await next(ws, 'close');
  assert.deepEqual([closed.code, closed.wasClean], [1006, false]);
  assert.deepEqual(attempts, [1, 2, 3]);
  // One error per failed socket (a browser says no more than that it failed), then giving up.
  assert.equal(errors.length, 5);
  assert.ok(errors.slice(0, 4).every((e) => e.code === 'SWITCHYARD_ERR_CONNECTION_LOST'));
  assert.match(errors[0].message, /failed before it opened/);
  assert.equal(errors[4].code, 'SWITCHYARD_ERR_RECONNECT_GAVE_UP');
  assert.match(errors[4].message, /after 3 attempts/);
});

test('while the browser is offline no attempt is made; online tries at once', async (t) => {
  const network = fakeNetwork(t);
  const s = await echoServer(t);
  const ws = client(s.url, { reconnect: FAST });
  t.after(() => ws.close());
  await next(ws, 'open');
  network.goOffline();
  const reconnecting = next(ws, 'reconnecting');
  s.sockets[0].terminate();
  await reconnecting;
  // Many backoff delays pass: still offline, so no upgrade reaches the server.
  await quiet(300);
  assert.equal(s.sockets.length, 1);
  assert.equal(ws.readyState, ReadyState.CONNECTING);
  const opened = next(ws, 'open');
  network.goOnline();
  assert.equal((await opened).attempt, 1);
  assert.equal(s.sockets.length, 2);
});

test('coming back online cuts a long backoff short', async (t) => {
  const network = fakeNetwork(t);
  const s = await echoServer(t);
  const ws = client(s.url, { reconnect: FOREVER });
  t.after(() => ws.close());
  await next(ws, 'open');
  const reconnecting = next(ws, 'reconnecting');
  s.sockets[0].close(1001);
  assert.ok((await reconnecting).delay > 50_000);
  const opened = next(ws, 'open');
  network.goOnline();
  await opened;
  assert.equal(s.sockets.length, 2);
});

test('close() during the backoff stops reconnecting; send after close throws', async (t) => {
  const s = await echoServer(t);
  const ws = client(s.url, { reconnect: FOREVER });
  await next(ws, 'open');
  s.sockets[0].close(1013);
  await next(ws, 'reconnecting');
  const closed = next(ws, 'close');
  ws.close(4001, 'bye');
  const event = await closed;
  assert.deepEqual([event.code, event.reason, event.wasClean], [4001, 'bye', true]);
  assert.equal(ws.readyState, ReadyState.CLOSED);
  assert.throws(() => ws.send('x'), { code: 'SWITCHYARD_ERR_INVALID_STATE' });
  assert.throws(() => ws.close(1001), { name: 'InvalidAccessError' });
  assert.equal(s.sockets.length, 1);
});

test('close() on an open socket sends the close frame and ends without reconnecting', async (t) => {
  const s = await echoServer(t);
  const ws = client(s.url);
  await next(ws, 'open');
  const serverClose = once(s.sockets[0], 'close');
  const closed = next(ws, 'close');
  assert.equal(ws.send('queued nowhere'), true);
  ws.close(4002, 'done');
  assert.equal(ws.readyState, ReadyState.CLOSING);
  assert.equal((await closed).code, 4002);
  assert.equal((await serverClose)[0], 4002);
});

test('close() while the first socket connects ends with the code asked for', async (t) => {
  const s = await echoServer(t);
  const ws = client(s.url);
  await new Promise((r) => queueMicrotask(() => r(undefined))); // the attempt has started
  const errors: unknown[] = [];
  ws.addEventListener('error', (e) => errors.push(e));
  const closed = next(ws, 'close');
  ws.close(1000, 'never mind');
  const event = await closed;
  assert.deepEqual([event.code, event.reason], [1000, 'never mind']);
  assert.deepEqual(errors, []);
});

test('a url function is called before every attempt', async (t) => {
  const s = await echoServer(t);
  let calls = 0;
  const ws = client(() => `${s.url}/feed?token=${++calls}`);
  t.after(() => ws.close());
  await next(ws, 'open');
  s.sockets[0].close(1012);
  await next(ws, 'open');
  assert.deepEqual(s.urls, ['/feed?token=2', '/feed?token=3']); // 1: the constructor's check
  assert.equal(ws.url, `${s.url}/feed?token=3`);
});

test('binaryType says whether binary arrives as a Blob or an ArrayBuffer', async (t) => {
  const s = await echoServer(t);
  const ws = client(s.url);
  t.after(() => ws.close());
  await next(ws, 'open');
  let reply = next(ws, 'message');
  ws.send(new Uint8Array([1, 2, 3]));
  const blob = (await reply).data;
  assert.ok(blob instanceof Blob);
  assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), new Uint8Array([1, 2, 3]));
  ws.binaryType = 'arraybuffer';
  reply = next(ws, 'message');
  ws.send(new Uint8Array([4]).buffer);
  const buffer = (await reply).data;
  assert.ok(buffer instanceof ArrayBuffer);
  assert.deepEqual(new Uint8Array(buffer), new Uint8Array([4]));
});

test('async iteration continues across sockets and ends with the logical connection', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  let n = 0;
  s.server.on('connection', (sock) => {
    n++;
    sock.send(`hello ${n}`);
    if (n === 1) setImmediate(() => sock.terminate());
    else setImmediate(() => sock.close(1000));
  });
  const ws = client(s.url);
  const got: unknown[] = [];
  for await (const { data } of ws) got.push(data);
  assert.deepEqual(got, ['hello 1', 'hello 2']);
});

test('options are checked, and a Node-only option says what to do in a browser', () => {
  assert.throws(() => client('ws://127.0.0.1:9', { headers: {} } as ReconnectingWebSocketOptions), {
    code: 'SWITCHYARD_ERR_INVALID_OPTION',
    option: 'headers',
    message: /cannot set request headers.*url.*function/,
  });
  assert.throws(() => client('ws://127.0.0.1:9', { reconnect: { minDelay: -1 } }), {
    option: 'reconnect.minDelay',
  });
  assert.throws(() => new ReconnectingWebSocket('ws://127.0.0.1:9'), {
    option: 'WebSocket',
    message: /no global WebSocket/,
  });
  assert.throws(() => client('ftp://127.0.0.1/'), { code: 'SWITCHYARD_ERR_INVALID_ARGUMENT' });
});

// ---- resume --------------------------------------------------------------------------------

/** A server whose every connection subscribes to `news`, with a replay window. */
async function newsServer(t: TestContext, replay: PubSubOptions['replay']): Promise<TestServer> {
  const s = await startServer({ pubsub: { replay } });
  t.after(() => s.close());
  s.server.on('connection', (ws) => ws.subscribe('news'));
  return s;
}

function resumingClient(url: string, options: ReconnectingWebSocketOptions = {}) {
  const ws = client(url, { resume: true, ...options });
  const got: unknown[] = [];
  const positions: number[] = [];
  const gaps: Array<{ topic: string; from: number; to: number | null }> = [];
  ws.addEventListener('message', ({ data, meta }) => {
    if (meta?.topic !== 'news') return;
    got.push(data);
    positions.push(meta.position);
  });
  ws.addEventListener('gap', ({ topic, from, to }) => gaps.push({ topic, from, to }));
  return { ws, got, positions, gaps };
}

test('resuming: every message exactly once, in order, across cuts', async (t) => {
  const s = await newsServer(t, { maxMessages: 10_000 });
  const { ws, got, positions, gaps } = resumingClient(s.url, { protocols: 'chat.v1' });
  t.after(() => ws.close());
  await next(ws, 'open');
  assert.equal(ws.protocol, RESUME_PROTOCOL);
  const total = 600;
  for (let i = 1; i <= total; i++) {
    s.server.publish('news', String(i));
    if (i % 200 === 0) [...s.server.clients][0]?.terminate(); // a cut, publishing goes on
    if (i % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  await until(() => got.length >= total, `${total} messages (have ${got.length})`);
  assert.deepEqual(gaps, []);
  assert.deepEqual(
    got,
    Array.from({ length: total }, (_, i) => String(i + 1)),
  );
  assert.deepEqual(
    positions,
    Array.from({ length: total }, (_, i) => i + 1),
  );
  assert.equal(ws.resumePositions.get('news'), total);
});

test('resuming: a window too small for what was missed gives a gap event, then the rest', async (t) => {
  const network = fakeNetwork(t);
  const s = await newsServer(t, { maxMessages: 5 });
  const upgrades: string[] = [];
  s.server.on('connection', (_ws, req) => upgrades.push(req.url ?? ''));
  // A long backoff that the `online` event ends: the test says when the client comes back.
  const { ws, got, gaps } = resumingClient(s.url, { reconnect: FOREVER });
  t.after(() => ws.close());
  await next(ws, 'open');
  for (let i = 1; i <= 3; i++) s.server.publish('news', String(i));
  await until(() => got.length === 3, 'three');
  const reconnecting = next(ws, 'reconnecting');
  [...s.server.clients][0].terminate();
  await reconnecting;
  for (let i = 4; i <= 20; i++) s.server.publish('news', Buffer.from(String(i)), { binary: true });
  const gap = next(ws, 'gap');
  network.goOnline();
  const { topic, from, to } = await gap;
  assert.deepEqual([topic, from, to], ['news', 4, 15]);
  await until(() => got.length === 8, 'the window');
  assert.deepEqual(gaps, [{ topic: 'news', from: 4, to: 15 }]);
  assert.deepEqual(got.slice(0, 3), ['1', '2', '3']);
  // Binary topic messages arrive as Blobs (the default binaryType), without their header.
  const blobs = got.slice(3) as Blob[];
  assert.ok(blobs.every((b) => b instanceof Blob));
  assert.deepEqual(await Promise.all(blobs.map((b) => b.text())), ['16', '17', '18', '19', '20']);
  assert.deepEqual(upgrades, ['/', '/?sy-resume=news%403']);
});

/** A WebSocket double that agreed on the resume exchange and sends what the test says. */
class ScriptedSocket extends EventTarget implements WebSocketLike {
  static last: ScriptedSocket | null = null;
  readyState: number = ReadyState.CONNECTING;
  protocol = '';
  bufferedAmount = 0;
  binaryType = 'blob';
  closedWith: [number | undefined, string | undefined] | null = null;
  constructor(readonly url: string) {
    super();
    ScriptedSocket.last = this;
    queueMicrotask(() => {
      this.readyState = ReadyState.OPEN;
      this.protocol = RESUME_PROTOCOL;
      this.dispatchEvent(new Event('open'));
    });
  }
  receive(data: string): void {
    this.dispatchEvent(Object.assign(new Event('message'), { data }));
  }
  send(): void {}
  close(code?: number, reason?: string): void {
    this.closedWith = [code, reason];
    this.readyState = ReadyState.CLOSED;
    const event = Object.assign(new Event('close'), { code: code ?? 1005, reason, wasClean: true });
    queueMicrotask(() => this.dispatchEvent(event));
  }
}

test('resuming: a server that breaks the exchange ends the logical connection with 1002', async (t) => {
  const ws = client('ws://127.0.0.1:9', { resume: true, WebSocket: ScriptedSocket });
  t.after(() => ws.close());
  const got: unknown[] = [];
  ws.addEventListener('message', ({ data, meta }) => got.push([data, meta]));
  await next(ws, 'open');
  const socket = ScriptedSocket.last!;
  socket.receive('m news 1\nfine');
  socket.receive('no header');
  socket.receive('m news 2\nafter the violation');
  const closed = await next(ws, 'close');
  assert.deepEqual(
    [closed.code, closed.reason],
    [1002, 'Message without a switchyard.resume.v1 header'],
  );
  // A page may only close with 1000 or 3000-4999.
  assert.deepEqual(socket.closedWith, [1000, 'Message without a switchyard.resume.v1 header']);
  assert.deepEqual(got, [['fine', { topic: 'news', position: 1 }]]);
});
