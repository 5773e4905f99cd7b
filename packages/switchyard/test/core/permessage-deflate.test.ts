import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LocalProtocolError } from '../../src/core/errors.js';
import { formatExtensions, parseExtensionOffers } from '../../src/core/header-lists.js';
import {
  acceptDeflateResponse,
  deflateDirections,
  formatDeflateOffer,
  negotiateDeflateServer,
  validateDeflateOptions,
  type DeflateParams,
  type PerMessageDeflateOptions,
} from '../../src/core/permessage-deflate.js';

/** The server's answer to a header value, as the header it would send (or null). */
function answer(header: string, options: PerMessageDeflateOptions = {}): string | null {
  const offers = parseExtensionOffers(header);
  assert.ok(offers !== null, `unparseable test header ${header}`);
  const { accepted } = negotiateDeflateServer(offers, options);
  return accepted === null ? null : formatExtensions([accepted.response]);
}

function params(header: string, options: PerMessageDeflateOptions = {}): DeflateParams | null {
  const { accepted } = negotiateDeflateServer(parseExtensionOffers(header) ?? [], options);
  return accepted?.params ?? null;
}

const PMD = 'permessage-deflate';

describe('server negotiation (RFC 7692 §5, §7.1)', () => {
  // [offer, server options, expected response or null for declined]
  const table: Array<[string, PerMessageDeflateOptions, string | null]> = [
    // No parameters: accepted as is.
    [PMD, {}, PMD],
    // §7.1.1.1: a request for server_no_context_takeover is accepted by echoing it.
    [`${PMD}; server_no_context_takeover`, {}, `${PMD}; server_no_context_takeover`],
    // ... and the server may add it unasked.
    [PMD, { serverNoContextTakeover: true }, `${PMD}; server_no_context_takeover`],
    // §7.1.1.2: the client's hint is echoed, which makes it binding.
    [`${PMD}; client_no_context_takeover`, {}, `${PMD}; client_no_context_takeover`],
    [PMD, { clientNoContextTakeover: true }, `${PMD}; client_no_context_takeover`],
    // §7.1.2.1: the server answers with the same or a smaller window.
    [`${PMD}; server_max_window_bits=10`, {}, `${PMD}; server_max_window_bits=10`],
    [
      `${PMD}; server_max_window_bits=10`,
      { serverMaxWindowBits: 9 },
      `${PMD}; server_max_window_bits=9`,
    ],
    [
      `${PMD}; server_max_window_bits=8`,
      { serverMaxWindowBits: 12 },
      `${PMD}; server_max_window_bits=8`,
    ],
    [PMD, { serverMaxWindowBits: 12 }, `${PMD}; server_max_window_bits=12`],
    [`${PMD}; server_max_window_bits="11"`, {}, `${PMD}; server_max_window_bits=11`],
    // §7.1.2.2: client_max_window_bits without a value: omitted unless the server limits it.
    [`${PMD}; client_max_window_bits`, {}, PMD],
    [
      `${PMD}; client_max_window_bits`,
      { clientMaxWindowBits: 10 },
      `${PMD}; client_max_window_bits=10`,
    ],
    [`${PMD}; client_max_window_bits=12`, {}, `${PMD}; client_max_window_bits=12`],
    [
      `${PMD}; client_max_window_bits=12`,
      { clientMaxWindowBits: 10 },
      `${PMD}; client_max_window_bits=10`,
    ],
    [
      `${PMD}; client_max_window_bits=9`,
      { clientMaxWindowBits: 10 },
      `${PMD}; client_max_window_bits=9`,
    ],
    // A server that must limit the client's window declines offers that do not allow it.
    [PMD, { clientMaxWindowBits: 10 }, null],
    // Everything at once.
    [
      `${PMD}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=8`,
      {},
      `${PMD}; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits=8`,
    ],
    // §7: declined offers: an unknown parameter, a duplicate, a bad value.
    [`${PMD}; foo`, {}, null],
    [`${PMD}; foo=1`, {}, null],
    [`${PMD}; server_no_context_takeover; server_no_context_takeover`, {}, null],
    [`${PMD}; client_max_window_bits; client_max_window_bits=10`, {}, null],
    [`${PMD}; server_no_context_takeover=1`, {}, null],
    [`${PMD}; client_no_context_takeover=true`, {}, null],
    [`${PMD}; server_max_window_bits`, {}, null],
    [`${PMD}; server_max_window_bits=7`, {}, null],
    [`${PMD}; server_max_window_bits=16`, {}, null],
    [`${PMD}; server_max_window_bits=010`, {}, null],
    [`${PMD}; server_max_window_bits=08`, {}, null],
    [`${PMD}; server_max_window_bits=1a`, {}, null],
    [`${PMD}; server_max_window_bits=-9`, {}, null],
    [`${PMD}; client_max_window_bits=7`, {}, null],
    [`${PMD}; client_max_window_bits=100`, {}, null],
    // Other extensions are not ours to answer.
    ['x-webkit-deflate-frame', {}, null],
    ['', {}, null],
  ];
  for (const [offer, options, expected] of table) {
    test(`answers ${JSON.stringify(offer)} with ${JSON.stringify(options)} by ${expected ?? 'declining'}`, () => {
      assert.equal(answer(offer, options), expected);
    });
  }

  test('answers the first acceptable of several offers, in the client order', () => {
    const header = `${PMD}; foo, ${PMD}; server_max_window_bits=10; client_max_window_bits, ${PMD}`;
    assert.equal(answer(header), `${PMD}; server_max_window_bits=10`);
    const { declined } = negotiateDeflateServer(parseExtensionOffers(header) ?? []);
    assert.deepEqual(declined, [{ index: 0, reason: 'unknown parameter foo' }]);
  });

  test('skips other extensions listed before permessage-deflate', () => {
    assert.equal(answer(`x-foo; a=1, ${PMD}; client_max_window_bits`), PMD);
  });

  test('falls back to a later offer when the first cannot take a client window limit', () => {
    // Autobahn 13.7's shape: several offers, the server takes the first it can.
    const header = `${PMD}; server_no_context_takeover, ${PMD}; client_max_window_bits`;
    assert.equal(answer(header, { clientMaxWindowBits: 9 }), `${PMD}; client_max_window_bits=9`);
  });

  test('derives the parameters in force for both directions', () => {
    assert.deepEqual(params(`${PMD}; client_max_window_bits=9; server_no_context_takeover`), {
      serverNoContextTakeover: true,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 9,
    });
    assert.deepEqual(params(PMD), {
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      serverMaxWindowBits: 15,
      clientMaxWindowBits: 15,
    });
  });

  test('rejects out-of-range window options as local misuse', () => {
    for (const bad of [7, 16, 9.5, NaN]) {
      assert.throws(
        () => negotiateDeflateServer([], { serverMaxWindowBits: bad }),
        (e: unknown) =>
          e instanceof LocalProtocolError && e.code === 'SWITCHYARD_ERR_INVALID_ARGUMENT',
      );
      assert.throws(() => validateDeflateOptions({ clientMaxWindowBits: bad }), LocalProtocolError);
    }
    assert.doesNotThrow(() => validateDeflateOptions({ clientMaxWindowBits: true }));
  });
});

describe('client offer', () => {
  const table: Array<[PerMessageDeflateOptions, string]> = [
    // What browsers send.
    [{}, `${PMD}; client_max_window_bits`],
    [{ clientMaxWindowBits: false }, PMD],
    [{ clientMaxWindowBits: 10 }, `${PMD}; client_max_window_bits=10`],
    [
      { serverNoContextTakeover: true },
      `${PMD}; server_no_context_takeover; client_max_window_bits`,
    ],
    [
      { clientNoContextTakeover: true },
      `${PMD}; client_no_context_takeover; client_max_window_bits`,
    ],
    [{ serverMaxWindowBits: 8 }, `${PMD}; server_max_window_bits=8; client_max_window_bits`],
  ];
  for (const [options, expected] of table) {
    test(`offers ${expected} for ${JSON.stringify(options)}`, () => {
      assert.equal(formatExtensions([formatDeflateOffer(options)]), expected);
    });
  }

  test('every offer it makes is one its own server side accepts', () => {
    for (const [options] of table) {
      assert.notEqual(answer(formatExtensions([formatDeflateOffer(options)])), null);
    }
  });
});

describe('client validation of the response (RFC 7692 §5, §7.1)', () => {
  function check(response: string, options: PerMessageDeflateOptions = {}) {
    const parsed = parseExtensionOffers(response);
    assert.ok(parsed !== null && parsed.length === 1);
    return acceptDeflateResponse(parsed[0], options);
  }
  // [response, client options, expected params or the start of the failure reason]
  const ok: Array<[string, PerMessageDeflateOptions, Partial<DeflateParams>]> = [
    [PMD, {}, { serverMaxWindowBits: 15, clientMaxWindowBits: 15 }],
    [`${PMD}; server_no_context_takeover`, {}, { serverNoContextTakeover: true }],
    [
      `${PMD}; server_no_context_takeover`,
      { serverNoContextTakeover: true },
      { serverNoContextTakeover: true },
    ],
    // The server may ignore our request for server_no_context_takeover; we inflate with context.
    [PMD, { serverNoContextTakeover: true }, { serverNoContextTakeover: false }],
    [`${PMD}; client_no_context_takeover`, {}, { clientNoContextTakeover: true }],
    // Our promise binds us even when the server did not echo it.
    [PMD, { clientNoContextTakeover: true }, { clientNoContextTakeover: true }],
    [`${PMD}; server_max_window_bits=10`, {}, { serverMaxWindowBits: 10 }],
    [`${PMD}; server_max_window_bits=9`, { serverMaxWindowBits: 10 }, { serverMaxWindowBits: 9 }],
    [`${PMD}; server_max_window_bits=10`, { serverMaxWindowBits: 10 }, { serverMaxWindowBits: 10 }],
    [`${PMD}; client_max_window_bits=8`, {}, { clientMaxWindowBits: 8 }],
    [`${PMD}; client_max_window_bits=10`, { clientMaxWindowBits: 12 }, { clientMaxWindowBits: 10 }],
    [PMD, { clientMaxWindowBits: 12 }, { clientMaxWindowBits: 12 }],
  ];
  for (const [response, options, expected] of ok) {
    test(`accepts ${JSON.stringify(response)} to ${JSON.stringify(options)}`, () => {
      const result = check(response, options);
      assert.ok(result.ok, result.ok ? '' : result.reason);
      for (const [key, value] of Object.entries(expected)) {
        assert.equal(result.params[key as keyof DeflateParams], value, key);
      }
    });
  }
  const bad: Array<[string, PerMessageDeflateOptions, RegExp]> = [
    [`${PMD}; foo`, {}, /unknown parameter foo/],
    [`${PMD}; server_no_context_takeover; server_no_context_takeover`, {}, /twice/],
    [`${PMD}; server_no_context_takeover=x`, {}, /must not have a value/],
    [`${PMD}; client_max_window_bits`, {}, /must have a value/],
    [`${PMD}; client_max_window_bits=16`, {}, /from 8 to 15/],
    [`${PMD}; server_max_window_bits=7`, {}, /from 8 to 15/],
    [`${PMD}; server_max_window_bits`, {}, /from 8 to 15/],
    // §7.1.2.2: client_max_window_bits in a response to an offer without it.
    [`${PMD}; client_max_window_bits=10`, { clientMaxWindowBits: false }, /did not allow/],
    [`${PMD}; client_max_window_bits=12`, { clientMaxWindowBits: 10 }, /above the offered 10/],
    // §7.1.2.1: a larger server window than requested, or none at all.
    [`${PMD}; server_max_window_bits=11`, { serverMaxWindowBits: 10 }, /above the requested 10/],
    [PMD, { serverMaxWindowBits: 10 }, /without server_max_window_bits/],
  ];
  for (const [response, options, reason] of bad) {
    test(`fails on ${JSON.stringify(response)} to ${JSON.stringify(options)}`, () => {
      const result = check(response, options);
      assert.equal(result.ok, false);
      if (!result.ok) assert.match(result.reason, reason);
    });
  }
});

describe('directions', () => {
  const p: DeflateParams = {
    serverNoContextTakeover: true,
    clientNoContextTakeover: false,
    serverMaxWindowBits: 9,
    clientMaxWindowBits: 12,
  };
  test('a server compresses with the server parameters and inflates with the client ones', () => {
    assert.deepEqual(deflateDirections(p, 'server'), {
      deflate: { windowBits: 9, noContextTakeover: true },
      inflate: { windowBits: 12, noContextTakeover: false },
    });
  });
  test('a client does the opposite', () => {
    assert.deepEqual(deflateDirections(p, 'client'), {
      deflate: { windowBits: 12, noContextTakeover: false },
      inflate: { windowBits: 9, noContextTakeover: true },
    });
  });
});
