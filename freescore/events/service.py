"""The event daemon's Twisted service: sessions, the hub channel, the apply loop, the legacy and AMQP parts.

The daemon (`logic`) sees connection ids and answers in effects; `apply` is
the one loop that performs them: a `Send` goes to the id's peer, a
`Broadcast` to a channel's subscribers of one kind with the message framed
once, a `Publish` to the hub, a `Close` to the peer, an `Arm` to a keyed timer.
"""

from __future__ import annotations

import resource as rlimit
from collections.abc import Iterable
from typing import Any

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from freescore.broadcast import SharedText, server_frame
from freescore.effects import Broadcast, Connections, ConnId, Effect, Peer, PeerEffects, Publish, Timers, apply_effects
from freescore.events import engineio as eio
from freescore.events.adapter import Conn, EngineIOProtocol, PollingResource
from freescore.events.logic import HUB_CHANNEL, LEGACY, SOCKETIO, WAITERS, Daemon, Group, Message, Post
from freescore.events.settings import Settings
from freescore.hub import HubMessage
from freescore.protocolservice import ProtocolService, ServiceContext
from freescore.websocket import WebSocketEndpoint

log = Logger(namespace="freescore.events")


class EventsService(PeerEffects, ProtocolService[Settings]):
    """The Socket.IO event daemon (plus the legacy protocol and AMQP when configured)."""

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        settings = self.settings
        self.timing = eio.Timing(
            settings.ping_interval / 1000.0, settings.ping_timeout / 1000.0, settings.connect_timeout / 1000.0
        )
        # A second below the hub's first id, so a page's start never hides the first post.
        self.daemon = Daemon(settings, int(self.reactor.seconds() * 1000) - 1000)
        self.conns: dict[str, Conn] = {}
        """Engine.IO sessions by their sid."""
        self.connections: Connections[Peer] = Connections("e")
        """Every peer the daemon knows by id: sessions, legacy receivers and senders, long-polls."""
        self.timers = Timers(self.reactor)
        self.unflushed: list[Conn] = []
        self._fanout = {SOCKETIO: self._to_sockets, LEGACY: self._to_receivers, WAITERS: self._to_waiters}
        self.sessions_view = _SessionsView(self.conns)
        self.max_sessions = settings.max_connections
        self.broadcaster = self.make_broadcaster(max_unsent=settings.max_unsent)
        # Engine.IO's own heartbeat keeps this endpoint's WebSockets alive: no pings of ours.
        self.factory = self.websocket_factory(EngineIOProtocol, settings.limits(keepalive=0))
        self.resources[settings.path] = WebSocketEndpoint(self.factory, http=PollingResource(self))
        self._subscription: Any = None
        self._stats: LoopingCall | None = None
        self.legacy = None
        if settings.legacy:
            from freescore.events.legacy import LegacyEndpoints

            self.legacy = LegacyEndpoints(self)
            self.resources.update(self.legacy.resources())
        self.amqp = None
        if settings.amqp_url is not None:
            from freescore.events.amqp import AmqpSource

            self.amqp = AmqpSource(self)
            self.amqp.setServiceParent(self)

    # -- life cycle --------------------------------------------------------------------
    def is_up(self) -> bool:
        """Down on /status while a configured AMQP broker is not being consumed."""
        return bool(self.running) and (self.amqp is None or self.amqp.is_up())

    def startService(self) -> None:
        super().startService()
        if self.settings.sender_token is None:
            log.warn("events: no sender_token set, so no Socket.IO sender can post (legacy sender stays open)")
        self._subscription = self.hub.subscribe(HUB_CHANNEL, self._on_hub)
        d = self.hub.history(HUB_CHANNEL, limit=self.settings.max_queue)
        d.addCallback(self._seed_queue)
        d.addErrback(lambda f: log.failure("events: reading the hub history failed", f))
        if self.settings.stats_interval > 0:
            self._stats = LoopingCall(self._log_stats)
            self._stats.clock = self.reactor
            self._stats.start(self.settings.stats_interval, now=False)

    def stopService(self) -> Any:
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        if self._stats is not None and self._stats.running:
            self._stats.stop()
        for conn in list(self.conns.values()):
            conn.close("server stopping")
            conn.finish_now()
        if self.legacy is not None:
            self.legacy.stop()
        self.timers.cancel_all()
        return super().stopService()

    def _seed_queue(self, kept: list[HubMessage]) -> None:
        queued = {m.id for m in self.daemon.queue}
        for m in kept:
            if m.id not in queued and isinstance(m.payload, dict):
                self.daemon.queue.append(_as_message(m))
        ordered = sorted(self.daemon.queue, key=lambda m: m.id)
        self.daemon.queue.clear()
        self.daemon.queue.extend(ordered)
        if ordered:
            self.daemon.last_id = max(self.daemon.last_id, ordered[-1].id)

    def _log_stats(self) -> None:
        try:
            rss_kb = rlimit.getrusage(rlimit.RUSAGE_SELF).ru_maxrss
        except OSError:
            rss_kb = 0
        log.info(
            "events: {sessions} sessions, {stats}, max RSS {rss} KiB",
            sessions=len(self.conns), stats=self.daemon.stats(), rss=rss_kb,
        )

    # -- sessions ----------------------------------------------------------------------
    def at_capacity(self) -> bool:
        """No new session, polling or WebSocket, past `max_connections` of them together (an upgrade
        is no new session; the factory's own count sees only WebSockets)."""
        if len(self.conns) < self.max_sessions:
            return False
        log.warn("events: refusing a handshake, {n} sessions open", n=len(self.conns))
        return True

    def new_conn(self, transport: str, peer: str) -> Conn:
        session = eio.Session(eio.new_sid(), transport, self.reactor.seconds(), self.timing, self.settings.max_unsent)
        conn = Conn(self, session, peer)
        self.conns[session.sid] = conn
        conn.schedule()
        return conn

    def handshake(self, conn: Conn, upgrades: list[str]) -> str:
        s = self.settings
        return eio.handshake_packet(conn.session.sid, upgrades, s.ping_interval, s.ping_timeout, s.max_packet)

    # -- the apply loop -------------------------------------------------------------------
    def apply(self, effects: Iterable[Effect]) -> None:
        """Perform what the daemon decided, in order; then write each session's new packets at once."""
        apply_effects(self, effects)
        if self.unflushed:
            unflushed, self.unflushed = self.unflushed, []
            for conn in unflushed:
                conn.flush()

    def peer(self, cid: ConnId) -> Peer | None:
        return self.connections.get(cid)

    def do_broadcast(self, effect: Broadcast) -> None:
        group: Group = effect.group
        self._fanout[group.kind](group.members, effect.frame)

    def do_publish(self, effect: Publish) -> None:
        self.publish(effect.message, effect.channel)

    def fired(self, key: Any, payload: Any) -> None:
        self.apply(self.daemon.fired(key, payload))

    # -- fan-out: one frame per message, the same bytes to every subscriber ------------------
    def _to_sockets(self, members: tuple[Any, ...], packet: str) -> None:
        """Engine.IO frames the packet once (`SharedText`): written now to every open WebSocket with
        nothing queued, or queued in the outboxes of the others (polling, upgrading, behind)."""
        frame = SharedText(eio.MESSAGE + packet)
        direct = []
        add = direct.append
        for conn in self.connections.resolve(members):
            session = conn.session
            ws = conn.ws
            # `ws` is set only on a WebSocket-transport session, where `writable()` is "not upgrading"
            if ws is not None and not session.upgrading and not session.outbox:
                add(ws)
            else:
                session.send(frame)
                conn.flush()
        if direct:
            self.broadcaster.broadcast(direct, frame.frame())

    def _to_receivers(self, members: tuple[Any, ...], text: str) -> None:
        self.broadcaster.broadcast(self.connections.resolve(members), server_frame(text.encode("utf-8")))

    def _to_waiters(self, members: tuple[Any, ...], text: str) -> None:
        body = text.encode("utf-8")
        for waiter in self.connections.resolve(members):
            waiter.answer(200, body)

    # -- posts ---------------------------------------------------------------------------
    def publish(self, post: Post, channel: str = HUB_CHANNEL) -> Any:
        """Publish a post through the hub; the daemon answers its sender once the id is known."""
        d = self.hub.publish(channel, post.payload(), keep=self.settings.max_queue)

        def done(msg: HubMessage) -> None:
            self.apply(self.daemon.posted(post, post.id if post.id is not None else msg.id))

        def failed(f: Any) -> None:
            log.failure("events: publishing to the hub failed", f)
            self.apply(self.daemon.unpublished(post))

        d.addCallbacks(done, failed)
        return d

    def _on_hub(self, hub_msg: HubMessage) -> None:
        payload = hub_msg.payload
        if not isinstance(payload, dict) or not isinstance(payload.get("channel"), str):
            log.warn("events: dropping a malformed hub message {id}", id=hub_msg.id)
            return
        msg = _as_message(hub_msg)
        self.apply(self.daemon.deliver(msg.id, msg.channel, msg.message))


def _as_message(hub_msg: HubMessage) -> Message:
    payload = hub_msg.payload
    given = payload.get("id")
    msg_id = given if isinstance(given, int) and not isinstance(given, bool) else hub_msg.id
    return Message(msg_id, payload["channel"], payload.get("message"))


class _SessionsView:
    """`check_request` sees sessions; a closed one that still has packets for a GET counts as known."""

    __slots__ = ("_conns",)

    def __init__(self, conns: dict[str, Conn]) -> None:
        self._conns = conns

    def get(self, sid: str) -> eio.Session | None:
        conn = self._conns.get(sid)
        if conn is None or conn.done:
            return None
        return conn.session


def make_service(ctx: ServiceContext) -> EventsService:
    """The composition root's one call into this package."""
    return EventsService(ctx)
