/**
 * permessage-deflate on real sockets: the 101, RSV1 on the wire, fragmented and
 * control-interleaved compressed messages, context takeover, the threshold, ordering, the
 * inflate limit, the zlib limiter and the idle release of contexts.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import zlib from 'node:zlib';
import { WebSocket as WsClient } from 'ws';
import type { SwitchyardError } from '../../src/core/errors.js';
import { computeAcceptKey } from '../../src/core/sha1.js';
import { connect } from '../../src/node/client.js';
import {
  DeflateCodec,
  ZlibLimiter,
  deflateContextsHeld,
  type PerMessageDeflateConfig,
} from '../../src/node/deflate.js';
import type { WebSocket } from '../../src/node/websocket.js';
import {
  RawClient,
  afterHead,
  clientFrame,
  serverFrames,
  startServer as startTestServer,
  upgradeRequest,
  type TestServer,
} from '../helpers/server.js';
import type { ServerOptions } from '../../src/node/server.js';

/** A test server whose close does not wait long for raw clients that never answer close. */
async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  const s = await startTestServer(options);
  return { ...s, close: () => s.server.close({ timeout: 50 }) };
}

const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(200);
/** 4 KiB of text that compresses poorly on its own, but well after a copy of itself. */
const NOISY = Array.from({ length: 128 }, (_, i) =>
  createHash('sha256').update(String(i)).digest('hex'),
).join('');

/** Raw DEFLATE of `data` as permessage-deflate sends it: sync-flushed, trailer removed. */
function compress(data: Buffer | string, options: zlib.ZlibOptions = {}): Buffer {
  const out = zlib.deflateRawSync(data, { ...options, finishFlush: zlib.constants.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - 4);
}

async function echoServer(
  t: TestContext,
  perMessageDeflate: boolean | PerMessageDeflateConfig,
  extra = {},
): Promise<TestServer> {
  const s = await startServer({ perMessageDeflate, ...extra });
  t.after(() => s.close());
  s.server.on('connection', (ws) => {
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  return s;
}

/** A raw client that negotiated permessage-deflate with `offer`; returns it with the 101. */
async function rawDeflateClient(t: TestContext, s: TestServer, offer = 'permessage-deflate') {
  const raw = await RawClient.connect(s.port);
  t.after(() => raw.destroy());
  raw.write(upgradeRequest(s.port, { 'Sec-WebSocket-Extensions': offer }));
  const head = await raw.readHead();
  return { raw, head };
}

async function waitForFrames(raw: RawClient, count: number) {
  await raw.waitFor((b) => serverFrames(afterHead(b)).length >= count);
  return serverFrames(afterHead(raw.received));
}

function inflateFrames(payloads: Buffer[], windowBits = 15): Buffer {
  return zlib.inflateRawSync(Buffer.concat([...payloads, Buffer.from([0, 0, 0xff, 0xff])]), {
    windowBits,
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
}

describe('negotiation on the wire', () => {
  test('the server is off by default: no Sec-WebSocket-Extensions in the 101', async (t) => {
    const s = await startServer();
    t.after(() => s.close());
    const { head } = await rawDeflateClient(t, s);
    assert.equal(head.status, 101);
    assert.equal(head.headers['sec-websocket-extensions'], undefined);
  });

  test('the 101 carries the accepted parameters and ws.extensions shows them', async (t) => {
    const s = await startServer({ perMessageDeflate: { serverMaxWindowBits: 10 } });
    t.after(() => s.close());
    const seen = once(s.server, 'connection');
    const { head } = await rawDeflateClient(
      t,
      s,
      'permessage-deflate; foo, permessage-deflate; client_max_window_bits',
    );
    assert.equal(head.status, 101);
    const expected = 'permessage-deflate; server_max_window_bits=10';
    assert.equal(head.headers['sec-websocket-extensions'], expected);
    const [ws] = (await seen) as [WebSocket];
    assert.equal(ws.extensions, expected);
  });

  test('a client that does not offer it gets no compression', async (t) => {
    const s = await echoServer(t, true);
    const ws = await connect(s.url, { logger: false });
    t.after(() => ws.terminate());
    assert.equal(ws.extensions, '');
  });

  test('our client offers it and sees what the server accepted', async (t) => {
    const s = await echoServer(t, { serverNoContextTakeover: true });
    const ws = await connect(s.url, { logger: false, perMessageDeflate: true });
    t.after(() => ws.terminate());
    assert.equal(ws.extensions, 'permessage-deflate; server_no_context_takeover');
    const reply = once(ws, 'message');
    ws.send(TEXT);
    assert.equal(String((await reply)[0]), TEXT);
  });

  for (const [answer, reason] of [
    ['permessage-deflate; client_max_window_bits', /must have a value/],
    ['permessage-deflate; foo=1', /unknown parameter/],
    ['permessage-deflate; server_max_window_bits=16', /from 8 to 15/],
    ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', /twice/],
    ['x-webkit-deflate-frame', /not offered/],
  ] as const) {
    test(`the client fails the handshake when the server answers ${answer}`, async (t) => {
      const server = net.createServer((socket) => {
        socket.once('data', (data) => {
          const key = /sec-websocket-key: (\S+)/i.exec(data.toString('latin1'))?.[1] ?? '';
          const accept = acceptFor(key);
          socket.write(
            'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
              `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Extensions: ${answer}\r\n\r\n`,
          );
        });
        socket.on('error', () => {});
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      t.after(() => server.close());
      const port = (server.address() as net.AddressInfo).port;
      await assert.rejects(
        connect(`ws://127.0.0.1:${port}/`, { logger: false, perMessageDeflate: true }),
        (e: SwitchyardError) =>
          e.code === 'SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS' && reason.test(e.message),
      );
    });
  }
});

function acceptFor(key: string): string {
  // RFC 6455 §4.2.2: base64(SHA-1(key + GUID)).
  return createHash('sha1')
    .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
    .digest('base64');
}

describe('messages', () => {
  test('a compressed message from the client is inflated; the echo sets RSV1 on its only frame', async (t) => {
    const s = await echoServer(t, { threshold: 0 });
    const { raw } = await rawDeflateClient(t, s);
    raw.write(clientFrame(1, compress(TEXT), true, 4));
    const [frame] = await waitForFrames(raw, 1);
    assert.equal(frame.rsv1, true);
    assert.equal(frame.opcode, 1);
    assert.equal(inflateFrames([frame.payload]).toString(), TEXT);
  });

  test('a fragmented compressed message with a ping between fragments is inflated whole', async (t) => {
    const s = await echoServer(t, { threshold: 0 });
    const { raw } = await rawDeflateClient(t, s);
    const payload = compress(TEXT);
    const a = payload.subarray(0, 10);
    const b = payload.subarray(10, 20);
    const c = payload.subarray(20);
    // RFC 7692 §6: RSV1 on the first frame only; RFC 6455 §5.4: control frames in between.
    raw.write(
      Buffer.concat([
        clientFrame(1, a, false, 4),
        clientFrame(9, 'ping!'),
        clientFrame(0, b, false),
        clientFrame(0, c, true),
      ]),
    );
    const frames = await waitForFrames(raw, 2);
    assert.equal(frames[0].opcode, 10);
    assert.equal(frames[0].payload.toString(), 'ping!');
    assert.equal(inflateFrames([frames[1].payload]).toString(), TEXT);
  });

  test('RSV1 on a continuation frame fails the connection with 1002', async (t) => {
    const s = await echoServer(t, true);
    const { raw } = await rawDeflateClient(t, s);
    const payload = compress(TEXT);
    raw.write(
      Buffer.concat([
        clientFrame(1, payload.subarray(0, 5), false, 4),
        clientFrame(0, payload.subarray(5), true, 4),
      ]),
    );
    const [frame] = await waitForFrames(raw, 1);
    assert.equal(frame.opcode, 8);
    assert.equal(frame.payload.readUInt16BE(0), 1002);
  });

  test('a corrupt DEFLATE stream fails the connection with 1007', async (t) => {
    const s = await echoServer(t, true);
    const { raw } = await rawDeflateClient(t, s);
    raw.write(clientFrame(2, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]), true, 4));
    const [frame] = await waitForFrames(raw, 1);
    assert.equal(frame.opcode, 8);
    assert.equal(frame.payload.readUInt16BE(0), 1007);
  });

  test('compressed text that is not UTF-8 once inflated fails with 1007', async (t) => {
    const s = await echoServer(t, true);
    const { raw } = await rawDeflateClient(t, s);
    raw.write(clientFrame(1, compress(Buffer.from([0x68, 0xc3, 0x28])), true, 4));
    const [frame] = await waitForFrames(raw, 1);
    assert.equal(frame.payload.readUInt16BE(0), 1007);
  });

  test('an empty compressed message is a 0x00 payload (RFC 7692 §7.2.3.6); its echo goes plain, as one byte is not smaller than none', async (t) => {
    const s = await echoServer(t, { threshold: 0 });
    const { raw } = await rawDeflateClient(t, s);
    raw.write(clientFrame(1, Buffer.from([0x00]), true, 4));
    const [frame] = await waitForFrames(raw, 1);
    assert.equal(frame.rsv1, false);
    assert.equal(frame.payload.length, 0);
  });

  test('below the threshold messages go uncompressed; compress overrides it both ways', async (t) => {
    const s = await startServer({ perMessageDeflate: { threshold: 100 } });
    t.after(() => s.close());
    s.server.on('connection', (ws) => {
      ws.send('short');
      ws.send('short short short short short short short', { compress: true });
      ws.send(TEXT, { compress: false });
      ws.send(TEXT);
    });
    const { raw } = await rawDeflateClient(t, s);
    const frames = await waitForFrames(raw, 4);
    assert.deepEqual(
      frames.map((f) => f.rsv1),
      [false, true, false, true],
    );
    assert.equal(frames[0].payload.toString(), 'short');
    assert.equal(
      inflateFrames([frames[1].payload]).toString(),
      'short short short short short short short',
    );
    assert.equal(frames[2].payload.toString(), TEXT);
    assert.equal(inflateFrames([frames[3].payload]).toString(), TEXT);
  });

  test('a fragmented compressed send sets RSV1 on the first frame only and inflates whole', async (t) => {
    const s = await startServer({ perMessageDeflate: { threshold: 0 } });
    t.after(() => s.close());
    s.server.on('connection', (ws) => {
      ws.send(TEXT.slice(0, 3000), { fin: false });
      ws.send(TEXT.slice(3000, 6000), { fin: false });
      ws.send(TEXT.slice(6000), { fin: true });
    });
    const { raw } = await rawDeflateClient(t, s);
    const frames = await waitForFrames(raw, 3);
    assert.deepEqual(
      frames.map((f) => [f.opcode, f.fin, f.rsv1]),
      [
        [1, false, true],
        [0, false, false],
        [0, true, false],
      ],
    );
    assert.equal(inflateFrames(frames.map((f) => f.payload)).toString(), TEXT);
  });

  test('messages, compressed or not, and the close frame keep the order they were sent in', async (t) => {
    const s = await startServer({ perMessageDeflate: { threshold: 1000 } });
    t.after(() => s.close());
    s.server.on('connection', (ws) => {
      ws.send(TEXT + '1');
      ws.send('2');
      ws.send(TEXT + '3');
      ws.send(Buffer.from('4'));
      ws.close(4000, 'done');
      assert.throws(() => ws.send('too late'), /closing/);
    });
    const client = new WsClient(s.url, { perMessageDeflate: true });
    t.after(() => client.terminate());
    const got: string[] = [];
    client.on('message', (d) => got.push(String(d).slice(-1)));
    const [code] = await once(client, 'close');
    assert.deepEqual(got, ['1', '2', '3', '4']);
    assert.equal(code, 4000);
  });

  test('bufferedAmount counts bytes waiting for the compressor, and drain follows', async (t) => {
    // syncLimit 0: every message waits for the thread pool (a small one is otherwise
    // compressed before send() returns, and only its compressed frame counts).
    const s = await startServer({ perMessageDeflate: { syncLimit: 0 }, highWaterMark: 1000 });
    t.after(() => s.close());
    const done = new Promise<[number, boolean]>((resolve) => {
      s.server.on('connection', (ws) => {
        const below = ws.send(TEXT);
        const pending = ws.bufferedAmount;
        ws.once('drain', () => resolve([pending, below]));
      });
    });
    const client = new WsClient(s.url, { perMessageDeflate: true });
    t.after(() => client.terminate());
    const [pending, below] = await done;
    assert.ok(pending >= TEXT.length, `bufferedAmount was ${pending}`);
    assert.equal(below, false);
  });
});

describe('context takeover', () => {
  async function twoFrames(t: TestContext, config: PerMessageDeflateConfig, offer: string) {
    const s = await startServer({ perMessageDeflate: { threshold: 0, ...config } });
    t.after(() => s.close());
    s.server.on('connection', (ws) => {
      ws.send(NOISY);
      ws.send(NOISY);
    });
    const { raw, head } = await rawDeflateClient(t, s, offer);
    return { frames: await waitForFrames(raw, 2), head };
  }

  test('with context takeover, a repeated message refers back to the first', async (t) => {
    const { frames } = await twoFrames(t, {}, 'permessage-deflate');
    assert.ok(
      frames[1].payload.length < frames[0].payload.length / 4,
      `${frames[1].payload.length}`,
    );
    // One inflater across both messages, as the client must keep it (RFC 7692 §7.2.3.3).
    const inflater = zlib.createInflateRaw();
    const out: Buffer[] = [];
    inflater.on('data', (c: Buffer) => out.push(c));
    for (const f of frames) {
      inflater.write(Buffer.concat([f.payload, Buffer.from([0, 0, 0xff, 0xff])]));
      await new Promise<void>((r) => inflater.flush(() => r()));
    }
    assert.equal(Buffer.concat(out).toString(), NOISY + NOISY);
  });

  test('without it (server_no_context_takeover asked), each message stands alone', async (t) => {
    const { frames, head } = await twoFrames(
      t,
      {},
      'permessage-deflate; server_no_context_takeover',
    );
    assert.equal(
      head.headers['sec-websocket-extensions'],
      'permessage-deflate; server_no_context_takeover',
    );
    assert.deepEqual(frames[1].payload, frames[0].payload);
    assert.equal(inflateFrames([frames[1].payload]).toString(), NOISY);
  });

  test('a small window limits back-references to it (server_max_window_bits=8)', async (t) => {
    const { frames, head } = await twoFrames(t, {}, 'permessage-deflate; server_max_window_bits=8');
    assert.equal(
      head.headers['sec-websocket-extensions'],
      'permessage-deflate; server_max_window_bits=8',
    );
    // Inflatable with a 256-byte window: no match reaches further back.
    assert.equal(inflateFrames([frames[0].payload], 8).toString(), NOISY);
  });

  test('the client honours client_no_context_takeover when the server asks for it', async (t) => {
    const s = await startServer({ perMessageDeflate: { clientNoContextTakeover: true } });
    t.after(() => s.close());
    const got: string[] = [];
    s.server.on('connection', (ws) => ws.on('message', (d) => got.push(String(d))));
    const ws = await connect(s.url, { logger: false, perMessageDeflate: { threshold: 0 } });
    t.after(() => ws.terminate());
    assert.equal(ws.extensions, 'permessage-deflate; client_no_context_takeover');
    for (let i = 0; i < 3; i++) ws.send(TEXT);
    const deadline = Date.now() + 3000;
    while (got.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(got, [TEXT, TEXT, TEXT]);
  });
});

describe('limits', () => {
  test('a 1 GiB decompression bomb in a 1 MB frame stops at maxPayload and fails with 1009', async (t) => {
    // A sync-flushed block of zeros decodes the same after any window of zeros, so repeating it
    // builds a 1 GiB stream without compressing 1 GiB here.
    const deflater = zlib.createDeflateRaw({ level: 9 });
    const out: Buffer[] = [];
    deflater.on('data', (c: Buffer) => out.push(c));
    const flushed = async (data: Buffer) => {
      out.length = 0;
      deflater.write(data);
      await new Promise<void>((r) => deflater.flush(zlib.constants.Z_SYNC_FLUSH, () => r()));
      return Buffer.concat(out);
    };
    const prefix = await flushed(Buffer.alloc(64 * 1024));
    const block = await flushed(Buffer.alloc(16 * 1024 * 1024));
    deflater.close();
    const parts = [prefix];
    for (let i = 0; i < 64; i++) parts.push(block);
    const whole = Buffer.concat(parts);
    const bomb = whole.subarray(0, whole.length - 4);
    assert.ok(bomb.length < 1.5 * 1024 * 1024, `the bomb is ${bomb.length} bytes`);
    // Check the construction on a small sample: four blocks inflate to 64 MiB of zeros.
    const sample = zlib.inflateRawSync(Buffer.concat([prefix, block, block, block, block]), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    assert.equal(sample.length, 64 * 1024 + 64 * 1024 * 1024);

    const s = await startServer({ perMessageDeflate: true, maxPayload: 2 * 1024 * 1024 });
    t.after(() => s.close());
    const codes: string[] = [];
    s.server.on('connection', (ws) =>
      ws.on('error', (e) => codes.push((e as SwitchyardError).code)),
    );
    const { raw } = await rawDeflateClient(t, s);
    const before = process.memoryUsage().rss;
    raw.write(clientFrame(2, bomb, true, 4));
    const frames = await waitForFrames(raw, 1);
    assert.equal(frames[0].opcode, 8);
    assert.equal(frames[0].payload.readUInt16BE(0), 1009);
    assert.deepEqual(codes, ['SWITCHYARD_ERR_MESSAGE_TOO_BIG']);
    const grew = process.memoryUsage().rss - before;
    assert.ok(grew < 64 * 1024 * 1024, `RSS grew by ${grew} bytes`);
  });

  test('the limiter caps concurrent jobs and serves them first come, first served', async () => {
    const limiter = new ZlibLimiter(2);
    const order: number[] = [];
    const release: Array<() => void> = [];
    for (let i = 0; i < 5; i++) {
      limiter.run((done) => {
        order.push(i);
        release.push(done);
      });
    }
    assert.deepEqual(order, [0, 1]);
    assert.deepEqual(limiter.stats, { running: 2, waiting: 3, limit: 2 });
    release[0]();
    release[0](); // a second done is ignored
    await Promise.resolve();
    assert.deepEqual(order, [0, 1, 2]);
    release[1]();
    release[2]();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, [0, 1, 2, 3, 4]);
  });

  test('a connection flooding the compressor does not starve another (round-robin turns)', async () => {
    const limiter = new ZlibLimiter(1);
    const params = {
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 15,
    };
    const busy = new DeflateCodec(params, 'server', {}, 1 << 20, limiter);
    const quiet = new DeflateCodec(params, 'server', {}, 1 << 20, limiter);
    const finished: string[] = [];
    const all: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      all.push(
        new Promise((r) =>
          busy.deflate(Buffer.from(TEXT), true, () => (finished.push('busy'), r())),
        ),
      );
    }
    all.push(
      new Promise((r) =>
        quiet.deflate(Buffer.from(TEXT), true, () => (finished.push('quiet'), r())),
      ),
    );
    await Promise.all(all);
    busy.close();
    quiet.close();
    assert.ok(
      finished.indexOf('quiet') <= 2,
      `quiet finished at turn ${finished.indexOf('quiet')}`,
    );
  });

  test('idle connections give back their contexts and keep working with context takeover', async (t) => {
    // Long enough that a loaded machine still checks the contexts before they are released.
    const s = await echoServer(t, { threshold: 0, releaseAfter: 250 });
    const client = new WsClient(s.url, { perMessageDeflate: { threshold: 0 } });
    t.after(() => client.terminate());
    await once(client, 'open');
    const echo = async (text: string) => {
      const reply = once(client, 'message');
      client.send(text);
      return String((await reply)[0]);
    };
    assert.equal(await echo(TEXT), TEXT);
    assert.ok(deflateContextsHeld() >= 1);
    const [ws] = [...s.server.clients];
    const codec = (ws as unknown as { deflate: DeflateCodec }).deflate;
    assert.equal(codec.holdsContexts, true);
    const deadline = Date.now() + 10_000;
    while (codec.holdsContexts && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    assert.equal(codec.holdsContexts, false);
    // ws keeps its compressor's history: its next message refers to the previous one, which
    // our inflater must still know (from the window it kept).
    assert.equal(await echo(TEXT + '!'), TEXT + '!');
    assert.equal(await echo(TEXT + '?'), TEXT + '?');
  });
});

test('out-of-range window options are rejected when the server is created and when connecting', async () => {
  const { WebSocketServer } = await import('../../src/node/server.js');
  assert.throws(
    () => new WebSocketServer({ perMessageDeflate: { serverMaxWindowBits: 16 } }),
    (e: { code?: string }) => e.code === 'SWITCHYARD_ERR_INVALID_OPTION',
  );
  await assert.rejects(
    connect('ws://127.0.0.1:9/', { perMessageDeflate: { clientMaxWindowBits: 7 }, logger: false }),
    (e: { code?: string }) => e.code === 'SWITCHYARD_ERR_INVALID_OPTION',
  );
});

test('BrowserWebSocket offers permessage-deflate by default, as browsers do', async (t) => {
  const { BrowserWebSocket } = await import('../../src/node/browser.js');
  const s = await echoServer(t, { threshold: 0 });
  const ws = new BrowserWebSocket(s.url, [], { logger: false });
  t.after(() => ws.close());
  await once(ws, 'open');
  assert.equal(ws.extensions, 'permessage-deflate');
  const reply = once(ws, 'message') as Promise<[MessageEvent]>;
  ws.send(TEXT);
  assert.equal((await reply)[0].data, TEXT);
  const off = new BrowserWebSocket(s.url, [], { logger: false, perMessageDeflate: false });
  t.after(() => off.close());
  await once(off, 'open');
  assert.equal(off.extensions, '');
});

describe('compression that never makes a message worse, and honest limits (issue 16)', () => {
  const LIMIT = 256 * 1024;
  const NOISE = randomBytes(LIMIT);

  test('a message of exactly maxPayload random bytes, compressed by the client, passes; the echo goes plain', async (t) => {
    const s = await echoServer(t, true, { maxPayload: LIMIT });
    const { raw } = await rawDeflateClient(t, s);
    const payload = compress(NOISE);
    assert.ok(
      payload.length > LIMIT,
      `compressed to ${payload.length} bytes, more than maxPayload`,
    );
    raw.write(clientFrame(2, payload, true, 4));
    const [frame] = await waitForFrames(raw, 1);
    assert.equal(frame.opcode, 2);
    // RFC 7692 §6: compression is chosen per message; this one would have grown.
    assert.equal(frame.rsv1, false);
    assert.ok(frame.payload.equals(NOISE));
  });

  test('a message of exactly maxPayload random bytes, compressed by the server, reaches the client', async (t) => {
    const server = http.createServer((_req, res) => res.end());
    const sockets = new Set<net.Socket>();
    server.on('upgrade', (req, socket: net.Socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
      const key = String(req.headers['sec-websocket-key']);
      const payload = compress(NOISE);
      const header = Buffer.alloc(10);
      header[0] = 0xc2; // FIN, RSV1, binary
      header[1] = 127;
      header.writeUInt32BE(payload.length, 6);
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${computeAcceptKey(key)}\r\n` +
          'Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n',
      );
      socket.write(Buffer.concat([header, payload]));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    t.after(() => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    });
    const { port } = server.address() as net.AddressInfo;
    const ws = await connect(`ws://127.0.0.1:${port}`, {
      perMessageDeflate: true,
      maxPayload: LIMIT,
    });
    t.after(() => ws.terminate());
    const [data, isBinary] = await once(ws, 'message');
    assert.equal(isBinary, true);
    assert.ok((data as Buffer).equals(NOISE));
  });

  test('one byte more than maxPayload fails with 1009 and a reason that names the inflated size and the limit', async (t) => {
    const s = await echoServer(t, true, { maxPayload: LIMIT });
    const { raw } = await rawDeflateClient(t, s);
    raw.write(clientFrame(2, compress(Buffer.concat([NOISE, Buffer.from([1])])), true, 4));
    const [frame] = await waitForFrames(raw, 1);
    assert.equal(frame.opcode, 8);
    assert.equal(frame.payload.readUInt16BE(0), 1009);
    assert.match(
      frame.payload.subarray(2).toString(),
      new RegExp(
        `^Compressed message inflated to at least \\d+ bytes, over maxPayload \\(${LIMIT} bytes\\)$`,
      ),
    );
  });

  test('random data goes without RSV1; compressible messages around it still compress and inflate with context takeover', async (t) => {
    const random = randomBytes(64 * 1024);
    const s = await startServer({ perMessageDeflate: true });
    t.after(() => s.close());
    s.server.on('connection', (ws) => {
      ws.send(TEXT);
      ws.send(random);
      ws.send(TEXT);
      ws.send(NOISY + NOISY);
    });
    // On the wire: RSV1 set, unset, set, set.
    const { raw } = await rawDeflateClient(t, s);
    const frames = await waitForFrames(raw, 4);
    assert.deepEqual(
      frames.map((f) => f.rsv1),
      [true, false, true, true],
    );
    assert.ok(frames[1].payload.equals(random));
    // A peer that keeps its context across messages (ws) gets every message intact: the
    // compressor forgot the message it did not send compressed.
    const client = new WsClient(s.url, { perMessageDeflate: true });
    t.after(() => client.terminate());
    const got: Buffer[] = [];
    await new Promise<void>((resolve) =>
      client.on('message', (data: Buffer) => {
        got.push(Buffer.from(data));
        if (got.length === 4) resolve();
      }),
    );
    assert.equal(got[0].toString(), TEXT);
    assert.ok(got[1].equals(random));
    assert.equal(got[2].toString(), TEXT);
    assert.equal(got[3].toString(), NOISY + NOISY);
  });
});
