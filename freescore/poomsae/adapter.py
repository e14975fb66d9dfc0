"""The FreeScore adapters: one page's WebSocket protocol and the plain-HTTP resource.

Thin: the protocol parses its route (`/<service>[/request]/<db>/<ring>[/<role>]`)
and hands everything to its `FreeScoreService`; the HTTP resource answers
`/status` and `/<service>/status` with `OK` and anything else with upstream's
JSON `{"error": "<prefix>: Unknown command: <path>"}`, always with the CORS header.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.web.server import Request

from freescore.effects import ConnId
from freescore.poomsae.frames import frame as canonical_frame
from freescore.poomsae.routes import parse_route
from freescore.poomsae.session import session_from_cookie
from freescore.poomsae.users import Client
from freescore.web import ServiceResource, json_error
from freescore.websocket import FreescoreServerProtocol
from freescore.wireformat import CloseCode

if TYPE_CHECKING:
    from freescore.poomsae.service import FreeScoreService


class FreeScoreHttp(ServiceResource):
    """`/status` and `/<service>/status` answer OK; any other plain request gets upstream's JSON error."""

    service: FreeScoreService

    def render(self, request: Request) -> bytes:
        request.setHeader("access-control-allow-origin", self.service.settings.cors_origin)
        path = request.path.decode("utf-8", "replace")
        if path.rstrip("/") in (f"/{self.service.route_name}/status", "/status"):
            request.setHeader("content-type", "text/html;charset=UTF-8")
            return b"OK"
        return json_error(request, 200, self.service.unknown_path(path.lstrip("/")))


class FreeScoreProtocol(FreescoreServerProtocol):
    """One page: its route picks the ring; everything it sends goes to the service."""

    service: FreeScoreService
    client: Client | None = None
    conn: ConnId = ConnId("")

    def handshake(self, request: ConnectionRequest) -> Any:
        route = parse_route(request.path, self.service.route_name, self.service.with_role)
        if route is None:
            raise ConnectionDeny(404, "not found")
        if not self.service.settings.create_tournaments and not self.service.model.exists(route.db):
            raise ConnectionDeny(404, "no such tournament")
        self.client = Client(id=secrets.token_hex(20), route=route, pinging=self.service.pings,
                             sessid=session_from_cookie(request.headers.get("cookie")))
        return None

    def send_frame(self, frame: Any) -> None:
        """A `Send` effect's frame: bytes as they are, a JSON value encoded canonically."""
        self.sendMessage(frame if isinstance(frame, bytes) else canonical_frame(frame))

    def end(self, code: CloseCode, reason: str) -> None:
        self.close_with(code, reason)

    def opened(self) -> None:
        self.service.join(self)

    def received(self, payload: bytes, is_binary: bool) -> None:
        self.service.receive(self, payload, is_binary)

    def closed(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        self.service.leave(self)
