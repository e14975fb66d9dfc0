"""fedmsg's adapters: the browser WebSocket and the HTTP publish resource.

Thin: the frames are parsed in `wire`, decided on in `logic` (`Bus`, over
connection ids); the service applies the effects and does the fan-out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.logger import Logger
from twisted.web.server import NOT_DONE_YET, Request

from freescore.auth import bearer_matches
from freescore.effects import ConnId
from freescore.fedmsg import wire
from freescore.web import ServiceResource, answer_error, json_error
from freescore.websocket import PeerProtocol
from freescore.wireformat import HttpError, encode_json

if TYPE_CHECKING:
    from freescore.fedmsg.service import FedmsgService

log = Logger(namespace="freescore.fedmsg")


class FedmsgProtocol(PeerProtocol):
    """One browser: a connection id to the bus; its subscriptions die with it."""

    service: FedmsgService
    limit_logged = False

    def received(self, payload: bytes, is_binary: bool) -> None:
        if is_binary or self.cid is None:
            return
        service = self.service
        try:
            frame = wire.parse_client_frame(payload, service.settings.max_pattern_length)
        except wire.BadMessage as e:
            service.ctx.metrics.errors.inc()
            log.debug("fedmsg: ignored a frame from {peer}: {why}", peer=self.peer, why=e)
            return
        answer = service.bus.frame(self.cid, frame)
        if answer.limited:
            service.ctx.metrics.errors.inc()
            if not self.limit_logged:
                self.limit_logged = True
                log.info("fedmsg: {peer} reached {limit} patterns; further subscribes are ignored",
                         peer=self.peer, limit=service.settings.max_patterns)
        elif answer.dropped:
            log.debug("fedmsg: dropped a publish from {peer} (client2server is off)", peer=self.peer)
        service.apply(answer)

    def left(self, cid: ConnId) -> None:
        self.service.bus.gone(cid)


class PublishResource(ServiceResource):
    """`POST publish_path` with a bearer token: the HTTP source for systems without ZeroMQ."""

    service: FedmsgService

    def render(self, request: Request) -> Any:
        request.setHeader("cache-control", "no-store")
        try:
            topic, body_text = self.publish_request(request)
        except HttpError as e:
            return answer_error(request, e)
        delivered = self.service.count_matching(topic)
        d = self.service.publish(topic, body_text)
        finished = [False]
        request.notifyFinish().addBoth(lambda _: finished.__setitem__(0, True))

        def ok(_: Any) -> None:
            if not finished[0]:
                request.setHeader("content-type", "application/json")
                request.write(encode_json({"status": "ok", "delivered": delivered}))
                request.finish()

        def failed(failure: Any) -> None:
            log.error("fedmsg: hub publish failed: {why}", why=failure.getErrorMessage())
            if not finished[0]:
                request.write(json_error(request, 503, "hub unavailable"))
                request.finish()

        d.addCallbacks(ok, failed)
        return NOT_DONE_YET

    def publish_request(self, request: Request) -> tuple[str, str]:
        """The topic and body text of a publish; HttpError for anything else."""
        if request.method != b"POST":
            raise HttpError(405, "use POST", {"allow": "POST"})
        settings = self.service.settings
        assert settings.publish_token is not None
        if not bearer_matches(request.getHeader(b"authorization"), settings.publish_token):
            raise HttpError(401, "missing or wrong bearer token", {"www-authenticate": 'Bearer realm="fedmsg"'})
        limit = settings.max_publish_body
        data = request.content.read(limit + 1) if request.content is not None else b""
        if len(data) > limit:
            raise HttpError(413, f"body larger than {limit} bytes")
        try:
            return wire.parse_publish_request(data)
        except wire.BadMessage as e:
            self.service.ctx.metrics.errors.inc()
            raise HttpError(400, str(e)) from None
