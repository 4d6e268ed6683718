"""What one user can make the broker hold (issue 10): a publish above 16 KiB
is refused with a notice (and one above max_packet_size is never read), a
user keeps at most sessions_per_user persistent sessions and each queues at
most session_queue_max messages while offline (the rest comes from history,
the seq gap tells), and a departed client's Will is judged by the token it
had. The broker runs with the limits of the repository's mosquitto.conf."""
import json
import os
import select
import socket
import struct
import time

import paho.mqtt.client as mqtt
import pytest
from chatharness import SANITIZE, Bridge, Mosquitto, Redis
from mqttutil import V5, V311, Client, rpc, wait_for
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from servers import Servers

ROOT = os.environ.get("CHAT_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
LIMIT_KEYS = ("max_packet_size", "persistent_client_expiration", "max_connections")


def conf_limits():
    """The broker limits of mosquitto.conf, as lines for the harness's broker."""
    lines, seen = [], set()
    with open(os.path.join(ROOT, "mosquitto.conf")) as f:
        for l in f:
            key = l.split(" ")[0]
            # the first of each: the TLS listener repeats max_connections
            if key in LIMIT_KEYS and key not in seen:
                seen.add(key)
                lines.append(l.strip())
    assert len(lines) == len(LIMIT_KEYS), lines
    return "\n".join(lines)


class Node(Servers):
    def __init__(self, tmp, keys):
        self.keys = keys
        super().__init__()
        try:
            self.redis = self._start(Redis(tmp.mktemp("redis")))
            self.broker = self._start(Mosquitto(tmp.mktemp("broker"), keys.plugin_opts(),
                                                extra_conf=conf_limits()))
            store = "sqlite:%s" % os.path.join(str(tmp.mktemp("store")), "chat.db")
            self.bridge = self._start(Bridge(tmp.mktemp("bridge"), self.broker, self.redis,
                                             keys, "node1", store_url=store,
                                             rate_per_s=100000, rate_burst=100000))
        except BaseException:
            self.stop()
            raise


    def client(self, user, subs=(), protocol=V311, **kw):
        c = Client(self.broker.port, user, self.keys.mint(user), protocol=protocol, **kw)
        assert c.connect() == 0
        for t in subs:
            assert c.subscribe(t, qos=1) < 0x80
        return c

    def rss_kb(self):
        with open("/proc/%d/status" % self.broker.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def room(self, name):
        owner = self.client("owner", ["chat/user/owner/rpc"])
        assert "result" in rpc(owner, "owner", "room.create", {"room": name})
        owner.close()

    def seq(self, conv):
        return int(self.redis.call("GET", "chat:seq:" + conv) or 0)


@pytest.fixture
def node(tmp_path_factory, keys):
    n = Node(tmp_path_factory, keys)
    yield n
    n.stop()
    reports = n.broker.sanitizer_reports() + n.bridge.sanitizer_reports()
    assert not reports, reports


def notices(client):
    with client.lock:
        return [json.loads(p) for t, p in client.messages if t.endswith("/notice")]


def raw_publish_header(port, user, token, declared):
    """Connects by hand (MQTT 3.1.1) and starts a PUBLISH that declares
    `declared` bytes; returns the socket."""
    def utf8(b):
        return struct.pack("!H", len(b)) + b

    def remaining(n):
        out = bytearray()
        while True:
            b, n = n % 128, n // 128
            out.append(b | 0x80 if n else b)
            if not n:
                return bytes(out)
    body = utf8(b"MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 30) + utf8(user.encode()) + \
        utf8(user.encode()) + utf8(token.encode())
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(bytes([0x10]) + remaining(len(body)) + body)
    assert s.recv(4)[3] == 0, "CONNECT refused"
    topic = ("chat/in/%s/rpc" % user).encode()
    s.sendall(bytes([0x32]) + remaining(declared) + utf8(topic) + b"\x00\x01")
    return s


def test_publish_over_16k_is_refused_and_over_2m_never_read(node):
    node.room("big")
    alice = node.client("alice", ["chat/user/alice/#", "chat/room/big"])
    bob = node.client("bob", ["chat/room/big"])
    # 17 KiB: refused by the plugin with a notice carrying the cid; the
    # bridge never sees it
    alice.publish("chat/in/alice/room/big", json.dumps({"body": "x" * 17 * 1024, "cid": "c17"}),
                  qos=1)
    assert wait_for(lambda: any(n["code"] == "too_large" and n.get("cid") == "c17"
                                for n in notices(alice))), notices(alice)
    # just under the limit still goes through to the bridge (body limit 4 KiB
    # there: refused by the bridge, not by the broker)
    alice.publish("chat/in/alice/room/big", json.dumps({"body": "y" * 15000, "cid": "c15"}),
                  qos=1)
    assert wait_for(lambda: len(notices(alice)) == 2)
    second = notices(alice)[1]
    assert second["code"] == "too_large" and second["message"] != notices(alice)[0]["message"]
    # 64 MiB: the broker closes the connection after the header, holding
    # nothing of it
    before = node.rss_kb()
    s = raw_publish_header(node.broker.port, "mallory", node.keys.mint("mallory"), 64 << 20)
    closed = False
    try:
        chunk = b"z" * 65536
        for _ in range(1024):
            s.sendall(chunk)
    except (BrokenPipeError, ConnectionResetError, socket.timeout):
        closed = True
    if not closed:
        s.settimeout(5)
        try:
            closed = s.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            closed = True
    s.close()
    assert closed, "the broker read a 64 MiB publish"
    growth = node.rss_kb() - before
    print("broker RSS growth after a 64 MiB publish: %d KiB" % growth)
    assert growth < 8 * 1024, growth
    # the others are not affected
    bob.publish("chat/in/bob/room/big", json.dumps({"body": "still here", "cid": "b1"}), qos=1)
    assert wait_for(lambda: any(json.loads(p).get("cid") == "b1"
                                for t, p in alice.messages if t == "chat/room/big"))
    alice.close()
    bob.close()


def test_history_page_of_200_large_bodies_fits(node):
    """The bridge's largest reply (200 x 4 KiB bodies, ~1 MB) passes
    max_packet_size."""
    node.room("wide")
    carol = node.client("carol", ["chat/user/carol/#"])
    for k in range(200):
        carol.c.publish("chat/in/carol/room/wide", ("%04d" % k) + "w" * 4092, qos=1)
    assert wait_for(lambda: node.seq("room:wide") == 200, timeout=30)
    reply = rpc(carol, "carol", "history", {"conv": "room:wide", "limit": 200}, timeout=15)
    assert len(reply["result"]["messages"]) == 200
    carol.close()


def persistent(node, user, client_id, subs=()):
    c = mqtt.Client(client_id=client_id, clean_session=False, protocol=V311)
    c.username_pw_set(user, node.keys.mint(user))
    got = {}
    c.on_connect = lambda cl, u, f, rc: got.setdefault("rc", rc)
    c.on_message = lambda cl, u, m: got.setdefault("msgs", []).append(json.loads(m.payload))
    c.connect("127.0.0.1", node.broker.port)
    c.loop_start()
    assert wait_for(lambda: "rc" in got), "no CONNACK for %s" % client_id
    if got["rc"] == 0:
        for t in subs:
            c.subscribe(t, qos=1)
    return c, got


def test_offline_sessions_are_bounded_and_catch_up_from_history(node):
    node.room("flood")
    accepted, refused = [], 0
    for i in range(50):
        c, got = persistent(node, "eve", "eve:s%d" % i, ["chat/room/flood"])
        time.sleep(0.05)
        c.disconnect()
        c.loop_stop()
        if got["rc"] == 0:
            accepted.append(i)
        else:
            refused += 1
    assert accepted == list(range(8)), accepted
    assert refused == 42
    before = node.rss_kb()
    bob = node.client("bob")
    for k in range(4000):
        bob.c.publish("chat/in/bob/room/flood", "m%d" % k, qos=1)
    assert wait_for(lambda: node.seq("room:flood") == 4000, timeout=60)
    time.sleep(1.0)
    growth = node.rss_kb() - before
    print("broker RSS growth, 8 offline sessions x 4000 posts: %d KiB" % growth)
    # (ASan's quarantine keeps freed memory: there the queue count below is
    # the proof)
    assert SANITIZE or growth < 8 * 1024, growth
    # a session that missed messages: gets its queue (at most 500), sees the
    # gap, and fetches the rest from history
    c, got = persistent(node, "eve", "eve:s0")
    assert got["rc"] == 0
    assert wait_for(lambda: len(got.get("msgs", [])) >= 500, timeout=20)
    time.sleep(1.0)
    seqs = sorted(m["seq"] for m in got["msgs"])
    assert seqs == list(range(1, 501)), (seqs[:3], seqs[-3:], len(seqs))
    c.subscribe("chat/user/eve/rpc", qos=1)
    time.sleep(0.3)
    eve = Client(node.broker.port, "eve", node.keys.mint("eve"), client_id="eve:reader")
    assert eve.connect() == 0
    assert eve.subscribe("chat/user/eve/rpc") < 0x80
    page = rpc(eve, "eve", "history", {"conv": "room:flood", "after": 500, "limit": 200})
    assert [m["seq"] for m in page["result"]["messages"]] == list(range(501, 701))
    c.disconnect()
    c.loop_stop()
    eve.close()
    bob.close()
    # a clean session frees nothing it did not hold, and the 9th id is
    # still refused; reusing an id is fine
    c, got = persistent(node, "eve", "eve:s9")
    assert got["rc"] == 5
    c.loop_stop()
    c, got = persistent(node, "eve", "eve:s3")
    assert got["rc"] == 0
    c.disconnect()
    c.loop_stop()


def delayed_will(node, user, ttl, delay):
    """An MQTT 5 client whose Will (delay seconds) posts to room willy, dropped
    without DISCONNECT one second after connecting."""
    c = mqtt.Client(client_id=user + ":w", protocol=V5)
    c.username_pw_set(user, node.keys.mint(user, ttl=ttl))
    wp = Properties(PacketTypes.WILLMESSAGE)
    wp.WillDelayInterval = delay
    c.will_set("chat/in/%s/room/willy" % user, "will of %s" % user, qos=1, properties=wp)
    cp = Properties(PacketTypes.CONNECT)
    cp.SessionExpiryInterval = 60
    c.connect("127.0.0.1", node.broker.port, clean_start=True, properties=cp)
    c.loop_start()
    time.sleep(1.0)
    c.loop_stop()
    c.socket().close()
    return c


def test_delayed_will_is_judged_by_the_token_it_had(node):
    node.room("willy")
    watcher = node.client("watcher", ["chat/room/willy"])
    delayed_will(node, "fading", "3s", 6)    # posted 7 s in, token gone at 3 s
    delayed_will(node, "lasting", "1h", 6)   # the same with a valid token
    assert wait_for(lambda: any(json.loads(p)["from"] == "lasting"
                                for _, p in watcher.messages), timeout=20)
    time.sleep(2.0)
    froms = [json.loads(p)["from"] for _, p in watcher.messages]
    assert "fading" not in froms, froms
    watcher.close()


def test_connections_per_address_are_capped(make_broker, keys):
    broker = make_broker(keys.plugin_opts(conn_per_address=5), extra_conf=conf_limits())
    conns = [Client(broker.port, "u%d" % i, keys.mint("u%d" % i)) for i in range(6)]
    assert [c.connect() for c in conns[:5]] == [0] * 5
    assert conns[5].connect() == 5, "a 6th connection from one address was accepted"
    # services are not counted: the bridge and the web front share the host
    svc = Client(broker.port, "bridge", keys.mint("bridge", role="service"),
                 client_id="bridge:x")
    assert svc.connect() == 0
    conns[0].close()
    time.sleep(0.5)
    again = Client(broker.port, "u0", keys.mint("u0"))
    assert again.connect() == 0
    for c in conns[1:] + [svc, again]:
        c.close()


def _closed_among(socks, wait, settle=1.5):
    """The sockets of socks the broker closes: waits up to wait s for the
    first, then settle s more for any other."""
    closed = set()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        ready, _, _ = select.select([s for s in socks if s not in closed], [], [], 0.1)
        for s in ready:
            try:
                if s.recv(1) == b"":
                    closed.add(s)
            except ConnectionResetError:
                closed.add(s)
        if closed and deadline - time.monotonic() > settle:
            deadline = time.monotonic() + settle
    return closed


@pytest.mark.xfail(raises=AssertionError, strict=False,
                   reason="mosquitto 2.0.11: each socket closed before CONNECT lowers the "
                          "listener's count, so max_connections does not hold (README)")
def test_sockets_without_connect_stop_at_max_connections(make_broker, keys):
    """The plugin never sees a socket that sends no CONNECT; the listener's
    max_connections bounds them (mosquitto closes each after ~90 s)."""
    broker = make_broker(keys.plugin_opts(), extra_conf="max_connections 20")
    connect = lambda: socket.create_connection(("127.0.0.1", broker.port))
    # A refused socket is closed as soon as the broker gets to it; a kept one
    # stays ~90 s. The harness's readiness probes may still be counted when
    # the first ones arrive, so more than one of 21 may be refused at first.
    socks = [connect() for _ in range(21)]
    refused = _closed_among(socks, 20)
    kept = [s for s in socks if s not in refused]
    assert refused and len(kept) <= 20, "%d sockets kept" % len(kept)
    while len(kept) < 20:
        s = connect()
        assert not _closed_among([s], 1.5), "socket %d of 20 refused" % (len(kept) + 1)
        kept.append(s)
    extra = connect()
    assert _closed_among([extra], 20, settle=0) == {extra}, "a 21st socket was kept"
    assert not _closed_among(kept, 0.5), "a kept socket was closed"
    for s in set(socks + kept + [extra]):
        s.close()
    # once they are gone, clients connect again
    c = Client(broker.port, "late", keys.mint("late"))
    assert wait_for(lambda: c.connect() == 0, timeout=5)
    c.close()
