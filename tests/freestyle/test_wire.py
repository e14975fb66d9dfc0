"""Freestyle wire (§1, §4-§6): routes, request checks, frames with upstream's fields and types."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freescore.freestyle import wire
from freescore.poomsae.frames import canonical, digest_of
from freescore.poomsae.ids import RequestError
from tests.freestyle.examples import FRAMES

TABLET = json.loads((FRAMES / "tablet-score-request.raw.txt").read_text())


def test_routes_of_the_pages_and_the_apache_layout() -> None:
    r = wire.parse_route("/freestyle/request/test/1/computer+operator")
    assert (r.db, r.ring, r.role) == ("test", 1, "computer operator")
    assert wire.parse_route("/freestyle/test/staging/admin").ring == "staging"
    for bad in ("/freestyle/test/x/observer", "/freestyle/../x/1/observer", "/freestyle/test/1",
                "/worldclass/test/1/observer", "/freestyle/test/1/a%2Fb"):
        assert wire.parse_route(bad) is None, bad


def test_requests_are_annotated_as_upstream_echoes_them() -> None:
    assert wire.decode(b'{"type":"division","action":"read"}', "test") == {
        "type": "division", "action": "read", "tournament": "test", "cookie": {}}
    assert "cookie" not in wire.decode('{"type":"division","action":"display"}', "test")
    for bad in (b"\xff", "[]", '{"type":1,"action":"x"}', '{"type":"a","action":"\\ud800"}', "nope"):
        with pytest.raises(RequestError):
            wire.decode(bad, "test")


def test_the_real_tablet_score_is_accepted_and_kept_as_sent() -> None:
    TABLET["judge"] = 1
    judge, score = wire.judge_score(TABLET, 3)
    assert judge == 1 and score is TABLET["score"]


@pytest.mark.parametrize("change", [
    {"judge": 3}, {"judge": -1}, {"judge": "x"}, {"judge": None}, {"score": "x"},
    {"score": {"technical": {"mft1": "1.1"}, "presentation": {}}},
    {"score": {"technical": {"mft1": "abc"}, "presentation": {}}},
    {"score": {"technical": {}, "presentation": {"energy": [1]}}},
    {"score": {"technical": {}}},
    {"score": {"technical": {}, "presentation": {}, "deductions": {"minor": -0.1}}},
    {"score": {"technical": {}, "presentation": {}, "deductions": {"stances": {"hakdari": "yes"}}}},
])
def test_bad_scores_are_refused(change: dict) -> None:
    request = {"type": "division", "action": "score", "judge": 0,
               "score": {"technical": {}, "presentation": {}}, **change}
    with pytest.raises(RequestError):
        wire.judge_score(request, 3)


def test_other_request_fields() -> None:
    assert wire.athlete_id({"athlete_id": "2"}, 3) == 2
    assert wire.target({"target": {"destination": "athlete", "index": "4"}}) == wire.Target(athlete=4)
    assert wire.target({"target": {"destination": "division", "divid": "fs02"}}) == wire.Target(divid="fs02")
    assert wire.transfer({"name": "fs09", "transfer": "staging"}) == ("fs09", "staging")
    assert wire.penalty({"penalty": {"bounds": 0.3, "misconduct": 1, "x": None}})["misconduct"] == 1
    for call in (lambda: wire.athlete_id({"athlete_id": 3}, 3), lambda: wire.athlete_id({}, 3),
                 lambda: wire.target({"target": {"destination": "division", "divid": "../x"}}),
                 lambda: wire.transfer({"name": "fs09", "transfer": "../x"}),
                 lambda: wire.penalty({"penalty": {"bounds": "lots"}}),
                 lambda: wire.decision({"decision": "banish"}),
                 lambda: wire.written_division({"division": {"name": "../x"}}),
                 lambda: wire.names({"athletes": [{"order": 1}]})):
        with pytest.raises(RequestError):
            call()


def test_updates_have_upstreams_fields_and_a_digest_of_the_payload() -> None:
    division = {"name": "fs01", "file": "/d/ring01/div.fs01.txt"}
    request = {"type": "division", "action": "read", "tournament": "test", "cookie": {}}
    frame = json.loads(wire.division_update(division, request))
    assert sorted(frame) == ["action", "digest", "division", "request", "type"]
    assert frame["digest"] == digest_of(canonical(division)) and frame["type"] == "division"
    assert b"\\/" not in wire.division_update(division, request)
    ring = json.loads(wire.ring_update({"name": 1}, request))
    assert (ring["type"], ring["action"], ring["ring"]) == ("ring", "update", {"name": 1})


def test_replies_to_the_sender() -> None:
    assert json.loads(wire.write_error({"name": "fs09"}, "/d/div.fs09.txt")) == {
        "type": "division", "action": "write error", "error": "File '/d/div.fs09.txt' exists.",
        "division": {"name": "fs09", "file": "/d/div.fs09.txt"}}
    assert json.loads(wire.judges_frame([{"judge": 1, "cid": "c1"}]))["judges"] == [{"judge": 1, "cid": "c1"}]
    err = json.loads(wire.read_error(wire.not_in_ring(1, "nope"), {"type": "division"}))
    assert "Division not in ring" in err["error"] and err["request"] == {"type": "division"} and "type" not in err


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_any_bytes_decode_or_raise_request_error(payload: bytes) -> None:
    try:
        request = wire.decode(payload, "test")
    except RequestError:
        return
    assert request["tournament"] == "test"
