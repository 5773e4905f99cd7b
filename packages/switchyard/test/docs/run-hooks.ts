/**
 * Loaded with `--import` into every docs program that `code-blocks.test.ts` runs, so examples
 * can be written as users write them (`port: 8080`, `ws://127.0.0.1:8080`) and still follow the
 * test rules.
 *
 * - Every TCP `listen()` binds 127.0.0.1 on a port the OS picks, whatever the program asked
 *   for, and reports `[docs-test] listening {"requested":8080,"port":41234}` on stdout.
 * - Every TCP connection to a loopback address (or `localhost`) on a port the program listened
 *   on goes to the port it really got; other loopback ports go to `DOCS_TEST_CONNECT_PORT` when
 *   the test set it (a server the test started for a client example). Other hosts are left
 *   alone: examples that name a real host are type-checked, not run.
 *
 * Both are patched on the prototypes (`net.Server`, `net.Socket`), which http, https, tls and
 * http2 servers and clients all go through.
 */
import net from 'node:net';

const listened = new Map<number, number>();
const connectPort = Number(process.env.DOCS_TEST_CONNECT_PORT ?? 0);
const LOOPBACK = new Set([undefined, '', 'localhost', '127.0.0.1', '::1', '0.0.0.0', '::']);

const originalListen = net.Server.prototype.listen;
net.Server.prototype.listen = function listen(this: net.Server, ...args: any[]) {
  const callback = typeof args.at(-1) === 'function' ? (args.pop() as () => void) : undefined;
  const [first] = args;
  let requested: number;
  if (first === undefined || first === null) requested = 0;
  else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    requested = Number(first);
  } else if (typeof first === 'object' && first.path === undefined && first.fd === undefined) {
    if (first._handle !== undefined || first.handle !== undefined) {
      return (originalListen as (...a: any[]) => net.Server).apply(
        this,
        callback ? [...args, callback] : args,
      );
    }
    requested = Number(first.port ?? 0);
  } else {
    // A Unix socket path or a handle: not TCP, left alone.
    return (originalListen as (...a: any[]) => net.Server).apply(
      this,
      callback ? [...args, callback] : args,
    );
  }
  this.once('listening', () => {
    const address = this.address();
    if (address === null || typeof address === 'string') return;
    if (requested !== 0) listened.set(requested, address.port);
    process.stdout.write(
      `[docs-test] listening ${JSON.stringify({ requested, port: address.port })}\n`,
    );
  });
  return originalListen.call(this, { port: 0, host: '127.0.0.1' }, callback) as any;
} as typeof net.Server.prototype.listen;

const originalConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function connect(this: net.Socket, ...args: any[]) {
  // net.connect() passes its normalized arguments as one array; a direct call passes them flat.
  const options = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (options !== null && typeof options === 'object' && options.path === undefined) {
    const port = Number(options.port);
    if (LOOPBACK.has(options.host)) {
      const target = listened.get(port) ?? (connectPort || port);
      options.port = target;
      options.host = '127.0.0.1';
    }
  }
  return originalConnect.apply(this, args as any) as any;
} as typeof net.Socket.prototype.connect;
