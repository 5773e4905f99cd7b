/**
 * The WebSocket server: standalone (`listen`), attached to an `http`/`https` server, or driven
 * by any framework through `handleUpgrade(req, socket, head)`.
 *
 * Theory of operation. An upgrade request goes through RFC 9110 §7.8 negotiation (websocket or a
 * registered protocol), then the RFC 6455 §4.2 checks of the core, then the path, Origin and
 * subprotocol policies, then the application's async hook, each step able to answer with a
 * real HTTP response. Only then is the 101 written and a {@link WebSocket} bound to the socket.
 * While the hook runs, the socket's errors and the handshake timer are handled here, so an
 * aborted handshake costs nothing but its cleanup. A single interval drives every connection's
 * heartbeat.
 */
import { captureRejectionSymbol, EventEmitter } from 'node:events';
import http from 'node:http';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  ConnectionError,
  LocalProtocolError,
  RemoteProtocolError,
  type SwitchyardError,
} from '../core/errors.js';
import {
  formatAcceptResponse,
  selectSubprotocol,
  validateUpgradeRequest,
} from '../core/handshake.js';
import type { ExtensionOffer } from '../core/header-lists.js';
import {
  formatResponse,
  formatSwitchingProtocols,
  formatUpgradeRequired,
  negotiateUpgrade,
  type UpgradeRequest,
} from '../core/upgrade.js';
import { CONNECTION_DEFAULTS } from '../core/connection.js';
import { validateDeflateOptions } from '../core/permessage-deflate.js';
import { acceptDeflateOffers, deflateConfig } from './deflate.js';
import { channels, resolveLogger, type Logger } from './diagnostics.js';
import {
  answer,
  createLeanServer,
  destroyPendingHeads,
  releaseErrors,
  type LeanRequest,
} from './lean-http.js';
import type { HandshakeRequest } from './handshake-request.js';
import {
  checkHeartbeat,
  WebSocket,
  type PublishOptions,
  type SendData,
  type WebSocketOptions,
} from './websocket.js';
import {
  attachHttp2,
  handleWebSocketStream,
  isHttp2Server,
  isHttp2Stream,
  respondToStream,
  type AnyHttp2Server,
  type Http2Attachment,
} from './http2.js';
import { PubSub, type PubSubOptions } from '../pubsub/topics.js';
import { RESUME_PROTOCOL } from '../core/resume.js';
import { routeUpgrades } from './upgrade-router.js';
import { enforceHeadDeadline } from './head-deadline.js';
import { checkOptions } from '../core/options.js';
import { SERVER_CLOSE_OPTIONS, SERVER_DEFAULTS, SERVER_OPTIONS } from './options.js';

/** What the upgrade hook learns about a request, besides the request itself. */
export interface UpgradeInfo {
  /** The request's URL, resolved against its Host. */
  url: URL;
  /** The subprotocols the client offered, in its order. */
  protocols: string[];
  /** The subprotocol the server's `protocols` option chose, or null. */
  protocol: string | null;
  /** The extensions the client offered, parsed (RFC 6455 §9.1). */
  extensions: ExtensionOffer[];
  /** The Origin header, when the client sent one (browsers always do). */
  origin: string | undefined;
  /** Aborted when the client goes away or the handshake times out while the hook runs. */
  signal: AbortSignal;
}

/** A rejection: the HTTP response the client gets instead of 101. */
export interface UpgradeRejection {
  reject: true;
  /** The HTTP status, 400–599. */
  status: number;
  /** Extra response headers (for example `WWW-Authenticate`). */
  headers?: Record<string, string>;
  /** The body, plain text by default. Default: the status's reason phrase. */
  body?: string | Uint8Array;
}

/** An acceptance, with what to attach to the connection. */
export interface UpgradeAcceptance {
  reject?: false;
  /** Anything: reaches the connection as `ws.context` (for example the authenticated user). */
  context?: unknown;
  /** The subprotocol to use instead of the one the server chose; must be one the client offered. */
  protocol?: string | null;
  /** Extra headers on the 101 response (for example `Set-Cookie`). */
  headers?: Record<string, string>;
}

/** What the upgrade hook may return (or resolve to). Returning nothing accepts. */
export type UpgradeDecision = UpgradeAcceptance | UpgradeRejection | void | undefined;

export type { HandshakeRequest };

/** The async upgrade hook: authenticate, check, choose, attach a context, or reject. */
export type UpgradeHook = (
  req: HandshakeRequest,
  info: UpgradeInfo,
) => UpgradeDecision | Promise<UpgradeDecision>;

/** Builds a rejection for the upgrade hook: `return reject(401, 'Log in first')`. */
export function reject(
  status: number,
  body?: string | Uint8Array,
  headers?: Record<string, string>,
): UpgradeRejection {
  return { reject: true, status, body, headers };
}

/** A handler for a protocol other than websocket, switched to with 101 (RFC 9110 §7.8). */
export type ProtocolHandler = (
  socket: Duplex,
  head: Buffer,
  req: IncomingMessage | LeanRequest,
) => void;

/** Who may connect, by the Origin header (RFC 6455 §10.2). */
export type OriginPolicy =
  | 'same-origin'
  | 'any'
  | readonly string[]
  | ((origin: string | undefined, req: HandshakeRequest) => boolean);

/** Options of {@link WebSocketServer}; every limit has a safe default. */
export interface ServerOptions extends WebSocketOptions {
  /** Listen on this port (0 for any free one) at once. Use `listen()` otherwise. */
  port?: number;
  /** The address to listen on with `port`. Default: Node's default (all interfaces). */
  host?: string;
  /**
   * Attach to this server instead of creating one: an `http` or `https` server (its `upgrade`
   * event), or an `http2` server, whose WebSocket streams (RFC 8441 extended CONNECT) are
   * served too, and whose SETTINGS then advertise `enableConnectProtocol`; with
   * `allowHTTP1: true` the same port takes HTTP/1.1 upgrades as well. See docs/http2.md.
   */
  server?: HttpServer | HttpsServer | AnyHttp2Server;
  /** Only these request paths are served (exact match of the pathname); others get 404. */
  path?: string | readonly string[];
  /** The subprotocols served, in order of preference, or a function that picks one. */
  protocols?:
    readonly string[] | ((offered: string[], req: HandshakeRequest) => string | null | undefined);
  /**
   * Which Origins may connect. Default 'same-origin': a request with an Origin header is
   * accepted only when the Origin's host is the request's Host (cross-site WebSocket hijacking,
   * RFC 6455 §10.2); requests without Origin (non-browser clients) are accepted.
   */
  origin?: OriginPolicy;
  /** The async upgrade hook. */
  onUpgrade?: UpgradeHook;
  /** Longest time, in ms, from the upgrade request to the 101 (hook included). Default 10 s. */
  handshakeTimeout?: number;
  /** Largest request head the standalone server accepts, in bytes. Default 16 KiB. */
  maxHeaderBytes?: number;
  /** Most header fields in a request head on the standalone server (431 above). Default 100. */
  maxHeaders?: number;
  /** Most open WebSockets; further upgrades get 503. Default 100,000. */
  maxConnections?: number;
  /** Most handshakes waiting on the hook at once; further ones get 503. Default 1,024. */
  maxPendingHandshakes?: number;
  /**
   * Heartbeat: a ping after `interval` ms without traffic, and the connection is terminated
   * (1006, `SWITCHYARD_ERR_IDLE_TIMEOUT`) when nothing arrives for `timeout` ms more.
   * Default { interval: 30_000, timeout: 30_000 }; false turns it off.
   */
  heartbeat?: { interval?: number; timeout?: number } | false;
  /** Where log lines go; false for none. Default: the console. */
  logger?: Logger | false;
  /**
   * Topics (`server.publish`, `ws.subscribe`): the backplane that relays them to other
   * instances, and the slow-consumer policy. Default: local topics, slow subscribers skipped
   * past 1 MiB buffered. See docs/pubsub.md.
   */
  pubsub?: PubSubOptions;
}

/** The events of a {@link WebSocketServer}. */
export interface ServerEvents {
  connection: [websocket: WebSocket, req: HandshakeRequest];
  listening: [];
  /** A handshake was rejected (also published on `switchyard:handshake-rejected`). */
  rejected: [error: SwitchyardError, req: HandshakeRequest];
  error: [error: Error];
  close: [];
}

const kHandled = Symbol('switchyard.upgradeHandled');
/** Bytes a client may send before its 101 while the hook runs (frames sent too early). */
const EARLY_DATA_LIMIT = 64 * 1024;

export { SERVER_DEFAULTS };

/**
 * A WebSocket server.
 *
 * @example
 * const server = new WebSocketServer({ port: 8080 });
 * server.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
 */
export class WebSocketServer extends EventEmitter<ServerEvents> {
  /** The open WebSockets. */
  readonly clients = new Set<WebSocket>();
  /** The topics of this server: subscriber counts, `stats`. */
  readonly pubsub: PubSub;
  private readonly sockets = new Set<Duplex>();
  /** @internal */ readonly options: ServerOptions;
  /** @internal */ readonly logger: Logger | null;
  private readonly paths: Set<string> | null;
  private readonly protocolHandlers = new Map<string, ProtocolHandler>();
  private httpServer: HttpServer | HttpsServer | AnyHttp2Server | net.Server | null = null;
  private http2: Http2Attachment | null = null;
  private leaveRouter: (() => void) | null = null;
  private ownsServer = false;
  private pending = 0;
  /** @internal */ closing = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private readonly onServerUpgrade: (
    req: IncomingMessage | LeanRequest,
    socket: Duplex,
    head: Buffer,
  ) => void;

  /**
   * @throws {InvalidOptionError} `SWITCHYARD_ERR_INVALID_OPTION` for an unknown option (with
   *   what to use instead of a `ws` one) or a value of the wrong type or range.
   */
  constructor(options: ServerOptions = {}) {
    // An async listener's rejected promise is handled like a throw ([captureRejectionSymbol]).
    super({ captureRejections: true });
    checkOptions(SERVER_OPTIONS, options);
    if (options.server !== undefined && options.port !== undefined) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        'Pass either `server` (attach to an existing server) or `port` (listen), not both',
      );
    }
    this.options = options;
    // permessage-deflate window sizes are checked now rather than at the first upgrade.
    const deflate = deflateConfig(options.perMessageDeflate);
    if (deflate !== null) validateDeflateOptions(deflate);
    this.logger = resolveLogger(options.logger);
    this.pubsub = new PubSub(options.pubsub, this.logger);
    this.paths =
      options.path === undefined
        ? null
        : new Set(typeof options.path === 'string' ? [options.path] : options.path);
    this.onServerUpgrade = (req, socket, head) => {
      this.handleUpgrade(req, socket, head).catch((error: unknown) => {
        this.logger?.error('upgrade failed', { error });
        socket.destroy();
      });
    };
    if (options.server !== undefined) {
      this.attach(options.server);
    } else if (options.port !== undefined) {
      this.listen(options.port, options.host).catch((error: unknown) => {
        this.emit('error', error as Error);
      });
    }
  }

  /**
   * Creates an HTTP server of its own and listens on `port` (0 for any free one). Plain HTTP
   * requests get 426 Upgrade Required listing the protocols served.
   */
  listen(port = 0, host?: string): Promise<AddressInfo> {
    if (this.httpServer !== null) {
      return Promise.reject(
        new LocalProtocolError(
          'SWITCHYARD_ERR_INVALID_STATE',
          'This server is already listening or attached',
        ),
      );
    }
    // The standalone server reads request heads with the core's strict parser on plain TCP
    // sockets: no node:http parser, IncomingMessage or ServerResponse per handshake, and one
    // deadline per socket for the whole head (slowloris: 408 after handshakeTimeout).
    const server = createLeanServer({
      maxHeaderBytes: this.options.maxHeaderBytes ?? SERVER_DEFAULTS.maxHeaderBytes,
      maxHeaders: this.options.maxHeaders ?? SERVER_DEFAULTS.maxHeaders,
      handshakeTimeout: this.options.handshakeTimeout ?? SERVER_DEFAULTS.handshakeTimeout,
      onUpgrade: (req, socket, head) => this.onServerUpgrade(req, socket, head),
      onPlainRequest: (req, socket) => this.answerPlainRequest(req, socket),
      onBadRequest: (error) => {
        this.logger?.warn(`bad HTTP request head: ${error.message}`, { status: error.status });
        channels.handshakeRejected.publish({
          code: error.code,
          status: error.status,
          message: error.message,
        });
      },
    });
    this.ownsServer = true;
    this.httpServer = server;
    this.startHeartbeat();
    return new Promise((resolve, rejectPromise) => {
      server.once('error', rejectPromise);
      server.listen(port, host, () => {
        server.off('error', rejectPromise);
        server.on('error', (error) => this.emit('error', error));
        this.emit('listening');
        resolve(server.address() as AddressInfo);
      });
    });
  }

  /**
   * Publishes to every connection subscribed to `topic`, here and, through the backplane, on
   * every other instance. The message is framed once and the same bytes go to each subscriber.
   * Returns the number of local subscribers it was written to (slow ones are skipped or closed
   * by the `pubsub.slowConsumer` policy). Do not change `data` afterwards: it is shared.
   */
  publish(topic: string, data: SendData, options?: PublishOptions): number {
    return this.pubsub.publish(topic, data, options);
  }

  /** How many connections of this server are subscribed to `topic` (O(1)). */
  subscriberCount(topic: string): number {
    return this.pubsub.subscriberCount(topic);
  }

  /**
   * A WebSocket-only endpoint answers a plain request with 426 (RFC 9110 §15.5.22), saying what
   * was missing: often a proxy dropped `Connection: upgrade` on the way.
   */
  private answerPlainRequest(req: LeanRequest, socket: Duplex): void {
    const check = validateUpgradeRequest(toUpgradeRequest(req), {});
    const reason = check.ok ? 'The request was not an upgrade request.' : check.error.message;
    const supported = this.supportedProtocols();
    const error = new RemoteProtocolError('SWITCHYARD_ERR_UPGRADE_REQUIRED', reason, {
      status: 426,
    });
    this.reportRejection(req, socket, error);
    answer(
      socket,
      426,
      `${reason}\nThis endpoint speaks ${supported.join(', ')}: send an upgrade request.\n`,
      {
        Upgrade: supported.join(', '),
        Connection: 'Upgrade',
      },
    );
  }

  /** The address the server listens on, when it listens. */
  address(): AddressInfo | null {
    const address = this.httpServer?.address();
    return address !== null && typeof address === 'object' ? address : null;
  }

  /** Registers a protocol other than websocket, offered in `Upgrade` (RFC 9110 §7.8). */
  registerProtocol(name: string, handler: ProtocolHandler): void {
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+)?$/.test(name)) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `Not a protocol name: ${name}`,
      );
    }
    if (name.toLowerCase() === 'websocket') {
      throw new LocalProtocolError('SWITCHYARD_ERR_INVALID_ARGUMENT', 'websocket is built in');
    }
    this.protocolHandlers.set(name.toLowerCase(), handler);
  }

  private attach(server: HttpServer | HttpsServer | AnyHttp2Server): void {
    this.httpServer = server;
    if (isHttp2Server(server)) this.http2 = attachHttp2(this, server);
    // Upgrades go through the server's router, shared with the other WebSocketServers attached
    // to it: each takes only the requests it serves, and leaves the rest to other listeners.
    this.leaveRouter = routeUpgrades(server as HttpServer, {
      protocolsAt: (pathname) => (this.servesPath(pathname) ? this.supportedProtocols() : null),
      takeUpgrade: this.onServerUpgrade,
      answerUnclaimed: (req, socket, status, protocols) =>
        this.answerUnclaimed(req, socket, status, protocols),
    });
    if (!isHttp2Server(server)) {
      // Half-sent heads are cut off at the handshake deadline here too (head-deadline.ts).
      const leaveDeadline = enforceHeadDeadline(
        server as HttpServer,
        this.options.handshakeTimeout ?? SERVER_DEFAULTS.handshakeTimeout,
      );
      const leaveRouter = this.leaveRouter;
      this.leaveRouter = () => {
        leaveDeadline();
        leaveRouter?.();
      };
    }
    this.startHeartbeat();
  }

  /** An upgrade that no endpoint and no other listener of the attached server took. */
  private answerUnclaimed(
    req: IncomingMessage,
    socket: Duplex,
    status: 404 | 426,
    protocols: readonly string[],
  ): void {
    const url = requestUrl(req);
    if (status === 404) {
      this.refuse(
        req,
        socket,
        'SWITCHYARD_ERR_HANDSHAKE_NOT_FOUND',
        404,
        `No WebSocket endpoint at ${url.pathname}`,
      );
      return;
    }
    const error = new RemoteProtocolError(
      'SWITCHYARD_ERR_UPGRADE_REQUIRED',
      `None of the protocols in Upgrade (${String(req.headers.upgrade)}) is served at ${url.pathname}.`,
      { status: 426 },
    );
    this.rejectWith(req, socket, error, formatUpgradeRequired(protocols, `${error.message}\n`));
  }

  private supportedProtocols(): string[] {
    return ['websocket', ...this.protocolHandlers.keys()];
  }

  /**
   * Completes (or rejects) an upgrade: for frameworks that own the `upgrade` event. Resolves with
   * the WebSocket, or null when the handshake was rejected, handed to another protocol, or the
   * client went away. Never rejects for anything the client did.
   * @throws LocalProtocolError when called twice for the same socket.
   */
  async handleUpgrade(
    req: IncomingMessage | LeanRequest,
    socket: Duplex,
    head: Buffer,
  ): Promise<WebSocket | null> {
    const tagged = socket as Duplex & { [kHandled]?: WebSocketServer };
    if (tagged[kHandled]) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_ALREADY_HANDLED',
        'handleUpgrade was already called for this socket (is a `server` option also attached?)',
      );
    }
    tagged[kHandled] = this;
    // Every socket the upgrade path touches is tracked until it closes, so that close() can end
    // what is left after the grace period (handshakes in progress, custom protocols). The
    // listener is a module function: a closure here would share this function's context, and
    // with it keep the request and its headers alive for the life of the connection.
    this.sockets.add(socket);
    socket.on('close', socketOnUntrack);

    if (this.closing)
      return this.refuse(
        req,
        socket,
        'SWITCHYARD_ERR_SERVER_LIMIT',
        503,
        'The server is shutting down',
      );

    // RFC 9110 §7.8: pick the first protocol, in the client's order, that we speak.
    const upgradeRequest = toUpgradeRequest(req);
    const negotiated = negotiateUpgrade(upgradeRequest, this.supportedProtocols());
    if (negotiated.protocol !== null && negotiated.protocol !== 'websocket') {
      const offered =
        negotiated.version === undefined
          ? negotiated.protocol
          : `${negotiated.protocol}/${negotiated.version}`;
      const handler =
        this.protocolHandlers.get(offered) ?? this.protocolHandlers.get(negotiated.protocol);
      if (handler !== undefined) {
        // RFC 9110 §7.8: the 101 names the protocol switched to, as the client offered it.
        socket.write(formatSwitchingProtocols(offered));
        handler(socket, head, req);
        return null;
      }
    }
    if (negotiated.protocol === null && negotiated.reason === 'unsupported') {
      // RFC 9110 §7.8: a server "MAY ignore" an Upgrade it does not speak. Ignored, this is a
      // plain request, which gets 426 naming what we do speak (§15.5.22); it is well formed, so
      // 400 would misstate the problem (and mislead clients that offer h2c to any server).
      const offered = negotiated.offered
        .map((p) => (p.version === undefined ? p.name : `${p.name}/${p.version}`))
        .join(', ');
      const error = new RemoteProtocolError(
        'SWITCHYARD_ERR_UPGRADE_REQUIRED',
        `None of the protocols in Upgrade (${offered}) is served here.`,
        { status: 426 },
      );
      const body = formatUpgradeRequired(this.supportedProtocols(), `${error.message}\n`);
      return this.rejectWith(req, socket, error, body);
    }

    const check = validateUpgradeRequest(upgradeRequest, {});
    if (!check.ok) {
      if (check.error.status === 426 && check.error.code !== 'SWITCHYARD_ERR_HANDSHAKE_VERSION') {
        // Not an upgrade we speak: say which ones we do (RFC 9110 §15.5.22).
        const body = formatUpgradeRequired(this.supportedProtocols(), `${check.error.message}\n`);
        return this.rejectWith(req, socket, check.error, body);
      }
      return this.rejectWith(req, socket, check.error);
    }

    const url = requestUrl(req);
    const decided = await this.decide(req, socket, url, check);
    if (decided === null) return null;
    const { protocol, acceptance } = decided;
    if (decided.early.length > 0) head = Buffer.concat([head, ...decided.early]);

    // RFC 7692 §5: answer the first acceptable permessage-deflate offer, if compression is on.
    const deflate = acceptDeflateOffers(
      check.extensions,
      this.options.perMessageDeflate,
      this.options.maxPayload ?? CONNECTION_DEFAULTS.maxPayload,
    );
    socket.write(
      formatAcceptResponse({
        key: check.key,
        protocol: protocol ?? undefined,
        extensions: deflate?.header,
        headers: acceptance.headers,
      }),
    );
    // From here the socket is the WebSocket's, and `clients` holds it (close() terminates it
    // from there): it leaves `sockets`, and its 'close' and 'error' listeners become the
    // WebSocket's alone, so that an open connection keeps no listener arrays on its socket.
    // Nothing runs between these lines and the constructor that could miss a close or an error.
    this.sockets.delete(socket);
    socket.off('close', socketOnUntrack);
    releaseErrors(socket);
    const ws = new WebSocket(socket, 'server', {
      deflate: deflate?.codec ?? null,
      protocol: protocol ?? '',
      extensions: deflate?.header ?? '',
      url: url.href,
      head: head.length > 0 ? head : null,
      options: this.options,
      logger: this.logger,
      context: acceptance.context,
    });
    this.adopt(ws, req);
    return ws;
  }

  /**
   * Serves the WebSocket of one HTTP/2 stream (RFC 8441 extended CONNECT), for frameworks that
   * own the http2 server's 'stream' event; with the `server` option this is done for you. The
   * stream must be a `:method CONNECT`, `:protocol websocket` one, and the http2 server must
   * advertise `settings: { enableConnectProtocol: true }`. Resolves like `handleUpgrade`.
   * @throws LocalProtocolError when called twice for the same stream.
   */
  handleStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<WebSocket | null> {
    return handleWebSocketStream(this, stream, headers);
  }

  /**
   * @internal The policy steps an HTTP/1.1 upgrade and an RFC 8441 stream share once their
   * protocol checks passed: the path, the Origin, the connection limit, the subprotocol, the
   * hook (within its own limit and deadline) and its decision. Resolves with what to accept
   * with, or null once the request has been answered (or the client left).
   */
  async decide(
    req: HandshakeRequest,
    socket: Duplex,
    url: URL,
    check: { protocols: string[]; extensions: ExtensionOffer[]; origin: string | undefined },
  ): Promise<{ protocol: string | null; acceptance: UpgradeAcceptance; early: Buffer[] } | null> {
    if (!this.servesPath(url.pathname)) {
      return this.refuse(
        req,
        socket,
        'SWITCHYARD_ERR_HANDSHAKE_NOT_FOUND',
        404,
        `No WebSocket endpoint at ${url.pathname}`,
      );
    }
    if (!originAllowed(this.options.origin ?? 'same-origin', check.origin, req)) {
      return this.refuse(
        req,
        socket,
        'SWITCHYARD_ERR_HANDSHAKE_ORIGIN',
        403,
        `Origin ${check.origin} is not allowed`,
      );
    }
    if (this.clients.size >= (this.options.maxConnections ?? SERVER_DEFAULTS.maxConnections)) {
      return this.refuse(
        req,
        socket,
        'SWITCHYARD_ERR_SERVER_LIMIT',
        503,
        'The server is at its connection limit',
      );
    }

    let protocol: string | null = null;
    const protocols = this.options.protocols;
    if (protocols !== undefined && check.protocols.length > 0) {
      protocol = selectSubprotocol(
        check.protocols,
        typeof protocols === 'function'
          ? (offered: string[]) => protocols(offered, req)
          : protocols,
      );
    }
    // Resumable topics: agree on the resume exchange when the client offers it and the
    // application's own protocols did not pick another (docs/resume.md).
    if (
      protocol === null &&
      this.pubsub.replayEnabled &&
      check.protocols.includes(RESUME_PROTOCOL)
    ) {
      protocol = RESUME_PROTOCOL;
    }

    let decision: UpgradeDecision;
    let early: Buffer[] = [];
    const hook = this.options.onUpgrade;
    if (hook !== undefined) {
      if (
        this.pending >= (this.options.maxPendingHandshakes ?? SERVER_DEFAULTS.maxPendingHandshakes)
      ) {
        return this.refuse(
          req,
          socket,
          'SWITCHYARD_ERR_SERVER_LIMIT',
          503,
          'Too many handshakes in progress',
        );
      }
      const outcome = await this.runHook(hook, req, socket, {
        url,
        protocols: check.protocols,
        protocol,
        extensions: check.extensions,
        origin: check.origin,
      });
      if (outcome === null) return null;
      decision = outcome.decision;
      early = outcome.early;
    }

    if (decision !== undefined && decision !== null && decision.reject === true) {
      return this.refuse(
        req,
        socket,
        'SWITCHYARD_ERR_HANDSHAKE_REJECTED',
        decision.status,
        decision.body,
        decision.headers,
      );
    }
    const acceptance = (decision ?? {}) as UpgradeAcceptance;
    if (acceptance.protocol !== undefined) {
      if (acceptance.protocol !== null && !check.protocols.includes(acceptance.protocol)) {
        this.logger?.error('the upgrade hook chose a subprotocol the client did not offer', {
          protocol: acceptance.protocol,
        });
        return this.refuse(
          req,
          socket,
          'SWITCHYARD_ERR_HANDSHAKE_PROTOCOL',
          500,
          'Internal error choosing a subprotocol',
        );
      }
      protocol = acceptance.protocol;
    }
    if (this.closing)
      return this.refuse(
        req,
        socket,
        'SWITCHYARD_ERR_SERVER_LIMIT',
        503,
        'The server is shutting down',
      );
    return { protocol, acceptance, early };
  }

  /** @internal a new connection joins the server: topics, `clients`, 'connection'. */
  adopt(ws: WebSocket, req: HandshakeRequest): void {
    ws.topicHub = this.pubsub;
    this.pubsub.adoptResume(ws, ws.url);
    this.clients.add(ws);
    // A server driven only through handleUpgrade/handleStream has no server to attach to: its
    // heartbeat starts with its first connection (idempotent otherwise).
    this.startHeartbeat();
    (ws as OwnedWebSocket)[kOwner] = this;
    ws.on('close', websocketOnLeave);
    try {
      this.emit('connection', ws, req);
    } catch (error) {
      ws.onListenerError('connection', error);
    }
  }

  /**
   * @internal EventEmitter's hook for a listener's rejected promise (`captureRejections`): an
   * async 'connection' listener that rejects closes that connection with 1011, as one that
   * throws does; a rejection in any other listener is logged. Never an unhandled rejection.
   */
  override [captureRejectionSymbol]<K>(
    error: Error,
    event: keyof ServerEvents | K,
    ...args: K extends keyof ServerEvents ? ServerEvents[K] : never
  ): void {
    const ws = (args as unknown[])[0];
    if (event === 'connection' && ws instanceof WebSocket) {
      ws.onListenerError('connection', error);
      return;
    }
    this.logger?.error(`uncaught exception in a '${String(event)}' listener of the server`, {
      error,
    });
  }

  /** @internal a tracked socket closed. */
  untrackSocket(socket: Duplex): void {
    this.sockets.delete(socket);
  }

  /** @internal whether the `path` option serves this pathname. */
  servesPath(pathname: string): boolean {
    return this.paths === null || this.paths.has(pathname);
  }

  /** Runs the hook with the socket's errors and the handshake timer handled. */
  /** @internal */
  async runHook(
    hook: UpgradeHook,
    req: HandshakeRequest,
    socket: Duplex,
    info: Omit<UpgradeInfo, 'signal'>,
  ): Promise<{ decision: UpgradeDecision; early: Buffer[] } | null> {
    this.pending++;
    const controller = new AbortController();
    const onGone = () =>
      controller.abort(
        new ConnectionError(
          'SWITCHYARD_ERR_CONNECTION_LOST',
          'The client went away during the handshake',
        ),
      );
    // Reading while the hook runs is how a client that leaves (FIN or reset) is noticed; what it
    // sends early is kept for the connection, within a bound.
    const early: Buffer[] = [];
    let earlyBytes = 0;
    const onEarly = (chunk: Buffer) => {
      earlyBytes += chunk.length;
      if (earlyBytes > EARLY_DATA_LIMIT) socket.destroy();
      else early.push(chunk);
    };
    socket.on('data', onEarly);
    socket.on('end', onGone);
    socket.on('error', onGone);
    socket.on('close', onGone);
    const timeoutMs = this.options.handshakeTimeout ?? SERVER_DEFAULTS.handshakeTimeout;
    const timer = setTimeout(() => {
      controller.abort(
        new ConnectionError(
          'SWITCHYARD_ERR_HANDSHAKE_TIMEOUT',
          'The upgrade hook did not finish in time',
        ),
      );
    }, timeoutMs);
    try {
      const decision = await Promise.race([
        Promise.resolve().then(() => hook(req, { ...info, signal: controller.signal })),
        new Promise<never>((_, rejectRace) => {
          controller.signal.addEventListener('abort', () => rejectRace(controller.signal.reason), {
            once: true,
          });
        }),
      ]);
      return { decision, early };
    } catch (error) {
      if (controller.signal.aborted) {
        const reason = controller.signal.reason as SwitchyardError;
        if (reason.code === 'SWITCHYARD_ERR_HANDSHAKE_TIMEOUT') {
          this.refuse(
            req,
            socket,
            'SWITCHYARD_ERR_HANDSHAKE_TIMEOUT',
            503,
            `The upgrade hook took longer than ${timeoutMs} ms`,
          );
        } else {
          socket.destroy();
        }
        return null;
      }
      this.logger?.error('the upgrade hook threw; answering 500', { error });
      this.refuse(
        req,
        socket,
        'SWITCHYARD_ERR_HANDSHAKE_REJECTED',
        500,
        'Internal error in the upgrade hook',
      );
      return null;
    } finally {
      clearTimeout(timer);
      socket.off('data', onEarly);
      socket.off('end', onGone);
      socket.off('error', onGone);
      socket.off('close', onGone);
      this.pending--;
    }
  }

  /** @internal */
  refuse(
    req: HandshakeRequest,
    socket: Duplex,
    code: SwitchyardError['code'],
    status: number,
    body?: string | Uint8Array,
    headers?: Record<string, string>,
  ): null {
    const error = new RemoteProtocolError(
      code,
      typeof body === 'string' ? body : (http.STATUS_CODES[status] ?? 'Rejected'),
      { status, headers },
    );
    if (isHttp2Stream(socket)) {
      // RFC 8441: a rejection is an ordinary HTTP/2 response on the stream.
      this.reportRejection(req, socket, error);
      respondToStream(
        socket,
        status,
        headers,
        body ?? `${http.STATUS_CODES[status] ?? 'Rejected'}\n`,
      );
      return null;
    }
    return this.rejectWith(
      req,
      socket,
      error,
      formatResponse(
        status,
        undefined,
        headers ?? {},
        body ?? `${http.STATUS_CODES[status] ?? 'Rejected'}\n`,
      ),
    );
  }

  /** @internal */
  rejectWith(
    req: HandshakeRequest,
    socket: Duplex,
    error: SwitchyardError,
    response?: Uint8Array,
  ): null {
    if (isHttp2Stream(socket)) {
      this.reportRejection(req, socket, error);
      respondToStream(socket, error.status ?? 400, error.headers, `${error.message}\n`);
      return null;
    }
    const bytes =
      response ??
      formatResponse(error.status ?? 400, undefined, error.headers ?? {}, `${error.message}\n`);
    this.reportRejection(req, socket, error);
    if (socket.writable) {
      socket.end(bytes);
      // Do not wait forever for a client that never reads the response.
      setTimeout(() => socket.destroy(), 1000).unref();
    } else socket.destroy();
    return null;
  }

  private reportRejection(req: HandshakeRequest, socket: Duplex, error: SwitchyardError): void {
    const status = error.status ?? 400;
    channels.handshakeRejected.publish({
      code: error.code,
      status,
      message: error.message,
      remoteAddress: (socket as { remoteAddress?: string }).remoteAddress,
      url: req.url,
    });
    this.logger?.warn(`handshake rejected with ${status}: ${error.message}`, {
      code: error.code,
      url: req.url,
    });
    if (this.listenerCount('rejected') > 0) this.emit('rejected', error, req);
  }

  private startHeartbeat(): void {
    const option = this.options.heartbeat;
    if (option === false || this.heartbeatTimer !== null) return;
    const interval = option?.interval ?? SERVER_DEFAULTS.heartbeat.interval;
    const timeout = option?.timeout ?? SERVER_DEFAULTS.heartbeat.timeout;
    const sweep = Math.max(10, Math.min(interval, timeout) / 2);
    this.heartbeatTimer = setInterval(() => sweepHeartbeat(this.clients, interval, timeout), sweep);
    this.heartbeatTimer.unref();
  }

  /**
   * Shuts down gracefully: stops accepting, closes every connection with 1001 (RFC 6455 §7.4.1,
   * "going away"), waits for them to close, and after `timeout` ms destroys what is left.
   */
  async close(options: { code?: number; reason?: string; timeout?: number } = {}): Promise<void> {
    checkOptions(SERVER_CLOSE_OPTIONS, options);
    if (this.closing) return;
    this.closing = true;
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    const server = this.httpServer;
    if (server !== null) {
      this.leaveRouter?.();
    }
    this.http2?.detach();
    const serverClosed =
      server !== null && this.ownsServer
        ? new Promise<void>((resolve) => server.close(() => resolve()))
        : Promise.resolve();
    const code = options.code ?? 1001;
    const reason = options.reason ?? 'Server shutting down';
    const pending = [...this.clients].map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.close(code, reason);
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(pending),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, options.timeout ?? 5000);
      }),
    ]);
    clearTimeout(timer);
    for (const ws of this.clients) ws.terminate();
    for (const socket of this.sockets) socket.destroy();
    if (this.ownsServer && server !== null) destroyPendingHeads(server as net.Server);
    await serverClosed;
    await this.pubsub.close();
    this.emit('close');
  }
}

function sweepHeartbeat(clients: Set<WebSocket>, interval: number, timeout: number): void {
  for (const ws of clients) checkHeartbeat(ws, interval, timeout);
}

/** The core's view of a request: Node's IncomingMessage already has this shape. */
function toUpgradeRequest(req: IncomingMessage | LeanRequest): UpgradeRequest {
  return {
    method: req.method ?? '',
    httpVersion: req.httpVersion,
    url: req.url ?? '/',
    headers: req.headers,
  };
}

function socketOnUntrack(this: Duplex & { [kHandled]?: WebSocketServer }): void {
  this[kHandled]?.untrackSocket(this);
}

const kOwner = Symbol('switchyard.owner');
type OwnedWebSocket = WebSocket & { [kOwner]?: WebSocketServer };

function websocketOnLeave(this: OwnedWebSocket): void {
  this[kOwner]?.clients.delete(this);
}

function requestUrl(req: IncomingMessage | LeanRequest): URL {
  const host = typeof req.headers.host === 'string' ? req.headers.host : 'localhost';
  const secure = (req.socket as { encrypted?: boolean }).encrypted === true;
  try {
    return new URL(req.url ?? '/', `${secure ? 'wss' : 'ws'}://${host}`);
  } catch {
    return new URL(req.url ?? '/', secure ? 'wss://localhost' : 'ws://localhost');
  }
}

function originAllowed(
  policy: OriginPolicy,
  origin: string | undefined,
  req: HandshakeRequest,
): boolean {
  if (policy === 'any') return true;
  if (typeof policy === 'function') return policy(origin, req);
  if (origin === undefined) return true;
  if (policy === 'same-origin') {
    try {
      // HTTP/2 requests carry the host in :authority (RFC 9113 §8.3.1).
      const host = req.headers.host ?? req.headers[':authority'];
      return new URL(origin).host === String(host ?? '').toLowerCase();
    } catch {
      return false;
    }
  }
  return policy.includes(origin);
}
