/*
 * The Socket.IO peer of `make bench-peer`: the design this project replaces,
 * built the way its seeds describe it, so the benchmark compares against a
 * real stack rather than a straw man. One instance per process; two of them
 * share one Redis through @socket.io/redis-adapter, so a message posted on
 * one instance reaches the room's members on the other.
 *
 *   node server.js --port P --redis-port R --secret-file F
 *
 * - The handshake carries a JWT (HS256) in auth.token, checked once on
 *   connect; its `sub` is the sender of every message on that socket.
 * - "join" puts the socket in a room; "post" {room, body} appends the
 *   message to the room's Redis stream (one XADD, the persistence) and,
 *   once Redis has it, emits the envelope to the room on every instance.
 * Redis runs without fsync (the script starts it), as the seeds' stack did.
 */
'use strict';
const fs = require('fs');
const http = require('http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const Redis = require('ioredis');
const jwt = require('jsonwebtoken');

function arg(name, dflt) {
  const i = process.argv.indexOf('--' + name);
  return i > 0 ? process.argv[i + 1] : dflt;
}

const port = Number(arg('port'));
const redisPort = Number(arg('redis-port'));
const secret = fs.readFileSync(arg('secret-file')).toString().replace(/[\r\n]+$/, '');
const name = arg('name', 'peer');

const store = new Redis({ port: redisPort, host: '127.0.0.1' });
const pub = new Redis({ port: redisPort, host: '127.0.0.1' });
const sub = pub.duplicate();

const httpServer = http.createServer();
const io = new Server(httpServer, {
  transports: ['websocket'],
  adapter: createAdapter(pub, sub),
  maxHttpBufferSize: 16 * 1024,
});

io.use((socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  try {
    const claims = jwt.verify(String(token || ''), secret, { algorithms: ['HS256'] });
    if (typeof claims.sub !== 'string' || claims.sub === '')
      return next(new Error('no subject'));
    socket.data.user = claims.sub;
    return next();
  } catch (e) {
    return next(new Error('unauthorized'));
  }
});

io.on('connection', (socket) => {
  socket.on('join', (room, ack) => {
    if (typeof room !== 'string' || room === '') return;
    socket.join('room:' + room);
    if (typeof ack === 'function') ack({ ok: true });
  });
  socket.on('post', (msg) => {
    if (!msg || typeof msg.room !== 'string' || typeof msg.body !== 'string' ||
        msg.body === '' || msg.body.length > 4096)
      return socket.emit('notice', { error: 'bad_input' });
    const conv = 'room:' + msg.room;
    const from = socket.data.user;
    const ts = Date.now();
    store.xadd('chat:stream:' + conv, '*', 'from', from, 'ts', String(ts), 'body', msg.body)
      .then((id) => {
        io.to(conv).emit('msg', { v: 1, type: 'msg', conv, id, from, to: msg.room, ts, body: msg.body });
      })
      .catch(() => socket.emit('notice', { error: 'unavailable' }));
  });
});

httpServer.listen(port, '127.0.0.1', () => console.log(`${name}: listening on ${port}`));
process.on('SIGTERM', () => process.exit(0));
