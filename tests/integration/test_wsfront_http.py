"""The web front's HTTP API (PROTOCOL.md section 7): accounts with their
error cases, the password rule, constant-time login, rate limits, history
with a Bearer token, health, metrics, static files and bad requests of
every kind, none of which may crash it."""
import json
import socket
import statistics
import time

import pytest

from chatharness import Redis, free_port
from mqttutil import Client, craft, claims, rpc
from wsutil import metric, register, request, web  # noqa: F401  (fixture)

JSON = {"Content-Type": "application/json"}
PW = "blue-kettle-42"


def post(front, path, body, headers=JSON):
    return request(front, "POST", path, body, headers)


def error_code(body):
    return json.loads(body)["error"]["code"]


def test_register_gives_a_token_the_broker_accepts(web):
    front = web.fronts[0]
    st, hdr, body = post(front, "/api/register", {"username": "reg.one", "password": PW})
    assert st == 201, body
    assert hdr["content-type"] == "application/json" and hdr["cache-control"] == "no-store"
    j = json.loads(body)
    assert j["user"] == "reg.one" and isinstance(j["token"], str)
    assert abs(j["exp"] - (time.time() + 43200)) < 60
    # the same token works over plain MQTT on either node
    for broker in web.cluster.brokers:
        c = Client(broker.port, "reg.one", j["token"], "reg.one:tcp")
        assert c.connect() == 0
        c.close()
    # and login gives a fresh one
    st, _, body = post(web.fronts[1], "/api/login", {"username": "reg.one", "password": PW})
    assert st == 200 and json.loads(body)["token"]


def test_register_existing_name_is_409(web):
    register(web.fronts[0], "taken")
    st, _, body = post(web.fronts[1], "/api/register", {"username": "taken", "password": PW})
    assert st == 409 and error_code(body) == "conflict"
    # the service user's id is never an account
    st, _, body = post(web.fronts[0], "/api/register", {"username": "bridge", "password": PW})
    assert st == 409


@pytest.mark.parametrize("password,why", [
    ("short1!", "at least 8 characters"),
    ("aaaaabbbbb", "5 different characters"),
    ("xxweakuser99", "must not contain the username"),
    ("password123", "most common"),
    ("éééé", "at least 8 characters"),
])
def test_weak_password_is_400(web, password, why):
    st, _, body = post(web.fronts[0], "/api/register", {"username": "weakuser", "password": password})
    assert st == 400, body
    err = json.loads(body)["error"]
    assert err["code"] == "weak_password" and why in err["message"], err


BAD_BODIES = [
    (b"not json", "JSON object"),
    (b"[1, 2, 3]", "JSON object"),
    (b'{"username": "x"}', "required"),
    (b'{"password": "blue-kettle-42"}', "required"),
    (b'{"username": 7, "password": "blue-kettle-42"}', "strings"),
    (b'{"username": "x", "password": ["a"]}', "strings"),
    (b'{"username": "Not Valid", "password": "blue-kettle-42"}', "username"),
    (b'{"username": "", "password": "blue-kettle-42"}', "username"),
    (b'{"username": "x", "password": "' + b"p" * 129 + b'"}', "longer than 128"),
    (b'{"username": "x", "password": "bad \xff utf8"}', "UTF-8"),
    (b'{"username": "x", "password": "blue-ket', "JSON object"),
]


@pytest.mark.parametrize("path", ["/api/register", "/api/login"])
@pytest.mark.parametrize("body,why", BAD_BODIES)
def test_bad_bodies_are_400(web, path, body, why):
    st, _, resp = post(web.fronts[0], path, body)
    assert st == 400, resp
    err = json.loads(resp)["error"]
    assert err["code"] == "bad_request" and why in err["message"], err


def test_huge_empty_and_unsized_bodies(web):
    front = web.fronts[0]
    st, _, body = post(front, "/api/register", b"{" + b" " * 100000 + b"}")
    assert st == 413 and error_code(body) == "too_large"
    st, _, body = post(front, "/api/login", b"")
    assert st in (400, 411), body
    # a body sent in chunks has no Content-Length: refused, not read forever
    s = socket.create_connection(("127.0.0.1", front.port), timeout=10)
    s.sendall(b"POST /api/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n0\r\n\r\n")
    head = s.recv(4096)
    s.close()
    assert head.split(b" ")[1] in (b"400", b"411", b"413"), head
    assert front.alive()


@pytest.mark.parametrize("method,path,allow", [
    ("GET", "/api/register", "POST"),
    ("GET", "/api/login", "POST"),
    ("PUT", "/api/login", "POST"),
    ("POST", "/api/history", "GET"),
    ("DELETE", "/api/history", "GET"),
    ("POST", "/healthz", "GET"),
    ("POST", "/metrics", "GET"),
    ("POST", "/", "GET"),
    ("PATCH", "/index.html", "GET"),
])
def test_wrong_method_is_405(web, method, path, allow):
    st, hdr, body = request(web.fronts[0], method, path, b"{}" if method != "GET" else None,
                            JSON if method != "GET" else {})
    assert st == 405, (st, body)
    assert hdr.get("allow") == allow and error_code(body) == "method_not_allowed"


def test_unknown_paths_are_404(web):
    front = web.fronts[0]
    for path in ("/api/nope", "/api/", "/nothing-here.html", "/../../etc/passwd",
                 "/%2e%2e/%2e%2e/etc/passwd", "/.hidden", "/a//b", "/index.html/x",
                 "/" + "x" * 3000):
        st, _, body = request(front, "GET", path)
        assert st == 404, (path, st, body)
    st, _, body = request(front, "GET", "/mqtt")
    assert st == 426 and error_code(body) == "upgrade_required"


def test_login_right_wrong_and_unknown(web):
    front = web.fronts[1]
    register(front, "logme")
    st, _, body = post(front, "/api/login", {"username": "logme", "password": PW})
    assert st == 200 and json.loads(body)["user"] == "logme"
    st, _, body = post(front, "/api/login", {"username": "logme", "password": PW + "x"})
    assert st == 401 and error_code(body) == "unauthorized"
    st, _, body2 = post(front, "/api/login", {"username": "nosuchuser", "password": PW})
    assert st == 401 and body2 == body  # the same answer, byte for byte


def test_login_time_does_not_tell_whether_the_user_exists(web):
    front = web.fronts[0]
    register(front, "timed")

    def took(user):
        t = time.perf_counter()
        st, _, _ = post(front, "/api/login", {"username": user, "password": "wrong-password-1"})
        assert st == 401
        return time.perf_counter() - t
    took("timed"), took("ghost")  # warm both paths
    # alternate, so both see the same load on a shared machine
    known, unknown = [], []
    for i in range(7):
        known.append(took("timed"))
        unknown.append(took("ghost%d" % i))
    mk, mu = statistics.median(known), statistics.median(unknown)
    # both paths run Argon2id (tens of ms), so neither is a fast "no such
    # user": skipping the hash would make the unknown path ~100x faster
    assert mk > 0.01 and mu > 0.01, (known, unknown)
    assert 0.5 < mu / mk < 2.0, (known, unknown)


def conn_from(addr, front):
    s = socket.socket()
    s.bind((addr, 0))
    s.settimeout(30)
    s.connect(("127.0.0.1", front.port))
    return s


def raw_post(s, path, body):
    data = json.dumps(body).encode()
    s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (path.encode(), len(data), data))
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    s.close()
    return int(buf.split(b" ")[1])


def test_attempts_are_rate_limited_per_address_and_per_username(web, tmp_path_factory):
    front = web.add_front(tmp_path_factory, web.cluster.brokers[0], "node1",
                          auth_burst=3, auth_per_min=1)
    # one address, different names: the fourth is refused
    codes = [raw_post(conn_from("127.0.0.9", front), "/api/login",
                      {"username": "someone%d" % i, "password": PW}) for i in range(4)]
    assert codes == [401, 401, 401, 429], codes
    # another address is not affected
    assert raw_post(conn_from("127.0.0.10", front), "/api/login",
                    {"username": "other", "password": PW}) == 401
    # one name from many addresses: the fourth is refused too
    codes = [raw_post(conn_from("127.0.1.%d" % (i + 1), front), "/api/login",
                      {"username": "victim", "password": "guess-%d-xyz" % i}) for i in range(4)]
    assert codes == [401, 401, 401, 429], codes
    st, hdr, body = request(front, "POST", "/api/login", {"username": "victim", "password": PW}, JSON)
    assert st == 429 and hdr.get("retry-after") == "60" and error_code(body) == "rate_limited"
    assert metric(front, 'wsfront_rejects_total{reason="rate_limited"}') >= 3


@pytest.fixture(scope="module")
def chat(web):
    """hana (owner of private room 'vault' with a few messages) and ivan."""
    keys = web.keys
    hana = Client(web.cluster.brokers[0].port, "hana", keys.mint("hana"), "hana:x")
    assert hana.connect() == 0
    assert hana.subscribe("chat/user/hana/#", qos=1) < 0x80
    assert "result" in rpc(hana, "hana", "room.create", {"room": "vault", "private": True})
    assert hana.subscribe("chat/room/vault", qos=1) < 0x80
    for i in range(1, 8):
        hana.publish("chat/in/hana/room/vault", "secret %d" % i, qos=1)
    # a DM goes only to a user who exists (issue 22): ivan connects once
    ivan = Client(web.cluster.brokers[1].port, "ivan", keys.mint("ivan"), "ivan:x")
    assert ivan.connect() == 0
    deadline = time.time() + 10
    while web.cluster.redis.call("SISMEMBER", "chat:users", "ivan") != "1" and \
            time.time() < deadline:
        time.sleep(0.05)
    ivan.close()
    hana.publish("chat/in/hana/dm/ivan", "hi ivan", qos=1)
    deadline = time.time() + 10
    while time.time() < deadline:
        with hana.lock:
            if sum(1 for t, _ in hana.messages if t == "chat/room/vault") >= 7:
                break
        time.sleep(0.05)
    yield hana
    hana.close()


def history(front, query, token):
    headers = {"Authorization": "Bearer " + token} if token is not None else {}
    return request(front, "GET", "/api/history?" + query, headers=headers)


def test_history_with_a_token(web, chat):
    keys = web.keys
    st, _, body = history(web.fronts[1], "conv=room:vault&limit=3", keys.mint("hana"))
    assert st == 200, body
    msgs = json.loads(body)["messages"]
    assert [m["body"] for m in msgs] == ["secret 5", "secret 6", "secret 7"]
    st, _, body = history(web.fronts[0], "conv=room:vault&before=3", keys.mint("hana"))
    assert [m["seq"] for m in json.loads(body)["messages"]] == [1, 2]
    st, _, body = history(web.fronts[0], "conv=room:vault&after=5&limit=200", keys.mint("hana"))
    assert [m["seq"] for m in json.loads(body)["messages"]] == [6, 7]
    st, _, body = history(web.fronts[0], "conv=dm:hana:ivan", keys.mint("ivan"))
    assert st == 200 and json.loads(body)["messages"][0]["body"] == "hi ivan"


def test_history_refusals(web, chat):
    keys, front = web.keys, web.fronts[0]
    ivan = keys.mint("ivan")
    assert history(front, "conv=room:vault", None)[0] == 401
    assert history(front, "conv=room:vault", "not.a.token")[0] == 401
    expired = craft(claims("ivan", ttl=-60), keys.secret)
    st, hdr, body = history(front, "conv=room:vault", expired)
    assert st == 401 and "bearer" in hdr.get("www-authenticate", "").lower()
    st, _, body = request(front, "GET", "/api/history?conv=room:vault",
                          headers={"Authorization": "Basic aGFuYTpwdw=="})
    assert st == 401
    # private room, not a member; someone else's DM
    st, _, body = history(front, "conv=room:vault", ivan)
    assert st == 403 and error_code(body) == "forbidden"
    st, _, body = history(front, "conv=dm:hana:zed", ivan)
    assert st == 403
    st, _, body = history(front, "conv=room:nowhere", ivan)
    assert st == 404 and error_code(body) == "not_found"
    for q in ("", "conv=", "conv=lobby", "conv=room:Bad", "conv=dm:b:a",
              "conv=room:vault&limit=0", "conv=room:vault&limit=201", "conv=room:vault&limit=x",
              "conv=room:vault&before=0", "conv=room:vault&before=-1",
              "conv=room:vault&before=3&after=1", "conv=room:vault&after=1e3",
              "conv=room:vault&after=99999999999999999999", "conv=room:" + "a" * 65,
              "conv=room:" + "a" * 300, "conv=dm:hana:" + "i" * 100):
        st, _, body = history(front, q, keys.mint("hana"))
        assert st == 400 and error_code(body) == "bad_request", (q, st, body)


def test_health_up_and_down(web, tmp_path_factory):
    st, hdr, body = request(web.fronts[0], "GET", "/healthz")
    assert st == 200, body
    h = json.loads(body)
    assert h["status"] == "ok" and h["broker"] == "up" and h["redis"] == "up" and h["store"] == "up"
    assert h["down"] == [] and "backlog" in h["persistence"]
    # a fresh Redis has no persist group yet: backlog unknown, not down
    fresh = Redis(tmp_path_factory.mktemp("fresh-redis")).start()
    try:
        f = web.add_front(tmp_path_factory, web.cluster.brokers[0], "nodex",
                          redis_port=fresh.port)
        st, _, body = request(f, "GET", "/healthz")
        assert st == 200, body
        h = json.loads(body)
        assert h["persistence"]["backlog"] is None and "persist group" in h["persistence"]["note"]
        # the bridge's and the persistence worker's counters reach /metrics
        fresh.call("HSET", "chat:metrics:bridge:nodex", "msgs_in", "12", "msgs_out", "30",
                   "rejects:not_member", "2")
        fresh.call("HSET", "chat:metrics:persist", "backlog", "4", "lag_ms", "250")
        st, hdr, body = request(f, "GET", "/metrics")
        text = body.decode()
        assert 'chat_bridge_msgs_in{node="nodex"} 12' in text
        assert 'chat_bridge_rejects_total{node="nodex",code="not_member"} 2' in text
        assert "chat_persist_backlog 4" in text and "chat_persist_lag_ms 250" in text
        fresh.stop()
        st, _, body = request(f, "GET", "/healthz")
        assert st == 503 and "redis" in json.loads(body)["down"], body
        assert "wsfront_redis_up 0" in request(f, "GET", "/metrics")[2].decode()
    finally:
        fresh.stop()
    # nothing answers: broker and Redis down
    dead = web.add_front(tmp_path_factory, web.cluster.brokers[0], "nodey",
                         mqtt_port=free_port(), redis_port=free_port())
    st, _, body = request(dead, "GET", "/healthz")
    h = json.loads(body)
    assert st == 503 and h["status"] == "down" and set(h["down"]) == {"broker", "redis"}, h


def test_metrics_text(web):
    front = web.fronts[0]
    request(front, "GET", "/api/nope")
    request(front, "POST", "/api/login", {"username": "m", "password": "x"}, JSON)
    st, hdr, body = request(front, "GET", "/metrics")
    assert st == 200 and hdr["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    for name in ("wsfront_ws_connections", "wsfront_ws_connections_total",
                 "wsfront_mqtt_messages_in_total", "wsfront_mqtt_messages_out_total",
                 'wsfront_bytes_total{direction="in"}', 'wsfront_rejects_total{reason="auth"}',
                 'wsfront_http_request_duration_seconds_bucket{route="login",le="+Inf"}',
                 "wsfront_redis_up 1"):
        assert name in text, name
    assert metric(front, 'wsfront_rejects_total{reason="not_found"}') >= 1
    assert metric(front, 'wsfront_http_request_duration_seconds_count{route="login"}') >= 1
    # every line is a comment or "name{labels} number"
    for line in text.splitlines():
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


def test_static_files_types_and_caching(web):
    front = web.fronts[0]
    st, hdr, body = request(front, "GET", "/")
    assert st == 200 and hdr["content-type"] == "text/html; charset=utf-8"
    assert hdr["cache-control"] == "no-cache" and hdr["etag"]
    assert "default-src 'self'" in hdr["content-security-policy"]
    assert b"app.js" in body
    st, hdr2, body2 = request(front, "GET", "/index.html", headers={"If-None-Match": hdr["etag"]})
    assert st == 304 and body2 == b""
    for path, ctype in (("/app.js", "text/javascript; charset=utf-8"),
                        ("/app.css", "text/css; charset=utf-8"),
                        ("/mqtt.min.js", "text/javascript; charset=utf-8"),
                        ("/icon.svg", "image/svg+xml")):
        st, hdr, body = request(front, "GET", path)
        assert st == 200 and hdr["content-type"] == ctype, (path, hdr)
        assert hdr["cache-control"] == "public, max-age=3600" and len(body) > 100
        assert int(hdr["content-length"]) == len(body)


def test_garbage_never_crashes(web):
    front = web.fronts[0]
    for raw in (b"GARBAGE\r\n\r\n", b"GET\r\n\r\n", b"\x00\x01\x02\x03" * 100,
                b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
                b"GET /api/history?" + b"conv=" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                b"POST /api/login HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
                b"POST /api/login HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
                b"GET /api/history?conv=room:x HTTP/1.1\r\nAuthorization: Bearer "
                + b"x" * 9000 + b"\r\n\r\n"):
        s = socket.create_connection(("127.0.0.1", front.port), timeout=10)
        try:
            s.sendall(raw)
            head = s.recv(64)
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            head = b""
        finally:
            s.close()
        assert head == b"" or head.split(b" ")[1][:1] == b"4", (raw[:60], head)
    assert front.alive()
    assert request(front, "GET", "/healthz")[0] == 200
