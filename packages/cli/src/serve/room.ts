/**
 * The chat room behind /broadcast.
 *
 * The room is an interface so that the fan-out can move to the library's pub/sub topics
 * (`ws.subscribe(topic)` and `server.publish(topic, data)`, which frame a message once for every
 * subscriber) by swapping {@link LoopRoom} for a topic-backed room, without touching serve.
 */
import { ReadyState, type PublishOptions, type WebSocket, type WebSocketServer } from 'switchyard';

/** A set of connections where every message goes to every member. */
export interface Room {
  /** Adds a connection; it leaves by itself when it closes. */
  join(ws: WebSocket): void;
  /** Sends `data` to every member, the sender included (so that it sees the room's order). */
  publish(data: string | Buffer, isBinary: boolean): void;
  /** How many connections are in the room. */
  readonly size: number;
}

/** A room that loops over its members and sends to each. */
export class LoopRoom implements Room {
  private readonly members = new Set<WebSocket>();

  get size(): number {
    return this.members.size;
  }

  join(ws: WebSocket): void {
    this.members.add(ws);
    ws.once('close', () => this.members.delete(ws));
  }

  publish(data: string | Buffer, isBinary: boolean): void {
    for (const member of this.members) {
      if (member.readyState === ReadyState.OPEN) member.send(data, { binary: isBinary });
    }
  }
}

/**
 * A room on the library's topics: members subscribe to one topic, and a message is framed once
 * and written to all of them. With a backplane on the server (`@switchyard/redis`), several
 * `serve` processes pointed at one Redis share the room.
 */
export class TopicRoom implements Room {
  private readonly server: WebSocketServer;
  private readonly topic: string;

  /** @param topic - the topic of the room. Default `broadcast`. */
  constructor(server: WebSocketServer, topic = 'broadcast') {
    this.server = server;
    this.topic = topic;
  }

  /** Members on this server (not those of other instances sharing the topic). */
  get size(): number {
    return this.server.subscriberCount(this.topic);
  }

  join(ws: WebSocket): void {
    // The subscription ends by itself when the connection closes.
    ws.subscribe(this.topic);
  }

  publish(data: string | Buffer, isBinary: boolean): void {
    const options: PublishOptions = { binary: isBinary };
    // server.publish, not ws.publish: the sender gets its own message too (the room's order).
    this.server.publish(this.topic, data, options);
  }
}
