"""What the broker keeps for one client that does not acknowledge (issue 22,
finding 6), and that the bridge, a client under the same limits, never
loses a post the broker acknowledged. The brokers run with the queue
limits of the repository's mosquitto.conf (the harness copies them):

- a connected MQTT 5 client with a Receive Maximum of 65,535 that never
  sends a PUBACK, in a room that gets thousands of large posts, makes the
  broker grow by a bound derived from those limits, and the others in the
  room still receive every message;
- with the bridge stopped (SIGSTOP) while users post, every post is either
  stored once it runs again or refused with a notice: the plugin refuses
  before the broker's queue for the bridge is full, both when bytes fill
  it (large posts) and when the count does (small posts, the limits scaled
  down);
- a QoS 2 post, which mosquitto routes only at its PUBREL (whenever the
  client sends it, past any bound checked at its PUBLISH), is refused with
  a notice;
- bounds for the bridge that the broker's limits cannot hold refuse the
  start, with a line naming the key."""
import json
import os
import signal
import threading
import time

import pytest
from chatharness import (SANITIZE, Bridge, HarnessError, Mosquitto, Redis,
                         broker_queue_limits, stored_messages)
from mqttutil import V5, V311, Client, rpc, settled_seq, wait_for
from noack import NoAck
from servers import Servers


def limit(name):
    """A queue limit of mosquitto.conf, as a number."""
    for line in broker_queue_limits():
        key, value = line.split()
        if key == name:
            return int(value)
    raise AssertionError(name)


class Broker(Mosquitto):
    """The broker, with ASan's quarantine off (when sanitized): freed memory
    is then reused, so its RSS shows what it holds rather than what it
    freed last."""

    def env(self):
        env = super().env()
        if SANITIZE:
            env["ASAN_OPTIONS"] += ":quarantine_size_mb=0"
        return env


class Node(Servers):
    def __init__(self, tmp, keys, broker_opts=None, extra_conf=""):
        self.keys = keys
        super().__init__()
        self.store_url = "sqlite:%s" % os.path.join(str(tmp.mktemp("store")), "chat.db")
        try:
            self.redis = self._start(Redis(tmp.mktemp("redis")))
            self.broker = self._start(Broker(tmp.mktemp("broker"),
                                             keys.plugin_opts(**(broker_opts or {})),
                                             extra_conf=extra_conf))
            self.bridge = self._start(Bridge(tmp.mktemp("bridge"), self.broker, self.redis,
                                             keys, "node1", store_url=self.store_url,
                                             rate_per_s=100000, rate_burst=100000))
        except BaseException:
            self.stop()
            raise


    def client(self, user, subs=(), protocol=V311):
        c = Client(self.broker.port, user, self.keys.mint(user), protocol=protocol)
        assert c.connect() == 0
        for t in subs:
            assert c.subscribe(t, qos=1) < 0x80
        return c

    def room(self, name):
        owner = self.client("owner", ["chat/user/owner/rpc"])
        assert "result" in rpc(owner, "owner", "room.create", {"room": name})
        owner.close()

    def rss_kb(self):
        with open("/proc/%d/status" % self.broker.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def seq(self, conv):
        return int(self.redis.call("GET", "chat:seq:" + conv) or 0)


@pytest.fixture
def make_node(tmp_path_factory, keys):
    made = []

    def make(**kw):
        n = Node(tmp_path_factory, keys, **kw)
        made.append(n)
        return n
    yield make
    for n in made:
        n.stop()
    for n in made:
        reports = n.broker.sanitizer_reports() + n.bridge.sanitizer_reports()
        assert not reports, reports


def room_seqs(client, room):
    with client.lock:
        return {json.loads(p)["seq"] for t, p in client.messages if t == "chat/room/" + room}


def notices(client):
    with client.lock:
        return [json.loads(p) for t, p in client.messages if t.endswith("/notice")]


BODY = 4000  # the largest body is 4096 bytes
POSTS = 4800  # ~20 MB of payload: what today's broker keeps all of


def test_a_client_that_never_acknowledges_holds_a_bounded_amount(make_node):
    node = make_node()
    node.room("wide")
    bob = node.client("bob", ["chat/room/wide"])
    carol = node.client("carol", ["chat/room/wide"], protocol=V5)
    alice = node.client("alice", ["chat/user/alice/notice"])

    def post(first, n):
        """n posts, then waits until bob and carol have every one so far
        (the poster waits for the room, as a conversation does)."""
        for k in range(first, first + n):
            alice.c.publish("chat/in/alice/room/wide",
                            json.dumps({"body": ("%05d" % k) + "x" * (BODY - 5), "cid": "a%d" % k}),
                            qos=1)
        want = set(range(1, first + n + 1))
        assert wait_for(lambda: room_seqs(bob, "wide") >= want and room_seqs(carol, "wide") >= want,
                        timeout=60), (len(room_seqs(bob, "wide")), len(room_seqs(carol, "wide")))

    post(0, 200)  # warm up the broker's allocator with the traffic to come
    time.sleep(0.5)
    mallory = NoAck(node.broker.port, "mallory", node.keys.mint("mallory"))
    try:
        mallory.subscribe("chat/room/wide")
        before = node.rss_kb()
        for first in range(200, 200 + POSTS, 100):
            post(first, 100)
        time.sleep(1.0)
        growth = node.rss_kb() - before
        got = mallory.count()
        assert not mallory.closed, "the broker cut the client that does not acknowledge"
    finally:
        mallory.close()
    # What the limits let one client hold: in flight up to
    # max_inflight_bytes (checked before each admission, so one message
    # more), queued up to max_queued_bytes (one more too); each message
    # costs its payload once in the broker's store and a few hundred bytes
    # of bookkeeping; twice that for the allocator's slack, plus 4 MiB for
    # everything else the run moves (8 under ASan, whose redzones and
    # shadow memory double what each allocation costs).
    message = BODY + 200
    held = limit("max_inflight_bytes") + limit("max_queued_bytes") + 2 * message
    bound_kb = (2 * held * (2 if SANITIZE else 1) + (8 if SANITIZE else 4) * 2**20) // 1024
    print("\nbroker RSS growth with a client that never acknowledges %d posts of %d bytes: "
          "%d KiB (bound %d KiB); it was sent %d" % (POSTS, BODY, growth, bound_kb, got))
    assert growth < bound_kb, "the broker grew by %d KiB (bound %d KiB)" % (growth, bound_kb)
    # it did get what the limits allow in flight, and then nothing more
    assert got * message >= limit("max_inflight_bytes"), got
    assert got * BODY <= held, got
    # the others received every message, in order, none refused
    want = set(range(1, 200 + POSTS + 1))
    assert room_seqs(bob, "wide") == want and room_seqs(carol, "wide") == want
    assert notices(alice) == []
    for c in (alice, bob, carol):
        c.close()


def stop_bridge_while_posting(node, room, body, senders, until):
    """Users post to room (QoS 1, unique cids) while the bridge is stopped
    with SIGSTOP, until until(refused notices) holds or 60 s pass; then the
    bridge runs again. Returns (cids sent, cids refused, the clients)."""
    node.room(room)
    clients = [node.client("s%d" % i, ["chat/user/s%d/notice" % i]) for i in range(senders)]
    sent = [[] for _ in clients]  # (cid, mid)
    stop = threading.Event()

    def refused():
        return [n for c in clients for n in notices(c)]

    def send(i):
        k = 0
        while not stop.is_set():
            cid = "s%d-%d" % (i, k)
            info = clients[i].c.publish("chat/in/s%d/room/%s" % (i, room),
                                        json.dumps({"body": body(k), "cid": cid}), qos=1)
            sent[i].append((cid, info.mid))
            k += 1
            if k % 50 == 0:
                time.sleep(0.005)
    os.killpg(node.bridge.proc.pid, signal.SIGSTOP)
    try:
        threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
        for t in threads:
            t.start()
        reached = wait_for(lambda: until(refused()), timeout=60, interval=0.1)
        time.sleep(0.5)  # and some more, refused too
        stop.set()
        for t in threads:
            t.join()
        # every publish acknowledged (PUBACK) while the bridge is still
        # stopped: what the broker took, it holds
        for c, s in zip(clients, sent):
            assert wait_for(lambda: all(mid in c.pubacks for _, mid in s), timeout=30), \
                "%d of %d publishes unacknowledged" % (
                    sum(mid not in c.pubacks for _, mid in s), len(s))
    finally:
        os.killpg(node.bridge.proc.pid, signal.SIGCONT)
    assert reached, "the broker never refused a post while the bridge was stopped (%d " \
        "sent)" % sum(map(len, sent))
    return [cid for s in sent for cid, _ in s], refused(), clients


def assert_each_stored_or_refused(node, room, sent, refused):
    last = settled_seq(node.redis, "room:" + room, quiet=2.0, timeout=120)
    stored = wait_for(lambda: (lambda m: m if len(m) >= last else None)(
        stored_messages(node.store_url, "room:" + room)), timeout=60)
    assert [s for s, _ in stored] == list(range(1, last + 1)), "gap or duplicate seq"
    stored_cids = {m.get("cid") for _, m in stored}
    refused_cids = {n.get("cid") for n in refused}
    assert {n["code"] for n in refused} == {"unavailable"}, refused[:3]
    lost = [c for c in sent if c not in stored_cids and c not in refused_cids]
    both = stored_cids & refused_cids
    print("\nsent %d, stored %d, refused %d, lost %d" % (len(sent), len(stored_cids),
                                                         len(refused_cids), len(lost)))
    assert lost == [], "%d acknowledged posts lost, e.g. %s" % (len(lost), lost[:5])
    assert both == set(), "stored and refused: %s" % sorted(both)[:5]
    assert len(stored_cids) > 0


def test_bridge_stopped_large_posts_are_stored_or_refused(make_node):
    """Large posts fill the bridge's share by bytes (bridge_queue_bytes
    below max_queued_bytes)."""
    node = make_node()
    sent, refused, clients = stop_bridge_while_posting(
        node, "stalled", lambda k: "%06d" % k + "b" * 3000, 2, lambda r: len(r) >= 50)
    assert_each_stored_or_refused(node, "stalled", sent, refused)
    # posting works again once the bridge has caught up
    after = clients[0]
    after.publish("chat/in/s0/room/stalled", json.dumps({"body": "after", "cid": "after"}), qos=1)
    assert wait_for(lambda: any(m.get("cid") == "after" for _, m in
                                stored_messages(node.store_url, "room:stalled")), timeout=30), \
        notices(after)[-3:]
    for c in clients:
        c.close()


def test_bridge_stopped_small_posts_are_stored_or_refused(make_node):
    """Small posts fill it by count; the limits are scaled down (the
    broker's queue to 1,500 messages, the plugin's bound to 500) so the
    test posts thousands, not tens of thousands."""
    node = make_node(broker_opts={"bridge_queue_max": 500},
                     extra_conf="max_queued_messages 1500")
    sent, refused, clients = stop_bridge_while_posting(
        node, "crowded", lambda k: "m%d" % k, 3, lambda r: len(r) >= 200)
    assert_each_stored_or_refused(node, "crowded", sent, refused)
    for c in clients:
        c.close()


def test_a_qos2_post_is_refused_with_a_notice(make_node):
    node = make_node()
    node.room("twice")
    bob = node.client("bob", ["chat/room/twice"])
    for v, protocol in enumerate((V311, V5)):
        alice = node.client("alice", ["chat/user/alice/notice"], protocol=protocol)
        two, one = "two%d" % v, "one%d" % v
        alice.c.publish("chat/in/alice/room/twice", json.dumps({"body": two, "cid": two}), qos=2)
        assert wait_for(lambda: any(n["code"] == "bad_request" and n.get("cid") == two
                                    for n in notices(alice))), notices(alice)
        # QoS 1 is accepted as ever
        alice.publish("chat/in/alice/room/twice", json.dumps({"body": one, "cid": one}), qos=1)
        assert wait_for(lambda: any(json.loads(p).get("cid") == one for _, p in bob.messages))
        alice.close()
    with bob.lock:
        assert [json.loads(p)["body"] for _, p in bob.messages] == ["one0", "one1"]
    bob.close()


def test_bounds_the_broker_cannot_hold_refuse_the_start(tmp_path_factory, keys):
    cases = [({}, "max_queued_messages 5000", "plugin_opt_bridge_queue_max"),
             ({}, "max_queued_bytes 500000", "plugin_opt_bridge_queue_bytes"),
             ({"bridge_queue_bytes": 20000, "publish_max": 32768}, "",
              "plugin_opt_bridge_queue_bytes: 20000 is below publish_max")]
    for opts, conf, want in cases:
        b = Mosquitto(tmp_path_factory.mktemp("broker"), keys.plugin_opts(**opts), conf)
        try:
            with pytest.raises(HarnessError):
                b.start(timeout=10)
        finally:
            b.stop()
        assert want in b.log(), b.log()[-2000:]
    # the repository's own limits start, and say nothing against themselves
    b = Mosquitto(tmp_path_factory.mktemp("broker"), keys.plugin_opts())
    try:
        b.start()
    finally:
        b.stop()
    assert "not checked" not in b.log() and "sets no" not in b.log(), b.log()[-2000:]
