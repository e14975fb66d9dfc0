"""The worldclass model: clients and their health, the outcome of a request, and each
tournament's rings and divisions as plain state.

No reactor, no Autobahn and no file access here: a `Tournament` is handed a
`WorldclassStore` (store.py) that reads ring folders into it and writes what
`flush` commits; the rules only ever call that object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from freescore.poomsae import rings
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

Loaded = rings.Loaded[Division, scoring.Results]
"""A division of a ring: the parsed file, its path and stamp, its scoring results."""


class RingState(RingFolder):
    """The divisions of one ring folder (or staging) and its progress.txt, as the store last read them."""

    t: Tournament

    def save(self, loaded: Loaded, description: str, now: float) -> None:
        """Recompute and advance now; the write happens at the next `flush` (before any broadcast)."""
        loaded.results = scoring.refresh(loaded.div, self.t.rng)
        self.mark(loaded.div.name, loaded, description, now)

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


class Tournament(rings.Tournament):
    """One `<db>`: its rings, staging and draws (`draws.json`, through the store)."""

    ring_class = RingState
    store: WorldclassStore
    rings: dict[Ring, RingState]

    def ring(self, ring: Ring) -> RingState:
        state: RingState = super().ring(ring)
        return state
