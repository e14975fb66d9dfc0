"""Grassroots scoring (spec §12-14): trimmed sums, ranking, medal ties, tiebreakers, brackets.

`compute(div)` derives everything from the marks and writes the derived
header values back (placements, pending, tied; `round`/`current`/`state`
when a medal tie appears), so what is written is always what the marks say:
upstream leaves stale placements in a finished division, this does not.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

from freescore.grassroots.divfile import Athlete, Division

DECISION_ORDER = {None: 0, "WDR": 1, "DSQ": 2}
ROUND_NAMES = ("finals", "semfin", "qtrfin")


def number(x: float) -> float:
    """A sum as Perl prints it (`%.15g`): 25.2, not 25.200000000000003."""
    return float(f"{x:.15g}")


@dataclass
class Result:
    complete: bool = False
    score: float = 0.0
    tb: float | None = None
    low: int | None = None
    high: int | None = None
    notes: str | None = None


@dataclass
class Results:
    athletes: list[Result] = field(default_factory=list)
    complete: bool = False
    order: list[int] = field(default_factory=list)


def counted(mark: float | None) -> bool:
    return mark is not None and mark > 0


def penalty_of(a: Athlete) -> float:
    penalty = a.info.get("penalty")
    if not isinstance(penalty, dict):
        return 0.0
    total = 0.0
    for value in penalty.values():
        try:
            v = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(v):
            total += v
    return total


def score_athlete(a: Athlete, judges: int) -> Result:
    """§12: the sum of the marks (trimmed of one low and one high above 3 judges) less the penalties."""
    values = [s if counted(s) else 0.0 for s in a.scores[:judges]]
    values += [0.0] * (judges - len(values))
    r = Result(complete=a.decision is not None or sum(1 for s in a.scores[:judges] if counted(s)) == judges)
    p = penalty_of(a)
    if judges > 3:
        r.low = values.index(min(values))
        r.high = values.index(max(values))
        if r.low == r.high:
            r.high = r.low + 1
        total = sum(values) - values[r.low] - values[r.high] - p * (judges - 2)
    else:
        total = sum(values) - p * judges
    r.score = number(max(0.0, total))
    votes = [t for t in a.tiebreakers if t is not None]
    if any(t > 0 for t in votes):
        r.tb = number(sum(t for t in votes if t > 0))
    return r


def _dropped(a: Athlete, r: Result, which: int | None) -> float:
    if which is None or which >= len(a.scores) or not counted(a.scores[which]):
        return 0.0
    return round(a.scores[which] or 0.0, 1)


def compare(div: Division, results: list[Result], i: int, j: int) -> int:
    """§13: negative when athlete i ranks before j, 0 when they tie."""
    a, b = div.athletes[i], div.athletes[j]
    ra, rb = results[i], results[j]
    for x, y in (
        (DECISION_ORDER[a.decision], DECISION_ORDER[b.decision]),
        (-round(ra.score, 1), -round(rb.score, 1)),
    ):
        if x != y:
            return -1 if x < y else 1
    if div.judges > 3:
        for which in ("high", "low"):
            x = _dropped(a, ra, getattr(ra, which))
            y = _dropped(b, rb, getattr(rb, which))
            if x != y:
                return -1 if x > y else 1
    if ra.tb is not None and rb.tb is not None and round(ra.tb, 1) != round(rb.tb, 1):
        return -1 if ra.tb > rb.tb else 1
    return 0


def _mark_notes(div: Division, results: list[Result], order: list[int]) -> None:
    """Who won an equal score, and by what: the higher dropped high (H), dropped low (L), tiebreaker (TB)."""
    for i, j in zip(order, order[1:], strict=False):
        ri, rj = results[i], results[j]
        ai, aj = div.athletes[i], div.athletes[j]
        if not (ri.complete and rj.complete) or ai.decision != aj.decision:
            continue
        if round(ri.score, 1) != round(rj.score, 1):
            continue
        marks: list[tuple[float, float, str]] = []
        if div.judges > 3:
            marks.append((_dropped(ai, ri, ri.high), _dropped(aj, rj, rj.high), "H"))
            marks.append((_dropped(ai, ri, ri.low), _dropped(aj, rj, rj.low), "L"))
        if ri.tb is not None and rj.tb is not None:
            marks.append((round(ri.tb, 1), round(rj.tb, 1), "TB"))
        for x, y, note in marks:
            if x != y:
                (ri if x > y else rj).notes = note


def tie_groups(div: Division, results: list[Result], order: list[int]) -> list[tuple[int, list[int]]]:
    """Groups of athletes that compare equal for a place whose medals they outnumber."""
    medals = dict(div.places)
    groups: list[tuple[int, list[int]]] = []
    pos = 0
    while pos < len(order):
        end = pos + 1
        while end < len(order) and compare(div, results, order[pos], order[end]) == 0:
            end += 1
        place = pos + 1
        if end - pos > 1 and place in medals and medals[place] < end - pos:
            groups.append((place, order[pos:end]))
        pos = end
    return groups


def compute(div: Division) -> Results:
    """Score, rank and place every athlete; update the division's derived header values."""
    div.pad()
    results = [score_athlete(a, div.judges) for a in div.athletes]
    if div.single_elimination:
        return compute_brackets(div, results)
    order = sorted(range(len(results)), key=functools.cmp_to_key(lambda i, j: compare(div, results, i, j)))
    complete = bool(results) and all(r.complete for r in results)
    _mark_notes(div, results, order)
    if not complete:
        div.tied = []
        div.placements = [i for i in order if results[i].complete]
        div.pending = [i for i, r in enumerate(results) if not r.complete]
    else:
        div.tied = tie_groups(div, results, order)
        div.placements = order
        div.pending = []
        if div.tied and div.round == "fin":
            div.current = div.tied[0][1][0]
            div.round = "tb"
        if div.tied and div.state == "score":
            div.state = "tiebreaker"
    return Results(athletes=results, complete=complete, order=order)


# -- single elimination (§14) ---------------------------------------------------------


def round_name(rounds_left: int) -> str:
    """finals, semfin, qtrfin, then ro16, ro32, ... counted back from the final."""
    return ROUND_NAMES[rounds_left] if rounds_left < len(ROUND_NAMES) else f"ro{2 ** (rounds_left + 1)}"


def _side(athlete: int | None, judges: int, votes: int = 0) -> dict[str, Any]:
    return {"athlete": athlete, "votes": [votes] * judges}


def _split(ids: list[int], depth: int) -> list[list[int]]:
    if depth == 0:
        return [ids]
    half = (len(ids) + 1) // 2
    return _split(ids[:half], depth - 1) + _split(ids[half:], depth - 1)


def build_brackets(n: int, judges: int) -> list[list[dict[str, Any]]]:
    """Rounds of matches: athletes in index order split in halves (the first half gets the extra one)."""
    if n == 0:
        return []
    rounds = max(1, math.ceil(math.log2(n)))
    first = []
    for group in _split(list(range(n)), rounds - 1):
        bye = len(group) == 1
        first.append({
            "round": round_name(rounds - 1),
            "blue": _side(group[0], judges, 1 if bye else 0),
            "red": _side(None if bye else group[1], judges),
        })
    out = [first]
    for r in range(1, rounds):
        out.append([
            {"round": round_name(rounds - 1 - r), "blue": _side(None, judges), "red": _side(None, judges)}
            for _ in range(2 ** (rounds - 1 - r))
        ])
    return out


def winner(match: dict[str, Any], judges: int) -> int | None:
    """The side with a majority of the judges' votes, if it has an athlete."""
    for side in ("blue", "red"):
        s = match[side]
        if s["athlete"] is not None and sum(1 for v in s["votes"] if v) * 2 > judges:
            return s["athlete"]
    return None


def matches(div: Division) -> list[dict[str, Any]]:
    """Every match, round 0 first: the list `current` indexes."""
    return [m for r in (div.brackets or []) for m in r]


def _valid_brackets(brackets: Any) -> bool:
    return isinstance(brackets, list) and all(
        isinstance(r, list) and all(isinstance(m, dict) and "blue" in m and "red" in m for m in r)
        for r in brackets
    )


def compute_brackets(div: Division, results: list[Result]) -> Results:
    if not _valid_brackets(div.brackets) or not div.brackets:
        div.brackets = build_brackets(len(div.athletes), div.judges)
    points = [0] * len(div.athletes)
    for r, round_ in enumerate(div.brackets):
        for k, match in enumerate(round_):
            for side in ("blue", "red"):
                match[side]["votes"] = (list(match[side].get("votes") or []) + [0] * div.judges)[:div.judges]
            won = winner(match, div.judges)
            if won is not None and 0 <= won < len(points):
                points[won] += 1
            if r + 1 < len(div.brackets):
                nxt = div.brackets[r + 1][k // 2][("blue", "red")[k % 2]]
                if nxt["athlete"] != won:
                    nxt["athlete"] = won
                    nxt["votes"] = [0] * div.judges
    for res, p in zip(results, points, strict=True):
        res.score = float(p)
    final = div.brackets[-1][0] if div.brackets else None
    complete = final is not None and winner(final, div.judges) is not None
    order = sorted(range(len(points)), key=lambda i: -points[i])
    for res in results:
        res.complete = complete
    div.tied = []
    if complete:
        div.placements, div.pending = order, []
    else:
        current = matches(div)[div.current] if 0 <= div.current < len(matches(div)) else None
        div.placements = []
        div.pending = [] if current is None else [
            current[s]["athlete"] for s in ("blue", "red") if current[s]["athlete"] is not None
        ]
    return Results(athletes=results, complete=complete, order=order)


# -- JSON (§11) -------------------------------------------------------------------------


def _mark_json(mark: float | None) -> float | str:
    return "-" if mark is None or mark < 0 else number(round(mark, 1))


def athlete_json(a: Athlete, index: int, r: Result, judges: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": a.name, "rank": a.rank, "index": index, "info": a.info,
        "scores": [_mark_json(s) if counted(s) else "-" for s in a.scores],
        "tiebreakers": [_mark_json(t) for t in a.tiebreakers],
        "complete": 1 if r.complete else 0, "score": r.score, "tb": r.tb,
    }
    if judges > 3 and r.low is not None:
        out["min"], out["max"] = r.low, r.high
    if r.notes:
        out["notes"] = r.notes
    return out


def division_json(div: Division, results: Results, ring: int | str, file: str, path: str) -> dict[str, Any]:
    """The division object the pages read (§11): ints for indices, numbers for scores, 1/0 for complete."""
    out: dict[str, Any] = {**div.extra}
    out.update({
        "name": div.name, "ring": ring, "file": file, "path": path, "state": div.state,
        "current": div.current, "round": div.round, "judges": div.judges,
        "places": [{"place": p, "medals": m} for p, m in div.places],
        "placements": list(div.placements), "pending": list(div.pending),
        "complete": 1 if results.complete else 0,
        "athletes": [athlete_json(a, i, r, div.judges)
                     for i, (a, r) in enumerate(zip(div.athletes, results.athletes, strict=True))],
    })
    if div.description is not None:
        out["description"] = div.description
    if div.mode:
        out["mode"] = div.mode
    if div.tied:
        out["tied"] = [{"place": p, "tied": ids} for p, ids in div.tied]
    if div.brackets is not None:
        out["brackets"] = div.brackets
    if div.poolsize:
        out["poolsize"] = div.poolsize
    return out
