/**
 * Errors of Switchyard.
 *
 * Theory of operation: there are two families, as in h11.
 * - {@link RemoteProtocolError}: the peer broke a rule (a malformed handshake, a bad frame,
 *   invalid UTF-8 ...). The core never throws these out of `receiveData`; it records them,
 *   queues the right close frame or HTTP status, and reports them as an event.
 * - {@link LocalProtocolError}: the local caller misused the API (sending after close, an
 *   invalid close code ...). These are thrown synchronously to the caller.
 * Everything that happens in the I/O layer (timeouts, a lost connection, limits on buffered
 * bytes) is a {@link ConnectionError}.
 *
 * Every error carries a class, a message a person can act on, a stable string code
 * (`SWITCHYARD_ERR_...`, listed in docs/reference.md) and, where it maps to one, the
 * WebSocket close code (`closeCode`) or the HTTP status (`status`).
 */

/** Every stable error code, with what it means. The docs' error table lists the same. */
export const ERROR_CODES = {
  // Handshake, server side (the status that is answered is on the error).
  SWITCHYARD_ERR_HANDSHAKE_METHOD: 'The upgrade request did not use GET (RFC 6455 §4.1).',
  SWITCHYARD_ERR_HANDSHAKE_HTTP_VERSION: 'The upgrade request was not HTTP/1.1 or newer.',
  SWITCHYARD_ERR_HANDSHAKE_HOST: 'The upgrade request had no Host header.',
  SWITCHYARD_ERR_HANDSHAKE_UPGRADE:
    'The Upgrade header was missing or did not list websocket (RFC 6455 §4.2.1).',
  SWITCHYARD_ERR_HANDSHAKE_CONNECTION:
    'The Connection header did not list upgrade (RFC 9110 §7.8).',
  SWITCHYARD_ERR_HANDSHAKE_KEY:
    'Sec-WebSocket-Key was missing, repeated or not the base64 of exactly 16 bytes.',
  SWITCHYARD_ERR_HANDSHAKE_VERSION: 'Sec-WebSocket-Version was missing or not 13.',
  SWITCHYARD_ERR_HANDSHAKE_ORIGIN: 'The Origin header was not allowed by the server.',
  SWITCHYARD_ERR_HANDSHAKE_PROTOCOL:
    'Sec-WebSocket-Protocol was malformed, or none was acceptable.',
  SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS: 'Sec-WebSocket-Extensions was malformed or unacceptable.',
  SWITCHYARD_ERR_HANDSHAKE_NOT_FOUND: 'No WebSocket endpoint is served at the requested path.',
  SWITCHYARD_ERR_HANDSHAKE_REJECTED: 'The application rejected the upgrade in its hook.',
  SWITCHYARD_ERR_HANDSHAKE_HEADERS_TOO_LARGE:
    'The request or response head passed the header limit.',
  SWITCHYARD_ERR_HANDSHAKE_MALFORMED: 'The HTTP head could not be parsed.',
  SWITCHYARD_ERR_UPGRADE_REQUIRED:
    'The server requires an upgrade that the request did not ask for.',
  SWITCHYARD_ERR_HANDSHAKE_PSEUDO_HEADER:
    'An HTTP/2 extended CONNECT lacked :scheme, :path or :authority, or its :protocol was not websocket (RFC 8441 §4–5).',
  // Handshake, client side.
  SWITCHYARD_ERR_HANDSHAKE_STATUS: 'The server answered with a status other than 101.',
  SWITCHYARD_ERR_HANDSHAKE_ACCEPT: 'Sec-WebSocket-Accept was missing or did not match the key.',
  SWITCHYARD_ERR_HANDSHAKE_TIMEOUT: 'The opening handshake did not complete in time.',
  SWITCHYARD_ERR_HANDSHAKE_ABORTED: 'The opening handshake was aborted by the caller.',
  SWITCHYARD_ERR_TOO_MANY_REDIRECTS: 'The server redirected more times than allowed.',
  SWITCHYARD_ERR_PROXY: 'The HTTP proxy refused or failed the CONNECT tunnel.',
  SWITCHYARD_ERR_HTTP2_NO_EXTENDED_CONNECT:
    'The HTTP/2 server did not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL, so no WebSocket can be opened on its connection (RFC 8441 §3).',
  // Frames and messages (RFC 6455 §5).
  SWITCHYARD_ERR_RESERVED_OPCODE: 'A frame used a reserved opcode (1002).',
  SWITCHYARD_ERR_RESERVED_BITS: 'A frame set RSV bits that no extension negotiated (1002).',
  SWITCHYARD_ERR_MASK:
    'A frame was masked when it must not be, or unmasked when it must be (1002).',
  SWITCHYARD_ERR_CONTROL_FRAME: 'A control frame was fragmented or longer than 125 bytes (1002).',
  SWITCHYARD_ERR_CONTINUATION:
    'A continuation frame came with no message to continue, or a new message began before the last one ended (1002).',
  SWITCHYARD_ERR_FRAME_LENGTH: 'A 64-bit payload length had its most significant bit set (1002).',
  SWITCHYARD_ERR_INVALID_UTF8: 'A text message or close reason was not valid UTF-8 (1007).',
  SWITCHYARD_ERR_MESSAGE_TOO_BIG: 'A message was larger than maxPayload (1009).',
  SWITCHYARD_ERR_TOO_MANY_FRAGMENTS:
    'A message was split into more frames than maxFragments, or its frame headers outweighed its payload by more than 64 KiB (1009).',
  SWITCHYARD_ERR_CLOSE_PAYLOAD: 'A close frame had a 1-byte body or an invalid close code (1002).',
  SWITCHYARD_ERR_CONTROL_RATE: 'The peer sent control frames faster than allowed (1008).',
  SWITCHYARD_ERR_INFLATE: 'A compressed message could not be inflated (1007).',
  // Connection level (I/O layer).
  SWITCHYARD_ERR_CONNECTION_LOST: 'The connection closed without a close handshake (1006).',
  SWITCHYARD_ERR_IDLE_TIMEOUT: 'The peer did not answer pings within the idle timeout (1006).',
  SWITCHYARD_ERR_CLOSE_TIMEOUT: 'The peer did not complete the close handshake in time (1006).',
  SWITCHYARD_ERR_BUFFER_FULL: 'Outgoing buffered bytes passed maxBufferedAmount (1008).',
  SWITCHYARD_ERR_BACKPLANE:
    'A pub/sub backplane failed to connect, subscribe, publish or deliver (reported, not thrown; see error.stage).',
  SWITCHYARD_ERR_RECONNECT_QUEUE_FULL:
    'A message sent while reconnecting was dropped: the offline queue was full (reported).',
  SWITCHYARD_ERR_RECONNECT_GAVE_UP:
    'A reconnecting client stopped after reconnect.maxRetries attempts.',
  SWITCHYARD_ERR_SERVER_LIMIT: 'The server is at its connection or pending-handshake limit.',
  // Local misuse (thrown).
  SWITCHYARD_ERR_INVALID_STATE: 'The operation is not allowed in the current readyState.',
  SWITCHYARD_ERR_INVALID_ARGUMENT: 'An argument was out of range or of the wrong type.',
  SWITCHYARD_ERR_INVALID_OPTION:
    'An option was unknown (a misspelt name, or one of another library such as ws), or its value had the wrong type or range; the error names it (a TypeError).',
  SWITCHYARD_ERR_ALREADY_HANDLED: 'handleUpgrade was called twice for the same socket.',
} as const;

/** A stable string that identifies an error; see {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Details that an error may carry besides its message. */
export interface ErrorDetails {
  /** The WebSocket close code this error maps to (RFC 6455 §7.4.1). */
  closeCode?: number;
  /** The HTTP status this error maps to (a handshake rejection). */
  status?: number;
  /** Extra HTTP headers to send with a handshake rejection. */
  headers?: Record<string, string>;
  /** The underlying error, if any. */
  cause?: unknown;
}

/** The base class of every error Switchyard creates. */
export class SwitchyardError extends Error {
  /** A stable string that identifies the error (`SWITCHYARD_ERR_...`). */
  readonly code: ErrorCode;
  /** The close code this error maps to, when it ends a WebSocket connection. */
  readonly closeCode: number | undefined;
  /** The HTTP status this error maps to, when it rejects a handshake. */
  readonly status: number | undefined;
  /** HTTP headers that go with `status` (for example `Sec-WebSocket-Version: 13` with a 426). */
  readonly headers: Record<string, string> | undefined;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.closeCode = details.closeCode;
    this.status = details.status;
    this.headers = details.headers;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** The peer broke a protocol rule. Never thrown out of the core; reported as an event. */
export class RemoteProtocolError extends SwitchyardError {}

/** The local caller misused the API. Thrown synchronously. */
export class LocalProtocolError extends SwitchyardError {}

/** A failure of the connection itself: a timeout, a reset, a limit on buffered bytes. */
export class ConnectionError extends SwitchyardError {}

/**
 * The client's handshake failed because the server did not answer 101 as RFC 6455 requires.
 * Carries what the server did answer so that the caller (or `switchyard doctor`) can tell why.
 */
export class UnexpectedResponseError extends RemoteProtocolError {
  /** The status line's code, for example 200, 400 or 426. */
  readonly statusCode: number;
  /** The status line's reason phrase. */
  readonly statusText: string;
  /** The response headers, names in lower case, repeated headers joined with ", ". */
  readonly responseHeaders: Record<string, string>;
  /** The first bytes of the body (at most 1 KiB), when any arrived. */
  readonly body: Uint8Array;

  constructor(
    message: string,
    response: {
      statusCode: number;
      statusText: string;
      headers: Record<string, string>;
      body?: Uint8Array;
    },
  ) {
    super('SWITCHYARD_ERR_HANDSHAKE_STATUS', message, { status: response.statusCode });
    this.statusCode = response.statusCode;
    this.statusText = response.statusText;
    this.responseHeaders = response.headers;
    this.body = response.body ?? new Uint8Array(0);
  }

  /**
   * {@link body} decoded as UTF-8, for messages and logs. Never throws: bytes that are not
   * UTF-8 (a binary body, or a character cut in two by the 1 KiB limit) become U+FFFD.
   *
   * @example
   * catch (error) {
   *   if (error instanceof UnexpectedResponseError) console.log(error.statusCode, error.bodyText);
   * }
   */
  get bodyText(): string {
    return new TextDecoder('utf-8', { fatal: false }).decode(this.body);
  }
}

/**
 * An option bag held an option that does not exist (a misspelt name, or one of another
 * library's, such as ws's `verifyClient`), or a value of the wrong type or range. Thrown
 * synchronously by the constructor or function that took the options, before any I/O. It is a
 * `TypeError`, as Node's own `ERR_INVALID_ARG_TYPE` is, so it is not a {@link SwitchyardError};
 * it has the same `code` field.
 *
 * @example
 * try {
 *   new WebSocketServer({ noServer: true, verifyClient: () => false });
 * } catch (error) {
 *   // error.code === 'SWITCHYARD_ERR_INVALID_OPTION', error.option === 'noServer'
 * }
 */
export class InvalidOptionError extends TypeError {
  /** Always `SWITCHYARD_ERR_INVALID_OPTION`. */
  readonly code = 'SWITCHYARD_ERR_INVALID_OPTION' as const satisfies ErrorCode;
  /** The option, with its path for a nested one (`heartbeat.interval`). */
  readonly option: string;

  constructor(option: string, message: string) {
    super(message);
    this.option = option;
  }

  override get name(): string {
    return 'InvalidOptionError';
  }
}
