"""One abusive client for test_limits.py's flood measurement, in its own
process so that its CPU and its Python lock are not the measuring client's:
one MQTT connection per input kind (room creation, rooms.list, posts to a
room, posts to no room, typing), each publishing QoS 1 as fast as the broker
acknowledges (at most WINDOW unacknowledged) or, with RATE, at most RATE
a second each, until stdin closes. It runs at the lowest CPU priority
(nice 19). Then it
prints one JSON line: inputs sent, the answers it got (rate_limited errors,
rooms created, other results, not_found notices) and its own CPU seconds.
    flooder.py PORT USER TOKEN ROOM [RATE]"""
import json
import os
import resource
import sys
import threading
import time

import paho.mqtt.client as mqtt

WINDOW = 20
KINDS = ("create", "list", "room", "noroom", "typing")


class Conn:
    def __init__(self, port, user, token, kind):
        self.kind = kind
        self.window = threading.Semaphore(WINDOW)
        self.sent = 0
        self.connected = threading.Event()
        self.c = mqtt.Client(client_id="%s:flood-%s" % (user, kind), protocol=mqtt.MQTTv5)
        self.c.username_pw_set(user, token)
        self.c.max_inflight_messages_set(WINDOW)
        self.c.on_connect = lambda c, u, f, rc, p=None: self.connected.set()
        self.c.on_publish = lambda c, u, mid: self.window.release()
        self.c.connect("127.0.0.1", port, keepalive=30)
        self.c.loop_start()


def main():
    # the attacker's CPU is its own machine's, not the servers': on a shared
    # test machine this client yields to every other process, so what is
    # measured is what the flood costs the servers
    os.nice(19)
    port, user, token, room = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    rate = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    answers = {"rate_limited": 0, "created": 0, "ok": 0, "not_found": 0}
    lock = threading.Lock()

    def on_message(c, u, msg):
        try:
            p = json.loads(msg.payload)
        except ValueError:
            return
        with lock:
            if msg.topic.endswith("/rpc"):
                if p.get("error", {}).get("code") == "rate_limited":
                    answers["rate_limited"] += 1
                elif "result" in p:
                    answers["ok"] += 1
                    if isinstance(p["result"], dict) and "room" in p["result"]:
                        answers["created"] += 1
            elif msg.topic.endswith("/notice") and p.get("code") == "not_found":
                answers["not_found"] += 1

    conns = [Conn(port, user, token, k) for k in KINDS]
    for cn in conns:
        if not cn.connected.wait(10):
            sys.exit("no CONNACK for %s" % cn.kind)
    # the answers come to every connection of the user: count them on one
    conns[0].c.on_message = on_message
    conns[0].c.subscribe("chat/user/%s/#" % user, qos=0)
    stop = threading.Event()

    def flood(cn):
        i = 0
        t0 = time.monotonic()
        while not stop.is_set():
            if rate > 0:
                ahead = i / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
            if not cn.window.acquire(timeout=0.2):
                continue
            i += 1
            if cn.kind == "create":
                cn.c.publish("chat/in/%s/rpc" % user, json.dumps(
                    {"id": "c%d" % i, "method": "room.create",
                     "params": {"room": "flood-%d" % i}}), qos=1)
            elif cn.kind == "list":
                cn.c.publish("chat/in/%s/rpc" % user, json.dumps(
                    {"id": "l%d" % i, "method": "rooms.list", "params": {}}), qos=1)
            elif cn.kind == "room":
                cn.c.publish("chat/in/%s/room/%s" % (user, room), "spam %d" % i, qos=1)
            elif cn.kind == "noroom":
                cn.c.publish("chat/in/%s/room/nosuchroom" % user, "spam", qos=1)
            else:
                cn.c.publish("chat/in/%s/typing/dm/bob" % user, b"", qos=1)
            cn.sent = i
    threads = [threading.Thread(target=flood, args=(cn,)) for cn in conns]
    for t in threads:
        t.start()
    print("started", flush=True)
    sys.stdin.read()
    stop.set()
    for t in threads:
        t.join()
    time.sleep(1.0)  # the last answers
    for cn in conns:
        cn.c.disconnect()
        cn.c.loop_stop()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    with lock:
        out = dict(answers, sent={cn.kind: cn.sent for cn in conns},
                   cpu_s=round(ru.ru_utime + ru.ru_stime, 2))
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
