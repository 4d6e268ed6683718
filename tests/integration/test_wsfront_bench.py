"""The web front's benchmark script runs end to end (a short run): every
path delivers, and an idle WebSocket connection costs chat-wsfront at most
16 KiB. The throughput figures themselves are for the README, not asserted
here: a loaded CI machine would make them flaky."""
import os
import re
import subprocess

from chatharness import BUILD_DIR, SANITIZE, asan_env
from wsutil import ROOT


def test_bench_script_short_run():
    env = dict(os.environ, BUILD=BUILD_DIR, REPEAT="1", SECONDS_PER_RUN="1", SUBS="20",
               IDLE_CONNS="500")
    if SANITIZE:
        env["MOSQUITTO_PRELOAD"] = asan_env()["LD_PRELOAD"]
    r = subprocess.run([os.path.join(ROOT, "scripts", "bench-wsfront.sh")], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [l for l in r.stdout.splitlines() if l.startswith("| broker set_tcp_nodelay")]
    assert len(rows) == 2, r.stdout
    for row in rows:
        cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
        tcp, ws, mws = (int(c.replace(",", "")) for c in cells[1:4])
        assert tcp > 0 and ws > 0 and mws > 0, row
    m = re.search(r"idle WebSocket connection in chat-wsfront: \*\*([\d.]+) KiB\*\*", r.stdout)
    assert m, r.stdout
    if not SANITIZE:  # ASan's redzones and quarantine are not what we ship
        assert float(m.group(1)) <= 16.0, r.stdout
