"""Helpers for the integration tests: crafting tokens by hand (to break one
rule at a time), stock-client (Paho) connections, and raw MQTT packets for
inputs no well-behaved client would send."""
import base64
import hashlib
import hmac
import json
import socket
import struct
import threading
import time

import paho.mqtt.client as mqtt

V311 = mqtt.MQTTv311
V5 = mqtt.MQTTv5

# CONNACK codes: 3.1.1 "not authorized" and 5.0 "not authorized" / "bad
# user name or password" (PROTOCOL.md section 3).
REFUSED_311 = {5, 4}
REFUSED_5 = {0x87, 0x86}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def craft(claims: dict, key: bytes = None, alg: str = "HS256", header=None) -> str:
    """A JWT signed with HMAC-SHA256 (or unsigned for alg none), built by hand
    so a test can put anything in it."""
    hdr = header if header is not None else {"alg": alg, "typ": "JWT"}
    signing_input = b64url(json.dumps(hdr).encode()) + "." + b64url(json.dumps(claims).encode())
    if alg == "none":
        return signing_input + "."
    digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
    sig = hmac.new(key, signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(sig)


def claims(sub, ttl=3600, **extra):
    now = int(time.time())
    c = {"sub": sub, "iat": now, "exp": now + ttl}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


class ReasonClient(mqtt.Client):
    """A Paho client that keeps the reason code of every PUBACK (and
    PUBCOMP) by packet id, in ack_reasons: Paho 1.6 parses an MQTT 5
    PUBACK's reason code but does not pass it to on_publish, so a refusal
    (0x87 "not authorized", any code >= 0x80) looks like a success there.
    The code is recorded before Paho calls on_publish, which may look it up.
    An MQTT 3.1.1 PUBACK, or an MQTT 5 one of only the packet id, is 0.
    (Paho 2 hands the reason code to on_publish; this goes with 1.6.)"""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ack_reasons = {}

    def _handle_pubackcomp(self, cmd):
        packet = self._in_packet["packet"]
        if len(packet) >= 2:
            mid, = struct.unpack("!H", packet[:2])
            self.ack_reasons[mid] = packet[2] if len(packet) > 2 else 0
        return super()._handle_pubackcomp(cmd)


class Client:
    """A Paho client run on its own network thread, recording what it gets."""

    def __init__(self, port, user=None, token=None, client_id=None, protocol=V311):
        self.protocol = protocol
        cid = user if client_id is None else client_id
        if protocol == V5:
            self.c = ReasonClient(client_id=cid, protocol=V5)
        else:
            self.c = ReasonClient(client_id=cid, clean_session=True, protocol=V311)
        if user is not None:
            self.c.username_pw_set(user, token)
        self.port = port
        self.connack = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnected_at = None
        self.messages = []
        self.subacks = {}
        self.pubacks = {}
        self.lock = threading.Lock()
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish

    def _on_connect(self, c, u, flags, rc, props=None):
        self.connack = rc.value if hasattr(rc, "value") else rc
        self.connected.set()

    def _on_disconnect(self, c, u, rc, props=None):
        self.disconnected_at = time.time()
        self.disconnected.set()

    def _on_message(self, c, u, msg):
        with self.lock:
            self.messages.append((msg.topic, msg.payload))

    def _on_subscribe(self, c, u, mid, granted, props=None):
        self.subacks[mid] = [g.value if hasattr(g, "value") else g for g in granted]

    def _on_publish(self, c, u, mid, *rest):
        self.pubacks[mid] = True

    def connect(self, timeout=5):
        """Connects and waits for the CONNACK; returns its code (0 = accepted)."""
        self.c.connect("127.0.0.1", self.port, keepalive=30)
        self.c.loop_start()
        if not self.connected.wait(timeout):
            # a refused client may see the socket close without a CONNACK
            self.close()
            raise AssertionError("no CONNACK within %ss" % timeout)
        return self.connack

    def subscribe(self, topic, qos=0, timeout=5):
        """Subscribes and returns the granted code (>= 0x80 means refused)."""
        rc, mid = self.c.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS, rc
        deadline = time.time() + timeout
        while mid not in self.subacks and time.time() < deadline:
            time.sleep(0.01)
        assert mid in self.subacks, "no SUBACK for %s" % topic
        return self.subacks[mid][0]

    def publish(self, topic, payload, qos=0, retain=False):
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        if qos:
            info.wait_for_publish(5)
        return info

    def wait_messages(self, n, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    return list(self.messages)
            time.sleep(0.01)
        with self.lock:
            return list(self.messages)

    def close(self):
        try:
            self.c.disconnect()
        except Exception:
            pass
        self.c.loop_stop()


def connack_code(port, user, token, client_id=None, protocol=V311):
    """Connects once and returns the CONNACK code."""
    cl = Client(port, user, token, client_id, protocol)
    try:
        return cl.connect()
    finally:
        cl.close()


def refused(code, protocol):
    return code in (REFUSED_5 if protocol == V5 else REFUSED_311)


def _utf8(s: bytes):
    return struct.pack("!H", len(s)) + s


def _remaining_length(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def raw_connect(port, client_id: bytes, user: bytes, password: bytes,
                declared_password_len=None, timeout=5):
    """Sends a hand-built MQTT 3.1.1 CONNECT and returns the CONNACK return
    code, or None when the broker closed the connection without one.
    declared_password_len lets the length field lie about the password."""
    plen = len(password) if declared_password_len is None else declared_password_len
    var = _utf8(b"MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 30)
    body = var + _utf8(client_id) + _utf8(user) + struct.pack("!H", plen) + password
    pkt = bytes([0x10]) + _remaining_length(len(body)) + body
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(pkt)
        data = s.recv(4)
        if len(data) < 4:
            return None
        assert data[0] == 0x20, data
        return data[3]
    except (ConnectionResetError, BrokenPipeError, socket.timeout):
        return None
    finally:
        s.close()


class RawClient:
    """A hand-driven MQTT 3.1.1 connection: it reads the broker's byte
    stream one packet at a time, so a test sees the packets in the order the
    broker wrote them (a stock client hands them to separate callbacks).
    QoS 1 deliveries are acknowledged as they are read."""

    def __init__(self, port, user, token, client_id=None, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.mid = 0
        var = _utf8(b"MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 60)
        self.send(0x10, var + _utf8((client_id or user).encode()) + _utf8(user.encode())
                  + _utf8(token.encode()))
        kind, _, body = self.read()
        assert kind == 2 and body[1] == 0, "CONNACK %r" % body

    def close(self):
        try:
            self.send(0xE0, b"")
        except OSError:
            pass
        self.s.close()

    def send(self, first_byte, body):
        self.s.sendall(bytes([first_byte]) + _remaining_length(len(body)) + body)

    def _take(self, n):
        while len(self.buf) < n:
            data = self.s.recv(65536)
            if not data:
                raise AssertionError("the broker closed the connection")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read(self):
        """The next packet: (type, flags, body)."""
        first = self._take(1)[0]
        length, shift = 0, 0
        while True:
            b = self._take(1)[0]
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        return first >> 4, first & 0x0F, self._take(length)

    def next_mid(self):
        self.mid = self.mid % 65535 + 1
        return self.mid

    def subscribe(self, topic, qos=1):
        """Subscribes; returns the granted code (0x80 = refused)."""
        mid = self.next_mid()
        self.send(0x82, struct.pack("!H", mid) + _utf8(topic.encode()) + bytes([qos]))
        while True:
            kind, _, body = self.read()
            if kind == 9 and struct.unpack("!H", body[:2])[0] == mid:
                return body[2]

    def publish(self, topic, payload, qos=1):
        """Sends a PUBLISH; returns its packet id (0 for QoS 0)."""
        if isinstance(payload, str):
            payload = payload.encode()
        mid = self.next_mid() if qos else 0
        body = _utf8(topic.encode()) + (struct.pack("!H", mid) if qos else b"") + payload
        self.send(0x30 | qos << 1, body)
        return mid

    def packets_until(self, done):
        """Reads packets until done(packet) is true for one, and returns them
        all in order, that one last: ("publish", topic, payload, qos),
        ("puback" | "pubrec" | "pubcomp", mid) or ("other", type)."""
        got = []
        while not got or not done(got[-1]):
            kind, flags, body = self.read()
            if kind == 3:
                tlen, = struct.unpack("!H", body[:2])
                topic = body[2:2 + tlen].decode()
                qos = (flags >> 1) & 3
                rest = body[2 + tlen:]
                if qos:
                    self.send(0x40, rest[:2])
                    rest = rest[2:]
                got.append(("publish", topic, rest, qos))
            elif kind in (4, 5, 7):
                got.append(({4: "puback", 5: "pubrec", 7: "pubcomp"}[kind],
                            struct.unpack("!H", body[:2])[0]))
            else:
                got.append(("other", kind))
        return got


def rpc(client, user, method, params=None, req_id=None, timeout=5):
    """Sends a request on chat/in/<user>/rpc and returns the reply (the client
    must be subscribed to chat/user/<user>/rpc or chat/user/<user>/#)."""
    req_id = req_id or "r%d" % int(time.time() * 1e6)
    body = {"id": req_id, "method": method}
    if params is not None:
        body["params"] = params
    client.publish("chat/in/%s/rpc" % user, json.dumps(body), qos=1)
    deadline = time.time() + timeout
    while time.time() < deadline:
        with client.lock:
            for topic, payload in client.messages:
                if topic.endswith("/rpc"):
                    try:
                        reply = json.loads(payload)
                    except ValueError:
                        continue
                    if reply.get("id") == req_id:
                        return reply
        time.sleep(0.01)
    raise AssertionError("no reply to %s within %ss" % (method, timeout))


def signed_in(port, keys, user, *subs, role="user"):
    """A connected client of user with a fresh token, subscribed (QoS 1) to
    its own chat/user/<user>/# and to subs."""
    c = Client(port, user, keys.mint(user, role=role))
    assert c.connect() == 0
    for t in ("chat/user/%s/#" % user,) + subs:
        assert c.subscribe(t, qos=1) < 0x80
    return c


def payloads(client, topic_suffix):
    with client.lock:
        return [json.loads(p) for t, p in client.messages if t.endswith(topic_suffix)]


def settled_seq(redis, conv, quiet=1.5, timeout=60):
    """The conversation's last seq once it has stopped moving for `quiet`
    seconds (a restarted bridge draining what was queued meanwhile)."""
    last, still_since, deadline = -1, time.time(), time.time() + timeout
    while time.time() - still_since < quiet and time.time() < deadline:
        now = int(redis.call("GET", "chat:seq:" + conv) or 0)
        if now != last:
            last, still_since = now, time.time()
        time.sleep(0.1)
    return last


def wait_for(pred, timeout=5, interval=0.02):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()
