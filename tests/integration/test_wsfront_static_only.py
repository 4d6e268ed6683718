"""The web front serves the app and nothing else (issue 22 finding 15): the
folder `make` builds the app into holds only the app's files (CMake keeps
its own in another one), and the static file server answers 404 for
anything that is not an app file: build files, stamps, dotfiles, files of
an unknown type, even when they sit in the folder; while the app loads.
Checked on a harness front and on `make run`'s."""
import os
import shutil
import sys
import urllib.error
import urllib.request

from wsutil import request, web  # noqa: F401  (fixture)

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
from chatharness import SANITIZE, asan_env, free_ports, start_run_stack, stop_run_stack  # noqa

ROOT = os.environ.get("CHAT_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
BUILD = os.environ.get("CHAT_BUILD_DIR") or os.path.join(ROOT, "build")
APP_FILES = {"index.html", "app.js", "app.css", "icon.svg", "mqtt.min.js"}
# what a CMake build folder holds (Ninja or Makefiles), and other strays
NOT_APP = ["/CMakeFiles/", "/CMakeFiles/progress.marks",
           "/CMakeFiles/CMakeDirectoryInformation.cmake", "/cmake_install.cmake", "/CTestTestfile.cmake", "/Makefile", "/build.ninja",
           "/npm-ci.stamp", "/.ninja_log", "/.ninja_deps", "/.hidden", "/.git/config", "/index.html.bak",
           "/app.js~"]


def test_the_served_folder_holds_only_the_app(web):
    front = web.fronts[0]
    folder = front.settings["static_dir"]
    assert set(os.listdir(folder)) == APP_FILES, sorted(os.listdir(folder))
    for path in NOT_APP:
        st, _, body = request(front, "GET", path)
        assert st == 404, (path, st, body[:200])
    st, hdr, body = request(front, "GET", "/")
    assert st == 200 and b"app.js" in body
    for name in sorted(APP_FILES):
        assert request(front, "GET", "/" + name)[0] == 200, name


def test_files_that_are_not_app_files_are_404_even_in_the_folder(web, tmp_path_factory):
    """An operator's static_dir with strays in it: only app types are served."""
    folder = str(tmp_path_factory.mktemp("static"))
    src = web.fronts[0].settings["static_dir"]
    for name in APP_FILES:
        shutil.copy(os.path.join(src, name), folder)
    strays = {"notes.txt": b"secret notes", "package.json": b'{"secret": 1}',
              "app.js.map": b'{"sources": ["/home/me/src/app.js"]}', "backup.tar": b"\0" * 64,
              "Makefile": b"all:\n", "cmake_install.cmake": b"# /abs/path\n",
              ".env": b"KEY=secret\n", "README": b"readme"}
    for name, data in strays.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
    os.makedirs(os.path.join(folder, "CMakeFiles"))
    with open(os.path.join(folder, "CMakeFiles", "rules.ninja"), "w") as f:
        f.write("rule x\n")
    front = web.add_front(tmp_path_factory, web.cluster.brokers[0], "node9", static_dir=folder)
    for name in list(strays) + ["CMakeFiles/rules.ninja", "CMakeFiles/"]:
        st, _, body = request(front, "GET", "/" + name)
        assert st == 404 and b"secret" not in body, (name, st, body[:200])
    st, hdr, _ = request(front, "GET", "/app.js")
    assert st == 200 and hdr["content-type"].startswith("text/javascript")
    assert request(front, "GET", "/")[0] == 200


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_make_run_serves_no_build_files(tmp_path):
    run_dir = tmp_path / "run"
    base = free_ports(3)
    mqtt, http, redis = base, base + 1, base + 2
    env = dict(os.environ, RUN_DIR=str(run_dir), NODES="1", MQTT_PORT=str(mqtt),
               REDIS_PORT=str(redis), HTTP_PORT=str(http), BUILD=BUILD,
               MQTTS_PORT=str(free_ports(1)), HTTPS_PORT=str(free_ports(1)))
    if SANITIZE:
        env["MOSQUITTO_PRELOAD"] = asan_env()["LD_PRELOAD"]
    proc, _ = start_run_stack(tmp_path, env, timeout=90)
    try:
        url = "http://127.0.0.1:%d" % http
        st, body = get(url + "/")
        assert st == 200 and b"app.js" in body
        assert get(url + "/app.js")[0] == 200
        for path in NOT_APP:
            st, body = get(url + path)
            assert st == 404, (path, st, body[:200])
            assert BUILD.encode() not in body and b"CMAKE" not in body.upper(), path
    finally:
        stop_run_stack(proc)
