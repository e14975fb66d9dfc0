"""The legacy DMOJ protocol: raw-WebSocket receiver and sender, and the `/channels/` long-poll."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from twisted.web.server import NOT_DONE_YET, Request

from freescore.broadcast import server_frame
from freescore.events.logic import Delivery, LegacyReceiver, LegacySender, RateLimiter, WaitersFull
from freescore.events.wire import ERR_CAPACITY, DaemonError, PlainError, parse_int
from freescore.web import ServiceResource, answer_error
from freescore.websocket import FreescoreServerProtocol, WebSocketEndpoint
from freescore.wireformat import CloseCode, HttpError, encode_json

if TYPE_CHECKING:
    from freescore.events.service import EventsService

log = Logger(namespace="freescore.events.legacy")

RATE_LIMITED = "rate limit exceeded"


class ReceiverProtocol(FreescoreServerProtocol):
    service: EventsService
    receiver: LegacyReceiver | None = None

    def opened(self) -> None:
        events = self.service
        self.receiver = LegacyReceiver(self, RateLimiter(events.settings.rate_limit, events.reactor.seconds()))

    def received(self, payload: bytes, is_binary: bool) -> None:
        events = self.service
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
            self.close_with(CloseCode.POLICY_VIOLATION, RATE_LIMITED)

    def closed(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        if self.receiver is not None:
            self.service.daemon.legacy_gone(self.receiver)
            self.receiver = None


class SenderProtocol(FreescoreServerProtocol):
    service: EventsService
    sender: LegacySender | None = None

    def opened(self) -> None:
        events = self.service
        self.sender = LegacySender(
            self, RateLimiter(events.settings.sender_rate_limit, events.reactor.seconds()),
            authed=events.settings.sender_token is None,
        )

    def received(self, payload: bytes, is_binary: bool) -> None:
        events = self.service
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
            self.close_with(CloseCode.POLICY_VIOLATION, RATE_LIMITED)

    def closed(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        self.sender = None


_TIMEOUT_ERROR = HttpError(504, "timeout")
_TIMEOUT = (_TIMEOUT_ERROR.status, _TIMEOUT_ERROR.body())
"""What a `/channels/` long-poll gets when nothing came: 504 `{"error": "timeout"}`."""


class _Waiter:
    __slots__ = ("request", "timer")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.timer: Any = None


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
        err = events.daemon.check_channels(names)
        if err is not None:
            events.ctx.metrics.errors.inc()
            return answer_error(request, DaemonError(400, err))
        last_values = request.args.get(b"last") or [b""]
        last = parse_int(last_values[0].decode("utf-8", "replace"))
        waiter = _Waiter(request)
        try:
            msg = events.daemon.wait(waiter, frozenset(names), last)
        except WaitersFull:
            events.ctx.metrics.errors.inc()
            return answer_error(request, DaemonError(503, ERR_CAPACITY))
        if msg is not None:
            request.setHeader("content-type", "application/json")
            return encode_json(msg.as_dict())
        legacy.waiters.add(waiter)
        timeout = events.settings.channels_timeout / 1000.0
        waiter.timer = events.reactor.callLater(timeout, legacy.timeout, waiter)
        request.notifyFinish().addErrback(lambda _: legacy.forget(waiter))
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
        self.waiters: set[_Waiter] = set()

    def resources(self) -> dict[str, Any]:
        s = self.events.settings
        return {
            s.legacy_path: WebSocketEndpoint(self.receivers),
            s.legacy_sender_path: WebSocketEndpoint(self.senders),
            s.channels_path: ChannelsResource(self.events),
        }

    def posted(self, sender: LegacySender, reply: str) -> None:
        sender.peer.send_text(reply)

    def deliver(self, delivery: Delivery) -> None:
        body = delivery.legacy_frame.encode("utf-8")
        if delivery.legacy:
            self.events.broadcaster.broadcast([r.peer for r in delivery.legacy], server_frame(body))
        for waiter in delivery.waiters:
            self._answer(waiter, 200, body)

    def timeout(self, waiter: _Waiter) -> None:
        waiter.timer = None
        self.events.daemon.unwait(waiter)
        self._answer(waiter, *_TIMEOUT)

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
            self._answer(waiter, *_TIMEOUT)
