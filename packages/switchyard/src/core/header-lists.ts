/**
 * Parsers for the list-valued header fields of the opening handshake.
 *
 * Theory of operation: every parser here is a hand-written scanner that walks the value once,
 * left to right, with an index; no regular expressions. Header values come from the peer and
 * a regex with nested quantifiers can take exponential time on a crafted value (ws
 * CVE-2021-32640 was exactly that, on Sec-WebSocket-Protocol). Each function is O(n) in the
 * length of the value, and rejects (returns `null`) rather than guesses on anything outside
 * the grammar.
 *
 * The grammar is RFC 9110 §5.6.1's list rule, `#element => [ element ] *( OWS "," OWS
 * [ element ] )`: recipients "MUST accept empty list elements" and skip them, and a field
 * sent as several lines is the same as one line with the values joined by commas (RFC 9110
 * §5.3), which is why a `string[]` (what Node's IncomingMessage gives for some repeated
 * fields) is joined with ", " first.
 */

import { LocalProtocolError } from './errors.js';

/** A header value as Node and the head parser give it: absent, one line, or several lines. */
export type HeaderValue = string | readonly string[] | undefined;

/** One element of an Upgrade header: `protocol-name ["/" protocol-version]` (RFC 9110 §7.8). */
export interface UpgradeProtocol {
  /** The protocol name, lower-cased (names compare case-insensitively, RFC 9110 §7.8). */
  name: string;
  /** The version as sent, when there was one. */
  version?: string;
}

/**
 * One extension in a Sec-WebSocket-Extensions header (RFC 6455 §9.1).
 *
 * `params` is a list of `[name, value]` pairs, in the order sent, and keeps duplicates: an
 * extension's negotiation must be able to reject a repeated parameter (RFC 7692 §7 requires
 * that for permessage-deflate), which a plain record would silently collapse. A parameter
 * without a value has the value `true`; a quoted value is given unescaped.
 * Names are kept as sent: registered extension tokens are lower-case, and compare exactly.
 */
export interface ExtensionOffer {
  /** The extension token, for example `permessage-deflate`. */
  name: string;
  /** The parameters in order, duplicates kept. */
  params: Array<[string, string | true]>;
}

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. One lookup per char keeps the scanners fast.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

/** Whether the char code is a `tchar` (RFC 9110 §5.6.2). */
export function isTokenChar(code: number): boolean {
  return code < 128 && TCHAR[code] === 1;
}

/**
 * Whether `text` is a `token` (RFC 9110 §5.6.2: `token = 1*tchar`).
 *
 * @example
 * isToken('permessage-deflate'); // true
 * isToken('a b'); // false
 */
export function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    if (!isTokenChar(text.charCodeAt(i))) return false;
  }
  return true;
}

/**
 * Joins a header that arrived as several lines into one list value (RFC 9110 §5.3: "a
 * recipient MAY combine multiple field lines within a field section that have the same field
 * name into one field line ... by appending each subsequent field line value to the initial
 * field line value in order, separated by a comma (",") and optional whitespace").
 */
export function joinHeaderValue(value: HeaderValue): string {
  if (value === undefined) return '';
  if (typeof value === 'string') return value;
  return value.join(', ');
}

/**
 * Response headers as the client shows them (`WebSocket.response.headers`,
 * `UnexpectedResponseError.responseHeaders`): names as given (lower case from our parser and
 * from HTTP/2), repeated fields joined with ", " (RFC 9110 §5.3), HTTP/2 pseudo-headers such
 * as `:status` left out (they are not header fields, RFC 9113 §8.3).
 */
export function flattenHeaders(
  raw: Readonly<Record<string, string | readonly string[] | number | undefined>>,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of Object.keys(raw)) {
    const value = raw[name];
    if (value === undefined || name.startsWith(':')) continue;
    headers[name] = typeof value === 'object' ? value.join(', ') : String(value);
  }
  return headers;
}

// OWS = *( SP / HTAB ), RFC 9110 §5.6.3.
function skipOws(text: string, pos: number): number {
  while (pos < text.length) {
    const c = text.charCodeAt(pos);
    if (c !== 0x20 && c !== 0x09) break;
    pos++;
  }
  return pos;
}

function scanToken(text: string, pos: number): number {
  while (pos < text.length && isTokenChar(text.charCodeAt(pos))) pos++;
  return pos;
}

// Skips OWS and empty list elements (RFC 9110 §5.6.1: "a recipient MUST accept empty list
// elements"), returning the start of the next element or the end of the text.
function skipEmptyElements(text: string, pos: number): number {
  for (;;) {
    pos = skipOws(text, pos);
    if (pos < text.length && text.charCodeAt(pos) === 0x2c) pos++;
    else return pos;
  }
}

// After an element: OWS, then a comma or the end. Returns the position after the comma (or
// the end), or -1 when something else follows the element.
function endOfElement(text: string, pos: number): number {
  pos = skipOws(text, pos);
  if (pos === text.length) return pos;
  return text.charCodeAt(pos) === 0x2c ? pos + 1 : -1;
}

function scanTokens(text: string, lowerCase: boolean): string[] | null {
  const out: string[] = [];
  let pos = skipEmptyElements(text, 0);
  while (pos < text.length) {
    const end = scanToken(text, pos);
    if (end === pos) return null;
    const token = text.slice(pos, end);
    out.push(lowerCase ? token.toLowerCase() : token);
    pos = endOfElement(text, end);
    if (pos < 0) return null;
    pos = skipEmptyElements(text, pos);
  }
  return out;
}

/**
 * Parses a comma-separated list of tokens, such as Connection (RFC 9110 §7.6.1: `Connection
 * = #connection-option`, `connection-option = token`, compared case-insensitively).
 *
 * @returns the tokens lower-cased, in order (`[]` when the header is absent or only holds
 *   empty elements), or `null` when an element is not a token.
 * @example
 * parseTokenList('keep-alive, Upgrade'); // ['keep-alive', 'upgrade']
 * parseTokenList('up grade'); // null
 */
export function parseTokenList(value: HeaderValue): string[] | null {
  return scanTokens(joinHeaderValue(value), true);
}

/**
 * Parses an Upgrade header (RFC 9110 §7.8: `Upgrade = #protocol`, `protocol = protocol-name
 * ["/" protocol-version]`, both tokens; no whitespace around the slash).
 *
 * @returns the protocols in the order sent (the client's order of preference), names
 *   lower-cased ("protocol names are case-insensitive" is not stated for versions, so a
 *   version is kept as sent), or `null` when an element is malformed.
 * @example
 * parseUpgradeList('HTTP/2.0, websocket'); // [{ name: 'http', version: '2.0' }, { name: 'websocket' }]
 */
export function parseUpgradeList(value: HeaderValue): UpgradeProtocol[] | null {
  const text = joinHeaderValue(value);
  const out: UpgradeProtocol[] = [];
  let pos = skipEmptyElements(text, 0);
  while (pos < text.length) {
    const nameEnd = scanToken(text, pos);
    if (nameEnd === pos) return null;
    const protocol: UpgradeProtocol = { name: text.slice(pos, nameEnd).toLowerCase() };
    pos = nameEnd;
    if (pos < text.length && text.charCodeAt(pos) === 0x2f) {
      const versionEnd = scanToken(text, pos + 1);
      if (versionEnd === pos + 1) return null;
      protocol.version = text.slice(pos + 1, versionEnd);
      pos = versionEnd;
    }
    out.push(protocol);
    pos = endOfElement(text, pos);
    if (pos < 0) return null;
    pos = skipEmptyElements(text, pos);
  }
  return out;
}

/**
 * Parses Sec-WebSocket-Protocol as a client sends it (RFC 6455 §4.1, §11.3.4: a list of
 * tokens). Subprotocol names are compared case-sensitively (RFC 6455 §11.5: "the
 * Subprotocol Identifier ... [is] compared as case-sensitive"), so they are kept as sent.
 *
 * @returns the subprotocols in the client's order of preference, or `null` when an element
 *   is not a token or when a name repeats (a client "MUST NOT" repeat one, RFC 6455 §4.1:
 *   "the elements that comprise this value MUST be non-empty strings with characters ... and
 *   MUST all be unique strings").
 * @example
 * parseSubprotocolList('chat, superchat'); // ['chat', 'superchat']
 * parseSubprotocolList('chat, chat'); // null
 */
export function parseSubprotocolList(value: HeaderValue): string[] | null {
  const list = scanTokens(joinHeaderValue(value), false);
  if (list === null) return null;
  if (list.length > 1 && new Set(list).size !== list.length) return null;
  return list;
}

// RFC 9110 §5.6.4: qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text, and a
// quoted-pair escapes HTAB / SP / VCHAR / obs-text.
function isQdtext(c: number): boolean {
  return (
    c === 0x09 ||
    c === 0x20 ||
    c === 0x21 ||
    (c >= 0x23 && c <= 0x5b) ||
    (c >= 0x5d && c <= 0x7e) ||
    (c >= 0x80 && c <= 0xff)
  );
}
function isPairable(c: number): boolean {
  return c === 0x09 || c === 0x20 || (c >= 0x21 && c <= 0x7e) || (c >= 0x80 && c <= 0xff);
}

/**
 * Parses Sec-WebSocket-Extensions (RFC 6455 §9.1):
 * ```
 * extension-list = 1#extension
 * extension = extension-token *( ";" extension-param )
 * extension-param = token [ "=" (token | quoted-string) ]
 *     ;When using the quoted-string syntax variant, the value
 *     ;after quoted-string unescaping MUST conform to the
 *     ;'token' ABNF.
 * ```
 * Whitespace is allowed around `;`, `,` and `=` (RFC 6455 §9.1 uses RFC 2616's implied
 * linear whitespace between words), and empty list elements are skipped (RFC 9110 §5.6.1).
 *
 * @returns the extensions in order (an offer may list the same extension several times, with
 *   different parameters, in order of preference), or `null` when the value is malformed.
 *   See {@link ExtensionOffer} for the shape of `params`.
 * @example
 * parseExtensionOffers('permessage-deflate; client_max_window_bits, x-foo; a="1"');
 * // [{ name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
 * //  { name: 'x-foo', params: [['a', '1']] }]
 */
export function parseExtensionOffers(value: HeaderValue): ExtensionOffer[] | null {
  const text = joinHeaderValue(value);
  const out: ExtensionOffer[] = [];
  let pos = skipEmptyElements(text, 0);
  while (pos < text.length) {
    const nameEnd = scanToken(text, pos);
    if (nameEnd === pos) return null;
    const offer: ExtensionOffer = { name: text.slice(pos, nameEnd), params: [] };
    pos = skipOws(text, nameEnd);
    while (pos < text.length && text.charCodeAt(pos) === 0x3b) {
      pos = skipOws(text, pos + 1);
      const paramEnd = scanToken(text, pos);
      if (paramEnd === pos) return null;
      const paramName = text.slice(pos, paramEnd);
      pos = skipOws(text, paramEnd);
      if (pos < text.length && text.charCodeAt(pos) === 0x3d) {
        pos = skipOws(text, pos + 1);
        let paramValue: string;
        if (pos < text.length && text.charCodeAt(pos) === 0x22) {
          const quoted = scanQuotedString(text, pos);
          if (quoted === null) return null;
          paramValue = quoted.value;
          // RFC 6455 §9.1: "the value after quoted-string unescaping MUST conform to the
          // 'token' ABNF".
          if (!isToken(paramValue)) return null;
          pos = quoted.end;
        } else {
          const valueEnd = scanToken(text, pos);
          if (valueEnd === pos) return null;
          paramValue = text.slice(pos, valueEnd);
          pos = valueEnd;
        }
        offer.params.push([paramName, paramValue]);
        pos = skipOws(text, pos);
      } else {
        offer.params.push([paramName, true]);
      }
    }
    out.push(offer);
    pos = endOfElement(text, pos);
    if (pos < 0) return null;
    pos = skipEmptyElements(text, pos);
  }
  return out;
}

// Scans a quoted-string starting at the opening DQUOTE; returns the unescaped value and the
// position after the closing DQUOTE, or null when it is unterminated or holds a bad char.
function scanQuotedString(text: string, pos: number): { value: string; end: number } | null {
  let value = '';
  let runStart = pos + 1;
  for (let i = pos + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) return { value: value + text.slice(runStart, i), end: i + 1 };
    if (c === 0x5c) {
      // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ), RFC 9110 §5.6.4.
      if (i + 1 >= text.length || !isPairable(text.charCodeAt(i + 1))) return null;
      value += text.slice(runStart, i);
      i++;
      runStart = i;
    } else if (!isQdtext(c)) {
      return null;
    }
  }
  return null;
}

/**
 * Serializes extensions for a Sec-WebSocket-Extensions header, the inverse of
 * {@link parseExtensionOffers}: `name; param; param=value, name2`.
 *
 * Values are always written as tokens. RFC 6455 §9.1 requires a parameter value to be a
 * token even when quoted ("the value after quoted-string unescaping MUST conform to the
 * 'token' ABNF"), so quoting a non-token could only produce a header the peer must reject;
 * such a value is a local bug and throws instead.
 *
 * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_ARGUMENT` when a name or value is not
 *   a token.
 * @example
 * formatExtensions([{ name: 'permessage-deflate', params: [['server_max_window_bits', '10']] }]);
 * // 'permessage-deflate; server_max_window_bits=10'
 */
export function formatExtensions(list: readonly ExtensionOffer[]): string {
  let out = '';
  for (const extension of list) {
    if (!isToken(extension.name)) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `Extension name ${JSON.stringify(extension.name)} is not a token (RFC 6455 §9.1).`,
      );
    }
    if (out.length > 0) out += ', ';
    out += extension.name;
    for (const [name, value] of extension.params) {
      if (!isToken(name)) {
        throw new LocalProtocolError(
          'SWITCHYARD_ERR_INVALID_ARGUMENT',
          `Extension parameter name ${JSON.stringify(name)} is not a token (RFC 6455 §9.1).`,
        );
      }
      if (value === true) {
        out += '; ' + name;
        continue;
      }
      if (!isToken(value)) {
        throw new LocalProtocolError(
          'SWITCHYARD_ERR_INVALID_ARGUMENT',
          `Extension parameter ${name}=${JSON.stringify(value)}: the value is not a token (RFC 6455 §9.1).`,
        );
      }
      out += '; ' + name + '=' + value;
    }
  }
  return out;
}
