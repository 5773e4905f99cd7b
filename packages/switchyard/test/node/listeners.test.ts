/**
 * A listener that throws, or an async listener whose promise rejects, is a bug in the
 * application: it is logged once, closes only its own connection with 1011 (RFC 6455 §7.4.1) and
 * never reaches the process as an uncaught exception or an unhandled rejection (issue 16, item 2).
 * Every event the library emits with user listeners is tried in both styles.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from '../../src/node/client.js';
import { BrowserWebSocket, type CloseEvent } from '../../src/node/browser.js';
import type { Logger } from '../../src/node/diagnostics.js';
import type { ServerOptions } from '../../src/node/server.js';
import type { WebSocket } from '../../src/node/websocket.js';
import { assertServes, echo, startServer, type TestServer } from '../helpers/server.js';

const STYLES = ['sync', 'async'] as const;
type Style = (typeof STYLES)[number];

/** A listener that fails the way `style` says. */
function failing(style: Style): (...args: unknown[]) => unknown {
  return style === 'sync'
    ? () => {
        throw new Error('bug in the app');
      }
    : async () => {
        await Promise.resolve();
        throw new Error('bug in the app');
      };
}

/**
 * Watches the process for what a failed listener must never become: `failed` rejects on the
 * first unhandled rejection or uncaught exception (which, unwatched, would end the test run).
 */
function guardProcess(t: TestContext): Promise<never> {
  return new Promise<never>((_, rejectGuard) => {
    const onRejection = (reason: unknown) =>
      rejectGuard(new Error(`unhandled rejection: ${String(reason)}`));
    const onException = (error: unknown) =>
      rejectGuard(new Error(`uncaught exception: ${String(error)}`));
    process.on('unhandledRejection', onRejection);
    process.on('uncaughtException', onException);
    t.after(() => {
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    });
  });
}

/** A logger that records listener failures; `logged` resolves on the first. */
function recordingLogger(): { logger: Logger; errors: string[]; logged: Promise<void> } {
  const errors: string[] = [];
  let resolveLogged = () => {};
  const logged = new Promise<void>((resolve) => (resolveLogged = resolve));
  return {
    errors,
    logged,
    logger: {
      warn() {},
      error(message) {
        errors.push(message);
        resolveLogged();
      },
    },
  };
}

async function serverWith(
  t: TestContext,
  logger: Logger,
  options: ServerOptions = {},
): Promise<TestServer> {
  const s = await startServer({ ...options, logger });
  t.after(() => s.close());
  return s;
}

function closeOf(ws: WebSocket): Promise<[number, string, boolean]> {
  return once(ws, 'close') as Promise<[number, string, boolean]>;
}

type ServerCase = {
  event: string;
  options?: ServerOptions;
  /** Installs the failing listener on the server's side, for the first connection only. */
  install: (s: TestServer, fail: (...args: unknown[]) => unknown) => void;
  /** Makes the client trigger the event; resolves with the close code the client saw. */
  trigger: (client: WebSocket) => void;
  /** The close code the client sees (1011 when the listener's connection was still open). */
  expected: number;
};

const SERVER_CASES: ServerCase[] = [
  {
    event: 'connection',
    install: (s, fail) => s.server.once('connection', fail),
    trigger: () => {},
    expected: 1011,
  },
  {
    event: 'message',
    install: (s, fail) => s.server.once('connection', (ws) => ws.on('message', fail)),
    // Two messages, two failures: still one log line.
    trigger: (client) => {
      client.send('one');
      client.send('two');
    },
    expected: 1011,
  },
  {
    event: 'ping',
    install: (s, fail) => s.server.once('connection', (ws) => ws.on('ping', fail)),
    trigger: (client) => client.ping(),
    expected: 1011,
  },
  {
    event: 'pong',
    install: (s, fail) => s.server.once('connection', (ws) => ws.on('pong', fail)),
    trigger: (client) => client.pong(),
    expected: 1011,
  },
  {
    event: 'drain',
    options: { highWaterMark: 1024 },
    install: (s, fail) =>
      s.server.once('connection', (ws) => {
        ws.on('drain', fail);
        // Far above highWaterMark and the socket's own buffer: send() says wait for 'drain'.
        assert.equal(ws.send(Buffer.alloc(4 * 1024 * 1024)), false);
      }),
    trigger: () => {},
    expected: 1011,
  },
  {
    event: 'error',
    // The client's 64-byte message breaks maxPayload: the connection fails with 1009 anyway.
    options: { maxPayload: 16 },
    install: (s, fail) => s.server.once('connection', (ws) => ws.on('error', fail)),
    trigger: (client) => client.send(Buffer.alloc(64)),
    expected: 1009,
  },
  {
    event: 'close',
    install: (s, fail) => s.server.once('connection', (ws) => ws.on('close', fail)),
    trigger: (client) => client.close(1000),
    expected: 1000,
  },
];

for (const style of STYLES) {
  for (const c of SERVER_CASES) {
    test(`server: ${style === 'async' ? 'an' : 'a'} ${style} '${c.event}' listener that throws is logged once, closes only its connection, and the server keeps serving`, async (t) => {
      const guard = guardProcess(t);
      const { logger, errors, logged } = recordingLogger();
      const s = await serverWith(t, logger, c.options);
      // Later connections echo: they prove the server still serves.
      echo(s.server);
      c.install(s, failing(style));
      const client = await connect(s.url);
      t.after(() => client.terminate());
      const closed = closeOf(client);
      c.trigger(client);
      const [code] = await Promise.race([closed, guard]);
      assert.equal(code, c.expected);
      await Promise.race([logged, guard]);
      await Promise.race([assertServes(s.url), guard]);
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.match(errors[0], new RegExp(`'${c.event}' listener`));
    });
  }
}

type ClientCase = {
  event: string;
  options?: { maxPayload?: number };
  install: (client: WebSocket, fail: (...args: unknown[]) => unknown) => void;
  /** What the server's connection does to trigger the client's event. */
  trigger: (ws: WebSocket) => void;
  /** The close code the server side sees. */
  expected: number;
};

const CLIENT_CASES: ClientCase[] = [
  {
    event: 'message',
    install: (client, fail) => client.on('message', fail),
    trigger: (ws) => ws.send('hello'),
    expected: 1011,
  },
  {
    event: 'ping',
    install: (client, fail) => client.on('ping', fail),
    trigger: (ws) => ws.ping(),
    expected: 1011,
  },
  {
    event: 'error',
    options: { maxPayload: 16 },
    install: (client, fail) => client.on('error', fail),
    trigger: (ws) => ws.send(Buffer.alloc(64)),
    expected: 1009,
  },
  {
    event: 'close',
    install: (client, fail) => client.on('close', fail),
    trigger: (ws) => ws.close(1000),
    expected: 1000,
  },
];

for (const style of STYLES) {
  for (const c of CLIENT_CASES) {
    test(`client: ${style === 'async' ? 'an' : 'a'} ${style} '${c.event}' listener that throws is logged once and closes that connection`, async (t) => {
      const guard = guardProcess(t);
      const { logger, errors, logged } = recordingLogger();
      const s = await serverWith(t, { warn() {}, error() {} });
      const serverSide = once(s.server, 'connection') as Promise<[WebSocket]>;
      const client = await connect(s.url, { logger, ...c.options });
      t.after(() => client.terminate());
      c.install(client, failing(style));
      const [ws] = await serverSide;
      const closed = closeOf(ws);
      c.trigger(ws);
      const [code] = await Promise.race([closed, guard]);
      assert.equal(code, c.expected);
      await Promise.race([logged, guard]);
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.match(errors[0], new RegExp(`'${c.event}' listener`));
    });
  }
}

type BrowserCase = {
  event: string;
  options?: { maxPayload?: number };
  install: (ws: BrowserWebSocket, fail: (...args: unknown[]) => unknown) => void;
  trigger: (ws: WebSocket) => void;
  expected: number;
};

const BROWSER_CASES: BrowserCase[] = [
  {
    event: 'open',
    install: (ws, fail) => (ws.onopen = fail),
    trigger: () => {},
    expected: 1011,
  },
  {
    event: 'message',
    install: (ws, fail) => (ws.onmessage = fail),
    trigger: (ws) => ws.send('hello'),
    expected: 1011,
  },
  {
    event: 'message',
    install: (ws, fail) => ws.addEventListener('message', fail),
    trigger: (ws) => ws.send('hello'),
    expected: 1011,
  },
  {
    event: 'error',
    options: { maxPayload: 16 },
    install: (ws, fail) => (ws.onerror = fail),
    trigger: (ws) => ws.send(Buffer.alloc(64)),
    expected: 1009,
  },
  {
    event: 'close',
    install: (ws, fail) => ws.addEventListener('close', fail),
    trigger: (ws) => ws.close(1000),
    expected: 1000,
  },
];

for (const style of STYLES) {
  for (const [i, c] of BROWSER_CASES.entries()) {
    const how = i === 2 || c.event === 'close' ? 'addEventListener' : `on${c.event}`;
    test(`BrowserWebSocket: ${style === 'async' ? 'an' : 'a'} ${style} ${how} '${c.event}' listener that throws is logged once and closes that connection`, async (t) => {
      const guard = guardProcess(t);
      const { logger, errors, logged } = recordingLogger();
      const s = await serverWith(t, { warn() {}, error() {} });
      const serverSide = once(s.server, 'connection') as Promise<[WebSocket]>;
      const browser = new BrowserWebSocket(s.url, [], { logger, ...c.options });
      c.install(browser, failing(style));
      const browserClosed = new Promise<CloseEvent>((resolve) =>
        browser.addEventListener('close', (event) => resolve(event as CloseEvent)),
      );
      t.after(() => browser.close());
      const [ws] = await serverSide;
      const closed = closeOf(ws);
      c.trigger(ws);
      const [code] = await Promise.race([closed, guard]);
      assert.equal(code, c.expected);
      await Promise.race([browserClosed, guard]);
      await Promise.race([logged, guard]);
      assert.equal(errors.length, 1, errors.join('\n'));
      assert.match(errors[0], new RegExp(`'${c.event}' listener`));
    });
  }
}
