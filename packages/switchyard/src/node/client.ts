/**
 * The WebSocket client: `connect(url, options)` resolves with an open {@link WebSocket}.
 *
 * Theory of operation. Open TCP (or TLS, or a CONNECT tunnel through an HTTP proxy, then TLS),
 * write the request the core builds, feed the response bytes to the core's head parser, let the
 * core validate the 101 (RFC 6455 §4.1), then bind a WebSocket to the socket with whatever bytes
 * followed the head. Every wait is bounded by `handshakeTimeout` and cancellable by `signal`.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import {
  ConnectionError,
  LocalProtocolError,
  RemoteProtocolError,
  UnexpectedResponseError,
  type SwitchyardError,
} from '../core/errors.js';
import { formatClientRequest, generateKey, validateServerResponse } from '../core/handshake.js';
import { HttpHeadParser, type ResponseHead } from '../core/http-head.js';
import { flattenHeaders } from '../core/header-lists.js';
import { CONNECTION_DEFAULTS } from '../core/connection.js';
import { PERMESSAGE_DEFLATE } from '../core/permessage-deflate.js';
import { acceptDeflateResponseFor, deflateConfig, deflateOfferHeader } from './deflate.js';
import { readErrorBody } from './error-body.js';
import { resolveLogger } from './diagnostics.js';
import { WebSocket } from './websocket.js';
import { connectHttp2 } from './http2.js';
import type { ConnectOptions } from './connect-options.js';
import { checkOptions } from '../core/options.js';
import { parseWebSocketUrl } from '../core/websocket-url.js';
import { CONNECT_DEFAULTS, CONNECT_OPTIONS, HEARTBEAT_DEFAULTS } from './options.js';

export type { ConnectOptions };

/**
 * Opens a WebSocket connection.
 *
 * @example
 * const ws = await connect('ws://127.0.0.1:8080/echo');
 * ws.send('hello');
 * for await (const { data } of ws) console.log(data);
 */
export async function connect(url: string | URL, options: ConnectOptions = {}): Promise<WebSocket> {
  // Rejects (connect is async) with SWITCHYARD_ERR_INVALID_OPTION before any I/O.
  checkOptions(CONNECT_OPTIONS, options);
  const maxRedirects =
    options.followRedirects === true
      ? 5
      : typeof options.followRedirects === 'number'
        ? options.followRedirects
        : 0;
  const deadline = Date.now() + (options.handshakeTimeout ?? CONNECT_DEFAULTS.handshakeTimeout);
  let target = parseWebSocketUrl(url);
  if (
    typeof options.http2 === 'object' ||
    (options.http2 === true &&
      (options.proxy === false || (options.proxy === undefined && proxyFromEnv(target) === null)))
  ) {
    const outcome = await connectHttp2(target, options, deadline);
    if (outcome !== 'fallback') return outcome;
  }
  for (let redirects = 0; ; redirects++) {
    const outcome = await attempt(target, options, deadline);
    if ('websocket' in outcome) return outcome.websocket;
    if (redirects >= maxRedirects) {
      throw maxRedirects === 0
        ? outcome.error
        : new RemoteProtocolError(
            'SWITCHYARD_ERR_TOO_MANY_REDIRECTS',
            `More than ${maxRedirects} redirects`,
            {
              status: outcome.error.statusCode,
            },
          );
    }
    target = parseWebSocketUrl(new URL(outcome.location, target.href.replace(/^ws/, 'http')));
  }
}

type Attempt = { websocket: WebSocket } | { location: string; error: UnexpectedResponseError };

function attempt(url: URL, options: ConnectOptions, deadline: number): Promise<Attempt> {
  const secure = url.protocol === 'wss:';
  const port = Number(url.port || (secure ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const protocols =
    options.protocols === undefined
      ? []
      : typeof options.protocols === 'string'
        ? [options.protocols]
        : [...options.protocols];
  const key = generateKey();
  // RFC 7692 §5: offer permessage-deflate when it is on.
  const deflateOptions = deflateConfig(options.perMessageDeflate);
  const deflateOffer = deflateOfferHeader(deflateOptions);
  const request = formatClientRequest({
    host: options.host ?? (url.port ? `${url.hostname}:${url.port}` : url.hostname),
    path: `${url.pathname}${url.search}`,
    key,
    protocols,
    extensions: deflateOffer ?? undefined,
    origin: options.origin,
    headers: options.headers,
  });
  const logger = resolveLogger(options.logger);

  return new Promise<Attempt>((resolve, rejectPromise) => {
    let socket: Duplex | null = null;
    let settled = false;
    const remaining = deadline - Date.now();
    const fail = (error: SwitchyardError | Error) => {
      if (settled) return;
      settled = true;
      cleanup();
      socket?.destroy();
      rejectPromise(error);
    };
    const timer = setTimeout(
      () =>
        fail(
          new ConnectionError(
            'SWITCHYARD_ERR_HANDSHAKE_TIMEOUT',
            `The opening handshake with ${url.host} did not complete in time`,
            {
              closeCode: 1006,
            },
          ),
        ),
      Math.max(0, remaining),
    );
    const onAbort = () =>
      fail(
        new ConnectionError(
          'SWITCHYARD_ERR_HANDSHAKE_ABORTED',
          'The opening handshake was aborted',
          {
            cause: options.signal?.reason,
          },
        ),
      );
    const cleanup = () => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });

    const onSocket = (s: Duplex) => {
      socket = s;
      if (settled) return s.destroy();
      const parser = new HttpHeadParser({
        kind: 'response',
        maxHeaderBytes: options.maxHeaderBytes ?? CONNECT_DEFAULTS.maxHeaderBytes,
      });
      const onError = (error: Error) =>
        fail(
          new ConnectionError(
            'SWITCHYARD_ERR_CONNECTION_LOST',
            `Connection to ${url.host} failed: ${error.message}`,
            { cause: error },
          ),
        );
      const onClose = () =>
        fail(
          new ConnectionError(
            'SWITCHYARD_ERR_CONNECTION_LOST',
            `${url.host} closed the connection during the handshake`,
          ),
        );
      const onData = (chunk: Buffer) => {
        const result = parser.push(chunk);
        if (result === null) return;
        s.off('data', onData);
        if (!result.ok) return fail(result.error);
        const head = result.head;
        if (head.statusCode !== 101) {
          s.off('close', onClose);
          s.off('error', onError);
          s.on('error', () => {});
          readErrorBody(s, result.rest, Number(head.headers['content-length'] ?? NaN), (body) => {
            const error = unexpected(head, body, url);
            const location = head.headers.location;
            if (isRedirect(head.statusCode) && typeof location === 'string') {
              if (settled) return;
              settled = true;
              cleanup();
              s.destroy();
              resolve({ location, error });
            } else fail(error);
          });
          return;
        }
        const check = validateServerResponse(head, {
          key,
          protocols,
          extensionsOffered: deflateOffer === null ? [] : [PERMESSAGE_DEFLATE],
        });
        if (!check.ok) return fail(check.error);
        const deflate = acceptDeflateResponseFor(
          check.extensions,
          deflateOptions,
          options.maxPayload ?? CONNECTION_DEFAULTS.maxPayload,
        );
        if (deflate instanceof RemoteProtocolError) return fail(deflate);
        if (settled) return;
        settled = true;
        cleanup();
        s.off('error', onError);
        s.off('close', onClose);
        const websocket = new WebSocket(s, 'client', {
          deflate: deflate?.codec ?? null,
          protocol: check.protocol,
          extensions: deflate?.header ?? '',
          url: url.href,
          head: result.rest.length > 0 ? result.rest : null,
          options,
          logger,
          response: {
            statusCode: head.statusCode,
            statusText: head.statusText,
            headers: flattenHeaders(head.headers),
          },
        });
        if (options.heartbeat !== false) {
          websocket.startHeartbeat(
            options.heartbeat?.interval ?? HEARTBEAT_DEFAULTS.interval,
            options.heartbeat?.timeout ?? HEARTBEAT_DEFAULTS.timeout,
          );
        }
        resolve({ websocket });
      };
      s.on('data', onData);
      s.on('error', onError);
      s.on('close', onClose);
      s.write(request);
    };

    const proxy = options.proxy === false ? null : (options.proxy ?? proxyFromEnv(url));
    if (proxy !== null) {
      openTunnel(proxy, host, port)
        .then((raw) => {
          if (settled) return raw.destroy();
          socket = raw;
          if (!secure) return onSocket(raw);
          const t = tls.connect({
            ...options.tls,
            socket: raw,
            servername: tlsServername(host, options),
            ALPNProtocols: ['http/1.1'],
          });
          t.once('secureConnect', () => onSocket(t));
          t.once('error', (error) =>
            fail(
              new ConnectionError(
                'SWITCHYARD_ERR_CONNECTION_LOST',
                `TLS failed: ${error.message}`,
                { cause: error },
              ),
            ),
          );
        })
        .catch((error: Error) => fail(error));
      return;
    }
    const s: Duplex = secure
      ? tls.connect({
          ...options.tls,
          host,
          port,
          servername: tlsServername(host, options),
          ALPNProtocols: ['http/1.1'],
        })
      : net.connect({ host, port });
    socket = s;
    s.once('error', (error) =>
      fail(
        new ConnectionError(
          'SWITCHYARD_ERR_CONNECTION_LOST',
          `Could not connect to ${url.host}: ${error.message}`,
          { cause: error },
        ),
      ),
    );
    s.once(secure ? 'secureConnect' : 'connect', () => onSocket(s));
  });
}

function tlsServername(host: string, options: ConnectOptions): string | undefined {
  if (options.tls?.servername !== undefined) return options.tls.servername;
  // RFC 6066 §3: SNI carries host names, never IP addresses.
  return net.isIP(host) === 0 ? host : undefined;
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function unexpected(head: ResponseHead, body: Uint8Array, url: URL): UnexpectedResponseError {
  const headers = flattenHeaders(head.headers);
  return new UnexpectedResponseError(
    `${url.host} answered ${head.statusCode} ${head.statusText} instead of 101 Switching Protocols`,
    { statusCode: head.statusCode, statusText: head.statusText, headers, body },
  );
}

/** The proxy for a URL from HTTP_PROXY / HTTPS_PROXY, unless NO_PROXY matches its host. */
export function proxyFromEnv(url: URL, env: NodeJS.ProcessEnv = process.env): string | null {
  const secure = url.protocol === 'wss:';
  const proxy = secure
    ? (env.HTTPS_PROXY ?? env.https_proxy ?? env.HTTP_PROXY ?? env.http_proxy)
    : (env.HTTP_PROXY ?? env.http_proxy);
  if (proxy === undefined || proxy === '') return null;
  const noProxy = env.NO_PROXY ?? env.no_proxy ?? '';
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = url.port || (secure ? '443' : '80');
  for (const raw of noProxy.split(/[\s,]+/)) {
    const entry = raw.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return null;
    const [entryHost, entryPort] = entry.startsWith('[')
      ? [entry.slice(1, entry.indexOf(']')), entry.split(']:')[1]]
      : entry.split(':');
    if (entryPort !== undefined && entryPort !== port) continue;
    const bare = entryHost.replace(/^\*?\./, '');
    if (host === bare || host.endsWith(`.${bare}`)) return null;
  }
  return proxy;
}

/** Opens a CONNECT tunnel through an HTTP proxy (RFC 9110 §9.3.6). */
function openTunnel(proxyUrl: string, host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, rejectPromise) => {
    let proxy: URL;
    try {
      proxy = new URL(proxyUrl);
    } catch {
      rejectPromise(
        new LocalProtocolError('SWITCHYARD_ERR_INVALID_ARGUMENT', `Invalid proxy URL: ${proxyUrl}`),
      );
      return;
    }
    const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
    const proxyPort = Number(proxy.port || (proxy.protocol === 'https:' ? 443 : 80));
    const socket = net.connect({ host: proxy.hostname.replace(/^\[|\]$/g, ''), port: proxyPort });
    let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
    if (proxy.username !== '') {
      const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
      head += `Proxy-Authorization: Basic ${Buffer.from(credentials).toString('base64')}\r\n`;
    }
    head += '\r\n';
    const parser = new HttpHeadParser({ kind: 'response', maxHeaderBytes: 16 * 1024 });
    const failTunnel = (message: string, cause?: unknown) => {
      socket.destroy();
      rejectPromise(new ConnectionError('SWITCHYARD_ERR_PROXY', message, { cause }));
    };
    socket.once('error', (error) =>
      failTunnel(`Proxy ${proxy.host} failed: ${error.message}`, error),
    );
    socket.once('connect', () => socket.write(head));
    const onData = (chunk: Buffer) => {
      const result = parser.push(chunk);
      if (result === null) return;
      socket.off('data', onData);
      if (!result.ok)
        return failTunnel(`Proxy ${proxy.host} sent a malformed response: ${result.error.message}`);
      if (result.head.statusCode !== 200) {
        return failTunnel(
          `Proxy ${proxy.host} refused CONNECT ${authority}: ${result.head.statusCode} ${result.head.statusText}`,
        );
      }
      socket.removeAllListeners('error');
      if (result.rest.length > 0) socket.unshift(Buffer.from(result.rest));
      resolve(socket);
    };
    socket.on('data', onData);
  });
}
