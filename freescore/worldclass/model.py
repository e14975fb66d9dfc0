"""The worldclass model: clients and their health, the outcome of a request, and each
tournament's rings and divisions as they are in the data directory.

No reactor and no Autobahn here. A ring's divisions are read from and written
through to its folder (atomically); moving that file I/O into a `store`
module, so that this model is plain state, is the next step.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freescore.poomsae import store
from freescore.poomsae.layout import Layout, ring_folder
from freescore.poomsae.progress import current_divid
from freescore.worldclass import scoring, wire
from freescore.worldclass.divfile import (
    Division,
    DivisionFormatError,
    format_division,
    format_progress,
    parse_division,
    parse_progress,
)
from freescore.worldclass.wire import Ring

FORMS_DIR = "forms-worldclass"
WRITE_KEYS = ("athletes", "description", "flight", "forms", "judges", "matches", "method", "name", "order",
              "ring", "round", "tags")


# -- clients and health ----------------------------------------------------------

HEALTH_INTERVAL = {"strong": 30.0, "good": 15.0, "weak": 5.0, "bad": 1.0}


def health_for(outstanding: int) -> str:
    if outstanding <= 1:
        return "strong"
    if outstanding <= 5:
        return "good"
    if outstanding <= 10:
        return "weak"
    if outstanding <= 20:
        return "bad"
    return "dead"


@dataclass
class Client:
    """One connection's identity and ping bookkeeping (§2, §7)."""

    id: str
    route: wire.Route
    sessid: str | None = None
    outstanding: list[str] = field(default_factory=list)
    pinging: bool = True
    ponged: bool = False

    @property
    def cid(self) -> str:
        return (self.sessid or "")[:4] + "-" + self.id[:4]

    @property
    def role(self) -> str:
        return self.route.role

    @property
    def jid(self) -> int | None:
        return wire.judge_number(self.role)

    @property
    def description(self) -> str:
        j = self.jid
        if j == 0:
            who = "Referee"
        elif j is not None:
            who = f"Judge {j}"
        else:
            who = wire.title_role(self.role)
        return f"{who} ({self.cid})"

    @property
    def health(self) -> str:
        return health_for(len(self.outstanding)) if self.pinging else "n/a"

    def user(self) -> dict[str, Any]:
        return {"cid": self.cid, "role": wire.title_role(self.role), "health": self.health}

    def ping(self, timestamp: str) -> None:
        self.outstanding.append(timestamp)

    def pong(self, timestamp: Any) -> bool:
        """Clear a matching ping; True when the health changed (the first pong always does)."""
        if timestamp not in self.outstanding:
            return False
        before = self.health
        self.outstanding.remove(timestamp)
        first = not self.ponged
        self.ponged = True
        return first or self.health != before

    def next_interval(self) -> float | None:
        """Seconds to the next ping after a pong, or None to stop (dead or stopped)."""
        if not self.pinging:
            return None
        return HEALTH_INTERVAL.get(self.health)


def users_list(clients: list[Client]) -> list[dict[str, Any]]:
    return [c.user() for c in sorted(clients, key=lambda c: (c.role, c.cid))]


# -- outcome of a request ---------------------------------------------------------

@dataclass
class Out:
    """One frame to send: `kind` division|ring|raw, to the `group`, the `sender` or `ring:<n>` (another ring)."""

    kind: str
    target: str
    payload: Any
    type: str = "division"
    request: Any = None


@dataclass
class AutopilotToken:
    gen: int
    divid: str
    round: str
    current: int
    form: int
    request: dict[str, Any]


@dataclass
class Outcome:
    out: list[Out] = field(default_factory=list)
    arm: AutopilotToken | None = None
    cancel: bool = False


# -- storage -----------------------------------------------------------------------

class History:
    """Every saved version of a division, numbered 1.1, 1.2, ... (RCS is not required).

    Versions live in `<ring dir>/.history/div.<divid>/1.<n>.txt` with a `log` of
    `{number, datetime, description}` lines; the version count is cached per folder.
    """

    _counts: dict[Path, int] = {}

    def __init__(self, ring_dir: Path, divid: str) -> None:
        self.dir = ring_dir / ".history" / f"div.{divid}"

    def entries(self) -> list[dict[str, Any]]:
        log = self.dir / "log"
        if not log.exists():
            return []
        out = []
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def count(self) -> int:
        n = self._counts.get(self.dir)
        if n is None:
            n = self._counts[self.dir] = len(self.entries())
        return n

    def add(self, text: str, description: str, now: float) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        n = self.count() + 1
        number = f"1.{n}"
        (self.dir / f"{number}.txt").write_text(text, encoding="utf-8")
        entry = {"number": number, "datetime": wire.utc_time(now), "description": description}
        with open(self.dir / "log", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        self._counts[self.dir] = n
        return number

    def text(self, number: str) -> str | None:
        if not re.fullmatch(r"1\.\d{1,9}", number):
            return None
        path = self.dir / f"{number}.txt"
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def move_to(self, ring_dir: Path, divid: str) -> None:
        target = ring_dir / ".history" / f"div.{divid}"
        self._counts.pop(self.dir, None)
        self._counts.pop(target, None)
        if self.dir.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(target, ignore_errors=True)
            shutil.move(str(self.dir), str(target))

    def delete(self) -> None:
        self._counts.pop(self.dir, None)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Loaded:
    div: Division
    path: Path
    stamp: tuple[int, int] | None
    results: scoring.Results


class RingState:
    """The divisions of one ring folder (or staging) and its progress.txt, synced with the disk."""

    def __init__(self, tournament: Tournament, ring: Ring) -> None:
        self.t = tournament
        self.ring = ring
        self.dir = tournament.base / ring_folder(ring)
        self.divisions: dict[str, Loaded] = {}
        self.progress: dict[str, str] = {}
        self.progress_stamp: tuple[int, int] | None = None
        self.autopilot_gen = 0
        self.errors: dict[str, str] = {}

    # -- disk ---------------------------------------------------------------
    def sync(self) -> None:
        """Reload what another program changed (mtime/size), drop what it removed."""
        seen = set()
        for divid, (path, stamp) in store.scan_divisions(self.t.layout, self.dir).items():
            seen.add(divid)
            loaded = self.divisions.get(divid)
            if loaded is None or loaded.stamp != stamp:
                self._load(divid, path, stamp)
        for divid in list(self.divisions):
            if divid not in seen and id(self.divisions[divid]) not in self.t.dirty:
                del self.divisions[divid]
        self.divisions = dict(sorted(self.divisions.items()))
        path = self.dir / "progress.txt"
        stamp = store.stamp(path)
        if stamp != self.progress_stamp:
            self.progress = parse_progress(path.read_text(encoding="utf-8")) if stamp else {}
            self.progress_stamp = stamp

    def _load(self, divid: str, path: Path, stamp: tuple[int, int]) -> None:
        try:
            div = parse_division(path.read_text(encoding="utf-8"), divid)
        except (DivisionFormatError, UnicodeDecodeError, OSError) as e:
            self.errors[divid] = str(e)
            self.divisions.pop(divid, None)
            return
        self.errors.pop(divid, None)
        results = scoring.compute(div)
        self.divisions[divid] = Loaded(div=div, path=path, stamp=stamp, results=results)

    def save(self, loaded: Loaded, description: str, now: float) -> None:
        """Recompute and advance now; the write happens at the next `flush` (before any broadcast)."""
        loaded.results = scoring.refresh(loaded.div, self.t.rng)
        pending = self.t.dirty.get(id(loaded))
        if pending is None:
            self.t.dirty[id(loaded)] = (self, loaded, [description], now)
        else:
            pending[2].append(description)

    def commit(self, loaded: Loaded, descriptions: list[str], now: float) -> None:
        """Write the division atomically and keep the version."""
        text = format_division(loaded.div)
        self.dir.mkdir(parents=True, exist_ok=True)
        history = History(self.dir, loaded.div.name)
        if not history.count() and loaded.path.exists():
            history.add(loaded.path.read_text(encoding="utf-8"), loaded.div.description, now)
        loaded.stamp = store.write_file(loaded.path, text)
        history.add(text, "; ".join(dict.fromkeys(descriptions)), now)

    def save_progress(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.progress_stamp = store.write_file(self.dir / "progress.txt", format_progress(self.progress))

    # -- state --------------------------------------------------------------
    def current_divid(self) -> str | None:
        return current_divid(self.progress, self.divisions)

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
            "file": str(self.dir / "progress.txt"), "path": str(self.dir),
        })
        draws = self.t.base / "draws.json"
        if draws.is_file():
            try:
                out["draws"] = json.loads(draws.read_text(encoding="utf-8"))
            except ValueError:
                pass
        return out

    def new_path(self, divid: str) -> Path:
        return self.dir / self.t.layout.division_file(divid)


class Tournament:
    """One `<db>`: its rings, staging and draws, with mutations serialised by the caller's reactor."""

    def __init__(self, root: Path, db: str, rng: random.Random | None = None) -> None:
        self.root = root.resolve()
        self.db = db
        self.layout = Layout(self.root, FORMS_DIR)
        self.base = store.tournament_folder(self.layout, db)
        self.rng = rng or random.Random()
        self.rings: dict[Ring, RingState] = {}
        self.dirty: dict[int, tuple[RingState, Loaded, list[str], float]] = {}

    def flush(self) -> None:
        """Write every division changed since the last flush (one atomic write each).

        Raises SaveError when a write fails; the caller must then drop this tournament
        (its memory holds changes the disk does not) and answer the requesters with an error.
        """
        while self.dirty:
            _, (state, loaded, descriptions, now) = self.dirty.popitem()
            if state.divisions.get(loaded.div.name) is loaded:
                try:
                    state.commit(loaded, descriptions, now)
                except Exception as e:  # disk full, folder gone, ...: nothing of it may be broadcast
                    raise SaveError(self.db, e) from e

    def ring(self, ring: Ring) -> RingState:
        state = self.rings.get(ring)
        if state is None:
            state = self.rings[ring] = RingState(self, ring)
        state.sync()
        return state

    def all_rings(self) -> list[Ring]:
        return list(store.ring_numbers(self.base))


class UnknownRequest(Exception):
    """No handler: upstream logs it and answers nothing."""


class SaveError(Exception):
    """Writing a tournament's files failed (disk full, folder gone ...): the change is not saved."""

    def __init__(self, db: str, error: Exception) -> None:
        super().__init__(db, error)
        self.db = db
        self.error = error

    @property
    def message(self) -> str:
        """For the requester's error frame: the tournament and the OS reason, no paths."""
        reason = getattr(self.error, "strerror", None) or type(self.error).__name__
        return f"could not save the changes to tournament '{self.db}': {reason}"
