/**
 * The compression sections of the conformance fuzzing suite (Autobahn 12.x and 13.x), scaled
 * down to run in `npm test`, against an independent peer (the `ws` package), for both ends:
 * our server against a `ws` client, and our client against a `ws` server.
 *
 * Theory of operation. A case is (parameters, data set, message size, fragment size). The
 * tester opens a connection with the case's permessage-deflate parameters, sends `COUNT`
 * messages of `size` bytes taken in turn from the data set (split into compressed fragments of
 * `fragment` bytes when it is not 0), waits for each echo and checks it byte for byte, then
 * closes with 1000. A case passes strictly only when every echo is exact and in time, the
 * negotiated extension is the expected one, no error is reported on our side, and the closing
 * handshake completes cleanly with 1000 on both ends.
 *
 * Scaled down from the suite: 1,000 messages per case become {@link COUNT}; the sizes and
 * fragment sizes are the suite's (16 bytes to 128 KiB; fragments of 256 bytes to 32 KiB); the
 * data sets are generated (JSON, HTML, German prose, a bitmap) rather than the suite's files.
 *
 * 13.x's parameter combinations, as (no context takeover, max window bits): the client offers
 * them and the server accepts them as the suite does. The suite's 13.7 makes three offers at
 * once, which `ws` cannot; its negotiation is checked on the raw handshake and the messages
 * then run with the offer the server accepts (the first).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import {
  WebSocket as WsClient,
  WebSocketServer as WsServer,
  type PerMessageDeflateOptions as WsDeflate,
} from 'ws';
import { connect } from '../../src/node/client.js';
import { WebSocketServer } from '../../src/node/server.js';
import type { PerMessageDeflateConfig } from '../../src/node/deflate.js';
import type { WebSocket } from '../../src/node/websocket.js';

/**
 * `SWITCHYARD_DEFLATE_CONFORMANCE=full` runs the suite's own sizes and 1,000 messages per case
 * (`npm run test:deflate-full`, minutes); the default is the scaled run of `npm test`.
 */
const FULL = process.env.SWITCHYARD_DEFLATE_CONFORMANCE === 'full';
/** Messages per case (the suite sends 1,000). */
const COUNT = FULL ? 1000 : 3;
/** Cases of one group that run at once, each on its own connection. */
const CONCURRENCY = 6;
/** Per-case deadline (the suite allows 60 to 480 s per case). */
const CASE_TIMEOUT_MS = FULL ? 480_000 : 10_000;

/** The suite's (payload length, fragment size) pairs; fragment 0 means unfragmented. */
const SUITE_SIZES: ReadonlyArray<[number, number]> = [
  [16, 0],
  [64, 0],
  [256, 0],
  [1024, 0],
  [4096, 0],
  [8192, 0],
  [16384, 0],
  [32768, 0],
  [65536, 0],
  [131072, 0],
  [8192, 256],
  [16384, 256],
  [32768, 256],
  [65536, 256],
  [131072, 256],
  [131072, 1024],
  [131072, 4096],
  [131072, 32768],
];
/**
 * Scaled: sizes from 8 KiB up divided by 8 (so 128 KiB becomes 16 KiB), or by 32 when cut in
 * 256-byte fragments (2 to 16 fragments a message); fragment sizes kept below the message size. Messages in 256-byte compressed fragments cost the tester one zlib
 * round trip per fragment, which is what makes the full run take minutes.
 */
const SIZES: ReadonlyArray<[number, number]> = FULL
  ? SUITE_SIZES
  : SUITE_SIZES.map(([size, fragment]): [number, number] => {
      const scaled = size >= 8192 ? size / (fragment === 256 ? 32 : 8) : size;
      return [scaled, fragment >= scaled ? scaled / 2 : fragment];
    });

// ---- data sets ---------------------------------------------------------------------------------

function pseudoRandom(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

const WORDS =
  'alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon'.split(
    ' ',
  );

function jsonData(): Buffer {
  const rnd = pseudoRandom(1);
  const items = Array.from({ length: 2500 }, (_, i) => ({
    id: i,
    name: WORDS[Math.floor(rnd() * WORDS.length)] + '-' + Math.floor(rnd() * 1e6),
    score: Math.round(rnd() * 1e4) / 100,
    tags: [WORDS[i % WORDS.length], WORDS[(i * 7) % WORDS.length]],
    active: rnd() < 0.5,
  }));
  return Buffer.from(JSON.stringify(items, null, 1));
}

function htmlData(): Buffer {
  const rnd = pseudoRandom(2);
  let html = '<!doctype html><html><head><title>data</title></head><body>\n';
  while (html.length < 300_000) {
    const w = WORDS[Math.floor(rnd() * WORDS.length)];
    html += `<div class="row ${w}"><a href="/item/${Math.floor(rnd() * 1e5)}">${w}</a> <span>${rnd().toFixed(6)}</span></div>\n`;
  }
  return Buffer.from(html + '</body></html>\n');
}

function germanText(): Buffer {
  const rnd = pseudoRandom(3);
  const words =
    'Habe nun, ach! Philosophie, Juristerei und Medizin, und leider auch Theologie durchaus studiert, mit heißem Bemühn. Da steh ich nun, ich armer Tor! Und bin so klug als wie zuvor; Heiße Magister, heiße Doktor gar Grübeln über Öl und Äther'.split(
      ' ',
    );
  let text = '';
  while (text.length < 300_000)
    text += words[Math.floor(rnd() * words.length)] + (rnd() < 0.1 ? '\n' : ' ');
  return Buffer.from(text);
}

function bitmapData(): Buffer {
  // 512x512 8-bit grey: smooth gradients with noise, like a photograph's bitmap.
  const rnd = pseudoRandom(4);
  const out = Buffer.alloc(512 * 512);
  for (let y = 0; y < 512; y++) {
    for (let x = 0; x < 512; x++) {
      out[y * 512 + x] = (Math.sin(x / 40) * 60 + Math.cos(y / 25) * 60 + 128 + rnd() * 12) & 0xff;
    }
  }
  return out;
}

interface DataSet {
  name: string;
  data: Buffer;
  binary: boolean;
}

/** 12.x: the suite sends Faust and a bitmap as binary, its JSON and HTML as text. */
const DATA_SETS: readonly DataSet[] = [
  { name: 'German prose (binary)', data: germanText(), binary: true },
  { name: 'bitmap 512x512 (binary)', data: bitmapData(), binary: true },
  { name: 'JSON (text)', data: jsonData(), binary: false },
  { name: 'HTML (text)', data: htmlData(), binary: false },
];

/** The message after `ptr` of `size` bytes, cycling through the data as the suite does. */
function slice(set: DataSet, ptr: number, size: number): { message: Buffer; next: number } {
  const { data } = set;
  const end = (ptr + size) % data.length;
  const message =
    end > ptr
      ? data.subarray(ptr, end)
      : Buffer.concat([data.subarray(ptr), data.subarray(0, end)]);
  return { message, next: end };
}

// ---- 13.x parameter combinations ---------------------------------------------------------------

interface Combination {
  id: string;
  /** The suite's description: (requestNoContextTakeover, requestMaxWindowBits). */
  description: string;
  /** What the client offers, in `ws`'s terms and ours. */
  offer: WsDeflate & PerMessageDeflateConfig;
  /** What the server asks the client for, when the server is the tester. */
  accept: WsDeflate;
  /** The Sec-WebSocket-Extensions our server answers the offer with. */
  expectedServerAnswer: string;
}

const COMBINATIONS: readonly Combination[] = [
  {
    id: '13.1',
    description: 'offer (False, 0) / accept (False, 0)',
    offer: {},
    accept: {},
    expectedServerAnswer: 'permessage-deflate',
  },
  {
    id: '13.2',
    description: 'offer (True, 0) / accept (True, 0)',
    offer: { serverNoContextTakeover: true, clientNoContextTakeover: true },
    accept: { clientNoContextTakeover: true },
    expectedServerAnswer:
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
  },
  {
    id: '13.3',
    description: 'offer (False, 8) / accept (False, 8)',
    offer: { serverMaxWindowBits: 8 },
    accept: { clientMaxWindowBits: 8 },
    expectedServerAnswer: 'permessage-deflate; server_max_window_bits=8',
  },
  {
    id: '13.4',
    description: 'offer (False, 15) / accept (False, 15)',
    offer: { serverMaxWindowBits: 15 },
    accept: { clientMaxWindowBits: 15 },
    expectedServerAnswer: 'permessage-deflate; server_max_window_bits=15',
  },
  {
    id: '13.5',
    description: 'offer (True, 8) / accept (True, 8)',
    offer: { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 8 },
    accept: { clientNoContextTakeover: true, clientMaxWindowBits: 8 },
    expectedServerAnswer:
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8',
  },
  {
    id: '13.6',
    description: 'offer (True, 15) / accept (True, 15)',
    offer: {
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 15,
    },
    accept: { clientNoContextTakeover: true, clientMaxWindowBits: 15 },
    expectedServerAnswer:
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15',
  },
  {
    id: '13.7',
    description: 'offers [(True, 8), (True, 0), (False, 0)] / accept the first',
    offer: { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 8 },
    accept: { clientNoContextTakeover: true, clientMaxWindowBits: 8 },
    expectedServerAnswer:
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8',
  },
];

// ---- the tester --------------------------------------------------------------------------------

/** Sends `COUNT` messages over a `ws` socket and checks each echo; resolves when all came back. */
async function exchange(ws: WsClient, set: DataSet, size: number, fragment: number): Promise<void> {
  let ptr = 0;
  for (let i = 0; i < COUNT; i++) {
    const { message, next } = slice(set, ptr, size);
    ptr = next;
    const expected = createHash('sha1').update(message).digest('hex');
    const reply = once(ws, 'message') as Promise<[Buffer, boolean]>;
    if (fragment === 0) ws.send(message, { binary: set.binary, compress: true });
    else {
      for (let at = 0; at < message.length; at += fragment) {
        const fin = at + fragment >= message.length;
        ws.send(message.subarray(at, at + fragment), { binary: set.binary, compress: true, fin });
      }
    }
    const [data, isBinary] = await reply;
    assert.equal(isBinary, set.binary, `message ${i}: type`);
    assert.equal(data.length, size, `message ${i}: length`);
    assert.equal(createHash('sha1').update(data).digest('hex'), expected, `message ${i}: contents`);
  }
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what} did not finish within ${CASE_TIMEOUT_MS} ms`)),
        CASE_TIMEOUT_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Our server under test; one per suite, echoing every message. */
async function ourServer(perMessageDeflate: PerMessageDeflateConfig) {
  const server = new WebSocketServer({
    logger: false,
    heartbeat: false,
    perMessageDeflate,
    maxPayload: 1 << 20,
  });
  const errors: Error[] = [];
  const closes: Array<[number, boolean]> = [];
  const extensions: string[] = [];
  server.on('connection', (ws) => {
    extensions.push(ws.extensions);
    ws.on('error', (e) => errors.push(e));
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('close', (code, _reason, wasClean) => closes.push([code, wasClean]));
  });
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, port, errors, closes, extensions };
}

async function runAgainstOurServer(
  s: Awaited<ReturnType<typeof ourServer>>,
  combination: Combination,
  set: DataSet,
  size: number,
  fragment: number,
): Promise<void> {
  const client = new WsClient(`ws://127.0.0.1:${s.port}/`, {
    perMessageDeflate: { ...combination.offer, threshold: 0 },
    maxPayload: 1 << 20,
  });
  try {
    await withTimeout(once(client, 'open'), 'the opening handshake');
    // `ws` shows only the names; our end shows the parameters it answered with.
    assert.equal(client.extensions, 'permessage-deflate');
    assert.ok(
      s.extensions.length > 0 && s.extensions.every((e) => e === combination.expectedServerAnswer),
      s.extensions.join(' | '),
    );
    await withTimeout(exchange(client, set, size, fragment), 'the echoes');
    const closed = once(client, 'close') as Promise<[number, Buffer]>;
    client.close(1000);
    const [code] = await withTimeout(closed, 'the closing handshake');
    assert.equal(code, 1000);
  } finally {
    client.terminate();
  }
}

/** A `ws` server as the tester for our client: it sends, our client echoes. */
async function testerServer(accept: WsDeflate) {
  const wss = new WsServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: { ...accept, threshold: 0 },
    maxPayload: 1 << 20,
  });
  await once(wss, 'listening');
  const port = (wss.address() as net.AddressInfo).port;
  // Cases run concurrently: each connects to its own path, by which its connection is found.
  const waiting = new Map<string, (ws: WsClient) => void>();
  wss.on('connection', (ws, req) => waiting.get(req.url ?? '')?.(ws));
  let next = 0;
  const nextCase = () => {
    const path = `/case-${next++}`;
    return { path, peer: new Promise<WsClient>((resolve) => waiting.set(path, resolve)) };
  };
  return { wss, port, nextCase };
}

async function runOurClient(
  tester: Awaited<ReturnType<typeof testerServer>>,
  combination: Combination,
  set: DataSet,
  size: number,
  fragment: number,
): Promise<void> {
  const { path, peer: accepted } = tester.nextCase();
  const ours: WebSocket = await connect(`ws://127.0.0.1:${tester.port}${path}`, {
    logger: false,
    heartbeat: false,
    maxPayload: 1 << 20,
    perMessageDeflate: { ...combination.offer, threshold: 0 },
  });
  const errors: Error[] = [];
  ours.on('error', (e) => errors.push(e));
  ours.on('message', (data, isBinary) => ours.send(data, { binary: isBinary }));
  const ourClose = once(ours, 'close') as Promise<[number, string, boolean]>;
  try {
    const peer = await withTimeout(accepted, 'the opening handshake');
    assert.match(ours.extensions, /^permessage-deflate/);
    assert.equal(peer.extensions, 'permessage-deflate');
    await withTimeout(exchange(peer, set, size, fragment), 'the echoes');
    peer.close(1000);
    const [code, , wasClean] = await withTimeout(ourClose, 'the closing handshake');
    assert.equal(code, 1000);
    assert.equal(wasClean, true);
    assert.deepEqual(errors, []);
  } finally {
    ours.terminate();
  }
}

// ---- the cases ---------------------------------------------------------------------------------

const sizeName = (size: number, fragment: number) =>
  `${size} bytes${fragment === 0 ? '' : `, fragments of ${fragment}`}`;

describe(
  '12.x: compressed echo of every data set and size, our server (default offer)',
  { concurrency: 4 },
  () => {
    for (const [j, set] of DATA_SETS.entries()) {
      test(`12.${j + 1}: ${set.name}`, { concurrency: CONCURRENCY }, async (t) => {
        const s = await ourServer({ threshold: 0 });
        t.after(() => s.server.close({ timeout: 200 }));
        await Promise.all(
          SIZES.map(([size, fragment], i) =>
            t.test(`12.${j + 1}.${i + 1}: ${sizeName(size, fragment)}`, () =>
              runAgainstOurServer(s, COMBINATIONS[0], set, size, fragment),
            ),
          ),
        );
        assert.deepEqual(s.errors, []);
        await waitUntil(() => s.closes.length === SIZES.length);
        assert.ok(
          s.closes.every(([code, clean]) => code === 1000 && clean),
          JSON.stringify(s.closes),
        );
      });
    }
  },
);

describe(
  '12.x: compressed echo of every data set and size, our client (default offer)',
  { concurrency: 4 },
  () => {
    for (const [j, set] of DATA_SETS.entries()) {
      test(`12.${j + 1}: ${set.name}`, { concurrency: CONCURRENCY }, async (t) => {
        const tester = await testerServer({});
        t.after(() => new Promise<void>((r) => tester.wss.close(() => r())));
        await Promise.all(
          SIZES.map(([size, fragment], i) =>
            t.test(`12.${j + 1}.${i + 1}: ${sizeName(size, fragment)}`, () =>
              runOurClient(tester, COMBINATIONS[0], set, size, fragment),
            ),
          ),
        );
      });
    }
  },
);

const JSON_SET = DATA_SETS[2];

describe('13.x: parameter combinations, our server', { concurrency: 4 }, () => {
  test('13.7: of three offers, the first acceptable one is answered', async (t) => {
    const s = await ourServer({ threshold: 0 });
    t.after(() => s.server.close({ timeout: 200 }));
    const socket = net.connect(s.port, '127.0.0.1');
    t.after(() => socket.destroy());
    await once(socket, 'connect');
    socket.write(
      `GET / HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
        'Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; client_max_window_bits; ' +
        'server_no_context_takeover; server_max_window_bits=8, ' +
        'permessage-deflate; client_no_context_takeover; client_max_window_bits; server_no_context_takeover, ' +
        'permessage-deflate; client_no_context_takeover; client_max_window_bits\r\n\r\n',
    );
    const [head] = (await once(socket, 'data')) as [Buffer];
    const line = /sec-websocket-extensions: ([^\r]*)/i.exec(head.toString('latin1'))?.[1];
    assert.equal(line, COMBINATIONS[6].expectedServerAnswer);
  });

  for (const combination of COMBINATIONS) {
    test(
      `${combination.id}: ${combination.description}`,
      { concurrency: CONCURRENCY },
      async (t) => {
        const s = await ourServer({ threshold: 0 });
        t.after(() => s.server.close({ timeout: 200 }));
        await Promise.all(
          SIZES.map(([size, fragment], i) =>
            t.test(`${combination.id}.${i + 1}: ${sizeName(size, fragment)}`, () =>
              runAgainstOurServer(s, combination, JSON_SET, size, fragment),
            ),
          ),
        );
        assert.deepEqual(s.errors, []);
      },
    );
  }
});

describe('13.x: parameter combinations, our client', { concurrency: 4 }, () => {
  for (const combination of COMBINATIONS) {
    test(
      `${combination.id}: ${combination.description}`,
      { concurrency: CONCURRENCY },
      async (t) => {
        const tester = await testerServer(combination.accept);
        t.after(() => new Promise<void>((r) => tester.wss.close(() => r())));
        await Promise.all(
          SIZES.map(([size, fragment], i) =>
            t.test(`${combination.id}.${i + 1}: ${sizeName(size, fragment)}`, () =>
              runOurClient(tester, combination, JSON_SET, size, fragment),
            ),
          ),
        );
      },
    );
  }
});

async function waitUntil(predicate: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}
