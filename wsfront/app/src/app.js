/*
 * The chat web app. Accounts and history over the web front's HTTP API
 * (/api/register, /api/login, /api/history); everything live over MQTT
 * through the same origin's /mqtt WebSocket with MQTT.js: messages, typing,
 * presence, and the requests of PROTOCOL.md section 6 (rooms, read markers,
 * unread counts).
 *
 * Every conversation keeps its messages by seq. A message is shown once
 * (keyed by conv and seq); a jump in seq, or a reconnect, fetches the
 * missing ones with history after the last seq seen, so a network drop
 * leaves neither gaps nor duplicates.
 */
'use strict';
(function () {
  const P = 'chat';
  const USER_RE = /^[a-z0-9][a-z0-9_.-]{0,31}$/;
  const ROOM_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
  const PAGE = 50;
  const $ = (id) => document.getElementById(id);

  const S = {
    user: null, token: null, exp: 0,
    client: null, online: false,
    rpcSeq: 0, pending: new Map(),
    rooms: new Map(),      // room -> {room, owner, private, member}
    convs: new Map(),      // conv id -> conversation (see conv())
    presence: new Map(),   // user -> online
    typing: new Map(),     // conv -> Map(user -> expiry ms)
    subscribed: new Set(),
    current: null,
    lastTyping: 0,
    mode: 'login',
    timers: [],
  };

  /* ---------- small helpers ---------- */

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  let toastTimer = null;
  function toast(text, bad) {
    const t = $('toast');
    t.textContent = text;
    t.classList.toggle('bad', !!bad);
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, 4500);
  }

  function status(text) {
    $('status').textContent = text || '';
    $('status').hidden = !text;
  }

  function dmConv(a, b) { return a < b ? 'dm:' + a + ':' + b : 'dm:' + b + ':' + a; }

  function convTitle(c) { return c.kind === 'room' ? c.room : c.peer; }

  function timeOf(ts) {
    const d = new Date(ts);
    const now = new Date();
    const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    return d.toDateString() === now.toDateString() ? hm : d.toLocaleDateString() + ' ' + hm;
  }

  function rand() {
    const a = new Uint8Array(6);
    crypto.getRandomValues(a);
    return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /* ---------- accounts ---------- */

  function saveAuth() {
    localStorage.setItem('chat.auth', JSON.stringify({ user: S.user, token: S.token, exp: S.exp }));
  }

  function loadAuth() {
    try {
      const a = JSON.parse(localStorage.getItem('chat.auth') || 'null');
      if (a && a.token && a.exp * 1000 > Date.now() + 60000 && USER_RE.test(a.user)) return a;
    } catch (e) { /* a bad entry is the same as none */ }
    return null;
  }

  function setMode(mode) {
    S.mode = mode;
    $('tab-login').classList.toggle('active', mode === 'login');
    $('tab-register').classList.toggle('active', mode === 'register');
    $('auth-submit').textContent = mode === 'login' ? 'Sign in' : 'Create account';
    $('password').autocomplete = mode === 'login' ? 'current-password' : 'new-password';
    $('auth-hint').hidden = mode === 'login';
    $('auth-error').textContent = '';
  }

  async function errorText(resp) {
    try {
      const j = await resp.json();
      if (j && j.error && j.error.message) return j.error.message;
    } catch (e) { /* not JSON */ }
    return 'the server answered ' + resp.status;
  }

  async function submitAuth(ev) {
    ev.preventDefault();
    const username = $('username').value.trim().toLowerCase();
    const password = $('password').value;
    const err = $('auth-error');
    if (!USER_RE.test(username)) {
      err.textContent = 'Usernames are 1-32 characters: a-z, 0-9, _ . - (starting with a letter or digit).';
      return;
    }
    if (!password) { err.textContent = 'Enter your password.'; return; }
    $('auth-submit').disabled = true;
    err.textContent = '';
    try {
      let resp;
      // a 503 with a short Retry-After (a sign-in in the seconds right
      // after "sign out everywhere", or the hashing workers all busy) is
      // tried again after that wait, twice at most
      for (let tries = 0; ; tries++) {
        resp = await fetch('/api/' + S.mode, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ username, password }),
        });
        const wait = parseInt(resp.headers.get('retry-after') || '', 10);
        if (resp.status !== 503 || tries >= 2 || !(wait > 0 && wait <= 10)) break;
        err.textContent = 'Signing in…';
        await new Promise((r) => setTimeout(r, wait * 1000));
        err.textContent = '';
      }
      if (resp.ok) {
        const j = await resp.json();
        S.user = j.user || username;
        S.token = j.token;
        S.exp = j.exp;
        saveAuth();
        $('password').value = '';
        startApp();
        return;
      }
      if (resp.status === 409) err.textContent = 'That username is taken. Pick another one, or sign in.';
      else if (resp.status === 401) err.textContent = 'Wrong username or password.';
      else if (resp.status === 429) err.textContent = 'Too many attempts. Wait a minute and try again.';
      else err.textContent = (await errorText(resp)).replace(/^./, (c) => c.toUpperCase()) + '.';
    } catch (e) {
      err.textContent = 'Cannot reach the server. Check your connection and try again.';
    } finally {
      $('auth-submit').disabled = false;
    }
  }

  /* Sign out: this token is revoked at the server (POST /api/logout), so
   * a copy of it left anywhere stops working too. Only the server's 204
   * says so: on any other answer the token still works, so the page says
   * that it did not sign out and stays signed in, to be tried again. A
   * 401 means the token was dead already (expired or revoked): signed out. */
  async function logout() {
    const token = S.token;
    if (!token) { signOut(''); return; }
    const btn = $('logout');
    btn.disabled = true;
    let why;
    try {
      const resp = await fetch('/api/logout', {
        method: 'POST', headers: { Authorization: 'Bearer ' + token }, cache: 'no-store',
      });
      if (resp.status === 204 || resp.status === 401) {
        if (S.token === token) signOut('');
        return;
      }
      why = await errorText(resp);
      const wait = parseInt(resp.headers.get('retry-after') || '', 10);
      if (wait > 0) why += ' (try again in ' + wait + ' s)';
    } catch (e) {
      why = 'the server cannot be reached';
    } finally {
      btn.disabled = false;
    }
    toast('Not signed out: ' + why + '. You are still signed in.', true);
  }

  /* Sign out everywhere: user.revoke on oneself revokes every token issued
   * until now, which cuts this connection too, so the reply may never
   * come; either way this device signs out. */
  async function logoutEverywhere() {
    if (!window.confirm('Sign out on every device, this one included?')) return;
    const token = S.token;
    let msg = 'You are signed out on every device.';
    S.leaving = true;
    const cut = new Promise((resolve) => { S.onLeave = resolve; });
    let failed = null;
    try { await Promise.race([rpc('user.revoke', { user: S.user }), cut]); } catch (e) {
      if (e && e.code === 'timeout') msg = 'The server did not confirm; this device is signed out.';
      else failed = e;
    }
    S.leaving = false;
    S.onLeave = null;
    if (failed) { toast(rpcError(failed), true); return; } // nothing was revoked: stay
    if (S.token === token) signOut(msg); // not a session signed in since
  }

  function signOut(message) {
    localStorage.removeItem('chat.auth');
    if (S.client) { S.client.end(true); S.client = null; }
    S.timers.forEach(clearInterval);
    S.timers = [];
    S.user = S.token = null;
    S.rooms.clear(); S.convs.clear(); S.presence.clear(); S.typing.clear();
    S.subscribed.clear(); S.pending.clear();
    S.current = null;
    $('app').hidden = true;
    $('auth').hidden = false;
    setMode('login');
    $('auth-error').textContent = message || '';
  }

  /* ---------- MQTT ---------- */

  function connect() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/mqtt';
    const client = mqtt.connect(url, {
      username: S.user, password: S.token, clientId: S.user + ':web-' + rand(),
      protocolVersion: 4, clean: true, keepalive: 30, reconnectPeriod: 2000,
      connectTimeout: 8000, resubscribe: false,
    });
    S.client = client;
    client.on('connect', () => { if (S.client === client) onConnect(); });
    client.on('message', (topic, payload) => { if (S.client === client) onMessage(topic, payload); });
    client.on('close', () => {
      if (S.client !== client) return;
      if (S.leaving && S.onLeave) S.onLeave(); // cut by our own user.revoke
      if (S.online) status('Connection lost. Reconnecting…');
      S.online = false;
      S.subscribed.clear();
      setDot($('me-dot'), false, 'connected', 'reconnecting');
    });
    client.on('offline', () => { if (S.client === client) status('You are offline. Reconnecting…'); });
    client.on('error', (err) => {
      if (S.client !== client) return;
      // CONNACK 4/5: the broker refused the token (expired or revoked)
      if (err && (err.code === 4 || err.code === 5 || err.code === 134 || err.code === 135)) {
        if (!S.leaving) signOut('Your session has ended. Sign in again.');
      }
    });
  }

  function subscribe(topics) {
    const want = topics.filter((t) => !S.subscribed.has(t));
    if (!want.length || !S.client) return Promise.resolve();
    want.forEach((t) => S.subscribed.add(t));
    return new Promise((resolve) => {
      S.client.subscribe(want, { qos: 1 }, (err, granted) => {
        (granted || []).forEach((g) => { if (g.qos >= 128) S.subscribed.delete(g.topic); });
        if (err) want.forEach((t) => S.subscribed.delete(t));
        resolve();
      });
    });
  }

  function unsubscribe(topics) {
    topics.forEach((t) => S.subscribed.delete(t));
    if (S.client) S.client.unsubscribe(topics);
  }

  function roomTopics(room) {
    return [P + '/room/' + room, P + '/room/' + room + '/typing', P + '/room/' + room + '/events'];
  }

  /* A request over MQTT: resolves with result, rejects with {code, message}. */
  function rpc(method, params) {
    return new Promise((resolve, reject) => {
      if (!S.client || !S.online) {
        reject({ code: 'unavailable', message: 'not connected' });
        return;
      }
      const id = 'w' + (++S.rpcSeq) + '-' + rand();
      const timer = setTimeout(() => {
        S.pending.delete(id);
        reject({ code: 'timeout', message: 'the server did not answer' });
      }, 10000);
      S.pending.set(id, { resolve, reject, timer });
      S.client.publish(P + '/in/' + S.user + '/rpc',
        JSON.stringify({ id, method, params: params || {} }), { qos: 1 });
    });
  }

  async function onConnect() {
    S.online = true;
    status(null);
    setDot($('me-dot'), true, 'connected', 'reconnecting');
    S.subscribed.clear();
    await subscribe([P + '/user/' + S.user + '/#', P + '/presence/+', P + '/rooms']);
    try {
      await refreshRooms();
      await loadUnread();
      await catchUp();
      reopenLast();
    } catch (e) {
      toast('Could not load everything: ' + (e.message || e.code || e), true);
    }
  }

  /* After a reload: the conversation that was open, if it still is one of
   * mine (a room I left or that is gone is not reopened). */
  function reopenLast() {
    if (S.current) return;
    let id = null;
    try { id = localStorage.getItem('chat.last.' + S.user); } catch (e) { return; }
    if (!id) return;
    const room = id.startsWith('room:') ? S.rooms.get(id.slice(5)) : null;
    const dm = id.startsWith('dm:') && id.split(':').slice(1).includes(S.user);
    if ((room && room.member) || dm) openConv(id);
  }

  function onMessage(topic, payload) {
    let m;
    try { m = JSON.parse(new TextDecoder().decode(payload)); } catch (e) { return; }
    if (!m || typeof m !== 'object') return;
    const parts = topic.split('/');
    if (parts[1] === 'rooms' && parts.length === 2) return onRoomsEvent(m);
    if (parts[1] === 'presence' && parts.length === 3) {
      S.presence.set(parts[2], !!m.online);
      renderPresence();
      return;
    }
    if (parts[1] === 'user') {
      const leaf = parts[3];
      if (leaf === 'rpc') return onReply(m);
      if (leaf === 'notice') return onNotice(m);
      if (leaf === 'inbox') {
        if (m.type === 'msg' || m.type === 'edit' || m.type === 'delete') onLive(m);
        else if (m.type === 'typing') onTyping(m);
        else if (m.type === 'read') onReadElsewhere(m);
        else if (m.type === 'room') refreshSoon();
      }
      return;
    }
    if (parts[1] === 'room') {
      if (parts.length === 3 && (m.type === 'msg' || m.type === 'edit' || m.type === 'delete')) onLive(m);
      else if (parts[3] === 'typing') onTyping(m);
      else if (parts[3] === 'events') onRoomEvent(m);
    }
  }

  function onReply(m) {
    const p = S.pending.get(m.id);
    if (!p) return;
    S.pending.delete(m.id);
    clearTimeout(p.timer);
    if (m.error) p.reject(m.error);
    else p.resolve(m.result || {});
  }

  const NOTICE_TEXT = {
    not_member: 'You are not a member of that room.',
    forbidden: 'You are not allowed to post there.',
    rate_limited: 'You are sending too fast. Slow down a little.',
    too_large: 'That message is too long (4 KiB at most).',
    not_found: 'That conversation does not exist.',
  };

  function onNotice(m) {
    // typing is best effort: a dropped signal is no failed message
    if (m && typeof m.topic === 'string' && m.topic.includes('/typing/')) return;
    if (m && m.code === 'unavailable' && retryPost(m)) return;
    // a DM to a name nobody has is refused not_found (no such user)
    const dm = m.code === 'not_found' && typeof m.topic === 'string' && m.topic.includes('/dm/');
    toast('Not sent: ' + (dm ? 'There is no user by that name.'
      : NOTICE_TEXT[m.code] || m.message || m.code), true);
    // the pending copies in that conversation did not go through
    document.querySelectorAll('.msg.pending').forEach((e) => e.classList.add('failed'));
  }

  // A post refused as `unavailable` (the service is restarting or
  // reconnecting: nothing was stored) is sent again with the same cid,
  // backing off from 0.5 s; after five refusals it is shown as failed.
  function retryPost(m) {
    if (!m.cid || typeof m.topic !== 'string') return false;
    for (const c of S.convs.values()) {
      const o = c.outbox.find((x) => x.cid === m.cid);
      if (!o) continue;
      o.tries = (o.tries || 0) + 1;
      if (o.tries > 5) return false;
      setTimeout(() => {
        if (c.outbox.includes(o) && S.client) {
          S.client.publish(m.topic, JSON.stringify({ body: o.body, cid: o.cid }), { qos: 1 });
        }
      }, 250 * 2 ** o.tries);
      return true;
    }
    return false;
  }

  /* ---------- conversations ---------- */

  function conv(id) {
    let c = S.convs.get(id);
    if (c) return c;
    c = { id, msgs: [], seqs: new Set(), first: 0, last: 0, more: true, loaded: false,
      unread: 0, fetching: null, loadingOlder: false, outbox: [] };
    if (id.startsWith('room:')) { c.kind = 'room'; c.room = id.slice(5); }
    else { const [, a, b] = id.split(':'); c.kind = 'dm'; c.peer = a === S.user ? b : a; }
    S.convs.set(id, c);
    return c;
  }

  function insert(c, m) {
    if (typeof m.seq !== 'number' || c.seqs.has(m.seq)) return false;
    c.seqs.add(m.seq);
    let i = c.msgs.length;
    while (i > 0 && c.msgs[i - 1].seq > m.seq) i--;
    c.msgs.splice(i, 0, m);
    c.first = c.msgs[0].seq;
    c.last = c.msgs[c.msgs.length - 1].seq;
    if (m.cid) c.outbox = c.outbox.filter((o) => o.cid !== m.cid);
    applyEvent(c, m);
    return true;
  }

  /* An edit or deletion (1.1) changes the message it refers to; the event
   * itself stays in c.msgs for the seq bookkeeping but is not shown. */
  function applyEvent(c, m) {
    if (m.type !== 'edit' && m.type !== 'delete') return;
    const target = c.msgs.find((x) => x.seq === m.ref && (x.type || 'msg') === 'msg');
    if (!target || target.deleted) return;
    if (m.type === 'delete') {
      target.deleted = true;
      delete target.body;
      delete target.edited;
    } else if (!target.edited || target.edited <= m.ts) {
      target.body = m.body;
      target.edited = m.ts;
    }
  }

  function isEvent(m) { return m.type === 'edit' || m.type === 'delete'; }

  async function history(id, params) {
    const q = new URLSearchParams(Object.assign({ conv: id }, params));
    const resp = await fetch('/api/history?' + q, { headers: { Authorization: 'Bearer ' + S.token } });
    if (resp.status === 401) {
      signOut('Your session has ended. Sign in again.');
      throw new Error('signed out');
    }
    if (!resp.ok) throw new Error(await errorText(resp));
    return (await resp.json()).messages || [];
  }

  /* Everything after c.last, page by page: the catch-up after a drop or a
   * jump in seq. One at a time per conversation. */
  function fetchAfter(c) {
    if (c.fetching) return c.fetching;
    c.fetching = (async () => {
      try {
        for (let guard = 0; guard < 50; guard++) {
          const got = await history(c.id, { after: c.last, limit: 200 });
          let added = 0;
          got.forEach((m) => { if (insert(c, m)) added++; });
          countUnread(c, got);
          if (got.length < 200) break;
          if (!added) break;
        }
      } finally {
        c.fetching = null;
      }
      if (S.current === c.id) { renderMessages(true); markRead(c); }
      renderLists();
    })();
    return c.fetching;
  }

  function countUnread(c, msgs) {
    if (S.current === c.id && document.visibilityState === 'visible') return;
    msgs.forEach((m) => { if (!isEvent(m) && m.from !== S.user && m.seq > (c.readSeq || 0)) c.unread++; });
  }

  async function openConv(id) {
    const c = conv(id);
    S.current = id;
    try { localStorage.setItem('chat.last.' + S.user, id); } catch (e) { /* private mode */ }
    $('app').classList.add('in-conv');
    renderHeader();
    renderLists();
    renderMessages(true);
    $('input').disabled = false;
    $('send').disabled = false;
    if (window.matchMedia('(min-width: 701px)').matches) $('input').focus();
    if (c.kind === 'room') await subscribe(roomTopics(c.room));
    if (!c.loaded) {
      $('older').textContent = 'Loading…';
      try {
        const got = await history(id, { limit: PAGE });
        got.forEach((m) => insert(c, m));
        c.loaded = true;
        c.more = got.length === PAGE && c.first > 1;
      } catch (e) {
        if (S.current === id) toast('Could not load the history: ' + e.message, true);
      }
      if (S.current === id) renderMessages(true);
    }
    markRead(c);
  }

  async function loadOlder() {
    const c = S.current && S.convs.get(S.current);
    if (!c || !c.loaded || !c.more || c.loadingOlder || !c.first) return;
    c.loadingOlder = true;
    $('older').textContent = 'Loading older messages…';
    const box = $('messages');
    const before = box.scrollHeight - box.scrollTop;
    try {
      const got = await history(c.id, { before: c.first, limit: PAGE });
      got.forEach((m) => insert(c, m));
      c.more = got.length === PAGE && c.first > 1;
    } catch (e) {
      toast('Could not load older messages: ' + e.message, true);
    }
    c.loadingOlder = false;
    if (S.current === c.id) {
      renderMessages(false);
      box.scrollTop = box.scrollHeight - before;
    }
  }

  function onLive(m) {
    if (typeof m.conv !== 'string' || typeof m.seq !== 'number') return;
    const c = conv(m.conv);
    clearTyping(m.conv, m.from);
    if (c.seqs.has(m.seq)) return;
    if (c.loaded && c.last && m.seq > c.last + 1) {
      // a gap: fetch what is missing (this message included), in order
      fetchAfter(c).catch(() => { insert(c, m); renderMessages(false); });
      return;
    }
    const known = c.loaded || c.last > 0;
    insert(c, m);
    if (!known) c.more = m.seq > 1;
    const here = S.current === c.id && document.visibilityState === 'visible';
    if (!isEvent(m) && m.from !== S.user && !here) c.unread++;
    if (S.current === c.id) { appendMessage(c, m); markRead(c); }
    renderLists();
  }

  /* Tells the server (and so my other devices) how far I have read: at
   * once, one request at a time per conversation, again if more arrived
   * meanwhile. */
  function markRead(c) {
    if (!c.last || document.visibilityState !== 'visible' || S.current !== c.id) return;
    c.unread = 0;
    renderLists();
    if ((c.readSeq || 0) >= c.last || c.reading || !S.online) return;
    const seq = c.last;
    c.reading = true;
    rpc('read', { conv: c.id, seq })
      .then(() => {
        c.readSeq = Math.max(c.readSeq || 0, seq);
        c.reading = false;
        if (c.readSeq < c.last) markRead(c);
      })
      .catch(() => { c.reading = false; /* retried with the next message */ });
  }

  function onReadElsewhere(m) {
    const c = S.convs.get(m.conv);
    if (!c) return;
    c.readSeq = Math.max(c.readSeq || 0, m.seq);
    if (m.seq >= c.last) c.unread = 0;
    renderLists();
  }

  /* Unread counts come a page at a time (the server answers at most 200
   * conversations per request): follow `next` until it is null, at most
   * UNREAD_PAGES pages (the conversation caps keep real users well
   * below). A page that fails ends the walk with what was loaded. */
  const UNREAD_PAGES = 25;

  async function loadUnread() {
    let cursor = null;
    for (let page = 0; page < UNREAD_PAGES; page++) {
      let r;
      try {
        r = await rpc('unread', cursor ? { cursor } : {});
      } catch (e) { break; }
      (r.conversations || []).forEach((u) => {
        if (typeof u.conv !== 'string') return;
        if (u.conv.startsWith('room:')) {
          const room = S.rooms.get(u.conv.slice(5));
          if (!room || !room.member) return;
        }
        const c = conv(u.conv);
        c.readSeq = u.read_seq || 0;
        c.lastKnown = u.last_seq || 0;
        c.unread = S.current === c.id ? 0 : (u.unread || 0);
      });
      cursor = typeof r.next === 'string' ? r.next : null;
      if (!cursor) break;
    }
    renderLists();
  }

  async function catchUp() {
    const jobs = [];
    S.convs.forEach((c) => { if (c.loaded && c.last) jobs.push(fetchAfter(c)); });
    await Promise.all(jobs.map((p) => p.catch(() => null)));
  }

  /* ---------- rooms ---------- */

  /* The list, a page at a time (at most ROOM_PAGES pages: the search box
   * finds the rest). Asked when connecting and when one of my rooms
   * changes (a room event on my inbox); new public rooms arrive live on
   * <prefix>/rooms, so there is no polling. */
  const ROOM_PAGES = 10;

  async function listRooms(query) {
    const out = [];
    let cursor = null;
    for (let i = 0; i < ROOM_PAGES; i++) {
      const params = { limit: 200 };
      if (query) params.query = query;
      if (cursor) params.cursor = cursor;
      const r = await rpc('rooms.list', params);
      (r.rooms || []).forEach((room) => { if (room && ROOM_RE.test(room.room)) out.push(room); });
      cursor = r.next;
      if (!cursor) break;
    }
    return out;
  }

  function onRoomsEvent(m) {
    if (!m || m.type !== 'room' || typeof m.room !== 'string' || !ROOM_RE.test(m.room)) return;
    if (m.event === 'created' && !S.rooms.has(m.room)) {
      S.rooms.set(m.room, { room: m.room, owner: '', private: false, member: false });
    } else if (m.event === 'deleted') {
      S.rooms.delete(m.room);
    }
    renderLists();
  }

  /* Room events can come in bursts (someone invites me to many rooms):
   * one list request for a burst, not one per event. */
  let refreshTimer = null;
  function refreshSoon() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      refreshRooms().catch(() => null);
    }, 300);
  }

  async function searchRooms() {
    const q = $('room-search').value.trim().toLowerCase();
    S.search = q;
    if (q && ROOM_RE.test(q)) {
      (await listRooms(q)).forEach((room) => { if (!S.rooms.has(room.room)) S.rooms.set(room.room, room); });
    }
    renderLists();
  }

  async function refreshRooms() {
    const seen = new Set();
    (await listRooms(null)).forEach((room) => {
      seen.add(room.room);
      S.rooms.set(room.room, room);
    });
    for (const name of Array.from(S.rooms.keys())) {
      if (!seen.has(name)) S.rooms.delete(name);
    }
    const topics = [];
    S.rooms.forEach((room) => { if (room.member) topics.push(...roomTopics(room.room)); });
    await subscribe(topics);
    // rooms I left or was removed from: stop listening
    const gone = Array.from(S.subscribed).filter((t) => {
      const m = /^chat\/room\/([^/]+)/.exec(t);
      if (!m) return false;
      const room = S.rooms.get(m[1]);
      return (!room || !room.member) && S.current !== 'room:' + m[1];
    });
    if (gone.length) unsubscribe(gone);
    renderLists();
    renderHeader();
  }

  function onRoomEvent(m) {
    if (!m || typeof m.room !== 'string') return;
    const c = S.convs.get('room:' + m.room);
    if (m.type === 'deleted') {
      if (S.current === 'room:' + m.room) toast('# ' + m.room + ' was deleted by ' + m.user + '.', false);
      roomGone(m.room);
      return;
    }
    if (c && S.current === c.id && (m.type === 'join' || m.type === 'leave')) {
      const li = el('li', 'sys', m.user + (m.type === 'join' ? ' joined' : ' left'));
      $('msg-list').appendChild(li);
      scrollToEnd();
    }
    if (m.user === S.user) refreshRooms().catch(() => null);
  }

  /* ---------- typing ---------- */

  function onTyping(m) {
    if (!m || typeof m.conv !== 'string' || m.from === S.user) return;
    let t = S.typing.get(m.conv);
    if (!t) { t = new Map(); S.typing.set(m.conv, t); }
    t.set(m.from, Date.now() + 4000);
    renderTyping();
  }

  function clearTyping(id, user) {
    const t = S.typing.get(id);
    if (t && t.delete(user)) renderTyping();
  }

  function sendTyping() {
    const c = S.current && S.convs.get(S.current);
    if (!c || !S.online || Date.now() - S.lastTyping < 2000) return;
    S.lastTyping = Date.now();
    const target = c.kind === 'room' ? 'room/' + c.room : 'dm/' + c.peer;
    S.client.publish(P + '/in/' + S.user + '/typing/' + target, '', { qos: 0 });
  }

  /* ---------- sending ---------- */

  function send(ev) {
    ev.preventDefault();
    const c = S.current && S.convs.get(S.current);
    const input = $('input');
    const body = input.value.trim();
    if (!c || !body) return;
    if (new TextEncoder().encode(body).length > 4096) {
      toast('That message is too long (4 KiB at most).', true);
      return;
    }
    const cid = 'c' + rand();
    const target = c.kind === 'room' ? 'room/' + c.room : 'dm/' + c.peer;
    S.client.publish(P + '/in/' + S.user + '/' + target, JSON.stringify({ body, cid }), { qos: 1 });
    c.outbox.push({ cid, body, ts: Date.now() });
    input.value = '';
    autosize();
    S.lastTyping = 0;
    renderMessages(true);
    if (c.kind === 'room') {
      const room = S.rooms.get(c.room);
      // posting to a public room joins it
      if (room && !room.member) setTimeout(() => refreshRooms().catch(() => null), 500);
    }
  }

  function autosize() {
    const t = $('input');
    t.style.height = 'auto';
    t.style.height = Math.min(t.scrollHeight, 160) + 'px';
  }

  /* ---------- rendering ---------- */

  function renderLists() {
    const rooms = $('room-list'), discover = $('discover-list'), dms = $('dm-list');
    rooms.textContent = '';
    discover.textContent = '';
    dms.textContent = '';
    const sorted = Array.from(S.rooms.values()).sort((a, b) => a.room.localeCompare(b.room));
    sorted.forEach((r) => {
      const id = 'room:' + r.room;
      const c = S.convs.get(id);
      const li = el('li', S.current === id ? 'active' : '');
      if (S.current === id) li.setAttribute('aria-current', 'true');
      li.dataset.conv = id;
      li.appendChild(r.private ? lockIcon() : el('span', 'hash', '#'));
      li.appendChild(el('span', 'name', r.room));
      if (c && c.unread > 0 && r.member) li.appendChild(el('span', 'badge', String(c.unread)));
      if (r.member) rooms.appendChild(li);
      else if (S.search && !r.room.startsWith(S.search)) return;
      else { li.classList.add('discover'); li.title = 'Join ' + r.room; discover.appendChild(li); }
    });
    $('discover-head').hidden = !discover.children.length;
    const list = Array.from(S.convs.values()).filter((c) => c.kind === 'dm')
      .sort((a, b) => lastTs(b) - lastTs(a) || a.peer.localeCompare(b.peer));
    list.forEach((c) => {
      const li = el('li', S.current === c.id ? 'active' : '');
      if (S.current === c.id) li.setAttribute('aria-current', 'true');
      li.dataset.conv = c.id;
      li.appendChild(presenceDot(c.peer));
      li.appendChild(el('span', 'name', c.peer));
      li.title = c.peer + (S.presence.get(c.peer) ? ' (online)' : ' (offline)');
      if (c.unread > 0) li.appendChild(el('span', 'badge', String(c.unread)));
      dms.appendChild(li);
    });
    const total = Array.from(S.convs.values()).reduce((n, c) => n + (c.unread || 0), 0);
    document.title = total ? '(' + total + ') Chat' : 'Chat';
  }

  /* A padlock drawn as SVG: emoji fonts are not everywhere. */
  function lockIcon() {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 16 16');
    svg.setAttribute('class', 'hash lock');
    svg.setAttribute('aria-label', 'private');
    const body = document.createElementNS(NS, 'rect');
    [['x', 3], ['y', 7], ['width', 10], ['height', 8], ['rx', 1.5]].forEach(([k, v]) => body.setAttribute(k, v));
    const shackle = document.createElementNS(NS, 'path');
    shackle.setAttribute('d', 'M5 7V5a3 3 0 0 1 6 0v2');
    shackle.setAttribute('fill', 'none');
    shackle.setAttribute('stroke', 'currentColor');
    shackle.setAttribute('stroke-width', '1.6');
    body.setAttribute('fill', 'currentColor');
    svg.appendChild(shackle);
    svg.appendChild(body);
    return svg;
  }

  /* Presence and connection are shown by colour and said in words: the
   * dot's tooltip and accessible name carry the state. */
  function setDot(dot, on, onText, offText) {
    dot.classList.toggle('on', !!on);
    const text = on ? onText : offText;
    dot.title = text;
    dot.setAttribute('role', 'img');
    dot.setAttribute('aria-label', text);
  }

  function presenceDot(user) {
    const dot = el('span', 'dot');
    dot.dataset.user = user;
    setDot(dot, S.presence.get(user), 'online', 'offline');
    return dot;
  }

  function lastTs(c) { return c.msgs.length ? c.msgs[c.msgs.length - 1].ts : 0; }

  function renderPresence() {
    document.querySelectorAll('.dot[data-user]').forEach((d) => {
      setDot(d, S.presence.get(d.dataset.user), 'online', 'offline');
    });
    renderHeader();
  }

  function renderHeader() {
    const c = S.current && S.convs.get(S.current);
    const room = c && c.kind === 'room' ? S.rooms.get(c.room) : null;
    $('conv-name').textContent = c ? (c.kind === 'room' ? '# ' + c.room : c.peer) : 'No conversation open';
    $('conv-name').title = $('conv-name').textContent;
    let sub = '';
    if (c && c.kind === 'dm') sub = S.presence.get(c.peer) ? 'online' : 'offline';
    else if (room) sub = (room.private ? 'private room' : 'public room') + ' · owner ' + room.owner +
      (room.member ? '' : ' · not joined: sending a message joins');
    $('conv-sub').textContent = sub;
    $('members-btn').hidden = !room;
    $('leave').hidden = !(room && room.member);
    $('delete-room').hidden = !(room && room.owner === S.user);
    $('invite').hidden = !(room && room.private && (room.owner === S.user));
    $('empty').hidden = !!c;
  }

  function renderTyping() {
    const now = Date.now();
    const t = S.current && S.typing.get(S.current);
    let who = [];
    if (t) {
      t.forEach((exp, user) => { if (exp > now) who.push(user); else t.delete(user); });
    }
    $('typing').textContent = who.length === 0 ? '' :
      who.length === 1 ? who[0] + ' is typing…' : who.join(', ') + ' are typing…';
  }

  function messageNode(m, prev, mine, extraClass) {
    const first = !prev || prev.from !== m.from || m.ts - prev.ts > 5 * 60000;
    const li = el('li', 'msg' + (mine ? ' mine' : '') + (first ? ' first' : '') + (extraClass || ''));
    if (m.seq) li.dataset.seq = String(m.seq);
    if (first) {
      const meta = el('div', 'meta');
      meta.appendChild(el('b', '', m.from));
      meta.appendChild(document.createTextNode(timeOf(m.ts)));
      li.appendChild(meta);
    }
    if (m.deleted) {
      li.classList.add('deleted');
      li.appendChild(el('div', 'bubble', 'Message deleted'));
      return li;
    }
    li.appendChild(el('div', 'bubble', m.body));
    if (m.edited) li.appendChild(el('span', 'edited', 'edited'));
    const c = S.current && S.convs.get(S.current);
    const room = c && c.kind === 'room' ? S.rooms.get(c.room) : null;
    if (m.seq && !extraClass && (mine || (room && room.owner === S.user))) {
      const acts = el('div', 'msg-actions');
      if (mine) {
        const e = el('button', 'link msg-edit', 'Edit');
        e.type = 'button';
        e.onclick = () => editMessage(m);
        acts.appendChild(e);
      }
      const d = el('button', 'link msg-delete', 'Delete');
      d.type = 'button';
      d.onclick = () => deleteMessage(m);
      acts.appendChild(d);
      li.appendChild(acts);
    }
    return li;
  }

  function editMessage(m) {
    const c = S.convs.get(S.current);
    let input;
    dialog('Edit message', (b) => {
      input = el('textarea');
      input.id = 'edit-body';
      input.maxLength = 4096;
      input.rows = 3;
      input.value = m.body;
      b.appendChild(input);
    }, async () => {
      const body = input.value.trim();
      if (!body) return 'A message cannot be empty.';
      const ev = await rpc('msg.edit', { conv: c.id, seq: m.seq, body });
      insert(c, ev);
      renderMessages(false);
      return null;
    }, 'Save');
  }

  function deleteMessage(m) {
    const c = S.convs.get(S.current);
    dialog('Delete this message?', (b) => {
      b.appendChild(el('p', '', 'It is removed for everyone, for good.'));
    }, async () => {
      const ev = await rpc('msg.delete', { conv: c.id, seq: m.seq });
      insert(c, ev);
      renderMessages(false);
      return null;
    }, 'Delete');
  }

  function deleteRoom() {
    const c = S.convs.get(S.current);
    if (!c || c.kind !== 'room') return;
    let confirmInput;
    dialog('Delete # ' + c.room + '?', (b) => {
      b.appendChild(el('p', '', 'The room, its members and all its messages are removed for good, ' +
        'and its name cannot be used again. Type the room name to confirm.'));
      confirmInput = el('input');
      confirmInput.type = 'text'; confirmInput.id = 'delete-confirm';
      confirmInput.autocapitalize = 'none'; confirmInput.spellcheck = false;
      b.appendChild(confirmInput);
    }, async () => {
      if (confirmInput.value.trim() !== c.room) return 'Type ' + c.room + ' to confirm.';
      await rpc('room.delete', { room: c.room });
      roomGone(c.room);
      return null;
    }, 'Delete room');
  }

  /* A room that was deleted (by me or someone else): out of the lists. */
  function roomGone(room) {
    const id = 'room:' + room;
    unsubscribe(roomTopics(room));
    S.rooms.delete(room);
    S.convs.delete(id);
    if (S.current === id) {
      S.current = null;
      $('app').classList.remove('in-conv');
      renderMessages(true);
    }
    renderLists();
    renderHeader();
  }

  function nearBottom() {
    const b = $('messages');
    return b.scrollHeight - b.scrollTop - b.clientHeight < 80;
  }

  function scrollToEnd() { const b = $('messages'); b.scrollTop = b.scrollHeight; }

  function renderMessages(toEnd) {
    const c = S.current && S.convs.get(S.current);
    const list = $('msg-list');
    const stick = toEnd || nearBottom();
    list.textContent = '';
    if (!c) { $('older').textContent = ''; return; }
    let prev = null;
    c.msgs.forEach((m) => {
      if (isEvent(m)) return;
      list.appendChild(messageNode(m, prev, m.from === S.user));
      prev = m;
    });
    c.outbox.forEach((o) => {
      list.appendChild(messageNode({ from: S.user, ts: o.ts, body: o.body }, prev, true, ' pending'));
      prev = { from: S.user, ts: o.ts };
    });
    $('older').textContent = !c.loaded ? 'Loading…' : c.more ? '' :
      c.msgs.length ? 'This is the beginning of the conversation.' : 'No messages yet. Say hello!';
    renderTyping();
    if (stick) scrollToEnd();
  }

  function appendMessage(c, m) {
    // the simple way keeps order, grouping and pending copies right
    renderMessages(m.from === S.user);
  }

  /* ---------- dialogs ---------- */

  function dialog(title, build, onOk, okText) {
    const d = $('dialog');
    $('dialog-title').textContent = title;
    const body = $('dialog-body');
    body.textContent = '';
    build(body);
    $('dialog-error').textContent = '';
    $('dialog-ok').textContent = okText || 'OK';
    $('dialog-ok').hidden = !onOk;
    $('dialog-cancel').textContent = onOk ? 'Cancel' : 'Close';
    d.onsubmit = async (ev) => {
      ev.preventDefault();
      if (!onOk) { d.close(); return; }
      $('dialog-ok').disabled = true;
      try {
        const err = await onOk();
        if (err) $('dialog-error').textContent = err;
        else d.close();
      } catch (e) {
        $('dialog-error').textContent = rpcError(e);
      } finally {
        $('dialog-ok').disabled = false;
      }
    };
    d.showModal();
    const first = body.querySelector('input');
    if (first) first.focus();
  }

  function rpcError(e) {
    const map = {
      conflict: 'That room already exists. Pick another name, or join it from the list.',
      forbidden: 'You are not allowed to do that.',
      not_found: 'No such room or user.',
      rate_limited: 'Too many requests. Wait a moment.',
      unavailable: 'The server is busy or reconnecting. Try again.',
      timeout: 'The server did not answer. Try again.',
    };
    return (e && map[e.code]) || (e && e.message) || String(e);
  }

  function textInput(parent, id, placeholder) {
    const i = el('input');
    i.type = 'text'; i.id = id; i.placeholder = placeholder;
    i.autocapitalize = 'none'; i.spellcheck = false;
    parent.appendChild(i);
    return i;
  }

  function newRoom() {
    let name, priv;
    dialog('Create a room', (b) => {
      name = textInput(b, 'room-name', 'room name (a-z, 0-9, _ -)');
      const l = el('label', 'check');
      priv = el('input'); priv.type = 'checkbox'; priv.id = 'room-private';
      l.appendChild(priv);
      l.appendChild(document.createTextNode('Private (members only, by invitation)'));
      b.appendChild(l);
    }, async () => {
      const room = name.value.trim().toLowerCase();
      if (!ROOM_RE.test(room)) return 'Room names are 1-64 characters: a-z, 0-9, _ and -.';
      await rpc('room.create', { room, private: priv.checked });
      await refreshRooms();
      openConv('room:' + room);
      return null;
    }, 'Create');
  }

  function newDm() {
    let who;
    dialog('Message someone', (b) => { who = textInput(b, 'dm-user', 'their username'); }, async () => {
      const peer = who.value.trim().toLowerCase();
      if (!USER_RE.test(peer)) return 'That is not a valid username.';
      if (peer === S.user) return 'That is you. Pick someone else.';
      openConv(dmConv(S.user, peer));
      return null;
    }, 'Open');
  }

  function invite() {
    const c = S.convs.get(S.current);
    let who;
    dialog('Invite to ' + c.room, (b) => { who = textInput(b, 'invite-user', 'their username'); },
      async () => {
        const user = who.value.trim().toLowerCase();
        if (!USER_RE.test(user)) return 'That is not a valid username.';
        await rpc('room.invite', { room: c.room, user });
        toast(user + ' can now read and post in ' + c.room + '.');
        return null;
      }, 'Invite');
  }

  async function members() {
    const c = S.convs.get(S.current);
    let r;
    try { r = await rpc('room.members', { room: c.room }); } catch (e) { toast(rpcError(e), true); return; }
    dialog('Members of ' + c.room, (b) => {
      const ul = el('ul');
      (r.members || []).forEach((m) => {
        const li = el('li');
        const dot = el('span', 'dot');
        setDot(dot, m.online, 'online', 'offline');
        li.appendChild(dot);
        li.appendChild(el('span', 'who', m.user));
        li.appendChild(el('span', 'state', m.online ? 'online' : 'offline'));
        ul.appendChild(li);
      });
      if (!ul.children.length) ul.appendChild(el('li', '', 'Nobody yet.'));
      b.appendChild(ul);
    }, null);
  }

  async function leave() {
    const c = S.convs.get(S.current);
    try {
      await rpc('room.leave', { room: c.room });
    } catch (e) { toast(rpcError(e), true); return; }
    unsubscribe(roomTopics(c.room));
    S.current = null;
    $('app').classList.remove('in-conv');
    await refreshRooms().catch(() => null);
    renderMessages(true);
    renderHeader();
  }

  /* ---------- start ---------- */

  function startApp() {
    $('auth').hidden = true;
    $('app').hidden = false;
    $('me-name').textContent = S.user;
    $('me-name').title = S.user;
    renderLists();
    renderHeader();
    connect();
    S.timers.push(setInterval(renderTyping, 1000));
    S.timers.push(setInterval(() => {
      if (S.exp && S.exp * 1000 < Date.now()) signOut('Your session has ended. Sign in again.');
    }, 30000));
  }

  function wire() {
    $('tab-login').onclick = () => setMode('login');
    $('tab-register').onclick = () => setMode('register');
    $('auth-form').onsubmit = submitAuth;
    $('logout').onclick = logout;
    $('logout-all').onclick = logoutEverywhere;
    $('new-room').onclick = newRoom;
    $('new-dm').onclick = newDm;
    $('invite').onclick = invite;
    $('members-btn').onclick = members;
    $('leave').onclick = leave;
    $('delete-room').onclick = deleteRoom;
    $('dialog-cancel').onclick = () => $('dialog').close();
    $('back').onclick = () => { $('app').classList.remove('in-conv'); };
    $('composer').onsubmit = send;
    let searchTimer = null;
    $('room-search').addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => searchRooms().catch((e) => toast(rpcError(e), true)), 250);
    });
    $('input').addEventListener('input', () => { autosize(); if ($('input').value) sendTyping(); });
    $('input').addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) send(ev);
    });
    $('messages').addEventListener('scroll', () => { if ($('messages').scrollTop < 60) loadOlder(); });
    const pick = (ev) => {
      const li = ev.target.closest('li[data-conv]');
      if (li) openConv(li.dataset.conv);
    };
    $('room-list').onclick = pick;
    $('dm-list').onclick = pick;
    $('discover-list').onclick = async (ev) => {
      const li = ev.target.closest('li[data-conv]');
      if (!li) return;
      const room = li.dataset.conv.slice(5);
      try {
        await rpc('room.join', { room });
        await refreshRooms();
      } catch (e) { toast(rpcError(e), true); return; }
      openConv(li.dataset.conv);
    };
    document.addEventListener('visibilitychange', () => {
      const c = S.current && S.convs.get(S.current);
      if (c && document.visibilityState === 'visible') markRead(c);
    });
    window.addEventListener('online', () => { if (S.client && !S.online) S.client.reconnect(); });
  }

  wire();
  const a = loadAuth();
  if (a) {
    S.user = a.user; S.token = a.token; S.exp = a.exp;
    startApp();
  } else {
    $('auth').hidden = false;
    setMode('login');
  }
  // for the browser tests: read-only views of the state
  window.chatDebug = {
    seqs: (id) => (S.convs.get(id) ? S.convs.get(id).msgs.map((m) => m.seq) : []),
    online: () => S.online,
    // cuts the socket as a network drop would (MQTT.js then reconnects)
    dropSocket: () => { if (S.client && S.client.stream) S.client.stream.destroy(); },
  };
})();
