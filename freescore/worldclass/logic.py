"""Worldclass rules: the one entry for requests (`Worldclass.handle`) and autopilot steps.

No reactor and no Autobahn here: the adapter passes in the request, the
client and the time, and gets back what to send to whom. Every change is
written (atomically) before `handle` returns, or at the caller's `flush()`
when it batches (group commit), and always before the caller broadcasts it.
One function per request is in `handlers.py`; the tournaments, rings and
divisions are in `model.py`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from freescore.poomsae import store
from freescore.poomsae.layout import Layout
from freescore.worldclass import scoring, wire
from freescore.worldclass.divfile import Division
from freescore.worldclass.handlers import BATCHABLE, HANDLERS, Context
from freescore.worldclass.model import (
    FORMS_DIR,
    AutopilotToken,
    Client,
    Out,
    Outcome,
    SaveError,
    Tournament,
    UnknownRequest,
)
from freescore.worldclass.wire import Ring


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

    def exists(self, db: str) -> bool:
        """Whether `<root>/<db>` is a folder (a tournament someone set up, not just a name in a URL)."""
        return store.tournament_exists(Layout(self.root, FORMS_DIR), db)

    def drop(self, db: str) -> None:
        """Forget a tournament's in-memory model (its files stay); pending changes are written first.

        A SaveError still drops it: the next use re-reads the disk.
        """
        t = self.tournaments.get(db)
        if t is None:
            return
        try:
            t.flush()
        finally:
            self.tournaments.pop(db, None)

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
        try:
            if name not in BATCHABLE:
                t.flush()
            try:
                return handler(ctx)
            finally:
                if autoflush or name not in BATCHABLE:
                    t.flush()
        except SaveError:
            self.tournaments.pop(t.db, None)  # memory never drifts from the files: re-read them
            raise

    def flush(self) -> dict[str, SaveError]:
        """Write every tournament's pending changes; returns the ones that failed (already dropped)."""
        failed: dict[str, SaveError] = {}
        for db, t in list(self.tournaments.items()):
            try:
                t.flush()
            except SaveError as e:
                failed[db] = e
                self.tournaments.pop(db, None)
        return failed

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
        try:
            t.flush()
        except SaveError:
            self.tournaments.pop(db, None)
            raise
        out = Outcome(out=[Out("division", "group", state.division_json(loaded), "division", request)])
        return out, nxt


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

