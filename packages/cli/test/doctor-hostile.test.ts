/**
 * `switchyard doctor` against peers that break the protocol at each probe step: the handshake
 * (a broken frame right behind the 101), the ping, the close, the idle test and the WebSocket over
 * HTTP/2. Every break must end up as a finding with its cause and fix, never as a thrown error or
 * a stack trace.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { diagnose, normaliseUrl } from '../src/doctor/doctor.js';
import { skipUnlessAvailable } from '../../switchyard/test/helpers/peers.js';
import { selfSignedCertificate } from '../../switchyard/test/helpers/tls.js';
import { runCli } from './helpers/run.js';

/** A text frame "hi" masked by the server, which RFC 6455 §5.1 forbids. */
const MASKED = Buffer.from([0x81, 0x82, 1, 2, 3, 4, 0x68 ^ 1, 0x69 ^ 2]);
/** A text frame with RSV1 set although no extension was negotiated (RFC 6455 §5.2). */
const RSV1 = Buffer.from([0xc1, 0x02, 0x68, 0x69]);
/** A close frame with code 1005, which must never be sent (RFC 6455 §7.4.1). */
const CLOSE_1005 = Buffer.from([0x88, 0x02, 0x03, 0xed]);

type Step = 'handshake' | 'handshake-rsv1' | 'ping' | 'close' | 'idle';

const BROKEN: Record<Step, Buffer> = {
  handshake: MASKED,
  'handshake-rsv1': RSV1,
  ping: RSV1,
  close: CLOSE_1005,
  idle: MASKED,
};

function acceptFor(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/**
 * A raw TCP peer: a valid 101 for /<step>, then valid frames except at that step. Client frames
 * are read just enough to know their opcode (doctor's frames are small: 7-bit lengths).
 */
function hostilePeer(): net.Server {
  return net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    let head = '';
    const onHead = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      socket.off('data', onHead);
      const step = (/^GET \/([\w-]+)/.exec(head)?.[1] ?? 'handshake') as Step;
      const key = /sec-websocket-key: *(\S+)/i.exec(head)?.[1] ?? '';
      const offersExtensions = /sec-websocket-extensions:/i.test(head);
      const response = Buffer.from(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Accept: ${acceptFor(key)}\r\n\r\n`,
        'latin1',
      );
      if (step === 'handshake' || step === 'handshake-rsv1') {
        // In the same packet as the 101: the frame arrives with the head.
        socket.write(Buffer.concat([response, BROKEN[step]]));
        return;
      }
      socket.write(response);
      // The idle test opens its own connection without an extension offer.
      if (step === 'idle' && !offersExtensions) {
        setTimeout(() => socket.writable && socket.write(BROKEN.idle), 100);
      }
      let buffered = Buffer.alloc(0);
      socket.on('data', (data: Buffer) => {
        buffered = Buffer.concat([buffered, data]);
        while (buffered.length >= 6) {
          const opcode = buffered[0] & 0x0f;
          const length = buffered[1] & 0x7f;
          if (buffered.length < 6 + length) break;
          const mask = buffered.subarray(2, 6);
          const payload = Buffer.from(buffered.subarray(6, 6 + length));
          for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
          buffered = buffered.subarray(6 + length);
          if (opcode === 0x9) {
            socket.write(
              step === 'ping'
                ? BROKEN.ping
                : Buffer.concat([Buffer.from([0x8a, payload.length]), payload]),
            );
          } else if (opcode === 0x8) {
            if (step === 'close') socket.write(BROKEN.close);
            else socket.end(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
          }
        }
      });
    };
    socket.on('data', onHead);
  });
}

let peer: net.Server;
let base: string;
before(async () => {
  peer = hostilePeer();
  await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
  base = `ws://127.0.0.1:${(peer.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => peer.close(() => resolve())));

const quick = { timeoutMs: 2000, frameTimeoutMs: 1000, env: {} };

describe('doctor names a protocol violation at every probe step', () => {
  for (const [step, pattern] of [
    ['handshake', /mask/i],
    ['handshake-rsv1', /RSV1|reserved/i],
    ['ping', /RSV1|reserved/i],
    ['close', /1005/],
  ] as const) {
    test(`a peer that breaks the protocol at the ${step} step gets a frame-error finding`, async () => {
      const report = await diagnose({ url: normaliseUrl(`${base}/${step}`), ...quick });
      const finding = report.findings.find((f) => f.id === 'frame-error');
      assert.ok(finding !== undefined, JSON.stringify(report.findings));
      assert.match(finding.evidence, pattern);
      assert.ok(finding.fix.length > 0);
      assert.equal(report.healthy, false);
    });
  }

  test('a peer that breaks the protocol during the idle test gets a frame-error finding', async () => {
    const report = await diagnose({ url: normaliseUrl(`${base}/idle`), ...quick, idleMs: 2000 });
    const finding = report.findings.find((f) => f.id === 'frame-error');
    assert.ok(finding !== undefined, JSON.stringify(report.findings));
    assert.match(finding.evidence, /idle/);
    assert.match(finding.evidence, /mask/i);
    const idle = report.checks.find((c) => c.name === 'Idle');
    assert.equal(idle?.status, 'fail');
  });

  test('the command prints the finding, no stack trace, and exits 1', async () => {
    for (const step of ['handshake', 'handshake-rsv1', 'ping', 'close']) {
      const { code, stdout, stderr } = await runCli([
        'doctor',
        '--timeout',
        '2s',
        `${base}/${step}`,
      ]);
      assert.equal(code, 1, stderr);
      assert.match(stdout, /\[frame-error\]/);
      assert.doesNotMatch(stdout + stderr, /\n\s+at /);
      assert.doesNotMatch(stdout + stderr, /SWITCHYARD_ERR_INVALID_STATE/);
    }
  });
});

describe('doctor over HTTP/2 against a peer that breaks the protocol', () => {
  test('a broken frame on the extended CONNECT stream is the h2-websocket-broken finding', async (t) => {
    const credentials = selfSignedCertificate();
    if (!skipUnlessAvailable(t, credentials)) return;
    const server = http2.createSecureServer({
      key: credentials.key,
      cert: credentials.cert,
      settings: { enableConnectProtocol: true },
    });
    server.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.respond({ ':status': 200 });
      stream.write(MASKED);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      server.close();
    });
    const port = (server.address() as AddressInfo).port;
    const report = await diagnose({
      url: normaliseUrl(`wss://localhost:${port}/`),
      ...quick,
      ca: credentials.cert,
    });
    const finding = report.findings.find((f) => f.id === 'h2-websocket-broken');
    assert.ok(finding !== undefined, JSON.stringify(report.findings));
    assert.match(finding.evidence, /mask/i);
  });

  test('garbage instead of HTTP/2 frames after ALPN h2 is reported, not thrown', async (t) => {
    const credentials = selfSignedCertificate();
    if (!skipUnlessAvailable(t, credentials)) return;
    const tls = await import('node:tls');
    const server = tls.createServer(
      { key: credentials.key, cert: credentials.cert, ALPNProtocols: ['h2', 'http/1.1'] },
      (socket) => {
        socket.on('error', () => {});
        socket.end('this is not HTTP/2\r\n\r\n');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      server.close();
    });
    const port = (server.address() as AddressInfo).port;
    const report = await diagnose({
      url: normaliseUrl(`wss://localhost:${port}/`),
      ...quick,
      ca: credentials.cert,
    });
    assert.equal(report.healthy, false);
    assert.ok(report.findings.length > 0);
    assert.ok(report.findings.every((f) => f.fix.length > 0));
  });
});
