/**
 * The Backplane: how the topics of several server instances (processes, machines) become one.
 *
 * Theory of operation. Each instance fans a publish out to its own subscribers itself, then hands
 * it to its backplane, which relays it to the other instances; each of them fans it out to its
 * own subscribers. The backplane is told which topics have local subscribers, so that it can
 * listen only for those (a Redis SUBSCRIBE per topic, not one firehose).
 *
 * The contract every backplane keeps (the key words as in RFC 2119):
 * - It MUST deliver every message published by another instance, on a topic this instance has
 *   subscribed to, exactly once to {@link BackplaneHost.deliver}, in the order that instance
 *   published them (per publisher; no order is promised between publishers).
 * - It MUST NOT deliver an instance's own publishes back to it (its local subscribers already
 *   had them; an echo would be a duplicate).
 * - It MUST NOT throw out of `subscribe`, `unsubscribe`, `publish` or `close` for a failure of
 *   the medium, nor reject the promises they return: it reports the failure through
 *   {@link BackplaneHost.reportError} with the stage where it happened. (The host also catches
 *   whatever is thrown or rejected anyway, so a faulty backplane cannot crash the app.)
 * - It SHOULD recover on its own (reconnect, subscribe again) and report what it could not
 *   relay while the medium was away. Local subscribers are served by the host regardless.
 * - It MAY drop messages while the medium is away (pub/sub is at-most-once); it MUST count and
 *   report them.
 */
import { SwitchyardError, type ErrorDetails } from '../core/errors.js';
import type { ReplayOptions, ReplayResult } from './replay.js';

/** A message as it travels between instances. */
export interface BackplaneMessage {
  /** The topic it was published on. */
  topic: string;
  /** The payload: UTF-8 text when `binary` is false. */
  data: Uint8Array;
  /** Whether subscribers receive it as a binary message (else as text). */
  binary: boolean;
  /** Its position in the topic's shared replay window ({@link ReplayStore}), when it has one. */
  position?: number;
}

/**
 * A replay window shared by every instance (resumable topics, docs/resume.md), offered by a
 * backplane that can keep one (Redis Streams in `@switchyard/redis`). Besides the contract
 * above, for messages it sequences:
 * - `append` MUST give each message of a topic the next position (1, 2, 3 ...), the same on
 *   every instance, and MUST deliver it, with its position, to every instance subscribed to the
 *   topic, the publishing instance included, in position order.
 * - `range` MUST return what the window holds after a position, and the newest position given.
 */
export interface ReplayStore {
  /** Appends a message to the topic's shared window and publishes it to every instance. */
  append(message: BackplaneMessage, bounds: Required<ReplayOptions>): void | Promise<void>;
  /** What follows `after` in the topic's window, within `bounds`. */
  range(topic: string, after: number, bounds: Required<ReplayOptions>): Promise<ReplayResult>;
}

/** Where a backplane failed. `connect` covers losing and regaining the medium. */
export type BackplaneStage = 'connect' | 'subscribe' | 'publish' | 'delivery';

/** What the host (the server's topics) offers to its backplane. */
export interface BackplaneHost {
  /** Fans a message from another instance out to local subscribers. Never throws. */
  deliver(message: BackplaneMessage): void;
  /** Reports a failure (logged, counted, published on `switchyard:backplane-error`). */
  reportError(error: BackplaneError): void;
  /**
   * For a backplane with a {@link ReplayStore}: this instance may have missed sequenced messages
   * of `topic` (its link to the medium was lost and is back, subscription included). The host
   * reads what followed the last position it delivered back from the window and delivers it
   * first, so that even the tail of a stream that ended during the outage is not lost. Call it
   * once the topic's subscription is applied again. Never throws.
   */
  resync(topic: string): void;
}

/**
 * Relays publishes between instances; see the contract at the top of this file (and in
 * docs/pubsub.md). `start` is called once, before anything else; the other methods may be
 * called before the promise `start` returned has settled.
 */
export interface Backplane {
  /** Connects to the medium. Failures are reported, not thrown. */
  start(host: BackplaneHost): void | Promise<void>;
  /** This instance now has local subscribers on `topic`: listen for it. */
  subscribe(topic: string): void | Promise<void>;
  /** The last local subscriber of `topic` left: stop listening for it. */
  unsubscribe(topic: string): void | Promise<void>;
  /** Relays a message published on this instance to the others. */
  publish(message: BackplaneMessage): void | Promise<void>;
  /** Disconnects. Nothing is delivered afterwards. */
  close(): void | Promise<void>;
  /** A replay window shared by the instances, if the medium can keep one. */
  readonly replay?: ReplayStore;
}

/** A backplane failure, with the stage where it happened. Reported, never thrown at the app. */
export class BackplaneError extends SwitchyardError {
  /** Where it failed: connecting, subscribing, publishing or delivering. */
  readonly stage: BackplaneStage;
  /** The topic concerned, when there is one. */
  readonly topic: string | undefined;
  /** How many messages were not relayed because of this failure (0 when unknown or none). */
  readonly unrelayed: number;

  constructor(
    stage: BackplaneStage,
    message: string,
    details: ErrorDetails & { topic?: string; unrelayed?: number } = {},
  ) {
    super('SWITCHYARD_ERR_BACKPLANE', message, details);
    this.stage = stage;
    this.topic = details.topic;
    this.unrelayed = details.unrelayed ?? 0;
  }
}

/**
 * What {@link InProcessBackplane}s share: instances on one bus relay to one another. Create one
 * and pass it to every server of the process that should share topics.
 */
export class InProcessBus {
  /** @internal */ readonly members = new Set<InProcessBackplane>();
}

/**
 * The in-process backplane: several `WebSocketServer`s in one process (say, one on HTTP and one
 * on HTTPS, or one per port) share their topics through an {@link InProcessBus}. Nothing to set
 * up and nothing can fail; delivery is synchronous. A server with no `backplane` option is
 * simply on its own.
 *
 * @example
 * const bus = new InProcessBus();
 * const a = new WebSocketServer({ port: 8080, pubsub: { backplane: new InProcessBackplane({ bus }) } });
 * const b = new WebSocketServer({ port: 8443, pubsub: { backplane: new InProcessBackplane({ bus }) } });
 */
export class InProcessBackplane implements Backplane {
  private readonly bus: InProcessBus;
  private readonly topics = new Set<string>();
  private host: BackplaneHost | null = null;

  /** @param options.bus - the bus to join. Default: a bus of its own (relays to nobody). */
  constructor(options: { bus?: InProcessBus } = {}) {
    this.bus = options.bus ?? new InProcessBus();
  }

  start(host: BackplaneHost): void {
    this.host = host;
    this.bus.members.add(this);
  }

  subscribe(topic: string): void {
    this.topics.add(topic);
  }

  unsubscribe(topic: string): void {
    this.topics.delete(topic);
  }

  publish(message: BackplaneMessage): void {
    for (const member of this.bus.members) {
      // Never back to the publisher: its own subscribers already have the message.
      if (member !== this && member.topics.has(message.topic)) member.host?.deliver(message);
    }
  }

  close(): void {
    this.bus.members.delete(this);
    this.topics.clear();
    this.host = null;
  }
}
