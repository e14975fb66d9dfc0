"""The Socket.IO endpoint's adapters: Engine.IO long-polling and WebSocket transports of one session.

Thin: Engine.IO's session machine is in `engineio`, the daemon's rules in
`logic`; this module moves packets between them and the transports. A session
is a connection id to the daemon; what the daemon decides comes back as
effects, which the service applies (`EventsService.apply`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autobahn.twisted.util import peer2str
from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger
from twisted.web.server import NOT_DONE_YET, Request

from freescore.broadcast import SharedText, text_frame
from freescore.events import engineio as eio
from freescore.events import socketio as sio
from freescore.events.logic import SENDER
from freescore.events.wire import PlainError
from freescore.web import ServiceResource, answer_error
from freescore.websocket import FreescoreServerProtocol
from freescore.wireformat import CloseCode

if TYPE_CHECKING:
    from freescore.events.service import EventsService

log = Logger(namespace="freescore.events")


class Conn:
    """One Engine.IO session on this node, with whatever transport carries it now."""

    __slots__ = ("service", "session", "peer", "cid", "ws", "probe_ws", "get_request", "timer", "max_packet",
                 "done", "close_code")

    def __init__(self, service: EventsService, session: eio.Session, peer: str) -> None:
        self.service = service
        self.session = session
        self.peer = peer
        """Where the handshake came from, for the log."""
        self.cid = service.connections.add(self)
        self.ws: EngineIOProtocol | None = None
        self.probe_ws: EngineIOProtocol | None = None
        self.get_request: Request | None = None
        self.timer: Any = None
        self.max_packet = service.settings.max_packet
        self.done = False
        self.close_code = CloseCode.NORMAL

    # -- output -------------------------------------------------------------------
    def send_frame(self, frame: str) -> None:
        """A Socket.IO packet into the outbox; the apply loop flushes once it applied every effect."""
        self.session.send(eio.MESSAGE + frame)
        self.service.unflushed.append(self)

    def flush(self) -> None:
        session = self.session
        packets = session.take()
        if packets:
            if session.transport == "websocket":
                ws = self.ws
                if ws is not None and ws.state == ws.STATE_OPEN:
                    send = self.service.broadcaster.send  # counts what stays unsent (`max_unsent`)
                    for p in packets:
                        send(ws, p.frame() if isinstance(p, SharedText) else text_frame(p))
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
        """A Socket.IO packet: the daemon decides; a first join ends Engine.IO's join deadline."""
        service = self.service
        daemon = service.daemon
        effects = daemon.receive(self.cid, sio.decode(text), now, eio.new_sid)
        role = daemon.role(self.cid)
        if role is not None:
            self.session.joined()
            settings = service.settings
            self.max_packet = settings.max_sender_packet if role == SENDER else settings.max_packet
        service.apply(effects)

    # -- life cycle -------------------------------------------------------------------
    def end(self, code: CloseCode, reason: str) -> None:
        self.close_code = code
        self.close(reason)

    def close(self, reason: str) -> None:
        if not self.session.closed:
            log.debug("events: closing session {sid}: {reason}", sid=self.session.sid, reason=reason)
            self.session.close(reason)
        self.flush()

    def finish(self) -> None:
        """The session is closed: drop it once a held GET took the last packets."""
        if self.done:
            return
        dropped = self.session.take_dropped()
        if dropped:
            self._report_dropped(dropped)
        self.service.daemon.disconnect(self.cid)
        if self.session.transport == "polling" and self.session.outbox and self.get_request is None:
            # Let the next GET collect the last packets (e.g. server-capacity), for a while.
            self._arm(min(self.service.timing.ping_interval, 10.0), self.finish_now)
            return
        self.finish_now()

    def _report_dropped(self, dropped: int) -> None:
        """A client that stopped collecting its packets: logged once, counted as a protocol error."""
        service = self.service
        service.ctx.metrics.errors.inc()
        log.info("events: session {sid} of {peer} has {unsent} bytes unsent (over max_unsent {limit}), closing",
                 sid=self.session.sid, peer=self.peer, unsent=dropped, limit=service.settings.max_unsent)

    def finish_now(self) -> None:
        if self.done:
            return
        self.done = True
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None
        service = self.service
        service.conns.pop(self.session.sid, None)
        service.connections.remove(self.cid)
        service.daemon.disconnect(self.cid)
        request, self.get_request = self.get_request, None
        if request is not None:
            body = eio.encode_payload(self.session.outbox or [eio.CLOSE]).encode()
            request.write(body)
            request.finish()
        for ws in (self.ws, self.probe_ws):
            if ws is not None:
                ws.close_with(self.close_code)

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
        now = self.service.reactor.seconds()
        if self.session.upgrade_expired(now) and self.probe_ws is not None:
            self.probe_ws.close_with(CloseCode.POLICY_VIOLATION, "upgrade timeout")
        self.session.tick(now)
        self.flush()
        if not self.session.closed:
            self.schedule()


class PollingResource(ServiceResource):
    """Engine.IO long-polling (GET/POST/OPTIONS) at `path`; WebSocket upgrades go to Autobahn."""

    service: EventsService

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
            return answer_error(request, e)

    @staticmethod
    def _text(request: Request) -> None:
        request.setHeader("content-type", "text/plain; charset=UTF-8")
        request.setHeader("cache-control", "no-store")

    def _handshake(self, request: Request) -> bytes:
        service = self.service
        if service.at_capacity():
            return answer_error(request, eio.bad_request(503))
        conn = service.new_conn("polling", peer2str(request.transport))
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
                request.setHeader("cache-control", "no-store")
                return answer_error(request, PlainError(413, "payload too large"))
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
                return answer_error(request, eio.bad_request())
            except Exception:
                log.failure("events: handling a POST on {sid} failed", sid=conn.session.sid)
                conn.close("internal error")
                return answer_error(request, eio.bad_request())
        finally:
            conn.session.end_post()
        self._text(request)
        return b"ok"


class EngineIOProtocol(FreescoreServerProtocol):
    """The Engine.IO WebSocket transport: a fresh session, or the upgrade of a polling one."""

    service: EventsService
    conn: Conn | None = None
    probing: bool = False

    def handshake(self, request: Any) -> Any:
        query = {k: v[0] for k, v in request.params.items() if v}
        service = self.service
        try:
            info = eio.check_request("GET", query, service.sessions_view)
        except eio.EngineIOError as e:
            service.ctx.metrics.errors.inc()
            raise ConnectionDeny(400, e.message) from None
        if info.transport != "websocket":
            raise ConnectionDeny(400, "Bad request")
        if info.sid is None and service.at_capacity():
            raise ConnectionDeny(503, "too many connections")
        if info.sid is not None:
            self.conn = service.conns[info.sid]
            self.probing = True
        return None

    def opened(self) -> None:
        service = self.service
        conn = self.conn
        if conn is None:
            conn = self.conn = service.new_conn("websocket", self.peer)
            conn.ws = self
            self.send_text(service.handshake(conn, []))
            return
        # The session may have ended, or another WebSocket begun probing, since the handshake.
        try:
            if conn.done:
                raise eio.unknown_sid()
            conn.session.begin_upgrade(service.reactor.seconds())
        except eio.EngineIOError as e:
            self.probing = False
            self.conn = None
            self.close_with(CloseCode.POLICY_VIOLATION, e.message)
            return
        conn.probe_ws = self
        conn.schedule()  # the session's deadlines now include the upgrade's

    def received(self, payload: bytes, is_binary: bool) -> None:
        conn = self.conn
        if conn is None or conn.done:
            return
        service = conn.service
        if is_binary or len(payload) > conn.max_packet:
            service.ctx.metrics.errors.inc()
            if is_binary:
                self.close_with(CloseCode.UNSUPPORTED_DATA, "binary frames are not supported")
            else:
                self.close_with(CloseCode.MESSAGE_TOO_BIG, "message too big")
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
            if self.probing:  # only the probe goes; the session carries on polling (as Node)
                self.close_with(CloseCode.PROTOCOL_ERROR, "bad packet during the upgrade")
            else:
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
