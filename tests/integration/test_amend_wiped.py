"""Edited and deleted text is gone from storage, files included (issue 22
finding 11; PROTOCOL.md 1.1 section 5): within a bound after msg.edit and
msg.delete, the original words are found in none of the SQLite store's
files (database, WAL, shared memory) and none of Redis's (the AOF's base
and increment files, the RDB snapshot), while the new text is there. The
files are read as bytes, with Redis's RDB compression off so that a word
in a snapshot is readable there; before the amend each word is found, so
the search is known to work."""
import glob
import os
import time

from chatharness import stored_messages
from mqttutil import payloads, rpc, signed_in, wait_for

BOUND_S = 45  # the design's bound is a few seconds; generous for ASan on 2 busy cores


def post(client, user, room, text):
    client.publish("chat/in/%s/room/%s" % (user, room), text, qos=1)
    got = wait_for(lambda: [m for m in payloads(client, "/room/" + room)
                            if m.get("type") == "msg" and m.get("body") == text], timeout=10)
    assert got, "post %r not delivered" % text
    return got[0]


def files_of(cluster):
    """The store's files when it is SQLite (a MongoDB store's are the
    server's), and Redis's."""
    store = []
    if cluster.store_url.startswith("sqlite:"):
        db = cluster.store_url[len("sqlite:"):]
        store = [p for p in (db, db + "-wal", db + "-shm") if os.path.exists(p)]
    redis = glob.glob(os.path.join(cluster.redis.dir, "appendonlydir", "*")) + \
        glob.glob(os.path.join(cluster.redis.dir, "*.rdb"))
    return store + redis


def holding(cluster, word):
    """The files whose bytes contain word."""
    needle = word.encode()
    out = []
    for p in files_of(cluster):
        try:
            with open(p, "rb") as f:
                if needle in f.read():
                    out.append(os.path.relpath(p, os.path.dirname(os.path.dirname(p))))
        except FileNotFoundError:
            pass  # replaced by a rewrite meanwhile
    return out


def test_edited_and_deleted_text_leaves_the_store_and_redis_files(make_cluster):
    cluster = make_cluster()
    redis = cluster.redis
    # an RDB snapshot too (the harness runs AOF only), uncompressed so a
    # word in it is readable
    redis.call("CONFIG", "SET", "save", "3600 1")
    redis.call("CONFIG", "SET", "rdbcompression", "no")
    tag = os.urandom(3).hex()
    zebra, quokka, walrus, narwhal = ("%s%s" % (w, tag) for w in
                                      ("zebra", "quokka", "walrus", "narwhal"))
    alice = signed_in(cluster.brokers[0].port, cluster.keys, "alice", "chat/room/wiped")
    try:
        assert "result" in rpc(alice, "alice", "room.create", {"room": "wiped"})
        m1 = post(alice, "alice", "wiped", "first draft " + zebra)
        m2 = post(alice, "alice", "wiped", "regret this " + quokka)
        m3 = post(alice, "alice", "wiped", "typo " + walrus)
        assert wait_for(lambda: len(stored_messages(cluster.store_url, "room:wiped")) == 3,
                        timeout=20)
        # every copy there is before the amends: the store, the AOF, a
        # snapshot (the recent list holds the words)
        redis.call("BGSAVE")
        assert wait_for(lambda: "rdb_bgsave_in_progress:0" in redis.call("INFO", "persistence")
                        and glob.glob(os.path.join(redis.dir, "*.rdb")), timeout=20)
        for w in (zebra, quokka, walrus):
            where = holding(cluster, w)
            assert any(p.endswith(".rdb") for p in where), (w, where)
            assert any("appendonly" in p for p in where), (w, where)

        edit = rpc(alice, "alice", "msg.edit", {"conv": "room:wiped", "seq": m1["seq"],
                                                "body": "final words " + tag})
        assert "result" in edit, edit
        e3 = rpc(alice, "alice", "msg.edit", {"conv": "room:wiped", "seq": m3["seq"],
                                              "body": "second typo " + narwhal})
        assert "result" in e3, e3
        for seq in (m2["seq"], m3["seq"]):
            assert "result" in rpc(alice, "alice", "msg.delete",
                                   {"conv": "room:wiped", "seq": seq})
        t0 = time.time()

        def wiped():
            return all(not holding(cluster, w) for w in (zebra, quokka, walrus, narwhal))
        ok = wait_for(wiped, timeout=BOUND_S, interval=0.5)
        took = time.time() - t0
        left = {w: holding(cluster, w) for w in (zebra, quokka, walrus, narwhal)}
        assert ok, "after %.0f s the old text is still in %s" % (took, left)
        print("edited and deleted text gone from every file after %.1f s" % took)
        # the new text is kept (the search finds what is there)
        assert wait_for(lambda: holding(cluster, "final words " + tag), timeout=10)
        history = rpc(alice, "alice", "history", {"conv": "room:wiped", "after": 0})["result"]
        bodies = {m["seq"]: m.get("body") for m in history["messages"]}
        assert bodies[m1["seq"]] == "final words " + tag and bodies[m2["seq"]] is None
    finally:
        alice.close()


def test_later_amends_are_wiped_too_and_redis_whatever_the_store(make_cluster, backend):
    """Amends one after another, within and past redis_rewrite_interval: each
    one's text leaves Redis's files (and SQLite's: MongoDB's files are the
    server's, README), the later ones at the next allowed rewrite. With
    both stores."""
    cluster = make_cluster(redis_rewrite_interval=3, **backend)
    alice = signed_in(cluster.brokers[1].port, cluster.keys, "alice", "chat/room/turns")
    try:
        assert "result" in rpc(alice, "alice", "room.create", {"room": "turns"})
        for i in range(3):
            word = "okapi%d%s" % (i, os.urandom(3).hex())
            m = post(alice, "alice", "turns", "about an " + word)
            assert wait_for(lambda: any(s == m["seq"] for s, _ in
                                        stored_messages(cluster.store_url, "room:turns")),
                            timeout=20)
            assert "result" in rpc(alice, "alice", "msg.delete",
                                   {"conv": "room:turns", "seq": m["seq"]})

            assert wait_for(lambda: not holding(cluster, word), timeout=BOUND_S, interval=0.5), \
                "amend %d: %r still in %s" % (i, word, holding(cluster, word))
    finally:
        alice.close()
