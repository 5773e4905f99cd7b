/**
 * The chat room behind /broadcast.
 *
 * The room is an interface so that the fan-out can move to the library's pub/sub topics
 * (`ws.subscribe(topic)` and `server.publish(topic, data)`, which frame a message once for every
 * subscriber) by swapping {@link LoopRoom} for a topic-backed room, without touching serve.
 */
import { ReadyState, type WebSocket } from 'switchyard';

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
