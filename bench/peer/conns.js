/*
 * The connections half of issue 11, driven by MQTT.js like the rest of
 * `make bench-peer` (scripts/bench-peer-conns.sh starts the servers).
 *
 *   node conns.js --kind plain|chat --ports P1[,P2] --count N
 *        [--secret-file F] [--sources K] [--idle S] [--pids name=pid,...]
 *        [--restart-cmd CMD] [--presence-port P] [--procs K]
 *
 * With --procs K the clients are split over K child processes (client i in
 * child i mod K), so that no process needs more open files than the limit
 * allows; this process measures and drives the phases.
 * 1. N clients connect (keepalive 60 s, at most --inflight connects in
 *    flight per port: mosquitto listens with a backlog of 100), client i to
 *    port i mod ports, from source address 127.0.0.(2 + i mod K), so one
 *    source's ephemeral ports do not bound N (K defaults to N / 1,000).
 * 2. Idle for S seconds: the RSS of every --pids process (VmRSS) minus
 *    their RSS before step 1, per connection, and their CPU in % of a core.
 * 3. The reconnect storm: fresh tokens are minted, then CMD restarts the
 *    brokers; every client reconnects as soon as it can (a failed attempt
 *    retries after 50-250 ms) with its fresh token. storm_s is from the
 *    restart to the last CONNACK; for the chat stack, presence_s is until
 *    an observer subscribed to chat/presence/+ on --presence-port has seen
 *    every user online again.
 * One line of key=value goes to stdout.
 */
'use strict';
const fs = require('fs');
const net = require('net');
const { exec, fork } = require('child_process');
const mqtt = require('mqtt');
const cl = require('./clients');

function args() {
  const a = {
    kind: 'plain', ports: '', count: 1000, secretFile: null, sources: 0, idle: 5, pids: '',
    restartCmd: '', presencePort: 0, presenceWait: 20, inflight: 64, procs: 1, worker: -1,
  };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '').replace(/-(.)/g, (_, c) => c.toUpperCase());
    if (!(key in a)) throw new Error(`unknown option ${argv[i]}`);
    a[key] = typeof a[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  a.ports = a.ports.split(',').map(Number);
  a.procs = Math.max(1, Math.min(a.procs, a.count));
  /* one source address per 1,000 clients: the kernel's search for a free
   * port on an explicit bind slows as a source's ports fill (15,000 clients
   * took 33 s to connect from 2 sources, 5 s from 8) */
  a.sources = a.sources || Math.min(250, Math.max(2, Math.ceil(a.count / 1000)));
  return a;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const procs = (spec) => (spec ? spec.split(',').map((s) => s.split('=')) : []);
function rssKb(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}
/* One client that reconnects by itself, each time with c.token. */
class Client {
  constructor(a, i) {
    this.a = a;
    this.user = `c${i}`;
    this.port = a.ports[i % a.ports.length];
    this.localAddress = `127.0.0.${2 + (i % a.sources)}`;
    this.token = a.secret ? cl.mint(a.secret, this.user) : null;
    this.connected = false;
    this.reconnecting = false;
  }

  /* Resolves at CONNACK; rejects when the attempt fails. */
  attempt() {
    return new Promise((resolve, reject) => {
      const opts = { clientId: this.user, clean: true, keepalive: 60, reconnectPeriod: 0, protocolVersion: 4 };
      if (this.token) Object.assign(opts, { username: this.user, password: this.token });
      const c = new mqtt.MqttClient(() => net.createConnection({
        port: this.port, host: '127.0.0.1', localAddress: this.localAddress,
      }), opts);
      let settled = false;
      c.on('connect', () => {
        settled = true;
        this.c = c;
        this.connected = true;
        resolve();
      });
      c.on('error', () => {});
      c.on('close', () => {
        c.removeAllListeners('close');
        c.end(true);
        if (!settled) return reject(new Error(`${this.user}: connect failed`));
        this.connected = false;
        if (this.reconnecting) this.reconnect().catch(() => {});
      });
    });
  }

  /* Retries until connected (resolves) or until a.deadline (throws). */
  async reconnect() {
    for (;;) {
      if (Date.now() > this.a.deadline) throw new Error(`${this.user}: no connect before the deadline`);
      try {
        await this.attempt();
        if (this.onUp) this.onUp();
        return;
      } catch (e) {
        await sleep(50 + Math.random() * 200);
      }
    }
  }
}

/* Connects all, at most inflight at a time per port. */
async function connectAll(clients, inflight) {
  let next = 0;
  const lane = async () => {
    while (next < clients.length) {
      const c = clients[next++];
      await c.reconnect();
    }
  };
  await Promise.all(Array.from({ length: inflight }, lane));
}

/* The chat stack's observer: who has been seen online since `since` ms. */
function observer(a, port, since) {
  const seen = new Set();
  const offline = new Set();
  const user = 'presence-obs';
  const o = { seen, offline, client: null };
  const connect = () => {
    const c = mqtt.connect({
      host: '127.0.0.1', port, clientId: user, username: user, password: cl.mint(a.secret, user),
      keepalive: 60, reconnectPeriod: 100, protocolVersion: 4,
    });
    c.on('connect', () => c.subscribe('chat/presence/+'));
    c.on('message', (topic, payload) => {
      try {
        const p = JSON.parse(payload.toString());
        if (p.ts < since() || !/^c\d+$/.test(p.user)) return;
        if (p.online) seen.add(p.user);
        else offline.add(p.user);
      } catch (e) { /* not ours */ }
    });
    c.on('error', () => {});
    o.client = c;
  };
  connect();
  return o;
}

/* The clients of one process: those with i mod procs == worker. */
class Fleet {
  constructor(a, worker) {
    this.clients = [];
    for (let i = worker; i < a.count; i += a.procs) this.clients.push(new Client(a, i));
    this.a = a;
    this.upCount = 0;
  }

  up() { return this.upCount; }

  connect() {
    this.a.deadline = Date.now() + 180000;
    return connectAll(this.clients, Math.max(1, Math.ceil(this.a.inflight * this.a.ports.length / this.a.procs)));
  }

  /* Fresh tokens, reconnects armed; resolves to {allUp}, a promise of
   * the time the last of them was back. */
  async arm() {
    let done;
    const allUp = new Promise((r) => { done = r; });
    for (const c of this.clients) {
      c.token = this.a.secret ? cl.mint(this.a.secret, c.user) : null;
      c.reconnecting = true;
      c.onUp = () => { if (++this.upCount === this.clients.length) done(Date.now()); };
    }
    this.a.deadline = Date.now() + 180000;
    return { allUp };
  }

  end() {
    for (const c of this.clients) {
      c.reconnecting = false;
      if (c.c) c.c.end(true);
    }
  }
}

/* A fleet in a child process, driven by messages. */
class RemoteFleet {
  constructor(worker) {
    const argv = process.argv.slice(2).concat(['--worker', String(worker)]);
    this.child = fork(__filename, argv, { execArgv: process.execArgv });
    this.waiting = {};
    this.upCount = 0;
    this.child.on('message', (m) => {
      if (m.n !== undefined) this.upCount = m.n;
      const w = this.waiting[m.t];
      if (w) { delete this.waiting[m.t]; w(m); }
    });
    this.exited = new Promise((_, reject) => this.child.on('exit', (code) => {
      if (code !== 0 && !this.ending) reject(new Error(`worker ${worker} exited with ${code}`));
    }));
    this.exited.catch(() => {});
  }

  ask(t, reply) {
    const got = new Promise((r) => { this.waiting[reply] = r; });
    this.child.send({ t });
    return Promise.race([got, this.exited]);
  }

  connect() { return this.ask('connect', 'connected'); }
  async arm() {
    await this.ask('arm', 'armed');
    return { allUp: this.ask('wait', 'allup').then((m) => m.at) };
  }
  up() { return this.upCount; }
  end() { this.ending = true; this.child.send({ t: 'end' }); }
}

/* A child: one Fleet, doing what the parent asks. */
function worker(a) {
  const fleet = new Fleet(a, a.worker);
  let allUp = null;
  const fail = (e) => { console.error('conns worker:', e.message); process.exit(1); };
  process.on('disconnect', () => process.exit(0)); /* the parent is gone */
  process.on('message', async (m) => {
    if (m.t === 'connect') fleet.connect().then(() => process.send({ t: 'connected' }), fail);
    else if (m.t === 'arm') { ({ allUp } = await fleet.arm()); process.send({ t: 'armed' }); }
    else if (m.t === 'wait') {
      const tick = setInterval(() => process.send({ t: 'up', n: fleet.up() }), 200);
      allUp.then((at) => { clearInterval(tick); process.send({ t: 'allup', at, n: fleet.up() }); });
    } else if (m.t === 'end') { fleet.end(); setTimeout(() => process.exit(0), 200); }
  });
}

async function main() {
  const a = args();
  a.secret = cl.loadSecret(a.secretFile);
  if (a.worker >= 0) return worker(a);
  const pids = procs(a.pids);
  const rss0s = pids.map(([, pid]) => rssKb(pid));
  const rss0 = rss0s.reduce((s, v) => s + v, 0);
  const fleets = a.procs > 1
    ? Array.from({ length: a.procs }, (_, w) => new RemoteFleet(w))
    : [new Fleet(a, 0)];
  const out = { kind: a.kind, conns: a.count, sources: a.sources, procs: a.procs };

  let t = Date.now();
  await Promise.all(fleets.map((f) => f.connect()));
  out.connect_s = ((Date.now() - t) / 1000).toFixed(2);

  await sleep(2000); /* presence and the bridges' bookkeeping settle */
  const cpu0 = pids.map(([, pid]) => cl.cpuSeconds(pid));
  await sleep(a.idle * 1000);
  const cpu1 = pids.map(([, pid]) => cl.cpuSeconds(pid));
  const rss1 = pids.reduce((s, [, pid]) => s + rssKb(pid), 0);
  out.rss_base_mb = (rss0 / 1024).toFixed(1);
  out.rss_mb = (rss1 / 1024).toFixed(1);
  out.rss_per_conn_kb = ((rss1 - rss0) / a.count).toFixed(2);
  pids.forEach(([name, pid], i) => {
    const kb = rssKb(pid);
    out[`rss_${name}_mb`] = (kb / 1024).toFixed(1);
    out[`rss_${name}_per_conn_kb`] = ((kb - rss0s[i]) / a.count).toFixed(2);
  });
  out.idle_cpu_pct = ((cpu1.reduce((s, v, i) => s + v - cpu0[i], 0) / a.idle) * 100).toFixed(2);
  pids.forEach(([name], i) => { out[`idle_cpu_${name}_pct`] = (((cpu1[i] - cpu0[i]) / a.idle) * 100).toFixed(2); });

  if (a.restartCmd) {
    let restartMs = Date.now();
    const obs = a.presencePort ? observer(a, a.presencePort, () => restartMs) : null;
    const armed = await Promise.all(fleets.map((f) => f.arm()));
    const allUp = Promise.all(armed.map((x) => x.allUp));
    restartMs = Date.now();
    t = restartMs;
    await new Promise((resolve, reject) =>
      exec(a.restartCmd, (err) => (err ? reject(new Error(`restart: ${err.message}`)) : resolve())));
    const bound = sleep(120000).then(() => 'timeout');
    const got = await Promise.race([allUp, bound]);
    if (got === 'timeout') out.storm_s = 'timeout';
    else out.storm_s = ((Math.max(...got) - t) / 1000).toFixed(2);
    out.reconnected = fleets.reduce((s, f) => s + f.up(), 0);
    if (obs) {
      const until = Date.now() + a.presenceWait * 1000;
      while (obs.seen.size < a.count && Date.now() < until) await sleep(50);
      out.presence_s = obs.seen.size === a.count ? ((Date.now() - t) / 1000).toFixed(2) : 'timeout';
      out.presence_seen = obs.seen.size;
      out.presence_offline_seen = obs.offline.size;
      obs.client.end(true);
    }
  }
  console.log(Object.entries(out).map(([k, v]) => `${k}=${v}`).join(' '));
  for (const f of fleets) f.end();
  setTimeout(() => process.exit(0), 400);
}

main().catch((e) => {
  console.error('conns:', e.message);
  process.exit(1);
});
