"""The price of the replica acknowledgement (README "Redis high
availability"): the failover test's stack (primary, two replicas, three
sentinels, two nodes), 4 users posting 200 posts/s in all for 10 s; prints
post-to-echo p50/p99 and CPU per post of the bridges and of the primary.
CHAT_REDIS_WAIT_REPLICAS=0 runs the same without the acknowledgement.
  CHAT_BUILD_DIR=$PWD/build /usr/bin/python3 scripts/bench-ha.py"""
import os
import shutil
import sys
import tempfile
import time

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(root, "tests", "integration"))
sys.path.insert(0, os.path.join(root, "tests", "harness"))
from chatharness import Keys  # noqa: E402
import test_failover as tf  # noqa: E402
from mqttutil import Client, rpc  # noqa: E402

class TmpF:
    """tmp_path_factory's mktemp, outside pytest."""

    def __init__(self, base):
        self.base, self.n = base, 0

    def mktemp(self, name):
        self.n += 1
        p = os.path.join(self.base, "%s%d" % (name, self.n))
        os.makedirs(p)
        return p


def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

base = tempfile.mkdtemp(prefix="chat-bench-ha-")
keys = Keys(os.path.join(base, "keys"))
st = tf.Stack(TmpF(base), keys)
try:
    owner = Client(st.brokers[0].port, "owner", keys.mint("owner"))
    owner.connect(); owner.subscribe("chat/user/owner/rpc")
    rpc(owner, "owner", "room.create", {"room": tf.ROOM}); owner.close()
    users = [tf.User(st, keys, "u%d" % i, i % 2) for i in range(4)]
    time.sleep(1)
    procs = [b.proc.pid for b in st.bridges] + [st.primary().proc.pid]
    c0 = [cpu(p) for p in procs]
    t0 = time.time()
    n = 0
    while time.time() - t0 < 10:
        for u in users: u.post(); n += 1
        time.sleep(0.02)   # 4 users x 50/s = 200 posts/s
    time.sleep(2)
    c1 = [cpu(p) for p in procs]
    lat = sorted((u.accepted[c][0] - u.sent[c]) * 1000 for u in users for c in u.accepted)
    print("wait=%s posts=%d accepted=%d p50=%.2f ms p99=%.2f ms cpu: bridges %.0f us/msg, redis %.0f us/msg"
          % (os.environ.get("CHAT_REDIS_WAIT_REPLICAS", "1"), n, len(lat), lat[len(lat)//2], lat[int(len(lat)*0.99)],
             (c1[0]-c0[0]+c1[1]-c0[1]) / n * 1e6, (c1[2]-c0[2]) / n * 1e6))
    for u in users: u.c.close()
finally:
    st.finish()
    shutil.rmtree(base, ignore_errors=True)
