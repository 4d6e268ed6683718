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
