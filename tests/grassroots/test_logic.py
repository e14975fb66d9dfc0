"""Grassroots rules over a real store in a temporary folder: the worked examples of §20, the bugs not copied."""

from __future__ import annotations

import json

import pytest

from freescore.effects import Arm, Broadcast, Cancel, ConnId, Send
from freescore.grassroots import logic, scoring, wire
from freescore.grassroots.divfile import parse_division
from freescore.grassroots.store import GrassrootsStore
from freescore.poomsae.progress import parse_progress
from freescore.poomsae.routes import Route
from freescore.poomsae.users import Client

from .gr_client import FRAMES, upstream


class MemoryRing:
    """The service's part, without a reactor: the rules over a real store in a temporary data root.

    Effects are collected; the armed autopilot step is kept so a test fires it when it likes.
    """

    def __init__(self, ring=1, root=None):
        self.ring = ring
        self.root = root
        self.forms = root / "test" / "forms-grassroots"
        (self.forms / f"ring{ring:02d}").mkdir(parents=True, exist_ok=True)
        self.model = logic.Grassroots(GrassrootsStore(root))
        self.armed: logic.AutopilotStep | None = None
        self.frames: list = []
        self.client = Client(id="0" * 40, route=Route("test", ring, str(ring), ""), pinging=False)

    def collect(self, effects):
        for e in effects:
            if isinstance(e, Arm):
                self.armed = e.payload
            elif isinstance(e, Cancel):
                self.armed = None
            else:
                self.frames.append(e)
        return effects

    def rest(self, method, path, body=None):
        c = wire.parse_rest(method, path.strip("/").split("/"), json.dumps(body).encode() if body else b"")
        out = self.model.rest(c, 0.0)
        assert self.model.flush() == {}
        self.collect(out.effects)
        return out.answer

    def ws(self, request, cid="c1"):
        request = {**request, "tournament": "test", "ring": self.ring}
        return self.collect(self.model.handle(ConnId(cid), self.client, request, [], 0.0))

    def fire(self):
        step, self.armed = self.armed, None
        return self.collect(self.model.autopilot(("test", self.ring), step, 0.0))

    def run_autopilot(self):
        while self.armed is not None:
            self.fire()

    def text(self, divid):
        return (self.forms / f"ring{self.ring:02d}" / f"div.{divid}.txt").read_text()

    def write(self, divid, text):
        (self.forms / f"ring{self.ring:02d}" / f"div.{divid}.txt").write_text(text)

    @property
    def progress(self):
        path = self.forms / f"ring{self.ring:02d}" / "progress.txt"
        return parse_progress(path.read_text()) if path.exists() else {}

    def division_json(self, divid):
        return self.model.ring("test", self.ring).division_json(divid)

    def frame_dicts(self):
        return [json.loads(e.frame) for e in self.frames if isinstance(e, (Send, Broadcast))]


@pytest.fixture
def ring_of(tmp_path):
    return lambda ring: MemoryRing(ring, tmp_path)


def post(ring, divid, description, names, judges=3):
    return ring.rest("POST", f"/test/{ring.ring}/{divid}",
                     {"name": divid, "header": {"judges": judges, "description": description}, "athletes": names})


def score_all(ring, rows):
    answers = []
    for row in rows:
        for j, s in enumerate(row):
            answers.append(ring.rest("GET", f"/test/{ring.ring}/{j}/{round(s * 10)}"))
        ring.run_autopilot()
    return answers


def test_example_20_1_three_judges_no_tie(ring_of):
    r = ring_of(1)
    assert post(r, "p01", "8-9yo Beginner", ["Ana LIME", "Ben COVE", "Cal DUNE", "Dee FROST"]) == {
        "division": "p01", "status": "saved"}
    assert r.text("p01") == (
        "# state=display\n# current=0\n# round=fin\n# judges=3\n# description=8-9yo Beginner\n"
        "# places=1:1,2:1,3:2\n# pending=0,1,2,3\n"
        + "".join(f"{n}\t\t-\t-\t-\t-\t-\t-\n" for n in ["Ana LIME", "Ben COVE", "Cal DUNE", "Dee FROST"]))
    assert r.rest("GET", "/test/1/judges") == {"division": "p01", "judges": 3}
    first = score_all(r, [[8.3, 8.5, 8.4]])
    assert first[0] == {"athlete": 0, "judge": 1, "score": 8.3}
    assert r.text("p01") == upstream("ring01/div.p01.1-athlete0-after-autopilot.txt")
    score_all(r, [[8.6, 8.6, 8.5]])
    assert r.text("p01") == upstream("ring01/div.p01.2-athlete1-after-autopilot.txt")
    score_all(r, [[8.0, 8.2, 8.1]])
    assert r.text("p01") == upstream("ring01/div.p01.3-athlete2-after-autopilot.txt")
    score_all(r, [[8.4, 8.4, 8.6]])
    assert r.text("p01") == upstream("ring01/div.p01.9-final.txt", drop=("# pending=3",))
    assert r.frames == []  # REST-armed autopilot writes only
    assert post(r, "p01", "x", []) == {"division": "p01", "status": "exists"}
    assert r.text("p01") == upstream("ring01/div.p01.9-final.txt", drop=("# pending=3",))


def test_example_20_2_five_judges_trimmed(ring_of):
    r = ring_of(2)
    post(r, "p02", "10-11yo Intermediate", ["Eli MOSS", "Fay REED", "Gus TERN"], judges=5)
    score_all(r, [[8.1, 8.4, 8.0, 8.6, 8.2]])
    assert r.text("p02") == upstream("ring02/div.p02.1-athlete0-after-autopilot.txt")
    score_all(r, [[8.2] * 5, [8.0, 8.2, 8.2, 8.2, 8.4]])
    assert r.text("p02") == upstream("ring02/div.p02.9-final.txt", drop=("# pending=2",))
    div = r.division_json("p02")
    assert [a.get("notes") for a in div["athletes"]] == [None, "L", "H"]


def test_example_20_3_tie_for_first_resolved_by_three_votes(ring_of):
    r = ring_of(3)
    post(r, "p03", "12-14yo Advanced", ["Hal BRIM", "Ivy COLT", "Jon DALE"])
    answers = score_all(r, [[8.5] * 3, [8.4, 8.6, 8.5], [8.0] * 3])
    assert answers[-1] == {"athlete": 0, "judge": 3, "score": 8.0}
    tied = upstream("ring03/div.p03.9-final.txt", drop=("# pending=2", "# placements=0,1"),
                    add=(("# tied=1:0,1", "# placements=0,1,2"),))
    assert r.text("p03") == tied
    assert r.division_json("p03")["tied"] == [{"place": 1, "tied": [0, 1]}]
    assert r.rest("GET", "/test/3/0/tb/blue") == {"athlete": 0, "judge": 1, "tiebraker": "blue"}
    assert "Hal BRIM\t\t8.5\t8.5\t8.5\t1\t-\t-\n" in r.text("p03")
    assert "Ivy COLT\t\t8.4\t8.6\t8.5\t0\t-\t-\n" in r.text("p03")
    assert r.armed is None
    r.rest("GET", "/test/3/1/tb/red")
    r.rest("GET", "/test/3/2/tb/blue")
    text = r.text("p03")
    assert "Hal BRIM\t\t8.5\t8.5\t8.5\t1\t0\t1\n" in text and "Ivy COLT\t\t8.4\t8.6\t8.5\t0\t1\t0\n" in text
    assert "# tied" not in text and "# placements=0,1,2\n" in text
    assert "# state=tiebreaker\n" in text and "# round=tb\n" in text
    assert r.division_json("p03")["athletes"][0]["notes"] == "TB"
    r.run_autopilot()  # armed by the last vote: never leaves the tiebreaker view by itself
    assert "# state=tiebreaker\n" in r.text("p03")
    assert r.rest("GET", "/test/3/display") == {"state": "display"}


def test_example_20_4_penalty_ws_scores_autopilot_and_disqualify(ring_of):
    r = ring_of(5)
    post(r, "p05", "WebSocket flow", ["Oli GUM", "Pat HAZ", "Quin IVY"])
    r.ws({"type": "division", "action": "award penalty", "penalty": {"bounds": 0.3, "restart": 0.6}})
    assert 'Oli GUM\t\t-\t-\t-\t-\t-\t-\tpenalty={"bounds":0.3,"restart":0.6}\n' in r.text("p05")
    frame = r.frame_dicts()[-1]
    assert frame["request"]["athletes"] == [] and frame["division"]["athletes"][0]["score"] == 0
    for j, s in enumerate([8.3, 8.5, 8.4]):
        r.ws({"type": "division", "action": "score", "judge": j, "score": s})
    frames = r.frame_dicts()[-3:]
    assert [f["division"]["athletes"][0]["score"] for f in frames] == [5.6, 14.1, 22.5]
    assert all(f["request"]["response"] == {"status": "ok"} for f in frames)
    assert frames[0]["request"] == {"type": "division", "action": "score", "judge": 0, "score": 8.3,
                                    "response": {"status": "ok"}, "ring": 5, "tournament": "test"}
    r.frames.clear()
    r.run_autopilot()
    f = r.frame_dicts()
    assert [x["request"]["action"] for x in f] == ["score-display", "leaderboard-display", "navigate", "navigate"]
    assert [x["division"]["state"] for x in f] == ["score", "display", "score", "score"]
    assert f[2]["request"]["athlete"] == 1 and f[2]["division"]["current"] == 1
    assert all("judge" not in x["request"] and "response" not in x["request"] for x in f)
    assert r.text("p05") == upstream("ring05/div.p05.3-after-autopilot.txt")
    r.frames.clear()
    r.ws({"type": "division", "action": "disqualify"})
    r.fire()
    f = r.frame_dicts()
    assert [x["request"]["action"] for x in f] == ["disqualify", "score-display"]
    assert r.text("p05") == upstream("ring05/div.p05.4-after-dsq.txt")
    pat = f[0]["division"]["athletes"][1]
    assert (pat["complete"], pat["score"], f[0]["division"]["placements"], f[0]["division"]["pending"]) == (
        1, 0, [0, 1], [2])


def test_example_20_5_clear_clears_that_judge_only(ring_of):
    r = ring_of(6)
    post(r, "p06", "Clear test", ["Max ELM", "Ned FIR"])
    r.rest("GET", "/test/6/0/83")
    r.rest("GET", "/test/6/1/85")
    assert r.rest("GET", "/test/6/0/-10") == {"athlete": 0, "judge": 1, "score": -1.0}
    assert "Max ELM\t\t-\t8.5\t-\t-\t-\t-\n" in r.text("p06")
    r.rest("GET", "/test/6/2/84")
    assert "Max ELM\t\t-\t8.5\t8.4\t-\t-\t-\n" in r.text("p06")
    assert r.armed is None  # two scores: not complete


def test_autopilot_never_wipes_a_score_entered_during_its_pause(ring_of):
    r = ring_of(4)
    post(r, "p04", "Stale autopilot", ["Kim ASH", "Lou BAY"])
    score_all(r, [[8.0, 8.1]])
    r.rest("GET", "/test/4/2/82")
    r.fire()
    r.fire()
    r.fire()  # the 14 s step: current 1
    r.rest("GET", "/test/4/0/77")  # Lou's first score, inside the pause before the 18 s step
    assert r.armed is None  # the score cancelled the rest of the autopilot
    assert "Lou BAY\t\t7.7\t-\t-\t-\t-\t-\n" in r.text("p04")


def test_manual_navigation_cancels_the_autopilot(ring_of):
    r = ring_of(4)
    post(r, "p04", "x", ["Kim ASH", "Lou BAY", "Mo CAY"])
    for j in range(3):
        r.rest("GET", f"/test/4/{j}/80")
    assert r.armed is not None
    assert r.rest("GET", "/test/4/athlete/next") == {"current": 1, "state": "score"}
    assert r.armed is None


def test_autopilot_step_re_reads_the_ring(ring_of):
    r = ring_of(1)
    post(r, "p01", "x", ["A", "B"])
    for j in range(3):
        r.rest("GET", f"/test/1/{j}/80")
    r.fire()
    r.fire()
    r.write("p01", r.text("p01").replace("B\t\t-", "B\t\t9.1"))  # another program writes the file
    r.fire()
    assert "B\t\t9.1\t" in r.text("p01") and "# current=1\n" in r.text("p01")


def test_ring_read_answers_the_sender_only_and_unknown_requests_get_nothing(ring_of):
    r = ring_of(1)
    out = r.ws({"type": "ring", "action": "read"})
    assert len(out) == 1 and isinstance(out[0], Send) and out[0].to == "c1"
    folder = str(r.forms.resolve() / "ring01")
    assert json.loads(out[0].frame) == {"type": "ring", "action": "read", "ring": {
        "current": None, "divisions": [], "file": folder + "/progress.txt", "path": folder}}
    assert list(r.ws({"type": "division", "action": "dance"})) == []


def test_division_navigate_and_display_toggle(ring_of):
    r = ring_of(5)
    post(r, "p05", "x", ["A", "B", "C"])
    post(r, "p06", "y", ["D"])
    out = r.ws({"type": "division", "action": "navigate", "target": {"destination": "athlete", "id": "2"}})
    assert json.loads(out[-1].frame)["division"]["current"] == 2
    out = r.ws({"type": "division", "action": "display"})
    assert json.loads(out[-1].frame)["division"]["state"] == "score"
    out = r.ws({"type": "division", "action": "navigate", "target": {"destination": "division", "id": "p06"}})
    assert json.loads(out[-1].frame)["division"]["name"] == "p06"
    assert r.progress == {"current": "p06"}
    assert r.rest("GET", "/test/5/division/next") == {"current": "p05"}
    assert r.rest("GET", "/test/5/division/previous") == {"current": "p06"}


@pytest.mark.parametrize(("request_", "message"), [
    ({"type": "division", "action": "score", "judge": 3, "score": 8.0}, "Invalid judge '3'"),
    ({"type": "division", "action": "score", "judge": 0, "score": "x"}, "Invalid score 'x'"),
    ({"type": "division", "action": "score", "judge": 0}, "Missing field 'score'"),
    ({"type": "division", "action": "navigate", "target": {"destination": "athlete", "id": 9}}, "Invalid athlete '9'"),
    ({"type": "division", "action": "navigate", "target": {"destination": "division", "id": "../x"}},
     "Invalid division '../x'"),
    ({"type": "division", "action": "read", "divid": "p99"}, "No division p99 in ring 1"),
    ({"type": "division", "action": "navigate", "target": {"destination": "division", "id": "p99"}},
     "No division p99 in ring 1"),  # upstream moved it from staging into `ring00` (§18.8)
    ({"type": "division", "action": "score", "judge": 0, "vote": "blue"}, "Division p01 is not single elimination"),
])
def test_bad_ws_requests_get_the_error_form_from_the_sender_only(ring_of, request_, message):
    r = ring_of(1)
    post(r, "p01", "x", ["A", "B"])
    out = r.ws(request_)
    assert [json.loads(e.frame) for e in out] == [{"error": message}]
    assert isinstance(out[0], Send)


def test_rest_errors_change_nothing(ring_of):
    r = ring_of(1)
    assert r.rest("GET", "/test/1/0/83") == {"error": "No division in ring 1"}
    assert r.rest("GET", "/test/1/judges") == {"division": None, "judges": None}
    post(r, "p01", "x", ["A"])
    before = r.text("p01")
    assert r.rest("GET", "/test/1/3/83") == {"error": "Invalid judge '3'"}
    assert r.rest("GET", "/test/1/0/tb/blue") == {"error": "No tie to break in division p01"}
    assert r.text("p01") == before


def test_post_keeps_scores_of_athletes_kept_by_name_and_parses_places(ring_of):
    r = ring_of(1)
    post(r, "p01", "x", ["A", "B"])
    r.rest("GET", "/test/1/0/83")
    assert r.rest("POST", "/test/1/p01", {"header": {"places": "1:1,2:1,3:1", "judges": "3", "flight": "A"},
                                          "athletes": ["C", "A"], "overwrite": True})["status"] == "saved"
    text = r.text("p01")
    assert "# places=1:1,2:1,3:1\n" in text and "# flight=A\n" in text
    assert text.endswith("C\t\t-\t-\t-\t-\t-\t-\nA\t\t8.3\t-\t-\t-\t-\t-\n")


def test_single_elimination_votes_over_rest_and_ws(ring_of):
    r = ring_of(1)
    r.rest("POST", "/test/1/se", {"header": {"judges": 3, "mode": "single-elimination"}, "athletes": ["A", "B"]})
    assert r.rest("GET", "/test/1/0/vote/red") == {"bracket": 0, "judge": 1, "vote": "red"}
    r.ws({"type": "division", "action": "score", "judge": 1, "vote": "red"})
    assert r.armed is None
    div = parse_division(r.text("se"), "se")
    res = scoring.compute(div)
    assert res.complete and div.placements == [1, 0]
    assert r.rest("GET", "/test/1/0/83") == {"error": "Division se is single elimination: judges vote"}


def test_schedule_read_and_write(ring_of):
    r = ring_of(1)
    out = r.ws({"type": "schedule", "action": "read"})
    folder = r.forms.resolve() / "ring01"
    expected = json.loads((FRAMES / "schedule-read-missing.json").read_text())["error"]
    upstream_folder = "/usr/local/freescore/data/test/forms-grassroots/ring01"
    assert json.loads(out[0].frame) == {"error": expected.replace(upstream_folder, str(folder))}
    out = r.ws({"type": "schedule", "action": "write", "schedule": json.dumps({"divisions": {"b": 1}, "a": [2]})})
    update = json.loads(out[0].frame)
    assert (update["type"], update["action"], update["request"]["action"]) == ("ring", "update", "write")
    text = (r.forms / "schedule.json").read_text()
    assert text == '{\n   "a": [\n      2\n   ],\n   "divisions": {\n      "b": 1\n   }\n}\n'
    out = r.ws({"type": "schedule", "action": "read"})
    assert json.loads(out[0].frame) == {"type": "schedule", "action": "read",
                                        "schedule": {"a": [2], "divisions": {"b": 1}}}
    out = r.ws({"type": "schedule", "action": "write", "schedule": "[1"})
    assert json.loads(out[0].frame) == {"error": "Invalid schedule: not JSON"}
