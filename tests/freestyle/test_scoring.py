"""Freestyle scoring (spec §12): judge subtotals, trimming, rounding, penalties, decisions."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from freescore.freestyle import actions
from freescore.freestyle.divfile import format_division
from freescore.freestyle.division import Division
from freescore.freestyle.scoring import (
    PRESENTATION,
    TECHNICAL,
    dropped,
    num15,
    penalty_total,
    presentation,
    r2,
    round_score,
    technical,
)

tenths = st.integers(0, 10).map(lambda i: f"{i / 10:.1f}")


@st.composite
def judge_scores(draw: st.DrawFn) -> dict:
    return {
        "technical": {k: draw(tenths) for k in TECHNICAL},
        "presentation": {k: draw(tenths) for k in PRESENTATION},
        "deductions": {"major": draw(st.integers(0, 5)) * 0.3, "minor": draw(st.integers(0, 9)) * 0.1,
                       "stances": {"hakdari": True, "beomseogi": draw(st.booleans()), "dwigubi": True}},
    }


def panel(t: float, p: float, minor: float = 0.0, major: float = 0.0) -> dict:
    return {"technical": {k: str(t) for k in TECHNICAL}, "presentation": {k: str(p) for k in PRESENTATION},
            "deductions": {"major": major, "minor": minor}}


def test_a_judge_subtotal_subtracts_both_deductions_from_technical_only() -> None:
    s = panel(0.7, 0.8, minor=0.30000000000000004, major=0.3)
    assert round(technical(s), 9) == round(4.2 - 0.6, 9)
    assert round(presentation(s), 9) == 3.2


def test_values_that_are_not_numbers_count_zero() -> None:
    s = {"technical": {"mft1": "x", "mft2": None, "mft3": True}, "presentation": [], "deductions": "no"}
    assert technical(s) == 0 and presentation(s) == 0


def test_three_judges_average_without_trimming_and_no_min_max() -> None:
    r = round_score([panel(0.6, 0.8), panel(0.7, 0.8), panel(0.8, 0.8)], 3)
    assert (r.technical, r.presentation, r.total) == (4.2, 3.2, 7.4)
    assert r.low is None and "min" not in r.adjusted_json()


def test_five_judges_drop_the_first_lowest_and_the_first_highest() -> None:
    assert dropped([3.6, 4.2, 3.6, 4.2, 4.0]) == (0, 1)
    assert dropped([4.0, 4.0, 4.0, 4.0, 4.0]) == (0, 1)
    assert dropped([4.5, 4.0, 3.9, 4.5, 3.9]) == (2, 0)


def test_min_max_compare_exact_values_not_truncated_tenths() -> None:
    """§17.9: 0.7+0.1+0.2 is 0.9999999999999999, which int(x*10) would read as 0.9."""
    assert dropped([0.7 + 0.1 + 0.2, 1.0, 0.95, 1.2, 1.2]) == (2, 3)


def test_penalty_sums_every_value_misconduct_included() -> None:
    assert penalty_total({"bounds": 0.3, "timelimit": 0, "restart": "0.3", "misconduct": 1, "x": None}) == 1.6
    assert penalty_total(None) == 0
    r = round_score([panel(0.2, 0.1)] * 3, 3, {"misconduct": 2})
    assert r.total == 0  # never below zero


def test_a_decision_completes_the_athlete_and_without_scores_scores_zero() -> None:
    r = round_score(None, 5, decision="withdraw")
    assert r.complete and r.total == 0 and r.adjusted_json() == {
        "major": 0, "minor": 0, "technical": 0, "presentation": 0, "total": 0}
    assert not round_score([panel(1, 1)] * 4 + [None], 5).complete
    assert not round_score(None, 5, decision="something else").complete


def test_numbers_print_as_perl_does() -> None:
    assert (num15(0.30000000000000004), num15(9.0), num15(0.8999999999999999), num15(6.329999999999999)) == (
        0.3, 9, 0.9, 6.33)
    assert r2(3.5333333) == 3.53 and r2(0.125) == 0.12  # C rounds the binary double


def _division(judges: int, athletes: int = 2) -> Division:
    data = {"athletes": [{"name": f"a{i}"} for i in range(athletes)], "judges": judges}
    return Division(data, "fs01", "/d/ring01/div.fs01.txt", 1, random.Random(0))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([3, 5, 7]).flatmap(lambda k: st.tuples(st.just(k), st.lists(judge_scores(), min_size=k,
                                                                                   max_size=k))),
       st.randoms(use_true_random=False))
def test_scoring_does_not_depend_on_the_order_judges_send_in(case: tuple, rnd: random.Random) -> None:
    judges, scores = case
    texts = []
    for _ in range(2):
        div = _division(judges)
        order = list(range(judges))
        rnd.shuffle(order)
        for j in order:
            actions.score(div, j, scores[j])
        texts.append(format_division(div.data))
    assert texts[0] == texts[1]
    assert '"total"' in texts[0]
