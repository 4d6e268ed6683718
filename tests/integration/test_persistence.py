"""The persistence pipeline against both stores (SQLite file and MongoDB
wire through FerretDB): every accepted message ends up in the store exactly
once, in seq order, through a 30 s store outage (history answers meanwhile),
a kill -9 of the worker mid-batch, and a flush of Redis (cold start: seq
continues after the highest stored one, rooms and history are complete)."""
import json
import threading
import time

import pytest

from chatharness import stored_messages
from mqttutil import payloads, rpc, signed_in, wait_for

FAST = {"rate_per_s": 100000, "rate_burst": 100000}


def person(cluster, node, user, *subs, role="user"):
    return signed_in(cluster.brokers[node].port, cluster.keys, user, *subs, role=role)


def stored_seqs(cluster, conv):
    return [s for s, _ in stored_messages(cluster.store_url, conv)]


def wait_stored(cluster, conv, n, timeout=60):
    return wait_for(lambda: len(stored_seqs(cluster, conv)) >= n, timeout=timeout, interval=0.5)


def lease_holder(cluster):
    name = cluster.redis.call("GET", "chat:persist:lease")
    return next((b for b in cluster.bridges if b.node == name), None)


def test_store_outage_loses_nothing(make_cluster, ferretdb):
    """5,000 messages while the store is stopped for 30 s."""
    cluster = make_cluster(store_url=ferretdb.url + "outage", **FAST)
    alice = person(cluster, 0, "alice")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "outage"})
    ferretdb.stop()
    t0 = time.time()
    for k in range(5000):
        alice.c.publish("chat/in/alice/room/outage", "o%d" % k, qos=1)
        if k % 500 == 499:
            time.sleep(0.2)
    assert wait_for(lambda: cluster.redis.call("GET", "chat:seq:room:outage") == "5000",
                    timeout=30)
    # history answers from Redis meanwhile, the oldest and the newest
    first = rpc(alice, "alice", "history", {"conv": "room:outage", "after": 0, "limit": 200})
    assert [m["seq"] for m in first["result"]["messages"]] == list(range(1, 201))
    last = rpc(alice, "alice", "history", {"conv": "room:outage"})
    assert [m["seq"] for m in last["result"]["messages"]] == list(range(4951, 5001))
    backlog = wait_for(lambda: int(cluster.redis.call("HGET", "chat:metrics:persist",
                                                      "backlog") or 0) >= 5000, timeout=10)
    assert backlog, "the backlog is not reported while the store is down"
    time.sleep(max(0, 30 - (time.time() - t0)))
    ferretdb.start()
    assert wait_stored(cluster, "room:outage", 5000, timeout=90)
    rows = stored_messages(cluster.store_url, "room:outage")
    assert [s for s, _ in rows] == list(range(1, 5001)), "not exactly once, in order"
    assert [m["body"] for _, m in rows] == ["o%d" % k for k in range(5000)]
    assert wait_for(lambda: cluster.redis.call("HGET", "chat:metrics:persist", "backlog") == "0",
                    timeout=10)
    alice.close()


@pytest.mark.parametrize("restart", [True, False], ids=["restarted", "other-node-takes-over"])
def test_worker_killed_mid_batch(make_cluster, backend, restart):
    cluster = make_cluster(**FAST, **backend)
    alice = person(cluster, 0, "alice")
    bob = person(cluster, 1, "bob")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "crash"})
    stop = threading.Event()

    def send(client, user):
        k = 0
        while not stop.is_set() and k < 4000:
            client.c.publish("chat/in/%s/room/crash" % user, "%s %d" % (user, k), qos=1)
            k += 1
            time.sleep(0.001)
    threads = [threading.Thread(target=send, args=a) for a in ((alice, "alice"), (bob, "bob"))]
    for t in threads:
        t.start()
    time.sleep(1.0)
    holder = lease_holder(cluster)
    holder.kill()
    if restart:
        time.sleep(0.5)
        holder.start()
    else:
        # the other node's worker takes the lease when it lapses (10 s) and
        # first claims what the dead one had read and not acknowledged
        other = next(b for b in cluster.bridges if b is not holder)
        assert wait_for(lambda: lease_holder(cluster) is other, timeout=20)
    for t in threads:
        t.join()
    stop.set()
    # the seq stops moving once the queued input is processed
    last, since = None, time.time()
    while time.time() - since < 2:
        now = cluster.redis.call("GET", "chat:seq:room:crash")
        if now != last:
            last, since = now, time.time()
        time.sleep(0.1)
    final = int(last)
    assert final > 0
    assert wait_stored(cluster, "room:crash", final, timeout=60)
    assert stored_seqs(cluster, "room:crash") == list(range(1, final + 1))
    alice.close()
    bob.close()


def test_cold_start_after_flush(make_cluster, backend):
    cluster = make_cluster(**FAST, **backend)
    alice = person(cluster, 0, "alice")
    bob = person(cluster, 1, "bob", "chat/room/warm")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "warm"})
    assert "result" in rpc(alice, "alice", "room.create", {"room": "inner", "private": True})
    for k in range(50):
        alice.c.publish("chat/in/alice/room/warm", "w%d" % k, qos=1)
    alice.publish("chat/in/alice/dm/bob", "hello bob", qos=1)
    assert wait_stored(cluster, "room:warm", 50)
    assert wait_stored(cluster, "dm:alice:bob", 1)
    assert wait_for(lambda: cluster.redis.call("XLEN", "chat:ops") == "0"
                    or int(cluster.redis.call("HGET", "chat:metrics:persist", "backlog") or 1) == 0,
                    timeout=10)
    time.sleep(1.5)  # the ops (rooms, members) reach the store
    cluster.redis.call("FLUSHALL")
    assert wait_for(lambda: cluster.redis.call("EXISTS", "chat:restored") == "1", timeout=30)
    with bob.lock:
        bob.messages.clear()
    assert wait_for(lambda: (alice.publish("chat/in/alice/room/warm", "after flush", qos=1),
                             wait_for(lambda: payloads(bob, "/room/warm"), timeout=1))[1],
                    timeout=15)
    assert payloads(bob, "/room/warm")[0]["seq"] == 51
    # and the pipeline works again after the flush
    assert wait_stored(cluster, "room:warm", 51, timeout=20)
    assert stored_seqs(cluster, "room:warm") == list(range(1, 52))
    dm = rpc(bob, "bob", "history", {"conv": "dm:alice:bob"})["result"]["messages"]
    assert [m["body"] for m in dm] == ["hello bob"]
    assert wait_for(lambda: len(rpc(bob, "bob", "history", {"conv": "room:warm", "after": 0,
                                                             "limit": 200})
                                ["result"]["messages"]) == 51, timeout=5)
    page = rpc(bob, "bob", "history", {"conv": "room:warm", "after": 0, "limit": 200})
    assert [m["seq"] for m in page["result"]["messages"]] == list(range(1, 52))
    # the private room is still private: bob may not post, alice may
    bob.publish("chat/in/bob/room/inner", "let me in", qos=1)
    assert wait_for(lambda: any(n.get("code") == "forbidden" for n in payloads(bob, "/notice")))
    rooms = {r["room"]: r for r in rpc(alice, "alice", "rooms.list")["result"]["rooms"]}
    assert rooms["inner"]["private"] and rooms["inner"]["owner"] == "alice"
    alice.close()
    bob.close()


@pytest.mark.parametrize("url", ["mysql://db/chat", "sqlite:/nonexistent/folder/chat.db",
                                 "mongodb://"])
def test_bridge_refuses_a_store_it_cannot_open(tmp_path, keys, url):
    import os
    import subprocess
    from chatharness import BUILD_DIR
    conf = tmp_path / "bridge.conf"
    conf.write_text("jwt_key_file %s\nstore_url %s\n" % (keys.secret_file, url))
    env = {k: v for k, v in os.environ.items() if k != "CHAT_CONFIG"}
    r = subprocess.run([os.path.join(BUILD_DIR, "bridge", "chat-bridge"), "--config", str(conf)],
                       capture_output=True, text=True, timeout=20, env=env)
    assert r.returncode == 1
    assert "store_url" in r.stdout + r.stderr
