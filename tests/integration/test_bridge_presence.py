"""Presence (PROTOCOL.md section 4): retained {"user","online","ts"} on
chat/presence/<user>, the same on both instances, right with one user on
several devices and instances, and corrected within 30 s when a whole
instance dies without saying goodbye."""
import json
import time

from mqttutil import Client, rpc, wait_for


def presence_of(client, user):
    with client.lock:
        states = [json.loads(p) for t, p in client.messages if t == "chat/presence/" + user]
    return states[-1]["online"] if states else None


def watcher(port, keys, name):
    w = Client(port, name, keys.mint(name))
    assert w.connect() == 0
    assert w.subscribe("chat/presence/+", qos=1) < 0x80
    assert w.subscribe("chat/user/%s/rpc" % name) < 0x80
    return w


def test_online_offline_multi_device_both_instances(cluster):
    keys = cluster.keys
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    w1, w2 = watcher(n1, keys, "watcher1"), watcher(n2, keys, "watcher2")
    try:
        phone = Client(n2, "zoe", keys.mint("zoe"), "zoe:phone")
        assert phone.connect() == 0
        for w in (w1, w2):
            assert wait_for(lambda: presence_of(w, "zoe") is True), "zoe not online"
        with w1.lock:
            state = [json.loads(p) for t, p in w1.messages if t == "chat/presence/zoe"][-1]
        assert set(state) == {"user", "online", "ts"} and state["user"] == "zoe"
        assert isinstance(state["ts"], int)

        laptop = Client(n1, "zoe", keys.mint("zoe"), "zoe:laptop")
        assert laptop.connect() == 0
        phone.close()
        time.sleep(1.0)
        assert presence_of(w1, "zoe") is True and presence_of(w2, "zoe") is True
        reply = rpc(w1, "watcher1", "presence.get", {"users": ["zoe", "nobody"]})
        assert reply["result"]["users"] == [{"user": "zoe", "online": True},
                                            {"user": "nobody", "online": False}]
        laptop.close()
        # offline is announced presence_offline_delay (5 s) after the last
        # connection ended, by the next heartbeat (1 s)
        for w in (w1, w2):
            assert wait_for(lambda: presence_of(w, "zoe") is False, timeout=15), \
                "zoe still online"
        # retained: a newcomer learns the state at once
        late = watcher(n2, keys, "late")
        assert wait_for(lambda: presence_of(late, "zoe") is False)
        late.close()
        assert rpc(w1, "watcher1", "presence.get", {"users": []})["error"]["code"] == "bad_request"
        assert rpc(w1, "watcher1", "presence.get",
                   {"users": ["u%d" % i for i in range(101)]})["error"]["code"] == "bad_request"
    finally:
        w1.close()
        w2.close()


def test_dead_instance_is_cleared_within_30s(make_cluster):
    cluster = make_cluster()
    keys = cluster.keys
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    w = watcher(n1, keys, "watcher")
    try:
        yuri = Client(n2, "yuri", keys.mint("yuri"))
        assert yuri.connect() == 0
        assert wait_for(lambda: presence_of(w, "yuri") is True)
        # the whole second instance dies at once: no DISCONNECT reaches anyone
        cluster.bridges[1].kill()
        cluster.brokers[1].kill()
        died = time.time()
        assert wait_for(lambda: presence_of(w, "yuri") is False, timeout=35), \
            "still online 35 s after the instance died"
        took = time.time() - died
        assert took <= 30, "cleared after %.1f s" % took
        yuri.close()
    finally:
        w.close()


def offline_seen(client, user, since):
    """Whether client got an offline state of user among messages[since:]."""
    with client.lock:
        got = client.messages[since:]
    return any(t == "chat/presence/" + user and not json.loads(p)["online"] for t, p in got)


def test_clients_back_before_their_bridge_are_online(make_cluster):
    """After a broker restart, clients that reconnect before the bridge is
    back on that broker made their connection reports to nobody: once the
    bridge listens, the plugin reports every connection again, so they are
    online (and stay so when the new boot id is seen), instead of offline
    for as long as they stay connected. Users who were online before the
    restart and are back before their bridge are never announced offline:
    the new boot id reaches the bridge after the repeated reports, so
    forgetting the old boot's connections leaves them one."""
    import os
    import signal
    cluster = make_cluster()
    keys = cluster.keys
    node2, bridge2 = cluster.brokers[1], cluster.bridges[1]
    w = watcher(cluster.brokers[0].port, keys, "watcher9")
    users = ["early%d" % i for i in range(3)] + ["back%d" % i for i in range(3)]
    before, clients = [], []
    try:
        for u in users[3:]:
            c = Client(node2.port, u, keys.mint(u))
            assert c.connect() == 0
            before.append(c)
        for u in users[3:]:
            assert wait_for(lambda: presence_of(w, u) is True), "%s not online" % u
        with w.lock:
            mark = len(w.messages)
        os.killpg(bridge2.proc.pid, signal.SIGSTOP)
        try:
            node2.kill()
            for c in before:
                c.close()
            node2.start()
            for u in users:
                c = Client(node2.port, u, keys.mint(u))
                assert c.connect() == 0
                clients.append(c)
        finally:
            os.killpg(bridge2.proc.pid, signal.SIGCONT)
        for u in users[:3]:
            assert wait_for(lambda: presence_of(w, u) is True, timeout=10), \
                "%s, connected before its bridge was back, is not online" % u
        time.sleep(2.0)
        reply = rpc(w, "watcher9", "presence.get", {"users": users})
        assert all(u["online"] for u in reply["result"]["users"]), reply
        for u in users[3:]:
            assert not offline_seen(w, u, mark), "%s, back before its bridge, was announced offline" % u
    finally:
        for c in clients:
            c.close()
        w.close()
