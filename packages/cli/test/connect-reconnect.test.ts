import assert from 'node:assert/strict';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { connect, WebSocketServer } from 'switchyard';
import { main } from '../src/main.js';
import type { Io } from '../src/io.js';
import { startServe } from '../src/serve/server.js';
import { runCli } from './helpers/run.js';

/** An echo server on 127.0.0.1; `port` reuses a port a previous one had. */
async function echoServer(port = 0) {
  const server = new WebSocketServer({ logger: false });
  server.on('connection', (ws) =>
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })),
  );
  const address = await server.listen(port, '127.0.0.1');
  return { server, port: address.port, url: `ws://127.0.0.1:${address.port}/` };
}

/** `switchyard <args>` in-process with a stdin the test writes to and output it can wait for. */
function liveCli(args: string[]) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const io: Io = {
    stdout,
    stderr,
    stdin,
    env: { NO_COLOR: '1' },
    signal: new AbortController().signal,
  };
  const exit = main(args, io);
  return {
    stdin,
    exit,
    get stdout() {
      return out;
    },
    get stderr() {
      return err;
    },
    /** Waits (at most 10 s) until stdout or stderr matches. */
    async waitFor(pattern: RegExp, where: 'stdout' | 'stderr' = 'stdout') {
      const deadline = Date.now() + 10_000;
      while (!pattern.test(where === 'stdout' ? out : err)) {
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting for ${pattern}\nstdout: ${out}\nstderr: ${err}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
  };
}

test('--reconnect: after the server cuts the connection, the CLI reconnects and a line piped after is echoed', async (t) => {
  const s = await echoServer();
  t.after(() => s.server.close({ timeout: 100 }));
  let connections = 0;
  s.server.on('connection', (ws) => {
    if (++connections === 1) setTimeout(() => ws.terminate(), 50);
  });
  const cli = liveCli(['connect', '--reconnect', s.url]);
  t.after(() => cli.stdin.end());
  await cli.waitFor(/reconnecting in \d+ ms \(attempt 1\): closed 1006/, 'stderr');
  // Typed while disconnected or after: queued, then sent on the new socket.
  cli.stdin.write('after the cut\n');
  await cli.waitFor(/^after the cut$/m);
  assert.match(cli.stderr, /reconnected to ws:\/\/127\.0\.0\.1:\d+\//);
  cli.stdin.end();
  assert.equal(await cli.exit, 0, cli.stderr);
  assert.equal(connections, 2);
  assert.match(cli.stderr, /closed: 1000/);
});

test('--reconnect: comes back after the server restarts on the same port', async (t) => {
  const s1 = await echoServer();
  const cli = liveCli(['connect', '--reconnect', s1.url]);
  t.after(() => cli.stdin.end());
  cli.stdin.write('before\n');
  await cli.waitFor(/^before$/m);
  await s1.server.close({ timeout: 100 }); // 1001 Going Away: reconnects by default
  await cli.waitFor(/reconnecting in \d+ ms \(attempt 1\): closed 1001/, 'stderr');
  const s2 = await echoServer(s1.port);
  t.after(() => s2.server.close({ timeout: 100 }));
  cli.stdin.write('after the restart\n');
  await cli.waitFor(/^after the restart$/m);
  cli.stdin.end();
  assert.equal(await cli.exit, 0, cli.stderr);
});

test('--reconnect-retries gives up against a closed port and exits 1', async () => {
  const probe = net.createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  const result = await runCli(
    ['connect', '--reconnect', '--reconnect-retries', '2', `ws://127.0.0.1:${port}/`],
    { stdin: new PassThrough() },
  );
  assert.equal(result.code, 1, result.stderr);
  assert.equal(
    result.stderr.match(/reconnecting in \d+ ms \(attempt \d\): .*ECONNREFUSED/g)?.length,
    2,
  );
  assert.match(result.stderr, /Gave up reconnecting to ws:\/\/127\.0\.0\.1:\d+\/ after 2 attempts/);
});

test('--reconnect --json: one object per event, open with its attempt, reconnecting with the cause', async (t) => {
  const s = await echoServer();
  t.after(() => s.server.close({ timeout: 100 }));
  let connections = 0;
  s.server.on('connection', (ws) => {
    if (++connections === 1) setTimeout(() => ws.close(1012, 'restart'), 50);
  });
  const cli = liveCli(['connect', '--reconnect', '--json', s.url]);
  t.after(() => cli.stdin.end());
  await cli.waitFor(/"event":"open"[^\n]*"attempt":1/);
  cli.stdin.write('x\n');
  await cli.waitFor(/"event":"message"/);
  cli.stdin.end();
  assert.equal(await cli.exit, 0, cli.stderr);
  const events = cli.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  assert.deepEqual(
    events.map((e) => e.event),
    ['open', 'reconnecting', 'open', 'message', 'close'],
  );
  assert.equal(events[0].attempt, 0);
  assert.equal(events[0].status, 101);
  assert.equal(events[1].attempt, 1);
  assert.equal(typeof events[1].delay, 'number');
  assert.deepEqual(events[1].cause, { kind: 'close', code: 1012, reason: 'restart' });
  assert.equal(events[2].attempt, 1);
  assert.equal(events[3].data, 'x');
  assert.deepEqual([events[4].code, events[4].by], [1000, 'client']);
});

test('--reconnect --resume --json: topic messages carry their topic and position', async (t) => {
  const serve = await startServe({ port: 0, host: '127.0.0.1', replay: 100 });
  t.after(() => serve.close());
  const cli = liveCli(['connect', '--reconnect', '--resume', '--json', `${serve.wsUrl}/broadcast`]);
  t.after(() => cli.stdin.end());
  await cli.waitFor(/"event":"open"/);
  cli.stdin.write('hello room\n');
  await cli.waitFor(/"event":"message".*hello room/);
  cli.stdin.end();
  assert.equal(await cli.exit, 0, cli.stderr);
  const message = cli.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .find((e) => e.event === 'message');
  assert.equal(typeof message?.topic, 'string');
  assert.equal(message?.position, 1);
  assert.match(cli.stdout, /"protocol":"switchyard\.resume\.v1"/);
});

test('--reconnect --resume: a message published while the CLI was away is replayed with its position', async (t) => {
  const serve = await startServe({ port: 0, host: '127.0.0.1', replay: 100 });
  t.after(() => serve.close());
  // A TCP relay in front of serve, so the test can cut the CLI's connection and keep it out.
  const sockets = new Set<net.Socket>();
  let refuse = false;
  const relay = net.createServer((inbound) => {
    if (refuse) return inbound.destroy();
    const outbound = net.connect(serve.address.port, '127.0.0.1');
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => (inbound.destroy(), outbound.destroy()));
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  relay.listen(0, '127.0.0.1');
  await once(relay, 'listening');
  t.after(() => relay.close());
  const { port } = relay.address() as AddressInfo;
  const cli = liveCli([
    'connect',
    '--reconnect',
    '--resume',
    '--json',
    `ws://127.0.0.1:${port}/broadcast`,
  ]);
  t.after(() => cli.stdin.end());
  await cli.waitFor(/"event":"open"/);
  cli.stdin.write('first\n');
  await cli.waitFor(/"data":"first"/);
  refuse = true;
  for (const s of sockets) s.destroy();
  await cli.waitFor(/"event":"reconnecting"/);
  const publisher = await connect(`${serve.wsUrl}/broadcast`, { logger: false });
  publisher.send('while away');
  publisher.close();
  await once(publisher, 'close');
  refuse = false;
  await cli.waitFor(/"data":"while away"/);
  cli.stdin.end();
  assert.equal(await cli.exit, 0, cli.stderr);
  const messages = cli.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((e) => e.event === 'message')
    .map((e) => [e.data, e.topic, e.position]);
  assert.deepEqual(messages, [
    ['first', 'broadcast', 1],
    ['while away', 'broadcast', 2],
  ]);
});

test('--reconnect options without --reconnect are bad usage', async () => {
  const result = await runCli(['connect', '--reconnect-retries', '2', 'ws://127.0.0.1:1/']);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /--reconnect-retries goes with --reconnect/);
  const bad = await runCli(
    ['connect', '--reconnect', '--reconnect-retries', 'x', 'ws://127.0.0.1:1/'],
    {
      stdin: Readable.from([]),
    },
  );
  assert.equal(bad.code, 2);
});
