"""Freestyle rules: the one entry for requests (`Freestyle.handle`) and autopilot steps (`autopilot`).

No reactor, no Autobahn and no file access here: the service hands in the
requester's connection id, its client and the request, and gets back `Effects`
(freescore.effects): `Send` to the requester (reads answer the sender only),
`Broadcast` of an `Update` to the ring group `(db, ring)`, `Arm`/`Cancel` of
the ring's autopilot timer (its payload a `Pilot` to hand back to `autopilot`).
Files are the store's (`freescore.poomsae.store.DataStore`, handed in): every
change is written at `flush()`, which the service runs before it applies any
effect, so no frame gets ahead of its file.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from freescore.effects import ConnId, Effects
from freescore.freestyle import actions, autopilot, wire
from freescore.freestyle.autopilot import Delays, Pilot
from freescore.freestyle.division import Division
from freescore.poomsae.frames import Update
from freescore.poomsae.ids import STAGING, RequestError, Ring, SaveError, UnknownRequest
from freescore.poomsae.requests import request_kind, to_bool
from freescore.poomsae.rings import RingFolder, Tournament, Tournaments
from freescore.poomsae.users import Client, judge_number

if TYPE_CHECKING:
    from freescore.freestyle.store import FreestyleStore

Group = tuple[str, Ring]


class FreestyleRing(RingFolder):
    """One ring folder (or staging) of one tournament: its divisions as `Division`s and progress.txt."""

    divisions: dict[str, Division]

    @property
    def group(self) -> Group:
        return (self.t.db, self.ring)

    def division(self, divid: str | None = None) -> Division:
        """A division of this ring (the current one by default); RequestError when there is none."""
        divid = divid or self.current_divid()
        div = self.divisions.get(divid or "")
        if div is None:
            raise RequestError(wire.not_in_ring(self.ring, divid))
        return div

    def touch(self, div: Division, description: str) -> None:
        """Written at the tournament's next flush, before any update about it is sent."""
        self.mark(div.name, div, description, 0.0)

    def set_current(self, divid: str | None) -> None:
        """Change the ring's current division; progress.txt is written at once, as upstream."""
        self.progress = {**self.progress, "current": divid or "", "name": str(self.ring)}
        self.save_progress()

    def step_current(self, step: int, leaving: str | None = None) -> None:
        """Move `current` among this ring's divisions (sorted, wrapping), skipping one that is leaving."""
        names = [d for d in self.divisions if d != leaving]
        current = self.current_divid()
        if not names:
            if leaving is not None:
                self.set_current(None)
        elif current in names:
            self.set_current(names[(names.index(current) + step) % len(names)])
        else:
            following = [d for d in names if current is None or d > current]
            self.set_current((following or names)[0])

    def ring_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.progress)
        out.update(name=self.ring, current=self.current_divid(), file=str(self.progress_path), path=str(self.dir),
                   divisions=[d.data for d in self.divisions.values()])
        return out


class FreestyleTournament(Tournament):
    ring_class = FreestyleRing


class Context:
    """One request: who sent it, what it asks, the ring it acts on, and what to answer."""

    def __init__(self, logic: Freestyle, conn: ConnId, client: Client, request: dict[str, Any],
                 clients: list[Client]) -> None:
        self.logic = logic
        self.conn = conn
        self.client = client
        self.request = request
        self.clients = clients
        self.ring: FreestyleRing = logic.tournament(client.route.db).ring(client.route.ring)
        self.fx = Effects()

    def division_update(self, div: Division, to_sender: bool = False) -> None:
        """Reads answer the sender only (§6); every change goes to the whole ring, the sender included."""
        if to_sender:
            self.fx.send(self.conn, wire.division_update(div.data, self.request))
        else:
            type_ = str(self.request.get("type", "division"))
            self.fx.broadcast(self.ring.group, Update(type_, "division", div.snapshot(), self.request))

    def ring_update(self, to_sender: bool = False) -> None:
        if to_sender:
            self.fx.send(self.conn, wire.ring_update(self.ring.ring_json(), self.request))
        else:
            self.fx.broadcast(self.ring.group, Update("ring", "ring", copy.deepcopy(self.ring.ring_json()),
                                                      self.request))

    def cancel_autopilot(self) -> None:
        """A manual action: the ring's pending autopilot step is dropped and the `autopilot` key removed
        (a key left behind would keep the next completed athlete from arming it again)."""
        self.fx.cancel(self.ring.group)
        for div in self.ring.divisions.values():
            if div.autopilot:
                div.autopilot = False
                div.recompute()
                self.ring.touch(div, "autopilot off")

    def arm(self, div: Division, athlete: int) -> None:
        pilot = autopilot.arm(div, athlete, self.request)
        if pilot is not None:
            self.fx.arm(self.ring.group, self.logic.delays.leaderboard, pilot)


Handler = Callable[[Context], None]
HANDLERS: dict[str, Handler] = {}


def handler(*names: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for name in names:
            HANDLERS[name] = fn
        return fn
    return register


class Freestyle(Tournaments):
    """Every tournament's freestyle rings under the data root (the service's `Rules`)."""

    tournament_class = FreestyleTournament

    def __init__(self, store: FreestyleStore, rng: random.Random | None = None,
                 delays: Delays | None = None) -> None:
        super().__init__(store, rng)
        self.store: FreestyleStore = store
        self.delays = delays or Delays()

    def handle(self, conn: ConnId, client: Client, request: dict[str, Any], clients: list[Client],
               now: float = 0.0, autoflush: bool = True) -> Effects:
        """Dispatch an annotated request; RequestError -> the caller sends the error frame.

        With `autoflush=False` the caller must `flush()` before it applies the effects; on an
        error it writes what the batch changed and has the tournament re-read.
        """
        name = request_kind(request)
        fn = HANDLERS.get(name)
        if fn is None:
            raise UnknownRequest(name)
        ctx = Context(self, conn, client, request, clients)
        fn(ctx)
        if autoflush:
            self.flush_now(client.route.db)
        return ctx.fx

    def flush_now(self, db: str) -> None:
        """Write a tournament's changes now; SaveError (the tournament forgotten) when that fails."""
        failed = self.flush().get(db)
        if failed is not None:
            raise failed

    def autopilot(self, group: Group, pilot: Pilot, now: float = 0.0) -> Effects:
        """Run one autopilot step of ring `group`: its update and the next step's `Arm` (none: done or stale)."""
        fx = Effects()
        state: FreestyleRing = self.tournament(group[0]).ring(group[1])
        div = state.divisions.get(pilot.divid)
        if div is None or not autopilot.valid(div, pilot):
            return fx
        changed, nxt, delay = autopilot.run(div, pilot, self.delays)
        if changed:
            state.touch(div, f"autopilot {pilot.step}")
            self.flush_now(group[0])
            fx.broadcast(group, Update("division", "division", div.snapshot(), pilot.request))
        if nxt is not None:
            fx.arm(group, delay, nxt)
        return fx


# -- reads ------------------------------------------------------------------------------

@handler("division_read")
def division_read(ctx: Context) -> None:
    """Sender only; a missing division is upstream's read failure (the tablet looks for its phrase)."""
    divid = ctx.request.get("divid")
    try:
        div = ctx.ring.division(wire.divid(ctx.request) if divid is not None else None)
    except RequestError as e:
        ctx.fx.send(ctx.conn, wire.read_error(e.message, ctx.request))
        return
    ctx.division_update(div, to_sender=True)


@handler("ring_read")
def ring_read(ctx: Context) -> None:
    ctx.ring_update(to_sender=True)


@handler("division_judge_query")
def judge_query(ctx: Context) -> None:
    """The connections whose role is `judgeN` (upstream answers the number 0, §17.7)."""
    judges = sorted(({"judge": j, "cid": c.cid} for c in ctx.clients
                     if (j := judge_number(c.role)) is not None and c.route.group == ctx.ring.group),
                    key=lambda x: (x["judge"], x["cid"]))
    ctx.fx.send(ctx.conn, wire.judges_frame(judges))


# -- scoring ----------------------------------------------------------------------------

@handler("division_score")
def score(ctx: Context) -> None:
    div = ctx.ring.division()
    judge, value = wire.judge_score(ctx.request, div.judges)
    if not div.athletes:
        raise RequestError("Division has no athletes")
    athlete = actions.score(div, judge, value)
    ctx.arm(div, athlete)
    ctx.ring.touch(div, ctx.request["action"])
    ctx.division_update(div)


@handler("division_award_penalty")
def award_penalty(ctx: Context) -> None:
    div = ctx.ring.division()
    actions.award_penalty(div, wire.athlete_id(ctx.request, len(div.athletes)), wire.penalty(ctx.request))
    ctx.ring.touch(div, ctx.request["action"])
    ctx.division_update(div)


@handler("division_award_punitive")
def award_punitive(ctx: Context) -> None:
    """A decision completes the athlete and arms the autopilot from the current athlete's position."""
    div = ctx.ring.division()
    athlete = wire.athlete_id(ctx.request, len(div.athletes))
    actions.award_punitive(div, athlete, wire.decision(ctx.request))
    ctx.arm(div, div.current if div.complete(div.current) else athlete)
    ctx.ring.touch(div, ctx.request["action"])
    ctx.division_update(div)


# -- navigation (every manual move cancels the autopilot) -------------------------------

def _manual(move: Callable[[Context, Division], None]) -> Handler:
    def run(ctx: Context) -> None:
        div = ctx.ring.division()
        ctx.cancel_autopilot()
        move(ctx, div)
        ctx.ring.touch(div, ctx.request["action"])
        ctx.division_update(div)
    run.__doc__ = move.__doc__
    return run


def _simple(action: Callable[[Division], None]) -> Handler:
    return _manual(lambda ctx, div: action(div))


HANDLERS.update({
    "division_athlete_next": _simple(lambda div: actions.athlete_step(div, +1)),
    "division_athlete_prev": _simple(lambda div: actions.athlete_step(div, -1)),
    "division_round_next": _simple(actions.round_next),
    "division_round_prev": _simple(actions.round_prev),
    "division_display": _simple(actions.toggle_display),
    "division_view_next": _simple(actions.view_next),
})


def _athlete_delete(ctx: Context, div: Division) -> None:
    actions.delete_athlete(div, wire.athlete_id(ctx.request, len(div.athletes)))


HANDLERS["division_athlete_delete"] = _manual(_athlete_delete)


@handler("division_navigate")
def navigate(ctx: Context) -> None:
    target = wire.target(ctx.request)
    if target.divid is None:
        def to_athlete(ctx: Context, div: Division) -> None:
            if target.athlete is None or not div.valid_athlete(target.athlete):
                raise RequestError(f"Invalid index '{target.athlete}'")
            actions.navigate_athlete(div, target.athlete)
        _manual(to_athlete)(ctx)
        return
    ring = ctx.ring
    if target.divid not in ring.divisions:
        if ring.ring == STAGING:
            raise RequestError(wire.not_in_ring(ring.ring, target.divid))
        staging = ctx.ring.t.ring(STAGING)
        if target.divid not in staging.divisions:
            raise RequestError(wire.not_in_ring(ring.ring, target.divid))
        _move(ctx, staging, ring, target.divid)  # loaded, not only moved (§17.11)
    ctx.cancel_autopilot()
    ring.set_current(target.divid)
    ctx.ring_update()


# -- divisions of the ring --------------------------------------------------------------

def _move(ctx: Context, source: FreestyleRing, target: FreestyleRing, divid: str) -> None:
    """Move a division between ring folders: written at its new place (its `file` follows, §17.5), then
    removed from the old one, so a failed write loses nothing."""
    div = source.divisions[divid]
    path = target.new_path(divid)
    if divid in target.divisions or ctx.logic.store.holds(path):
        raise RequestError(f"File '{path}' exists.")
    moved = Division(div.data, divid, str(path), target.ring, ctx.logic.rng)
    moved.path = path
    try:
        ctx.logic.store.commit(target, moved, ["transfer"], 0.0)
    except OSError as e:
        raise SaveError(source.t.db, e) from e
    target.divisions[divid] = moved
    target.sort()
    ctx.logic.store.delete(div.path)
    del source.divisions[divid]


@handler("ring_division_next", "ring_division_prev")
def division_step(ctx: Context) -> None:
    ctx.cancel_autopilot()
    ctx.ring.step_current(+1 if ctx.request["action"].split()[-1] == "next" else -1)
    ctx.ring_update()


@handler("ring_transfer")
def transfer(ctx: Context) -> None:
    divid, to = wire.transfer(ctx.request)
    ring = ctx.ring
    ring.division(divid)
    if to == ring.ring:
        raise RequestError(f"Division '{divid}' is already in ring {to}")
    ctx.cancel_autopilot()
    if ring.current_divid() == divid:
        ring.step_current(+1, leaving=divid)
    _move(ctx, ring, ctx.ring.t.ring(to), divid)
    ctx.ring_update()


@handler("ring_division_delete")
def division_delete(ctx: Context) -> None:
    divid = wire.divid(ctx.request)
    ring = ctx.ring
    div = ring.division(divid)
    ctx.cancel_autopilot()
    if ring.current_divid() == divid:
        ring.step_current(+1, leaving=divid)
    ctx.logic.store.delete(div.path)
    del ring.divisions[divid]
    ctx.ring_update()


@handler("division_write")
def write(ctx: Context) -> None:
    """Create or (with `overwrite`) replace a division of the connection's ring folder (staging: `staging/`)."""
    written = wire.written_division(ctx.request)
    ring = ctx.ring
    name = written["name"]
    path = ring.new_path(name)
    existing = ring.divisions.get(name)
    if (existing is not None or ctx.logic.store.holds(path)) and not to_bool(ctx.request.get("overwrite")):
        ctx.fx.send(ctx.conn, wire.write_error(written, str(path)))
        return
    ctx.cancel_autopilot()
    div = Division(actions.merged(written, existing), name, str(path), ring.ring, ctx.logic.rng)
    div.path = path
    ring.divisions[name] = div
    ring.sort()
    ring.touch(div, "write")
    ctx.fx.send(ctx.conn, wire.write_ok(written, str(path)))
    ctx.ring_update()


def _edit(ctx: Context, div: Division) -> None:
    athletes = wire.names(ctx.request)
    if ctx.request["action"].split()[0] == "edit":
        actions.edit_athletes(div, [(wire.edit_order(a), a["name"]) for a in athletes])
    else:
        actions.filter_athletes(div, [a["name"] for a in athletes])


@handler("division_edit_athletes", "division_filter_athletes")
def edit_athletes(ctx: Context) -> None:
    div = ctx.ring.division(wire.divid(ctx.request))
    ctx.cancel_autopilot()
    _edit(ctx, div)
    ctx.ring.touch(div, ctx.request["action"])
    ctx.division_update(div)
