"""The contract between the composition root and each protocol service."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twisted.application.service import MultiService
from twisted.web.resource import IResource

from freescore.config import ServiceSettings
from freescore.metrics import ServiceMetrics

if TYPE_CHECKING:
    from freescore.config import Config
    from freescore.hub import Hub
    from freescore.websocket import ConnectionRegistry


@dataclass
class ServiceContext:
    """What `make_service` gets: its settings and the shared pieces."""

    name: str
    settings: ServiceSettings
    config: "Config"
    hub: "Hub"
    reactor: Any
    metrics: ServiceMetrics
    connections: "ConnectionRegistry"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def config_dir(self) -> Path:
        return self.config.file.parent


class ProtocolService(MultiService):
    """A protocol's Twisted service plus the web resources it mounts.

    Subclasses add timers and outbound connections as child services and
    fill `resources` with mount path -> resource, e.g.
    `{"/ws": WebSocketEndpoint(factory)}`; a path may have several segments
    (`/fedmsg/publish`) and `""` mounts at the root of a listener.
    """

    def __init__(self, ctx: ServiceContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.setName(ctx.name)
        self.resources: dict[str, IResource] = {}

    def is_up(self) -> bool:
        return bool(self.running)
