/**
 * How each `ws` 8 option reaches Switchyard, as data: the adapter reads these tables to map,
 * ignore or refuse an option, and docs/migrating-from-ws.md lists the same names (a test checks
 * that none is missing). Options that are not `ws` options pass through unchanged to Switchyard's
 * own `WebSocketServer` or `connect()`, which check them.
 *
 * Three kinds of handling:
 * - `mapped`: the adapter translates the option to Switchyard's (same meaning).
 * - `ignored`: accepted and without effect, because Switchyard already behaves the safe way the
 *   option could only weaken or tune (for example UTF-8 is always validated).
 * - `unsupported`: a program that relies on it would silently behave differently, so the adapter
 *   throws an `InvalidOptionError` (a TypeError, `SWITCHYARD_ERR_INVALID_OPTION`) naming what to
 *   use instead, as Switchyard does for its own options.
 */
import { InvalidOptionError, type PerMessageDeflateConfig } from '../index.js';

/** One row of an option table. */
export interface WsOptionRule {
  readonly handling: 'mapped' | 'ignored' | 'unsupported';
  /** For `unsupported`: when the option is harmless (this predicate says so), it is accepted. */
  readonly harmless?: (value: unknown) => boolean;
  /** Why, and what to use instead: shown in the error and in the migration guide. */
  readonly note: string;
}

const isUndefinedOr =
  (...allowed: unknown[]) =>
  (value: unknown): boolean =>
    value === undefined || allowed.includes(value);

/** Options shared by `new WebSocketServer()` and `new WebSocket()`. */
const COMMON: Record<string, WsOptionRule> = {
  allowSynchronousEvents: {
    handling: 'ignored',
    note: 'events are always emitted synchronously as data is read (the ws default)',
  },
  autoPong: {
    handling: 'unsupported',
    harmless: isUndefinedOr(true),
    note: 'pings are always answered (RFC 6455 §5.5.2 requires it); autoPong: false is not available',
  },
  closeTimeout: { handling: 'mapped', note: 'same option; Switchyard default 10 s (ws: 30 s)' },
  maxBufferedChunks: {
    handling: 'ignored',
    note: 'memory per message is bounded by maxPayload and maxFragments instead',
  },
  maxFragments: { handling: 'mapped', note: 'same option; 0 means no limit as in ws' },
  maxPayload: {
    handling: 'mapped',
    note: 'same option; 0 means no limit as in ws; Switchyard default 16 MiB (ws: 100 MiB)',
  },
  perMessageDeflate: {
    handling: 'mapped',
    note: 'same negotiation options; zlibDeflateOptions.level and .memLevel map to level and memLevel, concurrencyLimit to setDeflateConcurrency(); other zlib options are ignored',
  },
  skipUTF8Validation: {
    handling: 'ignored',
    note: 'text and close reasons are always validated (RFC 6455 §8.1)',
  },
};

/** `new WebSocketServer(options)`. */
export const WS_SERVER_OPTIONS: Readonly<Record<string, WsOptionRule>> = {
  ...COMMON,
  backlog: { handling: 'mapped', note: 'passed to listen() with `port`' },
  clientTracking: { handling: 'mapped', note: 'same: `wss.clients` exists only when true' },
  handleProtocols: {
    handling: 'mapped',
    note: 'becomes the `protocols` function; returning false sends no subprotocol',
  },
  host: { handling: 'mapped', note: 'same' },
  noServer: { handling: 'mapped', note: 'same: call handleUpgrade() yourself' },
  path: { handling: 'mapped', note: 'same (with `server`, Switchyard`s `path` option)' },
  port: { handling: 'mapped', note: 'same: an http.Server answering 426 to plain requests' },
  server: { handling: 'mapped', note: 'same (Switchyard`s `server` option)' },
  verifyClient: {
    handling: 'mapped',
    note: 'runs in the upgrade hook (`onUpgrade`), sync or with the (info, cb) callback',
  },
  WebSocket: {
    handling: 'mapped',
    note: 'a subclass of switchyard/ws`s WebSocket for server-side connections',
  },
};

const TLS_NOTE = 'passed to connect() in `tls`';

/** `new WebSocket(address, protocols, options)`. */
export const WS_CLIENT_OPTIONS: Readonly<Record<string, WsOptionRule>> = {
  ...COMMON,
  finishRequest: {
    handling: 'unsupported',
    note: 'the request is written by Switchyard`s core; set request headers with `headers`',
  },
  followRedirects: { handling: 'mapped', note: 'same (at most `maxRedirects`, default 10)' },
  generateMask: {
    handling: 'unsupported',
    note: 'masks are always random (RFC 6455 §5.3)',
  },
  handshakeTimeout: { handling: 'mapped', note: 'same; Switchyard default 10 s (ws: none)' },
  maxRedirects: { handling: 'mapped', note: 'the number given to followRedirects' },
  origin: { handling: 'mapped', note: 'same' },
  protocolVersion: {
    handling: 'unsupported',
    harmless: isUndefinedOr(13),
    note: 'only version 13 (RFC 6455) is spoken',
  },
  // The http.request() options ws passes on.
  headers: { handling: 'mapped', note: 'same' },
  auth: { handling: 'mapped', note: 'sent as Authorization: Basic, as ws does' },
  agent: {
    handling: 'unsupported',
    note: 'use the `proxy` option (an HTTP CONNECT proxy URL; HTTPS_PROXY/HTTP_PROXY are honoured by default)',
  },
  createConnection: { handling: 'unsupported', note: 'connections are opened by connect()' },
  socketPath: { handling: 'unsupported', note: 'IPC (ws+unix:) URLs are not supported' },
  localAddress: { handling: 'unsupported', note: 'binding the local address is not supported' },
  family: { handling: 'unsupported', note: 'the address family follows the host name' },
  lookup: { handling: 'unsupported', note: 'custom DNS lookup is not supported' },
  ca: { handling: 'mapped', note: TLS_NOTE },
  cert: { handling: 'mapped', note: TLS_NOTE },
  key: { handling: 'mapped', note: TLS_NOTE },
  pfx: { handling: 'mapped', note: TLS_NOTE },
  passphrase: { handling: 'mapped', note: TLS_NOTE },
  rejectUnauthorized: { handling: 'mapped', note: TLS_NOTE },
  servername: { handling: 'mapped', note: TLS_NOTE },
  checkServerIdentity: { handling: 'mapped', note: TLS_NOTE },
  ciphers: { handling: 'mapped', note: TLS_NOTE },
  minVersion: { handling: 'mapped', note: TLS_NOTE },
  maxVersion: { handling: 'mapped', note: TLS_NOTE },
  secureContext: { handling: 'mapped', note: TLS_NOTE },
};

/** The TLS options among {@link WS_CLIENT_OPTIONS}. */
export const TLS_OPTION_NAMES: readonly string[] = Object.keys(WS_CLIENT_OPTIONS).filter(
  (name) => WS_CLIENT_OPTIONS[name].note === TLS_NOTE,
);

/**
 * Splits `options` into the ws options (checked against `table`) and the rest, which pass
 * through to Switchyard.
 * @throws InvalidOptionError for an unsupported ws option.
 */
export function splitOptions(
  options: Record<string, unknown>,
  table: Readonly<Record<string, WsOptionRule>>,
  what: string,
): { ws: Record<string, unknown>; rest: Record<string, unknown> } {
  const ws: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options)) {
    const rule = Object.hasOwn(table, name) ? table[name] : undefined;
    if (rule === undefined) {
      if (value !== undefined) rest[name] = value;
      continue;
    }
    if (rule.handling === 'unsupported' && !(rule.harmless?.(value) ?? value === undefined)) {
      throw new InvalidOptionError(
        name,
        `switchyard/ws: the ${what} option \`${name}\` is not supported: ${rule.note}. See docs/migrating-from-ws.md.`,
      );
    }
    ws[name] = value;
  }
  return { ws, rest };
}

/** ws's "0 means no limit" for maxPayload and maxFragments. */
export function limit(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return n === 0 ? Number.MAX_SAFE_INTEGER : n;
}

/** ws's permessage-deflate option object, as far as it differs from Switchyard's. */
export interface WsPerMessageDeflateOptions extends PerMessageDeflateConfig {
  zlibDeflateOptions?: { level?: number; memLevel?: number; [option: string]: unknown };
  zlibInflateOptions?: Record<string, unknown>;
  concurrencyLimit?: number;
}

/** Translates ws's perMessageDeflate to Switchyard's (see WS_SERVER_OPTIONS.perMessageDeflate). */
export function mapDeflate(
  value: boolean | WsPerMessageDeflateOptions | undefined,
  setConcurrency: (limit: number) => void,
): boolean | PerMessageDeflateConfig | undefined {
  if (value === undefined || typeof value === 'boolean') return value;
  const {
    zlibDeflateOptions,
    zlibInflateOptions: _inflate,
    concurrencyLimit,
    ...config
  } = value as WsPerMessageDeflateOptions;
  if (concurrencyLimit !== undefined) setConcurrency(concurrencyLimit);
  const out: PerMessageDeflateConfig = { ...config };
  if (zlibDeflateOptions?.level !== undefined) out.level = zlibDeflateOptions.level;
  if (zlibDeflateOptions?.memLevel !== undefined) out.memLevel = zlibDeflateOptions.memLevel;
  return out;
}
