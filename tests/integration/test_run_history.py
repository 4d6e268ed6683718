"""`make run` keeps history across restarts: messages posted before a stop
are in history after the next start, also when Redis's own data is gone
(the stack then restores from its SQLite store and seq continues)."""
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
from chatharness import (SANITIZE, asan_env, free_ports, start_run_stack,  # noqa: E402
                         stop_run_stack)

ROOT = os.environ.get("CHAT_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
BUILD = os.environ.get("CHAT_BUILD_DIR") or os.path.join(ROOT, "build")


def start(tmp_path, env):
    proc, text = start_run_stack(tmp_path, env)
    return proc, re.search(r"-u demo -P '([^']+)'", text).group(1)


def history(port, token, after):
    """One history request with mosquitto_pub/sub; returns the messages."""
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(port), "-u", "demo", "-P", token,
                            "-i", "demo:h", "-t", "chat/user/demo/rpc", "-C", "1", "-W", "10"],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    req = {"id": "h", "method": "history", "params": {"conv": "room:general", "after": after}}
    subprocess.run(["mosquitto_pub", "-p", str(port), "-u", "demo", "-P", token, "-i", "demo:q",
                    "-q", "1", "-t", "chat/in/demo/rpc", "-m", json.dumps(req)],
                   check=True, timeout=10)
    out, _ = sub.communicate(timeout=15)
    return json.loads(out)["result"]["messages"]


def post(port, token, body):
    subprocess.run(["mosquitto_pub", "-p", str(port), "-u", "demo", "-P", token, "-i",
                    "demo:w", "-q", "1", "-t", "chat/in/demo/room/general", "-m", body],
                   check=True, timeout=10)


def test_history_survives_restarts_and_a_lost_redis(tmp_path):
    run_dir = tmp_path / "run"
    base = free_ports(3)
    mqtt, http, redis = base, base + 1, base + 2
    env = dict(os.environ, RUN_DIR=str(run_dir), NODES="1", MQTT_PORT=str(mqtt),
               REDIS_PORT=str(redis), HTTP_PORT=str(http), BUILD=BUILD)
    if SANITIZE:
        env["MOSQUITTO_PRELOAD"] = asan_env()["LD_PRELOAD"]
    proc, token = start(tmp_path, env)
    try:
        for body in ("one", "two", "three"):
            post(mqtt, token, body)
        deadline = time.time() + 10
        while time.time() < deadline and len(history(mqtt, token, 0)) < 3:
            time.sleep(0.5)
        time.sleep(2)  # the persistence worker writes the store
    finally:
        stop_run_stack(proc)

    # a plain restart: Redis's append-only file and the store both kept it
    proc, token = start(tmp_path, env)
    try:
        assert [m["body"] for m in history(mqtt, token, 0)] == ["one", "two", "three"]
    finally:
        stop_run_stack(proc)

    # Redis's data lost: the store gives it back, seq continues after 3
    shutil.rmtree(run_dir / "redis")
    proc, token = start(tmp_path, env)
    try:
        msgs = []
        deadline = time.time() + 20
        while time.time() < deadline and len(msgs) < 3:
            msgs = history(mqtt, token, 0)
            time.sleep(0.5)
        assert [m["body"] for m in msgs] == ["one", "two", "three"]
        post(mqtt, token, "four")
        deadline = time.time() + 10
        while time.time() < deadline and len(msgs) < 4:
            msgs = history(mqtt, token, 0)
        assert [(m["seq"], m["body"]) for m in msgs] == \
            [(1, "one"), (2, "two"), (3, "three"), (4, "four")]
    finally:
        stop_run_stack(proc)
