"""A direct message goes only to a user who exists (issue 22, finding 13;
PROTOCOL.md section 5: unknown targets get a notice and no message). A DM
to a name nobody has is refused `not_found`, its cid echoed, and leaves
nothing behind (no conversation in Redis, nothing stored), so whoever takes
the name later reads nothing. A user exists once it connected, was added
(`chatctl user add`) or minted a device token (`chatctl token`) by an
operator, or is known to the store; Redis's set of them (chat:users) is
rebuilt from the store after Redis lost its data, and completed once for a
Redis filled by an older version."""
import json
import os
import sqlite3
import subprocess
import time

from chatharness import stored_messages
from mqttutil import payloads, rpc, signed_in, wait_for

FAST = {"rate_per_s": 100000, "rate_burst": 100000}


def notice_for(client, cid, timeout=10):
    got = wait_for(lambda: [n for n in payloads(client, "/notice") if n.get("cid") == cid],
                   timeout=timeout)
    assert got, "no notice for %s: %s" % (cid, payloads(client, "/notice"))
    return got[0]


def dm(client, sender, target, body, cid):
    client.publish("chat/in/%s/dm/%s" % (sender, target),
                   json.dumps({"body": body, "cid": cid}), qos=1)


def nothing_left(cluster, conv, sender, target):
    r = cluster.redis
    assert r.call("EXISTS", "chat:seq:" + conv, "chat:recent:" + conv) == "0"
    assert r.call("SISMEMBER", "chat:user:%s:dms" % sender, conv) == "0"
    assert r.call("EXISTS", "chat:user:%s:dms" % target, "chat:user:%s:dmindex" % target) == "0"
    assert conv not in r.call("XRANGE", "chat:stream", "-", "+")
    assert stored_messages(cluster.store_url, conv) == []


def chatctl(cluster, tmp_path, *args, stdin=None):
    conf = tmp_path / "ops.conf"
    conf.write_text("jwt_alg HS256\njwt_key_file %s\nstore_url %s\n%s" % (
        cluster.keys.secret_file, cluster.store_url, cluster.redis.conf_lines()))
    return subprocess.run([cluster.keys.chatctl, "--config", str(conf)] + list(args),
                          capture_output=True, text=True, input=stdin, timeout=30)


def test_dm_to_a_name_nobody_has_is_refused(make_cluster):
    cluster = make_cluster(**FAST)
    keys = cluster.keys
    alice = signed_in(cluster.brokers[0].port, keys, "alice")
    bob = signed_in(cluster.brokers[1].port, keys, "bob")
    assert wait_for(lambda: cluster.redis.call("SISMEMBER", "chat:users", "bob") == "1")

    dm(alice, "alice", "ghost", "are you there?", "g1")
    n = notice_for(alice, "g1")
    assert n["code"] == "not_found" and n["topic"] == "chat/in/alice/dm/ghost", n
    alice.publish("chat/in/alice/dm/ghost", b"plain text too", qos=1)
    assert wait_for(lambda: len([x for x in payloads(alice, "/notice")
                                 if x["code"] == "not_found"]) == 2)
    # a user who exists is reached as before, in the same breath
    dm(alice, "alice", "bob", "hi bob", "b1")
    assert wait_for(lambda: [m for m in payloads(bob, "/inbox") if m.get("cid") == "b1"])
    assert wait_for(lambda: stored_messages(cluster.store_url, "dm:alice:bob"), timeout=20)
    nothing_left(cluster, "dm:alice:ghost", "alice", "ghost")

    # whoever takes the name later reads nothing, and is reached from then on
    ghost = signed_in(cluster.brokers[1].port, keys, "ghost")
    assert wait_for(lambda: cluster.redis.call("SISMEMBER", "chat:users", "ghost") == "1")
    assert rpc(ghost, "ghost", "history", {"conv": "dm:alice:ghost"})["result"] == {
        "messages": []}
    dm(alice, "alice", "ghost", "now you exist", "g2")
    got = wait_for(lambda: payloads(ghost, "/inbox"))
    assert got and got[0]["body"] == "now you exist" and got[0]["seq"] == 1
    assert not [x for x in payloads(alice, "/notice") if x.get("cid") == "g2"]
    for c in (alice, bob, ghost):
        c.close()


def test_operators_make_users_that_exist(make_cluster, tmp_path):
    """chatctl user add and chatctl token record the user: a device that
    never connected gets its DMs (a service token is nobody's user)."""
    cluster = make_cluster(**FAST)
    alice = signed_in(cluster.brokers[0].port, cluster.keys, "alice")
    r = chatctl(cluster, tmp_path, "user", "add", "dora", stdin="long-password-1\n")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    r = chatctl(cluster, tmp_path, "token", "sensor9", "--ttl", "1h")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    device_token = r.stdout.strip()
    r = chatctl(cluster, tmp_path, "token", "svc9", "--role", "service")
    assert r.returncode == 0
    for target, cid in (("dora", "d1"), ("sensor9", "s1")):
        dm(alice, "alice", target, "hello " + target, cid)
    dm(alice, "alice", "svc9", "hello service", "v1")
    assert notice_for(alice, "v1")["code"] == "not_found"
    conv = "dm:alice:sensor9"
    assert wait_for(lambda: cluster.redis.call("GET", "chat:seq:" + conv) == "1")
    assert cluster.redis.call("GET", "chat:seq:dm:alice:dora") == "1"
    assert not [x for x in payloads(alice, "/notice") if x.get("cid") in ("d1", "s1")]
    # the device, connecting later, finds its message
    from mqttutil import Client
    dev = Client(cluster.brokers[1].port, "sensor9", device_token)
    assert dev.connect() == 0 and dev.subscribe("chat/user/sensor9/#", qos=1) < 0x80
    msgs = rpc(dev, "sensor9", "history", {"conv": conv})["result"]["messages"]
    assert [m["body"] for m in msgs] == ["hello sensor9"]
    # without Redis the token is still minted, with a warning
    bad = tmp_path / "offline.conf"
    bad.write_text("jwt_alg HS256\njwt_key_file %s\nredis_port 1\n" % cluster.keys.secret_file)
    r = subprocess.run([cluster.keys.chatctl, "--config", str(bad), "token", "offline1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.count(".") == 2
    assert "not recorded" in r.stderr, r.stderr
    for c in (alice, dev):
        c.close()


def store_members(store_url):
    db = sqlite3.connect(store_url[len("sqlite:"):], timeout=10)
    try:
        return db.execute("SELECT room, user FROM members").fetchall()
    finally:
        db.close()


def test_users_that_exist_come_back_from_the_store(make_cluster, tmp_path):
    """After a flush, chat:users is rebuilt from what the store knows:
    accounts, room members, DM parties; and a Redis from a version without
    the complete set gets it once (chat:users:v1)."""
    cluster = make_cluster(**FAST)
    redis = cluster.redis
    alice = signed_in(cluster.brokers[0].port, cluster.keys, "alice")
    mia = signed_in(cluster.brokers[1].port, cluster.keys, "mia")
    ned = signed_in(cluster.brokers[1].port, cluster.keys, "ned")
    assert wait_for(lambda: redis.call("SISMEMBER", "chat:users", "ned") == "1", timeout=10)
    assert chatctl(cluster, tmp_path, "user", "add", "acct", stdin="long-password-1\n"
                   ).returncode == 0
    assert "result" in rpc(alice, "alice", "room.create", {"room": "club"})
    assert "result" in rpc(mia, "mia", "room.join", {"room": "club"})
    dm(alice, "alice", "ned", "hi ned", "n1")
    assert wait_for(lambda: stored_messages(cluster.store_url, "dm:alice:ned"), timeout=20)
    assert wait_for(lambda: ("club", "mia") in store_members(cluster.store_url), timeout=20)
    mia.close()
    ned.close()

    def check_known():
        for u in ("acct", "mia", "ned", "alice"):
            assert redis.call("SISMEMBER", "chat:users", u) == "1", u
        assert redis.call("SISMEMBER", "chat:users", "ghost") == "0"

    redis.call("FLUSHALL")
    assert wait_for(lambda: redis.call("EXISTS", "chat:restored") == "1", timeout=30)
    check_known()
    assert redis.call("EXISTS", "chat:users:v1") == "1"
    # none of them is connected now, and each is reached
    for i, u in enumerate(("acct", "mia")):
        dm(alice, "alice", u, "still there?", "k%d" % i)
    assert wait_for(lambda: redis.call("GET", "chat:seq:dm:acct:alice") == "1" and
                    redis.call("GET", "chat:seq:dm:alice:mia") == "1", timeout=10)

    # a Redis filled by an older version (connected users only) is completed
    redis.call("DEL", "chat:users", "chat:users:v1")
    assert wait_for(lambda: redis.call("EXISTS", "chat:users:v1") == "1", timeout=20)
    check_known()
    alice.close()
