"""Worldclass state and rules: one authoritative model per ring, written through to the data directory.

No reactor and no Autobahn here: the adapter passes in the request, the
client and the time, and gets back what to send to whom. Every change is
written (atomically) before `handle` returns, so the adapter's broadcast
always describes what is on disk.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from freescore.persist import write_atomic
from freescore.worldclass import scoring, wire
from freescore.worldclass.divfile import (
    PENALTY_KEYS,
    Athlete,
    Division,
    DivisionFormatError,
    Score,
    format_division,
    format_progress,
    pad,
    parse_division,
    parse_forms,
    parse_progress,
)
from freescore.worldclass.wire import RequestError, Ring

FORMS_DIR = "forms-worldclass"
DIV_FILE = re.compile(r"^div\.([\w.]+)\.txt$")
RING_DIR = re.compile(r"^ring(\d+)$")
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

def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _write(path: Path, text: str) -> tuple[int, int] | None:
    write_atomic(path, text)
    try:
        os.chmod(path, 0o666)
    except OSError:
        pass
    return _stamp(path)


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
        self.dir = tournament.base / ("staging" if ring == "staging" else f"ring{int(ring):02d}")
        self.divisions: dict[str, Loaded] = {}
        self.progress: dict[str, str] = {}
        self.progress_stamp: tuple[int, int] | None = None
        self.autopilot_gen = 0
        self.errors: dict[str, str] = {}

    # -- disk ---------------------------------------------------------------
    def sync(self) -> None:
        """Reload what another program changed (mtime/size), drop what it removed."""
        seen = set()
        if self.dir.is_dir():
            with os.scandir(self.dir) as it:
                for entry in it:
                    m = DIV_FILE.match(entry.name)
                    if not m or not wire.DIVID_RE.match(m.group(1)) or not entry.is_file():
                        continue
                    divid = m.group(1)
                    seen.add(divid)
                    st = entry.stat()
                    stamp = (st.st_mtime_ns, st.st_size)
                    loaded = self.divisions.get(divid)
                    if loaded is None or loaded.stamp != stamp:
                        self._load(divid, Path(entry.path), stamp)
        for divid in list(self.divisions):
            if divid not in seen and id(self.divisions[divid]) not in self.t.dirty:
                del self.divisions[divid]
        self.divisions = dict(sorted(self.divisions.items()))
        path = self.dir / "progress.txt"
        stamp = _stamp(path)
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
        loaded.stamp = _write(loaded.path, text)
        history.add(text, "; ".join(dict.fromkeys(descriptions)), now)

    def save_progress(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.progress_stamp = _write(self.dir / "progress.txt", format_progress(self.progress))

    # -- state --------------------------------------------------------------
    def current_divid(self) -> str | None:
        current = self.progress.get("current", "")
        if current and current != "0" and current in self.divisions:
            return current
        return next(iter(self.divisions), None)

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
        return self.dir / f"div.{divid}.txt"


class Tournament:
    """One `<db>`: its rings, staging and draws, with mutations serialised by the caller's reactor."""

    def __init__(self, root: Path, db: str, rng: random.Random | None = None) -> None:
        wire.check_db(db)
        self.root = root.resolve()
        self.db = db
        self.base = self.root / db / FORMS_DIR
        if not self.base.resolve().is_relative_to(self.root):
            raise RequestError(f"Invalid db '{db}'")
        self.rng = rng or random.Random()
        self.rings: dict[Ring, RingState] = {}
        self.dirty: dict[int, tuple[RingState, Loaded, list[str], float]] = {}

    def flush(self) -> None:
        """Write every division changed since the last flush (one atomic write each)."""
        while self.dirty:
            _, (state, loaded, descriptions, now) = self.dirty.popitem()
            if state.divisions.get(loaded.div.name) is loaded:
                state.commit(loaded, descriptions, now)

    def ring(self, ring: Ring) -> RingState:
        state = self.rings.get(ring)
        if state is None:
            state = self.rings[ring] = RingState(self, ring)
        state.sync()
        return state

    def all_rings(self) -> list[Ring]:
        rings: list[Ring] = []
        if self.base.is_dir():
            for entry in sorted(os.listdir(self.base)):
                m = RING_DIR.match(entry)
                if m and 1 <= int(m.group(1)) <= 999:
                    rings.append(int(m.group(1)))
        return rings


# -- request handling ------------------------------------------------------------------

class Worldclass:
    """Every tournament under the data root; `handle` is the one entry for requests."""

    def __init__(self, root: Path, rng: random.Random | None = None) -> None:
        self.root = Path(root).resolve()
        self.rng = rng or random.Random()
        self.tournaments: dict[str, Tournament] = {}

    def tournament(self, db: str) -> Tournament:
        t = self.tournaments.get(db)
        if t is None:
            t = self.tournaments[db] = Tournament(self.root, db, self.rng)
        return t

    def handle(self, client: Client, request: dict[str, Any], clients: list[Client], now: float,
               autoflush: bool = True) -> Outcome:
        """Dispatch an annotated request; RequestError -> the caller sends the error frame.

        Scores and reads may be batched: with `autoflush=False` the caller must `flush()`
        before it sends the outcome. Everything else flushes what is pending first.
        """
        t = self.tournament(client.route.db)
        ctx = Context(t, client, request, clients, now)
        name = f"{wire.handler_name(request['type'])}_{wire.handler_name(request['action'])}"
        handler = HANDLERS.get(name)
        if handler is None:
            raise UnknownRequest(name)
        if name not in BATCHABLE:
            t.flush()
        try:
            return handler(ctx)
        finally:
            if autoflush or name not in BATCHABLE:
                t.flush()

    def flush(self) -> None:
        for t in self.tournaments.values():
            t.flush()

    # -- autopilot ----------------------------------------------------------------
    def autopilot(self, db: str, ring: Ring, token: AutopilotToken, step: str, now: float
                  ) -> tuple[Outcome, str | None]:
        """Run one autopilot step; returns what to send and the next step (None: done or aborted)."""
        t = self.tournament(db)
        state = t.ring(ring)
        loaded = state.divisions.get(token.divid)
        if state.autopilot_gen != token.gen or loaded is None:
            return Outcome(), None
        div = loaded.div
        if (div.round, div.current, div.form) != (token.round, token.current, token.form):
            return Outcome(), None
        if step != "scoreboard" and div.autopilot != "on":
            return Outcome(), None
        request = dict(token.request, action=step)
        if step == "scoreboard":
            div.autopilot = "on"
            nxt = "leaderboard" if _leaderboard_due(div) else "next"
        elif step == "leaderboard":
            div.state = "display"
            nxt = "next"
        else:
            _autopilot_move(div, loaded.results)
            div.state = "score"
            div.autopilot = "off"
            nxt = None
        state.save(loaded, f"autopilot {step}", now)
        t.flush()
        out = Outcome(out=[Out("division", "group", state.division_json(loaded), "division", request)])
        return out, nxt

    def cancel_autopilot(self, db: str, ring: Ring) -> None:
        self.tournament(db).ring(ring).autopilot_gen += 1


class UnknownRequest(Exception):
    """No handler: upstream logs it and answers nothing."""


def _leaderboard_due(div: Division) -> bool:
    order = div.order.get(div.round, [])
    if div.form < div.form_count(div.round) - 1 or div.current not in order:
        return False
    pos = order.index(div.current) + 1
    return pos % 2 == 0 or pos == len(order)


def _autopilot_move(div: Division, results: scoring.Results) -> None:
    order = div.order.get(div.round, [])
    if div.form < div.form_count(div.round) - 1:
        div.form += 1
        return
    if div.current not in order:
        return
    i = order.index(div.current)
    if i == len(order) - 1:
        if div.round == "finals":
            return
        nxt = scoring.method_for(div).next_round(div, div.round)
        if nxt and div.order.get(nxt):
            div.round = nxt
            div.current = div.order[nxt][0]
            div.form = 0
        return
    res = results.rounds.get(div.round, {})
    for a in order[i + 1:]:
        r = res.get(a)
        if r is None or (not r.complete and not r.decision):
            div.current = a
            div.form = 0
            return


@dataclass
class Context:
    t: Tournament
    client: Client
    request: dict[str, Any]
    clients: list[Client]
    now: float

    @property
    def ring(self) -> RingState:
        return self.t.ring(self.client.route.ring)

    def division(self, divid: Any = None, staging_too: bool = False) -> tuple[RingState, Loaded]:
        state = self.ring
        if divid is None:
            divid = state.current_divid()
            if divid is None:
                raise RequestError("No divisions in this ring")
        wire.check_divid(divid)
        if divid in state.divisions:
            return state, state.divisions[divid]
        if staging_too and state.ring != "staging":
            staging = self.t.ring("staging")
            if divid in staging.divisions:
                return staging, staging.divisions[divid]
        raise RequestError(f"No division '{divid}' in ring {self.client.route.ring_text}")

    def division_update(self, state: RingState, loaded: Loaded) -> Out:
        return Out("division", "group", state.division_json(loaded), self.request["type"], self.request)

    def ring_update(self) -> Out:
        return Out("ring", "group", self.ring.ring_json(self.client.route.ring_text), "ring", self.request)

    def save(self, state: RingState, loaded: Loaded, description: str) -> None:
        state.save(loaded, description, self.now)


HANDLERS: dict[str, Any] = {}
BATCHABLE = frozenset({"division_score", "division_read", "division_award_penalty", "division_clear_judge_score",
                       "ring_read"})


def handler(name: str):  # type: ignore[no-untyped-def]
    def register(fn):  # type: ignore[no-untyped-def]
        HANDLERS[name] = fn
        return fn
    return register


def _cancelled(ctx: Context, state: RingState, loaded: Loaded) -> None:
    """Manual changes cancel the ring's autopilot; the change itself switches it off."""
    state.autopilot_gen += 1
    if loaded.div.autopilot == "on":
        loaded.div.autopilot = "off"


def _current_form(loaded: Loaded) -> Any:
    div = loaded.div
    if not 0 <= div.current < len(div.athletes) or div.current not in div.order.get(div.round, []):
        raise RequestError("No current athlete in this round")
    forms = div.form_scores(div.current, div.round)
    if not 0 <= div.form < len(forms):
        raise RequestError("No current form")
    return forms[div.form]


@handler("division_read")
def division_read(ctx: Context) -> Outcome:
    divid = ctx.request.get("divid")
    state, loaded = ctx.division(divid, staging_too=True)
    return Outcome(out=[ctx.division_update(state, loaded)])


@handler("division_score")
def division_score(ctx: Context) -> Outcome:
    req = ctx.request
    score = wire.require(req, "score", dict)
    judge_value = req.get("judge", score.get("judge"))
    if judge_value is None:
        raise RequestError("Missing field 'judge'")
    state, loaded = ctx.division()
    div = loaded.div
    judge = wire.to_int(judge_value, "judge", 0, div.judges - 1)
    marks = Score(
        major=wire.to_float(score.get("major", 0), "major", 0, 10),
        minor=wire.to_float(score.get("minor", 0), "minor", 0, 10),
        rhythm=wire.to_float(score.get("rhythm", 0), "rhythm", 0, 2.0),
        power=wire.to_float(score.get("power", 0), "power", 0, 2.0),
        ki=wire.to_float(score.get("ki", 0), "ki", 0, 2.0),
    )
    form = _current_form(loaded)
    form.judges[judge] = marks
    outcome = Outcome()
    position = (div.name, div.round, div.current, div.form)
    if scoring.form_result(form, div.judges).complete and state.ring != "staging":
        # As upstream, the score broadcast already says autopilot "on"; the steps follow.
        state.autopilot_gen += 1
        div.autopilot = "on"
        outcome.arm = AutopilotToken(state.autopilot_gen, *position, req)
        outcome.cancel = True
    ctx.save(state, loaded, f"judge {judge} score")
    outcome.out.append(ctx.division_update(state, loaded))
    return outcome


@handler("division_clear_judge_score")
def division_clear_judge_score(ctx: Context) -> Outcome:
    state, loaded = ctx.division()
    judge = wire.to_int(wire.require(ctx.request, "judge"), "judge", 0, loaded.div.judges - 1)
    form = _current_form(loaded)
    _cancelled(ctx, state, loaded)
    form.judges[judge] = Score()
    ctx.save(state, loaded, f"clear judge {judge} score")
    return Outcome(out=[ctx.division_update(state, loaded)], cancel=True)


@handler("division_award_penalty")
def division_award_penalty(ctx: Context) -> Outcome:
    penalties = wire.require(ctx.request, "penalties", dict)
    state, loaded = ctx.division()
    form = _current_form(loaded)
    values = dict(form.penalty or dict.fromkeys(PENALTY_KEYS, 0.0))
    for key in PENALTY_KEYS:
        if key in penalties:
            values[key] = wire.to_float(penalties[key], key, 0, 1000)
    form.penalty = values if any(values.values()) else None
    ctx.save(state, loaded, "award penalty")
    return Outcome(out=[ctx.division_update(state, loaded)])


@handler("division_award_punitive")
def division_award_punitive(ctx: Context) -> Outcome:
    decision = wire.require(ctx.request, "decision", str)
    if decision not in ("withdraw", "disqualify", "clear"):
        raise RequestError(f"Invalid decision '{decision}'")
    state, loaded = ctx.division()
    div = loaded.div
    form = _current_form(loaded)
    _cancelled(ctx, state, loaded)
    form.decision = {} if decision == "clear" else {decision: 1}
    if decision != "clear":
        loaded.results = scoring.compute(div)
        order = div.order.get(div.round, [])
        res = loaded.results.rounds.get(div.round, {})
        i = order.index(div.current)
        for a in order[i + 1:] + order[:i]:
            if not res[a].complete:
                div.current, div.form, div.state = a, 0, "score"
                break
    ctx.save(state, loaded, f"award punitive {decision}")
    return Outcome(out=[ctx.division_update(state, loaded)], cancel=True)


def _navigation(name: str, move):  # type: ignore[no-untyped-def]
    def run(ctx: Context) -> Outcome:
        state, loaded = ctx.division()
        _cancelled(ctx, state, loaded)
        move(loaded.div)
        ctx.save(state, loaded, name.replace("_", " "))
        return Outcome(out=[ctx.division_update(state, loaded)], cancel=True)
    HANDLERS[name] = run


def _athlete_step(step: int):  # type: ignore[no-untyped-def]
    def move(div: Division) -> None:
        order = div.order.get(div.round, [])
        if not order:
            raise RequestError("No athletes in this round")
        i = order.index(div.current) if div.current in order else -step if step > 0 else 0
        div.current = order[(i + step) % len(order)]
        div.form = 0
        div.state = "score"
    return move


def _form_step(step: int):  # type: ignore[no-untyped-def]
    def move(div: Division) -> None:
        div.form = min(max(div.form + step, 0), div.form_count(div.round) - 1)
        div.state = "score"
    return move


def _round_step(div: Division, step: int) -> None:
    rounds = [r for r in div.rounds() if div.order.get(r)]
    if not rounds:
        raise RequestError("No rounds with athletes")
    i = rounds.index(div.round) if div.round in rounds else 0
    div.round = rounds[(i + step) % len(rounds)]
    order = div.order[div.round]
    if step > 0:
        div.current, div.form = order[0], 0
    else:
        div.current, div.form = order[-1], div.form_count(div.round) - 1
    div.state = "score"


def _toggle_display(div: Division) -> None:
    div.state = "score" if div.state == "display" else "display"


_navigation("division_athlete_next", _athlete_step(1))
_navigation("division_athlete_prev", _athlete_step(-1))
_navigation("division_form_next", _form_step(1))
_navigation("division_form_prev", _form_step(-1))
_navigation("division_round_next", lambda div: _round_step(div, 1))
_navigation("division_round_prev", lambda div: _round_step(div, -1))
_navigation("division_display", _toggle_display)


@handler("division_navigate")
def division_navigate(ctx: Context) -> Outcome:
    target = wire.require(ctx.request, "target", dict)
    destination = target.get("destination")
    if destination == "division":
        divid = wire.check_divid(target.get("divid"), "divid")
        state = ctx.ring
        if divid not in state.divisions:
            if state.ring == "staging":
                raise RequestError(f"No division '{divid}' in staging")
            staging = ctx.t.ring("staging")
            if divid not in staging.divisions:
                raise RequestError(f"No division '{divid}' in ring {ctx.client.route.ring_text} or staging")
            _move_division(staging, state, divid)
        state.autopilot_gen += 1
        state.progress["current"] = divid
        state.save_progress()
        return Outcome(out=[ctx.ring_update()], cancel=True)
    state, loaded = ctx.division()
    div = loaded.div
    _cancelled(ctx, state, loaded)
    if destination == "athlete":
        index = wire.to_int(target.get("index"), "index", 0, len(div.athletes) - 1)
        if index not in div.order.get(div.round, []):
            raise RequestError(f"Invalid index '{index}'")
        div.current, div.form, div.state = index, 0, "score"
    elif destination == "form":
        div.form = wire.to_int(target.get("index"), "index", 0, div.form_count(div.round) - 1)
        div.state = "score"
    elif destination == "round":
        code = target.get("round", target.get("index"))
        if code == "next":
            _round_step(div, 1)
        elif code == "prev":
            _round_step(div, -1)
        elif isinstance(code, str) and div.order.get(code):
            div.round, div.current, div.form, div.state = code, div.order[code][0], 0, "score"
        else:
            raise RequestError(f"Invalid round '{code}'")
    else:
        raise RequestError(f"Invalid destination '{destination}'")
    ctx.save(state, loaded, f"navigate {destination}")
    return Outcome(out=[ctx.division_update(state, loaded)], cancel=True)


@handler("division_athlete_delete")
def division_athlete_delete(ctx: Context) -> Outcome:
    state, loaded = ctx.division(ctx.request.get("divid"))
    div = loaded.div
    idx = wire.to_int(wire.require(ctx.request, "athlete_id"), "athlete_id", 0, len(div.athletes) - 1)
    _cancelled(ctx, state, loaded)
    order = div.order.get(div.round, [])
    if div.current == idx and idx in order and len(order) > 1:
        i = order.index(idx)
        div.current = order[i + 1] if i + 1 < len(order) else order[i - 1]
    del div.athletes[idx]
    for r in list(div.order):
        div.order[r] = [a - 1 if a > idx else a for a in div.order[r] if a != idx]
    div.placement = {r: [a - 1 if a > idx else a for a in p if a != idx] for r, p in div.placement.items()}
    if div.current > idx:
        div.current -= 1
    div.current = min(div.current, max(len(div.athletes) - 1, 0))
    div.form = min(div.form, div.form_count(div.round) - 1)
    ctx.save(state, loaded, f"delete athlete {idx}")
    return Outcome(out=[ctx.division_update(state, loaded)], cancel=True)


@handler("division_edit_athletes")
def division_edit_athletes(ctx: Context) -> Outcome:
    req = ctx.request
    entries = wire.require(req, "athletes", list)
    state, loaded = ctx.division(req.get("divid"), staging_too=True)
    div = loaded.div
    round_ = req.get("round") or (div.rounds()[0] if div.rounds() else None)
    first = next((r for r in div.rounds() if div.order.get(r)), None)
    old_order = list(div.order.get(round_, [])) if round_ else []
    edits: list[tuple[int | None, str]] = []
    for entry in entries:  # validate everything before changing anything
        if not isinstance(entry, dict):
            raise RequestError("Invalid athletes: each entry must be an object")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or "\t" in name or "\n" in name:
            continue
        pos = entry.get("order")
        if pos not in (None, "") and old_order:
            edits.append((old_order[wire.to_int(pos, "order", 1, len(old_order)) - 1], name))
        else:
            edits.append((None, name))
    picked: list[int] = []
    for idx, name in edits:
        if idx is None:
            div.athletes.append(Athlete(name=name))
            idx = len(div.athletes) - 1
        else:
            div.athletes[idx].name = name
        picked.append(idx)
    _cancelled(ctx, state, loaded)
    if round_ is None or round_ == first or first is None:
        # The first round lists everyone: rebuild athletes[] in the new order, dropping the unlisted.
        round_ = round_ or scoring.first_round(len(picked))
        keep = [div.athletes[i] for i in picked]
        remap = {old: new for new, old in enumerate(picked)}
        div.athletes = keep
        for r in list(div.order):
            div.order[r] = [remap[a] for a in div.order[r] if a in remap]
        div.order[round_] = list(range(len(keep)))
        div.placement = {}
        div.current = remap.get(div.current, 0)
    else:
        div.order[round_] = picked
    pad(div)
    ctx.save(state, loaded, "edit athletes")
    return Outcome(out=[ctx.division_update(state, loaded)], cancel=True)


def division_from_json(data: dict[str, Any]) -> Division:
    """A division sent by the editor (only the keys upstream keeps)."""
    data = {k: v for k, v in data.items() if k in WRITE_KEYS}
    name = wire.check_divid(data.get("name"), "name")
    forms = data.get("forms") or {}
    if isinstance(forms, str):
        forms = parse_forms(forms)
    if not isinstance(forms, dict) or not all(isinstance(v, list) for v in forms.values()):
        raise RequestError("Invalid forms")
    judges = wire.to_int(data.get("judges", 5), "judges", 1, 15)
    athletes_in = data.get("athletes") or []
    if not isinstance(athletes_in, list):
        raise RequestError("Invalid athletes")
    athletes = []
    for a in athletes_in:
        a = {"name": a} if isinstance(a, str) else a
        if not isinstance(a, dict) or not isinstance(a.get("name"), str) or not a["name"].strip():
            raise RequestError("Invalid athletes: each needs a name")
        info = a.get("info") if isinstance(a.get("info"), dict) else {}
        athletes.append(Athlete(name=a["name"].replace("\t", " "),
                                info={str(k): str(v).replace("\t", " ") for k, v in info.items()}))
    div = Division(name=name, description=str(data.get("description", "")).replace("\n", " "),
                   judges=judges, forms={str(r): [str(f) for f in v] for r, v in forms.items()},
                   athletes=athletes)
    for key in ("method", "matches", "tags"):
        if data.get(key) is not None:
            setattr(div, key, data[key])
    if isinstance(data.get("flight"), dict):
        div.flight = data["flight"]
    order = data.get("order")
    if isinstance(order, dict) and order:
        for r, idxs in order.items():
            if not isinstance(idxs, list):
                raise RequestError("Invalid order")
            div.order[str(r)] = [wire.to_int(i, "order", 0, max(len(athletes) - 1, 0)) for i in idxs]
    elif athletes:
        first = scoring.first_round(len(athletes))
        if first not in div.forms and div.forms:
            first = next(r for r in div.rounds() if r in div.forms)
        div.order[first] = list(range(len(athletes)))
    round_ = data.get("round")
    div.round = round_ if isinstance(round_, str) and round_ in div.order else next(iter(div.order), "finals")
    div.current = div.order[div.round][0] if div.order.get(div.round) else 0
    pad(div)
    return div


@handler("division_write")
def division_write(ctx: Context) -> Outcome:
    data = wire.require(ctx.request, "division", dict)
    div = division_from_json(data)
    state = ctx.ring
    path = state.new_path(div.name)
    echo = {k: v for k, v in data.items() if k in WRITE_KEYS}
    if path.exists() and not wire.to_bool(ctx.request.get("overwrite")):
        return Outcome(out=[Out("raw", "sender", {"type": "division", "action": "write error",
                                                  "error": f"Division '{div.name}' already exists",
                                                  "division": echo})])
    state.autopilot_gen += 1
    loaded = Loaded(div=div, path=path, stamp=None, results=scoring.compute(div))
    state.save(loaded, "write", ctx.now)
    state.divisions[div.name] = loaded
    state.divisions = dict(sorted(state.divisions.items()))
    return Outcome(out=[Out("raw", "sender", {"type": "division", "action": "write ok", "division": echo}),
                        ctx.ring_update()], cancel=True)


@handler("division_history")
def division_history(ctx: Context) -> Outcome:
    state, loaded = ctx.division(ctx.request.get("divid"), staging_too=True)
    payload = state.division_json(loaded)
    payload["history"] = [
        {"number": e["number"], "datetime": e["datetime"], "description": e["description"]}
        for e in reversed(History(state.dir, loaded.div.name).entries())
    ]
    return Outcome(out=[Out("division", "group", payload, ctx.request["type"], ctx.request)])


@handler("division_restore")
def division_restore(ctx: Context) -> Outcome:
    version = wire.require(ctx.request, "version")
    state, loaded = ctx.division(ctx.request.get("divid"), staging_too=True)
    text = History(state.dir, loaded.div.name).text(str(version))
    if text is None:
        raise RequestError(f"Unknown version '{version}' of division '{loaded.div.name}'")
    try:
        div = parse_division(text, loaded.div.name)
    except DivisionFormatError as e:
        raise RequestError(f"Version {version} cannot be read: {e}") from None
    state.autopilot_gen += 1
    loaded.div = div
    ctx.save(state, loaded, f"restore {version}")
    return Outcome(out=[ctx.division_update(state, loaded)], cancel=True)


@handler("division_judge_query")
def division_judge_query(ctx: Context) -> Outcome:
    judges = sorted(
        ({"judge": c.jid, "cid": c.cid, "health": c.health} for c in ctx.clients if c.jid is not None),
        key=lambda j: (j["judge"], j["cid"]),
    )
    return Outcome(out=[Out("raw", "sender", {"type": "division", "action": "judges", "judges": judges})])


def _se_only(ctx: Context) -> Outcome:
    raise RequestError(f"'{ctx.request['action']}' needs the single-elimination or side-by-side method")


for _name in ("division_award_min_score", "division_draw", "division_draw_select_age"):
    HANDLERS[_name] = _se_only


# -- ring -------------------------------------------------------------------------------

@handler("ring_read")
def ring_read(ctx: Context) -> Outcome:
    return Outcome(out=[ctx.ring_update()])


def _ring_step(step: int):  # type: ignore[no-untyped-def]
    def run(ctx: Context) -> Outcome:
        state = ctx.ring
        divids = list(state.divisions)
        if not divids:
            raise RequestError("No divisions in this ring")
        current = state.current_divid()
        i = divids.index(current) if current in divids else 0
        state.autopilot_gen += 1
        state.progress["current"] = divids[(i + step) % len(divids)]
        state.save_progress()
        return Outcome(out=[ctx.ring_update()], cancel=True)
    return run


HANDLERS["ring_division_next"] = _ring_step(1)
HANDLERS["ring_division_prev"] = _ring_step(-1)


def _move_division(source: RingState, target: RingState, divid: str) -> None:
    loaded = source.divisions.pop(divid)
    target.dir.mkdir(parents=True, exist_ok=True)
    path = target.new_path(divid)
    if path.exists():
        source.divisions[divid] = loaded
        raise RequestError(f"Division '{divid}' already exists in the target ring")
    os.replace(loaded.path, path)
    History(source.dir, divid).move_to(target.dir, divid)
    loaded.path = path
    target.divisions[divid] = loaded
    target.divisions = dict(sorted(target.divisions.items()))
    if source.progress.get("current") == divid:
        _advance_current(source, divid)


def _advance_current(state: RingState, gone: str) -> None:
    """The current division went away: the next one (alphabetically) becomes current."""
    rest = sorted(state.divisions)
    later = [d for d in rest if d > gone]
    state.progress["current"] = (later or rest or [""])[0]
    if not state.progress["current"]:
        del state.progress["current"]
    state.save_progress()


@handler("ring_transfer")
def ring_transfer(ctx: Context) -> Outcome:
    divid = wire.check_divid(wire.require(ctx.request, "name"), "name")
    target_ring = wire.parse_ring(wire.require(ctx.request, "transfer"), "transfer")
    state = ctx.ring
    if divid not in state.divisions:
        raise RequestError(f"No division '{divid}' in ring {ctx.client.route.ring_text}")
    was_current = state.current_divid() == divid
    target = ctx.t.ring(target_ring)
    if target is state:
        return Outcome(out=[ctx.ring_update()])
    state.autopilot_gen += 1
    if was_current and state.progress.get("current") != divid:
        state.progress["current"] = divid
    _move_division(state, target, divid)
    outcome = Outcome(out=[ctx.ring_update()], cancel=True)
    if target_ring != "staging":
        # the receiving ring's pages filter on request.ring: tell them in their own ring's terms
        text = str(target_ring)
        outcome.out.append(Out("ring", f"ring:{text}", target.ring_json(text), "ring", dict(ctx.request, ring=text)))
    return outcome


@handler("ring_division_delete")
def ring_division_delete(ctx: Context) -> Outcome:
    divid = wire.check_divid(wire.require(ctx.request, "divid"), "divid")
    state = ctx.ring
    loaded = state.divisions.get(divid)
    if loaded is None:
        raise RequestError(f"No division '{divid}' in ring {ctx.client.route.ring_text}")
    was_current = state.current_divid() == divid
    state.autopilot_gen += 1
    loaded.path.unlink(missing_ok=True)
    (loaded.path.parent / (loaded.path.name + ",v")).unlink(missing_ok=True)
    History(state.dir, divid).delete()
    del state.divisions[divid]
    if was_current:
        _advance_current(state, divid)
    return Outcome(out=[ctx.ring_update()], cancel=True)


@handler("ring_division_split")
def ring_division_split(ctx: Context) -> Outcome:
    divid = wire.check_divid(wire.require(ctx.request, "name"), "name")
    flights = wire.to_int(wire.require(ctx.request, "flights"), "flights", 2, 26)
    state = ctx.ring
    loaded = state.divisions.get(divid)
    if loaded is None:
        raise RequestError(f"No division '{divid}' in ring {ctx.client.route.ring_text}")
    div = loaded.div
    prelim = div.order.get("prelim")
    if not prelim or any(r != "prelim" and div.order.get(r) for r in div.order):
        raise RequestError(f"Division '{divid}' has no prelim round to split")
    ids = [f"{divid}{chr(ord('a') + i)}" for i in range(flights)]
    for fid in ids:
        wire.check_divid(fid, "name")
        if fid in state.divisions:
            raise RequestError(f"Division '{fid}' already exists")
    athletes = [div.athletes[a] for a in prelim]
    ctx.t.rng.shuffle(athletes)
    state.autopilot_gen += 1
    for i, fid in enumerate(ids):
        group = athletes[i::flights]
        flight = Division(
            name=fid, description=f"{div.description} Flight {chr(ord('A') + i)}", judges=div.judges,
            round="prelim", forms={r: list(f) for r, f in div.forms.items()}, method=div.method,
            athletes=[Athlete(name=a.name, info=dict(a.info)) for a in group],
            flight={"id": chr(ord("a") + i), "group": list(ids), "state": "ready"}, tags=div.tags,
        )
        flight.order["prelim"] = list(range(len(group)))
        pad(flight)
        fl = Loaded(div=flight, path=state.new_path(fid), stamp=None, results=scoring.compute(flight))
        state.save(fl, "split", ctx.now)
        state.divisions[fid] = fl
    was_current = state.current_divid() == divid
    loaded.path.unlink(missing_ok=True)
    History(state.dir, divid).delete()
    del state.divisions[divid]
    state.divisions = dict(sorted(state.divisions.items()))
    if was_current:
        state.progress["current"] = ids[0]
        state.save_progress()
    return Outcome(out=[ctx.ring_update()], cancel=True)


@handler("ring_division_merge")
def ring_division_merge(ctx: Context) -> Outcome:
    divid = wire.check_divid(wire.require(ctx.request, "name"), "name")
    state = ctx.ring
    flights = [ld for d, ld in state.divisions.items()
               if ld.div.flight is not None and d != divid and d.startswith(divid) and len(d) == len(divid) + 1]
    if not flights:
        raise RequestError(f"No flights of division '{divid}'")
    if divid in state.divisions:
        raise RequestError(f"Division '{divid}' already exists")
    if any((ld.div.flight or {}).get("state") != "complete" for ld in flights):
        raise RequestError("Every flight must be complete before merging")
    chosen: list[Athlete] = []
    for ld in flights:
        fdiv = ld.div
        k = len(fdiv.order.get("prelim", []))
        take = 4 if fdiv.method == "aau-single-cutoff" else math.ceil(k / 2)
        placed = ld.results.placement.get("prelim", [])
        chosen += [Athlete(name=fdiv.athletes[a].name, info=dict(fdiv.athletes[a].info)) for a in placed[:take]]
    ctx.t.rng.shuffle(chosen)
    base = flights[0].div
    merged = Division(name=divid, description=base.description.rsplit(" Flight ", 1)[0], judges=base.judges,
                      round="semfin", forms={r: list(f) for r, f in base.forms.items() if r != "prelim"},
                      method=base.method, athletes=chosen, tags=base.tags)
    merged.order["semfin"] = list(range(len(chosen)))
    merged.current = 0
    pad(merged)
    state.autopilot_gen += 1
    ml = Loaded(div=merged, path=state.new_path(divid), stamp=None, results=scoring.compute(merged))
    state.save(ml, "merge", ctx.now)
    state.divisions[divid] = ml
    for ld in flights:
        ld.div.flight = dict(ld.div.flight or {}, state="merged")
        state.save(ld, "merged", ctx.now)
    state.divisions = dict(sorted(state.divisions.items()))
    return Outcome(out=[ctx.ring_update()], cancel=True)


# -- tournament ---------------------------------------------------------------------------

@handler("tournament_read")
def tournament_read(ctx: Context) -> Outcome:
    if ctx.t.base.is_dir():  # as upstream when loading the whole tournament
        (ctx.t.base / "staging").mkdir(exist_ok=True)
        if not ctx.t.all_rings():
            (ctx.t.base / "ring01").mkdir(exist_ok=True)
    divisions = []
    for ring in [*ctx.t.all_rings(), "staging"]:
        state = ctx.t.ring(ring)
        divisions += [state.division_json(ld) for ld in state.divisions.values()]
    return Outcome(out=[Out("raw", "sender", {"type": "tournament", "action": "read", "request": ctx.request,
                                              "divisions": divisions})])


@handler("tournament_draws_write")
def tournament_draws_write(ctx: Context) -> Outcome:
    draws = wire.require(ctx.request, "draws", dict)
    ctx.t.base.mkdir(parents=True, exist_ok=True)
    _write(ctx.t.base / "draws.json", json.dumps(draws, sort_keys=True, indent=2) + "\n")
    return Outcome(out=[ctx.ring_update()])


@handler("tournament_draws_delete")
def tournament_draws_delete(ctx: Context) -> Outcome:
    (ctx.t.base / "draws.json").unlink(missing_ok=True)
    return Outcome(out=[ctx.ring_update()])


def now() -> float:
    return _time.time()
