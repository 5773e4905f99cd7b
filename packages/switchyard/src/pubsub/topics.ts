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
import {
  DIRECT_HEADER,
  RESUME_PROTOCOL,
  RESUME_QUERY_PARAM,
  encodeGap,
  encodeMessageHeader,
  parseResumePositions,
} from '../core/resume.js';
import { compressShared } from '../node/deflate.js';
import { channels, type Logger } from '../node/diagnostics.js';
import {
  asBuffer,
  toBytes,
  type JoinMemo,
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
import {
  REPLAY_OPTIONS,
  ReplayWindow,
  resolveReplayOptions,
  type ReplayEntry,
  type ReplayOptions,
  type ReplayResult,
} from './replay.js';

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
  /**
   * Resumable topics (docs/resume.md): keep the last messages of each topic so that a client
   * that reconnects with `ReconnectingWebSocket({ resume: true })` gets what it missed, each
   * message once and in order, or a `gap` when the window no longer covers it. Bounds for every
   * topic, or a function that gives them per topic (false: that topic is not replayed). With a
   * backplane that has a shared window (`RedisBackplane`: Redis Streams), the window and the
   * positions live there, the same for every instance. Default: off.
   */
  replay?: ReplayOptions | ((topic: string) => ReplayOptions | false);
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
      name: 'replay',
      check: is.anyOf(
        'ReplayOptions | function',
        is.function,
        is.bag('object', REPLAY_OPTIONS, 'pubsub.replay'),
      ),
      defaultText: 'off',
      meaning:
        'resumable topics: a replay window per topic (bounds, or a function of the topic), docs/resume.md',
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

/** Where a topic of a shared replay window stands on this instance. */
interface SequencedState {
  /** The last position delivered to local subscribers. */
  last: number;
  /** While the window is read back: live messages held until it answers. */
  repairing: BackplaneMessage[] | null;
  /** A resync was asked for during a read: read again when it ends. */
  again: boolean;
}

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
  private readonly replay: NonNullable<PubSubOptions['replay']> | null;
  /** In-process replay windows, by topic (without a shared window in the backplane). */
  private readonly windows = new Map<string, ReplayWindow>();
  /** Resuming subscribers waiting for a shared window's answer: live messages held meanwhile. */
  private readonly catchingUp = new Map<WebSocket, Map<string, BackplaneMessage[]>>();
  /** Topics of a shared window: the last position delivered here, and a repair under way. */
  private readonly sequenced = new Map<string, SequencedState>();
  private closed = false;
  /** Subscribers with published messages queued and not written yet; flushed once per tick. */
  private toFlush = new Set<WebSocket>();
  private flushScheduled = false;
  private readonly flushQueued = (): void => {
    this.flushScheduled = false;
    const batch = this.toFlush;
    this.toFlush = new Set();
    // Subscribers with the same queue (the usual case) share one join of it.
    const memo: JoinMemo = { chunks: null, out: null };
    for (const ws of batch) ws.flush(memo);
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
    this.replay = options.replay ?? null;
    if (this.replay !== null && typeof this.replay !== 'function')
      resolveReplayOptions(this.replay);
    if (this.backplane !== null) {
      const backplane = this.backplane;
      const host: BackplaneHost = {
        deliver: (message) => this.deliverRemote(message),
        reportError: (error) => this.reportError(error),
        resync: (topic) => this.resync(topic),
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
    const bounds = this.replayBounds(topic);
    if (bounds !== null && this.backplane?.replay !== undefined) {
      // The shared window gives the position; every instance, this one included, delivers the
      // message when the backplane hands it back, so all of them deliver in the same order.
      if (!this.closed) {
        const store = this.backplane.replay;
        const message: BackplaneMessage = { topic, data: bytes, binary };
        this.callBackplane('publish', topic, () => store.append(message, bounds));
      }
      return 0;
    }
    let position: number | undefined;
    if (bounds !== null) {
      let window = this.windows.get(topic);
      if (window === undefined) {
        window = new ReplayWindow(bounds);
        this.windows.set(topic, window);
      }
      position = window.append(bytes, binary, Date.now());
    }
    const delivered = this.fanOut(topic, bytes, binary, except, position);
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
    const after = ws.resumePositions?.get(topic);
    if (after !== undefined) {
      ws.resumePositions?.delete(topic);
      this.resume(ws, topic, after);
    }
    return true;
  }

  /**
   * @internal a connection that agreed on the resume exchange: read the positions it presented
   * and mark what is sent to it alone.
   */
  adoptResume(ws: WebSocket, url: string): void {
    if (ws.protocol !== RESUME_PROTOCOL) return;
    const query = new URL(url, 'http://localhost').searchParams.get(RESUME_QUERY_PARAM);
    ws.resumePositions = parseResumePositions(query);
    ws.messagePrefix = DIRECT_HEADER;
  }

  /** Whether resumable topics are on (the server then agrees on `switchyard.resume.v1`). */
  get replayEnabled(): boolean {
    return this.replay !== null;
  }

  /** Sends a resuming subscriber what it missed on `topic` after position `after`. */
  private resume(ws: WebSocket, topic: string, after: number): void {
    const bounds = this.replayBounds(topic);
    if (bounds === null) return;
    const store = this.backplane?.replay;
    if (store === undefined) {
      let window = this.windows.get(topic);
      if (window === undefined) {
        window = new ReplayWindow(bounds);
        this.windows.set(topic, window);
      }
      this.sendReplay(ws, topic, window.since(after, Date.now()));
      return;
    }
    // Live messages that arrive before the shared window answers are held, then sent after the
    // replay, skipping those the replay already had: each message once, in order.
    let held = this.catchingUp.get(ws);
    if (held === undefined) this.catchingUp.set(ws, (held = new Map()));
    const pending: BackplaneMessage[] = [];
    held.set(topic, pending);
    const finish = (result: ReplayResult | null): void => {
      held.delete(topic);
      if (held.size === 0) this.catchingUp.delete(ws);
      if (ws.readyState !== ReadyState.OPEN || ws.subscriptions?.has(topic) !== true) return;
      let last = after;
      if (result !== null) {
        this.sendReplay(ws, topic, result);
        last = result.last;
      } else {
        // The window could not be read: say so, rather than skip messages silently.
        ws.sendFramed(serializeFrame(Opcode.TEXT, encodeGap(topic, after + 1, null)));
      }
      for (const message of pending) {
        if (message.position !== undefined && message.position > last) {
          ws.sendFramed(
            this.frameFor(message.topic, message.data, message.binary, message.position),
          );
        }
      }
      this.scheduleFlush(ws);
    };
    store.range(topic, after, bounds).then(finish, (error: unknown) => {
      this.reportError(toBackplaneError('delivery', error, topic));
      finish(null);
    });
  }

  private sendReplay(ws: WebSocket, topic: string, result: ReplayResult): void {
    if (result.gap !== null) {
      ws.sendFramed(serializeFrame(Opcode.TEXT, encodeGap(topic, result.gap.from, result.gap.to)));
    }
    for (const entry of result.entries as ReplayEntry[]) {
      ws.sendFramed(this.frameFor(topic, entry.data, entry.binary, entry.position));
    }
    this.scheduleFlush(ws);
  }

  /** One message under the resume exchange: its header, then its payload, in one frame. */
  private frameFor(
    topic: string,
    data: Uint8Array,
    binary: boolean,
    position: number,
  ): Uint8Array[] {
    const header = encodeMessageHeader(topic, position);
    const payload = new Uint8Array(header.length + data.length);
    payload.set(header, 0);
    payload.set(data, header.length);
    return serializeFrame(binary ? Opcode.BINARY : Opcode.TEXT, payload).map(asBuffer);
  }

  private scheduleFlush(ws: WebSocket): void {
    this.toFlush.add(ws);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushQueued);
    }
  }

  private replayBounds(topic: string): Required<ReplayOptions> | null {
    const replay = this.replay;
    if (replay === null) return null;
    if (typeof replay !== 'function') return resolveReplayOptions(replay);
    const bounds = replay(topic);
    return bounds === false ? null : resolveReplayOptions(bounds);
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
    this.sequenced.delete(topic);
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
      if (message.position !== undefined) this.deliverSequenced(message, message.position);
      else this.fanOut(topic, message.data, message.binary, null);
    } catch (error) {
      this.reportError(toBackplaneError('delivery', error, topic));
    }
  }

  /**
   * A message from a shared replay window: delivered in position order, each once. A position
   * that skips ahead means this instance missed messages (its link to the medium dropped while
   * others published): they are read back from the window and delivered first, live ones held
   * meanwhile, so that local subscribers see no hole.
   */
  private deliverSequenced(message: BackplaneMessage, position: number): void {
    const topic = message.topic;
    let state = this.sequenced.get(topic);
    if (state === undefined) {
      state = { last: position - 1, repairing: null, again: false };
      this.sequenced.set(topic, state);
    }
    if (state.repairing !== null) {
      state.repairing.push(message);
      return;
    }
    if (position <= state.last) return;
    if (position > state.last + 1 && this.repair(topic, state, [message])) return;
    state.last = position;
    this.fanOut(topic, message.data, message.binary, null, position);
  }

  /**
   * The backplane lost its medium and has it back: messages of `topic` may have passed this
   * instance by, the last ones of a burst included (no later message would reveal the jump).
   * Reads what follows the last position delivered here back from the window.
   */
  private resync(topic: string): void {
    if (this.closed) return;
    const state = this.sequenced.get(topic);
    // Nothing delivered here yet: the first message sets where this instance starts.
    if (state === undefined) return;
    if (state.repairing !== null) {
      // A repair under way may have read the window before the outage ended: read it again.
      state.again = true;
      return;
    }
    try {
      this.repair(topic, state, []);
    } catch (error) {
      this.reportError(toBackplaneError('delivery', error, topic));
    }
  }

  /**
   * Reads positions after `state.last` back from the shared window and delivers them, then the
   * messages held meanwhile (`held`, and whatever arrives during the read), each once and in
   * order. False when there is no window to read (the caller delivers as it can).
   */
  private repair(topic: string, state: SequencedState, held: BackplaneMessage[]): boolean {
    const store = this.backplane?.replay;
    const bounds = this.replayBounds(topic);
    if (store === undefined || bounds === null) return false;
    const repairing = held;
    state.repairing = repairing;
    state.again = false;
    const from = state.last;
    const done = (result: ReplayResult | null): void => {
      if (this.closed || this.sequenced.get(topic) !== state) return;
      state.repairing = null;
      if (result === null || result.gap !== null) {
        this.logger?.warn('missed messages could not be read back from the replay window', {
          topic,
          from: from + 1,
        });
      }
      for (const entry of result?.entries ?? []) {
        if (entry.position > state.last) {
          state.last = entry.position;
          this.fanOut(topic, entry.data, entry.binary, null, entry.position);
        }
      }
      // Whatever is still missing is gone: subscribers that resume will hear of it as a gap.
      for (const message of repairing) {
        const p = message.position as number;
        if (p > state.last) {
          state.last = p;
          this.fanOut(topic, message.data, message.binary, null, p);
        }
      }
      if (state.again) this.resync(topic);
    };
    store.range(topic, from, bounds).then(
      (result) => {
        try {
          done(result);
        } catch (error) {
          this.reportError(toBackplaneError('delivery', error, topic));
        }
      },
      (error: unknown) => {
        this.reportError(toBackplaneError('delivery', error, topic));
        done(null);
      },
    );
    return true;
  }

  private fanOut(
    topic: string,
    payload: Uint8Array,
    binary: boolean,
    except: WebSocket | null,
    position: number | undefined = undefined,
  ): number {
    const subscribers = this.topicMap.get(topic);
    if (subscribers === undefined) return 0;
    if (subscribers.size === 1 && subscribers.has(except as WebSocket)) return 0;
    // Framed once for everyone; the chunks are shared, never copied per subscriber. Subscribers
    // that compress without context takeover share one compressed frame per set of settings.
    const opcode = binary ? Opcode.BINARY : Opcode.TEXT;
    // As Buffers once, not wrapped again for every subscriber's write.
    const chunks = serializeFrame(opcode, payload).map(asBuffer);
    // Per set of settings: the compressed frame, or null when compressing did not shrink the
    // message, which then goes plain (RFC 7692 §6: RSV1 is chosen per message).
    let compressed: Map<string, Uint8Array[] | null> | null = null;
    // Subscribers under the resume exchange share one frame with the header (position 0: the
    // topic is not replayed).
    let resumeFrame: Uint8Array[] | null = null;
    let delivered = 0;
    for (const ws of subscribers) {
      if (ws === except || ws.readyState !== ReadyState.OPEN) continue;
      if (ws.bufferedAmount > this.limit) {
        this.onSlow(ws, topic);
        continue;
      }
      if (ws.messagePrefix !== null) {
        const held = this.catchingUp.get(ws)?.get(topic);
        if (held !== undefined) {
          held.push({ topic, data: payload, binary, position });
          continue;
        }
        resumeFrame ??= this.frameFor(topic, payload, binary, position ?? 0);
        ws.sendFramed(resumeFrame);
        this.toFlush.add(ws);
        delivered++;
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
              ? serializeFrame(opcode, deflated, { rsv1: true }).map(asBuffer)
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
