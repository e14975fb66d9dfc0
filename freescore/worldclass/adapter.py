"""Worldclass's adapters: the Autobahn protocol of one page and the plain-HTTP resource.

Thin: requests go to the service, which applies the rules' outcomes.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.web.server import Request

from freescore.web import ServiceResource, json_error
from freescore.websocket import FreescoreServerProtocol
from freescore.worldclass import wire
from freescore.worldclass.model import Client

if TYPE_CHECKING:
    from freescore.worldclass.service import WorldclassService


class WorldclassHttp(ServiceResource):
    """`/worldclass/status` answers OK; any other plain request gets upstream's JSON error."""

    service: WorldclassService

    def render(self, request: Request) -> bytes:
        request.setHeader("access-control-allow-origin", self.service.settings.cors_origin)
        path = request.path.decode("utf-8", "replace")
        if path.rstrip("/") in ("/worldclass/status", "/status"):
            request.setHeader("content-type", "text/html;charset=UTF-8")
            return b"OK"
        return json_error(request, 200, f"FreeScore Worldclass Service Error: Unknown command: {path.lstrip('/')}")


class WorldclassProtocol(FreescoreServerProtocol):
    """One page: its route picks the ring; everything it sends goes to the service."""

    service: WorldclassService
    client: Client | None = None

    def handshake(self, request: ConnectionRequest) -> Any:
        route = wire.parse_route(request.path)
        if route is None:
            raise ConnectionDeny(404, "not found")
        if not self.service.settings.create_tournaments and not self.service.model.exists(route.db):
            raise ConnectionDeny(404, "no such tournament")
        self.client = Client(id=secrets.token_hex(20), route=route,
                             sessid=wire.session_from_cookie(request.headers.get("cookie")))
        return None

    def opened(self) -> None:
        self.service.join(self)

    def received(self, payload: bytes, is_binary: bool) -> None:
        self.service.receive(self, payload, is_binary)

    def closed(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        self.service.leave(self)
