"""Scoring math, ranking, tie-breakers and cutoff advancement against hand-computed values."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from freescore.worldclass import scoring
from freescore.worldclass.divfile import Athlete, Division, Score, pad, parse_division

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "forms-worldclass"


def p10():
    return parse_division((FIXTURES / "ring02/div.p10.txt").read_text(), "p10")


def test_p10_worked_example():
    div = p10()
    res = scoring.compute(div)
    a0 = res.rounds["finals"][0]
    assert a0.forms[0].adjusted == {"accuracy": 2.533, "presentation": 3.933, "total": 6.466}
    assert a0.forms[1].adjusted == {"accuracy": 2.3, "presentation": 3.533, "total": 5.833}
    assert a0.adjusted_total == 12.299
    assert a0.presentation == 7.466
    # < 5 judges: adjusted is the plain mean, so original equals it
    assert a0.total == 12.299
    assert a0.complete and not a0.decision


def test_p10_penalties_last_line_wins():
    res = scoring.compute(p10())
    f1 = res.rounds["finals"][1].forms[0]
    # accuracies 3.2, 2.6, 3.1 -> 2.967; presentations 4.4, 3.1, 4.7 -> 4.067; minus 0.3 + 1.0
    assert f1.adjusted == {"accuracy": 2.967, "presentation": 4.067, "total": 5.734}
    assert res.rounds["finals"][1].adjusted_total == 11.767
    assert res.rounds["finals"][2].adjusted_total == 14.567
    assert res.placement == {"finals": [2, 0, 1]}
    assert res.pending == {"finals": []}


def test_p10_json_numbers_and_flags():
    div = p10()
    out = scoring.division_json(div, scoring.compute(div), 2)
    form = out["athletes"][0]["scores"]["finals"]["forms"][0]
    assert form["adjusted"]["total"] == 6.466
    assert form["complete"] is True and form["started"] is True
    judge = form["judge"][0]
    assert judge["major"] == 0.3 and judge["accuracy"] == 2.1 and judge["presentation"] == 4.3
    # upstream flags one low and one high judge of every complete form whatever the panel (the se/sbs
    # captures have 3 judges); only 5 or more judges drop them from the means
    for flag in ("minacc", "maxacc", "minpre", "maxpre"):
        assert [j[flag] for j in form["judge"]].count(True) == 1, flag
    assert out["ring"] == 2 and out["judges"] == 3 and out["current"] == 0
    assert out["rounds"] == ["finals"]


def five_judge_division(rows):
    """rows: athlete name -> list of 5 (major, minor, rhythm, power, ki)."""
    div = Division(name="t5", judges=5, round="finals", forms={"finals": ["Koryo"]},
                   athletes=[Athlete(name=n) for n in rows])
    div.order["finals"] = list(range(len(rows)))
    pad(div)
    for i, marks in enumerate(rows.values()):
        if marks is None:
            continue
        div.athletes[i].scores["finals"][0].judges = [Score(*m) for m in marks]
    return div


A = [(0.3, 0.6, 1.5, 1.4, 1.3), (0.0, 0.5, 1.6, 1.5, 1.4), (0.6, 0.6, 1.2, 1.2, 1.2),
     (0.3, 0.3, 1.5, 1.5, 1.5), (0.3, 0.4, 1.4, 1.4, 1.4)]
B = [A[3], A[0], A[4], A[2], A[1]]  # same marks, other judges: ties on everything
C = [(0.3, 0.7, 1.4, 1.4, 1.4), (0.3, 0.4, 1.4, 1.4, 1.4), (0.0, 0.6, 1.4, 1.4, 1.4),
     (0.0, 0.6, 1.4, 1.4, 1.4), (0.0, 0.5, 1.4, 1.4, 1.4)]


def test_five_judges_trimmed_mean_and_flags():
    div = five_judge_division({"A": A})
    f = scoring.compute(div).rounds["finals"][0].forms[0]
    # accuracy 3.1 3.5 2.8 3.4 3.3: drop 2.8 (j2) and 3.5 (j1) -> 9.8/3
    # presentation 4.2 4.5 3.6 4.5 4.2: drop 3.6 (j2) and the first 4.5 (j1) -> 12.9/3
    assert f.adjusted == {"accuracy": 3.267, "presentation": 4.3, "total": 7.567}
    assert f.original == {"accuracy": 3.22, "presentation": 4.2, "total": 7.42}
    assert [fl["maxacc"] for fl in f.flags] == [False, True, False, False, False]
    assert [fl["minacc"] for fl in f.flags] == [False, False, True, False, False]
    assert [fl["maxpre"] for fl in f.flags] == [False, True, False, False, False]
    assert [fl["minpre"] for fl in f.flags] == [False, False, True, False, False]


def test_all_equal_marks_flag_judge0_min_judge1_max():
    div = five_judge_division({"E": [(0.3, 0.3, 1.5, 1.5, 1.5)] * 5})
    out = scoring.division_json(div, scoring.compute(div), 1)
    judges = out["athletes"][0]["scores"]["finals"]["forms"][0]["judge"]
    for flag, who in (("minacc", 0), ("maxacc", 1), ("minpre", 0), ("maxpre", 1)):
        assert [j[flag] for j in judges] == [i == who for i in range(5)]
    assert out["athletes"][0]["scores"]["finals"]["forms"][0]["adjusted"]["total"] == 7.9


def test_ties_and_tiebreakers():
    div = five_judge_division({"A": A, "C": C, "B": B, "D": A})
    div.athletes[3].scores["finals"][0].decision = {"withdraw": 1}
    res = scoring.compute(div)
    r = res.rounds["finals"]
    assert r[1].adjusted_total == 7.567 and r[1].presentation == 4.2
    # A and B tie on all three keys; C ties A/B on total only
    assert r[0].tb == [4.3, 7.42, scoring.TIE_MATCH]
    assert r[2].tb == [4.3, 7.42, scoring.TIE_MATCH]
    assert r[1].tb == [4.2]
    # withdraw: zeroed totals, marked, last
    assert r[3].decision == "WDR" and r[3].adjusted_total == 0 and r[3].total == 0 and r[3].presentation == 0
    assert res.placement["finals"] == [0, 2, 1, 3]
    out = scoring.division_json(div, res, 1)
    assert out["athletes"][3]["scores"]["finals"]["adjusted"]["decision"] == "WDR"


def test_penalties_lower_total_misconduct_does_not():
    div = five_judge_division({"A": A})
    form = div.athletes[0].scores["finals"][0]
    base = scoring.compute(div).rounds["finals"][0].adjusted_total
    form.penalty = {"bounds": 0.3, "timelimit": 0.0, "restart": 0.6, "misconduct": 2.0, "time": 61.0}
    assert scoring.compute(div).rounds["finals"][0].adjusted_total == pytest.approx(base - 0.9)


def test_score_completeness():
    assert scoring.score_complete(Score(0, 0, 0.5, 2.0, 1.0))
    assert not scoring.score_complete(Score(0, 0, 0.4, 2.0, 1.0))
    assert not scoring.score_complete(Score(0, 0, 0.5, 2.1, 1.0))
    assert not scoring.score_complete(Score(-0.1, 0, 1, 1, 1))
    assert scoring.accuracy(Score(3.0, 2.0, 1, 1, 1)) == 0.0


@pytest.mark.parametrize("n,expected", [(30, "prelim"), (20, "prelim"), (19, "semfin"), (9, "semfin"),
                                        (8, "finals"), (1, "finals")])
def test_first_round(n, expected):
    assert scoring.first_round(n) == expected


def big_division(n=22):
    div = Division(name="p01", judges=5, round="prelim",
                   forms={"prelim": ["Taegeuk 4"], "semfin": ["Koryo"], "finals": ["Taegeuk 7", "Keumgang"]},
                   athletes=[Athlete(name=f"A{i:02d}") for i in range(n)])
    div.order["prelim"] = list(range(n))
    pad(div)
    return div


def score_round(div, round_, total_for):
    """Give every athlete of the round uniform marks; higher total_for(a) -> higher score."""
    for a in div.order[round_]:
        for form in div.form_scores(a, round_):
            v = total_for(a)
            form.judges = [Score(0.0, 0.0, v, v, v) for _ in range(div.judges)]


def test_prelim_to_semfin_to_finals():
    div = big_division(22)
    rank_value = {a: round(0.5 + a * 0.05, 2) for a in range(22)}  # athlete 21 best
    score_round(div, "prelim", lambda a: rank_value[a])
    div.athletes[21].scores["prelim"][0].decision = {"disqualify": 1}
    rng = random.Random(7)
    res = scoring.refresh(div, rng)
    semfin = div.order["semfin"]
    # floor(21/2)+1 = 11 advance; the disqualified best is skipped
    assert sorted(semfin) == list(range(10, 21))
    assert res.placement["prelim"][0] == 20 and res.placement["prelim"][-1] == 21
    assert semfin == (lambda o: (random.Random(7).shuffle(o), o)[1])(sorted(semfin, key=lambda a: -a))
    assert "finals" not in div.order
    score_round(div, "semfin", lambda a: rank_value[a])
    scoring.refresh(div, rng)
    assert div.order["finals"] == [13, 14, 15, 16, 17, 18, 19, 20]  # top 8, best last
    assert div.placement["semfin"][:3] == [20, 19, 18]


def test_advancement_never_takes_more_than_eligible():
    div = big_division(20)
    score_round(div, "prelim", lambda a: 1.0)
    for a in range(3, 20):
        div.athletes[a].scores["prelim"][0].decision = {"withdraw": 1}
    scoring.refresh(div, random.Random(1))
    assert sorted(div.order["semfin"]) == [0, 1, 2]


def test_incomplete_round_does_not_advance():
    div = big_division(22)
    score_round(div, "prelim", lambda a: 1.0)
    div.athletes[5].scores["prelim"][0].judges[3] = Score()
    res = scoring.refresh(div, random.Random(1))
    assert "semfin" not in div.order
    assert res.pending["prelim"] == [5]


def test_flight_prelim_completes_flight():
    div = big_division(20)
    div.flight = {"id": "a", "group": ["p01a", "p01b"], "state": "in-progress"}
    score_round(div, "prelim", lambda a: 1.0)
    scoring.refresh(div, random.Random(1))
    assert div.flight["state"] == "complete" and "semfin" not in div.order


def test_method_seam_defaults_to_cutoff():
    div = big_division(3)
    assert scoring.method_for(div).name == "cutoff"
    div.method = {"prelim": "cutoff", "finals": "se"}
    assert scoring.method_for(div, "prelim").name == "cutoff"
