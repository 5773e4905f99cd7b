/**
 * The option tables of the Node layer: one per option bag (WebSocket, server, client,
 * heartbeat, permessage-deflate). Each row is the option's name, its check, its default and
 * what it does; `checkOptions` validates input with it, the code reads its defaults from the
 * same constants, and docs/reference.md holds the tables that `formatOptionTable` generates
 * from these rows (a test compares them). See core/options.ts for the machinery.
 *
 * The `insteadOf` entries name the options of `ws` (and of Node's `http.request` / `tls.connect`
 * that ws passes through) that Switchyard does not take, with what to use instead: a ws program
 * whose `verifyClient` were silently ignored would run with its authentication gone.
 */
import { CONNECTION_DEFAULTS } from '../core/connection.js';
import { RECONNECT_OPTIONS } from '../core/reconnecting-client.js';
import { is, type OptionSpec, type OptionTable } from '../core/options.js';
import { DEFLATE_DEFAULTS } from './deflate.js';
import { WEBSOCKET_DEFAULTS } from './websocket.js';

/** The defaults of the heartbeat (`{ interval, timeout }`), on the server and the client. */
export const HEARTBEAT_DEFAULTS = { interval: 30_000, timeout: 30_000 } as const;

/** `heartbeat: { interval, timeout }`. */
export const HEARTBEAT_OPTIONS: OptionTable = {
  owner: 'heartbeat',
  options: [
    {
      name: 'interval',
      check: is.milliseconds,
      default: HEARTBEAT_DEFAULTS.interval,
      defaultText: '30,000 ms',
      meaning: 'a ping after this many ms without traffic',
    },
    {
      name: 'timeout',
      check: is.milliseconds,
      default: HEARTBEAT_DEFAULTS.timeout,
      defaultText: '30,000 ms',
      meaning: 'terminated (1006) when nothing arrives for this many ms more',
    },
  ],
};

/** `perMessageDeflate: { ... }` (RFC 7692); every option is explained in docs/permessage-deflate.md. */
export const DEFLATE_OPTIONS: OptionTable = {
  owner: 'perMessageDeflate',
  options: [
    {
      name: 'serverNoContextTakeover',
      check: is.boolean,
      default: false,
      meaning: 'RFC 7692 §7.1.1.1',
    },
    {
      name: 'clientNoContextTakeover',
      check: is.boolean,
      default: false,
      meaning: 'RFC 7692 §7.1.1.2',
    },
    {
      name: 'serverMaxWindowBits',
      check: is.range(8, 15),
      default: 15,
      meaning: 'RFC 7692 §7.1.2.1',
    },
    {
      name: 'clientMaxWindowBits',
      check: is.anyOf('boolean | number', is.boolean, is.range(8, 15)),
      defaultText: 'server: no limit; client: `true`',
      meaning: 'RFC 7692 §7.1.2.2',
    },
    {
      name: 'threshold',
      check: is.integer(0),
      default: DEFLATE_DEFAULTS.threshold,
      meaning: 'messages smaller than this many bytes are sent uncompressed',
    },
    {
      name: 'level',
      check: is.range(-1, 9),
      default: DEFLATE_DEFAULTS.level,
      meaning: 'the zlib compression level',
    },
    {
      name: 'memLevel',
      check: is.range(1, 9),
      default: DEFLATE_DEFAULTS.memLevel,
      meaning: "zlib's memLevel",
    },
    {
      name: 'releaseAfter',
      check: is.anyOf('number | false', is.literal(false), is.milliseconds),
      default: DEFLATE_DEFAULTS.releaseAfter,
      meaning: 'ms without a compressed message before the zlib contexts are released',
    },
    {
      name: 'syncLimit',
      check: is.integer(0),
      default: DEFLATE_DEFAULTS.syncLimit,
      meaning:
        'messages of at most this many bytes are compressed and inflated on the event loop, larger ones on the thread pool; 0 for the thread pool always',
    },
  ],
  insteadOf: {
    zlibDeflateOptions: 'set `level` and `memLevel` directly in `perMessageDeflate`.',
    zlibInflateOptions: 'there is no equivalent; inflation is bounded by `maxPayload`.',
    concurrencyLimit:
      'call `setDeflateConcurrency(n)` once: the cap on zlib jobs is shared by the process.',
  },
};

const TEXT_ALWAYS_VALIDATED =
  'there is no equivalent: text is always validated as UTF-8 (RFC 6455 §8.1); send binary messages to skip it.';
const PINGS_ANSWERED = 'there is no equivalent: pings are always answered (RFC 6455 §5.5.2).';
const NO_EQUIVALENT = 'there is no equivalent option.';

/** Options of every WebSocket, taken by the server (for each connection) and by `connect()`. */
export const WEBSOCKET_OPTION_SPECS: readonly OptionSpec[] = [
  {
    name: 'maxPayload',
    check: is.integer(0, true),
    default: CONNECTION_DEFAULTS.maxPayload,
    meaning:
      "largest message accepted, checked from the frame header before buffering; bigger ones fail with 1009. A compressed message may take up to `maxPayload` plus deflate's worst-case expansion on the wire (about 1.14 ×; incompressible data grows slightly), and its inflated size is held to `maxPayload`",
  },
  {
    name: 'maxFragments',
    check: is.integer(1, true),
    default: CONNECTION_DEFAULTS.maxFragments,
    defaultText: 'no limit',
    meaning:
      'most frames one message may be split into; more fail with 1009. Whatever it is, a message whose frame headers outweigh its payload by more than 64 KiB (a flood of empty fragments) fails with 1009',
  },
  {
    name: 'maxBufferedAmount',
    check: is.integer(0, true),
    default: WEBSOCKET_DEFAULTS.maxBufferedAmount,
    meaning:
      'outgoing bytes that may wait for a slow reader before the connection is failed (`SWITCHYARD_ERR_BUFFER_FULL`) and destroyed; with permessage-deflate, messages waiting for the compressor count at their uncompressed size, checked at every send',
  },
  {
    name: 'highWaterMark',
    check: is.integer(0, true),
    default: WEBSOCKET_DEFAULTS.highWaterMark,
    meaning: '`send()` returns false from this `bufferedAmount` on',
  },
  {
    name: 'closeTimeout',
    check: is.milliseconds,
    default: WEBSOCKET_DEFAULTS.closeTimeout,
    defaultText: '10,000 ms',
    meaning:
      "how long to wait for the peer's close frame, and for a client, for the server to close TCP",
  },
  {
    name: 'maxQueuedMessages',
    check: is.integer(1, true),
    default: WEBSOCKET_DEFAULTS.maxQueuedMessages,
    meaning:
      'messages waiting in the async iterator before reading pauses (reading also pauses once they hold `maxPayload` bytes)',
  },
  {
    name: 'textAsBuffer',
    check: is.boolean,
    default: false,
    meaning: 'deliver text as a `Buffer` (saves the decode)',
  },
  {
    name: 'maxControlFramesPerSecond',
    check: is.integer(0, true),
    default: WEBSOCKET_DEFAULTS.maxControlFramesPerSecond,
    meaning:
      'pings and pongs the peer may send per second (together); one more fails with 1008 (`SWITCHYARD_ERR_CONTROL_RATE`). `Infinity` turns it off',
  },
  {
    name: 'perMessageDeflate',
    check: is.anyOf(
      'boolean | object',
      is.boolean,
      is.bag('object', DEFLATE_OPTIONS, 'perMessageDeflate'),
    ),
    default: false,
    defaultText: '`false` (`BrowserWebSocket`: `true`)',
    meaning:
      'permessage-deflate (RFC 7692): `true` or an options object (`threshold`, window bits, context takeover, `level`, `memLevel`, `releaseAfter`, `syncLimit`). Every option and its memory cost: [permessage-deflate.md](permessage-deflate.md)',
  },
];

/** The `ws` names that mean the same on both sides, and what to use instead. */
const WS_COMMON_INSTEAD: Readonly<Record<string, string>> = {
  skipUTF8Validation: TEXT_ALWAYS_VALIDATED,
  autoPong: PINGS_ANSWERED,
  allowSynchronousEvents: NO_EQUIVALENT,
};

/** The WebSocket options alone (the reference's "WebSocket options" table). */
export const WEBSOCKET_OPTIONS: OptionTable = {
  owner: 'WebSocket',
  options: WEBSOCKET_OPTION_SPECS,
  insteadOf: WS_COMMON_INSTEAD,
};

const LOGGER_CHECK = is.anyOf('Logger | false', is.literal(false), {
  type: 'Logger',
  expected: 'an object with `warn` and `error` methods',
  test: (v) =>
    typeof v === 'object' &&
    v !== null &&
    typeof (v as { warn?: unknown }).warn === 'function' &&
    typeof (v as { error?: unknown }).error === 'function',
});

const HEARTBEAT_CHECK = is.anyOf(
  '{ interval?, timeout? } | false',
  is.literal(false),
  is.bag('object', HEARTBEAT_OPTIONS, 'heartbeat'),
);

/** The defaults of the server's options (`ServerOptions`). */
export const SERVER_DEFAULTS = {
  handshakeTimeout: 10_000,
  maxHeaderBytes: 16 * 1024,
  /** Header fields in one request head (the standalone server); 431 above. */
  maxHeaders: 100,
  maxConnections: 100_000,
  maxPendingHandshakes: 1024,
  heartbeat: HEARTBEAT_DEFAULTS,
} as const;

const defaults = SERVER_DEFAULTS;

/** The option table of `new WebSocketServer(options)`. */
export const SERVER_OPTIONS: OptionTable = {
  owner: 'WebSocketServer',
  options: [
    {
      name: 'port',
      check: is.range(0, 65535),
      meaning: 'listen on this port at once (0: any free port)',
    },
    {
      name: 'host',
      check: is.string,
      defaultText: "Node's default",
      meaning: 'the address to listen on with `port`',
    },
    {
      name: 'server',
      check: {
        type: 'http.Server | https.Server | http2 server',
        expected: 'an http, https or http2 server',
        test: (v) =>
          typeof v === 'object' &&
          v !== null &&
          typeof (v as { on?: unknown }).on === 'function' &&
          typeof (v as { listen?: unknown }).listen === 'function',
      },
      meaning:
        'an `http`/`https` server to attach to, or an `http2` server (secure or cleartext): then HTTP/2 extended CONNECT streams are served too, and `SETTINGS_ENABLE_CONNECT_PROTOCOL` is advertised ([WebSocket over HTTP/2](http2.md)). Several WebSocketServers (on different `path`s) and other libraries (`ws`, socket.io) may share one server: each takes only the upgrades it serves; see [Several endpoints on one server](#several-endpoints-on-one-server)',
    },
    {
      name: 'path',
      check: is.anyOf('string | string[]', is.string, is.arrayOf(is.string)),
      defaultText: 'any path',
      meaning:
        'a path or list of paths served (exact pathname match); upgrades to other paths are left to the other `upgrade` listeners of an attached server, and get 404 when nobody takes them',
    },
    {
      name: 'protocols',
      check: is.anyOf('string[] | function', is.arrayOf(is.string), is.function),
      defaultText: 'none',
      meaning: 'subprotocols served, in order of preference, or `(offered, req) => chosen`',
    },
    {
      name: 'origin',
      check: is.anyOf(
        "'same-origin' | 'any' | string[] | function",
        is.oneOf(['same-origin', 'any']),
        is.arrayOf(is.string),
        is.function,
      ),
      default: 'same-origin',
      meaning:
        "who may connect, by `Origin`: `'same-origin'` (a request with an Origin header must come from the request's own host; requests without Origin, from non-browser clients, are accepted), `'any'`, a list of allowed origins, or `(origin, req) => boolean`; refused with 403",
    },
    {
      name: 'onUpgrade',
      check: is.function,
      meaning: 'async hook, see [below](#the-upgrade-hook)',
    },
    {
      name: 'handshakeTimeout',
      check: is.milliseconds,
      default: defaults.handshakeTimeout,
      defaultText: '10,000 ms',
      meaning:
        'longest time for the request head to arrive and for the hook to decide; 503 after that',
    },
    {
      name: 'maxHeaderBytes',
      check: is.integer(1),
      default: defaults.maxHeaderBytes,
      meaning: 'largest request head, in bytes, the standalone server accepts (431 above)',
    },
    {
      name: 'maxHeaders',
      check: is.integer(1),
      default: defaults.maxHeaders,
      meaning: 'most header fields in a request head on the standalone server (431 above)',
    },
    {
      name: 'maxConnections',
      check: is.integer(0, true),
      default: defaults.maxConnections,
      meaning: 'most open WebSockets; further upgrades get 503',
    },
    {
      name: 'maxPendingHandshakes',
      check: is.integer(0, true),
      default: defaults.maxPendingHandshakes,
      meaning: 'most handshakes waiting on the hook at once; 503 above',
    },
    {
      name: 'heartbeat',
      check: HEARTBEAT_CHECK,
      default: HEARTBEAT_DEFAULTS,
      defaultText: '`{ interval: 30000, timeout: 30000 }`',
      meaning:
        'a ping after `interval` ms without traffic; terminated (1006, `SWITCHYARD_ERR_IDLE_TIMEOUT`) when nothing arrives for `timeout` ms more; `false` turns it off',
    },
    {
      name: 'logger',
      check: LOGGER_CHECK,
      defaultText: 'the console',
      meaning: 'where log lines go (`{ warn, error }`), `false` for none',
    },
    {
      name: 'pubsub',
      check: is.object,
      defaultText: "local topics; `{ slowConsumer: { limit: 1 MiB, policy: 'drop' } }`",
      meaning:
        "topics: `backplane` (relay to other instances), `slowConsumer.limit` (bytes) and `slowConsumer.policy` (`'drop'`, `'close-1008'`, `'close-1013'`); see [pubsub.md](pubsub.md)",
    },
  ],
  inherits: {
    options: WEBSOCKET_OPTION_SPECS,
    row: '| all [WebSocket options](#websocket-options) | | | applied to every connection |',
  },
  insteadOf: {
    ...WS_COMMON_INSTEAD,
    verifyClient:
      "ws's `verifyClient` is the `onUpgrade` hook here: `onUpgrade: async (req, info) => (allowed ? { context } : reject(401))`. It is never skipped.",
    noServer:
      'leave out both `server` and `port`, and call `server.handleUpgrade(req, socket, head)` from your own `upgrade` listener.',
    clientTracking:
      '`server.clients` always holds the open connections; there is nothing to turn on or off.',
    handleProtocols:
      'use `protocols`: a list in order of preference, or `(offered, req) => chosen`.',
    backlog:
      'create the `http.Server` yourself, call `listen(port, host, backlog)` on it, and pass it as `server`.',
    WebSocket:
      'there is no equivalent; attach your data to `ws.context` from the `onUpgrade` hook.',
    callback: 'listen to the `listening` event, or `await server.listen(port, host)`.',
  },
};

/** `server.close({ code, reason, timeout })`. */
export const SERVER_CLOSE_OPTIONS: OptionTable = {
  owner: 'WebSocketServer.close()',
  options: [
    {
      name: 'code',
      check: is.range(1000, 4999),
      default: 1001,
      meaning: 'the close code sent to every connection',
    },
    {
      name: 'reason',
      check: is.string,
      defaultText: "`'Server shutting down'`",
      meaning: 'the close reason',
    },
    {
      name: 'timeout',
      check: is.milliseconds,
      default: 5000,
      defaultText: '5,000 ms',
      meaning: 'how long to wait before terminating the connections left',
    },
  ],
};

/** The defaults of `connect()`'s own options. */
export const CONNECT_DEFAULTS = { handshakeTimeout: 10_000, maxHeaderBytes: 16 * 1024 } as const;

const TLS_INSTEAD = (name: string) =>
  `TLS settings go in \`tls\`: \`connect(url, { tls: { ${name} } })\`.`;

/** The option table of `connect(url, options)` (and `new BrowserWebSocket(url, protocols, options)`). */
export const CONNECT_OPTIONS: OptionTable = {
  owner: 'connect()',
  options: [
    {
      name: 'protocols',
      check: is.anyOf('string | string[]', is.string, is.arrayOf(is.string)),
      defaultText: 'none',
      meaning: 'subprotocols to offer, in order of preference',
    },
    {
      name: 'headers',
      check: is.object,
      defaultText: 'none',
      meaning: 'extra request headers (those of the handshake itself are refused)',
    },
    { name: 'origin', check: is.string, defaultText: 'none', meaning: 'the `Origin` header' },
    {
      name: 'host',
      check: is.string,
      defaultText: "the URL's `host[:port]`",
      meaning:
        "the `Host` header (`:authority` over HTTP/2), for a virtual host reached by address; the connection, TLS SNI and the certificate check still use the URL's host (`tls.servername` changes those). A `Host` in `headers` is refused with a hint naming this option",
    },
    {
      name: 'handshakeTimeout',
      check: is.milliseconds,
      default: CONNECT_DEFAULTS.handshakeTimeout,
      defaultText: '10,000 ms',
      meaning: 'from the first TCP connect to the 101, redirects included',
    },
    {
      name: 'signal',
      check: {
        type: 'AbortSignal',
        expected: 'an AbortSignal',
        test: (v) =>
          typeof v === 'object' &&
          v !== null &&
          typeof (v as { aborted?: unknown }).aborted === 'boolean' &&
          typeof (v as { addEventListener?: unknown }).addEventListener === 'function',
      },
      meaning: 'an `AbortSignal` that aborts the handshake',
    },
    {
      name: 'followRedirects',
      check: is.anyOf('boolean | number', is.boolean, is.integer(0)),
      default: false,
      meaning: '`true` follows at most 5 redirects; a number sets the most',
    },
    {
      name: 'http2',
      check: is.anyOf('boolean | ClientHttp2Session', is.boolean, is.object),
      default: false,
      meaning:
        '`true`: open the WebSocket as a stream of an HTTP/2 connection (RFC 8441 extended CONNECT), one connection shared per origin, falling back to HTTP/1.1 when the server does not advertise extended CONNECT; or a `ClientHttp2Session` of your own (no fallback: `SWITCHYARD_ERR_HTTP2_NO_EXTENDED_CONNECT`). See [WebSocket over HTTP/2](http2.md)',
    },
    {
      name: 'proxy',
      check: is.anyOf('string | false', is.string, is.literal(false)),
      defaultText: 'from the environment',
      meaning:
        'an HTTP proxy URL (CONNECT tunnel, credentials in the URL), or `false`; by default `HTTPS_PROXY` for wss and `HTTP_PROXY` for ws, honouring `NO_PROXY`',
    },
    {
      name: 'tls',
      check: is.object,
      meaning:
        '`tls.connect` options for wss (`ca`, `cert`, `key`, `rejectUnauthorized`, `servername` …)',
    },
    {
      name: 'maxHeaderBytes',
      check: is.integer(1),
      default: CONNECT_DEFAULTS.maxHeaderBytes,
      meaning: 'largest response head accepted, in bytes',
    },
    {
      name: 'heartbeat',
      check: HEARTBEAT_CHECK,
      default: HEARTBEAT_DEFAULTS,
      defaultText: '`{ interval: 30000, timeout: 30000 }`',
      meaning: 'as on the server',
    },
    {
      name: 'logger',
      check: LOGGER_CHECK,
      defaultText: 'the console',
      meaning: 'as on the server',
    },
  ],
  inherits: {
    options: WEBSOCKET_OPTION_SPECS,
    row: '| all [WebSocket options](#websocket-options) | | | |',
  },
  insteadOf: {
    ...WS_COMMON_INSTEAD,
    maxRedirects: 'use `followRedirects: n` (a number) to follow at most n redirects.',
    protocolVersion: 'there is no equivalent: only version 13 (RFC 6455) exists.',
    agent:
      'use `proxy` for an HTTP proxy and `tls` for TLS settings; each WebSocket has its own connection (or `http2: true` to share one).',
    createConnection: NO_EQUIVALENT,
    finishRequest: 'add request headers with `headers`.',
    generateMask: 'there is no equivalent: masks always come from a CSPRNG (RFC 6455 §10.3).',
    auth: "send `headers: { Authorization: 'Basic …' }`.",
    localAddress: NO_EQUIVALENT,
    family: NO_EQUIVALENT,
    lookup: NO_EQUIVALENT,
    socketPath: NO_EQUIVALENT,
    rejectUnauthorized: TLS_INSTEAD('rejectUnauthorized'),
    ca: TLS_INSTEAD('ca'),
    cert: TLS_INSTEAD('cert'),
    key: TLS_INSTEAD('key'),
    pfx: TLS_INSTEAD('pfx'),
    passphrase: TLS_INSTEAD('passphrase'),
    servername: TLS_INSTEAD('servername'),
    checkServerIdentity: TLS_INSTEAD('checkServerIdentity'),
    ciphers: TLS_INSTEAD('ciphers'),
  },
};

/** The option table of `new ReconnectingWebSocket(url, options)`: `connect()`'s but `signal`. */
export const RECONNECTING_OPTIONS: OptionTable = {
  ...CONNECT_OPTIONS,
  owner: 'ReconnectingWebSocket',
  options: [
    ...CONNECT_OPTIONS.options.filter((spec) => spec.name !== 'signal'),
    {
      name: 'reconnect',
      check: is.bag('object', RECONNECT_OPTIONS, 'reconnect'),
      meaning: "backoff, retry rules and the offline queue's limits",
    },
    {
      name: 'resume',
      check: is.boolean,
      default: false,
      meaning: 'speak the resume exchange (docs/resume.md)',
    },
  ],
  insteadOf: {
    ...CONNECT_OPTIONS.insteadOf,
    signal: 'call `close()` to stop the WebSocket and its reconnection.',
  },
};
