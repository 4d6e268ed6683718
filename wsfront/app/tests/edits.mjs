// Editing and deleting in the web app (1.1), in headless Chromium driven by
// playwright-core; run by tests/integration/test_wsfront_edits.py.
//
// Two people on two nodes: A owns a room, B joins. A edits and deletes her
// own messages and deletes one of B's (as the owner); B sees each change
// live and is offered no edit of A's messages; after a reload A's history
// shows the edit and the deletion; A deletes the room, which asks for its
// name first, and it leaves both lists.
//
// Settings come from the environment (URL1, URL2, ARTIFACTS, ROOM). Prints
// one JSON line; a failed expectation exits non-zero saying what was
// expected and what the page showed.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const env = process.env;
const ART = env.ARTIFACTS || 'artifacts';
const PASSWORD = 'blue-kettle-42';
const T = 15000;
fs.mkdirSync(ART, { recursive: true });

function fail(what) {
  throw new Error(what);
}

async function signUp(page, url, user) {
  await page.goto(url);
  await page.click('#tab-register');
  await page.fill('#username', user);
  await page.fill('#password', PASSWORD);
  await page.click('#auth-submit');
  await page.waitForSelector('#app:not([hidden])', { timeout: T });
  await page.waitForFunction(() => window.chatDebug && window.chatDebug.online(), null, { timeout: T });
}

async function bubbles(page) {
  return page.$$eval('#msg-list .msg:not(.pending) .bubble', (els) => els.map((e) => e.textContent));
}

async function waitFor(page, what, fn, arg) {
  try {
    await page.waitForFunction(fn, arg, { timeout: T });
  } catch (e) {
    fail(what + '; the page shows ' + JSON.stringify(await bubbles(page)));
  }
}

function hasBubble(page, text, what) {
  return waitFor(page, what, (t) => Array.from(document.querySelectorAll('#msg-list .msg .bubble'))
    .some((e) => e.textContent === t), text);
}

async function send(page, text) {
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
  await hasBubble(page, text, 'own message "' + text + '" shown');
  await page.waitForSelector('#msg-list .msg:not(.pending) .bubble >> text="' + text + '"', { timeout: T });
}

// the <li> of the message whose bubble reads text
function msgOf(page, text) {
  return page.locator('#msg-list li.msg', { has: page.locator('.bubble', { hasText: text }) });
}

async function main(browser) {
  const room = env.ROOM || 'studio';
  const ctxA = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const ctxB = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const a = await ctxA.newPage(), b = await ctxB.newPage();
  const errors = [];
  for (const p of [a, b]) {
    p.on('pageerror', (e) => errors.push(String(e)));
    p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  }
  await signUp(a, env.URL1, 'anna');
  await signUp(b, env.URL2, 'bert');

  await a.click('#new-room');
  await a.fill('#room-name', room);
  await a.click('#dialog-ok');
  await a.waitForSelector('#room-list li.active[data-conv="room:' + room + '"]', { timeout: T });
  await b.waitForSelector('#discover-list li[data-conv="room:' + room + '"]', { timeout: T });
  await b.click('#discover-list li[data-conv="room:' + room + '"]');
  await b.waitForSelector('#room-list li.active[data-conv="room:' + room + '"]', { timeout: T });

  await send(a, 'first draft');
  await send(a, 'a regrettable line');
  await send(b, 'bert was here');
  await hasBubble(b, 'a regrettable line', 'bert sees anna\'s messages');
  await hasBubble(a, 'bert was here', 'anna sees bert\'s message');

  // B is offered nothing on A's messages, and may edit and delete his own
  if (await msgOf(b, 'first draft').locator('.msg-edit, .msg-delete').count() !== 0) {
    fail('bert must not be offered to edit or delete anna\'s message');
  }
  if (await msgOf(b, 'bert was here').locator('.msg-edit').count() !== 1) {
    fail('bert must be offered to edit his own message');
  }

  // A edits her message: B sees the new text, marked edited
  await msgOf(a, 'first draft').locator('.msg-edit').click();
  await a.fill('#edit-body', 'final words');
  await a.click('#dialog-ok');
  await hasBubble(b, 'final words', 'bert sees the edit live');
  await waitFor(b, 'bert sees the edit marked', () => Array.from(document.querySelectorAll('#msg-list .msg'))
    .some((li) => li.querySelector('.bubble').textContent === 'final words' && li.querySelector('.edited')));

  // A deletes her own message, and (as the owner) one of B's
  await msgOf(a, 'a regrettable line').locator('.msg-delete').click();
  await a.click('#dialog-ok');
  await msgOf(a, 'bert was here').locator('.msg-delete').click();
  await a.click('#dialog-ok');
  await waitFor(b, 'bert sees both deletions live', () => {
    const got = Array.from(document.querySelectorAll('#msg-list .msg .bubble')).map((e) => e.textContent);
    return got.filter((t) => t === 'Message deleted').length === 2 &&
      !got.includes('a regrettable line') && !got.includes('bert was here');
  });
  await a.screenshot({ path: path.join(ART, 'edits-01-room.png') });

  // after a reload, history says the same
  await a.reload();
  await a.waitForFunction(() => window.chatDebug && window.chatDebug.online(), null, { timeout: T });
  await a.click('li[data-conv="room:' + room + '"]');
  await waitFor(a, 'history after a reload shows the edit and the deletions', () => {
    const got = Array.from(document.querySelectorAll('#msg-list .msg .bubble')).map((e) => e.textContent);
    return JSON.stringify(got) === JSON.stringify(['final words', 'Message deleted', 'Message deleted']);
  });
  const afterReload = await bubbles(a);

  // B may not delete the room: he is not offered to
  if (await b.isVisible('#delete-room')) fail('bert must not be offered to delete anna\'s room');
  // A deletes it: a wrong name is refused, the right one deletes
  await a.click('#delete-room');
  await a.fill('#delete-confirm', 'not-it');
  await a.click('#dialog-ok');
  await a.waitForFunction(() => document.querySelector('#dialog-error').textContent.length > 0, null, { timeout: T });
  if (!(await a.isVisible('#room-list li[data-conv="room:' + room + '"]'))) {
    fail('a wrong confirmation must not delete the room');
  }
  await a.screenshot({ path: path.join(ART, 'edits-02-confirm.png') });
  await a.fill('#delete-confirm', room);
  await a.click('#dialog-ok');
  for (const [p, who] of [[a, 'anna'], [b, 'bert']]) {
    try {
      await p.waitForSelector('li[data-conv="room:' + room + '"]', { state: 'detached', timeout: T });
    } catch (e) {
      fail('the deleted room must leave ' + who + '\'s lists');
    }
  }
  if (errors.length) fail('console errors: ' + JSON.stringify(errors));
  await ctxA.close();
  await ctxB.close();
  return { ok: true, afterReload };
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  console.log(JSON.stringify(await main(browser)));
} catch (e) {
  console.error(e.stack || String(e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
