"""Editing and deleting in the web app (1.1) in headless Chromium, two
people on two nodes (wsfront/app/tests/edits.mjs): own messages edited and
deleted, another's deleted by the room owner, each seen live by the other
person; no edit offered on someone else's message; history after a reload;
the room deleted after typing its name, gone from both lists; no console
error. Screenshots go to tests/artifacts/wsfront/."""
import json
import os
import subprocess

from wsutil import ARTIFACTS, ROOT, web  # noqa: F401  (fixture)

SCRIPT = os.path.join(ROOT, "wsfront", "app", "tests", "edits.mjs")
CHROMIUM = "/usr/bin/chromium"


def test_edit_delete_and_room_delete_in_browsers(web):
    assert os.path.exists(CHROMIUM), "Debian's chromium is not installed"
    a, b = web.fronts
    env = dict(os.environ, ARTIFACTS=ARTIFACTS, CHROMIUM=CHROMIUM, URL1=a.url + "/",
               URL2=b.url + "/", ROOM="studio")
    proc = subprocess.run(["node", SCRIPT], env=env, capture_output=True, text=True,
                          cwd=os.path.dirname(SCRIPT), timeout=240)
    assert proc.returncode == 0, "browser test failed:\n%s\n%s" % (proc.stdout[-3000:],
                                                                   proc.stderr[-5000:])
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["ok"]
    assert res["afterReload"] == ["final words", "Message deleted", "Message deleted"]
    for name in ("edits-01-room", "edits-02-confirm"):
        assert os.path.getsize(os.path.join(ARTIFACTS, name + ".png")) > 1000
