"""The legacy DMOJ protocol: raw-WebSocket receiver and sender, and the `/channels/` long-poll.

Each is a peer with a connection id to the daemon (`freescore.effects.Peer`):
the daemon's effects reach it through the service's apply loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from twisted.web.server import NOT_DONE_YET, Request

from freescore.effects import ConnId
from freescore.events.wire import DaemonError, PlainError, parse_int
from freescore.web import ServiceResource, answer_error
from freescore.websocket import PeerProtocol, WebSocketEndpoint
from freescore.wireformat import CloseCode, HttpError

if TYPE_CHECKING:
    from freescore.events.service import EventsService

log = Logger(namespace="freescore.events.legacy")


class LegacyProtocol(PeerProtocol):
    """A legacy WebSocket peer (receiver, or sender): its text frames go to the daemon, its effects come back."""

    service: EventsService
    sender = False

    def joined(self, cid: ConnId) -> None:
        self.service.daemon.legacy_open(cid, self.service.reactor.seconds(), sender=self.sender)

    def received(self, payload: bytes, is_binary: bool) -> None:
        if self.cid is None:
            return
        events = self.service
        answer = events.daemon.legacy_command(self.cid, payload.decode("utf-8", "replace"), events.reactor.seconds())
        if answer.error:
            events.ctx.metrics.errors.inc()
        events.apply(answer)

    def left(self, cid: ConnId) -> None:
        self.service.daemon.legacy_gone(cid)


class ReceiverProtocol(LegacyProtocol):
    sender = False


class SenderProtocol(LegacyProtocol):
    sender = True


TIMEOUT = HttpError(504, "timeout")
"""What a `/channels/` long-poll gets when nothing came: 504 `{"error": "timeout"}`."""


class Waiter:
    """One held `/channels/` request: a peer answered once, with a message (200) or the timeout (504)."""

    __slots__ = ("events", "request", "cid")

    def __init__(self, events: EventsService, request: Request) -> None:
        self.events = events
        self.request = request
        self.cid = events.connections.add(self)

    def send_frame(self, frame: str) -> None:
        self.answer(200, frame.encode("utf-8"))

    def end(self, code: CloseCode, reason: str) -> None:
        self.answer(TIMEOUT.status, TIMEOUT.body())

    def answer(self, code: int, body: bytes) -> None:
        if not self.forget():
            return
        request = self.request
        request.setResponseCode(code)
        request.setHeader("content-type", "application/json")
        request.setHeader("content-length", str(len(body)))
        request.write(body)
        request.finish()

    def forget(self) -> bool:
        """Leave the daemon, the ids and the timers (answered, or the client went away); False if done already."""
        events = self.events
        if events.connections.remove(self.cid) is None:
            return False
        events.daemon.unwait(self.cid)
        events.timers.cancel(self.cid)
        if events.legacy is not None:
            events.legacy.waiters.discard(self)
        return True


class ChannelsResource(ServiceResource):
    """`GET /channels/<a>|<b>?last=N`: the first newer matching message, held until one comes or 504."""

    service: EventsService

    def render(self, request: Request) -> Any:
        path = b"/".join(request.postpath).decode("utf-8", "replace")
        names = [ch for ch in path.replace("%7C", "|").replace("%7c", "|").split("|") if ch]
        if not names:
            return answer_error(request, PlainError(400, "400 Bad Request", "text/plain"))
        events = self.service
        legacy = events.legacy
        assert legacy is not None
        last_values = request.args.get(b"last") or [b""]
        last = parse_int(last_values[0].decode("utf-8", "replace"))
        waiter = Waiter(events, request)
        try:
            effects = events.daemon.wait(waiter.cid, names, last)
        except DaemonError as e:
            waiter.forget()
            events.ctx.metrics.errors.inc()
            return answer_error(request, e)
        legacy.waiters.add(waiter)
        events.apply(effects)
        if waiter.cid in events.connections:  # held: the client may leave before an answer
            request.notifyFinish().addErrback(lambda _: waiter.forget())
        return NOT_DONE_YET


MAX_SENDERS = 100
"""Legacy sender connections at once (the site's Django workers, not browsers)."""


class LegacyEndpoints:
    """The three legacy mounts, sharing the daemon's counter, queue and fan-out."""

    def __init__(self, events: EventsService) -> None:
        self.events = events
        s = events.settings
        self.receivers = events.websocket_factory(ReceiverProtocol, s.limits(
            max_message=min(s.max_packet, s.max_message), max_connections=min(s.max_clients, s.max_connections),
        ))
        self.senders = events.websocket_factory(
            SenderProtocol, s.limits(max_connections=min(MAX_SENDERS, s.max_connections)),
        )
        self.waiters: set[Waiter] = set()

    def resources(self) -> dict[str, Any]:
        s = self.events.settings
        return {
            s.legacy_path: WebSocketEndpoint(self.receivers),
            s.legacy_sender_path: WebSocketEndpoint(self.senders),
            s.channels_path: ChannelsResource(self.events),
        }

    def stop(self) -> None:
        """Every held long-poll ends as a timeout would end it."""
        for waiter in list(self.waiters):
            waiter.end(CloseCode.GOING_AWAY, "server stopping")
