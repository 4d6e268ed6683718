/*
 * The one load generator of `make bench-peer`: the same open-loop design
 * for plain mosquitto, the chat cluster and the Socket.IO peer.
 *
 *   node loadgen.js --kind plain|chat|sio --pub-port P --sub-port P2
 *        [--secret-file F] --pubs 4 --subs 10 --rate POSTS_PER_S
 *        --seconds T [--warmup W] [--window N] [--size 100]
 *        [--pids name=pid,...] [--redis-port R] [--drain MS]
 *
 * Publishers connect to --pub-port, subscribers (in worker threads, so the
 * receiving side has its own event loop) to --sub-port. Posts leave on a
 * fixed schedule, round robin over the publishers; each body starts with its
 * scheduled send time, so latency counts from when a post should have left
 * and a stalled system cannot hide its queue. --rate 0 finds saturation:
 * as fast as at most --window posts in flight allow.
 *
 * Over the measured window (after the warm-up) it counts deliveries, the
 * latency of posts scheduled in the window, and the user+system CPU of each
 * --pids process (from /proc/<pid>/stat); with --redis-port, Redis's
 * INFO commandstats over the window; and how late it sent the posts itself
 * (send_lag_*: its timer's share of every latency). One line of key=value
 * goes to stdout.
 */
'use strict';
const fs = require('fs');
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const Redis = require('ioredis');
const cl = require('./clients');

const BUCKET_US = 10;
const BUCKETS = 100000; /* 10 µs steps up to 1 s; the last one holds the rest */
const ROOM = 'bench';

/* Shared between threads: [0] deliveries so far, [1] window start µs,
 * [2] window end µs (0 while unset), [3] samples taken. */
function sharedState(buf) {
  return new BigInt64Array(buf);
}

if (!isMainThread) subscriberThread();
else main().catch((e) => {
  console.error('loadgen:', e.message);
  process.exit(1);
});

function subscriberThread() {
  const { kind, port, secret, users, localAddress } = workerData;
  const st = sharedState(workerData.state);
  const hist = new Uint32Array(BUCKETS);
  let counted = 0;
  const onMessage = (m) => {
    const now = cl.nowUs();
    Atomics.add(st, 0, 1n);
    const start = Number(st[1]);
    if (start === 0) return;
    const end = Number(st[2]);
    const due = cl.scheduledUs(kind, m);
    if (now >= start && (end === 0 || now < end)) counted++;
    if (due >= start && (end === 0 || due < end)) {
      const b = Math.min(BUCKETS - 1, Math.max(0, Math.floor((now - due) / BUCKET_US)));
      hist[b]++;
    }
  };
  const clients = [];
  (async () => {
    for (let i = 0; i < users.length; i += 50) {
      const batch = users.slice(i, i + 50).map((user) =>
        cl.open(kind, { port, user, secret, room: ROOM, localAddress, onMessage }));
      clients.push(...(await Promise.all(batch)));
    }
    parentPort.postMessage({ ready: true });
  })().catch((e) => parentPort.postMessage({ error: e.message }));
  parentPort.on('message', (m) => {
    if (m.stop) {
      for (const c of clients) cl.close(kind, c);
      parentPort.postMessage({ hist, counted }, [hist.buffer]);
    }
  });
}

function args() {
  const a = {
    kind: 'plain', pubPort: 0, subPort: 0, secretFile: null, pubs: 4, subs: 10, rate: 1000,
    seconds: 10, warmup: 2, window: 200, size: 100, pids: '', redisPort: 0, subThreads: 2, drain: 1000,
  };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-(.)/g, (_, c) => c.toUpperCase());
    if (!(key in a)) throw new Error(`unknown option ${argv[i]}`);
    a[key] = typeof a[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  a.subPort = a.subPort || a.pubPort;
  return a;
}

function quantile(hist, total, q) {
  const want = Math.ceil(total * q);
  let seen = 0;
  for (let b = 0; b < hist.length; b++) {
    seen += hist[b];
    if (seen >= want && want > 0) return ((b + 0.5) * BUCKET_US) / 1000;
  }
  return NaN;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* The chat stack needs the room to exist: room.create from the first
 * publisher, reply awaited ("conflict" on a second run is fine). */
async function createRoom(c, user) {
  const reply = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('room.create: no reply in 10 s')), 10000);
    c.on('message', (topic, payload) => {
      if (topic !== `chat/user/${user}/rpc`) return;
      const r = JSON.parse(payload.toString());
      if (r.id !== 'bench-room') return;
      clearTimeout(t);
      if (r.error && r.error.code !== 'conflict') reject(new Error(`room.create: ${r.error.code}`));
      else resolve();
    });
  });
  await new Promise((res, rej) => c.subscribe(`chat/user/${user}/rpc`, (e) => (e ? rej(e) : res())));
  c.publish(`chat/in/${user}/rpc`, JSON.stringify({ id: 'bench-room', method: 'room.create', params: { room: ROOM } }));
  await reply;
}

async function main() {
  const a = args();
  const secret = cl.loadSecret(a.secretFile);
  const pids = a.pids ? a.pids.split(',').map((s) => s.split('=')) : [];
  const st = sharedState(new SharedArrayBuffer(8 * 4));

  const pubs = [];
  for (let i = 0; i < a.pubs; i++) {
    const user = `p${i}`;
    pubs.push({ user, c: await cl.open(a.kind, { port: a.pubPort, user, secret }) });
  }
  if (a.kind === 'chat') await createRoom(pubs[0].c, pubs[0].user);

  const threads = Math.max(1, Math.min(a.subThreads, a.subs));
  const workers = [];
  for (let t = 0; t < threads; t++) {
    const users = [];
    for (let i = t; i < a.subs; i += threads) users.push(`r${i}`);
    const w = new Worker(__filename, {
      workerData: { kind: a.kind, port: a.subPort, secret, users, state: st.buffer },
    });
    workers.push(w);
    await new Promise((resolve, reject) => {
      w.once('message', (m) => (m.error ? reject(new Error(m.error)) : resolve()));
      w.once('error', reject);
    });
  }

  /* the schedule: post k is due at t0 + k / rate */
  const t0 = cl.nowUs();
  const stepUs = a.rate > 0 ? 1e6 / a.rate : 0;
  const startUs = t0 + a.warmup * 1e6;
  const endUs = startUs + a.seconds * 1e6;
  let sent = 0, sentInWindow = 0, cpu0 = null, redis = null, measuring = false;
  /* how late the generator itself sent each post of the window: part of
   * every latency it reports, the same for every system */
  const lag = new Uint32Array(BUCKETS);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  if (a.redisPort) redis = new Redis({ port: a.redisPort, host: '127.0.0.1' });
  for (;;) {
    const now = cl.nowUs();
    if (!measuring && now >= startUs) {
      measuring = true;
      st[1] = BigInt(Math.round(startUs));
      st[2] = BigInt(Math.round(endUs));
      cpu0 = pids.map(([, pid]) => cl.cpuSeconds(pid));
      if (redis) redis.config('RESETSTAT');
    }
    if (now >= endUs) break;
    for (;;) {
      let due;
      if (stepUs > 0) {
        due = t0 + sent * stepUs;
        if (due > now) break;
      } else {
        if (sent * a.subs - Number(Atomics.load(st, 0)) >= a.window * a.subs) break;
        due = now;
      }
      const p = pubs[sent % pubs.length];
      cl.post(a.kind, p.c, p.user, ROOM, cl.body(Math.round(due), a.size));
      if (due >= startUs && due < endUs) {
        sentInWindow++;
        lag[Math.min(BUCKETS - 1, Math.max(0, Math.floor((now - due) / BUCKET_US)))]++;
      }
      sent++;
    }
    if (stepUs > 0) {
      /* let I/O run, then sleep until the next post is due (at most 1 ms):
       * a timer would wake up to ~1 ms late, and that lateness would count
       * in every latency measured */
      await new Promise((r) => setImmediate(r));
      const waitMs = (t0 + sent * stepUs - cl.nowUs()) / 1000;
      if (waitMs > 0) Atomics.wait(nap, 0, 0, Math.min(1, waitMs));
    } else {
      await sleep(1);
    }
  }
  const cpu1 = pids.map(([, pid]) => cl.cpuSeconds(pid));
  const stats = redis ? await redis.info('commandstats') : '';
  await sleep(a.drain); /* stragglers of the window still count for latency */

  const hist = new Uint32Array(BUCKETS);
  let delivered = 0;
  for (const w of workers) {
    const r = await new Promise((resolve) => {
      w.once('message', resolve);
      w.postMessage({ stop: true });
    });
    delivered += r.counted;
    for (let b = 0; b < BUCKETS; b++) hist[b] += r.hist[b];
    await w.terminate();
  }
  let samples = 0;
  for (let b = 0; b < BUCKETS; b++) samples += hist[b];

  const out = {
    kind: a.kind, pubs: a.pubs, subs: a.subs, rate: a.rate, seconds: a.seconds,
    posted: sentInWindow, expected: sentInWindow * a.subs, samples,
    delivered_per_s: (delivered / a.seconds).toFixed(0),
    p50_ms: quantile(hist, samples, 0.5).toFixed(2),
    p99_ms: quantile(hist, samples, 0.99).toFixed(2),
    p999_ms: quantile(hist, samples, 0.999).toFixed(2),
    send_lag_p50_ms: quantile(lag, sentInWindow, 0.5).toFixed(2),
    send_lag_p99_ms: quantile(lag, sentInWindow, 0.99).toFixed(2),
  };
  let cpuTotal = 0;
  pids.forEach(([name], i) => {
    const s = cpu1[i] - cpu0[i];
    cpuTotal += s;
    out[`cpu_${name}`] = s.toFixed(2);
  });
  out.cpu_s = cpuTotal.toFixed(2);
  out.per_cpu_s = cpuTotal > 0 ? (delivered / cpuTotal).toFixed(0) : 'nan';
  /* cmdstat_<name>:calls=N,usec=U,... (our own CONFIG/INFO left out) */
  for (const line of stats.split('\n')) {
    const m = /^cmdstat_([a-z|]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (m && !/^(config|info)/.test(m[1])) out[`redis_${m[1].replace('|', '_')}`] = `${m[2]}/${m[3]}`;
  }
  console.log(Object.entries(out).map(([k, v]) => `${k}=${v}`).join(' '));
  if (redis) redis.disconnect();
  for (const p of pubs) cl.close(a.kind, p.c);
  setTimeout(() => process.exit(0), 200);
}
