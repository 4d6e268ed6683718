"""Redis AUTH (issue 10 finding 13): the harness's Redis wants a password,
so every integration test logs in. Here: redis-cli without it is refused;
the bridge, the web front and chatctl with no password or a wrong one stop
with a line saying which setting to fix, within seconds (never a hang);
with the right one (also as an ACL user) they work; after Redis restarts
the bridge's links log in again and messages flow."""
import os
import subprocess
import time

import pytest

from chatharness import BUILD_DIR, Bridge, HarnessError, Mosquitto, Redis, WsFront, find_binary
from mqttutil import Client, rpc, wait_for

CHATCTL = os.path.join(BUILD_DIR, "chatctl", "chatctl")


def cli(redis, *args, env=None):
    return subprocess.run([find_binary("redis-cli"), "-p", str(redis.port)] + list(args),
                          capture_output=True, text=True, timeout=10,
                          env=env if env is not None else {"PATH": os.environ["PATH"]})


def wrong_password_file(tmp_path):
    p = tmp_path / "wrong.password"
    p.write_text("not-the-password\n")
    return str(p)


def test_redis_cli_without_the_password_is_refused(redis):
    r = cli(redis, "GET", "chat:seq:room:x")
    assert "NOAUTH" in r.stdout + r.stderr, r
    r = cli(redis, "SET", "x", "1")
    assert "NOAUTH" in r.stdout + r.stderr, r
    assert redis.call("EXISTS", "x") == "0"  # the refused write changed nothing
    assert redis.call("PING") == "PONG"       # with the password it works


def start_refused(server, timeout=15):
    """Starts a server that must refuse to run; returns its log."""
    t0 = time.time()
    with pytest.raises(HarnessError, match="exited"):
        server.start(timeout=timeout)
    assert time.time() - t0 < timeout, "it hung instead of refusing"
    return server.log()


@pytest.mark.parametrize("case", ["none", "wrong"])
def test_bridge_with_no_or_a_wrong_password_is_refused(tmp_path_factory, keys, broker, redis,
                                                       case):
    pw = None if case == "none" else wrong_password_file(tmp_path_factory.mktemp("pw"))
    store = "sqlite:%s" % os.path.join(str(tmp_path_factory.mktemp("store")), "chat.db")
    b = Bridge(tmp_path_factory.mktemp("bridge"), broker, redis, keys, "nopw",
               store_url=store, redis_password_file=pw)
    log = start_refused(b)
    want = "requires a password" if case == "none" else "refused the password"
    assert want in log and "redis_password_file" in log, log


@pytest.mark.parametrize("case", ["none", "wrong"])
def test_wsfront_with_no_or_a_wrong_password_is_refused(tmp_path_factory, keys, broker, redis,
                                                        case):
    pw = None if case == "none" else wrong_password_file(tmp_path_factory.mktemp("pw"))
    store = "sqlite:%s" % os.path.join(str(tmp_path_factory.mktemp("store")), "chat.db")
    f = WsFront(tmp_path_factory.mktemp("wsfront"), broker, redis, keys, "nopw", store,
                redis_password_file=pw)
    log = start_refused(f)
    want = "requires a password" if case == "none" else "refused the password"
    assert want in log and "redis_password_file" in log, log


def chatctl(conf, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    return subprocess.run([CHATCTL, "--config", str(conf)] + list(args), capture_output=True,
                          text=True, timeout=30, env=env)


def test_chatctl_needs_the_password(tmp_path, redis):
    store = "sqlite:%s" % (tmp_path / "chat.db")
    base = "redis_port %d\nstore_url %s\n" % (redis.port, store)
    conf = tmp_path / "ctl.conf"
    conf.write_text(base)
    r = chatctl(conf, "status")
    assert r.returncode == 1 and "requires a password" in r.stderr, r
    conf.write_text(base + "redis_password_file %s\n" % wrong_password_file(tmp_path))
    r = chatctl(conf, "status")
    assert r.returncode == 1 and "refused the password" in r.stderr, r
    conf.write_text(base + "redis_password_file %s\n" % (tmp_path / "missing"))
    r = chatctl(conf, "status")
    assert r.returncode == 1 and "redis_password_file" in r.stderr and "missing" in r.stderr, r
    conf.write_text(base + redis.conf_lines())
    r = chatctl(conf, "status")
    assert "persistence:" in r.stdout and r.stderr == "", r  # it got as far as Redis's data


def test_acl_user_and_restart_log_in_again(tmp_path_factory, keys):
    """A Redis whose default user has another password: the bridge logs in
    as its ACL user, and after kill -9 and a restart of Redis every link logs in again
    (posts flow end to end)."""
    redis = Redis(tmp_path_factory.mktemp("redis"), user="chat").start()
    broker = Mosquitto(tmp_path_factory.mktemp("broker"), keys.plugin_opts()).start()
    store = "sqlite:%s" % os.path.join(str(tmp_path_factory.mktemp("store")), "chat.db")
    bridge = None
    try:
        r = cli(redis, "--no-auth-warning", "-a", redis.password, "PING")
        assert "WRONGPASS" in r.stdout + r.stderr, r  # not the default user's password
        # without redis_user the password alone is refused
        lone = Bridge(tmp_path_factory.mktemp("bridge"), broker, redis, keys, "acl0",
                      store_url=store, redis_user=None)
        assert "refused the password" in start_refused(lone)
        bridge = Bridge(tmp_path_factory.mktemp("bridge"), broker, redis, keys, "acl1",
                        store_url=store).start()
        alice = Client(broker.port, "alice", keys.mint("alice"))
        assert alice.connect() == 0
        assert alice.subscribe("chat/user/alice/#", qos=1) < 0x80
        assert "result" in rpc(alice, "alice", "room.create", {"room": "acl"})
        assert alice.subscribe("chat/room/acl", qos=1) < 0x80
        redis.kill()
        redis.start()
        for link in ("cmd", "feed", "sub"):
            assert wait_for(lambda: bridge.log().count("redis %s: connected" % link) >= 2,
                            timeout=15), bridge.log()[-2000:]

        def delivered():
            alice.publish("chat/in/alice/room/acl", "after restart", qos=1)
            return wait_for(lambda: any(t == "chat/room/acl" for t, _ in alice.messages), 2)
        assert wait_for(delivered, timeout=20), bridge.log()[-2000:]
        assert "NOAUTH" not in bridge.log()
        alice.close()
    finally:
        for s in (bridge, broker, redis):
            if s:
                s.stop()


def test_rotated_password_is_a_clear_error_and_no_hang(tmp_path_factory, keys):
    """Redis's password changes under a running bridge and its links are
    cut: the reconnects are refused with a line naming the setting; the
    bridge keeps running and comes back once its file has the new one."""
    redis = Redis(tmp_path_factory.mktemp("redis")).start()
    broker = Mosquitto(tmp_path_factory.mktemp("broker"), keys.plugin_opts()).start()
    store = "sqlite:%s" % os.path.join(str(tmp_path_factory.mktemp("store")), "chat.db")
    bridge = None
    try:
        bridge = Bridge(tmp_path_factory.mktemp("bridge"), broker, redis, keys, "rot",
                        store_url=store).start()
        redis.call("CONFIG", "SET", "requirepass", "rotated-password")
        redis.password = "rotated-password"
        redis.call("CLIENT", "KILL", "TYPE", "normal")
        redis.call("CLIENT", "KILL", "TYPE", "pubsub")
        assert wait_for(lambda: "refused the password" in bridge.log(), timeout=15), \
            bridge.log()[-2000:]
        assert bridge.alive()
        with open(redis.password_file, "w") as f:
            f.write("rotated-password\n")
        # the file is read at start: a restart picks the new password up
        bridge.restart()
        assert bridge.alive()
    finally:
        for s in (bridge, broker, redis):
            if s:
                s.stop()
