/**
 * WebSockets over HTTP/2 (RFC 8441): the Node binding of the extended CONNECT, server and client.
 *
 * Theory of operation. An HTTP/2 stream is a Duplex, and RFC 8441 §5 says to run RFC 6455
 * "using the HTTP/2 stream from the CONNECT transaction as if it were the TCP connection", so
 * once the head is done the ordinary {@link WebSocket} is bound to the stream; the stream's
 * flow control is the back-pressure (`write()` returns false, reading pauses), END_STREAM is the
 * FIN, and RST_STREAM or a lost session is a reset (RFC 8441 §5.1), which ends in `close` 1006.
 *
 * Server: {@link attachHttp2} advertises SETTINGS_ENABLE_CONNECT_PROTOCOL on the server (only
 * then, RFC 8441 §3: a browser that sees the setting sends its WebSockets as streams, so
 * advertising without serving would break it) and routes every `:protocol websocket` stream to
 * {@link handleWebSocketStream}, which runs the same steps as `handleUpgrade` for HTTP/1.1: the
 * core's checks, path, Origin, limits, subprotocol, the async hook, then a 200 and a WebSocket,
 * or a real HTTP/2 response that rejects. Node's compatibility layer (a server created with a
 * request listener) answers every CONNECT it sees with 405 unless a 'connect' listener exists,
 * so one is added that leaves WebSocket streams alone and keeps Node's answers for the rest.
 *
 * Client: {@link connectHttp2} takes a session (the caller's, or one per origin from a pool,
 * shared by every WebSocket opened with `http2: true`), waits until the server's SETTINGS are
 * known, sends the extended CONNECT if the server advertised it, and otherwise says "fall
 * back" so that `connect` opens an HTTP/1.1 connection instead.
 */
import http2 from 'node:http2';
import type {
  ClientHttp2Session,
  ClientHttp2Stream,
  Http2SecureServer,
  Http2Server,
  Http2ServerRequest,
  Http2ServerResponse,
  Http2Stream,
  IncomingHttpHeaders,
  ServerHttp2Stream,
} from 'node:http2';
import type { IncomingMessage } from 'node:http';
import { Duplex } from 'node:stream';
import {
  ConnectionError,
  LocalProtocolError,
  RemoteProtocolError,
  type SwitchyardError,
} from '../core/errors.js';
import {
  formatAcceptHeaders,
  formatExtendedConnectRequest,
  formatRejectHeaders,
  isWebSocketConnect,
  validateExtendedConnect,
  validateExtendedConnectResponse,
} from '../core/extended-connect.js';
import { CONNECTION_DEFAULTS } from '../core/connection.js';
import { flattenHeaders, type ExtensionOffer } from '../core/header-lists.js';
import { PERMESSAGE_DEFLATE } from '../core/permessage-deflate.js';
import {
  acceptDeflateOffers,
  acceptDeflateResponseFor,
  deflateConfig,
  deflateOfferHeader,
} from './deflate.js';
import type { ConnectOptions } from './connect-options.js';
import { resolveLogger, type Logger } from './diagnostics.js';
import { readErrorBody } from './error-body.js';
import type { HandshakeRequest } from './handshake-request.js';
import { WebSocket, type WebSocketOptions } from './websocket.js';

/**
 * What this module needs of a `WebSocketServer`. The server passes itself in (it implements
 * this), so that this module does not import server.ts, which imports this one.
 */
export interface StreamServer {
  readonly options: WebSocketOptions;
  readonly logger: Logger | null;
  readonly closing: boolean;
  servesPath(pathname: string): boolean;
  handleStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<WebSocket | null>;
  decide(
    req: HandshakeRequest,
    socket: Duplex,
    url: URL,
    check: { protocols: string[]; extensions: ExtensionOffer[]; origin: string | undefined },
  ): Promise<{
    protocol: string | null;
    acceptance: { context?: unknown; headers?: Record<string, string> };
    early: Buffer[];
  } | null>;
  refuse(
    req: HandshakeRequest,
    socket: Duplex,
    code: SwitchyardError['code'],
    status: number,
    body?: string,
  ): null;
  rejectWith(req: HandshakeRequest, socket: Duplex, error: SwitchyardError): null;
  adopt(ws: WebSocket, req: HandshakeRequest): void;
}
import { HEARTBEAT_DEFAULTS } from './options.js';

const { NGHTTP2_CANCEL } = http2.constants;
const kHandled = Symbol('switchyard.streamHandled');
const kCompatRequest = Symbol('switchyard.compatRequest');

/** Any HTTP/2 server of Node's: cleartext (`createServer`) or TLS (`createSecureServer`). */
export type AnyHttp2Server = Http2Server | Http2SecureServer;

/** Whether `server` is one of Node's HTTP/2 servers (they alone can update their SETTINGS). */
export function isHttp2Server(server: unknown): server is AnyHttp2Server {
  return (
    typeof server === 'object' &&
    server !== null &&
    typeof (server as { updateSettings?: unknown }).updateSettings === 'function'
  );
}

/** Whether a Duplex is an HTTP/2 stream (it answers with `respond`, not with bytes). */
export function isHttp2Stream(socket: unknown): socket is ServerHttp2Stream {
  return (
    typeof socket === 'object' &&
    socket !== null &&
    typeof (socket as { respond?: unknown }).respond === 'function'
  );
}

// ---------------------------------------------------------------------------------------------
// Streams as transports

function ignoreError(): void {}

/**
 * `destroy()` on an HTTP/2 stream resets it with NO_ERROR; RFC 8441 §5.1 says "RST exceptions
 * are represented with the stream error ... of type CANCEL", so the WebSocket's `terminate()`,
 * close timeout and idle timeout reset with CANCEL instead. Installed per stream, as a plain
 * function (no closure).
 */
function destroyWithCancel(this: Http2Stream, error?: Error | null): Http2Stream {
  // Only a live session can send the RST_STREAM; when the session itself is being destroyed
  // (it destroys its streams), the plain destroy is what ends the stream.
  const session = this.session;
  if (
    (error === undefined || error === null) &&
    !this.closed &&
    !this.destroyed &&
    session !== undefined &&
    !session.destroyed
  ) {
    this.close(NGHTTP2_CANCEL);
    return this;
  }
  return Duplex.prototype.destroy.call(this, error ?? undefined) as Http2Stream;
}

/** Makes a stream a WebSocket transport: resets are CANCEL, stray errors never crash. */
function prepareStream(stream: Http2Stream): void {
  stream.destroy = destroyWithCancel;
  // An error before the WebSocket listens (a reset while the hook runs) must not crash the
  // process; 'close' follows and does the cleanup.
  stream.on('error', ignoreError);
}

/**
 * Answers an HTTP/2 request with a rejection: the status, the headers (connection-specific ones
 * dropped) and a plain-text body, then ends the stream. A stream that is already gone, or whose
 * headers were sent, is reset instead.
 */
export function respondToStream(
  stream: ServerHttp2Stream,
  status: number,
  headers: Record<string, string> | undefined,
  body: string | Uint8Array,
): void {
  if (stream.destroyed || stream.closed || stream.headersSent) {
    stream.close(NGHTTP2_CANCEL);
    return;
  }
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const fields = formatRejectHeaders(status, headers);
  if (fields['content-type'] === undefined && typeof body === 'string') {
    fields['content-type'] = 'text/plain; charset=utf-8';
  }
  fields['content-length'] = bytes.length;
  stream.respond(fields);
  stream.end(bytes);
  // The client may keep its half open; the request is over once the answer is out.
  stream.once('finish', () => {
    if (!stream.closed) stream.close(NGHTTP2_CANCEL);
  });
}

// ---------------------------------------------------------------------------------------------
// Server

/** How a `WebSocketServer` is attached to an HTTP/2 server; `detach()` undoes it. */
export interface Http2Attachment {
  detach(): void;
}

/** The WebSocketServers attached to one HTTP/2 server, and the listeners they share. */
interface StreamRouter {
  servers: StreamServer[];
  onStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;
  onConnect: (req: Http2ServerRequest | IncomingMessage, res: Http2ServerResponse | Duplex) => void;
}

const streamRouters = new WeakMap<AnyHttp2Server, StreamRouter>();

/**
 * Routes the WebSocket streams of an HTTP/2 server to `wss`, and advertises extended CONNECT
 * (`enableConnectProtocol`) in the SETTINGS of every session opened from now on. HTTP/1.1
 * upgrades on the same server (`allowHTTP1`) keep going through its 'upgrade' event.
 *
 * Several WebSocketServers may attach to one HTTP/2 server: they share one 'stream' listener,
 * which hands a WebSocket stream to the first server whose `path` serves its `:path`, and
 * leaves the others alone for other 'stream' listeners. A WebSocket stream that nobody answered
 * by the next turn of the event loop gets 404, rather than waiting for the client's timeout.
 */
export function attachHttp2(wss: StreamServer, server: AnyHttp2Server): Http2Attachment {
  // RFC 8441 §3: "Upon receipt of SETTINGS_ENABLE_CONNECT_PROTOCOL with a value of 1, a client
  // MAY use the Extended CONNECT". Set now, when a WebSocketServer really serves the streams.
  server.updateSettings({ enableConnectProtocol: true });
  let router = streamRouters.get(server);
  if (router === undefined) {
    router = createStreamRouter(server);
    streamRouters.set(server, router);
    server.on('stream', router.onStream);
    server.on('connect', router.onConnect);
  }
  router.servers.push(wss);
  const owned = router;
  return {
    detach() {
      const index = owned.servers.indexOf(wss);
      if (index === -1) return;
      owned.servers.splice(index, 1);
      if (owned.servers.length > 0 || streamRouters.get(server) !== owned) return;
      streamRouters.delete(server);
      server.off('stream', owned.onStream);
      server.off('connect', owned.onConnect);
      // New sessions no longer hear of extended CONNECT. Sessions that did keep it (RFC 8441
      // §3: "A sender MUST NOT send a SETTINGS_ENABLE_CONNECT_PROTOCOL parameter with the value
      // of 0 after previously sending a value of 1"); their WebSocket streams get no answer
      // from us, which is what a server that is shutting down may do.
      server.updateSettings({ enableConnectProtocol: false });
    },
  };
}

function createStreamRouter(server: AnyHttp2Server): StreamRouter {
  const servers: StreamServer[] = [];
  const onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    if (!isWebSocketConnect(headers)) return;
    const tagged = stream as ServerHttp2Stream & { [kHandled]?: true };
    if (tagged[kHandled] || stream.headersSent) return;
    const pathname = streamPathname(headers);
    const wss = servers.find((candidate) => candidate.servesPath(pathname));
    if (wss !== undefined) {
      wss.handleStream(stream, headers).catch((error: unknown) => {
        wss.logger?.error('HTTP/2 WebSocket handshake failed', { error });
        stream.close(NGHTTP2_CANCEL);
      });
      return;
    }
    // Not ours: another 'stream' listener may take it in this emit; answer if none did.
    const first = servers[0];
    setImmediate(() => {
      if (first === undefined || tagged[kHandled] || stream.headersSent) return;
      if (stream.destroyed || stream.closed) return;
      const compat = (stream as { [kCompatRequest]?: Http2ServerRequest })[kCompatRequest];
      first.refuse(
        compat ?? new http2.Http2ServerRequest(stream, headers, {}, []),
        stream,
        'SWITCHYARD_ERR_HANDSHAKE_NOT_FOUND',
        404,
        `No WebSocket endpoint at ${pathname}`,
      );
    });
  };
  const onConnect = (
    req: Http2ServerRequest | IncomingMessage,
    res: Http2ServerResponse | Duplex,
  ): void => {
    if (isHttp2Request(req)) {
      if (isWebSocketConnect(req.headers)) {
        // Ours: 'stream' handles it. Keep the compat request so the hook gets the same object.
        (req.stream as ServerHttp2Stream & { [kCompatRequest]?: Http2ServerRequest })[
          kCompatRequest
        ] = req;
        return;
      }
      // Any other CONNECT: what Node does when nobody listens, unless someone else does.
      if (server.listenerCount('connect') === 1) {
        const response = res as Http2ServerResponse;
        response.statusCode = 405;
        response.end();
      }
    } else if (server.listenerCount('connect') === 1) {
      // An HTTP/1.1 CONNECT (allowHTTP1): Node drops the socket when nobody listens.
      (res as Duplex).destroy();
    }
  };
  return { servers, onStream, onConnect };
}

function streamPathname(headers: IncomingHttpHeaders): string {
  const path = typeof headers[':path'] === 'string' ? headers[':path'] : '/';
  try {
    return new URL(path, 'http://localhost').pathname;
  } catch {
    return path.split('?')[0] ?? '/';
  }
}

function isHttp2Request(req: Http2ServerRequest | IncomingMessage): req is Http2ServerRequest {
  return (req as { stream?: unknown }).stream !== undefined;
}

/**
 * Completes (or rejects) the extended CONNECT of one HTTP/2 stream for `wss`, with the same
 * steps, limits, hook and events as `WebSocketServer.handleUpgrade` for HTTP/1.1 (keep the two
 * in step). Resolves with the WebSocket, or null when the request was rejected or the client
 * went away; never rejects for anything the client did.
 * @throws LocalProtocolError when called twice for the same stream.
 */
export async function handleWebSocketStream(
  wss: StreamServer,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
): Promise<WebSocket | null> {
  const tagged = stream as ServerHttp2Stream & {
    [kHandled]?: true;
    [kCompatRequest]?: Http2ServerRequest;
  };
  if (tagged[kHandled]) {
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_ALREADY_HANDLED',
      'handleStream was already called for this stream (is a `server` option also attached?)',
    );
  }
  tagged[kHandled] = true;
  prepareStream(stream);
  const req: HandshakeRequest =
    tagged[kCompatRequest] ?? new http2.Http2ServerRequest(stream, headers, {}, []);
  const options = wss.options;

  if (wss.closing) {
    return wss.refuse(
      req,
      stream,
      'SWITCHYARD_ERR_SERVER_LIMIT',
      503,
      'The server is shutting down',
    );
  }
  const check = validateExtendedConnect(headers);
  if (!check.ok) return wss.rejectWith(req, stream, check.error);

  let url: URL;
  try {
    // RFC 8441 §5: https is the scheme of wss: WebSockets, http of ws: ones.
    url = new URL(check.path, `${check.scheme === 'https' ? 'wss' : 'ws'}://${check.authority}`);
  } catch {
    return wss.refuse(
      req,
      stream,
      'SWITCHYARD_ERR_HANDSHAKE_PSEUDO_HEADER',
      400,
      'The :authority and :path do not form a URL (RFC 8441 §5).',
    );
  }
  // The same policy steps as an HTTP/1.1 upgrade: path, Origin, limits, subprotocol, hook.
  const decided = await wss.decide(req, stream, url, check);
  if (decided === null) return null;
  const { protocol, acceptance, early } = decided;
  // The client reset the stream while the hook ran, after runHook stopped watching.
  if (stream.destroyed || stream.closed) return null;

  // RFC 7692 §5 over RFC 8441 §5: the extension negotiation is the same as over HTTP/1.1.
  const deflate = acceptDeflateOffers(
    check.extensions,
    options.perMessageDeflate,
    options.maxPayload ?? CONNECTION_DEFAULTS.maxPayload,
  );
  stream.respond(
    formatAcceptHeaders({ protocol, extensions: deflate?.header, headers: acceptance.headers }),
  );
  const ws = new WebSocket(stream, 'server', {
    deflate: deflate?.codec ?? null,
    protocol: protocol ?? '',
    extensions: deflate?.header ?? '',
    url: url.href,
    head: early.length > 0 ? Buffer.concat(early) : null,
    options,
    logger: wss.logger,
    context: acceptance.context,
  });
  wss.adopt(ws, req);
  return ws;
}

// ---------------------------------------------------------------------------------------------
// Client

/** A session of the pool and how many WebSockets use it. */
interface PooledSession {
  session: ClientHttp2Session;
  users: number;
}

/**
 * Sessions opened by `http2: true`, per TLS options object (so that two callers with different
 * CAs never share a session) and origin. A session leaves the pool when it closes, receives a
 * GOAWAY, or its last WebSocket closes.
 */
const pools = new WeakMap<object, Map<string, PooledSession>>();
const NO_TLS_OPTIONS = {};
const settingsKnown = new WeakSet<ClientHttp2Session>();

function poolFor(options: ConnectOptions): Map<string, PooledSession> {
  const key = options.tls ?? NO_TLS_OPTIONS;
  let pool = pools.get(key);
  if (pool === undefined) {
    pool = new Map();
    pools.set(key, pool);
  }
  return pool;
}

function openSession(url: URL, options: ConnectOptions): PooledSession {
  const pool = poolFor(options);
  const origin = `${url.protocol}//${url.host}`;
  const existing = pool.get(origin);
  if (existing !== undefined && !existing.session.closed && !existing.session.destroyed) {
    return existing;
  }
  const secure = url.protocol === 'wss:';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const session = http2.connect(`${secure ? 'https' : 'http'}://${url.host}`, {
    ...options.tls,
    // RFC 6066 §3: SNI carries host names, never IP addresses.
    servername: options.tls?.servername ?? (isIpAddress(host) ? undefined : host),
  });
  const entry: PooledSession = { session, users: 0 };
  pool.set(origin, entry);
  const forget = () => {
    if (pool.get(origin) === entry) pool.delete(origin);
  };
  session.on('remoteSettings', markSettingsKnown);
  // A pooled session's failure is each stream's failure, reported there; never a crash.
  session.on('error', forget);
  session.on('goaway', forget);
  session.on('close', forget);
  return entry;
}

function markSettingsKnown(this: ClientHttp2Session): void {
  settingsKnown.add(this);
}

function isIpAddress(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

function release(entry: PooledSession): void {
  entry.users--;
  if (entry.users === 0 && !entry.session.closed) entry.session.close();
}

const settling = new WeakMap<ClientHttp2Session, Promise<void>>();

/**
 * Resolves once the server's SETTINGS are known on `session`: at once when extended CONNECT is
 * already advertised, after the first SETTINGS while connecting, otherwise after a PING's ACK
 * (the server's SETTINGS are the first frame it sends, so they arrived before the ACK). Every
 * caller waiting on one session shares one wait; `signal` abandons the caller's own.
 */
function whenSettingsKnown(session: ClientHttp2Session, signal: AbortSignal): Promise<void> {
  if (session.remoteSettings?.enableConnectProtocol === true || settingsKnown.has(session)) {
    return Promise.resolve();
  }
  let shared = settling.get(session);
  if (shared === undefined) {
    shared = new Promise<void>((resolve, rejectPromise) => {
      const done = (error?: Error) => {
        session.off('remoteSettings', onSettings);
        session.off('error', onError);
        session.off('close', onClose);
        settling.delete(session);
        if (error === undefined) resolve();
        else rejectPromise(error);
      };
      const onSettings = () => done();
      const onError = (error: Error) => done(error);
      const onClose = () =>
        done(new Error('the HTTP/2 session closed before its SETTINGS arrived'));
      session.once('remoteSettings', onSettings);
      session.once('error', onError);
      session.once('close', onClose);
      if (!session.connecting) {
        const sent = session.ping(() => done());
        if (!sent) done();
      }
    });
    settling.set(session, shared);
  }
  return new Promise<void>((resolve, rejectPromise) => {
    const onAbort = () => rejectPromise(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    shared.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        rejectPromise(error as Error);
      },
    );
  });
}

/**
 * Opens a WebSocket as a stream of an HTTP/2 session (RFC 8441). Resolves with the WebSocket,
 * or with `'fallback'` when the server cannot take it over HTTP/2 (it does not speak HTTP/2, or
 * does not advertise extended CONNECT) and a session of our own was used, so that the caller
 * connects over HTTP/1.1 instead. With the caller's session, that case rejects with
 * `SWITCHYARD_ERR_HTTP2_NO_EXTENDED_CONNECT`.
 */
export async function connectHttp2(
  url: URL,
  options: ConnectOptions,
  deadline: number,
): Promise<WebSocket | 'fallback'> {
  const given = typeof options.http2 === 'object' ? options.http2 : null;
  const logger = resolveLogger(options.logger);
  const protocols =
    options.protocols === undefined
      ? []
      : typeof options.protocols === 'string'
        ? [options.protocols]
        : [...options.protocols];
  const deflateOptions = deflateConfig(options.perMessageDeflate);
  const deflateOffer = deflateOfferHeader(deflateOptions);
  // Throws for a bad argument before any I/O.
  const requestHeaders = formatExtendedConnectRequest({
    scheme: url.protocol === 'wss:' ? 'https' : 'http',
    authority: options.host ?? url.host,
    path: `${url.pathname}${url.search}`,
    protocols,
    extensions: deflateOffer ?? undefined,
    origin: options.origin,
    headers: options.headers,
  });

  const controller = new AbortController();
  const timer = setTimeout(
    () =>
      controller.abort(
        new ConnectionError(
          'SWITCHYARD_ERR_HANDSHAKE_TIMEOUT',
          `The opening handshake with ${url.host} did not complete in time`,
          { closeCode: 1006 },
        ),
      ),
    Math.max(0, deadline - Date.now()),
  );
  const onAbort = () =>
    controller.abort(
      new ConnectionError('SWITCHYARD_ERR_HANDSHAKE_ABORTED', 'The opening handshake was aborted', {
        cause: options.signal?.reason,
      }),
    );
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  const entry = given === null ? openSession(url, options) : null;
  const session = given ?? entry!.session;
  if (entry !== null) entry.users++;
  let handedOver = false;
  try {
    try {
      await whenSettingsKnown(session, controller.signal);
    } catch (error) {
      if (controller.signal.aborted || given !== null) throw settleError(error, url);
      // Not an HTTP/2 server (or not reachable): HTTP/1.1 will say which.
      return 'fallback';
    }
    // RFC 8441 §3: a client uses extended CONNECT only after "receipt of
    // SETTINGS_ENABLE_CONNECT_PROTOCOL with a value of 1".
    if (session.remoteSettings?.enableConnectProtocol !== true) {
      if (given !== null) {
        throw new ConnectionError(
          'SWITCHYARD_ERR_HTTP2_NO_EXTENDED_CONNECT',
          `${url.host} speaks HTTP/2 but does not advertise extended CONNECT (RFC 8441 §3)`,
        );
      }
      return 'fallback';
    }
    const stream = session.request(requestHeaders, { endStream: false });
    prepareStream(stream);
    const response = await awaitResponse(stream, controller.signal, url);
    const check = validateExtendedConnectResponse(response.headers, {
      protocols,
      extensionsOffered: deflateOffer === null ? [] : [PERMESSAGE_DEFLATE],
    });
    if (!check.ok) {
      stream.close(NGHTTP2_CANCEL);
      throw check.error;
    }
    const deflate = acceptDeflateResponseFor(
      check.extensions,
      deflateOptions,
      options.maxPayload ?? CONNECTION_DEFAULTS.maxPayload,
    );
    if (deflate instanceof RemoteProtocolError) {
      stream.close(NGHTTP2_CANCEL);
      throw deflate;
    }
    const ws = new WebSocket(stream, 'client', {
      deflate: deflate?.codec ?? null,
      protocol: check.protocol,
      extensions: deflate?.header ?? '',
      url: url.href,
      head: null,
      options,
      logger,
      // RFC 8441 §5: a 2xx accepts; HTTP/2 has no reason phrase (RFC 9113 §8.3.2).
      response: {
        statusCode: Number(response.headers[':status']),
        statusText: '',
        headers: flattenHeaders(response.headers),
      },
    });
    if (entry !== null) ws.once('close', () => release(entry));
    handedOver = true;
    if (options.heartbeat !== false) {
      ws.startHeartbeat(
        options.heartbeat?.interval ?? HEARTBEAT_DEFAULTS.interval,
        options.heartbeat?.timeout ?? HEARTBEAT_DEFAULTS.timeout,
      );
    }
    return ws;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
    if (entry !== null && !handedOver) release(entry);
  }
}

function settleError(error: unknown, url: URL): SwitchyardError | Error {
  if (error instanceof ConnectionError || error instanceof RemoteProtocolError) return error;
  return new ConnectionError(
    'SWITCHYARD_ERR_CONNECTION_LOST',
    `HTTP/2 connection to ${url.host} failed: ${(error as Error).message}`,
    { cause: error },
  );
}

/**
 * Waits for the response to the extended CONNECT. A non-2xx answer is returned with up to
 * 1 KiB of its body (read for at most 500 ms), for the UnexpectedResponseError.
 */
function awaitResponse(
  stream: ClientHttp2Stream,
  signal: AbortSignal,
  url: URL,
): Promise<{ headers: IncomingHttpHeaders }> {
  return new Promise((resolve, rejectPromise) => {
    const cleanup = () => {
      stream.off('response', onResponse);
      stream.off('close', onClose);
      stream.off('error', onError);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (error: Error) => {
      cleanup();
      stream.close(NGHTTP2_CANCEL);
      rejectPromise(error);
    };
    const onError = (error: Error) => fail(settleError(error, url));
    const onClose = () =>
      fail(
        new ConnectionError(
          'SWITCHYARD_ERR_CONNECTION_LOST',
          `${url.host} reset the stream during the handshake (RST_STREAM ${stream.rstCode})`,
        ),
      );
    const onAbort = () => fail(signal.reason as Error);
    const onResponse = (headers: IncomingHttpHeaders) => {
      cleanup();
      const status = Number(headers[':status']);
      if (status >= 200 && status <= 299) return resolve({ headers });
      readErrorBody(stream, new Uint8Array(0), undefined, (body) => {
        const check = validateExtendedConnectResponse(
          headers,
          {
            protocols: [],
            extensionsOffered: [],
          },
          body,
        );
        stream.close(NGHTTP2_CANCEL);
        rejectPromise(check.ok ? new Error('unreachable') : check.error);
      });
    };
    stream.on('response', onResponse);
    stream.on('close', onClose);
    stream.on('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
