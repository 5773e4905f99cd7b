/**
 * The Bun server of bench/fanout.ts, run by the `bun` binary: /sub subscribes to `bench`, every
 * message on /pub goes out with Bun's `server.publish` (uWebSockets' topics). Not type-checked
 * with the rest (Bun's globals), hence the loose types.
 */
declare const Bun: any;

const server = Bun.serve({
  hostname: '127.0.0.1',
  port: 0,
  fetch(req: Request, srv: any) {
    if (srv.upgrade(req, { data: { path: new URL(req.url).pathname } })) return undefined;
    return new Response('upgrade required', { status: 426 });
  },
  websocket: {
    // As large as the Switchyard server's limit, so that neither drops during the run.
    backpressureLimit: 64 * 1024 * 1024,
    open(ws: any) {
      if (ws.data.path === '/sub') ws.subscribe('bench');
    },
    message(_ws: any, message: string | Uint8Array) {
      server.publish('bench', message);
    },
  },
});
process.stdout.write(`${JSON.stringify({ port: server.port })}\n`);
for await (const _line of console) {
  // stdin stays open while the runner lives.
}
process.exit(0);
