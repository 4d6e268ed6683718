"""MQTT over WebSocket at the web front (PROTOCOL.md sections 3 and 7): the
subprotocol and path rules, the same token and client-id rules as TCP (with
Paho's websockets transport, MQTT 3.1.1 and 5), clean closes both ways, and
a client that stops reading is cut off without harming the others."""
import base64
import os
import socket
import struct
import time

import paho.mqtt.client as mqtt
import pytest

from mqttutil import V5, Client, _remaining_length, _utf8, payloads, wait_for
from wsutil import WsClient, metric, register, wait_metric, web  # noqa: F401  (fixture)


# ---- a WebSocket client by hand, to break one rule at a time ----

def handshake(port, protocol="mqtt", path="/mqtt", rcvbuf=None):
    """Opens a WebSocket; returns (socket, status line, headers text)."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
           % (path, key))
    if protocol is not None:
        req += "Sec-WebSocket-Protocol: %s\r\n" % protocol
    s.sendall((req + "\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        try:
            chunk = s.recv(1)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        head += chunk
    text = head.decode(errors="replace")
    return s, text.split("\r\n", 1)[0], text


def frame(payload, opcode=0x2):
    """A masked client frame."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_frame(s):
    """(opcode, payload) of the next server frame."""
    b0, b1 = read_exact(s, 2)
    n = b1 & 0x7f
    if n == 126:
        n = struct.unpack("!H", read_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read_exact(s, 8))[0]
    return b0 & 0x0f, read_exact(s, n)


def mqtt_connect(user, token, client_id):
    var = _utf8(b"MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 60)
    body = var + _utf8(client_id.encode()) + _utf8(user.encode()) + _utf8(token.encode())
    return bytes([0x10]) + _remaining_length(len(body)) + body


def mqtt_subscribe(topic, qos=0):
    body = struct.pack("!H", 1) + _utf8(topic.encode()) + bytes([qos])
    return bytes([0x82]) + _remaining_length(len(body)) + body


def ws_mqtt(front, user, token, client_id, rcvbuf=None):
    """A raw WebSocket MQTT session, CONNACK read; returns the socket."""
    s, status, _ = handshake(front.port, rcvbuf=rcvbuf)
    assert " 101 " in status, status
    s.sendall(frame(mqtt_connect(user, token, client_id)))
    data = b""
    while len(data) < 4:
        op, payload = read_frame(s)
        data += payload
    assert data[:4] == b"\x20\x02\x00\x00", data
    return s


# ---- tests ----

@pytest.mark.parametrize("protocol,path", [
    ("chat", "/mqtt"), ("mqttv3.1", "/mqtt"), (None, "/mqtt"), ("mqtt", "/other"),
    ("mqtt", "/"), ("mqtt", "/api/login")])
def test_wrong_subprotocol_or_path_is_refused(web, protocol, path):
    front = web.fronts[0]
    before = metric(front, 'wsfront_rejects_total{reason="subprotocol"}')
    s, status, head = handshake(front.port, protocol, path)
    s.close()
    assert " 101 " not in status, (protocol, path, head)
    assert front.alive()
    assert metric(front, 'wsfront_rejects_total{reason="subprotocol"}') >= before + 1


def test_right_subprotocol_is_accepted(web):
    s, status, head = handshake(web.fronts[0].port)
    assert " 101 " in status, head
    assert "sec-websocket-protocol: mqtt" in head.lower()
    s.close()


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, V5])
def test_paho_over_websocket_same_rules_as_tcp(web, protocol):
    keys, front = web.keys, web.fronts[0]
    good = WsClient(front, "wsuser", keys.mint("wsuser"), "wsuser:web", protocol)
    assert good.connect() == 0
    assert good.subscribe("chat/user/wsuser/#") < 0x80
    assert good.subscribe("chat/user/someoneelse/#") >= 0x80  # topic rules as on TCP
    good.close()
    refused_codes = {5, 4} if protocol == mqtt.MQTTv311 else {0x86, 0x87}
    before = metric(front, 'wsfront_rejects_total{reason="auth"}')
    for user, token, cid in (("wsuser", "not-a-token", "wsuser"),
                             ("wsuser", keys.mint("other"), "wsuser"),
                             ("wsuser", keys.mint("wsuser"), "thief"),
                             ("wsuser", keys.mint("wsuser", ttl="1s") if False else
                              keys.mint("wsuser").rsplit(".", 1)[0] + ".AAAA", "wsuser")):
        bad = WsClient(front, user, token, cid, protocol)
        try:
            code = bad.connect()
        except AssertionError:
            code = None  # the socket closed before the CONNACK was read
        finally:
            bad.close()
        assert code is None or code in refused_codes, (token[:20], cid, code)
    assert wait_metric(front, 'wsfront_rejects_total{reason="auth"}', lambda v: v >= before + 3)
    assert front.alive()


def test_browser_token_from_register_works_over_websocket(web):
    front = web.fronts[1]
    token = register(front, "wsreg")
    c = WsClient(front, "wsreg", token, "wsreg:tab1")
    assert c.connect() == 0
    c.close()


def test_message_round_trip_and_counters(web):
    keys, front = web.keys, web.fronts[0]
    before_in = metric(front, "wsfront_mqtt_messages_in_total")
    before_out = metric(front, "wsfront_mqtt_messages_out_total")
    a = WsClient(front, "lena", keys.mint("lena"), "lena:web")
    b = Client(web.cluster.brokers[1].port, "mike", keys.mint("mike"), "mike:tcp")
    assert a.connect() == 0 and b.connect() == 0
    assert a.subscribe("chat/user/lena/#", qos=1) < 0x80
    assert b.subscribe("chat/user/mike/#", qos=1) < 0x80
    a.publish("chat/in/lena/dm/mike", "over websocket", qos=1)
    got = wait_for(lambda: payloads(b, "/inbox"), timeout=10)
    assert got and got[0]["body"] == "over websocket" and got[0]["from"] == "lena"
    b.publish("chat/in/mike/dm/lena", "back over tcp", qos=1)
    got = wait_for(lambda: [m for m in payloads(a, "/inbox") if m["from"] == "mike"], timeout=10)
    assert got and got[0]["body"] == "back over tcp"
    assert metric(front, "wsfront_mqtt_messages_in_total") >= before_in + 1
    assert metric(front, "wsfront_mqtt_messages_out_total") >= before_out + 2
    a.close()
    b.close()


def test_clean_close_both_ways(web):
    keys, front = web.keys, web.fronts[0]
    open_before = metric(front, "wsfront_ws_connections")
    # the browser closes: DISCONNECT, then a close frame, answered by a close frame
    s = ws_mqtt(front, "nora", keys.mint("nora"), "nora:a")
    s.sendall(frame(b"\xe0\x00"))
    s.sendall(frame(struct.pack("!H", 1000), opcode=0x8))
    op, payload = read_frame(s)
    assert op == 0x8, (op, payload)
    s.close()
    assert wait_metric(front, "wsfront_ws_connections", lambda v: v == open_before) == open_before
    # the broker ends the session (the same client id connects elsewhere):
    # the browser gets a normal close frame, after what was queued for it
    s = ws_mqtt(front, "nora", keys.mint("nora"), "nora:b")
    other = Client(web.cluster.brokers[0].port, "nora", keys.mint("nora"), "nora:b")
    assert other.connect() == 0
    op, payload = read_frame(s)
    while op != 0x8:
        op, payload = read_frame(s)
    assert struct.unpack("!H", payload[:2])[0] == 1000, payload
    s.close()
    other.close()
    assert wait_metric(front, "wsfront_ws_connections", lambda v: v == open_before) == open_before


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def test_a_client_that_stops_reading_is_cut_off(web, tmp_path_factory):
    keys = web.keys
    broker = web.cluster.brokers[0]
    front = web.add_front(tmp_path_factory, broker, "node1", ws_buffer_max=262144)
    # the stalled one: subscribes, then never reads again
    stalled = ws_mqtt(front, "slow", keys.mint("slow"), "slow:web", rcvbuf=4096)
    stalled.sendall(frame(mqtt_subscribe("chat/room/flood")))
    time.sleep(0.3)
    # a healthy browser on the same front keeps getting its room meanwhile
    healthy = WsClient(front, "quick", keys.mint("quick"), "quick:web")
    assert healthy.connect() == 0
    assert healthy.subscribe("chat/room/calm", qos=1) < 0x80
    svc = Client(broker.port, "floodsvc", keys.mint("floodsvc", role="service"), "floodsvc")
    assert svc.connect() == 0
    rss_before = rss_kib(front.proc.pid)
    body = b"x" * 4000
    sent = calm = 0
    for batch in range(60):
        for _ in range(100):
            svc.c.publish("chat/room/flood", body, qos=0)
            sent += 1
        svc.c.publish("chat/room/calm", "calm %d" % batch, qos=1)
        calm += 1
        time.sleep(0.05)
        if metric(front, 'wsfront_rejects_total{reason="slow_consumer"}'):
            break
    assert metric(front, 'wsfront_rejects_total{reason="slow_consumer"}') == 1, \
        "sent %d x 4 KB and the stalled client was not cut off" % sent
    for i in range(3):
        svc.c.publish("chat/room/calm", "after %d" % i, qos=1)
    got = wait_for(lambda: len(healthy.messages) >= calm + 3 and healthy.messages, timeout=20)
    assert [p.decode() for _, p in got] == \
        ["calm %d" % i for i in range(calm)] + ["after %d" % i for i in range(3)]
    assert not healthy.disconnected.is_set()
    # the stalled socket is closed by the front (after what the kernel held)
    stalled.settimeout(10)
    closed = False
    try:
        while True:
            if not stalled.recv(65536):
                closed = True
                break
    except (ConnectionResetError, socket.timeout):
        closed = True
    assert closed
    stalled.close()
    # the front held at most about one buffer for it
    assert rss_kib(front.proc.pid) - rss_before < 32 * 1024
    svc.close()
    healthy.close()
    assert front.alive()
