"""Where worldclass's autopilot must never fire, on a memory node (tests/memnode.py): the whole
freescore on a test clock, advanced in small steps well past every pause, so "nothing came" is a
proof, not a wait. The real-process tests (tests/integration/test_worldclass*.py) play the same
scenarios over real sockets; these are their deterministic halves.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from freescore.worldclass.divfile import parse_division
from tests.worldclass.methods_play import METHODS_FIXTURES, sbs_score, se_score
from tests.worldclass.wc_client import copy_fixtures, is_update, score

PAUSES = 60.0  # test-clock seconds to stay quiet: past every pause of these settings many times over


def table(**settings: float) -> str:
    body = "".join(f"{k} = {v}\n" for k, v in settings.items())
    return f'[worldclass]\ndata = "data"\nkeepalive = 0\nping_interval = 1000\n{body}'


def connect(node: Any, *paths: str) -> list[Any]:
    """Peers on `paths`, with what their joining sent (users updates) read and dropped."""
    peers = [node.websocket(path) for path in paths]
    node.clock.advance(0)
    for peer in peers:
        peer.written()
    return peers


def ask(node: Any, peer: Any, request: dict[str, Any]) -> dict[str, Any]:
    peer.send(json.dumps(request))
    return node.expect(peer, is_update(request["type"], request["action"]))


def steps(node: Any, peer: Any, *actions: str) -> None:
    """The autopilot frames due next are `actions`, in order, each within its pause."""
    for action in actions:
        frame = node.expect(peer, lambda f: f.get("type") == "autopilot", PAUSES)
        assert frame["request"]["action"] == action


def test_navigation_during_the_pause_cancels_the_autopilot(node_of, tmp_path):
    forms = copy_fixtures(tmp_path)
    node = node_of(table(scoreboard_delay=3.0, leaderboard_delay=3.0), "worldclass")
    *judges, operator = connect(node, *(f"/worldclass/test/1/judge{j}" for j in range(5)),
                                "/worldclass/test/1/computer+operator")
    for j, peer in enumerate(judges):
        peer.send(json.dumps(score(j, 0.3, 0.6, 1.5, 1.4, 1.3)))
    node.expect(operator, is_update("division", "scoreboard"))
    manual = ask(node, operator, {"type": "division", "action": "navigate",
                                  "target": {"destination": "athlete", "index": "5"}})
    assert manual["division"]["current"] == 5
    for peer in judges:
        peer.written()
    file = forms / "ring01" / "div.p01.txt"
    node.quiet(PAUSES, [operator, *judges], [file])
    div = parse_division(file.read_text(), "p01")
    assert div.current == 5 and div.autopilot == "off"


def methods(node_of: Any, tmp_path: Path, bracket_pace: float) -> tuple[Any, Path]:
    data = tmp_path / "data" / "methods" / "forms-worldclass"
    shutil.copytree(METHODS_FIXTURES / "before", data)
    return node_of(table(bracket_pace=bracket_pace, scoreboard_delay=0.01, leaderboard_delay=0.01),
                   "worldclass"), data


def test_a_manual_action_during_the_bracket_pause_cancels_the_rest(node_of, tmp_path):
    node, data = methods(node_of, tmp_path, bracket_pace=0.3)  # bracket pause 3.6 s, next 0.3 s later
    [operator] = connect(node, "/worldclass/methods/1/computer+operator")
    ask(node, operator, {"type": "division", "action": "award min score", "athlete_id": 0})
    steps(node, operator, "scoreboard", "bracket")
    shown = ask(node, operator, {"type": "division", "action": "display"})
    assert shown["division"]["state"] == "leaderboard" and "autopilot" not in shown["division"]
    file = data / "ring01" / "div.se5.txt"
    node.quiet(PAUSES, [operator], [file])
    assert "# current=0\n" in file.read_text() and "# state=leaderboard\n" in file.read_text()


def test_sbs_autopilot_stops_at_the_leaderboard(node_of, tmp_path):
    """sbs2 of the methods' worked examples: after the final's leaderboard no step follows."""
    node, data = methods(node_of, tmp_path, bracket_pace=0.01)
    operator, *tablets = connect(node, "/worldclass/methods/2/computer+operator",
                                 *(f"/worldclass/methods/2/{j}" for j in range(3)))
    ask(node, operator, {"type": "division", "action": "draw select age", "age": "cadet"})
    ask(node, operator, {"type": "division", "action": "draw", "draw": {"form": "Koryo", "complete": True}})
    ask(node, operator, {"type": "division", "action": "display"})
    chung, hong = (0.3, 0.6, 1.5, 1.4, 1.3), (0.3, 0.5, 1.4, 1.4, 1.3)
    for j, tablet in enumerate(tablets):
        tablet.send(json.dumps(sbs_score(j, 1, 0, chung, hong, (0, 1))))
    steps(node, operator, "scoreboard", "next", "matches")
    ask(node, operator, {"type": "division", "action": "draw", "draw": {"form": "Taeback", "complete": True}})
    ask(node, operator, {"type": "division", "action": "display"})
    for j in range(3):
        ask(node, operator, sbs_score(j, 1, 1, chung, hong, (0, 1)))
    steps(node, operator, "scoreboard", "results", "leaderboard")
    for tablet in tablets:
        tablet.written()
    node.quiet(PAUSES, [operator, *tablets], [data / "ring02" / "div.sbs2.txt"])


def test_se_autopilot_stops_after_the_last_scoreboard(node_of, tmp_path):
    """se2f of the methods' worked examples: two forms of a final; after the last scoreboard no step follows."""
    node, data = methods(node_of, tmp_path, bracket_pace=0.01)
    [operator] = connect(node, "/worldclass/methods/4/computer+operator")
    for k, marks in enumerate([(0.3, 0.6, 1.5, 1.5, 1.4), (0.6, 0.6, 1.4, 1.4, 1.3)] * 2):
        for j in range(3):
            ask(node, operator, se_score(j, marks))
        steps(node, operator, *(["scoreboard"] if k == 3 else ["scoreboard", "next"]))
    node.quiet(PAUSES, [operator], [data / "ring04" / "div.se2f.txt"])
    final = ask(node, operator, {"type": "division", "action": "read"})
    assert (final["division"]["current"], final["division"]["form"]) == (1, 1)
