"""Grassroots's Twisted service: the common FreeScore machinery, plus REST and the live SSE streams.

Ring groups, the batch with group commit, autopilot timers by ring, idle
connections and the listener rule are `freescore.poomsae.service`'s; this
names the service (no role in its route, no pings or users), annotates
requests as upstream does, answers the tablet's REST calls (written before
the answer goes out) and streams every ring a flush wrote to its SSE clients.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from freescore.effects import apply_effects
from freescore.grassroots import logic, wire
from freescore.grassroots.adapter import GrassrootsEvents, GrassrootsHttp, GrassrootsRest
from freescore.grassroots.settings import Settings
from freescore.grassroots.sse import RingEvents
from freescore.grassroots.store import GrassrootsStore
from freescore.poomsae import users
from freescore.poomsae.frames import processing_error
from freescore.poomsae.ids import RequestError
from freescore.poomsae.service import FreeScoreService
from freescore.protocolservice import ServiceContext
from freescore.websocket import WebSocketEndpoint


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
        self.events = RingEvents(self.reactor, self._snapshot, s.sse_replay, s.sse_heartbeat)
        rest = GrassrootsRest(self)
        self.resources[f"/{self.route_name}"] = WebSocketEndpoint(self.factory, http=GrassrootsHttp(self),
                                                                 subpaths=True)
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

    def annotate(self, client: users.Client, request: dict[str, Any]) -> None:
        """`tournament` and the ring (an integer for a numbered ring, as upstream); no `from`."""
        request["tournament"] = client.route.db
        request["ring"] = client.route.ring

    def tournament_allowed(self, db: str) -> bool:
        return self.settings.create_tournaments or self.model.exists(db)

    # -- REST ----------------------------------------------------------------------------

    def rest(self, command: wire.Rest) -> Any:
        """One REST call's answer, given once its changes are on disk."""
        if not self.tournament_allowed(command.db):
            return {"error": f"No tournament '{command.db}'"}
        try:
            out = self.model.rest(command, self.reactor.seconds())
        except Exception as e:  # a bug must not take the ring down: the files are re-read next time
            self.log.failure("grassroots: REST {action} failed", action=command.action)
            self._flush_model()
            self._invalidate(command.db)
            return {"error": processing_error(str(e))}
        failed = self.model.flush()
        for error in failed.values():
            self._save_failed(error)
        if command.db in failed:
            return {"error": processing_error(failed[command.db].message)}
        apply_effects(self, out.effects)
        self._stream()
        self._drop_idle()
        return out.answer

    # -- SSE ------------------------------------------------------------------------------

    def _flush_model(self) -> None:
        super()._flush_model()
        self._stream()

    def fired(self, key: Hashable, payload: Any) -> None:
        super().fired(key, payload)
        self._stream()

    def _stream(self) -> None:
        """Every ring the last writes changed: one event for its SSE clients."""
        for key in self.store.take_written():
            self.events.changed(key)

    def _snapshot(self, key: Hashable) -> str:
        db, ring = key  # type: ignore[misc]
        try:
            return wire.sse_data(self.model.ring(db, ring).ring_json())
        except (RequestError, OSError) as e:
            return wire.sse_error(getattr(e, "message", str(e)))


def make_service(ctx: ServiceContext) -> GrassrootsService:
    """The composition root's one call into this package."""
    return GrassrootsService(ctx)
