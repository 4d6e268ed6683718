"""make bench-peer runs end to end in a tiny configuration (about a second
per system and load): the issue-11 table has a number in every cell for the
cluster, plain mosquitto, the mosquitto pair (two plain brokers joined by
mosquitto's bridge) and the Socket.IO peer, the cluster's profile
prints Redis commands per post, and the connections mode prints its table
for the cluster and plain mosquitto. Speed is not asserted: a shared CI
machine would make that flaky; the figures are for the README."""
import os
import re
import subprocess

from chatharness import BUILD_DIR, SANITIZE, asan_env

ROOT = os.environ.get("CHAT_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
NUMBER = r"\d+(\.\d+)?"


def run(extra):
    env = dict(os.environ, BUILD=BUILD_DIR, SECONDS_PER_RUN="1", WARMUP="1", DRAIN_MS="300",
               PROFILE_SECONDS="1", **extra)
    if SANITIZE:
        env["MOSQUITTO_PRELOAD"] = asan_env()["LD_PRELOAD"]
    r = subprocess.run([os.path.join(ROOT, "scripts", "bench-peer.sh")], env=env,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def cells(out, label):
    rows = [l for l in out.splitlines() if l.startswith("| " + label + " |")]
    assert len(rows) == 1, f"one row '{label}' expected in:\n{out}"
    return [c.strip() for c in rows[0].strip("|").split("|")][1:]


def test_table_has_every_system():
    out = run({"RATES": "2000"})
    for label in ("saturation: delivered msgs/s", "saturation: delivered per server CPU-second",
                  "2000/s offered: delivered msgs/s", "2000 delivered/s: per server CPU-s"):
        cluster, plain, peer, to_peer, to_plain, pair, pair_to_peer = cells(out, label)[:7]
        for name, v in (("cluster", cluster), ("plain", plain), ("peer", peer),
                        ("cluster / peer", to_peer), ("cluster / plain", to_plain),
                        ("mosquitto pair", pair), ("pair / peer", pair_to_peer)):
            assert re.fullmatch(NUMBER, v) and float(v) > 0, f"{label}: {name} is '{v}'\n{out}"
    latencies = cells(out, "2000/s: p50 / p99 / p99.9 ms")
    for v in latencies[:3] + [latencies[5]]:
        assert re.fullmatch(rf"{NUMBER} / {NUMBER} / {NUMBER}", v), out
    # the profile: the script call that stores a post shows up per post
    m = re.search(r"^  evalsha +(\d+) +([\d.]+)", out, re.M)
    assert m and int(m.group(1)) > 0, out
    assert re.search(r"^  bridge1 +[\d.]+ +[\d.]+$", out, re.M), out


def test_connections_mode():
    out = run({"MODE": "conns", "CONNS": "200", "IDLE": "1", "PRESENCE_WAIT": "2"})
    for label in ("connect_s", "rss_per_conn_kb", "storm_s"):
        cluster, plain = cells(out, label)[:2]
        assert re.fullmatch(NUMBER, cluster) and re.fullmatch(NUMBER, plain), f"{label}\n{out}"
