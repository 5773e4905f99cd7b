import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HttpHeadParser } from '../../src/core/http-head.js';
import type { HeadKind, HttpHeadParserOptions } from '../../src/core/http-head.js';
import { LocalProtocolError, RemoteProtocolError } from '../../src/core/errors.js';
import { expectHead, expectHeadError, feedHead, latin1Bytes } from '../helpers/http-feed.js';
import { countWork } from '../helpers/work.js';

const REQUEST = { kind: 'request' } as const;
const RESPONSE = { kind: 'response' } as const;

/** A null-prototype record, as the parser builds `headers`, for deepStrictEqual. */
function fields(entries: Record<string, string | string[]>): Record<string, string | string[]> {
  return Object.assign(Object.create(null) as Record<string, string | string[]>, entries);
}

// RFC 6455 §1.2's example handshake.
const RFC_6455_REQUEST =
  'GET /chat HTTP/1.1\r\n' +
  'Host: server.example.com\r\n' +
  'Upgrade: websocket\r\n' +
  'Connection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  'Origin: http://example.com\r\n' +
  'Sec-WebSocket-Protocol: chat, superchat\r\n' +
  'Sec-WebSocket-Version: 13\r\n' +
  '\r\n';

const RFC_6455_RESPONSE =
  'HTTP/1.1 101 Switching Protocols\r\n' +
  'Upgrade: websocket\r\n' +
  'Connection: Upgrade\r\n' +
  'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n' +
  'Sec-WebSocket-Protocol: chat\r\n' +
  '\r\n';

// --- requests ---------------------------------------------------------------------------

test('parses the RFC 6455 §1.2 handshake request into the IncomingMessage shape', () => {
  const head = expectHead(REQUEST, RFC_6455_REQUEST);
  assert.equal(head.method, 'GET');
  assert.equal(head.url, '/chat');
  assert.equal(head.httpVersion, '1.1');
  assert.deepStrictEqual(
    head.headers,
    fields({
      host: 'server.example.com',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      origin: 'http://example.com',
      'sec-websocket-protocol': 'chat, superchat',
      'sec-websocket-version': '13',
    }),
  );
  assert.deepEqual(head.rawHeaders, [
    'Host',
    'server.example.com',
    'Upgrade',
    'websocket',
    'Connection',
    'Upgrade',
    'Sec-WebSocket-Key',
    'dGhlIHNhbXBsZSBub25jZQ==',
    'Origin',
    'http://example.com',
    'Sec-WebSocket-Protocol',
    'chat, superchat',
    'Sec-WebSocket-Version',
    '13',
  ]);
});

test('parses a request with no header fields', () => {
  const head = expectHead(REQUEST, 'GET / HTTP/1.1\r\n\r\n');
  assert.deepStrictEqual(head.headers, fields({}));
  assert.deepEqual(head.rawHeaders, []);
});

test('reports HTTP/1.0 as 1.0 and a later HTTP/1.x as 1.1 (RFC 9110 §2.5)', () => {
  assert.equal(expectHead(REQUEST, 'GET / HTTP/1.0\r\n\r\n').httpVersion, '1.0');
  assert.equal(expectHead(REQUEST, 'GET / HTTP/1.9\r\n\r\n').httpVersion, '1.1');
});

test('keeps the method and request-target as sent', () => {
  const head = expectHead(REQUEST, 'get /a/b?c=d&e=%20#f HTTP/1.1\r\n\r\n');
  assert.equal(head.method, 'get');
  assert.equal(head.url, '/a/b?c=d&e=%20#f');
  assert.equal(expectHead(REQUEST, 'OPTIONS * HTTP/1.1\r\n\r\n').url, '*');
  assert.equal(expectHead(REQUEST, 'GET http://x.test/y HTTP/1.1\r\n\r\n').url, 'http://x.test/y');
});

test('joins repeated fields with ", ", cookie with "; ", and makes set-cookie an array', () => {
  const head = expectHead(
    REQUEST,
    'GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\nX-A: 3\r\nCookie: a=1\r\ncookie: b=2\r\n' +
      'Set-Cookie: s=1\r\nSet-Cookie: t=2\r\nSet-Cookie: u=3, v=4\r\n\r\n',
  );
  assert.deepStrictEqual(
    head.headers,
    fields({ 'x-a': '1, 2, 3', cookie: 'a=1; b=2', 'set-cookie': ['s=1', 't=2', 'u=3, v=4'] }),
  );
  assert.equal(head.rawHeaders.length, 16);
  assert.equal(head.rawHeaders[2], 'x-a');
});

test('makes a single set-cookie an array too, as Node does', () => {
  const head = expectHead(RESPONSE, 'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\n\r\n');
  assert.deepStrictEqual(head.headers, fields({ 'set-cookie': ['a=1'] }));
});

test('trims OWS around field values and keeps inner whitespace and empty values', () => {
  const head = expectHead(
    REQUEST,
    'GET / HTTP/1.1\r\nA:   x  y\t \r\nB:\t\r\nC:\r\nD:z\r\nE: \t a\tb \t\r\n\r\n',
  );
  assert.deepStrictEqual(head.headers, fields({ a: 'x  y', b: '', c: '', d: 'z', e: 'a\tb' }));
});

test('keeps obs-text bytes in field values as latin1 chars (RFC 9110 §5.5)', () => {
  const head = expectHead(REQUEST, 'GET / HTTP/1.1\r\nX-Name: caf\xe9 \x80\xff\r\n\r\n');
  assert.equal(head.headers['x-name'], 'caf\u00e9 \u0080\u00ff');
});

test('stores a field named __proto__ as a plain field, without touching prototypes', () => {
  const head = expectHead(REQUEST, 'GET / HTTP/1.1\r\n__proto__: x\r\nConstructor: y\r\n\r\n');
  assert.equal(Object.getPrototypeOf(head.headers), null);
  assert.equal(head.headers['__proto__'], 'x');
  assert.equal(head.headers['constructor'], 'y');
  assert.equal(({} as Record<string, unknown>)['x'], undefined);
});

test('parses the same head however the bytes are split in two chunks', () => {
  const bytes = latin1Bytes(RFC_6455_REQUEST + 'tail');
  const whole = expectHead(REQUEST, RFC_6455_REQUEST);
  for (let split = 0; split <= bytes.length; split++) {
    const parser = new HttpHeadParser(REQUEST);
    let result = parser.push(bytes.subarray(0, split));
    if (result === null) result = parser.push(bytes.subarray(split));
    assert.ok(result?.ok, `split at ${split}`);
    assert.deepStrictEqual(result.head, whole, `split at ${split}`);
    // The rest is what followed the head in the chunk that completed it.
    const headLength = bytes.length - 4;
    const rest = split < headLength ? 'tail' : 'tail'.slice(0, split - headLength);
    assert.equal(new TextDecoder().decode(result.rest), rest, `split at ${split}`);
  }
});

test('hands back the bytes after the blank line as rest, without copying them', () => {
  const bytes = latin1Bytes(RFC_6455_RESPONSE + '\x81\x02hi');
  const result = new HttpHeadParser(RESPONSE).push(bytes);
  assert.ok(result?.ok);
  assert.deepEqual([...result.rest], [0x81, 0x02, 0x68, 0x69]);
  assert.equal(result.rest.buffer, bytes.buffer);
});

test('returns null for an empty chunk and while the head is incomplete', () => {
  const parser = new HttpHeadParser(REQUEST);
  assert.equal(parser.push(new Uint8Array(0)), null);
  assert.equal(parser.push(latin1Bytes('GET / HTTP/1.1\r\nHost: x\r\n')), null);
  assert.equal(parser.push(latin1Bytes('\r')), null);
  const result = parser.push(latin1Bytes('\n'));
  assert.ok(result?.ok);
  assert.equal(result.head.headers['host'], 'x');
});

test('throws SWITCHYARD_ERR_INVALID_STATE when pushed to after a head', () => {
  const parser = new HttpHeadParser(REQUEST);
  assert.ok(parser.push(latin1Bytes('GET / HTTP/1.1\r\n\r\n'))?.ok);
  assert.throws(
    () => parser.push(latin1Bytes('more')),
    (e: unknown) => e instanceof LocalProtocolError && e.code === 'SWITCHYARD_ERR_INVALID_STATE',
  );
});

test('throws SWITCHYARD_ERR_INVALID_STATE when pushed to after an error', () => {
  const parser = new HttpHeadParser(REQUEST);
  assert.equal(parser.push(latin1Bytes('GET / HTTP/1.1\n'))?.ok, false);
  assert.throws(
    () => parser.push(latin1Bytes('more')),
    (e: unknown) => e instanceof LocalProtocolError && e.code === 'SWITCHYARD_ERR_INVALID_STATE',
  );
});

const BAD_OPTIONS: Array<[string, HttpHeadParserOptions]> = [
  ['an unknown kind', { kind: 'trailer' as HeadKind }],
  ['maxHeaderBytes 0', { kind: 'request', maxHeaderBytes: 0 }],
  ['maxHeaderBytes 1.5', { kind: 'request', maxHeaderBytes: 1.5 }],
  ['maxHeaderBytes NaN', { kind: 'request', maxHeaderBytes: Number.NaN }],
  ['maxHeaders -1', { kind: 'request', maxHeaders: -1 }],
  ['maxHeaders Infinity', { kind: 'request', maxHeaders: Infinity }],
];

for (const [what, options] of BAD_OPTIONS) {
  test(`the constructor throws SWITCHYARD_ERR_INVALID_ARGUMENT for ${what}`, () => {
    assert.throws(
      () => new HttpHeadParser(options),
      (e: unknown) =>
        e instanceof LocalProtocolError && e.code === 'SWITCHYARD_ERR_INVALID_ARGUMENT',
    );
  });
}

test('exposes its kind and limits, with the documented defaults', () => {
  const parser = new HttpHeadParser(REQUEST);
  assert.equal(parser.kind, 'request');
  assert.equal(parser.maxHeaderBytes, 16384);
  assert.equal(parser.maxHeaders, 100);
});

// --- malformed requests: 400 ------------------------------------------------------------

const MALFORMED_REQUESTS: Array<[string, string, RegExp]> = [
  ['lines that end in a bare LF', 'GET / HTTP/1.1\nHost: x\n\n', /bare LF/],
  ['one field line that ends in a bare LF', 'GET / HTTP/1.1\r\nHost: x\n\r\n', /bare LF/],
  ['a blank line that is a bare LF', 'GET / HTTP/1.1\r\nHost: x\r\n\n', /bare LF/],
  ['a bare CR inside a field value', 'GET / HTTP/1.1\r\nX: a\rb\r\n\r\n', /control character/],
  ['a CR before the CRLF of a field line', 'GET / HTTP/1.1\r\nX: a\r\r\n\r\n', /control character/],
  ['a bare CR in the request line', 'GET /\r HTTP/1.1\r\n\r\n', /request line/],
  ['an empty line before the request line', '\r\nGET / HTTP/1.1\r\n\r\n', /empty line/],
  ['obs-fold', 'GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n', /whitespace/],
  ['obs-fold with a tab', 'GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n', /whitespace/],
  ['whitespace before the first field', 'GET / HTTP/1.1\r\n Host: x\r\n\r\n', /whitespace/],
  [
    'a space between field name and colon (RFC 9112 §5.1)',
    'GET / HTTP/1.1\r\nHost : x\r\n\r\n',
    /colon/,
  ],
  ['a tab between field name and colon', 'GET / HTTP/1.1\r\nHost\t: x\r\n\r\n', /colon/],
  ['a field line without a colon', 'GET / HTTP/1.1\r\nHost x\r\n\r\n', /name: value/],
  ['a field line that is only a name', 'GET / HTTP/1.1\r\nHost\r\n\r\n', /name: value/],
  ['a field with an empty name', 'GET / HTTP/1.1\r\n: x\r\n\r\n', /empty name/],
  ['a field name with a delimiter', 'GET / HTTP/1.1\r\nHo(st: x\r\n\r\n', /name: value/],
  ['a field name with a non-ASCII byte', 'GET / HTTP/1.1\r\nH\xf6st: x\r\n\r\n', /name: value/],
  ['a NUL in a field value', 'GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n', /control character/],
  ['a control char in a field value', 'GET / HTTP/1.1\r\nX: \x01\r\n\r\n', /control character/],
  ['DEL in a field value', 'GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n', /control character/],
  ['two Host fields (RFC 9112 §3.2)', 'GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n', /Host/],
  ['a request line of one word', 'GET\r\n\r\n', /no method/],
  ['a request line without a version', 'GET /\r\n\r\n', /request line/],
  ['a request line that begins with a space', ' GET / HTTP/1.1\r\n\r\n', /no method/],
  ['two spaces after the method', 'GET  / HTTP/1.1\r\n\r\n', /request line/],
  ['two spaces before the version', 'GET /  HTTP/1.1\r\n\r\n', /version/],
  ['a space after the version', 'GET / HTTP/1.1 \r\n\r\n', /version/],
  ['a tab as separator', 'GET\t/ HTTP/1.1\r\n\r\n', /method/],
  ['a method that is not a token', 'G{T / HTTP/1.1\r\n\r\n', /method/],
  ['a non-ASCII byte in the request-target', 'GET /caf\xe9 HTTP/1.1\r\n\r\n', /request line/],
  ['a lower-case HTTP name (RFC 9112 §2.3: case-sensitive)', 'GET / http/1.1\r\n\r\n', /version/],
  ['a two-digit minor version', 'GET / HTTP/1.10\r\n\r\n', /version/],
  ['a version without a minor', 'GET / HTTP/1\r\n\r\n', /version/],
  ['a version with letters', 'GET / HTTP/a.b\r\n\r\n', /version/],
  ['a version with a comma', 'GET / HTTP/1,1\r\n\r\n', /version/],
  ['a version with a non-digit minor', 'GET / HTTP/1.x\r\n\r\n', /version/],
];

for (const [what, input, message] of MALFORMED_REQUESTS) {
  test(`rejects a request with ${what} with 400`, () => {
    const error = expectHeadError(REQUEST, input);
    assert.ok(error instanceof RemoteProtocolError);
    assert.equal(error.code, 'SWITCHYARD_ERR_HANDSHAKE_MALFORMED');
    assert.equal(error.status, 400);
    assert.match(error.message, message);
  });
}

for (const version of ['2.0', '0.9', '3.0', '9.9']) {
  test(`rejects a request line with HTTP/${version} with 505 (RFC 9110 §15.6.6)`, () => {
    const error = expectHeadError(REQUEST, `GET / HTTP/${version}\r\n\r\n`);
    assert.equal(error.code, 'SWITCHYARD_ERR_HANDSHAKE_MALFORMED');
    assert.equal(error.status, 505);
  });
}

test('rejects a bare LF as soon as it arrives, before the head is complete', () => {
  const parser = new HttpHeadParser(REQUEST);
  const result = parser.push(latin1Bytes('GET / HTTP/1.1\n'));
  assert.equal(result?.ok, false);
});

// --- limits: 431 ------------------------------------------------------------------------

function headOfSize(size: number): string {
  const base = 'GET / HTTP/1.1\r\nX: \r\n\r\n';
  return base.slice(0, 19) + 'a'.repeat(size - base.length) + base.slice(19);
}

test('accepts a head of exactly maxHeaderBytes bytes', () => {
  const input = headOfSize(200);
  assert.equal(input.length, 200);
  const head = expectHead({ kind: 'request', maxHeaderBytes: 200 }, input);
  assert.equal((head.headers['x'] as string).length, 200 - 23);
});

test('rejects a head one byte over maxHeaderBytes with 431', () => {
  const error = expectHeadError({ kind: 'request', maxHeaderBytes: 200 }, headOfSize(201));
  assert.equal(error.code, 'SWITCHYARD_ERR_HANDSHAKE_HEADERS_TOO_LARGE');
  assert.equal(error.status, 431);
  assert.match(error.message, /200 bytes/);
});

test('rejects a head that passes maxHeaderBytes as soon as the byte past the limit arrives', () => {
  const outcome = feedHead(
    { kind: 'request', maxHeaderBytes: 100 },
    'GET /' + 'a'.repeat(500),
    'byte by byte',
  );
  assert.equal(outcome.result?.ok, false);
  assert.equal(outcome.pushed, 101);
});

test('rejects a 1 MB chunk without a line end at once, without buffering it', () => {
  const parser = new HttpHeadParser(REQUEST);
  const result = parser.push(new Uint8Array(1 << 20).fill(0x61));
  assert.equal(result?.ok, false);
  assert.equal(result.ok ? undefined : result.error.status, 431);
});

test('does not count the bytes after the head against maxHeaderBytes', () => {
  const head = 'GET / HTTP/1.1\r\n\r\n';
  const bytes = new Uint8Array(head.length + 100_000);
  bytes.set(latin1Bytes(head));
  const result = new HttpHeadParser({ kind: 'request', maxHeaderBytes: head.length }).push(bytes);
  assert.ok(result?.ok);
  assert.equal(result.rest.length, 100_000);
});

function headWithFields(count: number): string {
  let text = 'GET / HTTP/1.1\r\n';
  for (let i = 0; i < count; i++) text += `X-${i}: ${i}\r\n`;
  return text + '\r\n';
}

test('accepts exactly maxHeaders fields', () => {
  const head = expectHead({ kind: 'request', maxHeaders: 5 }, headWithFields(5));
  assert.equal(head.rawHeaders.length, 10);
  expectHead(REQUEST, headWithFields(100));
  expectHead({ kind: 'request', maxHeaders: 0 }, headWithFields(0));
});

test('rejects one field over maxHeaders with 431, as soon as that field line ends', () => {
  const error = expectHeadError({ kind: 'request', maxHeaders: 5 }, headWithFields(6));
  assert.equal(error.code, 'SWITCHYARD_ERR_HANDSHAKE_HEADERS_TOO_LARGE');
  assert.equal(error.status, 431);
  assert.match(error.message, /more than 5 header fields/);
  expectHeadError(REQUEST, headWithFields(101));
  const unfinished = headWithFields(6).slice(0, -2);
  const outcome = feedHead({ kind: 'request', maxHeaders: 5 }, unfinished, 'whole');
  assert.equal(outcome.result?.ok, false);
});

// --- responses --------------------------------------------------------------------------

test('parses the RFC 6455 §1.3 handshake response', () => {
  const head = expectHead(RESPONSE, RFC_6455_RESPONSE);
  assert.equal(head.statusCode, 101);
  assert.equal(head.statusText, 'Switching Protocols');
  assert.equal(head.httpVersion, '1.1');
  assert.deepStrictEqual(
    head.headers,
    fields({
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-accept': 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=',
      'sec-websocket-protocol': 'chat',
    }),
  );
  assert.equal(head.rawHeaders.length, 8);
});

test('accepts a status line with an empty reason phrase, with or without its SP', () => {
  assert.equal(expectHead(RESPONSE, 'HTTP/1.1 101\r\n\r\n').statusText, '');
  assert.equal(expectHead(RESPONSE, 'HTTP/1.1 101 \r\n\r\n').statusText, '');
});

test('keeps the reason phrase as sent, spaces, tabs and obs-text included', () => {
  const head = expectHead(RESPONSE, 'HTTP/1.0 404 Not \tF\xf6und \r\n\r\n');
  assert.equal(head.statusCode, 404);
  assert.equal(head.statusText, 'Not \tF\u00f6und ');
  assert.equal(head.httpVersion, '1.0');
});

test('accepts status codes 100 and 599, and several Host fields in a response', () => {
  assert.equal(expectHead(RESPONSE, 'HTTP/1.1 100 Continue\r\n\r\n').statusCode, 100);
  const head = expectHead(RESPONSE, 'HTTP/1.1 599 X\r\nHost: a\r\nHost: b\r\n\r\n');
  assert.equal(head.statusCode, 599);
  assert.equal(head.headers['host'], 'a, b');
});

const MALFORMED_RESPONSES: Array<[string, string]> = [
  ['a two-digit status code', 'HTTP/1.1 99 OK\r\n\r\n'],
  ['a four-digit status code', 'HTTP/1.1 1011 OK\r\n\r\n'],
  ['a status code with a letter', 'HTTP/1.1 10a OK\r\n\r\n'],
  ['a status code below 100', 'HTTP/1.1 099 OK\r\n\r\n'],
  ['a status code above 599', 'HTTP/1.1 600 OK\r\n\r\n'],
  ['two spaces before the status code', 'HTTP/1.1  101 OK\r\n\r\n'],
  ['a status line that is only the version', 'HTTP/1.1\r\n\r\n'],
  ['a lower-case HTTP name', 'http/1.1 101 OK\r\n\r\n'],
  ['a version without a minor', 'HTTP/2 101 OK\r\n\r\n'],
  ['another protocol', 'ICY 200 OK\r\n\r\n'],
  ['a control char in the reason phrase', 'HTTP/1.1 101 OK\x01\r\n\r\n'],
  ['a tab before the status code', 'HTTP/1.1\t101 OK\r\n\r\n'],
  ['obs-fold', 'HTTP/1.1 101 OK\r\nUpgrade: a\r\n b\r\n\r\n'],
  ['lines that end in a bare LF', 'HTTP/1.1 101 OK\nUpgrade: websocket\n\n'],
  ['a space between field name and colon', 'HTTP/1.1 101 OK\r\nUpgrade : websocket\r\n\r\n'],
];

for (const [what, input] of MALFORMED_RESPONSES) {
  test(`rejects a response with ${what}, without an HTTP status to answer`, () => {
    const error = expectHeadError(RESPONSE, input);
    assert.equal(error.code, 'SWITCHYARD_ERR_HANDSHAKE_MALFORMED');
    assert.equal(error.status, undefined);
    assert.match(error.message, /response head/);
  });
}

test('rejects a response with HTTP/2.0 as an unsupported version', () => {
  const error = expectHeadError(RESPONSE, 'HTTP/2.0 101 OK\r\n\r\n');
  assert.equal(error.code, 'SWITCHYARD_ERR_HANDSHAKE_MALFORMED');
  assert.match(error.message, /HTTP\/2\.0 is not supported/);
  assert.equal(error.status, undefined);
});

test('rejects a too-large response head without an HTTP status to answer', () => {
  const error = expectHeadError(
    { kind: 'response', maxHeaderBytes: 64 },
    'HTTP/1.1 101 OK\r\nX: ' + 'a'.repeat(100) + '\r\n\r\n',
  );
  assert.equal(error.code, 'SWITCHYARD_ERR_HANDSHAKE_HEADERS_TOO_LARGE');
  assert.equal(error.status, undefined);
});

// --- work (how fast it runs is measured by `npm run bench`, bench/micro.ts) ---------------

test('parses a 16 KB head fed one byte at a time with a bounded number of byte visits', () => {
  const input = headWithFields(100).replace(
    /: (\d+)/g,
    (_, n: string) => ': ' + n.padStart(140, '0'),
  );
  assert.ok(input.length > 14_000 && input.length <= 16384, String(input.length));
  let outcome: ReturnType<typeof feedHead> | undefined;
  // A parser that looked for the end of the head from the start of its buffer on every chunk
  // would examine about n²/2 bytes here (10^8); a resumable one examines each a few times.
  const work = countWork(() => (outcome = feedHead(REQUEST, input, 'byte by byte')));
  assert.ok(outcome?.result?.ok);
  assert.ok(work.total <= 8 * input.length, `${work.total} visits for ${input.length} bytes`);
});
