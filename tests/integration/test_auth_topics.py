"""Topic rules (PROTOCOL.md section 4) as stock clients see them: what a
user may publish, subscribe to and receive, and what a service may do."""
import subprocess
import time

import pytest

from mqttutil import V311, V5, Client

PROTOCOLS = [pytest.param(V311, id="mqtt311"), pytest.param(V5, id="mqtt5")]


def connect(broker, keys, user, protocol=V311, role="user", client_id=None):
    c = Client(broker.port, user, keys.mint(user, role=role), client_id, protocol)
    assert c.connect() == 0
    return c


@pytest.fixture
def service(broker, keys):
    svc = connect(broker, keys, "bridge", role="service")
    assert svc.subscribe("$share/bridge/chat/in/#", qos=1) < 0x80
    yield svc
    svc.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_publish_only_under_own_in(broker, keys, service, protocol):
    alice = connect(broker, keys, "alice", protocol)
    try:
        forbidden = ["chat/in/bob/room/general", "chat/in/bob/dm/alice", "chat/room/general",
                     "chat/user/bob/inbox", "chat/presence/alice", "chat/in/alicex/rpc",
                     "other/topic", "chat/in/alice"]
        for t in forbidden:
            alice.publish(t, b"forged", qos=1)
        alice.publish("chat/in/alice/room/general", b"retained", qos=1, retain=True)
        alice.publish("chat/in/alice/room/general", b"ok", qos=1)
        got = service.wait_messages(1)
        time.sleep(0.3)
        got = service.messages
        assert got == [("chat/in/alice/room/general", b"ok")], got
    finally:
        alice.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_subscribe_rules(broker, keys, protocol):
    alice = connect(broker, keys, "alice", protocol)
    try:
        allowed = ["chat/room/general", "chat/room/general/typing", "chat/room/general/events",
                   "chat/user/alice/inbox", "chat/user/alice/rpc", "chat/user/alice/notice",
                   "chat/user/alice/#", "chat/presence/+", "chat/presence/bob"]
        denied = ["#", "chat/#", "chat/+", "chat/user/+/inbox", "chat/user/bob/inbox",
                  "chat/user/bob/#", "chat/user/#", "chat/room/+", "chat/room/#",
                  "chat/presence/#", "chat/in/#", "chat/in/alice/rpc", "$SYS/#",
                  "chat/room/Not-Valid", "+/room/general"]
        for t in allowed:
            assert alice.subscribe(t) < 0x80, "expected %s to be granted" % t
        for t in denied:
            assert alice.subscribe(t) >= 0x80, "expected %s to be refused" % t
    finally:
        alice.close()


def test_receives_only_own_and_public_topics(broker, keys):
    alice = connect(broker, keys, "alice")
    bob = connect(broker, keys, "bob")
    svc = connect(broker, keys, "bridge", role="service")
    try:
        assert alice.subscribe("chat/user/alice/#") < 0x80
        assert alice.subscribe("chat/user/bob/#") >= 0x80
        assert alice.subscribe("chat/presence/+") < 0x80
        assert alice.subscribe("chat/room/general") < 0x80
        assert bob.subscribe("chat/user/bob/#") < 0x80
        # as the bridge does before it delivers: the plugin has every
        # private room (none here), so a room it has no state for is public
        svc.publish("$CONTROL/chat/v1", b"sync begin\nsync end", qos=1)
        for topic, body in [("chat/user/bob/inbox", b"for bob"),
                            ("chat/user/alice/inbox", b"for alice"),
                            ("chat/presence/bob", b'{"user":"bob","online":true}'),
                            ("chat/room/general", b"room")]:
            svc.publish(topic, body, qos=1)
        got = sorted(alice.wait_messages(3))
        time.sleep(0.3)
        assert sorted(alice.messages) == sorted([
            ("chat/user/alice/inbox", b"for alice"),
            ("chat/presence/bob", b'{"user":"bob","online":true}'),
            ("chat/room/general", b"room")]), got
        assert bob.wait_messages(1) == [("chat/user/bob/inbox", b"for bob")]
    finally:
        for c in (alice, bob, svc):
            c.close()


def test_mosquitto_sub_forbidden_wildcards(broker, keys):
    tok = keys.mint("alice")
    for filt in ["#", "chat/#", "chat/user/+/inbox"]:
        r = subprocess.run(["mosquitto_sub", "-p", str(broker.port), "-u", "alice", "-P", tok,
                            "-i", "alice", "-t", filt, "-C", "1", "-W", "2"],
                           capture_output=True, text=True, timeout=10)
        assert "denied" in r.stderr, (filt, r.returncode, r.stderr)


def test_mosquitto_pub_to_other_user_is_not_delivered(broker, keys, service):
    tok = keys.mint("alice")
    subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-u", "alice", "-P", tok, "-i",
                    "alice", "-q", "1", "-t", "chat/in/bob/dm/alice", "-m", "forged"],
                   check=True, timeout=10)
    subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-u", "alice", "-P", tok, "-i",
                    "alice", "-q", "1", "-t", "chat/in/alice/dm/bob", "-m", "real"],
                   check=True, timeout=10)
    service.wait_messages(1)
    time.sleep(0.3)
    assert service.messages == [("chat/in/alice/dm/bob", b"real")]


def test_service_role_limits(broker, keys):
    svc = connect(broker, keys, "bridge", role="service")
    watcher = connect(broker, keys, "bridge2", role="service")
    try:
        assert svc.subscribe("$share/bridge/chat/in/#") < 0x80
        assert svc.subscribe("#") >= 0x80
        assert svc.subscribe("$SYS/#") >= 0x80
        assert svc.subscribe("other/#") >= 0x80
        assert watcher.subscribe("chat/in/#") < 0x80
        # a service never publishes into chat/in/ (it would loop into the bridge)
        svc.publish("chat/in/alice/room/general", b"loop", qos=1)
        time.sleep(0.3)
        assert watcher.messages == []
    finally:
        svc.close()
        watcher.close()


def test_admin_is_a_user_for_topics(broker, keys):
    root = connect(broker, keys, "root", role="admin")
    try:
        assert root.subscribe("chat/user/root/#") < 0x80
        assert root.subscribe("chat/user/alice/#") >= 0x80
        assert root.subscribe("#") >= 0x80
    finally:
        root.close()
