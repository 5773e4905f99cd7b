/**
 * Options are data: every option bag of the public API is checked against its table. Unknown
 * names (with what to use instead for ws's), wrong types and ranges throw a TypeError with
 * SWITCHYARD_ERR_INVALID_OPTION naming the option; the documented defaults pass their checks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { WebSocketServer, type ServerOptions } from '../../src/node/server.js';
import { connect, type ConnectOptions } from '../../src/node/client.js';
import { BrowserWebSocket } from '../../src/node/browser.js';
import { InvalidOptionError } from '../../src/core/errors.js';
import { allOptions, checkOptions } from '../../src/core/options.js';
import {
  CONNECT_OPTIONS,
  DEFLATE_OPTIONS,
  HEARTBEAT_OPTIONS,
  SERVER_CLOSE_OPTIONS,
  SERVER_OPTIONS,
} from '../../src/node/options.js';
import { PUBSUB_OPTIONS } from '../../src/pubsub/topics.js';

/** Matches an InvalidOptionError for `option` whose message matches `message`. */
function invalid(option: string, message?: RegExp) {
  return (error: unknown) => {
    assert.ok(error instanceof TypeError, String(error));
    assert.ok(error instanceof InvalidOptionError, String(error));
    assert.equal(error.code, 'SWITCHYARD_ERR_INVALID_OPTION');
    assert.equal(error.option, option);
    assert.ok(error.message.includes(`\`${option}\``), error.message);
    if (message !== undefined) assert.match(error.message, message);
    return true;
  };
}

const server = (options: Record<string, unknown>) => () =>
  new WebSocketServer({ logger: false, ...options } as ServerOptions);

test("a ws program's noServer + verifyClient throws instead of running without authentication", () => {
  assert.throws(
    () =>
      new WebSocketServer({
        noServer: true,
        verifyClient: () => false,
      } as unknown as ServerOptions),
    invalid('noServer', /handleUpgrade/),
  );
  assert.throws(server({ verifyClient: () => false }), invalid('verifyClient', /onUpgrade/));
});

test('every ws server option that is not ours names what to use instead', () => {
  for (const [name, instead] of Object.entries(SERVER_OPTIONS.insteadOf ?? {})) {
    assert.ok(instead.length > 10, name);
    assert.throws(server({ [name]: 1 }), invalid(name), name);
  }
  for (const name of ['clientTracking', 'handleProtocols', 'skipUTF8Validation', 'backlog']) {
    assert.ok(name in (SERVER_OPTIONS.insteadOf ?? {}), name);
  }
});

test('every ws client option that is not ours names what to use instead', async () => {
  for (const [name, instead] of Object.entries(CONNECT_OPTIONS.insteadOf ?? {})) {
    assert.ok(instead.length > 10, name);
    await assert.rejects(
      connect('ws://127.0.0.1:9/', { [name]: 1 } as ConnectOptions),
      invalid(name),
      name,
    );
  }
  await assert.rejects(
    connect('ws://127.0.0.1:9/', { rejectUnauthorized: false } as ConnectOptions),
    invalid('rejectUnauthorized', /tls: \{ rejectUnauthorized \}/),
  );
});

test('a misspelt option suggests the right name', async () => {
  assert.throws(server({ maxPayLoad: 10 }), invalid('maxPayLoad', /did you mean `maxPayload`/));
  assert.throws(server({ paths: ['/a'] }), invalid('paths', /did you mean `path`/));
  await assert.rejects(
    connect('ws://127.0.0.1:9/', { protocol: 'chat' } as ConnectOptions),
    invalid('protocol', /did you mean `protocols`/),
  );
  assert.throws(server({ nonsense: 1 }), invalid('nonsense', /It takes: port, host/));
});

test('a value of the wrong type or range throws with the same code, nested options by their path', async () => {
  assert.throws(server({ maxPayload: '1mb' }), invalid('maxPayload', /integer/));
  assert.throws(server({ maxPayload: -1 }), invalid('maxPayload'));
  assert.throws(server({ handshakeTimeout: NaN }), invalid('handshakeTimeout'));
  assert.throws(server({ path: 42 }), invalid('path'));
  assert.throws(server({ origin: 'same-site' }), invalid('origin'));
  assert.throws(server({ onUpgrade: 'yes' }), invalid('onUpgrade'));
  assert.throws(server({ logger: console.log }), invalid('logger'));
  assert.throws(server({ port: 70000 }), invalid('port'));
  assert.throws(server({ heartbeat: { interval: '1s' } }), invalid('heartbeat.interval'));
  assert.throws(
    server({ heartbeat: { intervall: 5 } }),
    invalid('heartbeat.intervall', /interval/),
  );
  assert.throws(
    server({ perMessageDeflate: { serverMaxWindowBits: 16 } }),
    invalid('perMessageDeflate.serverMaxWindowBits', /from 8 to 15/),
  );
  assert.throws(
    server({ perMessageDeflate: { zlibDeflateOptions: { level: 1 } } }),
    invalid('perMessageDeflate.zlibDeflateOptions', /level/),
  );
  assert.throws(
    server({ pubsub: { slowConsumer: { policy: 'close' } } }),
    invalid('pubsub.slowConsumer.policy', /'drop'/),
  );
  assert.throws(server({ pubsub: { backplan: {} } }), invalid('pubsub.backplan', /backplane/));
  await assert.rejects(
    connect('ws://127.0.0.1:9/', { followRedirects: 'yes' } as unknown as ConnectOptions),
    invalid('followRedirects'),
  );
  await assert.rejects(
    connect('ws://127.0.0.1:9/', { headers: 'x' } as unknown as ConnectOptions),
    invalid('headers'),
  );
});

test('options set to undefined count as not given, and valid bags pass', async (t) => {
  const httpServer = http.createServer();
  const wss = new WebSocketServer({
    server: httpServer,
    path: ['/a', '/b'],
    protocols: (offered) => offered[0],
    origin: ['https://example.com'],
    maxPayload: Infinity,
    maxControlFramesPerSecond: Infinity,
    heartbeat: { interval: 1000 },
    perMessageDeflate: { threshold: 0, clientMaxWindowBits: true, releaseAfter: false },
    pubsub: { slowConsumer: { policy: 'close-1013' } },
    logger: false,
    handshakeTimeout: undefined,
    onUpgrade: undefined,
  });
  t.after(() => wss.close({ timeout: 10 }));
  const browser = () =>
    new BrowserWebSocket('ws://127.0.0.1:9/', [], {
      logger: false,
      handshakeTimeout: undefined,
      spelt: undefined,
    } as ConnectOptions);
  const ws = browser();
  ws.onerror = () => {};
  ws.close();
});

test('BrowserWebSocket and server.close() check their options too', async () => {
  assert.throws(
    () => new BrowserWebSocket('ws://127.0.0.1:9/', [], { verifyClient: 1 } as ConnectOptions),
    invalid('verifyClient', /BrowserWebSocket/),
  );
  const wss = new WebSocketServer({ logger: false });
  await assert.rejects(
    wss.close({ timout: 1 } as unknown as { timeout: number }),
    invalid('timout', /did you mean `timeout`/),
  );
  await wss.close({ timeout: 10 });
});

test('every default in the option tables passes its own check', () => {
  for (const table of [
    SERVER_OPTIONS,
    CONNECT_OPTIONS,
    HEARTBEAT_OPTIONS,
    DEFLATE_OPTIONS,
    PUBSUB_OPTIONS,
    SERVER_CLOSE_OPTIONS,
  ]) {
    const names = new Set<string>();
    for (const spec of allOptions(table)) {
      assert.ok(!names.has(spec.name), `${table.owner}: ${spec.name} twice`);
      names.add(spec.name);
      assert.ok(!(spec.name in (table.insteadOf ?? {})), `${spec.name} is both taken and refused`);
      if (spec.default !== undefined) {
        checkOptions(table, { [spec.name]: spec.default });
      }
    }
  }
});

test('the options argument itself must be an object', () => {
  assert.throws(() => new WebSocketServer(8080 as unknown as ServerOptions), invalid('options'));
});

test('ReconnectingWebSocket checks its options once, in the constructor', async () => {
  const { ReconnectingWebSocket } = await import('../../src/node/reconnecting.js');
  type Options = ConstructorParameters<typeof ReconnectingWebSocket>[1];
  assert.throws(
    () => new ReconnectingWebSocket('ws://127.0.0.1:9/', { verifyClient: 1 } as Options),
    invalid('verifyClient', /ReconnectingWebSocket/),
  );
  assert.throws(
    () =>
      new ReconnectingWebSocket('ws://127.0.0.1:9/', {
        reconnect: { maxDelay: '1s' },
      } as unknown as Options),
    invalid('reconnect.maxDelay'),
  );
  assert.throws(
    () =>
      new ReconnectingWebSocket('ws://127.0.0.1:9/', { signal: AbortSignal.abort() } as Options),
    invalid('signal', /close\(\)/),
  );
});
