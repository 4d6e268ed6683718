"""Private-room states converge after the bridges' Redis pub/sub link drops
(issue 9, section 3): a member removed while no bridge was listening on
chat:acl stops receiving the room once the link is back, on every instance,
instead of receiving it for ever."""
import time

from mqttutil import Client, payloads, rpc, wait_for


def connect(port, keys, user):
    c = Client(port, user, keys.mint(user))
    assert c.connect() == 0
    assert c.subscribe("chat/user/%s/#" % user, qos=1) < 0x80
    return c


def clear(*clients):
    for c in clients:
        with c.lock:
            c.messages.clear()


def receives(sender, receiver, room, body):
    """Whether receiver gets body, posted by sender, within a second (the
    sender's own copy arriving first shows the post went through)."""
    clear(sender, receiver)
    sender.publish("chat/in/%s/room/%s" % (sender.user, room), body.encode(), qos=1)
    assert wait_for(lambda: [m for m in payloads(sender, "/room/" + room)
                             if m["body"] == body]), "the owner's own post did not arrive"
    time.sleep(1.0)
    return [m for m in payloads(receiver, "/room/" + room) if m["body"] == body] != []


def test_removal_while_pubsub_is_down_takes_effect_after_reconnect(cluster):
    keys = cluster.keys
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    owner = connect(n1, keys, "oscar")
    owner.user = "oscar"
    member = connect(n2, keys, "mallory")
    member.user = "mallory"
    try:
        assert rpc(owner, "oscar", "room.create", {"room": "cellar", "private": True})["result"]
        assert rpc(owner, "oscar", "room.invite", {"room": "cellar", "user": "mallory"})["result"] == {}
        assert owner.subscribe("chat/room/cellar", qos=1) < 0x80
        assert wait_for(lambda: member.subscribe("chat/room/cellar", qos=1) < 0x80, timeout=3)
        assert receives(owner, member, "cellar", "before")

        # drop every pub/sub connection (the bridges' sub links), then
        # remove the member before they are back: the chat:acl PUBLISH of
        # the removal reaches no bridge
        killed = int(cluster.redis.call("CLIENT", "KILL", "TYPE", "pubsub"))
        assert killed >= 2, "expected both bridges' sub links, killed %d" % killed
        assert rpc(owner, "oscar", "room.remove", {"room": "cellar", "user": "mallory"})["result"] == {}
        listening = lambda: int(cluster.redis.call("PUBSUB", "NUMSUB", "chat:acl").split()[-1]) >= 2
        assert wait_for(listening, timeout=10), "the bridges did not subscribe again"

        # within a few seconds of the link's return, neither broker lets
        # the removed member receive the room
        deadline = time.time() + 5
        while receives(owner, member, "cellar", "after-%f" % time.time()):
            assert time.time() < deadline, "the removed member still receives the room"
    finally:
        owner.close()
        member.close()
