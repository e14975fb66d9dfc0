"""What each request and autopilot step does to a division whose current round is se or sbs.

Pure: these change a Division in memory (the caller recomputes with `scoring.refresh`, writes
and broadcasts) and raise BracketError with upstream's texts. The bracket rules themselves are
in `bracket.py`; this module is the glue between them, the division and the request fields.
"""

from __future__ import annotations

from typing import Any

from freescore.worldclass import bracket, scoring, wire
from freescore.worldclass.bracket import BracketError, Match, Snapshot
from freescore.worldclass.divfile import Division, Score

MARK_LIMITS = (("major", 10.0), ("minor", 10.0), ("rhythm", 2.0), ("power", 2.0), ("ki", 2.0))


def method(div: Division) -> str:
    """The method of the current round: `se`, `sbs` or `cutoff`."""
    return bracket.round_method(div.method, div.round)


def in_bracket(div: Division) -> bool:
    return method(div) in bracket.BRACKET_METHODS


def matches(div: Division, round_: str | None = None) -> list[Match]:
    round_ = round_ or div.round
    found = (div.matches or {}).get(round_) if isinstance(div.matches, dict) else None
    if not found:
        raise BracketError(f"Matches: No matches in round {round_}")
    return found


def current_match(div: Division) -> Match:
    return bracket.current_match(matches(div), div.current, div.round)


def round_athletes(div: Division, round_: str | None = None) -> list[int]:
    return list(div.order.get(round_ or div.round, []))


def marks(values: dict[str, Any]) -> Score:
    """One judge's marks from a request (numbers or numeric strings)."""
    return Score(*(wire.to_float(values.get(k, 0), k, 0, hi) for k, hi in MARK_LIMITS))


def set_min_score(div: Division, athlete: int) -> None:
    """Every form of the current round and every judge: 0.0 4.0 0.5 0.5 0.5 (form total 1.5)."""
    for form in div.form_scores(athlete, div.round):
        form.judges[: div.judges] = [Score(*bracket.MIN_SCORE) for _ in range(div.judges)]


def min_score_athlete(div: Division, athlete_id: Any) -> int:
    """The athlete `award min score` is for: `athlete_id` when in the current match, else the current one.

    SBS requires `athlete_id` to be chung or hong of the current match (the coordinator picks one).
    """
    match = current_match(div)
    if athlete_id is None:
        return div.current
    index = wire.to_int(athlete_id, "athlete_id", 0, max(len(div.athletes) - 1, 0))
    if index in bracket.present(match):
        return index
    if method(div) == "sbs":
        raise BracketError(f"Athlete {index} is not in {div.round.upper()} Match {match['number']}")
    return div.current


def award_min_score(div: Division, athlete_id: Any) -> int:
    athlete = min_score_athlete(div, athlete_id)
    set_min_score(div, athlete)
    return athlete


def sbs_score(div: Division, judge: int, score: dict[str, Any]) -> list[int]:
    """One judge's marks for both contestants of the current match and form; all checked first."""
    match = current_match(div)
    given = score.get("match")
    sides: list[tuple[int, Score]] = []
    for side in ("chung", "hong"):
        values = score.get(side)
        if values is not None and not isinstance(values, dict):
            raise BracketError(f"Invalid {side} '{values}'")  # a side is an object, or null for an empty slot
        if values is None or values.get("index") is None:
            continue
        index = wire.to_int(values["index"], f"{side}.index", 0, max(len(div.athletes) - 1, 0))
        if given is None or str(given) != str(match["number"]) or index not in bracket.present(match):
            shown = given if given is not None else ""
            raise BracketError(f"Database error: Score for {div.athletes[index].name} given for "
                               f"{div.round.upper()} Match {shown} but athlete is bracketed to Match "
                               f"{_bracketed_to(div, index)}")
        sides.append((index, marks(values)))
    if not sides:
        raise BracketError("Missing field 'chung' or 'hong'")
    for index, value in sides:
        div.form_scores(index, div.round)[div.form].judges[judge] = value
    div.state = "score"
    return [index for index, _ in sides]


def _bracketed_to(div: Division, athlete: int) -> str:
    for m in matches(div):
        if athlete in bracket.present(m):
            return str(m["number"])
    return "none"


def clear_judge_score(div: Division, judge: int, indices: Any) -> None:
    """Clear one judge's score on the current form for each listed athlete (default: current)."""
    if indices is None:
        chosen = [div.current]
    else:
        items = indices if isinstance(indices, list) else [indices]
        chosen = [wire.to_int(i, "index", 0, max(len(div.athletes) - 1, 0)) for i in items]
    order = round_athletes(div)
    for index in chosen:
        if index not in order:
            raise BracketError(f"Invalid index '{index}'")
    for index in chosen:
        div.form_scores(index, div.round)[div.form].judges[judge] = Score()
    div.state = "score"


def draw(div: Division, request_draw: Any) -> None:
    """`draw`: state `draw`; a complete draw stores the form for the current match and form."""
    if not isinstance(request_draw, dict):
        raise BracketError("Missing field 'draw'")
    div.state = "draw"
    if request_draw.get("complete") in (True, 1, "1", "true"):
        name = request_draw.get("form")
        if not isinstance(name, str) or not name.strip():
            raise BracketError("Invalid draw form")
        div.draws = bracket.record_draw(div.draws, div.round, current_match(div)["number"], div.form, name)


def draw_select_age(div: Division, age: Any) -> None:
    div.forms = bracket.draw_forms(div.forms, div.rounds(), bracket.check_age(age))


def final_complete(div: Division, results: scoring.Results) -> bool:
    return "ro2" in div.order and results.round_matches_complete("ro2")


def display(div: Division, results: scoring.Results) -> None:
    div.state = bracket.display_next(method(div), div.state, one_form=div.form_count(div.round) == 1,
                                     final_complete=final_complete(div, results))


def match_is_complete(div: Division, results: scoring.Results, match: Match) -> bool:
    return scoring.match_complete(div, results, div.round, match)


def athlete_next(div: Division, results: scoring.Results) -> None:
    done = match_is_complete(div, results, current_match(div))
    div.current = bracket.athlete_next(matches(div), div.current, div.round, done, round_athletes(div))
    div.form, div.state = 0, "score"


def athlete_prev(div: Division) -> None:
    div.current = bracket.athlete_prev(matches(div), div.current, div.round)
    div.form, div.state = 0, "score"


def navigate_athlete(div: Division, index: int) -> None:
    """`navigate` to an athlete: form unchanged; SBS shows the matches page."""
    div.current = index
    if method(div) == "sbs":
        div.state = "matches"


def after_punitive(div: Division, results: scoring.Results) -> None:
    """Withdraw/disqualify: `athlete next` until an athlete whose round is incomplete (bounded)."""
    res = results.rounds.get(div.round, {})
    for _ in range(len(round_athletes(div))):
        athlete_next(div, results)
        if div.current in res and not res[div.current].complete:
            break
    div.form, div.state = 0, "score"


def first_of_round(div: Division, round_: str) -> int | None:
    return bracket.first_athlete(matches(div, round_))


# -- autopilot ----------------------------------------------------------------------

def snapshot(div: Division, results: scoring.Results, bye: bool = False) -> Snapshot:
    """The facts autopilot decides on, taken once when armed."""
    match = current_match(div)
    res = results.rounds.get(div.round, {})
    return Snapshot(
        method=method(div), round=div.round, next_round=scoring.method_for(div).next_round(div, div.round),
        current=div.current, form=div.form, forms=div.form_count(div.round), matches=tuple(matches(div)),
        match_complete=match_is_complete(div, results, match),
        round_complete=results.round_matches_complete(div.round),
        decision_in_match=any(a in res and res[a].decision for a in bracket.present(match)), bye=bye,
    )


def run_step(div: Division, snap: Snapshot, step: str) -> None:
    """One autopilot step's change to the division (§7); the caller writes and broadcasts."""
    if step in ("scoreboard", "results", "bracket", "leaderboard"):
        div.state = bracket.STEP_STATE[step]
    elif step == "matches":
        div.state = "matches"
        div.autopilot = None
    elif step == "next":
        move = bracket.next_position(snap)
        if move is not None:
            round_, current, form = move
            if current < 0:
                first = first_of_round(div, round_)
                if first is None:
                    return
                current = first
            div.round, div.current, div.form, div.state = round_, current, form, "score"
    else:
        raise BracketError(f"Unknown autopilot step '{step}'")


def switch_off(div: Division) -> None:
    """Autopilot off, as the se/sbs pages and upstream's files show it: no `autopilot` at all."""
    div.autopilot = None
