"""pytest fixtures over tests/harness/chatharness.py: real servers on free
loopback ports, always torn down; a server that cannot start fails the test."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))

import chatharness  # noqa: E402
from chatharness import FerretDB, HarnessError, Keys, Mosquitto, Redis  # noqa: E402


def _start(server):
    try:
        return server.start()
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)


def _finish(server):
    server.stop()
    if isinstance(server, Mosquitto) and server.plugin:
        reports = server.sanitizer_reports()
        assert not reports, "sanitizer reports in the broker log:\n" + server.log()[-4000:]


@pytest.fixture(scope="session")
def keys(tmp_path_factory):
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def broker(tmp_path_factory, keys):
    b = _start(Mosquitto(tmp_path_factory.mktemp("broker"), keys.plugin_opts()))
    yield b
    _finish(b)


@pytest.fixture
def make_broker(tmp_path_factory):
    started = []

    def make(plugin_opts=None, extra_conf="", plugin=True):
        b = _start(Mosquitto(tmp_path_factory.mktemp("broker"), plugin_opts, extra_conf,
                             plugin))
        started.append(b)
        return b

    yield make
    for b in started:
        _finish(b)


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    r = _start(Redis(tmp_path_factory.mktemp("redis")))
    yield r
    r.stop()


@pytest.fixture(scope="module")
def ferretdb(tmp_path_factory):
    f = _start(FerretDB(tmp_path_factory.mktemp("ferretdb")))
    yield f
    f.stop()
