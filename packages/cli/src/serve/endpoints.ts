/**
 * The endpoints of `switchyard serve`: two that work (/echo, /broadcast), /status/<code>, and one
 * misbehaving endpoint for each failure that `switchyard doctor` diagnoses.
 *
 * Theory of operation. A misbehaving endpoint owns the raw socket of the upgrade request and
 * writes exactly the bytes of the failure it stands for: a wrong accept key, a 101 without
 * Connection, a 200, silence ... Those that must keep talking after a valid 101 (answer pings
 * but never the close, cut the connection when idle) drive a sans-I/O `Connection` from
 * `switchyard/core`. The accept key is computed here with node:crypto rather than with the
 * library, so that the test server does not share the code it tests.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { Connection, NEED_DATA, encodeCloseBody, serializeFrame, Opcode } from 'switchyard/core';

/** One endpoint, as listed at /endpoints.json and in the README. */
export interface EndpointInfo {
  /** The path, for example `/bad/accept`. */
  path: string;
  /** What it does, in a sentence. */
  description: string;
  /** The finding id that `switchyard doctor` reports for it (null: healthy). */
  doctorFinding: string | null;
}

type Misbehaviour = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2 step 5.4). */
export function acceptFor(key: string): string {
  return createHash('sha1')
    .update(key + GUID)
    .digest('base64');
}

function keyOf(req: IncomingMessage): string {
  const key = req.headers['sec-websocket-key'];
  return typeof key === 'string' ? key : '';
}

/** Writes a response head (and body) and ends the socket. */
function respond(
  socket: Duplex,
  status: string,
  headers: Record<string, string>,
  body = '',
  version = 'HTTP/1.1',
): void {
  const lines = [`${version} ${status}`];
  const all: Record<string, string> = {
    ...headers,
    'Content-Length': String(Buffer.byteLength(body)),
  };
  if (body !== '' && all['Content-Type'] === undefined) {
    all['Content-Type'] = 'text/plain; charset=utf-8';
  }
  for (const [name, value] of Object.entries(all)) lines.push(`${name}: ${value}`);
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
}

/** Writes a 101 head made of `lines` (the status line is added). */
function switching(socket: Duplex, lines: string[]): void {
  socket.write(`HTTP/1.1 101 Switching Protocols\r\n${lines.join('\r\n')}\r\n\r\n`);
}

function validHead(req: IncomingMessage): string[] {
  return [
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Accept: ${acceptFor(keyOf(req))}`,
  ];
}

/**
 * Runs the WebSocket protocol after a hand-written 101 with a core Connection: pings are
 * answered; `answerClose` decides whether the peer's close frame gets its answer.
 */
function speak(
  socket: Duplex,
  head: Buffer,
  options: { answerClose: boolean; idleCutMs?: number; echo?: boolean },
): void {
  const conn = new Connection({ role: 'server' });
  let closeSeen = false;
  let idleTimer: NodeJS.Timeout | undefined;
  const armIdle = () => {
    if (options.idleCutMs === undefined) return;
    clearTimeout(idleTimer);
    // An intermediary's idle timeout: no byte for so long, and the TCP connection is cut.
    idleTimer = setTimeout(() => socket.destroy(), options.idleCutMs);
  };
  const flush = () => {
    for (const chunk of conn.dataToSend()) {
      if (!closeSeen || options.answerClose) socket.write(chunk);
    }
    if (conn.closeTransport && options.answerClose) socket.end();
  };
  const onData = (chunk: Uint8Array) => {
    armIdle();
    conn.receiveData(chunk);
    for (;;) {
      const event = conn.nextEvent();
      if (event === NEED_DATA || typeof event === 'symbol') break;
      if (event.type === 'close') closeSeen = true;
      if (event.type === 'message' && options.echo === true) {
        if (event.binary) conn.sendBinary(event.data);
        else conn.sendText(event.data);
      }
    }
    flush();
  };
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
  socket.on('close', () => clearTimeout(idleTimer));
  armIdle();
  if (head.length > 0) onData(head);
}

function closeFrame(code: number, reason: string): Buffer {
  return Buffer.concat(serializeFrame(Opcode.CLOSE, encodeCloseBody(code, reason), { mask: null }));
}

/** The misbehaving endpoints under /bad/, each standing for one failure that doctor knows. */
export const MISBEHAVIOURS: Record<
  string,
  { description: string; finding: string; run: Misbehaviour }
> = {
  accept: {
    description: 'Answers 101 with a Sec-WebSocket-Accept computed from the wrong key.',
    finding: 'accept-mismatch',
    run: (_req, socket) =>
      switching(socket, [
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Accept: ${acceptFor('AAAAAAAAAAAAAAAAAAAAAA==')}`,
      ]),
  },
  'no-accept': {
    description: 'Answers 101 without Sec-WebSocket-Accept.',
    finding: 'accept-missing',
    run: (_req, socket) => switching(socket, ['Upgrade: websocket', 'Connection: Upgrade']),
  },
  'no-upgrade': {
    description: 'Answers 101 without the Upgrade header.',
    finding: 'upgrade-missing',
    run: (req, socket) =>
      switching(socket, ['Connection: Upgrade', `Sec-WebSocket-Accept: ${acceptFor(keyOf(req))}`]),
  },
  'no-connection': {
    description: 'Answers 101 without the Connection header.',
    finding: 'connection-missing',
    run: (req, socket) =>
      switching(socket, ['Upgrade: websocket', `Sec-WebSocket-Accept: ${acceptFor(keyOf(req))}`]),
  },
  'ok-200': {
    description: 'Answers 200 with a web page, as a route that does not upgrade does.',
    finding: 'status-200',
    run: (_req, socket) =>
      respond(
        socket,
        '200 OK',
        { 'Content-Type': 'text/html; charset=utf-8' },
        '<!doctype html><title>App</title><p>Hello from a plain HTTP route.</p>\n',
      ),
  },
  http10: {
    description: 'Answers in HTTP/1.0, as an old server or an HTTP/1.0 hop does.',
    finding: 'http10',
    run: (_req, socket) =>
      respond(socket, '200 OK', { Connection: 'close' }, 'HTTP/1.0 has no Upgrade.\n', 'HTTP/1.0'),
  },
  redirect: {
    description: 'Redirects (301) to /echo.',
    finding: 'redirect',
    run: (_req, socket) => respond(socket, '301 Moved Permanently', { Location: '/echo' }),
  },
  version: {
    description: 'Refuses version 13 with 426 and Sec-WebSocket-Version: 8 (RFC 6455 §4.4).',
    finding: 'version-mismatch',
    run: (_req, socket) =>
      respond(
        socket,
        '426 Upgrade Required',
        { 'Sec-WebSocket-Version': '8', Upgrade: 'websocket', Connection: 'Upgrade' },
        'Only version 8 is supported.\n',
      ),
  },
  auth: {
    description: 'Answers 401 with WWW-Authenticate: Bearer.',
    finding: 'auth-required',
    run: (_req, socket) =>
      respond(
        socket,
        '401 Unauthorized',
        { 'WWW-Authenticate': 'Bearer realm="switchyard"' },
        'Log in first.\n',
      ),
  },
  origin: {
    description: 'Answers 403 unless the Origin header is present and names this host.',
    finding: 'origin-required',
    run: (req, socket, head) => {
      const origin = req.headers.origin;
      let sameHost = false;
      try {
        sameHost = origin !== undefined && new URL(origin).host === req.headers.host;
      } catch {
        sameHost = false;
      }
      if (!sameHost) return respond(socket, '403 Forbidden', {}, 'Origin not allowed.\n');
      switching(socket, validHead(req));
      speak(socket, head, { answerClose: true, echo: true });
    },
  },
  'strict-connection': {
    description:
      'Upgrades only when Connection is exactly "Upgrade"; Firefox\'s "keep-alive, Upgrade" gets 400.',
    finding: 'connection-strict',
    run: (req, socket, head) => {
      if (req.headers.connection !== 'Upgrade') {
        return respond(socket, '400 Bad Request', {}, 'Connection must be "Upgrade".\n');
      }
      switching(socket, validHead(req));
      speak(socket, head, { answerClose: true, echo: true });
    },
  },
  'deflate-offer': {
    description: 'Answers 400 to any request that offers an extension (as browsers always do).',
    finding: 'extension-offer-rejected',
    run: (req, socket, head) => {
      if (req.headers['sec-websocket-extensions'] !== undefined) {
        return respond(socket, '400 Bad Request', {}, 'Unsupported Sec-WebSocket-Extensions.\n');
      }
      switching(socket, validHead(req));
      speak(socket, head, { answerClose: true, echo: true });
    },
  },
  subprotocol: {
    description: 'Answers 101 choosing subprotocol "chat", which the client did not offer.',
    finding: 'subprotocol-unrequested',
    run: (req, socket) => switching(socket, [...validHead(req), 'Sec-WebSocket-Protocol: chat']),
  },
  extension: {
    description: 'Answers 101 accepting extension "x-unknown", which the client did not offer.',
    finding: 'extension-unrequested',
    run: (req, socket) =>
      switching(socket, [...validHead(req), 'Sec-WebSocket-Extensions: x-unknown']),
  },
  drop: {
    description: 'Answers a valid 101, then closes the TCP connection at once.',
    finding: 'dropped-after-upgrade',
    run: (req, socket) => {
      switching(socket, validHead(req));
      socket.end();
    },
  },
  close: {
    description: 'Answers a valid 101, then sends close 1008 at once.',
    finding: 'closed-after-upgrade',
    run: (req, socket) => {
      switching(socket, validHead(req));
      socket.end(closeFrame(1008, 'not today'));
    },
  },
  hang: {
    description: 'Never answers the handshake.',
    finding: 'handshake-timeout',
    run: (_req, socket) => {
      // Silence; the socket is destroyed when the client gives up or the server closes.
      socket.on('error', () => socket.destroy());
    },
  },
  'no-pong': {
    description: 'Answers a valid 101, then ignores every frame (no pong, no close).',
    finding: 'no-pong',
    run: (req, socket) => {
      switching(socket, validHead(req));
      socket.on('data', () => {});
      socket.on('error', () => socket.destroy());
    },
  },
  'no-close': {
    description: 'Answers a valid 101 and pings, but never answers a close frame.',
    finding: 'close-not-answered',
    run: (req, socket, head) => {
      switching(socket, validHead(req));
      speak(socket, head, { answerClose: false });
    },
  },
  idle: {
    description:
      'Answers a valid 101, then cuts the connection after ?after=<ms> (default 3000) without traffic, as a proxy idle timeout does.',
    finding: 'idle-timeout',
    run: (req, socket, head) => {
      const after = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('after') ?? 3000);
      switching(socket, validHead(req));
      speak(socket, head, {
        answerClose: true,
        echo: true,
        idleCutMs: Number.isFinite(after) && after > 0 ? after : 3000,
      });
    },
  },
};

/** What a /status/<code> answer means for doctor. */
export function findingForStatus(code: number): string | null {
  if (code === 101) return null;
  if (code === 200) return 'status-200';
  if (code >= 300 && code < 400) return 'redirect';
  const known: Record<number, string> = {
    400: 'bad-request',
    401: 'auth-required',
    403: 'forbidden',
    404: 'not-found',
    426: 'upgrade-not-forwarded',
    502: 'bad-gateway',
    503: 'unavailable',
    504: 'gateway-timeout',
  };
  return known[code] ?? (code >= 500 ? 'server-error' : 'unexpected-status');
}

/** Answers the upgrade with `code` instead of 101 (any 200-599; 101 is served as /echo). */
export function answerStatus(socket: Duplex, code: number, reason: string): void {
  respond(socket, `${code} ${reason}`, {}, `This endpoint answers ${code} to every upgrade.\n`);
}

/** Every endpoint, for /endpoints.json, the web page and the README. */
export function listEndpoints(): EndpointInfo[] {
  return [
    { path: '/echo', description: 'Sends every message back as it came.', doctorFinding: null },
    {
      path: '/broadcast',
      description: 'A chat room: every message goes to every connected client.',
      doctorFinding: null,
    },
    {
      path: '/status/<code>',
      description: 'Answers the upgrade with that HTTP status instead of 101 (e.g. /status/503).',
      doctorFinding: 'depends on the code',
    },
    ...Object.entries(MISBEHAVIOURS).map(([name, m]) => ({
      path: `/bad/${name}`,
      description: m.description,
      doctorFinding: m.finding,
    })),
  ];
}
