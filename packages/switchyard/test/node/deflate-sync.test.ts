/**
 * permessage-deflate on the event loop: small messages are compressed and inflated with the
 * synchronous one-shot zlib calls (DeflateCodec.deflateSync / inflateSync), bigger ones on the
 * thread pool, and both kinds mix on one connection without breaking context takeover. Checked
 * against node:zlib inflating the raw frames, against a real `ws` peer, and for the inflate
 * bound (1009) on the sync path.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { describe, test, type TestContext } from 'node:test';
import zlib from 'node:zlib';
import { WebSocket as WsClient } from 'ws';
import { RemoteProtocolError, type SwitchyardError } from '../../src/core/errors.js';
import type { DeflateParams } from '../../src/core/permessage-deflate.js';
import { DeflateCodec, ZlibLimiter } from '../../src/node/deflate.js';
import type { ServerOptions } from '../../src/node/server.js';
import {
  RawClient,
  afterHead,
  clientFrame,
  serverFrames,
  startServer as startTestServer,
  upgradeRequest,
  type TestServer,
} from '../helpers/server.js';

const TRAILER = Buffer.from([0x00, 0x00, 0xff, 0xff]);
const TAKEOVER: DeflateParams = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};

/** JSON-like text of `size` bytes: repeated keys, values that differ from seed to seed. */
function json(size: number, seed: number): Buffer {
  let x = seed;
  let text = '[';
  while (text.length < size) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    text += `{"id":${x % 100000},"name":"user-${x % 977}","active":${x % 2 === 0}},`;
  }
  return Buffer.from(text.slice(0, size));
}

/** Hex digests: 64 KiB that compress poorly on their own, and very well after a copy. */
function noisy(size: number, seed: number): Buffer {
  const parts: string[] = [];
  for (let i = 0; parts.length * 64 < size; i++) {
    parts.push(createHash('sha256').update(`${seed}:${i}`).digest('hex'));
  }
  return Buffer.from(parts.join('').slice(0, size));
}

/** A client-side peer's decompressor: one raw inflater kept across messages. */
function peerInflater(windowBits = 15) {
  const inflater = zlib.createInflateRaw({ windowBits });
  return async (payload: Uint8Array): Promise<Buffer> => {
    const out: Buffer[] = [];
    const onData = (c: Buffer) => out.push(c);
    inflater.on('data', onData);
    inflater.write(Buffer.concat([payload, TRAILER]));
    await new Promise<void>((r) => inflater.flush(() => r()));
    inflater.off('data', onData);
    return Buffer.concat(out);
  };
}

/** Compresses `data` as a whole message through the codec, sync when it takes it. */
async function deflateWhole(
  codec: DeflateCodec,
  data: Buffer,
): Promise<{ payload: Uint8Array; compressed: boolean; sync: boolean }> {
  const now = codec.deflateSync(data);
  if (now !== null) return { ...now, sync: true };
  return new Promise((resolve) =>
    codec.deflate(
      data,
      true,
      (payload, compressed) => resolve({ payload: payload as Uint8Array, compressed, sync: false }),
      true,
    ),
  );
}

async function inflateWhole(
  codec: DeflateCodec,
  pieces: Uint8Array[],
): Promise<{ result: Buffer | RemoteProtocolError; sync: boolean }> {
  const now = codec.inflateSync(pieces);
  if (now !== null) return { result: now, sync: true };
  return new Promise((resolve) =>
    codec.inflate(pieces, (result) => resolve({ result, sync: false })),
  );
}

describe('the codec', () => {
  test('a small message is compressed synchronously, a bigger one is left to the thread pool', () => {
    const codec = new DeflateCodec(TAKEOVER, 'server', { syncLimit: 4096 }, 1 << 20);
    const small = codec.deflateSync(json(4096, 1));
    assert.ok(small !== null && small.compressed);
    assert.equal(
      zlib
        .inflateRawSync(Buffer.concat([small.payload, TRAILER]), {
          finishFlush: zlib.constants.Z_SYNC_FLUSH,
        })
        .toString(),
      json(4096, 1).toString(),
    );
    assert.equal(codec.deflateSync(json(4097, 2)), null);
    assert.equal(
      new DeflateCodec(TAKEOVER, 'server', { syncLimit: 0 }, 1 << 20).deflateSync(json(10, 3)),
      null,
    );
    codec.close();
  });

  test('a sync compression never overtakes one waiting for the thread pool', async () => {
    const limiter = new ZlibLimiter(1);
    const codec = new DeflateCodec(TAKEOVER, 'server', {}, 1 << 20, limiter);
    const done = new Promise<void>((r) => codec.deflate(json(100_000, 1), true, () => r(), true));
    assert.equal(codec.deflateSync(json(1000, 2)), null);
    await done;
    assert.notEqual(codec.deflateSync(json(1000, 2)), null);
    codec.close();
  });

  test('context takeover holds across sync and thread-pool compressions mixed (node:zlib inflates the frames)', async () => {
    const codec = new DeflateCodec(TAKEOVER, 'server', {}, 1 << 20);
    const inflate = peerInflater();
    // Small, big, small, small, big, fragmented, small: the pieces of the same two texts,
    // so that most messages refer back across the switches between the two paths.
    const a = noisy(4000, 1);
    const b = noisy(40_000, 2);
    const messages = [a, b, a, Buffer.concat([a, a.subarray(0, 100)]), b, a];
    const paths: boolean[] = [];
    for (const message of messages) {
      const { payload, compressed, sync } = await deflateWhole(codec, message);
      paths.push(sync);
      assert.ok(compressed);
      assert.deepEqual(await inflate(payload), message);
    }
    assert.deepEqual(paths, [true, false, true, true, false, true]);
    // A fragmented message goes through the stream, which must start from what the sync
    // calls sent.
    const fragments: Uint8Array[] = [];
    for (const [i, piece] of [a.subarray(0, 2000), a.subarray(2000)].entries()) {
      fragments.push(
        await new Promise<Uint8Array>((r) =>
          codec.deflate(piece, i === 1, (payload) => r(payload as Uint8Array)),
        ),
      );
    }
    assert.deepEqual(await inflate(Buffer.concat(fragments)), a);
    const last = await deflateWhole(codec, a);
    assert.ok(last.sync && last.payload.length < 100, `${last.payload.length} bytes`);
    assert.deepEqual(await inflate(last.payload), a);
    codec.close();
  });

  test('a message that does not shrink goes plain and stays out of the window', async () => {
    const codec = new DeflateCodec(TAKEOVER, 'server', {}, 1 << 20);
    const inflate = peerInflater();
    const first = await deflateWhole(codec, json(3000, 5));
    assert.deepEqual(await inflate(first.payload), json(3000, 5));
    const digest = createHash('sha512').update('x').digest();
    const plain = codec.deflateSync(digest);
    assert.ok(plain !== null && !plain.compressed);
    // The peer never inflated the plain one: a message that repeats it must not refer to it.
    const next = Buffer.concat([digest, json(3000, 5)]);
    const compressed = await deflateWhole(codec, next);
    assert.deepEqual(await inflate(compressed.payload), next);
    codec.close();
  });

  test('after a large message that went plain, the next stream refers to what the peer has, not to an older window', async () => {
    const codec = new DeflateCodec(TAKEOVER, 'server', {}, 1 << 20);
    const inflate = peerInflater();
    const small = noisy(3000, 41);
    // The stream for the large messages starts from a window holding `small`; a plain message
    // must not bring that old window back as if nothing had been sent since.
    const sent = [
      small,
      noisy(20_000, 42),
      randomBytes(20_000),
      Buffer.concat([small, noisy(20_000, 43)]),
    ];
    const got: Array<{ compressed: boolean; sync: boolean }> = [];
    for (const message of sent) {
      const { payload, compressed, sync } = await deflateWhole(codec, message);
      got.push({ compressed, sync });
      if (compressed) assert.deepEqual(await inflate(payload), message);
    }
    assert.deepEqual(got, [
      { compressed: true, sync: true },
      { compressed: true, sync: false },
      { compressed: false, sync: false },
      { compressed: true, sync: false },
    ]);
    codec.close();
  });

  test('inflation of messages compressed with context takeover, sync and thread pool mixed', async () => {
    const codec = new DeflateCodec(TAKEOVER, 'server', { syncLimit: 8192 }, 1 << 20);
    // The peer: one DeflateRaw kept across messages, sync-flushed, trailer cut.
    const deflater = zlib.createDeflateRaw();
    const compress = async (data: Buffer) => {
      const out: Buffer[] = [];
      const onData = (c: Buffer) => out.push(c);
      deflater.on('data', onData);
      deflater.write(data);
      await new Promise<void>((r) => deflater.flush(zlib.constants.Z_SYNC_FLUSH, () => r()));
      deflater.off('data', onData);
      const all = Buffer.concat(out);
      return all.subarray(0, all.length - 4);
    };
    const a = noisy(4000, 3);
    const b = noisy(30_000, 4);
    const paths: boolean[] = [];
    for (const message of [a, b, a, b, a, a]) {
      const payload = await compress(message);
      // Split in two pieces, as two frames of one message would come.
      const half = payload.length >> 1;
      const { result, sync } = await inflateWhole(codec, [
        payload.subarray(0, half),
        payload.subarray(half),
      ]);
      paths.push(sync);
      assert.ok(Buffer.isBuffer(result));
      assert.deepEqual(result, message);
    }
    // b is over the sync bound; a repeat of b compresses to a few bytes yet inflates past
    // it, so that attempt falls back to the stream, which starts from the window.
    assert.deepEqual(paths, [true, false, true, false, true, true]);
    deflater.close();
    codec.close();
  });

  test('the sync path fails a bomb with 1009 at maxPayload, asking zlib to stop there', (t) => {
    const codec = new DeflateCodec(TAKEOVER, 'server', {}, 10_000);
    const bomb = zlib.deflateRawSync(Buffer.alloc(10 << 20), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    assert.ok(bomb.length < 16_384);
    // zlib checks maxOutputLength after each 16 KiB chunk of output and throws past it, so
    // the 10 MiB are never inflated: at most maxPayload and one chunk.
    const calls = t.mock.method(zlib, 'inflateRawSync');
    const result = codec.inflateSync([bomb.subarray(0, bomb.length - 4)]);
    assert.equal(calls.mock.callCount(), 1);
    const options = calls.mock.calls[0].arguments[1] as zlib.ZlibOptions;
    assert.equal(options.maxOutputLength, 10_000);
    assert.equal(options.chunkSize, 16_384);
    assert.ok(result instanceof RemoteProtocolError);
    assert.equal(result.closeCode, 1009);
    assert.equal(result.code, 'SWITCHYARD_ERR_MESSAGE_TOO_BIG');
    assert.equal(
      result.message,
      'Compressed message inflated to at least 10001 bytes, over maxPayload (10000 bytes)',
    );
    codec.close();
  });

  test('past the sync bound but within maxPayload, the message is inflated on the thread pool', async () => {
    const codec = new DeflateCodec(TAKEOVER, 'server', {}, 1 << 20);
    const big = Buffer.alloc(500_000, 'a');
    const payload = zlib.deflateRawSync(big, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
    const pieces = [payload.subarray(0, payload.length - 4)];
    assert.equal(codec.inflateSync(pieces), null);
    const { result } = await inflateWhole(codec, pieces);
    assert.ok(Buffer.isBuffer(result) && result.equals(big));
    codec.close();
  });

  test('a corrupt stream fails with 1007 on the sync path', () => {
    const codec = new DeflateCodec(TAKEOVER, 'server', {}, 1 << 20);
    const result = codec.inflateSync([Buffer.from([0xff, 0xff, 0xff])]);
    assert.ok(result instanceof RemoteProtocolError);
    assert.equal(result.closeCode, 1007);
    assert.equal(result.code, 'SWITCHYARD_ERR_INFLATE');
    codec.close();
  });

  test('without context takeover, sync calls keep no window and hold no zlib memory', () => {
    const codec = new DeflateCodec(
      { ...TAKEOVER, serverNoContextTakeover: true, clientNoContextTakeover: true },
      'server',
      {},
      1 << 20,
    );
    const a = json(4000, 9);
    const first = codec.deflateSync(a);
    const second = codec.deflateSync(a);
    assert.ok(first !== null && second !== null);
    assert.deepEqual(second.payload, first.payload);
    const back = codec.inflateSync([first.payload]);
    assert.ok(Buffer.isBuffer(back) && back.equals(a));
    assert.equal(codec.holdsContexts, false);
    codec.close();
  });
});

// ---- on real sockets ----------------------------------------------------------------------

async function startServer(t: TestContext, options: ServerOptions): Promise<TestServer> {
  const s = await startTestServer(options);
  t.after(() => s.server.close({ timeout: 50 }));
  return s;
}

describe('on a connection', () => {
  test('mixed sizes keep context takeover both ways with a ws peer, and arrive in order', async (t) => {
    const s = await startServer(t, { perMessageDeflate: { threshold: 0 } });
    s.server.on('connection', (ws) => {
      ws.on('error', () => {});
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    const client = new WsClient(s.url, { perMessageDeflate: { threshold: 0 } });
    t.after(() => client.terminate());
    await once(client, 'open');
    const a = noisy(3000, 11).toString();
    const b = noisy(60_000, 12).toString();
    const sent = [a, b, a, a + b, b.slice(0, 1000), a, b];
    const got: string[] = [];
    const all = new Promise<void>((resolve) =>
      client.on('message', (data) => {
        got.push(String(data));
        if (got.length === sent.length + 1) resolve();
      }),
    );
    for (const m of sent) client.send(m);
    // ws fragments on request: a compressed message in two frames.
    client.send(a.slice(0, 1500), { fin: false });
    client.send(a.slice(1500), { fin: true });
    await all;
    assert.deepEqual(got, [...sent, a]);
  });

  test('what the server sends, small and large mixed, inflates with one node:zlib inflater kept across messages', async (t) => {
    const a = noisy(3000, 21);
    const b = noisy(50_000, 22);
    const sent = [a, b, a, a, b, a];
    const s = await startServer(t, { perMessageDeflate: { threshold: 0 } });
    s.server.on('connection', (ws) => {
      for (const m of sent) ws.send(m.toString());
    });
    const raw = await RawClient.connect(s.port);
    t.after(() => raw.destroy());
    raw.write(upgradeRequest(s.port, { 'Sec-WebSocket-Extensions': 'permessage-deflate' }));
    await raw.readHead();
    await raw.waitFor((d) => serverFrames(afterHead(d)).length >= sent.length);
    const frames = serverFrames(afterHead(raw.received));
    const inflate = peerInflater();
    for (const [i, frame] of frames.entries()) {
      assert.ok(frame.rsv1);
      assert.deepEqual(await inflate(frame.payload), sent[i]);
    }
    // The repeats of `a` after the first refer back to it: a few dozen bytes each.
    assert.ok(frames[3].payload.length < 100, `${frames[3].payload.length} bytes`);
  });

  test('a small message is sent before send() returns; one over syncLimit waits for the thread pool, counted in bufferedAmount', async (t) => {
    const s = await startServer(t, { perMessageDeflate: { threshold: 0 } });
    const seen = new Promise<[number, number]>((resolve) =>
      s.server.on('connection', (ws) => {
        const small = json(4000, 31);
        ws.send(small);
        const afterSmall = ws.bufferedAmount;
        const big = json(100_000, 32);
        ws.send(big);
        resolve([afterSmall, ws.bufferedAmount]);
      }),
    );
    const client = new WsClient(s.url, { perMessageDeflate: true });
    t.after(() => client.terminate());
    const [afterSmall, afterBig] = await seen;
    // Compressed already: at most its frame waits in the socket, far less than 4,000 bytes.
    assert.ok(afterSmall < 2000, `bufferedAmount ${afterSmall} after the small send`);
    assert.ok(afterBig >= 100_000, `bufferedAmount ${afterBig} after the big send`);
  });

  test('a compressed bomb inflated on the sync path fails with 1009 and the usual reason', async (t) => {
    const s = await startServer(t, { perMessageDeflate: true, maxPayload: 8192 });
    const codes: string[] = [];
    s.server.on('connection', (ws) =>
      ws.on('error', (e) => codes.push((e as SwitchyardError).code)),
    );
    const raw = await RawClient.connect(s.port);
    t.after(() => raw.destroy());
    raw.write(upgradeRequest(s.port, { 'Sec-WebSocket-Extensions': 'permessage-deflate' }));
    await raw.readHead();
    // 8 MiB of zeros: 8 KiB compressed, within the sync bound and maxCompressedPayload.
    const bomb = zlib.deflateRawSync(Buffer.alloc(8 << 20), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    raw.write(clientFrame(2, bomb.subarray(0, bomb.length - 4), true, 4));
    await raw.waitFor((d) => serverFrames(afterHead(d)).length >= 1);
    const [frame] = serverFrames(afterHead(raw.received));
    assert.equal(frame.opcode, 8);
    assert.equal(frame.payload.readUInt16BE(0), 1009);
    assert.equal(
      frame.payload.subarray(2).toString(),
      'Compressed message inflated to at least 8193 bytes, over maxPayload (8192 bytes)',
    );
    assert.deepEqual(codes, ['SWITCHYARD_ERR_MESSAGE_TOO_BIG']);
  });
});
