/**
 * Observability: `node:diagnostics_channel` channels, and the one-line logger used when a limit
 * is hit or a peer misbehaves. We publish; the application decides whether to log or meter.
 *
 * @example
 * import diagnostics_channel from 'node:diagnostics_channel';
 * diagnostics_channel.subscribe('switchyard:handshake-rejected', (msg) => {
 *   console.log('rejected', msg.code, msg.status);
 * });
 */
import diagnosticsChannel from 'node:diagnostics_channel';

/** The names of the channels Switchyard publishes to. */
export const CHANNEL_NAMES = {
  /** `{ websocket, role }` when a WebSocket opens. */
  open: 'switchyard:open',
  /** `{ websocket, code, reason }` when a WebSocket closes. */
  close: 'switchyard:close',
  /** `{ websocket, error, stage }` on a protocol violation, a timeout or a listener's exception. */
  error: 'switchyard:error',
  /** `{ code, status, message, remoteAddress, url }` when a handshake is rejected. */
  handshakeRejected: 'switchyard:handshake-rejected',
  /**
   * `{ websocket, topic, bufferedAmount, limit, policy }` for every published message a slow
   * subscriber did not get (policy `drop`), and for every slow subscriber closed.
   */
  pubsubDrop: 'switchyard:pubsub-drop',
  /** `{ error, stage, topic }` when a pub/sub backplane fails (`error` is a BackplaneError). */
  backplaneError: 'switchyard:backplane-error',
} as const;

/** The channels themselves (cheap to publish to when nobody listens). */
export const channels = {
  open: diagnosticsChannel.channel(CHANNEL_NAMES.open),
  close: diagnosticsChannel.channel(CHANNEL_NAMES.close),
  error: diagnosticsChannel.channel(CHANNEL_NAMES.error),
  handshakeRejected: diagnosticsChannel.channel(CHANNEL_NAMES.handshakeRejected),
  pubsubDrop: diagnosticsChannel.channel(CHANNEL_NAMES.pubsubDrop),
  backplaneError: diagnosticsChannel.channel(CHANNEL_NAMES.backplaneError),
};

/**
 * Where Switchyard writes its log lines (limits hit, peers failed, listeners that threw).
 * Pass `logger: false` to silence it, or your own object (pino and console both fit).
 */
export interface Logger {
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** The default logger: one line on stderr per event, prefixed with `switchyard:`. */
export const consoleLogger: Logger = {
  warn(message, fields) {
    console.warn(`switchyard: ${message}${formatFields(fields)}`);
  },
  error(message, fields) {
    console.error(`switchyard: ${message}${formatFields(fields)}`);
  },
};

function formatFields(fields: Record<string, unknown> | undefined): string {
  if (fields === undefined) return '';
  let out = '';
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const text = value instanceof Error ? value.message : String(value);
    out += ` ${key}=${JSON.stringify(text)}`;
  }
  return out;
}

/** Resolves the `logger` option: undefined means the console, false means silence. */
export function resolveLogger(option: Logger | false | undefined): Logger | null {
  if (option === false) return null;
  return option ?? consoleLogger;
}
