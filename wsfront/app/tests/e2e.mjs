// The web app end to end in headless Chromium (Debian's, driven by
// playwright-core), run by tests/integration/test_wsfront_browser.py.
//
//   node e2e.mjs main   two users in two browser contexts on two nodes: sign
//                       up, room, chat both ways, DM, presence, typing,
//                       unread, reload with history, a network drop with
//                       catch-up, a phone-sized screen
//   node e2e.mjs mixed  one browser user in a room, printing READY when it
//                       listens, then the bodies it shows once it has COUNT
//
// Settings come from the environment (URL1, URL2, ARTIFACTS, ROOM, COUNT,
// USER_A, USER_B). Prints one JSON line of results; any failed expectation
// exits non-zero with what was expected and what the page showed.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const env = process.env;
const ART = env.ARTIFACTS || 'artifacts';
const PASSWORD = 'blue-kettle-42';
fs.mkdirSync(ART, { recursive: true });

function fail(what) {
  throw new Error(what);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ART, name + '.png') });
}

async function signUp(page, url, user) {
  await page.goto(url);
  await page.click('#tab-register');
  await page.fill('#username', user);
  await page.fill('#password', PASSWORD);
  await page.click('#auth-submit');
  await page.waitForSelector('#app:not([hidden])', { timeout: 15000 });
  await page.waitForFunction(() => window.chatDebug && window.chatDebug.online(), null, { timeout: 15000 });
}

async function bodies(page) {
  return page.$$eval('#msg-list .msg:not(.pending) .bubble', (els) => els.map((e) => e.textContent));
}

async function waitBodies(page, want, what) {
  try {
    await page.waitForFunction((w) => {
      const got = Array.from(document.querySelectorAll('#msg-list .msg:not(.pending) .bubble'))
        .map((e) => e.textContent);
      return w.every((b) => got.includes(b));
    }, want, { timeout: 15000 });
  } catch (e) {
    fail(what + ': expected ' + JSON.stringify(want) + ' among ' + JSON.stringify(await bodies(page)));
  }
}

async function send(page, text) {
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
}

async function openConv(page, conv) {
  await page.click('li[data-conv="' + conv + '"]');
  await page.waitForFunction((c) => document.querySelector('li.active[data-conv="' + c + '"]'), conv);
}

async function main(browser) {
  const A = env.USER_A || 'alice', B = env.USER_B || 'bob', room = env.ROOM || 'lounge';
  const ctxA = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const ctxB = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const a = await ctxA.newPage(), b = await ctxB.newPage();
  // a third user who only sits there: its keepalive must flow (MQTT.js
  // sends PINGREQ from a Worker timer, which a Content-Security-Policy
  // without worker-src blocks, silently but for a console error)
  const ctxC = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const c = await ctxC.newPage();
  const errors = [];
  for (const p of [a, b, c]) {
    p.on('pageerror', (e) => errors.push(String(e)));
    p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  }
  const frames = { pingreq: 0, pingresp: 0 };
  const cdp = await ctxC.newCDPSession(c);
  await cdp.send('Network.enable');
  // binary frames come base64: PINGREQ is C0 00, PINGRESP D0 00
  cdp.on('Network.webSocketFrameSent', (e) => { if (e.response.payloadData === 'wAA=') frames.pingreq++; });
  cdp.on('Network.webSocketFrameReceived', (e) => { if (e.response.payloadData === '0AA=') frames.pingresp++; });

  // sign up on two different nodes
  await a.goto(env.URL1);
  await shot(a, '01-sign-in');
  await signUp(a, env.URL1, A);
  await signUp(b, env.URL2, B);
  await signUp(c, env.URL2, A + 'idle');
  // the header shows who is signed in, beside the sign-out actions
  const nameBox = await a.locator('#me-name').boundingBox();
  if (!nameBox || nameBox.width < 20 || await a.textContent('#me-name') !== A) {
    fail('the header shows the user name, got a box ' + JSON.stringify(nameBox));
  }
  const idleSince = Date.now();

  // a creates a public room; b, signed in meanwhile, sees it appear under
  // public rooms without asking (chat/rooms), and joins
  await b.waitForFunction(() => window.chatDebug && window.chatDebug.online());
  await a.click('#new-room');
  await a.fill('#room-name', room);
  const created = Date.now();
  await a.click('#dialog-ok');
  await b.waitForSelector('#discover-list li[data-conv="room:' + room + '"]', { timeout: 15000 });
  const roomLiveMs = Date.now() - created;
  await a.waitForSelector('#room-list li.active[data-conv="room:' + room + '"]');
  // the room search: a prefix finds it among public rooms, another name does not
  await b.fill('#room-search', room.slice(0, 3));
  await b.waitForSelector('#discover-list li[data-conv="room:' + room + '"]', { timeout: 5000 });
  await b.fill('#room-search', 'zz' + room);
  try {
    await b.waitForFunction((r) => !document.querySelector('#discover-list li[data-conv="room:' + r + '"]'),
      room, { timeout: 5000 });
  } catch (e) {
    fail('room search: "zz' + room + '" still lists ' + room);
  }
  await b.fill('#room-search', '');
  await b.waitForSelector('#discover-list li[data-conv="room:' + room + '"]', { timeout: 5000 });
  await b.click('#discover-list li[data-conv="room:' + room + '"]');
  await b.waitForSelector('#room-list li.active[data-conv="room:' + room + '"]', { timeout: 10000 });

  // chat both ways
  await send(a, 'hello from ' + A);
  await waitBodies(b, ['hello from ' + A], B + ' sees ' + A + "'s message");
  await send(b, 'hi ' + A + ', ' + B + ' here');
  await waitBodies(a, ['hello from ' + A, 'hi ' + A + ', ' + B + ' here'], A + ' sees the reply');
  for (let i = 1; i <= 3; i++) await send(a, 'line ' + i);
  const lines = ['line 1', 'line 2', 'line 3'];
  await waitBodies(b, lines, B + ' sees three lines');
  const orderA = await bodies(a), orderB = await bodies(b);
  if (JSON.stringify(orderA) !== JSON.stringify(orderB)) {
    fail('both users see the room in the same order: ' + JSON.stringify(orderA) + ' vs ' + JSON.stringify(orderB));
  }

  // typing: b types, a sees it
  await b.type('#input', 'typing something', { delay: 20 });
  try {
    await a.waitForFunction((u) => document.querySelector('#typing').textContent.includes(u + ' is typing'),
      B, { timeout: 8000 });
  } catch (e) {
    fail('typing indicator: expected "' + B + ' is typing…", got "' + await a.textContent('#typing') + '"');
  }
  await shot(a, '02-room-typing');
  await b.fill('#input', '');

  // a DM from a to b: presence dot, unread badge, reply
  const dm = A < B ? 'dm:' + A + ':' + B : 'dm:' + B + ':' + A;
  await a.click('#new-dm');
  await a.fill('#dm-user', B);
  await a.click('#dialog-ok');
  await a.waitForSelector('#dm-list li.active[data-conv="' + dm + '"]');
  try {
    await a.waitForSelector('#dm-list li[data-conv="' + dm + '"] .dot.on[aria-label="online"]', { timeout: 10000 });
  } catch (e) {
    fail('presence: expected ' + B + "'s dot to be on (online) in " + A + "'s DM list");
  }
  const sub = await a.textContent('#conv-sub');
  if (sub !== 'online') fail('DM header: expected "online", got "' + sub + '"');
  await send(a, 'psst, a secret');
  try {
    await b.waitForSelector('#dm-list li[data-conv="' + dm + '"] .badge', { timeout: 10000 });
  } catch (e) {
    fail('unread: expected a badge on the DM in ' + B + "'s list");
  }
  const badge = await b.textContent('#dm-list li[data-conv="' + dm + '"] .badge');
  if (badge !== '1') fail('unread badge: expected 1, got ' + badge);
  await shot(b, '03-dm-unread');
  await openConv(b, dm);
  await waitBodies(b, ['psst, a secret'], B + ' reads the DM');
  // the badge goes once the conversation is open and read (the list is
  // redrawn in the same turn; allow the page a moment under load)
  try {
    await b.waitForSelector('#dm-list li[data-conv="' + dm + '"] .badge', { state: 'detached', timeout: 3000 });
  } catch (e) {
    fail('the unread badge stays after reading');
  }
  await send(b, 'your secret is safe');
  await waitBodies(a, ['psst, a secret', 'your secret is safe'], A + ' gets the DM reply');
  await shot(a, '04-dm');

  // a private room: a creates it and invites b
  await a.click('#new-room');
  await a.fill('#room-name', 'hideout');
  await a.check('#room-private');
  await a.click('#dialog-ok');
  await a.waitForSelector('#room-list li.active[data-conv="room:hideout"]');
  await a.waitForSelector('#invite:not([hidden])');
  await a.click('#invite');
  await a.fill('#invite-user', B);
  await a.click('#dialog-ok');
  try {
    await a.waitForSelector('#dialog', { state: 'hidden', timeout: 10000 });
  } catch (e) {
    fail('invite: the dialog stayed open with "' + await a.textContent('#dialog-error') + '"');
  }

  // reload: the conversation that was open comes back, with its history
  const wasOpen = await b.$eval('li.active[data-conv]', (li) => li.dataset.conv);
  await b.reload();
  await b.waitForFunction(() => window.chatDebug && window.chatDebug.online());
  try {
    await b.waitForSelector('li.active[aria-current="true"][data-conv="' + wasOpen + '"]', { timeout: 10000 });
  } catch (e) {
    fail('after a reload the last conversation (' + wasOpen + ') is open again');
  }
  if (await b.getAttribute('#me-dot', 'aria-label') !== 'connected') {
    fail('the connection state is said in words: #me-dot aria-label "connected", got ' +
      await b.getAttribute('#me-dot', 'aria-label'));
  }
  await openConv(b, 'room:' + room);
  await waitBodies(b, ['hello from ' + A, 'hi ' + A + ', ' + B + ' here', ...lines], 'history after reload');
  await b.waitForTimeout(500); // the unread counts have come
  if (await b.$('#dm-list li[data-conv="' + dm + '"] .badge')) {
    fail('a DM read before the reload shows unread after it: ' +
      await b.textContent('#dm-list li[data-conv="' + dm + '"] .badge'));
  }
  await shot(b, '05-history-after-reload');
  // the invitation shows after the reload: b posts in the private room
  await b.waitForSelector('#room-list li[data-conv="room:hideout"]', { timeout: 10000 });
  await openConv(b, 'room:hideout');
  await send(b, 'made it in');
  await waitBodies(a, ['made it in'], A + ' sees ' + B + ' in the private room');
  await a.click('#members-btn');
  try {
    await a.waitForFunction((u) => Array.from(document.querySelectorAll('#dialog-body li'))
      .some((li) => li.querySelector('.who') && li.querySelector('.who').textContent === u &&
        li.querySelector('.dot.on') && li.querySelector('.state').textContent === 'online'),
      B, { timeout: 10000 });
  } catch (e) {
    fail('members of the private room: expected ' + B + ' online, got ' + await a.textContent('#dialog-body'));
  }
  await shot(a, '05a-private-members');
  await a.click('#dialog-cancel');
  await a.waitForSelector('#dialog', { state: 'hidden' });

  // a long room: the newest page first, older ones when scrolled to the top
  await openConv(a, 'room:' + room);
  const bulk = [];
  for (let i = 1; i <= 55; i++) {
    bulk.push('bulk ' + i);
    await send(a, 'bulk ' + i);
    await a.waitForTimeout(60); // under the bridge's 20 messages a second
  }
  await waitBodies(a, bulk.slice(-3), A + "'s bulk messages");
  await b.reload();
  await b.waitForFunction(() => window.chatDebug && window.chatDebug.online());
  await openConv(b, 'room:' + room);
  await waitBodies(b, bulk.slice(-50), 'the newest page');
  const firstPage = (await bodies(b)).length;
  if (firstPage !== 50) fail('the first page holds 50 messages, got ' + firstPage);
  await b.$eval('#messages', (e) => { e.scrollTop = 0; e.dispatchEvent(new Event('scroll')); });
  await waitBodies(b, ['hello from ' + A, 'bulk 1', 'bulk 2'], 'older messages after scrolling up');
  const all = await b.evaluate((c) => window.chatDebug.seqs(c), 'room:' + room);
  if (JSON.stringify(all) !== JSON.stringify(all.map((_, i) => i + 1))) {
    fail('after scrolling up every seq from 1 once: ' + JSON.stringify(all));
  }
  await shot(b, '05b-older-on-scroll');

  // a network drop on a: b posts meanwhile; a catches up with no gap, no duplicate
  await ctxA.setOffline(true);
  await a.evaluate(() => window.chatDebug.dropSocket());
  await a.waitForFunction(() => !window.chatDebug.online(), null, { timeout: 10000 });
  const missed = ['while you were away 1', 'while you were away 2', 'while you were away 3'];
  for (const m of missed) await send(b, m);
  await waitBodies(b, missed, B + "'s own messages");
  await a.waitForTimeout(500);
  await ctxA.setOffline(false);
  await a.waitForFunction(() => window.chatDebug.online(), null, { timeout: 20000 });
  await waitBodies(a, missed, 'catch-up after the drop');
  const seqs = await a.evaluate((c) => window.chatDebug.seqs(c), 'room:' + room);
  for (let i = 1; i < seqs.length; i++) {
    if (seqs[i] !== seqs[i - 1] + 1) fail('seqs after catch-up must be contiguous: ' + JSON.stringify(seqs));
  }
  const shown = await bodies(a);
  if (new Set(shown).size !== shown.length) fail('duplicates after catch-up: ' + JSON.stringify(shown));
  const finalB = await bodies(b);
  if (JSON.stringify(shown) !== JSON.stringify(finalB)) {
    fail('after catch-up both show the same: ' + JSON.stringify(shown) + ' vs ' + JSON.stringify(finalB));
  }
  await shot(a, '06-after-catch-up');

  // a phone-sized screen: the list, then the conversation
  const phone = await browser.newContext({ viewport: { width: 390, height: 760 }, isMobile: true, hasTouch: true });
  const p = await phone.newPage();
  await p.goto(env.URL2);
  await p.click('#tab-login');
  await p.fill('#username', B);
  await p.fill('#password', PASSWORD);
  await p.click('#auth-submit');
  await p.waitForFunction(() => window.chatDebug && window.chatDebug.online());
  await p.waitForSelector('#room-list li[data-conv="room:' + room + '"]');
  if (!(await p.isVisible('#sidebar')) || await p.isVisible('#main')) fail('phone: the list alone first');
  await shot(p, '07-phone-list');
  await p.click('#room-list li[data-conv="room:' + room + '"]');
  await waitBodies(p, missed, 'phone shows the room');
  if (await p.isVisible('#sidebar') || !(await p.isVisible('#main'))) fail('phone: the conversation alone');
  await shot(p, '08-phone-room');
  await phone.close();

  // b leaves: a sees b go offline
  await ctxB.close();
  await openConv(a, dm);
  try {
    await a.waitForSelector('#dm-list li[data-conv="' + dm + '"] .dot:not(.on)[aria-label="offline"]', { timeout: 15000 });
  } catch (e) {
    fail('presence: expected ' + B + ' to show offline after closing the browser');
  }
  await shot(a, '09-peer-offline');
  await ctxA.close();
  // keepalive 30 s: a PINGREQ within 40 s of the idle user's connect
  const pingDeadline = idleSince + 40000;
  while ((frames.pingreq < 1 || frames.pingresp < 1) && Date.now() < pingDeadline) {
    await new Promise((r) => setTimeout(r, 250));
  }
  if (frames.pingreq < 1 || frames.pingresp < 1) {
    fail('keepalive: an idle page sent ' + frames.pingreq + ' PINGREQ and got ' + frames.pingresp +
      ' PINGRESP in 40 s (keepalive 30 s)');
  }
  await ctxC.close();
  if (errors.length) fail('console or page errors: ' + errors.join('; '));
  return { ok: true, room: shown, seqs, roomLiveMs, pingreq: frames.pingreq };
}

async function mixed(browser) {
  const room = env.ROOM, user = env.USER_A, count = Number(env.COUNT);
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  const page = await ctx.newPage();
  await signUp(page, env.URL1, user);
  await page.waitForSelector('li[data-conv="room:' + room + '"]', { timeout: 15000 });
  await page.click('li[data-conv="room:' + room + '"]');
  await page.waitForSelector('#room-list li.active[data-conv="room:' + room + '"]', { timeout: 10000 });
  await page.waitForFunction(() => document.querySelector('#older').textContent !== 'Loading…');
  process.stdout.write('READY\n');
  // the browser's own share of the conversation, interleaved with the others
  for (let i = 1; i <= Number(env.OWN || 0); i++) {
    await send(page, 'browser ' + i);
    await page.waitForTimeout(30);
  }
  await page.waitForFunction((n) => document.querySelectorAll('#msg-list .msg:not(.pending)').length >= n,
    count, { timeout: 30000 }).catch(() => null);
  const seqs = await page.evaluate((c) => window.chatDebug.seqs(c), 'room:' + room);
  const shown = await bodies(page);
  await shot(page, '10-mixed');
  await ctx.close();
  return { ok: true, bodies: shown, seqs };
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
let code = 0;
try {
  const result = process.argv[2] === 'mixed' ? await mixed(browser) : await main(browser);
  process.stdout.write(JSON.stringify(result) + '\n');
} catch (e) {
  process.stderr.write('FAILED: ' + (e && e.stack ? e.stack : e) + '\n');
  code = 1;
} finally {
  await browser.close();
}
process.exit(code);
