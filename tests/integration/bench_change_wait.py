"""Cost of a state change waiting for a replica (README "Redis high
availability"): p50/p90 of room.join on the failover stack with
redis_wait_replicas 1 and 0. Not a test (no assertion on the numbers);
run by hand:
  cd build && CHAT_BUILD_DIR=$PWD CHAT_SOURCE_DIR=.. /usr/bin/python3 -m pytest \
      -q -s -p no:cacheprovider ../tests/integration/bench_change_wait.py
"""
import statistics
import time

import pytest

import test_failover as tf
from mqttutil import Client, rpc

N = 100  # joins, each followed by a leave: 200 changes


@pytest.mark.parametrize("wait", [1, 0])
def test_join_p50(tmp_path_factory, keys, monkeypatch, wait):
    orig = tf.sentinel_settings
    monkeypatch.setattr(tf, "sentinel_settings",
                        lambda s: dict(orig(s), redis_wait_replicas=wait))
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
            assert "result" in rpc(g, "guest", "room.join", {"room": "bench"})
            join.append(time.perf_counter() - t0)
            assert "result" in rpc(g, "guest", "room.leave", {"room": "bench"})
            with g.lock:
                del g.messages[:]
        join.sort()
        print("\nredis_wait_replicas %d: room.join p50 %.2f ms, p90 %.2f ms (n=%d)" % (
            wait, statistics.median(join) * 1e3, join[int(0.9 * N)] * 1e3, N))
        c.close()
        g.close()
    finally:
        stack.finish()
