"""The legacy DMOJ protocol: raw-WebSocket receiver and sender, and the `/channels/` long-poll."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from freescore.events.logic import (
    ERR_CAPACITY,
    Delivery,
    LegacyReceiver,
    LegacySender,
    RateLimiter,
    WaitersFull,
    parse_int,
)
from freescore.websocket import (
    FreescoreServerFactory,
    FreescoreServerProtocol,
    WebSocketEndpoint,
    WebSocketLimits,
    encode_json,
)

if TYPE_CHECKING:
    from freescore.events.service import EventsService

log = Logger(namespace="freescore.events.legacy")

CLOSE_POLICY = 1008


class ReceiverProtocol(FreescoreServerProtocol):
    receiver: LegacyReceiver | None = None

    def opened(self) -> None:
        events: EventsService = self.factory.events
        self.receiver = LegacyReceiver(self, RateLimiter(events.settings.rate_limit, events.reactor.seconds()))

    def received(self, payload: bytes, is_binary: bool) -> None:
        events: EventsService = self.factory.events
        if self.receiver is None:
            return
        frames, close, error = events.daemon.legacy_command(
            self.receiver, payload.decode("utf-8", "replace"), events.reactor.seconds()
        )
        if error:
            events.ctx.metrics.errors.inc()
        for frame in frames:
            self.send_text(frame)
        if close:
            self.sendClose(CLOSE_POLICY, "rate limit exceeded")

    def closed(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        if self.receiver is not None:
            self.factory.events.daemon.legacy_gone(self.receiver)
            self.receiver = None


class SenderProtocol(FreescoreServerProtocol):
    sender: LegacySender | None = None

    def opened(self) -> None:
        events: EventsService = self.factory.events
        self.sender = LegacySender(
            self, RateLimiter(events.settings.sender_rate_limit, events.reactor.seconds()),
            authed=events.settings.sender_token is None,
        )

    def received(self, payload: bytes, is_binary: bool) -> None:
        events: EventsService = self.factory.events
        if self.sender is None:
            return
        reply, post, close, error = events.daemon.sender_command(
            self.sender, payload.decode("utf-8", "replace"), events.reactor.seconds()
        )
        if error:
            events.ctx.metrics.errors.inc()
        if reply is not None:
            self.send_text(reply)
        if post is not None:
            events.publish(post)
        if close:
            self.sendClose(CLOSE_POLICY, "rate limit exceeded")

    def closed(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        self.sender = None


class _Waiter:
    __slots__ = ("request", "timer")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.timer: Any = None


class ChannelsResource(Resource):
    """`GET /channels/<a>|<b>?last=N`: the first newer matching message, held until one comes or 504."""

    isLeaf = True

    def __init__(self, legacy: LegacyEndpoints) -> None:
        super().__init__()
        self.legacy = legacy

    def render(self, request: Request) -> Any:
        path = b"/".join(request.postpath).decode("utf-8", "replace")
        names = [ch for ch in path.replace("%7C", "|").replace("%7c", "|").split("|") if ch]
        if not names:
            request.setResponseCode(400)
            request.setHeader("content-type", "text/plain")
            return b"400 Bad Request"
        events = self.legacy.events
        err = events.daemon.check_channels(names)
        if err is not None:
            events.ctx.metrics.errors.inc()
            return self._error(request, 400, err)
        last_values = request.args.get(b"last") or [b""]
        last = parse_int(last_values[0].decode("utf-8", "replace"))
        waiter = _Waiter(request)
        try:
            msg = events.daemon.wait(waiter, frozenset(names), last)
        except WaitersFull:
            events.ctx.metrics.errors.inc()
            return self._error(request, 503, ERR_CAPACITY)
        if msg is not None:
            request.setHeader("content-type", "application/json")
            return encode_json(msg.as_dict())
        self.legacy.waiters.add(waiter)
        timeout = events.settings.channels_timeout / 1000.0
        waiter.timer = events.reactor.callLater(timeout, self.legacy.timeout, waiter)
        request.notifyFinish().addErrback(lambda _: self.legacy.forget(waiter))
        return NOT_DONE_YET

    @staticmethod
    def _error(request: Request, code: int, body: dict[str, str]) -> bytes:
        request.setResponseCode(code)
        request.setHeader("content-type", "application/json")
        return encode_json(body)


class LegacyEndpoints:
    """The three legacy mounts, sharing the daemon's counter, queue and fan-out."""

    def __init__(self, events: EventsService) -> None:
        self.events = events
        s = events.settings
        ctx = events.ctx
        keepalive = s.ping_interval / 1000.0
        self.receivers = FreescoreServerFactory(
            ReceiverProtocol, service=ctx.name,
            limits=WebSocketLimits(max_frame=s.max_packet, max_message=s.max_packet,
                                   max_connections=s.max_clients, keepalive=keepalive),
            metrics=ctx.metrics, connections=ctx.connections, reactor=events.reactor,
        )
        self.senders = FreescoreServerFactory(
            SenderProtocol, service=ctx.name,
            limits=WebSocketLimits(max_frame=s.max_sender_packet, max_message=s.max_sender_packet,
                                   max_connections=100, keepalive=keepalive),
            metrics=ctx.metrics, connections=ctx.connections, reactor=events.reactor,
        )
        self.receivers.events = events
        self.senders.events = events
        self.waiters: set[_Waiter] = set()

    def resources(self) -> dict[str, Any]:
        s = self.events.settings
        return {
            s.legacy_path: WebSocketEndpoint(self.receivers),
            s.legacy_sender_path: WebSocketEndpoint(self.senders),
            s.channels_path: ChannelsResource(self),
        }

    def posted(self, sender: LegacySender, reply: str) -> None:
        proto = sender.peer
        if proto.state == proto.STATE_OPEN:
            proto.send_text(reply)

    def deliver(self, delivery: Delivery) -> None:
        frame = delivery.legacy_frame.encode("utf-8")
        if delivery.legacy:
            self.receivers.broadcast([r.peer for r in delivery.legacy], frame)
        for waiter in delivery.waiters:
            self._answer(waiter, 200, frame)

    def timeout(self, waiter: _Waiter) -> None:
        waiter.timer = None
        self.events.daemon.unwait(waiter)
        self._answer(waiter, 504, encode_json({"error": "timeout"}))

    def forget(self, waiter: _Waiter) -> None:
        self.events.daemon.unwait(waiter)
        self.waiters.discard(waiter)
        if waiter.timer is not None and waiter.timer.active():
            waiter.timer.cancel()
        waiter.timer = None

    def _answer(self, waiter: _Waiter, code: int, body: bytes) -> None:
        if waiter not in self.waiters:
            return
        self.forget(waiter)
        request = waiter.request
        request.setResponseCode(code)
        request.setHeader("content-type", "application/json")
        request.setHeader("content-length", str(len(body)))
        request.write(body)
        request.finish()

    def stop(self) -> None:
        for waiter in list(self.waiters):
            self._answer(waiter, 504, encode_json({"error": "timeout"}))
