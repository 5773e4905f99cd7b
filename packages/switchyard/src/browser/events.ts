/**
 * The events of the browser `ReconnectingWebSocket`: plain `Event`s with the fields that the
 * Node class passes as listener arguments (`open` its attempt, `message` its meta, `reconnecting`
 * its attempt, delay and cause ...), so that the two read alike.
 */
import type { DisconnectCause } from '../core/reconnect.js';
import type { GapInfo, MessageMeta } from '../core/resume.js';
import type { WebSocketLike } from './socket.js';

/** What a message carries: text as a string, binary as the `binaryType` asks. */
export type MessageData = string | ArrayBuffer | Blob;

/** `open`: a socket opened, the first (`attempt` 0) or a new one after a drop. */
export class ReconnectingOpenEvent extends Event {
  /** 0 for the first socket, then 1, 2 ... for each socket that opened after a drop. */
  readonly attempt: number;
  /** The native socket that opened. */
  readonly socket: WebSocketLike;
  constructor(attempt: number, socket: WebSocketLike) {
    super('open');
    this.attempt = attempt;
    this.socket = socket;
  }
}

/** `message`: a message of any socket of the logical connection. */
export class ReconnectingMessageEvent extends Event {
  readonly data: MessageData;
  /** `{ topic, position }` for a topic message under the resume exchange, else undefined. */
  readonly meta: MessageMeta | undefined;
  constructor(data: MessageData, meta: MessageMeta | undefined) {
    super('message');
    this.data = data;
    this.meta = meta;
  }
}

/** `reconnecting`: a socket ended and another will be tried after `delay` ms. */
export class ReconnectingEvent extends Event {
  /** 1 for the first try after a drop, 2 for the next ... (reset by an open). */
  readonly attempt: number;
  /** The backoff drawn for it, in ms. */
  readonly delay: number;
  /** Why the socket ended: `{ kind: 'close', code, reason }` or `{ kind: 'network', error }`. */
  readonly cause: DisconnectCause;
  constructor(attempt: number, delay: number, cause: DisconnectCause) {
    super('reconnecting');
    this.attempt = attempt;
    this.delay = delay;
    this.cause = cause;
  }
}

/** `gap`: topic positions the server could no longer replay; reload what they described. */
export class GapEvent extends Event implements GapInfo {
  readonly topic: string;
  /** The first lost position. */
  readonly from: number;
  /** The last lost position, or null when unknown (the server's sequence restarted). */
  readonly to: number | null;
  constructor(gap: GapInfo) {
    super('gap');
    this.topic = gap.topic;
    this.from = gap.from;
    this.to = gap.to;
  }
}

/** `close`: the logical connection is over; nothing follows it. */
export class ReconnectingCloseEvent extends Event {
  readonly code: number;
  readonly reason: string;
  /** Whether it ended with a closing handshake (false after a failure, or giving up). */
  readonly wasClean: boolean;
  constructor(code: number, reason: string, wasClean: boolean) {
    super('close');
    this.code = code;
    this.reason = reason;
    this.wasClean = wasClean;
  }
}

/** `error`: a socket that failed, a full queue, giving up. `error.code` says which. */
export class ReconnectingErrorEvent extends Event {
  readonly error: Error;
  readonly message: string;
  constructor(error: Error) {
    super('error');
    this.error = error;
    this.message = error.message;
  }
}

/** The events of a browser `ReconnectingWebSocket` by name, for `addEventListener`. */
export interface ReconnectingWebSocketEventMap {
  open: ReconnectingOpenEvent;
  message: ReconnectingMessageEvent;
  reconnecting: ReconnectingEvent;
  gap: GapEvent;
  close: ReconnectingCloseEvent;
  error: ReconnectingErrorEvent;
}
