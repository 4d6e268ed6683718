"""The compose stack as users run it, on this machine: the image built from
the Dockerfile on a local debootstrap base (no registry is reachable), the
real docker-compose.yml with deploy/compose.host.yml (host networking on
free loopback ports, FerretDB for MongoDB). Through the load balancer only:
sign-up over HTTPS, a room message from a TLS MQTT client to a WSS client
on the other node, history, /healthz; then one node's container is killed
and its clients reconnect through the balancer to the other node and catch
up by seq with no gap. dockerd is started when it is not running (and
stopped again); if it cannot start, the test fails saying why."""
import json
import os
import random
import shutil
import socket
import ssl
import subprocess
import time

import pytest
import yaml

from chatharness import FERRETDB_DIRS, HarnessError, find_binary, free_ports
from mqttutil import payloads, rpc, wait_for
from tlsutil import ROOT, TlsClient, https, register

ARTIFACTS = os.path.join(ROOT, "tests", "artifacts", "deploy")
BASE_IMAGE = "chat-base:bookworm"
NODE_IMAGE = "chatbroker-node:latest"
PORT_VARS = ["REDIS_PORT", "MONGO_PORT", "LB_HTTPS_PORT", "LB_MQTTS_PORT"] + [
    "NODE%d_%s_PORT" % (n, k) for n in (1, 2) for k in ("MQTT", "MQTTS", "HTTP", "HTTPS")]


def run(cmd, timeout, env=None, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    if check and r.returncode != 0:
        pytest.fail("%s failed (%d):\n%s\n%s" % (" ".join(cmd), r.returncode, r.stdout[-3000:],
                                                 r.stderr[-3000:]), pytrace=False)
    return r


def docker_answers():
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


class Dockerd:
    """The running daemon, or one started here with host networking only."""

    def __init__(self, tmp):
        self.proc = None
        if shutil.which("docker") is None or shutil.which("dockerd") is None:
            pytest.fail("docker is not installed (scripts/install-deps.sh --test)", pytrace=False)
        if docker_answers():
            return
        log = os.path.join(str(tmp), "dockerd.log")
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                ["dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false",
                 "--data-root", "/var/lib/docker", "--pidfile", os.path.join(str(tmp), "d.pid")],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline and self.proc.poll() is None and not docker_answers():
            time.sleep(0.5)
        if not docker_answers():
            self.stop()
            with open(log) as f:
                pytest.fail("dockerd cannot start here, so the compose stack cannot be "
                            "tested:\n" + f.read()[-3000:], pytrace=False)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Stack:
    def __init__(self, tmp):
        self.project = "chatdeploy%d" % random.randrange(10**6)
        secrets = str(tmp / "secrets")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
        # a block below the ephemeral range: no outgoing connection of
        # another process can take one of them before the servers bind it
        base = free_ports(len(PORT_VARS))
        self.ports = {k: base + i for i, k in enumerate(PORT_VARS)}
        self.env.update({k: str(v) for k, v in self.ports.items()})
        try:
            ferret = find_binary("ferretdb", FERRETDB_DIRS)
        except HarnessError as e:
            pytest.fail(str(e), pytrace=False)
        self.env.update(CHAT_BASE=BASE_IMAGE, FERRETDB_BIN=os.path.realpath(ferret),
                        CHAT_SECRETS_DIR=secrets)
        self.ca = os.path.join(secrets, "ca.crt")
        self.compose = ["docker-compose", "-p", self.project, "-f", "docker-compose.yml",
                        "-f", "deploy/compose.host.yml"]
        self.up = False

    def dc(self, *args, timeout=300, check=True):
        return run(self.compose + list(args), timeout, self.env, check)

    def container(self, service):
        return "%s_%s_1" % (self.project, service)

    def health(self, service):
        r = run(["docker", "inspect", "-f", "{{.State.Health.Status}}", self.container(service)],
                30, check=False)
        return r.stdout.strip()

    def start(self):
        run([os.path.join(ROOT, "deploy", "make-base.sh"), BASE_IMAGE], 600)
        run([os.path.join(ROOT, "deploy", "init-secrets.sh")], 60, self.env)
        self.dc("build", timeout=1200)
        t0 = time.time()
        self.up = True
        r = self.dc("up", "-d", timeout=300, check=False)
        if r.returncode != 0:
            pytest.fail("docker-compose up failed:\n%s\n%s" % (r.stderr[-3000:], self.logs()),
                        pytrace=False)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.health("chat") == "healthy" and self.health("chat2") == "healthy":
                break
            time.sleep(0.2)
        else:
            pytest.fail("the nodes did not become healthy:\n" + self.logs(), pytrace=False)
        self.up_to_healthy = time.time() - t0
        if not wait_for(lambda: self.lb_health() == 200, 30, 0.2):
            pytest.fail("/healthz through the balancer is not 200:\n" + self.logs(),
                        pytrace=False)
        self.up_to_lb = time.time() - t0
        size = run(["docker", "image", "inspect", "-f", "{{.Size}}", NODE_IMAGE], 30).stdout
        self.image_mb = int(size) / 1e6

    def lb_health(self):
        try:
            return https(self.ports["LB_HTTPS_PORT"], "GET", "/healthz", self.ca, timeout=5)[0]
        except OSError:
            return None

    def logs(self):
        text = self.dc("logs", "--no-color", "--tail", "40", timeout=60, check=False).stdout
        for service in ("redis", "mongo", "chat", "chat2"):
            r = run(["docker", "inspect", "-f", "{{json .State}}", self.container(service)], 30,
                    check=False)
            text += "\n%s: %s" % (service, r.stdout.strip()[-1500:])
        return text[-12000:]

    def stop(self):
        if self.up:
            self.dc("down", "-v", "--remove-orphans", "-t", "5", timeout=180, check=False)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    daemon = Dockerd(tmp_path_factory.mktemp("dockerd"))
    s = Stack(tmp_path_factory.mktemp("compose"))
    try:
        s.start()
        yield s
    finally:
        try:
            s.stop()
        finally:
            daemon.stop()


def held_by_nodes(stack, kind):
    """How many connections from the balancer each node's kind (MQTTS,
    HTTPS) port holds now."""
    held = {}
    for n in (1, 2):
        port = stack.ports["NODE%d_%s_PORT" % (n, kind)]
        out = subprocess.run(["ss", "-Htn", "state", "established", "( dport = :%d )" % port],
                             capture_output=True, text=True).stdout
        held[n] = len(out.splitlines())
    return held


def node_of_mqtt(stack):
    """Which node holds MQTT-over-TLS connections from the balancer now."""
    return held_by_nodes(stack, "MQTTS")


def ws_count(stack, n):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", stack.ports["NODE%d_HTTP_PORT" % n], timeout=5)
    try:
        conn.request("GET", "/metrics")
        for line in conn.getresponse().read().decode().splitlines():
            if line.startswith("wsfront_ws_connections "):
                return int(float(line.split()[1]))
    finally:
        conn.close()
    return 0


def connect_on(stack, make, where, node, tries=8):
    """Connects clients from make() through the balancer until one lands on
    node (as where() tells); returns it, closing the others."""
    for _ in range(tries):
        before = where(node)
        c = make()
        assert c.connect() == 0
        if wait_for(lambda: where(node) > before, 2):
            return c
        c.close()
    raise AssertionError("the balancer never sent a client to node%d" % node)


def test_both_nodes_get_the_settings_of_the_users_file(tmp_path):
    """chat2 exists only in the override, so it gets none of the environment
    docker-compose.yml gives chat: each setting must be repeated (as a
    missing redis_password_file once stopped node2 at start). Runs before
    the stack is built, so a gap fails in seconds, naming the key."""
    s = Stack(tmp_path)
    users = yaml.safe_load(run(["docker-compose", "-f", "docker-compose.yml", "config"], 60,
                               s.env).stdout)["services"]["chat"]["environment"]
    merged = yaml.safe_load(s.dc("config", timeout=60).stdout)["services"]
    per_node = {"CHAT_NODE_NAME", "CHAT_MQTT_PORT", "CHAT_HTTP_PORT", "CHAT_HTTPS_PORT",
                "MQTTS_PORT"}
    env1, env2 = merged["chat"]["environment"], merged["chat2"]["environment"]
    assert {k: v for k, v in env1.items() if k not in per_node} == \
        {k: v for k, v in env2.items() if k not in per_node}
    # the override changes where things are, not which settings are given
    missing = sorted(set(users) - set(env2))
    assert not missing, "chat2 lacks settings of docker-compose.yml: %s" % missing
    for key in ("CHAT_REDIS_PASSWORD_FILE", "CHAT_HTTP_MAX_CONNS_PER_ADDR", "CHAT_AUTH_BURST",
                "CHAT_AUTH_PER_MIN", "CHAT_CONN_PER_ADDRESS"):
        assert str(env2[key]) == str(users[key]), key


def test_docker_compose_config_validates_both_files(stack):
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    r = run(["docker-compose", "-f", "docker-compose.yml", "config", "-q"], 60, base)
    assert r.returncode == 0
    r = stack.dc("config", "-q", timeout=60)
    assert r.returncode == 0
    # the users' file: a bridge network (the default) and the official images
    cfg = run(["docker-compose", "-f", "docker-compose.yml", "config"], 60, base).stdout
    assert "image: mongo:" in cfg and "network_mode" not in cfg and "--replSet" in cfg


def test_image_runs_unprivileged_with_a_health_check_and_loopback_plain_ports(stack):
    cfg = json.loads(run(["docker", "image", "inspect", "-f", "{{json .Config}}", NODE_IMAGE],
                         30).stdout)
    assert cfg["User"] == "chat", cfg["User"]
    assert cfg["Healthcheck"]["Test"][-1].endswith("healthcheck.sh"), cfg["Healthcheck"]
    top = run(["docker", "top", stack.container("chat"), "-o", "pid,uid,comm"], 30).stdout
    procs = [l.split() for l in top.splitlines()[1:]]
    assert {p[2] for p in procs} >= {"mosquitto", "chat-bridge", "chat-wsfront"}, top
    assert all(p[1] == "10001" for p in procs), top
    # the entrypoint keeps the plain listeners of mosquitto.conf on loopback
    for n in (1, 2):
        for kind in ("MQTT", "HTTP"):
            port = stack.ports["NODE%d_%s_PORT" % (n, kind)]
            out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True,
                                 text=True).stdout
            assert [l.split()[3] for l in out.splitlines()] == ["127.0.0.1:%d" % port], out


def open_from(source, port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    sock.setblocking(False)
    return sock


def is_open(sock):
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def test_the_balancer_caps_connections_per_client_and_the_nodes_take_all(stack):
    """Every connection reaches a node from the balancer's address: three
    clients' 64 each (about 96 a node, over the nodes' own per-address cap
    of 64) all stay open, and a 65th from one client is refused there."""
    port = stack.ports["LB_HTTPS_PORT"]

    def both_in_rotation():
        pair = [open_from("127.0.0.5", port) for _ in range(2)]
        try:
            return wait_for(lambda: min(held_by_nodes(stack, "HTTPS").values()) > 0, 1, 0.05)
        finally:
            for sk in pair:
                sk.close()
    # /healthz through the balancer answers once one node is up there
    assert wait_for(both_in_rotation, 30, 0.5), "the balancer never used both nodes"
    socks = []
    try:
        for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            socks += [open_from(source, port) for _ in range(64)]
        extra = open_from("127.0.0.2", port)
        socks.append(extra)
        assert wait_for(lambda: not is_open(extra), 5), "a 65th connection of one client stayed"
        time.sleep(1.5)
        closed = sum(not is_open(sk) for sk in socks[:-1])
        assert closed == 0, "%d of 192 connections were closed" % closed
        held = held_by_nodes(stack, "HTTPS")
        assert min(held.values()) > 64, held
    finally:
        for sk in socks:
            sk.close()


def test_two_nodes_behind_the_balancer_and_failover_without_gap(stack):
    lb_https, lb_mqtts = stack.ports["LB_HTTPS_PORT"], stack.ports["LB_MQTTS_PORT"]
    assert stack.lb_health() == 200
    alice = register(lb_https, stack.ca, "alice")
    bob = register(lb_https, stack.ca, "bob")
    carol = register(lb_https, stack.ca, "carol")

    # alice on MQTT over TLS; bob (WSS) and carol (MQTT/TLS) on the other node
    a = TlsClient(lb_mqtts, "alice", alice, stack.ca, client_id="alice:dev")
    assert a.connect() == 0
    held = node_of_mqtt(stack)
    node_a = max(held, key=held.get)
    node_b = 3 - node_a
    b = connect_on(stack, lambda: TlsClient(lb_https, "bob", bob, stack.ca, client_id="bob:web",
                                            websockets=True),
                   lambda n: ws_count(stack, n), node_b)
    c = connect_on(stack, lambda: TlsClient(lb_mqtts, "carol", carol, stack.ca,
                                            client_id="carol:dev"),
                   lambda n: node_of_mqtt(stack)[n], node_b)
    clients = [a, b, c]
    try:
        for cl, user in ((a, "alice"), (b, "bob"), (c, "carol")):
            assert cl.subscribe("chat/user/%s/#" % user, 1) < 0x80
        reply = rpc(a, "alice", "room.create", {"room": "deploy", "private": False}, timeout=15)
        assert "result" in reply, reply
        for cl in (b, c):
            assert cl.subscribe("chat/room/deploy", 1) < 0x80
        for i in range(1, 4):
            a.publish("chat/in/alice/room/deploy", "m%d" % i, qos=1)
        for cl in (b, c):
            assert wait_for(lambda: len(payloads(cl, "/room/deploy")) >= 3, 20), \
                "a client on node%d got %s" % (node_b, payloads(cl, "/room/deploy"))
        assert [m["seq"] for m in payloads(b, "/room/deploy")] == [1, 2, 3]
        st, body = https(lb_https, "GET", "/api/history?conv=room:deploy", stack.ca,
                         headers={"Authorization": "Bearer " + bob})
        assert st == 200, body
        assert [m["body"] for m in json.loads(body)["messages"]] == ["m1", "m2", "m3"]

        # node B dies; alice goes on posting on node A
        run(["docker", "kill", stack.container("chat" if node_b == 1 else "chat2")], 60)
        for cl in (b, c):
            assert cl.disconnected.wait(20), "a client of the killed node stayed connected"
        for i in range(4, 9):
            info = a.publish("chat/in/alice/room/deploy", "m%d" % i, qos=1)
            assert info.is_published()

        # bob and carol reconnect through the balancer, land on node A,
        # and catch up by seq
        for old, user, token, ws, cid in ((b, "bob", bob, True, "bob:web"),
                                          (c, "carol", carol, False, "carol:dev")):
            old.close()
            port = lb_https if ws else lb_mqtts
            deadline = time.time() + 60
            new = None
            while time.time() < deadline:
                new = TlsClient(port, user, token, stack.ca, client_id=cid, websockets=ws)
                try:
                    if new.connect(timeout=5) == 0:
                        break
                except (OSError, AssertionError):
                    pass
                new.close()
                new = None
                time.sleep(0.5)
            assert new is not None, "%s could not reconnect through the balancer" % user
            clients.append(new)
            assert new.subscribe("chat/user/%s/#" % user, 1) < 0x80
            assert new.subscribe("chat/room/deploy", 1) < 0x80
            seen = [m["seq"] for m in payloads(old, "/room/deploy")]
            hist = rpc(new, user, "history", {"conv": "room:deploy", "after": max(seen)},
                       timeout=15)
            got = seen + [m["seq"] for m in hist["result"]["messages"]]
            assert got == list(range(1, 9)), "%s has a gap or duplicates: %s" % (user, got)
        assert ws_count(stack, node_a) >= 1 and node_of_mqtt(stack)[node_a] >= 2
        # live again: the next post reaches both with the next seq
        a.publish("chat/in/alice/room/deploy", "m9", qos=1)
        for cl in clients[3:]:
            assert wait_for(lambda: any(m["seq"] == 9 for m in payloads(cl, "/room/deploy")), 20)
        assert stack.lb_health() == 200
    finally:
        for cl in clients:
            cl.close()
    figures = {"image_mb": round(stack.image_mb, 1),
               "up_to_healthy_s": round(stack.up_to_healthy, 1),
               "up_to_balancer_healthy_s": round(stack.up_to_lb, 1)}
    os.makedirs(ARTIFACTS, exist_ok=True)
    with open(os.path.join(ARTIFACTS, "figures.json"), "w") as f:
        json.dump(figures, f)
    print("deploy figures:", figures)


def mqtt_str(s):
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def mqtt5_connect(client_id, user, token):
    """An MQTT 5 CONNECT (clean start, user name and password, keepalive
    30 s); with a JWT its remaining length takes two bytes."""
    body = mqtt_str("MQTT") + bytes([5, 0xC2, 0, 30, 0]) + mqtt_str(client_id) + \
        mqtt_str(user) + mqtt_str(token)
    n, length = len(body), b""
    while True:
        byte, n = n % 128, n // 128
        length += bytes([byte | (0x80 if n else 0)])
        if not n:
            break
    return b"\x10" + length + body


def tls_to(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                           server_hostname="localhost")


def is_closed(sock):
    try:
        return sock.recv(64) == b""
    except (socket.timeout, BlockingIOError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True


def test_the_balancer_closes_mqtt_connections_without_a_connect_within_5s(stack):
    """PROTOCOL.md section 3: mosquitto keeps a socket that never sends
    CONNECT ~90 s; the balancer ends TLS for MQTT and closes, within 5 s,
    a TCP connection that never starts TLS, a TLS one that sends nothing
    and one that sends only part of a CONNECT (its remaining length says
    more is coming). A real client that waits 2 s before its CONNECT is
    served and stays connected while idle past the deadline."""
    port = stack.ports["LB_MQTTS_PORT"]
    token = register(stack.ports["LB_HTTPS_PORT"], stack.ca, "dave")
    connect = mqtt5_connect("dave:raw", "dave", token)
    assert connect[1] & 0x80, "the test CONNECT should need a two-byte length"
    opened = {}
    socks = {}
    opened["tcp"] = time.time()
    socks["tcp"] = socket.create_connection(("127.0.0.1", port), timeout=5)
    opened["tls"] = time.time()
    socks["tls"] = tls_to(port, stack.ca)
    opened["partial"] = time.time()
    socks["partial"] = tls_to(port, stack.ca)
    socks["partial"].sendall(connect[:-10])
    t0 = time.time()
    real = tls_to(port, stack.ca)
    try:
        time.sleep(2)
        real.sendall(connect)
        real.settimeout(10)
        connack = real.recv(64)
        assert connack[:1] == b"\x20" and connack[3] == 0, connack
        for sk in socks.values():
            sk.settimeout(0.05)
        waited = {}
        while len(waited) < len(socks) and time.time() - t0 < 9:
            for name, sk in socks.items():
                if name not in waited and is_closed(sk):
                    waited[name] = round(time.time() - opened[name], 2)
            time.sleep(0.05)
        print("closed after (s):", waited)
        for name in socks:
            assert name in waited, "a %s connection without CONNECT stayed open" % name
            # by the 5 s deadline: not at once, and not much later
            assert 4 <= waited[name] <= 7, (name, waited[name])
        # idle past the deadline, the real client is still served
        time.sleep(max(0.0, 8 - (time.time() - t0)))
        real.sendall(b"\xc0\x00")
        assert real.recv(2) == b"\xd0\x00", "PINGREQ got no PINGRESP"
    finally:
        for sk in list(socks.values()) + [real]:
            sk.close()
