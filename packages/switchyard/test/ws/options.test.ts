/**
 * The ws option tables (src/ws/options.ts) against the migration guide: every ws option the
 * adapter knows is in docs/migrating-from-ws.md, so docs and behaviour cannot drift apart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { WS_CLIENT_OPTIONS, WS_SERVER_OPTIONS, WebSocket, WebSocketServer } from 'switchyard/ws';
import { InvalidOptionError } from 'switchyard';

const guide = readFileSync(
  new URL('../../../../docs/migrating-from-ws.md', import.meta.url),
  'utf8',
);

test('docs/migrating-from-ws.md names every ws option of the server and the client', () => {
  const names = new Set([...Object.keys(WS_SERVER_OPTIONS), ...Object.keys(WS_CLIENT_OPTIONS)]);
  const missing = [...names].filter((name) => !guide.includes(`\`${name}\``));
  assert.deepEqual(missing, []);
});

test('every unsupported option throws and every ignored one is accepted, on the side it belongs to', async () => {
  for (const [name, rule] of Object.entries(WS_CLIENT_OPTIONS)) {
    if (rule.handling !== 'unsupported') continue;
    assert.throws(
      () => new WebSocket('ws://127.0.0.1:1/', { [name]: Symbol('any value') }),
      (error: unknown) => error instanceof InvalidOptionError && error.message.includes(name),
      name,
    );
  }
  for (const [name, rule] of Object.entries(WS_SERVER_OPTIONS)) {
    if (rule.handling === 'unsupported') {
      assert.throws(
        () => new WebSocketServer({ noServer: true, [name]: Symbol('any value') }),
        InvalidOptionError,
        name,
      );
    } else if (rule.handling === 'ignored') {
      const wss = new WebSocketServer({ noServer: true, [name]: 1 });
      await new Promise((resolve) => wss.close(resolve));
    }
  }
});
