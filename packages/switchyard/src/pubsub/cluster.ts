/**
 * The node:cluster backplane: the workers of one machine share their topics through the
 * primary, over the IPC channel that node:cluster (or `child_process.fork`) already opened.
 *
 * Theory of operation. Each worker's {@link ClusterBackplane} tells the primary which topics it
 * has subscribers for, and sends it every publish. The primary's {@link ClusterRelay} forwards a
 * publish to every other worker interested in its topic, never back to the worker it came from
 * (no echo). An IPC channel keeps the order of the messages sent on it, and the relay forwards
 * in the order it receives, so the messages of one publisher arrive in order. Payloads travel
 * as base64 so that the default JSON serialization of IPC carries them unchanged.
 *
 * One ClusterBackplane per worker process: the relay knows workers, not servers.
 *
 * @example
 * import cluster from 'node:cluster';
 * if (cluster.isPrimary) {
 *   new ClusterRelay().attach(cluster);
 *   for (let i = 0; i < 4; i++) cluster.fork();
 * } else {
 *   new WebSocketServer({ port: 8080, pubsub: { backplane: new ClusterBackplane() } });
 * }
 */
import type { Cluster, Worker } from 'node:cluster';
import {
  BackplaneError,
  type Backplane,
  type BackplaneHost,
  type BackplaneMessage,
} from './backplane.js';

/** Tags the IPC messages of this backplane, so that the app's own IPC messages pass by. */
const TAG = 'switchyard:pubsub';

type WireMessage =
  | { [TAG]: 'subscribe' | 'unsubscribe'; topic: string }
  | { [TAG]: 'publish'; topic: string; data: string; binary: boolean };

/** An IPC endpoint as the primary sees it: a cluster `Worker` or a forked `ChildProcess`. */
export interface IpcPeer {
  send(message: unknown, callback?: (error: Error | null) => void): boolean;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'exit' | 'disconnect', listener: () => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

function isWire(message: unknown): message is WireMessage {
  return typeof message === 'object' && message !== null && TAG in message;
}

/**
 * The backplane of one worker process. It needs an IPC channel to its parent (a node:cluster
 * worker, or a child started with `fork`); without one, `start` reports a `connect` failure and
 * topics stay local.
 */
export class ClusterBackplane implements Backplane {
  private host: BackplaneHost | null = null;
  private readonly onMessage = (message: unknown): void => {
    if (!isWire(message) || message[TAG] !== 'publish' || this.host === null) return;
    const host = this.host;
    let data: Buffer;
    try {
      data = Buffer.from(message.data, 'base64');
    } catch (error) {
      host.reportError(
        new BackplaneError('delivery', 'A relayed message could not be decoded', {
          topic: message.topic,
          cause: error,
        }),
      );
      return;
    }
    host.deliver({ topic: message.topic, data, binary: message.binary === true });
  };

  start(host: BackplaneHost): void {
    if (typeof process.send !== 'function') {
      host.reportError(
        new BackplaneError(
          'connect',
          'ClusterBackplane needs an IPC channel to the primary (a cluster worker or a forked child)',
        ),
      );
      return;
    }
    this.host = host;
    process.on('message', this.onMessage);
  }

  subscribe(topic: string): void {
    this.send({ [TAG]: 'subscribe', topic }, 'subscribe');
  }

  unsubscribe(topic: string): void {
    this.send({ [TAG]: 'unsubscribe', topic }, 'subscribe');
  }

  publish(message: BackplaneMessage): void {
    const data = Buffer.from(message.data.buffer, message.data.byteOffset, message.data.length);
    this.send(
      {
        [TAG]: 'publish',
        topic: message.topic,
        data: data.toString('base64'),
        binary: message.binary,
      },
      'publish',
    );
  }

  close(): void {
    process.off('message', this.onMessage);
    this.host = null;
  }

  private send(message: WireMessage, stage: 'subscribe' | 'publish'): void {
    const host = this.host;
    if (host === null || typeof process.send !== 'function') return;
    if (!process.connected) {
      host.reportError(
        new BackplaneError(stage, 'The IPC channel to the primary is closed', {
          topic: message.topic,
          unrelayed: stage === 'publish' ? 1 : 0,
        }),
      );
      return;
    }
    process.send(message, undefined, undefined, (error: Error | null) => {
      if (error !== null) {
        host.reportError(
          new BackplaneError(stage, `IPC send failed: ${error.message}`, {
            topic: message.topic,
            unrelayed: stage === 'publish' ? 1 : 0,
            cause: error,
          }),
        );
      }
    });
  }
}

/**
 * The primary's side of {@link ClusterBackplane}: relays each publish to the other workers
 * that have subscribers for its topic.
 */
export class ClusterRelay {
  private readonly interest = new Map<IpcPeer, Set<string>>();
  private cluster: Cluster | null = null;
  private readonly onFork = (worker: Worker): void => this.add(worker);

  /** Relays for every worker of `cluster`, present and future. Returns this relay. */
  attach(cluster: Cluster): this {
    this.cluster = cluster;
    for (const worker of Object.values(cluster.workers ?? {})) if (worker) this.add(worker);
    cluster.on('fork', this.onFork);
    return this;
  }

  /** Relays for one more peer (a worker, or a child started with `fork`). */
  add(peer: IpcPeer): void {
    if (this.interest.has(peer)) return;
    const topics = new Set<string>();
    this.interest.set(peer, topics);
    const onMessage = (message: unknown) => {
      if (!isWire(message)) return;
      switch (message[TAG]) {
        case 'subscribe':
          topics.add(message.topic);
          return;
        case 'unsubscribe':
          topics.delete(message.topic);
          return;
        case 'publish':
          for (const [other, otherTopics] of this.interest) {
            // Never back to the publisher: its own subscribers already have the message.
            if (other !== peer && otherTopics.has(message.topic)) {
              other.send(message, () => {
                // A worker that exits while a message is on its way cannot get it; nothing to do.
              });
            }
          }
          return;
      }
    };
    peer.on('message', onMessage);
    const remove = () => {
      peer.off('message', onMessage);
      this.interest.delete(peer);
    };
    peer.on('exit', remove);
    peer.on('disconnect', remove);
  }

  /** How many workers are subscribed to `topic`. */
  subscriberCount(topic: string): number {
    let n = 0;
    for (const topics of this.interest.values()) if (topics.has(topic)) n++;
    return n;
  }

  /** Stops relaying for new workers (present ones are dropped as they exit). */
  detach(): void {
    this.cluster?.off('fork', this.onFork);
    this.cluster = null;
  }
}
