/**
 * The handshake deadline on a server the application owns (`new WebSocketServer({ server })`).
 *
 * Theory of operation. A standalone WebSocketServer reads request heads itself and answers 408
 * at `handshakeTimeout`. An attached one gets requests only once node:http has parsed their
 * heads, so a peer that sends half a head (slowloris) is node:http's business, and node:http's
 * defaults are loose: `headersTimeout` 60 s, checked only every `connectionsCheckingInterval`
 * (30 s, fixed when the server is created). So the library times each new connection itself:
 * a connection whose first request head is not complete within the deadline gets
 * `408 Request Timeout` and is closed. It also lowers `headersTimeout` to the deadline when it
 * was looser, for the heads of later requests on kept-alive connections. Plain HTTP requests on
 * that server get the same deadline for their heads: a head that takes longer than the
 * handshake deadline is a slow-headers attack whatever it asks for.
 */
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

const kDeadline = Symbol('switchyard.headDeadline');
type TimedSocket = Socket & { [kDeadline]?: NodeJS.Timeout | null };

const RESPONSE_408 =
  'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\n' +
  'Content-Length: 37\r\n\r\nThe request head did not arrive in time';

/** Servers already timed, with the deadline and how many WebSocketServers asked for it. */
const timed = new WeakMap<
  HttpServer | HttpsServer,
  { ms: number; users: number; off: () => void }
>();

/**
 * Times the first request head of every new connection of `server` at `ms`; returns the undo.
 * Several WebSocketServers on one server share one set of listeners (the shortest deadline).
 */
export function enforceHeadDeadline(server: HttpServer | HttpsServer, ms: number): () => void {
  if (!(ms > 0) || !Number.isFinite(ms)) return () => {};
  if (server.headersTimeout === 0 || server.headersTimeout > ms) server.headersTimeout = ms;
  const existing = timed.get(server);
  if (existing !== undefined) {
    existing.ms = Math.min(existing.ms, ms);
    existing.users++;
    return () => release(server);
  }
  const state = { ms, users: 1, off: () => {} };
  // TLS: the head is read from the TLS socket, once the TLS handshake (which has its own
  // timeout, `handshakeTimeout` of node:tls) is done.
  const event = isTlsServer(server) ? 'secureConnection' : 'connection';
  const onConnection = (socket: Socket): void => {
    const timedSocket = socket as TimedSocket;
    const timer = setTimeout(onDeadline, state.ms, timedSocket);
    timer.unref();
    timedSocket[kDeadline] = timer;
    socket.once('close', () => clear(timedSocket));
  };
  const onHead = (req: IncomingMessage): void => clear(req.socket as TimedSocket);
  server.prependListener(event, onConnection);
  server.prependListener('request', onHead);
  server.prependListener('upgrade', onHead);
  state.off = () => {
    server.off(event, onConnection);
    server.off('request', onHead);
    server.off('upgrade', onHead);
  };
  timed.set(server, state);
  return () => release(server);
}

function release(server: HttpServer | HttpsServer): void {
  const state = timed.get(server);
  if (state === undefined || --state.users > 0) return;
  state.off();
  timed.delete(server);
}

function isTlsServer(server: object): boolean {
  return typeof (server as { setSecureContext?: unknown }).setSecureContext === 'function';
}

function clear(socket: TimedSocket): void {
  const timer = socket[kDeadline];
  if (timer) clearTimeout(timer);
  socket[kDeadline] = null;
}

function onDeadline(socket: TimedSocket): void {
  socket[kDeadline] = null;
  if (socket.destroyed) return;
  // Nothing has been written on a connection whose first head never completed.
  socket.end(RESPONSE_408);
  setTimeout(() => socket.destroy(), 1000).unref();
}
