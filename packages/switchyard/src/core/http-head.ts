/**
 * A strict, incremental parser for one HTTP/1.1 message head: the request head a lean
 * standalone server reads, or the response head (the 101) our client reads.
 *
 * Theory of operation: the parser does two passes, and the first one is the only one that
 * runs as bytes arrive.
 * 1. Framing (`push`): each chunk is searched for LF with `indexOf` (native, fast). Every LF
 *    must follow a CR; each CRLF ends a line, and an empty line ends the head. The limits are
 *    enforced here, before anything is buffered: a chunk is scanned only up to
 *    `maxHeaderBytes`, so a peer that never sends the blank line costs at most that many
 *    bytes, and the line count is checked at each line end against `maxHeaders`.
 * 2. Parsing (once, when the blank line is seen): the head is decoded as latin1 (one byte,
 *    one char; HTTP field values are octets, RFC 9110 §5.5) and each line is validated.
 * The bytes after the blank line are handed back untouched as `rest`: after a 101 they belong
 * to the next protocol (h11 calls this state SWITCHED_PROTOCOL).
 *
 * Strictness, and why: this parser guards a connection that is about to become something
 * else, so ambiguity is refused rather than repaired.
 * - Lines end in CRLF only. RFC 9112 §2.2 lets a recipient "recognize a single LF as a line
 *   terminator", but every real client and server sends CRLF, and disagreeing with a proxy
 *   about where a line ends is how request smuggling starts. A bare LF is a 400; a bare CR
 *   inside a line is a 400 too (RFC 9112 §2.2: "A recipient of such a bare CR MUST consider
 *   that element to be invalid or replace each bare CR with SP").
 * - No obs-fold (RFC 9112 §5.2 lets a server reject it with 400). For a response, §5.2 asks a
 *   user agent to replace it with SP instead; no WebSocket server folds a 101's headers, so
 *   we fail that handshake rather than carry code for it.
 * - No leading empty lines before the start line: RFC 9112 §2.2 says a server SHOULD ignore
 *   one, to tolerate a stray CRLF after a previous request's body. Our head is the first
 *   thing on its connection, so there is no previous request to leave one.
 * - No whitespace between a field name and its colon (RFC 9112 §5.1: "A server MUST reject,
 *   with a response status code of 400 (Bad Request), any received request message that
 *   contains whitespace between a header field name and colon").
 * - More than one Host in a request is a 400 (RFC 9112 §3.2).
 * One tolerance: a status line without the SP before an empty reason phrase (`HTTP/1.1 101`)
 * is accepted. RFC 9112 §4 requires the SP, but several servers omit it, the line is not
 * ambiguous, and RFC 9112 §4 also says "A client SHOULD ignore the reason-phrase content".
 *
 * The heads have the same shape as Node's `http.IncomingMessage`, so the rest of the library
 * treats both alike: lower-case names in `headers`, repeated fields joined with ", " (RFC 9110
 * §5.3), except `set-cookie`, which becomes an array (RFC 9110 §5.3: it "often appears in a
 * response message across multiple field lines and does not use the list syntax"), and
 * `cookie`, joined with "; " as Node does (RFC 6265 §5.4). Unlike Node, no repeated field is
 * dropped: the handshake must see a repeated Sec-WebSocket-Key to reject it. `headers` has no
 * prototype, so a field named `__proto__` is just a field.
 */

import { LocalProtocolError, RemoteProtocolError } from './errors.js';
import type { ErrorCode } from './errors.js';
import { isTokenChar } from './header-lists.js';

/** Which head a {@link HttpHeadParser} reads. */
export type HeadKind = 'request' | 'response';

/** Header fields as Node gives them: lower-case names; `set-cookie` is always an array. */
export type HttpHeaders = Record<string, string | string[]>;

/** A parsed request head, shaped like Node's `http.IncomingMessage`. */
export interface RequestHead {
  /** The method, as sent (methods are case-sensitive, RFC 9110 §9.1). */
  method: string;
  /** The request-target, as sent (for an upgrade, the path and query). */
  url: string;
  /** `'1.1'` for HTTP/1.1 and any later HTTP/1.x, `'1.0'` for HTTP/1.0. */
  httpVersion: '1.1' | '1.0';
  /** The fields: lower-case names, repeated values joined (see the module comment). */
  headers: HttpHeaders;
  /** Names (case kept) and values, alternating, in the order received. */
  rawHeaders: string[];
}

/** A parsed response head, shaped like what Node's HTTP client gives. */
export interface ResponseHead {
  /** The three-digit status code. */
  statusCode: number;
  /** The reason phrase, possibly empty. */
  statusText: string;
  /** `'1.1'` for HTTP/1.1 and any later HTTP/1.x, `'1.0'` for HTTP/1.0. */
  httpVersion: '1.1' | '1.0';
  /** The fields: lower-case names, repeated values joined (see the module comment). */
  headers: HttpHeaders;
  /** Names (case kept) and values, alternating, in the order received. */
  rawHeaders: string[];
}

/** The head type that a parser of kind `K` produces. */
export type HeadOf<K extends HeadKind> = K extends 'request' ? RequestHead : ResponseHead;

/**
 * What {@link HttpHeadParser.push} returns once the head is complete or has failed.
 * `rest` holds the bytes after the blank line (a view of the last chunk pushed, not a copy).
 */
export type HeadResult<H> =
  { ok: true; head: H; rest: Uint8Array } | { ok: false; error: RemoteProtocolError };

/** Options of {@link HttpHeadParser}. */
export interface HttpHeadParserOptions<K extends HeadKind = HeadKind> {
  /** Whether to read a request head or a response head. */
  kind: K;
  /**
   * The most bytes the head may take, start line and final blank line included.
   * Default 16384 (16 KiB, Node's default `maxHeaderSize`).
   */
  maxHeaderBytes?: number;
  /** The most header fields (lines after the start line). Default 100. */
  maxHeaders?: number;
}

const CR = 0x0d;
const LF = 0x0a;

/**
 * Reads one HTTP/1.x head from a byte stream, chunk by chunk.
 *
 * Errors are `RemoteProtocolError`s, returned, never thrown:
 * - `SWITCHYARD_ERR_HANDSHAKE_HEADERS_TOO_LARGE` (431) when the head passes `maxHeaderBytes`
 *   or `maxHeaders`;
 * - `SWITCHYARD_ERR_HANDSHAKE_MALFORMED` (400) for anything malformed, or (505) for an HTTP
 *   major version other than 1 (RFC 9110 §15.6.6).
 * The status is what a server answers; on a response parser (the client) there is nobody to
 * answer, so `status` is left undefined.
 *
 * @example
 * const parser = new HttpHeadParser({ kind: 'request' });
 * const result = parser.push(chunk); // null while the head is incomplete
 * if (result?.ok) handle(result.head, result.rest);
 */
export class HttpHeadParser<K extends HeadKind = HeadKind> {
  /** Whether this parser reads a request or a response head. */
  readonly kind: K;
  /** The byte limit of the head (see {@link HttpHeadParserOptions.maxHeaderBytes}). */
  readonly maxHeaderBytes: number;
  /** The field count limit (see {@link HttpHeadParserOptions.maxHeaders}). */
  readonly maxHeaders: number;

  #chunks: Uint8Array[] = [];
  // Bytes held in #chunks; also the absolute offset of the next chunk's first byte.
  #buffered = 0;
  // Absolute offset where the current line starts.
  #lineStart = 0;
  // Complete non-empty lines seen so far (the start line, then the fields).
  #lines = 0;
  // The last byte of the previous chunk, to see the CR of a CRLF split across chunks.
  #lastByte = -1;
  #done = false;

  constructor(options: HttpHeadParserOptions<K>) {
    const { kind, maxHeaderBytes = 16384, maxHeaders = 100 } = options;
    if (kind !== 'request' && kind !== 'response') {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `HttpHeadParser kind must be 'request' or 'response', got ${String(kind)}.`,
      );
    }
    if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes < 1) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `maxHeaderBytes must be a positive integer, got ${String(maxHeaderBytes)}.`,
      );
    }
    if (!Number.isSafeInteger(maxHeaders) || maxHeaders < 0) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `maxHeaders must be a non-negative integer, got ${String(maxHeaders)}.`,
      );
    }
    this.kind = kind;
    this.maxHeaderBytes = maxHeaderBytes;
    this.maxHeaders = maxHeaders;
  }

  /**
   * Feeds the next bytes of the stream.
   *
   * @returns `null` while the head is incomplete; otherwise the head and the bytes after it,
   *   or the error. After a result, the parser is finished.
   * @throws {LocalProtocolError} `SWITCHYARD_ERR_INVALID_STATE` when called after a result.
   */
  push(chunk: Uint8Array): HeadResult<HeadOf<K>> | null {
    if (this.#done) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_STATE',
        'HttpHeadParser.push() was called after the head was complete or had failed.',
      );
    }
    // Only this many bytes of the chunk may still belong to the head; an LF further on
    // would end a head that is already too large, so it is not even looked for.
    const allowance = this.maxHeaderBytes - this.#buffered;
    const limit = chunk.length < allowance ? chunk.length : allowance;
    let pos = 0;
    while (pos < limit) {
      const lf = chunk.indexOf(LF, pos);
      if (lf < 0 || lf >= limit) break;
      const previous = lf > 0 ? chunk[lf - 1] : this.#lastByte;
      if (previous !== CR) return this.#malformed('a line ended in a bare LF instead of CRLF');
      const lfOffset = this.#buffered + lf;
      if (lfOffset - 1 === this.#lineStart) {
        if (this.#lines === 0) return this.#malformed('the head began with an empty line');
        return this.#complete(chunk, lf + 1);
      }
      this.#lines++;
      if (this.#lines - 1 > this.maxHeaders) {
        return this.#tooLarge(`more than ${this.maxHeaders} header fields`);
      }
      this.#lineStart = lfOffset + 1;
      pos = lf + 1;
    }
    if (chunk.length > allowance) {
      return this.#tooLarge(`the head passed ${this.maxHeaderBytes} bytes`);
    }
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      this.#lastByte = chunk[chunk.length - 1];
    }
    return null;
  }

  #complete(chunk: Uint8Array, end: number): HeadResult<HeadOf<K>> {
    this.#done = true;
    let bytes: Uint8Array;
    if (this.#chunks.length === 0) {
      bytes = chunk.subarray(0, end);
    } else {
      bytes = new Uint8Array(this.#buffered + end);
      let offset = 0;
      for (const c of this.#chunks) {
        bytes.set(c, offset);
        offset += c.length;
      }
      bytes.set(chunk.subarray(0, end), offset);
    }
    this.#chunks = [];
    const rest = chunk.subarray(end);
    // The head without its final CRLF CRLF: lines separated by CRLF.
    const text = decodeLatin1(bytes, bytes.length - 4);
    const result =
      this.kind === 'request' ? parseRequestHead(text, this) : parseResponseHead(text, this);
    if (result instanceof RemoteProtocolError) return { ok: false, error: result };
    return { ok: true, head: result as HeadOf<K>, rest };
  }

  #malformed(why: string): HeadResult<HeadOf<K>> {
    this.#done = true;
    this.#chunks = [];
    return { ok: false, error: malformed(why, this) };
  }

  #tooLarge(why: string): HeadResult<HeadOf<K>> {
    this.#done = true;
    this.#chunks = [];
    const error = makeError(
      'SWITCHYARD_ERR_HANDSHAKE_HEADERS_TOO_LARGE',
      `The HTTP ${this.kind} head is too large: ${why}.`,
      431,
      this,
    );
    return { ok: false, error };
  }
}

interface ParserInfo {
  readonly kind: HeadKind;
}

function makeError(
  code: ErrorCode,
  message: string,
  status: number,
  parser: ParserInfo,
): RemoteProtocolError {
  // A status is something to answer; only a server, reading a request, answers.
  return new RemoteProtocolError(code, message, parser.kind === 'request' ? { status } : {});
}

function malformed(why: string, parser: ParserInfo, status = 400): RemoteProtocolError {
  return makeError(
    'SWITCHYARD_ERR_HANDSHAKE_MALFORMED',
    `Malformed HTTP ${parser.kind} head: ${why}.`,
    status,
    parser,
  );
}

/** Decodes `bytes[0, end)` as latin1: each byte becomes the char with that code. */
function decodeLatin1(bytes: Uint8Array, end: number): string {
  // TextDecoder('latin1') is windows-1252 in the Encoding Standard, which remaps 0x80-0x9f,
  // so the bytes are turned into chars directly, in slices that keep `apply` within the
  // engine's argument limit.
  let text = '';
  for (let start = 0; start < end; start += 8192) {
    const slice = bytes.subarray(start, Math.min(end, start + 8192));
    text += String.fromCharCode.apply(null, slice as unknown as number[]);
  }
  return text;
}

// RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT, HTTP-name = %s"HTTP"
// (case-sensitive). Returns the version, an error for another major version, or null when
// `text` is not an HTTP-version at all.
function parseVersion(
  text: string,
  parser: ParserInfo,
): '1.1' | '1.0' | RemoteProtocolError | null {
  if (text.length !== 8 || !text.startsWith('HTTP/') || text.charCodeAt(6) !== 0x2e) return null;
  const major = text.charCodeAt(5) - 0x30;
  const minor = text.charCodeAt(7) - 0x30;
  if (major < 0 || major > 9 || minor < 0 || minor > 9) return null;
  if (major !== 1) {
    // RFC 9110 §15.6.6: 505 "indicates that the server does not support, or refuses to
    // support, the major version of HTTP that was used in the request message".
    return malformed(`HTTP/${major}.${minor} is not supported, only HTTP/1.x`, parser, 505);
  }
  // RFC 9110 §2.5: a recipient of a higher minor version "SHOULD process the message as if it
  // were in the highest minor version within that major version to which the recipient is
  // conformant".
  return minor === 0 ? '1.0' : '1.1';
}

// request-target chars: visible ASCII. The target is a URI (RFC 9112 §3.2), which has no
// spaces, controls or non-ASCII bytes.
function isTargetChar(c: number): boolean {
  return c > 0x20 && c < 0x7f;
}

function parseRequestHead(text: string, parser: ParserInfo): RequestHead | RemoteProtocolError {
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = text.length;
  // RFC 9112 §3: request-line = method SP request-target SP HTTP-version.
  const sp1 = text.indexOf(' ');
  if (sp1 <= 0 || sp1 > lineEnd) return malformed('the request line has no method', parser);
  for (let i = 0; i < sp1; i++) {
    if (!isTokenChar(text.charCodeAt(i))) {
      return malformed('the method is not a token (RFC 9110 §9.1)', parser);
    }
  }
  let sp2 = sp1 + 1;
  while (sp2 < lineEnd && isTargetChar(text.charCodeAt(sp2))) sp2++;
  if (sp2 === sp1 + 1 || sp2 === lineEnd || text.charCodeAt(sp2) !== 0x20) {
    return malformed('the request line is not "method SP request-target SP HTTP-version"', parser);
  }
  const version = parseVersion(text.slice(sp2 + 1, lineEnd), parser);
  if (version === null) return malformed('the request line has no valid HTTP version', parser);
  if (typeof version !== 'string') return version;
  const head: RequestHead = {
    method: text.slice(0, sp1),
    url: text.slice(sp1 + 1, sp2),
    httpVersion: version,
    headers: Object.create(null) as HttpHeaders,
    rawHeaders: [],
  };
  const error = parseFields(text, lineEnd, head.headers, head.rawHeaders, parser);
  if (error !== null) return error;
  return head;
}

function parseResponseHead(text: string, parser: ParserInfo): ResponseHead | RemoteProtocolError {
  let lineEnd = text.indexOf('\r\n');
  if (lineEnd < 0) lineEnd = text.length;
  // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
  const version = parseVersion(text.slice(0, 8), parser);
  if (version === null || text.charCodeAt(8) !== 0x20 || lineEnd < 12) {
    return malformed('the status line does not begin with "HTTP/x.y NNN"', parser);
  }
  if (typeof version !== 'string') return version;
  let statusCode = 0;
  for (let i = 9; i < 12; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return malformed('the status code is not three digits', parser);
    statusCode = statusCode * 10 + digit;
  }
  // RFC 9110 §15: "Values outside the range 100..599 are invalid."
  if (statusCode < 100 || statusCode > 599) {
    return malformed(`status code ${statusCode} is outside 100..599`, parser);
  }
  let statusText = '';
  if (lineEnd > 12) {
    if (text.charCodeAt(12) !== 0x20) {
      return malformed('the status code is not followed by SP', parser);
    }
    // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ).
    for (let i = 13; i < lineEnd; i++) {
      if (!isFieldValueChar(text.charCodeAt(i))) {
        return malformed('the reason phrase holds a control character', parser);
      }
    }
    statusText = text.slice(13, lineEnd);
  }
  const head: ResponseHead = {
    statusCode,
    statusText,
    httpVersion: version,
    headers: Object.create(null) as HttpHeaders,
    rawHeaders: [],
  };
  const error = parseFields(text, lineEnd, head.headers, head.rawHeaders, parser);
  if (error !== null) return error;
  return head;
}

// field-vchar = VCHAR / obs-text, plus SP and HTAB inside the value (RFC 9110 §5.5).
function isFieldValueChar(c: number): boolean {
  return (c >= 0x20 && c !== 0x7f) || c === 0x09;
}

// Parses the field lines that follow the start line ending at `pos`.
function parseFields(
  text: string,
  pos: number,
  headers: HttpHeaders,
  rawHeaders: string[],
  parser: ParserInfo,
): RemoteProtocolError | null {
  while (pos < text.length) {
    const start = pos + 2;
    let end = text.indexOf('\r\n', start);
    if (end < 0) end = text.length;
    pos = end;
    const first = text.charCodeAt(start);
    if (first === 0x20 || first === 0x09) {
      // RFC 9112 §5.2 (obs-fold) and §2.2 (whitespace before the first field): both are
      // lines that begin with whitespace, and both may be rejected.
      return malformed('a field line begins with whitespace (obsolete line folding)', parser);
    }
    // RFC 9112 §5.1: field-line = field-name ":" OWS field-value OWS.
    let colon = start;
    while (colon < end && isTokenChar(text.charCodeAt(colon))) colon++;
    if (colon === end || text.charCodeAt(colon) !== 0x3a) {
      let afterSpace = colon;
      while (afterSpace < end && isOws(text.charCodeAt(afterSpace))) afterSpace++;
      if (colon > start && afterSpace > colon && text.charCodeAt(afterSpace) === 0x3a) {
        // RFC 9112 §5.1: "No whitespace is allowed between the field name and colon."
        return malformed('whitespace between a field name and its colon', parser);
      }
      return malformed('a field line is not "name: value" with a token name', parser);
    }
    if (colon === start) return malformed('a field line has an empty name', parser);
    let valueStart = colon + 1;
    let valueEnd = end;
    while (valueStart < valueEnd && isOws(text.charCodeAt(valueStart))) valueStart++;
    while (valueEnd > valueStart && isOws(text.charCodeAt(valueEnd - 1))) valueEnd--;
    for (let i = valueStart; i < valueEnd; i++) {
      if (!isFieldValueChar(text.charCodeAt(i))) {
        // RFC 9110 §5.5: "Field values containing CR, LF, or NUL characters are invalid and
        // dangerous"; other controls are outside field-vchar as well.
        return malformed('a field value holds a control character', parser);
      }
    }
    const name = text.slice(start, colon);
    const value = text.slice(valueStart, valueEnd);
    rawHeaders.push(name, value);
    const key = name.toLowerCase();
    const existing = headers[key];
    if (existing === undefined) {
      headers[key] = key === 'set-cookie' ? [value] : value;
    } else if (key === 'set-cookie') {
      (existing as string[]).push(value);
    } else if (key === 'host' && parser.kind === 'request') {
      // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
      // HTTP/1.1 request message that ... contains more than one Host header field line".
      return malformed('more than one Host field', parser);
    } else {
      headers[key] = existing + (key === 'cookie' ? '; ' : ', ') + value;
    }
  }
  return null;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
