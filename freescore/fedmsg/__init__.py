"""fedmsg topic hub: browsers subscribe to topic patterns over WebSocket.

Messages come from ZeroMQ SUB sockets (fedmsg's `[topic, json]` frames) and
from an authenticated HTTP publish endpoint; both go through the hub. See
docs/fedmsg.md and ../shared/specs/fedmsg.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from freescore.fedmsg.settings import Settings

if TYPE_CHECKING:
    from freescore.service import ProtocolService, ServiceContext


def make_service(ctx: ServiceContext) -> ProtocolService:
    from freescore.fedmsg.service import FedmsgService

    return FedmsgService(ctx)


__all__ = ["Settings", "make_service"]
