"""chatctl user add, room list, history and status against a running
cluster (its Redis and its store)."""
import json
import os
import subprocess

from mqttutil import Client, rpc, wait_for

CHATCTL = os.path.join(os.environ.get("CHAT_BUILD_DIR", "build"), "chatctl", "chatctl")


def chatctl(cluster, *args, stdin=""):
    conf = os.path.join(os.path.dirname(cluster.keys.conf_file), "ctl-%d.conf" % cluster.redis.port)
    with open(conf, "w") as f:
        f.write("jwt_alg HS256\njwt_key_file %s\nstore_url %s\n%s"
                % (cluster.keys.secret_file, cluster.store_url, cluster.redis.conf_lines()))
    return subprocess.run([CHATCTL, "--config", conf] + list(args), input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_user_room_history_status(make_cluster):
    cluster = make_cluster()
    r = chatctl(cluster, "user", "add", "carol", stdin="correct horse battery\n")
    assert r.returncode == 0 and "carol" in r.stdout, r.stderr
    r = chatctl(cluster, "user", "add", "carol", stdin="another password\n")
    assert r.returncode == 1 and "exists" in r.stderr
    for args, stdin in [(("user", "add", "Bad!"), "password1\n"),
                        (("user", "add", "dave"), "short\n"),
                        (("user", "add", "dave"), "")]:
        r = chatctl(cluster, *args, stdin=stdin)
        assert r.returncode == 2 and r.stderr, args

    alice = Client(cluster.brokers[0].port, "alice", cluster.keys.mint("alice"))
    assert alice.connect() == 0
    assert alice.subscribe("chat/user/alice/#", qos=1) < 0x80
    assert "result" in rpc(alice, "alice", "room.create", {"room": "ops", "private": True})
    for k in range(3):
        alice.publish("chat/in/alice/room/ops", "line %d" % k, qos=1)
    assert wait_for(lambda: cluster.redis.call("GET", "chat:persisted:room:ops") == "3",
                    timeout=15)
    assert wait_for(lambda: "ops" in chatctl(cluster, "room", "list").stdout, timeout=10)
    line = [l for l in chatctl(cluster, "room", "list").stdout.splitlines() if "ops" in l][0]
    assert "private" in line and "alice" in line

    r = chatctl(cluster, "history", "room:ops", "--after", "1")
    assert r.returncode == 0, r.stderr
    assert [m["body"] for m in json.loads(r.stdout)["messages"]] == ["line 1", "line 2"]
    r = chatctl(cluster, "history", "room:Nope")
    assert r.returncode == 2 and "bad_request" in r.stderr

    r = chatctl(cluster, "status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "backlog=" in r.stdout and "store: up" in r.stdout and "node1" in r.stdout
    alice.close()
