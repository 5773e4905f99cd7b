import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WEBSOCKET_VERSION,
  formatAcceptResponse,
  formatClientRequest,
  generateKey,
  selectSubprotocol,
  validateServerResponse,
  validateUpgradeRequest,
} from '../../src/core/handshake.js';
import type {
  ClientOffer,
  ClientRequestOptions,
  UpgradeResponse,
  ValidateUpgradeOptions,
} from '../../src/core/handshake.js';
import type { UpgradeRequest } from '../../src/core/upgrade.js';
import { decodeBase64, encodeBase64 } from '../../src/core/sha1.js';
import {
  LocalProtocolError,
  RemoteProtocolError,
  UnexpectedResponseError,
} from '../../src/core/errors.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { HttpHeadParser } from '../../src/core/http-head.js';
import { expectHead, latin1Text } from '../helpers/http-feed.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

// --- building requests ------------------------------------------------------------------

const DEFAULT_FIELDS: ReadonlyArray<[string, string]> = [
  ['Host', 'server.example.com'],
  ['Upgrade', 'websocket'],
  ['Connection', 'Upgrade'],
  ['Sec-WebSocket-Key', KEY],
  ['Sec-WebSocket-Version', '13'],
];

/**
 * A request head: the defaults, with `changes` applied (a string replaces a field's value,
 * null removes it), then `extra` field lines appended as they are.
 */
function requestText(
  changes: Record<string, string | null> = {},
  extra: string[] = [],
  requestLine = 'GET /chat HTTP/1.1',
): string {
  let text = requestLine + '\r\n';
  for (const [name, value] of DEFAULT_FIELDS) {
    const change = changes[name];
    if (change === null) continue;
    text += `${name}: ${change ?? value}\r\n`;
  }
  for (const [name, value] of Object.entries(changes)) {
    if (value !== null && !DEFAULT_FIELDS.some(([n]) => n === name))
      text += `${name}: ${value}\r\n`;
  }
  for (const line of extra) text += line + '\r\n';
  return text + '\r\n';
}

/** Parses `text` three ways (whole, byte by byte, with trailing bytes), then validates it. */
function validate(text: string, options?: ValidateUpgradeOptions) {
  return validateUpgradeRequest(expectHead({ kind: 'request' }, text), options);
}

function expectRejection(
  result: ReturnType<typeof validateUpgradeRequest>,
  code: ErrorCode,
  status: number,
  message?: RegExp,
): RemoteProtocolError {
  if (result.ok) assert.fail(`expected ${code}, but the request was accepted`);
  assert.ok(result.error instanceof RemoteProtocolError);
  assert.equal(result.error.code, code, result.error.message);
  assert.equal(result.error.status, status);
  if (message) assert.match(result.error.message, message);
  return result.error;
}

// --- validateUpgradeRequest: accepted ---------------------------------------------------

test('accepts the RFC 6455 §1.2 handshake request', () => {
  const result = validate(
    requestText({ Origin: 'http://example.com', 'Sec-WebSocket-Protocol': 'chat, superchat' }),
  );
  assert.deepEqual(result, {
    ok: true,
    key: KEY,
    protocols: ['chat', 'superchat'],
    extensions: [],
    origin: 'http://example.com',
    version: 13,
  });
  assert.equal(WEBSOCKET_VERSION, 13);
});

test('accepts Upgrade and Connection in any case, among other values (Firefox sends keep-alive, Upgrade)', () => {
  const result = validate(requestText({ Upgrade: 'WebSocket', Connection: 'keep-alive, Upgrade' }));
  assert.equal(result.ok, true);
  assert.equal(
    validate(requestText({ Upgrade: 'foo, websocket', Connection: 'upgrade' })).ok,
    true,
  );
});

test('accepts a browser offer of permessage-deflate and returns it parsed', () => {
  const result = validate(
    requestText({ 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' }),
  );
  assert.ok(result.ok);
  assert.deepEqual(result.extensions, [
    { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
  ]);
});

test('reads subprotocols and extensions spread over several field lines', () => {
  const result = validate(
    requestText({}, [
      'Sec-WebSocket-Protocol: chat',
      'Sec-WebSocket-Protocol: superchat',
      'Sec-WebSocket-Extensions: a',
      'Sec-WebSocket-Extensions: b; x=1',
    ]),
  );
  assert.ok(result.ok);
  assert.deepEqual(result.protocols, ['chat', 'superchat']);
  assert.deepEqual(
    result.extensions.map((e) => e.name),
    ['a', 'b'],
  );
});

test('accepts a request with no Origin, and reports origin as undefined', () => {
  const result = validate(requestText());
  assert.ok(result.ok);
  assert.equal(result.origin, undefined);
});

test('accepts an Node-style request object, HTTP/2.0 counting as newer than 1.1', () => {
  const req: UpgradeRequest = {
    method: 'GET',
    httpVersion: '2.0',
    url: '/',
    headers: {
      host: 'a',
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-key': KEY,
      'sec-websocket-version': '13',
      'sec-websocket-protocol': undefined,
    },
  };
  assert.equal(validateUpgradeRequest(req).ok, true);
});

// --- validateUpgradeRequest: rejected ---------------------------------------------------

for (const method of ['POST', 'HEAD', 'get', 'CONNECT']) {
  test(`rejects the method ${method} with 405 and Allow: GET (RFC 6455 §4.1)`, () => {
    const error = expectRejection(
      validate(requestText({}, [], `${method} /chat HTTP/1.1`)),
      'SWITCHYARD_ERR_HANDSHAKE_METHOD',
      405,
      new RegExp(`not ${method}`),
    );
    assert.deepEqual(error.headers, { Allow: 'GET' });
  });
}

test('rejects an HTTP/1.0 request with 400 (RFC 6455 §4.1: at least 1.1)', () => {
  expectRejection(
    validate(requestText({}, [], 'GET /chat HTTP/1.0')),
    'SWITCHYARD_ERR_HANDSHAKE_HTTP_VERSION',
    400,
    /HTTP\/1\.0/,
  );
});

test('rejects a request without Host with 400', () => {
  expectRejection(
    validate(requestText({ Host: null })),
    'SWITCHYARD_ERR_HANDSHAKE_HOST',
    400,
    /no Host/,
  );
});

test('rejects a request with an empty Host with 400', () => {
  expectRejection(
    validate(requestText({ Host: '' })),
    'SWITCHYARD_ERR_HANDSHAKE_HOST',
    400,
    /no Host/,
  );
});

test('rejects a request object with two Host values with 400', () => {
  const head = expectHead({ kind: 'request' }, requestText());
  const req = { ...head, headers: { ...head.headers, host: ['a', 'b'] } };
  expectRejection(
    validateUpgradeRequest(req),
    'SWITCHYARD_ERR_HANDSHAKE_HOST',
    400,
    /more than one Host/,
  );
});

test('answers a plain GET (no Upgrade, no Connection) with 426 and Upgrade: websocket', () => {
  const error = expectRejection(
    validate(
      requestText({
        Upgrade: null,
        Connection: null,
        'Sec-WebSocket-Key': null,
        'Sec-WebSocket-Version': null,
      }),
    ),
    'SWITCHYARD_ERR_UPGRADE_REQUIRED',
    426,
    /Upgrade: websocket/,
  );
  assert.deepEqual(error.headers, { Upgrade: 'websocket', Connection: 'Upgrade' });
});

test('answers a request without Upgrade but with the other WebSocket fields with 426', () => {
  expectRejection(validate(requestText({ Upgrade: null })), 'SWITCHYARD_ERR_UPGRADE_REQUIRED', 426);
});

for (const upgrade of ['h2c', 'websocket/13', 'websockets', '']) {
  test(`rejects Upgrade: ${JSON.stringify(upgrade)} with 400 (RFC 6455 §4.2.1: must list websocket)`, () => {
    expectRejection(
      validate(requestText({ Upgrade: upgrade })),
      'SWITCHYARD_ERR_HANDSHAKE_UPGRADE',
      400,
      /does not list websocket/,
    );
  });
}

test('rejects a malformed Upgrade with 400', () => {
  expectRejection(
    validate(requestText({ Upgrade: 'web socket' })),
    'SWITCHYARD_ERR_HANDSHAKE_UPGRADE',
    400,
    /not a valid list/,
  );
});

for (const [what, connection] of [
  ['no Connection', null],
  ['Connection: keep-alive', 'keep-alive'],
  ['Connection: close', 'close'],
  ['Connection: Upgrade-Insecure', 'Upgrade-Insecure'],
] as const) {
  test(`rejects ${what} with 400 (RFC 6455 §4.2.1: must list upgrade)`, () => {
    expectRejection(
      validate(requestText({ Connection: connection })),
      'SWITCHYARD_ERR_HANDSHAKE_CONNECTION',
      400,
      /does not list upgrade/,
    );
  });
}

test('rejects a malformed Connection with 400', () => {
  expectRejection(
    validate(requestText({ Connection: 'up grade' })),
    'SWITCHYARD_ERR_HANDSHAKE_CONNECTION',
    400,
    /not a valid list/,
  );
});

test('rejects a request without Sec-WebSocket-Key with 400', () => {
  expectRejection(
    validate(requestText({ 'Sec-WebSocket-Key': null })),
    'SWITCHYARD_ERR_HANDSHAKE_KEY',
    400,
    /no Sec-WebSocket-Key/,
  );
});

const bytesKey = (n: number): string => encodeBase64(new Uint8Array(n).fill(7));

for (const n of [0, 1, 15, 17, 32]) {
  test(`rejects a Sec-WebSocket-Key that decodes to ${n} bytes with 400`, () => {
    expectRejection(
      validate(requestText({ 'Sec-WebSocket-Key': bytesKey(n) })),
      'SWITCHYARD_ERR_HANDSHAKE_KEY',
      400,
      new RegExp(`decodes to ${n} bytes`),
    );
  });
}

for (const key of [
  'dGhlIHNhbXBsZSBub25jZQ',
  'dGhlIHNhbXBsZSBub25jZQ=',
  'dGhlIHNhbXBsZSBub25jZR==',
  'dGhlIHNhbXBsZSBub25jZQ-=',
  'dGhlIHNhbXBs ZSBub25jZQ==',
  '!!!!!!!!!!!!!!!!!!!!!!==',
]) {
  test(`rejects the Sec-WebSocket-Key ${JSON.stringify(key)}, which is not strict base64, with 400`, () => {
    expectRejection(
      validate(requestText({ 'Sec-WebSocket-Key': key })),
      'SWITCHYARD_ERR_HANDSHAKE_KEY',
      400,
      /not valid base64/,
    );
  });
}

test('rejects two Sec-WebSocket-Key fields with 400 (RFC 6455 §11.3.1)', () => {
  expectRejection(
    validate(requestText({}, [`Sec-WebSocket-Key: ${KEY}`])),
    'SWITCHYARD_ERR_HANDSHAKE_KEY',
    400,
    /more than one Sec-WebSocket-Key/,
  );
  const head = expectHead({ kind: 'request' }, requestText());
  const req = { ...head, headers: { ...head.headers, 'sec-websocket-key': [KEY, KEY] } };
  expectRejection(
    validateUpgradeRequest(req),
    'SWITCHYARD_ERR_HANDSHAKE_KEY',
    400,
    /more than one/,
  );
});

for (const [what, version] of [
  ['a missing Sec-WebSocket-Version', null],
  ['Sec-WebSocket-Version: 8', '8'],
  ['Sec-WebSocket-Version: 13, 8', '13, 8'],
  ['Sec-WebSocket-Version: 013', '013'],
  ['Sec-WebSocket-Version: 14', '14'],
  ['an empty Sec-WebSocket-Version', ''],
] as const) {
  test(`answers ${what} with 426 and Sec-WebSocket-Version: 13 (RFC 6455 §4.4)`, () => {
    const error = expectRejection(
      validate(requestText({ 'Sec-WebSocket-Version': version })),
      'SWITCHYARD_ERR_HANDSHAKE_VERSION',
      426,
      /version 13/,
    );
    assert.deepEqual(error.headers, {
      'Sec-WebSocket-Version': '13',
      Upgrade: 'websocket',
      Connection: 'Upgrade',
    });
  });
}

test('rejects an origin the policy refuses with 403, naming it', () => {
  const seen: Array<string | undefined> = [];
  const origin = (o: string | undefined): boolean => {
    seen.push(o);
    return o === 'https://good.example';
  };
  expectRejection(
    validate(requestText({ Origin: 'https://evil.example' }), { origin }),
    'SWITCHYARD_ERR_HANDSHAKE_ORIGIN',
    403,
    /"https:\/\/evil\.example" is not allowed/,
  );
  assert.equal(validate(requestText({ Origin: 'https://good.example' }), { origin }).ok, true);
  expectRejection(
    validate(requestText(), { origin }),
    'SWITCHYARD_ERR_HANDSHAKE_ORIGIN',
    403,
    /Origin header/,
  );
  assert.deepEqual(seen.slice(-1), [undefined]);
});

for (const value of ['chat, chat', 'chat superchat', 'chat;q=1', '"chat"', '']) {
  test(`rejects Sec-WebSocket-Protocol: ${JSON.stringify(value)} with 400`, () => {
    expectRejection(
      validate(requestText({ 'Sec-WebSocket-Protocol': value })),
      'SWITCHYARD_ERR_HANDSHAKE_PROTOCOL',
      400,
      /unique tokens/,
    );
  });
}

for (const value of ['permessage-deflate;', 'x; a="b c"', 'x y', '', ' , ']) {
  test(`rejects Sec-WebSocket-Extensions: ${JSON.stringify(value)} with 400`, () => {
    expectRejection(
      validate(requestText({ 'Sec-WebSocket-Extensions': value })),
      'SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS',
      400,
      /malformed/,
    );
  });
}

test('checks in the documented order, reporting the first problem', () => {
  // Everything wrong at once; fixing one problem at a time must reveal the next in order.
  const steps: Array<[ErrorCode, Record<string, string | null>, string]> = [
    ['SWITCHYARD_ERR_HANDSHAKE_METHOD', {}, 'POST / HTTP/1.0'],
    ['SWITCHYARD_ERR_HANDSHAKE_HTTP_VERSION', {}, 'GET / HTTP/1.0'],
    ['SWITCHYARD_ERR_HANDSHAKE_HOST', {}, 'GET / HTTP/1.1'],
    ['SWITCHYARD_ERR_UPGRADE_REQUIRED', { Host: 'a' }, 'GET / HTTP/1.1'],
    ['SWITCHYARD_ERR_HANDSHAKE_UPGRADE', { Host: 'a', Upgrade: 'h2c' }, 'GET / HTTP/1.1'],
    ['SWITCHYARD_ERR_HANDSHAKE_CONNECTION', { Host: 'a' }, 'GET / HTTP/1.1'],
    ['SWITCHYARD_ERR_HANDSHAKE_KEY', { Host: 'a', Connection: 'Upgrade' }, 'GET / HTTP/1.1'],
    [
      'SWITCHYARD_ERR_HANDSHAKE_VERSION',
      { Host: 'a', Connection: 'Upgrade', 'Sec-WebSocket-Key': KEY },
      'GET / HTTP/1.1',
    ],
    ['SWITCHYARD_ERR_HANDSHAKE_ORIGIN', { 'Sec-WebSocket-Version': '13' }, 'GET / HTTP/1.1'],
    ['SWITCHYARD_ERR_HANDSHAKE_PROTOCOL', { Origin: 'ok' }, 'GET / HTTP/1.1'],
    ['SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS', { 'Sec-WebSocket-Protocol': 'chat' }, 'GET / HTTP/1.1'],
  ];
  const fields: Record<string, string | null> = {
    Upgrade: null,
    Connection: 'close',
    'Sec-WebSocket-Key': 'short',
    'Sec-WebSocket-Version': '8',
    Origin: 'bad',
    'Sec-WebSocket-Protocol': 'a, a',
    'Sec-WebSocket-Extensions': ';',
    Host: null,
  };
  const options = { origin: (o: string | undefined) => o === 'ok' };
  for (const [code, fix, line] of steps) {
    Object.assign(fields, fix);
    if (code === 'SWITCHYARD_ERR_HANDSHAKE_CONNECTION') fields['Upgrade'] = 'websocket';
    const result = validate(requestText(fields, [], line), options);
    assert.equal(result.ok ? 'accepted' : result.error.code, code);
  }
  fields['Sec-WebSocket-Extensions'] = 'permessage-deflate';
  assert.equal(validate(requestText(fields), options).ok, true);
});

// --- selectSubprotocol ------------------------------------------------------------------

test("selects by the server's preference when given a list", () => {
  assert.equal(selectSubprotocol(['chat.v1', 'chat.v2'], ['chat.v2', 'chat.v1']), 'chat.v2');
  assert.equal(selectSubprotocol(['chat.v1', 'chat.v2'], ['chat.v3', 'chat.v1']), 'chat.v1');
});

test('selects nothing when no offered subprotocol is supported, or none was offered', () => {
  assert.equal(selectSubprotocol(['a'], ['b']), null);
  assert.equal(selectSubprotocol([], ['b']), null);
  assert.equal(selectSubprotocol(['a'], []), null);
});

test('compares subprotocols case-sensitively (RFC 6455 §11.5)', () => {
  assert.equal(selectSubprotocol(['Chat'], ['chat']), null);
});

test('lets a callback choose among the offered subprotocols, given a copy', () => {
  const offered = ['a', 'b'];
  assert.equal(
    selectSubprotocol(offered, (list) => {
      assert.deepEqual(list, ['a', 'b']);
      list.pop();
      return 'b';
    }),
    'b',
  );
  assert.deepEqual(offered, ['a', 'b']);
  assert.equal(
    selectSubprotocol(offered, () => null),
    null,
  );
  assert.equal(
    selectSubprotocol(offered, () => undefined),
    null,
  );
});

for (const chosen of ['c', 'A', '']) {
  test(`throws when the callback chooses ${JSON.stringify(chosen)}, which was not offered (RFC 6455 §4.2.2)`, () => {
    assert.throws(
      () => selectSubprotocol(['a', 'b'], () => chosen),
      (e: unknown) =>
        e instanceof LocalProtocolError &&
        e.code === 'SWITCHYARD_ERR_INVALID_ARGUMENT' &&
        /did not offer \(offered: a, b\)/.test(e.message),
    );
  });
}

test('throws when the callback chooses a subprotocol though none was offered', () => {
  assert.throws(() => selectSubprotocol([], () => 'a'), /offered: none/);
});

// --- formatAcceptResponse ---------------------------------------------------------------

test('writes the RFC 6455 §1.3 handshake response', () => {
  assert.equal(
    latin1Text(formatAcceptResponse({ key: KEY, protocol: 'chat' })),
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${ACCEPT}\r\nSec-WebSocket-Protocol: chat\r\n\r\n`,
  );
});

test('writes extensions and extra fields after the handshake fields, and omits empty ones', () => {
  assert.equal(
    latin1Text(
      formatAcceptResponse({
        key: KEY,
        protocol: null,
        extensions: 'permessage-deflate; server_no_context_takeover',
        headers: { 'Set-Cookie': ['a=1', 'b=2'], 'X-Id': '7' },
      }),
    ),
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${ACCEPT}\r\n` +
      'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n' +
      'Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Id: 7\r\n\r\n',
  );
  assert.doesNotMatch(latin1Text(formatAcceptResponse({ key: KEY, extensions: '' })), /Extensions/);
});

function throwsInvalidArgument(fn: () => unknown, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof LocalProtocolError, String(e));
    assert.equal(e.code, 'SWITCHYARD_ERR_INVALID_ARGUMENT');
    if (message) assert.match(e.message, message);
    return true;
  });
}

test('formatAcceptResponse throws for a subprotocol that is not a token', () => {
  throwsInvalidArgument(() => formatAcceptResponse({ key: KEY, protocol: 'a b' }), /not a token/);
  throwsInvalidArgument(() => formatAcceptResponse({ key: KEY, protocol: '' }));
});

test('formatAcceptResponse throws for extensions with CRLF', () => {
  throwsInvalidArgument(() => formatAcceptResponse({ key: KEY, extensions: 'x\r\nX-Evil: 1' }));
});

for (const name of [
  'Upgrade',
  'connection',
  'Sec-WebSocket-Accept',
  'sec-websocket-protocol',
  'Sec-WebSocket-Extensions',
  'Sec-WebSocket-Version',
  'Content-Length',
  'Transfer-Encoding',
]) {
  test(`formatAcceptResponse throws when extra fields set ${name}`, () => {
    throwsInvalidArgument(
      () => formatAcceptResponse({ key: KEY, headers: { [name]: 'x' } }),
      /cannot be set/,
    );
  });
}

// --- generateKey ------------------------------------------------------------------------

test('generates keys that are base64 of 16 random bytes, different each time', () => {
  const keys = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const key = generateKey();
    assert.equal(key.length, 24);
    assert.equal(decodeBase64(key)?.length, 16);
    keys.add(key);
  }
  assert.equal(keys.size, 100);
});

// --- formatClientRequest ----------------------------------------------------------------

const CLIENT: ClientRequestOptions = { host: 'server.example.com', path: '/chat', key: KEY };

test('writes the RFC 6455 §4.1 client handshake', () => {
  assert.equal(
    latin1Text(formatClientRequest(CLIENT)),
    'GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n' +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
});

test('writes subprotocols, extensions, Origin and extra fields in that order', () => {
  const text = latin1Text(
    formatClientRequest({
      ...CLIENT,
      host: 'server.example.com:8080',
      path: '/chat?room=1',
      protocols: ['chat', 'superchat'],
      extensions: 'permessage-deflate; client_max_window_bits',
      origin: 'http://example.com',
      headers: { Authorization: 'Bearer x', 'X-Ids': ['1', '2'] },
    }),
  );
  assert.equal(
    text,
    'GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com:8080\r\nUpgrade: websocket\r\n' +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n` +
      'Sec-WebSocket-Protocol: chat, superchat\r\n' +
      'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n' +
      'Origin: http://example.com\r\nAuthorization: Bearer x\r\nX-Ids: 1\r\nX-Ids: 2\r\n\r\n',
  );
});

test('a request it writes passes validateUpgradeRequest', () => {
  const bytes = formatClientRequest({
    ...CLIENT,
    protocols: ['chat'],
    extensions: 'x; a=1',
    origin: 'o',
  });
  const result = validate(latin1Text(bytes));
  assert.ok(result.ok);
  assert.deepEqual(result.protocols, ['chat']);
  assert.deepEqual(result.extensions, [{ name: 'x', params: [['a', '1']] }]);
  assert.equal(result.origin, 'o');
});

test('omits empty subprotocol and extension lists', () => {
  const text = latin1Text(formatClientRequest({ ...CLIENT, protocols: [], extensions: '' }));
  assert.doesNotMatch(text, /Sec-WebSocket-Protocol|Sec-WebSocket-Extensions/);
});

const BAD_CLIENT_OPTIONS: Array<[string, Partial<ClientRequestOptions>, RegExp]> = [
  ['an empty host', { host: '' }, /Host/],
  ['a host with a space', { host: 'a b' }, /Host/],
  ['a host with CRLF', { host: 'a\r\nX: 1' }, /Host/],
  ['a non-ASCII host', { host: 'caf\u00e9.example' }, /Host/],
  ['a path without a leading slash', { path: 'chat' }, /Path/],
  ['an empty path', { path: '' }, /Path/],
  ['a path with a space', { path: '/a b' }, /Path/],
  ['a path with CRLF', { path: '/\r\nX: 1' }, /Path/],
  ['a non-ASCII path', { path: '/caf\u00e9' }, /Path/],
  ['a key of 15 bytes', { key: bytesKey(15) }, /16 bytes/],
  ['a key that is not base64', { key: 'not a key' }, /16 bytes/],
  ['a subprotocol that is not a token', { protocols: ['a b'] }, /not a token/],
  ['an empty subprotocol', { protocols: [''] }, /not a token/],
  ['a non-string subprotocol', { protocols: [1 as unknown as string] }, /not a token/],
  ['a repeated subprotocol (RFC 6455 §4.1)', { protocols: ['a', 'b', 'a'] }, /listed twice/],
  ['malformed extensions', { extensions: 'x;' }, /Extensions/],
  ['extensions that are only commas', { extensions: ',' }, /Extensions/],
  ['an origin with CRLF', { origin: 'o\r\nX: 1' }, /invalid character/],
  ['an extra field with CRLF', { headers: { 'X-A': 'a\r\nb' } }, /invalid character/],
];

for (const [what, change, message] of BAD_CLIENT_OPTIONS) {
  test(`formatClientRequest throws SWITCHYARD_ERR_INVALID_ARGUMENT for ${what}`, () => {
    throwsInvalidArgument(() => formatClientRequest({ ...CLIENT, ...change }), message);
  });
}

for (const name of [
  'Host',
  'upgrade',
  'Connection',
  'Sec-WebSocket-Key',
  'Sec-WebSocket-Version',
  'Sec-WebSocket-Accept',
  'Sec-WebSocket-Protocol',
  'Sec-WebSocket-Extensions',
  'Origin',
  'Content-Length',
  'Transfer-Encoding',
]) {
  test(`formatClientRequest throws when extra fields set ${name}`, () => {
    throwsInvalidArgument(
      () => formatClientRequest({ ...CLIENT, headers: { [name]: 'x' } }),
      /cannot be set/,
    );
  });
}

// --- validateServerResponse -------------------------------------------------------------

const OFFER: ClientOffer = {
  key: KEY,
  protocols: ['chat', 'superchat'],
  extensionsOffered: ['permessage-deflate'],
};

function responseText(
  fields: Record<string, string | null> = {},
  extra: string[] = [],
  statusLine = 'HTTP/1.1 101 Switching Protocols',
): string {
  const defaults: Record<string, string> = {
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Accept': ACCEPT,
  };
  let text = statusLine + '\r\n';
  for (const [name, value] of Object.entries({ ...defaults, ...fields })) {
    if (value !== null) text += `${name}: ${value}\r\n`;
  }
  for (const line of extra) text += line + '\r\n';
  return text + '\r\n';
}

/** Parses a response head three ways, then checks it against `offer`. */
function check(text: string, offer: ClientOffer = OFFER, body?: Uint8Array) {
  return validateServerResponse(expectHead({ kind: 'response' }, text), offer, body);
}

function expectFailure(
  result: ReturnType<typeof validateServerResponse>,
  code: ErrorCode,
  message?: RegExp,
): RemoteProtocolError {
  if (result.ok) assert.fail(`expected ${code}, but the response was accepted`);
  assert.ok(result.error instanceof RemoteProtocolError);
  assert.equal(result.error.code, code, result.error.message);
  if (message) assert.match(result.error.message, message);
  return result.error;
}

test('accepts the RFC 6455 §1.3 handshake response', () => {
  assert.deepEqual(check(responseText({ 'Sec-WebSocket-Protocol': 'chat' })), {
    ok: true,
    protocol: 'chat',
    extensions: [],
  });
});

test("accepts a response that chose no subprotocol or extension, as ''", () => {
  assert.deepEqual(check(responseText()), { ok: true, protocol: '', extensions: [] });
});

test('accepts Upgrade and Connection in any case', () => {
  assert.equal(
    check(responseText({ Upgrade: 'WebSocket', Connection: 'keep-alive, upgrade' })).ok,
    true,
  );
});

test('accepts an accepted extension that was offered, with its parameters', () => {
  const result = check(
    responseText({ 'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=10' }),
  );
  assert.ok(result.ok);
  assert.deepEqual(result.extensions, [
    { name: 'permessage-deflate', params: [['server_max_window_bits', '10']] },
  ]);
});

test('accepts a Sec-WebSocket-Accept with surrounding whitespace from a request object (RFC 6455 §4.1)', () => {
  const res: UpgradeResponse = {
    statusCode: 101,
    headers: {
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-accept': ` ${ACCEPT}\t`,
    },
  };
  assert.equal(validateServerResponse(res, OFFER).ok, true);
});

test('reports a non-101 answer as an UnexpectedResponseError with status, headers and body', () => {
  const body = new Uint8Array(2000).fill(0x78);
  const result = check(
    responseText(
      {
        Upgrade: null,
        Connection: null,
        'Sec-WebSocket-Accept': null,
        'Content-Type': 'text/plain',
      },
      ['Set-Cookie: a=1', 'Set-Cookie: b=2'],
      'HTTP/1.1 403 Forbidden',
    ),
    OFFER,
    body,
  );
  const error = expectFailure(
    result,
    'SWITCHYARD_ERR_HANDSHAKE_STATUS',
    /403 Forbidden instead of 101/,
  );
  assert.ok(error instanceof UnexpectedResponseError);
  assert.equal(error.statusCode, 403);
  assert.equal(error.status, 403);
  assert.equal(error.statusText, 'Forbidden');
  assert.deepEqual(
    { ...error.responseHeaders },
    { 'content-type': 'text/plain', 'set-cookie': 'a=1, b=2' },
  );
  assert.equal(error.body.length, 1024);
});

test('reports a non-101 answer without a body or reason phrase', () => {
  const res: UpgradeResponse = { statusCode: 200, headers: { 'x-a': 'b', 'x-b': undefined } };
  const error = expectFailure(
    validateServerResponse(res, OFFER),
    'SWITCHYARD_ERR_HANDSHAKE_STATUS',
    /answered 200 instead/,
  );
  assert.ok(error instanceof UnexpectedResponseError);
  assert.equal(error.statusText, '');
  assert.equal(error.body.length, 0);
  assert.deepEqual({ ...error.responseHeaders }, { 'x-a': 'b' });
});

for (const [what, upgrade, message] of [
  ['no Upgrade', null, /without an Upgrade/],
  ['Upgrade: h2c', 'h2c', /"h2c", not websocket/],
  ['Upgrade: websocket, h2c', 'websocket, h2c', /not websocket/],
  ['Upgrade: websocket/13', 'websocket/13', /not websocket/],
  ['a malformed Upgrade', 'web socket', /not websocket/],
] as const) {
  test(`fails a 101 with ${what} (RFC 6455 §4.1)`, () => {
    const error = expectFailure(
      check(responseText({ Upgrade: upgrade })),
      'SWITCHYARD_ERR_HANDSHAKE_UPGRADE',
      message,
    );
    assert.equal(error.status, undefined);
  });
}

for (const [what, connection] of [
  ['no Connection', null],
  ['Connection: keep-alive', 'keep-alive'],
  ['a malformed Connection', 'up grade'],
] as const) {
  test(`fails a 101 with ${what} (RFC 6455 §4.1)`, () => {
    expectFailure(
      check(responseText({ Connection: connection })),
      'SWITCHYARD_ERR_HANDSHAKE_CONNECTION',
      /Connection: Upgrade/,
    );
  });
}

test('fails a 101 without Sec-WebSocket-Accept (RFC 6455 §4.1)', () => {
  expectFailure(
    check(responseText({ 'Sec-WebSocket-Accept': null })),
    'SWITCHYARD_ERR_HANDSHAKE_ACCEPT',
    /no Sec-WebSocket-Accept/,
  );
});

for (const [what, accept] of [
  ['the accept value of another key', 'HSmrc0sMlYUkAGmm5OPpG2HaGWk='],
  ['the key itself', KEY],
  ['an empty value', ''],
  ['the accept value in lower case', ACCEPT.toLowerCase()],
] as const) {
  test(`fails a 101 whose Sec-WebSocket-Accept is ${what} (RFC 6455 §4.1)`, () => {
    expectFailure(
      check(responseText({ 'Sec-WebSocket-Accept': accept })),
      'SWITCHYARD_ERR_HANDSHAKE_ACCEPT',
      /does not match/,
    );
  });
}

test('fails a 101 with two Sec-WebSocket-Accept values', () => {
  expectFailure(
    check(responseText({}, [`Sec-WebSocket-Accept: ${ACCEPT}`])),
    'SWITCHYARD_ERR_HANDSHAKE_ACCEPT',
  );
  const res: UpgradeResponse = {
    statusCode: 101,
    headers: {
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-accept': [ACCEPT, ACCEPT],
    },
  };
  expectFailure(validateServerResponse(res, OFFER), 'SWITCHYARD_ERR_HANDSHAKE_ACCEPT');
});

for (const [what, value, message] of [
  ['an extension that was not offered', 'x-foo', /x-foo, which was not offered/],
  ['an offered extension twice', 'permessage-deflate, permessage-deflate', /more than once/],
  ['a malformed extensions field', 'permessage-deflate;', /malformed/],
  ['an empty extensions field', '', /malformed/],
  ['an extension name in another case', 'Permessage-Deflate', /not offered/],
] as const) {
  test(`fails a 101 that accepts ${what} (RFC 6455 §4.1)`, () => {
    expectFailure(
      check(responseText({ 'Sec-WebSocket-Extensions': value })),
      'SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS',
      message,
    );
  });
}

test('fails a 101 that accepts an extension when none was offered', () => {
  expectFailure(
    check(responseText({ 'Sec-WebSocket-Extensions': 'permessage-deflate' }), {
      ...OFFER,
      extensionsOffered: [],
    }),
    'SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS',
  );
});

for (const [what, value, message] of [
  ['a subprotocol that was not offered', 'other', /other, which was not offered/],
  ['a subprotocol in another case (RFC 6455 §11.5)', 'Chat', /not offered/],
  ['two subprotocols', 'chat, superchat', /single token/],
  ['an empty subprotocol', '', /single token/],
] as const) {
  test(`fails a 101 that chose ${what} (RFC 6455 §4.1)`, () => {
    expectFailure(
      check(responseText({ 'Sec-WebSocket-Protocol': value })),
      'SWITCHYARD_ERR_HANDSHAKE_PROTOCOL',
      message,
    );
  });
}

test('fails a 101 that chose a subprotocol when none was offered (RFC 6455 §4.1)', () => {
  expectFailure(
    check(responseText({ 'Sec-WebSocket-Protocol': 'chat' }), { ...OFFER, protocols: [] }),
    'SWITCHYARD_ERR_HANDSHAKE_PROTOCOL',
    /though none was offered/,
  );
});

test('fails a 101 with two Sec-WebSocket-Protocol values given as an array', () => {
  const res: UpgradeResponse = {
    statusCode: 101,
    headers: {
      upgrade: 'websocket',
      connection: 'Upgrade',
      'sec-websocket-accept': ACCEPT,
      'sec-websocket-protocol': ['chat', 'chat'],
    },
  };
  expectFailure(validateServerResponse(res, OFFER), 'SWITCHYARD_ERR_HANDSHAKE_PROTOCOL');
});

// --- both sides -------------------------------------------------------------------------

test('a client request, a server validation and the 101 fit together', () => {
  const key = generateKey();
  const request = formatClientRequest({
    host: 'localhost:9000',
    path: '/ws',
    key,
    protocols: ['v2', 'v1'],
    extensions: 'permessage-deflate; client_max_window_bits',
  });
  const parsedRequest = new HttpHeadParser({ kind: 'request' }).push(request);
  assert.ok(parsedRequest?.ok);
  const info = validateUpgradeRequest(parsedRequest.head);
  assert.ok(info.ok);
  const protocol = selectSubprotocol(info.protocols, ['v1', 'v2']);
  assert.equal(protocol, 'v1');
  const response = formatAcceptResponse({
    key: info.key,
    protocol,
    extensions: 'permessage-deflate',
  });
  const parsedResponse = new HttpHeadParser({ kind: 'response' }).push(response);
  assert.ok(parsedResponse?.ok);
  const accepted = validateServerResponse(parsedResponse.head, {
    key,
    protocols: ['v2', 'v1'],
    extensionsOffered: ['permessage-deflate'],
  });
  assert.deepEqual(accepted, {
    ok: true,
    protocol: 'v1',
    extensions: [{ name: 'permessage-deflate', params: [] }],
  });
});
