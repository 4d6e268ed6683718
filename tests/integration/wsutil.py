"""Fixtures and helpers for the web front's tests: a two-node cluster with a
chat-wsfront in front of each broker, plain-HTTP requests, and MQTT over
WebSocket with Paho."""
import http.client
import json
import os
import sys
import time

import paho.mqtt.client as mqtt
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
from chatharness import HarnessError, WsFront  # noqa: E402
from mqttutil import Client  # noqa: E402

ROOT = os.environ.get("CHAT_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
ARTIFACTS = os.path.join(ROOT, "tests", "artifacts", "wsfront")


class Web:
    """The cluster of conftest plus one web front per node."""

    def __init__(self, cluster, tmp, **settings):
        self.cluster = cluster
        self.keys = cluster.keys
        self.store_url = getattr(cluster, "store_url", None) or \
            "sqlite:%s" % os.path.join(str(tmp.mktemp("webstore")), "chat.db")
        self.fronts = []
        for i, broker in enumerate(cluster.brokers):
            self.add_front(tmp, broker, "node%d" % (i + 1), **settings)

    def add_front(self, tmp, broker, node, **settings):
        # loopback tests open many connections from one address
        opts = {"auth_burst": 1000, "auth_per_min": 1000, "http_max_conns_per_addr": 1000}
        opts.update(settings)
        f = WsFront(tmp.mktemp("wsfront"), broker, self.cluster.redis, self.keys, node,
                    self.store_url, **opts)
        try:
            f.start()
        except HarnessError as e:
            pytest.fail(str(e), pytrace=False)
        self.fronts.append(f)
        return f

    def finish(self):
        for f in self.fronts:
            f.stop()
        for f in self.fronts:
            reports = f.sanitizer_reports()
            assert not reports, "sanitizer reports in the wsfront log:\n" + f.log()[-4000:]


def request(front, method, path, body=None, headers=None, timeout=30):
    """One HTTP request; returns (status, headers dict lower-cased, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", front.port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def register(front, user, password="blue-kettle-42"):
    st, _, body = request(front, "POST", "/api/register",
                          {"username": user, "password": password},
                          {"Content-Type": "application/json"})
    assert st == 201, (st, body)
    return json.loads(body)["token"]


class WsClient(Client):
    """mqttutil.Client over WebSocket through a web front (Paho's websockets
    transport, subprotocol mqtt)."""

    def __init__(self, front, user, token, client_id=None, protocol=mqtt.MQTTv311):
        super().__init__(front.port, user, token, client_id, protocol)
        cid = user if client_id is None else client_id
        self.c = mqtt.Client(client_id=cid, protocol=protocol, transport="websockets",
                             **({"clean_session": True} if protocol == mqtt.MQTTv311 else {}))
        self.c.ws_set_options(path="/mqtt")
        if user is not None:
            self.c.username_pw_set(user, token)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_message = self._on_message
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish


def metric(front, name):
    """The value of one series in /metrics (exact name with labels), or None."""
    st, _, body = request(front, "GET", "/metrics")
    assert st == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def wait_metric(front, name, pred, timeout=10):
    deadline = time.time() + timeout
    v = None
    while time.time() < deadline:
        v = metric(front, name)
        if v is not None and pred(v):
            return v
        time.sleep(0.1)
    return v


@pytest.fixture(scope="module")
def web(cluster, tmp_path_factory):
    w = Web(cluster, tmp_path_factory)
    yield w
    w.finish()
