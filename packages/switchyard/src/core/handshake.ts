/**
 * The WebSocket opening handshake (RFC 6455 §4), both sides, without I/O.
 *
 * Theory of operation:
 * - Server: {@link validateUpgradeRequest} checks a request (Node's `IncomingMessage` or our
 *   {@link RequestHead}) against RFC 6455 §4.2.1 in a fixed order and returns either what the
 *   client asked for or a RemoteProtocolError whose `status`, `headers` and message are the
 *   response to send (the message is the plain-text body a person will read).
 *   {@link selectSubprotocol} picks a subprotocol; {@link formatAcceptResponse} writes the 101.
 *   Extension negotiation (permessage-deflate) happens between the two, elsewhere.
 * - Client: {@link generateKey} and {@link formatClientRequest} write the request;
 *   {@link validateServerResponse} checks the answer against RFC 6455 §4.1's list of reasons
 *   to _Fail the WebSocket Connection_.
 * Peer mistakes are returned, never thrown; only a local caller's mistake throws a
 * LocalProtocolError.
 */

import { LocalProtocolError, RemoteProtocolError, UnexpectedResponseError } from './errors.js';
import type { ErrorCode } from './errors.js';
import {
  isToken,
  joinHeaderValue,
  parseExtensionOffers,
  parseSubprotocolList,
  parseTokenList,
  parseUpgradeList,
} from './header-lists.js';
import type { ExtensionOffer } from './header-lists.js';
import { computeAcceptKey, decodeBase64, encodeBase64 } from './sha1.js';
import {
  encodeLatin1,
  formatHeaderFields,
  formatSwitchingProtocols,
  isHttp11OrNewer,
} from './upgrade.js';
import type { OutgoingHeaders, UpgradeRequest } from './upgrade.js';

/** The only protocol version this library speaks (RFC 6455 §4.1: "The value of this header
 * field MUST be 13"). */
export const WEBSOCKET_VERSION = 13;

/** Options of {@link validateUpgradeRequest}. */
export interface ValidateUpgradeOptions {
  /**
   * Decides whether a request's Origin is allowed; `undefined` when the request had none
   * (non-browser clients usually send none). Default: every origin is allowed.
   * RFC 6455 §4.2.2: "If the server does not wish to accept this connection, it MUST return
   * an appropriate HTTP error code (e.g., 403 Forbidden)".
   */
  origin?: (origin: string | undefined) => boolean;
}

/** What a valid upgrade request asked for. */
export interface UpgradeRequestInfo {
  ok: true;
  /** The Sec-WebSocket-Key, as sent (it goes into Sec-WebSocket-Accept as is). */
  key: string;
  /** The subprotocols the client offered, in its order of preference (maybe empty). */
  protocols: string[];
  /** The extensions the client offered, in its order of preference (maybe empty). */
  extensions: ExtensionOffer[];
  /** The Origin header, when there was one. */
  origin: string | undefined;
  /** The protocol version, always 13. */
  version: 13;
}

/** Why an upgrade request or a server response was refused. */
export interface HandshakeFailure {
  ok: false;
  /** The violation; on the server side `status`, `headers` and `message` form the answer. */
  error: RemoteProtocolError;
}

function reject(
  code: ErrorCode,
  status: number,
  message: string,
  headers?: Record<string, string>,
): HandshakeFailure {
  return {
    ok: false,
    error: new RemoteProtocolError(code, message, headers ? { status, headers } : { status }),
  };
}

/**
 * Checks a client's opening handshake (RFC 6455 §4.2.1), in this order, stopping at the first
 * problem:
 *
 * | check | answer | code |
 * |---|---|---|
 * | method is GET | 405 with `Allow: GET` | `SWITCHYARD_ERR_HANDSHAKE_METHOD` |
 * | HTTP/1.1 or newer | 400 | `SWITCHYARD_ERR_HANDSHAKE_HTTP_VERSION` |
 * | one non-empty Host | 400 | `SWITCHYARD_ERR_HANDSHAKE_HOST` |
 * | an Upgrade field at all | 426 with `Upgrade: websocket` | `SWITCHYARD_ERR_UPGRADE_REQUIRED` |
 * | Upgrade lists websocket | 400 | `SWITCHYARD_ERR_HANDSHAKE_UPGRADE` |
 * | Connection lists upgrade | 400 | `SWITCHYARD_ERR_HANDSHAKE_CONNECTION` |
 * | one Sec-WebSocket-Key, base64 of 16 bytes | 400 | `SWITCHYARD_ERR_HANDSHAKE_KEY` |
 * | Sec-WebSocket-Version is 13 | 426 with `Sec-WebSocket-Version: 13` | `SWITCHYARD_ERR_HANDSHAKE_VERSION` |
 * | the origin policy allows Origin | 403 | `SWITCHYARD_ERR_HANDSHAKE_ORIGIN` |
 * | Sec-WebSocket-Protocol is well-formed | 400 | `SWITCHYARD_ERR_HANDSHAKE_PROTOCOL` |
 * | Sec-WebSocket-Extensions is well-formed | 400 | `SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS` |
 *
 * Choices the RFC leaves open:
 * - A method other than GET gets 405 (RFC 9110 §15.5.6: the origin server "MUST generate an
 *   Allow header field"), since the resource exists but only for GET.
 * - HTTP/1.0 gets 400, not 505: 505 refuses a major version (RFC 9110 §15.6.6), and the
 *   server speaks HTTP/1.x; an HTTP/1.0 request just cannot upgrade (RFC 9110 §7.8: "A server
 *   MUST ignore an Upgrade header field that is received in an HTTP/1.0 request").
 * - A request with no Upgrade field is an ordinary GET sent to a WebSocket-only endpoint, so
 *   it gets 426 (RFC 9110 §15.5.22: "The server MUST send an Upgrade header field in a 426
 *   response to indicate the required protocol(s)"). One that asks for another protocol is a
 *   bad WebSocket handshake, so 400.
 * - A missing Sec-WebSocket-Version is answered like a wrong one (426), which tells the client
 *   the version to use (RFC 6455 §4.4).
 *
 * @example
 * const result = validateUpgradeRequest(req, { origin: (o) => o === 'https://example.com' });
 * if (!result.ok) send(result.error.status, result.error.headers, result.error.message);
 */
export function validateUpgradeRequest(
  req: UpgradeRequest,
  options: ValidateUpgradeOptions = {},
): UpgradeRequestInfo | HandshakeFailure {
  const headers = req.headers;

  // RFC 6455 §4.1: "The method of the request MUST be GET, and the HTTP version MUST be at
  // least 1.1."
  if (req.method !== 'GET') {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_METHOD',
      405,
      `A WebSocket handshake must use GET, not ${req.method} (RFC 6455 §4.1).`,
      { Allow: 'GET' },
    );
  }
  if (!isHttp11OrNewer(req.httpVersion)) {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_HTTP_VERSION',
      400,
      `A WebSocket handshake needs HTTP/1.1 or newer, not HTTP/${req.httpVersion} (RFC 6455 §4.1).`,
    );
  }

  // RFC 6455 §4.2.1 item 2: "A |Host| header field containing the server's authority."
  const host = headers['host'];
  if (typeof host !== 'string' || host.length === 0) {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_HOST',
      400,
      host === undefined || host.length === 0
        ? 'The request has no Host header (RFC 6455 §4.2.1).'
        : 'The request has more than one Host header (RFC 9112 §3.2).',
    );
  }

  // RFC 6455 §4.2.1 item 3: "An |Upgrade| header field containing the value "websocket",
  // treated as an ASCII case-insensitive value."
  const upgradeHeader = headers['upgrade'];
  if (upgradeHeader === undefined) {
    return reject(
      'SWITCHYARD_ERR_UPGRADE_REQUIRED',
      426,
      'This endpoint only accepts WebSocket connections: the request needs ' +
        '"Upgrade: websocket" and "Connection: Upgrade" (RFC 6455 §4.1).',
      { Upgrade: 'websocket', Connection: 'Upgrade' },
    );
  }
  const upgrade = parseUpgradeList(upgradeHeader);
  if (upgrade === null) {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_UPGRADE',
      400,
      'The Upgrade header is not a valid list of protocols (RFC 9110 §7.8).',
    );
  }
  if (!upgrade.some((p) => p.name === 'websocket' && p.version === undefined)) {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_UPGRADE',
      400,
      'The Upgrade header does not list websocket (RFC 6455 §4.2.1).',
    );
  }

  // RFC 6455 §4.2.1 item 4: "A |Connection| header field that includes the token "Upgrade",
  // treated as an ASCII case-insensitive value."
  const connection = parseTokenList(headers['connection']);
  if (connection === null || !connection.includes('upgrade')) {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_CONNECTION',
      400,
      connection === null
        ? 'The Connection header is not a valid list of tokens (RFC 9110 §7.6.1).'
        : 'The Connection header does not list upgrade (RFC 6455 §4.2.1).',
    );
  }

  // RFC 6455 §4.2.1 item 5: "A |Sec-WebSocket-Key| header field with a base64-encoded (see
  // Section 4 of [RFC4648]) value that, when decoded, is 16 bytes in length." RFC 6455 §11.3.1:
  // it "MUST NOT appear more than once in an HTTP request". A repeated field arrives joined
  // with ", " (a comma is never base64) or as an array.
  const keyHeader = headers['sec-websocket-key'];
  if (keyHeader === undefined) {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_KEY',
      400,
      'The request has no Sec-WebSocket-Key header (RFC 6455 §4.2.1).',
    );
  }
  if (typeof keyHeader !== 'string' || keyHeader.includes(',')) {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_KEY',
      400,
      'The request has more than one Sec-WebSocket-Key header (RFC 6455 §11.3.1).',
    );
  }
  const keyBytes = decodeBase64(keyHeader);
  if (keyBytes === null || keyBytes.length !== 16) {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_KEY',
      400,
      keyBytes === null
        ? 'Sec-WebSocket-Key is not valid base64 (RFC 6455 §4.2.1).'
        : `Sec-WebSocket-Key decodes to ${keyBytes.length} bytes; it must be 16 (RFC 6455 §4.2.1).`,
    );
  }

  // RFC 6455 §4.2.1 item 6: "A |Sec-WebSocket-Version| header field, with a value of 13."
  // RFC 6455 §4.4: otherwise the server sends "an appropriate HTTP error code (such as 426
  // Upgrade Required) and a |Sec-WebSocket-Version| header field indicating the version(s)
  // the server is capable of understanding".
  const version = headers['sec-websocket-version'];
  if (version !== '13') {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_VERSION',
      426,
      version === undefined
        ? 'The request has no Sec-WebSocket-Version header; this server speaks version 13 (RFC 6455 §4.4).'
        : `Sec-WebSocket-Version ${JSON.stringify(joinHeaderValue(version))} is not supported; ` +
            'this server speaks version 13 (RFC 6455 §4.4).',
      { 'Sec-WebSocket-Version': '13', Upgrade: 'websocket', Connection: 'Upgrade' },
    );
  }

  const offers = readClientOffers(headers, options);
  if (!offers.ok) return offers;
  const { origin, protocols, extensions } = offers;
  return { ok: true, key: keyHeader, protocols, extensions, origin, version: 13 };
}

/**
 * The Origin policy, and the subprotocols and extensions a client offers, read the same way
 * for an HTTP/1.1 upgrade and an RFC 8441 extended CONNECT (§5: "as in HTTP/1.1").
 */
export function readClientOffers(
  headers: Readonly<Record<string, string | readonly string[] | undefined>>,
  options: { origin?: (origin: string | undefined) => boolean },
):
  | { ok: true; origin: string | undefined; protocols: string[]; extensions: ExtensionOffer[] }
  | HandshakeFailure {
  // RFC 6455 §4.2.2: "If the server does not wish to accept this connection, it MUST return
  // an appropriate HTTP error code (e.g., 403 Forbidden)"; §10.2: the origin model protects
  // against scripts on other sites.
  const originHeader = headers['origin'];
  const origin = originHeader === undefined ? undefined : joinHeaderValue(originHeader);
  if (options.origin !== undefined && !options.origin(origin)) {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_ORIGIN',
      403,
      origin === undefined
        ? 'This server only accepts WebSocket connections that send an Origin header.'
        : `The origin ${JSON.stringify(origin)} is not allowed to open WebSocket connections here.`,
    );
  }

  // RFC 6455 §4.2.1 item 8 and §4.1: the protocols are tokens, "MUST all be unique strings".
  // The field is `1#token` (RFC 6455 §11.3.4), so a present but empty field is malformed too.
  let protocols: string[] = [];
  const protocolHeader = headers['sec-websocket-protocol'];
  if (protocolHeader !== undefined) {
    const parsed = parseSubprotocolList(protocolHeader);
    if (parsed === null || parsed.length === 0) {
      return reject(
        'SWITCHYARD_ERR_HANDSHAKE_PROTOCOL',
        400,
        'Sec-WebSocket-Protocol must be a comma-separated list of unique tokens (RFC 6455 §4.1).',
      );
    }
    protocols = parsed;
  }

  // RFC 6455 §4.2.1 item 9 and §9.1 (`extension-list = 1#extension`).
  let extensions: ExtensionOffer[] = [];
  const extensionsHeader = headers['sec-websocket-extensions'];
  if (extensionsHeader !== undefined) {
    const parsed = parseExtensionOffers(extensionsHeader);
    if (parsed === null || parsed.length === 0) {
      return reject(
        'SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS',
        400,
        'Sec-WebSocket-Extensions is malformed (RFC 6455 §9.1).',
      );
    }
    extensions = parsed;
  }

  return { ok: true, origin, protocols, extensions };
}

/**
 * Chooses the subprotocol to answer with (RFC 6455 §4.2.2 /subprotocol/: "a single value
 * representing the subprotocol the server is ready to use ... The value chosen MUST be derived
 * from the client's handshake, specifically by selecting one of the values from the
 * |Sec-WebSocket-Protocol| field").
 *
 * @param offered the client's subprotocols (see {@link UpgradeRequestInfo.protocols}).
 * @param supported either our subprotocols, most preferred first (the first one the client
 *   offered wins: the server's preference decides), or a function that chooses; it returns
 *   `null` or `undefined` to choose none.
 * @returns the subprotocol, or `null` for none (the 101 then has no Sec-WebSocket-Protocol).
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` when the function returns a
 *   subprotocol the client did not offer.
 * @example
 * selectSubprotocol(['chat.v1', 'chat.v2'], ['chat.v2', 'chat.v1']); // 'chat.v2'
 */
export function selectSubprotocol(
  offered: readonly string[],
  supported: readonly string[] | ((offered: string[]) => string | null | undefined),
): string | null {
  if (typeof supported === 'function') {
    const chosen = supported([...offered]);
    if (chosen === null || chosen === undefined) return null;
    if (!offered.includes(chosen)) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `The subprotocol selector chose ${JSON.stringify(chosen)}, which the client did not ` +
          `offer (offered: ${offered.length === 0 ? 'none' : offered.join(', ')}); RFC 6455 ` +
          '§4.2.2 allows only one of the offered values.',
      );
    }
    return chosen;
  }
  for (const protocol of supported) {
    if (offered.includes(protocol)) return protocol;
  }
  return null;
}

// The fields formatAcceptResponse writes itself; the hint says what to use instead.
const ACCEPT_RESERVED: Readonly<Record<string, string>> = {
  upgrade: 'the 101 always carries "Upgrade: websocket".',
  connection: 'the 101 always carries "Connection: Upgrade".',
  'sec-websocket-accept': 'it is computed from the key.',
  'sec-websocket-protocol': 'use the protocol option.',
  'sec-websocket-extensions': 'use the extensions option.',
  'sec-websocket-version': 'it belongs in a 426 rejection, not a 101.',
  'content-length': 'a 1xx response has no content (RFC 9110 §8.6).',
  'transfer-encoding': 'a 1xx response has no content (RFC 9112 §6.1).',
};

/** Options of {@link formatAcceptResponse}. */
export interface AcceptResponseOptions {
  /** The client's Sec-WebSocket-Key, as sent. */
  key: string;
  /** The chosen subprotocol; omitted or `null` for none. */
  protocol?: string | null;
  /** The negotiated extensions, already formatted (see `formatExtensions`). */
  extensions?: string;
  /** Extra fields (for example Set-Cookie); the handshake fields may not be among them. */
  headers?: OutgoingHeaders;
}

/**
 * Builds the server's 101 response (RFC 6455 §4.2.2 step 5): the status line, `Upgrade:
 * websocket`, `Connection: Upgrade`, `Sec-WebSocket-Accept`, then Sec-WebSocket-Protocol and
 * Sec-WebSocket-Extensions when given, then the extra fields.
 *
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` when the protocol is not a
 *   token, the extensions value or an extra field is invalid, or an extra field is one of the
 *   handshake's own.
 * @example
 * formatAcceptResponse({ key: 'dGhlIHNhbXBsZSBub25jZQ==', protocol: 'chat' });
 */
export function formatAcceptResponse(options: AcceptResponseOptions): Uint8Array {
  const { key, protocol, extensions, headers } = options;
  // Validates the extra fields, and rejects the ones this function writes.
  formatHeaderFields(headers, ACCEPT_RESERVED);
  const fields: Record<string, string | readonly string[]> = {
    'Sec-WebSocket-Accept': computeAcceptKey(key),
  };
  if (protocol !== undefined && protocol !== null) {
    // RFC 6455 §4.2.2: the subprotocol is one token from the client's list.
    if (!isToken(protocol)) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `Subprotocol ${JSON.stringify(protocol)} is not a token (RFC 6455 §4.1).`,
      );
    }
    fields['Sec-WebSocket-Protocol'] = protocol;
  }
  if (extensions !== undefined && extensions !== '') {
    fields['Sec-WebSocket-Extensions'] = extensions;
  }
  if (headers !== undefined) Object.assign(fields, headers);
  return encodeLatin1(formatSwitchingProtocols('websocket', fields));
}

/**
 * Generates a Sec-WebSocket-Key: RFC 6455 §4.1 item 7, "a nonce consisting of a randomly
 * selected 16-byte value that has been base64-encoded", which "MUST be selected randomly for
 * each connection".
 *
 * @example
 * generateKey(); // for example 'x3JJHMbDL1EzLkh9GBhXDw=='
 */
export function generateKey(): string {
  return encodeBase64(crypto.getRandomValues(new Uint8Array(16)));
}

/** Options of {@link formatClientRequest}. */
export interface ClientRequestOptions {
  /** The Host value: the host, with `:port` when the port is not the scheme's default. */
  host: string;
  /** The request-target: the path and query, starting with `/` (RFC 6455 §3 /resource name/). */
  path: string;
  /** The Sec-WebSocket-Key, from {@link generateKey}. */
  key: string;
  /** Subprotocols to offer, most preferred first; tokens, no duplicates. */
  protocols?: readonly string[];
  /** Extension offers, already formatted (see `formatExtensions`). */
  extensions?: string;
  /** The Origin to send (browsers send one; other clients may). */
  origin?: string;
  /** Extra fields (for example Authorization); the handshake fields may not be among them. */
  headers?: OutgoingHeaders;
}

// The fields formatClientRequest writes itself; the hint says what to use instead.
const CLIENT_RESERVED: Readonly<Record<string, string>> = {
  host: 'use the host option (of connect() or formatClientRequest()).',
  upgrade: 'the request always carries "Upgrade: websocket".',
  connection: 'the request always carries "Connection: Upgrade".',
  'sec-websocket-key':
    'connect() makes a new key for each request (formatClientRequest(): the key option).',
  'sec-websocket-version': 'the version is always 13.',
  'sec-websocket-accept': 'it belongs in the response.',
  'sec-websocket-protocol': 'use the protocols option.',
  'sec-websocket-extensions':
    'use perMessageDeflate (connect()) or the extensions option (formatClientRequest()).',
  origin: 'use the origin option.',
  'content-length': 'the handshake request has no body.',
  'transfer-encoding': 'the handshake request has no body.',
};

function invalidArgument(message: string): LocalProtocolError {
  return new LocalProtocolError('SWITCHYARD_ERR_INVALID_ARGUMENT', message);
}

function isVisibleAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

/**
 * Builds the client's opening handshake (RFC 6455 §4.1): `GET <path> HTTP/1.1`, Host,
 * `Upgrade: websocket`, `Connection: Upgrade`, Sec-WebSocket-Key, `Sec-WebSocket-Version:
 * 13`, then Sec-WebSocket-Protocol, Sec-WebSocket-Extensions and Origin when given, then the
 * extra fields.
 *
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` when the host or path is
 *   empty or holds whitespace, controls or non-ASCII chars (percent-encode the path first),
 *   the key is not base64 of 16 bytes, a subprotocol is not a token or repeats (RFC 6455
 *   §4.1), the extensions are malformed (RFC 6455 §9.1), or an extra field is invalid or one
 *   of the handshake's own.
 * @example
 * formatClientRequest({ host: 'example.com', path: '/chat', key: generateKey(), protocols: ['chat'] });
 */
export function formatClientRequest(options: ClientRequestOptions): Uint8Array {
  const { host, path, key, protocols = [], extensions, origin, headers } = options;
  if (host.length === 0 || !isVisibleAscii(host)) {
    throw invalidArgument(`Host ${JSON.stringify(host)} must be non-empty visible ASCII.`);
  }
  // RFC 6455 §4.1 item 3: the request-target is the /resource name/, "/" plus path and query.
  if (!path.startsWith('/') || !isVisibleAscii(path)) {
    throw invalidArgument(
      `Path ${JSON.stringify(path)} must start with "/" and hold only visible ASCII ` +
        '(percent-encode anything else, RFC 3986 §2.1).',
    );
  }
  const keyBytes = decodeBase64(key);
  if (keyBytes === null || keyBytes.length !== 16) {
    throw invalidArgument(
      `Key ${JSON.stringify(key)} is not the base64 of 16 bytes (RFC 6455 §4.1); use generateKey().`,
    );
  }
  // RFC 6455 §4.1 item 10: the values "MUST be non-empty strings with characters in the range
  // U+0021 to U+007E not including separator characters ... and MUST all be unique strings".
  for (let i = 0; i < protocols.length; i++) {
    const protocol = protocols[i];
    if (typeof protocol !== 'string' || !isToken(protocol)) {
      throw invalidArgument(
        `Subprotocol ${JSON.stringify(protocol)} is not a token (RFC 6455 §4.1).`,
      );
    }
    if (protocols.indexOf(protocol) !== i) {
      throw invalidArgument(
        `Subprotocol ${JSON.stringify(protocol)} is listed twice (RFC 6455 §4.1).`,
      );
    }
  }
  const fields: Record<string, string | readonly string[]> = {};
  if (protocols.length > 0) fields['Sec-WebSocket-Protocol'] = protocols.join(', ');
  if (extensions !== undefined && extensions !== '') {
    const parsed = parseExtensionOffers(extensions);
    if (parsed === null || parsed.length === 0) {
      throw invalidArgument(
        `Extensions ${JSON.stringify(extensions)} are not a valid Sec-WebSocket-Extensions value (RFC 6455 §9.1).`,
      );
    }
    fields['Sec-WebSocket-Extensions'] = extensions;
  }
  if (origin !== undefined) fields['Origin'] = origin;
  const head =
    'GET ' +
    path +
    ' HTTP/1.1\r\nHost: ' +
    host +
    '\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ' +
    key +
    '\r\nSec-WebSocket-Version: 13\r\n' +
    formatHeaderFields(fields) +
    formatHeaderFields(headers, CLIENT_RESERVED) +
    '\r\n';
  return encodeLatin1(head);
}

/** A response head as the client sees it: our {@link ResponseHead}, or Node's, adapted. */
export interface UpgradeResponse {
  /** The status code. */
  statusCode: number;
  /** The reason phrase (Node calls it `statusMessage`). */
  statusText?: string;
  /** The header fields, names in lower case. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** What the client offered, to check the server's answer against. */
export interface ClientOffer {
  /** The Sec-WebSocket-Key that was sent. */
  key: string;
  /** The subprotocols that were offered (maybe none). */
  protocols: readonly string[];
  /** The names of the extensions that were offered (maybe none). */
  extensionsOffered: readonly string[];
}

/** What a valid server response agreed to. */
export interface ServerAcceptInfo {
  ok: true;
  /** The subprotocol the server chose, or `''` when it chose none. */
  protocol: string;
  /** The extensions the server accepted, with their parameters. */
  extensions: ExtensionOffer[];
}

function fail(code: ErrorCode, message: string): HandshakeFailure {
  return { ok: false, error: new RemoteProtocolError(code, message) };
}

/** Flattens header values for {@link UnexpectedResponseError}: arrays joined with ", ". */
function flattenHeaders(
  headers: Readonly<Record<string, string | string[] | undefined>>,
): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value !== undefined) out[name] = joinHeaderValue(value);
  }
  return out;
}

/**
 * Checks the server's answer to our opening handshake, following RFC 6455 §4.1's list of
 * cases where the client "MUST _Fail the WebSocket Connection_", in its order.
 *
 * Errors carry no `status` (the client answers nobody); codes:
 * - not 101: an {@link UnexpectedResponseError} (`SWITCHYARD_ERR_HANDSHAKE_STATUS`) with the
 *   status, the headers and up to 1 KiB of `body` when the caller read some;
 * - `SWITCHYARD_ERR_HANDSHAKE_UPGRADE`, `_CONNECTION`, `_ACCEPT`, `_EXTENSIONS`, `_PROTOCOL`.
 *
 * @param body the first bytes of the response body, for the error of a non-101 answer.
 * @example
 * const result = validateServerResponse(head, { key, protocols: ['chat'], extensionsOffered: [] });
 * if (result.ok) open(result.protocol, result.extensions);
 */
export function validateServerResponse(
  res: UpgradeResponse,
  expect: ClientOffer,
  body?: Uint8Array,
): ServerAcceptInfo | HandshakeFailure {
  const headers = res.headers;

  // RFC 6455 §4.1: "If the status code received from the server is not 101, the client
  // handles the response per HTTP [RFC2616] procedures" (a redirect, authentication ...);
  // the caller does that with what the error carries.
  if (res.statusCode !== 101) {
    const statusText = res.statusText ?? '';
    return {
      ok: false,
      error: new UnexpectedResponseError(
        `The server answered ${res.statusCode}${statusText ? ' ' + statusText : ''} instead of ` +
          '101 Switching Protocols.',
        {
          statusCode: res.statusCode,
          statusText,
          headers: flattenHeaders(headers),
          body: body === undefined ? undefined : body.subarray(0, 1024),
        },
      ),
    };
  }

  // RFC 6455 §4.1: fail "If the response lacks an |Upgrade| header field or the |Upgrade|
  // header field contains a value that is not an ASCII case-insensitive match for the value
  // "websocket"".
  const upgrade = parseUpgradeList(headers['upgrade']);
  if (
    upgrade === null ||
    upgrade.length !== 1 ||
    upgrade[0].name !== 'websocket' ||
    upgrade[0].version !== undefined
  ) {
    return fail(
      'SWITCHYARD_ERR_HANDSHAKE_UPGRADE',
      headers['upgrade'] === undefined
        ? 'The server switched protocols without an Upgrade header (RFC 6455 §4.1).'
        : `The server switched to ${JSON.stringify(joinHeaderValue(headers['upgrade']))}, not websocket (RFC 6455 §4.1).`,
    );
  }

  // RFC 6455 §4.1: fail "If the response lacks a |Connection| header field or the
  // |Connection| header field doesn't contain a token that is an ASCII case-insensitive match
  // for the value "Upgrade"".
  const connection = parseTokenList(headers['connection']);
  if (connection === null || !connection.includes('upgrade')) {
    return fail(
      'SWITCHYARD_ERR_HANDSHAKE_CONNECTION',
      'The server response has no "Connection: Upgrade" (RFC 6455 §4.1).',
    );
  }

  // RFC 6455 §4.1: fail if Sec-WebSocket-Accept is missing or "contains a value other than
  // the base64-encoded SHA-1 of the concatenation of the |Sec-WebSocket-Key| ... with the
  // string "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" but ignoring any leading and trailing
  // whitespace".
  const accept = headers['sec-websocket-accept'];
  if (typeof accept !== 'string' || accept.trim() !== computeAcceptKey(expect.key)) {
    return fail(
      'SWITCHYARD_ERR_HANDSHAKE_ACCEPT',
      accept === undefined
        ? 'The server response has no Sec-WebSocket-Accept header (RFC 6455 §4.1).'
        : 'Sec-WebSocket-Accept does not match the key that was sent (RFC 6455 §4.1).',
    );
  }

  return checkAcceptedOffers(headers, expect);
}

/**
 * RFC 6455 §4.1: the extensions and the subprotocol a server accepted must be among those the
 * client offered, each at most once. Shared by the HTTP/1.1 101 and the RFC 8441 200 (where the
 * same headers carry the same meaning, §5).
 */
export function checkAcceptedOffers(
  headers: Readonly<Record<string, string | readonly string[] | undefined>>,
  expect: { readonly protocols: readonly string[]; readonly extensionsOffered: readonly string[] },
): { ok: true; protocol: string; extensions: ExtensionOffer[] } | HandshakeFailure {
  // RFC 6455 §4.1: fail if the response "indicates the use of an extension that was not
  // present in the client's handshake". The same extension twice cannot be in use twice.
  let extensions: ExtensionOffer[] = [];
  const extensionsHeader = headers['sec-websocket-extensions'];
  if (extensionsHeader !== undefined) {
    const parsed = parseExtensionOffers(extensionsHeader);
    if (parsed === null || parsed.length === 0) {
      return fail(
        'SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS',
        'The server sent a malformed Sec-WebSocket-Extensions header (RFC 6455 §9.1).',
      );
    }
    const seen = new Set<string>();
    for (const extension of parsed) {
      if (!expect.extensionsOffered.includes(extension.name)) {
        return fail(
          'SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS',
          `The server accepted extension ${extension.name}, which was not offered (RFC 6455 §4.1).`,
        );
      }
      if (seen.has(extension.name)) {
        return fail(
          'SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS',
          `The server accepted extension ${extension.name} more than once.`,
        );
      }
      seen.add(extension.name);
    }
    extensions = parsed;
  }

  // RFC 6455 §4.1: fail if the response "indicates the use of a subprotocol that was not
  // present in the client's handshake". §4.2.2: the server answers with "a single value".
  let protocol = '';
  const protocolHeader = headers['sec-websocket-protocol'];
  if (protocolHeader !== undefined) {
    if (typeof protocolHeader !== 'string' || !isToken(protocolHeader)) {
      return fail(
        'SWITCHYARD_ERR_HANDSHAKE_PROTOCOL',
        'The server sent a Sec-WebSocket-Protocol that is not a single token (RFC 6455 §4.2.2).',
      );
    }
    if (!expect.protocols.includes(protocolHeader)) {
      return fail(
        'SWITCHYARD_ERR_HANDSHAKE_PROTOCOL',
        expect.protocols.length === 0
          ? `The server chose subprotocol ${protocolHeader} though none was offered (RFC 6455 §4.1).`
          : `The server chose subprotocol ${protocolHeader}, which was not offered (RFC 6455 §4.1).`,
      );
    }
    protocol = protocolHeader;
  }

  return { ok: true, protocol, extensions };
}
