/**
 * The ws side of `npm run bench`: the same handlers as switchyard.ts. Whether ws uses its
 * native addons (bufferutil, utf-8-validate) is chosen by the runner with ws's own switches,
 * WS_NO_BUFFER_UTIL and WS_NO_UTF_8_VALIDATE.
 */
import { WebSocketServer, type WebSocket } from 'ws';
import { announce, serveControl } from './common.js';

const deflate = process.argv.includes('--deflate');
const server = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: deflate });
const subscribers = new Set<WebSocket>();

server.on('connection', (ws, req) => {
  const path = req.url ?? '/';
  if (path === '/sub') {
    subscribers.add(ws);
    ws.on('close', () => subscribers.delete(ws));
  } else if (path === '/pub') {
    ws.on('message', (data, isBinary) => {
      for (const sub of subscribers) sub.send(data as Buffer, { binary: isBinary });
    });
  } else {
    ws.on('message', (data, isBinary) => ws.send(data as Buffer, { binary: isBinary }));
  }
});

server.on('listening', () => {
  announce((server.address() as { port: number }).port);
  serveControl();
});
