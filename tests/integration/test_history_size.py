"""A history page always fits one packet (issue 22, finding 8): 200 posts
of 4 KiB of control characters are ~4.9 MB as JSON (each escapes to 6
bytes), far over the broker's 2 MiB limit. A page holds fewer messages
than `limit` then, the ones nearest its anchor, and says "size_limited";
paging on by seq from its edge, with before, after or from the latest
page, reaches every message exactly once, over MQTT and over HTTP, from
Redis's recent list and from the store. Never no answer."""
import json
import time

import pytest

from mqttutil import payloads, rpc, signed_in, wait_for
from prodconf import packet_conf, packet_limit
from wsutil import Web, request

FAST = {"rpc_rate_per_s": 100000, "rpc_rate_burst": 100000,
        "rate_per_s": 100000, "rate_burst": 100000}
N = 200
BODY = "\x01\x02\x1f" * 1365 + "\x07"  # 4,096 control characters


def mqtt_page(client, user, params, req_id):
    """The reply and its size in bytes, as it came."""
    reply = rpc(client, user, "history", params, req_id=req_id, timeout=15)
    with client.lock:
        raw = next(p for t, p in client.messages
                   if t.endswith("/rpc") and json.loads(p).get("id") == req_id)
    assert "result" in reply, reply
    return reply["result"], len(raw)


def http_page(front, token, params):
    query = "&".join("%s=%s" % kv for kv in params.items())
    st, _, body = request(front, "GET", "/api/history?" + query,
                          headers={"Authorization": "Bearer " + token})
    assert st == 200, (st, body[:200])
    return json.loads(body), len(body)


def walk(page, mode, limit=200):
    """Pages through the whole conversation from one anchor; returns the
    seqs seen, in the order the pages came, and the pages' sizes."""
    seqs, sizes, params = [], [], {"conv": "room:ctl", "limit": limit}
    if mode == "after":
        params["after"] = 0
    elif mode == "before":
        params["before"] = N + 1
    for k in range(100):
        res, size = page(params, k)
        msgs = res["messages"]
        sizes.append(size)
        got = [m["seq"] for m in msgs]
        if not got:
            break
        assert got == list(range(got[0], got[0] + len(got))), "a page with a hole: %s" % got
        assert all(m["body"] == BODY for m in msgs if m["seq"] <= N)
        # fewer than asked only when the size said so, or the range ended
        if len(got) < limit and res.get("size_limited") is not True:
            assert got[0] == 1 or got[-1] == N + 1, (mode, got[0], got[-1], res.keys())
        seqs += got
        if mode == "after":
            params["after"] = got[-1]
        else:
            params["before"] = got[0]
            params.pop("after", None)
            if got[0] == 1:
                break
    return seqs, sizes


@pytest.mark.parametrize("recent_max", [200, 10], ids=["from-redis", "from-the-store"])
def test_history_pages_fit_a_packet(make_cluster, tmp_path_factory, recent_max):
    cluster = make_cluster(broker_conf=packet_conf(), recent_max=recent_max, **FAST)
    keys, redis = cluster.keys, cluster.redis
    ctl = signed_in(cluster.brokers[0].port, keys, "ctl")
    reader = signed_in(cluster.brokers[1].port, keys, "reader")
    assert "result" in rpc(ctl, "ctl", "room.create", {"room": "ctl"})
    for _ in range(N):
        ctl.c.publish("chat/in/ctl/room/ctl", BODY, qos=1)
    assert wait_for(lambda: redis.call("GET", "chat:seq:room:ctl") == str(N), timeout=60)
    assert not [n for n in payloads(ctl, "/notice")], payloads(ctl, "/notice")
    assert wait_for(lambda: redis.call("GET", "chat:persisted:room:ctl") == str(N),
                    timeout=60)
    # one more (small) post trims the recent list to recent_max now that
    # the store has everything: older pages then come from the store
    ctl.publish("chat/in/ctl/room/ctl", "last", qos=1)
    assert wait_for(lambda: redis.call("GET", "chat:seq:room:ctl") == str(N + 1), timeout=10)
    if recent_max < N:
        assert int(redis.call("LLEN", "chat:recent:room:ctl")) < N
    limit = packet_limit()

    # the latest page: the newest that fit, flagged, well within a packet
    res, size = mqtt_page(reader, "reader", {"conv": "room:ctl", "limit": 200}, "latest")
    got = [m["seq"] for m in res["messages"]]
    assert res.get("size_limited") is True and 0 < len(got) < 200
    assert got[-1] == N + 1 and size < limit
    # a page that fits whole says nothing
    small, _ = mqtt_page(reader, "reader", {"conv": "room:ctl", "limit": 3}, "three")
    assert [m["seq"] for m in small["messages"]] == [N - 1, N, N + 1]
    assert "size_limited" not in small

    n = [0]

    def over_mqtt(params, k):
        n[0] += 1
        return mqtt_page(reader, "reader", dict(params), "p%d" % n[0])
    for mode in ("latest", "before", "after"):
        seqs, sizes = walk(over_mqtt, mode)
        want = list(range(1, N + 2)) if mode != "before" else list(range(1, N + 1))
        assert sorted(seqs) == want, (mode, len(seqs))
        assert len(seqs) == len(set(seqs)), mode
        assert max(sizes) < limit, (mode, max(sizes))

    # the web front's GET /api/history pages the same way
    web = Web(cluster, tmp_path_factory)
    try:
        token = keys.mint("reader")

        def over_http(params, k):
            return http_page(web.fronts[k % 2], token, params)
        for mode in ("latest", "after"):
            seqs, sizes = walk(over_http, mode)
            assert sorted(seqs) == list(range(1, N + 2)) and len(seqs) == len(set(seqs)), mode
            assert max(sizes) < limit
        res, _ = http_page(web.fronts[0], token, {"conv": "room:ctl", "after": 0, "limit": 200})
        assert res.get("size_limited") is True and res["messages"][0]["seq"] == 1
    finally:
        web.finish()
    for c in (ctl, reader):
        c.close()
