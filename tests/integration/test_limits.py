"""One user cannot hurt the others (issue 10, PROTOCOL.md 1.1 sections 2, 4
and 6): every kind of input is rate limited per user across instances,
rooms.list is paged, the role of a request is that of the token of the
connection that sent it, NUL is refused and never cut, and room lists stay
current from live events."""
import json
import os
import subprocess
import sys
import time

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqttutil import V5, Client, payloads, rpc, wait_for

FAST = {"rpc_rate_per_s": 100000, "rpc_rate_burst": 100000,
        "create_rate_per_s": 100000, "create_rate_burst": 100000,
        "rate_per_s": 100000, "rate_burst": 100000}


def connect(port, keys, user, role="user", ttl="1h", protocol=None, client_id=None):
    kw = {"protocol": protocol} if protocol else {}
    c = Client(port, user, keys.mint(user, role=role, ttl=ttl), client_id=client_id, **kw)
    assert c.connect() == 0
    assert c.subscribe("chat/user/%s/#" % user, qos=1) < 0x80
    return c


def rpc_many(client, user, calls, timeout=30):
    """Sends every (method, params) at once and returns the replies in order."""
    ids = []
    for i, (method, params) in enumerate(calls):
        rid = "m%d-%d" % (int(time.time() * 1e6), i)
        ids.append(rid)
        client.publish("chat/in/%s/rpc" % user,
                       json.dumps({"id": rid, "method": method, "params": params}), qos=1)

    def collect():
        got = {}
        with client.lock:
            for t, p in client.messages:
                if t.endswith("/rpc"):
                    r = json.loads(p)
                    got[r.get("id")] = r
        return got
    got = wait_for(lambda: (lambda g: g if all(i in g for i in ids) else None)(collect()),
                   timeout=timeout)
    assert got, "not every reply arrived"
    return [got[i] for i in ids]


def list_all(client, user, limit, query=None):
    rooms, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit}
        if query is not None:
            params["query"] = query
        if cursor is not None:
            params["cursor"] = cursor
        res = rpc(client, user, "rooms.list", params)["result"]
        assert len(res["rooms"]) <= limit
        rooms += res["rooms"]
        pages += 1
        cursor = res["next"]
        if cursor is None:
            return rooms, pages
        assert cursor == res["rooms"][-1]["room"]


# ---- rooms.list: paged, with query, cursor and limit ----

def test_rooms_list_pages_public_and_mine(make_cluster):
    cluster = make_cluster(**FAST)
    keys = cluster.keys
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    alice, bob = connect(n1, keys, "alice"), connect(n2, keys, "bob")
    pub = ["pub-%03d" % i for i in range(250)]
    hidden = ["hid-%02d" % i for i in range(30)]
    mine = ["bob-%02d" % i for i in range(20)]
    replies = rpc_many(alice, "alice", [("room.create", {"room": r}) for r in pub] +
                       [("room.create", {"room": r, "private": True}) for r in hidden])
    assert all("result" in r for r in replies), [r for r in replies if "error" in r][:3]
    assert all("result" in r for r in rpc_many(bob, "bob", [
        ("room.create", {"room": r, "private": True}) for r in mine]))
    invited = hidden[:5]
    assert all("result" in r for r in rpc_many(alice, "alice", [
        ("room.invite", {"room": r, "user": "bob"}) for r in invited]))
    assert "result" in rpc(bob, "bob", "room.join", {"room": "pub-007"})

    rooms, pages = list_all(bob, "bob", 37)
    names = [r["room"] for r in rooms]
    assert names == sorted(pub + mine + invited), "bob's list, page by page"
    assert pages == -(-len(names) // 37)
    by = {r["room"]: r for r in rooms}
    assert by["pub-007"]["member"] is True and by["pub-008"]["member"] is False
    assert by["pub-008"] == {"room": "pub-008", "owner": "alice", "private": False,
                             "member": False}
    assert by["hid-03"]["private"] is True and by["hid-03"]["member"] is True
    assert by["bob-05"] == {"room": "bob-05", "owner": "bob", "private": True, "member": True}

    # alice sees every room she made, and none of bob's
    names_a = [r["room"] for r in list_all(alice, "alice", 200)[0]]
    assert names_a == sorted(pub + hidden)

    # query is a name prefix; combined with a cursor and the default limit
    q = [r["room"] for r in list_all(bob, "bob", 7, query="pub-1")[0]]
    assert q == ["pub-%03d" % i for i in range(100, 200)]
    first = rpc(bob, "bob", "rooms.list", {"query": "pub-"})["result"]
    assert [r["room"] for r in first["rooms"]] == pub[:50] and first["next"] == "pub-049"
    assert rpc(bob, "bob", "rooms.list", {"query": "zzz"})["result"] == {"rooms": [],
                                                                         "next": None}
    last = rpc(bob, "bob", "rooms.list", {"cursor": "pub-248"})["result"]
    assert [r["room"] for r in last["rooms"]] == ["pub-249"] and last["next"] is None

    # room.members gathers more members than one script call takes (200)
    many = ["u%03d" % i for i in range(450)]
    # users who exist (as if registered): only those may be invited
    cluster.redis.call("SADD", "chat:users", *many)
    assert all("result" in r for r in rpc_many(alice, "alice", [
        ("room.invite", {"room": "pub-001", "user": u}) for u in many]))
    members = rpc(bob, "bob", "room.members", {"room": "pub-001"})["result"]["members"]
    assert [m["user"] for m in members] == sorted(many + ["alice"])
    assert {m["user"]: m["online"] for m in members}["alice"] is True

    # unread pages like rooms.list (issue 22): more conversations than one
    # page takes (200) come by following next
    for r in pub:
        alice.c.publish("chat/in/alice/room/%s" % r, "hi %s" % r, qos=1)
    alice.publish("chat/in/alice/dm/bob", "psst", qos=1)

    def unread_convs():
        convs, cursor = [], None
        while True:
            res = rpc(alice, "alice", "unread", {"cursor": cursor} if cursor else {})["result"]
            assert len(res["conversations"]) <= 200
            convs += [c["conv"] for c in res["conversations"]]
            cursor = res["next"]
            if cursor is None:
                return convs if len(convs) >= len(pub) + 1 else None
    convs = wait_for(unread_convs, timeout=20)
    assert convs and sorted(convs) == sorted(["room:" + r for r in pub] + ["dm:alice:bob"])

    for bad in ({"limit": 0}, {"limit": 201}, {"limit": 1.5}, {"limit": "10"},
                {"cursor": "Bad!"}, {"cursor": 5}, {"cursor": ""}, {"query": "X"},
                {"query": 3}, {"query": "a b"}):
        reply = rpc(bob, "bob", "rooms.list", bad)
        assert reply.get("error", {}).get("code") == "bad_request", (bad, reply)

    # a cold start from the store rebuilds the indexes
    cluster.redis.call("FLUSHALL")
    assert wait_for(lambda: cluster.redis.call("EXISTS", "chat:restored") == "1", timeout=30)
    assert [r["room"] for r in list_all(bob, "bob", 200)[0]] == names
    # a Redis from a version without the indexes gets them at bridge start
    cluster.redis.call("DEL", "chat:rooms:index", "chat:user:bob:roomindex",
                       "chat:roomindex:v1")
    assert list_all(bob, "bob", 200)[0] == []
    cluster.bridges[0].restart()
    assert wait_for(lambda: cluster.redis.call("EXISTS", "chat:roomindex:v1") == "1",
                    timeout=20)
    assert [r["room"] for r in list_all(bob, "bob", 200)[0]] == names
    for c in (alice, bob):
        c.close()


# ---- a flood of requests slows down only its sender ----

def stamped(client):
    """Records when each DM body arrives, in paho's thread, as it arrives."""
    client.arrived = {}
    orig = client._on_message

    def on_message(c, u, msg):
        try:
            body = json.loads(msg.payload).get("body")
        except ValueError:
            body = None
        if body is not None:
            client.arrived.setdefault(body, time.time())
        orig(c, u, msg)
    client.c.on_message = on_message


def dm_latencies(sender, receiver, n, gap):
    """Sends n DMs alice -> bob, gap seconds apart; returns the sorted
    latencies in seconds (inf for one that never arrived)."""
    sent = {}
    for i in range(n):
        body = "lat-%d-%f" % (i, time.time())
        sent[body] = time.time()
        sender.publish("chat/in/alice/dm/bob", body, qos=1)
        time.sleep(gap)
    wait_for(lambda: all(b in receiver.arrived for b in sent), timeout=20)
    return sorted(receiver.arrived.get(b, float("inf")) - t0 for b, t0 in sent.items())


def p99(values):
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (from /proc)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy():
    """(busy, total) CPU ticks of the whole machine so far (/proc/stat)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]
    return sum(ticks) - idle, sum(ticks)


def busy_cores(before, after):
    return (after[0] - before[0]) / max(1, after[1] - before[1]) * os.cpu_count()


def median(values):
    v = sorted(values)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


FLOOD_ROUNDS = 2
# inputs a second on each of the flooder's five connections: 50 times the
# post and request limits, 330 times typing's; "as fast as acknowledged"
# (rate 0) takes a whole core of this 2-core machine in the flooder itself
FLOOD_RATE = int(os.environ.get("CHAT_FLOOD_RATE", "1000"))


def test_flood_of_requests_is_limited_and_others_keep_their_latency(cluster):
    """Quiet and flood are measured the same way, alternating in one run
    (quiet, flood, quiet, flood): alice's DMs to bob on node 2, while on
    node 1 one abusive client (tests/integration/flooder.py, its own
    process: one connection per input kind, each QoS 1 at FLOOD_RATE a
    second, or as fast as the broker acknowledges with CHAT_FLOOD_RATE=0)
    floods room creation, rooms.list, posts to a room
    and to no room, and typing. Prints each phase's p99 and the CPU every
    process spent in the flood phases."""
    keys = cluster.keys
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    mallory = connect(n1, keys, "mallory")
    alice, bob = connect(n2, keys, "alice"), connect(n2, keys, "bob")
    stamped(bob)
    assert "result" in rpc(mallory, "mallory", "room.create", {"room": "floodroom"})
    time.sleep(1.1)  # the create bucket's token back
    token = keys.mint("mallory", ttl="1h")
    procs = {"broker1": cluster.brokers[0], "bridge1": cluster.bridges[0],
             "broker2": cluster.brokers[1], "bridge2": cluster.bridges[1],
             "redis": cluster.redis}
    quiet, loud, reports, cpu, busy = [], [], [], {}, {"quiet": [], "flood": []}
    wall = 0.0
    dm_latencies(alice, bob, 20, 0.02)  # warm up
    start = time.time()
    for _ in range(FLOOD_ROUNDS):
        m0 = machine_busy()
        quiet.append(p99(dm_latencies(alice, bob, 100, 0.02)))
        busy["quiet"].append(round(busy_cores(m0, machine_busy()), 2))
        time.sleep(0.5)
        flooder = subprocess.Popen(
            [sys.executable, os.path.join(os.path.dirname(__file__), "flooder.py"),
             str(n1), "mallory", token, "floodroom", str(FLOOD_RATE)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert flooder.stdout.readline().strip() == "started"
            time.sleep(1.0)
            before = {k: cpu_seconds(v.proc.pid) for k, v in procs.items()}
            t0, m0 = time.time(), machine_busy()
            loud.append(p99(dm_latencies(alice, bob, 100, 0.02)))
            wall += time.time() - t0
            busy["flood"].append(round(busy_cores(m0, machine_busy()), 2))
            for k, v in procs.items():
                cpu[k] = cpu.get(k, 0.0) + cpu_seconds(v.proc.pid) - before[k]
            out, _ = flooder.communicate("", timeout=60)
        finally:
            if flooder.poll() is None:
                flooder.kill()
                flooder.wait()
        reports.append(json.loads(out.strip().splitlines()[-1]))
        time.sleep(1.0)
    elapsed = time.time() - start
    sent = sum(sum(r["sent"].values()) for r in reports)
    print("DM p99 quiet %s ms, flood %s ms; median quiet %.1f ms, flood %.1f ms" % (
        [round(q * 1000, 1) for q in quiet], [round(q * 1000, 1) for q in loud],
        median(quiet) * 1000, median(loud) * 1000))
    print("flood: %s" % reports)
    print("CPU share of one core while measuring under the flood: %s" % {
        k: round(v / wall, 2) for k, v in cpu.items()})
    print("cores busy on the whole machine (of %d): %s" % (os.cpu_count(), busy))
    # not a timed test: generous, so it holds on a loaded 2-core machine;
    # without the limits the DMs never arrived (p99 unbounded)
    assert median(loud) < max(0.5, 10 * median(quiet)), (quiet, loud)
    limited = sum(r["rate_limited"] for r in reports)
    created = sum(r["created"] for r in reports)
    ok = sum(r["ok"] for r in reports)
    not_found = sum(r["not_found"] for r in reports)
    assert limited, "no rate_limited reply to %d inputs" % sent
    # burst 5, then 1 a second (and each also spends a request token)
    assert created <= 5 + elapsed + 2, (created, elapsed)
    assert ok <= 40 + 20 * (elapsed + 2), (ok, elapsed)
    # posts share one bucket, refused targets included (burst 40, 20 a second)
    posted = int(cluster.redis.call("GET", "chat:seq:room:floodroom") or 0)
    assert 1 <= posted + not_found <= 40 + 20 * (elapsed + 2), (posted, not_found)
    typed = [p for p in payloads(bob, "/inbox") if p.get("type") == "typing"]
    assert len(typed) <= 6 + 3 * (elapsed + 2), len(typed)
    for c in (mallory, alice, bob):
        c.close()


# ---- typing ----

def test_typing_is_limited_per_user_across_instances(cluster):
    keys = cluster.keys
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    m1 = connect(n1, keys, "trudy", client_id="trudy:a")
    m2 = connect(n2, keys, "trudy", client_id="trudy:b")
    victim = connect(n2, keys, "victor")
    assert victim.subscribe("chat/room/lobby/typing") < 0x80
    rpc(m1, "trudy", "room.create", {"room": "lobby"})
    start = time.time()
    for i in range(500):
        for m in (m1, m2):
            m.c.publish("chat/in/trudy/typing/dm/victor", b"", qos=0)
            m.c.publish("chat/in/trudy/typing/room/lobby", b"", qos=0)
    time.sleep(1.5)
    elapsed = time.time() - start
    relayed = [p for p in payloads(victim, "/inbox") if p.get("type") == "typing"] + \
        payloads(victim, "/room/lobby/typing")
    # burst 6, then 3 a second, shared by both connections and both targets
    allowed = 6 + 3 * elapsed + 2
    assert 1 <= len(relayed) <= allowed, (len(relayed), allowed)
    notices = [p for p in payloads(m1, "/notice") + payloads(m2, "/notice")
               if p["code"] == "rate_limited"]
    assert 1 <= len(notices) <= 2 + elapsed / 5, len(notices)
    for c in (m1, m2, victim):
        c.close()


# ---- no right outlives its token ----

def test_admin_rights_end_with_the_admin_token(cluster):
    keys = cluster.keys
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    owner = connect(n2, keys, "olivia")
    assert "result" in rpc(owner, "olivia", "room.create", {"room": "safe", "private": True})
    owner.publish("chat/in/olivia/room/safe", b"secret plans", qos=1)

    admin = connect(n1, keys, "eve", role="admin", ttl="4s")
    # while the admin token is valid, the admin may invite (and then leave)
    assert rpc(admin, "eve", "room.invite", {"room": "safe", "user": "eve"})["result"] == {}
    assert "result" in rpc(admin, "eve", "room.leave", {"room": "safe"})
    assert wait_for(lambda: admin.disconnected.is_set(), timeout=10), "admin token expired"
    admin.close()

    eve = connect(n1, keys, "eve")
    for method, params in (("room.invite", {"room": "safe", "user": "eve"}),
                           ("history", {"conv": "room:safe"}),
                           ("room.remove", {"room": "safe", "user": "olivia"})):
        reply = rpc(eve, "eve", method, params)
        assert reply.get("error", {}).get("code") == "forbidden", (method, reply)
    eve.close()

    # a chat-role property the client set itself is not believed
    spoof = connect(n1, keys, "eve", protocol=V5, client_id="eve:v5")
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = [("chat-role", "admin"), ("other", "kept")]
    # the other properties survive the stamp: the reply comes on the
    # Response Topic
    props.ResponseTopic = "chat/user/eve/replies/7"
    props.CorrelationData = b"corr-7"
    body = {"id": "spoof", "method": "room.invite", "params": {"room": "safe", "user": "eve"}}
    spoof.c.publish("chat/in/eve/rpc", json.dumps(body), qos=1, properties=props)
    got = wait_for(lambda: [p for p in payloads(spoof, "/replies/7") if p.get("id") == "spoof"])
    assert got and got[0].get("error", {}).get("code") == "forbidden", got
    members = rpc(owner, "olivia", "room.members", {"room": "safe"})["result"]["members"]
    assert [m["user"] for m in members] == ["olivia"]
    for c in (spoof, owner):
        c.close()


# ---- NUL is refused, never cut ----

def test_nul_in_params_is_refused_and_escaped_backslash_is_text(cluster):
    keys = cluster.keys
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    nina = connect(n1, keys, "nina")
    omar = connect(n2, keys, "omar")
    raw = ('{"id":"z1","method":"room.create","params":{"room":"nulroom\\u0000x"}}',
           '{"id":"z2","method":"history","params":{"conv":"room:nulroom\\u0000x"}}',
           '{"id":"z3","method":"read","params":{"conv":"room:nulroom\\u0000","seq":1}}',
           '{"id":"z4\\u0000","method":"rooms.list"}')
    for r in raw:
        nina.publish("chat/in/nina/rpc", r, qos=1)
    got = wait_for(lambda: (lambda e: e if len(e) >= len(raw) else None)(
        [p for p in payloads(nina, "/rpc") if p.get("error", {}).get("code") == "bad_request"]))
    assert got and len(got) == len(raw), payloads(nina, "/rpc")
    # the cut name was not created
    assert "result" in rpc(nina, "nina", "room.create", {"room": "nulroom"})
    # an escaped backslash followed by u0000 is text
    assert omar.subscribe("chat/room/nulroom", qos=1) < 0x80
    nina.publish("chat/in/nina/room/nulroom", '{"body":"C:\\\\u0000"}', qos=1)
    msgs = wait_for(lambda: payloads(omar, "/room/nulroom"))
    assert msgs and msgs[0]["body"] == "C:\\u0000", msgs
    for c in (nina, omar):
        c.close()


# ---- live room events ----

def test_room_events_reach_other_users_within_one_second(cluster):
    keys = cluster.keys
    n1, n2 = cluster.brokers[0].port, cluster.brokers[1].port
    rita = connect(n1, keys, "rita")
    sam = connect(n2, keys, "sam")
    assert sam.subscribe("chat/rooms", qos=1) < 0x80
    t0 = time.time()
    assert "result" in rpc(rita, "rita", "room.create", {"room": "newsroom"})
    ev = wait_for(lambda: payloads(sam, "chat/rooms"), timeout=1.0)
    assert ev and ev[0]["type"] == "room" and ev[0]["event"] == "created" and \
        ev[0]["room"] == "newsroom", ev
    assert time.time() - t0 < 1.5
    assert "result" in rpc(rita, "rita", "room.create", {"room": "backroom", "private": True})
    rpc(rita, "rita", "room.invite", {"room": "backroom", "user": "sam"})
    rpc(sam, "sam", "room.join", {"room": "newsroom"})
    rpc(sam, "sam", "room.leave", {"room": "newsroom"})
    rpc(rita, "rita", "room.remove", {"room": "backroom", "user": "sam"})

    def inbox():
        return [(p["event"], p["room"], p["by"]) for p in payloads(sam, "/inbox")
                if p.get("type") == "room"]
    want = [("invited", "backroom", "rita"), ("joined", "newsroom", "sam"),
            ("left", "newsroom", "sam"), ("removed", "backroom", "rita")]
    assert wait_for(lambda: inbox() == want), inbox()
    # private rooms are not announced
    assert [p["room"] for p in payloads(sam, "chat/rooms")] == ["newsroom"]
    for c in (rita, sam):
        c.close()


# ---- a restarted broker learns every private room, page by page ----

def test_restarted_broker_gets_every_private_room_state_in_pages(make_cluster):
    cluster = make_cluster(**FAST)
    keys = cluster.keys
    n1 = cluster.brokers[0].port
    owner = connect(n1, keys, "paula")
    rooms = ["vault-%03d" % i for i in range(260)]
    assert all("result" in r for r in rpc_many(owner, "paula", [
        ("room.create", {"room": r, "private": True}) for r in rooms]))
    owner.close()
    cluster.brokers[0].restart()
    bridge = cluster.bridges[0]
    assert wait_for(lambda: "sent 260 private room state(s)" in bridge.log(), timeout=30), \
        bridge.log()[-2000:]
    intruder = connect(n1, keys, "ivan")
    refused = [r for r in rooms if intruder.subscribe("chat/room/" + r) >= 0x80]
    assert refused == rooms
    owner = connect(n1, keys, "paula")
    assert all(owner.subscribe("chat/room/" + r) < 0x80 for r in rooms[::37])
    for c in (intruder, owner):
        c.close()
