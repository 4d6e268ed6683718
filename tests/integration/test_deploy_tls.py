"""TLS outside Docker: the broker's 8883 listener from the shipped
mosquitto.conf block and the web front's HTTPS/WSS, with a local CA made
by deploy/gen-certs.sh (what `make run` uses). Stock clients connect with
the CA (mosquitto_pub/sub --cafile, Paho, Chromium over WSS); a client that
trusts another CA is refused; plain listeners are on loopback only; the
settings that cannot be honoured (rediss://, half a TLS pair) are refused
at start naming the key."""
import json
import os
import re
import subprocess
import time

import pytest

from chatharness import Bridge, HarnessError, Mosquitto, WsFront, free_port, find_binary
from mqttutil import Client, payloads, rpc, wait_for
from tlsutil import (ROOT, TlsClient, conf_tls_block, gen_certs, https, nss_home, register,
                     tls_listener_conf)

CHROMIUM = "/usr/bin/chromium"
TLS_MJS = os.path.join(ROOT, "wsfront", "app", "tests", "tls.mjs")


class TlsNode:
    def __init__(self, tmp, keys, redis):
        self.ca, self.cert, self.key = gen_certs(tmp.mktemp("pki"))
        self.wrong_ca = gen_certs(tmp.mktemp("otherpki"))[0]
        self.tls_port = free_port()
        self.started = []
        try:
            self.broker = self._add(Mosquitto(tmp.mktemp("broker"), keys.plugin_opts(),
                                              tls_listener_conf(self.tls_port, self.cert,
                                                                self.key)))
            store = "sqlite:%s" % os.path.join(str(tmp.mktemp("store")), "chat.db")
            self.bridge = self._add(Bridge(tmp.mktemp("bridge"), self.broker, redis, keys,
                                           "node1", store_url=store))
            self.https_port = free_port()
            self.front = self._add(WsFront(tmp.mktemp("wsfront"), self.broker, redis, keys,
                                           "node1", store, tls_cert_file=self.cert,
                                           tls_key_file=self.key, https_host="127.0.0.1",
                                           https_port=self.https_port, auth_burst=1000,
                                           auth_per_min=1000))
        except BaseException:
            self.finish()
            raise

    def _add(self, server):
        self.started.append(server)
        try:
            return server.start()
        except HarnessError as e:
            pytest.fail(str(e), pytrace=False)

    def finish(self):
        for s in reversed(self.started):
            s.stop()
        for s in self.started:
            reports = s.sanitizer_reports()
            assert not reports, "sanitizer reports in the %s log:\n%s" % (s.name, s.log()[-4000:])


@pytest.fixture(scope="module")
def node(tmp_path_factory, keys, redis):
    n = TlsNode(tmp_path_factory, keys, redis)
    yield n
    n.finish()


def mosq(tool, node, ca, *args, timeout=30):
    return subprocess.run([find_binary(tool), "-h", "localhost", "-p", str(node.tls_port),
                           "--cafile", ca, *args], capture_output=True, text=True,
                          timeout=timeout)


def create_room(node, keys, user, room):
    c = TlsClient(node.tls_port, user, keys.mint(user), node.ca, client_id=user + ":setup")
    assert c.connect() == 0
    try:
        assert c.subscribe("chat/user/%s/#" % user, 1) < 0x80
        reply = rpc(c, user, "room.create", {"room": room, "private": False}, timeout=10)
        assert "result" in reply or reply["error"]["code"] == "conflict", reply
    finally:
        c.close()


def test_mosquitto_sub_and_pub_with_cafile_over_8883(node, keys):
    create_room(node, keys, "alice", "tlsroom")
    sub = subprocess.Popen([find_binary("mosquitto_sub"), "-h", "localhost", "-p",
                            str(node.tls_port), "--cafile", node.ca, "-u", "bob", "-P",
                            keys.mint("bob"), "-i", "bob:cli", "-t", "chat/room/tlsroom",
                            "-C", "1", "-W", "30"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # the subscription is in place before the post
        pub = mosq("mosquitto_pub", node, node.ca, "-u", "alice", "-P", keys.mint("alice"),
                   "-i", "alice:cli", "-q", "1", "-t", "chat/in/alice/room/tlsroom",
                   "-m", "over tls")
        assert pub.returncode == 0, pub.stderr
        out, err = sub.communicate(timeout=40)
    finally:
        if sub.poll() is None:
            sub.kill()
    assert sub.returncode == 0, "mosquitto_sub over TLS got nothing: %s" % err
    msg = json.loads(out.strip().splitlines()[-1])
    assert (msg["from"], msg["body"], msg["conv"]) == ("alice", "over tls", "room:tlsroom")


def test_paho_over_tls_posts_and_reads_history(node, keys):
    create_room(node, keys, "carol", "pahotls")
    c = TlsClient(node.tls_port, "carol", keys.mint("carol"), node.ca)
    assert c.connect() == 0
    try:
        assert c.subscribe("chat/user/carol/#", 1) < 0x80
        assert c.subscribe("chat/room/pahotls", 1) < 0x80
        for i in range(3):
            c.publish("chat/in/carol/room/pahotls", "tls %d" % i, qos=1)
        assert wait_for(lambda: len(payloads(c, "/room/pahotls")) >= 3, 15)
        hist = rpc(c, "carol", "history", {"conv": "room:pahotls"}, timeout=10)
        assert [m["body"] for m in hist["result"]["messages"]] == ["tls 0", "tls 1", "tls 2"]
    finally:
        c.close()


def test_a_client_that_trusts_another_ca_is_refused(node, keys):
    # mosquitto_pub: the handshake fails before any MQTT
    pub = mosq("mosquitto_pub", node, node.wrong_ca, "-u", "alice", "-P", keys.mint("alice"),
               "-t", "chat/in/alice/room/tlsroom", "-m", "x")
    assert pub.returncode != 0
    assert re.search(r"certificate verify failed|unable to get|Protocol error|TLS", pub.stderr,
                     re.I), pub.stderr
    # Paho, MQTT and WSS
    for port, ws in ((node.tls_port, False), (node.https_port, True)):
        c = TlsClient(port, "alice", keys.mint("alice"), node.wrong_ca, websockets=ws)
        with pytest.raises(Exception) as e:
            c.c.connect("localhost", port)
        assert "certificate verify failed" in str(e.value), e.value
    # HTTPS
    with pytest.raises(Exception) as e:
        https(node.https_port, "GET", "/healthz", node.wrong_ca)
    assert "certificate verify failed" in str(e.value), e.value
    # and a plain MQTT CONNECT to the TLS port gets no CONNACK
    raw = Client(node.tls_port, "alice", keys.mint("alice"))
    with pytest.raises(Exception):
        raw.connect(timeout=3)
        assert raw.connack is None


def test_https_and_wss_serve_the_api_and_mqtt(node, keys):
    st, body = https(node.https_port, "GET", "/healthz", node.ca)
    assert st == 200, body
    token = register(node.https_port, node.ca, "dave")
    st, body = https(node.https_port, "GET", "/api/history?conv=room:tlsroom", node.ca,
                     headers={"Authorization": "Bearer " + token})
    assert st == 200, body
    ws = TlsClient(node.https_port, "dave", token, node.ca, websockets=True)
    assert ws.connect() == 0
    try:
        assert ws.subscribe("chat/room/tlsroom", 1) < 0x80
        ws.publish("chat/in/dave/room/tlsroom", "from wss", qos=1)
        assert wait_for(lambda: any(m["body"] == "from wss"
                                    for m in payloads(ws, "/room/tlsroom")), 15)
    finally:
        ws.close()


def test_chromium_uses_the_app_over_https_and_wss(node, keys, tmp_path):
    assert os.path.exists(CHROMIUM), "Debian's chromium is not installed"
    env = dict(os.environ, HOME=nss_home(tmp_path / "home", node.ca), CHROMIUM=CHROMIUM,
               URL="https://localhost:%d/" % node.https_port, USER="erin", ROOM="webtls",
               BODY="hello over wss")
    watcher = TlsClient(node.tls_port, "frank", keys.mint("frank"), node.ca)
    assert watcher.connect() == 0
    try:
        r = subprocess.run(["node", TLS_MJS, "good"], env=env, capture_output=True, text=True,
                           timeout=180, cwd=os.path.dirname(TLS_MJS))
        assert r.returncode == 0, "browser over TLS failed:\n%s\n%s" % (r.stdout, r.stderr[-4000:])
        res = json.loads(r.stdout.strip().splitlines()[-1])
        assert res["protocol"] == "https:"
        assert res["sockets"] and all(u.startswith("wss://localhost:%d/mqtt" % node.https_port)
                                      for u in res["sockets"]), res
        # the browser's post reached an MQTT client on the TLS listener
        assert watcher.subscribe("chat/user/frank/#", 1) < 0x80
        hist = rpc(watcher, "frank", "history", {"conv": "room:webtls"}, timeout=10)
        assert [m["body"] for m in hist["result"]["messages"]] == ["hello over wss"]
    finally:
        watcher.close()
    # a browser that does not trust the CA refuses the page
    env["HOME"] = str(tmp_path / "untrusting")
    os.makedirs(env["HOME"], exist_ok=True)
    r = subprocess.run(["node", TLS_MJS, "refuse"], env=env, capture_output=True, text=True,
                       timeout=120, cwd=os.path.dirname(TLS_MJS))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ERR_CERT_AUTHORITY_INVALID" in (json.loads(r.stdout.strip().splitlines()[-1])["error"]
                                            or ""), r.stdout


def listening(port):
    """The addresses a local TCP port listens on, from ss."""
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True,
                         text=True, check=True).stdout
    return sorted({line.split()[3].rsplit(":", 1)[0] for line in out.splitlines()})


def test_plain_listeners_are_on_loopback_by_default(node, tmp_path, keys, redis):
    # the shipped broker config: every listener without a certificate is
    # bound to 127.0.0.1; the TLS one is the only one facing the network
    with open(os.path.join(ROOT, "mosquitto.conf")) as f:
        text = f.read()
    tls = conf_tls_block()
    plain = [l for l in text.replace(tls, "").splitlines() if l.startswith("listener ")]
    assert plain and all(l.split()[2:] == ["127.0.0.1"] for l in plain), plain
    assert re.search(r"^listener 8883$", tls, re.M) and "certfile" in tls
    # the web front with no address settings: plain HTTP on loopback only
    front = WsFront(tmp_path / "defaults", node.broker, redis, keys, "node9",
                    "sqlite:%s" % (tmp_path / "d.db"))
    front.start()
    try:
        assert listening(front.port) == ["127.0.0.1"]
    finally:
        front.stop()
    assert listening(node.broker.port) == ["127.0.0.1"]
    assert listening(node.tls_port) == ["127.0.0.1"]  # the test's rewrite, as make run's


def test_settings_that_cannot_be_honoured_are_refused_at_start(node, tmp_path, keys):
    bridge = os.path.join(os.environ.get("CHAT_BUILD_DIR", os.path.join(ROOT, "build")),
                          "bridge", "chat-bridge")
    front = os.path.join(os.path.dirname(os.path.dirname(bridge)), "wsfront", "chat-wsfront")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    env.update(CHAT_JWT_KEY_FILE=keys.secret_file, CHAT_REDIS_HOST="rediss://127.0.0.1:6380")
    r = subprocess.run([bridge], env=env, capture_output=True, text=True, timeout=20)
    assert r.returncode == 1
    assert "redis_host" in r.stderr and "rediss://" in r.stderr and "sidecar" in r.stderr, r.stderr
    env.pop("CHAT_REDIS_HOST")
    env.update(CHAT_TLS_CERT_FILE=node.cert, CHAT_HTTP_PORT=str(free_port()),
               CHAT_STORE_URL="sqlite:%s" % (tmp_path / "x.db"))
    r = subprocess.run([front], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "tls_key_file" in r.stderr + r.stdout, r.stderr + r.stdout


def test_firmware_device_posts_over_tls_and_refuses_another_ca(node, keys):
    from fwdevice import Device
    create_room(node, keys, "gina", "fwtls")
    watcher = TlsClient(node.tls_port, "gina", keys.mint("gina"), node.ca, client_id="gina:w")
    assert watcher.connect() == 0
    dev = Device(node.tls_port, "sensor9", keys.mint("sensor9"), room="fwtls",
                 interval_ms=150, posts=2, keepalive=5, cafile=node.ca)
    try:
        assert watcher.subscribe("chat/room/fwtls", 1) < 0x80
        dev.wait_line("connected", timeout=15)
        got = wait_for(lambda: len(payloads(watcher, "/room/fwtls")) >= 2 and
                       payloads(watcher, "/room/fwtls"), 15)
        assert got and [m["from"] for m in got] == ["sensor9", "sensor9"], \
            payloads(watcher, "/room/fwtls")
        dev.wait_line(lambda l: l.startswith("msg conv=room:fwtls seq=2 from=sensor9"))
    finally:
        dev.stop()
        watcher.close()
    # a device whose CA did not sign the broker's certificate never connects
    bad = Device(node.tls_port, "sensor9", keys.mint("sensor9"), room="fwtls",
                 keepalive=5, cafile=node.wrong_ca, backoff_min=100, backoff_max=200)
    try:
        bad.wait_line("disconnected", timeout=15)
        time.sleep(1.0)
        assert bad.count("connected") == 0, bad.snapshot()
    finally:
        bad.stop()
