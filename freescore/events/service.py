"""Twisted adapters of the event daemon: Engine.IO polling and WebSocket, hub fan-out, timers."""

from __future__ import annotations

import os
import resource as rlimit
from typing import Any

from autobahn.websocket.types import ConnectionDeny
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from freescore.events import Settings
from freescore.events import engineio as eio
from freescore.events import socketio as sio
from freescore.events.fanout import BroadcastFrame
from freescore.events.logic import Daemon, Limits, Post, Reply, Socket
from freescore.hub import HubMessage
from freescore.service import ProtocolService, ServiceContext
from freescore.websocket import FreescoreServerFactory, FreescoreServerProtocol, WebSocketEndpoint, WebSocketLimits

log = Logger(namespace="freescore.events")

CLOSE_TOO_BIG = 1009
CLOSE_UNSUPPORTED = 1003


class Conn:
    """One Engine.IO session on this node, with whatever transport carries it now."""

    __slots__ = ("service", "session", "ws", "probe_ws", "get_request", "socket", "timer", "max_packet", "done")

    def __init__(self, service: EventsService, session: eio.Session) -> None:
        self.service = service
        self.session = session
        self.ws: EngineIOProtocol | None = None
        self.probe_ws: EngineIOProtocol | None = None
        self.get_request: Request | None = None
        self.socket: Socket | None = None
        self.timer: Any = None
        self.max_packet = service.settings.max_packet
        self.done = False

    # -- output -------------------------------------------------------------------
    def send_sio(self, packets: list[str]) -> None:
        for p in packets:
            self.session.send(eio.MESSAGE + p)
        self.flush()

    def flush(self) -> None:
        session = self.session
        packets = session.take()
        if packets:
            if session.transport == "websocket":
                ws = self.ws
                if ws is not None and ws.state == ws.STATE_OPEN:
                    for p in packets:
                        if isinstance(p, BroadcastFrame):
                            ws.sendPreparedMessage(p.prepared(ws.factory))
                        else:
                            ws.sendMessage(p.encode("utf-8"))
            else:
                self._answer_get(packets)
        if session.closed:
            self.finish()

    def _answer_get(self, packets: list[str]) -> None:
        request, self.get_request = self.get_request, None
        self.session.end_get()
        if request is None:
            return
        body = eio.encode_payload(packets).encode("utf-8")
        request.setHeader("content-length", str(len(body)))
        request.write(body)
        request.finish()

    def release_get(self) -> None:
        """A GET still held when the session moved to WebSocket gets a noop and returns."""
        if self.get_request is not None:
            self._answer_get([eio.NOOP])

    # -- input ----------------------------------------------------------------------
    def receive(self, text: str, now: float) -> None:
        """One Engine.IO packet from the client, any transport."""
        kind, data = eio.decode_packet(text)
        message = self.session.receive(kind, data, now)
        if message is not None:
            self.on_message(message, now)
        elif self.session.closed:
            self.flush()

    def on_message(self, text: str, now: float) -> None:
        packet = sio.decode(text)
        daemon = self.service.daemon
        if self.socket is None:
            if packet.type != sio.CONNECT:
                return
            sock, reply = daemon.connect(packet, eio.new_sid(), self, now)
            if sock is not None:
                self.socket = sock
                self.session.joined()
                if sock.role == "sender":
                    self.max_packet = self.service.settings.max_sender_packet
        elif packet.type == sio.CONNECT:
            return
        elif packet.type == sio.DISCONNECT:
            daemon.disconnect(self.socket)
            self.socket = None
            return
        else:
            reply = daemon.handle(self.socket, packet, now)
        self.apply(reply)

    def apply(self, reply: Reply) -> None:
        if reply.packets:
            self.send_sio(reply.packets)
        if reply.post is not None:
            self.service.publish(reply.post)
        if reply.close:
            self.close("refused" if self.socket is None else "rate limited")

    # -- life cycle -------------------------------------------------------------------
    def close(self, reason: str) -> None:
        if not self.session.closed:
            log.debug("events: closing session {sid}: {reason}", sid=self.session.sid, reason=reason)
            self.session.close(reason)
        self.flush()

    def finish(self) -> None:
        """The session is closed: drop it once a held GET took the last packets."""
        if self.done:
            return
        if self.socket is not None:
            self.service.daemon.disconnect(self.socket)
            self.socket = None
        if self.session.transport == "polling" and self.session.outbox and self.get_request is None:
            # Let the next GET collect the last packets (e.g. server-capacity), for a while.
            self._arm(min(self.service.timing.ping_interval, 10.0), self.finish_now)
            return
        self.finish_now()

    def finish_now(self) -> None:
        if self.done:
            return
        self.done = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        self.service.conns.pop(self.session.sid, None)
        if self.socket is not None:
            self.service.daemon.disconnect(self.socket)
            self.socket = None
        request, self.get_request = self.get_request, None
        if request is not None:
            body = eio.encode_payload(self.session.outbox or [eio.CLOSE]).encode()
            request.write(body)
            request.finish()
        for ws in (self.ws, self.probe_ws):
            if ws is not None and ws.state == ws.STATE_OPEN:
                ws.sendClose(1000)

    def _arm(self, delay: float, call: Any) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = self.service.reactor.callLater(max(delay, 0.0), call)

    def schedule(self) -> None:
        now = self.service.reactor.seconds()
        self._arm(self.session.next_deadline() - now, self.tick)

    def tick(self) -> None:
        self.timer = None
        if self.done:
            return
        self.session.tick(self.service.reactor.seconds())
        self.flush()
        if not self.session.closed:
            self.schedule()


class PollingResource(Resource):
    """Engine.IO long-polling (GET/POST/OPTIONS) at `path`; WebSocket upgrades go to Autobahn."""

    isLeaf = True

    def __init__(self, service: EventsService) -> None:
        super().__init__()
        self.service = service

    def render(self, request: Request) -> Any:
        request.setHeader("access-control-allow-origin", "*")
        method = request.method.decode("ascii", "replace")
        if method == "OPTIONS":
            request.setResponseCode(204)
            request.setHeader("access-control-allow-methods", "GET,POST")
            wanted = request.getHeader("access-control-request-headers")
            if wanted:
                request.setHeader("access-control-allow-headers", wanted)
            return b""
        query = {k.decode("latin-1"): v[0].decode("utf-8", "replace") for k, v in request.args.items() if v}
        service = self.service
        conn = None
        try:
            info = eio.check_request(method, query, service.sessions_view)
            if info.transport != "polling":
                raise eio.bad_request()
            if info.sid is None:
                return self._handshake(request)
            conn = service.conns[info.sid]
            if method == "GET":
                return self._get(request, conn)
            if method == "POST":
                return self._post(request, conn)
            raise eio.bad_request()
        except eio.EngineIOError as e:
            service.ctx.metrics.errors.inc()
            if conn is not None and e.code == 3:
                conn.close("concurrent request")
            return self._error(request, e)

    @staticmethod
    def _error(request: Request, error: eio.EngineIOError, status: int = 400) -> bytes:
        request.setResponseCode(status)
        request.setHeader("content-type", "application/json")
        return error.body()

    @staticmethod
    def _text(request: Request) -> None:
        request.setHeader("content-type", "text/plain; charset=UTF-8")
        request.setHeader("cache-control", "no-store")

    def _handshake(self, request: Request) -> bytes:
        service = self.service
        if len(service.conns) >= service.max_sessions:
            log.warn("events: refusing a handshake, {n} sessions open", n=len(service.conns))
            return self._error(request, eio.bad_request(), 503)
        conn = service.new_conn("polling")
        self._text(request)
        return service.handshake(conn, ["websocket"]).encode()

    def _get(self, request: Request, conn: Conn) -> Any:
        conn.session.begin_get()
        self._text(request)
        packets = conn.session.take()
        if packets:
            conn.session.end_get()
            if conn.session.closed:
                conn.finish()
            return eio.encode_payload(packets).encode("utf-8")
        conn.get_request = request

        def gone(_: Any) -> None:
            if conn.get_request is request:
                conn.get_request = None
                conn.session.end_get()

        request.notifyFinish().addErrback(gone)
        return NOT_DONE_YET

    def _post(self, request: Request, conn: Conn) -> bytes:
        conn.session.begin_post()
        try:
            body = request.content.read(conn.max_packet + 1) if request.content is not None else b""
            if len(body) > conn.max_packet:
                self.service.ctx.metrics.errors.inc()
                conn.close("payload too large")
                request.setResponseCode(413)
                self._text(request)
                return b"payload too large"
            self.service.ctx.metrics.messages_in.inc()
            try:
                packets = body.decode("utf-8").split(eio.SEPARATOR)
                now = self.service.reactor.seconds()
                for text in packets:
                    if conn.done or conn.session.closed:
                        break
                    conn.receive(text, now)
            except (UnicodeDecodeError, eio.PacketError, sio.SocketIOError) as e:
                log.info("events: bad packet on {sid}: {err}", sid=conn.session.sid, err=str(e))
                self.service.ctx.metrics.errors.inc()
                conn.close("parse error")
                return self._error(request, eio.bad_request())
            except Exception:
                log.failure("events: handling a POST on {sid} failed", sid=conn.session.sid)
                conn.close("internal error")
                return self._error(request, eio.bad_request())
        finally:
            conn.session.end_post()
        self._text(request)
        return b"ok"


class EngineIOProtocol(FreescoreServerProtocol):
    """The Engine.IO WebSocket transport: a fresh session, or the upgrade of a polling one."""

    conn: Conn | None = None
    probing: bool = False

    def handshake(self, request: Any) -> Any:
        query = {k: v[0] for k, v in request.params.items() if v}
        service: EventsService = self.factory.events
        try:
            info = eio.check_request("GET", query, service.sessions_view)
        except eio.EngineIOError as e:
            service.ctx.metrics.errors.inc()
            raise ConnectionDeny(400, e.message) from None
        if info.transport != "websocket":
            raise ConnectionDeny(400, "Bad request")
        if info.sid is not None:
            self.conn = service.conns[info.sid]
            self.conn.probe_ws = self
            self.probing = True
        return None

    def opened(self) -> None:
        service: EventsService = self.factory.events
        if self.conn is None:
            conn = self.conn = service.new_conn("websocket")
            conn.ws = self
            self.send_text(service.handshake(conn, []))

    def received(self, payload: bytes, is_binary: bool) -> None:
        conn = self.conn
        if conn is None or conn.done:
            return
        service = conn.service
        if is_binary or len(payload) > conn.max_packet:
            service.ctx.metrics.errors.inc()
            # Autobahn's sendClose allows only 1000 and 3000-4999; these are protocol codes.
            if is_binary:
                self.sendCloseFrame(code=CLOSE_UNSUPPORTED, reasonUtf8=b"binary frames are not supported")
            else:
                self.sendCloseFrame(code=CLOSE_TOO_BIG, reasonUtf8=b"message too big")
            conn.close("binary or oversized WebSocket message")
            return
        try:
            text = payload.decode("utf-8")
            if self.probing:
                self._probe_step(text)
            else:
                conn.receive(text, service.reactor.seconds())
        except (UnicodeDecodeError, eio.PacketError, sio.SocketIOError) as e:
            log.info("events: bad packet on {sid}: {err}", sid=conn.session.sid, err=str(e))
            service.ctx.metrics.errors.inc()
            conn.close("parse error")
        except Exception:
            log.failure("events: handling a packet on {sid} failed", sid=conn.session.sid)
            conn.close("internal error")

    def _probe_step(self, text: str) -> None:
        conn = self.conn
        assert conn is not None
        if text == eio.PING + "probe":
            self.send_text(conn.session.probe())
            conn.flush()
        elif text == eio.UPGRADE:
            conn.session.upgrade()
            self.probing = False
            conn.probe_ws = None
            conn.ws = self
            conn.release_get()
            conn.flush()
        elif text == eio.NOOP or text.startswith(eio.PONG):
            return
        else:
            raise eio.PacketError("unexpected packet during the upgrade")

    def closed(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        conn = self.conn
        if conn is None or conn.done:
            return
        if self.probing:
            conn.probe_ws = None
            conn.session.cancel_upgrade()
            conn.flush()
        else:
            conn.ws = None
            conn.close("transport close")


class EventsService(ProtocolService):
    """The Socket.IO event daemon (plus the legacy protocol and AMQP when configured)."""

    HUB_CHANNEL = "events:posts"

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        settings = ctx.settings
        assert isinstance(settings, Settings)
        self.settings = settings
        self.reactor = ctx.reactor
        self.hub = ctx.hub
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
        self.max_sessions = 2 * settings.max_clients + 1000
        self.factory = FreescoreServerFactory(
            EngineIOProtocol, service=ctx.name,
            limits=WebSocketLimits(
                max_frame=settings.max_sender_packet, max_message=settings.max_sender_packet,
                max_connections=self.max_sessions, keepalive=0,
            ),
            metrics=ctx.metrics, connections=ctx.connections, reactor=self.reactor,
        )
        self.factory.events = self
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
        _raise_nofile()
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
            frame = BroadcastFrame(eio.MESSAGE + delivery.sio_packet)
            direct = []
            for sock in delivery.sockets:
                conn = sock.peer
                if conn.ws is not None and conn.session.writable() and not conn.session.outbox:
                    direct.append(conn.ws)
                else:
                    conn.session.send(frame)
                    conn.flush()
            if direct:
                self.factory.broadcast(direct, None, prepared=frame.prepared(self.factory))
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


def _raise_nofile() -> None:
    """Many sockets need many descriptors: lift the soft limit to the hard one."""
    try:
        soft, hard = rlimit.getrlimit(rlimit.RLIMIT_NOFILE)
        if soft < hard:
            rlimit.setrlimit(rlimit.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        log.debug("events: could not raise RLIMIT_NOFILE (pid {pid})", pid=os.getpid())
