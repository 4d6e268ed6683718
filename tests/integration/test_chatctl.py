"""chatctl token: minted tokens verify at the broker with the role and
lifetime asked for; bad arguments get a clear error and no token."""
import base64
import json
import os
import subprocess
import time

CHATCTL = os.path.join(os.environ.get("CHAT_BUILD_DIR", "build"), "chatctl", "chatctl")


def payload(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def run(*args, conf=None, env=None):
    cmd = [CHATCTL] + (["--config", conf] if conf else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def test_token_claims(keys):
    conf = keys.conf_file
    r = run("token", "alice", conf=conf)
    assert r.returncode == 0, r.stderr
    p = payload(r.stdout.strip())
    assert p["sub"] == "alice" and "role" not in p
    assert abs(p["exp"] - time.time() - 3600) < 5
    r = run("token", "svc", "--role", "service", "--ttl", "15m", conf=conf)
    p = payload(r.stdout.strip())
    assert p["role"] == "service" and abs(p["exp"] - p["iat"] - 900) == 0
    r = run("token", "ops", "--role", "admin", "--ttl", "7d", conf=conf)
    p = payload(r.stdout.strip())
    assert p["role"] == "admin" and p["exp"] - p["iat"] == 7 * 86400


def test_token_from_environment(keys, tmp_path):
    env = dict(os.environ, CHAT_JWT_KEY_FILE=keys.secret_file)
    env.pop("CHAT_CONFIG", None)
    r = subprocess.run([CHATCTL, "token", "alice"], capture_output=True, text=True, env=env,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert payload(r.stdout.strip())["sub"] == "alice"


def test_bad_arguments(keys, tmp_path):
    conf = keys.conf_file
    for args, needle in [(["token", "Not Valid"], "not a valid user id"),
                         (["token", "alice", "--role", "root"], "--role"),
                         (["token", "alice", "--ttl", "forever"], "--ttl"),
                         (["token", "alice", "--ttl", "0"], "--ttl"),
                         (["token"], "usage"),
                         (["frobnicate"], "unknown command")]:
        r = run(*args, conf=conf)
        assert r.returncode != 0 and r.stdout == "", args
        assert needle in r.stderr, (args, r.stderr)
    bad = tmp_path / "bad.conf"
    bad.write_text("jwt_alg none\n")
    r = run("token", "alice", conf=str(bad))
    assert r.returncode != 0 and "jwt_alg" in r.stderr
    missing = tmp_path / "missing.conf"
    missing.write_text("jwt_key_file /nonexistent/secret\n")
    r = run("token", "alice", conf=str(missing))
    assert r.returncode != 0 and "jwt_key_file" in r.stderr
