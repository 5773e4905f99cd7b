/**
 * Transports for the shared behaviour suite (./behaviour.ts), and the adapters they are built
 * from.
 *
 * Theory of operation. A behaviour case only sees {@link BehaviourPeer}: one end of a WebSocket
 * connection that records what arrives (messages, pings, pongs, errors, the close) and can send,
 * ping and close. {@link switchyardPeer} and {@link wsPeer} wrap a Switchyard `WebSocket` and a
 * `ws` `WebSocket` in that shape, so any client can face any server. A
 * {@link BehaviourTransport} starts a server and connects a client; the stock ones below pair
 * Switchyard and `ws` over TCP and TLS. A new transport (HTTP/2 extended CONNECT, RFC 8441) is
 * a `startServer` and a `connectClient` that return these adapters, plus one
 * `runBehaviourSuite(...)` line in test/interop/behaviour.test.ts.
 */
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocket as WsWebSocket, WebSocketServer as WsServer } from 'ws';
import { connect } from '../../src/node/client.js';
import { WebSocketServer } from '../../src/node/server.js';
import type { WebSocket } from '../../src/node/websocket.js';
import type { Availability } from '../helpers/peers.js';
import { selfSignedCertificate } from '../helpers/tls.js';

/** What a peer saw when its connection closed. */
export interface PeerClose {
  code: number;
  reason: string;
  wasClean: boolean;
}

/** One end of a connection, as the behaviour cases see it. */
export interface BehaviourPeer {
  /** The negotiated subprotocol, '' for none. */
  readonly protocol: string;
  /** The negotiated extensions, as Sec-WebSocket-Extensions said them, '' for none. */
  readonly extensions: string;
  /** Messages received, in order: text as strings, binary as Buffers. */
  readonly messages: Array<string | Buffer>;
  /** Payloads of pings and pongs received. */
  readonly pings: Buffer[];
  readonly pongs: Buffer[];
  /** Errors the implementation reported (protocol violations, limits). */
  readonly errors: Error[];
  /** Set once the connection has closed. */
  readonly closeInfo: PeerClose | null;
  /** Sends one message: strings as text, bytes as binary. */
  send(data: string | Uint8Array): void;
  /** Sends one message as several frames (RFC 6455 §5.4), one per part. */
  sendFragments(parts: ReadonlyArray<string | Uint8Array>): void;
  ping(payload: Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** Drops the connection without a closing handshake (cleanup). */
  terminate(): void;
  /** Calls `listener` for every message received from now on. */
  onMessage(listener: (data: string | Buffer) => void): void;
  /** Resolves once `predicate` holds (checked after every event); rejects after `timeoutMs`. */
  until(what: string, predicate: () => boolean, timeoutMs?: number): Promise<void>;
  /** Resolves with {@link closeInfo} once the connection has closed (bounded like `until`). */
  closed(timeoutMs?: number): Promise<PeerClose>;
}

/** Options every transport's server honours. */
export interface BehaviourServerOptions {
  /** Subprotocols served, in the server's order of preference. Default: none. */
  protocols?: readonly string[];
  /** Largest message accepted, bytes. Default: the implementation's. */
  maxPayload?: number;
  /** Accept permessage-deflate (RFC 7692) with the implementation's defaults. Default false. */
  perMessageDeflate?: boolean;
}

/** Options every transport's client honours. */
export interface BehaviourClientOptions {
  /** Subprotocols offered, in the client's order. Default: none. */
  protocols?: readonly string[];
  /** Largest message accepted, bytes. Default: the implementation's. */
  maxPayload?: number;
  /** Offer permessage-deflate (RFC 7692) with the implementation's defaults. Default false. */
  perMessageDeflate?: boolean;
}

/** A running server of a transport. */
export interface BehaviourServer {
  url: string;
  /** Sets the listener called with the server's end of each new connection. */
  onConnection(listener: (peer: BehaviourPeer) => void): void;
  /** Stops the server and drops its connections. */
  close(): Promise<void>;
}

/** A way for a client to reach a server: the unit the behaviour suite is run over. */
export interface BehaviourTransport {
  /**
   * Set when the client fails a handshake in which it offered subprotocols and the server chose
   * none. RFC 6455 §4.1 allows that answer; ws's client refuses it ("Server sent no subprotocol").
   */
  clientRefusesAbsentSubprotocol?: boolean;
  /** What both ends must report as negotiated extensions. Default: '' (none). */
  extensions?: RegExp;
  /** Whether the transport can run here (a missing `openssl`, say); default: always. */
  availability?(): Availability | Promise<Availability>;
  startServer(options: BehaviourServerOptions): Promise<BehaviourServer>;
  /** Resolves with the client's end once the connection is open. */
  connectClient(url: string, options: BehaviourClientOptions): Promise<BehaviourPeer>;
}

/** How a recorder drives the implementation it wraps. */
interface PeerDriver {
  protocol(): string;
  extensions(): string;
  send(data: string | Uint8Array, binary: boolean, fin: boolean): void;
  ping(payload: Uint8Array): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
}

// Generous: only a failing case waits this long, and a loaded CI machine is slow.
const DEFAULT_WAIT_MS = 10_000;

/** Records the events of one connection and wakes waiters after each. */
class PeerRecorder implements BehaviourPeer {
  readonly messages: Array<string | Buffer> = [];
  readonly pings: Buffer[] = [];
  readonly pongs: Buffer[] = [];
  readonly errors: Error[] = [];
  closeInfo: PeerClose | null = null;
  private readonly listeners: Array<(data: string | Buffer) => void> = [];
  private waiters = new Set<() => void>();

  constructor(private readonly driver: PeerDriver) {}

  get protocol(): string {
    return this.driver.protocol();
  }
  get extensions(): string {
    return this.driver.extensions();
  }

  // ---- fed by the adapters ----
  recordMessage(data: string | Buffer): void {
    this.messages.push(data);
    for (const listener of this.listeners) listener(data);
    this.changed();
  }
  recordPing(data: Buffer): void {
    this.pings.push(data);
    this.changed();
  }
  recordPong(data: Buffer): void {
    this.pongs.push(data);
    this.changed();
  }
  recordError(error: Error): void {
    this.errors.push(error);
    this.changed();
  }
  recordClose(info: PeerClose): void {
    this.closeInfo ??= info;
    this.changed();
  }

  // ---- used by the cases ----
  send(data: string | Uint8Array): void {
    this.driver.send(data, typeof data !== 'string', true);
  }
  sendFragments(parts: ReadonlyArray<string | Uint8Array>): void {
    const binary = typeof parts[0] !== 'string';
    parts.forEach((part, i) => this.driver.send(part, binary, i === parts.length - 1));
  }
  ping(payload: Uint8Array): void {
    this.driver.ping(payload);
  }
  close(code?: number, reason?: string): void {
    this.driver.close(code, reason);
  }
  terminate(): void {
    this.driver.terminate();
  }
  onMessage(listener: (data: string | Buffer) => void): void {
    this.listeners.push(listener);
  }

  until(what: string, predicate: () => boolean, timeoutMs = DEFAULT_WAIT_MS): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what} (${this.messages.length} ` +
              `messages, close ${JSON.stringify(this.closeInfo)}, errors: ` +
              `${this.errors.map((e) => e.message).join('; ') || 'none'})`,
          ),
        );
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  async closed(timeoutMs = DEFAULT_WAIT_MS): Promise<PeerClose> {
    await this.until('the close', () => this.closeInfo !== null, timeoutMs);
    return this.closeInfo!;
  }

  private changed(): void {
    for (const check of [...this.waiters]) check();
  }
}

/** Wraps a Switchyard `WebSocket` (either role). */
export function switchyardPeer(ws: WebSocket): BehaviourPeer {
  const peer = new PeerRecorder({
    protocol: () => ws.protocol,
    extensions: () => ws.extensions,
    send: (data, binary, fin) => ws.send(data, { binary, fin }),
    ping: (payload) => ws.ping(payload),
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
  });
  ws.on('message', (data, isBinary) =>
    peer.recordMessage(isBinary || typeof data === 'string' ? data : data.toString('utf8')),
  );
  ws.on('ping', (data) => peer.recordPing(data));
  ws.on('pong', (data) => peer.recordPong(data));
  ws.on('error', (error) => peer.recordError(error));
  ws.on('close', (code, reason, wasClean) => peer.recordClose({ code, reason, wasClean }));
  return peer;
}

/** Wraps a `ws` `WebSocket` (either role). */
export function wsPeer(ws: WsWebSocket): BehaviourPeer {
  const peer = new PeerRecorder({
    // Read when asked: a ws client knows its subprotocol only once open.
    protocol: () => ws.protocol,
    extensions: () => ws.extensions,
    send: (data, binary, fin) => ws.send(data, { binary, fin }),
    ping: (payload) => ws.ping(payload),
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
  });
  ws.on('message', (data: Buffer, isBinary) =>
    peer.recordMessage(isBinary ? data : data.toString('utf8')),
  );
  ws.on('ping', (data) => peer.recordPing(data));
  ws.on('pong', (data) => peer.recordPong(data));
  ws.on('error', (error) => peer.recordError(error));
  // ws's own 'close' event has no wasClean; its WHATWG CloseEvent does (close frame both ways).
  ws.addEventListener('close', (event) =>
    peer.recordClose({ code: event.code, reason: event.reason, wasClean: event.wasClean }),
  );
  return peer;
}

// ---------------------------------------------------------------------------------------------
// Servers

/** Options of the stock Switchyard servers: quiet, no heartbeat traffic during a case. */
function switchyardServerOptions(options: BehaviourServerOptions) {
  return {
    logger: false as const,
    heartbeat: false as const,
    protocols: options.protocols,
    maxPayload: options.maxPayload,
    perMessageDeflate: options.perMessageDeflate ?? false,
  };
}

/** Adapts a Switchyard server's 'connection' event. */
function switchyardConnections(server: WebSocketServer) {
  let listener: (peer: BehaviourPeer) => void = () => {};
  server.on('connection', (ws) => listener(switchyardPeer(ws)));
  return (next: (peer: BehaviourPeer) => void) => {
    listener = next;
  };
}

/** A Switchyard `WebSocketServer` listening on 127.0.0.1 (plain TCP). */
export async function startSwitchyardServer(
  options: BehaviourServerOptions,
): Promise<BehaviourServer> {
  const server = new WebSocketServer(switchyardServerOptions(options));
  const onConnection = switchyardConnections(server);
  const { port } = await server.listen(0, '127.0.0.1');
  return {
    url: `ws://127.0.0.1:${port}/`,
    onConnection,
    close: () => server.close({ timeout: 500 }),
  };
}

/** A Switchyard `WebSocketServer` attached to an `https` server with `credentials`. */
export async function startSwitchyardTlsServer(
  options: BehaviourServerOptions,
  credentials: { key: Buffer; cert: Buffer },
): Promise<BehaviourServer> {
  const httpsServer = https.createServer({ key: credentials.key, cert: credentials.cert });
  const server = new WebSocketServer({ ...switchyardServerOptions(options), server: httpsServer });
  const onConnection = switchyardConnections(server);
  httpsServer.listen(0, '127.0.0.1');
  await once(httpsServer, 'listening');
  const { port } = httpsServer.address() as AddressInfo;
  return {
    // The certificate names localhost; the client resolves it, the server listens on 127.0.0.1.
    url: `wss://localhost:${port}/`,
    onConnection,
    close: async () => {
      await server.close({ timeout: 500 });
      httpsServer.closeAllConnections();
      await new Promise<void>((resolve) => httpsServer.close(() => resolve()));
    },
  };
}

/** A `ws` server on 127.0.0.1, choosing subprotocols in its own order of preference. */
export async function startWsServer(options: BehaviourServerOptions): Promise<BehaviourServer> {
  const preferred = options.protocols ?? [];
  const wss = new WsServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: options.perMessageDeflate ?? false,
    ...(options.maxPayload !== undefined ? { maxPayload: options.maxPayload } : {}),
    handleProtocols: (offered) => preferred.find((p) => offered.has(p)) ?? false,
  });
  await once(wss, 'listening');
  let listener: (peer: BehaviourPeer) => void = () => {};
  wss.on('connection', (ws) => listener(wsPeer(ws)));
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`,
    onConnection: (next) => {
      listener = next;
    },
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Clients

/** Connects Switchyard's client (no heartbeat traffic during a case). */
export async function connectSwitchyardClient(
  url: string,
  options: BehaviourClientOptions,
  tls?: { ca: Buffer },
): Promise<BehaviourPeer> {
  const ws = await connect(url, {
    protocols: options.protocols,
    maxPayload: options.maxPayload,
    perMessageDeflate: options.perMessageDeflate ?? false,
    logger: false,
    heartbeat: false,
    handshakeTimeout: 5000,
    ...(tls !== undefined ? { tls } : {}),
  });
  return switchyardPeer(ws);
}

/** Connects a `ws` client; compression only when asked. */
export async function connectWsClient(
  url: string,
  options: BehaviourClientOptions,
): Promise<BehaviourPeer> {
  const ws = new WsWebSocket(url, [...(options.protocols ?? [])], {
    perMessageDeflate: options.perMessageDeflate ?? false,
    handshakeTimeout: 5000,
    ...(options.maxPayload !== undefined ? { maxPayload: options.maxPayload } : {}),
  });
  // The adapter is attached before 'open' so that nothing sent right after the 101 is missed.
  const peer = wsPeer(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return peer;
}

// ---------------------------------------------------------------------------------------------
// The stock transports

/** Switchyard client ↔ Switchyard server over plain TCP. */
export const switchyardOverTcp: BehaviourTransport = {
  startServer: startSwitchyardServer,
  connectClient: (url, options) => connectSwitchyardClient(url, options),
};

/** Switchyard client ↔ Switchyard server attached to an `https` server (self-signed cert). */
export const switchyardOverTls: BehaviourTransport = {
  availability: () => selfSignedCertificate(),
  startServer: (options) => startSwitchyardTlsServer(options, certificate()),
  connectClient: (url, options) =>
    connectSwitchyardClient(url, options, { ca: certificate().cert }),
};

/** The `ws` client ↔ a Switchyard server. */
export const wsClientToSwitchyard: BehaviourTransport = {
  clientRefusesAbsentSubprotocol: true,
  startServer: startSwitchyardServer,
  connectClient: connectWsClient,
};

/** Switchyard's client ↔ a `ws` server. */
export const switchyardClientToWs: BehaviourTransport = {
  startServer: startWsServer,
  connectClient: (url, options) => connectSwitchyardClient(url, options),
};

function certificate(): { key: Buffer; cert: Buffer } {
  const tls = selfSignedCertificate();
  if (!tls.available) throw new Error(tls.reason);
  return tls;
}

/**
 * The same transport with permessage-deflate (RFC 7692) offered by the client and accepted by
 * the server, each with its implementation's defaults.
 */
export function withDeflate(transport: BehaviourTransport): BehaviourTransport {
  return {
    ...transport,
    extensions: /^permessage-deflate\b/,
    startServer: (options) => transport.startServer({ perMessageDeflate: true, ...options }),
    connectClient: (url, options) =>
      transport.connectClient(url, { perMessageDeflate: true, ...options }),
  };
}
