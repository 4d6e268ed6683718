"""The web app in headless Chromium (Debian's chromium, driven by
playwright-core from wsfront/app/node_modules): two people in two browser
contexts on two nodes sign up, create a room, chat both ways, DM, see
presence, typing and unread counts, reload and see history, lose the
network and catch up without gaps or duplicates; a browser, a Paho client
and mosquitto_sub see one conversation in the same order. Screenshots go
to tests/artifacts/wsfront/."""
import json
import os
import subprocess
import threading
import time

from mqttutil import Client, payloads, rpc, wait_for
from wsutil import ARTIFACTS, ROOT, web  # noqa: F401  (fixture)

E2E = os.path.join(ROOT, "wsfront", "app", "tests", "e2e.mjs")
CHROMIUM = "/usr/bin/chromium"


def run_e2e(mode, env, timeout=240):
    assert os.path.exists(CHROMIUM), "Debian's chromium is not installed (scripts/install-deps.sh --test)"
    full = dict(os.environ, ARTIFACTS=ARTIFACTS, CHROMIUM=CHROMIUM, **env)
    return subprocess.Popen(["node", E2E, mode], env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=os.path.dirname(E2E))


def result_of(proc, timeout=240):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, "browser test failed:\n%s\n%s" % (out[-3000:], err[-5000:])
    return json.loads(out.strip().splitlines()[-1])


def test_two_people_chat_in_browsers_on_two_nodes(web):
    a, b = web.fronts
    proc = run_e2e("main", {"URL1": a.url + "/", "URL2": b.url + "/", "ROOM": "lounge",
                            "USER_A": "alice", "USER_B": "bob"})
    res = result_of(proc)
    assert res["ok"]
    # a room created while the other person is signed in reaches their list
    # live (chat/rooms), with no polling and no reload
    assert res["roomLiveMs"] < 1000, res["roomLiveMs"]
    assert res["room"][:2] == ["hello from alice", "hi alice, bob here"]
    assert ["bulk %d" % i for i in range(1, 56)] == [b for b in res["room"] if b.startswith("bulk ")]
    assert res["room"][-3:] == ["while you were away %d" % i for i in (1, 2, 3)]
    assert res["seqs"] == list(range(1, len(res["room"]) + 1))
    for name in ("01-sign-in", "02-room-typing", "04-dm", "05-history-after-reload",
                 "06-after-catch-up", "07-phone-list", "08-phone-room"):
        assert os.path.getsize(os.path.join(ARTIFACTS, name + ".png")) > 1000


def test_browser_paho_and_mosquitto_sub_see_the_same_order(web):
    keys = web.keys
    n1 = web.cluster.brokers[0].port
    paho = Client(n1, "carol", keys.mint("carol"), "carol:paho")
    assert paho.connect() == 0
    assert paho.subscribe("chat/user/carol/#", qos=1) < 0x80
    assert rpc(paho, "carol", "room.create", {"room": "mixed"})["result"]["room"]["owner"] == "carol"
    assert paho.subscribe("chat/room/mixed", qos=1) < 0x80
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(web.cluster.brokers[1].port), "-u", "erin",
                            "-P", keys.mint("erin"), "-i", "erin:sub", "-q", "1",
                            "-t", "chat/room/mixed", "-C", "15", "-W", "60"],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    proc = run_e2e("mixed", {"URL1": web.fronts[1].url + "/", "ROOM": "mixed", "USER_A": "dora",
                             "COUNT": "15", "OWN": "5"})
    assert proc.stdout.readline().strip() == "READY", proc.stderr.read()

    def others():
        # Paho and mosquitto_pub post while the browser posts its own
        for i in range(1, 6):
            paho.publish("chat/in/carol/room/mixed", "paho %d" % i, qos=1)
            subprocess.run(["mosquitto_pub", "-p", str(n1), "-u", "frank", "-P",
                            keys.mint("frank"), "-i", "frank:pub", "-q", "1", "-t",
                            "chat/in/frank/room/mixed", "-m", "mosquitto %d" % i],
                           check=True, timeout=10)
    t = threading.Thread(target=others)
    t.start()
    t.join(60)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-4000:]
    browser = json.loads(out.strip().splitlines()[-1])
    sub_out, _ = sub.communicate(timeout=70)
    via_sub = [json.loads(l)["body"] for l in sub_out.splitlines() if l.strip()]
    via_paho = [m["body"] for m in wait_for(lambda: len(payloads(paho, "/room/mixed")) >= 15
                                            and payloads(paho, "/room/mixed"), timeout=15)]
    paho.close()
    assert len(via_paho) == 15, via_paho
    assert sorted(via_paho) == sorted(["paho %d" % i for i in range(1, 6)] +
                                      ["mosquitto %d" % i for i in range(1, 6)] +
                                      ["browser %d" % i for i in range(1, 6)])
    assert browser["bodies"] == via_paho, (browser["bodies"], via_paho)
    assert via_sub == via_paho, (via_sub, via_paho)
    assert browser["seqs"] == list(range(1, 16))
