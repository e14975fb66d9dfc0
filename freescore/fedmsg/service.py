"""fedmsg adapter: the browser WebSocket, the HTTP publish resource, the ZeroMQ sources.

Every message, whatever its source, is published once on the hub channel
`fedmsg:bus`; each node subscribes to that channel once and fans out to its
own connections with one prepared frame per message.
"""

from __future__ import annotations

import hmac
import resource
from typing import Any

import zmq
from autobahn.twisted.websocket import WebSocketServerProtocol
from prometheus_client import Gauge
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from freescore.fedmsg import wire
from freescore.fedmsg.logic import Subscribed, SubscriptionIndex
from freescore.fedmsg.settings import Settings
from freescore.fedmsg.zmqsource import Publisher, Subscriber
from freescore.hub import HubMessage
from freescore.service import ProtocolService, ServiceContext
from freescore.web import JsonError, json_error
from freescore.websocket import (
    FreescoreServerFactory,
    FreescoreServerProtocol,
    WebSocketEndpoint,
    WebSocketLimits,
    encode_json,
)

log = Logger(namespace="freescore.fedmsg")

CHANNEL = "fedmsg:bus"
CLOSE_TRY_AGAIN_LATER = 1013


def _transport_chain(transport: Any) -> list[Any]:
    chain = []
    while transport is not None and len(chain) < 4:
        chain.append(transport)
        transport = getattr(transport, "transport", None)
    return chain


def unsent_bytes(chain: list[Any]) -> int:
    """Bytes written but not yet handed to the kernel, through TLS and TCP buffers."""
    total = 0
    for t in chain:
        pending = getattr(t, "_appSendBuffer", None)
        if pending:
            total += sum(len(b) for b in pending)
        buffered = getattr(t, "dataBuffer", None)
        if buffered is not None:
            total += len(buffered) - t.offset + t._tempDataLen
    return total


class FedmsgProtocol(FreescoreServerProtocol):
    """One browser: its frames go to the service; its subscriptions die with it."""

    fedmsg: "FedmsgService"
    _transports: list[Any]
    limit_logged = False
    too_slow = False

    def opened(self) -> None:
        self._transports = _transport_chain(self.transport)

    def received(self, payload: bytes, is_binary: bool) -> None:
        if not is_binary:
            self.fedmsg.client_frame(self, payload)

    def closed(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        self.fedmsg.index.remove(self)

    def unsent(self) -> int:
        return unsent_bytes(self._transports)

    def write_frames(self, frames: Any) -> bool:
        """Write prepared frames in order; True if bytes may be left buffered in the process.

        Frames queued for one connection in a reactor turn go out in one
        `write_now` (the base's direct send on plain TCP); compression and
        Autobahn's own queue take the normal path, which keeps order.
        """
        single = type(frames) is not list  # one PreparedMessage (the common case) or a list of them
        if self._perMessageCompress is not None or self.send_queue:
            for prepared in (frames,) if single else frames:
                WebSocketServerProtocol.sendPreparedMessage(self, prepared)
            return True
        data = frames.payloadHybi if single else b"".join(p.payloadHybi for p in frames)
        return not self.write_now(data)


class PublishResource(Resource):
    """`POST publish_path` with a bearer token: the HTTP source for systems without ZeroMQ."""

    isLeaf = True

    def __init__(self, service: "FedmsgService", token: str, max_body: int) -> None:
        super().__init__()
        self.service = service
        self._expected = f"Bearer {token}".encode()
        self.max_body = max_body

    def render(self, request: Request) -> Any:
        request.setHeader("cache-control", "no-store")
        if request.method != b"POST":
            request.setHeader("allow", "POST")
            return json_error(request, 405, "use POST")
        given = request.getHeader(b"authorization") or b""
        if not hmac.compare_digest(given, self._expected):
            request.setHeader("www-authenticate", 'Bearer realm="fedmsg"')
            return json_error(request, 401, "missing or wrong bearer token")
        data = request.content.read(self.max_body + 1) if request.content is not None else b""
        if len(data) > self.max_body:
            return json_error(request, 413, f"body larger than {self.max_body} bytes")
        try:
            topic, body_text = wire.parse_publish_request(data)
        except wire.BadMessage as e:
            self.service.ctx.metrics.errors.inc()
            return json_error(request, 400, str(e))
        delivered = self.service.count_matching(topic)
        d = self.service.publish(topic, body_text)
        finished = [False]
        request.notifyFinish().addBoth(lambda _: finished.__setitem__(0, True))

        def ok(_: Any) -> None:
            if not finished[0]:
                request.setHeader("content-type", "application/json")
                request.write(encode_json({"status": "ok", "delivered": delivered}))
                request.finish()

        def failed(failure: Any) -> None:
            log.error("fedmsg: hub publish failed: {why}", why=failure.getErrorMessage())
            if not finished[0]:
                request.write(json_error(request, 503, "hub unavailable"))
                request.finish()

        d.addCallbacks(ok, failed)
        return NOT_DONE_YET


class FedmsgService(ProtocolService):
    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s: Settings = ctx.settings  # type: ignore[assignment]
        self.settings = s
        self.index: SubscriptionIndex[FedmsgProtocol] = SubscriptionIndex(s.strict, s.max_patterns)
        protocol = type("BoundFedmsgProtocol", (FedmsgProtocol,), {"fedmsg": self})
        self.factory = FreescoreServerFactory(
            protocol,
            service=ctx.name,
            limits=WebSocketLimits(
                max_frame=s.max_inbound_message,
                max_message=s.max_inbound_message,
                max_connections=s.max_connections,
                allowed_origins=s.allowed_origins,
                keepalive=s.keepalive,
            ),
            metrics=ctx.metrics,
            connections=ctx.connections,
            reactor=ctx.reactor,
        )
        # At `/` (a listener of its own, as upstream) every path takes clients.
        self.resources[s.path] = WebSocketEndpoint(self.factory, subpaths=not s.path.strip("/"))
        if s.publish_token is not None:
            self.resources[s.publish_path] = PublishResource(self, s.publish_token, s.max_publish_body)
        else:
            self.resources[s.publish_path] = JsonError(404, "publishing is off: no publish_token is configured")
        self._hub_sub: Any = None
        self._zmq: zmq.Context | None = None
        self.subscribers: list[Subscriber] = []
        self.publisher: Publisher | None = None
        self._pending: dict[FedmsgProtocol, Any] = {}
        self._flush_call: Any = None
        self.zmq_gauge = Gauge(
            "freescore_fedmsg_zmq_connected", "1 while the ZeroMQ SUB endpoint is connected, 0 while connecting",
            ["endpoint"], registry=ctx.metrics.registry,
        )
        patterns = Gauge(
            "freescore_fedmsg_connections_subscribed", "Connections with at least one pattern",
            registry=ctx.metrics.registry,
        )
        patterns.set_function(self.index.connections)

    # -- lifecycle -------------------------------------------------------------
    def startService(self) -> None:
        super().startService()
        raise_nofile(self.settings.nofile)
        self._hub_sub = self.ctx.hub.subscribe(CHANNEL, self._from_hub)
        try:
            self._start_zmq()
        except zmq.ZMQError as e:
            # e.g. a bind address in use: stop like a listener that cannot listen
            log.error("fedmsg: cannot set up ZeroMQ: {why}", why=e)
            reactor = self.ctx.reactor
            reactor.callWhenRunning(reactor.stop)

    def _start_zmq(self) -> None:
        s = self.settings
        if s.publish_endpoints or (s.zmq_ingest and s.endpoints):
            self._zmq = zmq.Context()
        if s.publish_endpoints:
            assert self._zmq is not None
            self.publisher = Publisher(self._zmq, s.publish_endpoints, s.high_water_mark)
        if s.zmq_ingest and s.endpoints:
            assert self._zmq is not None
            options = {
                zmq.RCVHWM: s.high_water_mark,
                zmq.TCP_KEEPALIVE: s.tcp_keepalive,
                zmq.TCP_KEEPALIVE_CNT: s.tcp_keepalive_cnt,
                zmq.TCP_KEEPALIVE_IDLE: s.tcp_keepalive_idle,
                zmq.TCP_KEEPALIVE_INTVL: s.tcp_keepalive_intvl,
                zmq.RECONNECT_IVL: s.reconnect_ivl,
                zmq.RECONNECT_IVL_MAX: s.reconnect_ivl_max,
            }
            for endpoint in s.endpoints:
                sub = Subscriber(
                    self.ctx.reactor, self._zmq, endpoint, s.subscribe_method, options,
                    self._from_zmq, self._zmq_state,
                )
                sub.start()
                self.subscribers.append(sub)
                self.zmq_gauge.labels(endpoint=endpoint).set(0)
                log.info("fedmsg: ZeroMQ SUB {method} {endpoint}", method=s.subscribe_method, endpoint=endpoint)

    def stopService(self) -> Any:
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        self._pending = {}
        if self._hub_sub is not None:
            self._hub_sub.cancel()
            self._hub_sub = None
        for sub in self.subscribers:
            sub.stop()
        self.subscribers = []
        if self.publisher is not None:
            self.publisher.close()
            self.publisher = None
        if self._zmq is not None:
            self._zmq.destroy(linger=0)  # closes anything left open; term() alone could block
            self._zmq = None
        return super().stopService()

    def _zmq_state(self, endpoint: str, state: str) -> None:
        log.info("fedmsg: ZeroMQ {endpoint} {state}", endpoint=endpoint, state=state)
        self.zmq_gauge.labels(endpoint=endpoint).set(1 if state == "connected" else 0)

    def zmq_states(self) -> dict[str, str]:
        return {sub.endpoint: sub.state for sub in self.subscribers}

    # -- sources -----------------------------------------------------------------
    def _from_zmq(self, endpoint: str, parts: list[bytes]) -> None:
        try:
            topic, body_text = wire.parse_zmq_frames(parts)
        except wire.BadMessage as e:
            self.ctx.metrics.errors.inc()
            log.warn("fedmsg: dropped a ZeroMQ message from {endpoint}: {why}", endpoint=endpoint, why=e)
            return
        self.ctx.hub.publish(CHANNEL, {"topic": topic, "body": body_text}).addErrback(self._hub_failed)

    def _hub_failed(self, failure: Any) -> None:
        self.ctx.metrics.errors.inc()
        log.error("fedmsg: hub publish failed, message dropped: {why}", why=failure.getErrorMessage())

    def publish(self, topic: str, body_text: str) -> Deferred[HubMessage]:
        """An HTTP or browser publish: onto the hub, and out of the ZeroMQ PUB socket if any."""
        if self.publisher is not None:
            self.publisher.send(topic, body_text)
        return self.ctx.hub.publish(CHANNEL, {"topic": topic, "body": body_text})

    def client_frame(self, proto: FedmsgProtocol, payload: bytes) -> None:
        try:
            frame = wire.parse_client_frame(payload, self.settings.max_pattern_length)
        except wire.BadMessage as e:
            self.ctx.metrics.errors.inc()
            log.debug("fedmsg: ignored a frame from {peer}: {why}", peer=proto.peer, why=e)
            return
        if isinstance(frame, wire.Subscribe):
            if proto.too_slow:
                return
            if self.index.subscribe(proto, frame.pattern) is Subscribed.LIMIT:
                self.ctx.metrics.errors.inc()
                if not proto.limit_logged:
                    proto.limit_logged = True
                    log.info(
                        "fedmsg: {peer} reached {limit} patterns; further subscribes are ignored",
                        peer=proto.peer, limit=self.settings.max_patterns,
                    )
        elif isinstance(frame, wire.Unsubscribe):
            self.index.unsubscribe(proto, frame.pattern)
        elif self.settings.client2server:
            self.publish(frame.topic, frame.body_text).addErrback(self._hub_failed)
        else:
            log.debug("fedmsg: dropped a publish from {peer} (client2server is off)", peer=proto.peer)

    # -- fan-out -------------------------------------------------------------------
    def count_matching(self, topic: str) -> int:
        # Not proto.is_open(): Autobahn shadows that method with a Deferred attribute.
        return sum(1 for proto in self.index.match(topic) if proto.state == FedmsgProtocol.STATE_OPEN)

    def _from_hub(self, message: HubMessage) -> None:
        payload = message.payload
        try:
            topic, body_text = payload["topic"], payload["body"]
            if not isinstance(topic, str) or not isinstance(body_text, str):
                raise TypeError("topic and body must be strings")
        except (TypeError, KeyError) as e:
            log.warn("fedmsg: ignored a malformed hub message: {why}", why=e)
            return
        recipients = self.index.match(topic)
        if recipients:
            self.deliver(recipients, wire.format_envelope(topic, body_text))

    def deliver(self, recipients: set[FedmsgProtocol], frame: bytes) -> int:
        """Queue one prepared frame for each recipient; `_flush` writes them on the next reactor turn.

        Every message delivered in the same turn (a burst read from ZeroMQ)
        goes to a connection in one write, in order, so a backlog is cleared
        with one send per connection instead of one per message.
        """
        prepared = self.factory.prepareMessage(frame, isBinary=False)
        pending = self._pending
        sent = 0
        for proto in recipients:
            if proto.state != FedmsgProtocol.STATE_OPEN:
                continue
            sent += 1
            queued = pending.get(proto)
            if queued is None:
                pending[proto] = prepared  # a list only when a second message comes in the same turn
            elif type(queued) is list:
                queued.append(prepared)
            else:
                pending[proto] = [queued, prepared]
        if sent:
            self.ctx.metrics.messages_out.inc(sent)
            if self._flush_call is None:
                self._flush_call = self.ctx.reactor.callLater(0, self._flush)
        return sent

    def _flush(self) -> None:
        self._flush_call = None
        pending, self._pending = self._pending, {}
        limit = self.settings.max_outbound_buffer
        for proto, frames in pending.items():
            if proto.state == FedmsgProtocol.STATE_OPEN and proto.write_frames(frames) and proto.unsent() > limit:
                self._too_slow(proto)

    def _too_slow(self, proto: FedmsgProtocol) -> None:
        proto.too_slow = True
        self.index.remove(proto)
        self.ctx.metrics.errors.inc()
        log.info(
            "fedmsg: {peer} has more than {limit} bytes unsent, closing (1013)",
            peer=proto.peer, limit=self.settings.max_outbound_buffer,
        )
        # sendClose() refuses 1013 (it allows only 1000 and 3000-4999); the frame itself is fine.
        proto.sendCloseFrame(code=CLOSE_TRY_AGAIN_LATER, reasonUtf8=b"slow consumer", isReply=False)


def raise_nofile(wanted: int) -> None:
    """Raise the open-files soft limit to `wanted` (capped by the hard limit), as fedmsg-hub does."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            log.info("fedmsg: open-files limit raised from {old} to {new}", old=soft, new=new)
    except (OSError, ValueError) as e:
        log.warn("fedmsg: cannot raise the open-files limit: {why}", why=e)
