"""The FreeScore service machinery, driven through worldclass on a memory node (tests/memnode.py):
ring groups, group commit (write, then send; a failed write answers the requester with an error),
autopilot timers that a manual action cancels, optional pings and users."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from freescore.poomsae.service import FreeScoreService

FIXTURES = Path(__file__).resolve().parent.parent / "worldclass" / "fixtures" / "forms-worldclass"
TABLE = '[worldclass]\ndata = "wc"\nkeepalive = 0\nping_interval = 1000\nscoreboard_delay = 5\nleaderboard_delay = 5\n'
MARKS = {"major": "0.3", "minor": "0.6", "rhythm": "1.5", "power": "1.4", "ki": "1.3"}


def node(node_of, tmp_path, **attrs):
    shutil.copytree(FIXTURES, tmp_path / "wc" / "test" / "forms-worldclass")
    n = node_of(TABLE, "worldclass")
    service = n.service("worldclass")
    assert isinstance(service, FreeScoreService)
    for key, value in attrs.items():
        setattr(service, key, value)
    return n, service


def score(peer, judge):
    peer.send(json.dumps({"type": "division", "action": "score", "judge": judge, "score": MARKS}))


def messages(peer):
    return [json.loads(t) for t in peer.texts()]


def division_file(tmp_path, ring="ring01", divid="p01"):
    return tmp_path / "wc" / "test" / "forms-worldclass" / ring / f"div.{divid}.txt"


def test_a_batch_is_written_once_then_sent_to_the_ring_group_only(node_of, tmp_path):
    n, service = node(node_of, tmp_path)
    judges = [n.websocket(f"/worldclass/test/1/judge{j}") for j in range(2)]
    display = n.websocket("/worldclass/test/1/observer")
    elsewhere = n.websocket("/worldclass/test/2/observer")
    for peer in (*judges, display, elsewhere):
        peer.written()
    before = division_file(tmp_path).read_bytes()
    score(judges[0], 0)
    score(judges[1], 1)
    assert display.written() == b"" and division_file(tmp_path).read_bytes() == before  # queued: one turn
    n.clock.advance(0)
    updates = [m for m in messages(display) if m.get("action") == "update"]
    assert [u["request"]["judge"] for u in updates] == [0, 1]
    scores = updates[-1]["division"]["athletes"][0]["scores"]["prelim"]["forms"][0]["judge"]
    assert [j["started"] for j in scores[:3]] == [True, True, False]
    assert division_file(tmp_path).read_bytes() != before  # written before anything went out
    assert messages(elsewhere) == []


def test_a_failed_write_answers_the_requester_with_an_error_and_broadcasts_nothing(node_of, tmp_path):
    n, service = node(node_of, tmp_path)
    judge = n.websocket("/worldclass/test/1/judge0")
    display = n.websocket("/worldclass/test/1/observer")
    judge.written(), display.written()
    (division_file(tmp_path).parent / ".history").write_text("in the way\n")  # the commit cannot write
    score(judge, 0)
    n.clock.advance(0)
    [answer] = messages(judge)
    assert "type" not in answer and answer["request"]["action"] == "score"
    assert answer["error"].startswith("Error while processing request: could not save the changes to tournament")
    assert messages(display) == [] and "test" not in service.model.tournaments


def test_a_manual_action_cancels_the_rings_autopilot(node_of, tmp_path):
    n, service = node(node_of, tmp_path)
    judges = [n.websocket(f"/worldclass/test/1/judge{j}") for j in range(5)]
    operator = n.websocket("/worldclass/test/1/computer+operator")
    for j, peer in enumerate(judges):
        score(peer, j)
    n.clock.advance(0)
    assert service.autopilot.keys() == [("test", 1)]
    n.clock.advance(0)  # the scoreboard step runs at once and arms the next
    assert service.autopilot.keys() == [("test", 1)]
    operator.written()
    operator.send(json.dumps({"type": "division", "action": "athlete next"}))
    n.clock.advance(0)
    assert service.autopilot.keys() == []
    assert [m["request"]["action"] for m in messages(operator) if m.get("type") == "division"] == ["athlete next"]
    n.clock.advance(30)
    assert messages(operator) == []  # no step ran after the cancel


def test_pings_and_users_are_optional(node_of, tmp_path):
    n, service = node(node_of, tmp_path, pings=False)
    first = n.websocket("/worldclass/test/1/judge0")
    first.written()
    second = n.websocket("/worldclass/test/1/observer")
    n.clock.advance(2000)
    assert messages(first) == [] and messages(second) == []  # no users update, no ping
    assert service.ping_calls.keys() == []


def test_with_pings_a_join_tells_the_ring(node_of, tmp_path):
    n, service = node(node_of, tmp_path)
    first = n.websocket("/worldclass/test/1/judge0")
    first.written()
    n.websocket("/worldclass/test/1/observer")
    [update] = messages(first)
    assert update["type"] == "users" and update["request"]["user"]["action"] == "connect"
    assert len(service.ping_calls.keys()) == 2


def test_leaving_forgets_the_tournament_and_its_connection(node_of, tmp_path):
    n, service = node(node_of, tmp_path)
    peer = n.websocket("/worldclass/test/1/judge0")
    peer.send(json.dumps({"type": "division", "action": "read"}))
    n.clock.advance(0)
    assert list(service.model.tournaments) == ["test"] and len(service.connections) == 1
    peer.proto.connectionLost(Failure(ConnectionDone()))
    assert list(service.model.tournaments) == [] and len(service.connections) == 0 and service.groups == {}
