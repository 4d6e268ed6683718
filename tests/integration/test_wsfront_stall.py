"""A client that stops reading and then goes away must not stall the web
front. libwebsockets 4.1 keeps the unsent tail of a short write and, when
the peer then closes, loops on that socket's close inside one
lws_service() call for ever (lib/plat/unix/unix-service.c: "if something
closed, retry this slot"): the whole front, every user on it, stuck at
100% CPU. Each round: stalled WebSocket clients holding a partial write reset or
half-close while the broker takes their sessions over; /healthz and a
healthy client on the same front must go on."""
import socket
import struct
import time

from mqttutil import Client
from test_wsfront_ws import frame, mqtt_subscribe, ws_mqtt
from wsutil import WsClient, request, web  # noqa: F401  (fixture)


def test_a_stalled_client_that_closes_does_not_stall_the_front(web, tmp_path_factory):
    keys = web.keys
    broker = web.cluster.brokers[0]
    front = web.add_front(tmp_path_factory, broker, "node1", ws_buffer_max=4 * 1024 * 1024)
    healthy = WsClient(front, "steady", keys.mint("steady"), "steady:web")
    assert healthy.connect() == 0
    assert healthy.subscribe("chat/room/quiet", qos=1) < 0x80
    svc = Client(broker.port, "stallsvc", keys.mint("stallsvc", role="service"), "stallsvc")
    assert svc.connect() == 0
    body = b"y" * 4000
    for round_ in range(3):
        stalled = [ws_mqtt(front, "gone%d" % i, keys.mint("gone%d" % i), "gone%d:web" % i,
                           rcvbuf=4096) for i in range(4)]
        for s in stalled:
            s.sendall(frame(mqtt_subscribe("chat/room/torrent")))
        time.sleep(0.3)
        # enough that the kernel buffers are full and the front holds the rest
        for _ in range(400):
            svc.c.publish("chat/room/torrent", body, qos=0)
        time.sleep(0.5)
        # half of them reset, half end their side (FIN) and read no more
        for i, s in enumerate(stalled):
            if i % 2:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            else:
                s.shutdown(socket.SHUT_WR)
        time.sleep(0.05)
        # and the broker ends their sessions at the same time (a takeover,
        # as the benchmark's next run did with the same client ids)
        takers = [Client(broker.port, "gone%d" % i, keys.mint("gone%d" % i), "gone%d:web" % i)
                  for i in range(len(stalled))]
        for t in takers:
            assert t.connect() == 0
        time.sleep(0.3)
        t0 = time.time()
        status, _, _ = request(front, "GET", "/healthz", timeout=5)
        took = time.time() - t0
        assert status in (200, 503) and took < 2.0, \
            "round %d: /healthz took %.1f s after stalled clients left" % (round_, took)
        svc.c.publish("chat/room/quiet", "still here %d" % round_, qos=1)
        for s in stalled:
            s.close()
        for t in takers:
            t.close()
    deadline = time.time() + 5
    while len(healthy.messages) < 3 and time.time() < deadline:
        time.sleep(0.05)
    assert [p.decode() for _, p in healthy.messages] == ["still here %d" % i for i in range(3)]
    svc.close()
    healthy.close()
    assert front.alive()
