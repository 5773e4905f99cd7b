/**
 * An echo server a newcomer can talk to: every message comes back as it was sent.
 * Reads PORT and HOST from the environment; `--port` and `--host` override them.
 *
 *   npm start                      # ws://127.0.0.1:8080
 *   PORT=9000 npm start
 *   npm start -- --port 9001 --host 0.0.0.0
 */
import { parseArgs } from 'node:util';
import { WebSocketServer } from '../src/index.js';

const { values } = parseArgs({
  options: { port: { type: 'string' }, host: { type: 'string' } },
  allowPositionals: false,
});
const port = Number(values.port ?? process.env.PORT ?? 8080);
const host = values.host ?? process.env.HOST ?? '127.0.0.1';

const server = new WebSocketServer({ origin: 'any' });
server.on('connection', (ws, req) => {
  console.log(`open   ${req.socket.remoteAddress} ${req.url}`);
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('close', (code, reason) => console.log(`close  ${code} ${reason}`));
});
const address = await server.listen(port, host);
console.log(`echo server on ws://${address.address}:${address.port} (Ctrl-C to stop)`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void server.close().then(() => process.exit(0));
  });
}
