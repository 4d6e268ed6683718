// "Sign out" tells the truth (issue 22 finding 10), in headless Chromium,
// run by tests/integration/test_wsfront_logout_limit.py: when POST
// /api/logout is refused (429 with Retry-After) or cannot reach the server,
// the page says it did not sign out and stays signed in (its token still
// works); when the server answers 204 it signs out.
//
// Settings from the environment: URL, USER, ARTIFACTS, CHROMIUM.
// Prints one JSON line with the token the page held.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const env = process.env;
const ART = env.ARTIFACTS || 'artifacts';
const PASSWORD = 'blue-kettle-42';
fs.mkdirSync(ART, { recursive: true });

async function stillSignedIn(page, what) {
  await page.waitForFunction(() => {
    const t = document.getElementById('toast');
    return !t.hidden && /Not signed out/.test(t.textContent);
  }, null, { timeout: 10000 });
  const s = await page.evaluate(() => ({
    toast: document.getElementById('toast').textContent,
    app: !document.getElementById('app').hidden,
    auth: localStorage.getItem('chat.auth'),
    online: window.chatDebug.online(),
  }));
  if (!s.app || !s.auth || !s.online) {
    throw new Error(what + ': the page signed out anyway: ' + JSON.stringify(s));
  }
  return s.toast;
}

async function run(browser) {
  const errors = [];
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(env.URL);
  await page.click('#tab-register');
  await page.fill('#username', env.USER);
  await page.fill('#password', PASSWORD);
  await page.click('#auth-submit');
  await page.waitForSelector('#app:not([hidden])', { timeout: 15000 });
  await page.waitForFunction(() => window.chatDebug && window.chatDebug.online(), null,
    { timeout: 15000 });
  const token = await page.evaluate(() => JSON.parse(localStorage.getItem('chat.auth')).token);

  // the server refuses the sign-out
  await page.route('**/api/logout', (r) => r.fulfill({
    status: 429, contentType: 'application/json', headers: { 'retry-after': '7' },
    body: JSON.stringify({ error: { code: 'rate_limited', message: 'too many sign-outs for this user' } }),
  }));
  await page.click('#logout');
  const refused = await stillSignedIn(page, '429');
  if (!/too many sign-outs/.test(refused) || !/7 s/.test(refused)) {
    throw new Error('the refusal does not say why and when: ' + refused);
  }
  await page.screenshot({ path: path.join(ART, 'logout-refused.png') });
  // the server cannot be reached
  await page.unroute('**/api/logout');
  await page.evaluate(() => { document.getElementById('toast').hidden = true; });
  await page.route('**/api/logout', (r) => r.abort('connectionrefused'));
  await page.click('#logout');
  const unreachable = await stillSignedIn(page, 'unreachable');
  if (!/cannot be reached/.test(unreachable)) throw new Error('no reason given: ' + unreachable);
  // and the real answer: signed out
  await page.unroute('**/api/logout');
  await page.click('#logout');
  await page.waitForSelector('#auth:not([hidden])', { timeout: 10000 });
  if (await page.evaluate(() => localStorage.getItem('chat.auth'))) {
    throw new Error('signed out but the token is still stored');
  }
  if (errors.length) throw new Error('page errors: ' + errors.join('; '));
  await ctx.close();
  return { ok: true, token, refused, unreachable };
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
