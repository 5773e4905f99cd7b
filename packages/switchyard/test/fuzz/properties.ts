/**
 * The fuzzing properties, shared by the quick run in `npm test` (fuzz.test.ts) and the long,
 * time-bounded run of `npm run fuzz` (scripts/fuzz.ts), so that both check exactly the same
 * things. Every property feeds a parser of the core input that a peer controls, split at
 * arbitrary points, and checks the rules of the issue "Hardening": nothing throws out of the
 * core, nothing is held beyond the configured limits, the outcome does not depend on how the
 * bytes were split, and every failure carries the right close code or HTTP status.
 */
import fc from 'fast-check';
import { Connection, NEED_DATA, PAUSED } from '../../src/core/connection.js';
import { ERROR_CODES, RemoteProtocolError } from '../../src/core/errors.js';
import { validateServerResponse, validateUpgradeRequest } from '../../src/core/handshake.js';
import {
  formatExtensions,
  parseExtensionOffers,
  parseSubprotocolList,
  parseTokenList,
  parseUpgradeList,
} from '../../src/core/header-lists.js';
import { HttpHeadParser } from '../../src/core/http-head.js';
import { Receiver, type ReceiverEvent } from '../../src/core/receiver.js';
import { maxCompressedPayload } from '../../src/core/permessage-deflate.js';

/** A named property; `property` is what fast-check runs. */
export interface FuzzProperty {
  name: string;
  property: fc.IRawProperty<unknown[]>;
}

// ---- arbitraries ------------------------------------------------------------------------------

/** One frame, mostly well-formed, sometimes breaking one rule, occasionally lying about its length. */
const frameArb = (role: 'server' | 'client') =>
  fc
    .record({
      opcode: fc.oneof(
        { weight: 16, arbitrary: fc.constantFrom(0, 0, 1, 1, 2, 2, 9, 10) },
        { weight: 1, arbitrary: fc.constant(8) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 15 }) },
      ),
      fin: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, fc.constant(false)),
      rsv: fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, fc.integer({ min: 0, max: 7 })),
      masked: fc.oneof(
        { weight: 30, arbitrary: fc.constant(role === 'server') },
        fc.constant(role !== 'server'),
      ),
      payload: fc.oneof(
        { weight: 4, arbitrary: fc.uint8Array({ maxLength: 40 }) },
        {
          weight: 3,
          arbitrary: fc.string({ maxLength: 30 }).map((s) => new TextEncoder().encode(s)),
        },
        { weight: 1, arbitrary: fc.uint8Array({ minLength: 100, maxLength: 300 }) },
      ),
      // The encoding of the length: minimal, or a longer one, or a lie (incl. 2^63 and up).
      length: fc.oneof(
        { weight: 10, arbitrary: fc.constant<'minimal'>('minimal') },
        { weight: 1, arbitrary: fc.constantFrom<'16' | '64'>('16', '64') },
        { weight: 1, arbitrary: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }) },
      ),
      key: fc.uint8Array({ minLength: 4, maxLength: 4 }),
    })
    .map(encodeFrame);

interface FrameFields {
  opcode: number;
  fin: boolean;
  rsv: number;
  masked: boolean;
  payload: Uint8Array;
  length: 'minimal' | '16' | '64' | bigint;
  key: Uint8Array;
}

/** Writes a frame by hand (independently of the library's serializer), rules or not. */
function encodeFrame(f: FrameFields): Uint8Array {
  const declared = typeof f.length === 'bigint' ? f.length : BigInt(f.payload.length);
  const bits =
    f.length === '16'
      ? 16
      : f.length === '64'
        ? 64
        : declared < 126n
          ? 7
          : declared < 0x10000n
            ? 16
            : 64;
  const head: number[] = [(f.fin ? 0x80 : 0) | (f.rsv << 4) | f.opcode];
  const m = f.masked ? 0x80 : 0;
  if (bits === 7) head.push(m | Number(declared));
  else if (bits === 16 && declared < 0x10000n)
    head.push(m | 126, Number(declared >> 8n), Number(declared & 0xffn));
  else {
    head.push(m | 127);
    for (let s = 56n; s >= 0n; s -= 8n) head.push(Number((declared >> s) & 0xffn));
  }
  if (f.masked) head.push(...f.key);
  const out = new Uint8Array(head.length + f.payload.length);
  out.set(head);
  for (let i = 0; i < f.payload.length; i++)
    out[head.length + i] = f.payload[i] ^ (f.masked ? f.key[i & 3] : 0);
  return out;
}

/** A stream of frames, with now and then some random bytes among them. */
const streamArb = (role: 'server' | 'client') =>
  fc
    .array(
      fc.oneof(
        { weight: 20, arbitrary: frameArb(role) },
        { weight: 1, arbitrary: fc.uint8Array({ maxLength: 16 }) },
      ),
      { maxLength: 12 },
    )
    .map(concat);

/** Cut points, as fractions of the input: where a stream is split into chunks. */
const cutsArb = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 10 });

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Splits `bytes` at the cut points into fresh copies (parsers may unmask in place). */
export function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * bytes.length)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const p of [...points, bytes.length]) {
    if (p > from) chunks.push(bytes.slice(from, p));
    from = Math.max(from, p);
  }
  return chunks;
}

const fatal = new TextDecoder('utf-8', { fatal: true });
const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');

// ---- the frame parser ---------------------------------------------------------------------------

const RECEIVER_CLOSE_CODES = new Set([1002, 1007, 1009]);

/**
 * Runs a receiver over the chunks and returns its events as strings, checking on the way that
 * nothing throws, that nothing follows an error, and that what it holds stays within limits.
 */
function runReceiver(
  chunks: Uint8Array[],
  role: 'server' | 'client',
  maxPayload: number,
  maxFragments: number,
  rsv1Allowed: boolean,
): string[] {
  const receiver = new Receiver({ role, maxPayload, maxFragments, rsv1Allowed });
  const events: string[] = [];
  let failed = false;
  for (const chunk of chunks) {
    receiver.push(chunk);
    for (let ev = receiver.next(); ev !== null; ev = receiver.next()) {
      if (failed) throw new Error(`an event after the error: ${ev.type}`);
      events.push(describe(ev, maxPayload, maxFragments));
      if (ev.type === 'error') failed = true;
    }
    // Drained: what is left is a partial header (<= 14 bytes) or control frame (<= 139), and
    // the pieces of one incomplete message, which maxPayload bounds (plus deflate's worst-case
    // growth for a compressed one: see maxCompressedPayload).
    if (receiver.bufferedBytes > maxCompressedPayload(maxPayload, maxFragments) + 139)
      throw new Error(`holds ${receiver.bufferedBytes} bytes with maxPayload ${maxPayload}`);
  }
  return events;
}

function describe(ev: ReceiverEvent, maxPayload: number, maxFragments: number): string {
  switch (ev.type) {
    case 'message':
      if (ev.data.length > maxPayload) throw new Error('a message over maxPayload');
      if (!ev.binary) fatal.decode(ev.data); // throws on invalid UTF-8
      return `message:${ev.binary}:${hex(ev.data)}`;
    case 'compressed': {
      const data = concat(ev.data);
      // A message of maxPayload bytes that did not compress is a little longer on the wire.
      if (data.length > maxCompressedPayload(maxPayload, maxFragments))
        throw new Error('a compressed message over maxCompressedPayload(maxPayload)');
      return `compressed:${ev.binary}:${hex(data)}`;
    }
    case 'ping':
    case 'pong':
      if (ev.data.length > 125) throw new Error('a control payload over 125 bytes');
      return `${ev.type}:${hex(ev.data)}`;
    case 'close':
      return `close:${ev.code}:${ev.reason}`;
    case 'error':
      if (!(ev.error instanceof RemoteProtocolError)) throw new Error('not a RemoteProtocolError');
      if (!(ev.error.code in ERROR_CODES)) throw new Error(`unknown code ${ev.error.code}`);
      if (!RECEIVER_CLOSE_CODES.has(ev.error.closeCode ?? 0))
        throw new Error(`close code ${String(ev.error.closeCode)} for ${ev.error.code}`);
      return `error:${ev.error.code}:${ev.error.closeCode}`;
  }
}

const receiverProperty = (role: 'server' | 'client') =>
  fc.property(
    streamArb(role),
    cutsArb,
    fc.integer({ min: 0, max: 400 }),
    fc.integer({ min: 1, max: 6 }),
    fc.boolean(),
    (stream, cuts, maxPayload, maxFragments, rsv1) => {
      const whole = runReceiver([stream.slice()], role, maxPayload, maxFragments, rsv1);
      const pieces = runReceiver(split(stream, cuts), role, maxPayload, maxFragments, rsv1);
      const bytewise = runReceiver(
        split(
          stream,
          Array.from(stream, (_, i) => i / stream.length),
        ),
        role,
        maxPayload,
        maxFragments,
        rsv1,
      );
      if (
        JSON.stringify(whole) !== JSON.stringify(pieces) ||
        JSON.stringify(whole) !== JSON.stringify(bytewise)
      )
        throw new Error(
          `split changed the events:\n${whole.join('\n')}\n---\n${pieces.join('\n')}\n---\n${bytewise.join('\n')}`,
        );
    },
  );

// ---- the connection: failures queue the right close frame ---------------------------------------

const connectionProperty = fc.property(
  streamArb('server'),
  cutsArb,
  fc.integer({ min: 0, max: 400 }),
  (stream, cuts, maxPayload) => {
    const conn = new Connection({ role: 'server', maxPayload, maxFragments: 8 });
    let error: RemoteProtocolError | null = null;
    for (const chunk of split(stream, cuts)) {
      conn.receiveData(chunk);
      for (;;) {
        const ev = conn.nextEvent();
        if (ev === NEED_DATA) break;
        if (ev === PAUSED) {
          // A compressed message is out for inflation: the driver says it could not inflate.
          conn.receiveInflated(
            new RemoteProtocolError('SWITCHYARD_ERR_INFLATE', 'no codec', { closeCode: 1007 }),
          );
          continue;
        }
        if (ev.type === 'error') error = ev.error;
      }
    }
    if (error === null) return;
    // RFC 6455 §7.1.7: the failure queued a close frame with its code, and asks to close TCP.
    if (!conn.closeTransport) throw new Error('a failure did not ask to close the transport');
    if (conn.sentCloseCode !== error.closeCode)
      throw new Error(`sent ${conn.sentCloseCode}, the error says ${String(error.closeCode)}`);
    const reader = new Receiver({ role: 'client', maxPayload: 1 << 20, maxFragments: 1 << 20 });
    for (const chunk of conn.dataToSend()) reader.push(chunk.slice());
    let last: ReceiverEvent | null = null;
    for (let ev = reader.next(); ev !== null; ev = reader.next()) last = ev;
    if (last?.type !== 'close' || last.code !== error.closeCode)
      throw new Error(`the last frame sent was not close ${String(error.closeCode)}`);
  },
);

// ---- the HTTP head parser -----------------------------------------------------------------------

const headLineArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      'Host: a',
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'X: y',
    ),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(fc.stringMatching(/^[!-9;-~]{0,12}$/), fc.string({ maxLength: 20 }))
      .map(([n, v]) => `${n}: ${v}`),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 30 }) },
);

const headArb = (kind: 'request' | 'response') =>
  fc
    .tuple(
      fc.oneof(
        {
          weight: 4,
          arbitrary: fc.constant(
            kind === 'request' ? 'GET /chat HTTP/1.1' : 'HTTP/1.1 101 Switching Protocols',
          ),
        },
        { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', maxLength: 30 }) },
      ),
      fc.array(headLineArb, { maxLength: 12 }),
      fc.constantFrom('\r\n', '\n', '\r\n\r\n', ''),
      fc.uint8Array({ maxLength: 8 }),
    )
    .map(([start, lines, end, trailing]) => {
      const text = [start, ...lines].join('\r\n') + '\r\n' + end;
      return concat([Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff), trailing]);
    });

function runHead(
  kind: 'request' | 'response',
  chunks: Uint8Array[],
  maxHeaderBytes: number,
  maxHeaders: number,
): string {
  const parser = new HttpHeadParser({ kind, maxHeaderBytes, maxHeaders });
  let consumed = 0;
  for (const chunk of chunks) {
    const result = parser.push(chunk);
    consumed += chunk.length;
    if (result === null) {
      if (consumed > maxHeaderBytes)
        throw new Error(`buffered ${consumed} bytes past maxHeaderBytes`);
      continue;
    }
    if (result.ok) {
      const headBytes = consumed - result.rest.length;
      if (headBytes > maxHeaderBytes) throw new Error(`accepted a ${headBytes}-byte head`);
      return `ok:${JSON.stringify(result.head)}:${hex(result.rest.length > 0 ? result.rest : new Uint8Array(0))}:${consumed}`;
    }
    const status = result.error.status;
    const allowed: Array<number | undefined> = kind === 'request' ? [400, 431, 505] : [undefined];
    if (!allowed.includes(status))
      throw new Error(`status ${String(status)} for ${result.error.code}`);
    return `error:${result.error.code}`;
  }
  return 'incomplete';
}

const headProperty = (kind: 'request' | 'response') =>
  fc.property(
    headArb(kind),
    cutsArb,
    fc.integer({ min: 16, max: 300 }),
    fc.integer({ min: 0, max: 10 }),
    (bytes, cuts, maxBytes, maxHeaders) => {
      const whole = runHead(kind, [bytes.slice()], maxBytes, maxHeaders);
      const pieces = runHead(kind, split(bytes, cuts), maxBytes, maxHeaders);
      // The outcome is the same however the head was split; only `rest` differs (the bytes after
      // the head that were in the last chunk), so it is left out of the comparison.
      const strip = (s: string) => s.replace(/:[0-9a-f]*:\d+$/, '');
      if (strip(whole) !== strip(pieces))
        throw new Error(`split changed the outcome:\n${whole}\n${pieces}`);
    },
  );

// ---- handshake validation -----------------------------------------------------------------------

const headerValueArb = fc.oneof(
  fc.constantFrom(
    'websocket',
    'Upgrade',
    'keep-alive, Upgrade',
    '13',
    'dGhlIHNhbXBsZSBub25jZQ==',
    'chat, superchat',
    'permessage-deflate; client_max_window_bits',
    'http://127.0.0.1',
    '',
  ),
  fc.string({ maxLength: 40 }),
  fc.array(fc.string({ maxLength: 10 }), { minLength: 1, maxLength: 3 }),
);

const HANDSHAKE_HEADERS = [
  'host',
  'upgrade',
  'connection',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'sec-websocket-extensions',
  'origin',
  'sec-websocket-accept',
];

const headersArb = fc.dictionary(fc.constantFrom(...HANDSHAKE_HEADERS), headerValueArb, {
  maxKeys: 9,
});

const requestProperty = fc.property(
  fc.constantFrom('GET', 'POST', 'get', ''),
  fc.constantFrom('1.1', '1.0', '2.0', 'x'),
  headersArb,
  (method, httpVersion, headers) => {
    const result = validateUpgradeRequest(
      { method, httpVersion, url: '/', headers },
      { origin: (o) => o !== 'evil' },
    );
    if (result.ok) return;
    if (![400, 403, 405, 426].includes(result.error.status ?? 0))
      throw new Error(`status ${String(result.error.status)} for ${result.error.code}`);
    if (!(result.error.code in ERROR_CODES)) throw new Error(`unknown code ${result.error.code}`);
  },
);

const responseProperty = fc.property(
  fc.constantFrom(101, 200, 301, 426),
  headersArb,
  (statusCode, headers) => {
    const result = validateServerResponse(
      { statusCode, headers },
      {
        key: 'dGhlIHNhbXBsZSBub25jZQ==',
        protocols: ['chat'],
        extensionsOffered: ['permessage-deflate'],
      },
    );
    if (!result.ok && !(result.error.code in ERROR_CODES))
      throw new Error(`unknown code ${result.error.code}`);
  },
);

// ---- header lists -------------------------------------------------------------------------------

/** Strings made of the characters the list grammars care about, to reach every branch. */
const listTextArb = fc.oneof(
  fc.string({ maxLength: 60 }),
  fc
    .array(
      fc.constantFrom(
        ',',
        ';',
        '=',
        '"',
        '\\',
        ' ',
        '\t',
        '/',
        'a',
        'b',
        'permessage-deflate',
        'x=1',
        '"q"',
      ),
      { maxLength: 30 },
    )
    .map((a) => a.join('')),
);

const listsProperty = fc.property(listTextArb, (text) => {
  for (const parse of [parseTokenList, parseUpgradeList, parseSubprotocolList]) {
    const list = parse(text);
    if (list !== null && !Array.isArray(list)) throw new Error('neither a list nor null');
  }
  const offers = parseExtensionOffers(text);
  if (offers === null || offers.length === 0) return;
  // What we accept, we can write back, and it reads the same.
  const again = parseExtensionOffers(formatExtensions(offers));
  if (JSON.stringify(again) !== JSON.stringify(offers))
    throw new Error(`round trip changed ${JSON.stringify(offers)} into ${JSON.stringify(again)}`);
});

/** Every property, by name. */
export const PROPERTIES: readonly FuzzProperty[] = [
  { name: 'receiver-server', property: receiverProperty('server') },
  { name: 'receiver-client', property: receiverProperty('client') },
  { name: 'connection-failure-close-code', property: connectionProperty },
  { name: 'http-head-request', property: headProperty('request') },
  { name: 'http-head-response', property: headProperty('response') },
  { name: 'upgrade-request', property: requestProperty },
  { name: 'server-response', property: responseProperty },
  { name: 'header-lists', property: listsProperty },
] as unknown as FuzzProperty[];

/** A counterexample found by `npm run fuzz`, kept as a regression test. */
export interface Seed {
  property: string;
  seed: number;
  path: string;
  counterexample: string;
  error: string;
  found: string;
}
