"""Grassroots's Twisted service: rings as groups of connections, the autopilot timers, the SSE streams.

Every request (WebSocket frame, REST call, autopilot step) runs the same way:
load the ring from its files, let `logic` decide, write what changed
(atomically), then apply the effects and stream the ring's new state.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from twisted.logger import Logger

from freescore.broadcast import server_frame
from freescore.effects import Arm, Broadcast, Cancel, Close, Connections, ConnId, Publish, Send, Timers, apply_effects
from freescore.grassroots import logic, wire
from freescore.grassroots.adapter import GrassrootsEvents, GrassrootsHttp, GrassrootsProtocol, GrassrootsRest
from freescore.grassroots.settings import Settings
from freescore.grassroots.sse import RingEvents
from freescore.grassroots.store import GrassrootsStore
from freescore.poomsae.frames import processing_error
from freescore.poomsae.ids import RequestError, Ring
from freescore.poomsae.requests import decode_request
from freescore.protocolservice import ProtocolService, ServiceContext
from freescore.websocket import WebSocketEndpoint
from freescore.wireformat import CloseCode

log = Logger(namespace="freescore.grassroots")


class GrassrootsService(ProtocolService[Settings]):
    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = self.settings
        self.store = GrassrootsStore(s.data, s.create_tournaments)
        self.rules = logic.Grassroots(s.autopilot)
        self.connections: Connections[GrassrootsProtocol] = Connections("g")
        self.groups: dict[Hashable, list[ConnId]] = {}
        self.timers = Timers(self.reactor)
        self.broadcaster = self.make_broadcaster()
        self.events = RingEvents(self.reactor, self._sse_snapshot, s.sse_replay, s.sse_heartbeat)
        self.factory = self.websocket_factory(GrassrootsProtocol)
        rest = GrassrootsRest(self)
        self.resources = {
            s.path: WebSocketEndpoint(self.factory, http=GrassrootsHttp(self), subpaths=True),
            s.rest_path: rest,
            s.sse_path: GrassrootsEvents(self),
        }
        if s.listen and ctx.config.has_own_listeners(ctx.name):
            self.resources[""] = rest  # a listener of its own: the REST layout at its root, as upstream's 3080

    def startService(self) -> None:
        if self.settings.create_data:
            self.settings.data.mkdir(parents=True, exist_ok=True)
        super().startService()
        self.events.start()
        log.info("grassroots: data root {data}", data=str(self.settings.data))

    def stopService(self) -> Any:
        self.timers.cancel_all()
        self.events.stop()
        return super().stopService()

    # -- connections ----------------------------------------------------------------

    def join(self, proto: GrassrootsProtocol) -> None:
        assert proto.route is not None
        proto.cid = self.connections.add(proto)
        self.groups.setdefault(proto.route.group, []).append(proto.cid)
        self.timers.arm(("idle", proto.cid), self.settings.inactivity_timeout, lambda: self._idle(proto))

    def leave(self, proto: GrassrootsProtocol) -> None:
        if proto.cid is None or proto.route is None:
            return
        self.connections.remove(proto.cid)
        self.timers.cancel(("idle", proto.cid))
        members = self.groups.get(proto.route.group, [])
        if proto.cid in members:
            members.remove(proto.cid)
        if not members:
            self.groups.pop(proto.route.group, None)

    def _idle(self, proto: GrassrootsProtocol) -> None:
        log.info("grassroots: closing idle connection {peer}", peer=proto.peer)
        proto.close_with(CloseCode.NORMAL, "inactive")

    # -- requests -------------------------------------------------------------------

    def receive(self, proto: GrassrootsProtocol, payload: bytes, is_binary: bool) -> None:
        assert proto.route is not None and proto.cid is not None
        self.timers.arm(("idle", proto.cid), self.settings.inactivity_timeout, lambda: self._idle(proto))
        try:
            if is_binary:
                raise RequestError("Invalid request: binary frames are not supported")
            request = decode_request(payload)
        except RequestError as e:
            self.ctx.metrics.errors.inc()
            self.broadcaster.send(proto, server_frame(wire.error(e.message)))
            return
        db, ring = proto.route.db, proto.route.ring
        self._run(db, ring, lambda data: self.rules.handle(data, proto.cid, request), proto)  # type: ignore[arg-type]

    def rest(self, command: wire.Rest) -> Any:
        """One REST call: its answer (after the files are written)."""
        return self._run(command.db, command.ring, lambda data: self.rules.rest(data, command)).answer

    def _autopilot(self, db: str, ring: Ring, step: logic.AutopilotStep) -> None:
        self._run(db, ring, lambda data: self.rules.autopilot(data, step))

    def _run(self, db: str, ring: Ring, decide: Any, proto: GrassrootsProtocol | None = None) -> logic.Outcome:
        """Load, decide, write, then send: nothing goes out about a change that is not on disk."""
        data: logic.RingData | None = None
        try:
            data = self.store.load(db, ring)
            out: logic.Outcome = decide(data)
            self.store.save(data)
        except RequestError as e:
            data, out = None, self._failed(e.message, proto)
        except Exception as e:  # a bug or a write that failed: the ring is re-read from disk next time
            log.failure("grassroots: a request on {db} ring {ring} failed", db=db, ring=ring)
            data, out = None, self._failed(processing_error(str(e)), proto)
        apply_effects(self, out.effects)
        if data is not None and (data.changed or data.progress_changed):
            self.events.changed((db, ring), wire.sse_data(data.ring_json()))
        return out

    def _failed(self, message: str, proto: GrassrootsProtocol | None) -> logic.Outcome:
        self.ctx.metrics.errors.inc()
        out = logic.Outcome(answer={"error": message})
        if proto is not None and proto.cid is not None:
            out.effects.send(proto.cid, wire.error(message))
        return out

    def _sse_snapshot(self, key: Hashable) -> str:
        db, ring = key  # type: ignore[misc]
        try:
            return wire.sse_data(self.store.load(db, ring).ring_json())
        except (RequestError, OSError) as e:
            return wire.sse_error(getattr(e, "message", str(e)))

    # -- effects ----------------------------------------------------------------------

    def do_send(self, effect: Send) -> None:
        proto = self.connections.get(effect.to)
        if proto is not None:
            self.broadcaster.send(proto, server_frame(effect.frame))

    def do_broadcast(self, effect: Broadcast) -> None:
        members = [self.connections.get(c) for c in self.groups.get(effect.group, []) if c != effect.exclude]
        self.broadcaster.broadcast([p for p in members if p is not None], server_frame(effect.frame))

    def do_publish(self, effect: Publish) -> None:
        """Grassroots is single-node: nothing goes to the hub."""

    def do_close(self, effect: Close) -> None:
        proto = self.connections.get(effect.to)
        if proto is not None:
            proto.close_with(effect.code, effect.reason)

    def do_arm(self, effect: Arm) -> None:
        _, db, ring = effect.key
        step = effect.payload
        self.timers.arm(effect.key, effect.delay, lambda: self._autopilot(db, ring, step))

    def do_cancel(self, effect: Cancel) -> None:
        self.timers.cancel(effect.key)


def make_service(ctx: ServiceContext) -> GrassrootsService:
    """The composition root's one call into this package."""
    return GrassrootsService(ctx)
