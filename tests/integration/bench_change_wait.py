"""Cost of a state change waiting for a replica (README "Redis high
availability"): p50/p90 of room.join on the failover stack with
redis_wait_replicas 1 and 0. Not a test (no assertion on the numbers);
run by hand:
  cd build && CHAT_BUILD_DIR=$PWD CHAT_SOURCE_DIR=.. /usr/bin/python3 -m pytest \
      -q -s -p no:cacheprovider ../tests/integration/bench_change_wait.py
"""
import json
import statistics
import time

import pytest

import test_failover as tf
from mqttutil import Client, rpc

N = 100  # joins, each followed by a leave: 200 changes


def fast_rpc(client, user, method, params):
    """mqttutil.rpc polls every 10 ms, coarser than what is measured."""
    req_id = "b%d" % time.perf_counter_ns()
    client.publish("chat/in/%s/rpc" % user,
                   json.dumps({"id": req_id, "method": method, "params": params}), qos=1)
    deadline = time.time() + 5
    while time.time() < deadline:
        with client.lock:
            for topic, payload in client.messages:
                if topic.endswith("/rpc") and json.loads(payload).get("id") == req_id:
                    return json.loads(payload)
        time.sleep(0.0002)
    raise AssertionError("no reply to " + method)


@pytest.mark.parametrize("wait", [1, 0])
def test_join_p50(tmp_path_factory, keys, monkeypatch, wait):
    orig = tf.sentinel_settings
    monkeypatch.setattr(tf, "sentinel_settings",
                        lambda s: dict(orig(s), redis_wait_replicas=wait,
                                      rpc_rate_per_s=10000, rpc_rate_burst=10000))
    stack = tf.Stack(tmp_path_factory, keys)
    try:
        c = Client(stack.brokers[0].port, "owner", keys.mint("owner"))
        assert c.connect() == 0
        assert c.subscribe("chat/user/owner/rpc") < 0x80
        g = Client(stack.brokers[0].port, "guest", keys.mint("guest"))
        assert g.connect() == 0
        assert g.subscribe("chat/user/guest/rpc") < 0x80
        assert "result" in rpc(c, "owner", "room.create", {"room": "bench"})
        join = []
        for _ in range(N):
            t0 = time.perf_counter()
            assert "result" in fast_rpc(g, "guest", "room.join", {"room": "bench"})
            join.append(time.perf_counter() - t0)
            assert "result" in fast_rpc(g, "guest", "room.leave", {"room": "bench"})
            with g.lock:
                del g.messages[:]
        join.sort()
        print("\nredis_wait_replicas %d: room.join p50 %.2f ms, p90 %.2f ms (n=%d)" % (
            wait, statistics.median(join) * 1e3, join[int(0.9 * N)] * 1e3, N))
        c.close()
        g.close()
    finally:
        stack.finish()
