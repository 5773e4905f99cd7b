/**
 * A client core and a server core wired together in memory: protocol tests need no sockets.
 * `flush()` moves every queued byte across, both ways, until nothing moves; the events each
 * side saw are collected in order.
 */
import {
  Connection,
  NEED_DATA,
  PAUSED,
  type ConnectionEvent,
  type ConnectionOptions,
} from '../../src/core/connection.js';

export interface Side {
  conn: Connection;
  events: ConnectionEvent[];
  /** Set when this side asked for the transport to be closed. */
  closedTransport: boolean;
}

export interface Pair {
  client: Side;
  server: Side;
  /** Moves bytes both ways until quiet; returns how many bytes moved. */
  flush(): number;
  /** Concatenates what `from` has queued, without delivering it. */
  take(from: Side): Uint8Array;
}

export function drainEvents(side: Side): void {
  for (;;) {
    const event = side.conn.nextEvent();
    if (event === NEED_DATA || event === PAUSED) return;
    side.events.push(event);
  }
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

export function createPair(
  clientOptions: Partial<ConnectionOptions> = {},
  serverOptions: Partial<ConnectionOptions> = {},
): Pair {
  const client: Side = {
    conn: new Connection({ ...clientOptions, role: 'client' }),
    events: [],
    closedTransport: false,
  };
  const server: Side = {
    conn: new Connection({ ...serverOptions, role: 'server' }),
    events: [],
    closedTransport: false,
  };
  const move = (from: Side, to: Side): number => {
    const bytes = concat(from.conn.dataToSend());
    if (from.conn.closeTransport) from.closedTransport = true;
    if (bytes.length > 0) {
      to.conn.receiveData(bytes);
      drainEvents(to);
    }
    return bytes.length;
  };
  return {
    client,
    server,
    flush() {
      let moved = 0;
      for (let i = 0; i < 100; i++) {
        const n = move(client, server) + move(server, client);
        moved += n;
        if (n === 0) break;
      }
      if (client.closedTransport || server.closedTransport) {
        // The transport closes both ways once either side ends it.
        client.conn.receiveEof();
        server.conn.receiveEof();
      }
      return moved;
    },
    take(from) {
      return concat(from.conn.dataToSend());
    },
  };
}
