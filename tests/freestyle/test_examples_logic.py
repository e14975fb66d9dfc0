"""Examples A, B and C of spec §18 at the logic level: before/ files + the run's requests -> after/ files."""

from __future__ import annotations

import random

import pytest

from freescore.freestyle import actions, autopilot
from freescore.freestyle.divfile import format_division, parse_division
from freescore.freestyle.division import Division
from tests.freestyle.examples import EXAMPLE_DIVISIONS, FORMS, deliberate, requests, upstream_after

ROOT = "/data/test/forms-freestyle"


def load(ring: int, divid: str) -> Division:
    text = (FORMS / "before" / f"ring{ring:02d}" / f"div.{divid}.txt").read_text()
    return Division(parse_division(text), divid, f"{ROOT}/ring{ring:02d}/div.{divid}.txt", ring, random.Random(1))


def fly(div: Division, pilot: autopilot.Pilot | None) -> None:
    """The whole autopilot sequence (the next request of the run always came after it)."""
    while pilot is not None:
        assert autopilot.valid(div, pilot)
        _, pilot, _ = autopilot.run(div, pilot, autopilot.Delays())


def replay(ring: int) -> Division:
    div = load(ring, EXAMPLE_DIVISIONS[ring])
    for item in requests():
        req = item["request"]
        if item["ring"] != ring or req["type"] != "division":
            continue
        action = req["action"]
        if action == "score":
            fly(div, autopilot.arm(div, actions.score(div, req["judge"], req["score"]), req))
        elif action == "award punitive":
            actions.award_punitive(div, req["athlete_id"], req["decision"])
            fly(div, autopilot.arm(div, req["athlete_id"], req))
        elif action == "award penalty":
            actions.award_penalty(div, req["athlete_id"], req["penalty"])
        elif action == "view next":
            actions.view_next(div)
        elif action == "display":
            actions.toggle_display(div)
        elif action == "navigate":
            actions.navigate_athlete(div, int(req["target"]["index"]))
        elif action in ("athlete next", "athlete prev"):
            actions.athlete_step(div, 1 if action.endswith("next") else -1)
        elif action == "round next":
            actions.round_next(div)
        elif action == "round prev":
            actions.round_prev(div)
    return div


@pytest.mark.parametrize("ring", [1, 2, 3])
def test_files_after_the_run_are_upstreams_but_for_the_deliberate_differences(ring: int) -> None:
    divid = EXAMPLE_DIVISIONS[ring]
    div = replay(ring)
    expected = deliberate(upstream_after(ring, divid), ROOT)
    assert format_division(div.data) == format_division(expected)
    reread = Division(parse_division(format_division(div.data)), divid, div.data["file"], ring)
    assert reread.data == div.data


def test_example_a_tie_broken_by_technical() -> None:
    div = replay(1)
    totals = [div.athletes[i]["adjusted"]["finals"]["total"] for i in range(3)]
    assert totals == [7.03, 6.9, 6.9]
    assert div.data["placements"]["finals"] == [0, 2, 1]
    assert all("min" not in a["adjusted"]["finals"] for a in div.athletes)


def test_example_b_trimmed_means_penalty_and_decisions_ranked_last() -> None:
    div = replay(2)
    a0, a1, a2 = (a["adjusted"]["finals"] for a in div.athletes)
    assert (a0["technical"], a0["presentation"], a0["total"]) == (4.1, 3.53, 6.33)
    assert a0["min"] == {"technical": 3, "presentation": 2} and a0["max"] == {"technical": 2, "presentation": 4}
    assert (a2["min"], a2["max"], a2["total"]) == ({"technical": 0, "presentation": 0},
                                                   {"technical": 1, "presentation": 1}, 9)
    assert a1["total"] == 0 and "min" not in a1 and div.athletes[1]["scores"]["finals"] == []
    assert div.data["placements"]["finals"] == [0, 1, 2]


def test_example_c_semifinal_placements_and_finals_order() -> None:
    div = replay(3)
    assert div.data["placements"]["semfin"] == [2, 9, 7, 5, 1, 3, 0, 6, 8, 4]
    assert div.data["order"]["finals"] == [6, 0, 3, 1, 5, 7, 9, 2]
    assert (div.round, div.current, div.state, div.autopilot) == ("finals", 6, "score", False)
