"""The Redis Cluster client (storage/rcluster.h) against a real 3+3 cluster
and a standalone redis-server, through tests/rcluster_probe.c: its
asynchronous client in its own poll loop (as the bridge runs it) and its
blocking one (as worker threads will).

What it proves: commands reach the primary owning their slot with no
redirect once the topology is known; while a slot migrates the client
follows ASK, and MOVED after, losing and repeating no command (INCR counts
come out exact); after CLUSTER FAILOVER and after kill -9 of a primary the
client finds the new primary within a bound and goes on; a standalone
Redis (ACL user) works through the same calls; a wrong password is
refused, never sent, never retried in a loop; a node that stops answering
gets its pending call answered "lost" within the timeout."""
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))

from chatharness import (BUILD_DIR, SANITIZE, HarnessError, Redis, Sentinel,  # noqa: E402
                         sentinel_settings)
from clusterharness import RedisCluster, ReplyError  # noqa: E402

# generous: a busy 2-core machine, servers and the probe under ASan
ANSWER_S = 60
FAILOVER_BOUND_S = 60


class Probe:
    """tests/rcluster_probe: one command line in, one answer line out."""

    def __init__(self, workdir, conf_lines, seeds=None, timeout_ms=None, refresh_ms=None):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        conf = os.path.join(self.dir, "probe.conf")
        with open(conf, "w") as f:
            f.write(conf_lines)
        env = dict(os.environ)
        for k, v in (("PROBE_SEEDS", seeds), ("PROBE_TIMEOUT_MS", timeout_ms),
                     ("PROBE_REFRESH_MS", refresh_ms)):
            if v is not None:
                env[k] = str(v)
        if SANITIZE:
            env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0"
            env["UBSAN_OPTIONS"] = "print_stacktrace=1"
        binary = os.path.join(BUILD_DIR, "tests", "rcluster_probe")
        if not os.path.exists(binary):
            raise HarnessError("probe not built: %s" % binary)
        self.errfile = os.path.join(self.dir, "probe.err")
        self.proc = subprocess.Popen([binary, "--config", conf], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=open(self.errfile, "w"),
                                     text=True, bufsize=1, env=env)

    def log(self):
        with open(self.errfile, errors="replace") as f:
            return f.read()

    def cmd(self, line, timeout=ANSWER_S):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        out = self.proc.stdout.readline().strip() if ready else ""
        assert out, "probe: no answer to %r within %ss; its log:\n%s" % (
            line, timeout, self.log()[-3000:])
        return out

    def many(self, line, timeout=ANSWER_S):
        """ "many ..." answered as a dict of counts."""
        out = self.cmd("many " + line, timeout)
        words = dict(w.split("=", 1) for w in out.split() if "=" in w)
        return {k: (int(v) if v.isdigit() else v) for k, v in words.items()}

    def stats(self, which="a"):
        return {k: int(v) for k, v in (w.split("=") for w in self.cmd("stats " + which).split())}

    def close(self):
        """quit, and check it exits cleanly (ASan: no leak, no report)."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        log = self.log()
        assert "ERROR: AddressSanitizer" not in log and "runtime error:" not in log, log[-4000:]
        assert self.proc.returncode == 0, "probe exited %s:\n%s" % (
            self.proc.returncode, log[-3000:])


@pytest.fixture
def rcluster(tmp_path_factory):
    c = RedisCluster(tmp_path_factory.mktemp("rcluster"))
    try:
        c.start()
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)
    yield c
    c.stop()


@pytest.fixture
def probes(tmp_path_factory):
    made = []

    def make(*args, **kw):
        p = Probe(tmp_path_factory.mktemp("probe"), *args, **kw)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()


def held(node, keys):
    """The values node itself holds for keys, leaving out those it does not
    own (it answers MOVED for them)."""
    return {k: v for k, v in zip(keys, node.pipe([["GET", k] for k in keys]))
            if not isinstance(v, ReplyError)}


def moved(node, keys):
    """Whether node answers MOVED for every one of keys."""
    return all(isinstance(v, ReplyError) and v.startswith("MOVED")
               for v in node.pipe([["GET", k] for k in keys]))


def until(probe, line, want, bound):
    """Sends line ("many ...") again until it answers ok=want with no error
    reply; returns when the try that did started (seconds from now) and the
    last answer."""
    start = time.time()
    while True:
        tried = time.time() - start
        got = probe.many(line)
        if (got["ok"] == want and got["errors"] == 0) or time.time() - start > bound:
            return tried, got
        print("%.2f s: %s" % (tried, got))
        time.sleep(0.2)


def test_commands_reach_the_primary_owning_their_slot(rcluster, probes):
    p = probes(rcluster.conf_lines())
    assert p.cmd("ready %d" % (ANSWER_S * 1000)) == "ready"
    n = 3000
    assert p.many("a %d SET route %%i" % n) == {"ok": n, "lost": 0, "down": 0, "other": 0,
                                                 "errors": 0}
    assert p.many("s %d INCR route" % n)["ok"] == n
    # no redirect: the slots computed here are the cluster's
    a, s = p.stats("a"), p.stats("s")
    assert (a["moved"], a["ask"], s["moved"], s["ask"]) == (0, 0, 0, 0), (a, s)
    assert a["nodes"] == 3 and a["standalone"] == 0 and a["links"] <= 3, a
    # each key is on the primary that owns its slot (a node answers MOVED
    # for any other), with its value written once and incremented once
    keys = ["route:%d" % i for i in range(n)]
    found = {}
    for primary in rcluster.primaries():
        mine = held(primary, keys)
        assert len(mine) > n / 6, "a primary holds only %d of %d keys" % (len(mine), n)
        found.update(mine)
    assert found == {"route:%d" % i: str(i + 1) for i in range(n)}


def test_slot_migration_is_followed_by_ask_then_moved(rcluster, probes):
    # no periodic refresh: the slot's move is learnt from MOVED alone
    p = probes(rcluster.conf_lines(), refresh_ms=600000)
    assert p.cmd("ready %d" % (ANSWER_S * 1000)) == "ready"
    keys = ["{mig}:%d" % i for i in range(20)]
    slot = rcluster.keyslot(keys[0])
    src = rcluster.owner(slot)
    dst = [n for n in rcluster.primaries() if n is not src][0]
    incrs = 0

    def incr_all(mode):
        nonlocal incrs
        assert p.many("%s 20 INCR {mig}" % mode) == {"ok": 20, "lost": 0, "down": 0,
                                                     "other": 0, "errors": 0}
        incrs += 1

    incr_all("a")
    # half the slot's keys moved: the source answers ASK for those
    rcluster.migrate_start(slot, src, dst)
    rcluster.migrate_keys(src, dst, keys[:10])
    incr_all("a")
    incr_all("s")
    a, s = p.stats("a"), p.stats("s")
    assert a["ask"] >= 10 and s["ask"] >= 10, (a, s)
    assert a["moved"] == 0 and s["moved"] == 0, (a, s)
    # the rest moved and the slot given to dst: MOVED once, then the table
    # sends there directly
    rcluster.migrate_keys(src, dst, keys[10:])
    rcluster.migrate_finish(slot, dst)
    incr_all("a")
    incr_all("s")
    a, s = p.stats("a"), p.stats("s")
    assert a["moved"] >= 1 and s["moved"] >= 1, (a, s)
    incr_all("a")
    incr_all("s")
    a2, s2 = p.stats("a"), p.stats("s")
    assert (a2["moved"], s2["moved"]) == (a["moved"], s["moved"]), (a, a2, s, s2)
    # every INCR applied exactly once, all on the new owner
    assert held(dst, keys) == {k: str(incrs) for k in keys}
    assert moved(src, keys)


def test_manual_failover_is_followed(rcluster, probes):
    # no periodic refresh: the new primary is learnt from MOVED
    p = probes(rcluster.conf_lines(), refresh_ms=600000)
    assert p.cmd("ready %d" % (ANSWER_S * 1000)) == "ready"
    n = 600
    assert p.many("a %d SET fo before" % n)["ok"] == n
    old = rcluster.primaries()[0]
    new = rcluster.replica_of(old)
    rcluster.failover(new)
    took_a, got = until(p, "a %d SET fo after-a-%%i" % n, n, FAILOVER_BOUND_S)
    assert got["ok"] == n, "async client after %.1f s: %s\n%s" % (took_a, got, p.log()[-3000:])
    took_s, got = until(p, "s %d SET fo after-s-%%i" % n, n, FAILOVER_BOUND_S)
    assert got["ok"] == n, "blocking client after %.1f s: %s" % (took_s, got)
    print("manual failover: async client on again after %.2f s, blocking %.2f s"
          % (took_a, took_s))
    a = p.stats("a")
    assert a["moved"] >= 1, a
    # the new primary holds its keys' last values; the old one, a replica
    # now, answers MOVED for them
    keys = ["fo:%d" % i for i in range(n)]
    mine = held(new, keys)
    assert len(mine) > n / 6
    assert all(v == "after-s-%s" % k.split(":")[1] for k, v in mine.items())
    assert old.role() == "slave"


def test_primary_killed_its_replica_takes_over(rcluster, probes):
    p = probes(rcluster.conf_lines(), seeds=rcluster.seeds())
    assert p.cmd("ready %d" % (ANSWER_S * 1000)) == "ready"
    n = 600
    assert p.many("a %d SET k9 %%i" % n)["ok"] == n
    victim = rcluster.primaries()[1]
    heir = rcluster.replica_of(victim)
    victim.kill()
    killed = time.time()
    # while the cluster has not failed it over, the victim's share is
    # refused (down) or in doubt (lost), the rest goes on
    got = p.many("a %d SET k9 %%i" % n)
    assert got["ok"] >= n / 3 and got["ok"] + got["lost"] + got["down"] + got["other"] == n, got
    before = p.stats("a")
    took, got = until(p, "a %d SET k9 v-%%i" % n, n, FAILOVER_BOUND_S)
    assert got["ok"] == n, "async client %.1f s after the kill: %s\n%s" % (
        time.time() - killed, got, p.log()[-3000:])
    async_back = time.time() - killed
    took_s, got = until(p, "s %d SET k9 w-%%i" % n, n, FAILOVER_BOUND_S)
    assert got["ok"] == n, "blocking client: %s" % got
    print("kill -9 of a primary: async client on again %.2f s after the kill, blocking %.2f s "
          "after that" % (async_back, took_s))
    rcluster.wait_promoted(heir)
    # the refreshes in between were bounded (a backoff, no busy loop):
    # at most one per REFRESH_MIN (0.2 s) plus failures' backoff
    after = p.stats("a")
    asked = (after["refreshes"] + after["refresh_failures"]
             - before["refreshes"] - before["refresh_failures"])
    assert asked <= took / 0.2 + 10, (before, after, took)
    keys = ["k9:%d" % i for i in range(n)]
    mine = held(heir, keys)
    assert len(mine) > n / 6
    assert all(v == "w-%s" % k.split(":")[1] for k, v in mine.items())


def test_standalone_redis_through_the_same_calls(tmp_path, probes):
    r = Redis(tmp_path / "redis", user="chat")
    r.start()
    try:
        p = probes(r.conf_lines(), timeout_ms=1500)
        assert p.cmd("ready %d" % (ANSWER_S * 1000)) == "ready"
        n = 500
        assert p.many("a %d SET one %%i" % n)["ok"] == n
        assert p.many("s %d INCR one" % n)["ok"] == n
        assert p.cmd("a x EVAL return(redis.call('INCRBY',KEYS[1],ARGV[1])) 1 one:7 5") == \
            "ok int:13"
        a = p.stats("a")
        assert (a["standalone"], a["nodes"], a["moved"], a["ask"]) == (1, 1, 0, 0), a
        assert r.call("GET", "one:499") == "500"
        # a server that stops answering: the pending call is answered
        # "lost" (it may have run) within the timeout, and once the server
        # answers again the client goes on
        os.killpg(r.proc.pid, signal.SIGSTOP)
        try:
            start = time.time()
            assert p.cmd("a one:1 INCR one:1", timeout=30) == "lost -"
            waited = time.time() - start
        finally:
            os.killpg(r.proc.pid, signal.SIGCONT)
        assert 1.0 <= waited < 15, waited
        took, got = until(p, "a 10 SET back %i", 10, FAILOVER_BOUND_S)
        assert got["ok"] == 10, got
        assert p.stats("a")["timeouts"] >= 1
    finally:
        r.stop()


def test_sentinel_primary_through_the_same_calls(tmp_path, probes):
    """redis_sentinels set: the primary the sentinels name is a standalone
    node owning every slot; after SENTINEL FAILOVER (the old primary alive,
    a replica now, answering writes READONLY) both clients move to the new
    one within a bound."""
    started = []
    try:
        primary = Redis(tmp_path / "primary", extra_conf="\n")
        started.append(primary.start())
        replica = Redis(tmp_path / "replica", replica_of=primary, extra_conf="\n")
        started.append(replica.start())
        deadline = time.time() + 30
        while time.time() < deadline and primary.info().get("connected_slaves") != "1":
            time.sleep(0.1)
        sentinel = Sentinel(tmp_path / "sentinel", primary, quorum=1)
        started.append(sentinel.start())
        conf = primary.conf_lines() + "".join(
            "%s %s\n" % kv for kv in sentinel_settings([sentinel]).items())
        p = probes(conf, refresh_ms=500)
        assert p.cmd("ready %d" % (ANSWER_S * 1000)) == "ready"
        n = 200
        assert p.many("a %d SET sen %%i" % n)["ok"] == n
        assert p.many("s %d INCR sen" % n)["ok"] == n
        a = p.stats("a")
        assert (a["standalone"], a["nodes"]) == (1, 1), a
        assert sentinel.call("SENTINEL", "FAILOVER", "chat") == "OK"
        deadline = time.time() + FAILOVER_BOUND_S
        while time.time() < deadline and sentinel.primary_port() != replica.port:
            time.sleep(0.1)
        assert sentinel.primary_port() == replica.port
        # writes the old primary takes before it is demoted are lost with
        # Sentinel (the bridge fences them with WAIT): wait for that first
        while time.time() < deadline and primary.call("ROLE").splitlines()[0] != "slave":
            time.sleep(0.1)
        took_a, got = until(p, "a %d SET sen a-%%i" % n, n, FAILOVER_BOUND_S)
        assert got["ok"] == n and got["errors"] == 0, got
        took_s, got = until(p, "s %d SET sen s-%%i" % n, n, FAILOVER_BOUND_S)
        assert got["ok"] == n and got["errors"] == 0, got
        print("sentinel failover: async client on the new primary %.2f s after the old "
              "one was demoted, blocking %.2f s after that" % (took_a, took_s))
        assert took_a < 15, took_a
        assert replica.call("GET", "sen:7") == "s-7"
        assert primary.call("ROLE").splitlines()[0] == "slave"
        # back to the first primary, this time with the current one alive
        # and its writes paused (as a planned switchover does): a write
        # sent to it is answered "lost" (in doubt) once the sentinel names
        # the other, not held until the pause ends
        assert replica.call("CLIENT", "PAUSE", "15000", "WRITE") == "OK"
        assert sentinel.call("SENTINEL", "FAILOVER", "chat") == "OK"
        start = time.time()
        assert p.cmd("a sen:1 SET sen:1 paused", timeout=30) == "lost -"
        assert time.time() - start < 12, time.time() - start
        took, got = until(p, "a %d SET sen b-%%i" % n, n, FAILOVER_BOUND_S)
        assert got["ok"] == n and got["errors"] == 0, got
        assert sentinel.primary_port() == primary.port
        assert primary.call("GET", "sen:1") == "b-1"
    finally:
        for srv in reversed(started):
            srv.stop()


def test_wrong_password_is_refused_and_nothing_sent(tmp_path, probes):
    r = Redis(tmp_path / "redis")
    r.start()
    try:
        bad = tmp_path / "wrong.password"
        bad.write_text("not-the-password\n")
        started = time.time()
        p = probes("redis_port %d\nredis_password_file %s\n" % (r.port, bad))
        assert p.cmd("ready 3000") == "timeout"
        assert p.cmd("s k SET k 1") == "auth -"
        assert p.cmd("a k SET k 1").split()[0] in ("down", "auth")
        assert r.call("EXISTS", "k") == "0"
        assert "refused the password" in p.log()
        # refused links are retried slowly (AUTH_RETRY_S), the topology
        # with a backoff: a few tries in these seconds, not a loop
        p.cmd("sleep 2000")
        failures = p.stats("a")["refresh_failures"]
        assert 2 <= failures <= 6 + (time.time() - started) / 2, failures
    finally:
        r.stop()


def cluster_ports():
    """A base port whose 6 ports and their cluster bus ports (+10000) are
    free, all below the kernel's ephemeral range."""
    for _ in range(200):
        base = random.randrange(20000, 22000)
        socks = []
        try:
            for p in [base + i for i in range(6)] + [base + 10000 + i for i in range(6)]:
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise HarnessError("no free ports for a cluster")


def test_redis_cluster_script_starts_a_cluster_the_client_uses(tmp_path, probes):
    """scripts/redis-cluster.sh (for make run REDIS=cluster): 3+3 nodes with
    the password, the seed list on its last line; stopped by stop.sh's pid
    files; started again, the same cluster with its data."""
    root = os.environ.get("CHAT_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
    script = os.path.join(root, "scripts", "redis-cluster.sh")
    run = tmp_path / "run"
    run.mkdir()
    pw = run / "redis.password"
    pw.write_text(os.urandom(16).hex() + "\n")
    env = dict(os.environ, PASSWORD_FILE=str(pw))
    base = cluster_ports()

    def start():
        r = subprocess.run([script, "start", str(run), str(base)], capture_output=True,
                           text=True, timeout=120, env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout.strip().splitlines()[-1]

    try:
        seeds = start()
        assert seeds == ",".join("127.0.0.1:%d" % (base + i) for i in range(6))
        assert len(list(run.glob("redis-c*.pid"))) == 6
        conf = "redis_port %d\nredis_password_file %s\n" % (base, pw)
        p = probes(conf)
        assert p.cmd("ready %d" % (ANSWER_S * 1000)) == "ready"
        assert p.many("a 300 SET scr %i")["ok"] == 300
        a = p.stats("a")
        assert (a["nodes"], a["standalone"]) == (3, 0), a
        p.close()
        subprocess.run([script, "stop", str(run)], check=True, timeout=60)
        assert not list(run.glob("redis-c*.pid"))
        assert start() == seeds  # formed already: started again as it was
        p = probes(conf, seeds=seeds)
        assert p.cmd("ready %d" % (ANSWER_S * 1000)) == "ready"
        assert p.cmd("s scr:299 GET scr:299") == "ok str:299"
    finally:
        subprocess.run([script, "stop", str(run)], timeout=60)
