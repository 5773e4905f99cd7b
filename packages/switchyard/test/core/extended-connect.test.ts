import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatAcceptHeaders,
  formatExtendedConnectRequest,
  formatRejectHeaders,
  isWebSocketConnect,
  validateExtendedConnect,
  validateExtendedConnectResponse,
  type Http2Headers,
} from '../../src/core/extended-connect.js';
import { LocalProtocolError, UnexpectedResponseError } from '../../src/core/errors.js';

const valid: Http2Headers = {
  ':method': 'CONNECT',
  ':protocol': 'websocket',
  ':scheme': 'https',
  ':path': '/chat?room=1',
  ':authority': 'example.com',
  'sec-websocket-version': '13',
  origin: 'https://example.com',
  'sec-websocket-protocol': 'chat.v2, chat.v1',
  'sec-websocket-extensions': 'permessage-deflate; client_max_window_bits',
};

function without(name: string): Http2Headers {
  const copy = { ...valid };
  delete copy[name];
  return copy;
}

function failure(headers: Http2Headers): { code: string; status: number | undefined } {
  const result = validateExtendedConnect(headers);
  assert.equal(result.ok, false);
  if (result.ok) throw new Error('unreachable');
  return { code: result.error.code, status: result.error.status };
}

test('accepts the RFC 8441 §5 request and reports what it asked for', () => {
  const result = validateExtendedConnect(valid);
  assert.ok(result.ok);
  assert.equal(result.scheme, 'https');
  assert.equal(result.authority, 'example.com');
  assert.equal(result.path, '/chat?room=1');
  assert.deepEqual(result.protocols, ['chat.v2', 'chat.v1']);
  assert.deepEqual(result.extensions, [
    { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
  ]);
  assert.equal(result.origin, 'https://example.com');
});

test('needs no Sec-WebSocket-Key, and ignores one (RFC 8441 §5)', () => {
  assert.ok(validateExtendedConnect({ ...valid, 'sec-websocket-key': 'garbage' }).ok);
});

test('isWebSocketConnect picks only CONNECT with :protocol websocket', () => {
  assert.equal(isWebSocketConnect(valid), true);
  assert.equal(isWebSocketConnect({ ...valid, ':protocol': 'WebSocket' }), true);
  assert.equal(isWebSocketConnect(without(':protocol')), false);
  assert.equal(isWebSocketConnect({ ...valid, ':protocol': 'connect-udp' }), false);
  assert.equal(isWebSocketConnect({ ...valid, ':method': 'GET' }), false);
});

test('answers 405 with Allow: CONNECT to another method', () => {
  const result = validateExtendedConnect({ ...valid, ':method': 'GET' });
  assert.ok(!result.ok);
  assert.equal(result.error.status, 405);
  assert.deepEqual(result.error.headers, { allow: 'CONNECT' });
});

test('answers 400 when :protocol, :scheme, :path or :authority is missing or wrong (RFC 8441 §4)', () => {
  const cases: Http2Headers[] = [
    without(':protocol'),
    { ...valid, ':protocol': 'h2c' },
    without(':scheme'),
    { ...valid, ':scheme': 'ftp' },
    without(':path'),
    { ...valid, ':path': 'chat' },
    without(':authority'),
    { ...valid, ':authority': '' },
  ];
  for (const headers of cases) {
    assert.deepEqual(failure(headers), {
      code: 'SWITCHYARD_ERR_HANDSHAKE_PSEUDO_HEADER',
      status: 400,
    });
  }
});

test('takes the authority from Host when :authority is absent (RFC 9113 §8.3.1)', () => {
  const result = validateExtendedConnect({ ...without(':authority'), host: 'example.org:8443' });
  assert.ok(result.ok);
  assert.equal(result.authority, 'example.org:8443');
});

test('answers a wrong or missing version with 400 and Sec-WebSocket-Version: 13, not 426', () => {
  for (const headers of [
    without('sec-websocket-version'),
    { ...valid, 'sec-websocket-version': '8' },
  ]) {
    const result = validateExtendedConnect(headers);
    assert.ok(!result.ok);
    assert.equal(result.error.code, 'SWITCHYARD_ERR_HANDSHAKE_VERSION');
    assert.equal(result.error.status, 400);
    assert.deepEqual(result.error.headers, { 'sec-websocket-version': '13' });
  }
});

test('applies the origin policy with 403', () => {
  const result = validateExtendedConnect(valid, { origin: (o) => o === 'https://other.example' });
  assert.ok(!result.ok);
  assert.equal(result.error.status, 403);
  assert.equal(result.error.code, 'SWITCHYARD_ERR_HANDSHAKE_ORIGIN');
});

test('answers 400 to malformed subprotocols and extensions', () => {
  assert.equal(
    failure({ ...valid, 'sec-websocket-protocol': 'a, a' }).code,
    'SWITCHYARD_ERR_HANDSHAKE_PROTOCOL',
  );
  assert.equal(
    failure({ ...valid, 'sec-websocket-extensions': ';;' }).code,
    'SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS',
  );
});

test('formatAcceptHeaders answers 200 with the subprotocol and extensions, names lower-cased', () => {
  assert.deepEqual(
    formatAcceptHeaders({
      protocol: 'chat',
      extensions: 'permessage-deflate',
      headers: { 'Set-Cookie': 'a=1' },
    }),
    {
      ':status': 200,
      'sec-websocket-protocol': 'chat',
      'sec-websocket-extensions': 'permessage-deflate',
      'set-cookie': 'a=1',
    },
  );
});

test('formatAcceptHeaders refuses connection-specific fields and the handshake fields (RFC 9113 §8.2.2)', () => {
  for (const name of ['Connection', 'Upgrade', 'Sec-WebSocket-Accept', 'sec-websocket-protocol']) {
    assert.throws(() => formatAcceptHeaders({ headers: { [name]: 'x' } }), LocalProtocolError);
  }
  assert.throws(() => formatAcceptHeaders({ headers: { 'x-a': 'b\r\nc: d' } }), LocalProtocolError);
  assert.throws(() => formatAcceptHeaders({ protocol: 'not a token' }), LocalProtocolError);
});

test('formatRejectHeaders drops connection-specific fields that HTTP/1.1 answers carry', () => {
  assert.deepEqual(
    formatRejectHeaders(426, { Upgrade: 'websocket', Connection: 'Upgrade', 'X-Why': 'version' }),
    { ':status': 426, 'x-why': 'version' },
  );
  assert.throws(() => formatRejectHeaders(101), LocalProtocolError);
});

test('formatExtendedConnectRequest writes the RFC 8441 §5 request', () => {
  assert.deepEqual(
    formatExtendedConnectRequest({
      scheme: 'http',
      authority: '127.0.0.1:8080',
      path: '/ws',
      protocols: ['a', 'b'],
      extensions: 'permessage-deflate',
      origin: 'http://127.0.0.1:8080',
      headers: { Authorization: 'Bearer x' },
    }),
    {
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'http',
      ':path': '/ws',
      ':authority': '127.0.0.1:8080',
      'sec-websocket-version': '13',
      'sec-websocket-protocol': 'a, b',
      'sec-websocket-extensions': 'permessage-deflate',
      origin: 'http://127.0.0.1:8080',
      authorization: 'Bearer x',
    },
  );
  const bad = { scheme: 'https' as const, authority: 'h', path: '/' };
  assert.throws(() => formatExtendedConnectRequest({ ...bad, path: 'x' }), LocalProtocolError);
  assert.throws(
    () => formatExtendedConnectRequest({ ...bad, authority: 'a b' }),
    LocalProtocolError,
  );
  assert.throws(
    () => formatExtendedConnectRequest({ ...bad, protocols: ['a', 'a'] }),
    LocalProtocolError,
  );
  assert.throws(
    () => formatExtendedConnectRequest({ ...bad, extensions: ';' }),
    LocalProtocolError,
  );
  assert.throws(
    () => formatExtendedConnectRequest({ ...bad, headers: { 'Sec-WebSocket-Key': 'x' } }),
    LocalProtocolError,
  );
});

test('validateExtendedConnectResponse accepts any 2xx and checks what the server chose', () => {
  const offer = { protocols: ['chat'], extensionsOffered: ['permessage-deflate'] };
  const ok = validateExtendedConnectResponse(
    {
      ':status': 200,
      'sec-websocket-protocol': 'chat',
      'sec-websocket-extensions': 'permessage-deflate',
    },
    offer,
  );
  assert.ok(ok.ok);
  assert.equal(ok.protocol, 'chat');
  assert.ok(validateExtendedConnectResponse({ ':status': 204 }, offer).ok);
  const notOffered = validateExtendedConnectResponse(
    { ':status': 200, 'sec-websocket-protocol': 'other' },
    offer,
  );
  assert.ok(!notOffered.ok);
  assert.equal(notOffered.error.code, 'SWITCHYARD_ERR_HANDSHAKE_PROTOCOL');
  const extension = validateExtendedConnectResponse(
    { ':status': 200, 'sec-websocket-extensions': 'x-unknown' },
    offer,
  );
  assert.ok(!extension.ok);
  assert.equal(extension.error.code, 'SWITCHYARD_ERR_HANDSHAKE_EXTENSIONS');
});

test('validateExtendedConnectResponse reports a non-2xx as UnexpectedResponseError with its body', () => {
  const result = validateExtendedConnectResponse(
    { ':status': 401, 'www-authenticate': 'Bearer' },
    { protocols: [], extensionsOffered: [] },
    new TextEncoder().encode('log in'),
  );
  assert.ok(!result.ok);
  assert.ok(result.error instanceof UnexpectedResponseError);
  assert.equal(result.error.statusCode, 401);
  assert.deepEqual(result.error.responseHeaders, { 'www-authenticate': 'Bearer' });
  assert.equal(new TextDecoder().decode(result.error.body), 'log in');
});
