"""The hooks' keep-alive pool: reuse only what the backend keeps open, resend what it dropped unanswered.

Twisted's pool puts a connection back after an HTTP/1.0 answer (it only looks
for `Connection: close`) and retries only bodiless GET/HEAD/OPTIONS/DELETE/TRACE.
A backend that closes after each answer, after N requests or when idle then
races the next hook: it goes out on a socket the backend has just closed, gets
no answer, and a client's message is lost. Here:

- an answer that does not keep the connection alive (HTTP/1.0 without
  `Connection: keep-alive`, or `Connection: close`) retires its connection;
- a hook sent on a reused connection that fails before any byte of the answer
  arrived is sent once more on a new connection, whatever its method (as
  browsers do): the backend closed that socket without answering, so it did
  not act on the request. A connect POST is safe to resend too, since it names
  a fresh connection id and says nothing else;
- the most recently used connection goes first, the one least likely to have
  met the backend's idle timer.

The resend happens inside the hook's own call, so the next hook of that client
waits for it and order per client is kept.

An answer's body is read by `Answer`: only as much of it as the hook needs is
kept, and a hook that runs out of time closes its connection, so a backend
whose answer never ends neither fills the process's memory nor keeps a
connection open.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web._newclient import (
    HTTP11ClientProtocol,
    Request,
    RequestNotSent,
    RequestTransmissionFailed,
    ResponseNeverReceived,
    _WrapperException,
)
from twisted.web.client import HTTPConnectionPool, PotentialDataLoss, ResponseDone, _HTTP11ClientFactory
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

Resent = Callable[[Request, Failure], None]


def keeps_alive(version: tuple[bytes, int, int], connection: Iterable[bytes]) -> bool:
    """May another request follow this answer on its connection (RFC 9112 section 9.3)?"""
    tokens = {t.strip().lower() for value in connection for t in value.split(b",")}
    if b"close" in tokens:
        return False
    return version[1:] >= (1, 1) or b"keep-alive" in tokens


def unanswered(failure: Failure) -> bool:
    """Did the request fail before any byte of an answer arrived, and not because we cancelled it?"""
    exc = failure.value
    if not isinstance(exc, RequestNotSent | RequestTransmissionFailed | ResponseNeverReceived):
        return False
    return not (isinstance(exc, _WrapperException) and any(r.check(CancelledError) for r in exc.reasons))


def describe(failure: Failure) -> str:
    """`ResponseNeverReceived: ConnectionDone: ...` rather than a list of Failure reprs."""
    exc = failure.value
    if isinstance(exc, _WrapperException):
        inner = "; ".join(f"{r.type.__name__}: {r.getErrorMessage()}" for r in exc.reasons)
        return f"{type(exc).__name__}: {inner}"
    if isinstance(exc, ResentFailed | AnswerTooLong):
        return str(exc)
    return f"{failure.type.__name__}: {failure.getErrorMessage()}"


class ResentFailed(Exception):
    """The resend on a new connection failed too; the message names both tries."""


class _HookClientProtocol(HTTP11ClientProtocol):
    def _finishResponse_WAITING(self, rest: bytes) -> None:
        parser = self._parser
        if parser is not None and parser.response is not None:
            if not keeps_alive(parser.response.version, parser.connHeaders.getRawHeaders(b"connection", ())):
                # The base retires a connection whose answer says `close`; say it for HTTP/1.0 too.
                parser.connHeaders.setRawHeaders(b"connection", [b"close"])
        super()._finishResponse_WAITING(rest)

    _finishResponse_TRANSMITTING = _finishResponse_WAITING


class _HookClientFactory(_HTTP11ClientFactory):
    noisy = False  # no "Starting factory" log lines per backend connection

    def buildProtocol(self, addr: Any) -> HTTP11ClientProtocol:
        return _HookClientProtocol(self._quiescentCallback)


class HookPool(HTTPConnectionPool):
    """Persistent connections to the backend; `resent(request, why)` hears of every resend."""

    _factory = _HookClientFactory

    def __init__(self, reactor: Any, resent: Resent) -> None:
        super().__init__(reactor, persistent=True)
        self._resent = resent

    def getConnection(self, key: Any, endpoint: Any) -> Deferred[Any]:
        connections = self._connections.get(key)
        while connections:
            connection = connections.pop()  # newest first; the base takes the oldest
            self._timeouts.pop(connection).cancel()
            if connection.state == "QUIESCENT":
                return succeed(_ResendOnce(connection, partial(self._newConnection, key, endpoint), self._resent))
        return self._newConnection(key, endpoint)


class _ResendOnce:
    """A reused connection: an unanswered request goes once more on a new connection."""

    def __init__(self, connection: HTTP11ClientProtocol, new: Callable[[], Deferred[Any]], resent: Resent) -> None:
        self._connection = connection
        self._new = new
        self._resent = resent

    def request(self, request: Request) -> Deferred[Any]:
        return self._connection.request(request).addErrback(self._failed, request)

    def _failed(self, failure: Failure, request: Request) -> Any:
        if not unanswered(failure) or not getattr(request.bodyProducer, "replayable", request.bodyProducer is None):
            return failure
        self._resent(request, failure)
        d = self._new().addCallback(lambda connection: connection.request(request))
        return d.addErrback(_resend_failed, describe(failure))


def _resend_failed(failure: Failure, first: str) -> Failure:
    if failure.check(CancelledError):
        return failure
    why = f"no answer on a reused connection ({first}), nor on a new one ({describe(failure)})"
    return Failure(ResentFailed(why))


@implementer(IBodyProducer)
class Body:
    """The whole body at once (treq's file producer writes it a reactor turn later); written again on a resend."""

    replayable = True

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.length = len(data)

    def startProducing(self, consumer: Any) -> Deferred[None]:
        consumer.write(self.data)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class AnswerTooLong(Exception):
    """An answer body over what the hook reads of it."""


class Answer(Protocol):
    """An answer's body: at most `keep` bytes kept (a longer body fails and closes the
    connection), or with `keep` None read and dropped, for answers nobody reads.

    Cancelling `done` (the hook's timeout) closes the connection: the backend
    may still be sending, and the connection is of no use to a later hook.
    """

    def __init__(self, keep: int | None) -> None:
        self.keep = keep
        self.parts: list[bytes] = []
        self.size = 0
        self.done: Deferred[bytes] = Deferred(self._cancelled)

    def dataReceived(self, data: bytes) -> None:
        if self.keep is None or self.done.called:
            return
        self.size += len(data)
        if self.size > self.keep:
            self._close()
            self.done.errback(AnswerTooLong(f"the answer's body is over {self.keep} bytes"))
            return
        self.parts.append(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self.done.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(reason)

    def _cancelled(self, _: Deferred[bytes]) -> None:
        self._close()

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.loseConnection()
