"""Worldclass's Twisted service: rings as groups of connections, timers, and the batch of writes then sends.

Rules live in `logic`; this module applies their outcomes: it sends to the
requester, broadcasts to a ring, runs the ping and autopilot timers and
writes a batch of changes before any of it goes out (group commit).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge, Histogram
from twisted.logger import Logger

from freescore.broadcast import server_frame
from freescore.protocolservice import ProtocolService, ServiceContext
from freescore.websocket import WebSocketEndpoint
from freescore.wireformat import CloseCode
from freescore.worldclass import demo, logic, wire
from freescore.worldclass.adapter import WorldclassHttp, WorldclassProtocol
from freescore.worldclass.model import AutopilotToken, Client, Outcome, SaveError, UnknownRequest, users_list
from freescore.worldclass.settings import Settings
from freescore.worldclass.wire import RequestError

log = Logger(namespace="freescore.worldclass")


@dataclass
class Pending:
    """A send queued behind the batch's file writes.

    `db` is set for a request's outcome (a change or a read that may show unsaved state): if
    that tournament's write fails, the requester gets an error frame instead. Error frames have
    `db` None and always go out.
    """

    send: Callable[[], None]
    proto: Any = None
    db: str | None = None
    request: Any = None


class WorldclassService(ProtocolService[Settings]):
    """Rings as groups of connections, the ping and autopilot timers, and the batch of writes then sends."""

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        self.model = logic.Worldclass(self.settings.data)
        self.groups: dict[tuple[str, Any], list[WorldclassProtocol]] = {}
        self.autopilot_calls: dict[tuple[str, Any], Any] = {}
        self.ping_calls: dict[WorldclassProtocol, Any] = {}
        self.idle_calls: dict[WorldclassProtocol, Any] = {}
        self.ping_intervals: dict[WorldclassProtocol, float] = {}
        self.pending: list[Pending] = []
        self.session_cache: dict[WorldclassProtocol, tuple[tuple[int, int, int], bool]] = {}
        self.flush_call: Any = None
        self.handled = Histogram(
            "freescore_worldclass_request_seconds",
            "A request's frame received -> its broadcast written to every socket (server side)",
            buckets=(0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=ctx.metrics.registry,
        )
        self.loaded = Gauge("freescore_worldclass_tournaments_loaded",
                            "Tournaments whose model is in memory (dropped when their last connection leaves)",
                            registry=ctx.metrics.registry)
        self.loaded.set_function(lambda: len(self.model.tournaments))
        self.factory = self.websocket_factory(WorldclassProtocol)
        self.broadcaster = self.make_broadcaster()
        http = WorldclassHttp(self)
        self.resources = {"/worldclass": WebSocketEndpoint(self.factory, http=http, subpaths=True)}
        if self.settings.listen and ctx.config.has_own_listeners(ctx.name):
            self.resources[""] = http  # listeners named for it alone: every path answers as upstream

    def startService(self) -> None:
        if self.settings.create_data:
            self.settings.data.mkdir(parents=True, exist_ok=True)
        super().startService()
        log.info("worldclass: data root {data}", data=str(self.settings.data))
        if self.settings.demo:
            created = demo.ensure(self.settings.data)
            log.info("worldclass: demo tournament {path} ({what})", path=str(self.settings.data / demo.DB),
                     what="created" if created else "kept as it is")

    def stopService(self) -> Any:
        if self.flush_call is not None and self.flush_call.active():
            self.flush_call.cancel()
        self._flush()  # what was accepted is written (and sent, while the connections still exist)
        for calls in (self.autopilot_calls, self.ping_calls, self.idle_calls):
            for call in list(calls.values()):
                if call.active():
                    call.cancel()
            calls.clear()
        return super().stopService()

    # -- membership ---------------------------------------------------------
    def members(self, proto: WorldclassProtocol) -> list[WorldclassProtocol]:
        assert proto.client is not None
        return self.groups.get(proto.client.route.group, [])

    def clients(self, proto: WorldclassProtocol) -> list[Client]:
        return [p.client for p in self.members(proto) if p.client is not None]

    def users(self, proto: WorldclassProtocol) -> list[dict[str, Any]]:
        return users_list(self.clients(proto))

    def join(self, proto: WorldclassProtocol) -> None:
        client = proto.client
        assert client is not None
        self.groups.setdefault(client.route.group, []).append(proto)
        self.ping_intervals[proto] = self.settings.ping_interval
        self.ping_calls[proto] = self.reactor.callLater(self.settings.ping_interval, self._ping, proto)
        self.idle_calls[proto] = self.reactor.callLater(self.settings.inactivity_timeout, self._idle, proto)
        others = [p for p in self.members(proto) if p is not proto]
        if others:
            self._users_update(proto, {"type": "users", "action": "update", "ring": client.route.ring_text,
                                       "user": {"action": "connect", "cid": client.cid, "id": client.id,
                                                "role": client.role}}, others)

    def leave(self, proto: WorldclassProtocol) -> None:
        client = proto.client
        if client is None:
            return
        for calls in (self.ping_calls, self.idle_calls):
            call = calls.pop(proto, None)
            if call is not None and call.active():
                call.cancel()
        self.ping_intervals.pop(proto, None)
        self.session_cache.pop(proto, None)
        group = self.groups.get(client.route.group, [])
        if proto in group:
            group.remove(proto)
        if not group:
            self.groups.pop(client.route.group, None)
            self._drop_idle()
            return
        self._users_update(group[0], {"type": "users", "action": "update", "ring": client.route.ring_text,
                                      "user": {"action": "disconnect", "cid": client.cid, "id": client.id,
                                               "role": client.role}})

    def _users_update(self, proto: WorldclassProtocol, request: dict[str, Any],
                      recipients: list[WorldclassProtocol] | None = None) -> None:
        payload = wire.users_frame(request, self.users(proto), wire.utc_time(self.reactor.seconds()))
        self.broadcaster.broadcast(self.members(proto) if recipients is None else recipients, server_frame(payload))

    def _idle(self, proto: WorldclassProtocol) -> None:
        self.idle_calls.pop(proto, None)
        log.info("worldclass: closing idle connection {peer}", peer=proto.peer)
        proto.close_with(CloseCode.NORMAL, "inactive")

    # -- ping / pong --------------------------------------------------------
    def _ping(self, proto: WorldclassProtocol) -> None:
        self.ping_calls.pop(proto, None)
        client = proto.client
        if client is None or not client.pinging or proto.state != proto.STATE_OPEN:
            return
        before = client.health
        stamp = wire.utc_time(self.reactor.seconds())
        client.ping(stamp)
        proto.sendMessage(wire.ping_frame(client.route.ring, client.cid, client.route.gid, client.role, stamp))
        if client.health != before:
            self._users_update(proto, {"type": "users", "action": "update", "ring": None,
                                       "status": {"cid": client.cid, "role": wire.title_role(client.role),
                                                  "health": client.health}})
        if client.health == "dead":
            return
        self.ping_calls[proto] = self.reactor.callLater(self.ping_intervals[proto], self._ping, proto)

    def _pong(self, proto: WorldclassProtocol, request: dict[str, Any]) -> None:
        client = proto.client
        assert client is not None
        server = request.get("server")
        ping = server.get("ping") if isinstance(server, dict) else None
        stamp = ping.get("timestamp") if isinstance(ping, dict) else None
        if not client.pong(stamp):
            return
        interval = client.next_interval()
        if interval is not None:
            interval *= self.settings.ping_interval / 30.0  # the ladder is written for 30 s
            self.ping_intervals[proto] = interval
            call = self.ping_calls.get(proto)
            if call is not None and call.active():
                call.reset(interval)
        self._users_update(proto, {"type": "users", "action": "update", "ring": None,
                                   "status": {"cid": client.cid, "role": wire.title_role(client.role),
                                              "health": client.health}})

    def _stop_ping(self, proto: WorldclassProtocol) -> None:
        assert proto.client is not None
        proto.client.pinging = False
        call = self.ping_calls.pop(proto, None)
        if call is not None and call.active():
            call.cancel()
        self._users_update(proto, {"type": "users", "action": "update", "ring": proto.client.route.ring_text,
                                   "status": {"cid": proto.client.cid, "role": wire.title_role(proto.client.role),
                                              "health": "n/a"}})

    # -- requests -----------------------------------------------------------
    def _error(self, proto: WorldclassProtocol, message: str, request: Any = None) -> None:
        self.ctx.metrics.errors.inc()
        self._later(Pending(self._error_send(proto, message, request)))

    def _later(self, entry: Pending) -> None:
        """Queue a send behind the batch's file writes; one flush per reactor turn (group commit)."""
        self.pending.append(entry)
        if self.flush_call is None:
            self.flush_call = self.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        """Write the batch, then send it: outcomes of a tournament whose write failed become errors."""
        self.flush_call = None
        self._flush_model()
        pending, self.pending = self.pending, []
        for entry in pending:
            try:
                entry.send()
            except Exception:
                log.failure("worldclass: sending a queued frame failed")
        self._drop_idle()

    def _flush_model(self) -> None:
        try:
            failed = self.model.flush()
        except Exception as e:  # a bug, not a write error: fail every tournament of the batch
            log.failure("worldclass: flushing the data directory failed")
            failed = {db: SaveError(db, e) for db in list(self.model.tournaments)}
            self.model.tournaments.clear()
        for error in failed.values():
            self._save_failed(error)

    def _save_failed(self, error: SaveError) -> None:
        """A write failed: nothing of that tournament's batch is broadcast; each requester gets an error.

        The model already forgot the tournament (it re-reads the files on next use); queued
        outcomes for it are turned into error frames, queued error frames stay as they are.
        """
        log.error("worldclass: {message}: {error}", message=error.message, error=repr(error.error))
        self.model.tournaments.pop(error.db, None)
        self._cancel_autopilot(error.db)
        message = f"Error while processing request: {error.message}\n"
        for entry in self.pending:
            if entry.db == error.db:
                self.ctx.metrics.errors.inc()
                entry.send = self._error_send(entry.proto, message, entry.request)
                entry.db = None

    @staticmethod
    def _error_send(proto: WorldclassProtocol, message: str, request: Any) -> Callable[[], None]:
        return lambda: proto.sendMessage(wire.error_frame(message, request))

    def _cancel_autopilot(self, db: str) -> None:
        for key in [k for k in self.autopilot_calls if k[0] == db]:
            call = self.autopilot_calls.pop(key)
            if call.active():
                call.cancel()

    def _drop_idle(self) -> None:
        """Forget the in-memory model of every tournament no connection or autopilot step uses any more.

        Run after the batch's flush (a pending outcome may still need its tournament).
        """
        if self.flush_call is not None:
            return
        busy = {key[0] for key in self.groups} | {key[0] for key in self.autopilot_calls}
        for db in [db for db in self.model.tournaments if db not in busy]:
            try:
                self.model.drop(db)
            except SaveError as e:
                self._save_failed(e)

    def receive(self, proto: WorldclassProtocol, payload: bytes, is_binary: bool) -> None:
        received = time.perf_counter()
        client = proto.client
        assert client is not None
        idle = self.idle_calls.get(proto)
        if idle is not None and idle.active():
            idle.reset(self.settings.inactivity_timeout)
        if is_binary:
            self._error(proto, "Invalid request: binary frames are not supported")
            return
        try:
            request = wire.decode_request(payload)
        except RequestError as e:
            log.info("worldclass: bad frame from {cid}: {error}", cid=client.cid, error=e.message)
            self._error(proto, e.message)
            return
        if self.settings.sessions is not None and not self._session_ok(proto):
            self._error(proto, f"Unauthorized user {client.description} in ring {client.route.ring_text}",
                        request)
            return
        request["tournament"] = client.route.db
        request["ring"] = client.route.ring_text
        request["from"] = {"cid": client.cid, "role": client.role}
        kind = wire.handler_name(request["type"]) + "_" + wire.handler_name(request["action"])
        if kind == "client_pong":
            self._pong(proto, request)
            return
        if kind == "server_stop_ping":
            self._stop_ping(proto)
            return
        if wire.is_silent(request):
            return
        now = self.reactor.seconds()
        try:
            outcome = self.model.handle(client, request, self.clients(proto), now, autoflush=False)
        except UnknownRequest:
            log.info("worldclass: unknown request {kind} from {cid}", kind=kind, cid=client.cid)
            self._error(proto, f"Unknown request '{request['type']}' '{request['action']}'", request)
            return
        except SaveError as e:
            self._save_failed(e)
            self._error(proto, f"Error while processing request: {e.message}\n", request)
            return
        except RequestError as e:
            self._flush_model()
            self._invalidate(client)
            msg = e.message if e.message.startswith("Invalid ") else f"Error while processing request: {e.message}\n"
            self._error(proto, msg, request)
            return
        except Exception as e:  # a bug must not take the ring down
            log.failure("worldclass: handler {kind} failed", kind=kind)
            self._flush_model()
            self._invalidate(client)
            self._error(proto, f"Error while processing request: {e}\n", request)
            return

        def send() -> None:
            self.deliver(proto, outcome)
            self.handled.observe(time.perf_counter() - received)

        self._later(Pending(send, proto, client.route.db, request))

    def _invalidate(self, client: Client) -> None:
        """After a failed request, re-read the tournament from disk: memory never drifts from the files."""
        self.model.tournaments.pop(client.route.db, None)
        self._cancel_autopilot(client.route.db)

    def _session_ok(self, proto: WorldclassProtocol) -> bool:
        """Check the PHP session, re-reading its file only when it changed (inode, mtime, size)."""
        client = proto.client
        if client is None or not client.sessid or self.settings.sessions is None:
            return False
        path = self.settings.sessions / f"sess_{client.sessid}"
        try:
            st = path.stat()
        except OSError:
            self.session_cache.pop(proto, None)
            return False
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self.session_cache.get(proto)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            data = path.read_bytes()
        except OSError:
            self.session_cache.pop(proto, None)
            return False
        ok = wire.session_allows(wire.parse_php_session(data), client.route.ring_text)
        self.session_cache[proto] = (stamp, ok)
        return ok

    def deliver(self, proto: WorldclassProtocol, outcome: Outcome) -> None:
        client = proto.client
        assert client is not None
        key = (client.route.db, client.route.ring)
        if outcome.cancel:
            call = self.autopilot_calls.pop(key, None)
            if call is not None and call.active():
                call.cancel()
        self._send(proto, outcome)
        if outcome.arm is not None:
            self.autopilot_calls[key] = self.reactor.callLater(0, self._autopilot, proto, key, outcome.arm,
                                                               "scoreboard")

    def _send(self, proto: WorldclassProtocol, outcome: Outcome) -> None:
        now = wire.utc_time(self.reactor.seconds())
        users: list[dict[str, Any]] | None = None
        for out in outcome.out:
            if out.target == "sender":
                proto.sendMessage(wire.frame(out.payload))
                continue
            key = "division" if out.kind == "division" else "ring"
            if out.target.startswith("ring:"):
                assert proto.client is not None
                other = wire.parse_ring(out.target[5:])
                members = self.groups.get((proto.client.route.db, other), [])
                if members:
                    frame = wire.update_frame(out.type, key, out.payload, out.request, self.users(members[0]), now)
                    self.broadcaster.broadcast(members, server_frame(frame))
                continue
            if users is None:
                users = self.users(proto)
            frame = wire.update_frame(out.type, key, out.payload, out.request, users, now)
            self.broadcaster.broadcast(self.members(proto), server_frame(frame))

    def _autopilot(self, proto: WorldclassProtocol, key: tuple[str, Any], token: AutopilotToken, step: str) -> None:
        self.autopilot_calls.pop(key, None)
        try:
            outcome, nxt = self.model.autopilot(key[0], key[1], token, step, self.reactor.seconds())
        except SaveError as e:
            self._save_failed(e)
            self._drop_idle()
            return
        except Exception:
            log.failure("worldclass: autopilot step {step} failed", step=step)
            self._drop_idle()
            return
        self._send(proto, outcome)
        if nxt is not None:
            delay = self.settings.scoreboard_delay if step == "scoreboard" else self.settings.leaderboard_delay
            self.autopilot_calls[key] = self.reactor.callLater(delay, self._autopilot, proto, key, token, nxt)
        else:
            self._drop_idle()


def make_service(ctx: ServiceContext) -> WorldclassService:
    """The composition root's one call into this package."""
    return WorldclassService(ctx)
