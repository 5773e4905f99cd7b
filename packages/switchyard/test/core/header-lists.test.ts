import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatExtensions,
  isToken,
  isTokenChar,
  joinHeaderValue,
  parseExtensionOffers,
  parseSubprotocolList,
  parseTokenList,
  parseUpgradeList,
} from '../../src/core/header-lists.js';
import type { ExtensionOffer, HeaderValue } from '../../src/core/header-lists.js';
import { LocalProtocolError } from '../../src/core/errors.js';
import { countWork } from '../helpers/work.js';

// The three ways a list header is fed to these string parsers: as one field line, as several
// field lines (Node gives string[] for some repeated fields; RFC 9110 §5.3 says they mean the
// same as one line joined with commas), and followed by trailing empty elements and OWS,
// which RFC 9110 §5.6.1 says a recipient must skip.
function threeWays(value: string): Array<[string, HeaderValue]> {
  const lines = splitTopLevelCommas(value);
  return [
    ['whole', value],
    ['as field lines', lines.length > 1 ? lines : [value]],
    ['with trailing empty elements', value + ' ,\t, '],
  ];
}

// Splits at commas outside quoted strings, so each part is one element.
function splitTopLevelCommas(value: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted && c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (c === ',' && !quoted) {
      parts.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(value.slice(start).trim());
  return parts.filter((p) => p.length > 0);
}

function expectEveryWay<T>(parse: (v: HeaderValue) => T, value: string, expected: T): void {
  for (const [way, input] of threeWays(value)) {
    assert.deepStrictEqual(parse(input), expected, `${way}: ${JSON.stringify(input)}`);
  }
}

// --- tokens ---------------------------------------------------------------------------

test('isTokenChar accepts exactly the tchar set of RFC 9110 §5.6.2', () => {
  const tchars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  for (let c = 0; c < 300; c++) {
    assert.equal(isTokenChar(c), tchars.includes(String.fromCharCode(c)) && c < 128, `char ${c}`);
  }
});

test('isToken rejects the empty string and any delimiter', () => {
  assert.equal(isToken(''), false);
  assert.equal(isToken('chat'), true);
  for (const delimiter of '"(),/:;<=>?@[\\]{} \t') {
    assert.equal(isToken(`a${delimiter}b`), false, JSON.stringify(delimiter));
  }
});

test('joinHeaderValue joins field lines with ", " and treats absence as empty', () => {
  assert.equal(joinHeaderValue(undefined), '');
  assert.equal(joinHeaderValue('a'), 'a');
  assert.equal(joinHeaderValue(['a', 'b']), 'a, b');
});

// --- parseTokenList ---------------------------------------------------------------------

const VALID_TOKEN_LISTS: Array<[string, string[]]> = [
  ['Upgrade', ['upgrade']],
  ['keep-alive, Upgrade', ['keep-alive', 'upgrade']],
  ['keep-alive,Upgrade', ['keep-alive', 'upgrade']],
  ['  Upgrade  ', ['upgrade']],
  ['\tUpgrade\t,\tclose', ['upgrade', 'close']],
  // RFC 9110 §5.6.1: "a recipient MUST accept empty list elements", e.g. "foo,bar", ", foo",
  // "foo ,bar,", "foo , ,bar,charlie".
  ['foo,bar', ['foo', 'bar']],
  [', foo', ['foo']],
  ['foo ,bar,', ['foo', 'bar']],
  ['foo , ,bar,charlie', ['foo', 'bar', 'charlie']],
  ['', []],
  [',', []],
  [' , , ', []],
];

for (const [value, expected] of VALID_TOKEN_LISTS) {
  test(`parseTokenList reads ${JSON.stringify(value)} as ${JSON.stringify(expected)}`, () => {
    expectEveryWay(parseTokenList, value, expected);
  });
}

test('parseTokenList returns [] for an absent header', () => {
  assert.deepEqual(parseTokenList(undefined), []);
});

test('parseTokenList joins field lines given as an array', () => {
  assert.deepEqual(parseTokenList(['keep-alive', 'Upgrade']), ['keep-alive', 'upgrade']);
});

const INVALID_TOKEN_LISTS = [
  'up grade',
  'upgrade;q=1',
  'a, "b"',
  'a, b c',
  'a/b',
  'a\r\nb',
  'caf\u00e9',
  'a, b=',
];

for (const value of INVALID_TOKEN_LISTS) {
  test(`parseTokenList rejects ${JSON.stringify(value)} with null`, () => {
    assert.equal(parseTokenList(value), null);
    assert.equal(parseTokenList([value, 'ok']), null);
  });
}

// --- parseUpgradeList -------------------------------------------------------------------

const VALID_UPGRADE_LISTS: Array<[string, Array<{ name: string; version?: string }>]> = [
  ['websocket', [{ name: 'websocket' }]],
  ['WebSocket', [{ name: 'websocket' }]],
  // RFC 9110 §7.8's example: "Upgrade: HTTP/2.0, SHTTP/1.3, IRC/6.9, RTA/x11".
  [
    'HTTP/2.0, SHTTP/1.3, IRC/6.9, RTA/x11',
    [
      { name: 'http', version: '2.0' },
      { name: 'shttp', version: '1.3' },
      { name: 'irc', version: '6.9' },
      { name: 'rta', version: 'x11' },
    ],
  ],
  ['h2c, websocket', [{ name: 'h2c' }, { name: 'websocket' }]],
  ['Foo/BAR', [{ name: 'foo', version: 'BAR' }]],
  ['', []],
  [' , ', []],
];

for (const [value, expected] of VALID_UPGRADE_LISTS) {
  test(`parseUpgradeList reads ${JSON.stringify(value)}, names lower-cased, versions kept`, () => {
    expectEveryWay(parseUpgradeList, value, expected);
  });
}

const INVALID_UPGRADE_LISTS = [
  'websocket/',
  '/13',
  'websocket / 13',
  'websocket/ 13',
  'websocket /13',
  'web socket',
  'websocket/1/2',
  'websocket;x',
  'a, =b',
];

for (const value of INVALID_UPGRADE_LISTS) {
  test(`parseUpgradeList rejects ${JSON.stringify(value)} with null`, () => {
    assert.equal(parseUpgradeList(value), null);
  });
}

test('parseUpgradeList returns [] for an absent header', () => {
  assert.deepEqual(parseUpgradeList(undefined), []);
});

// --- parseSubprotocolList ---------------------------------------------------------------

const VALID_SUBPROTOCOL_LISTS: Array<[string, string[]]> = [
  // RFC 6455 §1.2's example.
  ['chat, superchat', ['chat', 'superchat']],
  ['graphql-ws', ['graphql-ws']],
  ['v1.chat.example.com,v2.chat.example.com', ['v1.chat.example.com', 'v2.chat.example.com']],
  // Subprotocols are case-sensitive (RFC 6455 §11.5), so these are two different ones.
  ['Chat, chat', ['Chat', 'chat']],
  ['', []],
];

for (const [value, expected] of VALID_SUBPROTOCOL_LISTS) {
  test(`parseSubprotocolList reads ${JSON.stringify(value)} with case kept`, () => {
    expectEveryWay(parseSubprotocolList, value, expected);
  });
}

const INVALID_SUBPROTOCOL_LISTS = [
  'chat, chat',
  'chat,superchat,chat',
  'chat superchat',
  'chat; q=1',
  '"chat"',
  'chat/1',
  'ch@t',
];

for (const value of INVALID_SUBPROTOCOL_LISTS) {
  test(`parseSubprotocolList rejects ${JSON.stringify(value)} with null`, () => {
    assert.equal(parseSubprotocolList(value), null);
  });
}

test('parseSubprotocolList rejects a name repeated across field lines', () => {
  assert.equal(parseSubprotocolList(['chat', 'chat']), null);
});

// --- parseExtensionOffers ---------------------------------------------------------------

const VALID_EXTENSIONS: Array<[string, ExtensionOffer[]]> = [
  ['permessage-deflate', [{ name: 'permessage-deflate', params: [] }]],
  // RFC 7692 §5.1's example offers.
  [
    'permessage-deflate; client_max_window_bits',
    [{ name: 'permessage-deflate', params: [['client_max_window_bits', true]] }],
  ],
  [
    'permessage-deflate; client_max_window_bits; server_max_window_bits=10, permessage-deflate; client_max_window_bits',
    [
      {
        name: 'permessage-deflate',
        params: [
          ['client_max_window_bits', true],
          ['server_max_window_bits', '10'],
        ],
      },
      { name: 'permessage-deflate', params: [['client_max_window_bits', true]] },
    ],
  ],
  // RFC 6455 §9.1's examples.
  [
    'foo, bar; baz=2',
    [
      { name: 'foo', params: [] },
      { name: 'bar', params: [['baz', '2']] },
    ],
  ],
  [
    'deflate-stream, mux; max-channels=4; flow-control, deflate-stream',
    [
      { name: 'deflate-stream', params: [] },
      {
        name: 'mux',
        params: [
          ['max-channels', '4'],
          ['flow-control', true],
        ],
      },
      { name: 'deflate-stream', params: [] },
    ],
  ],
  ['private-extension', [{ name: 'private-extension', params: [] }]],
  // A quoted value is unescaped, and then must be a token.
  ['x; a="10"', [{ name: 'x', params: [['a', '10']] }]],
  ['x; a="1\\0"', [{ name: 'x', params: [['a', '10']] }]],
  ['x; a="\\a\\b"', [{ name: 'x', params: [['a', 'ab']] }]],
  // Whitespace around ";", "=" and ",".
  [
    'x ; a = 1 ;b= "2"\t;\tc , y',
    [
      {
        name: 'x',
        params: [
          ['a', '1'],
          ['b', '2'],
          ['c', true],
        ],
      },
      { name: 'y', params: [] },
    ],
  ],
  // Duplicate parameters are kept, in order, for the negotiation to reject.
  [
    'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
    [
      {
        name: 'permessage-deflate',
        params: [
          ['server_no_context_takeover', true],
          ['server_no_context_takeover', true],
        ],
      },
    ],
  ],
  ['Permessage-Deflate; A=B', [{ name: 'Permessage-Deflate', params: [['A', 'B']] }]],
  ['', []],
];

for (const [value, expected] of VALID_EXTENSIONS) {
  test(`parseExtensionOffers reads ${JSON.stringify(value)}`, () => {
    expectEveryWay(parseExtensionOffers, value, expected);
  });
}

const INVALID_EXTENSIONS: Array<[string, string]> = [
  ['a parameter without a name', 'x; =1'],
  ['a trailing ";"', 'x;'],
  ['a trailing ";" before ","', 'x; , y'],
  ['an empty value', 'x; a='],
  ['an empty value before ";"', 'x; a=; b'],
  ['a leading ";"', '; x'],
  ['an unterminated quoted string', 'x; a="10'],
  ['an escape at the end of input', 'x; a="10\\'],
  ['a quoted value that is not a token after unescaping', 'x; a="1 0"'],
  ['an empty quoted value', 'x; a=""'],
  ['a quoted value with an escaped quote', 'x; a="\\""'],
  ['a quoted value with a comma', 'x; a="1,2"'],
  ['a control char in a quoted string', 'x; a="1\u00010"'],
  ['an escaped control char', 'x; a="1\\\u00010"'],
  ['a char above 0xff in a quoted string', 'x; a="\u20ac"'],
  ['two names without a separator', 'x y'],
  ['a value that is not a token', 'x; a=1/2'],
  ['two values', 'x; a=1 2'],
  ['a quoted extension name', '"x"'],
  ['a parameter name that is not a token', 'x; a@=1'],
  ['text after a quoted value', 'x; a="1"b'],
  ['"=" after a name without a parameter', 'x=1'],
];

for (const [what, value] of INVALID_EXTENSIONS) {
  test(`parseExtensionOffers rejects ${what} (${JSON.stringify(value)}) with null`, () => {
    assert.equal(parseExtensionOffers(value), null);
  });
}

test('parseExtensionOffers accepts obs-text and escaped obs-text inside a quoted string before the token check', () => {
  // Both parse as quoted-strings (RFC 9110 §5.6.4), and both fail RFC 6455 §9.1's token rule.
  assert.equal(parseExtensionOffers('x; a="\u00e9"'), null);
  assert.equal(parseExtensionOffers('x; a="\\\u00e9"'), null);
  assert.equal(parseExtensionOffers('x; a="\\\t"'), null);
});

test('parseExtensionOffers returns [] for an absent header and joins field lines', () => {
  assert.deepEqual(parseExtensionOffers(undefined), []);
  assert.deepEqual(parseExtensionOffers(['a', 'b; c']), [
    { name: 'a', params: [] },
    { name: 'b', params: [['c', true]] },
  ]);
});

// --- formatExtensions -------------------------------------------------------------------

test('formatExtensions writes names and parameters, valueless ones bare', () => {
  assert.equal(
    formatExtensions([
      {
        name: 'permessage-deflate',
        params: [
          ['server_no_context_takeover', true],
          ['client_max_window_bits', '10'],
        ],
      },
      { name: 'x-foo', params: [] },
    ]),
    'permessage-deflate; server_no_context_takeover; client_max_window_bits=10, x-foo',
  );
  assert.equal(formatExtensions([]), '');
});

test('formatExtensions output parses back to the same list', () => {
  for (const [value, expected] of VALID_EXTENSIONS) {
    if (expected.length === 0) continue;
    assert.deepStrictEqual(parseExtensionOffers(formatExtensions(expected)), expected, value);
  }
});

const INVALID_FORMAT: Array<[string, ExtensionOffer[]]> = [
  ['an extension name that is not a token', [{ name: 'a b', params: [] }]],
  ['an empty extension name', [{ name: '', params: [] }]],
  ['a parameter name that is not a token', [{ name: 'x', params: [['a=b', true]] }]],
  [
    'a value that is not a token (RFC 6455 §9.1 forbids it even quoted)',
    [{ name: 'x', params: [['a', '1 2']] }],
  ],
  ['an empty value', [{ name: 'x', params: [['a', '']] }]],
  ['a value with CRLF', [{ name: 'x', params: [['a', '1\r\nX-Evil: 1']] }]],
];

for (const [what, list] of INVALID_FORMAT) {
  test(`formatExtensions throws SWITCHYARD_ERR_INVALID_ARGUMENT for ${what}`, () => {
    assert.throws(
      () => formatExtensions(list),
      (error: unknown) =>
        error instanceof LocalProtocolError && error.code === 'SWITCHYARD_ERR_INVALID_ARGUMENT',
    );
  });
}

// --- linear time (ws CVE-2021-32640) ----------------------------------------------------

const PATHOLOGICAL: Array<[string, string, (v: string) => unknown]> = [
  [
    'Sec-WebSocket-Protocol of 100 KB of spaces between two tokens',
    'a' + ' '.repeat(100_000) + 'b',
    parseSubprotocolList,
  ],
  ['Sec-WebSocket-Protocol of 100 KB of "a," ', 'a,'.repeat(50_000) + ' x', parseSubprotocolList],
  [
    'Sec-WebSocket-Protocol of 100 KB of unique tokens',
    Array.from({ length: 15_000 }, (_, i) => `p${i}`).join(','),
    parseSubprotocolList,
  ],
  [
    'Sec-WebSocket-Extensions of 100 KB of "; a"',
    'x' + '; a'.repeat(33_000) + ' !',
    parseExtensionOffers,
  ],
  [
    'Sec-WebSocket-Extensions of 100 KB of whitespace and commas',
    ' ,\t'.repeat(33_000) + 'x y',
    parseExtensionOffers,
  ],
  [
    'Sec-WebSocket-Extensions with a 100 KB unterminated quoted string',
    'x; a="' + '\\a'.repeat(50_000),
    parseExtensionOffers,
  ],
  [
    'Sec-WebSocket-Extensions of 100 KB of "=" runs',
    'x; a=' + '='.repeat(100_000),
    parseExtensionOffers,
  ],
  ['Connection of 100 KB of tabs', '\t'.repeat(100_000) + 'upgrade x', parseTokenList],
  ['Upgrade of 100 KB of "a/"', 'a/'.repeat(50_000), parseUpgradeList],
];

test('the work counter sees a parser that rescans its input from every position', () => {
  const value = 'a'.repeat(1000);
  const rescan = (text: string) => {
    for (let start = 0; start < text.length; start++) {
      for (let i = start; i < text.length && text.charCodeAt(i) === 0x61; i++);
    }
  };
  assert.ok(countWork(() => rescan(value)).total > 4 * value.length);
});

for (const [what, value, parse] of PATHOLOGICAL) {
  // A linear parser examines each character a small, fixed number of times; a backtracking
  // one (CVE-2021-32640) examines them again for every position it retries from. Counting the
  // characters read, not the time taken, keeps the check exact on a busy machine.
  test(`parses ${what} in linear time (a few reads per character)`, () => {
    const work = countWork(() => parse(value));
    assert.ok(
      work.total <= 4 * value.length,
      `${work.total} characters examined for ${value.length} of input`,
    );
  });
}
