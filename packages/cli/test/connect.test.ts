import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { selfSignedCertificate } from '../../switchyard/test/helpers/tls.js';
import { skipUnlessAvailable } from '../../switchyard/test/helpers/peers.js';
import { after, before, test } from 'node:test';
import { startServe, type RunningServe } from '../src/serve/server.js';
import { runCli } from './helpers/run.js';

let serve: RunningServe;
before(async () => {
  serve = await startServe({ port: 0, host: '127.0.0.1' });
});
after(() => serve.close());

test('pipe mode: stdin lines become messages, messages become stdout lines, then a clean close', async () => {
  const result = await runCli(['connect', `${serve.wsUrl}/echo`], {
    stdin: Readable.from(['one\ntwo\n', 'three\n']),
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'one\ntwo\nthree\n');
  assert.match(result.stderr, /closed: 1000/);
});

test('interactive mode: /ping, /binary shown as hex, /close with a code and reason', async () => {
  const input = Readable.from(['hello\n', '/ping\n', '/binary 00ff10\n', '/close 4000 done\n']);
  Object.assign(input, { isTTY: true });
  // Lines are fed one by one, with time for each answer.
  const slow = Readable.from(
    (async function* () {
      for await (const line of input) {
        yield line;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    })(),
  );
  Object.assign(slow, { isTTY: true });
  const result = await runCli(['connect', `${serve.wsUrl}/echo`], { stdin: slow });
  assert.match(result.stdout, /connected to ws:\/\/127\.0\.0\.1:\d+\/echo/);
  assert.match(result.stdout, /\d\d:\d\d:\d\d\.\d{3} < hello \(5 B\)/);
  assert.match(result.stdout, /pong after \d+\.\d+ ms/);
  assert.match(result.stdout, /< binary 3 B 00ff10/);
  assert.match(result.stdout, /closed: 4000/);
  assert.equal(result.code, 0, 'a close the user asked for, answered by the server, exits 0');
});

test('a refused upgrade exits 1 and points at doctor', async () => {
  const result = await runCli(['connect', `${serve.wsUrl}/status/403`]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /403/);
  assert.match(result.stderr, /switchyard doctor/);
});

test('offers subprotocols, headers and an origin', async () => {
  const result = await runCli(
    [
      'connect',
      '-p',
      'chat',
      '-H',
      'X-Test: 1',
      '--origin',
      'http://example.test',
      `${serve.wsUrl}/echo?trace=c1`,
    ],
    { stdin: Readable.from(['x\n']) },
  );
  assert.equal(result.code, 0, result.stderr);
  const trace = (await (await fetch(`${serve.url}trace/c1`)).json()) as { requestHead: string };
  assert.match(trace.requestHead, /Sec-WebSocket-Protocol: chat/);
  assert.match(trace.requestHead, /X-Test: 1/);
  assert.match(trace.requestHead, /Origin: http:\/\/example\.test/);
});

test('bad usage exits 2', async () => {
  assert.equal((await runCli(['connect'])).code, 2);
  assert.equal((await runCli(['connect', 'ftp://x'])).code, 2);
});

test('--version and -V, on their own and after connect', async () => {
  for (const args of [['--version'], ['-V'], ['connect', '-V'], ['doctor', '--version']]) {
    const result = await runCli(args);
    assert.equal(result.code, 0, args.join(' '));
    assert.match(result.stdout, /^switchyard \d+\.\d+\.\d+/);
  }
});

test('-n listens only: the end of stdin does not close the connection', async () => {
  const controller = new AbortController();
  const run = runCli(['connect', '-n', `${serve.wsUrl}/echo`], { signal: controller.signal });
  await new Promise((resolve) => setTimeout(resolve, 300));
  // Still open after stdin (empty) ended: Ctrl-C closes it, and that close was asked for.
  controller.abort();
  const result = await run;
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stderr, /closed: 1000/);
});

test('--binary sends lines as binary; --binary-output base64 and raw print them', async () => {
  const base64 = await runCli(
    ['connect', '--binary', '--binary-output', 'base64', `${serve.wsUrl}/echo`],
    {
      stdin: Readable.from(['hi\n']),
    },
  );
  assert.equal(base64.code, 0, base64.stderr);
  assert.equal(base64.stdout, `${Buffer.from('hi').toString('base64')}\n`);
  const raw = await runCli(
    ['connect', '--binary-chunks', '--binary-output', 'raw', `${serve.wsUrl}/echo`],
    {
      stdin: Readable.from([Buffer.from([0, 1, 2, 255])]),
    },
  );
  assert.equal(raw.code, 0, raw.stderr);
  assert.deepEqual(Buffer.from(raw.stdout, 'latin1').subarray(0, 3), Buffer.from([0, 1, 2]));
  const hex = await runCli(['connect', '--binary', `${serve.wsUrl}/echo`], {
    stdin: Readable.from(['hi\n']),
  });
  assert.equal(hex.stdout, '6869\n');
  assert.equal(
    (await runCli(['connect', '--binary-output', 'octal', `${serve.wsUrl}/echo`])).code,
    2,
  );
});

test('--json prints one JSON object per event: open with the 101 headers, message, close', async () => {
  const result = await runCli(['connect', '--json', `${serve.wsUrl}/echo`], {
    stdin: Readable.from(['héllo\n']),
  });
  assert.equal(result.code, 0, result.stderr);
  const events = result.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(
    events.map((e) => e.event),
    ['open', 'message', 'close'],
  );
  for (const e of events) assert.match(String(e.time), /^\d{4}-\d\d-\d\dT/);
  assert.equal(events[0].status, 101);
  assert.match(String((events[0].headers as Record<string, string>)['sec-websocket-accept']), /=$/);
  assert.deepEqual(
    { ...events[1], time: 0 },
    { event: 'message', time: 0, type: 'text', size: 6, data: 'héllo' },
  );
  assert.equal(events[2].code, 1000);
  assert.equal(events[2].by, 'client');
});

test("-H 'Host: x' sets the Host header; other handshake headers name the option to use", async () => {
  const result = await runCli(
    ['connect', '-H', 'Host: chat.example', `${serve.wsUrl}/echo?trace=host1`],
    {
      stdin: Readable.from(['x\n']),
    },
  );
  assert.equal(result.code, 0, result.stderr);
  const trace = (await (await fetch(`${serve.url}trace/host1`)).json()) as { requestHead: string };
  assert.match(trace.requestHead, /\nHost: chat\.example\n/);
  const refused = await runCli([
    'connect',
    '-H',
    'Sec-WebSocket-Extensions: x',
    `${serve.wsUrl}/echo`,
  ]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--compression/);
});

test('--proxy tunnels through an HTTP proxy with CONNECT', async (t) => {
  const tunnels: string[] = [];
  const proxy = net.createServer((client) => {
    client.once('data', (chunk) => {
      const line = chunk.toString('latin1').split('\r\n')[0];
      tunnels.push(line);
      const [host, port] = line.split(' ')[1].split(':');
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
  const result = await runCli(['connect', '--proxy', proxyUrl, `${serve.wsUrl}/echo`], {
    stdin: Readable.from(['via proxy\n']),
  });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'via proxy\n');
  assert.match(tunnels[0] ?? '', /^CONNECT 127\.0\.0\.1:\d+ HTTP\/1.1$/);
});

test('an untrusted certificate is a certificate problem with the fix; --ca and --insecure connect', async (t) => {
  const credentials = selfSignedCertificate();
  if (!skipUnlessAvailable(t, credentials)) return;
  const { createServer } = await import('node:https');
  const { WebSocketServer } = await import('switchyard');
  const { writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const https = createServer({ key: credentials.key, cert: credentials.cert });
  const wss = new WebSocketServer({ server: https, logger: false });
  wss.on('connection', (ws) => ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary })));
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve));
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-ca-'));
  t.after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await wss.close({ timeout: 100 });
    https.closeAllConnections();
    await new Promise<void>((resolve) => https.close(() => resolve()));
  });
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, credentials.cert);
  const url = `wss://localhost:${(https.address() as AddressInfo).port}/`;
  const untrusted = await runCli(['connect', url], { stdin: Readable.from(['x\n']) });
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /certificate problem \(DEPTH_ZERO_SELF_SIGNED_CERT\)/);
  assert.match(untrusted.stderr, /--ca <file\.pem>/);
  assert.match(untrusted.stderr, /--insecure/);
  for (const flags of [['--ca', ca], ['--insecure']]) {
    const ok = await runCli(['connect', ...flags, url], { stdin: Readable.from(['x\n']) });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'x\n');
  }
});

test('exit status: 1 when the server closes abnormally', async () => {
  const result = await runCli(['connect', '-n', `${serve.wsUrl}/bad/close`]);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /closed: 1008/);
});

// An interactive session through a real terminal: tmux runs the command, keys are typed into it
// and the screen is read back.
const TMUX = spawnSync('tmux', ['-V'], { encoding: 'utf8' });
test('interactive session in a real terminal (tmux): type, /ping, /close 4000 exits 0', async (t) => {
  if (TMUX.status !== 0) {
    skipUnlessAvailable(t, { available: false, reason: 'tmux is not installed' });
    return;
  }
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const session = `switchyard-connect-${process.pid}`;
  const tmux = (...args: string[]) =>
    spawnSync('tmux', ['-L', session, ...args], { encoding: 'utf8', timeout: 10_000 });
  const command = `cd ${root} && NO_COLOR=1 node --conditions=switchyard-source --import tsx packages/cli/src/bin.ts connect ${serve.wsUrl}/echo; echo EXIT=$?; sleep 30`;
  assert.equal(
    tmux('new-session', '-d', '-s', session, '-x', '160', '-y', '40', command).status,
    0,
  );
  t.after(() => tmux('kill-server'));
  const screen = () => tmux('capture-pane', '-p', '-t', session).stdout;
  const waitFor = async (pattern: RegExp) => {
    for (let i = 0; i < 100; i++) {
      if (pattern.test(screen())) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.match(screen(), pattern);
  };
  await waitFor(/connected to ws:/);
  tmux('send-keys', '-t', session, 'hello there', 'Enter');
  await waitFor(/< hello there \(11 B\)/);
  tmux('send-keys', '-t', session, '/ping', 'Enter');
  await waitFor(/pong after \d+\.\d+ ms/);
  tmux('send-keys', '-t', session, '/close 4000 done', 'Enter');
  await waitFor(/EXIT=\d/);
  assert.match(screen(), /closed: 4000/);
  assert.match(screen(), /EXIT=0/);
});
