"""The AMQP source (DMOJ event-server / LQDOJ daemon_amqp): Django publishes, we fan out.

An exclusive, server-named queue is bound to the configured exchange with keys
`#` and `""` (topic and direct exchanges both work); each `{id, channel, message}`
body goes into the same hub channel, queue and fan-out as Socket.IO posts,
keeping its own id. The broker going away means reconnecting with backoff, not
exiting as upstream did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pika
from pika.adapters.twisted_connection import TwistedProtocolConnection
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.protocol import ClientCreator
from twisted.logger import Logger

from freescore.events.logic import Post
from freescore.events.wire import MAX_CHANNEL, parse_json, valid_channel

if TYPE_CHECKING:
    from freescore.events.service import EventsService

log = Logger(namespace="freescore.events.amqp")

MAX_BACKOFF = 30.0


def parse_body(body: bytes, max_channel: int = MAX_CHANNEL) -> tuple[int, str, Any] | None:
    """`{id, channel, message}` from a Django AMQP post, or None for anything else."""
    try:
        data = parse_json(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):  # parse_json: too deep is a ValueError too
        return None
    if not isinstance(data, dict):
        return None
    msg_id, channel = data.get("id"), data.get("channel")
    if isinstance(msg_id, bool) or not isinstance(msg_id, int) or not 0 <= msg_id < 2**53:
        return None
    if not valid_channel(channel, max_channel):
        return None
    return msg_id, channel, data.get("message")


class AmqpSource(Service):
    """Consumes the exchange while running; reconnects with backoff after any failure."""

    def __init__(self, events: EventsService) -> None:
        self.events = events
        self.reactor = events.reactor
        self.params = pika.URLParameters(events.settings.amqp_url)
        self.exchange = events.settings.amqp_exchange
        self.connection: TwistedProtocolConnection | None = None
        self.consuming = False
        self.backoff = 1.0
        self._retry: Any = None
        self.setName("amqp")

    def startService(self) -> None:
        super().startService()
        self._connect()

    def stopService(self) -> Any:
        super().stopService()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        conn, self.connection = self.connection, None
        self.consuming = False
        if conn is not None and not conn.is_closed:
            try:
                conn.close()
            except Exception:  # pika may already be tearing down
                log.debug("events: AMQP close failed")
        return None

    def is_up(self) -> bool:
        return self.consuming

    def _connect(self) -> None:
        self._retry = None
        if not self.running:
            return
        creator = ClientCreator(self.reactor, TwistedProtocolConnection, self.params)
        host, port = self.params.host, self.params.port
        if self.params.ssl_options is not None:
            from twisted.internet import ssl

            d = creator.connectSSL(host, port, ssl.optionsForClientTLS(host))
        else:
            d = creator.connectTCP(host, port)
        d.addCallback(self._ready)
        d.addCallback(self._consume)
        d.addErrback(self._failed)

    def _ready(self, conn: TwistedProtocolConnection) -> defer.Deferred[Any]:
        self.connection = conn
        return conn.ready.addCallback(lambda _: conn)

    @defer.inlineCallbacks
    def _consume(self, conn: TwistedProtocolConnection) -> Any:
        channel = yield conn.channel()
        declared = yield channel.queue_declare(queue="", exclusive=True, auto_delete=True)
        name = declared.method.queue
        yield channel.queue_bind(queue=name, exchange=self.exchange, routing_key="#")
        yield channel.queue_bind(queue=name, exchange=self.exchange, routing_key="")
        queue, _tag = yield channel.basic_consume(queue=name, auto_ack=True)
        self.consuming = True
        self.backoff = 1.0
        log.info("events: AMQP consuming exchange {exchange} on {host}:{port}",
                 exchange=self.exchange, host=self.params.host, port=self.params.port)
        conn.closed.addBoth(self._closed, conn)
        self._next(queue)

    def _next(self, queue: Any) -> None:
        d = queue.get()
        d.addCallbacks(self._got, self._queue_closed, callbackArgs=(queue,))

    def _queue_closed(self, failure: Any) -> None:
        """The channel or consumer went away: drop the connection, `_closed` reconnects."""
        conn = self.connection
        if self.running and conn is not None and not conn.is_closed:
            log.warn("events: AMQP consumer ended ({error}); reconnecting", error=failure.getErrorMessage())
            conn.close()

    def _got(self, item: Any, queue: Any) -> None:
        _channel, _method, _properties, body = item
        parsed = parse_body(body, self.events.daemon.max_channel)
        if parsed is None:
            log.warn("events: dropping a malformed AMQP body ({size} bytes)", size=len(body))
            self.events.ctx.metrics.errors.inc()
        else:
            msg_id, channel, message = parsed
            self.events.publish(Post(None, channel, message, id=msg_id))
        self._next(queue)

    def _closed(self, result: Any, conn: TwistedProtocolConnection) -> None:
        if conn is not self.connection:
            return
        self.connection = None
        self.consuming = False
        if self.running:
            log.warn("events: AMQP connection lost; reconnecting")
            self._schedule()

    def _failed(self, failure: Any) -> None:
        self.consuming = False
        conn, self.connection = self.connection, None
        if conn is not None and not conn.is_closed:
            try:
                conn.close()
            except Exception:
                log.debug("events: AMQP close after failure failed")
        if self.running:
            log.warn("events: AMQP unavailable ({error}); retrying in {delay:.0f} s",
                     error=failure.getErrorMessage(), delay=self.backoff)
            self._schedule()

    def _schedule(self) -> None:
        if self._retry is None or not self._retry.active():
            self._retry = self.reactor.callLater(self.backoff, self._connect)
            self.backoff = min(self.backoff * 2, MAX_BACKOFF)
