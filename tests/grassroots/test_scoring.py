"""Grassroots scoring (§12-14): sums, trimmed sums, penalties, ranking, medal ties, tiebreakers, brackets."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from freescore.grassroots import scoring
from freescore.grassroots.divfile import Athlete, Division


def division(judges, rows, **kw):
    div = Division(name="p", judges=judges, athletes=[
        Athlete(name=f"A{i}", scores=list(s), info=dict(info) if info else {})
        for i, (s, info) in enumerate((r if isinstance(r, tuple) else (r, None)) for r in rows)
    ], **kw)
    div.pad()
    return div


def test_three_judges_no_tie_example_20_1():
    div = division(3, [[8.3, 8.5, 8.4], [8.6, 8.6, 8.5], [8.0, 8.2, 8.1], [8.4, 8.4, 8.6]])
    r = scoring.compute(div)
    assert [a.score for a in r.athletes] == [25.2, 25.7, 24.3, 25.4]
    assert (div.placements, div.pending, div.tied, r.complete) == ([1, 3, 0, 2], [], [], True)


def test_incomplete_division_places_only_complete_athletes():
    div = division(3, [[8.3, 8.5, 8.4], [8.6, 8.6, 8.5], [8.0, None, None], [None] * 3])
    r = scoring.compute(div)
    assert (div.placements, div.pending, r.complete) == ([1, 0], [2, 3], False)


def test_five_judges_trimmed_with_h_and_l_notes_example_20_2():
    div = division(5, [[8.1, 8.4, 8.0, 8.6, 8.2], [8.2] * 5, [8.0, 8.2, 8.2, 8.2, 8.4]])
    r = scoring.compute(div)
    assert [a.score for a in r.athletes] == [24.7, 24.6, 24.6]
    assert [(a.low, a.high) for a in r.athletes] == [(2, 3), (0, 1), (0, 4)]
    assert div.placements == [0, 2, 1]
    assert [a.notes for a in r.athletes] == [None, "L", "H"]
    assert div.tied == []


def test_all_equal_scores_drop_judge_0_as_min_and_judge_1_as_max():
    r = scoring.score_athlete(Athlete("x", scores=[8.0] * 5), 5)
    assert (r.low, r.high, r.score) == (0, 1, 24.0)


def test_penalty_is_per_counted_judge_and_clamped_example_20_4():
    pen = {"penalty": {"bounds": 0.3, "restart": 0.6}}
    assert scoring.score_athlete(Athlete("x", scores=[8.3, 8.5, 8.4], info=pen), 3).score == 22.5
    assert scoring.score_athlete(Athlete("x", scores=[8.3, None, None], info=pen), 3).score == 5.6
    assert scoring.score_athlete(Athlete("x", scores=[None] * 3, info=pen), 3).score == 0.0
    five = scoring.score_athlete(Athlete("x", scores=[8.0] * 5, info={"penalty": {"other": 1}}), 5)
    assert five.score == 21.0  # 24 - 1 x (5 - 2)


def test_disqualified_and_withdrawn_are_complete_and_rank_last():
    div = division(3, [([None] * 3, {"decision": "DSQ"}), ([7.0] * 3, None), ([None] * 3, {"decision": "WDR"})])
    r = scoring.compute(div)
    assert [a.complete for a in r.athletes] == [True, True, True]
    assert div.placements == [1, 2, 0]


def test_medal_tie_gives_tiebreaker_state_and_resolves_with_votes_example_20_3():
    div = division(3, [[8.5] * 3, [8.4, 8.6, 8.5], [8.0] * 3], state="score")
    scoring.compute(div)
    assert (div.state, div.round, div.current, div.tied) == ("tiebreaker", "tb", 0, [(1, [0, 1])])
    assert div.placements == [0, 1, 2]
    for k, (hal, ivy) in enumerate([(1.0, 0.0), (0.0, 1.0)]):
        div.athletes[0].tiebreakers[k], div.athletes[1].tiebreakers[k] = hal, ivy
        scoring.compute(div)
        assert div.tied, "two of three votes, one each: still tied"
    div.athletes[0].tiebreakers[2], div.athletes[1].tiebreakers[2] = 1.0, 0.0
    r = scoring.compute(div)
    assert (r.athletes[0].tb, r.athletes[1].tb) == (2.0, 1.0)
    assert (div.tied, div.placements, r.athletes[0].notes) == ([], [0, 1, 2], "TB")
    assert (div.state, div.round) == ("tiebreaker", "tb")  # §18.12: only the operator's flip leaves it


def test_two_way_tie_for_bronze_does_not_matter():
    div = division(3, [[9.0] * 3, [8.5] * 3, [8.0] * 3, [8.0] * 3])
    scoring.compute(div)
    assert (div.tied, div.round, div.placements) == ([], "fin", [0, 1, 2, 3])


def test_tie_while_display_keeps_display_until_a_flip_to_score():
    div = division(3, [[8.0] * 3, [8.0] * 3], state="display")
    scoring.compute(div)
    assert (div.state, div.round) == ("display", "tb")
    div.state = "score"
    scoring.compute(div)
    assert div.state == "tiebreaker"


def test_brackets_built_by_halves_with_byes():
    b = scoring.build_brackets(5, 3)
    assert [len(r) for r in b] == [4, 2, 1]
    assert [m["round"] for m in b[0]] == ["qtrfin"] * 4
    assert [(m["blue"]["athlete"], m["red"]["athlete"]) for m in b[0]] == [(0, 1), (2, None), (3, None), (4, None)]
    assert b[0][1]["blue"]["votes"] == [1, 1, 1]
    assert scoring.build_brackets(2, 3)[0][0]["round"] == "finals"
    assert scoring.round_name(3) == "ro16"


def test_single_elimination_votes_fill_the_next_round_and_place_at_the_final():
    div = division(3, [[None] * 3] * 3, mode="single-elimination")
    scoring.compute(div)
    assert (div.placements, div.pending) == ([], [0, 1])
    m = scoring.matches(div)
    m[0]["red"]["votes"] = [1, 1, 0]
    m[0]["blue"]["votes"] = [0, 0, 1]
    scoring.compute(div)
    final = scoring.matches(div)[2]
    assert (final["blue"]["athlete"], final["red"]["athlete"]) == (1, 2)
    final["red"]["votes"] = [1, 1, 1]
    r = scoring.compute(div)
    assert r.complete and div.placements == [2, 1, 0]
    assert [a.score for a in r.athletes] == [0.0, 1.0, 2.0]


def test_division_json_types():
    div = division(5, [[8.1, 8.4, 8.0, 8.6, 8.2], [None] * 5])
    r = scoring.compute(div)
    j = scoring.division_json(div, r, 2, "/d/ring02/div.p.txt", "/d/ring02")
    assert (j["current"], j["judges"], j["complete"], j["ring"], j["pending"]) == (0, 5, 0, 2, [1])
    a0, a1 = j["athletes"]
    assert (a0["scores"][2], a0["score"], a0["min"], a0["max"], a0["complete"], a0["tb"]) == (8.0, 24.7, 2, 3, 1, None)
    assert a1["scores"] == ["-"] * 5 and a1["tiebreakers"] == ["-"] * 5 and a1["score"] == 0.0
    assert j["places"] == [{"place": 1, "medals": 1}, {"place": 2, "medals": 1}, {"place": 3, "medals": 2}]


score_lists = st.lists(st.lists(st.one_of(st.none(), st.integers(1, 100).map(lambda n: n / 10)),
                                min_size=5, max_size=5), min_size=1, max_size=8)


@given(st.sampled_from([3, 5]), score_lists)
def test_property_placements_and_pending_partition_the_athletes(judges, rows):
    div = division(judges, [r[:judges] for r in rows])
    r = scoring.compute(div)
    assert sorted(div.placements + div.pending) == list(range(len(rows)))
    assert all(r.athletes[i].complete for i in div.placements)
    assert all(a.score >= 0 for a in r.athletes)
    scores = [round(r.athletes[i].score, 1) for i in div.placements]
    assert scores == sorted(scores, reverse=True)


@given(st.sampled_from([3, 5, 7]), st.lists(st.integers(1, 100), min_size=7, max_size=7))
def test_property_trimmed_sum(judges, tenths):
    values = [t / 10 for t in tenths[:judges]]
    r = scoring.score_athlete(Athlete("x", scores=values), judges)
    expected = sum(values) - (min(values) + max(values) if judges > 3 else 0)
    assert abs(r.score - expected) < 1e-9
    assert r.complete
