"""The worldclass model: clients and their health, the outcome of a request, and each
tournament's rings and divisions as plain state.

No reactor, no Autobahn and no file access here: a `Tournament` is handed a
`WorldclassStore` (store.py) that reads ring folders into it and writes what
`flush` commits; the rules only ever call that object.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from freescore.poomsae.ids import SaveError as SaveError
from freescore.poomsae.ids import UnknownRequest as UnknownRequest
from freescore.poomsae.rings import RingFolder
from freescore.poomsae.users import Client as Client
from freescore.worldclass import scoring
from freescore.worldclass.divfile import Division
from freescore.worldclass.wire import Ring

if TYPE_CHECKING:
    from freescore.worldclass.store import WorldclassStore

NO_DRAWS = object()
"""What the store answers for a tournament without a readable draws.json."""
WRITE_KEYS = ("athletes", "description", "flight", "forms", "judges", "matches", "method", "name", "order",
              "ring", "round", "tags")


# -- autopilot -------------------------------------------------------------------------

@dataclass
class AutopilotToken:
    """Where the ring was when a score completed a form; a step finding it elsewhere does nothing."""

    gen: int
    divid: str
    round: str
    current: int
    form: int
    request: dict[str, Any]


@dataclass
class AutopilotStep:
    """The payload of the ring's autopilot timer: which step runs next, for which token."""

    token: AutopilotToken
    step: str


# -- rings and tournaments -----------------------------------------------------------

@dataclass
class Loaded:
    div: Division
    path: Path
    stamp: tuple[int, int] | None
    results: scoring.Results


class RingState(RingFolder):
    """The divisions of one ring folder (or staging) and its progress.txt, as the store last read them."""

    def __init__(self, tournament: Tournament, ring: Ring) -> None:
        super().__init__(tournament.store.layout, tournament.base, ring)
        self.t = tournament

    def keep_unsaved(self, entry: Any) -> bool:
        return id(entry) in self.t.dirty

    def save(self, loaded: Loaded, description: str, now: float) -> None:
        """Recompute and advance now; the write happens at the next `flush` (before any broadcast)."""
        loaded.results = scoring.refresh(loaded.div, self.t.rng)
        pending = self.t.dirty.get(id(loaded))
        if pending is None:
            self.t.dirty[id(loaded)] = (self, loaded, [description], now)
        else:
            pending[2].append(description)

    def save_progress(self) -> None:
        self.t.store.save_progress(self)

    # -- state --------------------------------------------------------------
    def division_json(self, loaded: Loaded) -> dict[str, Any]:
        return scoring.division_json(loaded.div, loaded.results, self.ring,
                                     {"file": str(loaded.path), "path": str(self.dir)})

    def ring_json(self, ring_text: str) -> dict[str, Any]:
        divisions = [self.division_json(ld) for ld in self.divisions.values()]
        if self.ring != "staging":
            staging = self.t.ring("staging")
            divisions += [staging.division_json(ld) for ld in staging.divisions.values()]
        out: dict[str, Any] = {k: v for k, v in self.progress.items() if k not in ("current", "name")}
        out.update({
            "name": ring_text, "current": self.current_divid(), "divisions": divisions,
            "file": str(self.progress_path), "path": str(self.dir),
        })
        draws = self.t.store.draws(self.t.base)
        if draws is not NO_DRAWS:
            out["draws"] = draws
        return out


class Tournament:
    """One `<db>`: its rings, staging and draws, with mutations serialised by the caller's reactor.

    A ring is read from its folder once per request (`begin()` starts one), not on every access.
    """

    def __init__(self, store: WorldclassStore, db: str, rng: random.Random | None = None) -> None:
        self.store = store
        self.db = db
        self.base = store.tournament_folder(db)
        self.rng = rng or random.Random()
        self.rings: dict[Ring, RingState] = {}
        self.synced: set[Ring] = set()
        self.dirty: dict[int, tuple[RingState, Loaded, list[str], float]] = {}

    def begin(self) -> None:
        """A new request or autopilot step: each ring it touches is re-read (changed files only) once."""
        self.synced.clear()

    def flush(self) -> None:
        """Write every division changed since the last flush (one atomic write each).

        Raises SaveError when a write fails; the caller must then drop this tournament
        (its memory holds changes the disk does not) and answer the requesters with an error.
        """
        while self.dirty:
            _, (state, loaded, descriptions, now) = self.dirty.popitem()
            if state.divisions.get(loaded.div.name) is loaded:
                try:
                    self.store.commit(state, loaded, descriptions, now)
                except Exception as e:  # disk full, folder gone, ...: nothing of it may be broadcast
                    raise SaveError(self.db, e) from e

    def ring(self, ring: Ring) -> RingState:
        state = self.rings.get(ring)
        if state is None:
            state = self.rings[ring] = RingState(self, ring)
        if ring not in self.synced:
            self.store.load(state)
            self.synced.add(ring)
        return state

    def all_rings(self) -> list[Ring]:
        return list(self.store.rings(self.base))
