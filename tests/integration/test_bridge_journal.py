"""The bridge's intake journal (bridge/journal.h): a post libmosquitto had
acknowledged to the broker but the bridge had not yet written to Redis
when it died is replayed by the next bridge, once; one Redis had answered
is not posted again."""
import json
import os
import threading
import time
from collections import Counter

from chatharness import stored_messages
from mqttutil import Client, rpc, settled_seq, wait_for


def record(boot, ident, topic, payload):
    return b"J %s %d %d %d\n" % (boot, ident, len(topic), len(payload)) + topic + payload + b"\n"


def history(client, user, conv):
    reply = rpc(client, user, "history", {"conv": conv, "after": 0, "limit": 200})
    return reply["result"]["messages"]


def test_a_journaled_post_is_replayed_once(make_cluster):
    cluster = make_cluster()
    keys = cluster.keys
    owner = Client(cluster.brokers[0].port, "jowner", keys.mint("jowner"))
    assert owner.connect() == 0
    assert owner.subscribe("chat/user/jowner/#", qos=1) < 0x80
    assert "result" in rpc(owner, "jowner", "room.create", {"room": "journaled"})
    bridge = cluster.bridges[0]
    bridge.kill()
    # what a bridge killed after libmosquitto's PUBACK leaves behind: three
    # posts of one journal boot, the first of which Redis had answered
    boot = b"00112233aabbccdd"
    topic = b"chat/in/jowner/room/journaled"
    with open(os.path.join(bridge.dir, "bridge.journal"), "ab") as f:
        for i in (1, 2, 3):
            f.write(record(boot, i, topic, json.dumps({"body": "left %d" % i,
                                                       "cid": "j%d" % i}).encode()))
        f.write(b"J %s 4 29 500\nchat/in/jowner/room/journaled{\"body\":" % boot)  # cut short
    cluster.redis.call("HSET", "chat:journal:node1", boot.decode(), "1")
    bridge.start()
    assert wait_for(lambda: "previous bridge left are answered" in bridge.log(), timeout=15), \
        bridge.log()[-2000:]
    got = [m.get("cid") for m in history(owner, "jowner", "room:journaled")]
    assert got == ["j2", "j3"], got
    assert cluster.redis.call("HEXISTS", "chat:journal:node1", boot.decode()) == "0"
    assert not os.path.exists(os.path.join(bridge.dir, "bridge.journal.replay"))
    # a restart replays nothing again
    bridge.stop()
    bridge.start()
    time.sleep(1.0)
    got = [m.get("cid") for m in history(owner, "jowner", "room:journaled")]
    assert got == ["j2", "j3"], got
    owner.close()


def test_bridge_killed_again_and_again_under_load_loses_nothing(make_cluster):
    """With a grace the broker queues for the absent bridge, so every post
    sent must be accepted exactly once: none refused, none lost, none
    twice. Two windows are hit here: a kill after libmosquitto would have
    sent the PUBACK but before the journal append (lost; the PUBACK now
    waits for the append), and one after the append but before the PUBACK
    (the broker sends it again and the journal replays it: must not be
    posted twice)."""
    cluster = make_cluster(broker_opts={"bridge_grace": 30}, rate_per_s=100000,
                           rate_burst=100000)
    keys = cluster.keys
    owner = Client(cluster.brokers[0].port, "kowner", keys.mint("kowner"))
    assert owner.connect() == 0
    assert owner.subscribe("chat/user/kowner/#", qos=1) < 0x80
    assert "result" in rpc(owner, "kowner", "room.create", {"room": "hammered"})
    owner.close()
    pubs, sent = [], [0, 0]
    for i in range(2):
        c = Client(cluster.brokers[0].port, "ksend%d" % i, keys.mint("ksend%d" % i))
        assert c.connect() == 0
        assert c.subscribe("chat/user/ksend%d/notice" % i, qos=1) < 0x80
        pubs.append(c)
    stop = threading.Event()

    def send(i):
        while not stop.is_set() and sent[i] < 6000:
            cid = "s%d-%d" % (i, sent[i])
            pubs[i].c.publish("chat/in/ksend%d/room/hammered" % i,
                              json.dumps({"body": cid, "cid": cid}), qos=1)
            sent[i] += 1
            time.sleep(0.001)
    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for _ in range(5):
        time.sleep(0.7)
        cluster.bridges[0].kill()
        time.sleep(0.2)
        cluster.bridges[0].start()
    stop.set()
    for t in threads:
        t.join()
    last = settled_seq(cluster.redis, "room:hammered", quiet=2.0)
    stored = wait_for(lambda: (lambda m: m if len(m) >= last else None)(
        stored_messages(cluster.store_url, "room:hammered")), timeout=30)
    assert [s for s, _ in stored] == list(range(1, last + 1)), "gap or duplicate seq in the store"
    cids = [m.get("cid") for _, m in stored]
    want = ["s%d-%d" % (i, k) for i in range(2) for k in range(sent[i])]
    notices = [json.loads(p) for c in pubs for t, p in c.messages if t.endswith("/notice")]
    print("\nsent %d, accepted %d" % (sum(sent), last))
    assert notices == [], "refused during a grace: %s" % notices[:5]
    assert sorted(set(want) - set(cids)) == [], "silently lost"
    assert [c for c, n in Counter(cids).items() if n > 1] == [], "accepted twice"
    assert last == sum(sent)
    for c in pubs:
        c.close()


def test_a_post_whose_answer_was_lost_with_redis_is_sent_again(make_cluster):
    """Redis stopped with the post script in its socket, then killed: the
    bridge cannot know whether it ran, so once Redis is back it sends the
    batch again (the script skips what it had answered) instead of telling
    the sender "refused" about a message that might be in."""
    import signal
    cluster = make_cluster()
    keys = cluster.keys
    alice = Client(cluster.brokers[0].port, "lalice", keys.mint("lalice"))
    assert alice.connect() == 0
    assert alice.subscribe("chat/user/lalice/#", qos=1) < 0x80
    assert "result" in rpc(alice, "lalice", "room.create", {"room": "indoubt"})
    os.killpg(cluster.redis.proc.pid, signal.SIGSTOP)
    try:
        alice.publish("chat/in/lalice/room/indoubt", json.dumps({"body": "b", "cid": "d1"}), qos=1)
        time.sleep(0.5)  # the bridge has sent its script call
    finally:
        cluster.redis.kill()
    cluster.redis.start()
    bridge = cluster.bridges[0]
    assert wait_for(lambda: "sent again 1 post" in bridge.log(), timeout=15), bridge.log()[-2000:]
    assert wait_for(lambda: any(m.get("cid") == "d1" for _, m in
                                stored_messages(cluster.store_url, "room:indoubt")), timeout=20)
    notices = [json.loads(p) for t, p in alice.messages if t.endswith("/notice")]
    assert [n for n in notices if n.get("cid") == "d1"] == [], notices
    alice.close()
