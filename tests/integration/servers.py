"""A set of servers a test starts one after another (tests/harness) and
stops in the reverse order: a server that does not start fails the test
with the harness's message (its log), never passes it."""
import pytest

from chatharness import HarnessError


class Servers:
    def __init__(self):
        self.started = []

    def _start(self, server):
        self.started.append(server)
        try:
            return server.start()
        except HarnessError as e:
            pytest.fail(str(e), pytrace=False)

    def stop(self):
        for s in reversed(self.started):
            s.stop()
