"""RS256 and ES256 with public key files (PROTOCOL.md section 2), the
algorithm-confusion attack, issuer and audience checks, and refusal of a
bad plugin option at start."""
import os
import subprocess
import time

import pytest

from mqttutil import V311, V5, claims, connack_code, craft, refused

CHATCTL = os.path.join(os.environ.get("CHAT_BUILD_DIR", "build"), "chatctl", "chatctl")
PLUGIN = os.path.join(os.environ.get("CHAT_BUILD_DIR", "build"), "authplugin", "chat_auth.so")


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    keys = {}
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
            "-out", str(d / "rsa.key"))
    openssl("pkey", "-in", str(d / "rsa.key"), "-pubout", "-out", str(d / "rsa.pub"))
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
            "-out", str(d / "rsa2.key"))
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", str(d / "ec.key"))
    openssl("pkey", "-in", str(d / "ec.key"), "-pubout", "-out", str(d / "ec.pub"))
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", str(d / "ec2.key"))
    for name in ["rsa.key", "rsa.pub", "rsa2.key", "ec.key", "ec.pub", "ec2.key"]:
        keys[name] = str(d / name)
    keys["dir"] = d
    return keys


def mint(pki, alg, pub, priv, user, extra=""):
    conf = pki["dir"] / ("%s-%s.conf" % (alg, os.path.basename(priv)))
    conf.write_text("jwt_alg %s\njwt_key_file %s\njwt_signing_key_file %s\n%s"
                    % (alg, pub, priv, extra))
    r = subprocess.run([CHATCTL, "--config", str(conf), "token", user], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.parametrize("alg,pub,priv,other", [
    ("RS256", "rsa.pub", "rsa.key", "rsa2.key"),
    ("ES256", "ec.pub", "ec.key", "ec2.key"),
])
def test_public_key_algorithms(make_broker, pki, alg, pub, priv, other):
    b = make_broker(plugin_opts={"jwt_alg": alg, "jwt_key_file": pki[pub]})
    good = mint(pki, alg, pki[pub], pki[priv], "alice")
    for protocol in (V311, V5):
        assert connack_code(b.port, "alice", good, protocol=protocol) == 0
    # a token from another key of the same kind
    forged = mint(pki, alg, pki[pub], pki[other], "alice")
    assert refused(connack_code(b.port, "alice", forged), V311)
    # algorithm confusion: HS256 with the public key file as the HMAC secret
    with open(pki[pub], "rb") as f:
        pem = f.read()
    for key in (pem, pem.rstrip(b"\n")):
        confused = craft(claims("alice"), key, alg="HS256")
        for protocol in (V311, V5):
            assert refused(connack_code(b.port, "alice", confused, protocol=protocol), protocol)
    # alg none and the wrong public-key algorithm
    assert refused(connack_code(b.port, "alice", craft(claims("alice"), alg="none")), V311)
    wrong = ("ES256", "ec.pub", "ec.key") if alg == "RS256" else ("RS256", "rsa.pub", "rsa.key")
    assert refused(connack_code(b.port, "alice", mint(pki, wrong[0], pki[wrong[1]],
                                                         pki[wrong[2]], "alice")), V311)
    assert b.alive()


def test_hs256_broker_refuses_rs256_tokens(broker, pki):
    tok = mint(pki, "RS256", pki["rsa.pub"], pki["rsa.key"], "alice")
    assert refused(connack_code(broker.port, "alice", tok), V311)


def test_issuer_and_audience(make_broker, keys, tmp_path):
    secret = open(keys.secret_file, "rb").read().rstrip(b"\r\n")
    b = make_broker(plugin_opts={"jwt_alg": "HS256", "jwt_key_file": keys.secret_file,
                                 "jwt_issuer": "chat-auth", "jwt_audience": "chat"})
    ok = craft(claims("alice", iss="chat-auth", aud="chat"), secret)
    ok_list = craft(claims("alice", iss="chat-auth", aud=["web", "chat"]), secret)
    cases = {
        "wrong issuer": craft(claims("alice", iss="evil", aud="chat"), secret),
        "no issuer": craft(claims("alice", aud="chat"), secret),
        "wrong audience": craft(claims("alice", iss="chat-auth", aud="other"), secret),
        "no audience": craft(claims("alice", iss="chat-auth"), secret),
    }
    for protocol in (V311, V5):
        assert connack_code(b.port, "alice", ok, protocol=protocol) == 0
        assert connack_code(b.port, "alice", ok_list, protocol=protocol) == 0
        for name, tok in cases.items():
            code = connack_code(b.port, "alice", tok, protocol=protocol)
            assert refused(code, protocol), "%s: got %r" % (name, code)


def test_clock_skew_leeway(make_broker, keys):
    secret = open(keys.secret_file, "rb").read().rstrip(b"\r\n")
    b = make_broker(plugin_opts={"jwt_alg": "HS256", "jwt_key_file": keys.secret_file,
                                 "jwt_leeway": "30"})
    now = int(time.time())
    assert connack_code(b.port, "alice", craft(claims("alice", nbf=now + 20), secret)) == 0
    assert refused(connack_code(b.port, "alice", craft(claims("alice", nbf=now + 90), secret)),
                   V311)


@pytest.mark.parametrize("key,value", [("jwt_alg", "none"), ("jwt_leeway", "-1"),
                                       ("jwt_key_file", "/nonexistent/secret"),
                                       ("no_such_option", "1")])
def test_bad_plugin_option_refused_at_start(tmp_path, keys, key, value):
    opts = {"jwt_alg": "HS256", "jwt_key_file": keys.secret_file}
    opts[key] = value
    conf = tmp_path / "m.conf"
    conf.write_text("per_listener_settings false\nallow_anonymous false\nlistener 0 127.0.0.1\n"
                    "plugin %s\n%s" % (PLUGIN, "".join("plugin_opt_%s %s\n" % kv
                                                        for kv in opts.items())))
    env = dict(os.environ)
    if os.environ.get("CHAT_SANITIZE") == "1":
        lib = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                             text=True).stdout.strip()
        env.update(LD_PRELOAD=lib, ASAN_OPTIONS="detect_leaks=0")
    r = subprocess.run(["mosquitto", "-c", str(conf)], capture_output=True, text=True,
                       timeout=10, env=env)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert key in out, out
