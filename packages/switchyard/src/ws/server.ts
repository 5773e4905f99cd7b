/**
 * switchyard/ws's WebSocketServer: ws 8's server API over Switchyard's {@link
 * SwitchyardServer}.
 *
 * Theory of operation. One Switchyard server does the work. `port` creates an `http.Server`
 * (426 for plain requests, as ws answers) and attaches the Switchyard server to it, exactly as
 * `server` attaches it to yours; `noServer` attaches nothing and `handleUpgrade` drives it.
 * ws's hooks run inside Switchyard's async upgrade hook (`onUpgrade`): `shouldHandle`, then
 * `verifyClient` (its refusal becomes the HTTP answer), then the `headers` event, whose added
 * lines become headers of the 101. `handleProtocols` is Switchyard's `protocols` function. Each
 * accepted connection is wrapped, when Switchyard emits it, in a switchyard/ws WebSocket (or
 * the `WebSocket` option's subclass), which joins `clients` and reaches the application by
 * `connection` (attached) or by the `handleUpgrade` callback (noServer).
 */
import { EventEmitter } from 'node:events';
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  WebSocketServer as SwitchyardServer,
  reject,
  setDeflateConcurrency,
  type HandshakeRequest,
  type ServerOptions as SwitchyardServerOptions,
  type UpgradeDecision,
  type UpgradeInfo,
  type WebSocket as SwitchyardWebSocket,
} from '../index.js';
import {
  WS_SERVER_OPTIONS,
  limit,
  mapDeflate,
  splitOptions,
  type WsPerMessageDeflateOptions,
} from './options.js';
import { WebSocket } from './websocket.js';

/** What `verifyClient` receives, as in ws. */
export interface VerifyClientInfo {
  /** The Origin header. */
  origin: string | undefined;
  /** Whether the connection is TLS. */
  secure: boolean;
  req: IncomingMessage;
}

/** ws's `verifyClient`: synchronous, or with a callback when it declares two parameters. */
export type VerifyClient =
  | ((info: VerifyClientInfo) => boolean)
  | ((
      info: VerifyClientInfo,
      callback: (
        result: boolean,
        code?: number,
        message?: string,
        headers?: Record<string, string | number>,
      ) => void,
    ) => void);

/** The options of `new WebSocketServer(options)`; see docs/migrating-from-ws.md. */
export interface ServerOptions extends Omit<
  SwitchyardServerOptions,
  'perMessageDeflate' | 'path' | 'server'
> {
  noServer?: boolean;
  server?: HttpServer | HttpsServer;
  path?: string;
  backlog?: number;
  clientTracking?: boolean;
  verifyClient?: VerifyClient;
  handleProtocols?: (protocols: Set<string>, request: IncomingMessage) => string | false;
  perMessageDeflate?: boolean | WsPerMessageDeflateOptions;
  WebSocket?: typeof WebSocket;
  allowSynchronousEvents?: boolean;
  autoPong?: boolean;
  skipUTF8Validation?: boolean;
  maxBufferedChunks?: number;
}

/** The events of a {@link WebSocketServer}, for typed listeners; other names stay open. */
export interface WebSocketServerEventMap {
  connection: [websocket: WebSocket, request: IncomingMessage, ...rest: any[]];
  headers: [headers: string[], request: IncomingMessage];
  listening: [];
  error: [error: Error];
  close: [];
}

type Listener = (...args: any[]) => void;

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** The 101's own fields: a `headers` listener cannot change them (Switchyard writes them). */
const OWN_FIELDS = new Set([
  'upgrade',
  'connection',
  'sec-websocket-accept',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
]);

const kWrapper = Symbol('switchyard.ws.wrapper');
type Wrapped = SwitchyardWebSocket & { [kWrapper]?: WebSocket };

/**
 * A WebSocket server with ws 8's API.
 *
 * @example
 * import { WebSocketServer } from 'switchyard/ws';
 * const wss = new WebSocketServer({ port: 8080 });
 * wss.on('connection', (ws, req) => ws.on('message', (data) => ws.send(data)));
 */
export class WebSocketServer extends EventEmitter {
  /** The options as given, with ws's defaults filled in. */
  readonly options: ServerOptions;
  /** The connected clients, when `clientTracking` is on (the default). */
  readonly clients: Set<WebSocket>;
  private readonly inner: SwitchyardServer;
  private readonly httpServer: HttpServer | HttpsServer | null;
  private readonly ownsServer: boolean;
  private readonly WebSocketClass: typeof WebSocket;
  /** Requests driven through handleUpgrade(): their connection goes to the callback only. */
  private readonly manual = new WeakSet<object>();
  private state: 'running' | 'closing' | 'closed' = 'running';
  private readonly forwarders: Array<[string, (...args: any[]) => void]> = [];

  /**
   * @param callback with `port`: a `listening` listener, as in ws.
   * @throws TypeError unless exactly one of `port`, `server` and `noServer` is given.
   * @throws InvalidOptionError for a ws option this adapter cannot honour.
   */
  constructor(options: ServerOptions, callback?: () => void) {
    super();
    options = { clientTracking: true, ...options };
    const given = [options.port !== undefined, options.server !== undefined, !!options.noServer];
    if (given.filter(Boolean).length !== 1) {
      throw new TypeError(
        'One and only one of the "port", "server", or "noServer" options must be specified',
      );
    }
    const { ws, rest } = splitOptions(
      options as Record<string, unknown>,
      WS_SERVER_OPTIONS,
      'server',
    );
    this.options = options;
    this.WebSocketClass = (ws.WebSocket as typeof WebSocket | undefined) ?? WebSocket;
    // `clients` exists only with clientTracking, as in ws (typed as always there, as ws's is).
    this.clients = (options.clientTracking ? new Set<WebSocket>() : undefined) as Set<WebSocket>;

    if (ws.port !== undefined) {
      const server = http.createServer((_req, res) => {
        const body = http.STATUS_CODES[426] as string;
        res.writeHead(426, { 'Content-Length': body.length, 'Content-Type': 'text/plain' });
        res.end(body);
      });
      server.listen(
        {
          port: Number(ws.port),
          host: ws.host as string | undefined,
          backlog: ws.backlog as number | undefined,
        },
        callback,
      );
      this.httpServer = server;
      this.ownsServer = true;
    } else {
      this.httpServer = (ws.server as HttpServer | HttpsServer | undefined) ?? null;
      this.ownsServer = false;
    }
    if (this.httpServer !== null) {
      this.forward('listening', () => this.emit('listening'));
      this.forward('error', (error: Error) => this.emit('error', error));
    }

    const handleProtocols = ws.handleProtocols as ServerOptions['handleProtocols'];
    const switchyardOptions: SwitchyardServerOptions = {
      logger: false,
      ...(rest as SwitchyardServerOptions),
      // ws delivers text as Buffers; Switchyard's default is strings.
      textAsBuffer: true,
      // Without handleProtocols, ws takes the client's first subprotocol.
      protocols:
        (rest.protocols as SwitchyardServerOptions['protocols']) ??
        ((offered, req) => {
          if (handleProtocols === undefined) return offered[0];
          const chosen = handleProtocols(new Set(offered), req as IncomingMessage);
          return chosen === false ? null : chosen;
        }),
      onUpgrade: (req, info) => this.runHooks(req, info),
      perMessageDeflate: mapDeflate(
        ws.perMessageDeflate as ServerOptions['perMessageDeflate'],
        setDeflateConcurrency,
      ),
    };
    if (ws.closeTimeout !== undefined) switchyardOptions.closeTimeout = Number(ws.closeTimeout);
    if (ws.maxPayload !== undefined) switchyardOptions.maxPayload = limit(ws.maxPayload);
    if (ws.maxFragments !== undefined) switchyardOptions.maxFragments = limit(ws.maxFragments);
    if (this.httpServer !== null) {
      switchyardOptions.server = this.httpServer;
      if (ws.path !== undefined) switchyardOptions.path = String(ws.path);
    }
    this.inner = new SwitchyardServer(switchyardOptions);
    this.inner.on('connection', (connection, req) => {
      const websocket = this.wrap(connection);
      if (!this.manual.has(req)) this.emit('connection', websocket, req);
    });
  }

  override on<K extends keyof WebSocketServerEventMap>(
    event: K,
    listener: (this: WebSocketServer, ...args: WebSocketServerEventMap[K]) => void,
  ): this;
  override on(event: string | symbol, listener: Listener): this;
  override on(event: string | symbol, listener: Listener): this {
    return super.on(event, listener);
  }

  override once<K extends keyof WebSocketServerEventMap>(
    event: K,
    listener: (this: WebSocketServer, ...args: WebSocketServerEventMap[K]) => void,
  ): this;
  override once(event: string | symbol, listener: Listener): this;
  override once(event: string | symbol, listener: Listener): this {
    return super.once(event, listener);
  }

  /**
   * The Switchyard server under this adapter: for what ws lacks, such as `publish` to topics,
   * the `rejected` event, or `handleStream` for HTTP/2.
   */
  get switchyard(): SwitchyardServer {
    return this.inner;
  }

  /**
   * The bound address (`port` or `server`), or null when not listening.
   * @throws Error in noServer mode, as ws does.
   */
  address(): AddressInfo | string | null {
    if (this.options.noServer) throw new Error('The server is operating in "noServer" mode');
    return this.httpServer?.address() ?? null;
  }

  /**
   * Whether this server takes `request`: by default, whether its pathname is the `path`
   * option. Override it (or assign a function) for other rules; a request it refuses gets 400.
   */
  shouldHandle(request: IncomingMessage): boolean {
    const path = this.options.path;
    if (path === undefined) return true;
    const url = request.url ?? '/';
    const query = url.indexOf('?');
    return (query === -1 ? url : url.slice(0, query)) === path;
  }

  /**
   * Completes an upgrade (noServer mode, or any framework's `upgrade` event). `callback` gets the
   * WebSocket and the request when the handshake succeeded; a refused one has been answered
   * with its HTTP status, and `callback` is not called.
   */
  handleUpgrade(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    callback: (websocket: WebSocket, request: IncomingMessage) => void,
  ): void {
    // Once closed, Switchyard answers 503, as ws does.
    this.manual.add(request);
    this.inner.handleUpgrade(request, socket, head).then(
      (connection) => {
        const websocket = connection === null ? undefined : (connection as Wrapped)[kWrapper];
        if (websocket !== undefined) callback(websocket, request);
      },
      (error: unknown) => {
        // A second call for the same socket, or a handleProtocols that chose a subprotocol the
        // client did not offer: a bug in the caller, thrown as ws throws it (uncaught).
        socket.destroy();
        process.nextTick(() => {
          throw error;
        });
      },
    );
  }

  /**
   * Stops accepting, closes the server it created for `port`, closes every connection with 1001
   * (Switchyard's graceful shutdown; ws 8 leaves them open), then emits `close`. `callback`
   * runs on `close`, or with an error when the server was already closed.
   */
  close(callback?: (error?: Error) => void): void {
    if (this.state === 'closed') {
      if (callback !== undefined)
        process.nextTick(callback, new Error('The server is not running'));
      return;
    }
    if (callback !== undefined) this.once('close', callback);
    if (this.state === 'closing') return;
    this.state = 'closing';
    for (const [event, listener] of this.forwarders) this.httpServer?.off(event, listener);
    const own = this.ownsServer ? this.httpServer : null;
    const httpClosed = new Promise<void>((resolve) => {
      if (own === null || !own.listening) resolve();
      else own.close(() => resolve());
    });
    const timeout = this.options.closeTimeout;
    Promise.all([this.inner.close(timeout === undefined ? {} : { timeout }), httpClosed]).then(
      () => {
        this.state = 'closed';
        this.emit('close');
      },
    );
  }

  private forward(event: string, listener: (...args: any[]) => void): void {
    this.httpServer?.on(event, listener);
    this.forwarders.push([event, listener]);
  }

  private wrap(connection: SwitchyardWebSocket): WebSocket {
    const websocket = new this.WebSocketClass(null);
    websocket.bind(connection);
    (connection as Wrapped)[kWrapper] = websocket;
    if (this.clients !== undefined) {
      this.clients.add(websocket);
      // Before the application's own close listeners, as in ws.
      websocket.prependListener('close', () => this.clients.delete(websocket));
    }
    return websocket;
  }

  /** shouldHandle, verifyClient and `headers`, in ws's order, as Switchyard's upgrade hook. */
  private async runHooks(req: HandshakeRequest, info: UpgradeInfo): Promise<UpgradeDecision> {
    const request = req as IncomingMessage;
    if (!this.shouldHandle(request)) return reject(400);
    const verifyClient = this.options.verifyClient;
    if (verifyClient !== undefined) {
      const socket = request.socket as { authorized?: boolean; encrypted?: boolean };
      const verifyInfo: VerifyClientInfo = {
        origin: info.origin,
        secure: socket.authorized === true || socket.encrypted === true,
        req: request,
      };
      if (verifyClient.length === 2) {
        const refusal = await new Promise<UpgradeDecision>((resolve) => {
          (verifyClient as (i: VerifyClientInfo, cb: (...a: any[]) => void) => void)(
            verifyInfo,
            (result: boolean, code = 401, message?: string, headers?: Record<string, unknown>) => {
              resolve(result ? undefined : reject(code, message, stringValues(headers)));
            },
          );
        });
        if (refusal !== undefined) return refusal;
      } else if (!(verifyClient as (i: VerifyClientInfo) => boolean)(verifyInfo)) {
        return reject(401);
      }
    }
    if (this.listenerCount('headers') === 0) return undefined;
    const key = String(request.headers['sec-websocket-key'] ?? '');
    const lines = [
      'HTTP/1.1 101 Switching Protocols',
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Accept: ${createHash('sha1')
        .update(key + GUID)
        .digest('base64')}`,
    ];
    if (info.protocol !== null) lines.push(`Sec-WebSocket-Protocol: ${info.protocol}`);
    const own = lines.length;
    this.emit('headers', lines, request);
    const headers: Record<string, string[]> = {};
    for (const line of lines.slice(own)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim();
      if (OWN_FIELDS.has(name.toLowerCase())) continue;
      (headers[name] ??= []).push(line.slice(colon + 1).trim());
    }
    // Repeated fields (two Set-Cookie lines) stay separate lines: the core writes arrays so.
    return { headers: headers as unknown as Record<string, string> };
  }
}

function stringValues(
  headers: Record<string, unknown> | undefined,
): Record<string, string> | undefined {
  if (headers === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name] = String(value);
  return out;
}
