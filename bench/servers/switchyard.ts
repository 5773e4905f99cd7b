/**
 * The Switchyard side of `npm run bench`: echo on any path, fan-out from /pub to every /sub.
 * Same behaviour as ws-server.ts; options are the library's defaults except the logger.
 */
import { WebSocket, WebSocketServer } from '../../packages/switchyard/src/index.js';
import { announce, serveControl } from './common.js';

const deflate = process.argv.includes('--deflate');
// ws hands text to its handler as a Buffer; textAsBuffer is the same (no decode, no re-encode).
const options: Record<string, unknown> = { logger: false, textAsBuffer: true };
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
