"""The four worked examples of the methods addendum (§10) at file level: every step's division file
equals upstream's (fixtures/forms-worldclass-methods/steps), but for the documented deviations."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from methods_play import Play, sbs_request, step_text, without_deviations  # noqa: E402


def same(play: Play, scenario: str, name: str, autopilot_off_at_end: bool = False) -> None:
    ours, upstream = without_deviations(play.text, step_text(scenario, name), autopilot_off_at_end)
    assert ours == upstream, f"{scenario}/{name}"


def test_se5_five_athletes():
    play = Play(step_text("se5", "00-before.txt"), "se5")
    assert play.div.round == "ro8" and play.div.matches is not None
    assert [m["order"] for m in play.div.matches["ro8"]] == [[0, None], [1, None], [2, None], [3, 4]]
    for athlete in (0, 1, 2):
        assert play.div.current == athlete
        assert play.award_min_score(athlete)
        assert play.steps[-1] == "scoreboard,bracket,next"
        same(play, "se5", f"01-ro8-bye-{athlete}.txt")
    play.se_all([(0.3, 0.5, 1.5, 1.5, 1.4), (0.3, 0.6, 1.6, 1.5, 1.4), (0.6, 0.4, 1.5, 1.4, 1.4)])
    assert play.steps[-1] == "scoreboard,next"
    same(play, "se5", "02-ro8-m4-athlete3.txt")
    play.se_all([(0.6, 0.8, 1.3, 1.3, 1.2), (0.9, 0.5, 1.3, 1.2, 1.2), (0.6, 0.6, 1.4, 1.3, 1.2)])
    assert play.steps[-1] == "scoreboard,bracket,next"
    same(play, "se5", "03-ro8-complete.txt")
    assert (play.div.round, play.div.current) == ("ro4", 0)
    play.se_all((0.3, 0.7, 1.5, 1.5, 1.5))
    play.se_all((0.3, 0.4, 1.4, 1.4, 1.4))
    same(play, "se5", "04-ro4-m1.txt")
    tb = {a: play.results.rounds["ro4"][a].tb for a in (0, 3)}
    assert tb == {0: [4.5], 3: [4.2]}
    play.award_punitive("withdraw", 1)
    assert play.div.current == 2
    same(play, "se5", "05-ro4-m2-withdraw.txt")
    play.se_all((0.9, 0.9, 1.2, 1.2, 1.2))
    same(play, "se5", "06-ro4-complete.txt")
    play.se_all((0.6, 0.6, 1.4, 1.4, 1.4))
    play.se_all((0.3, 0.6, 1.5, 1.4, 1.4))
    assert play.steps[-1] == "scoreboard,leaderboard,next"
    same(play, "se5", "07-final.txt", autopilot_off_at_end=True)
    assert play.div.placement["ro2"] == [[2], [0], [1, 3], [4]]
    for _ in range(6):
        play.display()
    assert play.div.state == "matches"
    play.athlete_next()
    play.athlete_prev()
    ours, upstream = without_deviations(play.text, (Path(__file__).parent / "fixtures" / "forms-worldclass-methods"
                                                    / "after" / "ring01" / "div.se5.txt").read_text())
    assert ours == upstream


def test_sbs2_draws_and_presentation_tie_break():
    play = Play(step_text("sbs2", "00-before.txt"), "sbs2")
    play.draw_select_age("cadet")
    same(play, "sbs2", "01-draw-select-age.txt")
    play.draw("Taegeuk 8", False)
    same(play, "sbs2", "02-draw-tease.txt")
    play.draw("Koryo", True)
    same(play, "sbs2", "03-draw-form1.txt")
    play.display()
    chung, hong = (0.3, 0.6, 1.5, 1.4, 1.3), (0.3, 0.5, 1.4, 1.4, 1.3)
    for j in range(3):
        play.sbs_score(j, sbs_request(play.div, 0, chung, hong))
    assert play.steps[-1] == "scoreboard,next,matches"
    same(play, "sbs2", "04-form1-scored.txt")
    play.draw("Taeback", True)
    play.display()
    same(play, "sbs2", "05-draw-form2.txt")
    for j in range(3):
        play.sbs_score(j, sbs_request(play.div, 1, chung, hong))
    assert play.steps[-1] == "scoreboard,results,leaderboard"
    same(play, "sbs2", "06-final.txt")
    assert [play.results.rounds["ro2"][a].tb for a in (0, 1)] == [[8.4], [8.2]]
    states = []
    for _ in range(3):
        play.display()
        states.append(play.div.state)
    assert states == ["matches", "score", "results"]
    same(play, "sbs2", "07-after-display-cycling.txt")
    for _ in range(6):
        play.display()
        states.append(play.div.state)
    assert states[3:] == ["bracket", "leaderboard", "matches", "score", "results", "bracket"]
    play.clear_judge_score(2, [0, 1])
    ours, upstream = without_deviations(play.text, (Path(__file__).parent / "fixtures" / "forms-worldclass-methods"
                                                    / "after" / "ring02" / "div.sbs2.txt").read_text())
    assert ours == upstream


def test_sbs3_bye_then_bracket():
    play = Play(step_text("sbs3", "00-before.txt"), "sbs3")
    assert play.award_min_score(0)
    assert play.steps[-1] == "next,matches"
    same(play, "sbs3", "01-bye.txt")
    for j in range(3):
        play.sbs_score(j, sbs_request(play.div, 0, (0.3, 0.6, 1.5, 1.5, 1.4), (0.6, 0.9, 1.3, 1.3, 1.2)))
    assert play.steps[-1] == "scoreboard,bracket,next,matches"
    same(play, "sbs3", "02-ro4-complete.txt")
    for j in range(3):
        play.sbs_score(j, sbs_request(play.div, 0, (0.6, 0.6, 1.4, 1.4, 1.3), (0.3, 0.4, 1.6, 1.5, 1.5)))
    assert play.steps[-1] == "scoreboard,leaderboard"
    same(play, "sbs3", "03-final.txt")
    play.navigate_athlete(1)
    ours, upstream = without_deviations(play.text, (Path(__file__).parent / "fixtures" / "forms-worldclass-methods"
                                                    / "after" / "ring03" / "div.sbs3.txt").read_text())
    assert ours == upstream


def test_se2f_two_forms_stop_after_the_scoreboard():
    play = Play(step_text("se2f", "00-before.txt"), "se2f")
    names = ["01-after-0.txt", "02-after-1.txt", "03-after-2.txt", "04-after-3.txt"]
    for k, marks in enumerate([(0.3, 0.6, 1.5, 1.5, 1.4), (0.6, 0.6, 1.4, 1.4, 1.3)] * 2):
        play.se_all(marks)
        same(play, "se2f", names[k], autopilot_off_at_end=k == 3)
    assert play.steps == ["scoreboard,next", "scoreboard,next", "scoreboard,next", "scoreboard"]
    assert (play.div.current, play.div.form, play.div.state) == (1, 1, "score")
    assert play.div.placement["ro2"] == [[0], [1]]
