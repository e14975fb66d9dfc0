"""Paths, identifiers, request decoding and frame envelopes (pure)."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freescore.worldclass import wire
from freescore.worldclass.wire import RequestError


@pytest.mark.parametrize("path,expected", [
    ("/worldclass/test/1/judge1", ("test", 1, "1", "judge1")),
    ("/worldclass/request/test/1/judge1", ("test", 1, "1", "judge1")),
    ("/worldclass/test/staging/computer+operator", ("test", "staging", "staging", "computer operator")),
    ("/worldclass/test/12/computer%20operator", ("test", 12, "12", "computer operator")),
    ("/worldclass/t.db-1/999/1", ("t.db-1", 999, "999", "1")),
    ("/worldclass/test/3/observer?x=1", ("test", 3, "3", "observer")),
])
def test_routes(path, expected):
    r = wire.parse_route(path)
    assert (r.db, r.ring, r.ring_text, r.role) == expected


@pytest.mark.parametrize("path", [
    "/worldclass/test/x/judge1", "/worldclass/..%2F..%2Fetc/1/judge1", "/worldclass/../1/judge1",
    "/worldclass/test/0/judge1", "/worldclass/test/01/judge1", "/worldclass/test/1000/judge1",
    "/worldclass/.test/1/judge1", "/worldclass/test/1", "/worldclass/test/1/judge1/x", "/other/test/1/judge1",
    "/worldclass/test/1/a%2Fb",
])
def test_bad_routes(path):
    assert wire.parse_route(path) is None


def test_group_ids():
    assert wire.group_id("Test", 1) == "test-ring01"
    assert wire.group_id("test", "staging") == "test-staging"


@pytest.mark.parametrize("value", ["../p01", ".p01", "p01/x", "", "a" * 65, None, 3, "p 01"])
def test_bad_divids(value):
    with pytest.raises(RequestError, match="Invalid divid"):
        wire.check_divid(value)


@pytest.mark.parametrize("value,expected", [("1", 1), (2, 2), ("staging", "staging"), ("999", 999)])
def test_rings(value, expected):
    assert wire.parse_ring(value) == expected


@pytest.mark.parametrize("value", ["../../x", "0", 0, 1000, "01", True, None, "1.5"])
def test_bad_rings(value):
    with pytest.raises(RequestError):
        wire.parse_ring(value, "transfer")


def test_numbers_from_strings():
    assert wire.to_float("0.3", "major") == 0.3
    assert wire.to_float(1, "ki") == 1.0
    assert wire.to_float("", "ki") == 0.0
    assert wire.to_int("4", "index") == 4
    for bad in ("abc", "nan", "inf", True, [1], "-1"):
        with pytest.raises(RequestError):
            wire.to_float(bad, "major")


def test_roles_and_judges():
    assert wire.title_role("computer operator") == "Computer Operator"
    assert wire.title_role("judge1") == "Judge1"
    assert wire.judge_number("Judge3") == 3 and wire.judge_number("observer") is None


def test_cookie():
    assert wire.session_from_cookie("a=b; freescore-session=k3j9abc; c=d") == "k3j9abc"
    assert wire.session_from_cookie("freescore-session=../../etc") is None
    assert wire.session_from_cookie(None) is None


def test_decode_request():
    assert wire.decode_request(b'{"type":"division","action":"read"}')["type"] == "division"
    for bad in (b"nope", b"[]", b'{"type":"division"}', b'{"type":1,"action":"x"}', b"\xff\xfe",
                b'{"type":"","action":"read"}'):
        with pytest.raises(RequestError):
            wire.decode_request(bad)


@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_decode_never_raises_anything_else(data):
    try:
        wire.decode_request(data)
    except RequestError:
        pass


@given(st.text(max_size=80))
def test_route_never_leaves_root(path):
    r = wire.parse_route("/worldclass/" + path)
    if r is not None:
        assert "/" not in r.db and not r.db.startswith(".")
        assert r.ring == "staging" or 1 <= r.ring <= 999


def test_handler_names_and_silence():
    assert wire.handler_name("award  penalty") == "award_penalty"
    assert wire.is_silent({"action": "schedule read"}) and wire.is_silent({"action": "register device"})
    assert not wire.is_silent({"action": "read"})


def test_update_frame_digest_and_order():
    division = {"name": "p01", "b": [1, 2.5], "a": "é"}
    now = "2026-01-01T00:00:00Z"
    raw = wire.update_frame("division", "division", division, {"action": "read", "ring": "1"}, [], now)
    frame = json.loads(raw)
    body = json.dumps(division, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert frame["digest"] == hashlib.sha1(body.encode()).hexdigest()
    assert list(frame) == ["action", "digest", "division", "request", "time", "type", "users"]
    assert frame["division"] == division and frame["type"] == "division" and frame["action"] == "update"
    again = wire.update_frame("division", "division", dict(division), {"action": "x"}, [1], "later")
    assert json.loads(again)["digest"] == frame["digest"]


def test_error_and_ping_frames():
    assert json.loads(wire.error_frame("bad")) == {"error": "bad"}
    ping = json.loads(wire.ping_frame(1, "-ab12", "test-ring01", "observer", "2026-11-22T11:21:03Z"))
    assert ping == {"type": "server", "action": "ping", "ring": 1, "cid": "-ab12", "gid": "test-ring01",
                    "role": "observer", "server": {"timestamp": "2026-11-22T11:21:03Z"}}


def test_php_session():
    data = b'is_auth|b:1;ring|s:1:"1";name|s:5:"h\xc3\xa9ll";arr|a:1:{i:0;s:1:"x";}n|N;d|d:1.5;'
    s = wire.parse_php_session(data)
    assert s["is_auth"] is True and s["ring"] == "1" and s["arr"] == {0: "x"} and s["n"] is None and s["d"] == 1.5
    assert wire.session_allows(s, "1") and not wire.session_allows(s, "2")
    assert wire.session_allows({"is_auth": 1, "ring": "staging"}, "7")
    assert wire.session_allows({"is_auth": 1}, "7")
    assert not wire.session_allows({"is_auth": 0, "ring": "1"}, "1")
    assert wire.parse_php_session(b"garbage") == {}
