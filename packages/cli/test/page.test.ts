/** The web page of `switchyard serve`, in headless Chromium (Debian chromium, playwright-core). */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { startServe, type RunningServe } from '../src/serve/server.js';
import { launchChromium, skipUnlessAvailable } from '../../switchyard/test/helpers/peers.js';

let serve: RunningServe;
let browser: Browser | null = null;
let unavailable: { available: false; reason: string } | null = null;
before(async () => {
  serve = await startServe({ port: 0, host: '127.0.0.1' });
  const chromium = await launchChromium();
  if (chromium.available) browser = chromium.browser;
  else unavailable = chromium;
});
after(async () => {
  await browser?.close();
  await serve.close();
});

test('connects to /echo, shows each message with its time and size, the handshake and the close code', async (t) => {
  if (browser === null) {
    skipUnlessAvailable(t, unavailable ?? { available: false, reason: 'chromium did not start' });
    return;
  }
  const page = await browser.newPage();
  t.after(() => page.close());
  await page.goto(serve.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
  assert.equal(await page.inputValue('#url'), `${serve.wsUrl}/echo`);
  await page.click('#connect');
  await page.waitForFunction("document.getElementById('state')?.textContent === 'open'", null, {
    timeout: 10_000,
  });
  await page.fill('#message', 'héllo');
  await page.press('#message', 'Enter');
  const incoming = page.locator('#log li[data-kind="in"]');
  await incoming.first().waitFor({ timeout: 10_000 });
  assert.match(await incoming.first().innerText(), /^\d\d:\d\d:\d\d\.\d{3} ← héllo \(6 B\)$/);
  await page.check('#binary');
  await page.fill('#message', 'ab');
  await page.click('#send');
  await incoming.nth(1).waitFor({ timeout: 10_000 });
  assert.match(await incoming.nth(1).innerText(), /← binary 61 62 \(2 B\)$/);

  await page.waitForFunction(
    "(document.getElementById('response-head')?.textContent ?? '') !== ''",
    null,
    {
      timeout: 10_000,
    },
  );
  const request = await page.innerText('#request-head');
  assert.match(request, /^GET \/echo\?trace=\w+ HTTP\/1.1/);
  assert.match(request, /Sec-WebSocket-Key: /);
  assert.match(request, /Origin: http:\/\/127\.0\.0\.1:\d+/);
  assert.match(await page.innerText('#response-head'), /^HTTP\/1.1 101 Switching Protocols/);

  await page.fill('#close-code', '4001');
  await page.click('#disconnect');
  await page.waitForFunction("document.getElementById('state')?.textContent === 'closed'", null, {
    timeout: 10_000,
  });
  assert.equal(await page.getAttribute('#close-info', 'data-code'), '4001');
});

test('shows what a misbehaving endpoint sent when the browser refuses it', async (t) => {
  if (browser === null) {
    skipUnlessAvailable(t, unavailable ?? { available: false, reason: 'chromium did not start' });
    return;
  }
  const page = await browser.newPage();
  t.after(() => page.close());
  await page.goto(serve.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
  await page.selectOption('#endpoint', '/bad/accept');
  await page.click('#connect');
  await page.waitForFunction("document.getElementById('state')?.textContent === 'closed'", null, {
    timeout: 10_000,
  });
  assert.equal(await page.getAttribute('#close-info', 'data-code'), '1006');
  await page.waitForFunction(
    "(document.getElementById('response-head')?.textContent ?? '') !== ''",
    null,
    {
      timeout: 10_000,
    },
  );
  assert.match(await page.innerText('#response-head'), /Sec-WebSocket-Accept: /);
  assert.match(await page.innerText('#description'), /doctor: accept-mismatch/);
});

// What the page must show as the server's answer for each endpoint it lists. The browser's
// WebSocket API tells a page nothing about a refused upgrade; the trace is the only way it can.
const EXPECTED_RESPONSE: Record<string, RegExp | null> = {
  '/echo': /^HTTP\/1.1 101 Switching Protocols/,
  '/broadcast': /^HTTP\/1.1 101 Switching Protocols/,
  '/status/<code>': /^HTTP\/1.1 503 Service Unavailable/,
  '/bad/accept': /^HTTP\/1.1 101 .*\nSec-WebSocket-Accept: /s,
  '/bad/no-accept': /^HTTP\/1.1 101 /,
  '/bad/no-upgrade': /^HTTP\/1.1 101 /,
  '/bad/no-connection': /^HTTP\/1.1 101 /,
  '/bad/ok-200': /^HTTP\/1.1 200 OK/,
  '/bad/http10': /^HTTP\/1.0 200 OK/,
  '/bad/redirect': /^HTTP\/1.1 301 Moved Permanently\n(.*\n)*Location: \/echo/,
  '/bad/version': /^HTTP\/1.1 426 Upgrade Required\n(.*\n)*Sec-WebSocket-Version: 8/,
  '/bad/auth': /^HTTP\/1.1 401 Unauthorized\n(.*\n)*WWW-Authenticate: Bearer/,
  // The page's own Origin names this host: the browser is let in.
  '/bad/origin': /^HTTP\/1.1 101 /,
  // Chromium sends exactly "Connection: Upgrade".
  '/bad/strict-connection': /^HTTP\/1.1 101 /,
  // Chromium always offers permessage-deflate.
  '/bad/deflate-offer': /^HTTP\/1.1 400 Bad Request/,
  '/bad/subprotocol': /^HTTP\/1.1 101 (.*\n)*Sec-WebSocket-Protocol: chat/,
  '/bad/extension': /^HTTP\/1.1 101 (.*\n)*Sec-WebSocket-Extensions: x-unknown/,
  '/bad/drop': /^HTTP\/1.1 101 /,
  '/bad/close': /^HTTP\/1.1 101 /,
  // It never answers: the page says so, truthfully.
  '/bad/hang': null,
  '/bad/no-pong': /^HTTP\/1.1 101 /,
  '/bad/no-close': /^HTTP\/1.1 101 /,
  '/bad/idle': /^HTTP\/1.1 101 /,
};

test('shows the response the server sent for every endpoint it lists, refused upgrades included', async (t) => {
  if (browser === null) {
    skipUnlessAvailable(t, unavailable ?? { available: false, reason: 'chromium did not start' });
    return;
  }
  const page = await browser.newPage();
  t.after(() => page.close());
  await page.goto(serve.url);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
  const listed = await page.$$eval('#endpoint option', (options) =>
    options.map((o) => o.getAttribute('value') ?? ''),
  );
  assert.deepEqual([...listed].sort(), Object.keys(EXPECTED_RESPONSE).sort());
  for (const path of listed) {
    await page.goto(serve.url);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 10_000 });
    await page.selectOption('#endpoint', path);
    await page.click('#connect');
    const expected = EXPECTED_RESPONSE[path];
    if (expected === null) {
      // Nothing will come: give the server time to (not) answer, then give up from the page.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await page.click('#disconnect');
    }
    await page.waitForFunction(
      "['open', 'closed'].includes(document.getElementById('state')?.textContent ?? '')",
      null,
      { timeout: 10_000 },
    );
    await page.waitForFunction(
      "(document.getElementById('response-head')?.textContent ?? '') !== ''",
      null,
      { timeout: 10_000 },
    );
    const response = await page.innerText('#response-head');
    if (expected === null) assert.equal(response, '(no response was sent)', path);
    else {
      assert.match(response, expected, path);
      assert.doesNotMatch(response, /no response was sent/, path);
    }
    assert.match(await page.innerText('#request-head'), /^GET \/\S+\?trace=\w+ HTTP\/1.1/, path);
  }
});

test("the page's HTTP endpoints: /, /endpoints.json, /trace/<id>, and 426 for a plain GET", async (t) => {
  if (browser === null) {
    skipUnlessAvailable(t, unavailable ?? { available: false, reason: 'chromium did not start' });
    return;
  }
  const page = await browser.newPage();
  t.after(() => page.close());
  const home = await page.goto(serve.url);
  assert.equal(home?.status(), 200);
  assert.match(home?.headers()['content-type'] ?? '', /text\/html/);
  const answers = await page.evaluate(async () => {
    const list = await fetch('/endpoints.json');
    const missing = await fetch('/trace/no-such-trace');
    const plain = await fetch('/echo');
    const favicon = await fetch('/favicon.ico');
    return {
      list: { status: list.status, body: (await list.json()) as Array<{ path: string }> },
      missing: missing.status,
      plain: { status: plain.status, upgrade: plain.headers.get('upgrade') },
      favicon: favicon.status,
    };
  });
  assert.equal(answers.list.status, 200);
  assert.ok(answers.list.body.some((e) => e.path === '/echo'));
  assert.equal(answers.missing, 404);
  assert.deepEqual(answers.plain, { status: 426, upgrade: 'websocket' });
  assert.equal(answers.favicon, 404);
});
