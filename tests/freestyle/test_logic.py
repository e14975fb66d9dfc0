"""The freestyle rules on a real data folder (FreestyleStore on tmp_path): effects out, files written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from freescore.effects import Arm, Broadcast, Cancel, ConnId, Send
from freescore.freestyle import wire
from freescore.freestyle.divfile import parse_division
from freescore.freestyle.logic import Freestyle
from freescore.freestyle.store import FreestyleStore
from freescore.poomsae.routes import parse_route
from freescore.poomsae.users import Client
from tests.freestyle.examples import FORMS, score_request


def rules(tmp_path: Path) -> tuple[Freestyle, Path]:
    forms = tmp_path / "test" / "forms-freestyle"
    shutil.copytree(FORMS / "before", forms)
    return Freestyle(FreestyleStore(tmp_path)), forms


def ask(logic: Freestyle, request: dict[str, Any], ring: int = 1) -> list[Any]:
    route = parse_route(f"/freestyle/test/{ring}/computer+operator", "freestyle")
    assert route is not None
    client = Client(id="c" * 8, route=route, pinging=False)
    return list(logic.handle(ConnId("c1"), client, wire.annotate(request, "test"), [client]))


def on_disk(forms: Path, ring: int = 1, divid: str = "fs01") -> dict[str, Any]:
    return parse_division((forms / f"ring{ring:02d}" / f"div.{divid}.txt").read_text())


def test_reads_answer_the_sender_and_changes_the_ring_after_the_write(tmp_path: Path) -> None:
    logic, forms = rules(tmp_path)
    [read] = ask(logic, {"type": "division", "action": "read"})
    assert isinstance(read, Send) and json.loads(read.frame)["division"]["name"] == "fs01"
    assert not (forms / "ring01" / "progress.txt").exists()
    effects = ask(logic, score_request(0))
    assert [type(e) for e in effects] == [Broadcast] and effects[0].group == ("test", 1)
    assert on_disk(forms)["athletes"][0]["scores"]["finals"][0]["technical"]["mft1"] == "0.7"


def test_the_autopilot_arms_runs_and_a_ring_move_switches_it_off_for_good(tmp_path: Path) -> None:
    logic, forms = rules(tmp_path)
    for j in range(3):
        effects = ask(logic, score_request(j))
    arm = next(e for e in effects if isinstance(e, Arm))
    assert arm.key == ("test", 1) and arm.delay == 9.0 and on_disk(forms)["autopilot"] == "on"
    board = list(logic.autopilot(arm.key, arm.payload))
    assert on_disk(forms)["state"] == "display" and isinstance(board[-1], Arm) and board[-1].delay == 14.0
    moved = ask(logic, {"type": "ring", "action": "division next"})
    assert isinstance(moved[0], Cancel) and "autopilot" not in on_disk(forms)
    assert list(logic.autopilot(arm.key, board[-1].payload)) == []  # a stale step does nothing
    assert on_disk(forms)["current"] == 0  # ... and wrote nothing


def test_a_division_reloaded_with_its_autopilot_key_arms_again(tmp_path: Path) -> None:
    """A restart (or a re-read after a failed request) drops every timer; the key must not outlive them."""
    logic, forms = rules(tmp_path)
    path = forms / "ring01" / "div.fs01.txt"
    path.write_text(json.dumps({**json.loads(path.read_text()), "autopilot": "on", "state": "score"}))
    for j in range(3):
        effects = ask(logic, score_request(j))
    assert any(isinstance(e, Arm) for e in effects)
