"""MQTT 5 properties count toward a publish's cost (issue 22, finding 3):
the 16 KiB limit (publish_max) is the whole packet, properties included,
and a publish may carry at most publish_props_max (32) properties. One
PUBLISH with 60,000 user properties (420 KB, inside max_packet_size 2 MiB)
is refused with a too_large notice and PUBACK 0x87, stores nothing, and
does not stall the broker for anyone else."""
import json
import os
import socket
import struct
import threading
import time

import pytest
from chatharness import Bridge, Mosquitto, Redis
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqttutil import V5, Client, _remaining_length, _utf8, payloads, rpc, wait_for
from servers import Servers

STALL_BOUND_S = 2.0  # a round trip through the broker while it takes the flood


class Node(Servers):
    """Redis, one broker with the repository's max_packet_size, its bridge."""

    def __init__(self, tmp, keys):
        self.keys = keys
        super().__init__()
        try:
            self.redis = self._start(Redis(tmp.mktemp("redis")))
            self.broker = self._start(Mosquitto(tmp.mktemp("broker"), keys.plugin_opts(),
                                                extra_conf="max_packet_size 2097152"))
            self.store = "sqlite:%s" % os.path.join(str(tmp.mktemp("store")), "chat.db")
            self.bridge = self._start(Bridge(tmp.mktemp("bridge"), self.broker, self.redis,
                                             keys, "node1", store_url=self.store))
        except BaseException:
            self.stop()
            raise


    def client(self, user, cid=None, protocol=None):
        c = Client(self.broker.port, user, self.keys.mint(user), cid,
                   **({"protocol": protocol} if protocol else {}))
        assert c.connect() == 0
        assert c.subscribe("chat/user/%s/#" % user, qos=1) < 0x80
        return c


@pytest.fixture(scope="module")
def node(tmp_path_factory, keys):
    n = Node(tmp_path_factory, keys)
    yield n
    n.stop()
    reports = n.broker.sanitizer_reports() + n.bridge.sanitizer_reports()
    assert not reports, reports


def varint(n):
    return _remaining_length(n)


def user_property(name: bytes, value: bytes):
    return b"\x26" + _utf8(name) + _utf8(value)


def raw_connect5(port, user, token, cid):
    body = _utf8(b"MQTT") + bytes([5, 0xC2]) + struct.pack("!H", 60) + varint(0) + \
        _utf8(cid.encode()) + _utf8(user.encode()) + _utf8(token.encode())
    s = socket.create_connection(("127.0.0.1", port), timeout=300)
    s.sendall(bytes([0x10]) + varint(len(body)) + body)
    head = s.recv(2)
    rest = s.recv(head[1])
    assert head[0] == 0x20 and rest[1] == 0, (head, rest)
    return s


def raw_connect311(port, user, token):
    body = _utf8(b"MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 60) + \
        _utf8(user.encode()) + _utf8(user.encode()) + _utf8(token.encode())
    s = socket.create_connection(("127.0.0.1", port), timeout=300)
    s.sendall(bytes([0x10]) + varint(len(body)) + body)
    assert s.recv(4) == b"\x20\x02\x00\x00"
    return s


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


class Pinger(threading.Thread):
    """Another user's connection doing PINGREQ round trips back to back."""

    def __init__(self, port, user, token):
        super().__init__(daemon=True)
        self.s = raw_connect311(port, user, token)
        self.rtts = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            t0 = time.time()
            self.s.sendall(b"\xc0\x00")
            assert read_exact(self.s, 2) == b"\xd0\x00"
            self.rtts.append(time.time() - t0)
            time.sleep(0.01)
        self.s.close()


def test_60000_properties_are_refused_without_stalling_the_broker(node):
    owner = node.client("owner")
    assert "result" in rpc(owner, "owner", "room.create", {"room": "flood"})
    eyes = node.client("mallory", "mallory:eyes")
    assert eyes.subscribe("chat/room/flood", qos=1) < 0x80
    attacker = raw_connect5(node.broker.port, "mallory", node.keys.mint("mallory"), "mallory:raw")
    pinger = Pinger(node.broker.port, "bob", node.keys.mint("bob"))
    pinger.start()
    try:
        time.sleep(0.2)
        # a forged chat-role first: what made the broker copy the list
        props = user_property(b"chat-role", b"admin") + user_property(b"a", b"b") * 60000
        payload = json.dumps({"body": "flood", "cid": "flood-1"}).encode()
        body = _utf8(b"chat/in/mallory/room/flood") + struct.pack("!H", 1) + \
            varint(len(props)) + props + payload
        assert len(body) < 2 * 1024 * 1024
        t0 = time.time()
        attacker.sendall(b"\x32" + varint(len(body)) + body)
        head = read_exact(attacker, 2)
        ack = read_exact(attacker, head[1])
        took = time.time() - t0
        time.sleep(0.3)
        pinger.stop.set()
        pinger.join(30)
        print("60,000 properties: PUBACK after %.3f s; pings %d, slowest %.3f s"
              % (took, len(pinger.rtts), max(pinger.rtts)))
        assert head[0] == 0x40 and ack[:2] == b"\x00\x01", (head, ack)
        assert len(ack) >= 3 and ack[2] == 0x87, "PUBACK %r: not refused" % ack
        assert pinger.rtts and max(pinger.rtts) < STALL_BOUND_S, \
            "another client waited %.3f s for the broker" % max(pinger.rtts)
        assert wait_for(lambda: any(n.get("code") == "too_large" and n.get("cid") == "flood-1"
                                    for n in payloads(eyes, "/notice")), timeout=10), \
            payloads(eyes, "/notice")
        # nothing of it is stored; the next post of the same user goes through
        eyes.publish("chat/in/mallory/room/flood", json.dumps({"body": "ok", "cid": "after"}),
                     qos=1)
        assert wait_for(lambda: any(m.get("cid") == "after"
                                    for m in payloads(eyes, "chat/room/flood")), timeout=10)
        history = rpc(eyes, "mallory", "history", {"conv": "room:flood"})["result"]["messages"]
        assert [m.get("cid") for m in history] == ["after"], history
    finally:
        pinger.stop.set()
        attacker.close()
        owner.close()
        eyes.close()


def publish5(client, topic, payload, user_props=(), **props):
    p = Properties(PacketTypes.PUBLISH)
    if user_props:
        p.UserProperty = list(user_props)
    for k, v in props.items():
        setattr(p, k, v)
    client.c.publish(topic, payload, qos=1, properties=p)


def test_property_count_and_bytes_count_toward_the_limits(node):
    owner = node.client("owner")
    assert "result" in rpc(owner, "owner", "room.create", {"room": "props"})
    eve = node.client("eve", "eve:v5", V5)
    assert eve.subscribe("chat/room/props", qos=1) < 0x80
    topic = "chat/in/eve/room/props"
    try:
        # 33 small user properties: over the count
        publish5(eve, topic, json.dumps({"body": "many", "cid": "c33"}),
                 [("k%d" % i, "v") for i in range(33)])
        # two 8 KiB values: a small payload, but a 16 KiB+ packet
        publish5(eve, topic, json.dumps({"body": "big", "cid": "c16k"}),
                 [("a", "x" * 8192), ("b", "y" * 8192)])
        # a request over the count: an rpc error with its id, not executed
        publish5(eve, "chat/in/eve/rpc",
                 json.dumps({"id": "r33", "method": "room.create",
                             "params": {"room": "never"}}),
                 [("k%d" % i, "v") for i in range(33)])
        # within both: delivered, the properties kept (the stamp aside)
        publish5(eve, topic, json.dumps({"body": "fine", "cid": "c5"}),
                 [("k%d" % i, "v") for i in range(31)])
        assert wait_for(lambda: any(m.get("cid") == "c5"
                                    for m in payloads(eve, "chat/room/props")), timeout=10)
        refused = lambda: sorted(n.get("cid") for n in payloads(eve, "/notice")
                                 if n.get("code") == "too_large")
        assert wait_for(lambda: refused() == ["c16k", "c33"], timeout=10), \
            payloads(eve, "/notice")
        replies = lambda: [r for r in payloads(eve, "/rpc") if r.get("id") == "r33"]
        assert wait_for(replies, timeout=10), payloads(eve, "/rpc")
        assert replies()[0]["error"]["code"] == "too_large", replies()
        cids = [m.get("cid") for m in payloads(eve, "chat/room/props")]
        assert cids == ["c5"], cids
        reply = rpc(eve, "eve", "rooms.list", {"query": "never"})
        assert reply["result"]["rooms"] == [], reply
    finally:
        owner.close()
        eve.close()
