/**
 * The Switchyard side of `npm run bench`: echo on any path, fan-out from /pub to every /sub.
 * Same behaviour as ws-server.ts; options are the library's defaults except the logger.
 */
import { WebSocket, WebSocketServer } from '../../packages/switchyard/src/index.js';
import { announce, serveControl } from './common.js';

const deflate = process.argv.includes('--deflate');
if (process.argv.includes('--join-writes')) joinWrites();
const options: Record<string, unknown> = { logger: false };
if (deflate) options.perMessageDeflate = true;
const server = new WebSocketServer(options);
const subscribers = new Set<WebSocket>();

type Publishing = WebSocketServer & {
  publish?: (topic: string, data: string | Buffer, options?: { binary?: boolean }) => unknown;
};
type Subscribing = WebSocket & { subscribe?: (topic: string) => unknown };
// Pub/sub topics are another work item: use them once the library has them, else loop.
const usePublish = typeof (server as Publishing).publish === 'function';

server.on('connection', (ws, req) => {
  const path = req.url ?? '/';
  if (path === '/sub') {
    if (usePublish && typeof (ws as Subscribing).subscribe === 'function') {
      (ws as Subscribing).subscribe!('bench');
    } else {
      subscribers.add(ws);
      ws.on('close', () => subscribers.delete(ws));
    }
  } else if (path === '/pub') {
    ws.on('message', (data, isBinary) => {
      if (usePublish) (server as Publishing).publish!('bench', data, { binary: isBinary });
      else for (const sub of subscribers) sub.send(data, { binary: isBinary });
    });
  } else {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
});

const address = await server.listen(0, '127.0.0.1');
announce(address.port);
serveControl();

/**
 * An experiment for the lead (target `switchyard-join`, only with `--targets`): the Node
 * layer's flush() with the frames of one read callback joined into one buffer and written with
 * one write(), instead of corked writes that end in a writev of many small chunks. The profile
 * of echo-32b puts writev and the per-chunk Buffer conversions on top; this measures what the
 * change would buy without touching src/node. It mirrors flush() in websocket.ts otherwise.
 */
function joinWrites(): void {
  const JOIN_LIMIT = 64 * 1024;
  const proto = WebSocket.prototype as unknown as Record<string, unknown>;
  proto.flush = function flush(this: any): void {
    if (this.closed) return;
    const chunks: Uint8Array[] = this.conn.dataToSend();
    const n = chunks.length;
    if (n === 1) this.socket.write(chunks[0]);
    else if (n > 1) {
      let total = 0;
      for (let i = 0; i < n; i++) total += chunks[i].length;
      if (total <= JOIN_LIMIT) {
        const joined = Buffer.allocUnsafe(total);
        let offset = 0;
        for (let i = 0; i < n; i++) {
          joined.set(chunks[i], offset);
          offset += chunks[i].length;
        }
        this.socket.write(joined);
      } else {
        this.socket.cork();
        for (let i = 0; i < n; i++) this.socket.write(chunks[i]);
        this.socket.uncork();
      }
    }
    if (this.conn.closeTransport) {
      if (this.conn.role === 'server' || this.conn.error !== null) this.socket.end();
      this.armCloseTimer();
    } else if (this.socket.writableLength > this.maxBufferedAmount) {
      this.failBuffer();
    }
  };
}
