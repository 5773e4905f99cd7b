/**
 * The Bun side of `npm run bench` (uWebSockets inside), run by the `bun` binary: the same
 * behaviour as switchyard.ts, with Bun's own topics for the fan-out. Not type-checked with the
 * rest (it uses Bun's globals), hence the loose types.
 */
declare const Bun: any;

const deflate = process.argv.includes('--deflate');
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  fetch(req: Request, srv: any) {
    const path = new URL(req.url).pathname;
    if (srv.upgrade(req, { data: { path } })) return undefined;
    return new Response('upgrade required', { status: 426 });
  },
  websocket: {
    perMessageDeflate: deflate,
    // The defaults close idle sockets after 120 s and drop slow ones; the bench never idles that long.
    open(ws: any) {
      if (ws.data.path === '/sub') ws.subscribe('bench');
    },
    message(ws: any, message: string | Uint8Array) {
      if (ws.data.path === '/pub') server.publish('bench', message);
      else ws.send(message);
    },
  },
});

process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
for await (const line of console) {
  if (String(line).trim() !== 'mem') continue;
  Bun.gc(true);
  const m = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ rss: m.rss, heapUsed: m.heapUsed })}\n`);
}
process.exit(0);
