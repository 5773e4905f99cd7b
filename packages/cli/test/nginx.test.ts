/**
 * doctor in front of a real nginx, itself in front of a Switchyard server: configured once
 * correctly and once without forwarding Upgrade/Connection (nginx's defaults), and once with a
 * short proxy_read_timeout for the idle test. Needs the Debian package nginx (see .ci/run).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { WebSocketServer } from 'switchyard';
import { diagnose, normaliseUrl } from '../src/doctor/doctor.js';
import {
  freePort,
  skipUnlessAvailable,
  type Availability,
} from '../../switchyard/test/helpers/peers.js';

const NGINX = process.env.SWITCHYARD_NGINX ?? '/usr/sbin/nginx';

function nginxAvailable(): Availability {
  return existsSync(NGINX)
    ? { available: true }
    : { available: false, reason: `nginx is not installed: apt-get install nginx` };
}

let backend: WebSocketServer;
let backendPort: number;
before(async () => {
  backend = new WebSocketServer({ logger: false });
  backend.on('connection', (ws) =>
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })),
  );
  backendPort = (await backend.listen(0, '127.0.0.1')).port;
});
after(() => backend.close({ timeout: 500 }));

/** Starts nginx with `location` as the proxying block; stops it when the test ends. */
async function startNginx(t: TestContext, location: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-nginx-'));
  const port = await freePort();
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
  map $http_upgrade $connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://127.0.0.1:${backendPort};
${location}
    }
  }
}
`,
  );
  const child: ChildProcess = spawn(
    NGINX,
    [
      '-p',
      dir,
      '-c',
      join(dir, 'nginx.conf'),
      '-g',
      `daemon off; master_process off; pid ${dir}/nginx.pid;`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  t.after(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  // Ready when the port accepts connections (at most 5 s).
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return port;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`nginx did not listen on ${port}: ${stderr}`);
}

const quick = { timeoutMs: 3000, frameTimeoutMs: 2000, env: {} };

test('doctor finds nginx configured for WebSockets healthy', async (t) => {
  if (!skipUnlessAvailable(t, nginxAvailable())) return;
  const port = await startNginx(
    t,
    `      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;`,
  );
  const report = await diagnose({ url: normaliseUrl(`ws://127.0.0.1:${port}/chat`), ...quick });
  assert.equal(report.healthy, true, JSON.stringify(report.findings, null, 2));
  assert.match(report.response?.head ?? '', /^HTTP\/1.1 101 Switching Protocols\nServer: nginx/);
  assert.ok(report.checks.some((c) => c.name === 'Ping' && c.status === 'pass'));
});

test('doctor says nginx does not forward Upgrade/Connection, and gives the nginx fix', async (t) => {
  if (!skipUnlessAvailable(t, nginxAvailable())) return;
  const port = await startNginx(t, '');
  const report = await diagnose({ url: normaliseUrl(`ws://127.0.0.1:${port}/chat`), ...quick });
  assert.equal(report.healthy, false);
  const finding = report.findings.find((f) => f.id === 'upgrade-not-forwarded');
  assert.ok(finding, JSON.stringify(report.findings.map((f) => f.id)));
  assert.match(finding.evidence, /nginx/);
  assert.ok(finding.fix.some((line) => line.includes('proxy_set_header Upgrade $http_upgrade')));
  assert.ok(finding.fix.some((line) => line.includes('proxy_http_version 1.1')));
});

test("doctor's idle test finds nginx's proxy_read_timeout", async (t) => {
  if (!skipUnlessAvailable(t, nginxAvailable())) return;
  const port = await startNginx(
    t,
    `      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 1s;`,
  );
  const report = await diagnose({
    url: normaliseUrl(`ws://127.0.0.1:${port}/chat`),
    ...quick,
    idleMs: 5000,
  });
  assert.equal(report.idle?.kind, 'cut', JSON.stringify(report.idle));
  if (report.idle?.kind !== 'cut') return;
  assert.ok(report.idle.afterMs >= 800 && report.idle.afterMs < 3000, `${report.idle.afterMs}`);
  assert.ok(report.findings.some((f) => f.id === 'idle-timeout'));
});
