"""A file-level player for se/sbs divisions: each request and autopilot step as the service applies
it (change, recompute and advance, write), re-reading the written text each time as upstream does.

Shared by the worked-example tests; the comparisons allow only the documented deviations.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from freescore.worldclass import bracket, elimination, scoring
from freescore.worldclass.divfile import Division, Score, format_division, parse_division

METHODS_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "forms-worldclass-methods"
STEPS = METHODS_FIXTURES / "steps"
_MATCHES = re.compile(r"^# matches=(.*)$", re.M)
_AUTOPILOT = re.compile(r"^# autopilot=.*\n", re.M)


class Play:
    def __init__(self, text: str, divid: str) -> None:
        self.divid = divid
        self.div: Division = parse_division(text, divid)
        self.results = scoring.compute(self.div)
        self.text = text
        self.steps: list[str] = []
        self.rng = random.Random(0)

    def write(self) -> str:
        self.results = scoring.refresh(self.div, self.rng)
        self.text = format_division(self.div)
        self.div = parse_division(self.text, self.divid)
        self.results = scoring.compute(self.div)
        return self.text

    # -- requests --------------------------------------------------------------------
    def scored(self) -> None:
        """After a score: arm when the current athlete's current form is complete, write, run the steps."""
        div = self.div
        form = div.form_scores(div.current, div.round)[div.form]
        self.arm_and_write(scoring.form_result(form, div.judges).complete)

    def arm_and_write(self, armed: bool, bye: bool = False) -> None:
        if armed:
            self.div.autopilot = "on"
        self.write()
        if armed:
            self.autopilot(bye)

    def se_score(self, judge: int, marks: tuple[float, ...]) -> None:
        div = self.div
        div.form_scores(div.current, div.round)[div.form].judges[judge] = Score(*marks)
        self.scored()

    def se_all(self, marks: list[tuple[float, ...]] | tuple[float, ...]) -> None:
        for j in range(self.div.judges):
            self.se_score(j, marks[j] if isinstance(marks, list) else marks)

    def sbs_score(self, judge: int, score: dict[str, Any]) -> None:
        elimination.sbs_score(self.div, judge, score)
        self.scored()

    def award_min_score(self, athlete_id: int) -> bool:
        div = self.div
        elimination.award_min_score(div, athlete_id)
        bye = elimination.match_is_complete(div, scoring.compute(div), elimination.current_match(div))
        self.arm_and_write(bye, bye=True)
        return bye

    def award_punitive(self, decision: str, athlete_id: int) -> None:
        div = self.div
        div.form_scores(athlete_id, div.round)[div.form].decision = {decision: 1}
        elimination.after_punitive(div, scoring.compute(div))
        self.write()

    def manual(self, change: Any, *args: Any) -> None:
        """An operator action: autopilot off (the key dropped), the change, the write."""
        elimination.switch_off(self.div)
        change(self.div, *args)
        self.write()

    def draw_select_age(self, age: str) -> None:
        self.manual(elimination.draw_select_age, age)

    def draw(self, form: str, complete: bool) -> None:
        self.manual(elimination.draw, {"form": form, "complete": complete})

    def display(self) -> None:
        self.manual(elimination.display, self.results)

    def athlete_next(self) -> None:
        self.manual(elimination.athlete_next, self.results)

    def athlete_prev(self) -> None:
        self.manual(elimination.athlete_prev)

    def navigate_athlete(self, index: int) -> None:
        self.manual(elimination.navigate_athlete, index)

    def clear_judge_score(self, judge: int, index: Any) -> None:
        self.manual(elimination.clear_judge_score, judge, index)

    # -- autopilot ---------------------------------------------------------------------
    def autopilot(self, bye: bool = False) -> None:
        snap = elimination.snapshot(self.div, self.results, bye)
        steps = bracket.autopilot_steps(snap)
        self.steps.append(",".join(steps))
        for i, step in enumerate(steps):
            elimination.run_step(self.div, snap, step)
            if i == len(steps) - 1 and snap.method == "se" and bracket.division_over(snap):
                elimination.switch_off(self.div)  # deliberate deviation: SE switches off at the end
            self.write()


def sbs_request(div: Division, form: int, chung: tuple[float, ...] | None, hong: tuple[float, ...] | None
                ) -> dict[str, Any]:
    match = elimination.current_match(div)
    score: dict[str, Any] = {"divid": div.name, "match": match["number"], "form": form}
    for side, marks in (("chung", chung), ("hong", hong)):
        if marks is not None and match[side] is not None:
            score[side] = {"index": match[side], **dict(zip(("major", "minor", "rhythm", "power", "ki"), marks,
                                                            strict=True))}
    return score


def se_score(judge: int, marks: tuple[float, ...]) -> dict[str, Any]:
    return {"type": "division", "action": "score",
            "score": {"judge": judge, **{k: f"{v:.1f}" for k, v in zip(("major", "minor", "rhythm", "power", "ki"),
                                                                          marks, strict=True)}}}


def sbs_score(judge: int, match: int, form: int, chung: tuple[float, ...], hong: tuple[float, ...],
              indices: tuple[int, int]) -> dict[str, Any]:
    keys = ("major", "minor", "rhythm", "power", "ki")
    return {"type": "division", "action": "score", "judge": judge,
            "score": {"divid": "x", "match": match, "form": form,
                      "chung": {"index": indices[0], **dict(zip(keys, chung, strict=True))},
                      "hong": {"index": indices[1], **dict(zip(keys, hong, strict=True))}}}


def without_deviations(ours: str, upstream: str, autopilot_off_at_end: bool = False) -> tuple[str, str]:
    """Both texts with the documented differences taken out.

    - winners: ours carries a complete match's `winner` at once; upstream from the next request on.
      Every winner upstream wrote must be ours too; then winners are compared no further.
    - with `autopilot_off_at_end`, SE switched itself off at the end of the division.
    """
    up_m = _MATCHES.search(upstream)
    our_m = _MATCHES.search(ours)
    if up_m and our_m:
        up_json, our_json = json.loads(up_m.group(1)), json.loads(our_m.group(1))
        for round_, matches in up_json.items():
            for i, m in enumerate(matches):
                if "winner" in m:
                    assert our_json[round_][i].get("winner", "missing") == m["winner"], (round_, m)
        strip = [json.dumps({r: [{k: v for k, v in m.items() if k != "winner"} for m in ms]
                             for r, ms in j.items()}, sort_keys=True) for j in (our_json, up_json)]
        ours = ours.replace(our_m.group(0), "# matches=" + strip[0])
        upstream = upstream.replace(up_m.group(0), "# matches=" + strip[1])
    if autopilot_off_at_end:
        assert "# autopilot=" not in ours
        upstream = _AUTOPILOT.sub("", upstream)
    return ours, upstream


def step_text(scenario: str, name: str) -> str:
    return (STEPS / scenario / name).read_text()
