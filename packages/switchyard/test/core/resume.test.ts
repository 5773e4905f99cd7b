import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DIRECT_HEADER,
  RESUME_PROTOCOL,
  ResumeTracker,
  decodeResumeFrame,
  decodeResumeText,
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

test('a message already read as text decodes without going back to bytes', () => {
  assert.deepEqual(decodeResumeText('m room%201 7\nhello\nworld'), {
    kind: 'message',
    topic: 'room 1',
    position: 7,
    payload: 'hello\nworld',
  });
  assert.deepEqual(decodeResumeText('d\n'), { kind: 'direct', payload: '' });
  assert.deepEqual(decodeResumeText('g t 3 *\n'), { kind: 'gap', topic: 't', from: 3, to: null });
  assert.equal(decodeResumeText(`m ${'t'.repeat(5000)} 1\nx`), null);
});

const BAD_FRAMES = [
  'hello',
  'm t\nx',
  'm t -1\n',
  'm t 1.5\n',
  'x t 1\n',
  'g t 1 2\npayload',
  'm %E0 1\n',
  'g t 1 x\n',
];

test('messages that break the exchange decode as null, as bytes and as text', () => {
  for (const bad of BAD_FRAMES) {
    assert.equal(decodeResumeFrame(text(bad)), null, bad);
    assert.equal(decodeResumeText(bad), null, bad);
  }
  assert.equal(decodeResumeFrame(Uint8Array.from([0xff, 0x0a])), null);
});

test("the tracker offers the subprotocol first, once, before the application's own", () => {
  const tracker = new ResumeTracker();
  assert.deepEqual(tracker.protocols(undefined), [RESUME_PROTOCOL]);
  assert.deepEqual(tracker.protocols('chat'), [RESUME_PROTOCOL, 'chat']);
  assert.deepEqual(tracker.protocols(['a', RESUME_PROTOCOL, 'b']), [RESUME_PROTOCOL, 'a', 'b']);
});

test('the tracker delivers each position once, forgets a topic after a gap, and presents the rest', () => {
  const tracker = new ResumeTracker();
  assert.equal(tracker.url('ws://h/feed?x=1'), 'ws://h/feed?x=1');
  const message = (topic: string, position: number) =>
    tracker.receive(decodeResumeText(`m ${topic} ${position}\n${topic}${position}`));
  assert.deepEqual(message('a', 1), {
    action: 'deliver',
    payload: 'a1',
    meta: { topic: 'a', position: 1 },
  });
  assert.deepEqual(message('a', 2), {
    action: 'deliver',
    payload: 'a2',
    meta: { topic: 'a', position: 2 },
  });
  assert.deepEqual(message('a', 2), { action: 'drop' });
  assert.deepEqual(message('a', 1), { action: 'drop' });
  assert.deepEqual(message('b', 0), {
    action: 'deliver',
    payload: 'b0',
    meta: { topic: 'b', position: 0 },
  });
  message('c', 5);
  assert.deepEqual(tracker.receive(decodeResumeText('d\nhi')), {
    action: 'deliver',
    payload: 'hi',
    meta: undefined,
  });
  // Position 0 is never recorded: the topic has no window to resume from.
  assert.equal(tracker.url('ws://h/feed?x=1'), 'ws://h/feed?x=1&sy-resume=a%402%2Cc%405');
  assert.deepEqual(tracker.receive(decodeResumeText('g c 6 9\n')), {
    action: 'gap',
    gap: { topic: 'c', from: 6, to: 9 },
  });
  assert.deepEqual([...tracker.positions], [['a', 2]]);
  // After a gap, whatever comes next on the topic is delivered and becomes the position.
  assert.equal(message('c', 10).action, 'deliver');
  assert.equal(tracker.positions.get('c'), 10);
  const bytes = tracker.receive(decodeResumeFrame(text('m a 3\nxyz')));
  assert.equal(bytes.action === 'deliver' && Buffer.from(bytes.payload).toString(), 'xyz');
  assert.deepEqual(tracker.receive(decodeResumeText('nonsense')), {
    action: 'fail',
    reason: 'Message without a switchyard.resume.v1 header',
  });
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
