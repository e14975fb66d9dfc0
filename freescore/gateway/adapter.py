"""Autobahn protocol for gateway clients and the Twisted resource of the push API.

Thin: rules live in `wire` and `logic`; this module moves bytes, and hands the
effects `logic` returns to the service's apply loop (`GatewayService.apply`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.server import NOT_DONE_YET, Request

from freescore.effects import Close
from freescore.gateway import logic, wire
from freescore.web import ServiceResource, TooLarge, answer_error, error_head, json_error
from freescore.websocket import FreescoreServerProtocol
from freescore.wireformat import CloseCode

if TYPE_CHECKING:
    from freescore.gateway.service import GatewayService

_PHRASES = {401: "Unauthorized", 403: "Forbidden", 502: "Bad Gateway", 503: "Service Unavailable",
            504: "Gateway Timeout"}


class GatewayProtocol(FreescoreServerProtocol):
    """One client: admitted by the connect hook, its messages become ordered PUTs."""

    service: GatewayService
    conn_id: str = ""
    record: logic.ConnectionRecord | None = None
    credential: wire.Credential | None = None
    _lost: bool = False
    _ended: bool = False
    _close_hook_sent: bool = False

    # -- handshake: the connect hook decides ------------------------------------------
    def handshake(self, request: ConnectionRequest) -> Deferred[str | None]:
        g = self.service
        self.conn_id = logic.new_connection_id()
        self.credential = wire.credential(request.headers, request.protocols, request.params,
                                          g.settings.auth_query_param)
        peer = self.transport.getPeer()
        ip = getattr(peer, "host", "") or ""
        self._source_ip = wire.source_ip(ip, request.headers.get("x-forwarded-for"), g.trusted_proxies)
        self._user_agent = request.headers.get("user-agent", "")
        self.backlog = logic.Backlog.holding(g.settings.max_message, g.backlog)
        self.ws_uri = wire.ws_uri(g.ws_hostname(), self.conn_id)
        g.log.debug("gateway: connect hook for {id} from {ip} (credential from {source})",
                    id=self.conn_id, ip=self._source_ip, source=self.credential.source)
        d = g.backend.connect(self.conn_id, self.credential.value, self.ws_uri, g.settings.timeout)
        d.addCallback(self._decided)
        return d

    def _decided(self, decision: wire.Decision) -> str | None:
        g = self.service
        if not decision.admitted:
            g.log.info("gateway: refused {id}: {status} {code}", id=self.conn_id, status=decision.status,
                       code=decision.code)
            g.refused.labels(code=decision.code).inc()
            raise ConnectionDeny(decision.status, _PHRASES.get(decision.status, "Refused"))
        if self._lost or self.state == self.STATE_CLOSED:
            # Admitted after the client left (or was dropped): tell the backend it is gone already.
            g.log.info("gateway: {id} left before admission; sending the close hook", id=self.conn_id)
            self._ended = True
            self._send_close_hook()
            raise ConnectionDeny(410, "Gone")
        assert self.credential is not None
        return self.credential.subprotocol

    def sendHttpErrorResponse(self, code: int, reason: str, responseHeaders: Any = None) -> None:
        """A refusal is a real HTTP response with a small JSON body (Autobahn sends none)."""
        body = wire.deny_body(code)
        head = [f"HTTP/1.1 {code} {reason}", "Content-Type: application/json", f"Content-Length: {len(body)}",
                "Connection: close"]
        for name, value in responseHeaders or ():
            head.append(f"{name}: {value}")
        self.sendData(("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + body)

    # -- open connection -----------------------------------------------------------
    def opened(self) -> None:
        g = self.service
        now = g.reactor.seconds()
        self.record = logic.ConnectionRecord(self.conn_id, self._source_ip, self._user_agent, connected_at=now)
        g.register(self)
        g.apply(g.lifetime.check(self.record, now))

    def received(self, payload: bytes, is_binary: bool) -> None:
        if self.record is None:
            return
        g = self.service
        effects = logic.message_in(self.record, self.backlog, logic.Hook(payload, is_binary), g.reactor.seconds())
        if effects:
            g.log.warn("gateway: {id}: backend too slow, a message of {message} bytes refused with {n} PUTs "
                       "({size} bytes) queued here and {total} bytes waiting for all connections (max_backlog "
                       "{limit}); closing 1013", id=self.conn_id, message=len(payload), n=len(self.backlog.queue),
                       size=self.backlog.queued_bytes, total=g.backlog.total, limit=g.settings.max_backlog)
            self.factory.metrics.errors.inc()
            g.apply(effects)
            return
        self._pump()

    def execute(self, command: wire.PushCommand) -> tuple[int, bytes]:
        """A push API command for this connection (routing's `Held`): 410 once it is no longer open."""
        if self.record is None or self.state != self.STATE_OPEN:
            raise wire.gone()
        g = self.service
        status, body, effects = logic.push(self.record, command, g.reactor.seconds(), self.unsent_bytes,
                                           g.settings.max_outbound_buffer)
        g.apply(effects)
        return status, body

    def send_frame(self, frame: wire.PushSend) -> None:
        """A push `logic` decided on (a `Send` effect)."""
        self.sendMessage(frame.payload, frame.binary)

    def end(self, code: CloseCode, reason: str) -> None:
        self.close_with(code, reason)

    def expire(self) -> None:
        """The armed timer check fired: close if a timer is due, else arm the next check."""
        if self.record is None or self.state != self.STATE_OPEN:
            return
        g = self.service
        effects = g.lifetime.check(self.record, g.reactor.seconds())
        for close in effects:
            if isinstance(close, Close):
                g.log.info("gateway: {id}: {reason}, closing {code}", id=self.conn_id, reason=close.reason,
                           code=int(close.code))
        g.apply(effects)

    def closed(self, was_clean: bool, code: int | None, reason: str | None) -> None:
        self.service.timers.cancel(self.conn_id)
        self.service.unregister(self)
        self._ended = True
        self._pump()

    def connectionLost(self, reason: Any) -> None:
        self._lost = True
        super().connectionLost(reason)

    # -- the ordered PUTs, then the DELETE -------------------------------------------
    def _pump(self) -> None:
        hook = self.backlog.next()
        if hook is not None:
            assert self.credential is not None
            d = self.service.backend.message(self.conn_id, self.credential.value, hook)
            d.addCallback(self._put_done)
            return
        if self._ended and self.backlog.drained():
            self._send_close_hook()

    def _put_done(self, result: Any) -> None:
        self.backlog.done()
        if result.status is None or not 200 <= result.status < 300:
            self.service.log.warn("gateway: message hook for {id} failed: {what}", id=self.conn_id,
                                  what=result.describe())
            self.factory.metrics.errors.inc()
        self._pump()

    def _send_close_hook(self) -> None:
        if self._close_hook_sent:
            return
        self._close_hook_sent = True
        assert self.credential is not None
        self.service.close_hook(self.conn_id, self.credential.value, self.ws_uri)


class PushAPI(ServiceResource):
    """`{push_path}/{id}`: PUT/POST send, GET describes, DELETE closes (AWS @connections)."""

    service: GatewayService

    def render(self, request: Request) -> Any:
        g = self.service
        request.access_log = g.settings.push_access_log  # type: ignore[attr-defined]  (FreescoreSite)
        if not g.serves_push(request):
            return json_error(request, 404, "not found")
        if not g.push_allowed(request.getClientAddress()):
            return answer_error(request, wire.PushError(403, "FORBIDDEN", "Forbidden", "ForbiddenException"))
        body = request.content.read() if request.content is not None else b""
        method = request.method.decode("ascii", "replace")
        path = request.path.decode("latin-1")
        headers = {name: _header(request, name) for name in
                   ("authorization", wire.TIMESTAMP_HEADER, wire.SIGNATURE_HEADER)}
        try:
            wire.authenticate(headers, method, path, body, g.reactor.seconds(), g.settings.push_token,
                              g.settings.push_hmac_secret)
            command = wire.push_command(method, _header(request, "content-type"), body, g.settings.max_message)
            conn_id = wire.connection_id([s.decode("utf-8", "replace") for s in request.postpath])
            if conn_id is None:
                raise wire.gone()
        except wire.PushError as e:
            if e.status == 401:
                g.log.info("gateway: push API refused {method} {path}: bad credentials", method=method, path=path)
            return answer_error(request, e)
        d = g.route(conn_id, command)
        d.addCallbacks(self._reply, self._failed, callbackArgs=(request,), errbackArgs=(request,))
        return NOT_DONE_YET

    def too_large(self, limit: int) -> TooLarge:
        """The site's 413 for a push over `[http] max_body`, sent before the body is read: the documented shape."""
        return error_head(wire.too_long(min(limit, self.service.settings.max_message)))

    def _reply(self, reply: tuple[int, bytes], request: Request) -> None:
        status, body = reply
        request.setResponseCode(status)
        if body:
            request.setHeader("content-type", "application/json")
        self._finish(request, body)

    def _failed(self, failure: Failure, request: Request) -> None:
        error = failure.value
        if not isinstance(error, wire.PushError):
            self.service.log.error("gateway: push failed: {why}", why=failure.getErrorMessage())
            error = wire.PushError(500, "INTERNAL_ERROR", "push failed")
        elif error.status >= 500:
            self.service.log.warn("gateway: push answered {status}: {why}", status=error.status, why=error.message)
        self._finish(request, answer_error(request, error))

    @staticmethod
    def _finish(request: Request, body: bytes) -> None:
        """One write with a length: a chunked end marker as a second small write
        would wait for the client's delayed ACK (Nagle)."""
        if request._disconnected:
            return
        request.setHeader("content-length", str(len(body)))
        if body:
            request.write(body)
        request.finish()


def _header(request: Request, name: str) -> str | None:
    value = request.getHeader(name.encode("ascii"))  # bytes: Twisted would decode a str name's value as UTF-8 or raise
    return value.decode("latin-1") if isinstance(value, bytes) else value

