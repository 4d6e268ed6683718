"""Connect/disconnect loops (issue 22, finding 5): each user has a CONNECT
budget per broker (connect_burst, then connect_per_min), beyond which the
broker answers "not authorized" while other users connect as usual; and a
user's presence changes are coalesced (the last connection going down is
announced offline only presence_offline_delay seconds later, unless the
user is back), so a flapping user costs the watchers of chat/presence/+
at most an update or two, not two per cycle."""
import json
import socket
import struct
import time

from mqttutil import Client, _remaining_length, _utf8, wait_for

CYCLES = 200


def raw_cycle(port, user, token, cid):
    """One MQTT 3.1.1 CONNECT, then DISCONNECT and close. Returns the
    CONNACK code, or None when the socket closed without one."""
    body = _utf8(b"MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 30) + _utf8(cid.encode()) + \
        _utf8(user.encode()) + _utf8(token.encode())
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(bytes([0x10]) + _remaining_length(len(body)) + body)
        data = b""
        while len(data) < 4:
            chunk = s.recv(4 - len(data))
            if not chunk:
                return None
            data += chunk
        if data[3] == 0:
            s.sendall(b"\xe0\x00")
        return data[3]
    except (ConnectionResetError, BrokenPipeError):
        return None
    finally:
        s.close()


def flap(port, user, token, cycles=CYCLES):
    codes = []
    t0 = time.time()
    for i in range(cycles):
        codes.append(raw_cycle(port, user, token, "%s:flap%d" % (user, i % 4)))
    return codes, time.time() - t0


def updates_of(watcher, user):
    with watcher.lock:
        return [json.loads(p)["online"] for t, p in watcher.messages
                if t == "chat/presence/" + user]


def watcher(port, keys, name):
    w = Client(port, name, keys.mint(name))
    assert w.connect() == 0
    assert w.subscribe("chat/presence/+", qos=1) < 0x80
    return w


def settle(w, user, delay_s):
    """Waits until the flapper is announced offline, then a little more."""
    assert wait_for(lambda: updates_of(w, user)[-1:] == [False], timeout=delay_s + 15), \
        updates_of(w, user)
    time.sleep(2.0)
    return updates_of(w, user)


def test_flapping_is_limited_and_other_users_connect(make_cluster):
    cluster = make_cluster()
    keys = cluster.keys
    port = cluster.brokers[0].port
    w = watcher(cluster.brokers[1].port, keys, "watcher")
    try:
        codes, took = flap(port, "flapper", keys.mint("flapper"))
        accepted = codes.count(0)
        print("%d cycles in %.2f s: %d accepted" % (len(codes), took, accepted))
        # the burst (30) and what refilled meanwhile (120 a minute)
        assert 30 <= accepted <= 30 + 2 * int(took) + 2, (accepted, took)
        assert all(c in (0, 5) for c in codes), set(codes)
        # another user connects at once, on the same broker
        other = Client(port, "bystander", keys.mint("bystander"))
        assert other.connect() == 0
        other.close()
        assert "refused flapper" in cluster.brokers[0].run_log()
        assert "connect_per_min" in cluster.brokers[0].run_log()
        got = settle(w, "flapper", 5)
        print("presence updates of the flapper: %s" % got)
        assert got == [True, False], got
    finally:
        w.close()


def test_presence_of_a_flapping_user_is_coalesced(make_cluster):
    """With the connect limit out of the way, 200 accepted cycles still
    reach the watchers as one online and one offline update."""
    cluster = make_cluster(broker_opts={"connect_burst": 100000})
    keys = cluster.keys
    w = watcher(cluster.brokers[1].port, keys, "watcher2")
    try:
        codes, took = flap(cluster.brokers[0].port, "flipper", keys.mint("flipper"))
        print("%d cycles in %.2f s: %d accepted" % (len(codes), took, codes.count(0)))
        assert codes.count(0) == CYCLES, set(codes)
        got = settle(w, "flipper", 5)
        print("presence updates of the flipper: %s" % got)
        assert got == [True, False], got
        # back online later: announced once more
        c = Client(cluster.brokers[0].port, "flipper", keys.mint("flipper"))
        assert c.connect() == 0
        assert wait_for(lambda: updates_of(w, "flipper") == [True, False, True], timeout=10)
        c.close()
    finally:
        w.close()
