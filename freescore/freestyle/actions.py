"""What each freestyle request does to a division (pure, spec §5); every function recomputes.

Requests arrive validated (`wire`); these functions only apply them. Navigation
walks `order[round]` (never raw athlete indexes, §17.2) and athlete removal
renumbers every list that points at athletes (§17.6).
"""

from __future__ import annotations

import copy
from typing import Any

from freescore.freestyle.division import RECOMPUTED, Division
from freescore.freestyle.rounds import next_round, prev_round
from freescore.freestyle.scoring import perl_numbers


def _per_round(athlete: dict[str, Any], key: str) -> dict[str, Any]:
    group = athlete.get(key)
    if not isinstance(group, dict):
        group = athlete[key] = {}
    return group


def score(div: Division, judge: int, value: dict[str, Any]) -> int:
    """Store a judge's score for the current athlete as the file will hold it; returns that athlete."""
    athlete = div.current
    scores = _per_round(div.athletes[athlete], "scores")
    panel = scores.get(div.round) if isinstance(scores.get(div.round), list) else []
    panel = panel + [None] * (judge + 1 - len(panel))
    panel[judge] = perl_numbers(value)
    scores[div.round] = panel
    div.state = "score"
    div.recompute()
    return athlete


def award_penalty(div: Division, athlete: int, penalty: dict[str, Any]) -> None:
    _per_round(div.athletes[athlete], "penalty")[div.round] = perl_numbers(penalty)
    div.recompute()


def award_punitive(div: Division, athlete: int, decision: str) -> None:
    """`withdraw`/`disqualify` (scores are kept); `clear` removes the decision."""
    decisions = _per_round(div.athletes[athlete], "decision")
    if decision == "clear":
        decisions.pop(div.round, None)
        if not decisions:
            del div.athletes[athlete]["decision"]
    else:
        decisions[div.round] = decision
    div.recompute()


def athlete_step(div: Division, step: int) -> None:
    """The next (+1) or previous (-1) entry of the round's order, wrapping."""
    order = div.order()
    if order:
        i = order.index(div.current) if div.current in order else (-1 if step > 0 else 0)
        div.current = order[(i + step) % len(order)]
    div.state = "score"
    div.recompute()


def is_last(div: Division) -> bool:
    order = div.order()
    return bool(order) and div.current == order[-1]


def round_next(div: Division) -> None:
    """Enter the next round (the finals stay); its order is computed on entry, `current` is its first."""
    target = next_round(div.round)
    div.state = "score"
    if target != div.round:
        div.data["round"] = target
        div.recompute()  # computes the order when the round has none
    _first_of_round(div)


def round_prev(div: Division) -> None:
    """Back one round when that round has an order."""
    target = prev_round(div.round)
    div.state = "score"
    if target is not None and div.order(target):
        div.data["round"] = target
    _first_of_round(div)


def _first_of_round(div: Division) -> None:
    order = div.order()
    if order:
        div.current = order[0]
    div.recompute()


def navigate_athlete(div: Division, index: int) -> None:
    """Jump to athlete `index` (an index into `athletes`); the state is unchanged."""
    div.current = index
    div.recompute()


def toggle_display(div: Division) -> None:
    div.state = "score" if div.state == "display" else "display"
    div.recompute()


VIEW_CYCLE = {"score": "display", "display": "list", "list": "score"}


def view_next(div: Division) -> None:
    div.state = VIEW_CYCLE.get(div.state, "score")
    div.recompute()


def _renumber(value: Any, mapping: dict[int, int]) -> Any:
    if isinstance(value, dict):
        return {k: _renumber(v, mapping) for k, v in value.items()}
    return [mapping[i] for i in value if i in mapping] if isinstance(value, list) else value


def _reindex(div: Division, kept: list[int]) -> None:
    """Keep athletes `kept` (old indexes, new order); orders follow, `current` follows its athlete."""
    mapping = {old: new for new, old in enumerate(kept)}
    order, current = div.order(), div.current
    if current in order:  # the current athlete's successors, wrapping
        i = order.index(current)
        order = order[i:] + order[:i]
    successor = next((mapping[a] for a in [current, *order] if a in mapping), 0)
    div.data["athletes"] = [div.athletes[i] for i in kept]
    div.data["order"] = _renumber(div.data.get("order", {}), mapping)
    for key in RECOMPUTED:
        div.data.pop(key, None)
    div.current = successor


def delete_athlete(div: Division, athlete: int) -> None:
    """Remove one athlete; order, placements, pending and `current` are renumbered (§17.6)."""
    _reindex(div, [i for i in range(len(div.athletes)) if i != athlete])
    div.recompute()


def edit_athletes(div: Division, entries: list[tuple[int | None, str]]) -> None:
    """The editor's list: entry i reuses old athlete `order` (keeping its scores) or is new; names are set."""
    old = div.athletes
    athletes: list[dict[str, Any]] = []
    mapping: dict[int, int] = {}
    for new, (index, name) in enumerate(entries):
        if index is not None and 0 <= index < len(old) and index not in mapping:
            mapping[index] = new
            athlete = old[index]
        else:
            athlete = {}
        athlete["name"] = name
        athletes.append(athlete)
    current = mapping.get(div.current, 0)
    orders = _renumber(div.data.get("order", {}), mapping)
    fresh = [i for i in range(len(athletes)) if i not in mapping.values()]
    orders[div.round] = list(orders.get(div.round, [])) + fresh
    div.data.update(athletes=athletes, order=orders, current=current)
    div.recompute()


def filter_athletes(div: Division, names: list[str]) -> None:
    """Keep the named athletes in the given order; the round's order becomes 0..n-1."""
    by_name = {}
    for i, a in enumerate(div.athletes):
        by_name.setdefault(a.get("name"), i)
    kept = []
    for name in names:
        i = by_name.get(name)
        if i is not None and i not in kept:
            kept.append(i)
    _reindex(div, kept)
    div.data["order"][div.round] = list(range(len(kept)))
    div.recompute()


KEPT_ON_WRITE = ("scores", "penalty", "decision")


def merged(written: dict[str, Any], existing: Division | None) -> dict[str, Any]:
    """A `division write`'s object (a copy: the request is echoed as sent): athletes named as in the
    stored division keep their data."""
    data = {k: copy.deepcopy(v) for k, v in written.items() if k not in (*RECOMPUTED, "file", "path")}
    if existing is None:
        return data
    stored = {}
    for a in existing.athletes:
        stored.setdefault(a.get("name"), a)
    athletes = []
    for a in data.get("athletes") or []:
        old = stored.get(a.get("name")) if isinstance(a, dict) else None
        kept = {k: old[k] for k in KEPT_ON_WRITE if k in old} if old is not None else {}
        athletes.append({**a, **kept})
    data["athletes"] = athletes
    return data
