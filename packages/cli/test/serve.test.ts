import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import net from 'node:net';
import { once } from 'node:events';
import { connect, UnexpectedResponseError } from 'switchyard';
import { listEndpoints } from '../src/serve/endpoints.js';
import { startServe, type RunningServe } from '../src/serve/server.js';
import { listenAddress } from '../src/io.js';

let serve: RunningServe;
before(async () => {
  serve = await startServe({ port: 0, host: '127.0.0.1' });
});
after(() => serve.close());

function nextMessage(ws: Awaited<ReturnType<typeof connect>>): Promise<string> {
  return new Promise((resolve) => ws.once('message', (data) => resolve(String(data))));
}

test('serves the web page at / and the endpoint list at /endpoints.json', async () => {
  const page = await fetch(serve.url);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.match(await page.text(), /<title>switchyard serve<\/title>/);
  const list = (await (await fetch(`${serve.url}endpoints.json`)).json()) as Array<{
    path: string;
  }>;
  assert.deepEqual(list, JSON.parse(JSON.stringify(listEndpoints())));
});

test('answers a plain GET on a WebSocket endpoint with 426 and Upgrade: websocket', async () => {
  const res = await fetch(`${serve.url}echo`);
  assert.equal(res.status, 426);
  assert.equal(res.headers.get('upgrade'), 'websocket');
});

test('/echo sends every message back, text and binary', async (t) => {
  const ws = await connect(`${serve.wsUrl}/echo`, { logger: false });
  t.after(() => ws.terminate());
  const text = nextMessage(ws);
  ws.send('hello');
  assert.equal(await text, 'hello');
  const binary = new Promise<[Buffer, boolean]>((resolve) =>
    ws.once('message', (data, isBinary) => resolve([data as Buffer, isBinary])),
  );
  ws.send(Buffer.from([0, 1, 255]));
  const [data, isBinary] = await binary;
  assert.equal(isBinary, true);
  assert.deepEqual([...data], [0, 1, 255]);
});

test('/broadcast sends every message to every client in the room, the sender included', async (t) => {
  const a = await connect(`${serve.wsUrl}/broadcast`, { logger: false });
  const b = await connect(`${serve.wsUrl}/broadcast`, { logger: false });
  t.after(() => {
    a.terminate();
    b.terminate();
  });
  const atA = nextMessage(a);
  const atB = nextMessage(b);
  a.send('hi all');
  assert.deepEqual(await Promise.all([atA, atB]), ['hi all', 'hi all']);
});

test('/status/<code> answers the upgrade with that status', async () => {
  await assert.rejects(connect(`${serve.wsUrl}/status/503`, { logger: false }), (error) => {
    assert.ok(error instanceof UnexpectedResponseError);
    assert.equal(error.statusCode, 503);
    return true;
  });
});

test('unknown paths get 404', async () => {
  await assert.rejects(connect(`${serve.wsUrl}/nowhere`, { logger: false }), (error) => {
    assert.ok(error instanceof UnexpectedResponseError);
    assert.equal(error.statusCode, 404);
    return true;
  });
});

test('records the handshake of an upgrade made with ?trace=<id>, for the page', async (t) => {
  const ws = await connect(`${serve.wsUrl}/echo?trace=abc123`, {
    logger: false,
    origin: 'http://x',
  });
  t.after(() => ws.terminate());
  const trace = (await (await fetch(`${serve.url}trace/abc123`)).json()) as {
    requestHead: string;
    responseHead: string;
  };
  assert.match(trace.requestHead, /^GET \/echo\?trace=abc123 HTTP\/1.1\n/);
  assert.match(trace.requestHead, /\nOrigin: http:\/\/x/);
  assert.match(trace.responseHead, /^HTTP\/1.1 101 Switching Protocols\n/);
  assert.match(trace.responseHead, /\nSec-WebSocket-Accept: /i);
  assert.equal((await fetch(`${serve.url}trace/nope`)).status, 404);
});

test('records the response of a refused upgrade written with socket.end() (401, 404, 503)', async () => {
  for (const [path, status] of [
    ['/bad/auth', /^HTTP\/1.1 401 Unauthorized\n/],
    ['/nowhere', /^HTTP\/1.1 404 Not Found\n/],
    ['/status/503', /^HTTP\/1.1 503 Service Unavailable\n/],
  ] as const) {
    const id = `refused${path.replace(/\W/g, '-')}`;
    await assert.rejects(connect(`${serve.wsUrl}${path}?trace=${id}`, { logger: false }));
    const trace = (await (await fetch(`${serve.url}trace/${id}`)).json()) as {
      responseHead: string | null;
    };
    assert.match(trace.responseHead ?? 'null', status, path);
  }
});

test('PORT and HOST are read from the environment, and flags override them', () => {
  const defaults = { port: 8080, host: '127.0.0.1' };
  assert.deepEqual(listenAddress({}, {}, defaults), defaults);
  assert.deepEqual(listenAddress({}, { PORT: '9000', HOST: '0.0.0.0' }, defaults), {
    port: 9000,
    host: '0.0.0.0',
  });
  assert.deepEqual(
    listenAddress({ port: '9001', host: '::1' }, { PORT: '9000', HOST: '0.0.0.0' }, defaults),
    { port: 9001, host: '::1' },
  );
  assert.throws(() => listenAddress({ port: 'x' }, {}, defaults), /port/);
});

test(
  'a client that never finishes its upgrade head gets 408 and is closed at the handshake deadline',
  { timeout: 20_000 },
  async (t) => {
    const short = await startServe({ port: 0, host: '127.0.0.1', handshakeTimeout: 300 });
    t.after(() => short.close());
    const socket = net.connect({ host: '127.0.0.1', port: short.address.port });
    t.after(() => socket.destroy());
    socket.on('error', () => {});
    await once(socket, 'connect');
    // A partial head: the request line and one header, never the blank line.
    socket.write('GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    await once(socket, 'close');
    assert.match(received, /^HTTP\/1\.1 408 /);
  },
);
