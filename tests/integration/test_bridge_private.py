"""Private rooms on every instance (PROTOCOL.md section 4): non-members
cannot subscribe, post or read; invitations and removals take effect on the
other instance, a removal within one second; a restarted broker gets the
rules back before it delivers anything."""
import time

import pytest

from mqttutil import Client, payloads, rpc, wait_for


def connect(port, keys, user, role="user", subs=("chat/user/{}/#",)):
    c = Client(port, user, keys.mint(user, role=role))
    assert c.connect() == 0
    for t in subs:
        assert c.subscribe(t.format(user), qos=1) < 0x80
    return c


def refused_until_known(client, topic, timeout=3):
    """The room state reaches the other broker asynchronously: retry the
    subscription until it is refused."""
    def refused():
        if client.subscribe(topic) >= 0x80:
            return True
        client.c.unsubscribe(topic)
        return False
    return wait_for(refused, timeout=timeout)


@pytest.fixture(scope="module")
def vault(cluster):
    keys = cluster.keys
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    alice = connect(n1, keys, "alice")
    bob = connect(n2, keys, "bob")
    carol = connect(n2, keys, "carol")
    reply = rpc(alice, "alice", "room.create", {"room": "vault", "private": True})
    assert reply["result"]["room"] == {"room": "vault", "owner": "alice", "private": True}
    assert alice.subscribe("chat/room/vault", qos=1) < 0x80
    yield alice, bob, carol
    for c in (alice, bob, carol):
        c.close()


def clear(*clients):
    for c in clients:
        with c.lock:
            c.messages.clear()


def test_non_member_cannot_subscribe_post_or_join(vault):
    alice, bob, _ = vault
    assert refused_until_known(bob, "chat/room/vault")
    assert bob.subscribe("chat/room/vault/typing") >= 0x80
    assert bob.subscribe("chat/room/vault/events") >= 0x80
    assert bob.subscribe("chat/room/+") >= 0x80
    assert rpc(bob, "bob", "room.join", {"room": "vault"})["error"]["code"] == "forbidden"
    assert rpc(bob, "bob", "room.members", {"room": "vault"})["error"]["code"] == "forbidden"
    clear(bob, alice)
    bob.publish("chat/in/bob/room/vault", b"let me in", qos=1)
    got = wait_for(lambda: payloads(bob, "/notice"))
    assert got and got[0]["code"] == "forbidden"
    time.sleep(0.2)
    assert payloads(alice, "/room/vault") == []
    # not listed for bob, listed for alice
    assert "vault" not in [r["room"] for r in rpc(bob, "bob", "rooms.list")["result"]["rooms"]]
    mine = {r["room"]: r for r in rpc(alice, "alice", "rooms.list")["result"]["rooms"]}
    assert mine["vault"]["private"] is True and mine["vault"]["member"] is True


def test_invite_then_remove_within_one_second_on_other_instance(vault):
    alice, bob, carol = vault
    assert rpc(bob, "bob", "room.invite", {"room": "vault", "user": "carol"})["error"]["code"] == "forbidden"
    assert rpc(alice, "alice", "room.invite", {"room": "vault", "user": "carol"})["result"] == {}
    # carol, on the other instance, may now subscribe and receive
    assert wait_for(lambda: carol.subscribe("chat/room/vault", qos=1) < 0x80, timeout=3)
    clear(carol)
    alice.publish("chat/in/alice/room/vault", b"welcome", qos=1)
    got = wait_for(lambda: payloads(carol, "/room/vault"))
    assert got and got[0]["body"] == "welcome"
    members = rpc(carol, "carol", "room.members", {"room": "vault"})["result"]["members"]
    assert sorted(m["user"] for m in members) == ["alice", "carol"]

    # removal: one second later carol receives nothing, alice still does
    assert rpc(alice, "alice", "room.remove", {"room": "vault", "user": "carol"})["result"] == {}
    time.sleep(1.0)
    clear(carol, alice)
    alice.publish("chat/in/alice/room/vault", b"after removal", qos=1)
    assert wait_for(lambda: payloads(alice, "/room/vault"))
    time.sleep(0.5)
    assert payloads(carol, "/room/vault") == [], "removed member still receives"
    carol.publish("chat/in/carol/room/vault", b"still here?", qos=1)
    notice = wait_for(lambda: payloads(carol, "/notice"))
    assert notice and notice[0]["code"] == "forbidden"


def test_admin_may_invite_and_remove(cluster, vault):
    keys = cluster.keys
    root = connect(cluster.brokers[1].port, keys, "root", role="admin")
    # only a user who exists may be invited: dave has signed in once
    connect(cluster.brokers[0].port, keys, "dave").close()
    assert wait_for(lambda: cluster.redis.call("SISMEMBER", "chat:users", "dave") == "1")
    try:
        assert rpc(root, "root", "room.invite", {"room": "vault", "user": "dave"})["result"] == {}
        assert rpc(root, "root", "room.remove", {"room": "vault", "user": "dave"})["result"] == {}
    finally:
        root.close()


def test_restarted_broker_gets_the_rules_before_delivering(cluster, vault):
    alice = vault[0]
    node2 = cluster.brokers[1]
    bridge2 = cluster.bridges[1]
    # the bridge also resends the states after its pub/sub link returns:
    # wait for a sync that follows this restart
    syncs = bridge2.log().count("private room state")
    node2.restart()
    assert wait_for(lambda: bridge2.log().count("private room state") > syncs, timeout=10), \
        bridge2.log()[-2000:]
    eve = connect(node2.port, cluster.keys, "eve")
    try:
        assert eve.subscribe("chat/room/vault") >= 0x80
        alice.publish("chat/in/alice/room/vault", b"after restart", qos=1)
        time.sleep(0.5)
        assert payloads(eve, "/room/vault") == []
    finally:
        eve.close()
