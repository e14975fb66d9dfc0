"""Grassroots's HTTP adapters: the tablet's REST routes and the display's SSE stream.

The ring computer's WebSocket is the FreeScore layer's protocol (`poomsae.adapter`).
Thin: each turns a request into a wire value and hands it to the service, which
runs the rules, writes the files and then answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.server import NOT_DONE_YET, Request

from freescore.grassroots import wire
from freescore.poomsae.ids import RequestError, check_db, parse_ring
from freescore.web import ServiceResource, json_error
from freescore.websocket import unsent_bytes

if TYPE_CHECKING:
    from freescore.grassroots.service import GrassrootsService

JSON = "application/json;charset=UTF-8"


def _cors(resource: ServiceResource, request: Request) -> None:
    request.setHeader("access-control-allow-origin", resource.service.settings.cors_origin)


class GrassrootsRest(ServiceResource):
    """The REST routes of §7 below its mount (`/` of a dedicated listener, or `rest_path`), and `/status`."""

    service: GrassrootsService

    def render(self, request: Request) -> bytes:
        _cors(self, request)
        method = request.method.decode("latin-1")
        segments = [s.decode("utf-8", "replace") for s in request.postpath]
        if method == "OPTIONS":
            request.setHeader("access-control-allow-methods", "GET, POST, OPTIONS")
            request.setHeader("access-control-allow-headers", "content-type")
            return b""
        if segments in (["status"], ["grassroots", "status"]) and method in ("GET", "HEAD"):
            request.setHeader("content-type", "text/html;charset=UTF-8")
            return b"OK"
        body = request.content.read() if method == "POST" and request.content is not None else b""
        try:
            command = wire.parse_rest(method, segments, body)
        except wire.UnknownCommand:
            return json_error(request, 200, wire.UNKNOWN_COMMAND)
        except RequestError as e:
            return json_error(request, 200, e.message)
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def answer(value: Any) -> None:
            if not gone:
                data = wire.frame(value)
                request.setHeader("content-type", JSON)
                request.setHeader("content-length", str(len(data)))
                request.write(data)
                request.finish()

        self.service.rest(command, answer)
        return NOT_DONE_YET


def stream_unsent(request: Request) -> int:
    """Bytes an SSE stream's connection has not sent yet (the stalled display's backlog)."""
    return unsent_bytes(request.transport)


def drop_stream(request: Request) -> None:
    """Cut a stalled SSE stream at once: closing politely would wait for it to read its backlog."""
    transport = request.transport
    if transport is not None:
        transport.abortConnection()


class GrassrootsEvents(ServiceResource):
    """`GET <sse_path>?tournament=<db>&ring=<n>`: the ring's JSON on connect and after every change (§7.4).

    Without `ring` the `ring` cookie names it (the judge tablet). A client that
    reconnects with `Last-Event-ID` gets the events it missed from the ring's
    replay buffer, or the current state when its id is no longer there.
    """

    service: GrassrootsService

    def render(self, request: Request) -> Any:
        """GET streams; HEAD answers the stream's head only; any other method the JSON error, not Twisted's page."""
        if request.method == b"GET":
            return self.render_GET(request)
        _cors(self, request)
        if request.method == b"HEAD":
            request.setHeader("content-type", "text/event-stream")
            return b""
        request.setHeader("allow", "GET, HEAD")
        return json_error(request, 405, "Method not allowed: the update stream is read with GET")

    def render_GET(self, request: Request) -> Any:
        _cors(self, request)
        args = request.args
        db_arg = (args.get(b"tournament") or [b""])[0].decode("utf-8", "replace")
        ring_arg = (args.get(b"ring") or [request.getCookie(b"ring") or b""])[0]
        ring_text = ring_arg.decode("utf-8", "replace") if isinstance(ring_arg, bytes) else ring_arg
        try:
            db, ring = check_db(db_arg), parse_ring(ring_text)
        except RequestError as e:
            return json_error(request, 400, e.message)
        if not self.service.tournament_allowed(db):
            return json_error(request, 404, f"No tournament '{db}'")
        if self.service.factory.in_use() >= self.service.settings.max_connections:  # streams and WebSockets
            return json_error(request, 503, "too many connections")
        request.setHeader("content-type", "text/event-stream")
        request.setHeader("cache-control", "no-cache")
        request.setHeader("x-accel-buffering", "no")
        last = wire.parse_last_event_id(request.getHeader("last-event-id"))
        self.service.events.subscribe((db, ring), request, last)
        request.notifyFinish().addBoth(lambda _: self.service.events.unsubscribe((db, ring), request))
        return NOT_DONE_YET
