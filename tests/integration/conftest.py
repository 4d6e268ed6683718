"""pytest fixtures over tests/harness/chatharness.py: real servers on free
loopback ports, always torn down; a server that cannot start fails the test."""
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))

import chatharness  # noqa: E402
from chatharness import Bridge, FerretDB, HarnessError, Keys, Mosquitto, Redis  # noqa: E402


def _start(server):
    try:
        return server.start()
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)


def _finish(server):
    server.stop()
    if isinstance(server, Bridge) or (isinstance(server, Mosquitto) and server.plugin):
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


@pytest.fixture(params=["sqlite", "mongodb"])
def backend(request, ferretdb):
    """The store_url setting for a cluster, once per store: default SQLite,
    or MongoDB (FerretDB) with a database of its own per test."""
    if request.param == "sqlite":
        return {}
    return {"store_url": "%st%d" % (ferretdb.url, int(time.time() * 1000))}


class Cluster:
    """Two brokers, each with its bridge, sharing one Redis and one store
    (an SQLite file unless store_url is given)."""

    def __init__(self, tmp, keys, broker_opts=None, broker_conf="", **bridge_settings):
        self.keys = keys
        self.started = []
        bridge_settings.setdefault(
            "store_url", "sqlite:%s" % os.path.join(str(tmp.mktemp("store")), "chat.db"))
        self.store_url = bridge_settings["store_url"]
        try:
            self.redis = self._add(Redis(tmp.mktemp("redis")))
            # broker_conf: more mosquitto.conf lines (e.g. its max_packet_size)
            self.brokers = [self._add(Mosquitto(tmp.mktemp("broker"),
                                                keys.plugin_opts(**(broker_opts or {})),
                                                extra_conf=broker_conf))
                            for _ in range(2)]
            self.bridges = [self._add(Bridge(tmp.mktemp("bridge"), b, self.redis, keys,
                                             "node%d" % (i + 1), **bridge_settings))
                            for i, b in enumerate(self.brokers)]
        except BaseException:
            for s in self.started:
                s.stop()
            raise

    def _add(self, server):
        self.started.append(server)
        return _start(server)

    def servers(self):
        return list(reversed(self.started))

    def finish(self):
        # stop every server before judging any, so a sanitizer report in one
        # does not leave the others running
        for s in self.servers():
            s.stop()
        for s in self.servers():
            _finish(s)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, keys):
    c = Cluster(tmp_path_factory, keys)
    yield c
    c.finish()


@pytest.fixture
def make_cluster(tmp_path_factory, keys):
    made = []

    def make(broker_opts=None, broker_conf="", **bridge_settings):
        c = Cluster(tmp_path_factory, keys, broker_opts, broker_conf, **bridge_settings)
        made.append(c)
        return c

    yield make
    for c in made:
        c.finish()
