"""Recognized-poomsae scoring math and the cutoff method (pure, spec §12-14).

`compute(div)` derives every total, flag, placement and pending list from the
stored marks; `advance(div, rng)` moves athletes into the next round when the
current one is complete. The method is a seam: `METHODS[name]` gives the
rules object, and single-elimination / side-by-side plug in beside `Cutoff`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from freescore.worldclass import bracket
from freescore.worldclass.divfile import Division, FormScore, Score

TIE_MATCH = "tiebreaker match required"
CUTOFF_ROUNDS = ("prelim", "semfin", "finals")


def r3(x: float) -> float:
    """Round to 3 decimals as Perl's sprintf('%.3f') does."""
    v = float(f"{x:.3f}")
    return 0.0 if v == 0 else v


def score_complete(s: Score) -> bool:
    return s.major >= 0 and s.minor >= 0 and all(0.5 <= v <= 2.0 for v in (s.rhythm, s.power, s.ki))


def accuracy(s: Score) -> float:
    return max(0.0, 4.0 - (s.major + s.minor))


def presentation(s: Score) -> float:
    return s.rhythm + s.power + s.ki


def penalties(form: FormScore) -> float:
    p = form.penalty or {}
    return p.get("bounds", 0.0) + p.get("timelimit", 0.0) + p.get("restart", 0.0)


@dataclass
class FormResult:
    complete: bool
    started: bool
    judge_complete: list[bool]
    adjusted: dict[str, float] | None = None
    original: dict[str, float] | None = None
    flags: list[dict[str, bool]] | None = None


@dataclass
class RoundResult:
    forms: list[FormResult]
    complete: bool
    started: bool
    accuracy: float = 0.0
    presentation: float = 0.0
    adjusted_total: float = 0.0
    total: float = 0.0
    decision: str | None = None
    tb: list[Any] = field(default_factory=list)

    def rank_key(self) -> tuple[int, float, float, float]:
        return (1 if self.decision else 0, -self.adjusted_total, -self.presentation, -self.total)


def _extremes(values: list[float]) -> tuple[int, int]:
    """Indexes of the dropped low and high: the lowest index holding each extreme."""
    lo = min(range(len(values)), key=lambda i: (values[i], i))
    hi = min(range(len(values)), key=lambda i: (-values[i], i))
    if lo == hi:
        return 0, 1
    return lo, hi


def form_result(form: FormScore, judges: int) -> FormResult:
    slots = form.judges[:judges] + [Score() for _ in range(judges - len(form.judges))]
    done = [score_complete(s) for s in slots]
    started = any(s.started for s in slots) or bool(form.decision)
    all_scored = all(done) and judges > 0
    complete = all_scored or bool(form.decision)
    res = FormResult(complete=complete, started=started, judge_complete=done)
    if not complete:
        return res
    pen = penalties(form)
    if not all_scored:
        res.adjusted = {"accuracy": 0.0, "presentation": 0.0, "total": 0.0}
        res.original = {"accuracy": 0.0, "presentation": 0.0, "total": 0.0}
        return res
    acc = [accuracy(s) for s in slots]
    pre = [presentation(s) for s in slots]
    flags = [{"minacc": False, "maxacc": False, "minpre": False, "maxpre": False} for _ in slots]
    alo, ahi = _extremes(acc)
    plo, phi = _extremes(pre)
    if judges >= 2:  # upstream flags the extremes whatever the panel; only 5 or more drops them
        flags[alo]["minacc"] = flags[ahi]["maxacc"] = True
        flags[plo]["minpre"] = flags[phi]["maxpre"] = True
    if judges >= 5:
        adj_acc = r3(max(0.0, (sum(acc) - acc[alo] - acc[ahi]) / (judges - 2)))
        adj_pre = r3(max(0.0, (sum(pre) - pre[plo] - pre[phi]) / (judges - 2)))
    else:
        adj_acc = r3(sum(acc) / judges)
        adj_pre = r3(sum(pre) / judges)
    orig_acc = r3(sum(acc) / judges)
    orig_pre = r3(sum(pre) / judges)
    res.flags = flags
    res.adjusted = {"accuracy": adj_acc, "presentation": adj_pre, "total": r3(adj_acc + adj_pre - pen)}
    res.original = {"accuracy": orig_acc, "presentation": orig_pre, "total": r3(orig_acc + orig_pre - pen)}
    return res


def round_result(div: Division, athlete: int, round_: str) -> RoundResult:
    forms = div.athletes[athlete].scores.get(round_, [])
    count = div.form_count(round_)
    results = []
    decision = None
    for k in range(count):
        form = forms[k] if k < len(forms) else FormScore()
        results.append(form_result(form, div.judges))
        if form.decision:
            decision = "DSQ" if "disqualify" in form.decision else "WDR"
    rr = RoundResult(
        forms=results, complete=all(f.complete for f in results), started=any(f.started for f in results),
        decision=decision,
    )
    done = [f for f in results if f.complete and f.adjusted is not None]
    rr.accuracy = r3(sum(f.adjusted["accuracy"] for f in done))  # type: ignore[index]
    rr.presentation = r3(sum(f.adjusted["presentation"] for f in done))  # type: ignore[index]
    rr.adjusted_total = r3(sum(f.adjusted["total"] for f in done))  # type: ignore[index]
    rr.total = r3(sum(f.original["total"] for f in done))  # type: ignore[index]
    if decision:
        rr.adjusted_total = rr.presentation = rr.total = 0.0
    return rr


@dataclass
class Results:
    """Everything derived from a division's marks."""

    rounds: dict[str, dict[int, RoundResult]]
    placement: dict[str, Any]
    pending: dict[str, list[int]]
    match_complete: dict[str, list[bool]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def round_matches_complete(self, round_: str) -> bool:
        flags = self.match_complete.get(round_)
        return bool(flags) and all(flags)


def rank(results: dict[int, RoundResult], order: list[int]) -> list[int]:
    """Complete athletes best first: decision, adjusted total, presentation, total; then order."""
    position = {a: i for i, a in enumerate(order)}
    done = [a for a in order if results[a].complete]
    return sorted(done, key=lambda a: (results[a].rank_key(), position[a]))


def annotate_ties(results: dict[int, RoundResult], placed: list[int]) -> None:
    for a in placed:
        results[a].tb = []
    for i, a in enumerate(placed):
        ra = results[a]
        for b in placed[i + 1:]:
            rb = results[b]
            if ra.adjusted_total != rb.adjusted_total or ra.adjusted_total == 0:
                continue
            for r in (ra, rb):
                _set_tb(r, 0, r.presentation)
            if ra.presentation == rb.presentation:
                for r in (ra, rb):
                    _set_tb(r, 1, r.total)
                if ra.total == rb.total:
                    for r in (ra, rb):
                        _set_tb(r, 2, TIE_MATCH)


def _set_tb(r: RoundResult, i: int, value: Any) -> None:
    while len(r.tb) <= i:
        r.tb.append(None)
    r.tb[i] = value


def compute(div: Division) -> Results:
    rounds: dict[str, dict[int, RoundResult]] = {}
    placement: dict[str, Any] = {}
    pending: dict[str, list[int]] = {}
    for round_, order in div.order.items():
        if not order:
            continue
        res = {a: round_result(div, a, round_) for a in order}
        placed = rank(res, order)
        if not bracket.is_bracket_round(div.method, round_):
            annotate_ties(res, placed)
        rounds[round_] = res
        placement[round_] = placed
        pending[round_] = [a for a in order if not res[a].complete]
    results = Results(rounds=rounds, placement=placement, pending=pending)
    if bracket.uses_brackets(div.method):
        judge_matches(div, results)
    return results


# -- single elimination and side by side (the rules are in bracket.py) ---------------

def bracket_rounds(div: Division) -> list[str]:
    """The division's bracket rounds that have athletes or a bracket (one of byes only), in order."""
    built = div.matches if isinstance(div.matches, dict) else {}
    return [r for r in div.rounds() if bracket.is_bracket_round(div.method, r) and (div.order.get(r) or r in built)]


def judge_matches(div: Division, results: Results) -> None:
    """Build each bracket round's matches once (then reuse them), decide winners, place by wins.

    A complete match gets its `winner` at once (upstream only on the next request); a cached
    winner of a match that is no longer complete is kept, as upstream writes it. The tie-break
    annotation (`tb`) is between the two contestants of a match only.
    """
    matches = div.matches if isinstance(div.matches, dict) else {}
    for round_ in bracket_rounds(div):
        if round_ in matches and not bracket.well_formed(matches[round_], round_, len(div.athletes)):
            del matches[round_]  # unusable (hand-edited?): built again from the order
        if round_ not in matches:
            try:
                bracket.check_size(div.name, round_, len(div.order.get(round_, [])))
            except bracket.BracketError as e:
                results.errors.append(str(e))
                continue
            matches[round_] = bracket.build_matches(div.order[round_], round_)
        res = results.rounds.get(round_, {})
        flags = []
        for m in matches[round_]:
            done, winner = bracket.decide(m, res)
            flags.append(done)
            if done:
                m["winner"] = winner
                if len(bracket.present(m)) == 2:
                    annotate_ties(res, bracket.present(m))
        results.match_complete[round_] = flags
    div.matches = matches or None
    rounds = bracket_rounds(div)
    upto = rounds[: rounds.index(div.round) + 1] if div.round in rounds else rounds
    names = [a.name for a in div.athletes]
    groups = bracket.placement_groups(upto, matches, names)
    for round_ in rounds:
        if round_ in groups:
            results.placement[round_] = groups[round_]
        elif round_ in div.placement:
            results.placement[round_] = div.placement[round_]  # kept from the file, as upstream
        else:
            results.placement.pop(round_, None)


def first_round(athletes: int) -> str:
    """Cutoff's first round by field size (the server rule: 20 athletes is a prelim)."""
    if athletes >= 20:
        return "prelim"
    if athletes >= 9:
        return "semfin"
    return "finals"


def first_round_for(method: Any, athletes: int) -> str:
    """The round a new division starts in: by field size for cutoff, se and sbs; for a combination
    that rule where the map has the round, else the map's first round."""
    if isinstance(method, dict):
        rounds = bracket.candidate_rounds(method)
        if not rounds:
            return first_round(athletes)
        if bracket.is_bracket_round(method, rounds[0]):
            by_size = bracket.first_round(athletes) if athletes <= 256 else rounds[0]
        else:
            by_size = first_round(athletes)
        return by_size if by_size in rounds else rounds[0]
    if bracket.uses_brackets(method):
        return bracket.first_round(athletes)
    return first_round(athletes)


class Method(Protocol):
    name: str

    def advance(self, div: Division, results: Results, rng: random.Random) -> bool: ...

    def next_round(self, div: Division, round_: str) -> str | None: ...


class Cutoff:
    """prelim -> semfin (top half, random order) -> finals (top 8, reverse rank)."""

    name = "cutoff"

    def next_round(self, div: Division, round_: str) -> str | None:
        rounds = div.rounds() if isinstance(div.method, dict) else [r for r in CUTOFF_ROUNDS if r in div.rounds()]
        if round_ not in rounds:
            return None
        i = rounds.index(round_)
        return rounds[i + 1] if i + 1 < len(rounds) else None

    def advance(self, div: Division, results: Results, rng: random.Random) -> bool:
        """Fill the next round's order once every athlete of a round is complete."""
        changed = False
        n = len(div.athletes)
        for round_ in CUTOFF_ROUNDS:
            order = div.order.get(round_)
            if not order or round_ not in results.pending or results.pending[round_]:
                continue
            if div.flight is not None and round_ == "prelim":
                if div.flight.get("state") != "merged" and div.flight.get("state") != "complete":
                    div.flight["state"] = "complete"
                    changed = True
                continue
            nxt = self.next_round(div, round_)
            if nxt is None or div.order.get(nxt):
                continue
            eligible = [a for a in results.placement[round_] if not results.rounds[round_][a].decision]
            if round_ == "prelim":
                chosen = eligible[: math.floor((n - 1) / 2) + 1]
                rng.shuffle(chosen)
            else:
                chosen = eligible[: min(8, n)]
                if nxt == "finals":  # into a bracket round they go in rank order (1-8, 2-7, ...)
                    chosen.reverse()
            if not chosen:
                continue
            div.order[nxt] = chosen
            for a in chosen:
                div.form_scores(a, nxt)
            changed = True
        return changed


class Elimination:
    """se and sbs: when every match of the current round is complete, its winners (in match
    order, a null winner as a bye) become the next round's order and bracket in the same write."""

    def __init__(self, name: str) -> None:
        self.name = name

    def next_round(self, div: Division, round_: str) -> str | None:
        rounds = div.rounds()
        i = rounds.index(round_) if round_ in rounds else len(rounds)
        return rounds[i + 1] if i + 1 < len(rounds) else None

    def advance(self, div: Division, results: Results, rng: random.Random) -> bool:
        round_ = div.round
        nxt = self.next_round(div, round_)
        built = div.matches if isinstance(div.matches, dict) else {}
        if nxt is None or div.order.get(nxt) or nxt in built or not results.round_matches_complete(round_):
            return False
        slots = bracket.winners_in_order(div.matches[round_])
        if bracket.is_bracket_round(div.method, nxt):
            bracket.check_size(div.name, nxt, len(slots))
            div.matches[nxt] = bracket.build_matches(slots, nxt)
        div.order[nxt] = [a for a in slots if a is not None]
        for a in div.order[nxt]:
            div.form_scores(a, nxt)
        return True


METHODS: dict[str, Method] = {"cutoff": Cutoff(), "se": Elimination("se"), "sbs": Elimination("sbs")}


def method_for(div: Division, round_: str | None = None) -> Method:
    """The rules for a division (or one of its rounds); unknown methods fall back to cutoff."""
    name = div.method
    if isinstance(name, dict):
        name = name.get(round_ or div.round, "cutoff")
    return METHODS.get(str(name), METHODS["cutoff"])


def refresh(div: Division, rng: random.Random) -> Results:
    """Recompute, advance if due, recompute; store placement in the header as upstream."""
    results = compute(div)
    if method_for(div).advance(div, results, rng):
        results = compute(div)
    div.placement = {r: list(p) for r, p in results.placement.items()}
    return results


def match_complete(div: Division, results: Results, round_: str, match: dict[str, Any]) -> bool:
    """Whether the present athletes of a match all have a complete round score."""
    res = results.rounds.get(round_, {})
    return all(a in res and res[a].complete for a in bracket.present(match))


# -- JSON shape (spec §11) ------------------------------------------------------

def score_json(s: Score, complete: bool, flags: dict[str, bool] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "major": s.major, "minor": s.minor, "rhythm": s.rhythm, "power": s.power, "ki": s.ki,
        "complete": complete, "started": s.started,
    }
    if complete:
        out["accuracy"] = r3(accuracy(s))
        out["presentation"] = r3(presentation(s))
    if flags is not None:
        out.update(flags)
    return out


def form_json(form: FormScore, res: FormResult, judges: int) -> dict[str, Any]:
    slots = form.judges[:judges] + [Score() for _ in range(judges - len(form.judges))]
    out: dict[str, Any] = {
        "judge": [
            score_json(s, res.judge_complete[j], res.flags[j] if res.flags else None) for j, s in enumerate(slots)
        ],
        "complete": res.complete,
        "started": res.started,
    }
    if form.penalty is not None:
        out["penalty"] = dict(form.penalty)
    if form.decision:
        out["decision"] = dict(form.decision)
    if res.adjusted is not None:
        out["adjusted"] = dict(res.adjusted)
        out["original"] = dict(res.original or {})
    return out


def round_json(div: Division, athlete: int, round_: str, rr: RoundResult) -> dict[str, Any]:
    forms = div.athletes[athlete].scores.get(round_, [])
    adjusted: dict[str, Any] = {"accuracy": rr.accuracy, "presentation": rr.presentation, "total": rr.adjusted_total}
    if rr.decision:
        adjusted["decision"] = rr.decision
    return {
        "forms": [
            form_json(forms[k] if k < len(forms) else FormScore(), fr, div.judges) for k, fr in enumerate(rr.forms)
        ],
        "adjusted": adjusted,
        "total": rr.total,
        "complete": rr.complete,
        "started": rr.started,
        "tb": list(rr.tb),
    }


def division_json(div: Division, results: Results, ring: int | str, extra: dict[str, Any] | None = None
                  ) -> dict[str, Any]:
    """The division object every client receives (numbers as numbers, flags as booleans)."""
    athletes = []
    for i, athlete in enumerate(div.athletes):
        scores = {
            round_: round_json(div, i, round_, res[i]) for round_, res in results.rounds.items() if i in res
        }
        athletes.append({"name": athlete.name, "id": i, "info": dict(athlete.info), "scores": scores})
    out: dict[str, Any] = {
        "name": div.name,
        "description": div.description,
        "ring": ring,
        "judges": div.judges,
        "state": div.state,
        "current": div.current,
        "form": div.form,
        "round": div.round,
        "rounds": div.rounds(),
        "forms": {r: list(f) for r, f in div.forms.items()},
        "order": {r: list(o) for r, o in div.order.items() if o},
        "placement": {r: list(p) for r, p in results.placement.items()},
        "pending": {r: list(p) for r, p in results.pending.items()},
        "tiebreakers": {},
        "athletes": athletes,
    }
    if div.method != "cutoff":
        out["method"] = div.method
    for key in ("matches", "draws", "flight", "tags", "autopilot"):
        value = getattr(div, key)
        if value is not None:
            out[key] = value
    for key, value in div.extra.items():
        out.setdefault(key, value)
    if extra:
        out.update(extra)
    return out
