/**
 * Switchyard: WebSocket (RFC 6455) server and client, and HTTP Upgrade negotiation
 * (RFC 9110 §7.8), for Node.js. The protocol itself is the sans-I/O core in `switchyard/core`.
 */
export {
  WebSocketServer,
  reject,
  SERVER_DEFAULTS,
  type ServerOptions,
  type ServerEvents,
  type UpgradeHook,
  type HandshakeRequest,
  type UpgradeInfo,
  type UpgradeDecision,
  type UpgradeAcceptance,
  type UpgradeRejection,
  type OriginPolicy,
  type ProtocolHandler,
} from './node/server.js';
export {
  WebSocket,
  type WebSocketOptions,
  type WebSocketEvents,
  type SendData,
  type SendOptions,
  type IncomingMessageData,
  type HandshakeResponse,
} from './node/websocket.js';
export { connect, proxyFromEnv, type ConnectOptions } from './node/client.js';
export type { LeanRequest } from './node/lean-http.js';
export { BrowserWebSocket, CloseEvent } from './node/browser.js';
export {
  ReconnectingWebSocket,
  type ReconnectingWebSocketOptions,
  type ReconnectingWebSocketEvents,
  type MessageMeta,
  type GapInfo,
} from './node/reconnecting.js';
export {
  RECONNECT_DEFAULTS,
  RETRYABLE_CLOSE_CODES,
  RETRYABLE_HANDSHAKE_STATUSES,
  type ReconnectOptions,
  type DisconnectCause,
} from './core/reconnect.js';
export { RESUME_PROTOCOL, RESUME_QUERY_PARAM } from './core/resume.js';
export { CHANNEL_NAMES, consoleLogger, type Logger } from './node/diagnostics.js';
export {
  SwitchyardError,
  RemoteProtocolError,
  LocalProtocolError,
  ConnectionError,
  UnexpectedResponseError,
  InvalidOptionError,
  ERROR_CODES,
  type ErrorCode,
} from './core/errors.js';
export { ReadyState, CONNECTION_DEFAULTS, type ReadyStateValue } from './core/connection.js';
export {
  DEFLATE_DEFAULTS,
  setDeflateConcurrency,
  type PerMessageDeflateConfig,
} from './node/deflate.js';
export type { DeflateParams, PerMessageDeflateOptions } from './core/permessage-deflate.js';
export {
  PubSub,
  PUBSUB_DEFAULTS,
  type PubSubOptions,
  type PubSubStats,
  type PublishOptions,
  type SlowConsumerPolicy,
} from './pubsub/topics.js';
export {
  BackplaneError,
  InProcessBackplane,
  InProcessBus,
  type Backplane,
  type BackplaneHost,
  type BackplaneMessage,
  type BackplaneStage,
  type ReplayStore,
} from './pubsub/backplane.js';
export {
  REPLAY_DEFAULTS,
  ReplayWindow,
  replayAfter,
  type ReplayEntry,
  type ReplayOptions,
  type ReplayResult,
} from './pubsub/replay.js';
export { ClusterBackplane, ClusterRelay, type IpcPeer } from './pubsub/cluster.js';
export {
  createInstanceId,
  decodeEnvelope,
  encodeEnvelope,
  type EnvelopeContents,
} from './pubsub/envelope.js';
