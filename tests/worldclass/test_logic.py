"""Ring state and request rules without a network: autopilot, navigation, edits, flights, health."""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from freescore.effects import Arm, Broadcast, Cancel, ConnId, Effects, Send
from freescore.poomsae import users
from freescore.worldclass import logic, model, wire
from freescore.worldclass.divfile import parse_division, parse_progress
from freescore.worldclass.store import WorldclassStore
from freescore.worldclass.wire import RequestError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "forms-worldclass"


@pytest.fixture
def wc(tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "test" / "forms-worldclass")
    return logic.Worldclass(WorldclassStore(tmp_path), rng=random.Random(3))


CONN = ConnId("c1")
GROUP = ("test", 1)


@dataclass
class Seen:
    """One frame an effect sends, as these tests read it: to the `sender`, the `group` or `ring:<n>`."""

    kind: str
    target: str
    payload: Any
    type: str = ""
    request: Any = None


class Result:
    """The effects of one call, read as frames sent, the autopilot step armed and whether it was cancelled."""

    def __init__(self, effects: Effects) -> None:
        assert isinstance(effects, Effects)
        self.effects = effects
        self.out: list[Seen] = []
        for e in effects:
            if isinstance(e, Send):
                assert e.to == CONN
                self.out.append(Seen("raw", "sender", e.frame))
            elif isinstance(e, Broadcast):
                target = "group" if e.group == GROUP else f"ring:{e.group[1]}"
                self.out.append(Seen(e.frame.key, target, e.frame.payload, e.frame.type, e.frame.request))
        arms = [e for e in effects if isinstance(e, Arm)]
        assert all(a.key == GROUP for a in arms) and len(arms) <= 1
        self.arm = arms[0].payload.token if arms else None
        self.step = arms[0].payload.step if arms else None
        self.delay = arms[0].delay if arms else None
        self.cancel = any(isinstance(e, Cancel) and e.key == GROUP for e in effects)


def autopilot(wc, token, step, now):
    """Run one autopilot step of ring 1: what it sent and the next step armed (None: done or stale)."""
    result = Result(wc.autopilot(GROUP, model.AutopilotStep(token, step), now))
    return result, result.step


def client(role="computer operator", ring="1", cid_seed="a" * 40):
    route = wire.parse_route(f"/worldclass/test/{ring}/{role.replace(' ', '+')}")
    return model.Client(id=cid_seed, route=route)


def send(wc, request, who=None, clients=()):
    who = who or client()
    request = dict(request, tournament="test", ring=who.route.ring_text, **{"from": {"cid": who.cid}})
    return Result(wc.handle(CONN, who, request, list(clients), 1000.0))


def div_on_disk(tmp_path, ring_dir, divid):
    return parse_division((tmp_path / "test" / "forms-worldclass" / ring_dir / f"div.{divid}.txt").read_text(),
                          divid)


def score_all(wc, judges=5, marks=("0.3", "0.6", "1.5", "1.4", "1.3")):
    outcome = None
    for j in range(judges):
        outcome = send(wc, {"type": "division", "action": "score",
                            "score": dict(zip(["judge", "major", "minor", "rhythm", "power", "ki"], [j, *marks],
                                              strict=True))})
    return outcome


def test_score_arms_autopilot_and_steps_run(wc, tmp_path):
    send(wc, {"type": "division", "action": "navigate", "target": {"destination": "athlete", "index": 1}})
    outcome = score_all(wc)
    token = outcome.arm
    assert token is not None and token.current == 1
    assert outcome.out[0].payload["autopilot"] == "on"
    out, nxt = autopilot(wc, token, "scoreboard", 1001)
    assert nxt == "leaderboard"  # athlete 1 sits at the even position 2
    assert out.out[0].request["action"] == "scoreboard" and out.out[0].type == "division"
    out, nxt = autopilot(wc, token, "leaderboard", 1010)
    assert nxt == "next" and out.out[0].payload["state"] == "display"
    assert div_on_disk(tmp_path, "ring01", "p01").state == "display"
    out, nxt = autopilot(wc, token, "next", 1022)
    assert nxt is None
    payload = out.out[0].payload
    assert payload["current"] == 2 and payload["state"] == "score" and payload["autopilot"] == "off"
    assert div_on_disk(tmp_path, "ring01", "p01").current == 2


def test_odd_position_skips_leaderboard(wc):
    token = score_all(wc).arm
    _, nxt = autopilot(wc, token, "scoreboard", 1001)
    assert nxt == "next"


def test_cancelled_autopilot_never_writes(wc, tmp_path):
    token = score_all(wc).arm
    autopilot(wc, token, "scoreboard", 1001)
    send(wc, {"type": "division", "action": "athlete next"})
    path = tmp_path / "test" / "forms-worldclass" / "ring01" / "div.p01.txt"
    before = path.read_bytes()
    for step in ("leaderboard", "next"):
        out, nxt = autopilot(wc, token, step, 1050)
        assert out.out == [] and nxt is None
    assert path.read_bytes() == before
    assert div_on_disk(tmp_path, "ring01", "p01").current == 1


def test_stale_token_after_position_change_aborts(wc):
    token = score_all(wc).arm
    # another program moved the division on disk: the step sees it and stands down
    state = wc.tournament("test").ring(1)
    state.divisions["p01"].div.current = 7
    out, nxt = autopilot(wc, token, "scoreboard", 1001)
    assert out.out == [] and nxt is None


def test_navigation_walks_order(wc):
    r = send(wc, {"type": "division", "action": "athlete prev"})
    assert r.out[0].payload["current"] == 21 and r.cancel
    r = send(wc, {"type": "division", "action": "athlete next"})
    assert r.out[0].payload["current"] == 0
    r = send(wc, {"type": "division", "action": "form next"})
    assert r.out[0].payload["form"] == 0  # prelim has one form: clamped
    r = send(wc, {"type": "division", "action": "display"})
    assert r.out[0].payload["state"] == "display"
    r = send(wc, {"type": "division", "action": "display"})
    assert r.out[0].payload["state"] == "score"
    with pytest.raises(RequestError):
        send(wc, {"type": "division", "action": "navigate", "target": {"destination": "athlete", "index": "99"}})


def test_penalty_and_punitive(wc, tmp_path):
    score_all(wc)
    r = send(wc, {"type": "division", "action": "award penalty",
                  "penalties": {"bounds": "0.3", "restart": 0.6, "misconduct": 1}, "athlete_id": 0})
    form = r.out[0].payload["athletes"][0]["scores"]["prelim"]["forms"][0]
    assert form["penalty"]["bounds"] == 0.3 and form["adjusted"]["total"] == pytest.approx(7.3 - 0.9)
    r = send(wc, {"type": "division", "action": "award punitive", "decision": "withdraw", "athlete_id": 0})
    payload = r.out[0].payload
    assert payload["athletes"][0]["scores"]["prelim"]["adjusted"]["decision"] == "WDR"
    assert payload["athletes"][0]["scores"]["prelim"]["total"] == 0
    assert payload["current"] == 1  # moved on to the next athlete needing a score
    on_disk = div_on_disk(tmp_path, "ring01", "p01")
    assert on_disk.athletes[0].scores["prelim"][0].decision == {"withdraw": 1}


def test_clear_judge_score(wc):
    score_all(wc)
    r = send(wc, {"type": "division", "action": "clear judge score", "judge": 2})
    form = r.out[0].payload["athletes"][0]["scores"]["prelim"]["forms"][0]
    assert form["complete"] is False and form["judge"][2]["started"] is False


def test_athlete_delete_reindexes(wc):
    send(wc, {"type": "division", "action": "navigate", "target": {"destination": "athlete", "index": 5}})
    r = send(wc, {"type": "division", "action": "athlete delete", "athlete_id": 2})
    p = r.out[0].payload
    assert len(p["athletes"]) == 21 and p["order"]["prelim"] == list(range(21)) and p["current"] == 4
    assert p["athletes"][2]["name"] == "Zahara Schwarz"


def test_edit_athletes_rename_reorder_add(wc):
    r = send(wc, {"type": "division", "action": "edit athletes", "divid": "p03",
                  "athletes": [{"order": 2, "name": "Noe B"}, {"order": 1, "name": "Alicia"},
                               {"name": "Zed"}, {"order": "", "name": ""}]})
    p = r.out[0].payload
    assert [a["name"] for a in p["athletes"]] == ["Noe B", "Alicia", "Zed"]
    assert p["order"]["finals"] == [0, 1, 2]


def test_write_and_flights(wc, tmp_path):
    athletes = [{"name": f"Athlete {i}"} for i in range(24)]
    r = send(wc, {"type": "division", "action": "write", "division": {
        "name": "p20", "description": "Big", "judges": 3, "athletes": athletes,
        "forms": {"prelim": ["Koryo"], "semfin": ["Keumgang"], "finals": ["Taebaek", "Pyongwon"]}}})
    assert r.out[0].payload["action"] == "write ok" and r.out[1].kind == "ring"
    assert div_on_disk(tmp_path, "ring01", "p20").order == {"prelim": list(range(24))}
    r = send(wc, {"type": "ring", "action": "division split", "name": "p20", "flights": 2})
    names = [d["name"] for d in r.out[0].payload["divisions"]]
    assert "p20a" in names and "p20b" in names and "p20" not in names
    a = div_on_disk(tmp_path, "ring01", "p20a")
    assert a.flight == {"id": "a", "group": ["p20a", "p20b"], "state": "ready"} and len(a.athletes) == 12
    with pytest.raises(RequestError, match="complete"):
        send(wc, {"type": "ring", "action": "division merge", "name": "p20"})
    for fid in ("p20a", "p20b"):
        send(wc, {"type": "ring", "action": "division next"})  # cycling works on own divisions
        state = wc.tournament("test").ring(1)
        state.progress["current"] = fid
        for i in range(12):
            send(wc, {"type": "division", "action": "navigate", "target": {"destination": "athlete", "index": i}})
            v = f"{1.0 + 0.05 * i:.1f}"
            score_all(wc, judges=3, marks=("0.0", "0.0", v, v, v))
        assert div_on_disk(tmp_path, "ring01", fid).flight["state"] == "complete"
    r = send(wc, {"type": "ring", "action": "division merge", "name": "p20"})
    merged = div_on_disk(tmp_path, "ring01", "p20")
    assert merged.round == "semfin" and len(merged.order["semfin"]) == 12 and "prelim" not in merged.order
    assert div_on_disk(tmp_path, "ring01", "p20a").flight["state"] == "merged"


def test_transfer_delete_and_progress(wc, tmp_path):
    r = send(wc, {"type": "ring", "action": "transfer", "name": "p01", "transfer": "staging"})
    assert r.out[0].payload["current"] == "p02"
    base = tmp_path / "test" / "forms-worldclass"
    assert (base / "staging" / "div.p01.txt").exists()
    assert parse_progress((base / "ring01" / "progress.txt").read_text())["current"] == "p02"
    r = send(wc, {"type": "ring", "action": "read"})
    assert [d["name"] for d in r.out[0].payload["divisions"]] == ["p02", "p03", "p04", "p01"]
    r = send(wc, {"type": "ring", "action": "division delete", "divid": "p02"})
    assert not (base / "ring01" / "div.p02.txt").exists() and r.out[0].payload["current"] == "p03"


def test_external_edit_is_reloaded(wc, tmp_path):
    send(wc, {"type": "division", "action": "read"})
    path = tmp_path / "test" / "forms-worldclass" / "ring01" / "div.p01.txt"
    path.write_text(path.read_text().replace("Nicolaas Janz", "Nico Janz"))
    r = send(wc, {"type": "division", "action": "read"})
    assert r.out[0].payload["athletes"][0]["name"] == "Nico Janz"


def test_unknown_and_se_only(wc):
    with pytest.raises(model.UnknownRequest):
        send(wc, {"type": "division", "action": "fly"})
    with pytest.raises(RequestError, match="single-elimination"):
        send(wc, {"type": "division", "action": "award min score"})


def test_health_ladder():
    c = client("observer")
    assert c.health == "strong" and c.cid == "-aaaa"
    for stamp in range(3):
        c.ping(str(stamp))
    assert c.health == "good"
    assert c.pong("0") is True  # the first pong always counts
    assert c.pong("nope") is False
    assert c.next_interval() == 15.0 and c.health == "good"  # two still outstanding
    assert c.pong("1") is True  # good -> strong
    assert c.next_interval() == 30.0 and c.health == "strong"
    assert c.pong("2") is False  # still strong: no change to report
    for n, health in ((5, "good"), (10, "weak"), (20, "bad"), (21, "dead")):
        assert users.health_for(n) == health
    c.pinging = False
    assert c.health == "n/a" and c.next_interval() is None


def test_users_sorted_by_role_then_cid():
    clients = [client("observer", cid_seed="b" * 40), client("judge1", cid_seed="c" * 40),
               client("computer operator", cid_seed="d" * 40), client("judge0", cid_seed="e" * 40)]
    assert [u["role"] for u in users.users_list(clients)] == ["Computer Operator", "Judge0", "Judge1", "Observer"]
    assert clients[1].description == "Judge 1 (-cccc)" and clients[3].description == "Referee (-eeee)"
    assert clients[2].description == "Computer Operator (-dddd)"


def test_judge_query_lists_connected_judges(wc):
    clients = [client("judge2", cid_seed="1" * 40), client("judge0", cid_seed="2" * 40), client("observer")]
    r = send(wc, {"type": "division", "action": "judge query"}, clients=clients)
    assert r.out[0].payload["judges"] == [{"judge": 0, "cid": "-2222", "health": "strong"},
                                          {"judge": 2, "cid": "-1111", "health": "strong"}]


def test_athlete_next_in_finals_follows_order(wc):
    state = wc.tournament("test").ring(1)
    div = state.divisions["p01"].div
    div.order["finals"] = [9, 3, 17]
    div.round, div.current, div.form = "finals", 9, 1
    from freescore.worldclass.divfile import pad
    pad(div)
    r = send(wc, {"type": "division", "action": "athlete next"})
    assert r.out[0].payload["current"] == 3 and r.out[0].payload["form"] == 0
    r = send(wc, {"type": "division", "action": "athlete next"})
    assert r.out[0].payload["current"] == 17
    r = send(wc, {"type": "division", "action": "athlete next"})
    assert r.out[0].payload["current"] == 9  # wraps
    r = send(wc, {"type": "division", "action": "round prev"})
    assert r.out[0].payload["round"] == "prelim" and r.out[0].payload["current"] == 21


def test_transfer_tells_the_receiving_ring(wc):
    r = send(wc, {"type": "ring", "action": "transfer", "name": "p03", "transfer": "2"})
    other = [o for o in r.out if o.target == "ring:2"]
    assert other and other[0].request["ring"] == "2" and other[0].payload["name"] == "2"
    assert [d["name"] for d in other[0].payload["divisions"]] == ["p03", "p10"]


def test_tournament_read_creates_staging(wc, tmp_path):
    r = send(wc, {"type": "tournament", "action": "read"})
    assert (tmp_path / "test" / "forms-worldclass" / "staging").is_dir()
    assert {d["name"] for d in r.out[0].payload["divisions"]} == {"p01", "p02", "p03", "p04", "p10"}


def test_draws_write_and_delete(wc, tmp_path):
    draws = {"settings": {"count": 2}, "Male": {"12-14": {"prelim": ["Taegeuk 4"]}}}
    r = send(wc, {"type": "tournament", "action": "draws write", "draws": draws})
    assert r.out[0].kind == "ring" and r.out[0].payload["draws"] == draws
    assert (tmp_path / "test" / "forms-worldclass" / "draws.json").exists()
    r = send(wc, {"type": "tournament", "action": "draws delete"})
    assert "draws" not in r.out[0].payload
    with pytest.raises(RequestError):
        send(wc, {"type": "tournament", "action": "draws write", "draws": "nope"})


def test_ring_update_carries_progress_keys(wc, tmp_path):
    (tmp_path / "test" / "forms-worldclass" / "ring01" / "progress.txt").write_text("# current=p03\n# theme=dark\n")
    r = send(wc, {"type": "ring", "action": "read"})
    ring = r.out[0].payload
    assert ring["current"] == "p03" and ring["theme"] == "dark" and ring["name"] == "1"
    r = send(wc, {"type": "division", "action": "read"})
    assert r.out[0].payload["name"] == "p03"


# -- failed writes and tournament lifetime ---------------------------------------------

def block_writes(tmp_path, ring_dir="ring01"):
    """Make the next commit in the ring fail, even as root: `.history` is a file, not a folder."""
    blocker = tmp_path / "test" / "forms-worldclass" / ring_dir / ".history"
    blocker.write_text("in the way\n")
    return blocker


def test_failed_write_raises_save_error_and_memory_rereads_the_disk(wc, tmp_path):
    path = tmp_path / "test" / "forms-worldclass" / "ring01" / "div.p01.txt"
    before = path.read_bytes()
    first = send(wc, {"type": "division", "action": "read"})  # loaded, nothing to write
    blocker = block_writes(tmp_path)
    with pytest.raises(model.SaveError) as info:
        score_all(wc, judges=1)
    assert info.value.db == "test"
    assert info.value.message.startswith("could not save the changes to tournament 'test': ")
    assert "/" not in info.value.message  # the reason, never a path
    assert "test" not in wc.tournaments  # memory held an unsaved score: forgotten
    assert path.read_bytes() == before
    blocker.unlink()
    again = send(wc, {"type": "division", "action": "read"})
    assert again.out[0].payload["athletes"] == first.out[0].payload["athletes"]
    score_all(wc, judges=1)
    assert path.read_bytes() != before


def test_batched_flush_reports_failures_per_tournament(wc, tmp_path):
    shutil.copytree(FIXTURES, tmp_path / "other" / "forms-worldclass")
    judge = client(role="judge0")
    other = model.Client(id="b" * 40, route=wire.parse_route("/worldclass/other/1/judge0"))
    marks = {"judge": 0, "major": "0.3", "minor": "0.6", "rhythm": "1.5", "power": "1.4", "ki": "1.3"}
    for who, db in ((judge, "test"), (other, "other")):
        wc.handle(CONN, who, {"type": "division", "action": "score", "score": marks, "tournament": db, "ring": "1",
                        "from": {"cid": who.cid}}, [], 1000.0, autoflush=False)
    block_writes(tmp_path)
    failed = wc.flush()
    assert list(failed) == ["test"] and isinstance(failed["test"].error, OSError)
    assert list(wc.tournaments) == ["other"]
    fixture = (FIXTURES / "ring01" / "div.p01.txt").read_bytes()
    assert (tmp_path / "test" / "forms-worldclass" / "ring01" / "div.p01.txt").read_bytes() == fixture
    assert (tmp_path / "other" / "forms-worldclass" / "ring01" / "div.p01.txt").read_bytes() != fixture


def test_exists_and_drop(wc, tmp_path):
    assert wc.exists("test")
    for db in ("nosuch", "..", "../x", "", ".hidden"):
        assert not wc.exists(db)
    (tmp_path / "afile").write_text("")
    assert not wc.exists("afile")
    marks = {"judge": 0, "major": "0.3", "minor": "0.6", "rhythm": "1.5", "power": "1.4", "ki": "1.3"}
    who = client(role="judge0")
    wc.handle(CONN, who, {"type": "division", "action": "score", "score": marks, "tournament": "test", "ring": "1",
                    "from": {"cid": who.cid}}, [], 1000.0, autoflush=False)
    wc.drop("test")  # pending changes are written before the model is forgotten
    assert "test" not in wc.tournaments
    path = tmp_path / "test" / "forms-worldclass" / "ring01" / "div.p01.txt"
    assert path.read_bytes() != (FIXTURES / "ring01" / "div.p01.txt").read_bytes()
    wc.drop("test")  # nothing loaded: nothing to do
