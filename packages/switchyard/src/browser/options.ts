/**
 * The options of the browser `ReconnectingWebSocket` as data (see core/options.ts): checked on
 * construction, and shown in docs/reference.md. The `reconnect` bag is the Node class's own
 * table. The Node-only options of `connect()` name what to do in a browser instead.
 */
import { is, type OptionTable } from '../core/options.js';
import { RECONNECT_OPTIONS } from '../core/reconnecting-client.js';

const HEADERS_INSTEAD =
  'a browser cannot set request headers on a WebSocket: put a token in the URL (pass `url` as a function to refresh it on every attempt) or use a cookie.';
const NODE_ONLY = 'a browser decides this itself; it is an option of the Node client only.';

/** `new ReconnectingWebSocket(url, { ... })` of `switchyard/browser`. */
export const BROWSER_RECONNECTING_OPTIONS: OptionTable = {
  owner: 'ReconnectingWebSocket (switchyard/browser)',
  options: [
    {
      name: 'protocols',
      check: is.anyOf('string | string[]', is.string, is.arrayOf(is.string)),
      defaultText: 'none',
      meaning: 'subprotocols to offer (after `switchyard.resume.v1` with `resume`)',
    },
    {
      name: 'reconnect',
      check: is.bag('object', RECONNECT_OPTIONS, 'reconnect'),
      meaning:
        "backoff, retry rules and the offline queue's limits ([the table](#reconnectingwebsocket))",
    },
    {
      name: 'resume',
      check: is.boolean,
      default: false,
      meaning: 'speak the resume exchange ([resume.md](resume.md))',
    },
    {
      name: 'WebSocket',
      check: is.function,
      defaultText: '`globalThis.WebSocket`',
      meaning:
        'the WebSocket class to use: another with the WHATWG API (`BrowserWebSocket` on Node, a test double)',
    },
  ],
  insteadOf: {
    headers: HEADERS_INSTEAD,
    origin: "the browser sends the page's origin itself.",
    signal: 'call `close()` to stop the WebSocket and its reconnection.',
    ...Object.fromEntries(
      [
        'host',
        'handshakeTimeout',
        'followRedirects',
        'http2',
        'proxy',
        'tls',
        'maxHeaderBytes',
        'heartbeat',
        'perMessageDeflate',
        'maxPayload',
      ].map((name) => [name, NODE_ONLY]),
    ),
    textAsBuffer: 'set `binaryType`; text always arrives as a string.',
    logger: 'errors are `error` events; nothing is logged.',
  },
};
