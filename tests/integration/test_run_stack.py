"""`make run`'s script: a two-node stack on the embedded defaults that a
person can connect to with the printed token, described in stack.json, and
stopped completely by Ctrl-C."""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
from chatharness import (SANITIZE, asan_env, free_ports, start_run_stack,  # noqa: E402
                         stop_run_stack)

ROOT = os.environ.get("CHAT_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
BUILD = os.environ.get("CHAT_BUILD_DIR") or os.path.join(ROOT, "build")


def test_run_two_nodes_connect_and_stop(tmp_path):
    run_dir = tmp_path / "run"
    # node ports count up from a base: mqtt, mqtt+1, http, http+1, redis
    base = free_ports(5)
    mqtt, http, redis = base, base + 2, base + 4
    env = dict(os.environ, RUN_DIR=str(run_dir), NODES="2", MQTT_PORT=str(mqtt),
               REDIS_PORT=str(redis), HTTP_PORT=str(http), BUILD=BUILD)
    if SANITIZE:
        env["MOSQUITTO_PRELOAD"] = asan_env()["LD_PRELOAD"]
    proc, text = start_run_stack(tmp_path, env)
    try:
        stack = json.loads((run_dir / "stack.json").read_text())
        ports = [n["mqtt"]["port"] for n in stack["nodes"]]
        assert ports == [mqtt, mqtt + 1]
        assert stack["redis"] == "redis://127.0.0.1:%d" % redis
        # Redis wants the password make run made (mode 600) and printed
        pw_file = run_dir / "redis.password"
        assert stack["redis_password_file"] == str(pw_file) and str(pw_file) in text
        assert os.stat(pw_file).st_mode & 0o077 == 0
        cli = ["redis-cli", "-p", str(redis), "GET", "chat:seq:room:general"]
        r = subprocess.run(cli, capture_output=True, text=True, timeout=10,
                           env={"PATH": os.environ["PATH"]})
        assert "NOAUTH" in r.stdout + r.stderr, r
        r = subprocess.run(cli, capture_output=True, text=True, timeout=10,
                           env={"PATH": os.environ["PATH"],
                                "REDISCLI_AUTH": pw_file.read_text().strip()})
        assert r.returncode == 0 and "NOAUTH" not in r.stdout + r.stderr, r
        token = re.search(r"-u demo -P '([^']+)'", text).group(1)
        for port in ports:
            r = subprocess.run(["mosquitto_sub", "-p", str(port), "-u", "demo", "-P", token,
                                "-i", "demo", "-t", "chat/user/demo/#", "-W", "1"],
                               capture_output=True, text=True, timeout=10)
            assert r.returncode == 27, (port, r.returncode, r.stderr)  # 27: -W timeout
            r = subprocess.run(["mosquitto_sub", "-p", str(port), "-u", "demo", "-P", "x.y.z",
                                "-i", "demo", "-t", "chat/user/demo/#", "-W", "1"],
                               capture_output=True, text=True, timeout=10)
            assert "not authori" in r.stderr.lower(), r.stderr
        # what is published on node 1 reaches a subscriber on node 2
        sub = subprocess.Popen(["mosquitto_sub", "-p", str(ports[1]), "-u", "demo", "-P", token,
                                "-i", "demo:reader", "-t", "chat/room/general", "-C", "1",
                                "-W", "10"], stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        subprocess.run(["mosquitto_pub", "-p", str(ports[0]), "-u", "demo", "-P", token, "-i",
                        "demo:writer", "-q", "1", "-t", "chat/in/demo/room/general", "-m",
                        "across nodes"], check=True, timeout=10)
        out, _ = sub.communicate(timeout=15)
        msg = json.loads(out)
        assert msg["body"] == "across nodes" and msg["from"] == "demo" and msg["seq"] >= 1
        pids = [int((run_dir / f).read_text()) for f in os.listdir(run_dir) if f.endswith(".pid")]
        # the web app of each node is printed and answers
        assert [n["http"]["port"] for n in stack["nodes"]] == [http, http + 1]
        for port in (http, http + 1):
            assert "http://127.0.0.1:%d/" % port in text
            page = urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10).read()
            assert b"mqtt.min.js" in page
        assert len(pids) == 7  # redis, two brokers, two bridges, two web fronts
    finally:
        stop_run_stack(proc)
    for n in (1, 2):
        for name in ("mosquitto.log", "bridge.log", "wsfront.log"):
            log = (run_dir / ("node%d" % n) / name).read_text()
            assert "Sanitizer" not in log and "runtime error:" not in log, log
    for pid in pids:
        assert not os.path.exists("/proc/%d" % pid) or \
            open("/proc/%d/stat" % pid).read().split()[2] == "Z", "pid %d still running" % pid
