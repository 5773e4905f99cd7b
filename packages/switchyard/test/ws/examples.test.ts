/**
 * ws's examples/ programs, run unchanged but for their import (switchyard/ws) and their port:
 * each is started as its own Node.js process, as a user would run it, and exercised from here
 * with the real `ws` client (and fetch for the HTTP side). Their console output is part of what
 * is checked, since that is what the examples do with what they receive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import RealWebSocket from 'ws';
import { selfSignedCertificate } from '../helpers/tls.js';
import { skipUnlessAvailable } from '../helpers/peers.js';
import { closeClient, realClient, until } from './helpers.js';

interface Program {
  child: ChildProcess;
  /** Every line printed so far, stdout and stderr. */
  lines: string[];
  port: number | null;
  stop(): Promise<void>;
}

/** Starts a program with the source of switchyard (the `switchyard-source` condition, tsx). */
function start(name: string, env: Record<string, string> = {}): Program {
  const file = fileURLToPath(new URL(`./programs/${name}`, import.meta.url));
  const child = spawn(
    process.execPath,
    ['--conditions=switchyard-source', '--import', 'tsx', file],
    { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const program: Program = {
    child,
    lines: [],
    port: null,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (line === '') continue;
      program.lines.push(line);
      const match = /Listening on http:\/\/localhost:(\d+)/.exec(line);
      if (match !== null) program.port = Number(match[1]);
    }
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return program;
}

async function started(program: Program): Promise<number> {
  // Starting Node with tsx takes a moment on a busy machine: up to 30 s.
  await until(() => program.port !== null || program.child.exitCode !== null, 6000);
  assert.notEqual(program.port, null, program.lines.join('\n'));
  return program.port as number;
}

test('express-session-parse: log in, connect with the session cookie, message, log out closes the socket', async (t) => {
  const program = start('express-session-parse.mjs');
  t.after(() => program.stop());
  const port = await started(program);
  const base = `http://127.0.0.1:${port}`;

  // Without a session, the upgrade is refused with 401.
  const stranger = new RealWebSocket(`ws://127.0.0.1:${port}`);
  const [error] = (await once(stranger, 'error')) as [Error];
  assert.match(error.message, /Unexpected server response: 401/);

  const login = await fetch(`${base}/login`, { method: 'POST' });
  assert.deepEqual(await login.json(), { result: 'OK', message: 'Session updated' });
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
  assert.match(cookie, /^connect\.sid=/);
  const userId = /Updating session for user (\S+)/.exec(program.lines.join('\n'))?.[1];
  assert.ok(userId !== undefined);

  const ws = await realClient(`ws://127.0.0.1:${port}`, { headers: { Cookie: cookie } });
  ws.send('Hello World!');
  await until(() => program.lines.includes(`Received message Hello World! from user ${userId}`));

  const closed = once(ws, 'close');
  const logout = await fetch(`${base}/logout`, { method: 'DELETE', headers: { Cookie: cookie } });
  assert.deepEqual(await logout.json(), { result: 'OK', message: 'Session destroyed' });
  const [code] = (await closed) as [number];
  assert.equal(code, 1005, 'ws.close() without a code: a close frame with no status');
  assert.ok(!program.lines.some((line) => /Error/.test(line)), program.lines.join('\n'));
});

test('server-stats: an attached server streams memory usage every 100 ms until the client leaves', async (t) => {
  const program = start('server-stats.mjs');
  t.after(() => program.stop());
  const port = await started(program);
  const ws = await realClient(`ws://127.0.0.1:${port}`);
  const stats: Array<Record<string, number>> = [];
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    assert.equal(isBinary, false);
    stats.push(JSON.parse(data.toString()) as Record<string, number>);
  });
  await until(() => stats.length >= 2);
  for (const s of stats) assert.ok(s.rss > 0 && s.heapUsed > 0);
  assert.ok(program.lines.includes('started client interval'));
  await closeClient(ws);
  await until(() => program.lines.includes('stopping client interval'));
  // A plain HTTP request still reaches express on the same server.
  const page = await fetch(`http://127.0.0.1:${port}/missing`);
  assert.equal(page.status, 404);
});

test('ssl: an https server and the adapter client with rejectUnauthorized: false', async (t) => {
  const tls = selfSignedCertificate();
  if (!skipUnlessAvailable(t, tls)) return;
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-ws-ssl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'cert.pem'), tls.cert);
  writeFileSync(join(dir, 'key.pem'), tls.key);
  const program = start('ssl.mjs', {
    CERT_FILE: join(dir, 'cert.pem'),
    KEY_FILE: join(dir, 'key.pem'),
  });
  t.after(() => program.stop());
  await until(
    () => program.lines.includes('All glory to WebSockets!') || program.child.exitCode !== null,
    6000,
  );
  assert.ok(program.lines.includes('All glory to WebSockets!'), program.lines.join('\n'));
});
