/**
 * The HTTP/2 transports of the shared behaviour suite: Switchyard's client and server with the
 * WebSocket on an RFC 8441 extended CONNECT stream, over cleartext HTTP/2 and over TLS (an
 * `allowHTTP1` server, so the same port would also take HTTP/1.1). The client side refuses to
 * run a case over anything but a stream, so a silent fallback to HTTP/1.1 fails the suite.
 */
import { once } from 'node:events';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { connect } from '../../src/node/client.js';
import { WebSocketServer } from '../../src/node/server.js';
import { selfSignedCertificate } from '../helpers/tls.js';
import {
  switchyardPeer,
  type BehaviourClientOptions,
  type BehaviourPeer,
  type BehaviourServer,
  type BehaviourServerOptions,
  type BehaviourTransport,
} from './transports.js';

/** A Switchyard `WebSocketServer` attached to an http2 server on 127.0.0.1. */
async function startSwitchyardHttp2Server(
  options: BehaviourServerOptions,
  credentials?: { key: Buffer; cert: Buffer },
): Promise<BehaviourServer> {
  const server = credentials
    ? http2.createSecureServer({ ...credentials, allowHTTP1: true })
    : http2.createServer();
  const wss = new WebSocketServer({
    server,
    logger: false,
    heartbeat: false,
    protocols: options.protocols,
    maxPayload: options.maxPayload,
    perMessageDeflate: options.perMessageDeflate ?? false,
  });
  let listener: (peer: BehaviourPeer) => void = () => {};
  wss.on('connection', (ws) => listener(switchyardPeer(ws)));
  const sessions = new Set<http2.Http2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: credentials ? `wss://localhost:${port}/` : `ws://127.0.0.1:${port}/`,
    onConnection: (next) => {
      listener = next;
    },
    close: async () => {
      await wss.close({ timeout: 500 });
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Connects Switchyard's client with `http2: true`, and checks that it got a stream. */
async function connectOverHttp2(
  url: string,
  options: BehaviourClientOptions,
  tls?: { ca: Buffer },
): Promise<BehaviourPeer> {
  const ws = await connect(url, {
    http2: true,
    protocols: options.protocols,
    maxPayload: options.maxPayload,
    perMessageDeflate: options.perMessageDeflate ?? false,
    logger: false,
    heartbeat: false,
    handshakeTimeout: 5000,
    ...(tls !== undefined ? { tls } : {}),
  });
  if (!('session' in ws.socket)) {
    ws.terminate();
    throw new Error('the client fell back to HTTP/1.1: the case would not test HTTP/2');
  }
  return switchyardPeer(ws);
}

function certificate(): { key: Buffer; cert: Buffer } {
  const tls = selfSignedCertificate();
  if (!tls.available) throw new Error(tls.reason);
  return tls;
}

/** Switchyard client ↔ Switchyard server, the WebSocket on a cleartext HTTP/2 stream. */
export const switchyardOverHttp2: BehaviourTransport = {
  startServer: (options) => startSwitchyardHttp2Server(options),
  connectClient: (url, options) => connectOverHttp2(url, options),
};

/** Switchyard client ↔ Switchyard server, on a stream of an HTTP/2 TLS connection (h2). */
export const switchyardOverHttp2Tls: BehaviourTransport = {
  availability: () => selfSignedCertificate(),
  startServer: (options) => startSwitchyardHttp2Server(options, certificate()),
  connectClient: (url, options) => connectOverHttp2(url, options, { ca: certificate().cert }),
};
