/**
 * Helpers for the switchyard/ws tests: waiting for servers and clients, for both the adapter and
 * the real `ws` package (the interop peer). Everything listens on 127.0.0.1, port 0.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import RealWebSocket from 'ws';
import type { WebSocketServer } from 'switchyard/ws';

/** The port of an adapter server started with `port: 0`, once it listens. */
export async function portOf(wss: WebSocketServer): Promise<number> {
  const address = wss.address();
  if (address !== null && typeof address === 'object') return address.port;
  await once(wss, 'listening');
  return (wss.address() as AddressInfo).port;
}

/** Listens on 127.0.0.1, any port; resolves with the port. */
export async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Closes an http(s) server, ending its idle keep-alive connections. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** A real `ws` client, open. */
export async function realClient(
  url: string,
  protocolsOrOptions: string[] | RealWebSocket.ClientOptions = {},
): Promise<RealWebSocket> {
  const ws = Array.isArray(protocolsOrOptions)
    ? new RealWebSocket(url, protocolsOrOptions)
    : new RealWebSocket(url, protocolsOrOptions);
  await once(ws, 'open');
  return ws;
}

/** The next message of any EventEmitter WebSocket, as text. */
export async function nextText(ws: {
  once(event: 'message', listener: (data: unknown) => void): unknown;
}): Promise<string> {
  const [data] = (await once(ws as never, 'message')) as [Buffer];
  return data.toString();
}

/** Closes a WebSocket (either kind) and waits for its close event, terminating after 1 s. */
export async function closeClient(ws: {
  readyState: number;
  close(): void;
  terminate(): void;
  once(event: 'close', listener: () => void): unknown;
}): Promise<void> {
  if (ws.readyState === 3) return;
  const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  const timer = setTimeout(() => ws.terminate(), 1000);
  ws.close();
  await closed;
  clearTimeout(timer);
}

/** Resolves when `predicate` holds, checking every 5 ms, at most `tries` times (10 s by default, for a loaded machine). */
export async function until(predicate: () => boolean, tries = 2000): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('condition not met in time');
}
