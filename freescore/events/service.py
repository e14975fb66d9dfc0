"""The event daemon's Twisted service: sessions, the hub channel, fan-out, the legacy and AMQP parts."""

from __future__ import annotations

import resource as rlimit
from typing import Any

from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from freescore.broadcast import SharedText
from freescore.events import engineio as eio
from freescore.events import socketio as sio
from freescore.events.adapter import Conn, EngineIOProtocol, PollingResource
from freescore.events.logic import Daemon, Limits, Post, Socket
from freescore.events.settings import Settings
from freescore.hub import HubMessage
from freescore.protocolservice import ProtocolService, ServiceContext
from freescore.websocket import WebSocketEndpoint

log = Logger(namespace="freescore.events")


class EventsService(ProtocolService[Settings]):
    """The Socket.IO event daemon (plus the legacy protocol and AMQP when configured)."""

    HUB_CHANNEL = "events:posts"

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        settings = self.settings
        self.timing = eio.Timing(
            settings.ping_interval / 1000.0, settings.ping_timeout / 1000.0, settings.connect_timeout / 1000.0
        )
        limits = Limits(
            sender_token=settings.sender_token, max_queue=settings.max_queue, max_clients=settings.max_clients,
            max_subscriptions=settings.max_subscriptions, rate_limit=settings.rate_limit,
            sender_rate_limit=settings.sender_rate_limit,
        )
        # A second below the hub's first id, so a page's start never hides the first post.
        self.daemon = Daemon(limits, int(self.reactor.seconds() * 1000) - 1000)
        self.conns: dict[str, Conn] = {}
        self.sessions_view = _SessionsView(self.conns)
        self.max_sessions = settings.max_connections
        self.broadcaster = self.make_broadcaster()
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
        self._subscription = self.hub.subscribe(self.HUB_CHANNEL, self._on_hub)
        d = self.hub.history(self.HUB_CHANNEL, limit=self.settings.max_queue)
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
    def new_conn(self, transport: str) -> Conn:
        session = eio.Session(eio.new_sid(), transport, self.reactor.seconds(), self.timing)
        conn = Conn(self, session)
        self.conns[session.sid] = conn
        conn.schedule()
        return conn

    def handshake(self, conn: Conn, upgrades: list[str]) -> str:
        s = self.settings
        return eio.handshake_packet(conn.session.sid, upgrades, s.ping_interval, s.ping_timeout, s.max_packet)

    # -- posts and fan-out -----------------------------------------------------------------
    def publish(self, post: Post, payload_id: int | None = None) -> Any:
        """Publish a post through the hub; answer its sender when the id is known."""
        payload: dict[str, Any] = {"channel": post.channel, "message": post.message}
        if payload_id is not None:
            payload["id"] = payload_id
        d = self.hub.publish(self.HUB_CHANNEL, payload, keep=self.settings.max_queue)

        def done(msg: HubMessage) -> None:
            origin = post.origin
            msg_id = payload_id if payload_id is not None else msg.id
            if isinstance(origin, Socket):
                conn = origin.peer
                if not conn.done:
                    conn.send_sio([self.daemon.posted(post, msg_id)])
            elif origin is not None and self.legacy is not None:
                self.legacy.posted(origin, self.daemon.sender_posted(msg_id))

        def failed(f: Any) -> None:
            log.failure("events: publishing to the hub failed", f)
            origin = post.origin
            error = {"status": "error", "code": "unavailable", "message": "Event hub unavailable"}
            if isinstance(origin, Socket) and not origin.peer.done:
                answer = sio.ack(post.ack_id, error) if post.ack_id is not None else sio.event("error", error)
                origin.peer.send_sio([answer])
            elif origin is not None and self.legacy is not None:
                self.legacy.posted(origin, sio.dumps(error))

        d.addCallbacks(done, failed)
        return d

    def _on_hub(self, hub_msg: HubMessage) -> None:
        payload = hub_msg.payload
        if not isinstance(payload, dict) or not isinstance(payload.get("channel"), str):
            log.warn("events: dropping a malformed hub message {id}", id=hub_msg.id)
            return
        msg = _as_message(hub_msg)
        delivery = self.daemon.deliver(msg.id, msg.channel, msg.message)
        if delivery.sockets:
            frame = SharedText(eio.MESSAGE + delivery.sio_packet)
            direct = []
            for sock in delivery.sockets:
                conn = sock.peer
                if conn.ws is not None and conn.session.writable() and not conn.session.outbox:
                    direct.append(conn.ws)
                else:
                    conn.session.send(frame)
                    conn.flush()
            if direct:
                self.broadcaster.broadcast(direct, frame.frame())
        if self.legacy is not None and (delivery.legacy or delivery.waiters):
            self.legacy.deliver(delivery)


def _as_message(hub_msg: HubMessage) -> Any:
    from freescore.events.logic import Message

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
