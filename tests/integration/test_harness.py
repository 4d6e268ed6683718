"""The harness itself: each real server starts on a free loopback port and
answers a real request; a server that cannot start raises, never skips."""
import socket
import subprocess

import pymongo
import pytest

from chatharness import HarnessError, Mosquitto


def test_redis_answers(redis):
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as s:
        s.sendall(redis.hello() + b"SET harness ok\r\nGET harness\r\n")
        data = b""
        while b"ok\r\n" not in data:
            chunk = s.recv(100)
            assert chunk, data
            data += chunk
    assert data == (b"+OK\r\n" if redis.password else b"") + b"+OK\r\n$2\r\nok\r\n"


def test_ferretdb_answers(ferretdb):
    client = pymongo.MongoClient(ferretdb.url, serverSelectionTimeoutMS=5000)
    coll = client.harness.items
    coll.insert_one({"_id": 1, "v": "stored"})
    assert coll.find_one({"_id": 1})["v"] == "stored"
    client.close()


def test_plain_mosquitto_round_trip(make_broker):
    b = make_broker(plugin=False)
    sub = subprocess.Popen(["mosquitto_sub", "-p", str(b.port), "-t", "h/t", "-C", "1",
                            "-W", "10"], stdout=subprocess.PIPE, text=True)
    for _ in range(50):
        subprocess.run(["mosquitto_pub", "-p", str(b.port), "-t", "h/t", "-m", "round trip"],
                       check=True)
        try:
            out, _ = sub.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            continue
    assert out.strip() == "round trip"


def test_server_that_cannot_start_raises(tmp_path):
    bad = Mosquitto(tmp_path, {"jwt_alg": "none"})
    with pytest.raises(HarnessError, match="jwt_alg"):
        bad.start()
    assert not bad.alive()
