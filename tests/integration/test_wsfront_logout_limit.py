"""Signing out is never blocked by someone else's wrong logins (issue 22
finding 10): POST /api/logout, an authenticated request, spends a bucket
of its own per user (logout_per_min), never the login/register buckets
that ten wrong passwords for the name empty; it still has a bound; and the
web app reports a refused sign-out truthfully and stays signed in."""
import json
import os
import subprocess

from mqttutil import Client
from wsutil import ARTIFACTS, ROOT, register, request, web  # noqa: F401  (fixture)

JSON = {"Content-Type": "application/json"}


def logout(front, token):
    return request(front, "POST", "/api/logout", headers={"Authorization": "Bearer " + token})


def history_status(front, token):
    return request(front, "GET", "/api/history?conv=room:general",
                   headers={"Authorization": "Bearer " + token})[0]


def refused(port, user, token):
    c = Client(port, user, token, user + ":check")
    try:
        try:
            return c.connect() != 0
        except AssertionError:
            return True  # closed without a CONNACK
    finally:
        c.close()


def test_wrong_logins_for_a_name_do_not_block_its_sign_out(web, tmp_path_factory):
    # the production limits: 10 attempts, 10 a minute, per name and address
    front = web.add_front(tmp_path_factory, web.cluster.brokers[0], "node7",
                          auth_burst=10, auth_per_min=10)
    token = register(front, "victim")
    assert history_status(front, token) != 401
    # an attacker spends the name's sign-in attempts
    codes = [request(front, "POST", "/api/login", {"username": "victim", "password": "nope-%d" % i},
                     JSON)[0] for i in range(12)]
    assert codes[-1] == 429, codes
    # the owner still signs out, and the token is revoked at once
    st, hdr, body = logout(front, token)
    assert st == 204, (st, body)
    assert history_status(front, token) == 401
    for broker in web.cluster.brokers:
        assert refused(broker.port, "victim", token), broker.port


def test_sign_out_has_its_own_per_user_bound(web, tmp_path_factory):
    front = web.add_front(tmp_path_factory, web.cluster.brokers[0], "node8", logout_per_min=5)
    tokens = [register(front, "spender")] + \
        [json.loads(request(front, "POST", "/api/login",
                            {"username": "spender", "password": "blue-kettle-42"}, JSON)[2])["token"]
         for _ in range(7)]
    codes = [logout(front, t)[0] for t in tokens]
    assert codes[:5] == [204] * 5 and 429 in codes[5:], codes
    st, hdr, body = logout(front, tokens[-1])
    assert st == 429 and int(hdr["retry-after"]) >= 1, (st, hdr)
    assert json.loads(body)["error"]["code"] == "rate_limited"
    # another user is not held back by it, and the refused token still works
    assert logout(front, register(front, "bystander"))[0] == 204
    assert history_status(front, tokens[-1]) != 401


def test_the_app_says_when_it_did_not_sign_out(web):
    script = os.path.join(ROOT, "wsfront", "app", "tests", "logout-fail.mjs")
    env = dict(os.environ, ARTIFACTS=ARTIFACTS, CHROMIUM="/usr/bin/chromium", USER="truthful",
               URL=web.fronts[0].url + "/")
    proc = subprocess.run(["node", script], env=env, capture_output=True, text=True,
                          cwd=os.path.dirname(script), timeout=180)
    assert proc.returncode == 0, "browser test failed:\n%s\n%s" % (proc.stdout[-2000:],
                                                                    proc.stderr[-4000:])
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    print("refused: %s | unreachable: %s" % (res["refused"], res["unreachable"]))
    # the last click did sign out: the token is revoked
    assert history_status(web.fronts[0], res["token"]) == 401
