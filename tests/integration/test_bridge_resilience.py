"""Failures and limits: a bridge killed with -9 while traffic flows (its
clients keep receiving once it is back, no accepted message lost or
duplicated in seq), Redis restarted (seq continues, never reused), and the
per-user rate limit."""
import json
import threading
import time

from chatharness import stored_messages
from mqttutil import Client, payloads, rpc, settled_seq, wait_for


def setup_room(cluster, room):
    keys = cluster.keys
    owner = Client(cluster.brokers[0].port, "owner", keys.mint("owner"))
    assert owner.connect() == 0
    assert owner.subscribe("chat/user/owner/rpc") < 0x80
    assert "result" in rpc(owner, "owner", "room.create", {"room": room})
    owner.close()


def readers(cluster, room, n=2):
    out = []
    for i in range(n):
        c = Client(cluster.brokers[i % 2].port, "reader%d" % i,
                   cluster.keys.mint("reader%d" % i))
        assert c.connect() == 0
        assert c.subscribe("chat/room/" + room, qos=1) < 0x80
        out.append(c)
    return out


def seqs(client):
    with client.lock:
        return [json.loads(p)["seq"] for _, p in client.messages]


def test_bridge_killed_mid_traffic(make_cluster):
    # with a grace (not the default), the broker queues posts for a bridge
    # that is away, and the restarted bridge takes them all
    cluster = make_cluster(broker_opts={"bridge_grace": 30}, rate_per_s=100000,
                           rate_burst=100000)
    setup_room(cluster, "busy")
    subs = readers(cluster, "busy")
    keys = cluster.keys
    pubs = []
    for i in range(2):
        c = Client(cluster.brokers[i].port, "sender%d" % i, keys.mint("sender%d" % i))
        assert c.connect() == 0
        pubs.append(c)
    sent = [0, 0]

    def send(i):
        for k in range(1500):
            pubs[i].c.publish("chat/in/sender%d/room/busy" % i, "n %d" % k, qos=1)
            sent[i] += 1
            time.sleep(0.002)
    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    cluster.bridges[0].kill()
    time.sleep(1.0)
    cluster.bridges[0].start()
    for t in threads:
        t.join()

    # the restarted bridge drains what its session queued meanwhile: wait
    # until the conversation's seq stops moving
    final = settled_seq(cluster.redis, "room:busy")
    assert final > 0
    for c in subs:
        assert wait_for(lambda: set(seqs(c)) >= set(range(1, final + 1)), timeout=30), \
            "reader on port %d is missing seqs" % c.port
    for c in subs:
        got = sorted(set(seqs(c)))
        assert got == list(range(1, final + 1)), "gap in seq"
        # duplicates are allowed (at-least-once) but each seq carries one message
        with c.lock:
            by_seq = {}
            for _, p in c.messages:
                m = json.loads(p)
                assert by_seq.setdefault(m["seq"], (m["from"], m["body"])) == (m["from"], m["body"])
    # the store holds each seq once
    stored = wait_for(lambda: [s for s, _ in stored_messages(cluster.store_url, "room:busy")]
                      if len(stored_messages(cluster.store_url, "room:busy")) >= final else None,
                      timeout=30)
    assert stored == list(range(1, final + 1))
    # what the killed bridge had queued in its session was processed after the restart
    assert final == sum(sent), "accepted %d of %d sent" % (final, sum(sent))
    for c in subs + pubs:
        c.close()


def test_redis_restart_continues_seq(make_cluster):
    cluster = make_cluster()
    setup_room(cluster, "durable")
    sub = readers(cluster, "durable", 1)[0]
    alice = Client(cluster.brokers[1].port, "alice", cluster.keys.mint("alice"))
    assert alice.connect() == 0
    assert alice.subscribe("chat/user/alice/#") < 0x80
    for k in range(5):
        alice.publish("chat/in/alice/room/durable", "before %d" % k, qos=1)
    assert wait_for(lambda: len(seqs(sub)) >= 5)
    cluster.redis.kill()
    cluster.redis.start()
    for b in cluster.bridges:
        assert wait_for(lambda: b.log().count("redis cmd: connected") >= 2, timeout=10)
    time.sleep(0.5)

    def post_after():
        with alice.lock:
            alice.messages.clear()
        alice.publish("chat/in/alice/room/durable", "after", qos=1)
        return wait_for(lambda: 6 in seqs(sub), timeout=2)
    assert wait_for(post_after, timeout=15), seqs(sub)
    assert sorted(set(seqs(sub)))[:6] == [1, 2, 3, 4, 5, 6]
    sub.close()
    alice.close()


def test_rate_limit_default_20_per_s_burst_40(cluster):
    keys = cluster.keys
    owner = Client(cluster.brokers[0].port, "ratey", keys.mint("ratey"))
    assert owner.connect() == 0
    assert owner.subscribe("chat/user/ratey/#", qos=1) < 0x80
    assert "result" in rpc(owner, "ratey", "room.create", {"room": "ratelimited"})
    assert owner.subscribe("chat/room/ratelimited", qos=1) < 0x80
    start = time.time()
    for k in range(100):
        owner.c.publish("chat/in/ratey/room/ratelimited", "m%d" % k, qos=1)
    got = wait_for(lambda: len(payloads(owner, "/notice")) + len(payloads(owner, "/room/ratelimited")) >= 100)
    elapsed = time.time() - start
    accepted = len(payloads(owner, "/room/ratelimited"))
    limited = [n for n in payloads(owner, "/notice") if n["code"] == "rate_limited"]
    assert got and accepted + len(limited) == 100
    assert 40 <= accepted <= 40 + 20 * elapsed + 1, (accepted, elapsed)
    time.sleep(1.0)
    owner.publish("chat/in/ratey/room/ratelimited", "after a pause", qos=1)
    assert wait_for(lambda: any(m["body"] == "after a pause"
                                for m in payloads(owner, "/room/ratelimited")))
    owner.close()
