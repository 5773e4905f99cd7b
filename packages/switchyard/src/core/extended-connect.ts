/**
 * WebSockets over HTTP/2 (RFC 8441): the extended CONNECT handshake, both sides, without I/O.
 *
 * Theory of operation. Over HTTP/2 the opening handshake is one request and one response on a
 * stream; the frames of RFC 6455 then travel in that stream's DATA frames, and END_STREAM and
 * RST_STREAM take the place of TCP's FIN and reset (RFC 8441 §5.1). What changes from HTTP/1.1
 * is only the head:
 * - the request is `:method CONNECT` with `:protocol websocket`, `:scheme`, `:path` and
 *   `:authority` (RFC 8441 §4); there is no Upgrade, no Connection (HTTP/2 forbids
 *   connection-specific fields, RFC 9113 §8.2.2) and no Sec-WebSocket-Key/Accept (RFC 8441 §5);
 * - Origin, Sec-WebSocket-Version, -Protocol and -Extensions mean what they mean in RFC 6455;
 * - the server accepts with a 2xx (we send 200) instead of 101, and rejects with any other
 *   status, which the client sees as a normal HTTP/2 response.
 * Headers here are the objects an HTTP/2 library gives and takes: lower-case names, pseudo-headers
 * included. {@link validateExtendedConnect} is the server's check, {@link formatAcceptHeaders}
 * its 200; {@link formatExtendedConnectRequest} and {@link validateExtendedConnectResponse} are
 * the client's. As in handshake.ts, the peer's mistakes are returned, never thrown; only a local
 * caller's mistake throws a LocalProtocolError.
 */

import { LocalProtocolError, RemoteProtocolError, UnexpectedResponseError } from './errors.js';
import type { ErrorCode } from './errors.js';
import {
  checkAcceptedOffers,
  readClientOffers,
  type HandshakeFailure,
  type ServerAcceptInfo,
} from './handshake.js';
import { isToken, joinHeaderValue, parseExtensionOffers } from './header-lists.js';
import type { ExtensionOffer } from './header-lists.js';
import { formatHeaderFields } from './upgrade.js';
import type { OutgoingHeaders } from './upgrade.js';

/**
 * The HTTP/2 setting that announces extended CONNECT: RFC 8441 §3, "SETTINGS_ENABLE_CONNECT_PROTOCOL
 * (0x8)". Node's http2 calls it `enableConnectProtocol`.
 */
export const SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8;

/** A header block as an HTTP/2 library gives it: lower-case names, pseudo-headers included. */
export type Http2Headers = Readonly<Record<string, string | string[] | number | undefined>>;

/** What a valid extended CONNECT asked for. */
export interface ExtendedConnectInfo {
  ok: true;
  /** `http` (a ws: URL) or `https` (a wss: URL), from `:scheme` (RFC 8441 §5). */
  scheme: 'http' | 'https';
  /** The target's authority, from `:authority` (or `host`, RFC 9113 §8.3.1). */
  authority: string;
  /** The path and query, from `:path`. */
  path: string;
  /** The subprotocols the client offered, in its order of preference (maybe empty). */
  protocols: string[];
  /** The extensions the client offered, in its order of preference (maybe empty). */
  extensions: ExtensionOffer[];
  /** The Origin header, when there was one. */
  origin: string | undefined;
  /** The protocol version, always 13. */
  version: 13;
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

/** One value of a single-valued field, or undefined when it is absent or repeated. */
function single(value: string | string[] | number | undefined): string | undefined {
  if (typeof value === 'number') return String(value);
  return typeof value === 'string' ? value : undefined;
}

/** Flattens one field for the header-list parsers (a number cannot occur in these fields). */
function listValue(value: string | string[] | number | undefined): string | string[] | undefined {
  return typeof value === 'number' ? String(value) : value;
}

/**
 * Whether a request is a WebSocket extended CONNECT: `:method CONNECT` with `:protocol
 * websocket` (RFC 8441 §5: the `:protocol` "MUST have a value of "websocket" to initiate a
 * WebSocket connection on an HTTP/2 stream"). A server routes only these streams to
 * {@link validateExtendedConnect}; every other stream is someone else's.
 */
export function isWebSocketConnect(headers: Http2Headers): boolean {
  const protocol = single(headers[':protocol']);
  return (
    single(headers[':method']) === 'CONNECT' &&
    protocol !== undefined &&
    protocol.toLowerCase() === 'websocket'
  );
}

/**
 * Checks an extended CONNECT request (RFC 8441 §4–5), in this order, stopping at the first
 * problem:
 *
 * | check | answer | code |
 * |---|---|---|
 * | `:method` is CONNECT | 405 with `Allow: CONNECT` | `SWITCHYARD_ERR_HANDSHAKE_METHOD` |
 * | `:protocol` is websocket | 400 | `SWITCHYARD_ERR_HANDSHAKE_PSEUDO_HEADER` |
 * | `:scheme` is http or https | 400 | `SWITCHYARD_ERR_HANDSHAKE_PSEUDO_HEADER` |
 * | `:path` is present and starts with `/` | 400 | `SWITCHYARD_ERR_HANDSHAKE_PSEUDO_HEADER` |
 * | `:authority` (or `host`) is present | 400 | `SWITCHYARD_ERR_HANDSHAKE_PSEUDO_HEADER` |
 * | Sec-WebSocket-Version is 13 | 400 with `Sec-WebSocket-Version: 13` | `SWITCHYARD_ERR_HANDSHAKE_VERSION` |
 * | the origin policy allows Origin | 403 | `SWITCHYARD_ERR_HANDSHAKE_ORIGIN` |
 * | Sec-WebSocket-Protocol is well-formed | 400 | `SWITCHYARD_ERR_HANDSHAKE_PROTOCOL` |
 * | Sec-WebSocket-Extensions is well-formed | 400 | `SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS` |
 *
 * Choices the RFC leaves open:
 * - A wrong version gets 400, not HTTP/1.1's 426: a 426 "MUST send an Upgrade header field"
 *   (RFC 9110 §15.5.22), and Upgrade is a connection-specific field that HTTP/2 forbids
 *   (RFC 9113 §8.2.2). RFC 6455 §4.4's own example of a version mismatch is a 400.
 * - A Sec-WebSocket-Key, if a client sends one anyway, is ignored (RFC 8441 §5).
 * - `:scheme` is not compared with the connection's TLS state: RFC 8441 §5 ties it to the
 *   WebSocket URI's scheme, and the server builds the URL it reports from it.
 *
 * @example
 * const result = validateExtendedConnect(headers);
 * if (!result.ok) stream.respond({ ':status': result.error.status, ...result.error.headers });
 */
export function validateExtendedConnect(
  headers: Http2Headers,
  options: { origin?: (origin: string | undefined) => boolean } = {},
): ExtendedConnectInfo | HandshakeFailure {
  const method = single(headers[':method']);
  if (method !== 'CONNECT') {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_METHOD',
      405,
      `A WebSocket over HTTP/2 is opened with CONNECT, not ${method ?? 'no method'} (RFC 8441 §4).`,
      { allow: 'CONNECT' },
    );
  }
  // RFC 8441 §5: "The :protocol pseudo-header field MUST be included in the CONNECT request,
  // and it MUST have a value of "websocket"".
  const protocol = single(headers[':protocol']);
  if (protocol === undefined || protocol.toLowerCase() !== 'websocket') {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_PSEUDO_HEADER',
      400,
      protocol === undefined
        ? 'The CONNECT request has no :protocol pseudo-header; a WebSocket needs ":protocol: websocket" (RFC 8441 §5).'
        : `The CONNECT request asks for :protocol ${JSON.stringify(protocol)}, not websocket (RFC 8441 §5).`,
    );
  }
  // RFC 8441 §4: "On requests that contain the :protocol pseudo-header field, the :scheme and
  // :path pseudo-header fields of the target URI ... MUST also be included." §5: the scheme
  // "MUST be "https" for "wss"-schemed WebSockets and "http" for "ws"-schemed WebSockets".
  const scheme = single(headers[':scheme']);
  if (scheme !== 'http' && scheme !== 'https') {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_PSEUDO_HEADER',
      400,
      scheme === undefined
        ? 'The extended CONNECT has no :scheme pseudo-header (RFC 8441 §4).'
        : `The extended CONNECT's :scheme is ${JSON.stringify(scheme)}; it must be http or https (RFC 8441 §5).`,
    );
  }
  const path = single(headers[':path']);
  if (path === undefined || !path.startsWith('/')) {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_PSEUDO_HEADER',
      400,
      path === undefined
        ? 'The extended CONNECT has no :path pseudo-header (RFC 8441 §4).'
        : `The extended CONNECT's :path ${JSON.stringify(path)} does not start with "/" (RFC 6455 §3).`,
    );
  }
  // RFC 8441 §4: ":authority ... is interpreted according to Section 8.1.2.3 of [RFC7540]",
  // the ordinary request rules, where Host may stand in for it (RFC 9113 §8.3.1).
  const authority = single(headers[':authority']) ?? single(headers['host']);
  if (authority === undefined || authority.length === 0) {
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_PSEUDO_HEADER',
      400,
      'The extended CONNECT has no :authority pseudo-header (RFC 8441 §4).',
    );
  }

  // RFC 8441 §5: "The Origin [RFC6454], Sec-WebSocket-Version, Sec-WebSocket-Protocol, and
  // Sec-WebSocket-Extensions header fields are used in the CONNECT request and response header
  // fields as defined in [RFC6455]."
  const version = single(headers['sec-websocket-version']);
  if (version !== '13') {
    const raw = headers['sec-websocket-version'];
    return reject(
      'SWITCHYARD_ERR_HANDSHAKE_VERSION',
      400,
      raw === undefined
        ? 'The request has no Sec-WebSocket-Version header; this server speaks version 13 (RFC 6455 §4.4).'
        : `Sec-WebSocket-Version ${JSON.stringify(joinHeaderValue(listValue(raw)))} is not supported; ` +
            'this server speaks version 13 (RFC 6455 §4.4).',
      { 'sec-websocket-version': '13' },
    );
  }

  // RFC 8441 §5: Origin, subprotocols and extensions as in HTTP/1.1 (RFC 6455 §4.2).
  const offers = readClientOffers(
    {
      origin: listValue(headers['origin']),
      'sec-websocket-protocol': listValue(headers['sec-websocket-protocol']),
      'sec-websocket-extensions': listValue(headers['sec-websocket-extensions']),
    },
    options,
  );
  if (!offers.ok) return offers;
  const { origin, protocols, extensions } = offers;
  return { ok: true, scheme, authority, path, protocols, extensions, origin, version: 13 };
}

/**
 * Fields that no HTTP/2 message may carry, RFC 9113 §8.2.2: "An endpoint MUST NOT generate an
 * HTTP/2 message containing connection-specific header fields", plus the ones the writers
 * below set themselves. The value is a hint on what to do instead.
 */
const CONNECTION_SPECIFIC: Readonly<Record<string, string>> = {
  connection: 'HTTP/2 forbids connection-specific fields (RFC 9113 §8.2.2).',
  'keep-alive': 'HTTP/2 forbids connection-specific fields (RFC 9113 §8.2.2).',
  'proxy-connection': 'HTTP/2 forbids connection-specific fields (RFC 9113 §8.2.2).',
  'transfer-encoding': 'HTTP/2 forbids connection-specific fields (RFC 9113 §8.2.2).',
  upgrade: 'HTTP/2 forbids connection-specific fields (RFC 9113 §8.2.2).',
  'sec-websocket-key': 'HTTP/2 WebSockets have no key (RFC 8441 §5).',
  'sec-websocket-accept': 'HTTP/2 WebSockets have no accept value (RFC 8441 §5).',
};

const ACCEPT_RESERVED: Readonly<Record<string, string>> = {
  ...CONNECTION_SPECIFIC,
  'sec-websocket-protocol': 'use the protocol option.',
  'sec-websocket-extensions': 'use the extensions option.',
  'sec-websocket-version': 'it belongs in a rejection, not an acceptance.',
  'content-length': 'the tunnel has no content length.',
};

/** Copies extra fields into `out` with lower-case names, after checking them. */
function addExtraFields(
  out: Record<string, string | string[]>,
  headers: OutgoingHeaders | undefined,
  reserved: Readonly<Record<string, string>>,
): void {
  if (headers === undefined) return;
  // Validates names and values (no CR, LF or NUL: they would corrupt the header block).
  formatHeaderFields(headers, reserved);
  for (const name of Object.keys(headers)) {
    if (name.startsWith(':')) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `Pseudo-header ${name} cannot be set here.`,
      );
    }
    const value = headers[name];
    // RFC 9113 §8.2: "field names MUST be converted to lowercase".
    out[name.toLowerCase()] = typeof value === 'string' ? value : [...value];
  }
}

/** Options of {@link formatAcceptHeaders}. */
export interface ExtendedConnectAcceptOptions {
  /** The chosen subprotocol; omitted or `null` for none. */
  protocol?: string | null;
  /** The negotiated extensions, already formatted (see `formatExtensions`). */
  extensions?: string;
  /** Extra fields (for example Set-Cookie); no connection-specific or handshake fields. */
  headers?: OutgoingHeaders;
}

/**
 * Builds the server's acceptance of an extended CONNECT: `:status 200` (RFC 8441 §5: the
 * WebSocket is open after "a successful response (i.e., a 2xx status code)"), then
 * Sec-WebSocket-Protocol and Sec-WebSocket-Extensions when given, then the extra fields.
 *
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` when the protocol is not a
 *   token, or an extra field is invalid, connection-specific, or one of the handshake's own.
 * @example
 * stream.respond(formatAcceptHeaders({ protocol: 'chat' }));
 */
export function formatAcceptHeaders(
  options: ExtendedConnectAcceptOptions = {},
): Record<string, string | string[] | number> {
  const { protocol, extensions, headers } = options;
  const out: Record<string, string | string[]> = {};
  if (protocol !== undefined && protocol !== null) {
    // RFC 6455 §4.2.2: the subprotocol is one token from the client's list.
    if (!isToken(protocol)) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `Subprotocol ${JSON.stringify(protocol)} is not a token (RFC 6455 §4.1).`,
      );
    }
    out['sec-websocket-protocol'] = protocol;
  }
  if (extensions !== undefined && extensions !== '') out['sec-websocket-extensions'] = extensions;
  addExtraFields(out, headers, ACCEPT_RESERVED);
  return { ':status': 200, ...out };
}

/**
 * Builds the headers of a rejection: `:status` and the extra fields, names lower-cased and
 * connection-specific ones dropped (they are meaningless in HTTP/2, and Node refuses them).
 * Used for the errors of {@link validateExtendedConnect} and for the application's rejections.
 *
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` when the status is not
 *   200–599 or a field is invalid.
 */
export function formatRejectHeaders(
  status: number,
  headers: OutgoingHeaders = {},
): Record<string, string | string[] | number> {
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_INVALID_ARGUMENT',
      `A rejection's status must be 200–599, got ${status}.`,
    );
  }
  const kept: Record<string, string | readonly string[]> = {};
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    if (lower === 'connection' || lower === 'upgrade' || lower === 'keep-alive') continue;
    if (lower === 'transfer-encoding' || lower === 'proxy-connection') continue;
    kept[name] = headers[name];
  }
  const out: Record<string, string | string[]> = {};
  addExtraFields(out, kept, {});
  return { ':status': status, ...out };
}

/** Whether text holds a space, a control char or DEL (none may appear in :authority or :path). */
function hasSpaceOrControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** Options of {@link formatExtendedConnectRequest}. */
export interface ExtendedConnectRequestOptions {
  /** `https` for a wss: URL, `http` for a ws: URL (RFC 8441 §5). */
  scheme: 'http' | 'https';
  /** The authority: the host, with `:port` when the port is not the scheme's default. */
  authority: string;
  /** The path and query, starting with `/` (RFC 6455 §3 /resource name/). */
  path: string;
  /** Subprotocols to offer, most preferred first; tokens, no duplicates. */
  protocols?: readonly string[];
  /** Extension offers, already formatted (see `formatExtensions`). */
  extensions?: string;
  /** The Origin to send. */
  origin?: string;
  /** Extra fields (for example Authorization); no connection-specific or handshake fields. */
  headers?: OutgoingHeaders;
}

const REQUEST_RESERVED: Readonly<Record<string, string>> = {
  ...CONNECTION_SPECIFIC,
  host: 'use the host option (of connect()) or the authority option (of formatExtendedConnectRequest()).',
  'sec-websocket-version': 'the version is always 13.',
  'sec-websocket-protocol': 'use the protocols option.',
  'sec-websocket-extensions': 'use the extensions option.',
  origin: 'use the origin option.',
  'content-length': 'the tunnel has no content length.',
};

/**
 * Builds the client's extended CONNECT (RFC 8441 §4–5): `:method CONNECT`, `:protocol
 * websocket`, `:scheme`, `:path`, `:authority`, `sec-websocket-version: 13`, then the
 * subprotocols, extensions and Origin when given, then the extra fields. A client may send it
 * only on a connection whose peer sent SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 §3).
 *
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` when the path does not start
 *   with `/`, the authority is empty, a subprotocol is not a token or repeats (RFC 6455 §4.1),
 *   the extensions are malformed, or an extra field is invalid or reserved.
 * @example
 * session.request(formatExtendedConnectRequest({ scheme: 'https', authority: 'example.com', path: '/chat' }));
 */
export function formatExtendedConnectRequest(
  options: ExtendedConnectRequestOptions,
): Record<string, string | string[]> {
  const { scheme, authority, path, protocols = [], extensions, origin, headers } = options;
  if (authority.length === 0 || hasSpaceOrControl(authority)) {
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_INVALID_ARGUMENT',
      `Authority ${JSON.stringify(authority)} must be non-empty, without whitespace or controls.`,
    );
  }
  if (!path.startsWith('/') || hasSpaceOrControl(path)) {
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_INVALID_ARGUMENT',
      `Path ${JSON.stringify(path)} must start with "/" and hold no whitespace or controls.`,
    );
  }
  const out: Record<string, string | string[]> = {
    ':method': 'CONNECT',
    ':protocol': 'websocket',
    ':scheme': scheme,
    ':path': path,
    ':authority': authority,
    'sec-websocket-version': '13',
  };
  // RFC 6455 §4.1 item 10: tokens, "MUST all be unique strings".
  for (let i = 0; i < protocols.length; i++) {
    const protocol = protocols[i];
    if (typeof protocol !== 'string' || !isToken(protocol) || protocols.indexOf(protocol) !== i) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `Subprotocol ${JSON.stringify(protocol)} is not a token or is listed twice (RFC 6455 §4.1).`,
      );
    }
  }
  if (protocols.length > 0) out['sec-websocket-protocol'] = protocols.join(', ');
  if (extensions !== undefined && extensions !== '') {
    const parsed = parseExtensionOffers(extensions);
    if (parsed === null || parsed.length === 0) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `Extensions ${JSON.stringify(extensions)} are not a valid Sec-WebSocket-Extensions value (RFC 6455 §9.1).`,
      );
    }
    out['sec-websocket-extensions'] = extensions;
  }
  if (origin !== undefined) {
    addExtraFields(out, { origin }, {});
  }
  addExtraFields(out, headers, REQUEST_RESERVED);
  return out;
}

/**
 * Checks the server's answer to an extended CONNECT. RFC 8441 §5: a 2xx opens the WebSocket;
 * anything else is an ordinary HTTP response, reported as an {@link UnexpectedResponseError}
 * with its status, headers and up to 1 KiB of `body`. Then, as RFC 6455 §4.1 requires of any
 * handshake, the subprotocol and extensions must be ones the client offered
 * (`SWITCHYARD_ERR_HANDSHAKE_PROTOCOL`, `SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS`).
 *
 * @example
 * const result = validateExtendedConnectResponse(headers, { protocols: ['chat'], extensionsOffered: [] });
 */
export function validateExtendedConnectResponse(
  headers: Http2Headers,
  offer: { protocols: readonly string[]; extensionsOffered: readonly string[] },
  body?: Uint8Array,
): ServerAcceptInfo | HandshakeFailure {
  const status = Number(headers[':status']);
  if (!(status >= 200 && status <= 299)) {
    const flat: Record<string, string> = {};
    for (const name of Object.keys(headers)) {
      const value = headers[name];
      if (value !== undefined && !name.startsWith(':'))
        flat[name] = joinHeaderValue(listValue(value));
    }
    return {
      ok: false,
      error: new UnexpectedResponseError(
        `The server answered the HTTP/2 extended CONNECT with ${status} instead of 200 (RFC 8441 §5).`,
        {
          statusCode: status,
          statusText: '',
          headers: flat,
          body: body === undefined ? undefined : body.subarray(0, 1024),
        },
      ),
    };
  }

  // RFC 8441 §5: extensions and subprotocol are negotiated as in HTTP/1.1 (RFC 6455 §4.1).
  return checkAcceptedOffers(
    {
      'sec-websocket-extensions': listValue(headers['sec-websocket-extensions']),
      'sec-websocket-protocol': listValue(headers['sec-websocket-protocol']),
    },
    offer,
  );
}
