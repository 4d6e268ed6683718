"""A connected client whose token expires is disconnected within 2 s of
exp (PROTOCOL.md section 2); others stay connected."""
import base64
import json
import time

import pytest

from mqttutil import V311, V5, Client


def exp_of(token):
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["exp"]


@pytest.mark.parametrize("protocol", [pytest.param(V311, id="mqtt311"),
                                      pytest.param(V5, id="mqtt5")])
def test_expired_token_disconnects(broker, keys, protocol):
    ttl = 3
    token = keys.mint("eve", ttl="%ds" % ttl)
    exp = exp_of(token)
    short = Client(broker.port, "eve", token, protocol=protocol)
    long_lived = Client(broker.port, "frank", keys.mint("frank"), protocol=protocol)
    assert short.connect() == 0
    assert long_lived.connect() == 0
    try:
        assert short.disconnected.wait(ttl + 5), "still connected after exp"
        late = short.disconnected_at - exp
        assert 0.0 <= late <= 2.0, "disconnected %.2f s after exp" % late
        time.sleep(0.5)
        assert not long_lived.disconnected.is_set()
        assert long_lived.subscribe("chat/user/frank/#") < 0x80
    finally:
        short.close()
        long_lived.close()
