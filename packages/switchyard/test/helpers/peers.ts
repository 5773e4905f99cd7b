/**
 * Real peers for interop tests: Python `websockets`, headless Chromium and redis-server.
 *
 * Theory of operation: every peer is an OS package (see `.ci/run`), never downloaded by the
 * tests. Each peer has an availability check that resolves to `{ available: false, reason }`
 * when the package is missing, so a test can `t.skip(reason)`; use {@link skipUnlessAvailable},
 * which turns that skip into a failure when `SWITCHYARD_REQUIRE_PEERS=1` (set by `.ci/run`), so
 * CI can never go green by skipping. A peer that is installed but broken makes the test fail.
 *
 * Every process started here listens on 127.0.0.1 only, is bounded in time, and is stopped by
 * its `stop()` (SIGTERM, then SIGKILL after a grace period). Tests call `stop()` from `t.after`.
 * As a last line of defence, children still alive when this process exits are SIGKILLed, and
 * the Python scripts exit on their own when their stdin closes (their parent died).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createConnection, createServer as createNetServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';

/** The answer of an availability check. */
export type Availability<T extends object = object> =
  ({ available: true } & T) | { available: false; reason: string };

/** Interpreter that has Debian's python3-websockets; the `python3` first on PATH may not. */
export const PYTHON = process.env.SWITCHYARD_PYTHON ?? '/usr/bin/python3';
/** Debian's chromium launcher; playwright must never download a browser. */
export const CHROMIUM = process.env.SWITCHYARD_CHROMIUM ?? '/usr/bin/chromium';
/** Flags for headless Chromium in containers and CI: no sandbox, GPU, QUIC or background traffic. */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-quic',
  '--disable-sync',
];

const PYTHON_DIR = fileURLToPath(new URL('../peers/python/', import.meta.url));
/** Largest stdout/stderr kept per child, so a chatty peer cannot exhaust memory. */
const OUTPUT_CAP = 64 * 1024 * 1024;
const STOP_GRACE_MS = 2000;

// ---------------------------------------------------------------------------------------------
// Skipping

/** Minimal view of node:test's TestContext, so the helper does not depend on its exact type. */
export interface SkippableContext {
  skip(message?: string): void;
}

/**
 * Skips the test when the peer is unavailable and returns false; returns true when it is there.
 * With `SWITCHYARD_REQUIRE_PEERS=1` (CI) a missing peer throws instead, failing the test.
 *
 * @example
 * const py = await pythonWebsockets();
 * if (!skipUnlessAvailable(t, py)) return;
 */
export function skipUnlessAvailable<T extends object>(
  t: SkippableContext,
  peer: Availability<T>,
): peer is { available: true } & T {
  if (peer.available) return true;
  if (process.env.SWITCHYARD_REQUIRE_PEERS === '1') {
    throw new Error(`peer required (SWITCHYARD_REQUIRE_PEERS=1) but unavailable: ${peer.reason}`);
  }
  t.skip(peer.reason);
  return false;
}

// ---------------------------------------------------------------------------------------------
// Processes

/** A child process whose output is collected and that is SIGKILLed if this process exits. */
interface ManagedChild {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(): Promise<void>;
}

const liveChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

function spawnManaged(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ManagedChild {
  // stdin stays a pipe: the Python peers exit when it closes.
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  liveChildren.add(child);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    if (out.length < OUTPUT_CAP) out += s;
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    if (err.length < OUTPUT_CAP) err += s;
  });
  child.stdin!.on('error', () => {}); // EPIPE when the child exits first
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    // 'close' (not 'exit') so stdout and stderr are complete.
    child.once('close', (code, signal) => {
      liveChildren.delete(child);
      resolve({ code, signal });
    });
    child.once('error', (error) => {
      liveChildren.delete(child);
      err += `\nspawn failed: ${error.message}`;
      resolve({ code: null, signal: null });
    });
  });
  async function stop(): Promise<void> {
    if (!liveChildren.has(child)) return;
    child.kill('SIGTERM');
    if (await settlesWithin(exited, STOP_GRACE_MS)) return;
    child.kill('SIGKILL');
    if (!(await settlesWithin(exited, STOP_GRACE_MS))) {
      throw new Error(`${command} (pid ${child.pid}) survived SIGKILL for ${STOP_GRACE_MS} ms`);
    }
  }
  return { child, stdout: () => out, stderr: () => err, exited, stop };
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a command to completion, killing it after `timeoutMs`. */
async function runCommand(
  command: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  const managed = spawnManaged(command, args);
  managed.child.stdin!.end();
  const done = await settlesWithin(managed.exited, timeoutMs);
  if (!done) await managed.stop();
  const { code } = await managed.exited;
  return { code, stdout: managed.stdout(), stderr: managed.stderr(), timedOut: !done };
}

/** Waits until `check` returns a value, polling `child` output; bounded by `timeoutMs`. */
async function waitForOutput<T>(
  managed: ManagedChild,
  what: string,
  timeoutMs: number,
  check: () => T | undefined,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void managed.exited.then(() => (exited = true));
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    const value = check();
    if (value !== undefined) return value;
    if (exited) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const value = check();
  if (value !== undefined) return value;
  await managed.stop();
  throw new Error(
    `${what}: ${exited ? 'process exited' : `not ready within ${timeoutMs} ms`}\n` +
      `stdout:\n${managed.stdout()}\nstderr:\n${managed.stderr()}`,
  );
}

/**
 * Returns a TCP port that was free a moment ago on 127.0.0.1. Another process may take it before
 * the caller binds, so prefer listening on port 0 wherever the peer can report its port.
 */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

// ---------------------------------------------------------------------------------------------
// Python websockets

let pythonCheck: Promise<Availability<{ python: string; version: string }>> | undefined;

/**
 * Whether Python `websockets` is importable by {@link PYTHON} (`/usr/bin/python3`). Cached.
 * Install: `apt-get install python3-websockets`.
 */
export function pythonWebsockets(): Promise<
  { available: true; python: string; version: string } | { available: false; reason: string }
> {
  pythonCheck ??= (async () => {
    const install = 'apt-get install python3-websockets';
    if (!existsSync(PYTHON)) {
      return {
        available: false,
        reason: `python3-websockets is not installed (${PYTHON} not found): ${install}`,
      };
    }
    const r = await runCommand(
      PYTHON,
      ['-I', '-c', 'import websockets.version as v; print(v.version)'],
      10_000,
    );
    if (r.code !== 0) {
      return {
        available: false,
        reason: `python3-websockets is not installed for ${PYTHON}: ${install} (${lastLine(r.stderr)})`,
      };
    }
    return { available: true, python: PYTHON, version: r.stdout.trim() };
  })();
  return pythonCheck;
}

/** What a Python server does with its connections (see ws_server.py). */
export type PythonServerScript = 'echo';

/** Options of {@link startPythonServer}. */
export interface PythonServerOptions {
  /** permessage-deflate (RFC 7692) offered to clients. Default: null (no compression). */
  compression?: 'deflate' | null;
  /** Subprotocols the server accepts, in its order of preference. Default: none. */
  subprotocols?: readonly string[];
  /** Largest message accepted, bytes. Default: 64 MiB. */
  maxSize?: number;
  /** The server exits on its own after this long. Default: 120 s. */
  maxSeconds?: number;
}

/** A running Python server; {@link PythonServer.stop} it from `t.after`. */
export interface PythonServer {
  /** `ws://127.0.0.1:<port>/` */
  url: string;
  port: number;
  /** One per connection that ended: the close code and reason the server saw. */
  closedConnections(): Array<{
    code: number | null;
    reason: string | null;
    subprotocol: string | null;
  }>;
  /** Waits (bounded) until `count` connections have ended, then returns them all. */
  waitForClosedConnections(
    count: number,
    timeoutMs?: number,
  ): Promise<Array<{ code: number | null; reason: string | null; subprotocol: string | null }>>;
  stop(): Promise<void>;
  stdout(): string;
  stderr(): string;
}

function jsonLines(text: string): any[] {
  const out: any[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line));
    } catch {
      // a partial line: the rest is still on its way
    }
  }
  return out;
}

function lastLine(text: string): string {
  return text.trim().split('\n').at(-1) ?? '';
}

/**
 * Starts `ws_server.py` on 127.0.0.1, on a port the OS picks, and resolves once it listens.
 *
 * @example
 * const server = await startPythonServer('echo');
 * t.after(() => server.stop());
 * const ws = new WebSocket(server.url);
 */
export async function startPythonServer(
  script: PythonServerScript,
  options: PythonServerOptions = {},
): Promise<PythonServer> {
  const args = [
    '-I',
    '-u',
    `${PYTHON_DIR}ws_server.py`,
    '--behaviour',
    script,
    '--compression',
    options.compression === 'deflate' ? 'deflate' : 'none',
    '--max-size',
    String(options.maxSize ?? 64 * 1024 * 1024),
    '--max-seconds',
    String(options.maxSeconds ?? 120),
  ];
  if (options.subprotocols?.length) args.push('--subprotocols', options.subprotocols.join(','));
  const managed = spawnManaged(PYTHON, args);
  const port = await waitForOutput(managed, 'Python websockets server', 10_000, () => {
    const event = jsonLines(managed.stdout()).find((e) => e.event === 'listening');
    return event ? (event.port as number) : undefined;
  });
  const closedConnections = () =>
    jsonLines(managed.stdout())
      .filter((e) => e.event === 'closed')
      .map(({ code, reason, subprotocol }) => ({ code, reason, subprotocol }));
  return {
    url: `ws://127.0.0.1:${port}/`,
    port,
    stop: managed.stop,
    stderr: managed.stderr,
    stdout: managed.stdout,
    closedConnections,
    waitForClosedConnections: (count, timeoutMs = 5000) =>
      waitForOutput(
        managed,
        `${count} closed connection(s) on the Python server`,
        timeoutMs,
        () => {
          const closed = closedConnections();
          return closed.length >= count ? closed : undefined;
        },
      ),
  };
}

/** A message on the wire between the tests and the Python scripts (JSON-safe). */
export type WireMessage = { text: string } | { binary: string };

/** Encodes messages for the Python client: strings are text, byte arrays are binary. */
export function toWire(messages: ReadonlyArray<string | Uint8Array>): WireMessage[] {
  return messages.map((m) =>
    typeof m === 'string' ? { text: m } : { binary: Buffer.from(m).toString('base64') },
  );
}

/** Decodes messages reported by the Python client: text as strings, binary as Buffers. */
export function fromWire(messages: readonly WireMessage[]): Array<string | Buffer> {
  return messages.map((m) => ('text' in m ? m.text : Buffer.from(m.binary, 'base64')));
}

/** Scenarios of `ws_client.py`. */
export type PythonClientScenario = 'echo' | 'close' | 'await-close' | 'ping';

/** Options of {@link runPythonClient}. */
export interface PythonClientOptions {
  /** `echo`: sent one by one, each followed by one reply. `await-close`: sent, then wait. */
  messages?: ReadonlyArray<string | Uint8Array>;
  /** `close`: the code and reason the client closes with. Default: 1000, "". */
  code?: number;
  reason?: string;
  /** `ping`: how many pings. Default: 1. */
  count?: number;
  /** permessage-deflate offered by the client. Default: null. */
  compression?: 'deflate' | null;
  subprotocols?: readonly string[];
  /** Largest message accepted, bytes. Default: 64 MiB. */
  maxSize?: number;
  /** Timeout of each step inside the client, seconds. Default: 10. */
  stepTimeoutSeconds?: number;
  /** Hard limit on the whole run; the process is killed after it. Default: 30 s. */
  timeoutMs?: number;
}

/**
 * Runs `ws_client.py` against `url` and returns its exit code, output and parsed JSON result.
 *
 * Exit codes: 0 the scenario ran, 1 it failed, 2 usage error, 3 connect/handshake failed,
 * 4 a step timed out. `result` is the JSON line the client printed: always `ok`, `scenario`,
 * and on failure `stage` and `error`; on success `close: { code, reason }` (what the peer sent)
 * and `subprotocol`, plus `received: WireMessage[]` (`echo`, `await-close`; see
 * {@link fromWire}), `sent` (`close`), `rtt_ms` and `rtts_ms` (`ping`).
 * Rejects only when the client hangs past `timeoutMs` or prints no JSON (a harness bug).
 *
 * @example
 * const run = await runPythonClient(url, 'echo', { messages: ['hi', new Uint8Array([1, 2])] });
 * assert.equal(run.code, 0, run.stderr);
 * assert.deepEqual(fromWire(run.result.received), ['hi', Buffer.from([1, 2])]);
 */
export async function runPythonClient(
  url: string,
  scenario: PythonClientScenario,
  options: PythonClientOptions = {},
): Promise<{ code: number; stdout: string; stderr: string; result: any }> {
  const args = [
    '-I',
    '-u',
    `${PYTHON_DIR}ws_client.py`,
    url,
    scenario,
    '--messages',
    '-',
    '--code',
    String(options.code ?? 1000),
    '--reason',
    options.reason ?? '',
    '--count',
    String(options.count ?? 1),
    '--compression',
    options.compression === 'deflate' ? 'deflate' : 'none',
    '--max-size',
    String(options.maxSize ?? 64 * 1024 * 1024),
    '--timeout',
    String(options.stepTimeoutSeconds ?? 10),
  ];
  if (options.subprotocols?.length) args.push('--subprotocols', options.subprotocols.join(','));
  const managed = spawnManaged(PYTHON, args);
  // Messages go through stdin: Linux caps one argv string at 128 KiB.
  managed.child.stdin!.end(JSON.stringify(toWire(options.messages ?? [])));
  const timeoutMs = options.timeoutMs ?? 30_000;
  if (!(await settlesWithin(managed.exited, timeoutMs))) {
    await managed.stop();
    throw new Error(
      `ws_client.py ${scenario} ${url} hung for ${timeoutMs} ms and was killed\n` +
        `stdout:\n${managed.stdout()}\nstderr:\n${managed.stderr()}`,
    );
  }
  const { code, signal } = await managed.exited;
  const result = jsonLines(managed.stdout()).at(-1);
  if (result === undefined) {
    throw new Error(
      `ws_client.py ${scenario} printed no result (exit ${code ?? signal})\n` +
        `stdout:\n${managed.stdout()}\nstderr:\n${managed.stderr()}`,
    );
  }
  return { code: code ?? -1, stdout: managed.stdout(), stderr: managed.stderr(), result };
}

// ---------------------------------------------------------------------------------------------
// Chromium

/**
 * Launches headless Chromium ({@link CHROMIUM}) through playwright-core, with a fresh temporary
 * profile that playwright deletes on close. The caller closes the browser (`t.after`).
 * Unavailable when the executable or playwright-core is missing; rejects when Chromium is
 * installed but does not start (that is a failure, not a skip).
 * Install: `apt-get install chromium`.
 */
export async function launchChromium(
  extraArgs: readonly string[] = [],
): Promise<{ available: true; browser: Browser } | { available: false; reason: string }> {
  if (!existsSync(CHROMIUM)) {
    return { available: false, reason: `chromium is not installed: apt-get install chromium` };
  }
  let playwright: typeof import('playwright-core');
  try {
    playwright = await import('playwright-core');
  } catch (error) {
    return {
      available: false,
      reason: `playwright-core is not installed (npm ci): ${(error as Error).message}`,
    };
  }
  const browser = await playwright.chromium.launch({
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    headless: true,
    timeout: 20_000,
  });
  return { available: true, browser };
}

/**
 * Serves `html` at every path of `http://127.0.0.1:<port>/`, giving pages a real origin
 * (about:blank has an opaque one). `close()` also drops keep-alive connections.
 */
export async function serveStaticPage(
  html: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createHttpServer((req, res) => {
    if (req.url === '/favicon.ico') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(html);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}

/** One step of {@link browserWebSocketScenario}, run in order inside the page. */
export type BrowserStep =
  | { send: string }
  | { sendBinary: Uint8Array }
  /** Waits until this many messages have arrived in total. */
  | { waitForMessages: number }
  /** Calls `ws.close(code, reason)`. */
  | { close: { code?: number; reason?: string } }
  /** Waits for the close event (whoever closes). */
  | { waitForClose: true };

/** What the page saw. */
export interface BrowserScenarioResult {
  opened: boolean;
  /** Negotiated subprotocol and extensions (`ws.protocol`, `ws.extensions`). */
  protocol: string;
  extensions: string;
  /** Text as strings, binary (received as ArrayBuffer) as Buffers. */
  messages: Array<string | Buffer>;
  close: { code: number; reason: string; wasClean: boolean } | null;
  /** Error events and step failures (e.g. a timeout), in order. */
  errors: string[];
}

/**
 * In-page script, kept as plain JavaScript source: functions passed to `page.evaluate` are
 * serialized with `toString()`, and tsx's transform would add helpers (`__name`) the page
 * does not have.
 */
const PAGE_SCENARIO = String.raw`async ({ url, protocols, steps, timeoutMs }) => {
  const result = { opened: false, protocol: '', extensions: '', messages: [], close: null, errors: [] };
  const fromB64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const toB64 = (buf) => {
    const bytes = new Uint8Array(buf);
    let s = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(s);
  };
  const deadline = Date.now() + timeoutMs;
  const waitUntil = async (what, predicate) => {
    while (!predicate()) {
      if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  let ws;
  try {
    ws = new WebSocket(url, protocols);
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (e) =>
      result.messages.push(typeof e.data === 'string' ? { text: e.data } : { binary: toB64(e.data) });
    ws.onerror = () => result.errors.push('error event');
    ws.onclose = (e) => (result.close = { code: e.code, reason: e.reason, wasClean: e.wasClean });
    await waitUntil('open', () => ws.readyState !== WebSocket.CONNECTING);
    result.opened = ws.readyState === WebSocket.OPEN;
    result.protocol = ws.protocol;
    result.extensions = ws.extensions;
    for (const step of steps) {
      if ('send' in step) ws.send(step.send);
      else if ('sendBinary' in step) ws.send(fromB64(step.sendBinary).buffer);
      else if ('waitForMessages' in step)
        await waitUntil(step.waitForMessages + ' messages', () => result.messages.length >= step.waitForMessages);
      else if ('close' in step) ws.close(step.close.code, step.close.reason);
      else if ('waitForClose' in step) await waitUntil('close', () => result.close !== null);
      else throw new Error('unknown step ' + JSON.stringify(step));
    }
  } catch (e) {
    result.errors.push(String(e && e.message ? e.message : e));
    if (ws && ws.readyState < WebSocket.CLOSING) ws.close(1000);
  }
  return result;
}`;

/**
 * Opens a WebSocket from `page` to `url`, runs `steps` in order, and returns what the page saw.
 * Load a real origin first (`await page.goto((await serveStaticPage(html)).url)`).
 * Binary messages travel as base64 across the page boundary; the whole run is bounded by
 * `timeoutMs` (default 10 s) inside the page.
 *
 * @example
 * const seen = await browserWebSocketScenario(page, server.url, [
 *   { send: 'hi' }, { sendBinary: new Uint8Array([1, 2]) }, { waitForMessages: 2 },
 *   { close: { code: 4000, reason: 'bye' } }, { waitForClose: true },
 * ]);
 */
export async function browserWebSocketScenario(
  page: Page,
  url: string,
  steps: readonly BrowserStep[],
  options: { protocols?: string[]; timeoutMs?: number } = {},
): Promise<BrowserScenarioResult> {
  const wireSteps = steps.map((s) =>
    'sendBinary' in s ? { sendBinary: Buffer.from(s.sendBinary).toString('base64') } : s,
  );
  const arg = {
    url,
    protocols: options.protocols ?? [],
    steps: wireSteps,
    timeoutMs: options.timeoutMs ?? 10_000,
  };
  const raw = (await page.evaluate(`(${PAGE_SCENARIO})(${JSON.stringify(arg)})`)) as Omit<
    BrowserScenarioResult,
    'messages'
  > & { messages: WireMessage[] };
  return { ...raw, messages: fromWire(raw.messages) };
}

// ---------------------------------------------------------------------------------------------
// Redis

let redisCheck: Promise<Availability<{ path: string; version: string }>> | undefined;

/** Whether `redis-server` is installed (`apt-get install redis-server`). Cached. */
export function redisServer(): Promise<
  { available: true; path: string; version: string } | { available: false; reason: string }
> {
  redisCheck ??= (async () => {
    const path = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) =>
      existsSync(p),
    );
    const reason = 'redis-server is not installed: apt-get install redis-server';
    if (!path) return { available: false, reason };
    const r = await runCommand(path, ['--version'], 10_000);
    if (r.code !== 0) return { available: false, reason: `${reason} (${lastLine(r.stderr)})` };
    return { available: true, path, version: /v=(\S+)/.exec(r.stdout)?.[1] ?? r.stdout.trim() };
  })();
  return redisCheck;
}

/** Sends `PING` over raw TCP and resolves true on `+PONG`; false on any error or timeout. */
export async function pingRedis(port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (s: string) => {
      reply += s;
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}

async function waitForRedis(managed: ManagedChild, port: number, timeoutMs: number): Promise<void> {
  let exited = false;
  void managed.exited.then(() => (exited = true));
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 200 && !exited && Date.now() < deadline; i++) {
    if (await pingRedis(port, 250)) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  await managed.stop();
  throw new Error(
    `redis-server on port ${port}: ${exited ? 'process exited' : `no PONG within ${timeoutMs} ms`}\n` +
      `stdout:\n${managed.stdout()}\nstderr:\n${managed.stderr()}`,
  );
}

/**
 * Starts a throwaway `redis-server` on 127.0.0.1 (no persistence) and resolves once it answers
 * PING. `port: 0` (default) picks a free port, retrying if another process takes it first.
 */
export async function startRedis(options: { port?: number } = {}): Promise<{
  port: number;
  url: string;
  stop(): Promise<void>;
  stdout(): string;
  stderr(): string;
}> {
  const check = await redisServer();
  if (!check.available) throw new Error(check.reason);
  let lastError: Error | undefined;
  for (let attempt = 0; attempt < (options.port ? 1 : 3); attempt++) {
    const port = options.port || (await freePort());
    // With --save '' and appendonly off, redis writes no files into the cwd.
    const managed = spawnManaged(check.path, [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--loglevel',
      'warning',
    ]);
    try {
      await waitForRedis(managed, port, 5000);
      return {
        port,
        url: `redis://127.0.0.1:${port}`,
        stop: managed.stop,
        stdout: managed.stdout,
        stderr: managed.stderr,
      };
    } catch (error) {
      lastError = error as Error;
    }
  }
  throw lastError!;
}
