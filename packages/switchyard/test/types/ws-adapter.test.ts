/**
 * Type tests of switchyard/ws, checked by `tsc` (npm run lint): typed listeners for ws's events
 * (as @types/ws gives them), ws-style annotations still accepted, and `@ts-expect-error` lines
 * that must stay errors. The runtime part only makes sure the file is loaded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import WebSocket, {
  WebSocketServer,
  createWebSocketStream,
  type RawData,
  type HandshakeResponseLike,
} from 'switchyard/ws';
import type { Duplex } from 'node:stream';

type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(_value?: T): void {}

// Only type-checked, never run.
function typedListeners(ws: WebSocket, wss: WebSocketServer): void {
  ws.on('message', (data, isBinary) => {
    expectType<Equal<typeof data, RawData>>();
    expectType<Equal<typeof isBinary, boolean>>();
  });
  ws.on('close', (code, reason) => {
    expectType<Equal<[typeof code, typeof reason], [number, Buffer]>>();
  });
  ws.once('upgrade', (response) => expectType<Equal<typeof response, HandshakeResponseLike>>());
  ws.on('ping', function (data) {
    expectType<Equal<typeof this, WebSocket>>();
    expectType<Equal<typeof data, Buffer>>();
  });
  // ws programs annotate message data as Buffer: still accepted.
  ws.on('message', (data: Buffer) => data.toString());
  // A custom event, as EventEmitter allows.
  ws.on('custom', (a: number, b: string) => [a, b]);
  wss.on('connection', (socket, request) => {
    expectType<Equal<typeof socket, WebSocket>>();
    expectType<Equal<typeof request, IncomingMessage>>();
  });
  // ws's client-authentication example passes a third argument to 'connection'.
  wss.emit('connection', ws, {} as IncomingMessage, 'alice');
  wss.on('headers', (headers) => expectType<Equal<typeof headers, string[]>>());
  expectType<Equal<ReturnType<typeof createWebSocketStream>, Duplex>>();
  expectType<Equal<(typeof WebSocket)['OPEN'], 1>>();
  // @ts-expect-error: not a ws option nor a Switchyard one.
  void new WebSocketServer({ noServer: true, verifyClients: () => true });
  // @ts-expect-error: binaryType is one of four strings.
  ws.binaryType = 'text';
  // @ts-expect-error: readyState is read-only.
  ws.readyState = 1;
}
void typedListeners;

test('switchyard/ws type tests compile', () => {
  assert.equal(WebSocket.WebSocketServer, WebSocketServer);
});
