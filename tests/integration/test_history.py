"""History over MQTT requests (PROTOCOL.md section 6): pages with
before/after/limit at their boundaries, joined from Redis's recent list and
the store; empty conversations; who may read; bad parameters; a client
offline for 1,000 messages catches up with `after` in at most 5 requests;
read markers and unread counts across devices."""
import json
import time

import pytest

from conftest import Cluster
from mqttutil import Client, payloads, rpc, wait_for


def connect(port, keys, user, client_id=None, subs=()):
    c = Client(port, user, keys.mint(user), client_id)
    assert c.connect() == 0
    for t in subs:
        assert c.subscribe(t, qos=1) < 0x80
    return c


def post_many(client, user, room, n, prefix="m"):
    for k in range(n):
        client.c.publish("chat/in/%s/room/%s" % (user, room), "%s%d" % (prefix, k), qos=1)


def seqs_of(reply):
    assert "result" in reply, reply
    return [m["seq"] for m in reply["result"]["messages"]]


@pytest.fixture(scope="module")
def hist(tmp_path_factory, keys):
    """recent_max 10: pages further back than ~74 messages come from the store."""
    cluster = Cluster(tmp_path_factory, keys, recent_max=10, rate_per_s=100000,
                      rate_burst=100000)
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    ann = connect(n1, keys, "ann", subs=["chat/user/ann/#"])
    ben = connect(n2, keys, "ben", subs=["chat/user/ben/#"])
    assert "result" in rpc(ann, "ann", "room.create", {"room": "hist"})
    assert ben.subscribe("chat/room/hist", qos=1) < 0x80
    post_many(ann, "ann", "hist", 300)
    assert wait_for(lambda: cluster.redis.call("GET", "chat:persisted:room:hist") == "300",
                    timeout=30), "the store did not confirm 300 messages"
    assert wait_for(lambda: len(payloads(ben, "/room/hist")) >= 300, timeout=10)
    yield cluster, ann, ben
    for c in (ann, ben):
        c.close()
    cluster.finish()


@pytest.mark.parametrize("params, want", [
    ({}, list(range(251, 301))),
    ({"limit": 1}, [300]),
    ({"after": 0, "limit": 3}, [1, 2, 3]),
    ({"after": 1}, list(range(2, 52))),
    ({"after": 250}, list(range(251, 301))),
    ({"after": 280, "limit": 200}, list(range(281, 301))),
    ({"after": 299}, [300]),
    ({"after": 300}, []),
    ({"after": 5000}, []),
    ({"before": 1}, []),
    ({"before": 2}, [1]),
    ({"before": 100, "limit": 200}, list(range(1, 100))),
    ({"before": 301}, list(range(251, 301))),
    ({"before": 9999, "limit": 3}, [298, 299, 300]),
    ({"after": 100, "limit": 200}, list(range(101, 301))),
])
def test_pages_at_boundaries(hist, params, want):
    _, ann, _ = hist
    assert seqs_of(rpc(ann, "ann", "history", dict(conv="room:hist", **params))) == want


def test_pages_equal_what_subscribers_received(hist):
    _, ann, ben = hist
    live = {m["seq"]: m for m in payloads(ben, "/room/hist")}
    got = []
    after = 0
    while True:
        page = rpc(ann, "ann", "history", {"conv": "room:hist", "after": after, "limit": 200})
        msgs = page["result"]["messages"]
        if not msgs:
            break
        got += msgs
        after = msgs[-1]["seq"]
    assert [m["seq"] for m in got] == list(range(1, 301))
    for m in got:
        assert m == live[m["seq"]], "history differs from the live message"
        assert m["from"] == "ann" and m["conv"] == "room:hist"


def test_empty_conversations(hist):
    _, ann, ben = hist
    assert "result" in rpc(ann, "ann", "room.create", {"room": "quiet"})
    assert seqs_of(rpc(ann, "ann", "history", {"conv": "room:quiet"})) == []
    assert seqs_of(rpc(ann, "ann", "history", {"conv": "dm:ann:ben", "after": 3})) == []


def test_who_may_read(hist):
    cluster, ann, ben = hist
    assert "result" in rpc(ann, "ann", "room.create", {"room": "vault", "private": True})
    ann.publish("chat/in/ann/room/vault", "secret", qos=1)
    ann.publish("chat/in/ann/dm/ben", "just us", qos=1)
    assert wait_for(lambda: any(m.get("body") == "just us" for m in payloads(ben, "/inbox")))
    eve = connect(cluster.brokers[1].port, cluster.keys, "eve", subs=["chat/user/eve/#"])
    for conv, code in [("room:vault", "forbidden"), ("dm:ann:ben", "forbidden"),
                       ("room:nowhere", "not_found")]:
        reply = rpc(eve, "eve", "history", {"conv": conv})
        assert reply.get("error", {}).get("code") == code, (conv, reply)
        assert "result" not in reply
    # the two DM users and the room's members may
    assert [m["body"] for m in rpc(ben, "ben", "history", {"conv": "dm:ann:ben"})
            ["result"]["messages"]] == ["just us"]
    assert wait_for(lambda: rpc(ann, "ann", "history", {"conv": "room:vault"})
                    ["result"]["messages"], timeout=3)
    eve.close()


@pytest.mark.parametrize("params", [
    {"conv": "room:hist", "limit": 0},
    {"conv": "room:hist", "limit": 201},
    {"conv": "room:hist", "limit": -1},
    {"conv": "room:hist", "limit": "10"},
    {"conv": "room:hist", "limit": 1.5},
    {"conv": "room:hist", "before": 10, "after": 5},
    {"conv": "room:hist", "before": "abc"},
    {"conv": "room:hist", "before": 0},
    {"conv": "room:hist", "after": 0, "before": 3},
    {"conv": "room:Hist"},
    {"conv": "dm:ben:ann"},
    {"conv": "dm:ann:ann"},
    {"conv": 42},
    {},
])
def test_bad_params(hist, params):
    _, ann, _ = hist
    reply = rpc(ann, "ann", "history", params)
    assert reply.get("error", {}).get("code") == "bad_request", reply


def test_offline_client_catches_up_in_five_requests(hist):
    cluster, ann, _ = hist
    keys = cluster.keys
    assert "result" in rpc(ann, "ann", "room.create", {"room": "catchup"})
    dev = connect(cluster.brokers[1].port, keys, "dev", "dev:sensor",
                  subs=["chat/user/dev/#", "chat/room/catchup"])
    ann.publish("chat/in/ann/room/catchup", "first", qos=1)
    assert wait_for(lambda: payloads(dev, "/room/catchup"))
    last = payloads(dev, "/room/catchup")[-1]["seq"]
    dev.close()
    post_many(ann, "ann", "catchup", 1000)
    assert wait_for(lambda: cluster.redis.call("GET", "chat:seq:room:catchup") == "1001",
                    timeout=30)
    dev = connect(cluster.brokers[1].port, keys, "dev", "dev:sensor", subs=["chat/user/dev/#"])
    got, requests = [], 0
    while True:
        requests += 1
        msgs = rpc(dev, "dev", "history", {"conv": "room:catchup", "after": last,
                                           "limit": 200})["result"]["messages"]
        got += msgs
        if len(msgs) < 200:
            break
        last = msgs[-1]["seq"]
    assert [m["seq"] for m in got] == list(range(2, 1002))
    assert requests <= 6 and len(got) == 1000
    # the fifth request is the last with messages; a sixth only confirms the end
    assert requests - (1 if not msgs else 0) <= 5
    dev.close()


def test_read_markers_and_unread_across_devices(hist):
    cluster, ann, ben = hist
    phone = connect(cluster.brokers[0].port, cluster.keys, "ben", "ben:phone",
                    subs=["chat/user/ben/#"])
    assert "result" in rpc(ben, "ben", "room.join", {"room": "hist"})
    unread = {c["conv"]: c for c in rpc(ben, "ben", "unread")["result"]["conversations"]}
    assert unread["room:hist"]["unread"] == 300 and unread["room:hist"]["last_seq"] == 300
    reply = rpc(ben, "ben", "read", {"conv": "room:hist", "seq": 290})
    assert reply["result"] == {"conv": "room:hist", "seq": 290}
    # the other device hears of it, and sees the same count
    assert wait_for(lambda: any(m.get("type") == "read" and m["seq"] == 290
                                for m in payloads(phone, "/inbox")))
    unread = {c["conv"]: c for c in rpc(phone, "ben", "unread")["result"]["conversations"]}
    assert unread["room:hist"]["unread"] == 10
    # a marker never moves back, nor past the last message
    assert rpc(ben, "ben", "read", {"conv": "room:hist", "seq": 5})["result"]["seq"] == 290
    assert rpc(ben, "ben", "read", {"conv": "room:hist", "seq": 9999})["result"]["seq"] == 300
    for params, code in [({"conv": "room:hist"}, "bad_request"),
                         ({"conv": "room:hist", "seq": 0}, "bad_request"),
                         ({"conv": "dm:ann:eve", "seq": 1}, "forbidden"),
                         ({"conv": "room:vault", "seq": 1}, "forbidden"),
                         ({"conv": "room:nowhere", "seq": 1}, "not_found")]:
        assert rpc(ben, "ben", "read", params).get("error", {}).get("code") == code, params
    # the marker is durable
    assert wait_for(lambda: _stored_read(cluster.store_url, "ben", "room:hist") == 300,
                    timeout=10)
    phone.close()


def _stored_read(store_url, user, conv):
    import sqlite3
    db = sqlite3.connect(store_url[len("sqlite:"):], timeout=10)
    try:
        row = db.execute("SELECT seq FROM reads WHERE user = ? AND conv = ?",
                         (user, conv)).fetchone()
    finally:
        db.close()
    return row[0] if row else None


def test_longest_room_name(hist):
    """A 64-byte room id makes the longest conversation id (69 bytes)."""
    cluster, ann, ben = hist
    room = "r" * 64
    assert "result" in rpc(ann, "ann", "room.create", {"room": room})
    ann.publish("chat/in/ann/room/" + room, "long", qos=1)
    assert wait_for(lambda: rpc(ann, "ann", "history", {"conv": "room:" + room})
                    ["result"]["messages"], timeout=5)
    assert "result" in rpc(ann, "ann", "read", {"conv": "room:" + room, "seq": 1})
    convs = [c["conv"] for c in rpc(ann, "ann", "unread")["result"]["conversations"]]
    assert "room:" + room in convs
