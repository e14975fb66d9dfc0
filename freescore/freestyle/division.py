"""One freestyle division (pure, spec §10-§14): the JSON object the pages draw and the file holds.

The object is kept as JSON (unknown keys survive a round trip); `recompute`
restores the defaults a reader may rely on and derives every total,
placement and pending list from the stored scores, penalties and decisions,
so nothing computed is ever trusted from a file. Every change goes through a
method here and is followed by `recompute`.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from freescore.freestyle.rounds import ROUNDS, advancing, first_round, next_round, prev_round, rank
from freescore.freestyle.scoring import DECISIONS, RoundScore, round_score

T = TypeVar("T")
DEFAULT_JUDGES = 5
DEFAULT_PLACES = ({"place": 1, "medals": 1}, {"place": 2, "medals": 1}, {"place": 3, "medals": 2})
STATES = ("score", "display", "list")
RECOMPUTED = ("placements", "pending")
"""Keys a `division write` may send that are derived, not kept (`file` and `path` come from the location)."""


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return default


class Header(Generic[T]):
    """A header key of the division object, as an attribute: `div.current = 2` sets `data["current"]`."""

    def __init__(self, key: str, kind: Callable[[Any], T]) -> None:
        self.key, self.kind = key, kind

    def __get__(self, div: Division, owner: type | None = None) -> T:
        return self.kind(div.data[self.key])

    def __set__(self, div: Division, value: T) -> None:
        div.data[self.key] = value


class Division:
    """A division and its computed results; `data` is the object as broadcast and written.

    `path` and `stamp` are where the store found the file and its (mtime, size) then.
    """

    path: Any = None
    stamp: Any = None

    def __init__(self, data: dict[str, Any], name: str, file: str, ring: int | str,
                 rng: random.Random | None = None) -> None:
        self.data = data
        self.rng = rng or random.Random()
        self.results: dict[str, dict[int, RoundScore]] = {}
        data["name"] = name
        data["file"] = file
        data["path"] = ""
        data.setdefault("ring", str(ring))
        data.pop("autopilot", None)  # no autopilot step outlives a reload (its timer is the service's)
        self.recompute()

    # -- the header (read and written through `data`) -------------------------------
    name = Header("name", str)
    judges = Header("judges", int)
    round = Header("round", str)
    current = Header("current", int)
    state = Header("state", str)

    @property
    def athletes(self) -> list[dict[str, Any]]:
        return self.data["athletes"]

    def order(self, round_: str | None = None) -> list[int]:
        return list(self.data["order"].get(round_ or self.round) or [])

    @property
    def autopilot(self) -> bool:
        return "autopilot" in self.data

    @autopilot.setter
    def autopilot(self, on: bool) -> None:
        if on:
            self.data["autopilot"] = "on"
        else:
            self.data.pop("autopilot", None)

    # -- restoring defaults and computing ----------------------------------------------
    def _defaults(self) -> None:
        d = self.data
        d["athletes"] = [a if isinstance(a, dict) else {"name": "" if a is None else str(a)}
                         for a in (d.get("athletes") if isinstance(d.get("athletes"), list) else [])]
        n = len(d["athletes"])
        judges = _int(d.get("judges"), DEFAULT_JUDGES)
        d["judges"] = judges if 1 <= judges <= 99 else DEFAULT_JUDGES
        if not d.get("state") or not isinstance(d["state"], str):
            d["state"] = "display"
        if not isinstance(d.get("places"), list):
            d["places"] = [dict(p) for p in DEFAULT_PLACES]
        if d.get("round") not in ROUNDS:
            d["round"] = first_round(n)
        order = d.get("order") if isinstance(d.get("order"), dict) else {}
        d["order"] = {r: _clean_order(order.get(r), n) for r in ROUNDS if r in order}
        current = _int(d.get("current"), 0)
        d["current"] = current if 0 <= current < max(n, 1) else 0

    def _entered(self, round_: str) -> list[int]:
        """The order of a round being entered: everyone, or who advances from the round before."""
        before = prev_round(round_)
        if before is None or not self.data["order"].get(before):
            return list(range(len(self.athletes)))
        decided = {i for i, a in enumerate(self.athletes) if any(
            v in DECISIONS for v in (a.get("decision") or {}).values())}
        return advancing(self.data["placements"].get(before, []), decided, round_, self.rng)

    def recompute(self) -> None:
        """Defaults, the current round's order if it has none (then `current` is its first, §17.4),
        every athlete's results, placements and pending lists (`[]`, never null, §17.12)."""
        self._defaults()
        d = self.data
        d["placements"], d["pending"] = {}, {}
        self.results = {}
        for r in ROUNDS:
            if r == self.round and not d["order"].get(r):
                d["order"][r] = self._entered(r)
                if d["order"][r]:
                    self.current = d["order"][r][0]
            if not d["order"].get(r) and r != self.round:
                continue
            self.results[r] = {i: self._score(a, r) for i, a in enumerate(self.athletes)}
            d["placements"][r], d["pending"][r] = rank(d["order"].get(r, []), self.results[r])
        for i, a in enumerate(self.athletes):
            self._annotate(i, a)

    def _score(self, athlete: dict[str, Any], round_: str) -> RoundScore:
        def of(key: str) -> Any:
            group = athlete.get(key)
            return group.get(round_) if isinstance(group, dict) else None
        return round_score(of("scores"), self.judges, of("penalty"), of("decision"))

    def _annotate(self, index: int, athlete: dict[str, Any]) -> None:
        athlete["id"] = index
        for key in ("complete", "original", "adjusted"):
            athlete[key] = {}
        for key in ("penalty", "scores", "decision"):
            if key in athlete and not isinstance(athlete[key], dict):
                athlete[key] = {}
        athlete.setdefault("penalty", {})
        for r, results in self.results.items():
            rs = results[index]
            if rs.complete:
                athlete["complete"][r] = 1
            athlete["original"][r] = rs.original_json()
            athlete["adjusted"][r] = rs.adjusted_json()
            if rs.decision and not athlete.get("scores", {}).get(r):
                athlete.setdefault("scores", {})[r] = []  # the display iterates them (§17.10)

    # -- queries -----------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The object as it is now, for an update sent after later requests of the same batch changed it."""
        return copy.deepcopy(self.data)

    def result(self, athlete: int, round_: str | None = None) -> RoundScore | None:
        return self.results.get(round_ or self.round, {}).get(athlete)

    def complete(self, athlete: int) -> bool:
        r = self.result(athlete)
        return r is not None and r.complete

    def valid_athlete(self, index: int) -> bool:
        return 0 <= index < len(self.athletes)


def _clean_order(value: Any, athletes: int) -> list[int]:
    """An order list from a file: athlete indexes in range, each once."""
    out: list[int] = []
    for v in value if isinstance(value, list) else []:
        i = _int(v, -1)
        if 0 <= i < athletes and i not in out:
            out.append(i)
    return out


__all__ = ["Division", "STATES", "RECOMPUTED", "next_round"]
