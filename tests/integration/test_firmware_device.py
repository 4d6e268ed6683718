"""The example firmware device (firmware-example, fw-chat) against the real
broker, bridge and Redis: it connects with its device token, posts
readings, receives room messages and DMs, answers a DM, and after losing
the broker (killed and restarted, or the connection cut) catches up through
`history` so that it shows every seq of the room once, in order. A bad
token is refused and the device backs off instead of hammering."""
import json
import socket
import threading
import time

import pytest

from fwdevice import Device
from mqttutil import Client, payloads, rpc, wait_for


def user_client(port, keys, user, subs=()):
    c = Client(port, user, keys.mint(user))
    assert c.connect() == 0
    for t in subs:
        assert c.subscribe(t, qos=1) < 0x80
    return c


def make_room(cluster, room):
    owner = user_client(cluster.brokers[1].port, cluster.keys, "owner",
                        ["chat/user/owner/rpc"])
    reply = rpc(owner, "owner", "room.create", {"room": room})
    owner.close()
    assert "result" in reply, reply


def room_seq(cluster, room):
    return int(cluster.redis.call("GET", "chat:seq:room:" + room) or 0)


def assert_every_seq_once(dev, conv, first, last):
    got = [s for _, s, _, _ in dev.messages(conv)]
    assert got == list(range(first, last + 1)), \
        "expected seqs %d..%d once each, in order; device showed %s" % (first, last, got)


@pytest.fixture(scope="module")
def lab(cluster):
    make_room(cluster, "lab")
    return cluster


def test_device_posts_receives_and_answers_dm(lab):
    keys = lab.keys
    alice = user_client(lab.brokers[1].port, keys, "alice",
                        ["chat/room/lab", "chat/user/alice/#"])
    dev = Device(lab.brokers[0].port, "sensor1", keys.mint("sensor1"), room="lab",
                 interval_ms=150, posts=3, answer_dm=True, keepalive=5)
    try:
        dev.wait_line("connected")
        # three readings reach a user on the other instance, from the device
        got = wait_for(lambda: len(payloads(alice, "/room/lab")) >= 3 and
                       payloads(alice, "/room/lab"), timeout=10)
        assert got, "alice received %s" % payloads(alice, "/room/lab")
        assert [m["from"] for m in got] == ["sensor1"] * 3
        assert [m["body"] for m in got] == ["temp=%s n=%d" % (b.split()[0][5:], i + 1)
                                            for i, b in enumerate(m["body"] for m in got)]
        assert dev.wait_line("posted") >= 0
        # the device shows its own readings too, by seq
        dev.wait_line(lambda l: l.startswith("msg conv=room:lab") and "n=3" in l)
        # a room message from someone else
        alice.publish("chat/in/alice/room/lab", b"hello device", qos=1)
        dev.wait_line("msg conv=room:lab seq=4 from=alice body=hello device")
        # a DM: shown on the device, which answers with a reading
        alice.publish("chat/in/alice/dm/sensor1", b"read", qos=1)
        dev.wait_line("msg conv=dm:alice:sensor1 seq=1 from=alice body=read")
        answer = wait_for(lambda: [m for m in payloads(alice, "/inbox")
                                   if m.get("from") == "sensor1"], timeout=10)
        assert answer and answer[0]["conv"] == "dm:alice:sensor1" and \
            answer[0]["body"].startswith("temp="), payloads(alice, "/inbox")
        # the device sees its own answer as the DM's next seq
        dev.wait_line(lambda l: l.startswith("msg conv=dm:alice:sensor1 seq=2 from=sensor1"))
        assert_every_seq_once(dev, "room:lab", 1, 4)
        assert_every_seq_once(dev, "dm:alice:sensor1", 1, 2)
        assert dev.count("disconnected") == 0 and dev.count("bad-input") == 0
    finally:
        dev.stop()
        alice.close()


def test_bad_token_is_refused_and_backs_off(lab):
    """A token for another user (sub != username): CONNACK 5, logged, and
    the attempts spread out (doubling delay with jitter); the broker stays
    up for everyone else."""
    keys = lab.keys
    dev = Device(lab.brokers[0].port, "sensor2", keys.mint("mallory"), room="lab",
                 backoff_min=200, backoff_max=3200, run_ms=6000)
    try:
        dev.proc.wait(20)
    finally:
        dev.stop()
    lines = dev.snapshot()
    refused = [l for l in lines if l.startswith("refused")]
    waits = [int(l.split("ms=")[1]) for l in lines if l.startswith("wait ms=")]
    assert refused and all(l.startswith("refused code=5") for l in refused), lines
    assert "connected" not in lines
    # bases 0.2, 0.4, 0.8, 1.6, 3.2, 3.2 s, each jittered to 50-100 %: in
    # 6 s that is 5 to 7 attempts; without backoff it would be hundreds
    assert 3 <= len(refused) <= 7, lines
    for k, w in enumerate(waits):
        base = min(200 * 2 ** k, 3200)
        assert base // 2 <= w <= base, "wait %d was %d ms, expected %d..%d" % (
            k, w, base // 2, base)
    # the broker still serves a good client
    ok = Client(lab.brokers[0].port, "sensor2", keys.mint("sensor2"), "sensor2:check")
    try:
        assert ok.connect() == 0
    finally:
        ok.close()


def post_numbered(client, user, room, start, n, pause=0.05):
    for k in range(start, start + n):
        client.publish("chat/in/%s/room/%s" % (user, room), "m%d" % k, qos=1)
        time.sleep(pause)


def test_catch_up_after_broker_killed_and_restarted(make_cluster):
    cluster = make_cluster()
    make_room(cluster, "plant")
    keys = cluster.keys
    bob = user_client(cluster.brokers[1].port, keys, "bob", ["chat/user/bob/#"])
    dev = Device(cluster.brokers[0].port, "sensor3", keys.mint("sensor3"), room="plant",
                 backoff_min=200, backoff_max=1000, keepalive=5, history_limit=4)
    try:
        dev.wait_line("connected")
        post_numbered(bob, "bob", "plant", 1, 3)
        dev.wait_line("msg conv=room:plant seq=3 ")
        cluster.brokers[0].kill()
        dev.wait_line("disconnected")
        # while the device's broker is down the room goes on elsewhere
        post_numbered(bob, "bob", "plant", 4, 13)
        assert wait_for(lambda: room_seq(cluster, "plant") == 16, timeout=10)
        cluster.brokers[0].start()
        first_connect = dev.wait_line("connected")
        dev.wait_line("connected", timeout=20, after=first_connect + 1)
        post_numbered(bob, "bob", "plant", 17, 4)
        final = 20
        assert wait_for(lambda: room_seq(cluster, "plant") == final, timeout=10)
        dev.wait_line("msg conv=room:plant seq=%d " % final, timeout=30)
        # what was missed came through history, not a lucky live feed
        dev.wait_line(lambda l: l.startswith("caught-up conv=room:plant seq=") and
                      int(l.rsplit("=", 1)[1]) >= 16)
        assert_every_seq_once(dev, "room:plant", 1, final)
        assert [b for _, _, _, b in dev.messages("room:plant")] == \
            ["m%d" % k for k in range(1, final + 1)]
    finally:
        dev.stop()
        bob.close()


class CuttableProxy:
    """A loopback TCP proxy whose connections the test can cut at once, as
    a Wi-Fi drop would; while cut it refuses new connections too."""

    def __init__(self, target_port):
        self.target = target_port
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.down = False
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            if self.down:
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.down = True
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass

    def restore(self):
        self.down = False

    def close(self):
        self.closed = True
        self.cut()
        self.lsock.close()


def test_catch_up_after_connection_cut(make_cluster):
    cluster = make_cluster()
    make_room(cluster, "shed")
    keys = cluster.keys
    proxy = CuttableProxy(cluster.brokers[0].port)
    carol = user_client(cluster.brokers[1].port, keys, "carol", ["chat/user/carol/#"])
    dev = Device(proxy.port, "sensor4", keys.mint("sensor4"), room="shed",
                 backoff_min=300, backoff_max=1000, keepalive=5, history_limit=3)
    try:
        dev.wait_line("connected")
        post_numbered(carol, "carol", "shed", 1, 2)
        carol.publish("chat/in/carol/dm/sensor4", b"d1", qos=1)
        dev.wait_line("msg conv=room:shed seq=2 ")
        dev.wait_line("msg conv=dm:carol:sensor4 seq=1 ")
        proxy.cut()
        dev.wait_line("disconnected")
        post_numbered(carol, "carol", "shed", 3, 8)
        for k in (2, 3):
            carol.publish("chat/in/carol/dm/sensor4", b"d%d" % k, qos=1)
        time.sleep(0.5)
        proxy.restore()
        first = dev.wait_line("connected")
        dev.wait_line("connected", timeout=20, after=first + 1)
        post_numbered(carol, "carol", "shed", 11, 2)
        dev.wait_line("msg conv=room:shed seq=12 ", timeout=30)
        dev.wait_line("msg conv=dm:carol:sensor4 seq=3 ", timeout=30)
        assert_every_seq_once(dev, "room:shed", 1, 12)
        assert_every_seq_once(dev, "dm:carol:sensor4", 1, 3)
        assert [b for _, _, _, b in dev.messages("dm:carol:sensor4")] == ["d1", "d2", "d3"]
    finally:
        dev.stop()
        carol.close()
        proxy.close()


def test_minimum_buffers(lab):
    """The smallest buffers the README promises (rx 256, tx 256) are enough
    to connect with a real token, post and receive; a message too big for
    rx is reported and skipped by seq, never silently lost or shown twice."""
    keys = lab.keys
    make_room(lab, "tiny")
    dan = user_client(lab.brokers[1].port, keys, "dan", ["chat/room/tiny"])
    dev = Device(lab.brokers[0].port, "sensor5", keys.mint("sensor5"), room="tiny",
                 rx=256, tx=256, history_limit=2, interval_ms=100, posts=1)
    try:
        dev.wait_line("connected")
        dev.wait_line("posted")
        got = wait_for(lambda: payloads(dan, "/room/tiny"))
        assert got and got[0]["from"] == "sensor5", got
        dan.publish("chat/in/dan/room/tiny", b"short one", qos=1)
        dan.publish("chat/in/dan/room/tiny", b"L" * 400, qos=1)
        dan.publish("chat/in/dan/room/tiny", b"after the long one", qos=1)
        dev.wait_line("msg conv=room:tiny seq=4 from=dan body=after the long one")
        lines = dev.snapshot()
        assert any(l.startswith("too-big") for l in lines), lines
        assert "skipped conv=room:tiny seq=3" in lines, lines
        assert [s for _, s, _, _ in dev.messages("room:tiny")] == [1, 2, 4]
    finally:
        dev.stop()
        dan.close()
