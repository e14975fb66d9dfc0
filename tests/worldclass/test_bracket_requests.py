"""se/sbs requests through the real handlers and autopilot (logic.Worldclass on a data folder, no network):
the four worked examples request by request, every division file compared with upstream's."""

from __future__ import annotations

import random
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from freescore.effects import Arm, Broadcast, Cancel, ConnId, Send
from freescore.worldclass import logic, model, wire
from freescore.worldclass.bracket_handlers import BracketStep
from freescore.worldclass.store import WorldclassStore

sys.path.insert(0, str(Path(__file__).resolve().parent))
from methods_play import METHODS_FIXTURES, sbs_score, se_score, step_text, without_deviations  # noqa: E402

CONN = ConnId("c1")


class Ring:
    """One ring's operator: sends requests, runs every armed autopilot step at once, keeps the frames."""

    def __init__(self, root: Path, ring: int) -> None:
        self.wc = logic.Worldclass(WorldclassStore(root), rng=random.Random(0))
        self.root = root
        self.ring = ring
        self.group = ("methods", ring)
        self.frames: list[dict[str, Any]] = []
        self.delays: list[float] = []

    def send(self, request: dict[str, Any], role: str = "computer operator") -> list[dict[str, Any]]:
        route = wire.parse_route(f"/worldclass/methods/{self.ring}/{role.replace(' ', '+')}")
        who = model.Client(id="f" * 40, route=route)
        request = dict(request, tournament="methods", ring=str(self.ring), **{"from": {"cid": who.cid}})
        start = len(self.frames)
        effects = self.wc.handle(CONN, who, request, [], 1000.0)
        while True:
            arm = self._record(effects)
            if arm is None:
                break
            if isinstance(arm.payload, BracketStep):
                self.delays.append(arm.delay)
            effects = self.wc.autopilot(self.group, arm.payload, 1000.0)
        return self.frames[start:]

    def _record(self, effects: Any) -> Arm | None:
        arm = None
        for e in effects:
            if isinstance(e, Send):
                self.frames.append({"sent": e.frame})
            elif isinstance(e, Broadcast):
                self.frames.append({"type": e.frame.type, "request": e.frame.request, "division": e.frame.payload})
            elif isinstance(e, Arm):
                arm = e
            else:
                assert isinstance(e, Cancel)
        return arm

    def file(self, divid: str) -> str:
        return (self.root / "methods" / "forms-worldclass" / f"ring{self.ring:02d}" / f"div.{divid}.txt").read_text()

    def same(self, divid: str, scenario: str, name: str, autopilot_off_at_end: bool = False) -> None:
        upstream = (step_text(scenario, name) if scenario != "after"
                    else (METHODS_FIXTURES / "after" / f"ring{self.ring:02d}" / f"div.{divid}.txt").read_text())
        ours, theirs = without_deviations(self.file(divid), upstream, autopilot_off_at_end)
        assert ours == theirs, f"{scenario}/{name}"


@pytest.fixture
def root(tmp_path):
    shutil.copytree(METHODS_FIXTURES / "before", tmp_path / "methods" / "forms-worldclass")
    return tmp_path


def steps(frames: list[dict[str, Any]]) -> list[str]:
    return [f["request"]["action"] for f in frames if f.get("type") == "autopilot"]


def se_all(ring: Ring, marks: list[tuple[float, ...]] | tuple[float, ...]) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    for j in range(3):
        frames += ring.send(se_score(j, marks[j] if isinstance(marks, list) else marks))
    return frames


def test_se5_through_the_handlers(root):
    ring = Ring(root, 1)
    read = ring.send({"type": "division", "action": "read"})[0]["division"]
    assert [m["order"] for m in read["matches"]["ro8"]] == [[0, None], [1, None], [2, None], [3, 4]]
    assert read["rounds"] == ["ro8", "ro4", "ro2"] and read["method"] == "se"
    for athlete in (0, 1, 2):
        frames = ring.send({"type": "division", "action": "award min score", "athlete_id": athlete})
        reply = frames[0]
        assert reply["request"]["bye"] == 1 and reply["division"]["autopilot"] == "on"
        assert reply["division"]["matches"]["ro8"][athlete]["winner"] == athlete  # deliberate: at once
        assert steps(frames) == ["scoreboard", "bracket", "next"]
        assert [f["request"] for f in frames[1:]] == [{"type": "autopilot", "action": a, "delay": d}
                                                      for a, d in (("scoreboard", 7), ("bracket", 12), ("next", 1))]
        assert frames[2]["division"]["state"] == "bracket"
        ring.same("se5", "se5", f"01-ro8-bye-{athlete}.txt")
    assert ring.delays[:3] == [0, 7.0, 12.0]
    frames = se_all(ring, [(0.3, 0.5, 1.5, 1.5, 1.4), (0.3, 0.6, 1.6, 1.5, 1.4), (0.6, 0.4, 1.5, 1.4, 1.4)])
    assert steps(frames) == ["scoreboard", "next"] and frames[-1]["division"]["current"] == 4
    ring.same("se5", "se5", "02-ro8-m4-athlete3.txt")
    frames = se_all(ring, [(0.6, 0.8, 1.3, 1.3, 1.2), (0.9, 0.5, 1.3, 1.2, 1.2), (0.6, 0.6, 1.4, 1.3, 1.2)])
    completing = [f for f in frames if f.get("type") == "division"][-1]["division"]
    assert completing["order"]["ro4"] == [0, 1, 2, 3] and completing["round"] == "ro8"  # same write, no move
    assert completing["matches"]["ro8"][3]["winner"] == 3
    assert (frames[-1]["division"]["round"], frames[-1]["division"]["current"]) == ("ro4", 0)
    ring.same("se5", "se5", "03-ro8-complete.txt")
    se_all(ring, (0.3, 0.7, 1.5, 1.5, 1.5))
    frames = se_all(ring, (0.3, 0.4, 1.4, 1.4, 1.4))
    tb = {a["id"]: a["scores"]["ro4"]["tb"] for a in frames[-1]["division"]["athletes"] if a["id"] in (0, 3)}
    assert tb == {0: [4.5], 3: [4.2]}
    ring.same("se5", "se5", "04-ro4-m1.txt")
    frames = ring.send({"type": "division", "action": "award punitive", "decision": "withdraw", "athlete_id": 1})
    assert steps(frames) == [] and frames[0]["division"]["current"] == 2
    ring.same("se5", "se5", "05-ro4-m2-withdraw.txt")
    se_all(ring, (0.9, 0.9, 1.2, 1.2, 1.2))
    ring.same("se5", "se5", "06-ro4-complete.txt")
    se_all(ring, (0.6, 0.6, 1.4, 1.4, 1.4))
    frames = se_all(ring, (0.3, 0.6, 1.5, 1.4, 1.4))
    assert steps(frames) == ["scoreboard", "leaderboard", "next"]
    assert ring.delays[-3:] == [0, 7.0, 12.0]  # checklist 13: the final's leaderboard, then a `next` that moves nothing
    assert frames[-2]["division"]["state"] == "leaderboard" and frames[-2]["division"]["autopilot"] == "on"
    assert "autopilot" not in frames[-1]["division"]  # deliberate: SE switches itself off at the end
    ring.same("se5", "se5", "07-final.txt", autopilot_off_at_end=True)
    final = ring.send({"type": "division", "action": "read"})[0]["division"]
    assert final["placement"] == {"ro2": [[2], [0], [1, 3], [4]], "ro4": [[0, 2], [1, 3], [4]],
                                  "ro8": [[0, 1, 2, 3], [4]]}
    states = [ring.send({"type": "division", "action": "display"})[0]["division"]["state"] for _ in range(6)]
    assert states == ["matches", "score", "results", "bracket", "leaderboard", "matches"]
    assert ring.send({"type": "division", "action": "athlete next"})[0]["division"]["current"] == 0
    assert ring.send({"type": "division", "action": "athlete prev"})[0]["division"]["current"] == 0
    ring.same("se5", "after", "")


def test_sbs2_through_the_handlers(root):
    ring = Ring(root, 2)
    frames = ring.send({"type": "division", "action": "draw select age", "age": "cadet", "divid": "sbs2"})
    assert frames[0]["division"]["forms"] == {"ro2": ["draw-cadet", "draw-cadet"]}
    ring.same("sbs2", "sbs2", "01-draw-select-age.txt")
    tease = ring.send({"type": "division", "action": "draw", "draw": {"form": "Taegeuk 8", "complete": False}})[0]
    assert tease["division"]["state"] == "draw" and "draws" not in tease["division"]
    assert tease["request"]["draw"] == {"form": "Taegeuk 8", "complete": False}
    ring.same("sbs2", "sbs2", "02-draw-tease.txt")
    ring.send({"type": "division", "action": "draw", "draw": {"form": "Koryo", "complete": True}})
    ring.same("sbs2", "sbs2", "03-draw-form1.txt")
    assert ring.send({"type": "division", "action": "display"})[0]["division"]["state"] == "score"
    chung, hong = (0.3, 0.6, 1.5, 1.4, 1.3), (0.3, 0.5, 1.4, 1.4, 1.3)
    for j in range(3):  # the SBS tablet connects with its bare judge number as the role
        frames = ring.send(sbs_score(j, 1, 0, chung, hong, (0, 1)), role=str(j))
        assert frames[0]["request"]["judge"] == j
    assert steps(frames) == ["scoreboard", "next", "matches"]
    assert ring.delays[-3:] == [0, 7.0, 1.0]  # checklist 11: next 7 s after the scoreboard, matches 1 s later
    assert frames[-2]["division"]["form"] == 1 and frames[-1]["division"]["state"] == "matches"
    assert "autopilot" not in frames[-1]["division"]
    ring.same("sbs2", "sbs2", "04-form1-scored.txt")
    ring.send({"type": "division", "action": "draw", "draw": {"form": "Taeback", "complete": True}})
    ring.send({"type": "division", "action": "display"})
    ring.same("sbs2", "sbs2", "05-draw-form2.txt")
    for j in range(3):
        frames = ring.send(sbs_score(j, 1, 1, chung, hong, (0, 1)))
    assert steps(frames) == ["scoreboard", "results", "leaderboard"]
    assert ring.delays[-3:] == [0, 7.0, 7.0]
    athletes = frames[-1]["division"]["athletes"]
    assert [a["scores"]["ro2"]["tb"] for a in athletes] == [[8.4], [8.2]]
    assert frames[-1]["division"]["matches"]["ro2"][0]["winner"] == 0
    ring.same("sbs2", "sbs2", "06-final.txt")
    for _ in range(3):
        ring.send({"type": "division", "action": "display"})
    ring.same("sbs2", "sbs2", "07-after-display-cycling.txt")
    for _ in range(6):
        ring.send({"type": "division", "action": "display"})
    ring.send({"type": "division", "action": "clear judge score", "judge": 2, "index": [0, 1]})
    ring.same("sbs2", "after", "")


def test_sbs3_through_the_handlers(root):
    ring = Ring(root, 3)
    frames = ring.send({"type": "division", "action": "award min score", "athlete_id": 0})
    assert frames[0]["request"]["bye"] == 1 and steps(frames) == ["next", "matches"]
    assert ring.delays[:2] == [0, 1.0]
    ring.same("sbs3", "sbs3", "01-bye.txt")
    wrong = ring.send(sbs_score(0, 1, 0, (0.3,) * 5, (0.3,) * 5, (1, 2)))
    assert wrong == [{"sent": {"error": "Database error: Score for Ivo Brandt given for RO4 Match 1 but athlete "
                                        "is bracketed to Match 2"}}]
    ring.same("sbs3", "sbs3", "01-bye.txt")  # nothing stored
    for j in range(3):
        frames = ring.send(sbs_score(j, 2, 0, (0.3, 0.6, 1.5, 1.5, 1.4), (0.6, 0.9, 1.3, 1.3, 1.2), (1, 2)))
    assert steps(frames) == ["scoreboard", "bracket", "next", "matches"]
    ring.same("sbs3", "sbs3", "02-ro4-complete.txt")
    for j in range(3):
        frames = ring.send(sbs_score(j, 1, 0, (0.6, 0.6, 1.4, 1.4, 1.3), (0.3, 0.4, 1.6, 1.5, 1.5), (0, 1)))
    assert steps(frames) == ["scoreboard", "leaderboard"]
    ring.same("sbs3", "sbs3", "03-final.txt")
    error = ring.send(sbs_score(0, 2, 0, (0.3,) * 5, (0.3,) * 5, (0, 1)))
    assert error == [{"sent": {"error": "Database error: Score for Hollis Crane given for RO2 Match 2 but athlete "
                                        "is bracketed to Match 1"}}]
    nav = ring.send({"type": "division", "action": "navigate", "target": {"destination": "athlete", "index": 1}})
    assert nav[0]["division"]["state"] == "matches" and nav[0]["division"]["current"] == 1
    ring.same("sbs3", "after", "")


def test_se2f_through_the_handlers(root):
    ring = Ring(root, 4)
    names = ["01-after-0.txt", "02-after-1.txt", "03-after-2.txt", "04-after-3.txt"]
    for k, marks in enumerate([(0.3, 0.6, 1.5, 1.5, 1.4), (0.6, 0.6, 1.4, 1.4, 1.3)] * 2):
        frames = se_all(ring, marks)
        assert steps(frames) == (["scoreboard"] if k == 3 else ["scoreboard", "next"])
        ring.same("se2f", "se2f", names[k], autopilot_off_at_end=k == 3)
    read = ring.send({"type": "division", "action": "read"})[0]["division"]
    assert (read["current"], read["form"], read["state"]) == (1, 1, "score")
    assert read["placement"] == {"ro2": [[0], [1]]}


def test_requests_that_need_a_bracket_and_bad_input(root):
    ring = Ring(root, 2)
    for request, text in (
        ({"type": "division", "action": "draw select age", "age": "elder"}, "Invalid age 'elder'"),
        ({"type": "division", "action": "draw", "draw": "Koryo"}, "Invalid draw: wrong type"),
        ({"type": "division", "action": "draw"}, "Missing field 'draw'"),
        ({"type": "division", "action": "award min score", "athlete_id": "x"}, "Invalid athlete_id 'x'"),
        ({"type": "division", "action": "score", "judge": 7, "score": {"match": 1}}, "Invalid judge '7'"),
        ({"type": "division", "action": "clear judge score", "judge": 0, "index": [5]}, "Invalid index '5'"),
    ):
        before = ring.file("sbs2")
        with pytest.raises(wire.RequestError, match=text):
            ring.send(request)
        assert ring.file("sbs2") == before
    cutoff = tmp = root / "methods" / "forms-worldclass" / "ring02" / "div.sbs2.txt"
    tmp.write_text(cutoff.read_text().replace("# method=sbs\n", ""))
    with pytest.raises(wire.RequestError, match="needs the single-elimination or side-by-side method"):
        ring.send({"type": "division", "action": "draw", "draw": {"form": "Koryo", "complete": True}})


def test_a_manual_action_cancels_the_rest_of_the_sequence(root):
    ring = Ring(root, 1)
    route = wire.parse_route("/worldclass/methods/1/computer+operator")
    who = model.Client(id="f" * 40, route=route)
    request = {"type": "division", "action": "award min score", "athlete_id": 0, "tournament": "methods",
               "ring": "1", "from": {"cid": who.cid}}
    effects = ring.wc.handle(CONN, who, request, [], 1000.0)
    arm = next(e for e in effects if isinstance(e, Arm))
    effects = ring.wc.autopilot(ring.group, arm.payload, 1001.0)  # scoreboard
    arm = next(e for e in effects if isinstance(e, Arm))
    manual = ring.send({"type": "division", "action": "display"})
    assert manual[0]["division"]["state"] == "results"
    before = ring.file("se5")
    assert list(ring.wc.autopilot(ring.group, arm.payload, 1008.0)) == []  # the bracket step is stale
    assert ring.file("se5") == before and "# autopilot=" not in before


def test_division_write_starts_a_bracket_by_field_size(root):
    ring = Ring(root, 1)
    forms = {"ro8": ["Koryo"], "ro4": ["Keumgang"], "ro2": ["Taeback"]}

    def write(name, athletes, **extra):
        division = {"name": name, "judges": 3, "method": "sbs", "forms": forms,
                    "athletes": [{"name": f"A{i}"} for i in range(athletes)], **extra}
        return ring.send({"type": "division", "action": "write", "division": division})

    assert write("w5", 5)[0]["sent"]["action"] == "write ok"
    div = next(d for d in ring.send({"type": "ring", "action": "read"})[0]["division"]["divisions"]
               if d["name"] == "w5")
    assert div["round"] == "ro8" and div["rounds"] == ["ro8", "ro4", "ro2"]
    assert [m["order"] for m in div["matches"]["ro8"]] == [[0, None], [1, None], [2, None], [3, 4]]
    assert "# matches=" in ring.file("w5") and "# method=sbs" in ring.file("w5")
    with pytest.raises(wire.RequestError, match="no forms designated for round 'ro16'"):
        write("w9", 9)
    with pytest.raises(wire.RequestError, match=r"^Database error: w3 3 athletes unsuitable for round 'ro8' "
                                                r"\(required range: 5 to 8 athletes\)$"):
        write("w3", 3, order={"ro8": [0, 1, 2]})


def test_round_next_and_prev_walk_the_brackets(root):
    ring = Ring(root, 3)
    ring.send({"type": "division", "action": "award min score", "athlete_id": 0})
    for j in range(3):
        ring.send(sbs_score(j, 2, 0, (0.3, 0.6, 1.5, 1.5, 1.4), (0.6, 0.9, 1.3, 1.3, 1.2), (1, 2)))
    prev = ring.send({"type": "division", "action": "round prev"})[0]["division"]
    assert (prev["round"], prev["current"], prev["form"]) == ("ro4", 2, 0)  # hong of the last match
    nxt = ring.send({"type": "division", "action": "round next"})[0]["division"]
    assert (nxt["round"], nxt["current"], nxt["state"]) == ("ro2", 0, "score")
    assert "autopilot" not in nxt


def test_athlete_delete_in_a_bracket(root):
    ring = Ring(root, 1)
    for athlete in (0, 1, 2):
        ring.send({"type": "division", "action": "award min score", "athlete_id": athlete})
    for j in range(3):
        ring.send(se_score(j, (0.3, 0.5, 1.5, 1.5, 1.4)))
    for j in range(3):
        ring.send(se_score(j, (0.6, 0.8, 1.3, 1.3, 1.2)))
    div = ring.send({"type": "division", "action": "athlete delete", "athlete_id": 1})[0]["division"]
    assert div["order"] == {"ro8": [0, 1, 2, 3], "ro4": [0, 1, 2]}
    assert div["matches"]["ro4"] == [{"chung": 0, "hong": 2, "number": 1, "order": [0, 2]},
                                     {"chung": None, "hong": 1, "number": 2, "order": [None, 1]}]
    assert div["placement"]["ro8"] == [[0, 1, 2], [3]]
    assert "Bastian Quill" not in ring.file("se5")


def test_combination_cutoff_semfin_into_side_by_side(root):
    """Spec §9: the semfin's top 8 enter ro8 in rank order; the division switches method with the round."""
    method = '{"ro2":"sbs","ro4":"sbs","ro8":"sbs","semfin":"cutoff"}'
    lines = ["# state=score", "# current=0", "# form=0", "# round=semfin", "# judges=3", f"# method={method}",
             "# description=Combination", "# forms=semfin:Koryo;ro8:Keumgang;ro4:Taeback;ro2:Pyongwon",
             "# " + "-" * 60, "# semfin", "# " + "-" * 60, *[f"Athlete {i}" for i in range(10)]]
    folder = root / "methods" / "forms-worldclass" / "ring05"
    folder.mkdir()
    (folder / "div.c10.txt").write_text("\n".join(lines) + "\n")
    ring = Ring(root, 5)
    for athlete in range(10):  # athlete i scores better the higher i; cutoff autopilot walks the order
        frames = se_all(ring, (0.3, 0.3, 1.0 + athlete / 10, 1.0, 1.0))
        assert frames[0]["division"]["current"] == athlete
    div = frames[-1]["division"]
    assert (div["round"], div["current"], div["method"]["ro8"]) == ("ro8", 9, "sbs")
    assert div["order"]["ro8"] == [9, 8, 7, 6, 5, 4, 3, 2]
    assert [m["order"] for m in div["matches"]["ro8"]] == [[9, 2], [8, 3], [7, 4], [6, 5]]
    assert div["rounds"] == ["semfin", "ro8", "ro4", "ro2"]
    text = ring.file("c10")
    assert f"# method={method}\n" in text and '# matches={"ro8":' in text
    frames = ring.send(sbs_score(0, 1, 0, (0.3,) * 2 + (1.5,) * 3, (0.3,) * 2 + (1.4,) * 3, (9, 2)))
    assert frames[0]["division"]["state"] == "score"
    with pytest.raises(wire.RequestError, match="needs the single-elimination"):
        ring.send({"type": "division", "action": "round prev"})  # back in the cutoff semfin
        ring.send({"type": "division", "action": "draw", "draw": {"form": "Koryo", "complete": True}})
