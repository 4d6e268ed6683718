"""A raw MQTT 5 client that never acknowledges: it connects with a large
Receive Maximum (so the broker may keep up to that many QoS 1 messages in
flight for it), subscribes at QoS 1, reads everything the broker sends and
answers nothing but its own PINGREQs. Paho cannot do this (it acknowledges
on its own), hence the hand-built packets."""
import socket
import struct
import threading
import time


def _utf8(b):
    return struct.pack("!H", len(b)) + b


def _remaining(n):
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _packet(first, body):
    return bytes([first]) + _remaining(len(body)) + body


class NoAck:
    """Connect, subscribe, then count the PUBLISH packets that arrive
    (never PUBACKed) on a reader thread."""

    def __init__(self, port, user, token, client_id=None, receive_max=65535, keepalive=60):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = bytearray()
        # properties: Receive Maximum (0x21)
        props = bytes([0x21]) + struct.pack("!H", receive_max)
        var = _utf8(b"MQTT") + bytes([5, 0xC2]) + struct.pack("!H", keepalive) + \
            _remaining(len(props)) + props
        cid = (client_id or user).encode()
        body = var + _utf8(cid) + _utf8(user.encode()) + _utf8(token.encode())
        self.sock.sendall(_packet(0x10, body))
        kind, payload = self._read_packet()
        assert kind == 0x20 and payload[1] == 0, "CONNACK refused: %r" % payload[:2]
        self.lock = threading.Lock()
        self.publishes = 0  # PUBLISH packets received
        self.publish_bytes = 0
        self.suback = threading.Event()
        self.closed = False
        self.stop = False
        self.keepalive = keepalive
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _read_packet(self):
        """One whole packet (type, body); a timeout leaves the buffer as it
        was, so a packet is never read in halves."""
        while True:
            pos, n, mult = 1, 0, 1
            while pos < len(self.buf):
                b = self.buf[pos]
                n += (b & 0x7F) * mult
                mult *= 128
                pos += 1
                if not b & 0x80:
                    if len(self.buf) >= pos + n:
                        first = self.buf[0]
                        body = bytes(self.buf[pos:pos + n])
                        del self.buf[:pos + n]
                        return first & 0xF0, body
                    break
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def subscribe(self, topic, timeout=10):
        # packet id 1, no properties, options: QoS 1
        body = struct.pack("!H", 1) + b"\x00" + _utf8(topic.encode()) + b"\x01"
        self.sock.sendall(_packet(0x82, body))
        assert self.suback.wait(timeout), "no SUBACK for %s" % topic

    def _run(self):
        self.sock.settimeout(1)
        last_ping = time.time()
        try:
            while not self.stop:
                if time.time() - last_ping > self.keepalive / 2:
                    self.sock.sendall(b"\xc0\x00")
                    last_ping = time.time()
                try:
                    kind, payload = self._read_packet()
                except socket.timeout:
                    continue
                if kind == 0x90:
                    self.suback.set()
                elif kind == 0x30:
                    with self.lock:
                        self.publishes += 1
                        self.publish_bytes += len(payload)
        except (OSError, ConnectionError):
            pass
        self.closed = True

    def count(self):
        with self.lock:
            return self.publishes

    def close(self):
        self.stop = True
        try:
            self.sock.close()
        except OSError:
            pass
        self.thread.join(5)
