"""Grassroots REST routes, WebSocket route and frames, SSE payload (pure)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freescore.grassroots import wire
from freescore.grassroots.wire import RequestError, Rest, UnknownCommand, parse_rest
from freescore.poomsae.routes import parse_route


def seg(path):
    return path.strip("/").split("/")


@pytest.mark.parametrize(("path", "expected"), [
    ("/test/1/judges", Rest("test", 1, "judges")),
    ("/test/staging/division/list", Rest("test", "staging", "division list")),
    ("/test/1/division/next", Rest("test", 1, "division next")),
    ("/test/1/division/previous", Rest("test", 1, "division previous")),
    ("/test/1/display", Rest("test", 1, "display")),
    ("/test/12/athlete/next", Rest("test", 12, "athlete next")),
    ("/test/1/athlete/previous", Rest("test", 1, "athlete previous")),
    ("/test/1/0/83", Rest("test", 1, "score", judge=0, value=8.3)),
    ("/test/1/0/-10", Rest("test", 1, "score", judge=0, value=-1.0)),
    ("/test/1/2/vote/red", Rest("test", 1, "vote", judge=2, value="red")),
    ("/test/3/0/tb/blue", Rest("test", 3, "tb", judge=0, value="blue")),
    ("/test/3/1/tb/85", Rest("test", 3, "tb", judge=1, value=8.5)),
    ("/test/3/1/tb/-10", Rest("test", 3, "tb", judge=1, value=-1.0)),
])
def test_rest_routes(path, expected):
    assert parse_rest("GET", seg(path)) == expected


def test_post_takes_judges_as_a_number_or_digits():
    for judges in (5, "5"):
        body = json.dumps({"header": {"judges": judges}, "athletes": ["Ana LIME"]}).encode()
        assert parse_rest("POST", seg("/test/1/p01"), body).body["header"]["judges"] == judges


def test_post_saves_a_division():
    body = json.dumps({"name": "p01", "header": {"judges": 3}, "athletes": ["Ana LIME"]}).encode()
    c = parse_rest("POST", seg("/test/1/p01"), body)
    assert (c.action, c.value, c.body["athletes"]) == ("save", "p01", ["Ana LIME"])


@pytest.mark.parametrize("path", ["/nope/x", "/test/1/8.3", "/test/1/p01", "/test/1/0/83/x", "/test/1/division/x/y",
                                  "/../1/judges", "/test/1/0/x/blue", "/", "/test"])
def test_unknown_commands(path):
    with pytest.raises(UnknownCommand):
        parse_rest("GET", seg(path))


def test_methods_other_than_get_and_post_are_unknown():
    with pytest.raises(UnknownCommand):
        parse_rest("DELETE", seg("/test/1/judges"))
    with pytest.raises(UnknownCommand):
        parse_rest("POST", seg("/test/1/judges/x"))


@pytest.mark.parametrize(("method", "path", "body", "message"), [
    ("GET", "/te$t/1/judges", b"", "Invalid db 'te$t'"),
    ("GET", "/test/0/judges", b"", "Invalid ring '0'"),
    ("GET", "/test/ring1/0/83", b"", "Invalid ring 'ring1'"),
    ("GET", "/test/1/x/83", b"", "Invalid judge 'x'"),
    ("GET", "/test/1/0/abc", b"", "Invalid score 'abc'"),
    ("GET", "/test/1/0/vote/green", b"", "Invalid vote 'green'"),
    ("GET", "/test/1/0/tb/purple", b"", "Invalid tiebreaker 'purple'"),
    ("POST", "/test/1/p01", b"{not json", "Invalid division: not JSON"),
    ("POST", "/test/1/p01", b"[1]", "Invalid division: not a JSON object"),
    ("POST", "/test/1/p01", b'{"athletes":[1]}', "Invalid division: 'athletes' must be a list of names"),
    ("POST", "/test/1/p01", b'{"athletes":["a\\tb"]}', "Invalid division: 'athletes' must be a list of names"),
    ("POST", "/test/1/p01", b'{"header":[]}', "Invalid division: 'header' must be an object"),
    # a header line break or a name read as a header or a blank line would change the file's meaning
    ("POST", "/test/1/p01", b'{"header":{"description":"a\\nAna LIME"}}',
     "Invalid division: header 'description' cannot stand on one '# key=value' line"),
    ("POST", "/test/1/p01", b'{"header":{"a=b":"c"}}',
     "Invalid division: header 'a=b' cannot stand on one '# key=value' line"),
    ("POST", "/test/1/p01", b'{"athletes":["# state=x"]}', "Invalid division: 'athletes' must be a list of names"),
    ("POST", "/test/1/p01", b'{"athletes":["  "]}', "Invalid division: 'athletes' must be a list of names"),
    ("POST", "/test/1/p01", b'{"header":{"judges":"three"}}',
     "Invalid division: 'judges' must be a whole number from 1 to 15"),
    ("POST", "/test/1/p01", b'{"header":{"judges":0}}',
     "Invalid division: 'judges' must be a whole number from 1 to 15"),
    ("POST", "/test/1/p01", b'{"header":{"judges":16}}',
     "Invalid division: 'judges' must be a whole number from 1 to 15"),
])
def test_bad_values_are_request_errors(method, path, body, message):
    with pytest.raises(RequestError) as e:
        parse_rest(method, seg(path), body)
    assert e.value.message == message


def test_ws_route_has_no_role_and_refuses_traversal():
    def route(path):
        return parse_route(path, wire.SERVICE, with_role=False)

    assert route("/grassroots/test/1").group == ("test", 1)
    assert route("/grassroots/test/staging").ring == "staging"
    assert route("/grassroots/request/test/2").ring == 2
    for bad in ("/grassroots/test/1/observer", "/grassroots/../1", "/grassroots/test/..", "/grassroots/test/0",
                "/worldclass/test/1", "/grassroots/test"):
        assert route(bad) is None


def test_answers_use_upstream_keys():
    assert wire.score_answer(0, 0, 8.3) == {"athlete": 0, "judge": 1, "score": 8.3}
    assert wire.tiebreaker_answer(0, 2, "blue") == {"athlete": 0, "judge": 3, "tiebraker": "blue"}
    assert wire.vote_answer(1, 0, "red") == {"bracket": 1, "judge": 1, "vote": "red"}


def test_division_update_frame_shape_and_stable_digest():
    req = {"type": "division", "action": "read", "tournament": "test", "ring": 1}
    f1 = json.loads(wire.division_update({"b": 1, "a": [1, 2]}, req))
    f2 = json.loads(wire.division_update({"a": [1, 2], "b": 1}, req))
    assert set(f1) == {"type", "action", "digest", "division", "request"}
    assert (f1["type"], f1["action"], f1["request"]["ring"], f1["request"]["tournament"]) == ("division", "update", 1,
                                                                                              "test")
    assert f1["digest"] == f2["digest"] and len(f1["digest"]) == 40
    assert json.loads(wire.ring_read({"current": None})) == {"type": "ring", "action": "read",
                                                            "ring": {"current": None}}
    assert json.loads(wire.error("x")) == {"error": "x"}


def test_sse_event_format_and_numberize():
    data = wire.sse_data({"current": "p01", "divisions": [{"current": "3", "score": "24.6", "name": "12"}]})
    assert data == '{"current":"p01","divisions":[{"current":3,"name":12,"score":24.6}]}'
    assert wire.sse_event(7, data) == b"id: 7\r\ndata: " + data.encode() + b"\r\n\r\n"
    assert wire.parse_last_event_id(b" 12 ") == 12
    assert wire.parse_last_event_id("x") is None and wire.parse_last_event_id(None) is None


@given(st.lists(st.text(alphabet="ab1./$-_", min_size=0, max_size=6), max_size=6),
       st.sampled_from(["GET", "POST", "PUT"]), st.binary(max_size=40))
def test_property_any_path_is_a_route_an_unknown_command_or_a_request_error(parts, method, body):
    try:
        c = parse_rest(method, parts, body)
    except (UnknownCommand, RequestError):
        return
    assert isinstance(c, Rest) and "/" not in c.db and ".." not in c.db


@given(st.recursive(st.one_of(st.none(), st.integers(), st.text(alphabet="0123456789.ab", max_size=6)),
                    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=3), c, max_size=3)),
                    max_leaves=10))
def test_property_sse_data_is_one_line_of_json(value):
    data = wire.sse_data({"x": value})
    assert "\n" not in data and "\r" not in data
    json.loads(data)
