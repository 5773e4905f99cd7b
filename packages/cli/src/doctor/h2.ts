/**
 * The HTTP/2 side of an endpoint, for `switchyard doctor`: does it speak h2 (ALPN), does it
 * advertise extended CONNECT (RFC 8441 §3: SETTINGS_ENABLE_CONNECT_PROTOCOL, 0x8, set to 1),
 * without which no client may open a WebSocket over HTTP/2, and when it does, does a WebSocket
 * over HTTP/2 actually work (a browser whose page came over h2 will try exactly that)?
 */
import http2 from 'node:http2';
import tls from 'node:tls';
import { connect } from 'switchyard';

/** The outcome of opening a WebSocket as an HTTP/2 stream (RFC 8441 §4). */
export type H2WebSocket =
  { ok: true; openMs: number; pingMs: number; closed: boolean } | { ok: false; reason: string };

/** What the HTTP/2 probe found. */
export type H2Probe =
  | {
      speaksH2: true;
      enableConnectProtocol: boolean;
      settings: Record<string, unknown>;
      ms: number;
      /** Present when extended CONNECT is advertised: the WebSocket tried over this session. */
      websocket?: H2WebSocket;
    }
  | { speaksH2: false; reason: string };

/** Connects with ALPN h2 only and reads the server's first SETTINGS frame. */
export function probeH2(
  url: URL,
  options: { timeoutMs: number; ca?: string | Buffer },
): Promise<H2Probe> {
  const start = Date.now();
  return new Promise((resolve) => {
    const origin = `https://${url.host}`;
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let settled = false;
    const finish = (probe: H2Probe) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      resolve(probe);
    };
    const session = http2.connect(origin, {
      ALPNProtocols: ['h2'],
      rejectUnauthorized: false,
      ca: options.ca === undefined ? undefined : [...tls.rootCertificates, String(options.ca)],
      servername: host,
    });
    const timer = setTimeout(
      () => finish({ speaksH2: false, reason: 'no HTTP/2 SETTINGS within the timeout' }),
      options.timeoutMs,
    );
    session.on('error', (error: Error) =>
      finish({ speaksH2: false, reason: error.message.split('\n')[0] }),
    );
    session.once('remoteSettings', (settings) => {
      const found = {
        speaksH2: true as const,
        enableConnectProtocol: settings.enableConnectProtocol === true,
        settings: { ...settings },
        ms: Date.now() - start,
      };
      if (!found.enableConnectProtocol) return finish(found);
      clearTimeout(timer);
      void tryWebSocket(session, url, options.timeoutMs).then(
        (websocket) => finish({ ...found, websocket }),
        (error: unknown) =>
          finish({
            ...found,
            websocket: { ok: false, reason: (error as Error).message.split('\n')[0] },
          }),
      );
    });
  });
}

/** Opens a WebSocket over the session, pings it, and closes it; every step bounded in time. */
async function tryWebSocket(
  session: http2.ClientHttp2Session,
  url: URL,
  timeoutMs: number,
): Promise<H2WebSocket> {
  const started = Date.now();
  let ws;
  try {
    const target = new URL(url.href);
    target.protocol = 'wss:';
    ws = await connect(target, {
      http2: session,
      handshakeTimeout: timeoutMs,
      heartbeat: false,
      logger: false,
    });
  } catch (error) {
    return { ok: false, reason: (error as Error).message.split('\n')[0] };
  }
  const openMs = Date.now() - started;
  const socket = ws;
  // A frame that breaks the protocol fails the connection with an 'error' event: without a
  // listener it would be thrown; it is the finding instead.
  let failure: Error | null = null;
  let closedWith: { code: number; reason: string } | null = null;
  socket.on('error', (error) => (failure ??= error));
  socket.once('close', (code, reason) => (closedWith = { code, reason }));
  const broken = (): string | null =>
    failure !== null
      ? `opened in ${openMs} ms, then failed: ${(failure as Error).message.split('\n')[0]}`
      : closedWith !== null
        ? `opened in ${openMs} ms, then closed (${(closedWith as { code: number }).code})`
        : null;
  const within = <T>(promise: Promise<T>, fallback: T): Promise<T> =>
    Promise.race([promise, new Promise<T>((r) => setTimeout(r, timeoutMs, fallback).unref())]);
  const pingAt = Date.now();
  const pong = await within(
    new Promise<boolean>((resolve) => {
      socket.once('pong', () => resolve(true));
      socket.once('close', () => resolve(false));
      try {
        socket.ping();
      } catch {
        // Already failed or closing (a broken frame came with the 200): said below.
        resolve(false);
      }
    }),
    false,
  );
  const pingMs = Date.now() - pingAt;
  if (!pong) {
    socket.terminate();
    return {
      ok: false,
      reason: broken() ?? `opened in ${openMs} ms, but no pong within ${timeoutMs} ms`,
    };
  }
  const closed = await within(
    new Promise<boolean>((resolve) => {
      socket.once('close', (_code, _reason, wasClean) => resolve(wasClean && failure === null));
      try {
        socket.close(1000, 'doctor');
      } catch {
        resolve(false);
      }
    }),
    false,
  );
  if (!closed) socket.terminate();
  if (failure !== null) return { ok: false, reason: broken() ?? 'failed' };
  return { ok: true, openMs, pingMs, closed };
}
