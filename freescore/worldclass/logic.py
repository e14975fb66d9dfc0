"""Worldclass rules: the one entry for requests (`Worldclass.handle`) and autopilot steps.

No reactor, no Autobahn and no file access here: the service passes in the
requester's connection id, its client, the request and the time, and gets back
`Effects` (freescore.effects) to apply: `Send` to a connection, `Broadcast` of a
`wire.Update` to a ring group `(db, ring)`, `Arm`/`Cancel` of the ring's
autopilot timer (keyed by the same group; its payload is an `AutopilotStep`
to hand back to `autopilot`). Files are the `WorldclassStore`'s (store.py),
handed in: every change is written at `flush()`, which the service runs
before it applies any effect (group commit). One function per request is in
`handlers.py`; the tournaments, rings and divisions are in `model.py`.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from freescore.effects import ConnId, Effects
from freescore.poomsae import rings
from freescore.worldclass import bracket_handlers, scoring, wire
from freescore.worldclass.bracket_handlers import BracketStep
from freescore.worldclass.divfile import Division
from freescore.worldclass.handlers import BATCHABLE, HANDLERS, Context
from freescore.worldclass.model import AutopilotStep, Client, SaveError, Tournament, UnknownRequest
from freescore.worldclass.wire import Ring, Update

if TYPE_CHECKING:
    from freescore.worldclass.store import WorldclassStore


class Worldclass(rings.Tournaments):
    """Every tournament under the data root; `handle` is the one entry for requests."""

    tournament_class = Tournament
    tournaments: dict[str, Tournament]

    def __init__(self, store: WorldclassStore, rng: random.Random | None = None,
                 scoreboard_delay: float = 9.0, leaderboard_delay: float = 12.0, bracket_pace: float = 1.0) -> None:
        super().__init__(store, rng)
        self.delays = {"scoreboard": scoreboard_delay, "leaderboard": leaderboard_delay}
        self.bracket_pace = bracket_pace

    def tournament(self, db: str) -> Tournament:
        t: Tournament = super().tournament(db)
        return t

    def handle(self, conn: ConnId, client: Client, request: dict[str, Any], clients: list[Client], now: float,
               autoflush: bool = True) -> Effects:
        """Dispatch an annotated request; RequestError -> the caller sends the error frame.

        Scores and reads may be batched: with `autoflush=False` the caller must `flush()`
        before it applies the effects. Everything else flushes what is pending first.
        """
        t = self.tournament(client.route.db)
        ctx = Context(t, client, request, clients, now, conn)
        name = wire.request_kind(request)
        handler = HANDLERS.get(name)
        if handler is None:
            raise UnknownRequest(name)
        try:
            if name not in BATCHABLE:
                t.flush()
            try:
                effects: Effects = handler(ctx)
                return effects
            finally:
                if autoflush or name not in BATCHABLE:
                    t.flush()
        except SaveError:
            self.forget(t.db)  # memory never drifts from the files: re-read them
            raise

    # -- autopilot ----------------------------------------------------------------
    def autopilot(self, group: tuple[str, Ring], step: AutopilotStep | BracketStep, now: float) -> Effects:
        """Run one autopilot step of ring `group`; its update and the next step's `Arm` (none: done or stale)."""
        if isinstance(step, BracketStep):
            return self._bracket_autopilot(group, step, now)
        db, ring = group
        token = step.token
        t = self.tournament(db)
        state = t.ring(ring)
        loaded = state.divisions.get(token.divid)
        effects = Effects()
        if state.autopilot_gen != token.gen or loaded is None:
            return effects
        div = loaded.div
        if (div.round, div.current, div.form) != (token.round, token.current, token.form):
            return effects
        if step.step != "scoreboard" and div.autopilot != "on":
            return effects
        request = dict(token.request, action=step.step)
        nxt: str | None
        if step.step == "scoreboard":
            div.autopilot = "on"
            nxt = "leaderboard" if _leaderboard_due(div) else "next"
        elif step.step == "leaderboard":
            div.state = "display"
            nxt = "next"
        else:
            _autopilot_move(div, loaded.results)
            div.state = "score"
            div.autopilot = "off"
            nxt = None
        state.save(loaded, f"autopilot {step.step}", now)
        try:
            t.flush()
        except SaveError:
            self.forget(db)
            raise
        effects.broadcast(group, Update("division", "division", state.division_json(loaded), request))
        if nxt is not None:
            effects.arm(group, self.delays[step.step], AutopilotStep(token, nxt))
        return effects


    def _bracket_autopilot(self, group: tuple[str, Ring], step: BracketStep, now: float) -> Effects:
        """One se/sbs step (bracket_handlers); the next one `bracket_pace` x its delay later."""
        db, ring = group
        t = self.tournament(db)
        update, nxt = bracket_handlers.autopilot_step(t.ring(ring), step, now)
        effects = Effects()
        if update is None:
            return effects
        try:
            t.flush()
        except SaveError:
            self.forget(db)
            raise
        effects.broadcast(group, update)
        if nxt is not None:
            effects.arm(group, bracket_handlers.pause_after(step) * self.bracket_pace, nxt)
        return effects


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

