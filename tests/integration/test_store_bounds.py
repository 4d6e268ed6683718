"""A locked, slow or silent store never makes anything wait past its bound
(issue 9 sections 2 and 3): with another process holding BEGIN EXCLUSIVE on
the SQLite file for 20 s, or a "MongoDB" that accepts connections and never
answers, history pages Redis holds answer at once (< 1 s), pages that need
the store answer within store_timeout_ms (2 s) plus slack, posts keep being
accepted, and once the lock is gone every message is stored exactly once.
Also: the first history request after a Redis restart answers (the worker
reconnects and retries), and the persistence log tells the truth while the
store is down."""
import os
import socket
import subprocess
import sys
import threading
import time

from chatharness import Bridge, Mosquitto, Redis, stored_messages
from mqttutil import payloads, rpc, signed_in, wait_for

FAST = {"rate_per_s": 100000, "rate_burst": 100000}
REDIS_PAGE_S = 1.0   # a page Redis holds, whatever the store does
STORE_PAGE_S = 3.5   # store_timeout_ms 2000 and what a loaded machine adds

LOCKER = r"""
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
db.execute("DELETE FROM messages WHERE seq = 0")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def timed_rpc(client, user, method, params, timeout=30):
    t0 = time.time()
    reply = rpc(client, user, method, params, timeout=timeout)
    took = time.time() - t0
    print("history %s: %s in %.3f s" % (params, "error " + reply["error"]["code"]
                                         if "error" in reply else "ok", took))
    return reply, took


def seqs(reply):
    assert "result" in reply, reply
    return [m["seq"] for m in reply["result"]["messages"]]


def lease_holder(cluster):
    name = cluster.redis.call("GET", "chat:persist:lease")
    return next(b for b in cluster.bridges if b.node == name)


def test_sqlite_locked_by_another_process(make_cluster):
    cluster = make_cluster(recent_max=5, **FAST)
    keys = cluster.keys
    alice = signed_in(cluster.brokers[0].port, keys, "alice")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "locked"})
    assert alice.subscribe("chat/room/locked", qos=1) < 0x80
    # in batches, each stored before the next: the recent list is trimmed
    # only of what the store has
    for batch in range(4):
        for k in range(50):
            alice.c.publish("chat/in/alice/room/locked", "m%d" % k, qos=1)
        n = str(50 * (batch + 1))
        assert wait_for(lambda: cluster.redis.call("GET", "chat:persisted:room:locked") == n,
                        timeout=30)
    listed = int(cluster.redis.call("LLEN", "chat:recent:room:locked"))
    assert 5 <= listed < 150, listed  # older pages need the store
    # the node: a bridge restarted earlier, whose worker has not
    # opened the store yet
    cluster.bridges[0].restart()

    path = cluster.store_url[len("sqlite:"):]
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, path, "20"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        t_lock = time.time()
        reply, took = timed_rpc(alice, "alice", "history", {"conv": "room:locked", "limit": 5})
        assert seqs(reply) == list(range(196, 201)) and took < REDIS_PAGE_S, (reply, took)
        # a page that needs the store: answered (WAL readers pass a writer's
        # lock) or unavailable, but within the bound either way
        reply, took = timed_rpc(alice, "alice", "history",
                                {"conv": "room:locked", "before": 3, "limit": 2})
        assert took < STORE_PAGE_S, took
        assert "result" in reply or reply["error"]["code"] == "unavailable", reply
        if "result" in reply:
            assert seqs(reply) == [1, 2]
        # posts go on being accepted while the store cannot be written
        for k in range(20):
            alice.c.publish("chat/in/alice/room/locked", "locked %d" % k, qos=1)
        assert wait_for(lambda: len(payloads(alice, "/room/locked")) >= 220, timeout=15)
        reply, took = timed_rpc(alice, "alice", "history", {"conv": "room:locked", "limit": 20})
        assert seqs(reply) == list(range(201, 221)) and took < REDIS_PAGE_S, (reply, took)
        assert time.time() - t_lock < 15, "the checks took too long to prove the lock held"
        holder = lease_holder(cluster)
        assert wait_for(lambda: "store DOWN (" in holder.log(), timeout=15), holder.log()[-2000:]
    finally:
        locker.wait(40)
    assert locker.returncode == 0
    assert wait_for(lambda: cluster.redis.call("GET", "chat:persisted:room:locked") == "220",
                    timeout=30)
    stored = [s for s, _ in stored_messages(cluster.store_url, "room:locked")]
    assert stored == list(range(1, 221))  # each exactly once, no gap
    log = lease_holder(cluster).log()
    assert "message(s) wait, the oldest for" in log and "lag -1 ms" not in log
    alice.close()


class MuteServer:
    """Accepts TCP connections and never answers (a hung MongoDB)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_mongodb_that_never_answers(tmp_path_factory, keys):
    mute = MuteServer()
    redis = Redis(tmp_path_factory.mktemp("redis")).start()
    redis.call("SET", "chat:restored", "1")  # Redis holds the state: no restore needed
    broker = Mosquitto(tmp_path_factory.mktemp("broker"), keys.plugin_opts()).start()
    bridge = None
    try:
        t0 = time.time()
        bridge = Bridge(tmp_path_factory.mktemp("bridge"), broker, redis, keys, "mute",
                        store_url="mongodb://127.0.0.1:%d/chat" % mute.port, **FAST).start()
        assert time.time() - t0 < 15
        alice = signed_in(broker.port, keys, "alice")
        assert "result" in rpc(alice, "alice", "room.create", {"room": "now"})
        assert "result" in rpc(alice, "alice", "room.create", {"room": "old"})
        for k in range(3):
            alice.c.publish("chat/in/alice/room/now", "n%d" % k, qos=1)
        assert wait_for(lambda: redis.call("GET", "chat:seq:room:now") == "3")
        reply, took = timed_rpc(alice, "alice", "history", {"conv": "room:now"})
        assert seqs(reply) == [1, 2, 3] and took < REDIS_PAGE_S, (reply, took)
        # a conversation whose messages are all in the store (as after a
        # trim): its pages must ask the store, which never answers
        redis.call("SET", "chat:seq:room:old", "50")
        reply, took = timed_rpc(alice, "alice", "history", {"conv": "room:old"})
        assert reply.get("error", {}).get("code") == "unavailable" and took < STORE_PAGE_S, \
            (reply, took)
        # and the Redis pages stay prompt right after it
        reply, took = timed_rpc(alice, "alice", "history", {"conv": "room:now"})
        assert seqs(reply) == [1, 2, 3] and took < REDIS_PAGE_S, (reply, took)
        assert mute.conns, "the store was never even connected to"
        assert wait_for(lambda: "store DOWN (" in bridge.log(), timeout=15)
        alice.close()
    finally:
        for s in (bridge, broker, redis):
            if s:
                s.stop()
        mute.close()


def test_first_history_after_redis_restart_answers(make_cluster):
    cluster = make_cluster()
    keys = cluster.keys
    alice = signed_in(cluster.brokers[0].port, keys, "alice")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "again"})
    for k in range(3):
        alice.publish("chat/in/alice/room/again", "a%d" % k, qos=1)
    assert wait_for(lambda: cluster.redis.call("GET", "chat:seq:room:again") == "3")
    # the worker's connection is made, and then goes stale
    assert seqs(rpc(alice, "alice", "history", {"conv": "room:again"})) == [1, 2, 3]
    cluster.redis.kill()
    cluster.redis.start()
    b = cluster.bridges[0]
    # the bridge stays with its broker while Redis is away (issue 22): its
    # command link connects again
    assert wait_for(lambda: b.log().count("redis cmd: connected") >= 2, timeout=20), \
        b.log()[-2000:]
    reply = rpc(alice, "alice", "history", {"conv": "room:again"}, timeout=10)
    assert seqs(reply) == [1, 2, 3], reply
    assert "retrying on a new one" in b.log()
    alice.close()
