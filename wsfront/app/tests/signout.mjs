// Signing out in the web app, in headless Chromium, run by
// tests/integration/test_revoke.py: "Sign out" revokes the page's token
// (POST /api/logout); "Sign out everywhere" (user.revoke on oneself) signs
// out this page and, within a second, the same user's page on another node.
//
// Settings from the environment: URL1, URL2, USER, ARTIFACTS, CHROMIUM.
// Prints one JSON line: the three tokens the pages held, how long the other
// page's connection lasted and how long it took to show the sign-in screen.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const env = process.env;
const ART = env.ARTIFACTS || 'artifacts';
const PASSWORD = 'blue-kettle-42';
fs.mkdirSync(ART, { recursive: true });

async function online(page) {
  await page.waitForSelector('#app:not([hidden])', { timeout: 15000 });
  await page.waitForFunction(() => window.chatDebug && window.chatDebug.online(), null,
    { timeout: 15000 });
}

async function signIn(page, url, user, register) {
  await page.goto(url);
  if (register) await page.click('#tab-register');
  await page.fill('#username', user);
  await page.fill('#password', PASSWORD);
  await page.click('#auth-submit');
  await online(page);
  return page.evaluate(() => JSON.parse(localStorage.getItem('chat.auth')).token);
}

async function signedOut(page, timeout) {
  await page.waitForSelector('#auth:not([hidden])', { timeout });
  return page.evaluate(() => document.getElementById('auth-error').textContent);
}

async function run(browser) {
  const user = env.USER;
  const errors = [];
  const ctx1 = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const ctx2 = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const a = await ctx1.newPage(), b = await ctx2.newPage();
  for (const p of [a, b]) {
    p.on('pageerror', (e) => errors.push(String(e)));
    p.on('console', (m) => { if (m.type() === 'error' && /Refused to/.test(m.text())) errors.push(m.text()); });
  }
  const signedOutToken = await signIn(a, env.URL1, user, true);
  await a.click('#logout');
  await signedOut(a, 5000);
  const here = await signIn(a, env.URL1, user, false);
  const there = await signIn(b, env.URL2, user, false);
  await a.screenshot({ path: path.join(ART, '11-sign-out-everywhere.png') });
  a.once('dialog', (d) => d.accept());
  await a.click('#logout-all');
  const t0 = Date.now();
  // the other page's connection is cut first; its reconnect is then refused
  await b.waitForFunction(() => !window.chatDebug.online(), null, { timeout: 15000 });
  const cutMs = Date.now() - t0;
  const msgA = await signedOut(a, 15000);
  const msgB = await signedOut(b, 15000);
  const otherMs = Date.now() - t0;
  if (!/every device/.test(msgA)) throw new Error('expected "every device" on this page, got: ' + msgA);
  if (!/ended/.test(msgB)) throw new Error('expected the other page to say its session ended, got: ' + msgB);
  if (errors.length) throw new Error('page errors: ' + errors.join('; '));
  await ctx1.close();
  await ctx2.close();
  return { ok: true, signedOutToken, here, there, cutMs, otherMs };
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
let code = 0;
try {
  process.stdout.write(JSON.stringify(await run(browser)) + '\n');
} catch (e) {
  process.stderr.write('FAILED: ' + (e && e.stack ? e.stack : e) + '\n');
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
