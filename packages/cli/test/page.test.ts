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
