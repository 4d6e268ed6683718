"""Every request gets an answer the client can match (issue 22): a request
refused for a NUL echoes its id whenever the id itself holds no NUL (null
only when it does), and an answer larger than the broker's packet limit
is refused with a `too_large` error carrying the request's id, never
dropped (room.members of a room with 45,000 members set up directly in
Redis, ~2.6 MB as one answer)."""
import json

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqttutil import V5, Client, payloads, rpc, wait_for
from prodconf import packet_conf

FAST = {"rpc_rate_per_s": 100000, "rpc_rate_burst": 100000}


def connect(cluster, user, protocol=None):
    kw = {"protocol": protocol} if protocol else {}
    c = Client(cluster.brokers[0].port, user, cluster.keys.mint(user), **kw)
    assert c.connect() == 0
    assert c.subscribe("chat/user/%s/#" % user, qos=1) < 0x80
    return c


def test_a_nul_request_gets_its_id_back(make_cluster):
    cluster = make_cluster(**FAST)
    nina = connect(cluster, "nina")
    raw = [  # (request text, the id its reply must carry)
        ('{"id":"z1","method":"room.create","params":{"room":"nulroom\\u0000x"}}', "z1"),
        ('{"id":"z2","method":"history","params":{"conv":"room:a\\u0000"}}', "z2"),
        ('{"id":7,"method":"read","params":{"conv":"room:nulroom\\u0000","seq":1}}', 7),
        ('{"params":{"room":"x\\u0000"},"id":"z4","method":"room.join"}', "z4"),
        ('{"id":"z5","method":"room.join","params":{"room":"raw\x00nul"}}', "z5"),
        ('{"id":"z6\\u0000","method":"rooms.list"}', None),
        ('{"id":"z7\x00","method":"rooms.list"}', None),
        ('{"i\\u0000d":"z8","method":"rooms.list","x":"\\u0000"}', None),
        ('{"id":"C:\\\\u0000","method":"room.join","params":{"room":"\\u0000"}}', "C:\\u0000"),
    ]
    for text, _ in raw:
        nina.publish("chat/in/nina/rpc", text.encode(), qos=1)
    got = wait_for(lambda: (lambda r: r if len(r) >= len(raw) else None)(
        [p for p in payloads(nina, "/rpc")]), timeout=10)
    assert got and len(got) == len(raw), payloads(nina, "/rpc")
    assert all(p["error"]["code"] == "bad_request" and "NUL" in p["error"]["message"]
               for p in got), got
    assert sorted(map(json.dumps, (p["id"] for p in got))) == \
        sorted(map(json.dumps, (want for _, want in raw)))

    # with MQTT 5, on the response topic with the correlation data as well
    v5 = connect(cluster, "vera", protocol=V5)
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = "chat/user/vera/answers"
    props.CorrelationData = b"corr-1"
    v5.c.publish("chat/in/vera/rpc", b'{"id":"v1","method":"x","params":{"a":"\\u0000"}}',
                 qos=1, properties=props)
    got = wait_for(lambda: payloads(v5, "/answers"))
    assert got and got[0]["id"] == "v1" and got[0]["error"]["code"] == "bad_request"
    for c in (nina, v5):
        c.close()


def test_an_answer_over_the_packet_limit_is_an_error_with_its_id(make_cluster):
    cluster = make_cluster(broker_conf=packet_conf(), **FAST)
    olga = connect(cluster, "olga")
    assert "result" in rpc(olga, "olga", "room.create", {"room": "crowd"})
    lua = ("for i = 1, 45000 do\n"
           "  redis.call('SADD', 'chat:room:crowd:members',"
           " string.format('member-with-a-long-name-%08d', i))\n"
           "end\nreturn 1\n")
    assert cluster.redis.call("EVAL", lua, 0) == "1"
    reply = rpc(olga, "olga", "room.members", {"room": "crowd"}, req_id="big-1", timeout=30)
    assert reply["id"] == "big-1" and reply["error"]["code"] == "too_large", reply
    # the bridge goes on answering
    assert rpc(olga, "olga", "rooms.list", {}, req_id="after-1")["result"]["rooms"]
    olga.close()
