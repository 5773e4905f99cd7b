import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { runBench } from '../src/commands/bench.js';
import { startServe, type RunningServe } from '../src/serve/server.js';
import { runCli } from './helpers/run.js';

let serve: RunningServe;
before(async () => {
  serve = await startServe({ port: 0, host: '127.0.0.1' });
});
after(() => serve.close());

const base = {
  connections: 2,
  inFlight: 2,
  size: 32,
  binary: false,
  durationMs: 0,
  messages: 0,
  rate: 0,
  compression: false,
};

test('sends a message count over several connections and gets every echo back', async () => {
  const result = await runBench({ ...base, url: `${serve.wsUrl}/echo`, messages: 500 });
  assert.equal(result.sent, 500);
  assert.equal(result.received, 500);
  assert.deepEqual(result.errors, {});
  const l = result.latencyMs;
  assert.ok(l.min > 0 && l.min <= l.p50 && l.p50 <= l.p99 && l.p99 <= l.max, JSON.stringify(l));
});

test('holds a target rate', async () => {
  const result = await runBench({
    ...base,
    url: `${serve.wsUrl}/echo`,
    binary: true,
    durationMs: 1000,
    rate: 200,
  });
  assert.ok(result.sent >= 150 && result.sent <= 210, `sent ${result.sent}`);
  assert.equal(result.received, result.sent);
});

test('counts errors: a refused connection and echoes that never come', async () => {
  const refused = await runBench({ ...base, url: `${serve.wsUrl}/status/503`, messages: 10 });
  assert.equal(refused.errors.SWITCHYARD_ERR_HANDSHAKE_STATUS, 2);
  const silent = await runBench({
    ...base,
    url: `${serve.wsUrl}/bad/no-pong`,
    messages: 4,
    connections: 1,
    stallMs: 300,
  });
  assert.equal(silent.received, 0);
  assert.equal(silent.errors['no echo'], 2);
  assert.equal(silent.errors.stalled, 1);
});

test('the command prints throughput, percentiles and errors, or JSON', async () => {
  const human = await runCli(['bench', `${serve.wsUrl}/echo`, '-n', '200', '-c', '2']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /throughput [\d,]+ msg\/s/);
  assert.match(human.stdout, /latency +p50 [\d.]+ ms +p90 [\d.]+ ms +p99 [\d.]+ ms/);
  assert.match(human.stdout, /errors +none/);
  const json = await runCli(['bench', `${serve.wsUrl}/echo`, '-n', '100', '--json']);
  const result = JSON.parse(json.stdout) as { received: number };
  assert.equal(result.received, 100);
  assert.equal((await runCli(['bench', `${serve.wsUrl}/echo`, '-c', '0'])).code, 2);
});
