"""Grassroots rules (pure): what each WebSocket request, REST call and autopilot step does to a ring.

Tournaments and rings are the FreeScore layer's (`poomsae.rings`): a ring is
re-read from its files (changed ones only) when a request first uses it, a
handler changes it and answers in effects (`freescore.effects`), and every
division it changed is written at `flush()` (atomically, by the store handed
in), which the service runs before it applies any effect: no frame or REST
answer ever gets ahead of the file.

The autopilot is one cancellable timer per ring (`Arm`/`Cancel` on
`autopilot_key`). Each step re-reads the ring and changes only `state` and
`current`, so a score entered during its pause is never lost (upstream writes
the copy it captured at arming time); manual navigation, a flip of the
display, and any new score cancel it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from freescore.effects import ConnId, Effects
from freescore.grassroots import scoring, wire
from freescore.grassroots.divfile import Athlete, Division, apply_header
from freescore.poomsae import rings
from freescore.poomsae.frames import canonical, frame
from freescore.poomsae.ids import RequestError, Ring, SaveError, check_divid
from freescore.poomsae.requests import request_kind, require, to_float, to_int
from freescore.wireformat import MAX_DEPTH, json_text, loads_strict

if TYPE_CHECKING:
    from freescore.poomsae.users import Client

AUTOPILOT_TIMES = (0.0, 9.0, 14.0, 18.0)
"""Seconds from arming to each step, as observed upstream (§8): scoreboard, leaderboard, next, show next."""
AUTOPILOT_ACTIONS = ("score-display", "leaderboard-display", "navigate", "navigate")
Group = tuple[str, Ring]
SCHEDULE = "schedule.json"
_MISSING = object()
Loaded = rings.Loaded[Division, scoring.Results]


class GrassrootsRing(rings.RingFolder):
    """One ring folder: its divisions (`Loaded`, with their scoring) and progress.txt."""

    t: rings.Tournament
    divisions: dict[str, Loaded]

    @property
    def group(self) -> Group:
        return (self.t.db, self.ring)

    def loaded(self, divid: str | None = None) -> Loaded:
        """A division of this ring (the current one by default); RequestError when there is none."""
        divid = self.current_divid() if divid is None else divid
        if divid is None or divid not in self.divisions:
            raise RequestError(f"No division {divid or ''} in ring {self.ring}".replace("  ", " "))
        self.results(divid)  # derived values (ties, placements) are what handlers decide on
        return self.divisions[divid]

    def division(self, divid: str | None = None) -> Division:
        return self.loaded(divid).div

    def touch(self, div: Division, description: str, now: float) -> scoring.Results:
        """Recompute a changed division; it is written at the next flush, before anything is sent."""
        loaded = self.divisions[div.name]
        loaded.results = scoring.compute(div)
        self.mark(div.name, loaded, description, now)
        return loaded.results

    def add(self, div: Division, now: float) -> None:
        self.divisions[div.name] = rings.Loaded(div, self.new_path(div.name), None)
        self.sort()
        self.touch(div, "saved", now)

    def set_current(self, divid: str) -> None:
        if self.progress.get("current") != divid:
            self.progress["current"] = divid
            self.save_progress()

    def results(self, divid: str) -> scoring.Results:
        loaded = self.divisions[divid]
        if loaded.results is None:
            loaded.results = scoring.compute(loaded.div)
        return loaded.results

    def division_json(self, divid: str) -> dict[str, Any]:
        loaded = self.divisions[divid]
        return scoring.division_json(loaded.div, self.results(divid), self.ring, str(loaded.path), str(self.dir))

    def ring_json(self) -> dict[str, Any]:
        """§4: current, divisions, file, path and every other progress.txt key."""
        out: dict[str, Any] = {k: v for k, v in self.progress.items() if k != "current"}
        out.update({
            "current": self.current_divid(),
            "divisions": [self.division_json(d) for d in self.divisions],
            "file": str(self.progress_path), "path": str(self.dir),
        })
        return out


class GrassrootsTournament(rings.Tournament):
    ring_class = GrassrootsRing


@dataclass(frozen=True)
class AutopilotStep:
    """What an armed autopilot timer carries: its step, its division and how it was armed."""

    step: int
    divid: str
    request: dict[str, Any] | None
    """The arming WebSocket request (its frames are broadcast); None when armed over REST (writes only)."""


@dataclass
class Outcome:
    effects: Effects = field(default_factory=Effects)
    answer: Any = None
    """The REST answer (a JSON value); WebSocket handlers answer in effects only."""


def _current_athlete(div: Division) -> Athlete:
    if not 0 <= div.current < len(div.athletes):
        raise RequestError(f"No athlete {div.current} in division {div.name}")
    return div.athletes[div.current]


def _judge(div: Division, value: Any) -> int:
    return to_int(value, "judge", 0, div.judges - 1)


def _next_athlete(div: Division, step: int) -> None:
    """§9: current ±1 with wrap (matches in single elimination); the display shows the score."""
    n = len(scoring.matches(div)) if div.single_elimination else len(div.athletes)
    if n == 0:
        raise RequestError(f"No athletes in division {div.name}")
    div.current = (div.current + step) % n
    div.state = "score"


def _flip(state: str, toggle: bool) -> str:
    """REST: score <-> display, anything else -> display. WebSocket (`toggle`): score -> display, else score."""
    if state == "score":
        return "display"
    return "score" if toggle or state == "display" else "display"


def _record_score(div: Division, judge: int, score: float) -> None:
    if div.single_elimination:
        raise RequestError(f"Division {div.name} is single elimination: judges vote")
    _current_athlete(div).scores[judge] = score if score > 0 else None


def _record_vote(div: Division, judge: int, vote: str) -> None:
    if not div.single_elimination:
        raise RequestError(f"Division {div.name} is not single elimination")
    all_matches = scoring.matches(div)
    if not 0 <= div.current < len(all_matches):
        raise RequestError(f"No match {div.current} in division {div.name}")
    match = all_matches[div.current]
    blue, red = match["blue"]["votes"], match["red"]["votes"]
    blue[judge] = 1 if vote == "blue" else 0
    red[judge] = 1 if vote == "red" else 0


def _record_tiebreaker(div: Division, judge: int, value: str | float) -> bool:
    """§13: a vote between two tied athletes, or a tiebreaker score; True when the tiebreaker is complete."""
    if not div.tied:
        raise RequestError(f"No tie to break in division {div.name}")
    tied = div.tied[0][1]
    if isinstance(value, str):
        if len(tied) != 2:
            raise RequestError(f"Invalid tiebreaker '{value}': {len(tied)} athletes are tied")
        chosen = tied[0] if value == "blue" else tied[1]
        for i in tied:
            div.athletes[i].tiebreakers[judge] = 1.0 if i == chosen else 0.0
        return all(any((div.athletes[i].tiebreakers[k] or 0) > 0 for i in tied) for k in range(div.judges))
    athlete = _current_athlete(div)
    athlete.tiebreakers[judge] = round(value, 1) if value > 0 else None
    return all((t or 0) > 0 for t in athlete.tiebreakers)


class Grassroots(rings.Tournaments):
    """Every tournament under the data root; `handle`, `rest` and `autopilot` are the entries.

    `times` are the autopilot's step times (§8). Changes are written at `flush()`,
    which the service runs before it applies any effect.
    """

    tournament_class = GrassrootsTournament

    def __init__(self, store: rings.TournamentStore, times: tuple[float, ...] = AUTOPILOT_TIMES) -> None:
        super().__init__(store)
        self.times = times
        self.ws_handlers: dict[str, Callable[[GrassrootsRing, ConnId, dict[str, Any], Outcome, float], None]] = {
            "ring_read": self._ring_read,
            "division_read": self._division_read,
            "division_score": self._division_score,
            "division_navigate": self._division_navigate,
            "division_display": self._division_display,
            "division_award_penalty": self._division_award_penalty,
            "division_disqualify": self._division_decision,
            "division_withdraw": self._division_decision,
            "schedule_read": self._schedule_read,
            "schedule_write": self._schedule_write,
        }

    def ring(self, db: str, ring: Ring) -> GrassrootsRing:
        """The ring as its files say now (changed files re-read once per request)."""
        state: GrassrootsRing = self.tournament(db).ring(ring)
        return state

    # -- arming ------------------------------------------------------------------------

    def _arm(self, ring: GrassrootsRing, out: Outcome, div: Division, request: dict[str, Any] | None) -> None:
        if request is not None:
            request = {k: v for k, v in request.items() if k not in ("judge", "score", "response", "vote")}
        out.effects.arm(ring.group, self.times[0], AutopilotStep(0, div.name, request))

    @staticmethod
    def _cancel(ring: GrassrootsRing, out: Outcome) -> None:
        out.effects.cancel(ring.group)

    # -- WebSocket (§5) -------------------------------------------------------------------

    def handle(self, conn: ConnId, client: Client, request: dict[str, Any], clients: list[Client], now: float,
               autoflush: bool = True) -> Effects:
        """One annotated request from `conn`: unknown ones get no reply, refused ones an error to the sender.

        Handlers check everything before they change anything, so a refusal leaves the ring as it was.
        """
        out = Outcome()
        handler = self.ws_handlers.get(request_kind(request))
        if handler is None:
            return out.effects
        ring = self.ring(client.route.db, client.route.ring)
        try:
            handler(ring, conn, request, out, now)
        except RequestError as e:
            out.effects = Effects()
            out.effects.send(conn, wire.error(e.message))
        if autoflush:
            self._flush(client.route.db)
        return out.effects

    def _flush(self, db: str) -> None:
        try:
            self.tournaments[db].flush()
        except SaveError:
            self.forget(db)  # memory never drifts from the files: re-read them
            raise

    def _update(self, ring: GrassrootsRing, out: Outcome, divid: str, request: dict[str, Any]) -> None:
        out.effects.broadcast(ring.group, wire.division_update(ring.division_json(divid), request))

    def _ring_read(self, ring: GrassrootsRing, cid: ConnId, request: dict[str, Any], out: Outcome, now: float) -> None:
        out.effects.send(cid, wire.ring_read(ring.ring_json()))

    def _division_read(self, ring: GrassrootsRing, cid: ConnId, request: dict[str, Any], out: Outcome,
                       now: float) -> None:
        divid = request.get("divid")
        div = ring.division(None if divid in (None, "") else check_divid(divid))
        self._update(ring, out, div.name, request)

    def _division_score(self, ring: GrassrootsRing, cid: ConnId, request: dict[str, Any], out: Outcome,
                        now: float) -> None:
        div = ring.division()
        judge = _judge(div, require(request, "judge"))
        if "vote" in request and "score" not in request:
            vote = require(request, "vote", str)
            if vote not in wire.VOTES:
                raise RequestError(f"Invalid vote '{vote}'")
            _record_vote(div, judge, vote)
            ring.touch(div, f"judge {judge} votes {vote}", now)
            self._cancel(ring, out)
            self._update(ring, out, div.name, {**request, "response": {"status": "ok"}})
            return
        _record_score(div, judge, to_float(require(request, "score"), "score", -10.0, 10.0))
        results = ring.touch(div, f"judge {judge} scores", now)
        request = {**request, "response": {"status": "ok"}}
        self._cancel(ring, out)
        self._update(ring, out, div.name, request)
        if results.athletes[div.current].complete:
            self._arm(ring, out, div, request)

    def _division_navigate(self, ring: GrassrootsRing, cid: ConnId, request: dict[str, Any], out: Outcome,
                           now: float) -> None:
        target = require(request, "target", dict)
        destination = target.get("destination")
        if destination == "division":
            divid = check_divid(target.get("id"), "division")
            div = ring.division(divid)
            ring.set_current(divid)
        elif destination == "athlete":
            div = ring.division()
            n = len(scoring.matches(div)) if div.single_elimination else len(div.athletes)
            div.current = to_int(target.get("id"), "athlete", 0, max(0, n - 1))
            ring.touch(div, "navigate", now)
        else:
            raise RequestError(f"Invalid destination '{destination}'")
        self._cancel(ring, out)
        self._update(ring, out, div.name, request)

    def _division_display(self, ring: GrassrootsRing, cid: ConnId, request: dict[str, Any], out: Outcome,
                          now: float) -> None:
        div = ring.division()
        div.state = _flip(div.state, toggle=True)
        ring.touch(div, "display", now)
        self._cancel(ring, out)
        self._update(ring, out, div.name, request)

    def _division_award_penalty(self, ring: GrassrootsRing, cid: ConnId, request: dict[str, Any], out: Outcome,
                                now: float) -> None:
        div = ring.division()
        penalty = require(request, "penalty", dict)
        for key, value in penalty.items():
            to_float(value, f"penalty {key}", 0.0, 100.0)
        athlete = _current_athlete(div)
        if penalty:
            athlete.info["penalty"] = penalty
        else:
            athlete.info.pop("penalty", None)
        ring.touch(div, "award penalty", now)
        self._update(ring, out, div.name, {**request, "athletes": []})

    def _division_decision(self, ring: GrassrootsRing, cid: ConnId, request: dict[str, Any], out: Outcome,
                           now: float) -> None:
        div = ring.division()
        _current_athlete(div).info["decision"] = "DSQ" if request["action"] == "disqualify" else "WDR"
        ring.touch(div, request["action"], now)
        self._cancel(ring, out)
        self._update(ring, out, div.name, request)
        self._arm(ring, out, div, request)

    def _schedule_read(self, ring: GrassrootsRing, cid: ConnId, request: dict[str, Any], out: Outcome,
                       now: float) -> None:
        """The staging pages' `schedule.json` (opaque to the server), to the sender only."""
        schedule = self.store.read_json(ring.t.base / SCHEDULE, _MISSING)  # type: ignore[attr-defined]
        if schedule is _MISSING:
            raise RequestError(f"Schedule file '{ring.dir}/../{SCHEDULE}' does not exist")
        out.effects.send(cid, frame({"type": "schedule", "action": "read", "schedule": schedule}))

    def _schedule_write(self, ring: GrassrootsRing, cid: ConnId, request: dict[str, Any], out: Outcome,
                        now: float) -> None:
        """Rewrite `schedule.json` (sorted keys, indented) from the page's JSON string; a ring update follows."""
        try:  # as strict as a request: the staging pages read it back
            schedule = loads_strict(require(request, "schedule", str), max_depth=MAX_DEPTH)
        except ValueError:
            raise RequestError("Invalid schedule: not JSON") from None
        if not isinstance(schedule, dict):
            raise RequestError("Invalid schedule: not a JSON object")
        text = json_text(schedule, sort_keys=True, indent=3, separators=(",", ": ")) + "\n"
        self.store.write(ring.t.base / SCHEDULE, text)  # type: ignore[attr-defined]
        out.effects.broadcast(ring.group, wire.ring_update(ring.ring_json(), request))

    # -- REST (§7) ----------------------------------------------------------------------------

    def rest(self, command: wire.Rest, now: float) -> Outcome:
        """One REST call; a refused one answers `{"error": ...}` and changes nothing. The caller flushes."""
        out = Outcome()
        try:
            out.answer = self._rest(self.ring(command.db, command.ring), command, out, now)
        except RequestError as e:
            out.effects = Effects()
            out.answer = {"error": e.message}
        return out

    def _rest(self, ring: GrassrootsRing, c: wire.Rest, out: Outcome, now: float) -> Any:
        if c.action == "judges":
            current = ring.current_divid()
            return {"division": current, "judges": None if current is None else ring.division(current).judges}
        if c.action == "division list":
            return {"divisions": [ring.division_json(d) for d in ring.divisions]}
        if c.action in ("division next", "division previous"):
            names = list(ring.divisions)
            if not names:
                raise RequestError(f"No divisions in ring {ring.ring}")
            step = 1 if c.action == "division next" else -1
            ring.set_current(names[(names.index(ring.current_divid() or names[0]) + step) % len(names)])
            self._cancel(ring, out)
            return {"current": ring.current_divid()}
        if c.action == "save":
            return self._save(ring, c.value, c.body, out, now)
        div = ring.division()
        if c.action == "display":
            div.state = _flip(div.state, toggle=False)
            ring.touch(div, "display", now)
            self._cancel(ring, out)
            return {"state": div.state}
        if c.action in ("athlete next", "athlete previous"):
            _next_athlete(div, 1 if c.action == "athlete next" else -1)
            ring.touch(div, c.action, now)
            self._cancel(ring, out)
            return {"current": div.current, "state": div.state}
        judge = _judge(div, c.judge)
        if c.action == "vote":
            _record_vote(div, judge, c.value)
            ring.touch(div, f"judge {judge} votes {c.value}", now)
            self._cancel(ring, out)
            return wire.vote_answer(div.current, judge, c.value)
        if c.action == "tb":
            done = _record_tiebreaker(div, judge, c.value)
            ring.touch(div, f"judge {judge} tiebreaker", now)
            self._cancel(ring, out)
            if done:
                self._arm(ring, out, div, None)
            return wire.tiebreaker_answer(div.current, judge, c.value)
        _record_score(div, judge, c.value)
        results = ring.touch(div, f"judge {judge} scores", now)
        self._cancel(ring, out)
        if results.athletes[div.current].complete:
            self._arm(ring, out, div, None)
        return wire.score_answer(div.current, judge, c.value)

    def _save(self, ring: GrassrootsRing, divid: str, body: dict[str, Any], out: Outcome,
              now: float) -> dict[str, Any]:
        """§7.2: the division editor's POST; without `overwrite` an existing division is left alone."""
        old = ring.divisions.get(divid)
        if old is not None and "overwrite" not in body:
            return {"division": divid, "status": "exists"}
        header = body.get("header", {})
        div = Division(name=divid, state="display") if old is None else old.div
        if "mode" not in header:
            div.mode = ""
        apply_header(div, {k: v if isinstance(v, str) else canonical(v) if isinstance(v, (dict, list))
                           else str(v) for k, v in header.items()})
        before = {a.name: a for a in (old.div.athletes if old else [])}
        div.athletes = [
            Athlete(name=name, rank=before[name].rank, scores=before[name].scores,
                    tiebreakers=before[name].tiebreakers) if name in before else Athlete(name=name)
            for name in body.get("athletes", [])
        ]
        if old is None:
            ring.add(div, now)
        else:
            ring.touch(div, "saved", now)
        self._cancel(ring, out)
        return {"division": divid, "status": "saved"}

    # -- autopilot (§8) -------------------------------------------------------------------------

    def autopilot(self, group: Group, step: AutopilotStep, now: float) -> Effects:
        """One step on the ring as it is now: only `state` and `current` change, then the next is armed."""
        out = Outcome()
        ring = self.ring(*group)
        loaded = ring.divisions.get(step.divid)
        if loaded is None:
            return out.effects
        div = loaded.div
        n = step.step
        if n == 2 and ring.results(step.divid).complete:
            return out.effects
        if n + 1 < len(self.times):
            out.effects.arm(group, self.times[n + 1] - self.times[n], AutopilotStep(n + 1, step.divid, step.request))
        if n in (0, 3) and div.state == "display":
            div.state = "score"
            ring.touch(div, "autopilot", now)
        elif n == 1 and div.state == "score":
            div.state = "display"
            ring.touch(div, "autopilot", now)
        elif n == 2 and div.athletes:
            _next_athlete(div, 1)
            ring.touch(div, "autopilot", now)
        self._flush(group[0])
        if step.request is not None:
            request = {**step.request, "action": AUTOPILOT_ACTIONS[n]}
            if n >= 2:
                request["athlete"] = div.current
            self._update(ring, out, div.name, request)
        return out.effects
