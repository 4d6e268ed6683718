"""/healthz never waits on a hung dependency (issue 9 section 2): it answers
within 1 s, naming what is down, while another process holds the SQLite
store under BEGIN EXCLUSIVE and while the store is a "MongoDB" that accepts
connections and never answers; /api/history answers within its own bound
meanwhile. And the broker probe leaves no refusal in mosquitto's log
(issue 9 section 3)."""
import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from chatharness import WsFront
from mqttutil import Client, rpc, wait_for
from wsutil import Web, register, request


@pytest.fixture
def fronts(cluster, tmp_path_factory):
    w = Web.__new__(Web)
    w.cluster, w.keys, w.fronts = cluster, cluster.keys, []
    w.store_url = cluster.store_url
    yield w
    w.finish()


def timed(front, path, headers=None):
    t0 = time.time()
    st, _, body = request(front, "GET", path, headers=headers, timeout=30)
    return st, body, time.time() - t0


LOCKER = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_healthz_and_history_bounded_under_a_locked_sqlite_store(cluster, fronts,
                                                               tmp_path_factory):
    assert cluster.store_url.startswith("sqlite:")
    warm = fronts.add_front(tmp_path_factory, cluster.brokers[0], "warm",
                            history_timeout_ms=2000)
    token = register(warm, "histuser")
    st, body, _ = timed(warm, "/healthz")
    assert st == 200, body
    # a few posts: the recent page of room:lockroom is in Redis
    poster = Client(cluster.brokers[0].port, "histuser", cluster.keys.mint("histuser"),
                    "histuser:x")
    assert poster.connect() == 0
    assert poster.subscribe("chat/user/histuser/#", qos=1) < 0x80
    assert "result" in rpc(poster, "histuser", "room.create", {"room": "lockroom"})
    for k in range(3):
        poster.publish("chat/in/histuser/room/lockroom", "before the lock %d" % k, qos=1)
    poster.close()
    auth = {"Authorization": "Bearer " + token}
    assert wait_for(lambda: len(json.loads(timed(warm, "/api/history?conv=room:lockroom",
                                                 auth)[1]).get("messages", [])) >= 3)
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, cluster.store_url[7:], "20"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert locker.stdout.readline().strip() == "locked"
        # a front started under the lock opens its store lazily: the worst case
        cold = fronts.add_front(tmp_path_factory, cluster.brokers[1], "cold",
                                history_timeout_ms=2000)
        worst, cold_down = 0.0, 0
        for _ in range(6):
            for f in (warm, cold):
                st, body, took = timed(f, "/healthz")
                worst = max(worst, took)
                h = json.loads(body)
                assert h["broker"] == "up" and h["redis"] == "up", body
                # an open store still reads (WAL); one being opened waits on
                # the lock and is named down
                assert st == 200 or (st == 503 and h["down"] == ["store"]), body
                cold_down += f is cold and st == 503
            time.sleep(0.3)
        assert worst < 1.0, "/healthz took %.2f s under the lock" % worst
        print("\nsqlite lock: /healthz worst %.3f s, cold front down %d of 6" % (worst, cold_down))
        # (since the store opens without writing, a cold front usually
        # opens it under the lock too: up or down, it answers in time)
        # the page Redis holds is served by both, the cold front without
        # opening its store; one that needs the store answers in bounded time
        for f in (warm, cold):
            st, body, took = timed(f, "/api/history?conv=room:lockroom", auth)
            assert st == 200 and took < 1.5, (f.settings["node_name"], st, body, took)
            assert len(json.loads(body)["messages"]) >= 3
        st, body, took = timed(cold, "/api/history?conv=room:lockroom&after=0&limit=200", auth)
        assert took < 3.5, "history took %.2f s under the lock" % took
        assert st == 200 or (st == 503 and
                             json.loads(body)["error"]["code"] == "unavailable"), body
    finally:
        locker.kill()
        locker.wait()
    # the lock gone, the store is reported up again
    deadline = time.time() + 30
    while time.time() < deadline:
        st, body, took = timed(warm, "/healthz")
        assert took < 1.0
        if st == 200:
            break
        time.sleep(0.5)
    assert st == 200, body


class SilentServer:
    """Accepts TCP connections and never answers (a hung MongoDB)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stop = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.stop = True
        for c in self.conns:
            c.close()
        self.sock.close()


def test_healthz_bounded_under_a_mongodb_that_never_answers(cluster, fronts,
                                                            tmp_path_factory):
    silent = SilentServer()
    try:
        f = WsFront(tmp_path_factory.mktemp("wsfront"), cluster.brokers[0], cluster.redis,
                    cluster.keys, "mongohang", "mongodb://127.0.0.1:%d/chat" % silent.port)
        fronts.fronts.append(f)
        f.start()
        for _ in range(4):
            st, body, took = timed(f, "/healthz")
            print("\nsilent mongodb: /healthz %.3f s" % took)
            assert took < 1.0, "/healthz took %.2f s" % took
            h = json.loads(body)
            assert st == 503 and h["down"] == ["store"], body
            time.sleep(0.3)
        assert silent.conns, "the store check never reached the fake MongoDB"
    finally:
        silent.close()


def test_health_probe_is_not_a_refusal_in_the_broker_log(cluster, fronts, tmp_path_factory):
    f = fronts.add_front(tmp_path_factory, cluster.brokers[0], "probe")
    broker = cluster.brokers[0]
    before = broker.log().count("refused")
    for _ in range(5):
        st, body, _ = timed(f, "/healthz")
        assert st == 200, body
    time.sleep(0.5)
    log = broker.log()
    assert log.count("refused") == before, log[-2000:]
    assert "bridge:health-probe" in log  # the probe's own session, accepted
