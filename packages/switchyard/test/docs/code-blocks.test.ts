/**
 * Docs that run: every TypeScript and JavaScript block of README.md, packages/NAME/README.md and
 * docs/*.md is type-checked under strict settings, and the blocks marked `run` are run as
 * programs against real servers.
 *
 * Theory of operation. Each block is written to a temporary folder inside this package (so
 * `switchyard`, `@switchyard/redis`, `express` … resolve through the workspace's node_modules,
 * `switchyard` to its source by the `switchyard-source` condition), as an ES module. One
 * TypeScript program checks them all at once. Errors are reported at their line in the Markdown.
 *
 * Markers: HTML comments right above a block's opening fence (blank lines allowed between),
 * invisible on GitHub and npm:
 *
 * - `<!-- docs-test: skip REASON -->`: not checked at all. REASON is required. For pseudo-code
 *   and excerpts of declarations that cannot stand alone.
 * - `<!-- docs-test: prelude CODE -->`: CODE (may span lines) goes before the block when it is
 *   checked and run: imports and declarations that the surrounding text already shows, such as
 *   `declare const metrics: …` or the `server` an excerpt uses. Several preludes add up.
 * - `<!-- docs-test: run -->`: a whole program that must exit with code 0 by itself (within
 *   20 s).
 * - `<!-- docs-test: run server check=NAME path=/p -->`: a program that serves; once it listens,
 *   the check NAME (below: `handshake` by default, `echo`, `line-echo` …) talks to it, then the
 *   test stops it.
 * - `<!-- docs-test: run client -->`: a program that connects to `127.0.0.1` (any port); the test
 *   starts a Switchyard echo server for it, and the program must exit with code 0 by itself.
 *
 * Programs run with `run-hooks.ts` loaded: every listen binds 127.0.0.1 on a port the OS picks,
 * whatever the example says (`port: 8080`), and connections to the ports the example names reach
 * the real ones. Every program is killed (its whole process group) when its test ends.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { connect, WebSocketServer } from '../../src/index.js';
import {
  docFiles,
  extractBlocks,
  fromRoot,
  marker,
  where,
  SCRIPT_LANGS,
  type CodeBlock,
} from './blocks.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const HOOKS = fileURLToPath(new URL('./run-hooks.ts', import.meta.url));
/** Inside the package, so node_modules resolution works; removed after the tests. */
const DIR = join(HERE, `.blocks-${process.pid}`);
const KNOWN_MARKERS = new Set(['skip', 'prelude', 'run']);
const RUN_TIMEOUT_MS = 20_000;

interface WrittenBlock {
  block: CodeBlock;
  path: string;
  /** Lines of prelude before the block's first line. */
  preludeLines: number;
}

const blocks = docFiles().flatMap(extractBlocks);
const scriptBlocks = blocks.filter((b) => SCRIPT_LANGS[b.lang] !== undefined);
const written: WrittenBlock[] = [];

before(() => {
  mkdirSync(DIR, { recursive: true });
  for (const block of scriptBlocks) {
    if (marker(block, 'skip')) continue;
    const prelude = block.markers
      .filter((m) => m.kind === 'prelude')
      .map((m) => m.text.replace(/\n?$/, '\n'))
      .join('');
    const ext = SCRIPT_LANGS[block.lang] === 'ts' ? 'mts' : 'mjs';
    const name = `${block.file.replace(/[^A-Za-z0-9]+/g, '_')}_L${block.line}.${ext}`;
    const path = join(DIR, name);
    // `export {}` makes every block a module of its own: top-level await, no name clashes.
    writeFileSync(path, `${prelude}${block.code}export {};\n`);
    written.push({ block, path, preludeLines: prelude.split('\n').length - 1 });
  }
});

after(() => rmSync(DIR, { recursive: true, force: true }));

test('every docs-test marker is known, and every skip says why', () => {
  assert.ok(scriptBlocks.length >= 20, `only ${scriptBlocks.length} code blocks found`);
  const problems: string[] = [];
  for (const block of blocks) {
    for (const m of block.markers) {
      if (!KNOWN_MARKERS.has(m.kind)) problems.push(`${where(block)}: unknown marker ${m.kind}`);
      if (m.kind === 'skip' && m.text.trim() === '')
        problems.push(`${where(block)}: skip without a reason`);
      if (m.kind !== 'skip' && SCRIPT_LANGS[block.lang] === undefined) {
        problems.push(`${where(block)}: marker ${m.kind} on a ${block.lang || 'plain'} block`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('every TypeScript and JavaScript block of the docs type-checks under strict settings', () => {
  const { options, errors } = ts.convertCompilerOptionsFromJson(
    {
      strict: true,
      noEmit: true,
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2023'],
      types: ['node'],
      customConditions: ['switchyard-source'],
      esModuleInterop: true,
      skipLibCheck: true,
      allowJs: true,
      checkJs: true,
      noFallthroughCasesInSwitch: true,
    },
    DIR,
  );
  assert.deepEqual(errors, []);
  const program = ts.createProgram(
    written.map((w) => w.path),
    options,
  );
  const byPath = new Map(written.map((w) => [w.path, w]));
  const problems: string[] = [];
  const report = (diagnostic: ts.Diagnostic) => {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
    const file = diagnostic.file;
    const w = file ? byPath.get(file.fileName) : undefined;
    if (!file || !w) {
      problems.push(
        `${file ? fromRoot(file.fileName) : 'options'}: TS${diagnostic.code} ${message}`,
      );
      return;
    }
    const { line } = file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
    const at =
      line < w.preludeLines
        ? `${where(w.block)} (prelude line ${line + 1})`
        : `${w.block.file}:${w.block.line + line - w.preludeLines}`;
    problems.push(`${at}: TS${diagnostic.code} ${message}`);
  };
  program.getOptionsDiagnostics().forEach(report);
  program.getGlobalDiagnostics().forEach(report);
  for (const w of written) {
    const source = program.getSourceFile(w.path);
    assert.ok(source, `${w.path} is in the program`);
    program.getSyntacticDiagnostics(source).forEach(report);
    program.getSemanticDiagnostics(source).forEach(report);
  }
  if (problems.length > 0) {
    assert.fail(`${problems.length} type errors in docs code blocks:\n${problems.join('\n')}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Running

interface Program {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first port the program listened on. */
  listening(timeoutMs?: number): Promise<number>;
  stop(): Promise<void>;
}

function startProgram(path: string, env: Record<string, string> = {}): Program {
  const child = spawn(
    process.execPath,
    ['--conditions=switchyard-source', '--import', 'tsx', '--import', HOOKS, path],
    // Its own process group, so that stop() also ends what the program started (workers).
    {
      cwd: DIR,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s.slice(0, 1 << 20)));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s.slice(0, 1 << 20)));
  let alive = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      alive = false;
      resolve({ code, signal });
    }),
  );
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async listening(timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
        const match = /\[docs-test\] listening (\{.*\})/.exec(out);
        if (match) return (JSON.parse(match[1]!) as { port: number }).port;
        if (!alive) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(
        `${fromRoot(path)} did not listen (${alive ? 'timeout' : 'exited'})\nstdout:\n${out}\nstderr:\n${err}`,
      );
    },
    async stop() {
      if (!alive) return;
      killGroup('SIGTERM');
      const timer = setTimeout(() => killGroup('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
      killGroup('SIGKILL'); // anything the program left behind in its group
    },
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** What a check gets: the port the program listens on, and the program. */
interface CheckContext {
  port: number;
  path: string;
  program: Program;
}

async function wsEcho(url: string, text: string): Promise<void> {
  const ws = await connect(url, { logger: false, handshakeTimeout: 5000 });
  try {
    const reply = once(ws, 'message');
    ws.send(text);
    assert.equal(String((await withTimeout(reply, 5000, `echo from ${url}`))[0]), text);
  } finally {
    ws.terminate();
  }
}

/** Sends `bytes` in one write and reads until `until` says the answer is complete. */
async function rawExchange(
  port: number,
  bytes: string,
  until: (received: string) => boolean,
): Promise<string> {
  const socket = createConnection({ host: '127.0.0.1', port });
  let received = '';
  try {
    await once(socket, 'connect');
    socket.setEncoding('latin1');
    socket.write(bytes);
    return await withTimeout(
      new Promise<string>((resolve, reject) => {
        socket.on('data', (s: string) => {
          received += s;
          if (until(received)) resolve(received);
        });
        socket.on('error', reject);
        socket.on('close', () => resolve(received));
      }),
      5000,
      `answer to ${JSON.stringify(bytes.slice(0, 40))}`,
    );
  } finally {
    socket.destroy();
  }
}

/** A plain HTTP request to the program; resolves with the status, headers and body. */
async function httpRequest(
  port: number,
  path: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    ...init,
    signal: AbortSignal.timeout(5000),
  });
  return { status: response.status, headers: response.headers, body: await response.text() };
}

/** Whether connect() is refused with this HTTP status. */
async function assertRefused(url: string, status: number, headers: Record<string, string> = {}) {
  await assert.rejects(connect(url, { logger: false, headers }), (error: Error) => {
    assert.equal((error as Error & { statusCode?: number }).statusCode, status, error.message);
    return true;
  });
}

/** Checks for `run server check=NAME`; `env` is set for the program. */
const CHECK_ENV: Record<string, Record<string, string>> = {
  graceful: { DRAIN_DELAY_MS: '300' },
};

const CHECKS: Record<string, (ctx: CheckContext) => Promise<void>> = {
  /**
   * recipes.md, express-session: no cookie, 401; after POST /login, the session's user reaches
   * ws.context.
   */
  async 'express-session'({ port }) {
    const url = `ws://127.0.0.1:${port}/chat`;
    await assertRefused(url, 401);
    const login = await httpRequest(port, '/login', { method: 'POST' });
    assert.equal(login.status, 200);
    const cookie = login.headers.get('set-cookie')?.split(';')[0];
    assert.ok(cookie, 'the login sets a session cookie');
    await assertRefused(url, 401, { cookie: 'connect.sid=s%3Aforged.signature' });
    const ws = await connect(url, { logger: false, headers: { cookie } });
    try {
      const [greeting] = await withTimeout(once(ws, 'message'), 5000, 'greeting');
      assert.equal(greeting, 'hello ada');
    } finally {
      ws.terminate();
    }
  },
  /** recipes.md, several paths: /chat echoes, /feed sends a price, others 404, pages work. */
  async paths({ port }) {
    await wsEcho(`ws://127.0.0.1:${port}/chat`, 'on the chat path');
    const feed = await connect(`ws://127.0.0.1:${port}/feed?x=1`, { logger: false });
    try {
      const [price] = await withTimeout(once(feed, 'message'), 5000, 'feed');
      assert.deepEqual(JSON.parse(String(price)), { price: 42 });
    } finally {
      feed.terminate();
    }
    await assertRefused(`ws://127.0.0.1:${port}/elsewhere`, 404);
    assert.equal((await httpRequest(port, '/')).body, 'an ordinary page\n');
  },
  /**
   * recipes.md, graceful shutdown: after SIGTERM the health check fails at once while the
   * WebSocket still works, then the WebSocket is closed with 1001 and the process exits 0.
   */
  async graceful({ port, path, program }) {
    assert.equal((await httpRequest(port, '/healthz')).status, 200);
    const ws = await connect(`ws://127.0.0.1:${port}${path}`, { logger: false });
    const closed = once(ws, 'close');
    program.child.kill('SIGTERM');
    let status = 200;
    for (let i = 0; i < 100 && status === 200; i++) {
      status = (await httpRequest(port, '/healthz')).status;
      if (status === 200) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(status, 503, 'the health check fails once SIGTERM arrived');
    const reply = once(ws, 'message');
    ws.send('still here while draining');
    assert.equal(
      (await withTimeout(reply, 5000, 'echo while draining'))[0],
      'still here while draining',
    );
    const [code, reason] = await withTimeout(closed, 10_000, 'close after the drain delay');
    assert.equal(code, 1001);
    assert.equal(reason, 'restarting');
    const exit = await withTimeout(program.exited, 10_000, 'exit after close');
    assert.deepEqual(exit, { code: 0, signal: null });
  },
  /** A WebSocket opens on `path`. */
  async handshake({ port, path }) {
    const ws = await connect(`ws://127.0.0.1:${port}${path}`, { logger: false });
    ws.terminate();
  },
  /** A WebSocket on `path` echoes a text message. */
  async echo({ port, path }) {
    await wsEcho(`ws://127.0.0.1:${port}${path}`, 'hello from the docs test');
  },
  /**
   * The RFC 9110 upgrade to `line-echo/1` echoes what it receives, including the bytes that
   * arrived in the same packet as the request head.
   */
  async 'line-echo'({ port, path }) {
    const request =
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
      'Upgrade: line-echo/1\r\nConnection: Upgrade\r\n\r\n';
    const answer = await rawExchange(port, `${request}first line\n`, (s) =>
      s.includes('first line\n'),
    );
    assert.match(answer, /^HTTP\/1\.1 101 /);
    assert.ok(
      answer.endsWith('\r\n\r\nfirst line\n'),
      `the bytes sent with the request head come back: ${JSON.stringify(answer)}`,
    );
  },
};

const runBlocks = scriptBlocks.filter((b) => marker(b, 'run') && !marker(b, 'skip'));

test('some blocks are whole programs that run', () => {
  assert.ok(runBlocks.length >= 5, `only ${runBlocks.length} blocks are marked run`);
});

for (const block of runBlocks) {
  const run = marker(block, 'run')!;
  const mode =
    run.text.split(/\s+/)[0] === 'server' || run.text.split(/\s+/)[0] === 'client'
      ? run.text.split(/\s+/)[0]!
      : 'program';
  const checkName = run.args.check ?? 'handshake';
  const label =
    mode === 'server'
      ? `serves (${checkName})`
      : mode === 'client'
        ? 'runs as a client against an echo server'
        : 'runs to completion';
  test(`${where(block)} ${label}`, { timeout: 60_000 }, async (t) => {
    const w = written.find((x) => x.block === block)!;
    if (mode === 'server') {
      const check = CHECKS[checkName];
      assert.ok(check, `${where(block)}: unknown check ${checkName}`);
      const program = startProgram(w.path, CHECK_ENV[checkName]);
      t.after(() => program.stop());
      const port = await program.listening();
      try {
        await withTimeout(
          check({ port, path: run.args.path ?? '/', program }),
          RUN_TIMEOUT_MS,
          `check ${checkName}`,
        );
      } catch (error) {
        (error as Error).message += `\nstdout:\n${program.stdout()}\nstderr:\n${program.stderr()}`;
        throw error;
      }
      return;
    }
    let env: Record<string, string> = {};
    if (mode === 'client') {
      const server = new WebSocketServer({ logger: false, origin: 'any' });
      server.on('connection', (ws) =>
        ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })),
      );
      const address = await server.listen(0, '127.0.0.1');
      t.after(() => server.close({ timeout: 1000 }));
      env = { DOCS_TEST_CONNECT_PORT: String(address.port) };
    }
    const program = startProgram(w.path, env);
    t.after(() => program.stop());
    const { code, signal } = await withTimeout(program.exited, RUN_TIMEOUT_MS, where(block)).catch(
      (error: Error) => {
        error.message += `\nstdout:\n${program.stdout()}\nstderr:\n${program.stderr()}`;
        throw error;
      },
    );
    assert.equal(
      code,
      0,
      `${where(block)} exited with ${code ?? signal}\nstdout:\n${program.stdout()}\nstderr:\n${program.stderr()}`,
    );
  });
}
