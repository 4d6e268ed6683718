"""Every per-user input has a limit counted in what it costs (issue 22):
a user may be in at most user_rooms_max rooms (room.create, room.join and
posting to a public room, which joins it, are refused past it, and so is
an invitation that would take the invitee past it) and may
start a DM conversation only while in fewer than user_dms_max of them.
Refusals are `forbidden`, with the request's id or the post's cid, and
change nothing; leaving a room makes room again, and writing in a
conversation one has is never refused."""
import json

from mqttutil import payloads, rpc, signed_in, wait_for

FAST = {"rpc_rate_per_s": 100000, "rpc_rate_burst": 100000,
        "create_rate_per_s": 100000, "create_rate_burst": 100000,
        "rate_per_s": 100000, "rate_burst": 100000}


def notice_for(client, cid):
    got = wait_for(lambda: [n for n in payloads(client, "/notice") if n.get("cid") == cid],
                   timeout=10)
    assert got, "no notice for %s: %s" % (cid, payloads(client, "/notice"))
    return got[0]


def post(client, user, kind, target, body, cid):
    client.publish("chat/in/%s/%s/%s" % (user, kind, target),
                   json.dumps({"body": body, "cid": cid}), qos=1)


def test_rooms_a_user_is_in_are_capped(make_cluster):
    cluster = make_cluster(user_rooms_max=3, **FAST)
    keys, redis = cluster.keys, cluster.redis
    carl = signed_in(cluster.brokers[0].port, keys, "carl")
    owner = signed_in(cluster.brokers[1].port, keys, "owner")
    for r in ("open1", "open2", "open3"):
        assert "result" in rpc(owner, "owner", "room.create", {"room": r})
    assert "result" in rpc(carl, "carl", "room.create", {"room": "mine1"})
    assert "result" in rpc(carl, "carl", "room.create", {"room": "mine2", "private": True})
    assert "result" in rpc(carl, "carl", "room.join", {"room": "open1"})

    # a fourth room, whichever way
    reply = rpc(carl, "carl", "room.create", {"room": "mine3"}, req_id="cap-create")
    assert reply["id"] == "cap-create" and reply["error"]["code"] == "forbidden", reply
    assert "3 rooms" in reply["error"]["message"]
    assert redis.call("EXISTS", "chat:room:mine3") == "0"
    reply = rpc(carl, "carl", "room.join", {"room": "open2"})
    assert reply.get("error", {}).get("code") == "forbidden", reply
    post(carl, "carl", "room", "open3", "joining by posting", "p1")
    assert notice_for(carl, "p1")["code"] == "forbidden"
    assert redis.call("EXISTS", "chat:seq:room:open3") == "0"
    for r in ("open2", "open3"):
        assert redis.call("SISMEMBER", "chat:room:%s:members" % r, "carl") == "0"
    assert redis.call("SCARD", "chat:user:carl:rooms") == "3"

    # rooms one is in stay open: joining again, posting
    assert "result" in rpc(carl, "carl", "room.join", {"room": "open1"})
    post(carl, "carl", "room", "open1", "still here", "p2")
    assert wait_for(lambda: redis.call("GET", "chat:seq:room:open1") == "1")
    # leaving one makes room for another
    assert "result" in rpc(carl, "carl", "room.leave", {"room": "open1"})
    post(carl, "carl", "room", "open3", "now I may", "p3")
    assert wait_for(lambda: redis.call("GET", "chat:seq:room:open3") == "1")
    assert not [n for n in payloads(carl, "/notice") if n.get("cid") in ("p2", "p3")]
    reply = rpc(carl, "carl", "room.join", {"room": "open2"})
    assert reply.get("error", {}).get("code") == "forbidden", reply

    # nor can an owner invite someone past their cap: the invitee would be
    # in one room more than they may be
    boss = signed_in(cluster.brokers[1].port, keys, "boss")
    assert "result" in rpc(boss, "boss", "room.create", {"room": "club", "private": True})
    reply = rpc(boss, "boss", "room.invite", {"room": "club", "user": "carl"},
                req_id="cap-invite")
    assert reply["id"] == "cap-invite" and reply["error"]["code"] == "forbidden", reply
    assert redis.call("SISMEMBER", "chat:room:club:members", "carl") == "0"
    assert redis.call("SCARD", "chat:user:carl:rooms") == "3"
    for c in (carl, owner, boss):
        c.close()


def test_dm_conversations_a_user_starts_are_capped(make_cluster):
    cluster = make_cluster(user_dms_max=2, **FAST)
    keys, redis = cluster.keys, cluster.redis
    dan = signed_in(cluster.brokers[0].port, keys, "dan")
    peers = {u: signed_in(cluster.brokers[1].port, keys, u) for u in ("pa", "pb", "pc")}
    # they exist once their connection is recorded (a DM goes only to them)
    assert wait_for(lambda: all(redis.call("SISMEMBER", "chat:users", u) == "1"
                                for u in list(peers) + ["dan"]), timeout=10)
    post(dan, "dan", "dm", "pa", "hi a", "a1")
    post(dan, "dan", "dm", "pb", "hi b", "b1")
    assert wait_for(lambda: redis.call("GET", "chat:seq:dm:dan:pb") == "1")
    post(dan, "dan", "dm", "pc", "hi c", "c1")
    n = notice_for(dan, "c1")
    assert n["code"] == "forbidden" and n["topic"] == "chat/in/dan/dm/pc", n
    assert redis.call("EXISTS", "chat:seq:dm:dan:pc") == "0"
    assert redis.call("SCARD", "chat:user:dan:dms") == "2"
    assert not payloads(peers["pc"], "/inbox")
    # writing in a conversation one has is never refused
    post(dan, "dan", "dm", "pa", "again", "a2")
    assert wait_for(lambda: redis.call("GET", "chat:seq:dm:dan:pa") == "2")
    # the cap is on starting: pc may write to dan (pc is in none), and dan
    # may then answer in that conversation
    post(peers["pc"], "pc", "dm", "dan", "hello dan", "x1")
    assert wait_for(lambda: redis.call("GET", "chat:seq:dm:dan:pc") == "1")
    post(dan, "dan", "dm", "pc", "hi c, at last", "c2")
    assert wait_for(lambda: redis.call("GET", "chat:seq:dm:dan:pc") == "2")
    assert not [n for n in payloads(dan, "/notice") if n.get("cid") in ("a1", "b1", "a2", "c2")]
    for c in [dan] + list(peers.values()):
        c.close()
