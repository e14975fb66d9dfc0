"""Freestyle's autopilot on a memory node (tests/memnode.py): its steps come when their pauses end,
never earlier, and a manual move during a pause stops it for good. The whole freescore runs on a
test clock advanced in small steps, so neither proof waits on a wall clock; the real-process test
(tests/integration/test_freestyle.py) plays the same scenario over real sockets.
"""

from __future__ import annotations

import json
import shutil

from freescore.freestyle.divfile import parse_division
from tests.freestyle.examples import FORMS, score_request

# keepalive off: a ping is a frame too, and a peer that never answers one is dropped
TABLE = ('[freestyle]\ndata = "data"\nkeepalive = 0\n'
         'leaderboard_delay = 0.3\nnext_delay = 0.4\nbrief_delay = 0.1\n')
STEP = 0.05  # test-clock seconds per advance: shorter than every pause


def autopilot_on(frame: dict) -> bool:
    return frame.get("division", {}).get("autopilot") == "on"


def test_steps_come_when_their_pauses_end_and_a_manual_move_stops_them(node_of, tmp_path):
    forms = tmp_path / "data" / "test" / "forms-freestyle"
    shutil.copytree(FORMS / "before", forms)
    node = node_of(TABLE, "freestyle")
    tablet = node.websocket("/freestyle/test/1/observer")
    coord = node.websocket("/freestyle/test/1/computer+operator")
    for j in range(3):
        tablet.send(json.dumps(score_request(j)))
    armed = node.expect(tablet, autopilot_on)
    assert armed["request"]["judge"] == 2 and armed["division"]["state"] == "score"
    coord.written()
    node.quiet(0.3 - STEP, [tablet, coord])  # the leaderboard pause: nothing before it ends
    board = node.expect(tablet, lambda f: True, 2 * STEP)
    assert board["division"]["state"] == "display" and board["request"] == armed["request"]
    coord.written()
    node.quiet(0.5 - STEP, [tablet, coord])  # next_delay + brief_delay
    nxt = node.expect(tablet, lambda f: True, 2 * STEP)
    assert "autopilot" not in nxt["division"] and nxt["request"] == armed["request"]
    assert (nxt["division"]["current"], nxt["division"]["state"]) == (1, "score")
    # athlete 1 completes; the coordinator moves on at once: no autopilot step follows, ever
    for j in range(3):
        tablet.send(json.dumps(score_request(j, "0.6")))
    node.expect(tablet, autopilot_on)
    coord.send(json.dumps({"type": "division", "action": "athlete next"}))
    moved = node.expect(coord, lambda f: f.get("request", {}).get("action") == "athlete next")
    assert moved["division"]["current"] == 2 and "autopilot" not in moved["division"]
    node.expect(tablet, lambda f: f.get("request", {}).get("action") == "athlete next")
    file = forms / "ring01" / "div.fs01.txt"
    node.quiet(60.0, [tablet, coord], [file])
    on_disk = parse_division(file.read_text())
    assert on_disk["current"] == 2 and "autopilot" not in on_disk
