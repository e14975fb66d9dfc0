"""Tournaments and their ring folders in memory (pure): what a FreeScore service's rules work on.

`Tournaments` holds every tournament in use, each a `Tournament` of
`RingFolder`s. The disk is the store's (`store.DataStore`, handed in; only it
touches files): a ring is re-read (changed files only) the first time a
request uses it (`Tournament.begin()` starts a request), and a changed
division is written at `flush()`, which the service calls once per batch
before anything is sent (group commit). A failed write raises `SaveError`
and the tournament is forgotten, so memory never holds what the disk does not.

A service extends `RingFolder` with its JSON (worldclass: `division_json`,
`ring_json`), sets `Tournament.ring_class`, and `Tournaments.tournament_class`.

A `RingFolder`:

    divisions      {divid: entry}, sorted by divid; an entry has at least `path` and `stamp`
    progress       progress.txt's keys; `current_divid()` applies the shared rule
    errors         {divid: (stamp, why its file could not be read)}: left out, re-read once it changes
    autopilot_gen  bumped by every manual change: an autopilot step armed before it is stale
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from freescore.poomsae.ids import Ring, SaveError
from freescore.poomsae.layout import PROGRESS, Layout, ring_folder
from freescore.poomsae.progress import current_divid

Stamp = tuple[int, int]


D = TypeVar("D")
R = TypeVar("R")


@dataclass
class Loaded(Generic[D, R]):
    """A division as read (or made): the parsed file, where it lives, its stamp when read or written,
    and what the service derives from it (worldclass: scoring results)."""

    div: D
    path: Path
    stamp: Stamp | None
    results: R | None = None


class TournamentStore(Protocol):
    """What a Tournament asks of its store (a `store.DataStore` subclass gives all of it)."""

    layout: Layout

    def tournament_exists(self, db: str) -> bool: ...
    def tournament_folder(self, db: str) -> Path: ...
    def rings(self, base: Path) -> list[int]: ...
    def load(self, ring: Any) -> None: ...
    def commit(self, ring: Any, entry: Any, descriptions: list[str], now: float) -> None: ...
    def save_progress(self, ring: Any) -> None: ...


class RingFolder:
    """One ring folder (or staging) of one tournament, as last read or changed."""

    def __init__(self, tournament: Tournament, ring: Ring) -> None:
        self.t = tournament
        self.layout = tournament.store.layout
        self.ring = ring
        self.dir = tournament.base / ring_folder(ring)
        self.divisions: dict[str, Any] = {}
        self.progress: dict[str, str] = {}
        self.progress_stamp: Stamp | None = None
        self.errors: dict[str, tuple[Stamp, str]] = {}
        self.autopilot_gen = 0

    @property
    def progress_path(self) -> Path:
        return self.dir / PROGRESS

    def new_path(self, divid: str) -> Path:
        """Where division `divid` of this ring lives (or will)."""
        return self.dir / self.layout.division_file(divid)

    def current_divid(self) -> str | None:
        return current_divid(self.progress, self.divisions)

    def keep_unsaved(self, entry: Any) -> bool:
        """Whether a division no longer on disk stays: it has changes not yet written."""
        return id(entry) in self.t.dirty

    def mark(self, divid: str, entry: Any, description: str, now: float) -> None:
        """Division `divid` changed: it is written at the tournament's next `flush` (before any broadcast)."""
        pending = self.t.dirty.get(id(entry))
        if pending is None:
            self.t.dirty[id(entry)] = (self, divid, entry, [description], now)
        else:
            pending[3].append(description)

    def save_progress(self) -> None:
        """Write progress.txt now (a ring navigation is not batched); SaveError when the disk refuses."""
        try:
            self.t.store.save_progress(self)
        except OSError as e:
            raise SaveError(self.t.db, e) from e

    def sort(self) -> None:
        self.divisions = dict(sorted(self.divisions.items()))


class Tournament:
    """One `<db>`: its rings and staging, with mutations serialised by the caller's reactor."""

    ring_class: ClassVar[type[RingFolder]] = RingFolder

    def __init__(self, store: TournamentStore, db: str, rng: random.Random | None = None) -> None:
        self.store = store
        self.db = db
        self.base = store.tournament_folder(db)
        self.rng = rng or random.Random()
        self.rings: dict[Ring, Any] = {}
        self.synced: set[Ring] = set()
        self.dirty: dict[int, tuple[Any, str, Any, list[str], float]] = {}

    def begin(self) -> None:
        """A new request or timer step: each ring it touches is re-read (changed files only) once."""
        self.synced.clear()

    def ring(self, ring: Ring) -> Any:
        state = self.rings.get(ring)
        if state is None:
            state = self.rings[ring] = self.ring_class(self, ring)
        if ring not in self.synced:
            self.store.load(state)
            self.synced.add(ring)
        return state

    def all_rings(self) -> list[Ring]:
        """The tournament's numbered rings, as their folders say."""
        return list(self.store.rings(self.base))

    def flush(self) -> None:
        """Write every division changed since the last flush (one atomic write each).

        Raises SaveError when a write fails; the caller must then forget this tournament
        (its memory holds changes the disk does not) and answer the requesters with an error.
        """
        while self.dirty:
            _, (state, divid, entry, descriptions, now) = self.dirty.popitem()
            if state.divisions.get(divid) is entry:
                try:
                    self.store.commit(state, entry, descriptions, now)
                except Exception as e:  # disk full, folder gone, ...: nothing of it may be broadcast
                    raise SaveError(self.db, e) from e


class Tournaments:
    """Every tournament in use under one data root; what a service's rules extend with `handle`."""

    tournament_class: ClassVar[type[Tournament]] = Tournament

    def __init__(self, store: TournamentStore, rng: random.Random | None = None) -> None:
        self.store = store
        self.rng = rng or random.Random()
        self.tournaments: dict[str, Any] = {}

    def tournament(self, db: str) -> Any:
        """The tournament's model; its rings are re-read (changed files only) on first use by this call."""
        t = self.tournaments.get(db)
        if t is None:
            t = self.tournaments[db] = self.tournament_class(self.store, db, self.rng)
        t.begin()
        return t

    def exists(self, db: str) -> bool:
        """Whether `<root>/<db>` is a folder (a tournament someone set up, not just a name in a URL)."""
        return self.store.tournament_exists(db)

    def drop(self, db: str) -> None:
        """Forget a tournament's model (its files stay); pending changes are written first.

        A SaveError still drops it: the next use re-reads the disk.
        """
        t = self.tournaments.get(db)
        if t is None:
            return
        try:
            t.flush()
        finally:
            self.tournaments.pop(db, None)

    def forget(self, db: str) -> None:
        """Drop a tournament's model without writing (after a failed request: re-read the files)."""
        self.tournaments.pop(db, None)

    def flush(self) -> dict[str, SaveError]:
        """Write every tournament's pending changes; returns the ones that failed (already forgotten)."""
        failed: dict[str, SaveError] = {}
        for db, t in list(self.tournaments.items()):
            try:
                t.flush()
            except SaveError as e:
                failed[db] = e
                self.forget(db)
        return failed
