"""The store's C conformance suite (tests/unit/test_store.c) against a real
MongoDB-wire server: FerretDB 1.24 on SQLite, started by the harness. The
same suite runs against the SQLite backend as the ctest unit_test_store."""
import os
import re
import subprocess

BUILD_DIR = os.environ.get("CHAT_BUILD_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")


def run_suite(url):
    binary = os.path.join(BUILD_DIR, "tests", "test_store")
    assert os.access(binary, os.X_OK), "build test_store first: %s" % binary
    return subprocess.run([binary, url], capture_output=True, text=True, timeout=300)


def test_store_conformance_suite_passes_against_ferretdb(ferretdb):
    url = ferretdb.url + "store_conformance"
    r = run_suite(url)
    out = r.stdout + r.stderr
    assert "store conformance against " + url in r.stdout, out
    m = re.search(r"(\d+) passed, (\d+) failed", r.stdout)
    assert m, out
    assert (int(m.group(2)), r.returncode) == (0, 0), out
    # the whole suite ran, not an early exit
    assert int(m.group(1)) >= 150, out


def test_store_writes_land_in_the_documented_collections(ferretdb):
    """What the suite wrote is queryable as fields, with the indexes made at
    open (the README's MongoDB layout)."""
    import pymongo

    url = ferretdb.url + "store_layout"
    r = run_suite(url)
    assert r.returncode == 0, r.stdout + r.stderr
    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=5000)
    try:
        db = client.get_database("store_layout")
        doc = db.messages.find_one({"conv": "room:general", "seq": 3})
        assert doc is not None
        assert {k: doc[k] for k in ("conv", "seq", "from", "to", "cid")} == {
            "conv": "room:general", "seq": 3, "from": "alice", "to": "general",
            "cid": "c-3"}
        assert db.messages.count_documents({"conv": "room:general"}) == 120
        assert db.users.find_one({"_id": "alice"})["pwhash"].startswith("$argon2id$")
        assert db.rooms.find_one({"_id": "general"})["owner"] == "carol"
        assert db.reads.find_one({"user": "alice", "conv": "room:general"})["seq"] == 10
        unique = {}
        for coll in ("messages", "members", "reads"):
            for ix in db[coll].list_indexes():
                if ix.get("unique"):
                    unique[coll] = list(ix["key"].keys())
        assert unique == {"messages": ["conv", "seq"], "members": ["room", "user"],
                          "reads": ["user", "conv"]}
    finally:
        client.close()


class CommandRecorder:
    """A TCP relay in front of the real FerretDB that decodes every OP_MSG
    the client sends (the command document, section kind 0), so a test can
    see what the driver put on the wire."""

    def __init__(self, port):
        import socket
        import threading
        self.target = port
        self.bodies = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        import socket
        import threading
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self.relay, args=(server, client), daemon=True).start()
            threading.Thread(target=self.record, args=(client, server), daemon=True).start()

    @staticmethod
    def relay(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            s.close()

    @staticmethod
    def recv_exact(s, n):
        buf = b""
        while len(buf) < n:
            data = s.recv(n - len(buf))
            if not data:
                return None
            buf += data
        return buf

    def record(self, client, server):
        import struct
        import bson
        try:
            while True:
                head = self.recv_exact(client, 16)
                if head is None:
                    break
                length, _, _, opcode = struct.unpack("<iiii", head)
                rest = self.recv_exact(client, length - 16)
                if rest is None:
                    break
                if opcode == 2013 and rest[4] == 0:  # OP_MSG, body section first
                    size = struct.unpack_from("<i", rest, 5)[0]
                    with self.lock:
                        self.bodies.append(bson.decode(rest[5:5 + size]))
                server.sendall(head + rest)
        except OSError:
            pass
        for s in (client, server):
            s.close()

    def close(self):
        self.sock.close()


def test_every_store_write_asks_for_a_journaled_majority(ferretdb):
    """What the store sends, seen on the wire: every insert, update, delete
    and findAndModify carries writeConcern {w: "majority", j: true} with the
    store timeout as wtimeout (README, MongoDB). FerretDB has no replica
    set, so the election itself cannot be tested here; the write concern
    that makes a confirmed put survive one can."""
    rec = CommandRecorder(ferretdb.port)
    try:
        r = run_suite("mongodb://127.0.0.1:%d/store_wc" % rec.port)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        rec.close()
    writes = {"insert", "update", "delete", "findAndModify"}
    seen = {}
    for body in rec.bodies:
        name = next(iter(body))
        if name in writes:
            seen.setdefault(name, []).append(body.get("writeConcern"))
    # the suite's puts, read markers, member removals and room upserts
    assert {"insert", "update", "delete"} <= set(seen), sorted(seen)
    for name, concerns in seen.items():
        for wc in concerns:
            assert wc is not None and wc.get("w") == "majority" and wc.get("j") is True \
                and wc.get("wtimeout", 0) > 0, (name, wc)
