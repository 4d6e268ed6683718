"""Requests the broker plugin refuses itself are answered like the bridge
answers them (issue 22): an rpc error carrying the request's id on
chat/user/<me>/rpc — with MQTT 5, on the request's Response Topic with its
Correlation Data — never a notice the requester cannot match."""
import json
import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqttutil import V5, Client, payloads, wait_for


def connect(port, keys, user, cid=None, protocol=None):
    c = Client(port, user, keys.mint(user), cid, **({"protocol": protocol} if protocol else {}))
    assert c.connect() == 0
    assert c.subscribe("chat/user/%s/#" % user, qos=1) < 0x80
    return c


def rpc_replies(client, suffix="/rpc"):
    return payloads(client, suffix)


def test_requests_while_the_bridge_is_away_get_an_error_with_their_id(make_cluster):
    cluster = make_cluster()
    keys = cluster.keys
    port = cluster.brokers[0].port
    alice = connect(port, keys, "alice")
    mqtt5 = connect(port, keys, "alice", "alice:v5", V5)
    try:
        cluster.bridges[0].kill()
        time.sleep(0.5)
        alice.publish("chat/in/alice/rpc",
                      json.dumps({"id": "req-7", "method": "rooms.list"}), qos=1)
        alice.publish("chat/in/alice/rpc",
                      json.dumps({"id": 42, "method": "rooms.list"}), qos=1)
        alice.publish("chat/in/alice/rpc", b"not json", qos=1)
        alice.publish("chat/in/alice/rpc",
                      json.dumps({"id": "cut\u0000", "method": "rooms.list"}), qos=1)
        # QoS 0 too: the bridge would have lost it, the requester hears why
        alice.publish("chat/in/alice/rpc",
                      json.dumps({"id": "q0", "method": "rooms.list"}), qos=0)

        def by_id():
            return {json.dumps(r.get("id")): r for r in rpc_replies(alice)}
        want = {'"req-7"', "42", "null", '"q0"'}
        assert wait_for(lambda: want <= set(by_id()) and
                        len([r for r in rpc_replies(alice) if r.get("id") is None]) >= 2,
                        timeout=10), rpc_replies(alice)
        for r in rpc_replies(alice):
            assert r["error"]["code"] == "unavailable", r
            assert set(r) == {"id", "error"} and r["error"]["message"], r
        assert by_id()["42"]["id"] == 42
        # the refusal is the answer: no notice besides it
        assert [n for n in payloads(alice, "/notice")] == []

        # MQTT 5: on the Response Topic (under chat/user/<me>/), with the
        # Correlation Data
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = "chat/user/alice/replies/9"
        props.CorrelationData = b"corr-9"
        got = []
        mqtt5.c.on_message = lambda c, u, m: got.append((m.topic, m.payload, m.properties))
        mqtt5.c.publish("chat/in/alice/rpc", json.dumps({"id": "v5", "method": "unread"}),
                        qos=1, properties=props)
        mine = lambda: [g for g in got if g[0] == "chat/user/alice/replies/9"]
        assert wait_for(mine, timeout=10), "no reply on the Response Topic: %r" % got
        topic, payload, rprops = mine()[0]
        assert json.loads(payload)["id"] == "v5"
        assert json.loads(payload)["error"]["code"] == "unavailable"
        assert getattr(rprops, "CorrelationData", None) == b"corr-9", rprops
    finally:
        alice.close()
        mqtt5.close()
