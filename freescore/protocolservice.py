"""The contract between the composition root and each protocol service.

`app.py` builds a `ServiceContext` per enabled table and calls the package's
`service.make_service(ctx)`; the `ProtocolService` it returns is a Twisted
`MultiService` that names the web resources to mount. `websocket_factory`
binds the protocol's connections to it: the one way a connection gets its
service, its limits, the metrics and the shared registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from twisted.application.service import MultiService
from twisted.logger import Logger
from twisted.web.resource import IResource

from freescore.broadcast import Broadcaster
from freescore.metrics import ServiceMetrics
from freescore.settings import Config, ServiceSettings, WebSocketSettings
from freescore.websocket import FreescoreServerFactory, FreescoreServerProtocol
from freescore.wireformat import CloseCode

if TYPE_CHECKING:
    from freescore.hub import Hub
    from freescore.websocket import ConnectionRegistry

log = Logger(namespace="freescore.broadcast")


@dataclass
class ServiceContext:
    """What `make_service` gets: its settings and the shared pieces."""

    name: str
    settings: ServiceSettings
    config: Config
    hub: Hub
    reactor: Any
    metrics: ServiceMetrics
    connections: ConnectionRegistry


S = TypeVar("S", bound=WebSocketSettings)


class ProtocolService(MultiService, Generic[S]):
    """A protocol's Twisted service plus the web resources it mounts.

    `class ClickerService(ProtocolService[Settings])`: `self.settings` is the
    package's table. Subclasses add timers and outbound connections as child
    services and fill `resources` with mount path -> resource, e.g.
    `{"/ws": WebSocketEndpoint(self.websocket_factory(MyProtocol))}`; a path
    may have several segments (`/fedmsg/publish`) and `""` mounts at the
    root of a listener.
    """

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.settings = cast(S, ctx.settings)  # registry.SERVICES[ctx.name], which config built
        self.reactor = ctx.reactor
        self.hub = ctx.hub
        self.setName(ctx.name)
        self.resources: dict[str, IResource] = {}

    def is_up(self) -> bool:
        return bool(self.running)

    def websocket_factory(
        self, protocol: type[FreescoreServerProtocol], limits: WebSocketSettings | None = None, **options: Any
    ) -> FreescoreServerFactory:
        """A factory whose connections get this service as `self.service`.

        `limits` default to the service's own settings (every service's
        `Settings` extends `WebSocketSettings`); `options` go to the factory
        (`subprotocols`).
        """
        return FreescoreServerFactory(
            protocol, self, name=self.ctx.name, limits=limits or self.settings, metrics=self.ctx.metrics,
            connections=self.ctx.connections, reactor=self.ctx.reactor, **options,
        )

    def make_broadcaster(
        self, max_unsent: int = 0, too_slow: Callable[[Any], None] | None = None
    ) -> Broadcaster:
        """The service's broadcaster. With `max_unsent`, a connection left with more bytes
        unsent after a write is a slow consumer, handed to `too_slow` (by default closed 1013)."""
        if max_unsent and too_slow is None:
            def too_slow(proto: FreescoreServerProtocol) -> None:
                self.close_too_slow(proto, max_unsent)
        return Broadcaster(self.ctx.reactor, self.ctx.metrics, max_unsent=max_unsent, too_slow=too_slow)

    def close_too_slow(self, proto: FreescoreServerProtocol, limit: int) -> None:
        """A connection that stopped reading: closed with 1013 before what waits for it grows the
        process; logged with its peer and the byte count, counted as a protocol error."""
        self.ctx.metrics.errors.inc()
        log.info("{name}: {peer} has {unsent} bytes unsent (over max_unsent {limit}), closing (1013)",
                 name=self.ctx.name, peer=proto.peer, unsent=proto.unsent_bytes(), limit=limit)
        proto.close_with(CloseCode.TRY_AGAIN_LATER, "too slow")
