"""The contract between the composition root and each protocol service.

`app.py` builds a `ServiceContext` per enabled table and calls the package's
`service.make_service(ctx)`; the `ProtocolService` it returns is a Twisted
`MultiService` that names the web resources to mount. `websocket_factory`
binds the protocol's connections to it: the one way a connection gets its
service, its limits, the metrics and the shared registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from twisted.application.service import MultiService
from twisted.web.resource import IResource

from freescore.broadcast import Broadcaster
from freescore.metrics import ServiceMetrics
from freescore.settings import Config, ServiceSettings, WebSocketSettings
from freescore.websocket import FreescoreServerFactory, FreescoreServerProtocol

if TYPE_CHECKING:
    from freescore.hub import Hub
    from freescore.websocket import ConnectionRegistry


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

    def make_broadcaster(self, **options: Any) -> Broadcaster:
        """The service's broadcaster (`max_unsent`, `too_slow` for slow consumers)."""
        return Broadcaster(self.ctx.reactor, self.ctx.metrics, **options)
