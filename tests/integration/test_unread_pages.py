"""`unread` is paged like rooms.list (issue 22, finding 7; PROTOCOL.md 1.1
section 6: no request costs more than a page of work): one request is one
script call over at most `limit` conversations and one bounded answer
{"conversations": [...], "next": <cursor or null>}, for a user in 30,000
DM conversations as for one in three, and following `next` reaches every
conversation exactly once. The 30,000 conversations are set up directly in
Redis, as the post script leaves them (chat:seq:<conv>, the user's dms set
and dmindex), since posting them would take minutes of rate-limited
publishes."""
import json
import time

from mqttutil import rpc, signed_in, wait_for
from prodconf import packet_conf

FAST = {"rpc_rate_per_s": 100000, "rpc_rate_burst": 100000,
        "rate_per_s": 100000, "rate_burst": 100000}
MANY = 30000


def raw_reply(client, req_id):
    """The reply's bytes as they came (to measure them)."""
    with client.lock:
        for t, p in client.messages:
            if t.endswith("/rpc") and json.loads(p).get("id") == req_id:
                return p
    return None


def ask(client, user, params, req_id):
    reply = rpc(client, user, "unread", params, req_id=req_id, timeout=15)
    return reply, raw_reply(client, req_id)


def commandstat(redis, name):
    """How many times Redis ran command `name`, scripts' calls included."""
    for line in redis.call("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_%s:" % name):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def make_many(redis, user, n):
    """n DM conversations of user with n other users, 3 messages each, 1 read."""
    lua = ("for i = 1, tonumber(ARGV[2]) do\n"
           "  local conv = string.format('dm:%s:zz-peer-user-%05d', ARGV[1], i)\n"
           "  redis.call('SET', 'chat:seq:' .. conv, 3)\n"
           "  redis.call('SADD', 'chat:user:' .. ARGV[1] .. ':dms', conv)\n"
           "  redis.call('ZADD', 'chat:user:' .. ARGV[1] .. ':dmindex', 0, conv)\n"
           "  redis.call('HSET', 'chat:read:' .. ARGV[1], conv, 1)\n"
           "end\n"
           "return tonumber(ARGV[2])\n")
    assert redis.call("EVAL", lua, 0, user, n) == str(n)
    return ["dm:%s:zz-peer-user-%05d" % (user, i) for i in range(1, n + 1)]


def test_unread_is_one_bounded_page_per_request(make_cluster):
    cluster = make_cluster(broker_conf=packet_conf(), **FAST)
    keys, redis = cluster.keys, cluster.redis
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    heavy = signed_in(n1, keys, "heavy")
    peers = [signed_in(n2, keys, u) for u in ("ada", "bea", "cy")]
    assert wait_for(lambda: redis.call("SISMEMBER", "chat:users", "heavy") == "1")
    rooms = ["r%d" % i for i in range(5)]
    for r in rooms:
        assert "result" in rpc(heavy, "heavy", "room.create", {"room": r})
        heavy.publish("chat/in/heavy/room/%s" % r, "hello %s" % r, qos=1)
    for p, u in zip(peers, ("ada", "bea", "cy")):
        p.publish("chat/in/%s/dm/heavy" % u, "one", qos=1)
        p.publish("chat/in/%s/dm/heavy" % u, "two", qos=1)
    real = ["room:" + r for r in rooms] + ["dm:ada:heavy", "dm:bea:heavy", "dm:cy:heavy"]
    assert wait_for(lambda: all(redis.call("GET", "chat:seq:" + c) for c in real) and
                    redis.call("GET", "chat:seq:dm:cy:heavy") == "2", timeout=15)

    many = make_many(redis, "heavy", MANY)
    everything = set(real) | set(many)

    # one request, default limit (what a 1.1 client that ignores next
    # sends): one page of 200, answered, small, and one script step
    zc, ev = commandstat(redis, "zcount"), commandstat(redis, "evalsha")
    first, raw = ask(heavy, "heavy", None, "heavy-default")
    assert "result" in first, first
    page = first["result"]["conversations"]
    assert len(page) == 200 and isinstance(first["result"].get("next"), str), (len(page), len(raw))
    assert len(raw) < 64 * 1024, len(raw)
    # the rooms come first, by name, then the DMs
    assert [c["conv"] for c in page[:5]] == ["room:" + r for r in rooms]
    assert commandstat(redis, "zcount") - zc <= 200, "Redis work grew with the conversations"
    assert commandstat(redis, "evalsha") - ev <= 10

    # a small user sees everything in one page, with the default limit
    small, raw = ask(peers[0], "ada", {}, "small-1")
    assert small["result"]["next"] is None, small
    got = {c["conv"]: c for c in small["result"]["conversations"]}
    assert set(got) == {"dm:ada:heavy"}
    assert got["dm:ada:heavy"]["last_seq"] == 2 and got["dm:ada:heavy"]["read_seq"] == 0

    # following next reaches every conversation exactly once, each page
    # bounded, in the fewest pages
    seen, cursor, pages, limit = [], None, 0, 200
    while True:
        params = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        zc = commandstat(redis, "zcount")
        reply, raw = ask(heavy, "heavy", params, "walk-%d" % pages)
        assert "result" in reply, reply
        res = reply["result"]
        assert len(res["conversations"]) <= limit and len(raw) < 64 * 1024
        assert commandstat(redis, "zcount") - zc <= limit
        seen += [c["conv"] for c in res["conversations"]]
        pages += 1
        cursor = res["next"]
        if cursor is None:
            break
        assert cursor == res["conversations"][-1]["conv"]
    assert len(seen) == len(set(seen)), "a conversation came twice"
    assert set(seen) == everything
    assert pages == -(-len(everything) // limit)

    # the counts are right on any page
    tail = rpc(heavy, "heavy", "unread", {"cursor": many[-3], "limit": 5})["result"]
    assert tail["next"] is None
    assert tail["conversations"] == [
        {"conv": c, "unread": 2, "last_seq": 3, "read_seq": 1} for c in many[-2:]]
    mid = rpc(heavy, "heavy", "unread", {"cursor": "room:r4", "limit": 3})["result"]
    assert [c["conv"] for c in mid["conversations"]] == ["dm:ada:heavy", "dm:bea:heavy",
                                                         "dm:cy:heavy"]
    assert [c["unread"] for c in mid["conversations"]] == [2, 2, 2]
    assert mid["next"] == "dm:cy:heavy"

    for bad in ({"limit": 0}, {"limit": 201}, {"limit": "10"}, {"limit": 1.5},
                {"cursor": "x"}, {"cursor": 5}, {"cursor": "room:Bad!"},
                {"cursor": "dm:zed:ann"}, {"cursor": ""}):
        reply = rpc(heavy, "heavy", "unread", bad)
        assert reply.get("error", {}).get("code") == "bad_request", (bad, reply)
    for c in [heavy] + peers:
        c.close()


def test_unread_index_is_rebuilt_for_an_older_redis(make_cluster):
    """A Redis filled by a version without the DM index gets it from the
    users' DM sets, and one restored from the store has it at once."""
    cluster = make_cluster(**FAST)
    keys, redis = cluster.keys, cluster.redis
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    eve, fay = signed_in(n1, keys, "eve"), signed_in(n2, keys, "fay")
    assert wait_for(lambda: redis.call("SISMEMBER", "chat:users", "fay") == "1")
    eve.publish("chat/in/eve/dm/fay", "hi fay", qos=1)
    assert wait_for(lambda: redis.call("GET", "chat:seq:dm:eve:fay") == "1", timeout=10)

    def convs(client, user):
        return [c["conv"] for c in rpc(client, user, "unread")["result"]["conversations"]]
    assert convs(fay, "fay") == ["dm:eve:fay"]
    # (the persistence worker may rebuild it at once: no look in between)
    redis.call("DEL", "chat:user:fay:dmindex", "chat:user:eve:dmindex", "chat:dmindex:v1")
    assert wait_for(lambda: redis.call("EXISTS", "chat:dmindex:v1") == "1", timeout=20)
    assert convs(fay, "fay") == ["dm:eve:fay"] and convs(eve, "eve") == ["dm:eve:fay"]

    assert wait_for(lambda: redis.call("GET", "chat:persisted:dm:eve:fay") == "1", timeout=20)
    redis.call("FLUSHALL")
    assert wait_for(lambda: redis.call("EXISTS", "chat:restored") == "1", timeout=30)
    assert convs(fay, "fay") == ["dm:eve:fay"]
    assert redis.call("EXISTS", "chat:dmindex:v1") == "1"
    for c in (eve, fay):
        c.close()
