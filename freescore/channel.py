"""The HTTP channel of every listener: a deadline for a request's headers and body that trickling cannot stretch.

Twisted's own timeout is an idle timeout, reset by every byte, so a client
that sends one header or body byte now and then (slowloris, slow POST) holds
its connection, and a file descriptor, forever. This channel also gives each
request's headers and body an absolute deadline, `[http] header_timeout`,
counted from the accept (so a TLS handshake that never finishes is dropped by
it too) and, on a keep-alive connection, from the first byte of the next
request. Between requests Twisted's idle timeout (`[http] idle_timeout`)
applies; while a request is handled (a long-poll, a WebSocket after its
upgrade) neither runs. A connection whose answers cannot be sent is not read
(pipelined requests wait), so a client that reads nothing meets these timeouts.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from twisted.web.http import HTTPChannel

log = Logger(namespace="freescore.http")

_REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


class DeadlineChannel(HTTPChannel):
    """An HTTPChannel whose requests must have sent their headers and body within the site's `header_timeout`."""

    request_started = 0.0
    """Reactor time the current request began: the accept, or its first byte on a reused connection.
    A WebSocket opening handshake counts its `open_timeout` from here (freescore.websocket)."""

    upgraded: Any = None
    """The WebSocket protocol this connection was handed to by an upgrade (freescore.websocket)."""

    _deadline: Any = None
    _in_request = False
    _got_bytes = False
    _reading_paused = False

    def connectionMade(self) -> None:
        super().connectionMade()
        self._start_request()

    def dataReceived(self, data: bytes) -> None:
        if not self._in_request:
            self._got_bytes = True
            if self._deadline is None:
                self._start_request()
        super().dataReceived(data)

    def rawDataReceived(self, data: bytes) -> None:
        if self.upgraded is not None:
            # Read with the upgrade request, from a client that did not wait for the 101: the
            # WebSocket's frames. Twisted would keep them for a next request, and stop reading
            # from the connection (now the WebSocket's) once they pass 16 KiB.
            self.upgraded.dataReceived(data)
            return
        super().rawDataReceived(data)

    def allHeadersReceived(self) -> None:
        self._in_request = True
        super().allHeadersReceived()

    def allContentReceived(self) -> None:
        self._cancel()  # the body is in too: the request is handled now, under its own timeouts
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:
        # Before Twisted goes on with pipelined bytes, which may start the next request at once.
        self._in_request = False
        self._got_bytes = False
        super().requestDone(request)

    def connectionLost(self, reason: Any) -> None:
        self._cancel()
        super().connectionLost(reason)

    def pauseProducing(self) -> None:
        """The transport cannot send: stop reading too, even while a request is handled.

        Twisted stops reading then only between requests, and a pipelined request's
        answer is written while it is handled: a client that pipelined requests and
        read no answer had every one read, handled and its answer buffered, without end.
        """
        super().pauseProducing()
        if self._handlingRequest:
            self._reading_paused = True
            self._networkProducer.pauseProducing()

    def resumeProducing(self) -> None:
        super().resumeProducing()  # resumes reading between requests
        if self._reading_paused:
            self._reading_paused = False
            if self._handlingRequest:  # a long-poll or stream in hand: reading notices a close
                self._networkProducer.resumeProducing()

    def _start_request(self) -> None:
        self.request_started = self.site.reactor.seconds()
        timeout = getattr(self.site, "header_timeout", None)
        if timeout:
            self._deadline = self.callLater(timeout, self._request_late, timeout)

    def _cancel(self) -> None:
        if self._deadline is not None:
            if self._deadline.active():
                self._deadline.cancel()
            self._deadline = None

    def _request_late(self, timeout: float) -> None:
        self._deadline = None
        transport = self.transport
        if transport is None:
            return
        log.info(
            "http: {peer} sent no complete request within {timeout}s, closing",
            peer=str(transport.getPeer()), timeout=timeout,
        )
        if self._got_bytes:
            transport.write(_REQUEST_TIMEOUT)
        # The channel's close: it stops being the transport's producer first, or TLS would not close
        # (it waits for its producer). Before the TLS handshake finished, this aborts.
        self.loseConnection()
        if self.abortTimeout is not None and self._abortingCall is None:
            self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
