"""A real Redis Cluster for the integration tests: N primaries with one
replica each, every node a redis-server as the project runs it
(chatharness.Redis: append-only file synced on every write, a password)
plus cluster mode, on free loopback ports, each in its own folder; formed
with `redis-cli --cluster create ... --cluster-replicas 1 --cluster-yes`.

start() returns once every node says cluster_state:ok, all agree on who
owns every slot and every replica is in sync with its primary, so a test
can fail a node over at once. A cluster that does not form raises
HarnessError with what it saw.

The helpers move a slot the way an operator does (CLUSTER SETSLOT
IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE), fail a primary over (CLUSTER
FAILOVER on its replica, or kill -9 and wait for the replica to take
over) and read what each node holds, bypassing the client under test."""
import os
import socket
import subprocess
import time

from chatharness import HarnessError, Redis, find_binary, free_port


class ReplyError(str):
    """An error reply, as its text."""


def resp_command(words):
    return b"*%d\r\n" % len(words) + b"".join(
        b"$%d\r\n%s\r\n" % (len(w.encode()), w.encode()) for w in words)


class RespReader:
    """Just enough RESP2 to read replies off a socket."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise HarnessError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise HarnessError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:].decode()
        if kind == b"+":
            return rest
        if kind == b"-":
            return ReplyError(rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            return None if int(rest) < 0 else self._exact(int(rest)).decode()
        if kind == b"*":
            return None if int(rest) < 0 else [self.reply() for _ in range(int(rest))]
        raise HarnessError("bad RESP line %r" % line)


class ClusterNode(Redis):
    """One cluster node. node_timeout_ms is how long a node may not answer
    before the others fail it over; cluster-require-full-coverage no keeps
    the other shards serving meanwhile, and a replica takes over however
    long it was cut off (validity factor 0)."""

    def __init__(self, workdir, node_timeout_ms=3000, **kw):
        self.bus_port = free_port()
        conf = ("cluster-enabled yes\n"
                "cluster-config-file nodes.conf\n"
                "cluster-node-timeout %d\n"
                "cluster-port %d\n"
                "cluster-require-full-coverage no\n"
                "cluster-replica-validity-factor 0\n" % (node_timeout_ms, self.bus_port))
        super().__init__(workdir, extra_conf=conf, **kw)

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port

    def pipe(self, commands):
        """Many commands (lists of words) on one connection; returns each
        reply: bytes decoded, an int, None for nil, a list, or an
        ReplyError. The node answers for itself: a key it does not own
        answers ReplyError("MOVED ..."), not the value."""
        out = b"".join(resp_command([str(w) for w in c]) for c in commands)
        with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
            s.sendall(self.hello() + out)
            reader = RespReader(s)
            if self.password:
                reader.reply()  # +OK to AUTH
            return [reader.reply() for _ in commands]

    def role(self):
        """"master", "slave", or None when it does not answer."""
        return self.info("replication").get("role")

    def cluster_info(self):
        """CLUSTER INFO as a dict (cluster_state, ...)."""
        return dict(l.split(":", 1) for l in self.call("CLUSTER", "INFO").splitlines()
                    if ":" in l)

    def myid(self):
        return self.call("CLUSTER", "MYID")


class RedisCluster:
    def __init__(self, workdir, primaries=3, node_timeout_ms=3000, password=True, user=None):
        self.dir = str(workdir)
        self.nodes = [ClusterNode(os.path.join(self.dir, "node%d" % i), node_timeout_ms,
                                  password=password, user=user)
                      for i in range(2 * primaries)]
        self.nprimaries = primaries

    # ---- life ----

    def start(self, timeout=90):
        """Starts the nodes and forms the cluster; on any failure stops
        what it started and raises HarnessError."""
        try:
            for n in self.nodes:
                n.start()
            first = self.nodes[0]
            cmd = [find_binary("redis-cli")]
            if first.user:
                cmd += ["--user", first.user]
            cmd += ["--cluster", "create"] + [n.addr for n in self.nodes] + [
                "--cluster-replicas", "1", "--cluster-yes"]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                               env=first.cli_env())
            if r.returncode != 0:
                raise HarnessError("redis-cli --cluster create: %s\n%s" % (r.stdout, r.stderr))
            self.wait_stable(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        for n in self.nodes:
            n.stop()

    def alive(self):
        return [n for n in self.nodes if n.alive()]

    def node(self, port):
        for n in self.nodes:
            if n.port == int(port):
                return n
        raise HarnessError("no cluster node on port %s" % port)

    # ---- what the cluster says ----

    def slots(self, via=None):
        """{(start, end): primary port} as via sees it (CLUSTER NODES)."""
        out = {}
        for n in self.cluster_nodes(via):
            if "master" in n["flags"] and "fail" not in n["flags"]:
                for rng in n["slots"]:
                    out[rng] = n["port"]
        return out

    def cluster_nodes(self, via=None):
        """CLUSTER NODES as dicts: id, port, flags (a set), master (id or
        "-"), slots (list of (start, end))."""
        via = via or self.alive()[0]
        out = []
        for line in via.call("CLUSTER", "NODES").splitlines():
            f = line.split()
            if len(f) < 8:
                continue
            ranges = []
            for s in f[8:]:
                if s.startswith("["):
                    continue  # a slot being migrated or imported
                a, _, b = s.partition("-")
                ranges.append((int(a), int(b or a)))
            out.append({"id": f[0], "port": int(f[1].split("@")[0].rsplit(":", 1)[1]),
                        "flags": set(f[2].split(",")), "master": f[3], "slots": ranges})
        return out

    def primaries(self, via=None):
        """The live primaries that own slots, as ClusterNode objects."""
        return [self.node(n["port"]) for n in self.cluster_nodes(via)
                if "master" in n["flags"] and "fail" not in n["flags"] and n["slots"]]

    def owner(self, slot, via=None):
        for n in self.cluster_nodes(via):
            if "master" in n["flags"] and "fail" not in n["flags"]:
                if any(a <= slot <= b for a, b in n["slots"]):
                    return self.node(n["port"])
        raise HarnessError("no primary owns slot %d" % slot)

    def replica_of(self, primary, via=None):
        pid = primary.myid()
        for n in self.cluster_nodes(via):
            if n["master"] == pid and "fail" not in n["flags"]:
                return self.node(n["port"])
        raise HarnessError("primary %d has no replica" % primary.port)

    def keyslot(self, key):
        return int(self.alive()[0].call("CLUSTER", "KEYSLOT", key))

    def seeds(self):
        return ",".join(n.addr for n in self.nodes)

    def conf_lines(self):
        """Settings for a component: one node's address and the AUTH."""
        return self.nodes[0].conf_lines()

    def wait_stable(self, timeout=90):
        """Until every live node says cluster_state:ok, they all name the
        same primaries for all 16384 slots, and every live replica's link
        to its primary is up."""
        deadline = time.time() + timeout
        why = "not asked yet"
        while time.time() < deadline:
            why = self._unstable()
            if why is None:
                return
            time.sleep(0.2)
        raise HarnessError("cluster not stable after %ss: %s" % (timeout, why))

    def _unstable(self):
        views = []
        try:
            for n in self.alive():
                state = n.cluster_info().get("cluster_state")
                if state != "ok":
                    return "%d: cluster_state %s" % (n.port, state)
                view = sorted(self.slots(n).items())
                if sum(b - a + 1 for (a, b), _ in view) != 16384:
                    return "%d: not all slots covered" % n.port
                views.append(view)
                if n.role() == "slave" and \
                        n.info("replication").get("master_link_status") != "up":
                    return "%d: replica not in sync" % n.port
        except (HarnessError, subprocess.TimeoutExpired) as e:
            return str(e)
        if any(v != views[0] for v in views):
            return "nodes disagree on the slots"
        return None

    # ---- moving a slot ----

    def migrate_start(self, slot, src, dst):
        dst.call("CLUSTER", "SETSLOT", slot, "IMPORTING", src.myid())
        src.call("CLUSTER", "SETSLOT", slot, "MIGRATING", dst.myid())

    def migrate_keys(self, src, dst, keys):
        auth = []
        if dst.password:
            auth = ["AUTH2", dst.user, dst.password] if dst.user else ["AUTH", dst.password]
        out = src.call("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, *auth, "KEYS", *keys)
        if out != "OK":
            raise HarnessError("MIGRATE %s: %s" % (keys, out))

    def migrate_finish(self, slot, dst):
        """SETSLOT NODE on the target first, then everywhere (as the
        specification orders it)."""
        dst_id = dst.myid()
        dst.call("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        for n in self.alive():
            if n is not dst and n.role() == "master":
                n.call("CLUSTER", "SETSLOT", slot, "NODE", dst_id)

    # ---- failing over ----

    def failover(self, replica, timeout=60):
        """CLUSTER FAILOVER on replica (coordinated with its primary);
        returns when it is a primary and the cluster is stable."""
        out = replica.call("CLUSTER", "FAILOVER")
        if out != "OK":
            raise HarnessError("CLUSTER FAILOVER on %d: %s" % (replica.port, out))
        deadline = time.time() + timeout
        while time.time() < deadline and replica.role() != "master":
            time.sleep(0.1)
        if replica.role() != "master":
            raise HarnessError("replica %d not promoted within %ss" % (replica.port, timeout))
        self.wait_stable(timeout)

    def wait_promoted(self, replica, timeout=60):
        """After a primary was killed: until its replica is primary and the
        live nodes are stable again."""
        deadline = time.time() + timeout
        while time.time() < deadline and replica.role() != "master":
            time.sleep(0.1)
        if replica.role() != "master":
            raise HarnessError("replica %d not promoted within %ss" % (replica.port, timeout))
        self.wait_stable(max(1, deadline - time.time()))
