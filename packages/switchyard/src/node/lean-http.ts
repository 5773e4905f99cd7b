/**
 * The standalone server's acceptor: a `net.Server` that reads each connection's request head
 * with the core's strict {@link HttpHeadParser} and hands upgrade requests over, without
 * node:http's parser, IncomingMessage and ServerResponse per connection.
 *
 * Theory of operation. A new socket gets a parser and one timer (the handshake deadline:
 * slowloris protection). Bytes go to the parser until the head is complete, too large, or
 * malformed. A complete upgrade request goes to `onUpgrade` with the bytes that followed the
 * head; anything else gets a short HTTP answer (426 for a plain request, 400/431/505 for a bad
 * head, 408 for one too slow) and the socket is closed. Listeners are module functions that
 * find their state through a symbol, as in websocket.ts, so a connection costs no closures.
 */
import net from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import { RemoteProtocolError } from '../core/errors.js';
import { parseTokenList } from '../core/header-lists.js';
import { HttpHeadParser, type RequestHead } from '../core/http-head.js';
import { formatResponse } from '../core/upgrade.js';

/**
 * The standalone server's request: the parts of Node's `IncomingMessage` that a handshake
 * needs (method, url, httpVersion, headers, rawHeaders, socket), without its stream machinery.
 */
export interface LeanRequest {
  method?: string;
  url?: string;
  httpVersion: string;
  /** Lower-case names; repeated headers joined with ", " (set-cookie: an array). */
  headers: IncomingHttpHeaders;
  rawHeaders: string[];
  socket: net.Socket;
}

/** What the acceptor needs from its owner. */
export interface LeanAcceptorOptions {
  maxHeaderBytes: number;
  maxHeaders: number;
  /** Milliseconds from accept to a complete head; 408 after that. */
  handshakeTimeout: number;
  /** A complete request that asks to upgrade. */
  onUpgrade(req: LeanRequest, socket: net.Socket, head: Buffer): void;
  /** A complete request that does not ask to upgrade: answer it (the socket closes after). */
  onPlainRequest(req: LeanRequest, socket: net.Socket): void;
  /** A head that was too large, malformed, or too slow: already answered; for logging. */
  onBadRequest(error: RemoteProtocolError, socket: net.Socket): void;
}

const kAcceptor = Symbol('switchyard.acceptor');
const kPending = Symbol('switchyard.pendingHeads');

interface Pending {
  parser: HttpHeadParser<'request'>;
  timer: NodeJS.Timeout;
  options: LeanAcceptorOptions;
}

type Accepted = net.Socket & { [kAcceptor]?: Pending; [kPending]?: Set<net.Socket> };
type LeanServer = net.Server & { [kPending]: Set<net.Socket> };

/** Creates the acceptor; call `listen()` on the result. */
export function createLeanServer(options: LeanAcceptorOptions): net.Server {
  const pending = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket: Accepted) => {
    pending.add(socket);
    socket[kPending] = pending;
    socket[kAcceptor] = {
      parser: new HttpHeadParser({
        kind: 'request',
        maxHeaderBytes: options.maxHeaderBytes,
        maxHeaders: options.maxHeaders,
      }),
      timer: setTimeout(headTimedOut, options.handshakeTimeout, socket),
      options,
    };
    socket.on('data', acceptorOnData);
    socket.on('error', acceptorOnError);
    socket.on('close', acceptorOnClose);
  }) as LeanServer;
  server[kPending] = pending;
  return server;
}

/** Destroys the sockets whose request head has not arrived yet (a server shutting down). */
export function destroyPendingHeads(server: net.Server): void {
  const pending = (server as Partial<LeanServer>)[kPending];
  if (pending === undefined) return;
  for (const socket of pending) socket.destroy();
  pending.clear();
}

function detach(socket: Accepted): Pending | undefined {
  const pending = socket[kAcceptor];
  if (pending === undefined) return undefined;
  clearTimeout(pending.timer);
  socket[kAcceptor] = undefined;
  socket[kPending]?.delete(socket);
  socket[kPending] = undefined;
  socket.off('data', acceptorOnData);
  socket.off('error', acceptorOnError);
  socket.off('close', acceptorOnClose);
  return pending;
}

function acceptorOnData(this: Accepted, chunk: Buffer): void {
  const pending = this[kAcceptor];
  if (pending === undefined) return;
  const result = pending.parser.push(chunk);
  if (result === null) return;
  detach(this);
  if (!result.ok) {
    answer(this, result.error.status ?? 400, `${result.error.message}\n`);
    pending.options.onBadRequest(result.error, this);
    return;
  }
  const req = toLeanRequest(result.head, this);
  const rest = result.rest;
  const head = rest.length === 0 ? EMPTY : Buffer.from(rest.buffer, rest.byteOffset, rest.length);
  // RFC 9110 §7.8: an Upgrade header counts only when Connection lists "upgrade"; otherwise
  // this is a plain request (node:http routes it the same way).
  const connection = parseTokenList(req.headers.connection);
  if (req.headers.upgrade !== undefined && connection !== null && connection.includes('upgrade')) {
    // The socket stays flowing: whoever takes it attaches its own 'data' listener at once.
    this.on('error', swallow);
    pending.options.onUpgrade(req, this, head);
  } else {
    this.on('error', swallow);
    pending.options.onPlainRequest(req, this);
  }
}

function acceptorOnError(this: Accepted): void {
  detach(this);
  this.destroy();
}

function acceptorOnClose(this: Accepted): void {
  detach(this);
}

function headTimedOut(socket: Accepted): void {
  const pending = detach(socket);
  if (pending === undefined) return;
  const error = new RemoteProtocolError(
    'SWITCHYARD_ERR_HANDSHAKE_TIMEOUT',
    `The request head did not arrive within ${pending.options.handshakeTimeout} ms`,
    { status: 408 },
  );
  answer(socket, 408, `${error.message}\n`);
  pending.options.onBadRequest(error, socket);
}

/** Writes a short response and closes; never waits long for a peer that does not read. */
export function answer(
  socket: Duplex,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  socket.on('error', swallow);
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(formatResponse(status, undefined, headers, body));
  setTimeout(destroyLater, 1000, socket).unref();
}

function destroyLater(socket: Duplex): void {
  socket.destroy();
}

function swallow(): void {
  // Errors after the head is handed over belong to the new owner; a reset here is expected.
}

/**
 * The new owner of a handed-over socket is about to attach its own 'error' listener: the
 * acceptor's placeholder goes, so that a long-lived connection does not keep a listener array
 * (two listeners for one event) for it. A no-op on sockets the acceptor never saw.
 */
export function releaseErrors(socket: Duplex): void {
  socket.off('error', swallow);
}

const EMPTY = Buffer.alloc(0);

function toLeanRequest(head: RequestHead, socket: net.Socket): LeanRequest {
  return {
    method: head.method,
    url: head.url,
    httpVersion: head.httpVersion,
    headers: head.headers as IncomingHttpHeaders,
    rawHeaders: head.rawHeaders,
    socket,
  };
}
