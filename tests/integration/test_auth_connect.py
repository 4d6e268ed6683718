"""CONNECT with a JWT (PROTOCOL.md sections 2 and 3), with stock clients
(Paho 3.1.1 and 5, mosquitto_sub) and hand-built packets. Every refusal
is followed by a check that the broker still serves a valid client."""
import subprocess
import time

import pytest

from mqttutil import (V311, V5, Client, claims, connack_code, craft, raw_connect,
                      refused)

PROTOCOLS = [pytest.param(V311, id="mqtt311"), pytest.param(V5, id="mqtt5")]


@pytest.fixture(scope="module")
def secret(keys):
    with open(keys.secret_file, "rb") as f:
        return f.read().rstrip(b"\r\n")


def assert_still_serving(broker, keys):
    assert broker.alive(), "broker died:\n" + broker.log()[-2000:]
    code = connack_code(broker.port, "carol", keys.mint("carol"))
    assert code == 0, "a valid client was refused after a bad one: %r" % code


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_valid_token_connects(broker, keys, protocol):
    assert connack_code(broker.port, "alice", keys.mint("alice"), protocol=protocol) == 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_id_forms(broker, keys, protocol):
    tok = keys.mint("alice")
    assert connack_code(broker.port, "alice", tok, "alice:phone", protocol) == 0
    assert connack_code(broker.port, "alice", tok, "alice:web-1", protocol) == 0
    # empty: the broker assigns one
    assert connack_code(broker.port, "alice", tok, "", protocol) == 0
    for bad in ["bob", "alicex", "alice:", "alice/phone", "alice:a/b", "alice:+",
                "alice:#", "bob:alice", "auto-alice"]:
        code = connack_code(broker.port, "alice", tok, bad, protocol)
        assert refused(code, protocol), "client id %r: expected refusal, got %r" % (bad, code)
    assert_still_serving(broker, keys)


def bad_tokens(secret, keys):
    """(name, username, token) for every refusal case the issue lists that
    an HS256 broker can see."""
    good = keys.mint("alice")
    head, body, sig = good.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    return [
        ("no password", "alice", None),
        ("empty password", "alice", ""),
        ("garbage", "alice", "not-a-token"),
        ("garbage with dots", "alice", "a.b.c"),
        ("truncated", "alice", good[: len(good) // 2]),
        ("truncated signature", "alice", good[:-5]),
        ("bad signature", "alice", head + "." + body + "." + flipped),
        ("signed with another secret", "alice", craft(claims("alice"), b"another-secret-of-32-bytes-long!")),
        ("alg none", "alice", craft(claims("alice"), alg="none")),
        ("alg none with signature", "alice", craft(claims("alice"), secret, header={"alg": "none"})[:-1] + "x"),
        ("HS512", "alice", craft(claims("alice"), secret, alg="HS512")),
        ("expired", "alice", craft(claims("alice", ttl=-10), secret)),
        ("not yet valid", "alice", craft(claims("alice", nbf=int(time.time()) + 3600), secret)),
        ("issued in the future", "alice", craft(claims("alice", iat=int(time.time()) + 3600), secret)),
        ("sub is not the username", "alice", craft(claims("bob"), secret)),
        ("missing sub", "alice", craft(claims(None), secret)),
        ("missing exp", "alice", craft({"sub": "alice", "iat": int(time.time())}, secret)),
        ("exp as a string", "alice", craft(claims("alice", exp=str(int(time.time()) + 60)), secret)),
        ("unknown role", "alice", craft(claims("alice", role="root"), secret)),
        ("invalid username", "Alice!", craft(claims("alice"), secret)),
        ("no username", None, None),
    ]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_tokens_are_refused(broker, keys, secret, protocol):
    for name, user, token in bad_tokens(secret, keys):
        if user is None:
            code = connack_code(broker.port, None, None, "anon", protocol)
        else:
            code = connack_code(broker.port, user, token, "alice", protocol)
        assert refused(code, protocol), "%s: expected refusal, got CONNACK %r" % (name, code)
    assert_still_serving(broker, keys)


@pytest.mark.parametrize("version", ["mqttv311", "mqttv5"])
def test_mosquitto_sub_refused_and_accepted(broker, keys, secret, version):
    bad = subprocess.run(
        ["mosquitto_sub", "-V", version, "-p", str(broker.port), "-u", "alice", "-P",
         craft(claims("alice", ttl=-1), secret), "-i", "alice", "-t", "chat/room/x", "-C", "1",
         "-W", "2"], capture_output=True, text=True, timeout=10)
    assert bad.returncode != 0 and "not authori" in bad.stderr.lower(), bad.stderr
    good = subprocess.run(
        ["mosquitto_sub", "-V", version, "-p", str(broker.port), "-u", "alice", "-P",
         keys.mint("alice"),
         "-i", "alice", "-t", "chat/room/x", "-W", "1"],
        capture_output=True, text=True, timeout=10)
    # -W timeout exits 27 after a successful connect and subscribe
    assert good.returncode == 27, (good.returncode, good.stderr)


def test_huge_tokens(broker, keys, secret):
    # The largest password MQTT can carry (65535 bytes), a real signed JWT.
    pad = "x" * (65535 - 400)
    big = craft(claims("alice", pad=pad), secret)
    big = big[:65535]
    assert raw_connect(broker.port, b"alice", b"alice", big.encode()) in (None, 5)
    # 100 KB after the password's length field: malformed, dropped.
    assert raw_connect(broker.port, b"alice", b"alice", b"a" * 100 * 1024,
                       declared_password_len=65535) in (None, 5)
    # A 100 KB token handed to a stock client never reaches the broker
    # as a valid CONNECT.
    r = subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-u", "alice", "-P",
                        "a." * 50 * 1024, "-i", "alice", "-t", "chat/in/alice/rpc", "-m", "x"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0
    assert_still_serving(broker, keys)


def test_raw_connect_valid_and_garbage(broker, keys):
    assert raw_connect(broker.port, b"alice", b"alice", keys.mint("alice").encode()) == 0
    assert raw_connect(broker.port, b"alice", b"alice", b"\x00\xff\xfe garbage") == 5
    assert raw_connect(broker.port, b"alice", b"alice", b"a.b\x00.c") == 5
    assert_still_serving(broker, keys)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_no_takeover_with_another_users_client_id(broker, keys, protocol):
    alice = Client(broker.port, "alice", keys.mint("alice"), "alice:phone", protocol)
    assert alice.connect() == 0
    assert alice.subscribe("chat/user/alice/#") < 0x80
    try:
        code = connack_code(broker.port, "mallory", keys.mint("mallory"), "alice:phone", protocol)
        assert refused(code, protocol), code
        code = connack_code(broker.port, "mallory", keys.mint("mallory"), "alice", protocol)
        assert refused(code, protocol), code
        time.sleep(0.3)
        assert not alice.disconnected.is_set(), "alice's session was taken over"
        # alice's connection still delivers
        svc = Client(broker.port, "bridge", keys.mint("bridge", role="service"))
        assert svc.connect() == 0
        svc.publish("chat/user/alice/inbox", b"still here", qos=1)
        svc.close()
        got = alice.wait_messages(1)
        assert got == [("chat/user/alice/inbox", b"still here")], got
    finally:
        alice.close()


def test_same_user_second_device_takes_over_its_own_id(broker, keys):
    # The same user reconnecting with the same id replaces the old session
    # (normal MQTT behaviour); the plugin keys state per connection, so the
    # new connection keeps working after the old one's DISCONNECT.
    tok = keys.mint("dave")
    first = Client(broker.port, "dave", tok, "dave:tablet")
    assert first.connect() == 0
    second = Client(broker.port, "dave", tok, "dave:tablet")
    assert second.connect() == 0
    assert first.disconnected.wait(5)
    assert second.subscribe("chat/user/dave/inbox") < 0x80
    svc = Client(broker.port, "bridge", keys.mint("bridge", role="service"))
    assert svc.connect() == 0
    svc.publish("chat/user/dave/inbox", b"hi", qos=1)
    svc.close()
    assert second.wait_messages(1) == [("chat/user/dave/inbox", b"hi")]
    second.close()
