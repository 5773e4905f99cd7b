import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DIRECT_HEADER,
  decodeResumeFrame,
  encodeGap,
  encodeMessageHeader,
  formatResumePositions,
  parseResumePositions,
} from '../../src/core/resume.js';

const text = (s: string) => new TextEncoder().encode(s);
const join = (a: Uint8Array, b: Uint8Array) => Buffer.concat([a, b]);

test('a topic message header round-trips, with the topic percent-encoded', () => {
  const header = encodeMessageHeader('room 1/é\n', 42);
  assert.equal(Buffer.from(header).toString(), 'm room%201%2F%C3%A9%0A 42\n');
  const frame = decodeResumeFrame(join(header, text('hello\nworld')));
  assert.equal(frame?.kind, 'message');
  assert.deepEqual(
    frame.kind === 'message' && { ...frame, payload: Buffer.from(frame.payload).toString() },
    {
      kind: 'message',
      topic: 'room 1/é\n',
      position: 42,
      payload: 'hello\nworld',
    },
  );
});

test('direct messages and gaps decode; a gap with an unknown end says null', () => {
  const direct = decodeResumeFrame(join(DIRECT_HEADER, text('x')));
  assert.equal(direct?.kind, 'direct');
  assert.deepEqual(decodeResumeFrame(encodeGap('t', 5, 9)), {
    kind: 'gap',
    topic: 't',
    from: 5,
    to: 9,
  });
  assert.deepEqual(decodeResumeFrame(encodeGap('t', 5, null)), {
    kind: 'gap',
    topic: 't',
    from: 5,
    to: null,
  });
});

test('messages that break the exchange decode as null', () => {
  for (const bad of [
    'hello',
    'm t\nx',
    'm t -1\n',
    'm t 1.5\n',
    'x t 1\n',
    'g t 1 2\npayload',
    'm %E0 1\n',
    'g t 1 x\n',
  ]) {
    assert.equal(decodeResumeFrame(text(bad)), null, bad);
  }
  assert.equal(decodeResumeFrame(Uint8Array.from([0xff, 0x0a])), null);
});

test('positions format and parse, skipping malformed pairs', () => {
  const positions = new Map([
    ['a,b@c', 3],
    ['plain', 10],
  ]);
  const value = formatResumePositions(positions);
  assert.equal(value, 'a%2Cb%40c@3,plain@10');
  assert.deepEqual(parseResumePositions(value), positions);
  assert.deepEqual(
    parseResumePositions('x@1,@2,y@z,z@-1,%E0@4,ok@5'),
    new Map([
      ['x', 1],
      ['ok', 5],
    ]),
  );
  assert.equal(parseResumePositions(null).size, 0);
  assert.equal(parseResumePositions('a@1,b@2,c@3', 2).size, 2);
});
