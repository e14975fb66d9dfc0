"""Request effects on a division (§5): navigation through the order, renumbering, editing, writes."""

from __future__ import annotations

import random

from freescore.freestyle import actions
from freescore.freestyle.division import Division
from tests.freestyle.test_scoring import panel


def division(n: int = 4, **extra: object) -> Division:
    data = {"athletes": [{"name": f"a{i}"} for i in range(n)], "judges": 3, **extra}
    return Division(data, "fs01", "/d/ring01/div.fs01.txt", 1, random.Random(0))


def complete(div: Division, athlete: int, t: float = 0.7) -> None:
    div.current = athlete
    for j in range(3):
        actions.score(div, j, panel(t, 0.6))


def test_a_fresh_file_opens_on_the_leaderboard_with_its_defaults() -> None:
    div = Division({"athletes": [{"name": "x"}], "current": None}, "fs01", "/f", 2)
    d = div.data
    assert (d["current"], d["judges"], d["state"], d["round"], d["ring"], d["path"]) == (0, 5, "display", "finals",
                                                                                        "2", "")
    assert d["places"][2] == {"place": 3, "medals": 2} and d["pending"] == {"finals": [0]}
    assert d["athletes"][0]["complete"] == {} and d["athletes"][0]["penalty"] == {}


def test_file_name_and_location_are_derived_not_read_from_the_content() -> None:
    div = Division({"name": "other", "file": "/elsewhere/div.x.txt", "path": "p"}, "fs01", "/d/div.fs01.txt", 1)
    assert (div.data["name"], div.data["file"], div.data["path"]) == ("fs01", "/d/div.fs01.txt", "")


def test_athlete_prev_and_next_walk_the_order_not_indexes() -> None:
    """§17.2: upstream's prev steps the athlete index."""
    div = division(4, order={"finals": [2, 0, 3, 1]}, current=2)
    actions.athlete_step(div, -1)
    assert div.current == 1
    actions.athlete_step(div, -1)
    assert div.current == 3
    actions.athlete_step(div, +1)
    actions.athlete_step(div, +1)
    assert div.current == 2 and div.state == "score"


def test_views_cycle_display_toggles_navigate_keeps_the_state() -> None:
    div = division()
    seen = []
    for _ in range(3):
        actions.view_next(div)
        seen.append(div.state)
    assert seen == ["list", "score", "display"]
    actions.toggle_display(div)
    assert div.state == "score"
    div.state = "list"
    actions.toggle_display(div)
    assert div.state == "display"
    actions.navigate_athlete(div, 3)
    assert (div.current, div.state) == (3, "display")


def test_deleting_an_athlete_renumbers_order_placements_pending_and_current() -> None:
    """§17.6."""
    div = division(4, order={"finals": [3, 1, 0, 2]})
    complete(div, 3, 0.9)
    complete(div, 0, 0.5)
    div.current = 2
    actions.delete_athlete(div, 1)
    d = div.data
    assert [a["name"] for a in d["athletes"]] == ["a0", "a2", "a3"] and [a["id"] for a in d["athletes"]] == [0, 1, 2]
    assert d["order"]["finals"] == [2, 0, 1] and d["placements"]["finals"] == [2, 0]
    assert d["pending"]["finals"] == [1] and div.current == 1
    actions.delete_athlete(div, 1)  # the current one, last in the order: the order's first becomes current
    assert div.data["order"]["finals"] == [1, 0] and div.current == 1


def test_decisions_are_stored_per_round_and_clear_removes_them() -> None:
    div = division()
    complete(div, 1)
    actions.award_punitive(div, 1, "disqualify")
    assert div.athletes[1]["decision"] == {"finals": "disqualify"} and div.data["placements"]["finals"] == [1]
    assert len(div.athletes[1]["scores"]["finals"]) == 3  # scores are kept
    actions.award_punitive(div, 1, "clear")
    assert "decision" not in div.athletes[1] and div.complete(1)
    actions.award_punitive(div, 2, "withdraw")
    assert div.athletes[2]["scores"] == {"finals": []} and div.athletes[2]["adjusted"]["finals"]["total"] == 0


def test_edit_keeps_reused_athletes_data_and_appends_new_ones_to_the_order() -> None:
    div = division(3)
    complete(div, 2)
    actions.edit_athletes(div, [(2, "renamed"), (None, "new"), (0, "a0")])
    names = [a["name"] for a in div.athletes]
    assert names == ["renamed", "new", "a0"] and div.complete(0) and not div.complete(1)
    assert div.current == 0 and sorted(div.order()) == [0, 1, 2]


def test_filter_keeps_the_named_athletes_in_the_given_order() -> None:
    div = division(4)
    complete(div, 3)
    actions.filter_athletes(div, ["a3", "nobody", "a1"])
    assert [a["name"] for a in div.athletes] == ["a3", "a1"] and div.order() == [0, 1] and div.complete(0)


def test_a_write_keeps_the_stored_data_of_athletes_with_the_same_name() -> None:
    div = division(2)
    complete(div, 1)
    written = {"name": "fs01", "athletes": [{"name": "a1", "scores": {}}, {"name": "b"}], "file": "/etc/x",
               "placements": {"finals": [9]}}
    data = actions.merged(written, div)
    assert "file" not in data and "placements" not in data
    assert len(data["athletes"][0]["scores"]["finals"]) == 3 and "scores" not in data["athletes"][1]
