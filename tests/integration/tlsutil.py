"""TLS helpers for the deploy tests: a local CA made by deploy/gen-certs.sh,
the TLS block of the repository's mosquitto.conf pointed at it, Paho over
TLS (plain MQTT and WebSocket), HTTPS requests that verify against a given
CA, and an NSS database through which Chromium trusts the CA."""
import http.client
import json
import os
import re
import ssl
import subprocess

import paho.mqtt.client as mqtt

from mqttutil import Client

ROOT = os.environ.get("CHAT_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")


def gen_certs(directory, *names):
    """A CA and a server certificate (localhost, 127.0.0.1, names) in
    directory; returns the paths (ca, cert, key)."""
    subprocess.run([os.path.join(ROOT, "deploy", "gen-certs.sh"), str(directory), *names],
                   check=True, capture_output=True, timeout=60)
    d = str(directory)
    return (os.path.join(d, "ca.crt"), os.path.join(d, "server.crt"),
            os.path.join(d, "server.key"))


def conf_tls_block():
    """The TLS lines of the repository's mosquitto.conf, as shipped."""
    with open(os.path.join(ROOT, "mosquitto.conf")) as f:
        text = f.read()
    m = re.search(r"^# --- TLS.*?^# --- end TLS$", text, re.S | re.M)
    assert m, "mosquitto.conf has no TLS block"
    return m.group(0)


def tls_listener_conf(port, cert, key):
    """The shipped TLS block with the port, loopback and the given files, the
    way scripts/run.sh rewrites it."""
    block = conf_tls_block()
    block = re.sub(r"^listener 8883$", "listener %d 127.0.0.1" % port, block, flags=re.M)
    block = re.sub(r"^certfile .*$", "certfile " + cert, block, flags=re.M)
    block = re.sub(r"^keyfile .*$", "keyfile " + key, block, flags=re.M)
    return block


class TlsClient(Client):
    """mqttutil.Client over TLS, verifying the server against ca (and its
    name, localhost). websockets=True speaks MQTT over WSS at /mqtt."""

    def __init__(self, port, user, token, ca, client_id=None, websockets=False,
                 host="localhost"):
        super().__init__(port, user, token, client_id)
        if websockets:
            cid = user if client_id is None else client_id
            self.c = mqtt.Client(client_id=cid, clean_session=True, transport="websockets")
            self.c.ws_set_options(path="/mqtt")
            self.c.username_pw_set(user, token)
            self.c.on_connect = self._on_connect
            self.c.on_disconnect = self._on_disconnect
            self.c.on_message = self._on_message
            self.c.on_subscribe = self._on_subscribe
            self.c.on_publish = self._on_publish
        self.c.tls_set(ca_certs=ca, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.host = host

    def connect(self, timeout=10):
        self.c.connect(self.host, self.port, keepalive=30)
        self.c.loop_start()
        if not self.connected.wait(timeout):
            self.close()
            raise AssertionError("no CONNACK over TLS within %ss" % timeout)
        return self.connack


def https(port, method, path, ca, body=None, headers=None, host="localhost", timeout=30):
    """One HTTPS request verified against ca; returns (status, body bytes)."""
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def register(port, ca, user, password="blue-kettle-42"):
    st, body = https(port, "POST", "/api/register", ca, {"username": user, "password": password})
    assert st == 201, (st, body)
    return json.loads(body)["token"]


def nss_home(home, ca):
    """A HOME whose NSS database trusts ca, for Chromium; returns home."""
    db = os.path.join(str(home), ".pki", "nssdb")
    os.makedirs(db, exist_ok=True)
    subprocess.run(["certutil", "-d", "sql:" + db, "-N", "--empty-password"], check=True,
                   capture_output=True, timeout=30)
    subprocess.run(["certutil", "-d", "sql:" + db, "-A", "-n", "chat-local-ca", "-t", "C,,",
                    "-i", ca], check=True, capture_output=True, timeout=30)
    return str(home)
