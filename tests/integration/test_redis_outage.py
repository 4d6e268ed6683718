"""Redis going away and coming back, as one bridge sees it (issue 22,
finding 4 and "failover without refusals"; README "Redis outages"):

- a restart whose loading outlasts the bridge's 1 s reconnect (a store
  written by the test, read slowly), and a script cache flushed under a
  running bridge: the bridge becomes ready only once Redis serves and every
  script is loaded, so it recovers on its own, without spinning (its CPU
  time and log lines over the outage stay small);
- posts sent while Redis is away are held and accepted, in order, once it
  is back; posts held longer than post_hold_s are refused with a notice,
  and only those; at most post_hold_max are held (the next is refused at
  once); none is lost;
- requests are answered `unavailable` at once, with their id; typing is
  dropped without a notice;
- presence: this node's connections in Redis are rewritten from the
  bridge's copy when Redis is back, so a connection Redis lists but the
  broker no longer has (a lost "down") is forgotten.

Every assertion waits on a condition with a generous bound, or compares
times the test measured itself (a notice never comes before its post has
been held post_hold_s): none depends on how fast a loaded machine is."""
import json
import os
import threading
import time

from chatharness import port_open, stored_messages
from mqttutil import Client, rpc, wait_for

# Redis reads its store at this many microseconds per key, answering
# clients (LOADING) between every kilobyte it reads
SLOW_LOAD = "key-load-delay 200\nloading-process-events-interval-bytes 1024\n"
JUNK_KEYS = 20000  # x 200 us: about 4 s of loading, far above the 1 s reconnect


class Member:
    """A user that posts with cids and records, with the time it arrived,
    every message on its own topics and on the room."""

    def __init__(self, port, keys, name, room=None):
        self.name = name
        self.c = Client(port, name, keys.mint(name))
        self.c.c.on_message = self._on_message
        self.got = []  # (time, topic, payload dict)
        self.sent = {}  # cid -> time sent
        self.lock = threading.Lock()
        assert self.c.connect() == 0
        assert self.c.subscribe("chat/user/%s/#" % name, qos=1) < 0x80
        if room:
            assert self.c.subscribe("chat/room/" + room, qos=1) < 0x80

    def _on_message(self, c, u, msg):
        try:
            m = json.loads(msg.payload)
        except ValueError:
            return
        with self.lock:
            self.got.append((time.time(), msg.topic, m))
        with self.c.lock:
            self.c.messages.append((msg.topic, msg.payload))

    def post(self, room, cid):
        self.sent[cid] = time.time()
        self.c.publish("chat/in/%s/room/%s" % (self.name, room),
                       json.dumps({"body": "body " + cid, "cid": cid}), qos=1)

    def accepted(self, room):
        """cid -> (time seen, seq) of my posts the room delivered back."""
        with self.lock:
            out = {}
            for t, topic, m in self.got:
                if topic == "chat/room/" + room and m.get("from") == self.name and m.get("cid"):
                    out.setdefault(m["cid"], (t, m["seq"]))
            return out

    def notices(self):
        """cid -> (time, notice) of the notices about my posts."""
        with self.lock:
            return {m["cid"]: (t, m) for t, topic, m in self.got
                    if topic.endswith("/notice") and m.get("cid")}

    def close(self):
        self.c.close()


def make_room(cluster, room):
    owner = Client(cluster.brokers[0].port, "owner", cluster.keys.mint("owner"))
    assert owner.connect() == 0
    assert owner.subscribe("chat/user/owner/rpc") < 0x80
    assert "result" in rpc(owner, "owner", "room.create", {"room": room})
    owner.close()


def cpu_seconds(pid):
    """User + system CPU time of a process so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_lines(server):
    return server.log().count("\n")


def start_loading(redis):
    """Starts redis and returns as soon as it listens, while it still
    loads (ready() would wait for the load to end)."""
    ready = redis.ready
    redis.ready = lambda: port_open(redis.port)
    try:
        redis.start()
    finally:
        redis.ready = ready


def loading(redis):
    try:
        return redis.info("persistence").get("loading") == "1"
    except Exception:
        return False


def fill_store(redis, n):
    """n junk keys, written into the append-only file's base (an RDB,
    which Redis reads key by key at a restart)."""
    redis.call("EVAL", "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'junk:' .. i, 'x') end",
               "0", n)
    redis.call("BGREWRITEAOF")
    assert wait_for(lambda: redis.info("persistence").get("aof_rewrite_in_progress") == "0"
                    and redis.info("persistence").get("aof_rewrite_scheduled") == "0",
                    timeout=30)


def in_order(member, room):
    """Whether my accepted posts have seqs in the order I sent them."""
    acc = member.accepted(room)
    ordered = sorted(acc, key=lambda cid: member.sent[cid])
    seqs = [acc[c][1] for c in ordered]
    return seqs == sorted(seqs)


def test_restart_with_slow_loading_recovers_without_spinning(make_cluster):
    """Finding 4: after a restart whose loading outlasts the 1 s reconnect,
    the bridges used to load their scripts while Redis answered LOADING,
    then got NOSCRIPT forever, retried a failed page on every loop turn
    (~25k log lines/s, a core) and refused every post. Now posts sent
    during the outage are held and accepted once Redis serves, posting
    works on both nodes, and over the outage each bridge logs a few lines
    and uses a small share of a core."""
    cluster = make_cluster()
    make_room(cluster, "slow")
    alice = Member(cluster.brokers[0].port, cluster.keys, "alice", "slow")
    bob = Member(cluster.brokers[1].port, cluster.keys, "bob", "slow")
    try:
        alice.post("slow", "a0")
        assert wait_for(lambda: "a0" in alice.accepted("slow"), 10)
        fill_store(cluster.redis, JUNK_KEYS)
        cluster.redis.extra_conf = SLOW_LOAD
        bridges = cluster.bridges
        cpu0 = [cpu_seconds(b.proc.pid) for b in bridges]
        lines0 = [log_lines(b) for b in bridges]
        t0 = time.time()
        cluster.redis.kill()
        time.sleep(1.5)  # the bridges' reconnects fail meanwhile
        start_loading(cluster.redis)
        assert loading(cluster.redis), "redis did not take long enough to load"
        # posts while Redis loads: held, not refused
        for k in range(1, 4):
            alice.post("slow", "a%d" % k)
            bob.post("slow", "b%d" % k)
        assert wait_for(lambda: not loading(cluster.redis), timeout=60)
        loaded = time.time()
        print("\nredis was away %.1f s, %.1f s of it loading" % (loaded - t0, loaded - t0 - 1.5))
        assert loaded - t0 > 3.0, "the loading did not outlast the reconnect"
        want_a = {"a%d" % k for k in range(4)}
        want_b = {"b%d" % k for k in range(1, 4)}
        back = wait_for(lambda: set(alice.accepted("slow")) >= want_a
                        and set(bob.accepted("slow")) >= want_b, timeout=30)
        recovered = time.time()
        # what the outage cost each bridge, printed before judging anything
        # (run against an older build, this shows the spin)
        wall = recovered - t0
        costs = []
        for i, b in enumerate(bridges):
            cpu = cpu_seconds(b.proc.pid) - cpu0[i]
            lines = log_lines(b) - lines0[i]
            costs.append((cpu, lines))
            print("bridge %d over %.1f s: %.2f s CPU, %d log lines" % (i + 1, wall, cpu, lines))
        assert back, (sorted(alice.accepted("slow")), sorted(bob.accepted("slow")),
                      alice.notices(), bob.notices(), bridges[0].log()[-3000:])
        for i, (cpu, lines) in enumerate(costs):
            assert lines < 150, "bridge %d logged %d lines:\n%s" % (i + 1, lines,
                                                                     bridges[i].log()[-3000:])
            assert cpu < 0.3 * wall, "bridge %d used %.1f s of CPU in %.1f s" % (i + 1, cpu, wall)
            assert "not serving yet (LOADING" in bridges[i].log(), \
                "the loading was not seen by bridge %d" % (i + 1)
        assert alice.notices() == {} and bob.notices() == {}, (alice.notices(), bob.notices())
        # and after it, posting and requests work as before
        alice.post("slow", "a9")
        assert wait_for(lambda: "a9" in alice.accepted("slow"), timeout=10)
        assert "result" in rpc(alice.c, "alice", "rooms.list", {})
        assert in_order(alice, "slow") and in_order(bob, "slow")
        print("posts accepted %.1f s after the loading ended" % (recovered - loaded))
    finally:
        alice.close()
        bob.close()


def test_flushed_script_cache_is_loaded_again(make_cluster):
    """SCRIPT FLUSH under a running bridge: the next call answers NOSCRIPT,
    the bridge loads its scripts again, the post that met it is held and
    accepted, and requests work again; no post is refused."""
    cluster = make_cluster()
    make_room(cluster, "flush")
    alice = Member(cluster.brokers[0].port, cluster.keys, "alice2", "flush")
    try:
        alice.post("flush", "f0")
        assert wait_for(lambda: "f0" in alice.accepted("flush"), 10)
        lines0 = log_lines(cluster.bridges[0])
        assert cluster.redis.call("SCRIPT", "FLUSH") == "OK"
        for k in range(1, 6):
            alice.post("flush", "f%d" % k)
        want = {"f%d" % k for k in range(6)}
        assert wait_for(lambda: set(alice.accepted("flush")) >= want, timeout=15), \
            (sorted(alice.accepted("flush")), alice.notices(), cluster.bridges[0].log()[-3000:])
        assert alice.notices() == {}
        assert in_order(alice, "flush")

        def listed():
            reply = rpc(alice.c, "alice2", "rooms.list", {})
            return "result" in reply
        assert wait_for(listed, timeout=10)
        assert "lost our scripts" in cluster.bridges[0].log()
        assert log_lines(cluster.bridges[0]) - lines0 < 50, cluster.bridges[0].log()[-3000:]
    finally:
        alice.close()


def test_posts_during_an_outage_are_held_and_accepted_in_order(make_cluster):
    """Redis killed, posts from two users on two nodes for 3 s, Redis back
    from its append-only file: every post accepted, each user's in the
    order sent, none refused; a request meanwhile is answered unavailable
    with its id at once, and typing is dropped without a notice."""
    cluster = make_cluster()
    make_room(cluster, "held")
    users = [Member(cluster.brokers[i].port, cluster.keys, "held%d" % i, "held") for i in range(2)]
    try:
        users[0].post("held", "h0-0")
        assert wait_for(lambda: "h0-0" in users[0].accepted("held"), 10)
        cluster.redis.kill()
        t0 = time.time()
        reply = rpc(users[0].c, "held0", "rooms.list", {}, req_id="during-outage")
        assert reply.get("error", {}).get("code") == "unavailable", reply
        assert time.time() - t0 < 3.0, "a request waited for Redis"
        users[1].c.publish("chat/in/held1/typing/room/held", "", qos=1)
        for k in range(1, 16):
            for i, u in enumerate(users):
                u.post("held", "h%d-%d" % (i, k))
            time.sleep(0.2)
        cluster.redis.start()
        for i, u in enumerate(users):
            want = {"h%d-%d" % (i, k) for k in range(0 if i == 0 else 1, 16)}
            assert wait_for(lambda: set(u.accepted("held")) >= want, timeout=30), \
                (u.name, sorted(want - set(u.accepted("held"))), u.notices())
        time.sleep(0.5)
        for u in users:
            assert u.notices() == {}, u.notices()
            assert in_order(u, "held"), u.accepted("held")
            with u.lock:
                assert not [m for _, t, m in u.got if t.endswith("/notice")], "typing got a notice"
        rows = wait_for(lambda: (lambda r: r if len(r) >= 31 else None)(
            stored_messages(cluster.store_url, "room:held")), timeout=30)
        assert [s for s, _ in rows] == list(range(1, 32))
    finally:
        for u in users:
            u.close()


def test_posts_held_past_the_bound_are_refused_and_only_those(make_cluster):
    """post_hold_s 3, Redis away 6 s: the posts sent at the start of the
    outage are refused with a notice naming their cid, each no sooner than
    3 s after it was sent; those sent once Redis is starting again are
    accepted; nothing is lost."""
    cluster = make_cluster(post_hold_s=3)
    make_room(cluster, "bound")
    u = Member(cluster.brokers[0].port, cluster.keys, "bounded", "bound")
    try:
        u.post("bound", "ok0")
        assert wait_for(lambda: "ok0" in u.accepted("bound"), 10)
        cluster.redis.kill()
        for k in range(3):
            u.post("bound", "old%d" % k)
        assert wait_for(lambda: len(u.notices()) == 3, timeout=20), u.notices()
        time.sleep(6.0 - (time.time() - u.sent["old0"]))
        cluster.redis.start()
        for k in range(3):
            u.post("bound", "new%d" % k)
        want = {"ok0", "new0", "new1", "new2"}
        assert wait_for(lambda: set(u.accepted("bound")) >= want, timeout=20), \
            (sorted(u.accepted("bound")), u.notices())
        notices = u.notices()
        assert sorted(notices) == ["old0", "old1", "old2"], notices
        for cid, (t, n) in notices.items():
            assert n["code"] == "unavailable", n
            held = t - u.sent[cid]
            print("%s refused %.2f s after it was sent" % (cid, held))
            assert held >= 2.9, "%s refused after %.2f s, post_hold_s is 3" % (cid, held)
        assert not set(u.accepted("bound")) & set(notices), "accepted and refused"
        assert in_order(u, "bound")
    finally:
        u.close()


def test_at_most_post_hold_max_posts_wait(make_cluster):
    """post_hold_max 5: with Redis away, five posts are held and accepted
    once it is back; the sixth and later are refused at once."""
    cluster = make_cluster(post_hold_max=5)
    make_room(cluster, "full")
    u = Member(cluster.brokers[0].port, cluster.keys, "filler", "full")
    try:
        u.post("full", "p0")
        assert wait_for(lambda: "p0" in u.accepted("full"), 10)
        cluster.redis.kill()
        for k in range(1, 9):
            u.post("full", "p%d" % k)
        assert wait_for(lambda: len(u.notices()) == 3, timeout=5), u.notices()
        assert sorted(u.notices()) == ["p6", "p7", "p8"]
        cluster.redis.start()
        want = {"p%d" % k for k in range(6)}
        assert wait_for(lambda: set(u.accepted("full")) >= want, timeout=20), \
            (sorted(u.accepted("full")), u.notices())
        assert in_order(u, "full")
    finally:
        u.close()


def presence_get(client, user, who):
    """who's online flag, None while the request is not answered with it."""
    try:
        reply = rpc(client, user, "presence.get", {"users": [who]})
    except AssertionError:  # no reply
        return None
    return reply["result"]["users"][0]["online"] if "result" in reply else None


def test_presence_is_rewritten_when_redis_is_back(make_cluster):
    """A connection Redis lists for node1 that its broker no longer has (its
    "down" was lost, as a failover can lose the last writes) is forgotten
    once the bridge's Redis link is back: presence is rewritten from the
    bridge's copy of the broker's connections. A user who connected while
    Redis was away is online afterwards, and one who stayed connected is
    never announced offline."""
    cluster = make_cluster()
    keys = cluster.keys
    watcher = Member(cluster.brokers[1].port, keys, "pwatch")
    stay = Client(cluster.brokers[0].port, "stayer", keys.mint("stayer"))
    late = None
    try:
        assert watcher.c.subscribe("chat/presence/+", qos=1) < 0x80
        assert stay.connect() == 0
        assert wait_for(lambda: presence_get(watcher.c, "pwatch", "stayer"), 10)
        assert presence_get(watcher.c, "pwatch", "ghost") is False
        r = cluster.redis
        r.call("SADD", "chat:node:node1:conns", "ghost x-1")
        r.call("HSET", "chat:presence:ghost", "node1/x-1", "1")
        r.call("SADD", "chat:users", "ghost")
        assert presence_get(watcher.c, "pwatch", "ghost") is True
        with watcher.lock:
            mark = len(watcher.got)
        r.kill()
        late = Client(cluster.brokers[0].port, "latecomer", keys.mint("latecomer"))
        assert late.connect() == 0
        r.start()

        assert wait_for(lambda: presence_get(watcher.c, "pwatch", "ghost") is False,
                        timeout=20), cluster.bridges[0].log()[-3000:]
        assert wait_for(lambda: presence_get(watcher.c, "pwatch", "latecomer"), timeout=10)
        assert presence_get(watcher.c, "pwatch", "stayer")

        def offline():
            with watcher.lock:
                return [m["user"] for _, t, m in watcher.got[mark:]
                        if t.startswith("chat/presence/") and m.get("online") is False]
        # announced once presence_offline_delay (5 s) has passed without it
        # coming back, by the next beat
        assert wait_for(lambda: "ghost" in offline(), timeout=20), offline()
        assert "stayer" not in offline(), "a user who stayed connected was announced offline"
    finally:
        watcher.close()
        stay.close()
        if late:
            late.close()
