/**
 * The reverse-proxy configurations of docs/recipes.md, loaded into the real proxies (Debian's
 * nginx, haproxy and caddy; see .ci/run) in front of a Switchyard server on 127.0.0.1, and used
 * by a client that connects through them as a browser would (with an Origin).
 *
 * The configuration is taken from the Markdown block as written; only the addresses change
 * (the proxy's listening address, and the upstream `127.0.0.1:8080`), and each replacement must
 * match exactly once, so a change to the docs that the test cannot follow fails it. The lines a
 * real install has around the block (nginx's `events` and temp paths, Caddy's admin endpoint)
 * are added here.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, WebSocketServer, type HandshakeRequest } from '../../src/index.js';
import { freePort, skipUnlessAvailable, type Availability } from '../helpers/peers.js';
import { extractBlocks } from './blocks.js';

const BINARIES = {
  nginx: process.env.SWITCHYARD_NGINX ?? '/usr/sbin/nginx',
  haproxy: process.env.SWITCHYARD_HAPROXY ?? '/usr/sbin/haproxy',
  caddy: process.env.SWITCHYARD_CADDY ?? '/usr/bin/caddy',
} as const;
type Proxy = keyof typeof BINARIES;

function available(proxy: Proxy): Availability {
  return existsSync(BINARIES[proxy])
    ? { available: true }
    : {
        available: false,
        reason: `${proxy} is not installed (${BINARIES[proxy]}): apt-get install ${proxy}`,
      };
}

/** The block of docs/recipes.md in this language. */
function recipe(lang: string): string {
  const blocks = extractBlocks('docs/recipes.md').filter((b) => b.lang === lang);
  assert.equal(blocks.length, 1, `docs/recipes.md has one ${lang} block`);
  return blocks[0]!.code;
}

/** Replaces `from` by `to`, which must occur exactly once. */
function replaceOnce(text: string, from: string | RegExp, to: string): string {
  const count =
    typeof from === 'string' ? text.split(from).length - 1 : (text.match(from) ?? []).length;
  assert.equal(count, 1, `the recipe contains ${String(from)} once`);
  return text.replace(from, to);
}

/** A Switchyard echo server at /chat that remembers the requests it accepted. */
async function startBackend(t: TestContext) {
  const requests: HandshakeRequest[] = [];
  const server = new WebSocketServer({ logger: false, path: '/chat' });
  server.on('connection', (ws, req) => {
    requests.push(req);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const { port } = await server.listen(0, '127.0.0.1');
  t.after(() => server.close({ timeout: 1000 }));
  return { port, requests };
}

/** Starts `command` and waits (at most 10 s) until `port` accepts connections. */
async function startProxy(
  t: TestContext,
  command: string,
  args: string[],
  port: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString().slice(0, 65536)));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString().slice(0, 65536)));
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    child.once('close', () => {
      exited = true;
      resolve();
    }),
  );
  child.once('error', (error) => (output += `\nspawn failed: ${error.message}`));
  t.after(async () => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(timer);
  });
  const deadline = Date.now() + 10_000;
  for (let i = 0; i < 500 && Date.now() < deadline && !exited; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `${command} did not listen on ${port} (${exited ? 'exited' : 'timeout'}):\n${output}`,
  );
}

/**
 * Picks a free port and starts the proxy on it with `start(port)`; when another process took
 * the port between the pick and the proxy's bind (other test files run in parallel), picks
 * another, three times at most. Returns the port the proxy listens on.
 */
async function onFreePort(start: (port: number) => Promise<void>): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      await start(port);
      return port;
    } catch (error) {
      const clash = /address already in use/i.test((error as Error).message);
      if (!clash || attempt >= 3) throw error;
    }
  }
}

/**
 * Through the proxy on `port`, as a browser on the proxy's origin: the handshake passes the
 * same-origin check (the proxy forwards Host), text and a 64 KiB binary message come back, the
 * backend sees the client in X-Forwarded-For, and the close handshake goes through.
 */
async function assertProxies(port: number, backend: { requests: HandshakeRequest[] }) {
  const ws = await connect(`ws://127.0.0.1:${port}/chat`, {
    origin: `http://127.0.0.1:${port}`,
    logger: false,
    handshakeTimeout: 5000,
  });
  try {
    const text = once(ws, 'message');
    ws.send('through the proxy');
    assert.equal((await text)[0], 'through the proxy');
    const big = Buffer.alloc(64 * 1024, 7);
    const binary = once(ws, 'message');
    ws.send(big);
    const [data, isBinary] = await binary;
    assert.equal(isBinary, true);
    assert.ok(big.equals(data as Buffer), 'the 64 KiB message comes back intact');
    const closed = once(ws, 'close');
    ws.close(1000, 'done');
    const [code] = await closed;
    assert.equal(code, 1000, 'the close handshake completes through the proxy');
  } finally {
    ws.terminate();
  }
  assert.equal(backend.requests.length, 1);
  const forwarded = backend.requests[0]!.headers['x-forwarded-for'];
  assert.match(String(forwarded), /127\.0\.0\.1/, 'the backend sees the client address');
}

test('the nginx recipe proxies WebSockets to Switchyard', { timeout: 60_000 }, async (t) => {
  if (!skipUnlessAvailable(t, available('nginx'))) return;
  const backend = await startBackend(t);
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-recipe-nginx-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await onFreePort(async (port) => {
    let config = recipe('nginx');
    config = replaceOnce(config, 'listen 80;', `listen 127.0.0.1:${port};`);
    config = replaceOnce(config, '127.0.0.1:8080', `127.0.0.1:${backend.port}`);
    writeFileSync(
      join(dir, 'nginx.conf'),
      `error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
${config}
}
`,
    );
    await startProxy(
      t,
      BINARIES.nginx,
      [
        '-p',
        dir,
        '-c',
        join(dir, 'nginx.conf'),
        '-g',
        `daemon off; master_process off; pid ${dir}/nginx.pid;`,
      ],
      port,
    );
  });
  await assertProxies(port, backend);
});

test('the HAProxy recipe proxies WebSockets to Switchyard', { timeout: 60_000 }, async (t) => {
  if (!skipUnlessAvailable(t, available('haproxy'))) return;
  const backend = await startBackend(t);
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-recipe-haproxy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await onFreePort(async (port) => {
    let config = recipe('haproxy');
    config = replaceOnce(config, 'bind :80', `bind 127.0.0.1:${port}`);
    config = replaceOnce(config, '127.0.0.1:8080', `127.0.0.1:${backend.port}`);
    writeFileSync(join(dir, 'haproxy.cfg'), config);
    // -db: stay in the foreground; -W: master-worker off by default in 2.6, so nothing else.
    await startProxy(t, BINARIES.haproxy, ['-db', '-f', join(dir, 'haproxy.cfg')], port);
  });
  await assertProxies(port, backend);
});

test('the Caddy recipe proxies WebSockets to Switchyard', { timeout: 60_000 }, async (t) => {
  if (!skipUnlessAvailable(t, available('caddy'))) return;
  const backend = await startBackend(t);
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-recipe-caddy-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await onFreePort(async (port) => {
    let config = recipe('caddyfile');
    // Plain HTTP on the loopback instead of a public name with its certificate.
    config = replaceOnce(config, /^example\.com \{$/m, `http://127.0.0.1:${port} {`);
    config = replaceOnce(config, '127.0.0.1:8080', `127.0.0.1:${backend.port}`);
    // default_bind: the loopback only (a site address names a host, not where Caddy binds).
    writeFileSync(
      join(dir, 'Caddyfile'),
      `{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n}\n\n${config}`,
    );
    // Caddy keeps state under $HOME / XDG folders: a throwaway one.
    const env = { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir };
    await startProxy(
      t,
      BINARIES.caddy,
      ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'],
      port,
      env,
    );
  });
  await assertProxies(port, backend);
});
