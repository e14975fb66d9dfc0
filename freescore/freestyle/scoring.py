"""Freestyle scoring math (pure, spec §12): one athlete's round from its judges' scores.

Judges send component values as strings ("0.7") and deductions as JS numbers;
both are parsed here and never rewritten, so the file keeps what the tablet
sent. Totals are computed in a fixed order (components by key, judges by
index) so that the same scores give the same bits whatever order they arrived in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

TECHNICAL = ("basic", "mft1", "mft2", "mft3", "mft4", "mft5")
"""Sorted: the order upstream sums them in."""
PRESENTATION = ("choreography", "creativity", "energy", "harmony")
STANCES = ("beomseogi", "dwigubi", "hakdari")
DECISIONS = ("withdraw", "disqualify")


def value(x: Any) -> float:
    """A judge's value as upstream reads it: numbers and numeric strings; anything else is 0."""
    if isinstance(x, bool) or x is None:
        return 0.0
    if isinstance(x, (int, float)):
        return float(x) if math.isfinite(x) else 0.0
    if isinstance(x, str):
        try:
            v = float(x)
        except ValueError:
            return 0.0
        return v if math.isfinite(v) else 0.0
    return 0.0


def r2(x: float) -> float:
    """C's printf("%.2f") of the double, as a number."""
    return float(f"{x:.2f}") + 0.0


def num15(x: float) -> int | float:
    """What a Perl NV prints as (%.15g): 0.30000000000000004 -> 0.3, 9.0 -> 9."""
    v = float(f"{x:.15g}") + 0.0
    if not math.isfinite(v):
        return x  # the largest doubles round up past the range
    return int(v) if v.is_integer() and abs(v) < 1e15 else v


def perl_numbers(value: Any) -> Any:
    """`value` with every float as a Perl NV prints it, and non-finite floats (not JSON) as null."""
    if isinstance(value, float):
        return num15(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: perl_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [perl_numbers(v) for v in value]
    return value


def _sum(values: Any, keys: tuple[str, ...]) -> float:
    group = values if isinstance(values, dict) else {}
    total = 0.0
    for key in keys:
        total += value(group.get(key))
    return total


def technical(score: dict[str, Any]) -> float:
    """T_j: the six technical components minus the judge's major and minor deductions."""
    d = score.get("deductions") if isinstance(score.get("deductions"), dict) else {}
    return _sum(score.get("technical"), TECHNICAL) - (value(d.get("major")) + value(d.get("minor")))


def presentation(score: dict[str, Any]) -> float:
    """P_j: the four presentation components."""
    return _sum(score.get("presentation"), PRESENTATION)


def penalty_total(penalty: Any) -> float:
    """Every numeric value awarded counts, misconduct included (upstream; §20 Q1)."""
    if not isinstance(penalty, dict):
        return 0.0
    total = 0.0
    for key in sorted(penalty):
        total += value(penalty[key])
    return total


def _close(a: float, b: float) -> bool:
    return abs(a - b) < 1e-9


def dropped(values: list[float]) -> tuple[int, int]:
    """The judges whose subtotals are dropped: the first lowest and the first highest (§12, §17.9).

    Values are compared with a tolerance, never truncated to tenths; when the
    first lowest is also the first highest (all equal) the highest is the next judge.
    """
    low, high = min(values), max(values)
    lo = next(i for i, v in enumerate(values) if _close(v, low))
    hi = next(i for i, v in enumerate(values) if _close(v, high))
    if lo == hi:
        hi = lo + 1
    return lo, hi


@dataclass(frozen=True)
class RoundScore:
    """An athlete's result in one round (spec §11-§12); `complete` False means zero-filled."""

    complete: bool
    decision: str | None = None
    technical: float = 0.0
    presentation: float = 0.0
    total: float = 0.0
    original_technical: float = 0.0
    original_presentation: float = 0.0
    low: tuple[int, int] | None = None
    """Judge indexes dropped as lowest (technical, presentation), only with more than 3 judges."""
    high: tuple[int, int] | None = None

    def rank_key(self) -> tuple[int, float, float, float]:
        """Sorts best first: no decision < withdraw < disqualify, then total, technical, original (§13)."""
        decided = 1 + DECISIONS.index(self.decision) if self.decision in DECISIONS else 0
        original = self.original_technical + self.original_presentation
        return (decided, -r2(self.total), -r2(self.technical), -r2(original))

    def original_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"major": 0, "minor": 0, "technical": 0, "presentation": 0}
        if self.complete:
            t, p = self.original_technical, self.original_presentation
            out.update(technical=num15(t), presentation=num15(p), total=num15(t + p))
        return out

    def adjusted_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"major": 0, "minor": 0, "technical": 0, "presentation": 0}
        if self.complete:
            out.update(technical=num15(self.technical), presentation=num15(self.presentation),
                       total=num15(self.total))
        if self.low is not None and self.high is not None:
            out["min"] = {"technical": self.low[0], "presentation": self.low[1]}
            out["max"] = {"technical": self.high[0], "presentation": self.high[1]}
        return out


def full_panel(scores: Any, judges: int) -> list[dict[str, Any]] | None:
    """The round's scores when every judge has scored, else None."""
    if not isinstance(scores, list) or len(scores) < judges or judges < 1:
        return None
    panel = scores[:judges]
    return panel if all(isinstance(s, dict) for s in panel) else None


def round_score(scores: Any, judges: int, penalty: Any = None, decision: Any = None) -> RoundScore:
    """Score one athlete's round: complete when all `judges` scored or a decision was awarded.

    A decided athlete without a full panel scores 0 (it ranks after everyone anyway).
    """
    decision = decision if decision in DECISIONS else None
    panel = full_panel(scores, judges)
    if panel is None:
        return RoundScore(complete=decision is not None, decision=decision)
    ts = [technical(s) for s in panel]
    ps = [presentation(s) for s in panel]
    orig_t = orig_p = 0.0
    for t, p in zip(ts, ps, strict=True):
        orig_t += t
        orig_p += p
    low = high = None
    if judges > 3:
        lt, ht = dropped(ts)
        lp, hp = dropped(ps)
        low, high = (lt, lp), (ht, hp)
        adj_t = r2((orig_t - ts[lt] - ts[ht]) / (judges - 2))
        adj_p = r2((orig_p - ps[lp] - ps[hp]) / (judges - 2))
    else:
        adj_t, adj_p = r2(orig_t / judges), r2(orig_p / judges)
    total = max(0.0, adj_t + adj_p - penalty_total(penalty))
    return RoundScore(True, decision, adj_t, adj_p, total, orig_t, orig_p, low, high)
