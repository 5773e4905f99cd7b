/**
 * A tiny app protocol for pub/sub tests: a client connects to `/?topics=a,b` to be subscribed to
 * topics a and b, and sends `{"publish": topic, "data": text}` to publish from its connection
 * (skipping itself) or `{"subscribe": topic}` / `{"unsubscribe": topic}`.
 */
import { once } from 'node:events';
import type { WebSocketServer } from '../../src/node/server.js';
import { connect } from '../../src/node/client.js';
import type { WebSocket } from '../../src/node/websocket.js';
import { ReadyState } from '../../src/core/connection.js';

/** Wires the app protocol above into a server. */
export function serveTopics(server: WebSocketServer): void {
  server.on('connection', (ws) => {
    const topics = new URL(ws.url).searchParams.get('topics');
    if (topics) for (const topic of topics.split(',')) ws.subscribe(topic);
    ws.on('message', (data) => {
      const command = JSON.parse(String(data)) as {
        publish?: string;
        subscribe?: string;
        unsubscribe?: string;
        data?: string;
      };
      if (command.publish !== undefined) ws.publish(command.publish, command.data ?? '');
      if (command.subscribe !== undefined) ws.subscribe(command.subscribe);
      if (command.unsubscribe !== undefined) ws.unsubscribe(command.unsubscribe);
    });
  });
}

/** A client that records every text message it gets. */
export interface Collector {
  ws: WebSocket;
  messages: string[];
  /** Resolves once `count` messages arrived; rejects after `ms`. */
  waitFor(count: number, ms?: number): Promise<string[]>;
}

/** Connects to `url` subscribed to `topics` and collects what arrives. */
export async function collector(url: string, topics: string[] = []): Promise<Collector> {
  const ws = await connect(`${url}/?topics=${encodeURIComponent(topics.join(','))}`);
  const messages: string[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (data) => {
    messages.push(String(data));
    wake?.();
  });
  ws.on('close', () => wake?.());
  return {
    ws,
    messages,
    async waitFor(count, ms = 5000) {
      const deadline = Date.now() + ms;
      while (messages.length < count) {
        const left = deadline - Date.now();
        if (left <= 0 || ws.readyState === ReadyState.CLOSED) {
          throw new Error(`got ${messages.length} of ${count} messages: ${messages.slice(-3)}`);
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            wake = null;
            resolve();
          };
        });
      }
      return messages;
    },
  };
}

/** Closes a client and waits for its close. */
export async function closeClient(ws: WebSocket): Promise<void> {
  if (ws.readyState === ReadyState.CLOSED) return;
  const closed = once(ws, 'close');
  ws.close();
  await closed;
}

/** Polls `condition` every 5 ms until it holds; throws after `ms`. */
export async function until(condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
