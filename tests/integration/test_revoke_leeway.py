"""Sign out everywhere against the clock leeway (issue 22 finding 12):
verifiers accept a token whose iat is up to jwt_leeway (5 s) ahead, so a
user's revocation covers every token stamped until now + leeway: a token
with iat = now + 4 is cut by user.revoke and refused afterwards, on both
brokers and at the web front. And the issuers never stamp a token that the
revocation covers: a sign-in right after "sign out everywhere" (the web
front's login, after at most the short wait it states, and chatctl token)
gives a token that works at once."""
import json
import os
import subprocess
import time

from mqttutil import Client, claims, craft, wait_for
from wsutil import register, request, web  # noqa: F401  (fixture)

JSON = {"Content-Type": "application/json"}
PW = "blue-kettle-42"
CUT_BOUND_S = 3.0


def connect(port, token, user, cid):
    c = Client(port, user, token, cid)
    assert c.connect() == 0, "%s could not connect" % cid
    assert c.subscribe("chat/user/%s/#" % user, qos=1) < 0x80
    return c


def refused(port, user, token, cid):
    c = Client(port, user, token, cid)
    try:
        try:
            return c.connect() != 0
        except AssertionError:
            return True  # closed without a CONNACK
    finally:
        c.close()


def history_status(front, token):
    return request(front, "GET", "/api/history?conv=room:general",
                   headers={"Authorization": "Bearer " + token})[0]


def sign_out_everywhere(client, user):
    """Sends user.revoke on oneself; the reply is not waited for (it may
    lose the race with the cut of this very connection)."""
    client.c.publish("chat/in/%s/rpc" % user,
                     json.dumps({"id": "out", "method": "user.revoke", "params": {"user": user}}),
                     qos=1)


def test_a_token_stamped_ahead_within_the_leeway_is_revoked(web):
    cluster = web.cluster
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    ahead = craft(claims("skewed", iat=int(time.time()) + 4, jti="ahead-4"), cluster.keys.secret)
    phone = connect(n1, ahead, "skewed", "skewed:phone")
    laptop = connect(n2, ahead, "skewed", "skewed:laptop")
    assert history_status(web.fronts[0], ahead) != 401
    me = connect(n1, cluster.keys.mint("skewed"), "skewed", "skewed:me")
    try:
        t0 = time.time()
        sign_out_everywhere(me, "skewed")
        assert wait_for(lambda: phone.disconnected.is_set() and laptop.disconnected.is_set(),
                        timeout=CUT_BOUND_S + 2), "the token stamped 4 s ahead was not cut"
        print("cut after %.3f s" % (max(phone.disconnected_at, laptop.disconnected_at) - t0))
        for port in (n1, n2):
            assert refused(port, "skewed", ahead, "skewed:again"), port
        assert history_status(web.fronts[1], ahead) == 401
        # the revocation covers up to the leeway: what it stored says so
        before = int(cluster.redis.call("GET", "chat:revoked:user:skewed").split()[0])
        assert before >= int(t0) + 5, (before, t0)
    finally:
        for c in (phone, laptop, me):
            c.close()


def login(front, user, bound_s=10):
    """POST /api/login, waiting out a 503's Retry-After as the app does;
    returns (token, seconds waited)."""
    waited, deadline = 0.0, time.time() + bound_s
    while True:
        st, hdr, body = request(front, "POST", "/api/login", {"username": user, "password": PW},
                                JSON)
        if st == 200:
            return json.loads(body)["token"], waited
        assert st == 503 and time.time() < deadline, (st, body)
        wait = int(hdr["retry-after"])
        assert 1 <= wait <= 3, hdr  # the few seconds before verifiers accept a later iat
        time.sleep(wait)
        waited += wait


def test_a_login_right_after_sign_out_everywhere_works(web):
    cluster = web.cluster
    token = register(web.fronts[0], "returner")
    me = connect(cluster.brokers[0].port, token, "returner", "returner:old")
    try:
        sign_out_everywhere(me, "returner")
        assert wait_for(lambda: me.disconnected.is_set(), timeout=CUT_BOUND_S + 2)
    finally:
        me.close()
    assert wait_for(lambda: cluster.redis.call("EXISTS", "chat:revoked:user:returner") == "1")
    for i, front in enumerate(web.fronts):
        new, waited = login(front, "returner")
        print("login %d after sign out everywhere: waited %.0f s" % (i, waited))
        iat = json.loads(__import__("base64").urlsafe_b64decode(new.split(".")[1] + "=="))["iat"]
        before = int(cluster.redis.call("GET", "chat:revoked:user:returner").split()[0])
        assert iat > before, (iat, before)
        # usable at once, everywhere
        assert history_status(front, new) != 401
        for port in (b.port for b in cluster.brokers):
            assert not refused(port, "returner", new, "returner:new%d" % i), port
    # the old token stays refused
    assert history_status(web.fronts[0], token) == 401


def test_chatctl_token_right_after_sign_out_everywhere_works(web, tmp_path):
    cluster = web.cluster
    keys = cluster.keys
    conf = tmp_path / "chat.conf"
    with open(keys.conf_file) as f:
        conf.write_text(f.read() + cluster.redis.conf_lines())
    me = connect(cluster.brokers[1].port, keys.mint("operated"), "operated", "operated:old")
    try:
        sign_out_everywhere(me, "operated")
        assert wait_for(lambda: me.disconnected.is_set(), timeout=CUT_BOUND_S + 2)
    finally:
        me.close()
    t0 = time.time()
    r = subprocess.run([keys.chatctl, "--config", str(conf), "token", "operated"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert time.time() - t0 < 5, "chatctl waited longer than the leeway needs"
    new = r.stdout.strip()
    for port in (b.port for b in cluster.brokers):
        assert not refused(port, "operated", new, "operated:new"), port
    assert history_status(web.fronts[0], new) != 401
    # without Redis it still mints, and says what it could not check
    bare = tmp_path / "bare.conf"
    bare.write_text(open(keys.conf_file).read() + "redis_port %d\n" % _closed_port())
    r = subprocess.run([keys.chatctl, "--config", str(bare), "token", "someone"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() and "not checked" in r.stderr, r


def _closed_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
