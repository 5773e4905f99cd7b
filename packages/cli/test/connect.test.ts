import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
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
  assert.equal(result.code, 1, 'a close code other than 1000 is not a normal close');
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
