"""The HTTP root of every listener: /status, /metrics and each service's mounts."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes

from twisted.web.http import RESPONSES, combinedLogFormatter
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from freescore.channel import DeadlineChannel
from freescore.wireformat import HttpError

TooLarge = tuple[dict[str, str], bytes]
"""Headers and body of a 413 sent before the body is read (a resource's `too_large(limit)`)."""


class LimitedRequest(Request):
    """Refuses a body over the site's `max_body` before storing it.

    Twisted keeps any request body (in memory, or a temp file past 100 kB)
    before a resource sees it, so a limit checked by the resource comes too
    late: an unauthenticated client could fill memory or disk.
    """

    _refused = False
    _received = 0

    def getHeader(self, key: Any) -> Any:
        """A header named by a str reads as UTF-8, or as Latin-1 where it is not UTF-8.

        Twisted decodes it as UTF-8 and raises on any other byte, so a client's
        `Origin: http://\xff` answered a WebSocket upgrade with a 500 and a traceback.
        """
        if not isinstance(key, str):
            return super().getHeader(key)
        value = super().getHeader(key.encode("latin-1"))
        if value is None:
            return None
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value.decode("latin-1")

    def gotLength(self, length: int | None) -> None:
        limit = getattr(self.channel.site, "max_body", None)
        if limit is not None and length is not None and length > limit:
            self._refuse(limit)
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        limit = getattr(self.channel.site, "max_body", None)
        if limit is not None and self._received > limit:  # chunked: no length was announced
            self._refuse(limit)
            return
        super().handleContentChunk(data)

    def requestReceived(self, command: bytes, path: bytes, version: bytes) -> None:
        if not self._refused:
            super().requestReceived(command, path, version)

    def _refuse(self, limit: int) -> None:
        import io

        self._refused = True
        self.content = io.BytesIO()
        self.requestHeaders.removeHeader(b"expect")  # else Twisted sends its 100 Continue after the 413
        # Only the request line is known yet; Twisted's channel keeps its target in `_path`.
        target = getattr(self.channel, "_path", b"")
        headers, body = self.channel.site.too_large(target, limit)
        head = b"".join(b"%s: %s\r\n" % (k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
        transport = self.channel.transport
        transport.write(
            b"HTTP/1.1 413 Payload Too Large\r\n%scontent-length: %d\r\nconnection: close\r\n\r\n%s"
            % (head, len(body), body)
        )
        self.channel.loseConnection()  # not the transport's: TLS would wait for the channel, its producer


class _WithoutQuery:
    """A request as the access log sees it: target and Referer without their query strings.

    Queries carry credentials (the gateway's `?token=`, Engine.IO's `sid`); a log is no place for them.
    """

    def __init__(self, request: Request) -> None:
        self._request = request

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)

    @property
    def uri(self) -> bytes:
        return self._request.uri.split(b"?", 1)[0]  # type: ignore[no-any-return]

    def getHeader(self, name: bytes) -> bytes | None:
        value: bytes | None = self._request.getHeader(name)
        if value is not None and name.lower() == b"referer":
            return value.split(b"?", 1)[0]
        return value


def access_log_line(timestamp: str, request: Request) -> str:
    """Twisted's combined log format, minus query strings."""
    return combinedLogFormatter(timestamp, _WithoutQuery(request))  # type: ignore[no-any-return]


class FreescoreSite(Site):
    """A Site with a request-body limit, header and idle deadlines, and a query-free access log.

    A resource sets `request.access_log = False` for high-rate machine APIs
    (the gateway's push API): the line costs about a third of such a request's CPU.
    """

    protocol = DeadlineChannel
    requestFactory = LimitedRequest
    max_body: int | None = None
    header_timeout: float | None = None
    """Seconds a request has to send its headers (freescore.channel); None: no deadline."""

    def __init__(self, resource: IResource, idle_timeout: float | None = 60.0, **kwargs: Any) -> None:
        super().__init__(resource, timeout=idle_timeout, logFormatter=access_log_line, **kwargs)

    def log(self, request: Request) -> None:
        if getattr(request, "access_log", True):
            super().log(request)

    def too_large(self, target: bytes, limit: int) -> TooLarge:
        """The 413 for a body over `max_body` to `target`: the mounted resource's own, else a JSON error."""
        find = getattr(self.resource, "mounted_at", None)
        own = getattr(find(target), "too_large", None) if find is not None else None
        if own is not None:
            return own(limit)  # type: ignore[no-any-return]
        return error_head(HttpError(413, f"request body larger than {limit} bytes"))


def error_head(error: HttpError) -> TooLarge:
    """The headers and body of an `HttpError`, for an answer written before a request exists."""
    return {"content-type": error.content_type, **error.headers}, error.body()


def answer_error(request: Request, error: HttpError) -> bytes:
    """Set the status and headers of an `HttpError` on `request`; the body to write."""
    request.setResponseCode(error.status, reason_phrase(error.status))
    request.setHeader("content-type", error.content_type)
    for name, value in error.headers.items():
        request.setHeader(name, value)
    return error.body()


def reason_phrase(status: int) -> bytes | None:
    """The status line's phrase: Twisted's, else the standard one (Twisted has none for 426 and 429)."""
    if status in RESPONSES:
        return None
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return None


def json_error(request: Request, code: int, message: str) -> bytes:
    """The JSON error freescore answers with: status `code`, body `{"error": message}`."""
    return answer_error(request, HttpError(code, message))


class ServiceResource(Resource):
    """A protocol service's HTTP resource: a leaf (every path below its mount is its own) that knows its service.

    A subclass narrows `service` to its protocol service's type.
    """

    isLeaf = True
    service: Any

    def __init__(self, service: Any) -> None:
        super().__init__()
        self.service = service


class JsonError(Resource):
    isLeaf = True

    def __init__(self, code: int, message: str) -> None:
        super().__init__()
        self.code = code
        self.message = message

    def render(self, request: Request) -> bytes:
        return json_error(request, self.code, self.message)


GET_OR_HEAD = HttpError(405, "method not allowed: use GET or HEAD", {"allow": "GET, HEAD"})


class ReadOnlyPage(Resource):
    """A page read with GET (or HEAD); any other method is a JSON 405, not Twisted's HTML 405 or 501."""

    isLeaf = True

    def render(self, request: Request) -> Any:
        if request.method not in (b"GET", b"HEAD"):
            return answer_error(request, GET_OR_HEAD)
        return super().render(request)


class Status(ReadOnlyPage):
    """`OK` while every enabled service (and the hub) is up, else 503 naming what is down."""

    def __init__(self, check: Callable[[], list[str]], cors_origin: str) -> None:
        super().__init__()
        self._check = check
        self._cors_origin = cors_origin

    def render_GET(self, request: Request) -> bytes:
        request.setHeader("content-type", "text/plain; charset=utf-8")
        request.setHeader("access-control-allow-origin", self._cors_origin)
        request.setHeader("cache-control", "no-store")
        down = self._check()
        if down:
            request.setResponseCode(503)
            return ("DEGRADED: " + ", ".join(down) + " down\n").encode()
        return b"OK"

    render_HEAD = render_GET


class MetricsPage(ReadOnlyPage):

    def __init__(self, render: Callable[[], bytes]) -> None:
        super().__init__()
        self._render = render

    def render_GET(self, request: Request) -> bytes:
        from prometheus_client import CONTENT_TYPE_LATEST

        request.setHeader("content-type", CONTENT_TYPE_LATEST)
        return self._render()


class Root(Resource):
    """Dispatches by the longest mounted path prefix; everything else is a 404 JSON error.

    Mount paths may have several segments (`/fedmsg/publish`); `""` mounts at
    the root so a dedicated listener can serve one protocol at `/`.
    """

    def __init__(self) -> None:
        super().__init__()
        self._mounts: dict[tuple[bytes, ...], IResource] = {}

    def mount(self, path: str, resource: IResource) -> None:
        segments = tuple(s.encode() for s in path.strip("/").split("/") if s)
        if segments in self._mounts:
            raise ValueError(f"path {path!r} is mounted twice")
        self._mounts[segments] = resource

    def mounted(self) -> list[str]:
        return sorted("/" + "/".join(s.decode() for s in k) for k in self._mounts)

    def getChild(self, path: bytes, request: Request) -> IResource:
        best = self._longest_mount((path, *request.postpath))
        if best is None:
            return JsonError(404, "not found")
        if best:
            for _ in range(len(best) - 1):
                request.prepath.append(request.postpath.pop(0))
        else:
            request.postpath.insert(0, request.prepath.pop())
        return self._mounts[best]

    def _longest_mount(self, wanted: tuple[bytes, ...]) -> tuple[bytes, ...] | None:
        best: tuple[bytes, ...] | None = None
        for prefix in self._mounts:
            if prefix and wanted[: len(prefix)] == prefix and (best is None or len(prefix) > len(best)):
                best = prefix
        if best is None and () in self._mounts:
            return ()
        return best

    def mounted_at(self, target: bytes) -> IResource | None:
        """The resource a request target (`/a/b?q`) would reach, before the request exists."""
        segments = tuple(unquote_to_bytes(s) for s in target.split(b"?", 1)[0].split(b"/")[1:])
        if segments and segments[0] in self.children:
            return self.children[segments[0]]  # type: ignore[no-any-return]
        best = self._longest_mount(segments)
        return None if best is None else self._mounts[best]

    def render(self, request: Request) -> bytes:
        if () in self._mounts:
            return self._mounts[()].render(request)
        return json_error(request, 404, "not found")
