/**
 * One upgrade attempt, step by step, for `switchyard doctor`: name resolution, TCP (or a CONNECT
 * tunnel through an HTTP proxy), TLS, the request, the response. Every step is timed and every
 * failure is recorded with the step where it happened, never thrown.
 *
 * The request is written here rather than by the library's client because doctor must send
 * variants that a correct client never sends (Firefox's `Connection: keep-alive, Upgrade`, no
 * extension offer) and show the exact bytes. The response is parsed with the core's
 * HttpHeadParser.
 */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { generateKey, HttpHeadParser, type ResponseHead } from 'switchyard/core';

/** What one attempt sends. */
export interface AttemptSpec {
  url: URL;
  protocols: readonly string[];
  /** The Sec-WebSocket-Extensions offer, or null for none. */
  extensions: string | null;
  origin: string | undefined;
  headers: Readonly<Record<string, string>>;
  /** The Connection header's value. */
  connection: string;
  /** Deadline for the whole attempt, in ms. */
  timeoutMs: number;
  /** An http:// proxy to CONNECT through, or null. */
  proxy: string | null;
  /** TLS: extra CA, and the ALPN protocols to offer. */
  tls: { ca?: string | Buffer; alpn: readonly string[] };
  /** Keep the socket open after a 101, for the frame checks. */
  keepOpen: boolean;
}

/** The record of one step. */
export interface StepRecord {
  name: 'dns' | 'proxy' | 'tcp' | 'tls';
  ok: boolean;
  ms: number;
  detail: string;
}

/** What TLS negotiated, and what the certificate says. */
export interface TlsInfo {
  protocol: string | null;
  cipher: string;
  alpn: string | false;
  authorized: boolean;
  authorizationError: string | null;
  subject: string;
  issuer: string;
  validTo: string;
  altNames: string;
}

/** Where an attempt stopped, when it did not get a response. */
export interface AttemptFailure {
  stage: 'dns' | 'proxy' | 'tcp' | 'tls' | 'response';
  /** A short code: a Node error code (ECONNREFUSED ...), or timeout, closed, not-http, h2-frames, malformed. */
  code: string;
  message: string;
  /** Bytes that came back before the failure (not-http, h2-frames, malformed). */
  received?: Buffer;
}

/** A response, as received. */
export interface ResponseRecord {
  head: ResponseHead;
  /** The head as text, as it came (CRLFs as newlines). */
  headText: string;
  /** Up to 1 KiB of body, for non-101 answers. */
  body: Buffer;
  /** From writing the request to the first byte of the answer. */
  firstByteMs: number;
  /** From writing the request to the end of the head. */
  headMs: number;
}

/** The outcome of one attempt. */
export interface AttemptResult {
  steps: StepRecord[];
  tls: TlsInfo | null;
  /** The request, as sent. */
  request: string;
  key: string;
  response: ResponseRecord | null;
  failure: AttemptFailure | null;
  /** After a 101 with `keepOpen`: the open socket (paused) and the bytes after the head. */
  socket: Duplex | null;
  rest: Buffer;
}

const MAX_BODY = 1024;

/** Builds the request text. */
export function formatRequest(spec: AttemptSpec, key: string): string {
  const { url } = spec;
  // -H 'Host: x' replaces the Host line (a virtual host reached by address), never a second one.
  const hostName = Object.keys(spec.headers).find((name) => name.toLowerCase() === 'host');
  const lines = [
    `GET ${url.pathname}${url.search} HTTP/1.1`,
    `Host: ${hostName === undefined ? url.host : spec.headers[hostName]}`,
    'Upgrade: websocket',
    `Connection: ${spec.connection}`,
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
  ];
  if (spec.protocols.length > 0) lines.push(`Sec-WebSocket-Protocol: ${spec.protocols.join(', ')}`);
  if (spec.extensions !== null) lines.push(`Sec-WebSocket-Extensions: ${spec.extensions}`);
  if (spec.origin !== undefined) lines.push(`Origin: ${spec.origin}`);
  lines.push('User-Agent: switchyard-doctor');
  for (const [name, value] of Object.entries(spec.headers)) {
    if (name !== hostName) lines.push(`${name}: ${value}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function elapsed(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

class StepError extends Error {
  constructor(readonly failure: AttemptFailure) {
    super(failure.message);
  }
}

/** Runs one attempt. Never rejects. */
export async function attempt(spec: AttemptSpec): Promise<AttemptResult> {
  const key = generateKey();
  const request = formatRequest(spec, key);
  const result: AttemptResult = {
    steps: [],
    tls: null,
    request,
    key,
    response: null,
    failure: null,
    socket: null,
    rest: Buffer.alloc(0),
  };
  const deadline = Date.now() + spec.timeoutMs;
  let socket: Duplex | null = null;
  try {
    const secure = spec.url.protocol === 'wss:';
    const host = spec.url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(spec.url.port || (secure ? 443 : 80));
    let raw: net.Socket;
    if (spec.proxy !== null) {
      const proxy = new URL(spec.proxy);
      const proxyHost = proxy.hostname.replace(/^\[|\]$/g, '');
      const address = await resolveStep(result, proxyHost, deadline, 'the proxy ');
      raw = await tcpStep(result, address, Number(proxy.port || 80), deadline);
      socket = raw;
      await tunnelStep(result, raw, proxy, host, port, deadline);
    } else {
      const address = await resolveStep(result, host, deadline, '');
      raw = await tcpStep(result, address, port, deadline);
      socket = raw;
    }
    if (secure) {
      socket = await tlsStep(result, raw, host, spec, deadline);
    }
    await exchange(result, socket, spec, deadline);
  } catch (error) {
    result.failure =
      error instanceof StepError
        ? error.failure
        : { stage: 'response', code: 'error', message: (error as Error).message };
  }
  if (result.socket === null) socket?.destroy();
  return result;
}

function remaining(deadline: number): number {
  return Math.max(1, deadline - Date.now());
}

async function resolveStep(
  result: AttemptResult,
  host: string,
  deadline: number,
  what: string,
): Promise<string> {
  if (net.isIP(host) !== 0) {
    result.steps.push({
      name: 'dns',
      ok: true,
      ms: 0,
      detail: `${what}${host} is an IP address (no lookup)`,
    });
    return host;
  }
  const start = process.hrtime.bigint();
  try {
    const addresses = await withTimeout(lookup(host, { all: true }), remaining(deadline));
    const ms = elapsed(start);
    result.steps.push({
      name: 'dns',
      ok: true,
      ms,
      detail: `${what}${host} → ${addresses.map((a) => a.address).join(', ')}`,
    });
    return addresses[0].address;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'timeout';
    const message = `${what}${host} did not resolve: ${code}`;
    result.steps.push({ name: 'dns', ok: false, ms: elapsed(start), detail: message });
    throw new StepError({ stage: 'dns', code, message });
  }
}

function tcpStep(
  result: AttemptResult,
  address: string,
  port: number,
  deadline: number,
): Promise<net.Socket> {
  const start = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      socket.destroy();
      fail('ETIMEDOUT', 'no answer in time');
    }, remaining(deadline));
    const fail = (code: string, text: string) => {
      clearTimeout(timer);
      const hostPort = net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
      const message = `connecting to ${hostPort} failed: ${text}`;
      result.steps.push({ name: 'tcp', ok: false, ms: elapsed(start), detail: message });
      reject(new StepError({ stage: 'tcp', code, message }));
    };
    socket.once('error', (error: NodeJS.ErrnoException) =>
      fail(error.code ?? 'error', error.message),
    );
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.setNoDelay(true);
      const hostPort = net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
      result.steps.push({
        name: 'tcp',
        ok: true,
        ms: elapsed(start),
        detail: `connected to ${hostPort}`,
      });
      resolve(socket);
    });
  });
}

/** Opens a CONNECT tunnel (RFC 9110 §9.3.6) through an HTTP proxy. */
function tunnelStep(
  result: AttemptResult,
  socket: net.Socket,
  proxy: URL,
  host: string,
  port: number,
  deadline: number,
): Promise<void> {
  const start = process.hrtime.bigint();
  const authority = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  let head = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n`;
  if (proxy.username !== '') {
    const credentials = `${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`;
    head += `Proxy-Authorization: Basic ${Buffer.from(credentials).toString('base64')}\r\n`;
  }
  head += '\r\n';
  return new Promise((resolve, reject) => {
    const parser = new HttpHeadParser({ kind: 'response' });
    const fail = (code: string, message: string) => {
      cleanup();
      result.steps.push({ name: 'proxy', ok: false, ms: elapsed(start), detail: message });
      reject(new StepError({ stage: 'proxy', code, message }));
    };
    const timer = setTimeout(
      () => fail('timeout', `proxy ${proxy.host} did not answer CONNECT in time`),
      remaining(deadline),
    );
    const onError = (error: NodeJS.ErrnoException) =>
      fail(error.code ?? 'error', `proxy ${proxy.host}: ${error.message}`);
    const onClose = () =>
      fail('closed', `proxy ${proxy.host} closed the connection during CONNECT`);
    const onData = (chunk: Buffer) => {
      const parsed = parser.push(chunk);
      if (parsed === null) return;
      if (!parsed.ok) return fail('malformed', `proxy ${proxy.host}: ${parsed.error.message}`);
      if (parsed.head.statusCode !== 200) {
        return fail(
          String(parsed.head.statusCode),
          `proxy ${proxy.host} answered CONNECT ${authority} with ${parsed.head.statusCode} ${parsed.head.statusText}`,
        );
      }
      cleanup();
      if (parsed.rest.length > 0) socket.unshift(Buffer.from(parsed.rest));
      result.steps.push({
        name: 'proxy',
        ok: true,
        ms: elapsed(start),
        detail: `proxy ${proxy.host} opened a tunnel to ${authority}`,
      });
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(head);
  });
}

function tlsStep(
  result: AttemptResult,
  raw: net.Socket,
  host: string,
  spec: AttemptSpec,
  deadline: number,
): Promise<tls.TLSSocket> {
  const start = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    // Verification is done below, by hand, so that an untrusted certificate is a finding and the
    // rest of the upgrade can still be diagnosed.
    const socket = tls.connect({
      socket: raw,
      servername: net.isIP(host) === 0 ? host : undefined,
      ALPNProtocols: [...spec.tls.alpn],
      rejectUnauthorized: false,
      ca: spec.tls.ca === undefined ? undefined : [...tls.rootCertificates, String(spec.tls.ca)],
    });
    const timer = setTimeout(() => {
      socket.destroy();
      fail('timeout', 'the TLS handshake did not complete in time');
    }, remaining(deadline));
    const fail = (code: string, message: string) => {
      clearTimeout(timer);
      result.steps.push({ name: 'tls', ok: false, ms: elapsed(start), detail: message });
      reject(new StepError({ stage: 'tls', code, message }));
    };
    socket.once('error', (error: NodeJS.ErrnoException) =>
      fail(error.code ?? 'error', `TLS failed: ${error.message.split('\n')[0]}`),
    );
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      const cert = socket.getPeerCertificate();
      let authorizationError: string | null =
        socket.authorizationError === null || socket.authorizationError === undefined
          ? null
          : String(socket.authorizationError);
      if (authorizationError === null && cert.subject !== undefined) {
        const identity = tls.checkServerIdentity(host, cert);
        if (identity !== undefined) authorizationError = identity.message;
      }
      const info: TlsInfo = {
        protocol: socket.getProtocol(),
        cipher: socket.getCipher().name,
        alpn: socket.alpnProtocol ?? false,
        authorized: authorizationError === null,
        authorizationError,
        subject: String(cert.subject?.CN ?? ''),
        issuer: [cert.issuer?.CN, cert.issuer?.O].flat().filter(Boolean).join(', '),
        validTo: cert.valid_to ?? '',
        altNames: cert.subjectaltname ?? '',
      };
      result.tls = info;
      result.steps.push({
        name: 'tls',
        ok: true,
        ms: elapsed(start),
        detail: `${info.protocol} ${info.cipher}, ALPN ${info.alpn === false ? 'none' : info.alpn}, certificate CN=${info.subject} issued by ${info.issuer}${info.authorized ? '' : ` (NOT TRUSTED: ${authorizationError})`}`,
      });
      resolve(socket);
    });
  });
}

/** Writes the request and reads the response head (and a little body for non-101s). */
function exchange(
  result: AttemptResult,
  socket: Duplex,
  spec: AttemptSpec,
  deadline: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const parser = new HttpHeadParser({ kind: 'response' });
    const received: Buffer[] = [];
    let firstByteMs = -1;
    // Errors after this exchange (a reset while the caller holds the socket) must not crash
    // doctor; the caller watches 'close'.
    socket.on('error', () => {});
    const fail = (code: string, message: string) => {
      cleanup();
      reject(
        new StepError({ stage: 'response', code, message, received: Buffer.concat(received) }),
      );
    };
    const timer = setTimeout(
      () => fail('timeout', `no response within ${spec.timeoutMs} ms`),
      remaining(deadline),
    );
    const onError = (error: NodeJS.ErrnoException) => fail(error.code ?? 'error', error.message);
    const onClose = () =>
      fail(
        'closed',
        received.length === 0
          ? 'the connection closed without a response'
          : 'the connection closed in the middle of the response head',
      );
    const onData = (chunk: Buffer) => {
      if (firstByteMs < 0) {
        firstByteMs = elapsed(start);
        // An HTTP/2 frame header: 3-byte length, then the type, SETTINGS (4) or GOAWAY (7).
        if (chunk.length >= 9 && !chunk.subarray(0, 5).toString('latin1').startsWith('HTTP/')) {
          received.push(chunk);
          if (chunk[3] === 0x04 || chunk[3] === 0x07) {
            return fail('h2-frames', 'the server answered with HTTP/2 frames');
          }
          return fail('not-http', 'the answer does not start with "HTTP/"');
        }
      }
      received.push(chunk);
      const parsed = parser.push(chunk);
      if (parsed === null) return;
      if (!parsed.ok) return fail('malformed', parsed.error.message);
      const headMs = elapsed(start);
      const all = Buffer.concat(received);
      const headEnd = all.length - parsed.rest.length;
      const headText = all.subarray(0, headEnd).toString('latin1').replace(/\r\n/g, '\n').trimEnd();
      const rest = Buffer.from(parsed.rest);
      const record: ResponseRecord = {
        head: parsed.head,
        headText,
        body: Buffer.alloc(0),
        firstByteMs,
        headMs,
      };
      result.response = record;
      socket.off('data', onData);
      if (parsed.head.statusCode === 101) {
        cleanup();
        if (spec.keepOpen) {
          socket.pause();
          result.socket = socket;
          result.rest = rest;
        }
        return resolve();
      }
      // A little of the body: it often says why (Content-Length or up to 1 KiB, 300 ms at most).
      const length = Number(parsed.head.headers['content-length'] ?? NaN);
      const want = Math.min(MAX_BODY, Number.isFinite(length) ? length : MAX_BODY);
      const body: Buffer[] = [rest];
      let got = rest.length;
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(bodyTimer);
        cleanup();
        socket.off('data', onBody);
        const raw = Buffer.concat(body);
        const chunked = /\bchunked\b/i.test(String(parsed.head.headers['transfer-encoding'] ?? ''));
        record.body = (chunked ? dechunk(raw) : raw).subarray(0, want);
        resolve();
      };
      const onBody = (chunk: Buffer) => {
        body.push(chunk);
        got += chunk.length;
        if (got >= want) finish();
      };
      const bodyTimer = setTimeout(finish, 300);
      socket.off('close', onClose);
      socket.once('close', finish);
      if (got >= want) return finish();
      socket.on('data', onBody);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.write(result.request);
  });
}

/** Decodes as much of a chunked body (RFC 9112 §7.1) as arrived; extensions and trailers ignored. */
export function dechunk(raw: Buffer): Buffer {
  const out: Buffer[] = [];
  let at = 0;
  while (at < raw.length) {
    const eol = raw.indexOf('\r\n', at);
    if (eol === -1) break;
    const size = parseInt(raw.subarray(at, eol).toString('latin1').split(';')[0].trim(), 16);
    if (!Number.isFinite(size) || size === 0) break;
    out.push(raw.subarray(eol + 2, Math.min(raw.length, eol + 2 + size)));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
