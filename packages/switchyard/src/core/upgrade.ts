/**
 * HTTP/1.1 protocol upgrade (RFC 9110 §7.8), independent of WebSocket, and the writers of
 * the few HTTP responses the library sends itself.
 *
 * Theory of operation: `negotiateUpgrade` reads a request (a Node `IncomingMessage` or a
 * {@link RequestHead}, which share the {@link UpgradeRequest} shape) and says which of our
 * protocols to switch to, or why none. The writers build response heads as strings and
 * bytes; every header name and value they write is validated, because a CR or LF in a value
 * taken from user code would let it inject header lines or a whole response (response
 * splitting). Such a value is a local bug, so it throws a LocalProtocolError.
 */

import { LocalProtocolError } from './errors.js';
import { isToken, parseTokenList, parseUpgradeList } from './header-lists.js';
import type { UpgradeProtocol } from './header-lists.js';

/**
 * A request that may ask for an upgrade: what both Node's `http.IncomingMessage` and
 * {@link RequestHead} give (lower-case header names).
 */
export interface UpgradeRequest {
  /** The request method, for example `GET`. */
  method: string;
  /** The HTTP version as `major.minor`, for example `1.1`. */
  httpVersion: string;
  /** The request-target (path and query). */
  url: string;
  /** The header fields, names in lower case. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Why {@link negotiateUpgrade} found no protocol to switch to. */
export type UpgradeFailure =
  /** The request asked for no upgrade: no Upgrade field, or Connection did not list it. */
  | 'not-requested'
  /** The request was HTTP/1.0 or older, where Upgrade is ignored. */
  | 'http-version'
  /** The Upgrade or Connection field was not a valid list. */
  | 'malformed'
  /** The client offered only protocols that we do not support. */
  | 'unsupported';

/** The outcome of {@link negotiateUpgrade}. */
export type UpgradeNegotiation =
  | {
      /** The chosen protocol's name, lower-cased. */
      protocol: string;
      /** The chosen protocol's version, as the client sent it. */
      version?: string;
      /** Every protocol the client offered, in its order. */
      offered: UpgradeProtocol[];
    }
  | {
      protocol: null;
      /** Why no protocol was chosen. */
      reason: UpgradeFailure;
      /** Every protocol the client offered, in its order (empty when it offered none). */
      offered: UpgradeProtocol[];
    };

/** Header fields to write: a value array writes one field line per element. */
export type OutgoingHeaders = Readonly<Record<string, string | readonly string[]>>;

/**
 * Compares an HTTP version string (`major.minor`) with 1.1.
 *
 * @returns whether `version` is 1.1 or newer; `false` when it is not `digits.digits`.
 */
export function isHttp11OrNewer(version: string): boolean {
  const dot = version.indexOf('.');
  if (dot <= 0 || dot === version.length - 1) return false;
  for (let i = 0; i < version.length; i++) {
    const c = version.charCodeAt(i);
    if (i !== dot && (c < 0x30 || c > 0x39)) return false;
  }
  const major = Number(version.slice(0, dot));
  const minor = Number(version.slice(dot + 1));
  return major > 1 || (major === 1 && minor >= 1);
}

/**
 * Chooses the protocol to switch to for a request that asks for an upgrade.
 *
 * RFC 9110 §7.8 rules applied here:
 * - "A server MUST ignore an Upgrade header field that is received in an HTTP/1.0 request."
 * - The sender of Upgrade "MUST also send a Connection header field ... that contains the
 *   'upgrade' connection option", so an Upgrade field whose Connection does not list it is
 *   stale (an intermediary forwarded a hop-by-hop field) and is ignored.
 * - "A server MUST NOT switch to a protocol that was not indicated by the client."
 * - The client lists protocols "in order of descending preference"; we take the first one
 *   in the client's order that we support. Names compare case-insensitively.
 *
 * @param supported our protocols: `name` accepts any version (or none), `name/version`
 *   accepts exactly that version.
 * @example
 * negotiateUpgrade(req, ['websocket']);
 * // { protocol: 'websocket', offered: [{ name: 'websocket' }] }
 */
export function negotiateUpgrade(
  req: UpgradeRequest,
  supported: readonly string[],
): UpgradeNegotiation {
  const upgrade = req.headers['upgrade'];
  if (upgrade === undefined) return { protocol: null, reason: 'not-requested', offered: [] };
  if (!isHttp11OrNewer(req.httpVersion)) {
    return { protocol: null, reason: 'http-version', offered: parseUpgradeList(upgrade) ?? [] };
  }
  const offered = parseUpgradeList(upgrade);
  if (offered === null) return { protocol: null, reason: 'malformed', offered: [] };
  const connection = parseTokenList(req.headers['connection']);
  if (connection === null) return { protocol: null, reason: 'malformed', offered };
  if (!connection.includes('upgrade') || offered.length === 0) {
    return { protocol: null, reason: 'not-requested', offered };
  }
  const wanted = parseSupported(supported);
  for (const protocol of offered) {
    for (const entry of wanted) {
      if (entry.name !== protocol.name) continue;
      if (entry.version !== undefined && entry.version !== protocol.version) continue;
      return protocol.version === undefined
        ? { protocol: protocol.name, offered }
        : { protocol: protocol.name, version: protocol.version, offered };
    }
  }
  return { protocol: null, reason: 'unsupported', offered };
}

/**
 * Parses one protocol as we write it: exactly `name` or `name/version`, both tokens
 * (RFC 9110 §7.8), with nothing around them.
 *
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` when it is not.
 */
function parseProtocol(text: string): UpgradeProtocol {
  const slash = text.indexOf('/');
  const name = slash < 0 ? text : text.slice(0, slash);
  const version = slash < 0 ? undefined : text.slice(slash + 1);
  if (!isToken(name) || (version !== undefined && !isToken(version))) {
    throw invalid(
      `Protocol ${JSON.stringify(text)} is not "name" or "name/version" (RFC 9110 §7.8).`,
    );
  }
  const lower = name.toLowerCase();
  return version === undefined ? { name: lower } : { name: lower, version };
}

function parseSupported(supported: readonly string[]): UpgradeProtocol[] {
  return supported.map(parseProtocol);
}

/** Reason phrases for the statuses the library sends (RFC 9110 §15). */
const REASON_PHRASES: Readonly<Record<number, string>> = {
  101: 'Switching Protocols',
  200: 'OK',
  204: 'No Content',
  301: 'Moved Permanently',
  302: 'Found',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  505: 'HTTP Version Not Supported',
};

/**
 * The reason phrase for a status: the RFC 9110 §15 phrase, or an empty string for a status
 * we have no phrase for (RFC 9112 §4: the reason phrase may be empty).
 */
export function reasonPhrase(status: number): string {
  return REASON_PHRASES[status] ?? '';
}

function invalid(message: string): LocalProtocolError {
  return new LocalProtocolError('SWITCHYARD_ERR_INVALID_ARGUMENT', message);
}

// field-value chars we write: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5). Anything above
// 0xff cannot be sent as one byte.
function assertFieldValue(name: string, value: string): void {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) {
      throw invalid(
        `Header ${name} has an invalid character (code ${c}) in its value: CR, LF and other ` +
          'controls would break the HTTP head (RFC 9110 §5.5).',
      );
    }
  }
}

/**
 * Writes header fields as `Name: value\r\n` lines, after checking them.
 *
 * @param reserved lower-case names the caller may not set, because the writer sets them,
 *   mapped to a hint on what to do instead.
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` when a name is not a token
 *   (RFC 9110 §5.1), a value holds a control character, or a name is reserved.
 */
export function formatHeaderFields(
  headers: OutgoingHeaders | undefined,
  reserved: Readonly<Record<string, string>> = {},
): string {
  if (headers === undefined) return '';
  let out = '';
  for (const name of Object.keys(headers)) {
    if (!isToken(name)) {
      throw invalid(`Header name ${JSON.stringify(name)} is not a token (RFC 9110 §5.1).`);
    }
    const hint = reserved[name.toLowerCase()];
    if (hint !== undefined) throw invalid(`Header ${name} cannot be set here: ${hint}`);
    const value: unknown = headers[name];
    const values = typeof value === 'string' ? [value] : Array.isArray(value) ? value : null;
    if (values === null) throw invalid(`Header ${name} must have a string or string[] value.`);
    for (const v of values as unknown[]) {
      if (typeof v !== 'string') {
        throw invalid(`Header ${name} must have a string or string[] value.`);
      }
      assertFieldValue(name, v);
      out += name + ': ' + v + '\r\n';
    }
  }
  return out;
}

/**
 * Encodes an HTTP head string as bytes, one byte per char (latin1), which is how HTTP/1.1
 * carries field values (RFC 9110 §5.5). The writers here only produce chars up to 0xff.
 */
export function encodeLatin1(text: string): Uint8Array {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

// The caller may not set the fields that make the response's framing and upgrade.
const SWITCHING_RESERVED: Readonly<Record<string, string>> = {
  upgrade: 'it is set from the protocol argument.',
  connection: 'a 101 always carries "Connection: Upgrade".',
  'content-length': 'a 1xx response has no content (RFC 9110 §8.6).',
  'transfer-encoding': 'a 1xx response has no content (RFC 9112 §6.1).',
};

/**
 * Builds the head of a 101 (Switching Protocols) response.
 *
 * RFC 9110 §7.8: "A server that sends a 101 (Switching Protocols) response MUST send an
 * Upgrade header field to indicate the new protocol(s) to which the connection is being
 * switched", and Upgrade always travels with "Connection: upgrade".
 *
 * @param protocol the protocol switched to, `name` or `name/version`.
 * @param headers extra fields (for example Sec-WebSocket-Accept); Upgrade, Connection,
 *   Content-Length and Transfer-Encoding may not be among them.
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` for an invalid protocol or
 *   header.
 * @example
 * formatSwitchingProtocols('websocket', { 'Sec-WebSocket-Accept': accept });
 * // 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n...\r\n\r\n'
 */
export function formatSwitchingProtocols(protocol: string, headers?: OutgoingHeaders): string {
  parseProtocol(protocol);
  return (
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: ' +
    protocol +
    '\r\nConnection: Upgrade\r\n' +
    formatHeaderFields(headers, SWITCHING_RESERVED) +
    '\r\n'
  );
}

// Content framing is computed from the body, so the caller may not set it.
const RESPONSE_RESERVED: Readonly<Record<string, string>> = {
  'content-length': 'it is computed from the body.',
  'transfer-encoding': 'the body is sent whole, with Content-Length.',
};

/**
 * Builds a whole HTTP/1.1 response that ends the connection: a handshake rejection, a 426,
 * a small page.
 *
 * Adds `Content-Length` (always), `Content-Type: text/plain; charset=utf-8` when the body is
 * a string and the caller gave no Content-Type, and `Connection: close`, because after
 * refusing an upgrade the server closes the connection rather than read what the client
 * might send next. When the caller passes its own Connection (a 426 carries "Connection:
 * Upgrade", RFC 9110 §7.8), "close" is appended to it.
 *
 * @param status a status from 200 to 599 (1xx responses have no body; use
 *   {@link formatSwitchingProtocols} for 101).
 * @param reason the reason phrase; default: the RFC 9110 §15 phrase.
 * @param body a string (sent as UTF-8) or bytes.
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` for an invalid status,
 *   reason or header, or a Content-Length or Transfer-Encoding header.
 * @example
 * formatResponse(404, undefined, {}, 'No WebSocket endpoint at /chat.\n');
 */
export function formatResponse(
  status: number,
  reason: string | undefined,
  headers: OutgoingHeaders,
  body: string | Uint8Array,
): Uint8Array {
  if (!Number.isInteger(status) || status < 200 || status > 599) {
    throw invalid(`Status ${status} is not an integer from 200 to 599.`);
  }
  const phrase = reason ?? reasonPhrase(status);
  assertFieldValue('reason phrase', phrase);
  let contentType: string | undefined =
    typeof body === 'string' ? 'text/plain; charset=utf-8' : undefined;
  let connection = 'close';
  const rest: Record<string, string | readonly string[]> = {};
  for (const name of Object.keys(headers)) {
    const lower = name.toLowerCase();
    const value = headers[name];
    if (lower === 'content-type') contentType = undefined;
    if (lower === 'connection') {
      const joined =
        typeof value === 'string' ? value : Array.isArray(value) ? value.join(', ') : '';
      const options = parseTokenList(joined);
      if (options === null || options.length === 0) {
        throw invalid(`Header Connection ${JSON.stringify(joined)} is not a list of tokens.`);
      }
      connection = options.includes('close') ? joined : joined + ', close';
      continue;
    }
    rest[name] = value;
  }
  const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
  const head =
    'HTTP/1.1 ' +
    status +
    ' ' +
    phrase +
    '\r\n' +
    formatHeaderFields(rest, RESPONSE_RESERVED) +
    (contentType === undefined ? '' : 'Content-Type: ' + contentType + '\r\n') +
    'Content-Length: ' +
    bytes.length +
    '\r\nConnection: ' +
    connection +
    '\r\n\r\n';
  const out = new Uint8Array(head.length + bytes.length);
  for (let i = 0; i < head.length; i++) out[i] = head.charCodeAt(i);
  out.set(bytes, head.length);
  return out;
}

/**
 * Builds a 426 (Upgrade Required) response listing the protocols we accept.
 *
 * RFC 9110 §15.5.22: "The server MUST send an Upgrade header field in a 426 response to
 * indicate the required protocol(s)", and RFC 9110 §7.8: a 426 lists them "in order of
 * descending preference", with "Connection: upgrade".
 *
 * @param supported our protocols, most preferred first (`name` or `name/version`).
 * @param body the text shown to whoever sent the request; default: a sentence naming them.
 * @example
 * formatUpgradeRequired(['websocket']);
 * // HTTP/1.1 426 Upgrade Required, Upgrade: websocket, Connection: Upgrade, close
 */
export function formatUpgradeRequired(
  supported: readonly string[],
  body?: string | Uint8Array,
): Uint8Array {
  if (supported.length === 0) throw invalid('A 426 response must list at least one protocol.');
  parseSupported(supported);
  const list = supported.join(', ');
  return formatResponse(
    426,
    undefined,
    { Upgrade: list, Connection: 'Upgrade' },
    body ?? `This endpoint requires an upgrade to: ${list}.\n`,
  );
}
