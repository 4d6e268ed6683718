"""Registration refuses guessable passwords (issue 22 finding 14) with zxcvbn
(Debian's libzxcvbn: frequency lists of common passwords, words and names,
keyboard patterns, sequences, repeats, dates, l33t): the five of the issue
and more of the most common ones are 400 weak_password with a reason and
create nothing; the older rules (length, variety, the user name) still
hold; strong passphrases are accepted. And a new account's id is in the
set chat:users (finding 13: a DM may name only a user who exists), again
after a login if it went missing."""
import json

import pytest

from wsutil import request, web  # noqa: F401  (fixture)

JSON = {"Content-Type": "application/json"}
ISSUE = ["abcdefgh", "qwerty12", "1qaz2wsx", "password2", "monkey123"]
COMMON = ["password1", "iloveyou", "sunshine", "princess", "football1", "qwertyuiop",
          "1q2w3e4r5t", "zaq12wsx", "Password123", "letmein123", "abcd1234", "qwer1234",
          "summer2020", "Winter2021!", "p@ssw0rd", "trustno1", "asdfghjkl", "iloveyou1",
          "dragon123", "q1w2e3r4t5"]
STRONG = ["correct horse battery staple", "plum-river-seven-lamp", "blue-kettle-42",
          "x7#Kq9!vLm", "Elephant carpet 77"]


def register(front, user, password):
    st, _, body = request(front, "POST", "/api/register",
                          {"username": user, "password": password}, JSON)
    return st, json.loads(body) if body else None


def is_user(web, user):
    return web.cluster.redis.call("SISMEMBER", "chat:users", user) == "1"


@pytest.mark.parametrize("password", ISSUE + COMMON)
def test_common_passwords_are_refused(web, password):
    user = "weak%d" % (abs(hash(password)) % 100000)
    st, body = register(web.fronts[0], user, password)
    assert st == 400, (password, st, body)
    err = body["error"]
    assert err["code"] == "weak_password" and "too easy to guess" in err["message"], err
    # nothing was created: the name is free, no login works
    st, _, _ = request(web.fronts[1], "POST", "/api/login",
                       {"username": user, "password": password}, JSON)
    assert st == 401
    assert not is_user(web, user)


@pytest.mark.parametrize("password,why", [
    ("short1!", "at least 8 characters"),
    ("aaaaabbbbb", "5 different characters"),
    ("xx-kestrel-99-tower", "must not contain the username"),
])
def test_the_older_rules_still_hold(web, password, why):
    st, body = register(web.fronts[0], "kestrel", password)
    assert st == 400 and why in body["error"]["message"], body


@pytest.mark.parametrize("password", STRONG)
def test_strong_passphrases_are_accepted_and_the_user_exists(web, password):
    user = "strong%d" % STRONG.index(password)
    st, body = register(web.fronts[0], user, password)
    assert st == 201, (password, body)
    assert is_user(web, user)


def test_a_login_puts_a_missing_user_back(web):
    st, _ = register(web.fronts[1], "comeback", "plum-river-seven-lamp")
    assert st == 201 and is_user(web, "comeback")
    web.cluster.redis.call("SREM", "chat:users", "comeback")
    st, _, _ = request(web.fronts[0], "POST", "/api/login",
                       {"username": "comeback", "password": "plum-river-seven-lamp"}, JSON)
    assert st == 200 and is_user(web, "comeback")
