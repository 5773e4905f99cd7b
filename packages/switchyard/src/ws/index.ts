/**
 * `switchyard/ws`: the `ws` 8 API over Switchyard, so that a ws program runs by changing its
 * import. A thin adapter over the library's public API: the protocol, limits and security
 * defaults are Switchyard's. What differs from ws, and why: docs/migrating-from-ws.md.
 *
 * @example
 * import WebSocket, { WebSocketServer } from 'switchyard/ws';
 * const wss = new WebSocketServer({ port: 8080 });
 * wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
 */
import { WebSocket } from './websocket.js';
import { WebSocketServer } from './server.js';
import { createWebSocketStream } from './stream.js';

WebSocket.WebSocket = WebSocket;
WebSocket.WebSocketServer = WebSocketServer;
WebSocket.Server = WebSocketServer;
WebSocket.createWebSocketStream = createWebSocketStream;

export {
  WebSocket,
  type BinaryType,
  type Callback,
  type ClientOptions,
  type HandshakeRequestLike,
  type HandshakeResponseLike,
  type RawData,
  type WsData,
  type WebSocketEventMap,
} from './websocket.js';
export {
  WebSocketServer,
  WebSocketServer as Server,
  type ServerOptions,
  type VerifyClient,
  type VerifyClientInfo,
  type WebSocketServerEventMap,
} from './server.js';
export { createWebSocketStream } from './stream.js';
export {
  WsEvent,
  WsMessageEvent,
  WsCloseEvent,
  WsErrorEvent,
  type WsEventListener,
} from './events.js';
export { WS_SERVER_OPTIONS, WS_CLIENT_OPTIONS, type WsOptionRule } from './options.js';
export default WebSocket;
