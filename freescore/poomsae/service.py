"""The FreeScore service machinery: ring groups, the batch with group commit, autopilot timers, pings.

A FreeScore service is `FreeScoreService` plus its rules. The rules object
(`Rules`: worldclass's `logic.Worldclass`) decides; this applies its effects:

- **Ring groups.** Each connection gets an opaque `ConnId` (`Connections`) and
  joins the group `(db, ring)` of its route; `Broadcast(group, Update)` is
  framed once per group (`frame_update`) and written to every member.
- **Group commit.** A request's effects wait in a batch; once per reactor
  turn the rules write every changed file (`flush`: atomic, fsync), then the
  batch is sent. If a tournament's write fails, each of its requesters gets
  the error frame instead and nothing of that tournament is broadcast.
- **Autopilot.** `Arm(key, delay, payload)` runs `rules.autopilot(key, payload,
  now)` later, keyed by ring group; `Cancel(key)` (a manual action) stops it.
- **Pings and users** (optional, `pings = True`: worldclass). JSON pings on a
  health ladder, `users` updates on connect, leave and health changes.
- **HTTP and listeners.** `/<service>` mounts the WebSocket and the
  `FreeScoreHttp` resource; on listeners of its own (`Config.has_own_listeners`)
  the resource answers every path, as upstream's own port does.
- **Slow consumers.** A connection with more than `max_unsent` bytes unsent
  after a broadcast is closed with 1013 (the kit's `Broadcaster` bound).
- **Idle connections** close after `inactivity_timeout`; a tournament no
  connection or timer uses is dropped from memory (written first).

A subclass sets `route_name`, `error_prefix`, `with_role`, `pings`, and may
override the hooks `annotate`, `is_silent`, `frame_update`, `request_failed`.
"""

from __future__ import annotations

import stat
import time
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from prometheus_client import Gauge, Histogram
from twisted.logger import Logger

from freescore import effects as fx
from freescore.broadcast import server_frame
from freescore.effects import Connections, ConnId, Effects, PeerEffects, Timers, apply_effects
from freescore.poomsae import frames, users
from freescore.poomsae.adapter import FreeScoreHttp, FreeScoreProtocol
from freescore.poomsae.frames import Update, error_frame, processing_error
from freescore.poomsae.ids import RequestError, SaveError, UnknownRequest
from freescore.poomsae.requests import decode_request, request_kind
from freescore.poomsae.session import parse_php_session, session_allows
from freescore.poomsae.settings import FreeScoreSettings
from freescore.protocolservice import ProtocolService, ServiceContext
from freescore.websocket import WebSocketEndpoint
from freescore.wireformat import CloseCode

Group = tuple[str, Any]


class Rules(Protocol):
    """What a FreeScore service's logic offers its service."""

    tournaments: dict[str, Any]

    def exists(self, db: str) -> bool: ...
    def handle(self, conn: ConnId, client: users.Client, request: dict[str, Any], clients: list[users.Client],
               now: float, autoflush: bool = True) -> Effects: ...
    def autopilot(self, group: Group, payload: Any, now: float) -> Effects: ...
    def flush(self) -> dict[str, SaveError]: ...
    def drop(self, db: str) -> None: ...
    def forget(self, db: str) -> None: ...


@dataclass
class Pending:
    """What a request decided, waiting behind the batch's file writes.

    `db` is set for a request's effects (a change, or a read that may show unsaved state): if
    that tournament's write fails, `error` replaces them. Error frames have `db` None and always go out.
    """

    proto: FreeScoreProtocol
    effects: Effects | None = None
    error: bytes | None = None
    db: str | None = None
    request: Any = None
    received: float | None = None


class FreeScoreService(ProtocolService[FreeScoreSettings], PeerEffects):
    """Ring groups, the batch of writes then sends, the autopilot timers and (optionally) pings."""

    route_name: ClassVar[str]
    """The URL segment and status path: `worldclass` (`/worldclass/<db>/<ring>/<role>`)."""
    error_prefix: ClassVar[str]
    """The HTTP side's error prefix: `FreeScore Worldclass Service Error`."""
    with_role: ClassVar[bool] = True
    pings: ClassVar[bool] = False
    protocol: ClassVar[type[FreeScoreProtocol]] = FreeScoreProtocol

    def __init__(self, ctx: ServiceContext, model: Rules) -> None:
        super().__init__(ctx)
        self.log = Logger(namespace=f"freescore.{ctx.name}")
        self.model = model
        self.connections: Connections[FreeScoreProtocol] = Connections()
        self.groups: dict[Group, list[FreeScoreProtocol]] = {}
        self.autopilot = self.timers = Timers(self.reactor)
        self.idle = Timers(self.reactor)
        self.ping_calls = Timers(self.reactor)
        self.ping_intervals: dict[ConnId, float] = {}
        self.session_cache: dict[ConnId, tuple[tuple[int, int, int], bool]] = {}
        self.pending: list[Pending] = []
        self.flush_call: Any = None
        self.handled = Histogram(
            f"freescore_{ctx.name}_request_seconds",
            "A request's frame received -> its broadcast written to every socket (server side)",
            buckets=(0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=ctx.metrics.registry,
        )
        self.loaded = Gauge(f"freescore_{ctx.name}_tournaments_loaded",
                            "Tournaments whose model is in memory (dropped when their last connection leaves)",
                            registry=ctx.metrics.registry)
        self.loaded.set_function(lambda: len(self.model.tournaments))
        self.factory = self.websocket_factory(self.protocol)
        self.broadcaster = self.make_broadcaster(max_unsent=self.settings.max_unsent)
        http = FreeScoreHttp(self)
        self.resources = {f"/{self.route_name}": WebSocketEndpoint(self.factory, http=http, subpaths=True)}
        if self.settings.listen and ctx.config.has_own_listeners(ctx.name):
            self.resources[""] = http  # listeners named for it alone: every path answers as upstream

    def startService(self) -> None:
        if self.settings.create_data:
            self.settings.data.mkdir(parents=True, exist_ok=True)
        super().startService()
        self.log.info("{name}: data root {data}", name=self.name, data=str(self.settings.data))

    def stopService(self) -> Any:
        if self.flush_call is not None and self.flush_call.active():
            self.flush_call.cancel()
        self._flush()  # what was accepted is written (and sent, while the connections still exist)
        for timers in (self.autopilot, self.ping_calls, self.idle):
            timers.cancel_all()
        return super().stopService()

    # -- hooks a service may override ----------------------------------------------
    def annotate(self, client: users.Client, request: dict[str, Any]) -> None:
        """What the service adds to a request before the rules see it (echoed in updates)."""
        request["tournament"] = client.route.db

    def is_silent(self, request: dict[str, Any]) -> bool:
        """Requests answered with nothing at all."""
        return False

    def frame_update(self, update: Update, members: list[FreeScoreProtocol]) -> bytes:
        """One update's frame for a group (encoded once, sent to every member)."""
        return frames.update_frame(update.type, update.key, update.payload, update.request)

    def unknown_path(self, path: str) -> str:
        """The error text of a plain HTTP request for a path the service does not serve."""
        return frames.unknown_command(self.error_prefix, path)

    def request_failed(self, error: Exception, request: dict[str, Any]) -> str:
        """The error text for a request the rules refused or failed on (upstream's wording)."""
        if isinstance(error, UnknownRequest):
            return f"Unknown request '{request['type']}' '{request['action']}'"
        if isinstance(error, SaveError):
            return processing_error(error.message)
        if isinstance(error, RequestError):
            return error.message if error.message.startswith("Invalid ") else processing_error(error.message)
        return processing_error(str(error))

    # -- membership -----------------------------------------------------------------
    def members(self, proto: FreeScoreProtocol) -> list[FreeScoreProtocol]:
        assert proto.client is not None
        return self.groups.get(proto.client.route.group, [])

    def clients(self, members: list[FreeScoreProtocol]) -> list[users.Client]:
        return [p.client for p in members if p.client is not None]

    def users(self, members: list[FreeScoreProtocol]) -> list[dict[str, Any]]:
        return users.users_list(self.clients(members))

    def join(self, proto: FreeScoreProtocol) -> None:
        client = proto.client
        assert client is not None
        proto.conn = self.connections.add(proto)
        self.groups.setdefault(client.route.group, []).append(proto)
        self.idle.arm(proto.conn, self.settings.inactivity_timeout, lambda: self._idle(proto))
        if not self.pings:
            return
        self.ping_intervals[proto.conn] = self.ping_interval
        self.ping_calls.arm(proto.conn, self.ping_interval, lambda: self._ping(proto))
        others = [p for p in self.members(proto) if p is not proto]
        if others:
            self._users_update(others, users.presence(client, "connect"))

    def leave(self, proto: FreeScoreProtocol) -> None:
        client = proto.client
        if client is None or proto.conn not in self.connections:
            return
        self.connections.remove(proto.conn)
        self.idle.cancel(proto.conn)
        self.ping_calls.cancel(proto.conn)
        self.ping_intervals.pop(proto.conn, None)
        self.session_cache.pop(proto.conn, None)
        group = self.groups.get(client.route.group, [])
        if proto in group:
            group.remove(proto)
        if not group:
            self.groups.pop(client.route.group, None)
            self._drop_idle()
            return
        if self.pings:
            self._users_update(group, users.presence(client, "disconnect"))

    def _idle(self, proto: FreeScoreProtocol) -> None:
        self.log.info("{name}: closing idle connection {peer}", name=self.name, peer=proto.peer)
        proto.close_with(CloseCode.NORMAL, "inactive")

    # -- pings and users (optional) --------------------------------------------------
    @property
    def ping_interval(self) -> float:
        return float(getattr(self.settings, "ping_interval", 30.0))

    def _users_update(self, recipients: list[FreeScoreProtocol], request: dict[str, Any]) -> None:
        payload = users.users_frame(request, self.users(recipients), frames.utc_time(self.reactor.seconds()))
        self.broadcaster.broadcast(recipients, server_frame(payload))

    def _ping(self, proto: FreeScoreProtocol) -> None:
        client = proto.client
        if client is None or not client.pinging or proto.state != proto.STATE_OPEN:
            return
        before = client.health
        stamp = frames.utc_time(self.reactor.seconds())
        client.ping(stamp)
        proto.sendMessage(users.ping_frame(client.route.ring, client.cid, client.route.gid, client.role, stamp))
        if client.health != before:
            self._users_update(self.members(proto), users.health_change(client, None))
        if client.health == "dead":
            return
        self.ping_calls.arm(proto.conn, self.ping_intervals[proto.conn], lambda: self._ping(proto))

    def _pong(self, proto: FreeScoreProtocol, request: dict[str, Any]) -> None:
        client = proto.client
        assert client is not None
        if not client.pong(users.pong_timestamp(request)):
            return
        interval = client.next_interval()
        if interval is not None:
            interval *= self.ping_interval / 30.0  # the ladder is written for 30 s
            self.ping_intervals[proto.conn] = interval
            if self.ping_calls.armed(proto.conn):
                self.ping_calls.arm(proto.conn, interval, lambda: self._ping(proto))
        self._users_update(self.members(proto), users.health_change(client, None))

    def _stop_ping(self, proto: FreeScoreProtocol) -> None:
        client = proto.client
        assert client is not None
        client.pinging = False
        self.ping_calls.cancel(proto.conn)
        self._users_update(self.members(proto), users.health_change(client, client.route.ring_text))

    # -- requests ---------------------------------------------------------------------
    def receive(self, proto: FreeScoreProtocol, payload: bytes, is_binary: bool) -> None:
        received = time.perf_counter()
        client = proto.client
        assert client is not None
        if self.idle.armed(proto.conn):
            self.idle.arm(proto.conn, self.settings.inactivity_timeout, lambda: self._idle(proto))
        if is_binary:
            self._error(proto, "Invalid request: binary frames are not supported")
            return
        try:
            request = decode_request(payload)
        except RequestError as e:
            self.log.info("{name}: bad frame from {cid}: {error}", name=self.name, cid=client.cid, error=e.message)
            self._error(proto, e.message)
            return
        if getattr(self.settings, "sessions", None) is not None and not self._session_ok(proto):
            self._error(proto, f"Unauthorized user {client.description} in ring {client.route.ring_text}", request)
            return
        self.annotate(client, request)
        kind = request_kind(request)
        if self.pings and kind == "client_pong":
            self._pong(proto, request)
            return
        if self.pings and kind == "server_stop_ping":
            self._stop_ping(proto)
            return
        if self.is_silent(request):
            return
        try:
            effects = self.model.handle(proto.conn, client, request, self.clients(self.members(proto)),
                                        self.reactor.seconds(), autoflush=False)
        except UnknownRequest as e:
            self.log.info("{name}: unknown request {kind} from {cid}", name=self.name, kind=kind, cid=client.cid)
            self._error(proto, self.request_failed(e, request), request)
            return
        except (SaveError, OSError) as e:  # the disk refused a write (or a file went away under the rules)
            error = self.disk_error(client.route.db, e)
            self._save_failed(error)
            self._error(proto, self.request_failed(error, request), request)
            return
        except Exception as e:  # a refused request, or a bug: neither may take the ring down
            if not isinstance(e, RequestError):
                self.log.failure("{name}: handler {kind} failed", name=self.name, kind=kind)
            self._flush_model()
            self._invalidate(client.route.db)
            self._error(proto, self.request_failed(e, request), request)
            return
        self._later(Pending(proto, effects, db=client.route.db, request=request, received=received))

    def _error(self, proto: FreeScoreProtocol, message: str, request: Any = None) -> None:
        self.ctx.metrics.errors.inc()
        self._later(Pending(proto, error=error_frame(message, request)))

    def _session_ok(self, proto: FreeScoreProtocol) -> bool:
        """Check the PHP session, re-reading its file only when it changed (inode, mtime, size)."""
        client = proto.client
        folder = getattr(self.settings, "sessions", None)
        if client is None or not client.sessid or folder is None:
            return False
        path = folder / f"sess_{client.sessid}"
        try:
            st = path.stat()
        except OSError:
            self.session_cache.pop(proto.conn, None)
            return False
        if not stat.S_ISREG(st.st_mode):  # reading a FIFO by that name would block the reactor
            return False
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self.session_cache.get(proto.conn)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            data = path.read_bytes()
        except OSError:
            self.session_cache.pop(proto.conn, None)
            return False
        ok = session_allows(parse_php_session(data), client.route.ring_text)
        self.session_cache[proto.conn] = (stamp, ok)
        return ok

    # -- the batch: write, then send ---------------------------------------------------
    def _later(self, entry: Pending) -> None:
        """Queue behind the batch's file writes; one flush per reactor turn (group commit)."""
        self.pending.append(entry)
        if self.flush_call is None:
            self.flush_call = self.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        """Write the batch, then send it: effects of a tournament whose write failed become errors."""
        self.flush_call = None
        self._flush_model()
        pending, self.pending = self.pending, []
        for entry in pending:
            try:
                if entry.error is not None:
                    entry.proto.sendMessage(entry.error)
                elif entry.effects is not None:
                    apply_effects(self, entry.effects)
                    if entry.received is not None:
                        self.handled.observe(time.perf_counter() - entry.received)
            except Exception:
                self.log.failure("{name}: sending a queued frame failed", name=self.name)
        self._drop_idle()

    def _flush_model(self) -> None:
        try:
            failed = self.model.flush()
        except Exception as e:  # a bug, not a write error: fail every tournament of the batch
            self.log.failure("{name}: flushing the data directory failed", name=self.name)
            failed = {db: SaveError(db, e) for db in list(self.model.tournaments)}
            self.model.tournaments.clear()
        for error in failed.values():
            self._save_failed(error)

    @staticmethod
    def disk_error(db: str, error: Exception) -> SaveError:
        """A SaveError for what the rules raised: theirs, or an OSError of a write they made directly
        (progress.txt, a moved or deleted division, draws.json, schedule.json). No traceback, no path."""
        return error if isinstance(error, SaveError) else SaveError(db, error)

    def _save_failed(self, error: SaveError) -> None:
        """A write failed: nothing of that tournament's batch is broadcast; each requester gets an error.

        The rules already forgot the tournament (they re-read the files on next use); queued
        effects for it become error frames, queued error frames stay as they are.
        """
        self.log.error("{name}: {message}: {error}", name=self.name, message=error.message,
                       error=str(error.error) or repr(error.error))  # the OS error with its path, for the operator
        self.model.forget(error.db)
        self._cancel_autopilot(error.db)
        for entry in self.pending:
            if entry.db == error.db:
                self.ctx.metrics.errors.inc()
                entry.error = error_frame(self.request_failed(error, entry.request), entry.request)
                entry.effects = None
                entry.db = None

    def _invalidate(self, db: str) -> None:
        """After a failed request, re-read the tournament from disk: memory never drifts from the files."""
        self.model.forget(db)
        self._cancel_autopilot(db)

    def _cancel_autopilot(self, db: str) -> None:
        for key in self.autopilot.keys():
            if isinstance(key, tuple) and key[0] == db:
                self.autopilot.cancel(key)

    def _drop_idle(self) -> None:
        """Forget the in-memory model of every tournament no connection or autopilot step uses any more.

        Run after the batch's flush (a pending request may still need its tournament).
        """
        if self.flush_call is not None:
            return
        busy = {key[0] for key in self.groups} | {key[0] for key in self.autopilot.keys() if isinstance(key, tuple)}
        for db in [db for db in self.model.tournaments if db not in busy]:
            try:
                self.model.drop(db)
            except SaveError as e:
                self._save_failed(e)

    # -- effects (Send, Close, Arm and Cancel are the kit's PeerEffects) ------------------
    def do_broadcast(self, effect: fx.Broadcast) -> None:
        members = [p for p in self.groups.get(effect.group, []) if p.conn != effect.exclude]
        if not members:
            return
        data = self.frame_update(effect.frame, members) if isinstance(effect.frame, Update) else effect.frame
        self.broadcaster.broadcast(members, server_frame(data))

    def do_publish(self, effect: fx.Publish) -> None:
        self.hub.publish(effect.channel, effect.message)

    def peer(self, cid: ConnId) -> FreeScoreProtocol | None:
        return self.connections.get(cid)

    def fired(self, key: Hashable, payload: Any) -> None:
        self._autopilot_step(key, payload)

    def _autopilot_step(self, key: Hashable, payload: Any) -> None:
        """A ring's autopilot timer fired: run the step now (it writes before its update goes out)."""
        try:
            effects = self.model.autopilot(key, payload, self.reactor.seconds())  # type: ignore[arg-type]
        except (SaveError, OSError) as e:
            self._save_failed(self.disk_error(key[0], e))  # type: ignore[index]
            self._drop_idle()
            return
        except Exception:
            self.log.failure("{name}: autopilot step failed", name=self.name)
            self._drop_idle()
            return
        apply_effects(self, effects)
        if not self.autopilot.armed(key):
            self._drop_idle()
