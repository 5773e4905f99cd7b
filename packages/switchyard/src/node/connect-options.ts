/**
 * The options of `connect`, in their own module so that client.ts and http2.ts (its HTTP/2
 * path) both import them and neither imports the other for them.
 */
import type { ClientHttp2Session } from 'node:http2';
import type tls from 'node:tls';
import type { Logger } from './diagnostics.js';
import type { WebSocketOptions } from './websocket.js';

/** Options of `connect`. */
export interface ConnectOptions extends WebSocketOptions {
  /** Subprotocols to offer, in order of preference (Sec-WebSocket-Protocol). */
  protocols?: string | readonly string[];
  /** Extra request headers (for example `Authorization`). */
  headers?: Record<string, string>;
  /** The Origin header to send (browsers always send one; Node clients need not). */
  origin?: string;
  /**
   * The Host header (`:authority` over HTTP/2) to send instead of the URL's `host[:port]`, for
   * a virtual host reached by address: `connect('ws://10.0.0.5/chat', { host: 'chat.example' })`.
   * The connection still goes to the URL's host and port, and TLS's SNI and certificate check
   * still use the URL's host (set `tls.servername` to change them). Default: the URL's host.
   */
  host?: string;
  /** Longest time, in ms, from the first connect to the 101. Default 10 s. */
  handshakeTimeout?: number;
  /** Aborts the handshake (the promise rejects with SWITCHYARD_ERR_HANDSHAKE_ABORTED). */
  signal?: AbortSignal;
  /** Follow 3xx redirects: false (default), true (at most 5), or the most to follow. */
  followRedirects?: boolean | number;
  /**
   * An HTTP proxy URL to tunnel through with CONNECT, or false for none. Default: the
   * `HTTPS_PROXY` (wss) or `HTTP_PROXY` (ws) environment variable, honouring `NO_PROXY`.
   */
  proxy?: string | false;
  /** TLS options for wss:// (ca, cert, key, rejectUnauthorized, servername ...). */
  tls?: tls.ConnectionOptions;
  /** Largest response head accepted, in bytes. Default 16 KiB. */
  maxHeaderBytes?: number;
  /**
   * Heartbeat: a ping after `interval` ms without traffic; the connection is terminated when
   * nothing arrives for `timeout` ms more. Default { interval: 30_000, timeout: 30_000 }.
   */
  heartbeat?: { interval?: number; timeout?: number } | false;
  /** Where log lines go; false for none. Default: the console. */
  logger?: Logger | false;
  /**
   * Open the WebSocket as a stream of an HTTP/2 connection (RFC 8441 extended CONNECT), as
   * browsers do when the server advertises it. `true`: share one HTTP/2 connection per origin
   * (and `tls` options object) among every WebSocket opened this way, and fall back to HTTP/1.1
   * when the server does not speak HTTP/2 or does not advertise extended CONNECT (or when a
   * proxy applies). A `ClientHttp2Session`: use that connection; no fallback
   * (`SWITCHYARD_ERR_HTTP2_NO_EXTENDED_CONNECT`). Redirects are not followed over HTTP/2.
   * Default false. See docs/http2.md.
   */
  http2?: boolean | ClientHttp2Session;
}
