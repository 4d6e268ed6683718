"""A publish the broker plugin refuses is never acknowledged ahead of its
refusal (PROTOCOL.md section 5: a post the broker PUBACKs is accepted or
refused with a notice, whatever instance restarts).

An MQTT 3.1.1 PUBACK cannot say no. mosquitto 2.0.11 sends the PUBACK of a
denied publish at once, while a notice the plugin publishes is routed only
at the broker's next loop turn: a broker killed in between left the client
with an acknowledged post that was neither kept nor refused. So for an
MQTT 3.1.1 QoS 1 publish the refusal (the notice, or a request's rpc error)
must reach the sender's connection before its PUBACK. A raw client reads
the broker's byte stream and asserts that order exactly; no timing is
involved: on a broker where the refusal follows the PUBACK, it follows it
every time.

The refusal reaches the sender's own topics and nothing else (the bridge,
subscribed to chat/in/#, gets neither the post nor its refusal); MQTT 5
keeps its PUBACK "not authorized" (0x87) with the notice besides; a QoS 0
post, which has no PUBACK, still gets its notice."""
import json
import struct

from mqttutil import V5, Client, RawClient, payloads, wait_for

BIG = 17 * 1024  # past the 16 KiB publish limit, within max_packet_size


def raw(broker, keys, user, client_id=None):
    c = RawClient(broker.port, user, keys.mint(user), client_id)
    assert c.subscribe("chat/user/%s/#" % user) == 1
    return c


def until_puback(client, mid):
    return client.packets_until(lambda pkt: pkt == ("puback", mid))


def json_publishes(packets, topic):
    return [json.loads(pkt[2]) for pkt in packets if pkt[0] == "publish" and pkt[1] == topic]


def test_a_refused_post_is_noticed_before_its_puback(broker, keys):
    """A broker whose bridge has never come: every post is refused
    (unavailable), and a too large one (too_large) before that; a plain
    text post has no cid, a JSON one its cid."""
    alice = raw(broker, keys, "alice")
    phone = Client(broker.port, "alice", keys.mint("alice"), "alice:phone")
    assert phone.connect() == 0
    assert phone.subscribe("chat/user/alice/notice", qos=1) < 0x80
    try:
        cases = [("chat/in/alice/room/lobby", json.dumps({"body": "hi", "cid": "c-1"}),
                  "unavailable", "c-1"),
                 ("chat/in/alice/dm/bob", "plain text, no cid", "unavailable", None),
                 ("chat/in/alice/room/lobby", json.dumps({"body": "x" * BIG, "cid": "c-big"}),
                  "too_large", "c-big")]
        for topic, payload, code, cid in cases:
            mid = alice.publish(topic, payload, qos=1)
            packets = until_puback(alice, mid)
            notices = json_publishes(packets, "chat/user/alice/notice")
            assert len(notices) == 1, \
                "%s: no notice before the PUBACK; the stream was %r" % (code, packets)
            n = notices[0]
            assert (n["type"], n["code"], n["topic"], n.get("cid")) == \
                ("notice", code, topic, cid), n
            assert all(pkt[3] == 1 for pkt in packets if pkt[0] == "publish"), packets
        # the user's other devices hear it too, as before
        assert wait_for(lambda: [n.get("cid") for n in payloads(phone, "/notice")]
                        == ["c-1", None, "c-big"], timeout=10), payloads(phone, "/notice")
    finally:
        alice.close()
        phone.close()


def test_a_refused_request_is_answered_before_its_puback(broker, keys):
    """Requests get their rpc error with their id (none for a payload that
    is not JSON; a too large request is too_large), never a notice."""
    alice = raw(broker, keys, "alice")
    try:
        cases = [(json.dumps({"id": "r-1", "method": "rooms.list"}), "r-1", "unavailable"),
                 ("not json", None, "unavailable"),
                 (json.dumps({"id": 7, "method": "unread", "pad": "x" * BIG}), 7,
                  "too_large")]
        for payload, req_id, code in cases:
            mid = alice.publish("chat/in/alice/rpc", payload, qos=1)
            packets = until_puback(alice, mid)
            replies = json_publishes(packets, "chat/user/alice/rpc")
            assert len(replies) == 1, \
                "%s: no rpc error before the PUBACK; the stream was %r" % (code, packets)
            assert replies[0]["id"] == req_id and replies[0]["error"]["code"] == code, replies
            assert json_publishes(packets, "chat/user/alice/notice") == [], packets
    finally:
        alice.close()


def test_the_refusal_reaches_only_the_sender(make_broker, keys):
    """With a bridge attached (a service subscribed to $share/bridge/chat/
    in/#, as the bridge does), a too large post is refused; neither it nor
    its refusal reaches the bridge, nor another user, while the next post
    does reach the bridge. A QoS 0 post (no PUBACK) gets its notice too, at
    QoS 1 as ever (a queued notice also reaches a session that is offline)."""
    broker = make_broker(keys.plugin_opts())
    bridge = Client(broker.port, "bridge", keys.mint("bridge", role="service"))
    assert bridge.connect() == 0
    assert bridge.subscribe("$share/bridge/chat/in/#", qos=1) < 0x80
    bob = Client(broker.port, "bob", keys.mint("bob"))
    assert bob.connect() == 0
    assert bob.subscribe("chat/user/bob/#", qos=1) < 0x80
    assert bob.subscribe("chat/user/alice/notice", qos=1) >= 0x80
    alice = raw(broker, keys, "alice")
    try:
        big = json.dumps({"body": "x" * BIG, "cid": "big"})
        mid = alice.publish("chat/in/alice/room/lobby", big, qos=1)
        packets = until_puback(alice, mid)
        assert [n["cid"] for n in json_publishes(packets, "chat/user/alice/notice")] == \
            ["big"], packets
        alice.publish("chat/in/alice/room/lobby", big, qos=0)
        packets = alice.packets_until(lambda pkt: pkt[0] == "publish")
        assert packets[-1][1] == "chat/user/alice/notice" and packets[-1][3] == 1, packets
        assert json.loads(packets[-1][2])["code"] == "too_large"
        mid = alice.publish("chat/in/alice/room/lobby", json.dumps({"body": "ok", "cid": "ok"}))
        packets = until_puback(alice, mid)
        assert json_publishes(packets, "chat/user/alice/notice") == [], packets
        # mosquitto delivers to one subscriber in the order it routed: what
        # the refused posts had sent the bridge would come before this one
        assert wait_for(lambda: any(b"ok" in p for _, p in bridge.messages), timeout=10), \
            "the bridge got no post"
        with bridge.lock:
            got = [(t, json.loads(p)) for t, p in bridge.messages]
        assert got == [("chat/in/alice/room/lobby", {"body": "ok", "cid": "ok"})], got
        with bob.lock:
            assert bob.messages == [], bob.messages
    finally:
        alice.close()
        bridge.close()
        bob.close()


def test_a_qos2_post_hears_its_refusal_before_its_pubcomp(broker, keys):
    """QoS 2 is refused in the ACL check, where there is no message to
    rewrite: an MQTT 3.1.1 client gets its PUBREC at once, and the notice
    at the broker's next loop turn, always before the PUBCOMP that ends the
    exchange (the broker reads the PUBREL only after routing the notice)."""
    alice = raw(broker, keys, "alice")
    try:
        mid = alice.publish("chat/in/alice/room/lobby",
                            json.dumps({"body": "two", "cid": "q2"}), qos=2)
        packets = alice.packets_until(lambda pkt: pkt == ("pubrec", mid))
        alice.send(0x62, struct.pack("!H", mid))
        packets += alice.packets_until(lambda pkt: pkt == ("pubcomp", mid))
        notices = json_publishes(packets, "chat/user/alice/notice")
        assert [(n["code"], n["cid"]) for n in notices] == [("bad_request", "q2")], packets
    finally:
        alice.close()


def test_mqtt5_keeps_not_authorized_with_a_notice(broker, keys):
    """MQTT 5 carries the refusal in the PUBACK itself (0x87): the message
    is denied, not rewritten, and the notice comes as well."""
    alice = Client(broker.port, "alice", keys.mint("alice"), "alice:v5", protocol=V5)
    assert alice.connect() == 0
    assert alice.subscribe("chat/user/alice/#", qos=1) < 0x80
    try:
        info = alice.publish("chat/in/alice/room/lobby",
                             json.dumps({"body": "hi", "cid": "v5"}), qos=1)
        assert info.is_published()
        assert alice.c.ack_reasons.get(info.mid) == 0x87, alice.c.ack_reasons
        assert wait_for(lambda: [n.get("cid") for n in payloads(alice, "/notice")] == ["v5"],
                        timeout=10), payloads(alice, "/notice")
    finally:
        alice.close()
