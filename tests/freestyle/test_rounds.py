"""Ranking (§13), round selection and advancement (§14)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from freescore.freestyle import actions
from freescore.freestyle.division import Division
from freescore.freestyle.rounds import advancing, first_round, rank
from freescore.freestyle.scoring import RoundScore


def test_first_round_by_athlete_count() -> None:
    assert [first_round(n) for n in (1, 8, 9, 20, 21)] == ["finals", "finals", "semfin", "semfin", "prelim"]


result = st.builds(
    RoundScore, complete=st.booleans(), decision=st.sampled_from([None, "withdraw", "disqualify"]),
    technical=st.sampled_from([0.0, 3.5, 3.6]), presentation=st.sampled_from([0.0, 3.3, 3.4]),
    total=st.sampled_from([0.0, 6.9, 7.0]), original_technical=st.sampled_from([0.0, 10.5, 10.8]),
    original_presentation=st.sampled_from([0.0, 9.9]))


@settings(max_examples=200, deadline=None)
@given(st.lists(result, min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_ranking_is_a_total_order_of_the_complete_athletes(results: list[RoundScore], rnd: random.Random) -> None:
    order = list(range(len(results)))
    rnd.shuffle(order)
    by_athlete = dict(enumerate(results))
    placements, pending = rank(order, by_athlete)
    assert sorted(placements + pending) == sorted(order)
    assert all(by_athlete[a].complete for a in placements) and not any(by_athlete[a].complete for a in pending)
    position = {a: i for i, a in enumerate(order)}
    keys = [(by_athlete[a].rank_key(), position[a]) for a in placements]
    assert all(x < y for x, y in zip(keys, keys[1:], strict=False))  # strictly increasing: no two equal
    shuffled = dict(sorted(by_athlete.items(), key=lambda _: rnd.random()))
    assert rank(order, shuffled) == (placements, pending)


def test_decisions_rank_after_every_decided_free_athlete_withdraw_first() -> None:
    best = RoundScore(True, "disqualify", 5, 5, 10)
    withdrawn = RoundScore(True, "withdraw", 4, 4, 8)
    plain = RoundScore(True, None, 0.1, 0, 0.1)
    assert rank([0, 1, 2], {0: best, 1: withdrawn, 2: plain})[0] == [2, 1, 0]


def test_ties_go_to_technical_then_the_original_total_then_performance_order() -> None:
    a = RoundScore(True, None, 3.5, 3.4, 6.9, 10.5, 10.2)
    b = RoundScore(True, None, 3.6, 3.3, 6.9, 10.8, 9.9)
    c = RoundScore(True, None, 3.6, 3.3, 6.9, 10.8, 10.0)
    d = RoundScore(True, None, 3.6, 3.3, 6.9, 10.8, 10.0)
    assert rank([0, 1, 2, 3], {0: a, 1: b, 2: c, 3: d})[0] == [2, 3, 1, 0]


def test_semifinal_takes_the_better_half_rounded_up_shuffled_and_finals_the_best_eight_reversed() -> None:
    placements = [5, 3, 9, 1, 0, 7, 2, 8, 6, 4, 10]
    semi = advancing(placements, {3}, "semfin", random.Random(4))
    assert sorted(semi) == sorted([5, 9, 1, 0, 7])  # ceil(10 / 2) of the 10 without athlete 3
    assert advancing(placements, {3, 8}, "finals", random.Random(0)) == [4, 6, 2, 7, 0, 1, 9, 5]


def test_a_prelim_division_advances_on_round_next_and_current_is_the_new_first() -> None:
    data = {"athletes": [{"name": f"a{i}"} for i in range(22)], "judges": 3}
    div = Division(data, "p", "/f", 1, random.Random(2))
    assert div.round == "prelim" and div.order() == list(range(22))
    for a in range(22):
        div.current = a
        actions.score(div, 0, _flat(a))
        actions.score(div, 1, _flat(a))
        actions.score(div, 2, _flat(a))
    actions.award_punitive(div, 21, "withdraw")
    actions.round_next(div)
    semi = div.order()
    assert div.round == "semfin" and len(semi) == 11 and set(semi) == set(range(10, 21))
    assert div.current == semi[0] and div.state == "score"
    actions.round_prev(div)
    assert (div.round, div.current) == ("prelim", 0)


def _flat(a: int) -> dict:
    v = f"{min(a, 20) / 20:.2f}"
    return {"technical": {"mft1": v}, "presentation": {"energy": v}, "deductions": {}}
