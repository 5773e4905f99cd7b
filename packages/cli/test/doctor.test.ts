import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import { diagnose, normaliseUrl } from '../src/doctor/doctor.js';
import { CAUSES } from '../src/doctor/causes.js';
import { findingForStatus, MISBEHAVIOURS } from '../src/serve/endpoints.js';
import { startServe, type RunningServe } from '../src/serve/server.js';
import { skipUnlessAvailable } from '../../switchyard/test/helpers/peers.js';
import { selfSignedCertificate } from '../../switchyard/test/helpers/tls.js';
import { runCli } from './helpers/run.js';

let serve: RunningServe;
before(async () => {
  serve = await startServe({ port: 0, host: '127.0.0.1' });
});
after(() => serve.close());

const quick = { timeoutMs: 2000, frameTimeoutMs: 1000, env: {} };

describe('doctor against serve', () => {
  test('finds /echo healthy: 101, valid headers, a pong, a clean close, Firefox works', async () => {
    const report = await diagnose({ url: normaliseUrl(`${serve.wsUrl}/echo`), ...quick });
    assert.equal(report.healthy, true, JSON.stringify(report.findings));
    assert.deepEqual(report.findings, []);
    const names = report.checks.filter((c) => c.status === 'pass').map((c) => c.name);
    for (const name of [
      'TCP',
      'Status',
      'Upgrade',
      'Connection',
      'Accept',
      'Ping',
      'Close',
      'Firefox',
    ]) {
      assert.ok(names.includes(name), `${name} passes`);
    }
    assert.match(
      report.request ?? '',
      /^GET \/echo HTTP\/1.1\nHost: 127\.0\.0\.1:\d+\nUpgrade: websocket/,
    );
    assert.match(report.response?.head ?? '', /^HTTP\/1.1 101 Switching Protocols/);
  });

  for (const [name, m] of Object.entries(MISBEHAVIOURS)) {
    if (name === 'idle' || name === 'hang') continue;
    test(`names ${m.finding}, with a fix, for /bad/${name}`, async () => {
      const report = await diagnose({ url: normaliseUrl(`${serve.wsUrl}/bad/${name}`), ...quick });
      const ids = report.findings.map((f) => f.id);
      assert.ok(ids.includes(m.finding), `expected ${m.finding}, got ${ids.join(', ')}`);
      assert.equal(report.healthy, false);
      const finding = report.findings.find((f) => f.id === m.finding);
      assert.ok(finding !== undefined && finding.fix.length > 0 && finding.meaning.length > 20);
    });
  }

  test('names handshake-timeout for /bad/hang when its deadline passes', async () => {
    const report = await diagnose({
      url: normaliseUrl(`${serve.wsUrl}/bad/hang`),
      ...quick,
      // Long enough that a starved event loop (a loaded CI machine) still sees the TCP connect
      // before the deadline: below that, a late connect callback reads as tcp-timeout.
      timeoutMs: 2000,
    });
    assert.deepEqual(
      report.findings.map((f) => f.id),
      ['handshake-timeout'],
    );
  });

  for (const code of [200, 301, 400, 401, 403, 404, 426, 500, 502, 503, 504]) {
    test(`says what a ${code} most likely means (/status/${code})`, async () => {
      const report = await diagnose({
        url: normaliseUrl(`${serve.wsUrl}/status/${code}`),
        ...quick,
      });
      const expected = findingForStatus(code);
      assert.ok(
        report.findings.some((f) => f.id === expected),
        JSON.stringify(report.findings.map((f) => f.id)),
      );
      assert.match(report.response?.head ?? '', new RegExp(`^HTTP/1.1 ${code} `));
    });
  }

  test('isolates a compression-offer failure with a follow-up and says what changed', async () => {
    const report = await diagnose({
      url: normaliseUrl(`${serve.wsUrl}/bad/deflate-offer`),
      ...quick,
    });
    assert.deepEqual(
      report.findings.map((f) => f.id),
      ['extension-offer-rejected'],
    );
    assert.equal(report.followUps.length, 1);
    assert.match(report.followUps[0].outcome, /101/);
  });

  test('finds the idle timeout of /bad/idle and recommends a ping interval below it', async () => {
    const report = await diagnose({
      url: normaliseUrl(`${serve.wsUrl}/bad/idle?after=600`),
      ...quick,
      idleMs: 4000,
    });
    assert.equal(report.healthy, true, 'an idle cut is a warning');
    assert.ok(report.idle?.kind === 'cut');
    if (report.idle?.kind !== 'cut') return;
    assert.ok(report.idle.afterMs >= 500 && report.idle.afterMs < 2000, `${report.idle.afterMs}`);
    assert.ok((report.idle.recommendedPingIntervalMs ?? Infinity) < report.idle.afterMs);
    assert.ok(report.findings.some((f) => f.id === 'idle-timeout' && f.severity === 'warning'));
  });

  test('reports an idle connection that survives as a pass', async () => {
    const report = await diagnose({
      url: normaliseUrl(`${serve.wsUrl}/echo`),
      ...quick,
      idleMs: 1200,
    });
    assert.equal(report.idle?.kind, 'survived');
    assert.ok(report.checks.some((c) => c.name === 'Idle' && c.status === 'pass'));
  });
});

describe('doctor before the server', () => {
  test('says nothing listens when the port is closed', async () => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const report = await diagnose({ url: normaliseUrl(`ws://127.0.0.1:${port}/`), ...quick });
    assert.deepEqual(
      report.findings.map((f) => f.id),
      ['tcp-refused'],
    );
  });

  test('says the name does not resolve', async () => {
    const report = await diagnose({ url: normaliseUrl('ws://no-such-host.invalid/'), ...quick });
    assert.deepEqual(
      report.findings.map((f) => f.id),
      ['dns-failed'],
    );
  });

  test('goes through HTTP_PROXY with CONNECT, and names a refusing proxy', async (t) => {
    const tunnels: string[] = [];
    const proxy = net.createServer((client) => {
      client.once('data', (chunk) => {
        const line = chunk.toString('latin1').split('\r\n')[0];
        tunnels.push(line);
        const [, authority] = line.split(' ');
        if (authority.endsWith(':1')) {
          client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
          return;
        }
        const [host, port] = authority.split(':');
        const upstream = net.connect(Number(port), host, () => {
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          client.pipe(upstream).pipe(client);
        });
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const report = await diagnose({
      url: normaliseUrl(`${serve.wsUrl}/echo`),
      ...quick,
      env: { HTTP_PROXY: proxyUrl },
    });
    assert.equal(report.healthy, true, JSON.stringify(report.findings));
    assert.equal(report.proxy, proxyUrl);
    assert.ok(report.checks.some((c) => c.name === 'Proxy' && c.status === 'pass'));
    assert.match(tunnels[0], /^CONNECT 127\.0\.0\.1:\d+ HTTP\/1.1$/);
    const refused = await diagnose({
      url: normaliseUrl('ws://127.0.0.1:1/'),
      ...quick,
      env: { HTTP_PROXY: proxyUrl },
    });
    assert.deepEqual(
      refused.findings.map((f) => f.id),
      ['proxy-refused'],
    );
  });

  test('says an endpoint speaks only HTTP/2, and whether it advertises extended CONNECT', async (t) => {
    const credentials = selfSignedCertificate();
    if (!skipUnlessAvailable(t, credentials)) return;
    for (const enableConnectProtocol of [true, false]) {
      const server = http2.createSecureServer({
        key: credentials.key,
        cert: credentials.cert,
        settings: { enableConnectProtocol },
      });
      server.on('stream', (stream) => stream.respond({ ':status': 404 }, { endStream: true }));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      try {
        const report = await diagnose({
          url: normaliseUrl(`wss://localhost:${port}/`),
          ...quick,
          ca: credentials.cert,
        });
        // Advertising extended CONNECT while answering 404 to every stream breaks browsers that
        // came over h2: doctor tries a WebSocket over h2 and says so.
        assert.deepEqual(
          report.findings.map((f) => f.id).sort(),
          enableConnectProtocol ? ['h2-only', 'h2-websocket-broken'] : ['h2-only'],
        );
        assert.equal(report.h2?.speaksH2, true);
        assert.equal(report.h2?.speaksH2 && report.h2.enableConnectProtocol, enableConnectProtocol);
        assert.match(
          report.findings.find((f) => f.id === 'h2-only')?.evidence ?? '',
          enableConnectProtocol ? / advertised/ : /not advertised/,
        );
      } finally {
        server.close();
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  });

  test('opens a WebSocket over HTTP/2 when extended CONNECT is advertised (RFC 8441)', async (t) => {
    const credentials = selfSignedCertificate();
    if (!skipUnlessAvailable(t, credentials)) return;
    const { WebSocketServer } = await import('switchyard');
    const server = http2.createSecureServer({
      key: credentials.key,
      cert: credentials.cert,
      allowHTTP1: true,
    });
    const wss = new WebSocketServer({ server, logger: false });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      await wss.close({ timeout: 100 });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const port = (server.address() as AddressInfo).port;
    const report = await diagnose({
      url: normaliseUrl(`wss://localhost:${port}/`),
      ...quick,
      ca: credentials.cert,
    });
    assert.equal(report.healthy, true, JSON.stringify(report.findings));
    const check = report.checks.find((c) => c.name === 'WS over h2');
    assert.equal(check?.status, 'pass', JSON.stringify(report.checks));
    assert.match(check?.summary ?? '', /HTTP\/2 stream/);
  });

  test('reports an untrusted certificate, and still diagnoses the upgrade behind it', async (t) => {
    const credentials = selfSignedCertificate();
    if (!skipUnlessAvailable(t, credentials)) return;
    const { createServer } = await import('node:https');
    const { WebSocketServer } = await import('switchyard');
    const https = createServer({ key: credentials.key, cert: credentials.cert });
    const wss = new WebSocketServer({ server: https, logger: false });
    wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
    await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      await wss.close({ timeout: 100 });
      https.closeAllConnections();
      await new Promise<void>((resolve) => https.close(() => resolve()));
    });
    const url = normaliseUrl(`wss://localhost:${(https.address() as AddressInfo).port}/`);
    const untrusted = await diagnose({ url, ...quick });
    assert.deepEqual(
      untrusted.findings.map((f) => f.id),
      ['tls-untrusted'],
    );
    assert.ok(untrusted.checks.some((c) => c.name === 'Ping' && c.status === 'pass'));
    assert.equal(untrusted.h2?.speaksH2, false);
    const trusted = await diagnose({ url, ...quick, ca: credentials.cert });
    assert.equal(trusted.healthy, true, JSON.stringify(trusted.findings));
    assert.match(
      trusted.checks.find((c) => c.name === 'TLS')?.summary ?? '',
      /TLSv1\.3 .*ALPN http\/1\.1/,
    );
  });
});

describe('the doctor command', () => {
  test('exits 0 and prints the steps for a healthy endpoint', async () => {
    const { code, stdout } = await runCli(['doctor', `${serve.wsUrl}/echo`]);
    assert.equal(code, 0);
    assert.match(stdout, /✓ Ping +pong after/);
    assert.match(stdout, /Healthy/);
  });

  test('exits 1 with the finding, its meaning and its fix', async () => {
    const { code, stdout } = await runCli(['doctor', `${serve.wsUrl}/status/426`]);
    assert.equal(code, 1);
    assert.match(stdout, /PROBLEM .*\[upgrade-not-forwarded\]/);
    assert.match(stdout, /proxy_set_header Upgrade \$http_upgrade/);
  });

  test('prints JSON with --json', async () => {
    const { code, stdout } = await runCli(['doctor', '--json', `${serve.wsUrl}/bad/accept`]);
    assert.equal(code, 1);
    const report = JSON.parse(stdout) as { findings: Array<{ id: string }> };
    assert.deepEqual(
      report.findings.map((f) => f.id),
      ['accept-mismatch'],
    );
  });

  test('exits 2 on bad usage', async () => {
    assert.equal((await runCli(['doctor'])).code, 2);
    assert.equal((await runCli(['doctor', 'ftp://x/'])).code, 2);
    assert.equal((await runCli(['doctor', '--bogus', 'ws://x/'])).code, 2);
    assert.equal((await runCli(['doctor', '--timeout', 'soon', 'ws://x/'])).code, 2);
    assert.equal((await runCli(['nope'])).code, 2);
  });

  test('every finding id that serve advertises is in the catalogue', () => {
    for (const m of Object.values(MISBEHAVIOURS)) assert.ok(CAUSES[m.finding], m.finding);
  });
});

test("-H 'Host: x' replaces the Host line instead of adding a second one", async () => {
  const { formatRequest } = await import('../src/doctor/probe.js');
  const request = formatRequest(
    {
      url: new URL('ws://127.0.0.1:9/chat'),
      protocols: [],
      extensions: null,
      origin: undefined,
      headers: { host: 'chat.example', 'X-A': '1' },
      connection: 'Upgrade',
      timeoutMs: 1000,
      proxy: null,
      tls: { alpn: [] },
      keepOpen: false,
    },
    'dGhlIHNhbXBsZSBub25jZQ==',
  );
  assert.equal(request.match(/^host:/gim)?.length, 1);
  assert.match(request, /\r\nHost: chat\.example\r\n/);
  assert.match(request, /\r\nX-A: 1\r\n/);
});

test('decodes a chunked error body for display', async () => {
  const { dechunk } = await import('../src/doctor/probe.js');
  assert.equal(
    dechunk(Buffer.from('5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n')).toString(),
    'hello world',
  );
  assert.equal(dechunk(Buffer.from('5\r\nhel')).toString(), 'hel');
});
