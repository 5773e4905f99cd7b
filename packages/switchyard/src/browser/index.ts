/**
 * `switchyard/browser`: the reconnecting client over the browser's own `WebSocket`, with the
 * rules of the Node `ReconnectingWebSocket` (backoff with full jitter, a bounded queue while
 * disconnected, the resume exchange) as an `EventTarget`. It imports nothing from Node: bundle
 * it for a page or a worker as it is. See docs/browser.md.
 */
export {
  ReconnectingWebSocket,
  type ReconnectingWebSocketOptions,
  type SendData,
} from './reconnecting.js';
export {
  GapEvent,
  ReconnectingCloseEvent,
  ReconnectingErrorEvent,
  ReconnectingEvent,
  ReconnectingMessageEvent,
  ReconnectingOpenEvent,
  type MessageData,
  type ReconnectingWebSocketEventMap,
} from './events.js';
export type { WebSocketConstructor, WebSocketLike } from './socket.js';
export {
  RECONNECT_DEFAULTS,
  RETRYABLE_CLOSE_CODES,
  type DisconnectCause,
  type ReconnectOptions,
} from '../core/reconnect.js';
export {
  RESUME_PROTOCOL,
  RESUME_QUERY_PARAM,
  type GapInfo,
  type MessageMeta,
} from '../core/resume.js';
export { ReadyState, type ReadyStateValue } from '../core/connection.js';
export {
  SwitchyardError,
  LocalProtocolError,
  ConnectionError,
  InvalidOptionError,
  type ErrorCode,
} from '../core/errors.js';
