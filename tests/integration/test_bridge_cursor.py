"""The feed's cursor (chat:cursor:<node>, issue 11): written at most every
200 ms rather than after every XREAD, yet never left behind: it reaches the
last delivered entry soon after traffic stops (the store's trim keeps what
the oldest cursor has not passed), and a clean stop writes the latest one
(a restarted bridge resumes there, not seconds back)."""
import json
import subprocess
import time

from chatharness import find_binary
from mqttutil import Client, rpc, wait_for

POSTS = 300
GAP_S = 0.005  # paced, so each post is its own XREAD on each bridge


def monitor(redis, path):
    """Every command Redis runs, to a file, until the process is ended."""
    cmd = [find_binary("redis-cli"), "-p", str(redis.port)]
    if redis.user:
        cmd += ["--user", redis.user]
    out = open(path, "w")
    return subprocess.Popen(cmd + ["MONITOR"], stdout=out, env=redis.cli_env()), out


def stream_tail(redis):
    """The id of the newest entry ever added: the stream itself may be
    empty, as the store's trim takes what every reader is done with."""
    out = redis.call("XINFO", "STREAM", "chat:stream").splitlines()
    return out[out.index("last-generated-id") + 1]


def seqs(c):
    with c.lock:
        return {json.loads(p)["seq"] for _, p in c.messages}


def test_cursor_is_written_per_interval_and_catches_up(make_cluster, tmp_path):
    cluster = make_cluster(rate_per_s=1000000, rate_burst=1000000)
    keys, redis = cluster.keys, cluster.redis
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    owner = Client(n1, "owner", keys.mint("owner"))
    assert owner.connect() == 0
    assert owner.subscribe("chat/user/owner/rpc") < 0x80
    assert "result" in rpc(owner, "owner", "room.create", {"room": "cur"})
    reader = Client(n2, "reader", keys.mint("reader"))
    assert reader.connect() == 0
    assert reader.subscribe("chat/room/cur", qos=1) < 0x80

    mon, out = monitor(redis, str(tmp_path / "monitor"))
    time.sleep(0.5)
    start = time.time()
    for i in range(POSTS):
        owner.c.publish("chat/in/owner/room/cur", "m %d" % i, qos=1)
        time.sleep(GAP_S)
    assert wait_for(lambda: len(seqs(reader)) >= POSTS, timeout=30), len(seqs(reader))
    elapsed = time.time() - start
    mon.terminate()
    mon.wait(10)
    out.close()

    # per 200 ms on each of the two feeds, not per XREAD (before: about one
    # per post per bridge, ~600 here)
    with open(str(tmp_path / "monitor")) as f:
        cursor_sets = sum(1 for line in f if '"SET" "chat:cursor:' in line)
    bound = 2 * (elapsed / 0.2 + 3)
    assert 2 <= cursor_sets <= bound, (cursor_sets, bound, elapsed)

    # no more traffic: the last cursor still goes out (the loop writes a
    # waiting one), so the trim is never held back for good
    tail = stream_tail(redis)
    for node in ("node1", "node2"):
        assert wait_for(lambda: redis.call("GET", "chat:cursor:" + node) == tail, timeout=5), \
            (node, redis.call("GET", "chat:cursor:" + node), tail)

    # a clean stop right after a delivery writes the newest cursor
    owner.c.publish("chat/in/owner/room/cur", "late 1", qos=1)
    time.sleep(0.05)
    owner.c.publish("chat/in/owner/room/cur", "late 2", qos=1)
    assert wait_for(lambda: len(seqs(reader)) >= POSTS + 2, timeout=10)
    cluster.bridges[1].stop()
    assert redis.call("GET", "chat:cursor:node2") == stream_tail(redis)
    owner.close()
    reader.close()
