// The web app over HTTPS and WSS in headless Chromium, run by
// tests/integration/test_deploy_tls.py. Chromium trusts the local CA
// through the NSS database in $HOME/.pki/nssdb (the test makes it).
//
//   node tls.mjs good    sign up at URL, create ROOM, send BODY over WSS;
//                        prints the page's protocol and the socket's URL
//   node tls.mjs refuse  load URL and print the error Chromium gives
//
// Prints one JSON line; a failed expectation exits non-zero.
import { chromium } from 'playwright-core';

const env = process.env;

async function good(browser) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.goto(env.URL);
  await page.click('#tab-register');
  await page.fill('#username', env.USER);
  await page.fill('#password', 'blue-kettle-42');
  await page.click('#auth-submit');
  await page.waitForSelector('#app:not([hidden])', { timeout: 20000 });
  await page.waitForFunction(() => window.chatDebug && window.chatDebug.online(), null, { timeout: 20000 });
  await page.click('#new-room');
  await page.fill('#room-name', env.ROOM);
  await page.click('#dialog-ok');
  await page.waitForSelector('#room-list li.active[data-conv="room:' + env.ROOM + '"]', { timeout: 15000 });
  await page.fill('#input', env.BODY);
  await page.press('#input', 'Enter');
  await page.waitForFunction((b) => Array.from(document.querySelectorAll('#msg-list .msg:not(.pending) .bubble'))
    .some((e) => e.textContent === b), env.BODY, { timeout: 15000 });
  const protocol = await page.evaluate(() => location.protocol);
  await ctx.close();
  return { ok: true, protocol, sockets };
}

async function refuse(browser) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  let error = null;
  try {
    await page.goto(env.URL, { timeout: 15000 });
  } catch (e) {
    error = String(e.message || e).split('\n')[0];
  }
  await ctx.close();
  return { ok: true, error };
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
let code = 0;
try {
  const result = process.argv[2] === 'refuse' ? await refuse(browser) : await good(browser);
  process.stdout.write(JSON.stringify(result) + '\n');
} catch (e) {
  process.stderr.write('FAILED: ' + (e && e.stack ? e.stack : e) + '\n');
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
