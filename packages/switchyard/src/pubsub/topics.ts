/**
 * Topics: publish once, deliver to every subscriber of one server, and through a backplane to
 * the subscribers of every other instance.
 *
 * Theory of operation. A topic maps to the set of its subscribers (so a subscriber count is a
 * Set's size); each WebSocket keeps the set of its own topics, so that a closing connection
 * leaves all of them in one pass. A published message is framed once (RFC 6455 §5.2, unmasked:
 * only servers publish) and the same chunks are queued on every subscriber's connection: no
 * copy and no second framing per subscriber. The queues are written at the end of the tick, so
 * a burst of publishes costs each subscriber one vectored write (what corking does), not one
 * system call per message.
 *
 * Slow consumers. Before writing, a subscriber's `bufferedAmount` is compared with the limit; a
 * subscriber past it is either skipped for this message (`drop`) or closed (`close-1008`,
 * `close-1013`), so that one reader that stopped reading neither holds the others back nor grows
 * memory without bound. Every drop and close is counted in {@link PubSubStats} and published on
 * `switchyard:pubsub-drop`.
 *
 * A backplane (see backplane.ts) is told when a topic gets its first local subscriber and when
 * it loses its last one, gets every local publish, and hands back publishes of other instances,
 * which are fanned out here like local ones (to every subscriber: the publisher is elsewhere).
 * Whatever it throws or rejects is caught and reported with its stage.
 */
import { isUtf8 } from 'node:buffer';
import { LocalProtocolError } from '../core/errors.js';
import { checkOptions, is, type OptionTable } from '../core/options.js';
import { ReadyState } from '../core/connection.js';
import { Opcode, serializeFrame } from '../core/frame.js';
import { compressShared } from '../node/deflate.js';
import { channels, type Logger } from '../node/diagnostics.js';
import {
  toBytes,
  type PublishOptions,
  type SendData,
  type TopicHub,
  type WebSocket,
} from '../node/websocket.js';
import {
  BackplaneError,
  type Backplane,
  type BackplaneHost,
  type BackplaneMessage,
  type BackplaneStage,
} from './backplane.js';

/**
 * What happens to a subscriber whose `bufferedAmount` is past the limit when a message is
 * published: `drop` skips it for this message (it stays subscribed and gets later messages once
 * it has caught up); `close-1008` and `close-1013` close it with 1008 (policy violation) or 1013
 * (try again later, RFC 6455 §7.4.1 and the IANA registry), and it gets nothing more.
 */
export type SlowConsumerPolicy = 'drop' | 'close-1008' | 'close-1013';

/** Options of a server's topics (`new WebSocketServer({ pubsub: { ... } })`). */
export interface PubSubOptions {
  /**
   * Relays publishes to other instances (processes, machines): `ClusterBackplane`,
   * `RedisBackplane` from `@switchyard/redis`, or your own. Default: none, topics are local to
   * this server. The server starts it, and closes it when the server closes.
   */
  backplane?: Backplane;
  /** What to do with subscribers that do not keep up. */
  slowConsumer?: {
    /**
     * Bytes that may wait in a subscriber's `bufferedAmount` before it counts as slow. Default
     * 1 MiB. Published frames are shared between subscribers, so this bounds how far behind a
     * subscriber may fall more than how much memory it holds.
     */
    limit?: number;
    /** Default `drop`. */
    policy?: SlowConsumerPolicy;
  };
}

export type { PublishOptions };

/** Counters of one server's topics, since it started. Cheap: plain fields. */
export interface PubSubStats {
  /** Messages published on this server (`server.publish` and `ws.publish`). */
  published: number;
  /** Messages received from other instances through the backplane. */
  received: number;
  /** Messages written to local subscribers (one per subscriber). */
  delivered: number;
  /** Messages not written to a subscriber because it was slow (policy `drop`). */
  dropped: number;
  /** Subscribers closed because they were slow (policies `close-1008`, `close-1013`). */
  closedSlow: number;
  /** Failures reported by the backplane (each also on `switchyard:backplane-error`). */
  backplaneErrors: number;
  /**
   * Compressions of published messages: one per message and set of deflate settings, shared by
   * every subscriber that negotiated server_no_context_takeover with those settings.
   */
  compressed: number;
}

/** The defaults of {@link PubSubOptions}. */
export const PUBSUB_DEFAULTS = {
  slowConsumer: { limit: 1024 * 1024, policy: 'drop' },
} as const;

const SLOW_CONSUMER_OPTIONS: OptionTable = {
  owner: 'pubsub.slowConsumer',
  options: [
    {
      name: 'limit',
      check: is.integer(0, true),
      default: PUBSUB_DEFAULTS.slowConsumer.limit,
      meaning: "bytes in a subscriber's `bufferedAmount` before it counts as slow",
    },
    {
      name: 'policy',
      check: is.oneOf(['drop', 'close-1008', 'close-1013']),
      default: PUBSUB_DEFAULTS.slowConsumer.policy,
      meaning: 'what happens to a slow subscriber',
    },
  ],
};

/** The option table of the server's `pubsub` option. */
export const PUBSUB_OPTIONS: OptionTable = {
  owner: 'pubsub',
  options: [
    {
      name: 'backplane',
      check: {
        type: 'Backplane',
        expected: 'a Backplane (an object with start, publish and close methods)',
        test: (v) =>
          typeof v === 'object' &&
          v !== null &&
          typeof (v as { publish?: unknown }).publish === 'function',
      },
      defaultText: 'none: local topics',
      meaning: 'relays publishes to other instances',
    },
    {
      name: 'slowConsumer',
      check: is.bag('object', SLOW_CONSUMER_OPTIONS, 'pubsub.slowConsumer'),
      defaultText: "`{ limit: 1 MiB, policy: 'drop' }`",
      meaning: 'what to do with subscribers that do not keep up',
    },
  ],
};

const NO_TOPICS: ReadonlySet<string> = new Set<string>();

/** The topics of one server. Reached as `server.pubsub`; created by the server. */
export class PubSub implements TopicHub {
  /** Counters since the server started. */
  readonly stats: PubSubStats = {
    published: 0,
    received: 0,
    delivered: 0,
    dropped: 0,
    closedSlow: 0,
    backplaneErrors: 0,
    compressed: 0,
  };
  private readonly topicMap = new Map<string, Set<WebSocket>>();
  private readonly backplane: Backplane | null;
  private readonly limit: number;
  private readonly policy: SlowConsumerPolicy;
  private readonly logger: Logger | null;
  private closed = false;
  /** Subscribers with published messages queued and not written yet; flushed once per tick. */
  private toFlush = new Set<WebSocket>();
  private flushScheduled = false;
  private readonly flushQueued = (): void => {
    this.flushScheduled = false;
    const batch = this.toFlush;
    this.toFlush = new Set();
    for (const ws of batch) ws.flush();
  };

  /** @internal created by the server. */
  constructor(options: PubSubOptions = {}, logger: Logger | null = null) {
    checkOptions(PUBSUB_OPTIONS, options, 'pubsub.');
    this.backplane = options.backplane ?? null;
    this.limit = options.slowConsumer?.limit ?? PUBSUB_DEFAULTS.slowConsumer.limit;
    this.policy = options.slowConsumer?.policy ?? PUBSUB_DEFAULTS.slowConsumer.policy;
    if (!(this.limit >= 0)) {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `pubsub.slowConsumer.limit must be a number of bytes, got ${this.limit}`,
      );
    }
    if (this.policy !== 'drop' && this.policy !== 'close-1008' && this.policy !== 'close-1013') {
      throw new LocalProtocolError(
        'SWITCHYARD_ERR_INVALID_ARGUMENT',
        `pubsub.slowConsumer.policy must be 'drop', 'close-1008' or 'close-1013', got ${String(this.policy)}`,
      );
    }
    this.logger = logger;
    if (this.backplane !== null) {
      const backplane = this.backplane;
      const host: BackplaneHost = {
        deliver: (message) => this.deliverRemote(message),
        reportError: (error) => this.reportError(error),
      };
      this.callBackplane('connect', undefined, () => backplane.start(host));
    }
  }

  /** How many local connections are subscribed to `topic` (O(1)). */
  subscriberCount(topic: string): number {
    return this.topicMap.get(topic)?.size ?? 0;
  }

  /** The topics with at least one local subscriber. */
  topics(): IterableIterator<string> {
    return this.topicMap.keys();
  }

  /**
   * Publishes to every subscriber of `topic` here (but `except`, the publishing connection, if
   * given) and, through the backplane, everywhere else. Returns how many local subscribers the
   * message was written to. Do not change `data` afterwards: it is shared, not copied.
   * @throws LocalProtocolError for a topic that is not a string, or text that is not UTF-8.
   */
  publish(
    topic: string,
    data: SendData,
    options?: PublishOptions,
    except: WebSocket | null = null,
  ): number {
    assertTopic(topic);
    let bytes: Uint8Array;
    let binary: boolean;
    if (typeof data === 'string') {
      bytes = Buffer.from(data, 'utf8');
      binary = options?.binary === true;
    } else {
      bytes = toBytes(data);
      binary = options?.binary !== false;
      // Text given as bytes must be UTF-8, or every subscriber would fail us with 1007.
      if (!binary && !isUtf8(bytes)) {
        throw new LocalProtocolError(
          'SWITCHYARD_ERR_INVALID_ARGUMENT',
          'Text messages must be valid UTF-8',
        );
      }
    }
    this.stats.published++;
    const delivered = this.fanOut(topic, bytes, binary, except);
    if (this.backplane !== null && !this.closed) {
      const backplane = this.backplane;
      const message: BackplaneMessage = { topic, data: bytes, binary };
      this.callBackplane('publish', topic, () => backplane.publish(message));
    }
    return delivered;
  }

  /** @internal `ws.subscribe`: true when newly subscribed. */
  subscribe(ws: WebSocket, topic: string): boolean {
    assertTopic(topic);
    // A connection that is closing would never be unsubscribed again: its close already ran,
    // or will find nothing to remove if we add after it.
    if (ws.readyState !== ReadyState.OPEN) return false;
    const mine = (ws.subscriptions ??= new Set());
    if (mine.has(topic)) return false;
    mine.add(topic);
    let subscribers = this.topicMap.get(topic);
    if (subscribers === undefined) {
      subscribers = new Set();
      this.topicMap.set(topic, subscribers);
      if (this.backplane !== null && !this.closed) {
        const backplane = this.backplane;
        this.callBackplane('subscribe', topic, () => backplane.subscribe(topic));
      }
    }
    subscribers.add(ws);
    return true;
  }

  /** @internal `ws.unsubscribe`: true when it was subscribed. */
  unsubscribe(ws: WebSocket, topic: string): boolean {
    const mine = ws.subscriptions;
    if (mine === null || !mine.delete(topic)) return false;
    this.leave(ws, topic);
    return true;
  }

  /** @internal the connection closed: its subscriptions end. */
  removeAll(ws: WebSocket): void {
    const mine = ws.subscriptions;
    if (mine === null) return;
    ws.subscriptions = null;
    for (const topic of mine) this.leave(ws, topic);
  }

  /** @internal the topics of one connection. */
  topicsOf(ws: WebSocket): ReadonlySet<string> {
    return ws.subscriptions ?? NO_TOPICS;
  }

  /** @internal the server closes: so does the backplane. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const backplane = this.backplane;
    if (backplane === null) return;
    try {
      await backplane.close();
    } catch (error) {
      this.reportError(toBackplaneError('connect', error, undefined));
    }
  }

  private leave(ws: WebSocket, topic: string): void {
    const subscribers = this.topicMap.get(topic);
    if (subscribers === undefined || !subscribers.delete(ws) || subscribers.size > 0) return;
    this.topicMap.delete(topic);
    if (this.backplane !== null && !this.closed) {
      const backplane = this.backplane;
      this.callBackplane('subscribe', topic, () => backplane.unsubscribe(topic));
    }
  }

  private deliverRemote(message: BackplaneMessage): void {
    if (this.closed) return;
    this.stats.received++;
    let topic: string | undefined;
    try {
      topic = message.topic;
      this.fanOut(topic, message.data, message.binary, null);
    } catch (error) {
      this.reportError(toBackplaneError('delivery', error, topic));
    }
  }

  private fanOut(
    topic: string,
    payload: Uint8Array,
    binary: boolean,
    except: WebSocket | null,
  ): number {
    const subscribers = this.topicMap.get(topic);
    if (subscribers === undefined) return 0;
    if (subscribers.size === 1 && subscribers.has(except as WebSocket)) return 0;
    // Framed once for everyone; the chunks are shared, never copied per subscriber. Subscribers
    // that compress without context takeover share one compressed frame per set of settings.
    const opcode = binary ? Opcode.BINARY : Opcode.TEXT;
    const chunks = serializeFrame(opcode, payload);
    // Per set of settings: the compressed frame, or null when compressing did not shrink the
    // message, which then goes plain (RFC 7692 §6: RSV1 is chosen per message).
    let compressed: Map<string, Uint8Array[] | null> | null = null;
    let delivered = 0;
    for (const ws of subscribers) {
      if (ws === except || ws.readyState !== ReadyState.OPEN) continue;
      if (ws.bufferedAmount > this.limit) {
        this.onSlow(ws, topic);
        continue;
      }
      const shared = ws.sharedCompression;
      if (shared !== null && payload.length >= shared.threshold) {
        compressed ??= new Map();
        let frame = compressed.get(shared.key);
        if (frame === undefined) {
          const deflated = compressShared(shared.key, payload);
          // RFC 7692 §6: RSV1 set on the (only) frame of a compressed message.
          frame =
            deflated.length < payload.length
              ? serializeFrame(opcode, deflated, { rsv1: true })
              : null;
          compressed.set(shared.key, frame);
          if (frame !== null) this.stats.compressed++;
        }
        if (frame !== null) ws.sendFramed(frame, true);
        else ws.sendFramed(chunks);
      } else ws.sendFramed(chunks);
      this.toFlush.add(ws);
      delivered++;
    }
    this.stats.delivered += delivered;
    if (delivered > 0 && !this.flushScheduled) {
      // Written at the end of this tick: every message published meanwhile (a burst read in one
      // callback, a loop of publishes) goes to each subscriber in one vectored write.
      this.flushScheduled = true;
      process.nextTick(this.flushQueued);
    }
    return delivered;
  }

  private onSlow(ws: WebSocket, topic: string): void {
    const bufferedAmount = ws.bufferedAmount;
    if (this.policy === 'drop') this.stats.dropped++;
    else {
      this.stats.closedSlow++;
      this.logger?.warn('closing a subscriber that does not keep up', {
        topic,
        bufferedAmount,
        url: ws.url,
      });
      // The close frame waits behind the backlog; the close timer ends the socket if the peer
      // never reads it. Until then nothing more is written (readyState is CLOSING).
      ws.close(this.policy === 'close-1008' ? 1008 : 1013, 'Subscriber too slow');
    }
    if (channels.pubsubDrop.hasSubscribers) {
      channels.pubsubDrop.publish({
        websocket: ws,
        topic,
        bufferedAmount,
        limit: this.limit,
        policy: this.policy,
      });
    }
  }

  private callBackplane(
    stage: BackplaneStage,
    topic: string | undefined,
    call: () => void | Promise<void>,
  ): void {
    try {
      const result = call();
      if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
        (result as Promise<void>).then(undefined, (error: unknown) =>
          this.reportError(toBackplaneError(stage, error, topic)),
        );
      }
    } catch (error) {
      this.reportError(toBackplaneError(stage, error, topic));
    }
  }

  private reportError(error: BackplaneError): void {
    this.stats.backplaneErrors++;
    this.logger?.warn(`backplane ${error.stage} failed: ${error.message}`, {
      topic: error.topic,
      unrelayed: error.unrelayed || undefined,
    });
    if (channels.backplaneError.hasSubscribers) {
      channels.backplaneError.publish({ error, stage: error.stage, topic: error.topic });
    }
  }
}

/** Throws unless `topic` is a string a backplane can carry (at most 65,535 bytes of UTF-8). */
function assertTopic(topic: unknown): asserts topic is string {
  if (typeof topic !== 'string' || topic.length > 0xffff / 3) {
    if (typeof topic === 'string' && Buffer.byteLength(topic) <= 0xffff) return;
    throw new LocalProtocolError(
      'SWITCHYARD_ERR_INVALID_ARGUMENT',
      'A topic is a string of at most 65,535 bytes of UTF-8',
    );
  }
}

function toBackplaneError(
  stage: BackplaneStage,
  error: unknown,
  topic: string | undefined,
): BackplaneError {
  if (error instanceof BackplaneError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new BackplaneError(stage, message, { topic, cause: error });
}
