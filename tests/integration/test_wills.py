"""What a departed client's Will may do (issue 22, findings 1 and 9): a Will
is published by the broker itself, after the client is gone, so the role
stamp never touches it and no one is left to answer. Only a post (room or
DM) may be a Will: a Will on chat/in/<me>/rpc carrying a forged
`chat-role: admin` property is refused, over TCP and over the web front's
/mqtt alike, and so is a Will whose token was revoked (user.revoke,
/api/logout) before the broker sent it. A plain post Will still works."""
import json
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from mqttutil import V5, Client, payloads, rpc, wait_for
from wsutil import WsClient, register, request, web  # noqa: F401  (fixture)


def signed_in(port, keys, user, cid=None, subs=()):
    c = Client(port, user, keys.mint(user), cid)
    assert c.connect() == 0, "%s could not connect" % user
    for t in ("chat/user/%s/#" % user,) + tuple(subs):
        assert c.subscribe(t, qos=1) < 0x80
    return c


def will_client(client, topic, payload, delay=0, admin=False):
    """Sets an MQTT 5 Will on a paho client (optionally delayed, optionally
    with a forged chat-role: admin user property)."""
    wp = Properties(PacketTypes.WILLMESSAGE)
    if delay:
        wp.WillDelayInterval = delay
    if admin:
        wp.UserProperty = [("chat-role", "admin")]
    client.will_set(topic, payload, qos=1, properties=wp)


def drop(client, port, delay=0):
    """Connects (MQTT 5, a session that outlives the connection when the
    Will is delayed), then closes the socket without DISCONNECT."""
    cp = Properties(PacketTypes.CONNECT)
    cp.SessionExpiryInterval = 60 if delay else 0
    done = []
    client.on_connect = lambda c, u, f, rc, p=None: done.append(rc)
    client.connect("127.0.0.1", port, clean_start=True, properties=cp)
    client.loop_start()
    assert wait_for(lambda: done, timeout=10), "no CONNACK"
    assert done[0] == 0, done
    client.loop_stop()
    client.socket().close()


def tcp_will(port, keys, user, cid, topic, payload, delay=0, admin=False, token=None):
    c = mqtt.Client(client_id=cid, protocol=V5)
    c.username_pw_set(user, token or keys.mint(user))
    will_client(c, topic, payload, delay, admin)
    drop(c, port, delay)


def request_body(req_id, method, params):
    return json.dumps({"id": req_id, "method": method, "params": params})


def members(owner, user, room):
    reply = rpc(owner, user, "room.members", {"room": room})
    return sorted(m["user"] for m in reply["result"]["members"])


def setup_private_room(port, keys, owner_name, room):
    owner = signed_in(port, keys, owner_name)
    assert "result" in rpc(owner, owner_name, "room.create", {"room": room, "private": True})
    owner.publish("chat/in/%s/room/%s" % (owner_name, room), "for members only", qos=1)
    return owner


def test_admin_will_on_rpc_is_refused_and_a_post_will_works(cluster):
    """A plain user's Wills on rpc with chat-role admin: an invite into
    someone's private room and a sign-out of its owner. Neither runs, no
    rpc reply comes; a Will that is a post is delivered."""
    keys = cluster.keys
    broker = cluster.brokers[0]
    port = broker.port
    owner = setup_private_room(port, keys, "olivia", "vault")
    eyes = signed_in(port, keys, "mallory", "mallory:eyes", ["chat/room/lobby"])
    assert "result" in rpc(eyes, "mallory", "room.create", {"room": "lobby"})
    mark = len(broker.run_log())
    try:
        tcp_will(port, keys, "mallory", "mallory:w1", "chat/in/mallory/rpc",
                 request_body("w1", "room.invite", {"room": "vault", "user": "mallory"}),
                 admin=True)
        tcp_will(port, keys, "mallory", "mallory:w2", "chat/in/mallory/rpc",
                 request_body("w2", "user.revoke", {"user": "olivia"}), admin=True)
        # typing is no post either
        tcp_will(port, keys, "mallory", "mallory:w3", "chat/in/mallory/typing/room/lobby", "")
        tcp_will(port, keys, "mallory", "mallory:w4", "chat/in/mallory/room/lobby",
                 json.dumps({"body": "gone", "cid": "will-post"}))
        # the post Will arrives: every Will before it was sent (or refused)
        assert wait_for(lambda: any(m.get("cid") == "will-post"
                                    for m in payloads(eyes, "chat/room/lobby")), timeout=15), \
            "the post Will never arrived"
        # the three refused (each logged), or run (then the checks below fail)
        wait_for(lambda: broker.run_log()[mark:].count("Will of mallory") >= 3, timeout=10)
        time.sleep(1.5)  # a revocation would cut olivia within 1 s
        assert not owner.disconnected.is_set(), "the Will signed olivia out"
        assert members(owner, "olivia", "vault") == ["olivia"], "the Will invited mallory"
        replies = [p for p in payloads(eyes, "/rpc") if p.get("id") in ("w1", "w2")]
        assert replies == [], replies
        history = rpc(eyes, "mallory", "history", {"conv": "room:vault"})
        assert history.get("error", {}).get("code") == "forbidden", history
        log = broker.run_log()[mark:]
        assert log.count("Will of mallory") >= 3, log[-3000:]
    finally:
        owner.close()
        eyes.close()


def test_admin_will_over_the_web_front_is_refused(web):
    """The same Will through the web front's /mqtt (MQTT 5 over WebSocket),
    the socket closed without DISCONNECT."""
    cluster = web.cluster
    keys = cluster.keys
    port = cluster.brokers[0].port
    owner = setup_private_room(port, keys, "oskar", "den")
    eyes = signed_in(port, keys, "mavis", "mavis:eyes", ["chat/room/den-lobby"])
    assert "result" in rpc(eyes, "mavis", "room.create", {"room": "den-lobby"})
    try:
        for cid, topic, payload, admin in (
                ("mavis:w1", "chat/in/mavis/rpc",
                 request_body("ws1", "room.invite", {"room": "den", "user": "mavis"}), True),
                ("mavis:w2", "chat/in/mavis/room/den-lobby",
                 json.dumps({"body": "bye", "cid": "ws-will-post"}), False)):
            ws = WsClient(web.fronts[0], "mavis", keys.mint("mavis"), cid, protocol=V5)
            will_client(ws.c, topic, payload, admin=admin)
            assert ws.connect() == 0
            ws.c.loop_stop()
            ws.c.socket().close()
        assert wait_for(lambda: any(m.get("cid") == "ws-will-post"
                                    for m in payloads(eyes, "chat/room/den-lobby")),
                        timeout=15), "the post Will over /mqtt never arrived"
        time.sleep(1.0)
        assert members(owner, "oskar", "den") == ["oskar"], "the Will over /mqtt invited mavis"
        assert [p for p in payloads(eyes, "/rpc") if p.get("id") == "ws1"] == []
    finally:
        owner.close()
        eyes.close()


def test_delayed_will_after_sign_out_everywhere_is_refused(cluster):
    """A Will delayed 5 s, then the user signs out everywhere (user.revoke of
    oneself): the token the Will's client connected with is revoked, so
    the Will is not posted. The same without the sign-out is posted."""
    keys = cluster.keys
    broker = cluster.brokers[0]
    port = broker.port
    watcher = signed_in(port, keys, "wendy", subs=["chat/room/wills"])
    assert "result" in rpc(watcher, "wendy", "room.create", {"room": "wills"})
    mark = len(broker.run_log())
    try:
        tcp_will(port, keys, "quitter", "quitter:w", "chat/in/quitter/room/wills",
                 json.dumps({"body": "after sign-out", "cid": "revoked-will"}), delay=5)
        tcp_will(port, keys, "stayer", "stayer:w", "chat/in/stayer/room/wills",
                 json.dumps({"body": "still signed in", "cid": "valid-will"}), delay=5)
        time.sleep(1.1)  # the revocation covers tokens issued before its second
        other = signed_in(port, keys, "quitter", "quitter:other")
        reply = rpc(other, "quitter", "user.revoke", {"user": "quitter"})
        assert "result" in reply, reply
        other.close()
        got = lambda: [m.get("cid") for m in payloads(watcher, "chat/room/wills")]
        line = "Will of quitter refused: its token was revoked"
        # either happens once the Will's delay is over
        assert wait_for(lambda: line in broker.run_log()[mark:] or "revoked-will" in got(),
                        timeout=20)
        assert wait_for(lambda: "valid-will" in got(), timeout=20), got()
        assert "revoked-will" not in got(), "the Will of a revoked token was posted"
        assert line in broker.run_log()[mark:]
    finally:
        watcher.close()


def test_delayed_will_after_logout_is_refused(web):
    """The same with POST /api/logout: that token (by its jti) is revoked."""
    cluster = web.cluster
    keys = cluster.keys
    port = cluster.brokers[0].port
    watcher = signed_in(port, keys, "walt", subs=["chat/room/logouts"])
    assert "result" in rpc(watcher, "walt", "room.create", {"room": "logouts"})
    token = register(web.fronts[0], "leaver")
    try:
        tcp_will(port, keys, "leaver", "leaver:w", "chat/in/leaver/room/logouts",
                 json.dumps({"body": "after logout", "cid": "logout-will"}), delay=5,
                 token=token)
        st, _, _ = request(web.fronts[0], "POST", "/api/logout",
                           headers={"Authorization": "Bearer " + token})
        assert st == 204
        # a control Will, posted later than the refused one would be
        tcp_will(port, keys, "walt", "walt:w", "chat/in/walt/room/logouts",
                 json.dumps({"body": "control", "cid": "control-will"}), delay=6)
        got = lambda: [m.get("cid") for m in payloads(watcher, "chat/room/logouts")]
        assert wait_for(lambda: "control-will" in got(), timeout=20), got()
        assert "logout-will" not in got(), "the Will of a logged-out token was posted"
    finally:
        watcher.close()
