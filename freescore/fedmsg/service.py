"""fedmsg's Twisted service: the hub channel, the ZeroMQ sources, the apply loop and the fan-out.

Every message, whatever its source, is published once on the hub channel
`fedmsg:bus`; each node subscribes to that channel once, and the bus
(`logic.Bus`) answers each message with one `Broadcast` of one frame to the
ids it matches, which `apply` queues for their connections.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import zmq
from prometheus_client import Gauge
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from freescore.broadcast import server_frame
from freescore.effects import Broadcast, Connections, ConnId, Effect, PeerEffects, Publish, apply_effects
from freescore.fedmsg import wire
from freescore.fedmsg.adapter import FedmsgProtocol, PublishResource
from freescore.fedmsg.logic import CHANNEL, Bus
from freescore.fedmsg.settings import Settings
from freescore.fedmsg.zmqsource import Publisher, Subscriber
from freescore.hub import HubMessage
from freescore.protocolservice import ProtocolService, ServiceContext
from freescore.web import JsonError
from freescore.websocket import WebSocketEndpoint

log = Logger(namespace="freescore.fedmsg")


class FedmsgService(PeerEffects, ProtocolService[Settings]):
    """The subscriptions, the hub channel and the ZeroMQ sources; fan-out with one frame per message."""

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__(ctx)
        s = self.settings
        self.bus = Bus(s.strict, s.max_patterns, s.client2server)
        self.connections: Connections[FedmsgProtocol] = Connections("f")
        self.factory = self.websocket_factory(FedmsgProtocol)
        self.broadcaster = self.make_broadcaster(max_unsent=s.max_outbound_buffer, too_slow=self._too_slow)
        # At `/` (a listener of its own, as upstream) every path takes clients.
        self.resources[s.path] = WebSocketEndpoint(self.factory, subpaths=not s.path.strip("/"))
        if s.publish_token is not None:
            self.resources[s.publish_path] = PublishResource(self)
        else:
            self.resources[s.publish_path] = JsonError(404, "publishing is off: no publish_token is configured")
        self._hub_sub: Any = None
        self._zmq: zmq.Context | None = None
        self.subscribers: list[Subscriber] = []
        self.publisher: Publisher | None = None
        self.zmq_gauge = Gauge(
            "freescore_fedmsg_zmq_connected", "1 while the ZeroMQ SUB endpoint is connected, 0 while connecting",
            ["endpoint"], registry=ctx.metrics.registry,
        )
        patterns = Gauge(
            "freescore_fedmsg_connections_subscribed", "Connections with at least one pattern",
            registry=ctx.metrics.registry,
        )
        patterns.set_function(self.bus.index.connections)

    # -- lifecycle -------------------------------------------------------------
    def startService(self) -> None:
        super().startService()
        if self.settings.nofile is not None:
            log.warn("fedmsg: `nofile` is deprecated and ignored; the process raises the open-files limit "
                     "once ([runtime] nofile)")
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
        self.broadcaster.flush()
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

    # -- the apply loop and the fan-out --------------------------------------------------
    def apply(self, effects: Iterable[Effect]) -> None:
        apply_effects(self, effects)

    def peer(self, cid: ConnId) -> FedmsgProtocol | None:
        return self.connections.get(cid)

    def do_broadcast(self, effect: Broadcast) -> None:
        """Queue the frame for each recipient; the broadcaster writes them at the end of the reactor turn.

        Every message delivered in the same turn (a burst read from ZeroMQ)
        goes to a connection in one write, in order, so a backlog is cleared
        with one send per connection instead of one per message.
        """
        self.broadcaster.queue(self.connections.resolve(effect.group), server_frame(effect.frame))

    def do_publish(self, effect: Publish) -> None:
        message = effect.message
        self.publish(message["topic"], message["body"]).addErrback(self._hub_failed)

    def count_matching(self, topic: str) -> int:
        # Not proto.is_open(): Autobahn shadows that method with a Deferred attribute.
        matched = self.connections.resolve(self.bus.index.match(topic))
        return sum(1 for proto in matched if proto.state == FedmsgProtocol.STATE_OPEN)

    def _from_hub(self, message: HubMessage) -> None:
        payload = message.payload
        try:
            topic, body_text = payload["topic"], payload["body"]
            if not isinstance(topic, str) or not isinstance(body_text, str):
                raise TypeError("topic and body must be strings")
        except (TypeError, KeyError) as e:
            log.warn("fedmsg: ignored a malformed hub message: {why}", why=e)
            return
        self.apply(self.bus.deliver(topic, body_text))

    def _too_slow(self, proto: FedmsgProtocol) -> None:
        if proto.cid is None:
            return
        self.ctx.metrics.errors.inc()
        log.info(
            "fedmsg: {peer} has more than {limit} bytes unsent, closing (1013)",
            peer=proto.peer, limit=self.settings.max_outbound_buffer,
        )
        self.apply(self.bus.too_slow(proto.cid))


def make_service(ctx: ServiceContext) -> FedmsgService:
    """The composition root's one call into this package."""
    return FedmsgService(ctx)
