"""Edits and deletions of messages (PROTOCOL.md 1.1 section 5, msg.edit and
msg.delete) on two nodes with stock MQTT clients: the events carry their
own seq and reach the other node live; history gives the message with its
latest body and "edited", or "deleted" and no body, and the deleted text is
gone from the store itself (SQLite file and MongoDB through FerretDB), also
for messages older than Redis's recent list; who may edit or delete what;
and the state survives a kill -9 of Redis (AOF) and a bridge restart."""
import json
import time

from chatharness import stored_messages
from mqttutil import payloads, rpc, signed_in, wait_for


def person(cluster, node, user, *subs, role="user"):
    return signed_in(cluster.brokers[node].port, cluster.keys, user, *subs, role=role)


def post(client, user, room, text):
    """Posts and returns the message as the room delivers it."""
    client.publish("chat/in/%s/room/%s" % (user, room), text, qos=1)
    got = wait_for(lambda: [m for m in payloads(client, "/room/" + room)
                            if m.get("type") == "msg" and m.get("body") == text], timeout=10)
    assert got, "post %r not delivered" % text
    return got[0]


def history(client, user, conv, **params):
    reply = rpc(client, user, "history", dict(conv=conv, **params), timeout=10)
    assert "result" in reply, reply
    return {m["seq"]: m for m in reply["result"]["messages"]}


def store_text(cluster, conv):
    return json.dumps([m for _, m in stored_messages(cluster.store_url, conv)], default=str)


def test_edit_and_delete_seen_live_in_history_and_gone_from_store(make_cluster, backend):
    cluster = make_cluster(**backend)
    alice = person(cluster, 0, "alice", "chat/room/lounge")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "lounge"})
    bob = person(cluster, 1, "bob", "chat/room/lounge")
    assert "result" in rpc(bob, "bob", "room.join", {"room": "lounge"})
    m1 = post(alice, "alice", "lounge", "first draft zebra")
    m2 = post(alice, "alice", "lounge", "regret this quokka")

    edit = rpc(alice, "alice", "msg.edit", {"conv": "room:lounge", "seq": m1["seq"],
                                            "body": "final words"})["result"]
    assert edit["type"] == "edit" and edit["ref"] == m1["seq"] and edit["from"] == "alice"
    assert edit["seq"] == m2["seq"] + 1 and edit["body"] == "final words"
    # the edit of a message that is then deleted: its text must go too
    m3 = post(alice, "alice", "lounge", "typo walrus")
    e3 = rpc(alice, "alice", "msg.edit", {"conv": "room:lounge", "seq": m3["seq"],
                                          "body": "second typo narwhal"})["result"]
    gone = rpc(alice, "alice", "msg.delete", {"conv": "room:lounge", "seq": m2["seq"]})["result"]
    g3 = rpc(alice, "alice", "msg.delete", {"conv": "room:lounge", "seq": m3["seq"]})["result"]
    assert gone["type"] == "delete" and "body" not in gone and gone["ref"] == m2["seq"]
    assert g3["seq"] == gone["seq"] + 1 == e3["seq"] + 2

    # live on the other node, in seq order, each with its own seq
    def events():
        return [m for m in payloads(bob, "/room/lounge") if m["type"] in ("edit", "delete")]
    assert wait_for(lambda: len(events()) == 4, timeout=10), events()
    assert [(m["type"], m["seq"], m["ref"]) for m in events()] == [
        ("edit", edit["seq"], m1["seq"]), ("edit", e3["seq"], m3["seq"]),
        ("delete", gone["seq"], m2["seq"]), ("delete", g3["seq"], m3["seq"])]

    def check_history():
        h = history(bob, "bob", "room:lounge", after=0)
        assert sorted(h) == list(range(1, g3["seq"] + 1))
        assert h[m1["seq"]]["body"] == "final words" and h[m1["seq"]]["edited"] == edit["ts"]
        for ref in (m2["seq"], m3["seq"]):
            assert h[ref]["deleted"] is True and "body" not in h[ref]
        assert h[edit["seq"]]["type"] == "edit" and h[edit["seq"]]["body"] == "final words"
        assert h[e3["seq"]]["type"] == "edit" and "body" not in h[e3["seq"]]
        assert h[gone["seq"]]["type"] == "delete"
        assert "quokka" not in json.dumps(h) and "walrus" not in json.dumps(h)
        assert "narwhal" not in json.dumps(h)

    check_history()  # from Redis
    # and from the store itself: the text is gone, not hidden
    assert wait_for(lambda: len(stored_messages(cluster.store_url, "room:lounge")) == g3["seq"]
                    and "narwhal" not in store_text(cluster, "room:lounge"),
                    timeout=30, interval=0.3)
    text = store_text(cluster, "room:lounge")
    for word in ("quokka", "walrus", "narwhal", "zebra"):
        assert word not in text, "%r still in the store" % word
    assert "final words" in text
    alice.close()
    bob.close()


def test_edit_and_delete_of_a_message_only_the_store_holds(make_cluster, backend):
    """recent_max 1: after some traffic the first message is no longer in
    Redis's recent list, so its sender and state come from the store."""
    cluster = make_cluster(recent_max=1, rate_per_s=1000, rate_burst=1000, **backend)
    alice = person(cluster, 0, "alice", "chat/room/attic")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "attic"})
    bob = person(cluster, 1, "bob", "chat/room/attic")
    old = post(alice, "alice", "attic", "ancient secret platypus")
    older = post(alice, "alice", "attic", "ancient edit me")
    for k in range(90):
        alice.c.publish("chat/in/alice/room/attic", "filler %d" % k, qos=1)
    assert wait_for(lambda: len(stored_messages(cluster.store_url, "room:attic")) >= 92,
                    timeout=30, interval=0.3)
    post(alice, "alice", "attic", "one more")  # the list is trimmed as posts arrive
    assert wait_for(lambda: int(cluster.redis.call("LLEN", "chat:recent:room:attic")) < 80,
                    timeout=10)
    # bob may not, alice may; the answers come from the store's copy
    assert rpc(bob, "bob", "msg.edit", {"conv": "room:attic", "seq": older["seq"],
                                        "body": "x"})["error"]["code"] == "forbidden"
    e = rpc(alice, "alice", "msg.edit", {"conv": "room:attic", "seq": older["seq"],
                                         "body": "renewed"})["result"]
    d = rpc(alice, "alice", "msg.delete", {"conv": "room:attic", "seq": old["seq"]})["result"]
    assert d["seq"] == e["seq"] + 1
    again = rpc(alice, "alice", "msg.delete", {"conv": "room:attic", "seq": old["seq"]})
    assert again["error"]["code"] == "not_found"

    def stored(seq):
        return dict(stored_messages(cluster.store_url, "room:attic")).get(seq, {})
    assert wait_for(lambda: stored(old["seq"]).get("deleted") is True
                    and stored(older["seq"]).get("body") == "renewed", timeout=30, interval=0.3)
    assert "platypus" not in store_text(cluster, "room:attic")
    h = history(bob, "bob", "room:attic", after=0, limit=5)
    assert h[old["seq"]]["deleted"] is True and "body" not in h[old["seq"]]
    assert h[older["seq"]]["body"] == "renewed" and h[older["seq"]]["edited"] == e["ts"]
    # once the store has it, a second delete is still refused
    again = rpc(alice, "alice", "msg.delete", {"conv": "room:attic", "seq": old["seq"]})
    assert again["error"]["code"] == "not_found"
    alice.close()
    bob.close()


def test_who_may_edit_and_delete(make_cluster):
    cluster = make_cluster()
    alice = person(cluster, 0, "alice", "chat/room/den")
    bob = person(cluster, 1, "bob", "chat/room/den")
    root = person(cluster, 1, "root", role="admin")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "den"})
    assert "result" in rpc(bob, "bob", "room.join", {"room": "den"})
    a1 = post(alice, "alice", "den", "alice one")
    b1 = post(bob, "bob", "den", "bob one")
    b2 = post(bob, "bob", "den", "bob two")

    def call(who, client, method, **params):
        return rpc(client, who, method, params)

    # someone else's message: no edit, and no delete for a plain member
    assert call("bob", bob, "msg.edit", conv="room:den", seq=a1["seq"],
                body="hijack")["error"]["code"] == "forbidden"
    assert call("bob", bob, "msg.delete", conv="room:den",
                seq=a1["seq"])["error"]["code"] == "forbidden"
    # the owner edits no one else's message, but deletes it; so does an admin
    assert call("alice", alice, "msg.edit", conv="room:den", seq=b1["seq"],
                body="owner edit")["error"]["code"] == "forbidden"
    assert "result" in call("alice", alice, "msg.delete", conv="room:den", seq=b1["seq"])
    assert call("root", root, "msg.edit", conv="room:den", seq=b2["seq"],
                body="admin edit")["error"]["code"] == "forbidden"
    assert "result" in call("root", root, "msg.delete", conv="room:den", seq=b2["seq"])
    # a deleted message cannot be edited; an event is not a message
    assert call("bob", bob, "msg.edit", conv="room:den", seq=b1["seq"],
                body="back")["error"]["code"] == "not_found"
    assert call("alice", alice, "msg.edit", conv="room:den", seq=b2["seq"] + 1,
                body="x")["error"]["code"] == "bad_request"
    # bad input changes nothing
    before = cluster.redis.call("GET", "chat:seq:room:den")
    for params in ({"conv": "room:den", "seq": a1["seq"]},
                   {"conv": "room:den", "seq": a1["seq"], "body": ""},
                   {"conv": "room:den", "seq": a1["seq"], "body": 7},
                   {"conv": "room:den", "seq": 0, "body": "x"},
                   {"conv": "room:den", "seq": "1", "body": "x"},
                   {"conv": "room:Den", "seq": 1, "body": "x"},
                   {"conv": "room:den", "seq": a1["seq"], "body": "x" * 5000}):
        assert rpc(alice, "alice", "msg.edit", params)["error"]["code"] == "bad_request", params
    assert call("alice", alice, "msg.edit", conv="room:den", seq=999,
                body="x")["error"]["code"] == "not_found"
    assert call("alice", alice, "msg.delete", conv="room:nowhere",
                seq=1)["error"]["code"] == "not_found"
    assert cluster.redis.call("GET", "chat:seq:room:den") == before

    # a DM message: only its sender, whatever the recipient's role
    alice.publish("chat/in/alice/dm/root", "dm to root", qos=1)
    dm = wait_for(lambda: [m for m in payloads(root, "/inbox") if m.get("type") == "msg"],
                  timeout=10)
    assert dm
    ref = dm[0]["seq"]
    assert call("root", root, "msg.delete", conv="dm:alice:root",
                seq=ref)["error"]["code"] == "forbidden"
    assert call("root", root, "msg.edit", conv="dm:alice:root", seq=ref,
                body="x")["error"]["code"] == "forbidden"
    assert call("bob", bob, "msg.delete", conv="dm:alice:root",
                seq=ref)["error"]["code"] == "forbidden"
    d = call("alice", alice, "msg.delete", conv="dm:alice:root", seq=ref)["result"]
    # both inboxes get the event
    for c in (alice, root):
        assert wait_for(lambda: [m for m in payloads(c, "/inbox")
                                 if m.get("type") == "delete" and m["seq"] == d["seq"]],
                        timeout=10)
    # a private room: a non-member learns nothing
    assert "result" in rpc(alice, "alice", "room.create", {"room": "vault", "private": True})
    alice.publish("chat/in/alice/room/vault", "vault text", qos=1)
    assert wait_for(lambda: cluster.redis.call("GET", "chat:seq:room:vault") == "1")
    assert call("bob", bob, "msg.delete", conv="room:vault",
                seq=1)["error"]["code"] == "forbidden"
    # an admin deletes there too, member or not; still no edit
    assert call("root", root, "msg.edit", conv="room:vault", seq=1,
                body="x")["error"]["code"] == "forbidden"
    assert "result" in call("root", root, "msg.delete", conv="room:vault", seq=1)
    for c in (alice, bob, root):
        c.close()


def test_edits_use_the_request_limit(make_cluster):
    cluster = make_cluster(rpc_rate_per_s=1, rpc_rate_burst=5)
    alice = person(cluster, 0, "alice", "chat/room/quiet")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "quiet"})
    m = post(alice, "alice", "quiet", "hello")
    codes = [rpc(alice, "alice", "msg.edit", {"conv": "room:quiet", "seq": m["seq"],
                                              "body": "v%d" % k}).get("error", {}).get("code")
             for k in range(8)]
    assert "rate_limited" in codes
    alice.close()


def test_unread_counts_messages_not_edits_or_deletions(make_cluster):
    """Edits and deletions take seqs, but the unread count is of messages."""
    cluster = make_cluster()
    alice = person(cluster, 0, "alice", "chat/room/tally")
    bob = person(cluster, 1, "bob")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "tally"})
    assert "result" in rpc(bob, "bob", "room.join", {"room": "tally"})
    first = post(alice, "alice", "tally", "one")
    post(alice, "alice", "tally", "two")
    for method, params in (("msg.edit", {"body": "uno"}), ("msg.delete", {})):
        params.update(conv="room:tally", seq=first["seq"])
        assert "result" in rpc(alice, "alice", method, params), method

    def unread():
        r = rpc(bob, "bob", "unread", {})["result"]["conversations"]
        return {c["conv"]: c["unread"] for c in r}.get("room:tally")
    assert wait_for(lambda: unread() == 2, timeout=5), unread()
    post(alice, "alice", "tally", "three")
    assert wait_for(lambda: unread() == 3, timeout=5), unread()
    alice.close()
    bob.close()


def test_state_survives_redis_kill_and_bridge_restart(make_cluster):
    cluster = make_cluster()
    alice = person(cluster, 0, "alice", "chat/room/vault2")
    bob = person(cluster, 1, "bob", "chat/room/vault2")
    assert "result" in rpc(alice, "alice", "room.create", {"room": "vault2"})
    m1 = post(alice, "alice", "vault2", "keep but edit")
    m2 = post(alice, "alice", "vault2", "delete capybara")
    e = rpc(alice, "alice", "msg.edit", {"conv": "room:vault2", "seq": m1["seq"],
                                         "body": "edited once"})["result"]
    d = rpc(alice, "alice", "msg.delete", {"conv": "room:vault2", "seq": m2["seq"]})["result"]

    cluster.redis.kill()
    cluster.redis.start()
    cluster.bridges[1].restart()
    b0 = cluster.bridges[0]
    # the bridge stays with its broker while Redis is away (issue 22): its
    # command link connects again
    assert wait_for(lambda: b0.log().count("redis cmd: connected") >= 2, timeout=30)
    alice.close()
    bob.close()
    alice = person(cluster, 0, "alice", "chat/room/vault2")
    bob = person(cluster, 1, "bob", "chat/room/vault2")

    def settled():
        try:
            h = history(bob, "bob", "room:vault2", after=0)
        except AssertionError:
            return None
        return h if len(h) == d["seq"] else None
    h = wait_for(settled, timeout=30, interval=0.5)
    assert h, "history incomplete after the restarts"
    assert h[m1["seq"]]["body"] == "edited once" and h[m1["seq"]]["edited"] == e["ts"]
    assert h[m2["seq"]]["deleted"] is True and "body" not in h[m2["seq"]]
    # still refused after the restart, and the next event gets the next seq
    assert rpc(alice, "alice", "msg.edit", {"conv": "room:vault2", "seq": m2["seq"],
                                            "body": "x"})["error"]["code"] == "not_found"
    assert rpc(bob, "bob", "msg.edit", {"conv": "room:vault2", "seq": m1["seq"],
                                        "body": "x"})["error"]["code"] == "forbidden"
    e2 = rpc(alice, "alice", "msg.edit", {"conv": "room:vault2", "seq": m1["seq"],
                                          "body": "edited twice"})["result"]
    assert e2["seq"] == d["seq"] + 1
    got = wait_for(lambda: [m for m in payloads(bob, "/room/vault2") if m["seq"] == e2["seq"]],
                   timeout=10)
    assert got and got[0]["type"] == "edit"
    assert wait_for(lambda: "capybara" not in store_text(cluster, "room:vault2")
                    and "edited twice" in store_text(cluster, "room:vault2"),
                    timeout=30, interval=0.3)
    alice.close()
    bob.close()


def test_firmware_device_takes_edits_and_deletions(make_cluster):
    """The example firmware (1.1): edit and delete events, live and in
    history, and a deleted message (no body) in history take their seq and
    show nothing; the device neither reports bad input nor skipped seqs."""
    from fwdevice import Device
    cluster = make_cluster()
    bob = person(cluster, 1, "bob", "chat/room/bench")
    assert "result" in rpc(bob, "bob", "room.create", {"room": "bench"})
    dev = Device(cluster.brokers[0].port, "sensor9", cluster.keys.mint("sensor9"), room="bench",
                 backoff_min=200, backoff_max=1000, keepalive=5, history_limit=4)
    try:
        dev.wait_line("connected")
        for k in (1, 2, 3):
            post(bob, "bob", "bench", "m%d" % k)
        dev.wait_line("msg conv=room:bench seq=3 ")
        assert "result" in rpc(bob, "bob", "msg.edit", {"conv": "room:bench", "seq": 1,
                                                        "body": "m1 again"})
        assert "result" in rpc(bob, "bob", "msg.delete", {"conv": "room:bench", "seq": 2})
        post(bob, "bob", "bench", "m6")  # seq 6, right after the two live events
        dev.wait_line("msg conv=room:bench seq=6 ")
        cluster.brokers[0].kill()
        dev.wait_line("disconnected")
        m7 = post(bob, "bob", "bench", "m7")
        assert "result" in rpc(bob, "bob", "msg.delete", {"conv": "room:bench",
                                                          "seq": m7["seq"]})
        post(bob, "bob", "bench", "m9")
        cluster.brokers[0].start()
        dev.wait_line("msg conv=room:bench seq=9 ", timeout=30)
        # seq 7 comes as the message (the feed delivers what was accepted
        # before the deletion) or, deleted, through history; 8 is its event
        shown = [s for _, s, _, _ in dev.messages("room:bench")]
        assert shown in ([1, 2, 3, 6, 9], [1, 2, 3, 6, 7, 9]), shown
        assert dev.count("bad-input") == 0 and dev.count("skipped") == 0, dev.snapshot()
    finally:
        dev.stop()
        bob.close()
