"""The web front's watchdog (wsfront/watchdog.c): when its event loop stops
running (as libwebsockets was once seen looping inside one lws_service()
call), the process says so and exits, so that its supervisor starts a
fresh one; an idle front is never taken for a stuck one. The loop's thread
alone is stopped with ptrace, the way a stuck lws_service() stops it."""
import subprocess
import sys
import time

from mqttutil import wait_for
from wsutil import request, web  # noqa: F401  (fixture)

# the tracer is its own process: a parent that traces its child would read
# the ptrace stop as the child's end (Popen's waitpid)
TRACER = """
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
tid = int(sys.argv[1])
for req in (0x4206, 0x4207):  # PTRACE_SEIZE, PTRACE_INTERRUPT
    if libc.ptrace(req, tid, None, None) != 0:
        sys.exit("ptrace %#x: errno %d" % (req, ctypes.get_errno()))
print("stopped", flush=True)
time.sleep(60)  # the thread runs on when this process ends
"""


def stop_thread(tid):
    """Stops one thread (ptrace-stop is per thread; its siblings run on)
    until the returned process is killed."""
    p = subprocess.Popen([sys.executable, "-c", TRACER, str(tid)], stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "stopped"
    return p


def test_a_stuck_event_loop_ends_the_front(web, tmp_path_factory):
    broker = web.cluster.brokers[0]
    front = web.add_front(tmp_path_factory, broker, "node1", loop_stall_max=3)
    # idle for longer than the limit: the loop's timer keeps it alive
    time.sleep(4.5)
    assert front.alive(), front.log()[-2000:]
    assert request(front, "GET", "/healthz", timeout=5)[0] in (200, 503)
    pid = front.proc.pid
    t0 = time.time()
    tracer = stop_thread(pid)  # the main thread: the event loop
    try:
        said = wait_for(lambda: "the event loop has not run for" in front.log(), timeout=15)
        took = time.time() - t0
    finally:
        # the process ends once its tracer lets go of the stopped thread
        tracer.kill()
        tracer.wait()
    assert said, "a front whose loop stopped said nothing in 15 s: " + front.log()[-1500:]
    print("\nstuck loop noticed after %.1f s (limit 3 s)" % took)
    assert took < 10
    assert wait_for(lambda: not front.alive(), timeout=10), "the stuck front did not exit"
    assert front.proc.returncode == 3


def test_the_watchdog_can_be_turned_off(web, tmp_path_factory):
    broker = web.cluster.brokers[0]
    front = web.add_front(tmp_path_factory, broker, "node1", loop_stall_max=0)
    tracer = stop_thread(front.proc.pid)
    try:
        time.sleep(4)
        assert front.alive()
    finally:
        tracer.kill()
        tracer.wait()
    assert wait_for(lambda: request(front, "GET", "/healthz", timeout=5)[0] in (200, 503), timeout=10)
