/**
 * Type tests of the public API. They are checked by `tsc` (npm run lint): each
 * `@ts-expect-error` line must be an error, so a type that becomes too loose fails the build.
 * The runtime part only makes sure the file is loaded by the test runner.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BrowserWebSocket,
  connect,
  reject,
  WebSocket,
  WebSocketServer,
  type ConnectOptions,
  type HandshakeResponse,
  type UnexpectedResponseError,
  type ServerOptions,
  type UpgradeDecision,
  type UpgradeHook,
} from '../../src/index.js';
import { Connection, NEED_DATA, type ConnectionEvent } from '../../src/core/index.js';

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_value?: T): void {}

// connect resolves with a WebSocket.
expectType<Equal<Awaited<ReturnType<typeof connect>>, WebSocket>>();
// The handshake response is there on client sockets only, and read-only.
expectType<Equal<WebSocket['response'], HandshakeResponse | undefined>>();
expectType<Equal<HandshakeResponse['headers'], Readonly<Record<string, string>>>>();
expectType<Equal<UnexpectedResponseError['bodyText'], string>>();
function readOnlyResponse(ws: WebSocket): void {
  // @ts-expect-error: the response cannot be replaced.
  ws.response = undefined;
}
void readOnlyResponse;
// send reports back-pressure.
expectType<Equal<ReturnType<WebSocket['send']>, boolean>>();
// Typed events: a message listener gets (string | Buffer, boolean). Only type-checked, never run.
function typedEvents(ws: WebSocket): void {
  ws.on('message', (data, isBinary) => {
    expectType<Equal<typeof data, string | Buffer>>();
    expectType<Equal<typeof isBinary, boolean>>();
  });
  ws.on('close', (code, reason, wasClean) => {
    expectType<Equal<[typeof code, typeof reason, typeof wasClean], [number, string, boolean]>>();
  });
  // @ts-expect-error: there is no such event.
  ws.on('mesage', () => {});
  // @ts-expect-error: numbers are not sendable data.
  ws.send(42);
}

// The hook returns a decision; reject() builds one.
const hook: UpgradeHook = async (req, info) => {
  expectType<Equal<typeof info.protocols, string[]>>();
  expectType<Equal<typeof info.signal, AbortSignal>>();
  return req.headers.authorization ? { context: { user: 1 } } : reject(401, 'no');
};
const decision: UpgradeDecision = reject(403);
// @ts-expect-error: a rejection needs a status.
const bad: UpgradeDecision = { reject: true };

const serverOptions: ServerOptions = {
  port: 0,
  onUpgrade: hook,
  origin: ['https://a.example'],
  heartbeat: false,
};
// @ts-expect-error: origin policies are a keyword, a list or a function.
const badOrigin: ServerOptions = { origin: 42 };
const clientOptions: ConnectOptions = { protocols: ['a'], followRedirects: 3, proxy: false };
// @ts-expect-error: followRedirects is a boolean or a count.
const badRedirects: ConnectOptions = { followRedirects: 'yes' };

// The core's events are a discriminated union.
function onEvent(event: ConnectionEvent | typeof NEED_DATA): void {
  if (event === NEED_DATA) return;
  if (event.type === 'close') expectType<Equal<typeof event.code, number>>();
  if (event.type === 'message') expectType<Equal<typeof event.data, Uint8Array>>();
}

test('the public API exports what the types describe', () => {
  assert.equal(typeof WebSocketServer, 'function');
  assert.equal(typeof BrowserWebSocket, 'function');
  assert.equal(typeof Connection, 'function');
  assert.equal(WebSocket.OPEN, 1);
  void [decision, bad, serverOptions, badOrigin, clientOptions, badRedirects, onEvent, typedEvents];
});
