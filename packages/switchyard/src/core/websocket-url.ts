/**
 * The URL a WebSocket client connects to, as every client of the library reads it: the Node
 * `connect()`, `BrowserWebSocket` and both `ReconnectingWebSocket` classes. Internal: not
 * exported by `switchyard/core`.
 */
import { LocalProtocolError } from './errors.js';

/**
 * Normalises a ws/wss/http/https URL (http and https become ws and wss, as the WHATWG
 * WebSocket constructor does); RFC 6455 §3 allows no fragment, so one is dropped. `base`
 * resolves a relative URL (a browser passes the page's address).
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` for an unreadable URL or
 *   another scheme.
 */
export function parseWebSocketUrl(input: string | URL, base?: string): URL {
  let url: URL;
  try {
    url = new URL(input, base);
  } catch {
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_INVALID_ARGUMENT',
      `Invalid URL: ${String(input)}`,
    );
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_INVALID_ARGUMENT',
      `The URL scheme must be ws: or wss: (or http:/https:), got ${url.protocol}`,
    );
  }
  url.hash = '';
  return url;
}
