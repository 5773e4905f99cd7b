/**
 * A server for bench/fanout.ts. Connections to /sub subscribe to the topic `bench`; every message
 * that arrives on /pub is published there.
 * - `switchyard`: `ws.subscribe` and `server.publish` (framed once, the same bytes to everyone);
 *   with `--redis URL`, topics go through a RedisBackplane (the two-process scenario).
 * - `ws`: a loop over the subscribers calling `send` (what a ws app writes without topics).
 * Prints `{"port":N}` once listening; exits when stdin closes.
 */
import { createInterface } from 'node:readline';
import { WebSocketServer as WsServer, type WebSocket as WsSocket } from 'ws';
import { WebSocketServer } from 'switchyard';
import { RedisBackplane } from '@switchyard/redis';

const impl = process.argv[2];
const redisAt = process.argv.indexOf('--redis');
const redisUrl = redisAt > 0 ? process.argv[redisAt + 1] : undefined;

let port: number;
if (impl === 'switchyard') {
  const backplane = redisUrl === undefined ? undefined : new RedisBackplane({ url: redisUrl });
  const server = new WebSocketServer({
    logger: false,
    heartbeat: false,
    // The bench measures throughput; the limit only has to stay out of the way.
    pubsub: { backplane, slowConsumer: { limit: 64 * 1024 * 1024 } },
  });
  server.on('connection', (ws) => {
    const path = new URL(ws.url).pathname;
    if (path === '/sub') ws.subscribe('bench');
    else ws.on('message', (data, isBinary) => server.publish('bench', data, { binary: isBinary }));
  });
  port = (await server.listen(0, '127.0.0.1')).port;
  await backplane?.ready();
} else if (impl === 'ws') {
  const subscribers = new Set<WsSocket>();
  const server = new WsServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  server.on('connection', (ws, req) => {
    if (req.url === '/sub') {
      subscribers.add(ws);
      ws.on('close', () => subscribers.delete(ws));
    } else {
      ws.on('message', (data, isBinary) => {
        for (const s of subscribers) s.send(data, { binary: isBinary });
      });
    }
  });
  await new Promise((resolve) => server.once('listening', resolve));
  port = (server.address() as { port: number }).port;
} else {
  throw new Error(`unknown implementation ${impl}`);
}
process.stdout.write(`${JSON.stringify({ port })}\n`);
createInterface({ input: process.stdin }).on('close', () => process.exit(0));
