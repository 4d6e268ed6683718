"""make bench-ha runs end to end in a tiny configuration (about a second
per setup and load): its table has a number in every cell for single
Redis and for the sentinel stack with and without the replica
acknowledgement, the ratios included. Speed is not asserted: a shared CI
machine would make that flaky; the figures are for the README."""
import os
import re
import subprocess

from chatharness import BUILD_DIR, SANITIZE, asan_env

ROOT = os.environ.get("CHAT_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
NUMBER = r"\d+(\.\d+)?"


def cells(out, label):
    rows = [l for l in out.splitlines() if l.startswith("| " + label + " |")]
    assert len(rows) == 1, f"one row '{label}' expected in:\n{out}"
    return [c.strip() for c in rows[0].strip("|").split("|")][1:]


def test_table_has_every_setup():
    env = dict(os.environ, BUILD=BUILD_DIR, SECONDS_PER_RUN="1", WARMUP="1", DRAIN_MS="300",
               RATES="2000")
    if SANITIZE:
        env["MOSQUITTO_PRELOAD"] = asan_env()["LD_PRELOAD"]
    r = subprocess.run([os.path.join(ROOT, "scripts", "bench-ha.sh")], env=env,
                       capture_output=True, text=True, timeout=300)
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    for label in ("saturation: delivered msgs/s", "saturation: server CPU µs per post",
                  "2000 delivered/s: delivered msgs/s", "2000 delivered/s: server CPU µs per post",
                  "2000 delivered/s: of which Redis (servers, sentinels)",
                  "2000 delivered/s: of which bridges"):
        for name, v in zip(("single", "wait 0", "wait 1", "wait 0 / single", "wait 1 / single"),
                           cells(out, label)):
            assert re.fullmatch(NUMBER, v) and float(v) > 0, f"{label}: {name} is '{v}'\n{out}"
    for v in cells(out, "2000 delivered/s: p50 / p99 / p99.9 ms")[:3]:
        assert re.fullmatch(rf"{NUMBER} / {NUMBER} / {NUMBER}", v), out
    # the setups are what they say: only wait 1 asks the replica
    single, wait0, wait1 = cells(out, "WAIT commands per post (every load)")[:3]
    assert float(single) == 0 and float(wait0) == 0 and float(wait1) > 0, out
