"""10 publishers x 1,000 messages into one room, from both instances: every
subscriber on both instances receives all 10,000 with QoS 1 (duplicates
dropped by seq, as the contract lets clients do), in the same order, seq
1..10000 with no gap (PROTOCOL.md section 5)."""
import json
import threading
import time

from mqttutil import Client, rpc, wait_for

PUBLISHERS = 10
PER_PUBLISHER = 1000
TOTAL = PUBLISHERS * PER_PUBLISHER


def test_ten_thousand_in_order_on_both_instances(make_cluster):
    cluster = make_cluster(rate_per_s=1000000, rate_burst=1000000)
    keys = cluster.keys
    ports = [b.port for b in cluster.brokers]
    owner = Client(ports[0], "owner", keys.mint("owner"))
    assert owner.connect() == 0
    assert owner.subscribe("chat/user/owner/rpc") < 0x80
    assert "result" in rpc(owner, "owner", "room.create", {"room": "big"})
    owner.close()

    subs = []
    for i in range(4):
        c = Client(ports[i % 2], "reader%d" % i, keys.mint("reader%d" % i))
        assert c.connect() == 0
        assert c.subscribe("chat/room/big", qos=1) < 0x80
        subs.append(c)
    pubs = []
    for i in range(PUBLISHERS):
        c = Client(ports[i % 2], "writer%d" % i, keys.mint("writer%d" % i))
        assert c.connect() == 0
        pubs.append(c)

    def send(c, i):
        for k in range(PER_PUBLISHER):
            c.c.publish("chat/in/writer%d/room/big" % i, "m %d %d" % (i, k), qos=1)
    threads = [threading.Thread(target=send, args=(c, i)) for i, c in enumerate(pubs)]
    start = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def distinct_seqs(c):
        with c.lock:
            return len({json.loads(p)["seq"] for _, p in c.messages})
    assert wait_for(lambda: all(distinct_seqs(c) >= TOTAL for c in subs), timeout=120), \
        [distinct_seqs(c) for c in subs]
    elapsed = time.time() - start

    orders = []
    for c in subs:
        with c.lock:
            msgs = [json.loads(p) for _, p in c.messages]
        seen, order = set(), []
        for m in msgs:
            if m["seq"] in seen:
                continue  # an at-least-once duplicate
            seen.add(m["seq"])
            order.append((m["seq"], m["from"], m["body"]))
        assert [s for s, _, _ in order] == list(range(1, TOTAL + 1)), "gap or reorder"
        orders.append(order)
    assert all(o == orders[0] for o in orders), "instances disagree on the order"
    # each publisher's own messages keep their order
    for i in range(PUBLISHERS):
        mine = [int(b.split()[2]) for _, f, b in orders[0] if f == "writer%d" % i]
        assert mine == list(range(PER_PUBLISHER))
    print("10,000 messages to 4 subscribers on 2 instances in %.1f s" % elapsed)
    for c in subs + pubs:
        c.close()
