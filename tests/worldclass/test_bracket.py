"""Single elimination and side by side rules (methods addendum): the pure checklist items and
property tests for bracket building from 1 to 256 athletes."""

from __future__ import annotations

import json
import math
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from freescore.worldclass import bracket, elimination, scoring
from freescore.worldclass.bracket import BracketError, Snapshot
from freescore.worldclass.divfile import (
    Athlete,
    Division,
    DivisionFormatError,
    Score,
    format_division,
    pad,
    parse_division,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from methods_play import Play, sbs_request, step_text  # noqa: E402

NAMES = ["Aiden", "Bastian", "Corwin", "Dorian", "Emrys", "Fenna", "Greta", "Hollis", "Ivo"]


def division(n: int, method: object = "se", forms: dict[str, list[str]] | None = None, judges: int = 3) -> Division:
    first = bracket.first_round(n)
    forms = forms or {r: ["Koryo"] for r in bracket.BRACKET_ROUNDS[bracket.BRACKET_ROUNDS.index(first):]}
    div = Division(name="t", judges=judges, method=method, round=first, forms=forms,
                   athletes=[Athlete(name=f"{NAMES[i % len(NAMES)]} {i:03d}") for i in range(n)])
    div.order[first] = list(range(n))
    pad(div)
    return div


def score(div: Division, athlete: int, marks: tuple[float, ...], round_: str | None = None) -> None:
    for form in div.form_scores(athlete, round_ or div.round):
        form.judges[: div.judges] = [Score(*marks) for _ in range(div.judges)]


# -- rounds, seeding, byes -----------------------------------------------------------

@pytest.mark.parametrize(("n", "code"), [(1, "ro2"), (2, "ro2"), (3, "ro4"), (4, "ro4"), (5, "ro8"), (8, "ro8"),
                                         (9, "ro16"), (17, "ro32"), (129, "ro256"), (256, "ro256")])
def test_first_round_by_field_size(n, code):
    assert bracket.first_round(n) == code


def test_round_size_error_text():
    with pytest.raises(BracketError, match=r"^Database error: d1 9 athletes unsuitable for round 'ro8' "
                                           r"\(required range: 5 to 8 athletes\)$"):
        bracket.check_size("d1", "ro8", 9)


def test_checklist_1_five_athletes_read_as_ro8_and_the_file_gains_matches():
    text = step_text("se5", "00-before.txt")
    assert "# matches=" not in text
    div = parse_division(text, "se5")
    scoring.compute(div)
    assert div.round == "ro8" and div.rounds() == ["ro8", "ro4", "ro2"]
    assert div.matches == {"ro8": [
        {"chung": 0, "hong": None, "number": 1, "order": [0, None]},
        {"chung": 1, "hong": None, "number": 2, "order": [1, None]},
        {"chung": 2, "hong": None, "number": 3, "order": [2, None]},
        {"chung": 3, "hong": 4, "number": 4, "order": [3, 4]}]}
    written = format_division(div)
    line = next(x for x in written.splitlines() if x.startswith("# matches="))
    assert json.loads(line[len("# matches="):]) == div.matches


def test_checklist_2_three_and_nine_athletes():
    div = division(3, "sbs")
    scoring.compute(div)
    assert div.round == "ro4" and [m["order"] for m in div.matches["ro4"]] == [[0, None], [1, 2]]
    div = division(9)
    scoring.compute(div)
    byes = [m["chung"] for m in div.matches["ro16"] if m["hong"] is None]
    assert div.round == "ro16" and byes == list(range(7))
    assert div.matches["ro16"][7]["order"] == [7, 8]


def test_checklist_3_the_matches_line_is_reused_after_the_order_is_edited():
    div = parse_division(step_text("se5", "01-ro8-bye-0.txt"), "se5")
    div.order["ro8"] = [4, 3, 2, 1, 0]
    scoring.compute(div)
    assert [m["order"] for m in div.matches["ro8"]] == [[0, None], [1, None], [2, None], [3, 4]]


def test_checklist_4_sbs_score_stores_both_sides_and_a_wrong_match_nothing():
    play = Play(step_text("sbs3", "00-before.txt"), "sbs3")
    play.award_min_score(0)
    div = play.div
    request = sbs_request(div, 0, (0.3, 0.6, 1.5, 1.5, 1.4), (0.6, 0.9, 1.3, 1.3, 1.2))
    before = format_division(div)
    wrong = dict(request, match=1)
    with pytest.raises(BracketError) as e:
        elimination.sbs_score(div, 1, wrong)
    assert str(e.value) == ("Database error: Score for Ivo Brandt given for RO4 Match 1 but athlete is bracketed "
                            "to Match 2")
    assert format_division(div) == before
    assert elimination.sbs_score(div, 1, request) == [1, 2]
    assert div.form_scores(1, "ro4")[0].judges[1] == Score(0.3, 0.6, 1.5, 1.5, 1.4)
    assert div.form_scores(2, "ro4")[0].judges[1] == Score(0.6, 0.9, 1.3, 1.3, 1.2)


def test_sbs_score_accepts_numeric_strings_and_skips_a_null_side():
    play = Play(step_text("sbs3", "00-before.txt"), "sbs3")
    play.award_min_score(0)
    request = {"match": "2", "chung": {"index": "1", "major": "0.3", "minor": "0.6", "rhythm": "1.5",
                                       "power": "1.5", "ki": "1.4"}, "hong": {"index": None}}
    assert elimination.sbs_score(play.div, 0, request) == [1]
    with pytest.raises(BracketError):
        elimination.sbs_score(play.div, 0, {"match": 2})
    for side in ("x", 1, [], True):  # not an object and not null: refused, nothing stored
        with pytest.raises(BracketError, match="Invalid hong"):
            elimination.sbs_score(play.div, 1, {**request, "hong": side})
    assert not play.div.form_scores(1, play.div.round)[play.div.form].judges[1].started


def test_checklist_5_plain_round_codes_and_identical_totals_on_re_read():
    play = Play(step_text("se5", "00-before.txt"), "se5")
    play.award_min_score(0)
    assert "\tro8\tf1\tr\t0.0\t4.0\t0.5\t0.5\t0.5" in play.text and "ro8m" not in play.text
    again = parse_division(play.text, "se5")
    first, second = scoring.compute(play.div), scoring.compute(again)
    assert first.rounds["ro8"][0].adjusted_total == second.rounds["ro8"][0].adjusted_total == 1.5


def test_checklist_6_min_score_for_every_judge_and_form():
    div = division(2, "se", {"ro2": ["Keumgang", "Taeback"]}, judges=5)
    scoring.compute(div)
    assert elimination.award_min_score(div, 0) == 0
    res = scoring.compute(div)
    for form in div.form_scores(0, "ro2"):
        assert [s.values() for s in form.judges] == [bracket.MIN_SCORE] * 5
    assert [f.adjusted["total"] for f in res.rounds["ro2"][0].forms] == [1.5, 1.5]
    assert res.rounds["ro2"][0].adjusted_total == 3.0


def test_min_score_for_another_match_falls_back_in_se_and_fails_in_sbs():
    div = division(3, "se")
    scoring.compute(div)
    assert elimination.award_min_score(div, 2) == 0  # athlete 2 is in match 2; the current one gets it
    div = division(3, "sbs")
    scoring.compute(div)
    with pytest.raises(BracketError):
        elimination.award_min_score(div, 2)


def test_checklist_7_advancement_in_the_same_write_and_no_move():
    div = division(4)
    scoring.compute(div)
    for a, marks in ((0, (0.3, 0.3, 1.5, 1.5, 1.5)), (3, (0.9, 0.9, 1.2, 1.2, 1.2)),
                     (1, (0.9, 0.9, 1.2, 1.2, 1.2)), (2, (0.3, 0.3, 1.5, 1.5, 1.5))):
        score(div, a, marks)
    scoring.refresh(div, random.Random(0))
    assert div.order["ro2"] == [0, 2] and div.round == "ro4" and div.current == 0
    assert div.matches["ro2"] == [{"chung": 0, "hong": 2, "number": 1, "order": [0, 2]}]
    text = format_division(div)
    assert "# ro2" in text and "\tro2\tf1\tr\t0.0\t0.0\t0.0\t0.0\t0.0" in text


def test_checklist_8_presentation_breaks_a_tie_and_chung_wins_a_perfect_tie():
    div = division(2)
    score(div, 0, (0.3, 0.7, 1.5, 1.5, 1.5))  # 3.0 + 4.5
    score(div, 1, (0.3, 0.4, 1.4, 1.4, 1.4))  # 3.3 + 4.2
    res = scoring.compute(div)
    assert div.matches["ro2"][0]["winner"] == 0 and res.rounds["ro2"][0].tb == [4.5]
    div = division(2)
    score(div, 0, (0.3, 0.4, 1.4, 1.4, 1.4))
    score(div, 1, (0.3, 0.4, 1.4, 1.4, 1.4))
    res = scoring.compute(div)
    assert div.matches["ro2"][0]["winner"] == 0
    assert res.rounds["ro2"][1].tb == [4.2, 7.5, scoring.TIE_MATCH]


def test_checklist_9_withdrawals():
    div = division(4)
    div.form_scores(0, "ro4")[0].decision = {"withdraw": 1}
    score(div, 3, (0.3, 0.3, 1.5, 1.5, 1.5))
    div.form_scores(1, "ro4")[0].decision = {"disqualify": 1}
    div.form_scores(2, "ro4")[0].decision = {"withdraw": 1}
    scoring.refresh(div, random.Random(0))
    assert [m["winner"] for m in div.matches["ro4"]] == [3, None]
    assert div.matches["ro2"] == [{"chung": 3, "hong": None, "number": 1, "order": [3, None]}]
    assert div.order["ro2"] == [3]
    assert "# ro2\n" in format_division(div)


def test_a_lone_athlete_wins_even_with_a_decision():
    def result(complete, decision=None):
        return scoring.RoundResult(forms=[], complete=complete, started=True, decision=decision)

    assert bracket.decide({"chung": 4, "hong": None}, {4: result(True, "WDR")}) == (True, 4)
    assert bracket.decide({"chung": None, "hong": None}, {}) == (True, None)
    assert bracket.decide({"chung": 1, "hong": 2}, {1: result(True), 2: result(False)}) == (False, None)
    assert bracket.decide({"chung": 1, "hong": 2}, {1: result(True, "WDR"), 2: result(True, "DSQ")}) == (True, None)
    assert bracket.decide({"chung": 1, "hong": 2}, {1: result(True, "WDR"), 2: result(True)}) == (True, 2)


def test_checklist_10_placement_groups_by_wins_and_name():
    matches = {"ro4": [{"chung": 0, "hong": 3, "winner": 3}, {"chung": 1, "hong": 2, "winner": 1}],
               "ro2": [{"chung": 3, "hong": 1, "winner": 1}]}
    names = ["Zed", "Bea", "Cal", "Abe"]
    assert bracket.placement_groups(["ro4", "ro2"], matches, names) == {"ro4": [[3, 1], [2, 0]],
                                                                        "ro2": [[1], [3], [2, 0]]}
    del matches["ro2"][0]["winner"]
    assert list(bracket.placement_groups(["ro4", "ro2"], matches, names)) == ["ro4"]


def snap(method: str, **kw: object) -> Snapshot:
    base: dict[str, object] = dict(method=method, round="ro4", next_round="ro2", current=1, form=0, forms=1,
                                   matches=({"chung": 0, "hong": 3, "number": 1, "order": [0, 3]},
                                            {"chung": 1, "hong": 2, "number": 2, "order": [1, 2]}),
                                   match_complete=False, round_complete=False, decision_in_match=False)
    base.update(kw)
    return Snapshot(**base)  # type: ignore[arg-type]


def test_checklist_11_to_14_autopilot_step_selection():
    # 11: sbs, form 1 of 2 done
    assert bracket.autopilot_steps(snap("sbs", forms=2)) == ["scoreboard", "next", "matches"]
    assert bracket.next_position(snap("sbs", forms=2)) == ("ro4", 1, 1)
    # 12: se, a non-final match complete
    s = snap("se", current=2, match_complete=True)
    assert bracket.autopilot_steps(s) == ["scoreboard", "bracket", "next"]
    assert bracket.next_position(snap("se", current=3, match_complete=True)) == ("ro4", 1, 0)
    assert bracket.next_position(snap("se", current=2, match_complete=True, round_complete=True)) == ("ro2", -1, 0)
    # 13: the final
    final = dict(round="ro2", next_round=None, current=1, match_complete=True, round_complete=True,
                 matches=({"chung": 0, "hong": 1, "number": 1, "order": [0, 1]},))
    assert bracket.autopilot_steps(snap("sbs", **final)) == ["scoreboard", "leaderboard"]
    assert bracket.autopilot_steps(snap("se", **final)) == ["scoreboard", "leaderboard", "next"]
    assert bracket.next_position(snap("se", **final)) is None and bracket.division_over(snap("se", **final))
    # 14: sbs bye
    assert bracket.autopilot_steps(snap("sbs", bye=True, match_complete=True)) == ["next", "matches"]
    assert bracket.autopilot_steps(snap("se", bye=True, match_complete=True)) == ["scoreboard", "bracket", "next"]
    # se, first contestant done -> hong; two forms, match complete -> scoreboard only
    assert bracket.next_position(snap("se", current=1)) == ("ro4", 2, 0)
    assert bracket.autopilot_steps(snap("se", forms=2, match_complete=True)) == ["scoreboard"]
    assert bracket.next_position(snap("se", current=2, forms=2)) == ("ro4", 1, 1)


def test_checklist_15_draws():
    draws = bracket.record_draw(None, "ro2", 1, 0, "Koryo")
    assert draws == {"ro2": {"1": ["Koryo"]}}
    assert bracket.record_draw(draws, "ro2", 1, 2, "Taeback") == {"ro2": {"1": ["Koryo", None, "Taeback"]}}
    assert draws == {"ro2": {"1": ["Koryo"]}}
    div = division(2, "sbs")
    scoring.compute(div)
    elimination.draw(div, {"form": "Koryo", "complete": False})
    assert div.state == "draw" and div.draws is None
    elimination.draw(div, {"form": "Koryo", "complete": 1})
    assert div.draws == {"ro2": {"1": ["Koryo"]}} and '# draws={"ro2":{"1":["Koryo"]}}' in format_division(div)


def test_checklist_16_draw_select_age():
    div = division(3, "sbs", {"ro4": ["Taegeuk 7"], "ro2": ["Koryo", "Taeback"]})
    elimination.draw_select_age(div, "cadet")
    assert div.forms == {"ro4": ["draw-cadet"], "ro2": ["draw-cadet", "draw-cadet"]}
    elimination.draw_select_age(div, "wt25-0x1abcd")
    assert div.forms["ro4"] == ["draw-wt25-0x1abcd"]
    for bad in ("elder", "wt25-0x123", 7, None):
        with pytest.raises(BracketError):
            bracket.check_age(bad)


@pytest.mark.parametrize(("state", "expected"), [
    ("matches", "score"), ("score", "results"), ("results", "bracket"), ("bracket", "leaderboard"),
    ("leaderboard", "matches"), ("draw", "score"), ("display", "score")])
def test_checklist_17_se_display_cycle(state, expected):
    assert bracket.display_next("se", state, one_form=True, final_complete=False) == expected


def test_checklist_17_sbs_display_cycle():
    nxt = bracket.display_next
    assert nxt("sbs", "score", one_form=True, final_complete=False) == "bracket"
    assert nxt("sbs", "score", one_form=False, final_complete=False) == "results"
    assert nxt("sbs", "bracket", one_form=True, final_complete=False) == "matches"
    assert nxt("sbs", "bracket", one_form=True, final_complete=True) == "leaderboard"
    assert nxt("sbs", "leaderboard", one_form=True, final_complete=True) == "matches"
    assert nxt("sbs", "matches", one_form=True, final_complete=True) == "score"
    assert nxt("sbs", "draw", one_form=True, final_complete=True) == "score"


def test_checklist_18_navigate_athlete_in_sbs_shows_matches():
    div = division(3, "sbs")
    elimination.navigate_athlete(div, 2)
    assert (div.current, div.state) == (2, "matches")
    div = division(3, "se")
    elimination.navigate_athlete(div, 2)
    assert (div.current, div.state) == (2, "score")


def test_athlete_next_and_prev_walk_the_bracket():
    matches = [{"chung": 0, "hong": None, "order": [0, None]}, {"chung": 1, "hong": 2, "order": [1, 2]}]
    assert bracket.athlete_next(matches, 0, "ro4", True, [0, 1, 2]) == 1
    assert bracket.athlete_next(matches, 1, "ro4", False, [0, 1, 2]) == 2
    assert bracket.athlete_next(matches, 2, "ro4", False, [0, 1, 2]) == 1
    assert bracket.athlete_next(matches, 2, "ro4", True, [0, 1, 2]) == 0  # upstream's landing at the end
    assert bracket.athlete_next(matches, 2, "ro4", True, [1, 2]) == 2
    assert bracket.athlete_prev(matches, 2, "ro4") == 1
    assert bracket.athlete_prev(matches, 1, "ro4") == 0
    assert bracket.athlete_prev(matches, 0, "ro4") == 0
    with pytest.raises(BracketError, match="No match found with athlete ID 5 in round ro4"):
        bracket.current_match(matches, 5, "ro4")


def test_punitive_moves_to_the_next_incomplete_athlete():
    div = division(4)
    scoring.compute(div)
    div.current = 3
    div.form_scores(3, "ro4")[0].decision = {"withdraw": 1}
    elimination.after_punitive(div, scoring.compute(div))
    assert div.current == 0  # the other contestant of the incomplete match
    div.form_scores(0, "ro4")[0].decision = {"withdraw": 1}
    elimination.after_punitive(div, scoring.compute(div))
    assert div.current == 1


# -- combinations ---------------------------------------------------------------------

def test_combination_round_list_and_missing_rounds_are_cutoff():
    method = {"prelim": "cutoff", "semfin": "cutoff", "ro8": "sbs", "ro4": "sbs", "ro2": "sbs"}
    assert bracket.round_list(method, {"semfin": [0]}) == ["semfin", "ro8", "ro4", "ro2"]
    assert bracket.round_method(method, "finals") == "cutoff" and bracket.round_method(method, "ro4") == "sbs"
    assert bracket.round_method("aau-single-cutoff", "ro2") == "cutoff"
    assert bracket.round_list(method, {}) == []


def test_combination_semfin_moves_the_top_eight_in_rank_order_into_ro8():
    n = 10
    method = {"semfin": "cutoff", "ro8": "sbs", "ro4": "sbs", "ro2": "sbs"}
    div = Division(name="c", judges=3, method=method, round="semfin",
                   forms={"semfin": ["Koryo"], "ro8": ["Koryo"], "ro4": ["Koryo"], "ro2": ["Koryo"]},
                   athletes=[Athlete(name=f"A{i}") for i in range(n)])
    div.order["semfin"] = list(range(n))
    pad(div)
    for a in range(n):  # athlete a scores better the higher its index
        score(div, a, (0.1, 0.1, 0.5 + a * 0.1, 1.0, 1.0))
    scoring.refresh(div, random.Random(0))
    assert div.order["ro8"] == [9, 8, 7, 6, 5, 4, 3, 2]
    assert [m["order"] for m in div.matches["ro8"]] == [[9, 2], [8, 3], [7, 4], [6, 5]]
    assert div.rounds() == ["semfin", "ro8", "ro4", "ro2"]
    text = format_division(div)
    assert '# method={"ro2":"sbs","ro4":"sbs","ro8":"sbs","semfin":"cutoff"}' in text
    assert parse_division(text, "c").method == method


# -- properties -----------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=256))
def test_bracket_building_properties(n):
    round_ = bracket.first_round(n)
    _, count, lo, hi = bracket.ROUND_TABLE[round_]
    assert lo <= n <= hi
    matches = bracket.build_matches(list(range(n)), round_)
    seen = bracket.athletes_of(matches)
    assert sorted(seen) == list(range(n))  # every athlete once
    assert len(matches) == count and [m["number"] for m in matches] == list(range(1, count + 1))
    byes = [m["chung"] for m in matches if m["hong"] is None]
    assert byes == list(range(len(byes)))  # the byes go to the top seeds
    assert len(byes) == hi - n
    for m in matches:
        assert m["order"] == [m["chung"], m["hong"]] and m["chung"] is not None
        assert m["hong"] is None or m["chung"] + m["hong"] == hi - 1  # seed i meets seed max-1-i
    # rounds halve: winners (chung of each match) fill the next round exactly
    codes = list(bracket.BRACKET_ROUNDS)
    i = codes.index(round_)
    slots: list[int | None] = [m["chung"] for m in matches]
    for nxt in codes[i + 1:]:
        assert len(slots) == bracket.ROUND_TABLE[nxt][3] == bracket.ROUND_TABLE[round_][3] // 2
        round_ = nxt
        matches = bracket.build_matches(slots, nxt)
        slots = [m["chung"] for m in matches]
    assert round_ == "ro2" and len(slots) == 1
    assert math.ceil(math.log2(max(n, 2))) == codes[::-1].index(bracket.first_round(n)) + 1


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.randoms(use_true_random=False))
def test_a_whole_division_plays_to_one_champion(n, rnd):
    """Any field size, any marks and withdrawals: every round halves and ro2 names one champion."""
    div = division(n)
    rng = random.Random(0)
    scoring.refresh(div, rng)
    while True:
        for a in div.order[div.round]:
            if rnd.random() < 0.1:
                div.form_scores(a, div.round)[0].decision = {"withdraw": 1}
            else:
                score(div, a, (rnd.choice((0.0, 0.3, 0.6)), 0.3, 1.0 + rnd.choice((0.0, 0.1)), 1.0, 1.0))
        scoring.refresh(div, rng)
        nxt = scoring.method_for(div).next_round(div, div.round)
        if nxt is None:
            break
        assert len(div.matches[nxt]) * 2 == len(div.matches[div.round])
        div.round = nxt
        scoring.refresh(div, rng)
    groups = div.placement["ro2"]
    placed = [a for g in groups for a in g]
    assert sorted(placed) == list(range(n))
    assert len(groups) <= bracket.BRACKET_ROUNDS[::-1].index(bracket.first_round(n)) + 2
    nobody_won = any(m["winner"] is None for ms in div.matches.values() for m in ms)
    assert len(groups[0]) == 1 or nobody_won  # one champion, unless a double withdrawal emptied a match


def test_first_round_for_each_method():
    assert scoring.first_round_for("cutoff", 12) == "semfin"
    assert scoring.first_round_for("se", 12) == "ro16"
    assert scoring.first_round_for({"ro32": "se", "ro16": "se", "ro8": "sbs", "ro4": "sbs", "ro2": "sbs"}, 12) == "ro16"
    assert scoring.first_round_for({"ro8": "sbs", "ro4": "sbs", "ro2": "sbs"}, 12) == "ro8"
    assert scoring.first_round_for({"prelim": "cutoff", "semfin": "cutoff", "ro8": "sbs"}, 12) == "semfin"
    assert scoring.first_round_for({"semfin": "cutoff", "ro8": "sbs"}, 30) == "semfin"
    with pytest.raises(BracketError):
        scoring.first_round_for("se", 257)


def test_an_unusable_matches_line_is_built_again_from_the_order():
    text = step_text("se5", "00-before.txt").replace(
        "# description=", '# matches={"ro8":[{"chung":99,"hong":null,"number":1,"order":[99,null]}]}\n# description=')
    div = parse_division(text, "se5")
    scoring.compute(div)
    assert [m["order"] for m in div.matches["ro8"]] == [[0, None], [1, None], [2, None], [3, 4]]
    assert not bracket.well_formed({"chung": 0}, "ro2", 2) and not bracket.well_formed([], "ro2", 2)
    assert bracket.well_formed([{"chung": 0, "hong": 1, "number": 1, "order": [0, 1], "winner": 1}], "ro2", 2)
    assert not bracket.well_formed([{"chung": 0, "hong": 1, "number": 1, "order": [0, 1], "winner": 5}], "ro2", 2)


@pytest.mark.parametrize("method", ['{"ro2":"sbs"}', "{}", '{"ro8":"se","ro16":"se"}'])
def test_a_combination_naming_no_round_with_athletes_is_refused(method):
    """Quirk 13: upstream computes a nonsense round list; the file is refused as having no first round."""
    text = step_text("sbs3", "00-before.txt").replace("# method=sbs", f"# method={method}")
    with pytest.raises(DivisionFormatError, match="no first round"):
        parse_division(text, "sbs3")
    named = step_text("sbs3", "00-before.txt").replace("# method=sbs", '# method={"ro4":"sbs"}')
    assert parse_division(named, "sbs3").rounds() == ["ro4"]

