/**
 * Sharing one HTTP server's `upgrade` event among several endpoints and libraries.
 *
 * Theory of operation. Node emits `upgrade` to every listener of the server, and each listener
 * must decide for itself whether the request is its own: a `WebSocketServer` on `/a`, another
 * on `/b`, a `ws` `noServer` handler, engine.io (socket.io), a dev server's hot-reload socket.
 * So the WebSocketServers attached to one server do not listen one by one: the first one
 * installs a router (one per server, kept in a WeakMap), and the router hands each upgrade to
 * the first endpoint that serves its path and speaks one of the protocols it offers (RFC 9110
 * §7.8), and leaves every other request alone for the other listeners.
 *
 * A request that nobody takes must still get an answer, or the client waits until its own
 * timeout on a socket that nobody will ever read. Listeners run synchronously in one `emit`, so
 * the router looks again on the next turn of the event loop (`setImmediate`): if no endpoint
 * took the socket and no other listener did anything with it (wrote to it, destroyed it, added
 * a listener to it, or pushed bytes back into it), the router answers 426 when one of its
 * endpoints serves the path (with the protocols served there) and 404 otherwise. The socket's
 * listeners are counted by a listener *prepended* to the server's, so that what the other
 * listeners attach is seen whatever their order.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { negotiateUpgrade } from '../core/upgrade.js';

/** An endpoint the router can hand upgrades to (a WebSocketServer attached to the server). */
export interface UpgradeEndpoint {
  /** The protocols (`websocket` first) served at `pathname`, or null when the path is not. */
  protocolsAt(pathname: string): readonly string[] | null;
  /** Takes the upgrade: from now on the socket is the endpoint's. */
  takeUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Answers a request that nobody took with `status` (404, or 426 listing `protocols`). */
  answerUnclaimed(
    req: IncomingMessage,
    socket: Duplex,
    status: 404 | 426,
    protocols: readonly string[],
  ): void;
}

/** A server with an `upgrade` event: `http`, `https`, or `http2` with `allowHTTP1`. */
interface UpgradeSource {
  on(event: 'upgrade', listener: UpgradeListener): unknown;
  prependListener(event: 'upgrade', listener: UpgradeListener): unknown;
  off(event: 'upgrade', listener: UpgradeListener): unknown;
}

type UpgradeListener = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

interface Router {
  endpoints: UpgradeEndpoint[];
  observe: UpgradeListener;
  route: UpgradeListener;
}

const routers = new WeakMap<object, Router>();
const kBaseline = Symbol('switchyard.upgradeBaseline');

type WatchedSocket = Duplex & {
  [kBaseline]?: Baseline;
  bytesWritten?: number;
};

/** What the socket looked like when the server emitted `upgrade`. */
interface Baseline {
  listeners: number;
  readable: number;
  /** Not 0 when the connection served plain requests before this upgrade (keep-alive). */
  written: number;
}

/**
 * Adds `endpoint` to the router of `server` (creating it on first use). The returned function
 * removes it again; the router leaves the server with its last endpoint.
 */
export function routeUpgrades(server: UpgradeSource, endpoint: UpgradeEndpoint): () => void {
  let router = routers.get(server);
  if (router === undefined) {
    const created: Router = {
      endpoints: [],
      observe: (_req, socket) => {
        (socket as WatchedSocket)[kBaseline] = baselineOf(socket);
      },
      route: (req, socket, head) => routeUpgrade(created, req, socket, head),
    };
    router = created;
    routers.set(server, router);
    server.prependListener('upgrade', router.observe);
    server.on('upgrade', router.route);
  }
  router.endpoints.push(endpoint);
  const owned = router;
  return () => {
    const index = owned.endpoints.indexOf(endpoint);
    if (index === -1) return;
    owned.endpoints.splice(index, 1);
    if (owned.endpoints.length === 0 && routers.get(server) === owned) {
      server.off('upgrade', owned.observe);
      server.off('upgrade', owned.route);
      routers.delete(server);
    }
  };
}

function routeUpgrade(router: Router, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  // A listener that ran before the router may already have answered (or refused) the request.
  // Only writes count here: a listener that merely listens to every socket (for its errors,
  // say) must not stop an endpoint from taking its own path.
  if (socket.destroyed || wroteTo(socket as WatchedSocket)) return;
  const pathname = pathnameOf(req.url);
  for (const endpoint of router.endpoints) {
    const protocols = endpoint.protocolsAt(pathname);
    if (protocols === null || !offersOneOf(req, protocols)) continue;
    endpoint.takeUpgrade(req, socket, head);
    return;
  }
  // Not ours: the other listeners of this emit run now; look again once they all have.
  const endpoints = [...router.endpoints];
  setImmediate(() => {
    if (socket.destroyed || tookOver(socket) || endpoints.length === 0) return;
    const served = new Set<string>();
    for (const endpoint of endpoints) {
      for (const protocol of endpoint.protocolsAt(pathname) ?? []) served.add(protocol);
    }
    // RFC 9110 §15.5.22: a path that is served, asked for with a protocol it does not speak,
    // gets 426 naming the ones it does; a path that nothing serves gets 404.
    endpoints[0]!.answerUnclaimed(req, socket, served.size > 0 ? 426 : 404, [...served]);
  });
}

function baselineOf(socket: WatchedSocket): Baseline {
  let listeners = 0;
  for (const name of socket.eventNames()) listeners += socket.listenerCount(name);
  return { listeners, readable: socket.readableLength, written: socket.bytesWritten ?? 0 };
}

/** Whether something was written to the socket (or it was ended) since `upgrade` was emitted. */
function wroteTo(socket: WatchedSocket): boolean {
  const written = socket[kBaseline]?.written ?? 0;
  return !socket.writable || socket.writableLength > 0 || (socket.bytesWritten ?? 0) > written;
}

/** Whether some other listener did something with the socket since `upgrade` was emitted. */
function tookOver(socket: WatchedSocket): boolean {
  if (wroteTo(socket)) return true;
  const before = socket[kBaseline];
  if (before === undefined) return false;
  const now = baselineOf(socket);
  return now.listeners !== before.listeners || now.readable !== before.readable;
}

/**
 * Whether the request offers a protocol of `protocols`, or is a malformed or HTTP/1.0 upgrade
 * naming one of them (or nothing readable): the endpoint answers those with a precise 400.
 */
function offersOneOf(req: IncomingMessage, protocols: readonly string[]): boolean {
  const negotiated = negotiateUpgrade(
    {
      method: req.method ?? '',
      httpVersion: req.httpVersion,
      url: req.url ?? '/',
      headers: req.headers,
    },
    protocols,
  );
  if (negotiated.protocol !== null) return true;
  if (negotiated.reason === 'unsupported') return false;
  const names = new Set(protocols.map((p) => p.split('/')[0]!.toLowerCase()));
  return negotiated.offered.length === 0 || negotiated.offered.some((p) => names.has(p.name));
}

function pathnameOf(url: string | undefined): string {
  const target = url ?? '/';
  try {
    return new URL(target, 'http://localhost').pathname;
  } catch {
    return target.split('?')[0] ?? '/';
  }
}
