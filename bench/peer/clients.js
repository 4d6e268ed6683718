/*
 * The client side shared by the load generator's threads: one way to mint a
 * token, open a connection and read a message's scheduled send time, for
 * each of the three systems, so that every system is driven by the same
 * code apart from the wire protocol; and how a server process's CPU time
 * is read, the same for every system.
 *
 *   kind "plain"   MQTT.js, anonymous, posts straight to chat/room/<room>
 *   kind "chat"    MQTT.js with a JWT password, posts to
 *                  chat/in/<me>/room/<room>, receives the bridge's envelope
 *   kind "sio"     socket.io-client over WebSocket, JWT in auth.token
 */
'use strict';
const fs = require('fs');
const net = require('net');
const mqtt = require('mqtt');
const jwt = require('jsonwebtoken');
const { io } = require('socket.io-client');

/* Microseconds on CLOCK_MONOTONIC: the same clock in every thread. */
function nowUs() {
  return Number(process.hrtime.bigint() / 1000n);
}

/* user+system CPU seconds of a process, all its threads, from
 * /proc/<pid>/stat (utime, stime in USER_HZ ticks: CHAT_CLK_TCK, which the
 * bench script sets from getconf CLK_TCK; Linux's is 100). */
const CLK_TCK = Number(process.env.CHAT_CLK_TCK) || 100;
function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

function loadSecret(file) {
  return file ? fs.readFileSync(file).toString().replace(/[\r\n]+$/, '') : null;
}

/* A fresh HS256 token for user (an hour, as chatbench mints them). */
function mint(secret, user) {
  return jwt.sign({ sub: user }, secret, { algorithm: 'HS256', expiresIn: 3600 });
}

/* Opens one client; resolves once it may publish (and, with room, once it
 * is subscribed to the room). localAddress picks the 127.x source address. */
function open(kind, opt) {
  const { port, user, secret, room, localAddress, onMessage } = opt;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${user}: no connect in 30 s`)), 30000);
    const done = (err, c) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(c);
    };
    if (kind === 'sio') {
      const s = io(`http://127.0.0.1:${port}`, {
        transports: ['websocket'], forceNew: true, reconnection: false,
        auth: { token: mint(secret, user) }, localAddress,
      });
      s.on('connect_error', (e) => done(new Error(`${user}: ${e.message}`)));
      s.on('connect', () => {
        if (!room) return done(null, s);
        s.on('msg', (m) => onMessage(m.body));
        s.emit('join', room, () => done(null, s));
      });
      return;
    }
    const options = {
      clientId: user, clean: true, keepalive: 0, reconnectPeriod: 0,
      protocolVersion: 4, connectTimeout: 30000,
    };
    if (kind === 'chat') {
      options.username = user;
      options.password = mint(secret, user);
    }
    const c = new mqtt.MqttClient(() => net.createConnection({ port, host: '127.0.0.1', localAddress }), options);
    c.on('error', (e) => done(new Error(`${user}: ${e.message}`)));
    c.on('connect', () => {
      if (!room) return done(null, c);
      c.on('message', (topic, payload) => onMessage(payload));
      c.subscribe(`chat/room/${room}`, { qos: 0 }, (err, granted) => {
        if (err || !granted || granted[0].qos > 2) return done(new Error(`${user}: subscribe refused`));
        done(null, c);
      });
    });
  });
}

/* The scheduled send time (µs) a message body starts with, or NaN. The chat
 * stack wraps the body in its envelope; the others deliver it as sent. */
const BODY_KEY = Buffer.from('"body":"');
function scheduledUs(kind, m) {
  if (kind === 'sio') return parseInt(m, 10);
  if (kind === 'chat') {
    const at = m.indexOf(BODY_KEY);
    return at < 0 ? NaN : parseInt(m.toString('latin1', at + BODY_KEY.length, at + BODY_KEY.length + 20), 10);
  }
  return parseInt(m.toString('latin1', 0, 20), 10);
}

/* A body of exactly size bytes that starts with the scheduled time. */
function body(dueUs, size) {
  const head = String(dueUs) + ' ';
  return head + 'x'.repeat(Math.max(0, size - head.length));
}

function post(kind, c, user, room, text) {
  if (kind === 'sio') c.emit('post', { room, body: text });
  else c.publish(kind === 'chat' ? `chat/in/${user}/room/${room}` : `chat/room/${room}`, text, { qos: 0 });
}

function close(kind, c) {
  if (kind === 'sio') c.close();
  else c.end(true);
}

module.exports = { nowUs, cpuSeconds, loadSecret, mint, open, scheduledUs, body, post, close };
