"""Grassroots's Twisted service: the common FreeScore machinery, plus REST and the live SSE streams.

Ring groups, the batch with group commit, autopilot timers by ring, idle
connections and the listener rule are `freescore.poomsae.service`'s; this
names the service (no role in its route, no pings or users), annotates
requests as upstream does, answers the tablet's REST calls in the same batch
as the WebSocket requests (after the flush that writes them) and streams
every ring a flush wrote to its SSE clients.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from freescore.effects import apply_effects
from freescore.grassroots import logic, wire
from freescore.grassroots.adapter import (
    GrassrootsEvents,
    GrassrootsRest,
    drop_stream,
    stream_unsent,
)
from freescore.grassroots.settings import Settings
from freescore.grassroots.sse import RingEvents
from freescore.grassroots.store import GrassrootsStore
from freescore.poomsae import users
from freescore.poomsae.frames import processing_error
from freescore.poomsae.ids import RequestError, SaveError
from freescore.poomsae.service import FreeScoreService
from freescore.protocolservice import ServiceContext


@dataclass
class RestCall:
    """A REST call decided and waiting for the batch's writes."""

    db: str
    out: logic.Outcome
    answer: Callable[[Any], None]


class GrassrootsService(FreeScoreService):
    """FreeScore grassroots: `/grassroots/<db>/<ring>`, REST on its own listener, SSE for the displays."""

    settings: Settings
    model: logic.Grassroots
    route_name = wire.SERVICE
    error_prefix = "FreeScore Grassroots"
    with_role = False

    def __init__(self, ctx: ServiceContext) -> None:
        s = ctx.settings
        assert isinstance(s, Settings)
        self.store = GrassrootsStore(s.data)
        super().__init__(ctx, logic.Grassroots(self.store, s.autopilot))
        self.events = RingEvents(self.reactor, self._snapshot, s.sse_replay, s.sse_heartbeat,
                                 max_unsent=s.sse_max_unsent, unsent=stream_unsent, drop=drop_stream)
        self.factory.also_counted = self.events.count  # one max_connections for WebSockets and streams
        self.rest_pending: list[RestCall] = []
        rest = GrassrootsRest(self)
        self.resources[s.rest_path] = rest
        self.resources[s.sse_path] = GrassrootsEvents(self)
        if "" in self.resources:
            self.resources[""] = rest  # a listener of its own: the REST layout at its root, as upstream's 3080

    def startService(self) -> None:
        super().startService()
        self.events.start()

    def stopService(self) -> Any:
        self.events.stop()
        return super().stopService()

    def unknown_path(self, path: str) -> str:
        """Upstream grassroots names no path in its unknown-command error."""
        return wire.UNKNOWN_COMMAND

    def annotate(self, client: users.Client, request: dict[str, Any]) -> None:
        """`tournament` and the ring (an integer for a numbered ring, as upstream); no `from`."""
        request["tournament"] = client.route.db
        request["ring"] = client.route.ring

    def tournament_allowed(self, db: str) -> bool:
        return self.settings.create_tournaments or self.model.exists(db)

    # -- REST: answered in the batch, after the flush (group commit with the WebSocket requests) --

    def rest(self, command: wire.Rest, answer: Callable[[Any], None]) -> None:
        """Decide one REST call now; `answer(json)` runs once its changes are on disk."""
        if not self.tournament_allowed(command.db):
            answer({"error": f"No tournament '{command.db}'"})
            return
        try:
            out = self.model.rest(command, self.reactor.seconds())
        except (SaveError, OSError) as e:
            error = self.disk_error(command.db, e)
            self._save_failed(error)
            answer({"error": processing_error(error.message)})
            return
        except Exception as e:  # a bug must not take the ring down: the files are re-read next time
            self.log.failure("grassroots: REST {action} failed", action=command.action)
            self._flush_model()
            self._invalidate(command.db)
            answer({"error": processing_error(str(e))})
            return
        self.rest_pending.append(RestCall(command.db, out, answer))
        if self.flush_call is None:
            self.flush_call = self.reactor.callLater(0, self._flush)

    def _save_failed(self, error: SaveError) -> None:
        super()._save_failed(error)
        for call in self.rest_pending:
            if call.db == error.db:
                call.out = logic.Outcome(answer={"error": processing_error(error.message)})

    def _flush_model(self) -> None:
        """Write the batch; then stream the rings it wrote and answer the REST calls that waited for it."""
        super()._flush_model()
        self._stream()
        calls, self.rest_pending = self.rest_pending, []
        for call in calls:
            apply_effects(self, call.out.effects)
            call.answer(call.out.answer)

    # -- SSE ------------------------------------------------------------------------------

    def fired(self, key: Hashable, payload: Any) -> None:
        super().fired(key, payload)
        self._stream()

    def _stream(self) -> None:
        """Every ring the last writes changed: one event for its SSE clients."""
        for key in self.store.take_written():
            try:
                self.events.changed(key)
            except Exception:  # a display's stream must not keep the batch's REST answers waiting
                self.log.failure("grassroots: streaming ring {key} failed", key=key)

    def _snapshot(self, key: Hashable) -> str:
        db, ring = key  # type: ignore[misc]
        try:
            return wire.sse_data(self.model.ring(db, ring).ring_json())
        except (RequestError, OSError) as e:
            return wire.sse_error(getattr(e, "message", str(e)))


def make_service(ctx: ServiceContext) -> GrassrootsService:
    """The composition root's one call into this package."""
    return GrassrootsService(ctx)
