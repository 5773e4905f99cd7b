/**
 * `switchyard serve`: the test server and demo. One HTTP server answers:
 * - `GET /`: the web page (public/index.html), `GET /endpoints.json`: the endpoint list,
 *   `GET /trace/<id>`: the handshake of an upgrade made with `?trace=<id>` (the browser's
 *   WebSocket API shows no headers, so the page asks the server what it received and sent);
 * - upgrades: /echo and /broadcast through the library's `handleUpgrade`, /status/<code>, and the
 *   misbehaving endpoints under /bad/ (see endpoints.ts); anything else gets 404.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'switchyard';
import { formatAcceptResponse, reasonPhrase } from 'switchyard/core';
import { answerStatus, listEndpoints, MISBEHAVIOURS } from './endpoints.js';
import type { Backplane } from 'switchyard';
import { TopicRoom, type Room } from './room.js';

/** Options of {@link startServe}. */
export interface ServeOptions {
  /** Port to listen on (0: any free one). */
  port: number;
  /** Address to listen on. */
  host: string;
  /** Where log lines go (one per connection event); none when absent. */
  log?: (line: string) => void;
  /** The /broadcast room. Default: a {@link TopicRoom} on the server's pub/sub topics. */
  room?: Room;
  /**
   * A pub/sub backplane (for example `@switchyard/redis`): serve processes that share one
   * share the /broadcast room.
   */
  backplane?: Backplane;
  /**
   * Milliseconds a client has to send a complete request head (an upgrade or a page request);
   * slower ones get 408 and are closed (slowloris). Default 10,000, the library's
   * `handshakeTimeout`.
   */
  handshakeTimeout?: number;
  /**
   * Messages of the /broadcast room kept for clients that reconnect with the resume exchange
   * (`ReconnectingWebSocket({ resume: true })`, docs/resume.md); in Redis Streams with a Redis
   * backplane. 0 or absent: off.
   */
  replay?: number;
}

/** A running `switchyard serve`. */
export interface RunningServe {
  /** The http:// URL of the page, for example `http://127.0.0.1:8080/`. */
  url: string;
  /** The ws:// base URL, for example `ws://127.0.0.1:8080`. */
  wsUrl: string;
  address: AddressInfo;
  /** Closes every connection (1001) and stops listening. */
  close(): Promise<void>;
}

/** A recorded handshake, for the page. */
interface Trace {
  path: string;
  requestHead: string;
  responseHead: string | null;
  at: number;
}

const MAX_TRACES = 200;
const PAGE_URL = new URL('../../public/index.html', import.meta.url);

/** Starts the server; resolves once it listens. */
export async function startServe(options: ServeOptions): Promise<RunningServe> {
  const log = options.log ?? (() => {});
  const traces = new Map<string, Trace>();
  const sockets = new Set<Duplex>();
  // The page is served by the same server, so 'same-origin' would admit it; 'any' also admits
  // pages and tools elsewhere, which a test server should (there is nothing to hijack here).
  // Compression on, as most deployments have it, so that the page and doctor show it negotiated.
  const wss = new WebSocketServer({
    origin: 'any',
    logger: false,
    perMessageDeflate: true,
    pubsub:
      options.backplane === undefined && !options.replay
        ? undefined
        : {
            backplane: options.backplane,
            replay: options.replay ? { maxMessages: options.replay } : undefined,
          },
  });
  // /broadcast is a topic: a message is framed once for the whole room, and with a backplane
  // the room spans every serve process on it.
  const room = options.room ?? new TopicRoom(wss);
  const page = await readFile(PAGE_URL);

  // node:http's defaults let a half-sent head hold its socket for 60 s, checked every 30 s:
  // the demo server cuts it off at the library's handshake deadline instead (408).
  const deadline = options.handshakeTimeout ?? 10_000;
  const server = http.createServer(
    {
      headersTimeout: deadline,
      requestTimeout: Math.max(deadline, 30_000),
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(deadline / 4))),
    },
    (req, res) => {
      const url = new URL(req.url ?? '/', 'http://serve.invalid');
      if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
        res.writeHead(200, {
          'Content-Type': 'text/html; charset=utf-8',
          'Cache-Control': 'no-store',
          'Content-Length': page.length,
        });
        return res.end(page);
      }
      if (req.method === 'GET' && url.pathname === '/endpoints.json') {
        return sendJson(res, 200, listEndpoints());
      }
      const traceMatch = /^\/trace\/([\w-]{1,64})$/.exec(url.pathname);
      if (req.method === 'GET' && traceMatch !== null) {
        const trace = traces.get(traceMatch[1]);
        return trace === undefined
          ? sendJson(res, 404, { error: 'no such trace' })
          : sendJson(res, 200, trace);
      }
      // RFC 9110 §15.5.22: a plain request to an upgrade-only resource gets 426 with Upgrade.
      const body = `${url.pathname} is a WebSocket endpoint: send an upgrade request (or open / in a browser).\n`;
      res.writeHead(url.pathname === '/favicon.ico' ? 404 : 426, {
        'Content-Type': 'text/plain; charset=utf-8',
        ...(url.pathname === '/favicon.ico' ? {} : { Upgrade: 'websocket', Connection: 'Upgrade' }),
      });
      res.end(body);
    },
  );

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://serve.invalid');
    const traceId = url.searchParams.get('trace');
    let trace: Trace | null = null;
    if (traceId !== null && /^[\w-]{1,64}$/.test(traceId)) {
      trace = {
        path: url.pathname,
        requestHead: formatRequestHead(req),
        responseHead: null,
        at: Date.now(),
      };
      traces.set(traceId, trace);
      if (traces.size > MAX_TRACES) traces.delete(traces.keys().next().value as string);
      recordResponse(socket, trace);
    }
    log(`upgrade ${req.socket.remoteAddress ?? '?'} ${url.pathname}`);

    const statusMatch = /^\/status\/(\d{3})$/.exec(url.pathname);
    if (statusMatch !== null && statusMatch[1] !== '101') {
      const code = Number(statusMatch[1]);
      if (code < 200 || code > 599) {
        return answerStatus(socket, 400, reasonPhrase(400));
      }
      return answerStatus(socket, code, reasonPhrase(code) || 'Status');
    }
    const bad = /^\/bad\/([\w-]+)$/.exec(url.pathname);
    if (bad !== null && Object.hasOwn(MISBEHAVIOURS, bad[1])) {
      return MISBEHAVIOURS[bad[1]].run(req, socket, head);
    }
    const kind =
      url.pathname === '/echo' || url.pathname === '/status/101'
        ? 'echo'
        : url.pathname === '/broadcast'
          ? 'broadcast'
          : null;
    if (kind === null) {
      const body = `No WebSocket endpoint at ${url.pathname}. See /endpoints.json.\n`;
      socket.end(
        `HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      return;
    }
    void wss.handleUpgrade(req, socket, head).then((ws) => {
      if (ws === null) return;
      if (trace !== null) trace.responseHead ??= acceptedHead(req, ws);
      handleConnection(ws, kind, room, log);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${hostForUrl}:${address.port}/`,
    wsUrl: `ws://${hostForUrl}:${address.port}`,
    address,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await wss.close({ timeout: 1000 });
      for (const socket of sockets) socket.destroy();
      server.closeAllConnections();
      await closed;
    },
  };
}

function handleConnection(
  ws: WebSocket,
  kind: 'echo' | 'broadcast',
  room: Room,
  log: (line: string) => void,
): void {
  log(`open    ${kind}${ws.protocol ? ` protocol=${ws.protocol}` : ''}`);
  ws.on('error', () => {});
  ws.on('close', (code, reason) => log(`close   ${kind} ${code}${reason ? ` ${reason}` : ''}`));
  if (kind === 'echo') {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  } else {
    room.join(ws);
    ws.on('message', (data, isBinary) => room.publish(data, isBinary));
  }
}

function sendJson(res: http.ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value, null, 2);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

function formatRequestHead(req: http.IncomingMessage): string {
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
  }
  return lines.join('\n');
}

/**
 * Records the first response head written to the socket. The misbehaving endpoints write their
 * own, so the trace must see the bytes themselves, not what the endpoint meant to send; and a
 * refusal is usually written with `socket.end(response)`, which does not go through `write`, so
 * both are watched.
 */
function recordResponse(socket: Duplex, trace: Trace): void {
  const write = socket.write;
  const end = socket.end;
  let seen = '';
  const restore = () => {
    socket.write = write;
    socket.end = end;
  };
  const see = (chunk: unknown, final: boolean) => {
    if (trace.responseHead !== null) return;
    if (typeof chunk === 'string' || chunk instanceof Uint8Array) {
      seen += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('latin1');
    }
    const headEnd = seen.indexOf('\r\n\r\n');
    if (headEnd !== -1 || seen.length > 16384 || (final && seen !== '')) {
      // A head cut short by end() is recorded as far as it went.
      const cut = headEnd !== -1 ? headEnd : Math.min(seen.length, 16384);
      trace.responseHead = seen.slice(0, cut).replace(/\r\n/g, '\n');
      restore();
    }
  };
  const patchedWrite = function (this: Duplex, chunk: unknown, ...rest: unknown[]): boolean {
    see(chunk, false);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  };
  const patchedEnd = function (this: Duplex, ...args: unknown[]): Duplex {
    if (typeof args[0] !== 'function') see(args[0], true);
    restore();
    return (end as (...a: unknown[]) => Duplex).apply(this, args);
  };
  socket.write = patchedWrite as typeof socket.write;
  socket.end = patchedEnd as typeof socket.end;
}

/** The 101 the library wrote: the same function builds the same bytes. */
function acceptedHead(req: http.IncomingMessage, ws: WebSocket): string {
  const bytes = formatAcceptResponse({
    key: String(req.headers['sec-websocket-key']),
    protocol: ws.protocol || null,
    extensions: ws.extensions || undefined,
  });
  return Buffer.from(bytes)
    .toString('latin1')
    .replace(/\r\n\r\n$/, '')
    .replace(/\r\n/g, '\n');
}
