"""Spec §17: each upstream bug, shown absent here (at the rules level; the file-level ones over a real
`twistd freescore` are in tests/integration/test_freestyle.py, named in each docstring)."""

from __future__ import annotations

from freescore.freestyle import actions, autopilot
from freescore.freestyle.scoring import dropped, round_score
from tests.freestyle.test_actions import complete, division
from tests.freestyle.test_scoring import panel


def test_17_1_a_stale_autopilot_step_changes_nothing() -> None:
    """Also over the wire: test_autopilot_sequence_and_its_cancellation."""
    div = division(3)
    complete(div, 0)
    pilot = autopilot.arm(div, 0, {"action": "score"})
    actions.navigate_athlete(div, 2)  # the operator moves on during the pause (the adapter cancels the timer)
    before = dict(div.data)
    assert not autopilot.valid(div, pilot) and div.data == before


def test_17_2_athlete_prev_steps_through_the_order() -> None:
    div = division(4, order={"finals": [3, 0, 2, 1]}, current=0)
    actions.athlete_step(div, -1)
    assert div.current == 3  # upstream: index 0 - 1 -> 3 by wrapping indexes, here the entry before in order


def test_17_3_decided_athletes_rank_after_every_other() -> None:
    div = division(2)
    complete(div, 0, 0.9)
    complete(div, 1, 0.3)
    actions.award_punitive(div, 0, "disqualify")
    assert div.data["placements"]["finals"] == [1, 0]


def test_17_4_current_after_a_round_change_is_the_rounds_first() -> None:
    div = division(10)
    for a in range(10):
        complete(div, a, a / 20)
    actions.round_next(div)
    assert div.round == "finals" and div.order() == [2, 3, 4, 5, 6, 7, 8, 9] and div.current == 2


def test_17_5_file_comes_from_the_location() -> None:
    """Over the wire (a transfer, then a write): test_transfer_write_from_staging_and_files_edited_on_disk."""
    from freescore.freestyle.division import Division

    div = Division({"file": "/old/ring01/div.x.txt", "name": "y"}, "x", "/data/ring02/div.x.txt", 2)
    assert (div.data["file"], div.data["name"]) == ("/data/ring02/div.x.txt", "x")


def test_17_6_athlete_delete_renumbers() -> None:
    div = division(3, order={"finals": [2, 1, 0]}, current=2)
    actions.delete_athlete(div, 0)
    assert div.data["order"]["finals"] == [1, 0] and div.current == 1


def test_17_9_min_max_by_exact_values() -> None:
    assert dropped([0.7 + 0.1 + 0.2, 1.0, 1.05, 0.95, 1.2]) == (3, 4)


def test_17_10_withdrawn_without_scores_has_an_empty_score_list_and_no_min_max() -> None:
    div = division(2, judges=5)
    div.data["judges"] = 5
    actions.award_punitive(div, 1, "withdraw")
    athlete = div.athletes[1]
    assert athlete["scores"]["finals"] == [] and "min" not in athlete["adjusted"]["finals"]
    assert round_score([panel(0.5, 0.5)] * 5, 5, decision="withdraw").low == (0, 0)


def test_17_12_nobody_pending_is_an_empty_list() -> None:
    div = division(1)
    complete(div, 0)
    assert div.data["pending"]["finals"] == []


# 17.7 (judge query), 17.8 (write from staging), 17.11 (navigate to a staging division) and
# 17.13 (serialised writes) concern connections and files: tests/integration/test_freestyle.py.
