"""Messages across two broker instances (PROTOCOL.md sections 4 and 5):
rooms and DMs cross instances, the server sets `from`, the sender's other
devices get DM copies, and every bad input gets its notice."""
import json
import time

import pytest

from mqttutil import V5, Client, payloads, rpc, wait_for


def connect(port, keys, user, client_id=None, protocol=None, subs=()):
    kw = {"protocol": protocol} if protocol else {}
    c = Client(port, user, keys.mint(user), client_id, **kw)
    assert c.connect() == 0
    for t in subs:
        assert c.subscribe(t, qos=1) < 0x80
    return c


@pytest.fixture(scope="module")
def people(cluster):
    """alice on node1 (two devices), bob on node2; room 'lobby' exists."""
    keys = cluster.keys
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    alice = connect(n1, keys, "alice", "alice:laptop", subs=["chat/user/alice/#"])
    alice_phone = connect(n2, keys, "alice", "alice:phone", subs=["chat/user/alice/#"])
    bob = connect(n2, keys, "bob", subs=["chat/user/bob/#", "chat/room/lobby"])
    reply = rpc(alice, "alice", "room.create", {"room": "lobby"})
    assert reply.get("result", {}).get("room", {}).get("owner") == "alice", reply
    assert alice.subscribe("chat/room/lobby", qos=1) < 0x80
    yield alice, alice_phone, bob
    for c in (alice, alice_phone, bob):
        c.close()


def clear(*clients):
    for c in clients:
        with c.lock:
            c.messages.clear()


def test_room_message_crosses_instances(people):
    alice, _, bob = people
    clear(alice, bob)
    alice.publish("chat/in/alice/room/lobby", b"hello lobby", qos=1)
    got = wait_for(lambda: payloads(bob, "/room/lobby"))
    assert len(got) == 1, got
    m = got[0]
    assert m["v"] == 1 and m["type"] == "msg" and m["conv"] == "room:lobby"
    assert m["from"] == "alice" and m["to"] == "lobby" and m["body"] == "hello lobby"
    assert isinstance(m["seq"], int) and m["seq"] >= 1 and isinstance(m["ts"], int)
    assert isinstance(m["id"], str) and m["id"]
    # the sender's own subscription on node1 sees the same message
    mine = wait_for(lambda: payloads(alice, "/room/lobby"))
    assert mine == got


def test_from_cannot_be_forged(people):
    alice, _, bob = people
    clear(bob)
    alice.publish("chat/in/alice/room/lobby",
                  json.dumps({"body": "trust me", "from": "mallory", "cid": "c-9"}), qos=1)
    got = wait_for(lambda: payloads(bob, "/room/lobby"))
    assert got and got[0]["from"] == "alice" and got[0]["cid"] == "c-9"


def test_dm_reaches_peer_and_senders_other_devices(people):
    alice, alice_phone, bob = people
    clear(alice, alice_phone, bob)
    alice.publish("chat/in/alice/dm/bob", json.dumps({"body": "psst", "cid": "d1"}), qos=1)
    for who in (bob, alice_phone, alice):
        got = wait_for(lambda: payloads(who, "/inbox"))
        assert len(got) == 1, got
        assert got[0]["conv"] == "dm:alice:bob" and got[0]["from"] == "alice"
        assert got[0]["to"] == "bob" and got[0]["body"] == "psst" and got[0]["cid"] == "d1"
    # the reply direction keeps the same conversation and its next seq
    seq = got[0]["seq"]
    clear(alice)
    bob.publish("chat/in/bob/dm/alice", b"hi", qos=1)
    back = wait_for(lambda: payloads(alice, "/inbox"))
    assert back[0]["conv"] == "dm:alice:bob" and back[0]["seq"] == seq + 1


def test_typing_is_relayed_not_stored(people, cluster):
    alice, _, bob = people
    assert bob.subscribe("chat/room/lobby/typing") < 0x80
    clear(bob)
    alice.publish("chat/in/alice/typing/room/lobby", b"", qos=1)
    alice.publish("chat/in/alice/typing/dm/bob", b"", qos=1)
    def typing_in_inbox():
        return [m for m in payloads(bob, "/inbox") if m["type"] == "typing"]
    got = wait_for(lambda: payloads(bob, "/typing") and typing_in_inbox())
    assert got
    t = payloads(bob, "/typing")[0]
    assert t == {"v": 1, "type": "typing", "conv": "room:lobby", "from": "alice"}
    assert typing_in_inbox()[0] == {"v": 1, "type": "typing", "conv": "dm:alice:bob",
                                    "from": "alice"}
    stream = cluster.redis.call("XRANGE", "chat:stream", "-", "+")
    assert "typing" not in stream


def notices_for(client, publishes, n_expected):
    clear(client)
    for topic, payload in publishes:
        client.publish(topic, payload, qos=1)
    got = wait_for(lambda: len(payloads(client, "/notice")) >= n_expected and
                   payloads(client, "/notice"))
    return got


BAD_INPUTS = [
    ("chat/in/alice/room/nosuchroom", b"x", "not_found"),
    ("chat/in/alice/room/Bad_Name", b"x", "bad_request"),
    ("chat/in/alice/dm/Not-Valid", b"x", "bad_request"),
    ("chat/in/alice/dm/alice", b"x", "bad_request"),
    ("chat/in/alice/shout/lobby", b"x", "bad_request"),
    ("chat/in/alice/room/lobby", b"", "bad_request"),
    ("chat/in/alice/room/lobby", b"a" * 4097, "too_large"),
    ("chat/in/alice/room/lobby", b"\xff\xfe bad utf8", "bad_request"),
    ("chat/in/alice/room/lobby", b'{"body": 42}', "bad_request"),
    ("chat/in/alice/room/lobby", b'{"body": "x", "cid": 7}', "bad_request"),
    ("chat/in/alice/room/lobby", b'{"body": "unterminated', "bad_request"),
    ("chat/in/alice/room/lobby", b'{"body": ""}', "bad_request"),
]


@pytest.mark.parametrize("topic,payload,code", BAD_INPUTS,
                         ids=["unknown room", "bad room name", "bad user name", "dm to self",
                              "unknown kind", "empty body", "4 KiB + 1", "invalid utf-8",
                              "body not a string", "cid not a string", "broken json",
                              "empty json body"])
def test_bad_input_gets_notice_and_no_message(people, topic, payload, code):
    alice, _, bob = people
    clear(bob)
    got = notices_for(alice, [(topic, payload)], 1)
    assert len(got) == 1, got
    assert got[0]["type"] == "notice" and got[0]["code"] == code, got
    assert got[0]["topic"] == topic and got[0]["message"]
    time.sleep(0.2)
    assert payloads(bob, "/room/lobby") == []


def test_exactly_4kib_is_accepted(people):
    alice, _, bob = people
    clear(bob)
    alice.publish("chat/in/alice/room/lobby", b"a" * 4096, qos=1)
    got = wait_for(lambda: payloads(bob, "/room/lobby"))
    assert got and len(got[0]["body"]) == 4096


def test_rpc_errors(people):
    alice = people[0]
    assert rpc(alice, "alice", "no.such.method", {})["error"]["code"] == "bad_request"
    assert rpc(alice, "alice", "room.create", {"room": "Bad Room"})["error"]["code"] == "bad_request"
    assert rpc(alice, "alice", "room.create", {"room": "x", "private": "yes"})["error"]["code"] == "bad_request"
    assert rpc(alice, "alice", "room.create", {"room": "lobby"})["error"]["code"] == "conflict"
    assert rpc(alice, "alice", "room.join", {"room": "nowhere"})["error"]["code"] == "not_found"
    assert rpc(alice, "alice", "room.join", {})["error"]["code"] == "bad_request"
    assert rpc(alice, "alice", "room.join", {"room": 5})["error"]["code"] == "bad_request"
    clear(alice)
    alice.publish("chat/in/alice/rpc", b"not json at all", qos=1)
    alice.publish("chat/in/alice/rpc", b'{"id": "x", "method": 5}', qos=1)
    alice.publish("chat/in/alice/rpc", b'{"id": "y", "method": "rooms.list", "params": []}', qos=1)
    got = wait_for(lambda: len(payloads(alice, "/rpc")) >= 3 and payloads(alice, "/rpc"))
    assert sorted((r["id"] if r["id"] is not None else "", r["error"]["code"]) for r in got) == \
        [("", "bad_request"), ("x", "bad_request"), ("y", "bad_request")]


def test_rooms_join_leave_list_and_events(people):
    alice, _, bob = people
    assert rpc(bob, "bob", "room.create", {"room": "garden"})["result"]["room"]["owner"] == "bob"
    assert alice.subscribe("chat/room/garden/events") < 0x80
    clear(alice)
    assert rpc(alice, "alice", "room.join", {"room": "garden"}) == {"id": rpc_last_id(alice),
                                                                   "result": {}}
    ev = wait_for(lambda: payloads(alice, "/events"))
    assert ev and ev[0] == {"v": 1, "type": "join", "room": "garden", "user": "alice"}
    rooms = rpc(alice, "alice", "rooms.list")["result"]["rooms"]
    names = {r["room"]: r for r in rooms}
    assert names["garden"]["member"] is True and names["garden"]["owner"] == "bob"
    assert "lobby" in names
    members = rpc(alice, "alice", "room.members", {"room": "garden"})["result"]["members"]
    assert sorted(m["user"] for m in members) == ["alice", "bob"]
    assert rpc(alice, "alice", "room.leave", {"room": "garden"})["result"] == {}
    ev = wait_for(lambda: len(payloads(alice, "/events")) >= 2 and payloads(alice, "/events"))
    assert ev[1]["type"] == "leave"
    # only the owner may invite or remove
    assert rpc(alice, "alice", "room.invite", {"room": "garden", "user": "carol"})["error"]["code"] == "forbidden"


def rpc_last_id(client):
    with client.lock:
        for topic, payload in reversed(client.messages):
            if topic.endswith("/rpc"):
                return json.loads(payload)["id"]


def test_rpc_v5_response_topic_and_correlation(cluster):
    import paho.mqtt.client as mqtt
    from paho.mqtt.properties import Properties
    from paho.mqtt.packettypes import PacketTypes
    keys = cluster.keys
    carol = Client(cluster.brokers[1].port, "carol", keys.mint("carol"), protocol=V5)
    assert carol.connect() == 0
    got = []
    carol.c.on_message = lambda c, u, m: got.append(
        (m.topic, m.payload, getattr(m.properties, "CorrelationData", None)))
    assert carol.subscribe("chat/user/carol/replies/x") < 0x80
    assert carol.subscribe("chat/user/carol/rpc") < 0x80
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = "chat/user/carol/replies/x"
    props.CorrelationData = b"\x01\x02corr"
    carol.c.publish("chat/in/carol/rpc", json.dumps({"id": "v5", "method": "rooms.list"}),
                    qos=1, properties=props)
    assert wait_for(lambda: got)
    topic, payload, corr = got[0]
    assert topic == "chat/user/carol/replies/x" and corr == b"\x01\x02corr"
    assert json.loads(payload)["id"] == "v5" and "rooms" in json.loads(payload)["result"]
    # a response topic outside carol's tree is refused, on her own rpc topic
    got.clear()
    props.ResponseTopic = "chat/user/alice/rpc"
    carol.c.publish("chat/in/carol/rpc", json.dumps({"id": "evil", "method": "rooms.list"}),
                    qos=1, properties=props)
    assert wait_for(lambda: got)
    topic, payload, _ = got[0]
    assert topic == "chat/user/carol/rpc"
    assert json.loads(payload)["error"]["code"] == "forbidden"
    carol.close()
    assert mqtt  # the import is what the v5 properties need
