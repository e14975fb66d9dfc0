"""The FreeScore layer's pure pieces, as freestyle and grassroots will use them (other names, no role)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from freescore.poomsae import frames, progress, requests
from freescore.poomsae.ids import DB_RE, RequestError, parse_ring
from freescore.poomsae.layout import Layout, ring_folder, ring_of_folder
from freescore.poomsae.routes import parse_route


@pytest.mark.parametrize("path,service,with_role,expected", [
    ("/freestyle/test/1/observer", "freestyle", True, ("test", 1, "1", "observer")),
    ("/freestyle/request/test/staging/computer+operator", "freestyle", True,
     ("test", "staging", "staging", "computer operator")),
    ("/grassroots/test/2", "grassroots", False, ("test", 2, "2", "")),
    ("/grassroots/request/test/12?x=1", "grassroots", False, ("test", 12, "12", "")),
])
def test_routes_per_service(path, service, with_role, expected):
    r = parse_route(path, service, with_role)
    assert r is not None and (r.db, r.ring, r.ring_text, r.role) == expected


@pytest.mark.parametrize("path,service,with_role", [
    ("/worldclass/test/1/judge1", "freestyle", True),
    ("/grassroots/test/2/judge1", "grassroots", False),
    ("/grassroots/test", "grassroots", False),
    ("/freestyle/test/2", "freestyle", True),
    ("/grassroots/../2", "grassroots", False),
    ("/grassroots/request/request/test/2", "grassroots", False),
])
def test_routes_refused(path, service, with_role):
    assert parse_route(path, service, with_role) is None


@given(st.text(max_size=40), st.text(max_size=5), st.booleans())
def test_a_route_never_names_an_unsafe_db_or_ring(middle, ring, with_role):
    r = parse_route(f"/svc/{middle}/{ring}/observer" if with_role else f"/svc/{middle}/{ring}", "svc", with_role)
    if r is not None:
        assert DB_RE.match(r.db) and parse_ring(r.ring) == r.ring and "/" not in r.db


def test_group_label_and_route_group():
    r = parse_route("/freestyle/Test/3/observer", "freestyle")
    assert r is not None and r.gid == "test-ring03" and r.group == ("Test", 3)


def test_request_kind_and_fields():
    req = requests.decode_request(b'{"type":"division","action":"award  penalty","judge":"2"}')
    assert requests.request_kind(req) == "division_award_penalty"
    assert requests.to_int(req["judge"], "judge", 0, 4) == 2
    with pytest.raises(RequestError, match="Missing field 'score'"):
        requests.require(req, "score")
    for bad in (b"[1]", b'{"type":"x"}', b"\xff", b'{"type":" ","action":"read"}'):
        with pytest.raises(RequestError):
            requests.decode_request(bad)


def test_update_frame_extras_and_digest():
    payload = {"name": "p01", "état": "/"}
    plain = json.loads(frames.update_frame("division", "division", payload, {"action": "score"}))
    assert plain == {"action": "update", "digest": frames.digest_of(frames.canonical(payload)),
                     "division": payload, "request": {"action": "score"}, "type": "division"}
    extra = frames.update_frame("ring", "ring", {}, None, time="t", users=[])
    assert list(json.loads(extra)) == ["action", "digest", "request", "ring", "time", "type", "users"]


def test_error_texts():
    assert json.loads(frames.error_frame("bad")) == {"error": "bad"}
    assert json.loads(frames.error_frame("bad", {"a": 1})) == {"error": "bad", "request": {"a": 1}}
    assert frames.processing_error("x") == "Error while processing request: x\n"
    assert (frames.unknown_command("FreeScore FreeStyle Service Error", "freestyle/x/y")
            == "FreeScore FreeStyle Service Error: Unknown command: freestyle/x/y")


def test_progress_round_trip_and_current():
    text = "# name=1\n# current=p02\n#junk\n"
    keys = progress.parse_progress(text)
    assert keys == {"name": "1", "current": "p02"}
    assert progress.format_progress(dict(keys, divisions=[], path="x")) == "# current=p02\n# name=1\n"
    assert progress.current_divid(keys, ["p03", "p02"]) == "p02"
    assert progress.current_divid({"current": "gone"}, ["p03", "p01"]) == "p01"
    assert progress.current_divid({"current": "0"}, []) is None


def test_layout_per_service():
    layout = Layout(Path("/data"), "forms-freestyle")
    assert layout.ring_dir("t", 3) == Path("/data/t/forms-freestyle/ring03")
    assert layout.ring_dir("t", "staging") == Path("/data/t/forms-freestyle/staging")
    assert layout.division_file("p01") == "div.p01.txt"
    assert layout.divid_of_file("div.p.01.txt") == "p.01"
    for name in ("div..txt", "div.p01.txt,v", "progress.txt", "div..hidden.txt", "div.a b.txt"):
        assert layout.divid_of_file(name) is None
    with pytest.raises(RequestError):
        layout.tournament("../etc")
    assert ring_folder(120) == "ring120" and ring_of_folder("ring07") == 7
    assert ring_of_folder("ring0") is None and ring_of_folder("ring1000") is None and ring_of_folder("x") is None


def test_a_lone_surrogate_is_refused_like_any_bad_json() -> None:
    """No frame echoing it and no file holding it could be written as UTF-8."""
    for payload in (b'{"type": "a", "action": "b", "x": "\\ud800"}', '{"type": "a\udc00", "action": "b"}'):
        with pytest.raises(RequestError, match="lone surrogate"):
            requests.decode_request(payload)
    assert requests.decode_request(b'{"type": "a", "action": "\\u00e9\\ud83d\\ude00"}')["action"] == "\u00e9\U0001f600"
