/**
 * @switchyard/redis: the Redis backplane of Switchyard's topics. Several server instances (on
 * one machine or many, behind a load balancer) share their topics through one Redis, or through
 * a Redis Cluster with sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7).
 *
 * Theory of operation. Every publish goes out as one Redis PUBLISH (SPUBLISH on a cluster) on the
 * channel `prefix + topic`, in an envelope that names the publishing instance. The backplane
 * SUBSCRIBEs only to the channels of topics that have local subscribers (the server tells it
 * when a topic gets its first and loses its last one). Redis delivers a publish to every
 * subscribed connection, the publisher's own included: the envelope's origin lets an instance
 * drop its own messages, so nothing is echoed (its local subscribers had them already).
 *
 * Redis going away. The client (node-redis, `@redis/client`) reconnects with a capped backoff
 * and subscribes again; the set of wanted topics is kept here as well and re-applied on every
 * `ready`, so a subscription asked for while Redis was away is not lost. While Redis is away,
 * publishes fail at once (no offline queue: they would arrive late and out of time, and memory
 * would grow), are counted, and the count is reported when Redis is back; local subscribers are
 * served all along by the server itself. Pub/sub through Redis is at-most-once: messages
 * published elsewhere while this instance was disconnected are not replayed.
 *
 * Why node-redis: it is maintained by Redis itself, has no dependencies of its own, ships its
 * own TypeScript types, resubscribes after reconnecting, and its cluster client routes sharded
 * pub/sub to the node that owns each channel's slot, following MOVED after resharding.
 */
import {
  ErrorReply,
  RESP_TYPES,
  createClient,
  createCluster,
  type RedisClientOptions,
  type RedisClientType,
  type RedisClusterType,
} from '@redis/client';
import {
  BackplaneError,
  createInstanceId,
  decodeEnvelope,
  encodeEnvelope,
  type Backplane,
  type BackplaneHost,
  type BackplaneMessage,
  replayAfter,
  type ReplayOptions,
  type ReplayResult,
  type ReplayStore,
} from 'switchyard';

/** Options of {@link RedisBackplane}. Give `url` (one Redis) or `cluster` (Redis Cluster). */
export interface RedisBackplaneOptions {
  /** A single Redis, as `redis://[[user]:password@]host:port[/db]` (or `rediss://`). */
  url?: string;
  /**
   * A Redis Cluster: the URLs of some of its nodes (the rest are discovered). Topics then use
   * sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7 or newer), so each message travels only to the
   * shard that owns its channel instead of to every node.
   */
  cluster?: readonly string[];
  /** Prefix of the Redis channel names: channel = prefix + topic. Default `switchyard:`. */
  prefix?: string;
  /** Longest wait between two reconnection attempts, in ms (the backoff doubles up to it). Default 2,000. */
  maxReconnectDelay?: number;
  /** Longest wait for a connection to Redis, in ms. Default 5,000. */
  connectTimeout?: number;
  /**
   * Messages of resumable topics (`pubsub.replay`) held while Redis is unreachable, sent in
   * order when it is back; past this many, further ones are dropped and reported. Default
   * 10,000. (Plain topics are not held: see the theory of operation.)
   */
  maxHeldAppends?: number;
}

/** Counters of a {@link RedisBackplane}. */
export interface RedisBackplaneStats {
  /** Messages sent to Redis. */
  published: number;
  /** Messages from other instances handed to local subscribers. */
  received: number;
  /** Messages of this instance that Redis delivered back to it and were dropped (no echo). */
  ownSkipped: number;
  /** Publishes that could not be sent because Redis was unreachable (or refused them). */
  unrelayed: number;
  /** Times the connection to Redis was lost. */
  outages: number;
  /** Messages appended to a topic's replay stream (resumable topics). */
  appended: number;
}

type SingleClient = RedisClientType;
type ClusterClient = RedisClusterType;

const DEFAULTS = {
  prefix: 'switchyard:',
  maxReconnectDelay: 2000,
  connectTimeout: 5000,
  maxHeldAppends: 10_000,
} as const;

/** A message of a resumable topic on its way to the replay stream. */
interface HeldAppend {
  message: BackplaneMessage;
  bounds: Required<ReplayOptions>;
  /** This instance's running count of appends, for the script's duplicate check. */
  counter: number;
}

/**
 * The Redis backplane. Pass it to the server; the server starts it and closes it when it closes.
 *
 * @example
 * import { WebSocketServer } from 'switchyard';
 * import { RedisBackplane } from '@switchyard/redis';
 * const server = new WebSocketServer({
 *   port: 8080,
 *   pubsub: { backplane: new RedisBackplane({ url: process.env.REDIS_URL }) },
 * });
 */
export class RedisBackplane implements Backplane {
  /** This instance's id, carried by its messages so that it can skip them when they come back. */
  readonly instanceId = createInstanceId();
  /** Counters since it started. */
  readonly stats: RedisBackplaneStats = {
    published: 0,
    received: 0,
    ownSkipped: 0,
    unrelayed: 0,
    outages: 0,
    appended: 0,
  };
  /**
   * The shared replay window of resumable topics (`pubsub.replay`), in Redis Streams: see
   * {@link RedisReplayStore}.
   */
  readonly replay: ReplayStore = {
    append: (message, bounds) => this.append(message, bounds),
    range: (topic, after, bounds) => this.range(topic, after, bounds),
  };
  /** Topics whose SUBSCRIBE is on its way: a range read waits for it (see `range`). */
  private readonly subscribing = new Map<string, Promise<void>>();
  private readonly held: HeldAppend[] = [];
  private appendCounter = 0;
  private draining = false;
  private readonly options: RedisBackplaneOptions;
  private readonly prefix: string;
  private readonly wanted = new Set<string>();
  private host: BackplaneHost | null = null;
  private publisher: SingleClient | ClusterClient | null = null;
  private subscriber: SingleClient | ClusterClient | null = null;
  private closed = false;
  /** True from a lost connection until both connections are ready again. */
  private down = false;
  /**
   * Set when the connection is lost, cleared once both connections are back: then every
   * wanted topic, once subscribed again, is resynced from its replay window (messages published
   * meanwhile passed this instance by).
   */
  private resyncPending = false;
  /** Publishes lost during the current outage, and on which topics, for the report. */
  private lostInOutage = 0;
  private readonly lostTopics = new Set<string>();
  private readyResolvers: Array<() => void> = [];

  /** Bound once, so that subscribing again with it is a no-op in node-redis. */
  private readonly onRedisMessage = (message: Buffer): void => this.receive(message);

  constructor(options: RedisBackplaneOptions) {
    if ((options.url === undefined) === (options.cluster === undefined)) {
      throw new TypeError('RedisBackplane needs either `url` (one Redis) or `cluster` (node URLs)');
    }
    if (options.cluster !== undefined && options.cluster.length === 0) {
      throw new TypeError('RedisBackplane: `cluster` needs at least one node URL');
    }
    this.options = options;
    this.prefix = options.prefix ?? DEFAULTS.prefix;
  }

  /** Whether both connections to Redis are up. */
  get connected(): boolean {
    return this.host !== null && !this.down && this.isReady();
  }

  /** Resolves once connected to Redis (at once if already); for tests and health checks. */
  ready(): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve) => this.readyResolvers.push(resolve));
  }

  async start(host: BackplaneHost): Promise<void> {
    this.host = host;
    const maxDelay = this.options.maxReconnectDelay ?? DEFAULTS.maxReconnectDelay;
    const socket = {
      connectTimeout: this.options.connectTimeout ?? DEFAULTS.connectTimeout,
      // Capped exponential backoff; never give up: the app keeps serving local subscribers.
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** Math.min(retries, 10), maxDelay),
    };
    if (this.options.cluster !== undefined) {
      const cluster = createCluster({
        rootNodes: this.options.cluster.map((url) => ({ url })),
        defaults: { socket, disableOfflineQueue: true },
      }) as unknown as ClusterClient;
      // One cluster client does both: commands go to the masters, sharded subscriptions to a
      // pub/sub connection of their own on the node that owns each channel's slot.
      this.publisher = cluster;
      this.subscriber = cluster;
      this.watch(cluster);
    } else {
      const clientOptions: RedisClientOptions = {
        url: this.options.url,
        socket,
        disableOfflineQueue: true,
      };
      const publisher = createClient(clientOptions) as SingleClient;
      // A connection in subscriber mode can run nothing else, so subscriptions get their own.
      const subscriber = publisher.duplicate() as SingleClient;
      this.publisher = publisher;
      this.subscriber = subscriber;
      this.watch(publisher);
      this.watch(subscriber);
    }
    try {
      await Promise.all(
        [...new Set([this.publisher, this.subscriber])].map((client) => client!.connect()),
      );
    } catch (error) {
      // Not fatal: the client keeps retrying, and `ready` re-applies the subscriptions.
      this.lost(error);
      return;
    }
    this.onReady();
  }

  subscribe(topic: string): Promise<void> {
    this.wanted.add(topic);
    const applied = this.applySubscription(topic);
    this.subscribing.set(topic, applied);
    void applied.finally(() => {
      if (this.subscribing.get(topic) === applied) this.subscribing.delete(topic);
    });
    return applied;
  }

  async unsubscribe(topic: string): Promise<void> {
    this.wanted.delete(topic);
    const subscriber = this.subscriber;
    if (subscriber === null || this.closed || !this.isReady()) return;
    try {
      if (this.options.cluster !== undefined) {
        await (subscriber as ClusterClient).sUnsubscribe(
          this.channel(topic),
          this.onRedisMessage,
          true,
        );
      } else {
        await (subscriber as SingleClient).unsubscribe(
          this.channel(topic),
          this.onRedisMessage,
          true,
        );
      }
    } catch (error) {
      this.report(
        'subscribe',
        `UNSUBSCRIBE ${this.channel(topic)} failed: ${messageOf(error)}`,
        topic,
        error,
      );
    }
  }

  async publish(message: BackplaneMessage): Promise<void> {
    const publisher = this.publisher;
    if (publisher === null || this.closed) return;
    const envelope = encodeEnvelope(this.instanceId, message);
    const channel = this.channel(message.topic);
    // No check of the connection first: with the offline queue disabled, a publish while Redis
    // is away fails at once, which is the signal (a cluster stays "ready" while one node is away).
    try {
      if (this.options.cluster !== undefined) {
        await (publisher as ClusterClient).sPublish(channel, envelope);
      } else {
        await (publisher as SingleClient).publish(channel, envelope);
      }
      this.stats.published++;
      if (this.down) this.onReady();
    } catch (error) {
      this.countLost(message.topic);
      if (!this.down) {
        this.report(
          'publish',
          `PUBLISH ${channel} failed: ${messageOf(error)}`,
          message.topic,
          error,
          1,
        );
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const clients = [...new Set([this.publisher, this.subscriber])];
    this.host = null;
    for (const resolve of this.readyResolvers.splice(0)) resolve();
    await Promise.all(
      clients.map(async (client) => {
        if (client === null) return;
        try {
          // destroy, not quit: quit would wait on a Redis that may be gone.
          client.destroy();
        } catch {
          // Already closed.
        }
      }),
    );
  }

  // ---- internals -----------------------------------------------------------------------------

  private channel(topic: string): string {
    return this.prefix + topic;
  }

  private isReady(): boolean {
    const clients = [this.publisher, this.subscriber];
    return clients.every((c) => c !== null && (c as { isReady?: boolean }).isReady !== false);
  }

  private watch(client: SingleClient | ClusterClient): void {
    const emitter = client as unknown as NodeJS.EventEmitter;
    // An 'error' listener is required: without one node-redis would throw on every failure.
    emitter.on('error', (error: unknown) => this.lost(error));
    emitter.on('end', () => this.lost(new Error('connection closed')));
    emitter.on('reconnecting', () => this.lost(new Error('reconnecting')));
    // A single client says 'ready' after every (re)connection; a cluster says 'connect' once.
    emitter.on(this.options.cluster === undefined ? 'ready' : 'connect', () => {
      if (this.isReady()) this.onReady();
    });
  }

  /** The connection went away: report once per outage. */
  private lost(error: unknown): void {
    if (this.closed || this.down) return;
    this.down = true;
    this.resyncPending = true;
    this.stats.outages++;
    this.report(
      'connect',
      `Lost Redis (${messageOf(error)}); reconnecting, local subscribers are still served`,
      undefined,
      error,
    );
  }

  private onReady(): void {
    if (this.closed) return;
    this.down = false;
    // Only with both connections up is the subscription below real; until then, keep the flag.
    const resync = this.resyncPending && this.isReady();
    if (resync) this.resyncPending = false;
    // Subscriptions asked for while Redis was away, or dropped with the connection, are applied
    // again; the same listener makes this a no-op for those node-redis restored itself. Once a
    // topic listens again, what it missed is read back from its window (resumable topics).
    for (const topic of this.wanted) {
      const applied = this.applySubscription(topic);
      if (resync) void applied.then(() => this.host?.resync(topic));
    }
    if (this.lostInOutage > 0) {
      const topics = [...this.lostTopics];
      this.report(
        'publish',
        `${this.lostInOutage} message(s) on ${topics.length} topic(s) were not relayed while Redis was unreachable: ${topics.slice(0, 5).join(', ')}${topics.length > 5 ? ', ...' : ''}`,
        topics.length === 1 ? topics[0] : undefined,
        undefined,
        this.lostInOutage,
      );
    }
    this.lostInOutage = 0;
    this.lostTopics.clear();
    for (const resolve of this.readyResolvers.splice(0)) resolve();
  }

  private async applySubscription(topic: string): Promise<void> {
    const subscriber = this.subscriber;
    // Not connected yet, or reconnecting: `ready` applies every wanted topic.
    if (subscriber === null || this.closed || !this.isReady()) return;
    try {
      if (this.options.cluster !== undefined) {
        await (subscriber as ClusterClient).sSubscribe(
          this.channel(topic),
          this.onRedisMessage,
          true,
        );
      } else {
        await (subscriber as SingleClient).subscribe(
          this.channel(topic),
          this.onRedisMessage,
          true,
        );
      }
      // Unsubscribed while the SUBSCRIBE was on its way: undo it.
      if (!this.wanted.has(topic)) await this.unsubscribe(topic);
    } catch (error) {
      // While Redis is away this is expected; `ready` will apply it again.
      if (!this.down) {
        this.report(
          'subscribe',
          `SUBSCRIBE ${this.channel(topic)} failed: ${messageOf(error)}`,
          topic,
          error,
        );
      }
    }
  }

  // ---- resumable topics: the replay window in Redis Streams ----------------------------------
  //
  // Per topic, two keys in one hash slot (the channel name as hash tag, so that on a cluster
  // they live with the channel's shard): `{channel}:seq`, the last position given (INCR), and
  // `{channel}:log`, a stream whose entry ids are `<position>-0`, capped with MAXLEN. One Lua
  // script gives the position, appends and publishes, atomically: the order of positions is the
  // order in which every instance receives the messages. A sequenced message travels as
  // `P<position>\n` + envelope and is delivered to every instance, its publisher included.

  private append(message: BackplaneMessage, bounds: Required<ReplayOptions>): void {
    if (this.publisher === null || this.closed) return;
    const limit = this.options.maxHeldAppends ?? DEFAULTS.maxHeldAppends;
    if (this.held.length >= limit) {
      this.countLost(message.topic);
      if (this.lostInOutage === 1 || !this.down) {
        this.report(
          'publish',
          `${limit} messages already wait for Redis (maxHeldAppends): a message on ${message.topic} was dropped`,
          message.topic,
          undefined,
          1,
        );
      }
      return;
    }
    this.held.push({ message, bounds, counter: ++this.appendCounter });
    if (!this.draining) void this.drainAppends();
  }

  /**
   * Sends held appends to Redis in order, pipelined in batches. A batch that fails part-way is
   * sent again from the first failure once Redis answers again: those that did run are
   * recognised by their counter and not appended twice (the script keeps each publisher's last
   * counter), so a message is neither lost nor doubled by an outage shorter than the hold.
   */
  private async drainAppends(): Promise<void> {
    this.draining = true;
    try {
      while (this.held.length > 0 && !this.closed) {
        const batch = this.held.slice(0, 256);
        const results = await Promise.allSettled(batch.map((held) => this.runAppend(held)));
        let done = 0;
        while (done < results.length && results[done].status === 'fulfilled') done++;
        this.held.splice(0, done);
        this.stats.appended += done;
        this.stats.published += done;
        if (done > 0 && this.down) this.onReady();
        if (done === results.length) continue;
        const error = (results[done] as PromiseRejectedResult).reason as unknown;
        if (isTransient(error)) {
          // Redis is loading its data after a restart, or failing over: the same append will
          // succeed shortly. Not an outage of the connection, so the reconnect logic is not
          // involved; wait a little and send again from the first that failed.
          await delay(TRANSIENT_RETRY_DELAY);
          continue;
        }
        if (error instanceof ErrorReply) {
          // Redis refused this one (not an outage): it would fail forever, so it goes.
          const [failed] = this.held.splice(0, 1);
          this.countLost(failed.message.topic);
          this.report(
            'publish',
            `Appending to a replay stream failed: ${messageOf(error)}`,
            failed.message.topic,
            error,
            1,
          );
          continue;
        }
        if (!this.down) this.lost(error);
        // Wait for Redis; a short pause too, so that a connection not yet known to be down is
        // not hammered.
        await new Promise((resolve) => setTimeout(resolve, 50));
        await this.ready();
      }
    } finally {
      this.draining = false;
    }
  }

  private runAppend(held: HeldAppend): Promise<unknown> {
    const { message, bounds, counter } = held;
    const channel = this.channel(message.topic);
    const keys = [`{${channel}}:seq`, `{${channel}}:log`, `{${channel}}:origins`];
    return this.send(keys[0], false, [
      'EVAL',
      APPEND_SCRIPT,
      '3',
      ...keys,
      encodeEnvelope(this.instanceId, message),
      String(Math.max(1, Math.floor(bounds.maxMessages))),
      channel,
      this.options.cluster === undefined ? 'PUBLISH' : 'SPUBLISH',
      String(Date.now()),
      String(Math.max(1, Math.ceil(bounds.maxAge))),
      this.instanceId,
      String(counter),
    ]);
  }

  private async range(
    topic: string,
    after: number,
    bounds: Required<ReplayOptions>,
  ): Promise<ReplayResult> {
    const publisher = this.publisher;
    if (publisher === null || this.closed) throw new Error('The Redis backplane is closed');
    // Live messages must reach this instance before the window is read, or those published in
    // between would be in neither.
    await this.subscribing.get(topic);
    const channel = this.channel(topic);
    const keys = [`{${channel}}:seq`, `{${channel}}:log`];
    const args = ['EVAL', RANGE_SCRIPT, '2', ...keys, String(after + 1), String(Date.now())];
    let reply: [Buffer | number, Array<[Buffer, Buffer[]]>];
    // A resuming client or a repair waits out a short outage (a restart, a failover) rather
    // than lose what the window holds: retried while Redis is away or loading, for a while.
    for (let attempt = 1; ; attempt++) {
      try {
        reply = (await this.send(keys[0], true, args)) as typeof reply;
        break;
      } catch (error) {
        const retryable = isTransient(error) || !(error instanceof ErrorReply);
        if (!retryable || this.closed || attempt >= RANGE_ATTEMPTS) throw error;
        await delay(TRANSIENT_RETRY_DELAY);
      }
    }
    const last = Number(reply[0]);
    const oldest = Date.now() - bounds.maxAge;
    const entries: ReplayResult['entries'] = [];
    let bytes = 0;
    for (const [id, fields] of reply[1]) {
      // Fields: t (append time, ms), e (the envelope).
      if (Number(fields[1]) < oldest) continue;
      const decoded = decodeEnvelope(fields[3]);
      if (decoded === null) continue;
      entries.push({
        position: Number(String(id).split('-')[0]),
        data: decoded.data,
        binary: decoded.binary,
      });
      bytes += decoded.data.length;
    }
    // maxBytes bounds what is replayed, oldest first out (the stream is capped by count and
    // age; Redis cannot trim a stream by bytes).
    let drop = 0;
    while (drop < entries.length && bytes > bounds.maxBytes) bytes -= entries[drop++].data.length;
    return replayAfter(after, last, entries.slice(drop));
  }

  private send(
    key: string,
    readonly: boolean,
    args: string[] | Array<string | Buffer>,
  ): Promise<unknown> {
    const options = { typeMapping: { [RESP_TYPES.BLOB_STRING]: Buffer } };
    if (this.options.cluster !== undefined) {
      return (this.publisher as ClusterClient).sendCommand(key, readonly, args, options);
    }
    return (this.publisher as SingleClient).sendCommand(args, options);
  }

  private receive(bytes: Buffer): void {
    const host = this.host;
    if (host === null) return;
    if (bytes[0] === SEQUENCED) {
      this.receiveSequenced(host, bytes);
      return;
    }
    const message = decodeEnvelope(bytes);
    if (message === null) {
      this.report('delivery', 'A message on a Switchyard channel was not a Switchyard envelope');
      return;
    }
    if (message.origin === this.instanceId) {
      this.stats.ownSkipped++;
      return;
    }
    this.stats.received++;
    host.deliver(message);
  }

  private receiveSequenced(host: BackplaneHost, bytes: Buffer): void {
    const newline = bytes.indexOf(0x0a);
    const position = Number(bytes.toString('latin1', 1, newline));
    const message = newline > 1 ? decodeEnvelope(bytes.subarray(newline + 1)) : null;
    if (message === null || !Number.isSafeInteger(position)) {
      this.report('delivery', 'A sequenced message on a Switchyard channel was malformed');
      return;
    }
    // Delivered to its publisher too: positions are in Redis's order only if every instance,
    // the publisher included, delivers in the order Redis publishes.
    if (message.origin !== this.instanceId) this.stats.received++;
    host.deliver({ topic: message.topic, data: message.data, binary: message.binary, position });
  }

  private countLost(topic: string): void {
    this.stats.unrelayed++;
    this.lostInOutage++;
    if (this.lostTopics.size < 1000) this.lostTopics.add(topic);
  }

  private report(
    stage: 'connect' | 'subscribe' | 'publish' | 'delivery',
    text: string,
    topic?: string,
    cause?: unknown,
    unrelayed = 0,
  ): void {
    this.host?.reportError(new BackplaneError(stage, text, { topic, cause, unrelayed }));
  }
}

/** Pause before sending again what Redis refused for a passing reason ({@link isTransient}). */
const TRANSIENT_RETRY_DELAY = 200;
/** How many times a replay window read is tried before the error goes to the caller (~10 s). */
const RANGE_ATTEMPTS = 50;

/**
 * Errors that Redis answers while it cannot serve for a moment: loading its data set after a
 * restart (LOADING), a script running too long (BUSY), a cluster resharding or failing over
 * (TRYAGAIN, CLUSTERDOWN, MASTERDOWN), a replica promoted or demoted (READONLY).
 */
function isTransient(error: unknown): boolean {
  return (
    error instanceof ErrorReply &&
    /^(LOADING|BUSY|TRYAGAIN|MASTERDOWN|CLUSTERDOWN|READONLY)\b/.test(error.message)
  );
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** First byte of a sequenced message (`P`); a plain envelope starts with its version, 1. */
const SEQUENCED = 0x50;

/**
 * KEYS: seq, log, origins. ARGV: envelope, maxMessages, channel, PUBLISH or SPUBLISH, now (ms),
 * maxAge (ms), origin, counter. A counter not above the origin's last one was appended already
 * (a retry after a lost reply): nothing is done.
 * The stream key expires maxAge after the last append (an idle topic's window is gone by then
 * anyway); the sequence key stays, so positions never restart while Redis keeps its data.
 */
const APPEND_SCRIPT = `
if tonumber(redis.call('HGET', KEYS[3], ARGV[7]) or '0') >= tonumber(ARGV[8]) then return 0 end
redis.call('HSET', KEYS[3], ARGV[7], ARGV[8])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
local position = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], position .. '-0', 't', ARGV[5], 'e', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call(ARGV[4], ARGV[3], 'P' .. position .. '\\n' .. ARGV[1])
return position
`;

/** KEYS: seq, log. ARGV: first position wanted, now (ms). Returns { last, entries }. */
const RANGE_SCRIPT = `
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
return { last, redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+') }
`;

function messageOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return messageOf(error.errors[0]);
  return error instanceof Error ? error.message || error.name : String(error);
}
