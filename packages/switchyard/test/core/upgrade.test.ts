import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeLatin1,
  formatHeaderFields,
  formatResponse,
  formatSwitchingProtocols,
  formatUpgradeRequired,
  isHttp11OrNewer,
  negotiateUpgrade,
  reasonPhrase,
} from '../../src/core/upgrade.js';
import type { OutgoingHeaders, UpgradeRequest } from '../../src/core/upgrade.js';
import { HttpHeadParser } from '../../src/core/http-head.js';
import { LocalProtocolError } from '../../src/core/errors.js';
import { expectHead, latin1Bytes, latin1Text } from '../helpers/http-feed.js';

function request(
  headers: Record<string, string | string[] | undefined>,
  httpVersion = '1.1',
): UpgradeRequest {
  return { method: 'GET', httpVersion, url: '/', headers };
}

const UPGRADE = { connection: 'Upgrade' };

function throwsInvalidArgument(fn: () => unknown, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof LocalProtocolError, String(e));
    assert.equal(e.code, 'SWITCHYARD_ERR_INVALID_ARGUMENT');
    if (message) assert.match(e.message, message);
    return true;
  });
}

// --- isHttp11OrNewer --------------------------------------------------------------------

const VERSIONS: Array<[string, boolean]> = [
  ['1.1', true],
  ['1.2', true],
  ['2.0', true],
  ['3.0', true],
  ['10.0', true],
  ['1.0', false],
  ['0.9', false],
  ['', false],
  ['1', false],
  ['1.', false],
  ['.1', false],
  ['a.b', false],
  ['1.1.1', false],
  ['1,1', false],
];

for (const [version, expected] of VERSIONS) {
  test(`isHttp11OrNewer(${JSON.stringify(version)}) is ${expected}`, () => {
    assert.equal(isHttp11OrNewer(version), expected);
  });
}

// --- negotiateUpgrade -------------------------------------------------------------------

test('switches to websocket when the client asks for it with Connection: Upgrade', () => {
  assert.deepEqual(negotiateUpgrade(request({ upgrade: 'websocket', ...UPGRADE }), ['websocket']), {
    protocol: 'websocket',
    offered: [{ name: 'websocket' }],
  });
});

test("picks the first protocol in the client's order that the server supports (RFC 9110 §7.8)", () => {
  const req = request({ upgrade: 'foo, h2c, websocket', ...UPGRADE });
  assert.equal(negotiateUpgrade(req, ['websocket', 'h2c']).protocol, 'h2c');
  assert.equal(negotiateUpgrade(req, ['websocket']).protocol, 'websocket');
});

test('compares protocol names case-insensitively, on both sides', () => {
  const req = request({ upgrade: 'WebSocket', connection: 'keep-alive, UPGRADE' });
  assert.equal(negotiateUpgrade(req, ['websocket']).protocol, 'websocket');
  assert.equal(negotiateUpgrade(req, ['WEBSOCKET']).protocol, 'websocket');
});

test('a supported name matches any version, and name/version matches exactly that version', () => {
  const req = request({ upgrade: 'HTTP/2.0, RTA/x11', ...UPGRADE });
  assert.deepEqual(negotiateUpgrade(req, ['http']), {
    protocol: 'http',
    version: '2.0',
    offered: [
      { name: 'http', version: '2.0' },
      { name: 'rta', version: 'x11' },
    ],
  });
  assert.equal(negotiateUpgrade(req, ['http/2.0']).protocol, 'http');
  assert.equal(negotiateUpgrade(req, ['http/2.1']).protocol, null);
  // Versions are not names: they compare exactly.
  assert.equal(negotiateUpgrade(req, ['rta/X11']).protocol, null);
  assert.equal(negotiateUpgrade(req, ['rta/x11']).protocol, 'rta');
});

test('a versioned supported entry does not match an offer without a version', () => {
  const req = request({ upgrade: 'websocket', ...UPGRADE });
  assert.equal(negotiateUpgrade(req, ['websocket/13']).protocol, null);
});

test('reports not-requested when there is no Upgrade field', () => {
  assert.deepEqual(negotiateUpgrade(request({ ...UPGRADE }), ['websocket']), {
    protocol: null,
    reason: 'not-requested',
    offered: [],
  });
});

test('ignores an Upgrade whose Connection does not list upgrade (RFC 9110 §7.8)', () => {
  for (const connection of [undefined, 'keep-alive', 'close, keep-alive', '']) {
    const result = negotiateUpgrade(request({ upgrade: 'websocket', connection }), ['websocket']);
    assert.deepEqual(result, {
      protocol: null,
      reason: 'not-requested',
      offered: [{ name: 'websocket' }],
    });
  }
});

test('treats an Upgrade field with no protocols as not-requested', () => {
  const result = negotiateUpgrade(request({ upgrade: ' , ', ...UPGRADE }), ['websocket']);
  assert.deepEqual(result, { protocol: null, reason: 'not-requested', offered: [] });
});

test('ignores Upgrade in an HTTP/1.0 request (RFC 9110 §7.8)', () => {
  assert.deepEqual(
    negotiateUpgrade(request({ upgrade: 'websocket', ...UPGRADE }, '1.0'), ['websocket']),
    {
      protocol: null,
      reason: 'http-version',
      offered: [{ name: 'websocket' }],
    },
  );
  const malformed = negotiateUpgrade(request({ upgrade: 'web socket', ...UPGRADE }, '1.0'), [
    'websocket',
  ]);
  assert.deepEqual(malformed, { protocol: null, reason: 'http-version', offered: [] });
});

test('reports malformed for an Upgrade or Connection that is not a valid list', () => {
  assert.deepEqual(
    negotiateUpgrade(request({ upgrade: 'websocket/', ...UPGRADE }), ['websocket']),
    {
      protocol: null,
      reason: 'malformed',
      offered: [],
    },
  );
  assert.deepEqual(
    negotiateUpgrade(request({ upgrade: 'websocket', connection: 'up grade' }), ['websocket']),
    { protocol: null, reason: 'malformed', offered: [{ name: 'websocket' }] },
  );
});

test('reports unsupported when no offered protocol is supported', () => {
  const result = negotiateUpgrade(request({ upgrade: 'h2c', ...UPGRADE }), ['websocket']);
  assert.deepEqual(result, { protocol: null, reason: 'unsupported', offered: [{ name: 'h2c' }] });
  assert.equal(negotiateUpgrade(request({ upgrade: 'h2c', ...UPGRADE }), []).protocol, null);
});

test('reads Upgrade and Connection given as arrays of field lines', () => {
  const req = request({ upgrade: ['foo', 'websocket'], connection: ['keep-alive', 'Upgrade'] });
  assert.equal(negotiateUpgrade(req, ['websocket']).protocol, 'websocket');
});

test('accepts a request head from HttpHeadParser as an UpgradeRequest', () => {
  const head = expectHead(
    { kind: 'request' },
    'GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  );
  assert.equal(negotiateUpgrade(head, ['websocket']).protocol, 'websocket');
});

for (const entry of ['', 'web socket', 'websocket/', '/1', 'a,b', 'a/b/c', ' websocket']) {
  test(`throws SWITCHYARD_ERR_INVALID_ARGUMENT for the supported entry ${JSON.stringify(entry)}`, () => {
    throwsInvalidArgument(() =>
      negotiateUpgrade(request({ upgrade: 'websocket', ...UPGRADE }), [entry]),
    );
  });
}

// --- formatSwitchingProtocols -----------------------------------------------------------

test('writes the 101 head with Upgrade and Connection: Upgrade (RFC 9110 §7.8)', () => {
  assert.equal(
    formatSwitchingProtocols('websocket'),
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n',
  );
});

test('writes extra fields after Connection, one line per array element', () => {
  const text = formatSwitchingProtocols('h2c', {
    'X-A': '1',
    'Set-Cookie': ['a=1', 'b=2'],
    'X-Tab': 'a\tb',
  });
  assert.equal(
    text,
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n' +
      'X-A: 1\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Tab: a\tb\r\n\r\n',
  );
  const head = expectHead({ kind: 'response' }, text);
  assert.equal(head.statusCode, 101);
  assert.deepEqual(head.headers['set-cookie'], ['a=1', 'b=2']);
});

test('writes a protocol with a version', () => {
  assert.match(formatSwitchingProtocols('foo/1.2'), /\r\nUpgrade: foo\/1\.2\r\n/);
});

for (const protocol of ['', 'web socket', 'a,b', 'a/', 'a\r\nX: 1', ' websocket']) {
  test(`formatSwitchingProtocols throws for the protocol ${JSON.stringify(protocol)}`, () => {
    throwsInvalidArgument(() => formatSwitchingProtocols(protocol));
  });
}

for (const name of ['Upgrade', 'connection', 'Content-Length', 'TRANSFER-ENCODING']) {
  test(`formatSwitchingProtocols throws when extra fields set ${name}`, () => {
    throwsInvalidArgument(
      () => formatSwitchingProtocols('websocket', { [name]: 'x' }),
      /cannot be set/,
    );
  });
}

// Response splitting: a CR or LF from user code must never reach the wire.
const BAD_FIELDS: Array<[string, OutgoingHeaders]> = [
  ['CRLF in a value', { 'X-A': 'a\r\nX-Evil: 1' }],
  ['a bare LF in a value', { 'X-A': 'a\nb' }],
  ['a bare CR in a value', { 'X-A': 'a\rb' }],
  ['NUL in a value', { 'X-A': 'a\0b' }],
  ['DEL in a value', { 'X-A': 'a\x7fb' }],
  ['a char above 0xff in a value', { 'X-A': '\u20ac' }],
  ['CRLF in one element of an array value', { 'X-A': ['ok', 'a\r\n'] }],
  ['a colon in a name', { 'X-A: b\r\nX-B': 'c' }],
  ['a space in a name', { 'X A': 'b' }],
  ['an empty name', { '': 'b' }],
  ['a non-string value', { 'X-A': 42 as unknown as string }],
  ['a non-string array element', { 'X-A': [42 as unknown as string] }],
];

for (const [what, headers] of BAD_FIELDS) {
  test(`throws SWITCHYARD_ERR_INVALID_ARGUMENT for a header with ${what}`, () => {
    throwsInvalidArgument(() => formatSwitchingProtocols('websocket', headers));
    throwsInvalidArgument(() => formatResponse(400, undefined, headers, ''));
  });
}

test('allows obs-text and empty values in fields it writes', () => {
  assert.equal(
    formatHeaderFields({ 'X-A': 'caf\u00e9', 'X-B': '' }),
    'X-A: caf\u00e9\r\nX-B: \r\n',
  );
  assert.equal(formatHeaderFields(undefined), '');
});

// --- formatResponse ---------------------------------------------------------------------

test('writes a whole response with Content-Type, Content-Length in UTF-8 bytes and Connection: close', () => {
  const bytes = formatResponse(400, undefined, { 'X-Reason': 'key' }, 'Bad key \u00e9\n');
  assert.equal(
    new TextDecoder().decode(bytes),
    'HTTP/1.1 400 Bad Request\r\nX-Reason: key\r\nContent-Type: text/plain; charset=utf-8\r\n' +
      'Content-Length: 11\r\nConnection: close\r\n\r\nBad key \u00e9\n',
  );
});

test('a response it writes parses back, with the body as rest', () => {
  const bytes = formatResponse(403, 'Go Away', { 'Set-Cookie': ['a=1', 'b=2'] }, 'no');
  const result = new HttpHeadParser({ kind: 'response' }).push(bytes);
  assert.ok(result?.ok);
  assert.equal(result.head.statusCode, 403);
  assert.equal(result.head.statusText, 'Go Away');
  assert.equal(result.head.headers['content-length'], '2');
  assert.deepEqual(result.head.headers['set-cookie'], ['a=1', 'b=2']);
  assert.equal(latin1Text(result.rest), 'no');
});

test('writes a byte body as is, without a Content-Type', () => {
  const bytes = formatResponse(200, undefined, {}, new Uint8Array([0, 255]));
  const text = latin1Text(bytes);
  assert.equal(text, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n\x00\xff');
});

test("uses the caller's Content-Type instead of text/plain", () => {
  const text = latin1Text(
    formatResponse(200, undefined, { 'content-type': 'application/json' }, '{}'),
  );
  assert.match(text, /\r\ncontent-type: application\/json\r\n/);
  assert.doesNotMatch(text, /text\/plain/);
});

test('appends close to a Connection the caller gives, unless it lists close already', () => {
  const connectionOf = (value: string | string[]): string =>
    /\r\nConnection: ([^\r]*)\r\n/.exec(
      latin1Text(formatResponse(426, undefined, { Connection: value }, '')),
    )![1];
  assert.equal(connectionOf('Upgrade'), 'Upgrade, close');
  assert.equal(connectionOf('close'), 'close');
  assert.equal(connectionOf('Upgrade, Close'), 'Upgrade, Close');
  assert.equal(connectionOf(['Upgrade', 'keep-alive']), 'Upgrade, keep-alive, close');
  throwsInvalidArgument(() => formatResponse(400, undefined, { Connection: 'up grade' }, ''));
  throwsInvalidArgument(() => formatResponse(400, undefined, { Connection: '' }, ''));
  throwsInvalidArgument(() =>
    formatResponse(400, undefined, { Connection: 7 as unknown as string }, ''),
  );
});

test('writes an empty reason phrase for a status it has no phrase for', () => {
  assert.match(latin1Text(formatResponse(299, undefined, {}, '')), /^HTTP\/1\.1 299 \r\n/);
  assert.match(latin1Text(formatResponse(404, '', {}, '')), /^HTTP\/1\.1 404 \r\n/);
});

for (const status of [99, 101, 199, 600, 200.5, Number.NaN]) {
  test(`formatResponse throws for status ${status}`, () => {
    throwsInvalidArgument(() => formatResponse(status, undefined, {}, ''));
  });
}

test('formatResponse throws for a reason phrase with CRLF', () => {
  throwsInvalidArgument(() => formatResponse(400, 'Bad\r\nX-Evil: 1', {}, ''));
});

test('formatResponse throws when the caller sets Content-Length or Transfer-Encoding', () => {
  throwsInvalidArgument(
    () => formatResponse(400, undefined, { 'Content-Length': '5' }, ''),
    /computed/,
  );
  throwsInvalidArgument(() =>
    formatResponse(400, undefined, { 'transfer-encoding': 'chunked' }, ''),
  );
});

test('reasonPhrase gives the RFC 9110 §15 phrase, or an empty string', () => {
  assert.equal(reasonPhrase(426), 'Upgrade Required');
  assert.equal(reasonPhrase(431), 'Request Header Fields Too Large');
  assert.equal(reasonPhrase(299), '');
});

// --- formatUpgradeRequired --------------------------------------------------------------

test('writes a 426 with Upgrade and Connection: Upgrade, close (RFC 9110 §15.5.22)', () => {
  const result = new HttpHeadParser({ kind: 'response' }).push(
    formatUpgradeRequired(['websocket']),
  );
  assert.ok(result?.ok);
  assert.equal(result.head.statusCode, 426);
  assert.equal(result.head.statusText, 'Upgrade Required');
  assert.equal(result.head.headers['upgrade'], 'websocket');
  assert.equal(result.head.headers['connection'], 'Upgrade, close');
  assert.equal(
    new TextDecoder().decode(result.rest),
    'This endpoint requires an upgrade to: websocket.\n',
  );
});

test('lists several protocols in preference order and takes a custom body', () => {
  const text = latin1Text(formatUpgradeRequired(['websocket', 'h2c/1'], new Uint8Array([0x21])));
  assert.match(text, /\r\nUpgrade: websocket, h2c\/1\r\n/);
  assert.ok(text.endsWith('\r\n\r\n!'));
});

test('formatUpgradeRequired throws for no protocols or an invalid one', () => {
  throwsInvalidArgument(() => formatUpgradeRequired([]));
  throwsInvalidArgument(() => formatUpgradeRequired(['web socket']));
});

test('encodeLatin1 writes one byte per char', () => {
  assert.deepEqual([...encodeLatin1('a\u00e9\u00ff')], [0x61, 0xe9, 0xff]);
  assert.deepEqual(encodeLatin1('GET'), latin1Bytes('GET'));
});
