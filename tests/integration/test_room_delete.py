"""room.delete (PROTOCOL.md 1.1 section 6) on two nodes with stock MQTT
clients: owner or admin only; the room's subscribers get {"type":"deleted"}
on its events topic, members a room event in their inbox, chat/rooms the
deletion of a public room; the stored messages are gone from Redis and the
store (SQLite file and MongoDB through FerretDB), also many of them; posts
and history answer not_found and the name cannot be created again, after a
kill -9 of Redis, a bridge restart and even a flush of Redis (the store
keeps the name taken)."""
import time

from chatharness import stored_messages
from mqttutil import payloads, rpc, signed_in, wait_for


def person(cluster, node, user, *subs, role="user"):
    return signed_in(cluster.brokers[node].port, cluster.keys, user, *subs, role=role)


def stored(cluster, conv):
    return stored_messages(cluster.store_url, conv)


def inbox_events(client, event, room):
    return [m for m in payloads(client, "/inbox")
            if m.get("type") == "room" and m.get("event") == event and m.get("room") == room]


def test_owner_deletes_public_room_everywhere(make_cluster, backend):
    cluster = make_cluster(rate_per_s=10000, rate_burst=10000, **backend)
    alice = person(cluster, 0, "alice", "chat/room/agora")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "agora"})
    bob = person(cluster, 1, "bob", "chat/room/agora", "chat/room/agora/events", "chat/rooms")
    assert "result" in rpc(bob, "bob", "room.join", {"room": "agora"})
    # more messages than one page of the store's deletion (500)
    for k in range(1200):
        alice.c.publish("chat/in/alice/room/agora", "agora text %d" % k, qos=1)
    assert wait_for(lambda: len(stored(cluster, "room:agora")) == 1200, timeout=60, interval=0.5)

    assert rpc(bob, "bob", "room.delete", {"room": "agora"})["error"]["code"] == "forbidden"
    assert "result" in rpc(bob, "bob", "history", {"conv": "room:agora"})
    assert rpc(alice, "alice", "room.delete", {"room": "agora"})["result"] == {"room": "agora"}

    # the other node: events topic, room list, both members' inboxes
    assert wait_for(lambda: [m for m in payloads(bob, "/room/agora/events")
                             if m.get("type") == "deleted" and m.get("room") == "agora"])
    assert wait_for(lambda: [m for m in payloads(bob, "/rooms")
                             if m.get("event") == "deleted" and m.get("room") == "agora"])
    for c in (alice, bob):
        got = wait_for(lambda: inbox_events(c, "deleted", "agora"), timeout=10)
        assert got and got[0]["by"] == "alice"
    # gone: posts, history, joins, lists, and the name
    with bob.lock:
        bob.messages.clear()
    bob.publish("chat/in/bob/room/agora", "anyone?", qos=1)
    note = wait_for(lambda: payloads(bob, "/notice"))
    assert note and note[0]["code"] == "not_found"
    assert rpc(bob, "bob", "history", {"conv": "room:agora"})["error"]["code"] == "not_found"
    assert rpc(bob, "bob", "room.join", {"room": "agora"})["error"]["code"] == "not_found"
    assert "agora" not in [r["room"] for r in rpc(bob, "bob", "rooms.list")["result"]["rooms"]]
    for c, who in ((alice, "alice"), (bob, "bob")):
        assert rpc(c, who, "room.create", {"room": "agora"})["error"]["code"] == "conflict"
    assert cluster.redis.call("EXISTS", "chat:recent:room:agora") == "0"
    # the store lets go of every message, in pages
    assert wait_for(lambda: stored(cluster, "room:agora") == [], timeout=60, interval=0.5)
    assert "room:agora" not in [m["conv"] for m in
                                rpc(alice, "alice", "unread")["result"]["conversations"]]
    alice.close()
    bob.close()


def test_admin_deletes_private_room_and_brokers_drop_it(make_cluster):
    cluster = make_cluster()
    alice = person(cluster, 0, "alice")
    bob = person(cluster, 1, "bob")
    root = person(cluster, 1, "root", role="admin")
    carol = person(cluster, 0, "carol")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "bunker", "private": True})
    assert "result" in rpc(alice, "alice", "room.invite", {"room": "bunker", "user": "bob"})
    assert wait_for(lambda: bob.subscribe("chat/room/bunker/events", qos=1) < 0x80, timeout=3)
    alice.publish("chat/in/alice/room/bunker", "bunker secret", qos=1)
    assert wait_for(lambda: stored(cluster, "room:bunker"), timeout=30, interval=0.3)
    # a member is not the owner; carol is not even a member
    assert rpc(bob, "bob", "room.delete", {"room": "bunker"})["error"]["code"] == "forbidden"
    assert rpc(carol, "carol", "room.delete", {"room": "bunker"})["error"]["code"] == "forbidden"
    assert rpc(carol, "carol", "room.delete", {"room": "nowhere"})["error"]["code"] == "not_found"
    assert rpc(carol, "carol", "room.delete", {"room": "Bad!"})["error"]["code"] == "bad_request"
    assert carol.subscribe("chat/room/bunker") >= 0x80
    assert "result" in rpc(root, "root", "room.delete", {"room": "bunker"})
    assert wait_for(lambda: [m for m in payloads(bob, "/room/bunker/events")
                             if m.get("type") == "deleted"])
    for c in (alice, bob):
        got = wait_for(lambda: inbox_events(c, "deleted", "bunker"), timeout=10)
        assert got and got[0]["by"] == "root"
    # the member list is gone on both brokers: no private state is left
    assert cluster.redis.call("SISMEMBER", "chat:rooms:private", "bunker") == "0"
    for c in (carol, person(cluster, 1, "dave")):
        assert wait_for(lambda: c.subscribe("chat/room/bunker") < 0x80, timeout=3)
    assert wait_for(lambda: stored(cluster, "room:bunker") == [], timeout=30, interval=0.3)
    assert rpc(alice, "alice", "room.create",
               {"room": "bunker", "private": True})["error"]["code"] == "conflict"
    for c in (alice, bob, root, carol):
        c.close()


def test_deleted_name_stays_taken_across_restarts_and_a_flush(make_cluster, backend):
    cluster = make_cluster(**backend)
    alice = person(cluster, 0, "alice")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "phoenix"})
    alice.publish("chat/in/alice/room/phoenix", "ashes", qos=1)
    assert wait_for(lambda: stored(cluster, "room:phoenix"), timeout=30, interval=0.3)
    assert "result" in rpc(alice, "alice", "room.delete", {"room": "phoenix"})
    assert wait_for(lambda: stored(cluster, "room:phoenix") == [], timeout=30, interval=0.3)

    def answered(client, user, method, params):
        def once():
            try:
                return rpc(client, user, method, params, timeout=2)
            except AssertionError:
                return None
        return wait_for(once, timeout=30, interval=0.5)

    cluster.redis.kill()
    cluster.redis.start()
    cluster.bridges[1].restart()
    alice.close()
    bob = person(cluster, 1, "bob")
    reply = answered(bob, "bob", "room.create", {"room": "phoenix"})
    assert reply and reply["error"]["code"] == "conflict"
    # a flush: Redis is rebuilt from the store, which keeps the name taken
    cluster.redis.call("FLUSHALL")
    assert wait_for(lambda: cluster.redis.call("EXISTS", "chat:restored") == "1", timeout=30)
    reply = answered(bob, "bob", "room.create", {"room": "phoenix"})
    assert reply and reply["error"]["code"] == "conflict", reply
    reply = answered(bob, "bob", "history", {"conv": "room:phoenix"})
    assert reply["error"]["code"] == "not_found"
    bob.close()
