"""The broker's packet limit as production runs it (mosquitto.conf's
max_packet_size), for tests of answers that must fit one packet: the
harness's own broker config sets none."""
import os

ROOT = os.environ.get("CHAT_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")


def packet_limit():
    """max_packet_size of mosquitto.conf, in bytes."""
    with open(os.path.join(ROOT, "mosquitto.conf")) as f:
        for line in f:
            if line.startswith("max_packet_size "):
                return int(line.split()[1])
    raise AssertionError("mosquitto.conf sets no max_packet_size")


def packet_conf():
    """The mosquitto.conf line, for make_cluster(broker_conf=...)."""
    return "max_packet_size %d" % packet_limit()
