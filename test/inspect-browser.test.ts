/**
 * The inspector page in a real headless Chromium: notifications appear live without a reload, message text
 * is shown as text (never markup), the server-id filter works, and the layout holds at phone width. The
 * proxy runs in test mode, where the page shows one server id's notifications and none without one; an
 * eas-mode proxy shows every server's.
 *
 * Needs /usr/bin/chromium (CI installs Debian's `chromium`). Without it this test fails: it never skips.
 * PUSH_PROXY_SCREENSHOT=FILE saves the desktop screenshot there (docs/inspector.png is made this way).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { ProxyInstance } from '../src/instance';
import { startSandbox, type Sandbox } from '../src/sandbox/start';
import { APPLE_TOKEN, post, startTestProxy, tempDir, testConfig } from './support';

const CHROMIUM = '/usr/bin/chromium';
// The machine has no network: without these Chromium's own background connections fail and slow it down.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];
const XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';
const XSS_SERVER = '<svg onload="window.__xss=3">';
const SLOW = { timeout: 60_000 };

function message(fields: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    platform: 'apple_rn-v2',
    server_id: 'demo',
    device_id: APPLE_TOKEN,
    type: 'message',
    version: 'v2',
    channel_name: 'Town Square',
    channel_id: 'ch1',
    sender_name: 'alice',
    message: 'hello :wave:',
    ...fields,
  };
}

describe('inspector page in a real browser', () => {
  let sandbox: Sandbox;
  let proxy: ProxyInstance;
  let browser: Browser;
  let send: string;
  const screenshots = tempDir();
  const problems: string[] = [];

  before(async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: this test needs Debian's chromium (apt-get install chromium). It never skips.`,
    );
    sandbox = await startSandbox(pino({ level: 'silent' }));
    proxy = await startTestProxy(
      testConfig({
        apple: sandbox.settings.ApplePushSettings,
        android: sandbox.settings.AndroidPushSettings,
        Mode: 'test',
        Inspector: true,
      }),
      sandbox.trustedCa,
    );
    send = `${proxy.url}/api/v1/send_push`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  }, SLOW);
  after(async () => {
    await browser?.close();
    await proxy?.close();
    await sandbox?.close();
  });

  /** A page that records script errors and console errors (a CSP violation shows up as one). */
  async function open(context: BrowserContext, query = ''): Promise<Page> {
    // Fail in seconds, not after Playwright's 30 s default: every step here is local and quick.
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`);
    });
    await page.goto(`${proxy.url}/inspect${query}`);
    await page.locator('#status.live').waitFor();
    return page;
  }

  async function sendOk(body: Record<string, unknown>): Promise<void> {
    const answer = await post(send, body);
    assert.equal(answer.status, 200);
  }

  it('shows what this is, the mode and a curl example for this very proxy', SLOW, async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    try {
      const page = await open(context);
      await page.locator('#mode:not([hidden])').waitFor();
      assert.match((await page.locator('#mode').textContent()) ?? '', /Test service \(mode: test\)/);
      assert.match(
        (await page.locator('#curl').textContent()) ?? '',
        new RegExp(`^curl -s ${proxy.url}/api/v1/send_push -d '\\{"platform":"apple_rn-v2"`),
      );
      assert.match((await page.locator('#status').textContent()) ?? '', /Live · 0 notifications shown: enter a server id/);
      // Test mode without a server id: nothing listed, and a visible explanation of how to ask.
      assert.equal(await page.locator('#list > li').count(), 0);
      assert.ok(await page.locator('#empty').isVisible());
      assert.match(
        (await page.locator('#empty').textContent()) ?? '',
        /one chat server's notifications at a time.*\?server_id=YOUR_SERVER_ID/,
      );
      assert.equal(await page.locator('#server-id').getAttribute('placeholder'), 'your server id');
    } finally {
      await context.close();
    }
  });

  it('screenshots: desktop, and a phone width with no sideways scrolling', SLOW, async (t) => {
    // A representative mix: delivered, VoIP, Android, a dead token (REMOVE), an unknown platform (FAIL).
    const dead = 'de'.repeat(32);
    sandbox.apns.unregister(dead);
    await sendOk(
      message({
        server_id: 'demo',
        platform: 'android_rn-v2',
        device_id: 'fcm-token-0123456789',
        message: 'Lunch at noon?',
        channel_name: 'Off-Topic',
        sender_name: 'bob',
      }),
    );
    await sendOk(message({ server_id: 'demo', device_id: dead, message: 'Anyone there?' }));
    await sendOk(message({ server_id: 'demo', platform: 'windows-v2', message: 'Not routed' }));
    await sendOk(message({ server_id: 'demo', transport: 'voip', sub_type: 'calls', type: 'message', message: 'Incoming call' }));
    await sendOk(message({ server_id: 'demo', message: 'Release 2.4 is out, notes in the channel', channel_name: 'Announcements' }));

    const desktop = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    try {
      const wide = await open(desktop, '?server_id=demo');
      await wide.locator('#list > li').first().locator('summary').click();
      const desktopFile = process.env.PUSH_PROXY_SCREENSHOT || path.join(screenshots, 'inspector-desktop.png');
      mkdirSync(path.dirname(desktopFile), { recursive: true });
      await wide.screenshot({ path: desktopFile, fullPage: true, animations: 'disabled' });
      t.diagnostic(`desktop screenshot: ${desktopFile}`);

      const narrow = await open(phone, '?server_id=demo');
      await narrow.locator('#list > li').first().locator('summary').click();
      const width = (await narrow.evaluate('document.documentElement.scrollWidth')) as number;
      assert.ok(width <= 390, `the page is ${width} px wide at a 390 px viewport`);
      const phoneFile = path.join(screenshots, 'inspector-phone.png');
      await narrow.screenshot({ path: phoneFile, fullPage: true, animations: 'disabled' });
      t.diagnostic(`phone screenshot: ${phoneFile}`);
    } finally {
      await Promise.all([desktop.close(), phone.close()]);
    }
  });

  it('a notification appears live, newest first, without the page reloading', SLOW, async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    try {
      const page = await open(context, '?server_id=demo');
      // Browser-side code as strings: this project compiles without the DOM library.
      await page.evaluate('window.__sameDocument = true');
      const navigations: string[] = [];
      page.on('framenavigated', (frame) => {
        if (frame === page.mainFrame()) navigations.push(frame.url());
      });

      await sendOk(message({ message: 'first live notification' }));
      await page.locator('#list > li', { hasText: 'first live notification' }).waitFor();
      await sendOk(message({ message: 'second live notification' }));
      await page.locator('#list > li', { hasText: 'second live notification' }).waitFor();

      assert.match((await page.locator('#list > li').first().textContent()) ?? '', /second live notification/);
      assert.equal(await page.evaluate('window.__sameDocument'), true, 'the page was reloaded');
      assert.deepEqual(navigations, []);

      // The row tells outcome, server, platform, type and timing; opening it shows the payload as sent.
      const row = page.locator('#list > li', { hasText: 'second live notification' });
      assert.equal(await row.locator('.badge').textContent(), 'OK');
      assert.equal(await row.locator('.server').textContent(), 'demo');
      assert.match((await row.locator('.timing').textContent()) ?? '', /^\d+ ms · 1 attempt$/);
      await row.locator('summary').click();
      const payload = JSON.parse((await row.locator('pre').nth(1).textContent()) ?? '') as unknown;
      assert.deepEqual(payload, sandbox.apns.received.at(-1)!.payload);
      assert.ok(!((await row.textContent()) ?? '').includes(APPLE_TOKEN), 'the full device token is shown');
    } finally {
      await context.close();
    }
  });

  it('shows each attempt with the apns-id, and the receipt when the device acknowledges, in place', SLOW, async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    try {
      const page = await open(context, '?server_id=demo');
      await sendOk(message({ message: 'awaiting its receipt', ack_id: 'ack-browser' }));
      const row = page.locator('#list > li', { hasText: 'awaiting its receipt' });
      await row.waitFor();
      await row.locator('summary').click();
      const apnsId = sandbox.apns.received.at(-1)!.apnsId;
      assert.match(
        (await row.locator('.attempt').first().textContent()) ?? '',
        new RegExp(`^OK attempt 1 at \\+0 ms, took [\\d.]+ ms, HTTP 200 · id ${apnsId}$`),
      );
      assert.match((await row.locator('.facts').textContent()) ?? '', /Receiptno receipt yet/);

      const acked = await post(`${proxy.url}/api/v1/ack`, {
        id: 'ack-browser',
        platform: 'apple',
        type: 'message',
        received_at: Date.now(),
      });
      assert.equal(acked.status, 200);
      // The same row, replaced where it stands and still open, now with its receipt.
      await row.locator('.chip.receipt').waitFor();
      assert.equal(await page.locator('#list > li', { hasText: 'awaiting its receipt' }).count(), 1);
      assert.equal(await row.locator('details[open]').count(), 1);
      assert.match((await row.locator('.facts').textContent()) ?? '', /Receiptacknowledged at \S+Z/);
    } finally {
      await context.close();
    }
  });

  it('shows untrusted text as text: no element, no script runs', SLOW, async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    try {
      const page = await open(context, '?server_id=demo');
      const odd = await open(context, `?${new URLSearchParams({ server_id: XSS_SERVER })}`);
      await sendOk(message({ message: XSS }));
      await sendOk(message({ server_id: XSS_SERVER, platform: 'windows-v2' }));

      const row = page.locator('#list > li', { hasText: XSS }).first();
      await row.waitFor();
      assert.equal(await row.locator('.preview').textContent(), `Town Square — ${XSS}`);
      await row.locator('summary').click();
      assert.ok(((await row.locator('pre').nth(1).textContent()) ?? '').includes('<script>window.__xss=2</script>'));
      const refused = odd.locator('#list > li', { hasText: 'missing platform property' }).first();
      await refused.waitFor();
      assert.equal(await refused.locator('.server').textContent(), XSS_SERVER);

      for (const p of [page, odd]) {
        assert.equal(await p.evaluate('window.__xss'), undefined);
        assert.equal(await p.locator('#list img, #list script, #list svg').count(), 0);
        assert.equal(await p.locator('script').count(), 1, 'only the page script');
      }
    } finally {
      await context.close();
    }
  });

  it(
    'test mode: shows only the server id entered, keeps it in the URL, a shared link opens filtered, and none without one',
    SLOW,
    async () => {
      await sendOk(message({ server_id: 'acme-chat', message: 'for acme only' }));
      await sendOk(message({ message: 'demo, never shown to acme' }));
      const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
      try {
        const page = await open(context);
        assert.equal(await page.locator('#list > li').count(), 0);

        await page.locator('#server-id').fill('acme-chat');
        await page.locator('#server-id').press('Enter');
        await page.waitForURL(/\/inspect\?server_id=acme-chat$/);
        await page.locator('#status.live').waitFor();
        await page.locator('#list > li', { hasText: 'for acme only' }).waitFor();
        assert.equal(await page.locator('#list > li:not([data-server="acme-chat"])').count(), 0);
        assert.equal(await page.locator('#list > li', { hasText: 'demo, never shown to acme' }).count(), 0);
        assert.ok(await page.locator('#empty').isHidden());

        // Live rows are filtered too.
        await sendOk(message({ message: 'demo, hidden by the filter' }));
        await sendOk(message({ server_id: 'acme-chat', message: 'acme again' }));
        await page.locator('#list > li', { hasText: 'acme again' }).waitFor();
        assert.equal(await page.locator('#list > li', { hasText: 'demo, hidden by the filter' }).count(), 0);
        assert.equal(await page.locator('#list > li').count(), 2);

        const shared = await open(context, '?server_id=acme-chat');
        assert.equal(await shared.locator('#server-id').inputValue(), 'acme-chat');
        assert.equal(await shared.locator('#list > li').count(), 2);
        assert.match((await shared.locator('#status').textContent()) ?? '', /2 notifications shown from server id “acme-chat”/);

        // Cleared: nothing again, and the explanation instead.
        await page.locator('#server-id').fill('');
        await page.locator('#server-id').press('Enter');
        await page.waitForURL(/\/inspect$/);
        await page.locator('#status.live').waitFor();
        await page.locator('#empty:not([hidden])').waitFor();
        assert.equal(await page.locator('#list > li').count(), 0);
        assert.match((await page.locator('#empty').textContent()) ?? '', /\?server_id=YOUR_SERVER_ID/);
        await sendOk(message({ message: 'demo, after clearing' }));
        await sendOk(message({ server_id: 'acme-chat', message: 'acme, after clearing' }));
        // The shared page (still on acme-chat) gets its row: by then the cleared page would have had its own.
        await shared.locator('#list > li', { hasText: 'acme, after clearing' }).waitFor();
        assert.equal(await page.locator('#list > li').count(), 0);
      } finally {
        await context.close();
      }
    },
  );

  it("eas mode: every server's notifications without a server id, and the filter still works", SLOW, async () => {
    const eas = await startTestProxy(
      testConfig({ apple: sandbox.settings.ApplePushSettings, android: sandbox.settings.AndroidPushSettings, Inspector: true }),
      sandbox.trustedCa,
    );
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    try {
      const easSend = `${eas.url}/api/v1/send_push`;
      assert.equal((await post(easSend, message({ server_id: 'one', message: 'from one' }))).status, 200);
      assert.equal((await post(easSend, message({ server_id: 'two', message: 'from two' }))).status, 200);
      context.setDefaultTimeout(10_000);
      const page = await context.newPage();
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      await page.goto(`${eas.url}/inspect`);
      await page.locator('#status.live').waitFor();
      assert.equal(await page.locator('#list > li').count(), 2);
      assert.ok(await page.locator('#empty').isHidden());
      assert.equal(await page.locator('#server-id').getAttribute('placeholder'), 'all servers');
      await page.locator('#server-id').fill('two');
      await page.locator('#server-id').press('Enter');
      await page.waitForURL(/\/inspect\?server_id=two$/);
      await page.locator('#status.live').waitFor();
      await page.locator('#list > li', { hasText: 'from two' }).waitFor();
      assert.equal(await page.locator('#list > li').count(), 1);
    } finally {
      await context.close();
      await eas.close();
    }
  });

  it('no script errors and no CSP violations on any page', () => {
    assert.deepEqual(problems, []);
  });
});
